//! WebSocket per the wire contract: `GET …/ws` upgraded over HTTP/1.1
//! (RFC 6455), or an extended `CONNECT` over HTTP/2 (RFC 8441), as the
//! [`HttpClient`] speaks. Each text message holds one JSON envelope or
//! signal object, a ping is a heartbeat, and the close frame's code says why
//! the server ended the socket.
//!
//! [`open`] gives a [`WsSession`], which [`WireClient`](super::WireClient)
//! uses for [`Technique::WebSocket`](push_core::Technique::WebSocket) and
//! which tests can use directly to check close codes.
//!
//! ```no_run
//! use conformance::clients::ws;
//! use conformance::{HttpClient, Protocol, Session, StartAt};
//!
//! # async fn run() -> Result<(), conformance::OpenError> {
//! let http = HttpClient::new("http://127.0.0.1:8080", Protocol::H2c);
//! let mut session = ws::open(&http, "news", StartAt::Earliest).await?;
//! while let Ok(Some(item)) = session.next().await {
//!     println!("{item:?}");
//! }
//! // 1000 after `closed`, 1001 after `shutdown`, 4000 after `lagged`.
//! println!("closed with {:?}", session.close_code());
//! # Ok(())
//! # }
//! ```
//!
//! The socket is read by a task of its own, which answers the server's
//! pings as a browser does, even while nobody asks for the next item: the
//! server disconnects a client that leaves a ping unanswered for one
//! interval, and scenarios hold subscriptions unread for longer than that
//! (200 subscribers opening one by one, every transport waiting for a shared
//! shutdown). [`Session::pause`] stops that task reading, so a paused session
//! is a slow consumer to the server; [`Session::next`] resumes it.

