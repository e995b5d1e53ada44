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
//! [`stream_h2`] opens one over HTTP/2 instead (RFC 8441's extended
//! `CONNECT`, on an h2c connection of its own).
//!
//! Its connections set `TCP_NODELAY` and read with a 4 KiB buffer: this
//! client is the load, its memory is not measured, and 10,000 tungstenite
//! default buffers (128 KiB each) would take 1.3 GB.

use std::net::SocketAddr;

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{FutureExt as _, StreamExt as _};
use http::{Method, Request, StatusCode};
use http_body_util::Empty;
use hyper::upgrade::Upgraded;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::task::AbortHandle;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
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
    Ok(Messages {
        url,
        socket,
        _connection: None,
    })
}

/// How long the server has to enable extended `CONNECT` in its first
/// `SETTINGS`.
const SETTINGS_WITHIN: Duration = Duration::from_secs(10);

/// Opens a WebSocket to `path` on `address` over HTTP/2 (RFC 8441): an h2c
/// connection of its own, and on it a `CONNECT` with `:protocol:
/// websocket`, which must answer `200`. Dropping the [`Messages`] cuts the
/// connection.
///
/// # Errors
///
/// When the connection fails, the server does not enable extended
/// `CONNECT` within 10 s, or answers the `CONNECT` with another status.
pub async fn stream_h2(address: SocketAddr, path: &str) -> Result<Messages<TokioIo<Upgraded>>> {
    let url = format!("http://{address}{path}");
    let tcp = TcpStream::connect(address)
        .await
        .map_err(|error| Error::new(format!("cannot connect to {address}: {error}")))?;
    let _ = tcp.set_nodelay(true);
    let (mut send, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .map_err(|error| {
                Error::new(format!("the h2c handshake with {address} failed: {error}"))
            })?;
    // RFC 8441: no `:protocol` before the server's SETTINGS enable it;
    // hyper notes the setting without waking anyone, so look again.
    let mut connection = Box::pin(connection);
    let deadline = Instant::now() + SETTINGS_WITHIN;
    while !connection.is_extended_connect_protocol_enabled() {
        if connection.as_mut().now_or_never().is_some() || Instant::now() >= deadline {
            return Err(Error::new(format!(
                "{address} did not enable extended CONNECT (RFC 8441) over h2c"
            )));
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let driver = tokio::spawn(connection).abort_handle();
    let cut = Cut(driver);
    let mut request = Request::builder()
        .method(Method::CONNECT)
        .uri(&url)
        .header("sec-websocket-version", "13")
        .body(Empty::<Bytes>::new())
        .map_err(|error| Error::new(format!("CONNECT {url}: not a valid request: {error}")))?;
    request
        .extensions_mut()
        .insert(hyper::ext::Protocol::from_static("websocket"));
    let failed = |error: hyper::Error| Error::new(format!("CONNECT {url} failed: {error}"));
    send.ready().await.map_err(failed)?;
    let response = send.send_request(request).await.map_err(failed)?;
    if response.status() != StatusCode::OK {
        return Err(Error::new(format!(
            "CONNECT {url} answered {}, not 200",
            response.status()
        )));
    }
    let upgraded = hyper::upgrade::on(response).await.map_err(failed)?;
    let config = WebSocketConfig::default().read_buffer_size(CLIENT_READ_BUFFER);
    let socket =
        WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Client, Some(config)).await;
    Ok(Messages {
        url,
        socket,
        _connection: Some(cut),
    })
}

/// Aborts a connection's task when dropped.
#[derive(Debug)]
struct Cut(AbortHandle);

impl Drop for Cut {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The data messages of one WebSocket, being read.
#[derive(Debug)]
pub struct Messages<S = TcpStream> {
    url: String,
    socket: WebSocketStream<S>,
    /// The HTTP/2 connection the socket is a stream of, if it is one.
    _connection: Option<Cut>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Messages<S> {
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
