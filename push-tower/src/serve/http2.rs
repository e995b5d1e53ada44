//! The HTTP/2 connection loop, on the `h2` crate: hyper cannot push, and a
//! connection cannot be split between hyper and `h2`, so every HTTP/2
//! connection is served here, push or not.
//!
//! Each request runs in a task of its own: the service is called (and
//! dropped if the client resets the stream first), the response body is
//! polled only as the client's flow-control window takes its bytes, a reset
//! drops it, and an extended `CONNECT` answered `2xx` hands its stream to
//! the service as a byte stream (WebSocket over HTTP/2). The connection
//! pings the client on an interval and drops it if a ping goes unanswered
//! for as long, sends `GOAWAY` once it has had no open stream for the idle
//! timeout (as an idle HTTP/1.1 keep-alive connection is closed), and on
//! shutdown sends `GOAWAY` and lets open streams finish.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::future::{poll_fn, Future};
use std::net::SocketAddr;
use std::pin::{pin, Pin};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes};
use h2::server::SendResponse;
use h2::{Ping, Reason, RecvStream, SendStream};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body::Body;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;
use tower_service::Service;

use super::incoming::RequestBody;
use super::limits::{SlotGuard, SubscriptionSlot, Subscriptions};
use super::rewind::Rewind;
use super::server_push::{Pushed, ServerPush, MAX_PUSHES_IN_FLIGHT};
use super::upgrade::{H2Stream, H2Upgrade};
use super::ConnectionHandle;
use super::{BoxError, Served};

/// What the loop allows each client.
#[derive(Clone, Copy, Debug)]
pub(super) struct Limits {
    pub(super) max_concurrent_streams: u32,
    pub(super) max_header_list_bytes: u32,
    /// Requests with more headers are answered `431`.
    pub(super) max_headers: usize,
    /// Streaming subscriptions open at once.
    pub(super) max_subscriptions: usize,
    pub(super) keep_alive: Option<Duration>,
    /// How long the connection may have no open stream.
    pub(super) idle_timeout: Duration,
}

