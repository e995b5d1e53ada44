//! HTTP/2 server push per the wire contract: `GET …/channels/{name}/push`
//! holds a parent stream of NDJSON signals and heartbeats, and each event
//! arrives as a `PUSH_PROMISE` on it for `GET …/channels/{name}/messages/{id}`,
//! followed by the pushed response, which holds the event's JSON envelope.
//! Where push is not possible (HTTP/1.1, or a client that sent
//! `SETTINGS_ENABLE_PUSH = 0`) the parent stream carries the envelopes inline
//! as `/stream` does, and the `Push-Mode` response header says which of the
//! two the server chose ([`PushMode`]).
//!
//! [`open`] gives a [`PushSession`], which [`WireClient`](super::WireClient)
//! uses for [`Technique::Http2Push`](push_core::Technique::Http2Push).
//!
//! ```no_run
//! use conformance::clients::push::{self, PushMode};
//! use conformance::{HttpClient, Protocol, Session, StartAt};
//!
//! # async fn run() -> Result<(), conformance::OpenError> {
//! let http = HttpClient::new("http://127.0.0.1:8080", Protocol::H2c);
//! let mut session = push::open(&http, "news", StartAt::Earliest, PushMode::Promise).await?;
//! // Each event was promised at its own URL, and its pushed response matched
//! // a plain GET of that URL byte for byte.
//! while let Ok(Some(item)) = session.next().await {
//!     println!("{item:?}");
//! }
//! # Ok(())
//! # }
//! ```
//!
//! # Wire order
//!
//! h2 hands a client the pushed streams and the parent stream's DATA in two
//! queues with no order between them, yet the contract orders them: a
//! promise goes out before any signal line that follows its event. So the
//! client walks the frame headers of the bytes its connection reads and
//! notes, for the parent stream, each DATA frame, `PUSH_PROMISE` and end in
//! the order they arrived; [`Session::next`] takes from the two queues in
//! that order.
//!
//! # What each promise must be
//!
//! A `GET` of `http://{authority}{prefix}/channels/{name}/messages/{id}`,
//! with the parent request's authority and the id of the event it pushes;
//! the pushed response `200`, `application/json`, one envelope; and byte for
//! byte what a plain `GET` of the promised URL answers. That `GET` goes out on
//! the same connection as soon as the promise arrives; when it answers `410`
//! or `404` the event is no longer retained and the pushed body is taken as
//! it is. Anything else is [`SessionError::Malformed`], saying what differs.
//!
//! # Flow control
//!
//! The bytes of the parent stream and of the pushed streams are released to
//! the server's flow-control windows as [`Session::next`] consumes them, not
//! before: a session that is not read closes its windows, so the server has
//! to hold the rest, up to its bound, and then lag it. The connection window
//! is 4 MiB, so that the events promised ahead of the one being read, each
//! holding up to its 64 KiB stream window, cannot starve it. The plain
//! `GET`s are read as they arrive and never hold a window.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{ready, Context, Poll, Waker};

use bytes::{Bytes, BytesMut};
use futures_util::future::{poll_fn, BoxFuture};
use h2::client::{PushPromises, PushedResponseFuture, SendRequest};
use h2::RecvStream;
use http::{HeaderMap, Method, Request, StatusCode, Uri};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::target::Target;
use super::{open_response, start_request, BodySession, Decoder, NdjsonDecoder};
use crate::http::{HttpClient, Protocol};
use crate::received::{decode_json, Received, ReceivedEvent};
use crate::transport::{OpenError, Session, SessionError, StartAt};

/// The response header that names the mode of a `/push` stream.
const MODE_HEADER: &str = "push-mode";

/// The parent stream: the first a fresh connection opens.
const PARENT_STREAM: u32 = 1;

/// The connection-level receive window: room for 16 pushed streams in flight
/// at their full 64 KiB stream windows, the parent stream, and the small
/// pushed responses completed ahead of the one being read. (h2 sizes its
/// allowance for small unread DATA frames, such as the heartbeats a paused
/// session piles up, from it too.)
const CONNECTION_WINDOW: u32 = 4 << 20;

/// How a `/push` stream carries events, as its `Push-Mode` header says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PushMode {
    /// `promise`: each event is a pushed response, the parent stream carries
    /// signals and heartbeats only. HTTP/2 with push enabled.
    Promise,
    /// `inline`: the parent stream carries the envelopes as `/stream` does.
    /// HTTP/1.1, or HTTP/2 with `SETTINGS_ENABLE_PUSH = 0`.
    Inline,
}

impl PushMode {
    /// The header value: `promise` or `inline`.
    pub fn as_str(self) -> &'static str {
        match self {
            PushMode::Promise => "promise",
            PushMode::Inline => "inline",
        }
    }
}