use std::time::Duration;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::{FutureExt, StreamExt};
use http::{HeaderValue, Method, Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::error::ProtocolError;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::WebSocketStream;

use super::start_request;
use super::target::Target;
use crate::http::{HttpClient, Protocol};
use crate::received::{decode_json, Received};
use crate::transport::{OpenError, Session, SessionError, StartAt};

/// The largest message the client takes. The largest event the suite
/// publishes (1 MiB) is at most 6 MiB as a JSON string (`\u0000` for each
/// control byte), plus its envelope.
const MAX_MESSAGE_BYTES: usize = 16 << 20;

/// How long an HTTP/2 server may take to enable extended `CONNECT`.
const SETTINGS_TIMEOUT: Duration = Duration::from_secs(5);

/// The close code of a close frame that carries none (RFC 6455, 7.1.5).
const NO_STATUS: u16 = 1005;

/// Opens a WebSocket subscription to `channel` from `start` on `http`'s
/// server and protocol: over HTTP/1.1, a `GET` upgraded by the RFC 6455
/// handshake; over h2c, an RFC 8441 extended `CONNECT` on a connection of
/// its own, sent once the server's settings enable it.
///
/// # Errors
///
/// [`OpenError::Refused`] with the status and the JSON error code when the
/// server answers anything but the upgrade (`101`, or `200` over HTTP/2);
/// [`OpenError::Failed`] when the base URL is not `http://`, the connection
/// or the handshake fails, or an HTTP/2 server does not enable extended
/// `CONNECT` within 5 s.
pub async fn open(
    http: &HttpClient,
    channel: &str,
    start: StartAt,
) -> Result<WsSession, OpenError> {
    let (query, headers) = start_request(&start);
    let target = Target::new(http.base(), channel, "ws", &query)?;
    match http.protocol() {
        Protocol::Http1 => open_http1(&target, &headers).await,
        Protocol::H2c => open_h2(&target, &headers).await,
    }
}

fn config() -> WebSocketConfig {
    WebSocketConfig::default()
        .max_message_size(Some(MAX_MESSAGE_BYTES))
        .max_frame_size(Some(MAX_MESSAGE_BYTES))
}

async fn open_http1(
    target: &Target,
    headers: &[(&'static str, String)],
) -> Result<WsSession, OpenError> {
    let url = target.url("ws");
    let mut request = url
        .as_str()
        .into_client_request()
        .map_err(|e| OpenError::Failed(format!("cannot build the handshake for {url}: {e}")))?;
    for (name, value) in headers {
        let value = HeaderValue::from_str(value)
            .map_err(|e| OpenError::Failed(format!("bad {name} header {value:?}: {e}")))?;
        request.headers_mut().insert(*name, value);
    }
    let stream = target.connect().await?;
    match tokio_tungstenite::client_async_with_config(request, stream, Some(config())).await {
        Ok((socket, _)) => Ok(WsSession::start(socket, None)),
        // tungstenite keeps the body bytes that arrived with the head.
        Err(WsError::Http(response)) => Err(OpenError::refused(
            response.status().as_u16(),
            response.body().as_deref().unwrap_or_default(),
        )),
        Err(e) => Err(OpenError::Failed(format!(
            "the WebSocket handshake with {url} failed: {e}"
        ))),
    }
}

async fn open_h2(
    target: &Target,
    headers: &[(&'static str, String)],
) -> Result<WsSession, OpenError> {
    let url = target.url("http");
    let failed = |what: &str, e: hyper::Error| OpenError::Failed(format!("{what} {url}: {e}"));
    let stream = target.connect().await?;
    let (mut sender, connection) =
        http2::handshake::<_, _, Empty<Bytes>>(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .map_err(|e| failed("the HTTP/2 handshake failed with", e))?;
    let mut connection = Box::pin(connection);
    // RFC 8441, section 4: no `:protocol` before the server's SETTINGS
    // enable it. hyper reads the SETTINGS on a task of its own, and the
    // flag wakes nobody, so look again every millisecond.
    let started = tokio::time::Instant::now();
    while !connection.is_extended_connect_protocol_enabled() {
        if let Some(ended) = connection.as_mut().now_or_never() {
            let why = ended.err().map(|e| format!(": {e}")).unwrap_or_default();
            return Err(OpenError::Failed(format!(
                "the HTTP/2 connection for {url} ended before the server enabled extended CONNECT{why}"
            )));
        }
        if started.elapsed() > SETTINGS_TIMEOUT {
            return Err(OpenError::Failed(format!(
                "the server did not enable extended CONNECT (SETTINGS_ENABLE_CONNECT_PROTOCOL) within {} s for {url}",
                SETTINGS_TIMEOUT.as_secs()
            )));
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    tokio::spawn(connection);

    let mut request = Request::builder()
        .method(Method::CONNECT)
        .uri(&url)
        .header("sec-websocket-version", "13");
    for (name, value) in headers {
        request = request.header(*name, value.as_str());
    }
    let mut request = request
        .body(Empty::new())
        .map_err(|e| OpenError::Failed(format!("cannot build the CONNECT for {url}: {e}")))?;
    request
        .extensions_mut()
        .insert(hyper::ext::Protocol::from_static("websocket"));
    sender
        .ready()
        .await
        .map_err(|e| failed("the HTTP/2 connection broke before the CONNECT of", e))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| failed("the CONNECT failed for", e))?;
    if response.status() != StatusCode::OK {
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .collect()
            .await
            .map(|c| c.to_bytes())
            .unwrap_or_default();
        return Err(OpenError::refused(status, &body));
    }
    let upgraded = hyper::upgrade::on(response)
        .await
        .map_err(|e| failed("the CONNECT stream could not be taken over for", e))?;
    let socket =
        WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Client, Some(config()))
            .await;
    Ok(WsSession::start(socket, Some(sender)))
}

/// A WebSocket subscription: a [`Session`] whose items are the server's
/// text messages, decoded, and its pings as heartbeats; it ends at the
/// server's close frame, whose code [`WsSession::close_code`] then tells.
pub struct WsSession {
    messages: mpsc::UnboundedReceiver<Result<Message, WsError>>,
    /// Whether the reading task reads; `false` while paused.
    reading: watch::Sender<bool>,
    /// The code and reason of the close frame received.
    close: Option<(u16, String)>,
    ended: bool,
}

impl WsSession {
    /// Starts the task reading `socket`; `connection` is the HTTP/2
    /// connection carrying it, kept open as long as the socket.
    fn start<S>(
        socket: WebSocketStream<S>,
        connection: Option<http2::SendRequest<Empty<Bytes>>>,
    ) -> Self
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (messages, received) = mpsc::unbounded_channel();
        let (reading, reading_rx) = watch::channel(true);
        tokio::spawn(async move {
            read_socket(socket, messages, reading_rx).await;
            drop(connection);
        });
        WsSession {
            messages: received,
            reading,
            close: None,
            ended: false,
        }
    }

    /// The code of the close frame the server ended the socket with, once
    /// [`Session::next`] has returned the end: `1000` after `closed`,
    /// `1001` after `shutdown`, `4000` after `lagged`, `1011` when the
    /// channel's store ended the subscription (see PROTOCOL.md), and `1005`
    /// for a close frame without a code. `None` before the end, and when the
    /// connection ended without a close frame.
    pub fn close_code(&self) -> Option<u16> {
        self.close.as_ref().map(|(code, _)| *code)
    }

    /// The reason text of the close frame, as [`WsSession::close_code`]
    /// (empty when the frame had none). It is for people, not a stable
    /// interface.
    pub fn close_reason(&self) -> Option<&str> {
        self.close.as_ref().map(|(_, reason)| reason.as_str())
    }
}

/// Reads `socket` while `reading` says so, sending each message (and the
/// error that ends the socket) to `messages`, until the socket ends or the
/// session is dropped. Reading flushes the pongs (and the close echo)
/// tungstenite queues.
async fn read_socket<S>(
    mut socket: WebSocketStream<S>,
    messages: mpsc::UnboundedSender<Result<Message, WsError>>,
    mut reading: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    loop {
        if !*reading.borrow_and_update() {
            // Paused; a dropped session ends the wait with an error.
            if reading.changed().await.is_err() {
                return;
            }
            continue;
        }
        let item = tokio::select! {
            item = socket.next() => item,
            changed = reading.changed() => {
                if changed.is_err() {
                    return;
                }
                continue;
            }
        };
        let Some(item) = item else { return };
        let failed = item.is_err();
        if messages.send(item).is_err() || failed {
            return;
        }
    }
}

/// Decodes a text message: one JSON envelope or signal object.
fn decode_text(text: &str) -> Result<Received, SessionError> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| {
        SessionError::Malformed(format!("a text message that is not JSON ({e}): {text}"))
    })?;
    decode_json(&value).map_err(|e| SessionError::Malformed(e.to_string()))
}

/// How a failure of the socket reads to the suite: the server breaking the
/// framing is malformed, anything else a broken connection.
fn session_error(error: WsError) -> SessionError {
    match error {
        WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => {
            SessionError::Broken("the connection ended without a close frame".into())
        }
        WsError::Protocol(_) | WsError::Capacity(_) | WsError::Utf8(_) => {
            SessionError::Malformed(error.to_string())
        }
        other => SessionError::Broken(other.to_string()),
    }
}

impl Session for WsSession {
    /// The next text message, decoded, or a ping as a heartbeat; `Ok(None)`
    /// at the server's close frame or the end of the connection. Resumes
    /// reading after [`Session::pause`].
    fn next(&mut self) -> BoxFuture<'_, Result<Option<Received>, SessionError>> {
        Box::pin(async move {
            self.reading
                .send_if_modified(|reading| !std::mem::replace(reading, true));
            while !self.ended {
                let message = match self.messages.recv().await {
                    Some(Ok(message)) => message,
                    Some(Err(error)) => {
                        self.ended = true;
                        return Err(session_error(error));
                    }
                    None => {
                        self.ended = true;
                        break;
                    }
                };
                match message {
                    Message::Text(text) => return decode_text(&text).map(Some),
                    Message::Ping(_) => return Ok(Some(Received::Heartbeat)),
                    Message::Binary(data) => {
                        return Err(SessionError::Malformed(format!(
                            "a binary message of {} bytes: the contract sends text messages only",
                            data.len()
                        )))
                    }
                    Message::Close(frame) => {
                        self.close = Some(frame.map_or((NO_STATUS, String::new()), |frame| {
                            (frame.code.into(), frame.reason.to_string())
                        }));
                        self.ended = true;
                    }
                    Message::Pong(_) | Message::Frame(_) => {}
                }
            }
            Ok(None)
        })
    }

    /// Stops the socket being read, pongs included, until the next
    /// [`Session::next`]: the server sees a slow consumer.
    fn pause(&mut self) {
        self.reading
            .send_if_modified(|reading| std::mem::replace(reading, false));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::received::{ReceivedSignal, SignalKind};

    #[test]
    fn a_refused_handshake_carries_the_json_error_code() {
        assert_eq!(
            OpenError::refused(400, br#"{"error":"bad_cursor","message":"no"}"#),
            OpenError::Refused {
                status: 400,
                code: Some("bad_cursor".into())
            }
        );
        assert_eq!(
            OpenError::refused(426, b"Upgrade Required"),
            OpenError::Refused {
                status: 426,
                code: None
            }
        );
        assert_eq!(
            OpenError::refused(503, b""),
            OpenError::Refused {
                status: 503,
                code: None
            }
        );
    }

    #[test]
    fn text_messages_decode_as_ndjson_lines_do() {
        assert_eq!(
            decode_text(r#"{"signal":"lagged","cursor":"e-9"}"#).unwrap(),
            Received::Signal(ReceivedSignal {
                kind: SignalKind::Lagged,
                cursor: Some("e-9".into()),
                retry_ms: None,
            })
        );
        let Received::Event(event) = decode_text(r#"{"id":"e-1","data":"a\r\nb"}"#).unwrap() else {
            panic!("an event");
        };
        assert_eq!(
            (event.id.as_str(), event.data.as_slice()),
            ("e-1", &b"a\r\nb"[..])
        );
        // An empty message is no heartbeat: pings are.
        for text in ["", "{}", "[1]", "not json"] {
            assert!(
                matches!(decode_text(text), Err(SessionError::Malformed(_))),
                "{text}"
            );
        }
    }

    #[test]
    fn the_largest_event_fits_a_message() {
        let config = config();
        let largest = 6 * (1 << 20) + 1024;
        assert!(config.max_message_size.is_some_and(|max| max >= largest));
        assert!(config.max_frame_size.is_some_and(|max| max >= largest));
    }
}