/// Serves one HTTP/2 connection (its preface not yet read) until it closes,
/// fails, or shutdown has drained it.
pub(super) async fn serve_connection<T, S>(
    mut io: Rewind<T>,
    peer: SocketAddr,
    service: S,
    limits: Limits,
    mut shutdown: watch::Receiver<bool>,
) where
    T: AsyncRead + AsyncWrite + Unpin,
    S: Served,
{
    let push_enabled = io.watch_push_setting();
    // The same windows and buffers as hyper's HTTP/2 server.
    let handshake = h2::server::Builder::new()
        .initial_window_size(1024 * 1024)
        .initial_connection_window_size(1024 * 1024)
        .max_send_buffer_size(400 * 1024)
        .max_concurrent_streams(limits.max_concurrent_streams)
        .max_header_list_size(limits.max_header_list_bytes)
        .max_local_error_reset_streams(Some(1024))
        .enable_connect_protocol()
        .handshake::<_, Bytes>(io);
    let mut connection = tokio::select! {
        connection = handshake => match connection {
            Ok(connection) => connection,
            Err(_) => return,
        },
        _ = shutdown.wait_for(|shutting_down| *shutting_down) => return,
    };
    let mut ping_pong = connection.ping_pong();
    let keep_alive = limits.keep_alive.filter(|_| ping_pong.is_some());
    let mut ticks = keep_alive.map(|every| {
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks
    });
    let subscriptions = Subscriptions::new(limits.max_subscriptions);
    // Fires at the earliest moment the connection could have been idle for
    // its timeout; only then is the stream count looked at.
    let idle_timeout = limits.idle_timeout;
    let mut idle = Box::pin(tokio::time::sleep(idle_timeout));
    let mut idled_out = false;
    let mut awaiting_pong = false;
    let mut shutting_down = false;
    let mut shutdown = pin!(async move {
        let _ = shutdown.wait_for(|shutting_down| *shutting_down).await;
    });
    // Polled by hand rather than through `select!`: the connection wakes
    // for every frame its client sends, and this is all it does then.
    poll_fn(move |cx| {
        if !shutting_down && shutdown.as_mut().poll(cx).is_ready() {
            shutting_down = true;
            connection.graceful_shutdown();
        }
        while idle.as_mut().poll(cx).is_ready() {
            let now = tokio::time::Instant::now();
            let next = match subscriptions.idle_since() {
                Some(since) if since + idle_timeout <= now => {
                    if idled_out {
                        // Still open as long after its GOAWAY.
                        return Poll::Ready(());
                    }
                    idled_out = true;
                    if !shutting_down {
                        // Requests already on their way are still taken.
                        shutting_down = true;
                        connection.graceful_shutdown();
                    }
                    now + idle_timeout
                }
                Some(since) => since + idle_timeout,
                None => now + idle_timeout,
            };
            idle.as_mut().reset(next);
        }
        if let (Some(ticks), Some(ping_pong)) = (&mut ticks, &mut ping_pong) {
            if awaiting_pong {
                match ping_pong.poll_pong(cx) {
                    Poll::Ready(Ok(_)) => awaiting_pong = false,
                    Poll::Ready(Err(_)) => return Poll::Ready(()),
                    Poll::Pending => {}
                }
            }
            while ticks.poll_tick(cx).is_ready() {
                if awaiting_pong {
                    // A whole interval without a pong: the client is gone.
                    return Poll::Ready(());
                }
                awaiting_pong = ping_pong.send_ping(Ping::opaque()).is_ok();
            }
        }
        loop {
            match connection.poll_accept(cx) {
                Poll::Ready(Some(Ok((request, respond)))) => {
                    // A client that allows no concurrent streams cannot take
                    // a pushed response: it gets events inline.
                    let pushes = match connection.max_concurrent_send_streams() {
                        0 => None,
                        allowed => push_enabled
                            .get()
                            .then_some(allowed.min(MAX_PUSHES_IN_FLIGHT)),
                    };
                    // Taken here, not in the stream's task, so the connection
                    // is not idle from the moment it accepts the request.
                    let slot = SubscriptionSlot::new(&subscriptions);
                    let stream = Stream {
                        peer,
                        slot,
                        pushes,
                        max_headers: limits.max_headers,
                    };
                    tokio::spawn(serve_stream(request, respond, service.clone(), stream));
                }
                // Closed, drained after GOAWAY, or broken.
                Poll::Ready(Some(Err(_)) | None) => return Poll::Ready(()),
                Poll::Pending => return Poll::Pending,
            }
        }
    })
    .await;
}

/// What a stream gets from its connection.
struct Stream {
    peer: SocketAddr,
    /// The stream's place among its connection's streams.
    slot: (SubscriptionSlot, SlotGuard),
    /// The room for pushed responses when the client accepts push.
    pushes: Option<usize>,
    max_headers: usize,
}