impl fmt::Display for PushMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Opens a `/push` subscription to `channel` from `start` on `http`'s server,
/// expecting `mode`.
///
/// Over HTTP/1.1 it is a `GET` on `http`'s pool, read as NDJSON; `mode` must
/// be [`PushMode::Inline`]. Over h2c it opens a connection of its own, with
/// `SETTINGS_ENABLE_PUSH` set to 1 for [`PushMode::Promise`] and to 0 for
/// [`PushMode::Inline`], so that the pushed streams and their flow control
/// belong to this subscription alone.
///
/// # Errors
///
/// [`OpenError::Refused`] with the status and the JSON error code when the
/// server answers anything but `200`; [`OpenError::Failed`] when the base URL
/// is not `http://` (over h2c), the connection or the exchange fails, the
/// answer's `Push-Mode` header is not `mode`, or `mode` is
/// [`PushMode::Promise`] over HTTP/1.1, which cannot carry push.
pub async fn open(
    http: &HttpClient,
    channel: &str,
    start: StartAt,
    mode: PushMode,
) -> Result<PushSession, OpenError> {
    match (http.protocol(), mode) {
        (Protocol::Http1, PushMode::Inline) => {
            let path = format!("/channels/{channel}/push");
            let response = open_response(http, &path, &start).await?;
            let url = format!("{}{path}", http.base());
            check_mode(response.headers(), mode, &url)?;
            Ok(PushSession {
                mode,
                carrier: Carrier::Http1(BodySession::new(response, NdjsonDecoder::default())),
            })
        }
        (Protocol::Http1, PushMode::Promise) => Err(OpenError::Failed(
            "HTTP/1.1 cannot carry server push: ask for PushMode::Inline, or use an h2c HttpClient"
                .into(),
        )),
        (Protocol::H2c, mode) => open_h2(http.base(), channel, &start, mode).await,
    }
}

/// Fails unless `headers` name `mode`.
fn check_mode(headers: &HeaderMap, mode: PushMode, url: &str) -> Result<(), OpenError> {
    let got = headers.get(MODE_HEADER);
    if got.is_some_and(|value| {
        value
            .as_bytes()
            .eq_ignore_ascii_case(mode.as_str().as_bytes())
    }) {
        return Ok(());
    }
    let why = match mode {
        PushMode::Promise => "the client keeps push enabled on HTTP/2",
        PushMode::Inline => "push is off: HTTP/1.1, or SETTINGS_ENABLE_PUSH = 0 on HTTP/2",
    };
    let got = got.map_or_else(
        || format!("no {MODE_HEADER} header"),
        |value| {
            format!(
                "{MODE_HEADER}: {}",
                String::from_utf8_lossy(value.as_bytes())
            )
        },
    );
    Err(OpenError::Failed(format!(
        "GET {url} answered 200 with {got}, where {MODE_HEADER}: {mode} was expected ({why})"
    )))
}

async fn open_h2(
    base: &str,
    channel: &str,
    start: &StartAt,
    mode: PushMode,
) -> Result<PushSession, OpenError> {
    let (query, headers) = start_request(start);
    let target = Target::new(base, channel, "push", &query)?;
    let url = target.url("http");
    let failed = |what: &str, e: h2::Error| OpenError::Failed(format!("{what} {url}: {e}"));
    let order = Arc::new(FrameOrder::default());
    let io = Recorded {
        io: target.connect().await?,
        walker: FrameWalker::new(PARENT_STREAM),
        order: order.clone(),
    };
    let (sender, connection) = h2::client::Builder::new()
        .enable_push(mode == PushMode::Promise)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .handshake::<_, Bytes>(io)
        .await
        .map_err(|e| failed("the HTTP/2 handshake failed with", e))?;
    let connection = OwnedTask(tokio::spawn(async move {
        // Its end reaches every stream as an error.
        let _ = connection.await;
    }));
    let mut sender = sender
        .ready()
        .await
        .map_err(|e| failed("the HTTP/2 connection broke before the GET of", e))?;
    let mut request = Request::get(&url);
    for (name, value) in &headers {
        request = request.header(*name, value.as_str());
    }
    let request = request
        .body(())
        .map_err(|e| OpenError::Failed(format!("cannot build the GET for {url}: {e}")))?;
    let (mut response, _) = sender
        .send_request(request, true)
        .map_err(|e| failed("cannot send the GET of", e))?;
    let opened = response.stream_id().as_u32();
    if opened != PARENT_STREAM {
        // The frame walker was told the parent's id before the request left.
        return Err(OpenError::Failed(format!(
            "the GET of {url} went out on stream {opened}, where the client expected stream {PARENT_STREAM} of a fresh connection"
        )));
    }
    let promises = response.push_promises();
    let response = response
        .await
        .map_err(|e| failed("no answer to the GET of", e))?;
    let (parts, mut parent) = response.into_parts();
    if parts.status != StatusCode::OK {
        let body = read_body(&mut parent).await.unwrap_or_default();
        return Err(OpenError::refused(parts.status.as_u16(), &body));
    }
    check_mode(&parts.headers, mode, &url)?;
    let (promised, promised_rx) = mpsc::unbounded_channel();
    let watcher = OwnedTask(tokio::spawn(watch_promises(promises, sender, promised)));
    Ok(PushSession {
        mode,
        carrier: Carrier::H2(Box::new(H2Session {
            parent,
            headers: parts.headers,
            order,
            promised: promised_rx,
            expected: Arc::new(Expected {
                authority: target.authority,
                prefix: target.prefix,
                channel: channel.to_owned(),
            }),
            mode,
            decoder: NdjsonDecoder::default(),
            queue: VecDeque::new(),
            frame: None,
            checking: None,
            ended: false,
            _watcher: watcher,
            _connection: connection,
        })),
    })
}

