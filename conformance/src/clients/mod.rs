//! Clients of the built-in techniques, as [`Transport`]s.
//!
//! [`WireClient`] speaks every built-in [`Technique`] over the wire contract
//! of the repository's PROTOCOL.md. Its pieces are public so that a custom
//! transport can reuse them:
//!
//! - [`open_response`], [`Decoder`] and [`BodySession`]: a subscription
//!   carried by one streaming HTTP response, decoded frame by frame (all a
//!   custom transport over plain HTTP needs beside its decoder);
//! - [`sse`]: the `text/event-stream` decoder and its spec-complete parser;
//! - [`ndjson`]: the newline-delimited JSON decoder;
//! - [`ws`]: WebSocket over HTTP/1.1 (RFC 6455) and HTTP/2 (RFC 8441
//!   extended `CONNECT`), whose [`ws::WsSession`] also tells the close code;
//! - [`push`]: HTTP/2 server push, each pushed event checked against a
//!   plain `GET` of its URL, read in wire order with the parent stream's
//!   signals; inline over HTTP/1.1 or with push disabled;
//! - [`start_request`] and [`encode`]: how a start position is asked for.
//!
//! The poll and long-poll sessions are private: they are plain repeated
//! requests carrying the cursor.
//!
//! ```no_run
//! use conformance::{HttpClient, Protocol, StartAt, Technique, Transport, WireClient};
//!
//! # async fn run() -> Result<(), conformance::OpenError> {
//! let http = HttpClient::new("http://127.0.0.1:8080", Protocol::H2c);
//! let sse = WireClient::new(Technique::Sse, http);
//! assert_eq!(sse.name(), "sse-h2c");
//! let mut session = sse.open("news", StartAt::Earliest).await?;
//! let first = session.next().await;
//! # let _ = first;
//! # Ok(())
//! # }
//! ```

use std::time::Duration;

use futures_util::future::BoxFuture;
use push_core::{Shape, Technique};

use crate::http::{HttpClient, Protocol};
use crate::transport::{OpenError, Session, StartAt, Transport};
use push::PushMode;

mod body;
pub mod ndjson;
mod poll;
pub mod push;
pub mod sse;
mod target;
pub mod ws;

pub use body::{open_response, BodySession, Decoder};
pub use ndjson::{decode_ndjson_line, NdjsonDecoder};
pub use sse::{decode_sse, SseDecoder};

/// A client of one built-in technique over the wire contract.
#[derive(Clone, Debug)]
pub struct WireClient {
    technique: Technique,
    http: HttpClient,
    long_poll_timeout: Duration,
    poll_interval: Duration,
    push_disabled: bool,
}

/// One client per technique of `techniques` per protocol of `protocols`,
/// all against `base`, each long poll asking for `long_poll_timeout`: the
/// matrix the suite checks a server with. With HTTP/2 push over h2c comes
/// its fallback as well, a client that declines push
/// ([`push_disabled`](WireClient::push_disabled)).
///
/// Each client has its own [`HttpClient`], so its own connections, as
/// separate users would: one transport's streams then count against a
/// server's per-connection limit (hyper's is 200 concurrent HTTP/2
/// streams), not the whole run's.
///
/// ```
/// use std::time::Duration;
/// use conformance::clients::every_client;
/// use conformance::{Protocol, Technique, Transport};
///
/// let clients = every_client(
///     "http://127.0.0.1:8080",
///     &[Protocol::Http1, Protocol::H2c],
///     &Technique::ALL,
///     Duration::from_secs(1),
/// );
/// assert_eq!(clients.len(), 2 * Technique::ALL.len() + 1);
/// assert_eq!(clients[Technique::ALL.len()].name(), "poll-h2c");
/// assert_eq!(clients.last().unwrap().name(), "push-h2c-nopush");
/// ```
pub fn every_client(
    base: &str,
    protocols: &[Protocol],
    techniques: &[Technique],
    long_poll_timeout: Duration,
) -> Vec<WireClient> {
    let client = |technique, protocol| {
        WireClient::new(technique, HttpClient::new(base, protocol))
            .long_poll_timeout(long_poll_timeout)
    };
    let mut clients: Vec<WireClient> = protocols
        .iter()
        .flat_map(|&protocol| {
            techniques
                .iter()
                .map(move |&technique| (technique, protocol))
        })
        .map(|(technique, protocol)| client(technique, protocol))
        .collect();
    if protocols.contains(&Protocol::H2c) && techniques.contains(&Technique::Http2Push) {
        clients.push(client(Technique::Http2Push, Protocol::H2c).push_disabled());
    }
    clients
}

