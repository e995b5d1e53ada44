//! WebSocket: one upgraded connection per subscription, over HTTP/1.1
//! (`Upgrade: websocket`, RFC 6455) or HTTP/2 (extended `CONNECT`, RFC 8441).
//!
//! The request is checked before anything is upgraded: the handshake, the
//! channel name, the start position (`Last-Event-ID`, `?after=`,
//! `?from=earliest`; browsers cannot set headers on a WebSocket, so the query
//! is the usual way) and the subscription itself, each refusal answered with
//! the usual JSON error. Then the handshake is answered and a task drives
//! the socket with the same [engine](push_core::engine) as every stream,
//! framed by push-core's [`WebSocket`] delivery:
//!
//! - the first text message is the `position` signal; each event is one
//!   text message holding its JSON envelope, the bytes every subscriber
//!   shares; signals are text messages; heartbeats are pings on the shared
//!   tick, and a client that has left one unanswered, with nothing but
//!   pings sent meanwhile, for a heartbeat interval and
//!   [`Config::lag_grace`](crate::Config::lag_grace) is disconnected;
//! - the socket ends with a close code that says why: `1000` after `closed`,
//!   `1001` after `shutdown`, [`close_code::LAGGED`] (`4000`) after
//!   `lagged`, and `1002`, `1007`, `1008`, `1009` for what the client sent
//!   wrong (see [`close_code`]);
//! - the client's pings and close frames are answered; a data message from
//!   the client is refused with `1008`, because the socket carries events one
//!   way and a message silently dropped would be lost (publish with `POST`);
//!   inbound messages are limited to
//!   [`Config::max_ws_inbound_bytes`](crate::Config::max_ws_inbound_bytes)
//!   ([`MAX_INBOUND_MESSAGE_BYTES`] by default), and a
//!   client that does not take what the server writes is not read from
//!   until it does, so a flood of pings cannot queue pongs;
//! - a client that stops reading is bounded like every stream: it gets
//!   `lagged` and `4000` if the socket still takes writes, else its
//!   connection is dropped after [`Config::lag_grace`](crate::Config::lag_grace).
//!
//! Sockets are driven by tokio-tungstenite with small buffers (a 512-byte
//! read buffer, events gathered into writes of up to 16 KiB), so that
//! thousands of idle sockets cost little. Measured with push-bench's
//! `idle-memory` (10,000 idle sockets held at once, server RSS before and
//! after, divided): about 3.1 KB per socket for push-server, against about
//! 133.6 KB for a tokio-tungstenite server with the default configuration,
//! whose 128 KiB read buffer is allocated and written up front. Each event's
//! envelope is shared up to tungstenite's write buffer, which copies it once
//! per socket as it frames it.
//!
//! The upgrade needs a server that hands over upgraded connections:
//! [`serve`](crate::serve()) on both HTTP versions (its own HTTP/2 loop
//! hands over extended `CONNECT` streams), or hyper's
//! `serve_connection_with_upgrades` and `axum::serve` (with
//! `enable_connect_protocol` for HTTP/2). Elsewhere the service answers
//! `501 not_implemented`.
//!
//! ```
//! use futures_util::StreamExt;
//! use push_core::{Data, Hub, HubConfig, Message};
//! use push_tower::{serve, ChannelFrom, Config, Push};
//! use tokio_tungstenite::tungstenite::Message as WsMessage;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let push = Push::new(Hub::new(HubConfig::default()), Config::default());
//! let ws = push.ws(ChannelFrom::path("/live/{channel}")?);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let url = format!("ws://{}/live/news", listener.local_addr()?);
//! tokio::spawn(serve(listener, ws).with_push(push.clone()).run());
//!
//! let (mut socket, _) = tokio_tungstenite::connect_async(url).await?;
//! let position = socket.next().await.unwrap()?;
//! assert!(position.to_text()?.starts_with(r#"{"signal":"position","cursor":""#));
//! push.channels().publish("news", Message::new(Data::text("hello")))?;
//! let event = socket.next().await.unwrap()?;
//! assert!(event.to_text()?.ends_with(r#""data":"hello"}"#));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```

mod handshake;
mod io;
mod socket;

use http::Request;
use push_core::delivery::WebSocket;
use push_core::engine::Frames;
use push_core::wire::WireError;
use push_core::{ChannelName, Channels};

use crate::channel_from::technique_service;
use crate::serve::ConnectionHandle;
use crate::subscribe::Subscribe;
use crate::{error, Push, ResponseFuture};

use handshake::Handshake;
use io::Upgrade;

