//! Serving on one port: HTTP/1.1 on hyper, HTTP/2 (h2c, prior knowledge)
//! on the `h2` crate, so that it can push; upgrades on both (HTTP/1.1
//! `Upgrade` and HTTP/2 extended `CONNECT`, so WebSocket works on both);
//! graceful shutdown with a drain deadline.
//!
//! hyper has no server push, and a connection cannot be split between hyper
//! and `h2`, so every HTTP/2 connection goes to this crate's own loop on
//! `h2`, which serves any service as hyper would (flow control both ways,
//! stream limits, resets, keep-alive pings, `GOAWAY` on shutdown) and lets
//! the [`http2_push`](crate::http2_push) technique push. Services therefore
//! take a [`RequestBody`], which reads either version's body.
//!
//! ```no_run
//! use push_core::{Hub, HubConfig};
//! use push_tower::{serve, Config, Push};
//! use std::time::Duration;
//!
//! # async fn run() -> std::io::Result<()> {
//! let push = Push::new(Hub::new(HubConfig::default()), Config::default());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! serve(listener, push.router())
//!     .with_push(push)
//!     .drain_deadline(Duration::from_secs(5))
//!     .with_graceful_shutdown(async { tokio::signal::ctrl_c().await.unwrap() })
//!     .await
//! # }
//! ```

mod connection;
mod date;
mod http2;
mod incoming;
pub(crate) mod peer_settings;
mod rewind;
pub(crate) mod server_push;
pub(crate) mod upgrade;

use std::convert::Infallible;
use std::fmt;
use std::future::{poll_fn, Future};
use std::io;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderValue};
use http::{Request, Response};
use http_body::Body;
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

use push_core::engine::Gate;
use push_core::Channels;

pub use connection::ConnectionHandle;
pub use incoming::{BodyError, RequestBody};

use crate::push::Drain;
use crate::stalled_reader::StalledReader;
use crate::{Config, Push};
use rewind::Rewind;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What [`Serve`] requires of a service, named once for the connection
/// loops.
pub(crate) trait Served:
    tower_service::Service<
        Request<RequestBody>,
        Response = Response<Self::ResponseBody>,
        Error = Infallible,
        Future: Send + 'static,
    > + Clone
    + Send
    + 'static
{
    type ResponseBody: Body<Data: Send + From<Bytes>, Error: Into<BoxError>> + Send + 'static;
}

impl<S, B> Served for S
where
    S: tower_service::Service<Request<RequestBody>, Response = Response<B>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Body + Send + 'static,
    B::Data: Send + From<Bytes>,
    B::Error: Into<BoxError>,
{
    type ResponseBody = B;
}

/// The most concurrent HTTP/2 streams (held subscriptions) per connection.
pub const MAX_CONCURRENT_STREAMS: u32 = 1024;

/// The largest request head an HTTP/2 client may send, as hyper allows.
pub const MAX_HEADER_LIST_BYTES: u32 = 16 * 1024;

/// The least [`Serve::max_header_bytes`] takes: hyper's HTTP/1.1 parser
/// works with no less.
pub const MIN_HEADER_BYTES: usize = 8192;

/// The default of [`Serve::header_read_timeout`].
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// What every HTTP/2 connection starts with.
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Serves `service` on `listener`; configure, then await
/// [`Serve::with_graceful_shutdown`] or [`Serve::run`].
///
/// Besides what hyper checks, an HTTP/1.1 request without exactly one `Host`
/// is answered `400 bad_request`, and one whose `Transfer-Encoding` is
/// anything but `chunked` alone `501 not_implemented` (RFC 9112), with the
/// JSON error body and `Connection: close`, before `service` sees it. That
/// is why the response body's data must convert from [`Bytes`], as that of
/// every body of hyper, axum and `http-body-util` does.
pub fn serve<S>(listener: TcpListener, service: S) -> Serve<S> {
    Serve {
        listener,
        service,
        drain: None,
        drain_deadline: Duration::from_secs(10),
        keep_alive: Some(Duration::from_secs(20)),
        header_read_timeout: HEADER_READ_TIMEOUT,
        max_header_bytes: MAX_HEADER_LIST_BYTES as usize,
    }
}