impl WireClient {
    /// A client of `technique` on `http`.
    ///
    /// A technique this version of the suite has no client for (the enum
    /// is non-exhaustive) makes every [`Transport::open`] fail with
    /// [`OpenError::Failed`] saying so.
    pub fn new(technique: Technique, http: HttpClient) -> Self {
        WireClient {
            technique,
            http,
            long_poll_timeout: Duration::from_secs(5),
            poll_interval: Duration::from_millis(20),
            push_disabled: false,
        }
    }

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

    /// Makes the HTTP/2 server-push client send `SETTINGS_ENABLE_PUSH = 0`
    /// and expect the fallback, `Push-Mode: inline`, with the envelopes on
    /// the parent stream; it is then named `push-h2c-nopush`. It changes
    /// nothing over HTTP/1.1, which never pushes, nor for other techniques.
    ///
    /// ```
    /// use conformance::{HttpClient, Protocol, Technique, Transport, WireClient};
    ///
    /// let http = HttpClient::new("http://127.0.0.1:8080", Protocol::H2c);
    /// let client = WireClient::new(Technique::Http2Push, http).push_disabled();
    /// assert_eq!(client.name(), "push-h2c-nopush");
    /// ```
    pub fn push_disabled(mut self) -> Self {
        self.push_disabled = true;
        self
    }

    /// The mode a server-push client expects: `promise` over h2c unless
    /// [push is disabled](WireClient::push_disabled), else `inline`.
    fn push_mode(&self) -> PushMode {
        match self.http.protocol() {
            Protocol::H2c if !self.push_disabled => PushMode::Promise,
            _ => PushMode::Inline,
        }
    }

    /// The technique this client speaks.
    pub fn technique(&self) -> Technique {
        self.technique
    }

    /// The HTTP client.
    pub fn http(&self) -> &HttpClient {
        &self.http
    }

    /// Opens a subscription carried by one streaming response, read with
    /// `decoder`.
    async fn open_body<D: Decoder + 'static>(
        &self,
        channel: &str,
        start: &StartAt,
        decoder: D,
    ) -> Result<Box<dyn Session>, OpenError> {
        let path = format!("/channels/{channel}/{}", self.technique.path_segment());
        let response = open_response(&self.http, &path, start).await?;
        Ok(Box::new(BodySession::new(response, decoder)))
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

impl Transport for WireClient {
    /// The technique's [name](Technique::name), with `-h2c` over HTTP/2:
    /// `sse`, `ndjson-h2c`; `push-h2c-nopush` for a server-push client with
    /// [push disabled](WireClient::push_disabled).
    fn name(&self) -> String {
        match self.http.protocol() {
            Protocol::Http1 => self.technique.name().to_owned(),
            Protocol::H2c if self.technique == Technique::Http2Push && self.push_disabled => {
                format!("{}-h2c-nopush", self.technique.name())
            }
            Protocol::H2c => format!("{}-h2c", self.technique.name()),
        }
    }

    fn shape(&self) -> Shape {
        self.technique.shape()
    }

    /// Opens a subscription.
    ///
    /// # Errors
    ///
    /// [`OpenError::Refused`] when the server answers an error status
    /// before anything starts; [`OpenError::Failed`] when the exchange fails
    /// or this version of the suite has no client for the technique.
    fn open<'a>(
        &'a self,
        channel: &'a str,
        start: StartAt,
    ) -> BoxFuture<'a, Result<Box<dyn Session>, OpenError>> {
        Box::pin(async move {
            match self.technique {
                Technique::Sse => self.open_body(channel, &start, SseDecoder::default()).await,
                Technique::Ndjson => {
                    self.open_body(channel, &start, NdjsonDecoder::default())
                        .await
                }
                Technique::Poll | Technique::LongPoll => poll::open(self, channel, start).await,
                Technique::WebSocket => ws::open(&self.http, channel, start)
                    .await
                    .map(|session| Box::new(session) as Box<dyn Session>),
                Technique::Http2Push => push::open(&self.http, channel, start, self.push_mode())
                    .await
                    .map(|session| Box::new(session) as Box<dyn Session>),
                // push-core may list techniques this version has no client for.
                other => Err(OpenError::Failed(format!(
                    "the {other} technique has no built-in client in this version of conformance"
                ))),
            }
        })
    }
}