/// A `/push` subscription: a [`Session`] of the parent stream's lines and,
/// in [`PushMode::Promise`], of the pushed events, each checked as the
/// module docs say, in the order the wire carried them.
///
/// Nothing is read from the server's flow-control windows but what
/// [`Session::next`] consumes, so a session that is not read is a slow
/// consumer to the server. Dropping it closes its connection (over h2c).
pub struct PushSession {
    mode: PushMode,
    carrier: Carrier,
}

enum Carrier {
    Http1(BodySession<NdjsonDecoder>),
    H2(Box<H2Session>),
}

impl PushSession {
    /// The mode the server answered with, which is the one asked for.
    pub fn mode(&self) -> PushMode {
        self.mode
    }
}

impl Session for PushSession {
    /// The next line of the parent stream, decoded, or the next pushed
    /// event, in wire order; `Ok(None)` once the parent stream ended.
    fn next(&mut self) -> BoxFuture<'_, Result<Option<Received>, SessionError>> {
        match &mut self.carrier {
            Carrier::Http1(session) => session.next(),
            Carrier::H2(session) => Box::pin(session.next_item()),
        }
    }

    /// The parent stream's response headers.
    fn headers(&self) -> Option<&HeaderMap> {
        match &self.carrier {
            Carrier::Http1(session) => session.headers(),
            Carrier::H2(session) => Some(&session.headers),
        }
    }
}

/// What the promises of one subscription must name.
#[derive(Debug)]
struct Expected {
    /// The parent request's `host:port`.
    authority: String,
    /// The base URL's path prefix.
    prefix: String,
    channel: String,
}

impl Expected {
    /// The path of the event `id`'s own URL.
    fn message_path(&self, id: &str) -> String {
        format!("{}/channels/{}/messages/{id}", self.prefix, self.channel)
    }
}

/// A promise as h2 handed it over, with the plain `GET` of its URL under way.
struct Promised {
    request: Request<()>,
    response: PushedResponseFuture,
    plain: OwnedTask<Result<Plain, String>>,
}

/// A plain `GET` of a promised URL, read whole.
struct Plain {
    status: StatusCode,
    body: Bytes,
}

/// A task that ends with its owner.
struct OwnedTask<T>(JoinHandle<T>);

impl<T> Drop for OwnedTask<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl<T> Future for OwnedTask<T> {
    type Output = Result<T, tokio::task::JoinError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx)
    }
}

/// Hands over each promise as h2 receives it, with a plain `GET` of its URL
/// sent at once on the same connection, until the parent stream ends or the
/// session is dropped.
async fn watch_promises(
    mut promises: PushPromises,
    sender: SendRequest<Bytes>,
    out: mpsc::UnboundedSender<Result<Promised, SessionError>>,
) {
    loop {
        let next = tokio::select! {
            next = promises.push_promise() => next,
            () = out.closed() => return,
        };
        let promised = match next {
            None => return,
            Some(Err(e)) => Err(SessionError::Broken(format!(
                "receiving push promises failed: {e}"
            ))),
            Some(Ok(promise)) => {
                let (request, response) = promise.into_parts();
                let plain = tokio::spawn(fetch_plain(sender.clone(), request.uri().clone()));
                Ok(Promised {
                    request,
                    response,
                    plain: OwnedTask(plain),
                })
            }
        };
        let failed = promised.is_err();
        if out.send(promised).is_err() || failed {
            return;
        }
    }
}

/// `GET uri` on the connection of `sender`, read whole.
async fn fetch_plain(sender: SendRequest<Bytes>, uri: Uri) -> Result<Plain, String> {
    let mut sender = sender.ready().await.map_err(|e| e.to_string())?;
    let request = Request::get(uri).body(()).map_err(|e| e.to_string())?;
    let (response, _) = sender
        .send_request(request, true)
        .map_err(|e| e.to_string())?;
    let (parts, mut body) = response.await.map_err(|e| e.to_string())?.into_parts();
    let body = read_body(&mut body).await.map_err(|e| e.to_string())?;
    Ok(Plain {
        status: parts.status,
        body,
    })
}