/// A server being configured; see [`serve`].
pub struct Serve<S> {
    listener: TcpListener,
    service: S,
    /// The shutdown switch and open sockets of the push services served,
    /// if given.
    drain: Option<Drain>,
    drain_deadline: Duration,
    keep_alive: Option<Duration>,
    header_read_timeout: Duration,
    max_header_bytes: usize,
}

impl<S, B> Serve<S>
where
    S: tower_service::Service<Request<RequestBody>, Response = Response<B>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Body + Send + 'static,
    B::Data: Send + From<Bytes>,
    B::Error: Into<BoxError>,
{
    /// On shutdown, also shut `push` down, so that its streams end with the
    /// shutdown signal, held long polls answer `503` and WebSockets close
    /// with `1001`, and wait for those sockets too; and drop HTTP/1.1
    /// connections that stopped reading after `push`'s
    /// [`Config::lag_grace`](crate::Config::lag_grace) (5 s without a push).
    /// Without it, open streams hold their connections until the drain
    /// deadline.
    pub fn with_push<C: Channels>(mut self, push: Push<C>) -> Self {
        self.drain = Some(push.drain());
        self
    }

    /// How long connections may take to finish after shutdown starts before
    /// they are dropped. Default 10 s.
    pub fn drain_deadline(mut self, deadline: Duration) -> Self {
        self.drain_deadline = deadline;
        self
    }

    /// How often an HTTP/2 connection is pinged; one whose client has not
    /// answered by the next ping is dropped, with its streams. `None` sends
    /// no pings. Default 20 s.
    pub fn http2_keep_alive(mut self, interval: Option<Duration>) -> Self {
        self.keep_alive = interval;
        self
    }

    /// How long a client has to send a request's head, from the moment its
    /// connection opens or its previous answer is sent: a connection that
    /// has not sent a complete head by then (nothing at all, half a head,
    /// or a head one byte at a time) is closed. Default
    /// [`HEADER_READ_TIMEOUT`], 10 s.
    pub fn header_read_timeout(mut self, timeout: Duration) -> Self {
        self.header_read_timeout = timeout;
        self
    }

    /// The largest HTTP/1.1 request head (request line and headers) read;
    /// a larger one is answered `431 Request Header Fields Too Large` and
    /// the connection closed. Default [`MAX_HEADER_LIST_BYTES`], 16 KiB,
    /// the same bound HTTP/2 clients are given.
    ///
    /// # Panics
    ///
    /// When `bytes` is under [`MIN_HEADER_BYTES`], the least hyper's parser
    /// works with.
    pub fn max_header_bytes(mut self, bytes: usize) -> Self {
        assert!(
            bytes >= MIN_HEADER_BYTES,
            "max_header_bytes must be at least {MIN_HEADER_BYTES}, the least hyper's HTTP/1.1 parser works with"
        );
        self.max_header_bytes = bytes;
        self
    }

    /// Serves until the process ends.
    ///
    /// # Errors
    ///
    /// Never returns an error in practice: failures to accept a connection
    /// (running out of file descriptors, say) are retried after a pause.
    pub async fn run(self) -> io::Result<()> {
        self.with_graceful_shutdown(std::future::pending()).await
    }

    /// Serves until `signal` completes, then stops accepting, shuts the push
    /// services down (streams end with the shutdown signal), asks every
    /// connection to close after its current exchanges (`GOAWAY` on
    /// HTTP/2), and waits for them up to the drain deadline, after which the
    /// rest are dropped.
    ///
    /// # Errors
    ///
    /// As [`Serve::run`].
    pub async fn with_graceful_shutdown(self, signal: impl Future<Output = ()>) -> io::Result<()> {
        let Serve {
            listener,
            service,
            drain,
            drain_deadline,
            keep_alive,
            header_read_timeout,
            max_header_bytes,
        } = self;
        let lag_grace = drain
            .as_ref()
            .map_or(Config::default().lag_grace, |drain| drain.lag_grace);
        let limits = http2::Limits {
            max_concurrent_streams: MAX_CONCURRENT_STREAMS,
            max_header_list_bytes: MAX_HEADER_LIST_BYTES,
            keep_alive,
        };
        let (shutdown, shutting_down) = watch::channel(false);
        let mut connections = JoinSet::new();
        let mut signal = std::pin::pin!(signal);
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let (stream, _) = match accepted {
                        Ok(accepted) => accepted,
                        Err(_) => {
                            // Out of descriptors or a connection reset before
                            // accept; pause rather than spin.
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    };
                    // Events are small and latency matters more than packing.
                    let _ = stream.set_nodelay(true);
                    connections.spawn(serve_connection(
                        stream,
                        service.clone(),
                        Http1Limits { header_read_timeout, max_header_bytes, lag_grace },
                        limits,
                        shutting_down.clone(),
                    ));
                    while connections.try_join_next().is_some() {}
                }
                () = &mut signal => break,
            }
        }
        drop(listener);
        if let Some(drain) = &drain {
            drain.pulse.shut_down();
        }
        let _ = shutdown.send(true);
        // Upgraded sockets have left their HTTP/1.1 connections: wait for
        // both.
        let sockets_closed = async {
            if let Some(drain) = &drain {
                drain.sockets.all_closed().await;
            }
        };
        let connections_closed = async { while connections.join_next().await.is_some() {} };
        let _ = tokio::time::timeout(drain_deadline, async {
            tokio::join!(connections_closed, sockets_closed)
        })
        .await;
        // Dropping the set aborts the connections still open.
        Ok(())
    }
}

