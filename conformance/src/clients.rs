//! Clients of the built-in techniques, as [`Transport`]s.

use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use http::{Method, StatusCode};

use crate::http::{BodyReader, HttpClient};
use crate::received::{decode_json, Received, ReceivedEvent, ReceivedSignal, SignalKind};
use crate::sse::{Parser, SseItem};
use crate::transport::{OpenError, Session, SessionError, Shape, StartAt, Transport};

/// The built-in techniques a server may offer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Technique {
    /// `GET /channels/{name}/poll`.
    Poll,
    /// `GET /channels/{name}/longpoll`.
    LongPoll,
    /// `GET /channels/{name}/sse`.
    Sse,
    /// `GET /channels/{name}/stream`.
    Stream,
}

impl Technique {
    /// Every built-in technique.
    pub const ALL: [Technique; 4] = [
        Technique::Poll,
        Technique::LongPoll,
        Technique::Sse,
        Technique::Stream,
    ];

    /// The technique's path segment and report name.
    pub fn name(self) -> &'static str {
        match self {
            Technique::Poll => "poll",
            Technique::LongPoll => "longpoll",
            Technique::Sse => "sse",
            Technique::Stream => "stream",
        }
    }

    /// Parses a report name.
    pub fn from_name(name: &str) -> Option<Technique> {
        Technique::ALL.into_iter().find(|t| t.name() == name)
    }

    /// A client of this technique on `http`.
    pub fn client(self, http: HttpClient) -> WireClient {
        WireClient {
            technique: self,
            http,
            long_poll_timeout: Duration::from_secs(5),
            poll_interval: Duration::from_millis(20),
        }
    }
}

/// A client of one built-in technique over the wire contract.
#[derive(Clone, Debug)]
pub struct WireClient {
    technique: Technique,
    http: HttpClient,
    long_poll_timeout: Duration,
    poll_interval: Duration,
}

impl WireClient {
    /// Sets the `?timeout=` a long poll asks for (default 5 s).
    pub fn long_poll_timeout(mut self, timeout: Duration) -> Self {
        self.long_poll_timeout = timeout;
        self
    }

    /// Sets the pause between short polls that found nothing (default 20 ms).
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    /// The HTTP client.
    pub fn http(&self) -> &HttpClient {
        &self.http
    }
}

/// The query and headers that ask for `start`.
pub fn start_request(start: &StartAt) -> (String, Vec<(&'static str, String)>) {
    match start {
        StartAt::Now => (String::new(), Vec::new()),
        StartAt::Earliest => ("from=earliest".into(), Vec::new()),
        StartAt::After(id) => (format!("after={}", encode(id)), Vec::new()),
        StartAt::LastEventId(id) => (String::new(), vec![("last-event-id", id.clone())]),
    }
}

/// Percent-encodes a query value: every byte but `A-Z a-z 0-9 - . _ ~`.
pub fn encode(value: &str) -> String {
    let mut out = String::new();
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn path(channel: &str, technique: &str, query: &str) -> String {
    if query.is_empty() {
        format!("/channels/{channel}/{technique}")
    } else {
        format!("/channels/{channel}/{technique}?{query}")
    }
}

impl Transport for WireClient {
    /// The technique's name, with `-h2c` over HTTP/2.
    fn name(&self) -> String {
        match self.http.protocol() {
            crate::http::Protocol::Http1 => self.technique.name().to_owned(),
            crate::http::Protocol::H2c => format!("{}-h2c", self.technique.name()),
        }
    }

    fn shape(&self) -> Shape {
        match self.technique {
            Technique::Poll => Shape::Poll,
            Technique::LongPoll => Shape::LongPoll,
            Technique::Sse | Technique::Stream => Shape::Stream,
        }
    }

    fn open<'a>(
        &'a self,
        channel: &'a str,
        start: StartAt,
    ) -> BoxFuture<'a, Result<Box<dyn Session>, OpenError>> {
        Box::pin(async move {
            match self.technique {
                Technique::Sse | Technique::Stream => self.open_stream(channel, start).await,
                Technique::Poll | Technique::LongPoll => {
                    let mut session = PollSession {
                        client: self.clone(),
                        channel: channel.to_owned(),
                        start: Some(start),
                        cursor: None,
                        queue: VecDeque::new(),
                        ended: false,
                    };
                    // The first request answers errors before anything starts.
                    session.request().await?;
                    Ok(Box::new(session) as Box<dyn Session>)
                }
            }
        })
    }
}