/// Reads `body` to its end, releasing its flow-control window as it goes.
async fn read_body(body: &mut RecvStream) -> Result<Bytes, h2::Error> {
    let mut all = BytesMut::new();
    while let Some(chunk) = body.data().await {
        let chunk = chunk?;
        body.flow_control().release_capacity(chunk.len())?;
        all.extend_from_slice(&chunk);
    }
    Ok(all.freeze())
}

/// The h2c side of a [`PushSession`].
struct H2Session {
    parent: RecvStream,
    headers: HeaderMap,
    order: Arc<FrameOrder>,
    promised: mpsc::UnboundedReceiver<Result<Promised, SessionError>>,
    expected: Arc<Expected>,
    mode: PushMode,
    decoder: NdjsonDecoder,
    queue: VecDeque<Received>,
    /// The parent frame being consumed, kept when a `next` is dropped.
    frame: Option<ParentFrame>,
    /// The promise being checked, likewise.
    checking: Option<BoxFuture<'static, Result<ReceivedEvent, SessionError>>>,
    ended: bool,
    _watcher: OwnedTask<()>,
    _connection: OwnedTask<()>,
}

impl H2Session {
    async fn next_item(&mut self) -> Result<Option<Received>, SessionError> {
        let next = self.advance().await;
        if next.is_err() {
            // What follows a broken item is out of step with the wire.
            self.ended = true;
            self.queue.clear();
        }
        next
    }

    /// Consumes the parent stream's frames in wire order until an item is
    /// decoded. Every await leaves the session where a dropped call can
    /// resume it.
    async fn advance(&mut self) -> Result<Option<Received>, SessionError> {
        loop {
            if let Some(item) = self.queue.pop_front() {
                return Ok(Some(item));
            }
            if let Some(checking) = &mut self.checking {
                let event = checking.await;
                self.checking = None;
                return event.map(|event| Some(Received::Event(event)));
            }
            if self.ended {
                return Ok(None);
            }
            let frame = match self.frame {
                Some(frame) => frame,
                None => match self.order.next().await {
                    Some(frame) => *self.frame.insert(frame),
                    None => return Err(self.broken("the connection ended").await),
                },
            };
            match frame {
                ParentFrame::Data => {
                    let chunk = self.parent.data().await;
                    self.frame = None;
                    let chunk =
                        match chunk {
                            Some(Ok(chunk)) => chunk,
                            Some(Err(e)) => {
                                return Err(SessionError::Broken(format!(
                                    "the parent stream broke: {e}"
                                )))
                            }
                            None => return Err(SessionError::Broken(
                                "the parent stream ended before a DATA frame the connection read"
                                    .into(),
                            )),
                        };
                    self.parent
                        .flow_control()
                        .release_capacity(chunk.len())
                        .map_err(|e| {
                            SessionError::Broken(format!("the parent stream broke: {e}"))
                        })?;
                    self.decoder.feed(&chunk, &mut self.queue)?;
                }
                ParentFrame::Promise(id) => {
                    let promised = self.promised.recv().await;
                    self.frame = None;
                    if self.mode == PushMode::Inline {
                        return Err(SessionError::Malformed(format!(
                            "a PUSH_PROMISE of stream {id} on a push-mode: inline stream, from a client that sent SETTINGS_ENABLE_PUSH = 0"
                        )));
                    }
                    self.checking =
                        Some(Box::pin(check_promise(id, promised, self.expected.clone())));
                }
                ParentFrame::End => {
                    self.frame = None;
                    self.ended = true;
                    self.decoder.finish()?;
                }
                ParentFrame::Reset => {
                    self.frame = None;
                    return Err(self.broken("the server reset the parent stream").await);
                }
            }
        }
    }

    /// Why the parent stream stopped short, as h2 tells it.
    async fn broken(&mut self, what: &str) -> SessionError {
        match self.parent.data().await {
            Some(Err(e)) => SessionError::Broken(format!("{what}: {e}")),
            _ => SessionError::Broken(what.to_owned()),
        }
    }
}