/// Serves one connection on the HTTP version its first bytes announce.
/// What bounds an HTTP/1.1 connection.
#[derive(Clone, Copy)]
struct Http1Limits {
    header_read_timeout: Duration,
    max_header_bytes: usize,
    lag_grace: Duration,
}

async fn serve_connection<S: Served>(
    mut stream: TcpStream,
    service: S,
    http1: Http1Limits,
    limits: http2::Limits,
    shutdown: watch::Receiver<bool>,
) {
    let mut first = BytesMut::with_capacity(PREFACE.len());
    // A client that sends nothing, or part of the preface, is dropped when
    // the head would have been.
    let sniffed = tokio::time::timeout(http1.header_read_timeout, async {
        loop {
            match stream.read_buf(&mut first).await {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            }
            let seen = first.len().min(PREFACE.len());
            if first[..seen] != PREFACE[..seen] {
                return Some(false);
            }
            if seen == PREFACE.len() {
                return Some(true);
            }
        }
    })
    .await;
    let Ok(Some(is_http2)) = sniffed else {
        return;
    };
    let io = Rewind::new(first.freeze(), stream);
    if is_http2 {
        // Boxed: its state is several times an HTTP/1.1 connection's, and
        // every connection's task would otherwise be as large.
        Box::pin(http2::serve_connection(io, service, limits, shutdown)).await;
    } else {
        serve_http1(io, service, http1, shutdown).await;
    }
}