impl WireClient {
    async fn open_stream(
        &self,
        channel: &str,
        start: StartAt,
    ) -> Result<Box<dyn Session>, OpenError> {
        let path = format!("/channels/{channel}/{}", self.technique.name());
        let response = open_response(&self.http, &path, &start).await?;
        Ok(match self.technique {
            Technique::Sse => Box::new(BodySession::new(response, SseDecoder::default())),
            _ => Box::new(BodySession::new(response, NdjsonDecoder::default())),
        })
    }
}

/// Sends `GET path` asking for `start` (the wire contract's query and
/// `Last-Event-ID`), and returns the response once its status is `200`.
///
/// # Errors
///
/// [`OpenError::Refused`] with the status and the JSON error code for any
/// other status; [`OpenError::Failed`] if the exchange fails.
pub async fn open_response(
    http: &HttpClient,
    path: &str,
    start: &StartAt,
) -> Result<http::Response<hyper::body::Incoming>, OpenError> {
    let (query, headers) = start_request(start);
    let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let separator = if path.contains('?') { '&' } else { '?' };
    let path = if query.is_empty() {
        path.to_owned()
    } else {
        format!("{path}{separator}{query}")
    };
    let response = http
        .send(Method::GET, &path, &headers, Bytes::new())
        .await
        .map_err(|e| OpenError::Failed(e.to_string()))?;
    if response.status() == StatusCode::OK {
        return Ok(response);
    }
    let status = response.status().as_u16();
    let body = http_body_util::BodyExt::collect(response.into_body())
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    let code = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.get("error").and_then(|c| c.as_str()).map(str::to_owned));
    Err(OpenError::Refused { status, code })
}

/// Turns the bytes of one streaming response into [`Received`] items.
pub trait Decoder: Send {
    /// Decodes what `bytes` completes, appending the items to `out`.
    ///
    /// # Errors
    ///
    /// [`SessionError::Malformed`] when the bytes break the framing.
    fn feed(&mut self, bytes: &[u8], out: &mut VecDeque<Received>) -> Result<(), SessionError>;

    /// Called when the body ends.
    ///
    /// # Errors
    ///
    /// [`SessionError::Malformed`] when it ended inside a frame.
    fn finish(&mut self) -> Result<(), SessionError> {
        Ok(())
    }
}

/// A [`Session`] over one streaming HTTP response, decoded by a [`Decoder`]:
/// all a custom transport over plain HTTP needs beside its decoder.
pub struct BodySession<D> {
    reader: BodyReader,
    headers: http::HeaderMap,
    decoder: D,
    queue: VecDeque<Received>,
}

impl<D: Decoder> BodySession<D> {
    /// A session reading `response`'s body with `decoder`.
    pub fn new(response: http::Response<hyper::body::Incoming>, decoder: D) -> Self {
        let (parts, body) = response.into_parts();
        BodySession {
            reader: BodyReader::new(body),
            headers: parts.headers,
            decoder,
            queue: VecDeque::new(),
        }
    }
}

impl<D: Decoder> Session for BodySession<D> {
    fn headers(&self) -> Option<&http::HeaderMap> {
        Some(&self.headers)
    }

    fn next(&mut self) -> BoxFuture<'_, Result<Option<Received>, SessionError>> {
        Box::pin(async move {
            loop {
                if let Some(item) = self.queue.pop_front() {
                    return Ok(Some(item));
                }
                match self.reader.chunk().await {
                    Ok(Some(bytes)) => self.decoder.feed(&bytes, &mut self.queue)?,
                    Ok(None) => {
                        self.decoder.finish()?;
                        return Ok(None);
                    }
                    Err(e) => return Err(SessionError::Broken(e.to_string())),
                }
            }
        })
    }
}