/// Checks the promise of stream `id` and its pushed response as the module
/// docs say, and decodes its event.
async fn check_promise(
    id: u32,
    promised: Option<Result<Promised, SessionError>>,
    expected: Arc<Expected>,
) -> Result<ReceivedEvent, SessionError> {
    let malformed = |message: String| Err(SessionError::Malformed(message));
    let Promised {
        request,
        response,
        plain,
    } = match promised {
        Some(promised) => promised?,
        None => {
            return malformed(format!(
                "the connection read a PUSH_PROMISE of stream {id}, but h2 refused it: a promised request must be a GET with valid headers"
            ))
        }
    };
    let handed = response.stream_id().as_u32();
    if handed != id {
        return malformed(format!(
            "the connection read a PUSH_PROMISE of stream {id} next, but h2 handed over the promise of stream {handed}: h2 refused a promise (a promised request must be a GET with valid headers)"
        ));
    }
    let uri = request.uri().clone();
    if request.method() != Method::GET {
        return malformed(format!(
            "a PUSH_PROMISE of {} {uri}: each event is promised as a GET of its URL",
            request.method()
        ));
    }
    let authority = uri.authority().map(|a| a.as_str());
    if uri.scheme_str() != Some("http") || authority != Some(expected.authority.as_str()) {
        return malformed(format!(
            "a PUSH_PROMISE of {uri}: the promised URL takes the scheme and authority of the parent request, http://{}",
            expected.authority
        ));
    }
    let (parts, mut body) = response
        .await
        .map_err(|e| {
            SessionError::Broken(format!(
                "the pushed response for {uri} (stream {id}) failed: {e}"
            ))
        })?
        .into_parts();
    if parts.status != StatusCode::OK {
        return malformed(format!(
            "the pushed response for {uri} is {}, where a pushed event is 200",
            parts.status
        ));
    }
    let content_type = parts
        .headers
        .get(http::header::CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let essence = content_type
        .as_deref()
        .and_then(|v| v.split(';').next())
        .map(str::trim);
    if !essence.is_some_and(|v| v.eq_ignore_ascii_case("application/json")) {
        return malformed(format!(
            "the pushed response for {uri} has content-type {content_type:?}, where a pushed event is application/json"
        ));
    }
    let pushed = read_body(&mut body).await.map_err(|e| {
        SessionError::Broken(format!(
            "the pushed response for {uri} (stream {id}) broke: {e}"
        ))
    })?;
    let event = decode_event(&pushed).map_err(|why| {
        SessionError::Malformed(format!(
            "the pushed response for {uri} is not an event's envelope ({why}): {}",
            show(&pushed)
        ))
    })?;
    let path = expected.message_path(&event.id);
    if uri.path() != path || uri.query().is_some() {
        return malformed(format!(
            "a PUSH_PROMISE of {uri} whose pushed response is event {}: each event is promised at its own URL, http://{}{path}",
            event.id, expected.authority
        ));
    }
    let plain = match plain.await {
        Ok(Ok(plain)) => plain,
        Ok(Err(e)) => {
            return Err(SessionError::Broken(format!(
                "the plain GET of {uri}, to compare with its pushed response, failed: {e}"
            )))
        }
        Err(e) => {
            return Err(SessionError::Broken(format!(
                "the plain GET of {uri} did not finish: {e}"
            )))
        }
    };
    match plain.status {
        StatusCode::OK if plain.body != pushed => malformed(format!(
            "the pushed response for {uri} differs from a plain GET of that URL, which it must match byte for byte: pushed {}, GET answered {}",
            show(&pushed),
            show(&plain.body)
        )),
        // No longer retained: nothing left to compare with.
        StatusCode::OK | StatusCode::GONE | StatusCode::NOT_FOUND => Ok(event),
        status => malformed(format!(
            "a plain GET of the promised {uri} answered {status}, where a retained event answers 200 and an evicted one 410"
        )),
    }
}

/// Decodes a pushed body: one JSON envelope.
fn decode_event(body: &[u8]) -> Result<ReceivedEvent, String> {
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    match decode_json(&value).map_err(|e| e.to_string())? {
        Received::Event(event) => Ok(event),
        other => Err(format!("a {other:?}, which belongs on the parent stream")),
    }
}

/// Bytes for a message: lossy text, cut at 200 characters.
fn show(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    match text.char_indices().nth(200) {
        Some((at, _)) => format!("{:?}… ({} bytes)", &text[..at], bytes.len()),
        None => format!("{text:?}"),
    }
}

/// What the wire said of the parent stream, in the order it said it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ParentFrame {
    /// A DATA frame that h2 hands over as a chunk: one with data, or with
    /// `END_STREAM` (h2 drops an empty DATA frame without it).
    Data,
    /// A `PUSH_PROMISE`, with the promised stream's id.
    Promise(u32),
    /// `END_STREAM`, on DATA (after its [`ParentFrame::Data`]) or HEADERS.
    End,
    /// `RST_STREAM`.
    Reset,
}

/// The parent stream's frames as the connection reads them, for the session
/// to take in that order.
#[derive(Default)]
struct FrameOrder {
    state: Mutex<OrderState>,
}