/// Serves an HTTP/1.1 connection on hyper, with upgrades; drops it if a
/// lagged stream does not end within `grace` (see the `stalled_reader`
/// module).
///
/// The connection is woken for every delivery, the shutdown and
/// stalled-reader watches almost never: they are polled through a [`Gate`],
/// only when one of them woke it.
async fn serve_http1<S: Served>(
    io: Rewind<TcpStream>,
    service: S,
    limits: Http1Limits,
    mut shutdown: watch::Receiver<bool>,
) {
    let grace = limits.lag_grace;
    let stalled_reader = StalledReader::default();
    let service = Http1Service {
        inner: service,
        stalled_reader: stalled_reader.clone(),
    };
    let connection = hyper::server::conn::http1::Builder::new()
        // hyper enforces the head's timeout only when it has a timer.
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_header_size(limits.max_header_bytes)
        .serve_connection(TokioIo::new(io), TowerToHyperService::new(service))
        .with_upgrades();
    let mut connection = pin!(connection);
    let shutdown_requested = AtomicBool::new(false);
    // Completes only when a lagged stream outlives the grace period.
    let mut watches = pin!(async {
        let shutdown = async {
            // A dropped sender means the server is gone: shut down as well.
            let _ = shutdown.wait_for(|shutting_down| *shutting_down).await;
            shutdown_requested.store(true, Ordering::Release);
            std::future::pending::<()>().await;
        };
        tokio::select! {
            () = shutdown => {}
            () = stalled_too_long(&stalled_reader, grace) => {}
        }
    });
    let mut gate = Gate::new();
    let mut shutting_down = false;
    poll_fn(|cx| {
        if gate.pass(cx) {
            let mut watches_cx = Context::from_waker(gate.waker());
            if watches.as_mut().poll(&mut watches_cx).is_ready() {
                // The client stopped reading: dropping the connection frees it.
                return Poll::Ready(());
            }
            gate.set_armed(true);
            if !shutting_down && shutdown_requested.load(Ordering::Acquire) {
                shutting_down = true;
                connection.as_mut().graceful_shutdown();
            }
        }
        connection.as_mut().poll(cx).map(|_| ())
    })
    .await;
}

/// Completes once some lagged stream of the connection has not ended within
/// `grace`.
async fn stalled_too_long(stalled_reader: &StalledReader, grace: Duration) {
    loop {
        stalled_reader.raised().await;
        tokio::select! {
            () = stalled_reader.cleared() => {}
            () = tokio::time::sleep(grace) => return,
        }
    }
}

/// Hands each HTTP/1.1 request to the service with its body as a
/// [`RequestBody`] and its connection's [`StalledReader`] watch, once it
/// passes the framing checks of RFC 9112 that hyper leaves to the server
/// (see [`check_framing`](crate::request::check_framing)); a request that
/// fails them is answered with the JSON error, and the connection closed.
#[derive(Clone)]
struct Http1Service<S> {
    inner: S,
    stalled_reader: StalledReader,
}

impl<S, B> tower_service::Service<Request<Incoming>> for Http1Service<S>
where
    S: tower_service::Service<Request<RequestBody>, Response = Response<B>>,
    B: Body<Data: From<Bytes>>,
{
    type Response = Response<Either<B, Full<B::Data>>>;
    type Error = S::Error;
    type Future = Http1Future<S::Future, B::Data>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Incoming>) -> Self::Future {
        if let Err(refusal) = crate::request::check_framing(&request) {
            let mut answer = crate::error::response_with(refusal, |json| Full::new(json.into()));
            answer
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            return Http1Future::Refused {
                answer: Some(answer),
            };
        }
        let mut request = request.map(RequestBody::http1);
        let version = request.version();
        request.extensions_mut().insert(ConnectionHandle {
            stalled_reader: Some(self.stalled_reader.clone()),
            ..ConnectionHandle::new(version)
        });
        Http1Future::Served {
            future: self.inner.call(request),
        }
    }
}

pin_project_lite::pin_project! {
    /// The service's answer, or the refusal of a malformed request.
    #[project = Http1FutureProjection]
    enum Http1Future<F, D> {
        Served { #[pin] future: F },
        Refused { answer: Option<Response<Full<D>>> },
    }
}

impl<F, B, E> Future for Http1Future<F, B::Data>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: Body,
{
    type Output = Result<Response<Either<B, Full<B::Data>>>, E>;

    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            Http1FutureProjection::Served { future } => {
                future.poll(cx).map_ok(|answer| answer.map(Either::Left))
            }
            Http1FutureProjection::Refused { answer } => Poll::Ready(Ok(answer
                .take()
                .expect("Http1Future polled after completion")
                .map(Either::Right))),
        }
    }
}

impl<S> fmt::Debug for Serve<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Serve")
            .field("listener", &self.listener)
            .field("drain_deadline", &self.drain_deadline)
            .finish_non_exhaustive()
    }
}