/// Serves one request stream.
async fn serve_stream<S, B>(
    request: Request<RecvStream>,
    mut respond: SendResponse<Bytes>,
    mut service: S,
    stream: Stream,
) where
    S: Service<Request<RequestBody>, Response = Response<B>, Error = Infallible>,
    B: Body,
    B::Error: Into<BoxError>,
{
    let (mut parts, recv) = request.into_parts();
    if parts.headers.len() > stream.max_headers {
        // As hyper answers over HTTP/1.1; the connection serves on.
        let status = StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE;
        let mut head = Response::new(());
        *head.status_mut() = status;
        finish_head(head.headers_mut(), status, Length::Exact(0));
        let _ = respond.send_response(head, true);
        return;
    }
    let mut upgrade = None;
    let mut handle = ConnectionHandle::new(parts.version);
    handle.peer_addr = Some(stream.peer);
    // Freed when this function returns, or with the socket that takes the
    // stream over.
    let (slot, slot_guard) = stream.slot;
    handle.subscription = Some(slot);
    let pushes = stream.pushes;
    let body = match parts.extensions.remove::<h2::ext::Protocol>() {
        Some(protocol) if parts.method == Method::CONNECT => {
            // The socket takes the stream over; the service reads no body.
            parts
                .extensions
                .insert(hyper::ext::Protocol::from(protocol.as_str()));
            let (extension, handover) = H2Upgrade::new();
            handle.upgrade = Some(extension);
            upgrade = Some((handover, recv));
            RequestBody::empty()
        }
        _ => RequestBody::http2(recv, content_length(&parts.headers)),
    };
    let link = pushes
        .filter(|_| parts.method == Method::GET && parts.uri.authority().is_some())
        .map(|limit| {
            let link = ServerPush::new(limit);
            handle.server_push = Some(link.clone());
            link
        });
    parts.extensions.insert(handle);
    let scheme = parts.uri.scheme().cloned();
    let authority = parts.uri.authority().cloned();
    let request = Request::from_parts(parts, body);

    // Call the service; a client that resets the stream first drops the call.
    let call = async {
        poll_fn(|cx| service.poll_ready(cx)).await?;
        service.call(request).await
    };
    let mut call = pin!(call);
    let response = poll_fn(|cx| {
        if respond.poll_reset(cx).is_ready() {
            return Poll::Ready(None);
        }
        call.as_mut().poll(cx).map(Some)
    })
    .await;
    let Some(Ok(response)) = response else {
        return;
    };
    let (mut head, body) = response.into_parts();
    let upgrade = upgrade.filter(|_| head.status.is_success());
    let length = match upgrade {
        Some(_) => Length::Tunnel,
        None => body
            .size_hint()
            .exact()
            .map_or(Length::Unknown, Length::Exact),
    };
    finish_head(&mut head.headers, head.status, length);
    let head = Response::from_parts(head, ());

    if let Some((handover, recv)) = upgrade {
        if let Ok(send) = respond.send_response(head, false) {
            let _ = handover.send(H2Stream::new(send, recv, slot_guard));
        }
        return;
    }
    if body.is_end_stream() {
        let _ = respond.send_response(head, true);
        return;
    }
    let Ok(send) = respond.send_response(head, false) else {
        return;
    };
    let pushes = link.and_then(|link| {
        Some(Pushes {
            link,
            scheme: scheme?,
            authority: authority?,
            in_flight: Vec::new(),
        })
    });
    let (sent, pushes) = {
        let mut pipe = Pipe {
            body: pin!(body),
            send,
            respond,
            outgoing: VecDeque::new(),
            body_ended: false,
            trailers: None,
            pushes,
        };
        let sent = poll_fn(|cx| pipe.poll(cx)).await;
        (sent, pipe.pushes)
        // The body, and the subscription it holds, end here.
    };
    // Pushed bodies still in flight follow, unless the client reset the
    // parent stream: then they are reset too, by dropping them.
    if let (Sent::All, Some(mut pushes)) = (sent, pushes) {
        poll_fn(|cx| {
            pushes.poll_in_flight(cx);
            if pushes.in_flight.is_empty() {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await;
    }
}

/// How a response body's sending ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Sent {
    /// To its end (pushed bodies may still be in flight).
    All,
    /// The client reset the stream, or the connection is gone.
    Reset,
}

/// A response body on its way to the client, with the responses it pushes.
struct Pipe<'a, B> {
    body: Pin<&'a mut B>,
    send: SendStream<Bytes>,
    /// Kept to promise pushed responses on this stream.
    respond: SendResponse<Bytes>,
    /// Taken from the body, not yet sent.
    outgoing: VecDeque<Bytes>,
    body_ended: bool,
    trailers: Option<HeaderMap>,
    pushes: Option<Pushes>,
}

struct Pushes {
    link: ServerPush,
    scheme: http::uri::Scheme,
    authority: http::uri::Authority,
    /// Promised responses whose bodies are not all sent.
    in_flight: Vec<(SendStream<Bytes>, Bytes)>,
}

impl<B> Pipe<'_, B>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    /// Ready once the body is sent (pushed bodies may still be in flight),
    /// or the client reset the stream.
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Sent> {
        loop {
            if let Some(pushes) = &mut self.pushes {
                pushes.poll_in_flight(cx);
            }
            if !self.outgoing.is_empty() {
                match poll_window(&mut self.send, cx) {
                    Poll::Ready(true) => {}
                    Poll::Ready(false) => return Poll::Ready(Sent::Reset),
                    Poll::Pending => return Poll::Pending,
                }
                let chunk = self.outgoing.pop_front().expect("checked above");
                // The last chunk of a body known to end carries END_STREAM,
                // as hyper sends it: one DATA frame for a complete answer.
                let last = self.body_ended && self.outgoing.is_empty() && self.trailers.is_none();
                if self.send.send_data(chunk, last).is_err() {
                    return Poll::Ready(Sent::Reset);
                }
                if last {
                    return Poll::Ready(Sent::All);
                }
                continue;
            }
            if self.body_ended {
                // Everything taken is sent: end the stream.
                let _ = match self.trailers.take() {
                    Some(trailers) => self.send.send_trailers(trailers),
                    None => self.send.send_data(Bytes::new(), true),
                };
                return Poll::Ready(Sent::All);
            }
            let frame = self.body.as_mut().poll_frame(cx);
            // Promises made while polling go out before what the body
            // yields next.
            self.promise_queued();
            match frame {
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(mut data) => {
                        let data = data.copy_to_bytes(data.remaining());
                        if !data.is_empty() {
                            self.outgoing.push_back(data);
                        }
                        self.body_ended = self.body.is_end_stream();
                    }
                    Err(frame) => {
                        if let Ok(trailers) = frame.into_trailers() {
                            self.body_ended = true;
                            self.trailers = Some(trailers);
                        }
                    }
                },
                Poll::Ready(None) => self.body_ended = true,
                Poll::Ready(Some(Err(_))) => {
                    self.send.send_reset(Reason::INTERNAL_ERROR);
                    return Poll::Ready(Sent::Reset);
                }
                Poll::Pending => {
                    if !self.outgoing.is_empty() {
                        continue;
                    }
                    if self.send.poll_reset(cx).is_ready() {
                        return Poll::Ready(Sent::Reset);
                    }
                    if let Some(pushes) = &mut self.pushes {
                        // New promises may already have capacity.
                        if pushes.poll_in_flight(cx) {
                            continue;
                        }
                    }
                    return Poll::Pending;
                }
            }
        }
    }

    /// Sends the promises the body handed over; one that fails turns every
    /// later event inline, starting with its own.
    fn promise_queued(&mut self) {
        let Some(pushes) = &mut self.pushes else {
            return;
        };
        for pushed in pushes.link.take() {
            match promise(&mut self.respond, &pushes.scheme, &pushes.authority, pushed) {
                Ok(Some(in_flight)) => pushes.in_flight.push(in_flight),
                Ok(None) => pushes.link.finished(1),
                Err(inline) => {
                    pushes.link.refuse();
                    pushes.link.finished(1);
                    self.outgoing.push_back(inline);
                }
            }
        }
    }
}