#[derive(Default)]
struct OrderState {
    frames: VecDeque<ParentFrame>,
    /// The connection stopped reading: nothing more will come.
    closed: bool,
    waker: Option<Waker>,
}

impl FrameOrder {
    fn lock(&self) -> std::sync::MutexGuard<'_, OrderState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Lets `walk` append frames, waking the session if it did.
    fn record(&self, walk: impl FnOnce(&mut VecDeque<ParentFrame>)) {
        let mut state = self.lock();
        let before = state.frames.len();
        walk(&mut state.frames);
        if state.frames.len() > before {
            if let Some(waker) = state.waker.take() {
                waker.wake();
            }
        }
    }

    fn close(&self) {
        let mut state = self.lock();
        state.closed = true;
        if let Some(waker) = state.waker.take() {
            waker.wake();
        }
    }

    /// The next frame; `None` once the connection stopped reading and every
    /// frame was taken.
    async fn next(&self) -> Option<ParentFrame> {
        poll_fn(|cx| {
            let mut state = self.lock();
            if let Some(frame) = state.frames.pop_front() {
                return Poll::Ready(Some(frame));
            }
            if state.closed {
                return Poll::Ready(None);
            }
            state.waker = Some(cx.waker().clone());
            Poll::Pending
        })
        .await
    }
}

/// The connection's IO, noting the parent stream's frames as they are read.
struct Recorded<T> {
    io: T,
    walker: FrameWalker,
    order: Arc<FrameOrder>,
}

impl<T: AsyncRead + Unpin> AsyncRead for Recorded<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let before = buf.filled().len();
        let room = buf.remaining() > 0;
        let read = ready!(Pin::new(&mut this.io).poll_read(cx, buf));
        match &read {
            Ok(()) if buf.filled().len() > before => {
                let walker = &mut this.walker;
                let bytes = &buf.filled()[before..];
                this.order.record(|frames| walker.walk(bytes, frames));
            }
            // End of file.
            Ok(()) if room => this.order.close(),
            Ok(()) => {}
            Err(_) => this.order.close(),
        }
        Poll::Ready(read)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Recorded<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

impl<T> Drop for Recorded<T> {
    fn drop(&mut self) {
        self.order.close();
    }
}

/// Frame types and flags of RFC 9113, section 6.
const DATA: u8 = 0x0;
const HEADERS: u8 = 0x1;
const RST_STREAM: u8 = 0x3;
const PUSH_PROMISE: u8 = 0x5;
const END_STREAM: u8 = 0x1;
const PADDED: u8 = 0x8;

/// Walks the frames of the bytes a client reads (the server sends no
/// preface string: its first frame is SETTINGS), noting the parent stream's
/// frames. A frame may be split across reads anywhere.
struct FrameWalker {
    parent: u32,
    header: [u8; 9],
    header_len: usize,
    /// Payload bytes of the current frame not yet walked; 0 between frames.
    remaining: usize,
    /// The first payload bytes that `pending` needs.
    prefix: [u8; 5],
    prefix_len: usize,
    pending: Option<Pending>,
}

/// A parent frame whose mark depends on its first payload bytes.
#[derive(Clone, Copy)]
enum Pending {
    /// A padded DATA frame: whether it holds data depends on its pad length.
    PaddedData { length: usize, end: bool },
    /// A `PUSH_PROMISE`: the promised id follows the optional pad length.
    Promise { padded: bool },
}

impl Pending {
    fn needs(self) -> usize {
        match self {
            Pending::PaddedData { .. } => 1,
            Pending::Promise { padded } => usize::from(padded) + 4,
        }
    }
}

impl FrameWalker {
    fn new(parent: u32) -> Self {
        FrameWalker {
            parent,
            header: [0; 9],
            header_len: 0,
            remaining: 0,
            prefix: [0; 5],
            prefix_len: 0,
            pending: None,
        }
    }

    /// Walks the next bytes read, appending the parent stream's frames.
    fn walk(&mut self, mut bytes: &[u8], out: &mut VecDeque<ParentFrame>) {
        while !bytes.is_empty() {
            if self.remaining == 0 {
                let take = (9 - self.header_len).min(bytes.len());
                self.header[self.header_len..self.header_len + take]
                    .copy_from_slice(&bytes[..take]);
                self.header_len += take;
                bytes = &bytes[take..];
                if self.header_len == 9 {
                    self.header_len = 0;
                    self.start_frame(out);
                }
                continue;
            }
            let take = self.remaining.min(bytes.len());
            if let Some(pending) = self.pending {
                let want = (pending.needs() - self.prefix_len).min(take);
                self.prefix[self.prefix_len..self.prefix_len + want]
                    .copy_from_slice(&bytes[..want]);
                self.prefix_len += want;
                if self.prefix_len == pending.needs() {
                    self.pending = None;
                    self.finish_frame(pending, out);
                }
            }
            self.remaining -= take;
            bytes = &bytes[take..];
            if self.remaining == 0 {
                // Too short for what its flags announce: h2 fails the
                // connection on it, so there is nothing to note.
                self.pending = None;
            }
        }
    }

