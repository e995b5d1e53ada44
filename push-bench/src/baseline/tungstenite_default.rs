//! `tungstenite-default`: WebSocket fan-out written the way the
//! tokio-tungstenite examples write a server, with its default
//! configuration. HTTP/1.1 only.
//!
//! A tokio `TcpListener`; each connection is looked at (one byte, with
//! `peek`) to tell a publish from a WebSocket handshake, since
//! tokio-tungstenite serves nothing but the handshake:
//!
//! - A `POST` is read and answered by the same hand-written HTTP/1.1 code
//!   as `raw-writer`'s publishes (one request, `connection: close`). Its
//!   event's envelope is framed once, as a `Utf8Bytes` that the channel's
//!   `tokio::sync::broadcast` hands to every subscriber without a copy.
//! - Anything else goes to `tokio_tungstenite::accept_hdr_async` (the
//!   default `WebSocketConfig`: a 128 KiB read buffer per connection), whose
//!   callback reads the channel from the path (`/channels/{name}/ws`;
//!   anything else is answered `404`). The connection then sends the
//!   `position` signal as a text message, and loops on a `select!` between
//!   the broadcast receiver, each event sent with `SinkExt::send` (one
//!   frame written and flushed per event, as the examples do), and the
//!   socket, whose messages are read and dropped (tungstenite answers pings
//!   itself). It ends when the client closes, a send fails, or the
//!   subscriber lags more than the channel's capacity behind.

use std::sync::Arc;

use futures_util::{SinkExt as _, StreamExt as _};
use http::StatusCode;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast::error::RecvError;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

use super::raw_writer::{answer, publish, read_request};
use super::{accept, envelope, position_signal, route, Baseline, Channels, Route};
use crate::technique::Technique;
use crate::Result;

/// Serves until the task is dropped.
pub(super) async fn serve(listener: TcpListener) -> Result<()> {
    let channels = Arc::new(Channels::<Utf8Bytes>::new());
    let mut refusals = 0_u64;
    loop {
        let stream = accept(&listener, Baseline::TungsteniteDefault, &mut refusals).await;
        tokio::spawn(connection(stream, Arc::clone(&channels)));
    }
}

async fn connection(mut stream: TcpStream, channels: Arc<Channels<Utf8Bytes>>) {
    let mut first = [0_u8; 1];
    match stream.peek(&mut first).await {
        Ok(1) if first[0] == b'P' => {}
        Ok(1) => return subscriber(stream, &channels).await,
        _ => return,
    }
    let request = match read_request(&mut stream).await {
        Ok(Some(request)) => request,
        Ok(None) => return,
        Err(status) => return answer(&mut stream, status, None, b"").await,
    };
    match route(&request.method, &request.target) {
        Route::Publish(name) => {
            let frame = |n, data: &str| Utf8Bytes::from(envelope(n, data));
            publish(&mut stream, &channels, name, &request.body, frame).await;
        }
        Route::Subscribe(..) | Route::NotFound => {
            answer(&mut stream, "404 Not Found", None, b"").await;
        }
    }
}

/// The WebSocket handshake, then channel `name`'s events until the client
/// closes, a send fails or the subscriber lags.
async fn subscriber(stream: TcpStream, channels: &Channels<Utf8Bytes>) {
    let mut channel = None;
    // The signature is tungstenite's `Callback`, large error and all.
    #[allow(clippy::result_large_err)]
    let callback = |request: &Request, response: Response| match route(
        request.method().as_str(),
        request.uri().path(),
    ) {
        Route::Subscribe(name, Technique::Ws) => {
            channel = Some(name.to_owned());
            Ok(response)
        }
        _ => {
            let mut refusal = ErrorResponse::new(None);
            *refusal.status_mut() = StatusCode::NOT_FOUND;
            Err(refusal)
        }
    };
    let Ok(mut socket) = tokio_tungstenite::accept_hdr_async(stream, callback).await else {
        return;
    };
    let Some(name) = channel else { return };
    let (last, mut receiver) = channels.subscribe(&name);
    let position = Message::text(position_signal(last));
    if socket.send(position).await.is_err() {
        return;
    }
    loop {
        tokio::select! {
            event = receiver.recv() => match event {
                Ok(text) => {
                    if socket.send(Message::Text(text)).await.is_err() {
                        return;
                    }
                }
                // Lagged or closed: the socket is dropped, which closes it.
                Err(RecvError::Lagged(_) | RecvError::Closed) => return,
            },
            message = socket.next() => match message {
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return,
            },
        }
    }
}