impl Pushes {
    /// Sends what the client's windows take of the pushed bodies; true if
    /// any push finished.
    fn poll_in_flight(&mut self, cx: &mut Context<'_>) -> bool {
        let before = self.in_flight.len();
        self.in_flight.retain_mut(|(send, body)| loop {
            match poll_capacity(send, body.len(), cx) {
                Poll::Ready(Some(capacity)) => {
                    let data = body.split_to(capacity.min(body.len()));
                    let last = body.is_empty();
                    if send.send_data(data, last).is_err() || last {
                        return false;
                    }
                }
                // Declined (reset) by the client, or the connection is gone.
                Poll::Ready(None) => return false,
                Poll::Pending => return true,
            }
        });
        let finished = before - self.in_flight.len();
        if finished > 0 {
            self.link.finished(finished);
        }
        finished > 0
    }
}

/// Promises `pushed` on the stream of `respond` and sends its head; the
/// body follows as the window allows (`None` if there is nothing more to
/// send). `Err` with the inline bytes when the promise cannot be made.
fn promise(
    respond: &mut SendResponse<Bytes>,
    scheme: &http::uri::Scheme,
    authority: &http::uri::Authority,
    pushed: Pushed,
) -> Result<Option<(SendStream<Bytes>, Bytes)>, Bytes> {
    let Pushed {
        path,
        response,
        inline,
    } = pushed;
    let uri = http::Uri::builder()
        .scheme(scheme.clone())
        .authority(authority.clone())
        .path_and_query(path)
        .build();
    let Ok(uri) = uri else {
        return Err(inline);
    };
    let request = Request::get(uri).body(()).expect("a GET of a valid URI");
    let Ok(mut pushed_response) = respond.push_request(request) else {
        return Err(inline);
    };
    let (mut head, body) = response.into_parts();
    finish_head(
        &mut head.headers,
        head.status,
        Length::Exact(body.len() as u64),
    );
    let head = Response::from_parts(head, ());
    // The promise is out: from here a failure is the client's reset.
    match pushed_response.send_response(head, body.is_empty()) {
        Ok(send) if !body.is_empty() => Ok(Some((send, body))),
        _ => Ok(None),
    }
}