/// The opening handshake's verdict on `request`, for the fuzz targets:
/// `Ok(Some(accept))` for an HTTP/1.1 upgrade, `Ok(None)` for an HTTP/2
/// extended CONNECT, else the refusal's status.
#[cfg(fuzzing)]
pub(crate) fn check_handshake<B>(request: &Request<B>) -> Result<Option<String>, http::StatusCode> {
    match Handshake::check(request) {
        Ok(Handshake::Upgrade { accept }) => {
            Ok(Some(accept.to_str().unwrap_or_default().to_owned()))
        }
        Ok(Handshake::Connect) => Ok(None),
        Err(refusal) => Err(refusal.response().status()),
    }
}

/// The default largest message a client may send (`1009` past it; see
/// [`Config::max_ws_inbound_bytes`](crate::Config::max_ws_inbound_bytes)).
/// Clients have no data to send on this socket, so this only bounds what a
/// broken or hostile client can make the server read.
pub const MAX_INBOUND_MESSAGE_BYTES: usize = 4 * 1024;

/// The close codes the server ends a socket with, as PROTOCOL.md lists them.
pub mod close_code {
    /// After the `closed` signal: the channel's incarnation ended; do not
    /// resume.
    pub const CLOSED: u16 = 1000;
    /// After the `shutdown` signal: the server is draining; reconnect later
    /// with the cursor.
    pub const SHUTDOWN: u16 = 1001;
    /// A protocol error from the client (an unmasked frame, say).
    pub const PROTOCOL_ERROR: u16 = 1002;
    /// A text message from the client that is not UTF-8.
    pub const BAD_UTF8: u16 = 1007;
    /// A data message from the client: this socket only delivers; publish
    /// with `POST /channels/{name}`.
    pub const DATA_FROM_CLIENT: u16 = 1008;
    /// A message from the client over
    /// [`MAX_INBOUND_MESSAGE_BYTES`](super::MAX_INBOUND_MESSAGE_BYTES).
    pub const TOO_BIG: u16 = 1009;
    /// The channel's store ended the subscription without a signal;
    /// reconnect with the last id seen.
    pub const SOURCE_ENDED: u16 = 1011;
    /// After the `lagged` signal: the client fell past its bound; reconnect
    /// now with the cursor of the `lagged` message.
    pub const LAGGED: u16 = 4000;
}

technique_service! {
    /// WebSocket as a tower [`Service`](tower_service::Service), answering
    /// `GET` (HTTP/1.1 upgrade) and `CONNECT` (HTTP/2 extended CONNECT). See
    /// the [module docs](self).
    WsService, GET | CONNECT => respond,
    crate::authorize::Action::Subscribe(Some(push_core::Technique::WebSocket))
}

pub(crate) fn respond<C: Channels, B>(
    push: &Push<C>,
    channel: ChannelName,
    mut request: Request<B>,
) -> ResponseFuture {
    let handshake = match Handshake::check(&request) {
        Ok(handshake) => handshake,
        Err(refusal) => return ResponseFuture::ready(refusal.response()),
    };
    if let Err(refusal) = push.accepting() {
        return ResponseFuture::error(refusal);
    }
    let subscribe = match Subscribe::from_request(channel, &request) {
        Ok(subscribe) => subscribe,
        Err(error) => return ResponseFuture::error(error),
    };
    // Counted against its HTTP/2 connection's subscriptions until it ends.
    let handle = ConnectionHandle::of(request.extensions());
    if let Err(error) = handle.map_or(Ok(()), ConnectionHandle::take_subscription) {
        return ResponseFuture::error(error);
    }
    let Some(upgrade) = Upgrade::take(request.extensions_mut()) else {
        return ResponseFuture::error(WireError::upgrades_unavailable());
    };
    let push = push.clone();
    ResponseFuture::pending(async move {
        match subscribe.on(push.channels()).await {
            Ok(subscription) => {
                let frames = Frames::new(subscription, WebSocket, push.listen())
                    .max_take_bytes(push.config().max_write_bytes);
                let guard = push.inner.sockets.open();
                let settings = socket::Settings {
                    lag_grace: push.config().lag_grace,
                    max_event_bytes: push.channels().limits().max_event_bytes,
                    max_inbound_bytes: push.config().max_ws_inbound_bytes,
                };
                tokio::spawn(async move {
                    // A failed upgrade means the client went away first.
                    if let Some(io) = upgrade.stream().await {
                        socket::run(io, frames, settings).await;
                    }
                    drop(guard);
                });
                handshake.accept()
            }
            Err(error) => error::response(error),
        }
    })
}