    fn start_frame(&mut self, out: &mut VecDeque<ParentFrame>) {
        let h = self.header;
        let length = usize::from(h[0]) << 16 | usize::from(h[1]) << 8 | usize::from(h[2]);
        let (kind, flags) = (h[3], h[4]);
        let stream = u32::from_be_bytes([h[5], h[6], h[7], h[8]]) & 0x7fff_ffff;
        self.remaining = length;
        self.prefix_len = 0;
        self.pending = None;
        if stream != self.parent {
            return;
        }
        let end = flags & END_STREAM != 0;
        match kind {
            DATA if flags & PADDED != 0 => {
                self.pending = Some(Pending::PaddedData { length, end });
            }
            DATA => mark_data(length > 0, end, out),
            HEADERS if end => out.push_back(ParentFrame::End),
            RST_STREAM => out.push_back(ParentFrame::Reset),
            PUSH_PROMISE => {
                self.pending = Some(Pending::Promise {
                    padded: flags & PADDED != 0,
                });
            }
            _ => {}
        }
        if length == 0 {
            self.pending = None;
        }
    }

    fn finish_frame(&mut self, pending: Pending, out: &mut VecDeque<ParentFrame>) {
        match pending {
            Pending::PaddedData { length, end } => {
                let padding = 1 + usize::from(self.prefix[0]);
                mark_data(length > padding, end, out);
            }
            Pending::Promise { padded } => {
                let at = usize::from(padded);
                let id = u32::from_be_bytes([
                    self.prefix[at],
                    self.prefix[at + 1],
                    self.prefix[at + 2],
                    self.prefix[at + 3],
                ]) & 0x7fff_ffff;
                out.push_back(ParentFrame::Promise(id));
            }
        }
    }
}