/// Decodes `text/event-stream` per the wire contract.
#[derive(Debug, Default)]
pub struct SseDecoder {
    parser: Parser,
}

impl Decoder for SseDecoder {
    fn feed(&mut self, bytes: &[u8], out: &mut VecDeque<Received>) -> Result<(), SessionError> {
        for item in self.parser.feed(bytes) {
            if let Some(received) = decode_sse(item)? {
                out.push_back(received);
            }
        }
        Ok(())
    }
}

/// Decodes one SSE parser item per the wire contract.
pub fn decode_sse(item: SseItem) -> Result<Option<Received>, SessionError> {
    Ok(Some(match item {
        SseItem::Comment(_) => Received::Heartbeat,
        SseItem::Empty {
            last_event_id,
            id_field: true,
        } => Received::Signal(ReceivedSignal {
            kind: SignalKind::Position,
            cursor: Some(last_event_id),
        }),
        // A blank line after a comment, say: nothing happened.
        SseItem::Empty {
            id_field: false, ..
        } => return Ok(None),
        SseItem::Event {
            last_event_id,
            event_type,
            data,
        } => match event_type.strip_prefix("push.") {
            Some("envelope") => {
                let value: serde_json::Value = serde_json::from_str(&data).map_err(|e| {
                    SessionError::Malformed(format!("push.envelope data is not JSON: {e}"))
                })?;
                let event = crate::received::decode_envelope(&value)
                    .map_err(|e| SessionError::Malformed(e.to_string()))?;
                if event.id != last_event_id {
                    return Err(SessionError::Malformed(format!(
                        "push.envelope id {} differs from the SSE id {last_event_id}",
                        event.id
                    )));
                }
                Received::Event(event)
            }
            Some(signal) => {
                let kind = SignalKind::from_name(signal).ok_or_else(|| {
                    SessionError::Malformed(format!("unknown SSE event type push.{signal}"))
                })?;
                let value: serde_json::Value = serde_json::from_str(&data).map_err(|e| {
                    SessionError::Malformed(format!("push.{signal} data is not JSON: {e}"))
                })?;
                Received::Signal(ReceivedSignal {
                    kind,
                    cursor: value
                        .get("cursor")
                        .and_then(|c| c.as_str())
                        .map(str::to_owned),
                })
            }
            None => Received::Event(ReceivedEvent {
                id: last_event_id,
                name: (event_type != "message").then_some(event_type),
                data: data.into_bytes(),
                binary: false,
            }),
        },
    }))
}

/// Decodes NDJSON per the wire contract: one object per line, an empty
/// line as heartbeat.
#[derive(Debug, Default)]
pub struct NdjsonDecoder {
    buffer: Vec<u8>,
}

