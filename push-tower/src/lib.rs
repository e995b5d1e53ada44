//! Every `push` technique as a tower [`Service`](tower_service::Service).
//!
//! One module per technique, shaped alike: [`poll`] (short polling),
//! [`long_poll`], [`sse`] (Server-Sent Events), [`ndjson`] (HTTP
//! streaming) and [`ws`] (WebSocket, over HTTP/1.1 and HTTP/2), plus
//! [`publish`]. [`Router`] serves the whole wire contract
//! of `PROTOCOL.md` under one prefix, and [`serve()`] runs any of them on
//! hyper with HTTP/1.1 and h2c on one port and graceful shutdown. [`client`]
//! holds the browser client, `push.js`, and a service that serves it.
//!
//! Services are `Clone + Send + Sync + 'static` with `Error = Infallible`,
//! so axum's `route_service` and `nest_service` take them as they are. They
//! share a [`Push`]: the channel source, the [`Config`], one heartbeat tick
//! for every connection and the shutdown switch. Every technique reaches
//! storage only through push-core's [`Channels`] trait,
//! so any source serves them all; the in-memory [`Hub`](push_core::Hub) is
//! the default type.
//!
//! ```no_run
//! use push_core::{Hub, HubConfig};
//! use push_tower::{serve, Config, Push};
//!
//! # async fn run() -> std::io::Result<()> {
//! let push = Push::new(Hub::new(HubConfig::default()), Config::default());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! serve(listener, push.router()).with_push(push).run().await
//! # }
//! ```
//!
//! With axum, one technique on a route of your own (the channel from a named
//! path parameter) and the whole protocol nested under `/push`, with streams
//! ending with the shutdown signal when axum starts draining:
//!
//! ```no_run
//! use push_core::{Hub, HubConfig};
//! use push_tower::{ChannelFrom, Config, Push};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let push = Push::new(Hub::new(HubConfig::default()), Config::default());
//! let app: axum::Router = axum::Router::new()
//!     .route_service("/rooms/{room}/live", push.sse(ChannelFrom::path("/rooms/{room}/live")?))
//!     .nest_service("/push", push.router());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! axum::serve(listener, app)
//!     .with_graceful_shutdown(push.shutdown_on(async {
//!         let _ = tokio::signal::ctrl_c().await;
//!     }))
//!     .await?;
//! # Ok(())
//! # }
//! ```
//!
//! A channel source of your own goes in place of the hub: see
//! [`Channels`] for the rules it follows and the
//! crate's `custom_backend` example for one served by every technique.

pub mod authorize;
mod body;
mod channel_from;
pub mod client;
pub mod error;
mod future;
pub mod http2_push;
mod lag_watch;
pub mod long_poll;
pub mod ndjson;
pub mod origin;
pub mod poll;
pub mod publish;
mod push;
mod rate;
mod request;
mod response;
pub mod router;
pub mod serve;
pub mod sse;
mod stalled_reader;
mod streaming;
mod subscribe;
pub mod ws;

pub use body::PushBody;
pub use channel_from::{ChannelFrom, ChannelFromError};
pub use future::ResponseFuture;
pub use push::{Config, Push};
pub use rate::PublishRate;
pub use router::Router;
pub use serve::{serve, RequestBody, Serve};

pub use push_core;

/// Entry points for the fuzz targets of the repository's `fuzz/` crate:
/// crate-private parsers, reached without making them public. Compiled only
/// under `--cfg fuzzing`, which `cargo fuzz` sets and no ordinary build
/// does, so it is no part of the API.
#[cfg(fuzzing)]
#[doc(hidden)]
#[path = "fuzzing.rs"]
pub mod __fuzz;

use push_core::Channels;

impl<C: Channels> Push<C> {
    /// The whole wire contract as one service; see [`Router`].
    pub fn router(&self) -> Router<C> {
        Router::new(self.clone())
    }

    /// Server-Sent Events of the channel `channel_from` finds; see [`sse`].
    pub fn sse(&self, channel_from: ChannelFrom) -> sse::SseService<C> {
        sse::SseService::new(self.clone(), channel_from)
    }

    /// NDJSON streaming of the channel `channel_from` finds; see [`ndjson`].
    pub fn ndjson(&self, channel_from: ChannelFrom) -> ndjson::NdjsonService<C> {
        ndjson::NdjsonService::new(self.clone(), channel_from)
    }

    /// WebSocket of the channel `channel_from` finds; see [`ws`].
    pub fn ws(&self, channel_from: ChannelFrom) -> ws::WsService<C> {
        ws::WsService::new(self.clone(), channel_from)
    }

    /// HTTP/2 server push of the channel `channel_from` finds (inline where
    /// push is unavailable); see [`http2_push`].
    pub fn http2_push(&self, channel_from: ChannelFrom) -> http2_push::Http2PushService<C> {
        http2_push::Http2PushService::new(self.clone(), channel_from)
    }

    /// Short polling of the channel `channel_from` finds; see [`poll`].
    pub fn poll(&self, channel_from: ChannelFrom) -> poll::PollService<C> {
        poll::PollService::new(self.clone(), channel_from)
    }

    /// Long polling of the channel `channel_from` finds; see [`long_poll`].
    pub fn long_poll(&self, channel_from: ChannelFrom) -> long_poll::LongPollService<C> {
        long_poll::LongPollService::new(self.clone(), channel_from)
    }

    /// Publishing to the channel `channel_from` finds; see [`publish`].
    pub fn publish(&self, channel_from: ChannelFrom) -> publish::PublishService<C> {
        publish::PublishService::new(self.clone(), channel_from)
    }

    /// Answers `request` with a stream of `channel` framed by your own
    /// byte-oriented `delivery`, driven by the same engine as the built-in
    /// streams: the start position from `Last-Event-ID`, `?after=` or
    /// `?from=earliest`; errors answered as JSON before the stream starts;
    /// the shared heartbeat tick; the shutdown signal; the stalled-reader
    /// rule; the proxy-safe headers; and queued events gathered into few
    /// writes.
    ///
    /// This is how a custom transport over plain HTTP (`multipart/mixed`,
    /// say) gets the built-in semantics; the conformance crate's
    /// `multipart` example is one.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use push_core::delivery::Ndjson;
    /// use push_core::{Hub, HubConfig};
    /// use push_tower::{Config, Push};
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let push = Push::new(Hub::new(HubConfig::default()), Config::default());
    /// let request = http::Request::get("/anything").body(()).unwrap();
    /// let response = push.stream_with("news", &request, Arc::new(Ndjson)).await.unwrap();
    /// assert_eq!(response.headers()["content-type"], "application/x-ndjson");
    /// # });
    /// ```
    pub fn stream_with<B, D>(
        &self,
        channel: &str,
        request: &http::Request<B>,
        delivery: D,
    ) -> ResponseFuture
    where
        D: push_core::Delivery<Frame = bytes::Bytes>,
    {
        match request::channel_name(channel) {
            Ok(channel) => {
                let action = authorize::Action::Subscribe(None);
                let decision = authorize::decide(self, request, &channel, action);
                authorize::enforce(decision, || {
                    streaming::respond(self, channel, request, delivery)
                })
            }
            Err(error) => ResponseFuture::error(error),
        }
    }
}