/// Notes a DATA frame of the parent: a chunk when h2 hands one over, then
/// the end if it ends the stream.
fn mark_data(has_data: bool, end: bool, out: &mut VecDeque<ParentFrame>) {
    if has_data || end {
        out.push_back(ParentFrame::Data);
    }
    if end {
        out.push_back(ParentFrame::End);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ParentFrame::{Data, End, Promise, Reset};

    fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let length = payload.len() as u32;
        let mut bytes = length.to_be_bytes()[1..].to_vec();
        bytes.extend_from_slice(&[kind, flags]);
        bytes.extend_from_slice(&stream.to_be_bytes());
        bytes.extend_from_slice(payload);
        bytes
    }

    fn promise(stream: u32, promised: u32, padding: Option<u8>) -> Vec<u8> {
        let mut payload = Vec::new();
        if let Some(pad) = padding {
            payload.push(pad);
        }
        payload.extend_from_slice(&promised.to_be_bytes());
        payload.extend_from_slice(b"header block");
        if let Some(pad) = padding {
            payload.extend(std::iter::repeat_n(0, usize::from(pad)));
        }
        let flags = if padding.is_some() { PADDED } else { 0 };
        frame(PUSH_PROMISE, flags | 0x4, stream, &payload)
    }

    /// A server's side of a push subscription on stream 1, with frames of
    /// other streams between, and the parent frames it should be read as.
    fn conversation() -> (Vec<u8>, Vec<ParentFrame>) {
        let frames = [
            frame(0x4, 0, 0, &[0, 3, 0, 0, 0, 100]), // SETTINGS
            frame(HEADERS, 0x4, 1, b"response head"),
            frame(DATA, 0, 1, b"{\"signal\":\"position\"}\n"),
            promise(1, 2, None),
            frame(HEADERS, 0x4, 2, b"pushed head"),
            frame(DATA, END_STREAM, 2, b"{\"id\":\"e-1\"}"),
            promise(1, 4, Some(3)),
            // Another stream's promise and data are not the parent's.
            promise(3, 6, None),
            frame(DATA, 0, 3, &vec![b'x'; 70_000]),
            frame(RST_STREAM, 0, 4, &[0, 0, 0, 8]),
            // Empty DATA without END_STREAM: h2 hands over no chunk.
            frame(DATA, 0, 1, b""),
            frame(DATA, PADDED, 1, &[4, 0, 0, 0, 0]),
            frame(DATA, PADDED, 1, &[1, b'\n', 0]),
            frame(0x8, 0, 1, &[0, 0, 1, 0]), // WINDOW_UPDATE
            // A promised id with the reserved bit set.
            promise(1, 0x8000_0008, None),
            frame(0x9, 0x4, 1, b"continuation"),
            frame(DATA, END_STREAM, 1, b""),
            frame(0x7, 0, 0, &[0; 8]), // GOAWAY
        ];
        let expected = vec![Data, Promise(2), Promise(4), Data, Promise(8), Data, End];
        (frames.concat(), expected)
    }

    fn walk(pieces: &[&[u8]]) -> Vec<ParentFrame> {
        let mut walker = FrameWalker::new(1);
        let mut out = VecDeque::new();
        for piece in pieces {
            walker.walk(piece, &mut out);
        }
        out.into()
    }

    #[test]
    fn notes_the_parent_frames_in_wire_order() {
        let (bytes, expected) = conversation();
        assert_eq!(walk(&[&bytes]), expected);
    }

    #[test]
    fn frames_split_across_reads_at_every_byte() {
        let (bytes, expected) = conversation();
        for at in 0..=bytes.len() {
            let (a, b) = bytes.split_at(at);
            assert_eq!(walk(&[a, b]), expected, "split at {at}");
        }
        let bytes_one_by_one: Vec<&[u8]> = bytes.chunks(1).collect();
        assert_eq!(walk(&bytes_one_by_one), expected);
        let in_threes: Vec<&[u8]> = bytes.chunks(3).collect();
        assert_eq!(walk(&in_threes), expected);
    }

    #[test]
    fn ends_of_the_parent_stream() {
        let trailers = frame(HEADERS, 0x4 | END_STREAM, 1, b"trailers");
        assert_eq!(walk(&[&trailers]), [End]);
        let head_only = frame(HEADERS, 0x4 | END_STREAM, 1, b"");
        assert_eq!(walk(&[&head_only]), [End]);
        let reset = frame(RST_STREAM, 0, 1, &[0, 0, 0, 2]);
        assert_eq!(walk(&[&reset]), [Reset]);
        let last_line = frame(DATA, END_STREAM, 1, b"\n");
        assert_eq!(walk(&[&last_line]), [Data, End]);
        let padded_end = frame(DATA, PADDED | END_STREAM, 1, &[2, 0, 0]);
        assert_eq!(walk(&[&padded_end]), [Data, End]);
        // Other streams end without the parent noticing.
        let other = [
            frame(HEADERS, 0x4 | END_STREAM, 3, b""),
            frame(DATA, END_STREAM, 5, b"x"),
            frame(RST_STREAM, 0, 2, &[0, 0, 0, 8]),
        ]
        .concat();
        assert_eq!(walk(&[&other]), []);
    }

    #[test]
    fn frames_too_short_for_their_flags_note_nothing() {
        // h2 fails the connection on these; the walker must stay in step.
        let bytes = [
            frame(DATA, PADDED, 1, b""),
            frame(PUSH_PROMISE, PADDED, 1, &[0, 0, 0]),
            frame(DATA, 0, 1, b"x"),
        ]
        .concat();
        assert_eq!(walk(&[&bytes]), [Data]);
    }

    #[test]
    fn the_order_hands_frames_over_then_ends() {
        let order = FrameOrder::default();
        order.record(|frames| frames.extend([Data, Promise(2)]));
        order.close();
        let taken = futures_util::FutureExt::now_or_never(async {
            [order.next().await, order.next().await, order.next().await]
        });
        assert_eq!(taken, Some([Some(Data), Some(Promise(2)), None]));
    }

    #[test]
    fn expected_urls_and_modes() {
        let expected = Expected {
            authority: "127.0.0.1:80".into(),
            prefix: "/api".into(),
            channel: "news".into(),
        };
        assert_eq!(
            expected.message_path("e-3"),
            "/api/channels/news/messages/e-3"
        );
        let mut headers = HeaderMap::new();
        headers.insert(MODE_HEADER, "Promise".parse().unwrap());
        assert!(check_mode(&headers, PushMode::Promise, "u").is_ok());
        let Err(OpenError::Failed(why)) = check_mode(&headers, PushMode::Inline, "u") else {
            panic!("inline expected");
        };
        assert!(
            why.contains("push-mode: Promise") && why.contains("push-mode: inline"),
            "{why}"
        );
        assert!(check_mode(&HeaderMap::new(), PushMode::Inline, "u").is_err());
    }

    #[test]
    fn pushed_bodies_are_envelopes() {
        let event = decode_event(br#"{"id":"e-1","event":"n","data":"hi"}"#).unwrap();
        assert_eq!(
            (event.id.as_str(), event.data.as_slice()),
            ("e-1", &b"hi"[..])
        );
        for body in [
            &br#"{"signal":"gap","cursor":"e-1"}"#[..],
            b"",
            b"{\"id\":\"e-1\"}",
            b"[]",
        ] {
            assert!(decode_event(body).is_err(), "{body:?}");
        }
    }
}