impl Decoder for NdjsonDecoder {
    fn feed(&mut self, bytes: &[u8], out: &mut VecDeque<Received>) -> Result<(), SessionError> {
        self.buffer.extend_from_slice(bytes);
        while let Some(end) = self.buffer.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.buffer.drain(..=end).collect();
            out.push_back(decode_ndjson_line(&line[..line.len() - 1])?);
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<(), SessionError> {
        if self.buffer.is_empty() {
            Ok(())
        } else {
            Err(SessionError::Malformed(
                "the stream ended inside a line".into(),
            ))
        }
    }
}

/// Decodes one NDJSON line (without its `\n`) per the wire contract.
pub fn decode_ndjson_line(line: &[u8]) -> Result<Received, SessionError> {
    if line.is_empty() {
        return Ok(Received::Heartbeat);
    }
    let value: serde_json::Value = serde_json::from_slice(line).map_err(|e| {
        SessionError::Malformed(format!(
            "line is not JSON ({e}): {}",
            String::from_utf8_lossy(line)
        ))
    })?;
    decode_json(&value).map_err(|e| SessionError::Malformed(e.to_string()))
}

/// A short- or long-poll subscription: repeated requests carrying the cursor.
struct PollSession {
    client: WireClient,
    channel: String,
    start: Option<StartAt>,
    cursor: Option<String>,
    queue: VecDeque<Received>,
    ended: bool,
}

impl PollSession {
    /// One request; queues what it answered. Returns whether it had anything.
    async fn request(&mut self) -> Result<bool, OpenError> {
        let technique = self.client.technique.name();
        let (mut query, headers) = match (&self.cursor, &self.start) {
            (Some(cursor), _) => (format!("after={}", encode(cursor)), Vec::new()),
            (None, Some(start)) => start_request(start),
            (None, None) => (String::new(), Vec::new()),
        };
        let first = self.cursor.is_none();
        if self.client.technique == Technique::LongPoll {
            // The first request answers at once, so that opening reports
            // errors without holding; later ones are held.
            let hold = if first {
                0.0
            } else {
                self.client.long_poll_timeout.as_secs_f64()
            };
            let timeout = format!("timeout={hold}");
            query = if query.is_empty() {
                timeout
            } else {
                format!("{query}&{timeout}")
            };
        }
        let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let answer = self
            .client
            .http
            .fetch(
                Method::GET,
                &path(&self.channel, technique, &query),
                &headers,
                Bytes::new(),
            )
            .await
            .map_err(|e| OpenError::Failed(e.to_string()))?;
        if answer.status != StatusCode::OK {
            return Err(OpenError::Refused {
                status: answer.status.as_u16(),
                code: answer.error_code(),
            });
        }
        let value = answer.json();
        let cursor = value
            .get("cursor")
            .and_then(|c| c.as_str())
            .ok_or_else(|| OpenError::Failed(format!("poll answer without a cursor: {value}")))?
            .to_owned();
        let messages = value
            .get("messages")
            .and_then(|m| m.as_array())
            .ok_or_else(|| OpenError::Failed(format!("poll answer without messages: {value}")))?;
        let gap = value.get("gap").and_then(|g| g.as_bool()) == Some(true);
        let closed = value.get("closed").and_then(|c| c.as_bool()) == Some(true);
        if first {
            self.queue.push_back(Received::Signal(ReceivedSignal {
                kind: SignalKind::Position,
                cursor: None,
            }));
        }
        if gap {
            self.queue.push_back(Received::Signal(ReceivedSignal {
                kind: SignalKind::Gap,
                cursor: None,
            }));
        }
        let mut had = gap || closed;
        for message in messages {
            let event = crate::received::decode_envelope(message)
                .map_err(|e| OpenError::Failed(e.to_string()))?;
            self.queue.push_back(Received::Event(event));
            had = true;
        }
        if closed {
            self.queue.push_back(Received::Signal(ReceivedSignal {
                kind: SignalKind::Closed,
                cursor: Some(cursor.clone()),
            }));
            self.ended = true;
        }
        if !had && !first && self.client.technique == Technique::LongPoll {
            if self.cursor.as_deref().is_some_and(|c| c != cursor) {
                return Err(OpenError::Failed(format!(
                    "a long poll answered no messages but moved the cursor from {:?} to {cursor}",
                    self.cursor
                )));
            }
            self.queue.push_back(Received::Heartbeat);
        }
        self.cursor = Some(cursor);
        Ok(had || first)
    }
}

impl Session for PollSession {
    fn next(&mut self) -> BoxFuture<'_, Result<Option<Received>, SessionError>> {
        Box::pin(async move {
            loop {
                if let Some(item) = self.queue.pop_front() {
                    return Ok(Some(item));
                }
                if self.ended {
                    return Ok(None);
                }
                let had = self.request().await.map_err(|e| match e {
                    OpenError::Refused { status, code } => SessionError::Broken(format!(
                        "a later poll was refused with {status} {}",
                        code.unwrap_or_default()
                    )),
                    OpenError::Failed(message) => SessionError::Broken(message),
                })?;
                if !had && self.client.technique == Technique::Poll {
                    tokio::time::sleep(self.client.poll_interval).await;
                }
            }
        })
    }
}