/// Ready with `true` once the client's window has room on `send`, so that
/// the next chunk may go whole: as with hyper, at most one chunk per stream
/// waits beyond the window, and the body is not polled for more until it
/// has gone. `false` once the stream is reset or closed.
fn poll_window(send: &mut SendStream<Bytes>, cx: &mut Context<'_>) -> Poll<bool> {
    if send.capacity() > 0 {
        return Poll::Ready(true);
    }
    // What is buffered, plus a byte.
    send.reserve_capacity(1);
    loop {
        match send.poll_capacity(cx) {
            Poll::Ready(Some(Ok(0))) => continue,
            Poll::Ready(Some(Ok(_))) => return Poll::Ready(true),
            Poll::Ready(Some(Err(_)) | None) => return Poll::Ready(false),
            Poll::Pending => return send.poll_reset(cx).map(|_| false),
        }
    }
}

/// Capacity to send at most `wanted` bytes on `send`: `None` once the
/// stream is reset or closed.
fn poll_capacity(
    send: &mut SendStream<Bytes>,
    wanted: usize,
    cx: &mut Context<'_>,
) -> Poll<Option<usize>> {
    send.reserve_capacity(wanted);
    loop {
        let capacity = send.capacity();
        if capacity > 0 {
            return Poll::Ready(Some(capacity));
        }
        match send.poll_capacity(cx) {
            Poll::Ready(Some(Ok(_))) => continue,
            Poll::Ready(Some(Err(_))) | Poll::Ready(None) => return Poll::Ready(None),
            Poll::Pending => {
                return match send.poll_reset(cx) {
                    Poll::Ready(_) => Poll::Ready(None),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }
}

/// What a response's body is, for its `Content-Length`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Length {
    /// This many bytes.
    Exact(u64),
    /// Not known before it ends.
    Unknown,
    /// A 2xx to `CONNECT`: the stream becomes the tunnel.
    Tunnel,
}

/// Headers HTTP/2 forbids (RFC 9113, 8.2.2) are removed, and a response
/// gets `Content-Length` when its body's size is known and `Date`, as
/// hyper's own HTTP/2 server does. A tunnel never has a length (RFC 9110
/// §9.3.6), even one a framework set from its empty body (warp does).
fn finish_head(headers: &mut HeaderMap, status: StatusCode, length: Length) {
    for name in [
        header::CONNECTION,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
        HeaderName::from_static("keep-alive"),
        HeaderName::from_static("proxy-connection"),
    ] {
        headers.remove(name);
    }
    if headers.get(header::TE).is_some_and(|te| te != "trailers") {
        headers.remove(header::TE);
    }
    let bodiless = status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED;
    match length {
        Length::Exact(length) if !bodiless => {
            headers
                .entry(header::CONTENT_LENGTH)
                .or_insert_with(|| HeaderValue::from(length));
        }
        Length::Tunnel => {
            headers.remove(header::CONTENT_LENGTH);
        }
        _ => {}
    }
    headers.entry(header::DATE).or_insert_with(super::date::now);
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}
