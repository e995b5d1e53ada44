//! A small WebSocket client on tokio-tungstenite: the load's WebSocket
//! connections (the fan-out's streams and the idle connections `hold`
//! keeps), over HTTP/1.1 upgrade.
//!
//! ```no_run
//! # async fn run() -> push_bench::Result<()> {
//! use push_bench::ws;
//!
//! let address = "127.0.0.1:8080".parse().unwrap();
//! let mut messages = ws::stream(address, "/channels/news/ws").await?;
//! while let Some(message) = messages.next_message().await? {
//!     println!("{}", String::from_utf8_lossy(&message));
//! }
//! # Ok(()) }
//! ```
//!
//! Its connections set `TCP_NODELAY` and read with a 4 KiB buffer: this
//! client is the load, its memory is not measured, and 10,000 tungstenite
//! default buffers (128 KiB each) would take 1.3 GB.

use std::net::SocketAddr;

use bytes::Bytes;
use futures_util::StreamExt as _;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use crate::{Error, Result};

/// Read buffer of the client's own connections.
pub const CLIENT_READ_BUFFER: usize = 4 * 1024;

/// Connects to `address` and completes the WebSocket handshake for `url`
/// (a `ws://` URL whose host is `address`'s).
///
/// # Errors
///
/// When the TCP connection or the handshake fails (the server is not
/// listening, or answers the handshake with anything but `101`).
pub async fn connect(address: SocketAddr, url: &str) -> Result<WebSocketStream<TcpStream>> {
    let stream = TcpStream::connect(address)
        .await
        .map_err(|error| Error::new(format!("cannot connect to {address}: {error}")))?;
    let _ = stream.set_nodelay(true);
    let config = WebSocketConfig::default().read_buffer_size(CLIENT_READ_BUFFER);
    let (socket, _) = tokio_tungstenite::client_async_with_config(url, stream, Some(config))
        .await
        .map_err(|error| Error::new(format!("handshake with {url} failed: {error}")))?;
    Ok(socket)
}

/// Opens a WebSocket to `path` on `address`.
///
/// # Errors
///
/// As [`connect`].
pub async fn stream(address: SocketAddr, path: &str) -> Result<Messages> {
    let url = format!("ws://{address}{path}");
    let socket = connect(address, &url).await?;
    Ok(Messages { url, socket })
}

/// The data messages of one WebSocket, being read.
#[derive(Debug)]
pub struct Messages {
    url: String,
    socket: WebSocketStream<TcpStream>,
}

impl Messages {
    /// The payload of the next text (or binary) message, `None` once the
    /// server has closed the socket (a close frame, or the connection
    /// ending). Pings are answered (by tungstenite, on the next read) and
    /// skipped.
    ///
    /// # Errors
    ///
    /// When the connection fails or breaks the protocol.
    pub async fn next_message(&mut self) -> Result<Option<Bytes>> {
        loop {
            match self.socket.next().await {
                Some(Ok(Message::Text(text))) => return Ok(Some(Bytes::from(text))),
                Some(Ok(Message::Binary(data))) => return Ok(Some(data)),
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
                Some(Ok(Message::Close(_))) | None => return Ok(None),
                Some(Err(error)) => {
                    return Err(Error::new(format!(
                        "{}: the socket failed: {error}",
                        self.url
                    )))
                }
            }
        }
    }
}
