//! Serving on one port: HTTP/1.1 on hyper, HTTP/2 (h2c, prior knowledge)
//! on the `h2` crate, so that it can push; upgrades on both (HTTP/1.1
//! `Upgrade` and HTTP/2 extended `CONNECT`, so WebSocket works on both);
//! graceful shutdown with a drain deadline; TLS with ALPN (cargo feature
//! `tls`, see [`tls`]); bounds on connections per server and per peer
//! address, on subscriptions per HTTP/2 connection, and on request heads.
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
mod limits;
pub(crate) mod peer_settings;
mod rewind;
pub(crate) mod server_push;
#[cfg(feature = "tls")]
pub mod tls;
pub(crate) mod upgrade;

use std::convert::Infallible;
use std::fmt;
use std::future::{poll_fn, Future};
use std::io;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
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
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

use push_core::engine::Gate;
use push_core::Channels;

pub use connection::ConnectionHandle;
pub use incoming::{BodyError, RequestBody};

use crate::push::Drain;
use crate::stalled_reader::StalledReader;
use crate::{Config, Push};
use limits::{Admitted, Connections, Refused};
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

/// The default of [`Serve::max_connections`]: half of a common limit of
/// 20,000 open files, leaving room for upgraded sockets' peers, logs and
/// backends.
pub const MAX_CONNECTIONS: usize = 10_000;

/// The default of [`Serve::max_connections_per_peer`]: half of
/// [`MAX_CONNECTIONS`], so that one address never holds the whole server,
/// yet generous enough for many clients behind one NAT, and for the
/// conformance suite, which runs every technique at once from one address
/// (its fan-out alone opens 200 subscribers per technique; at 1,000 it
/// was refused).
pub const MAX_CONNECTIONS_PER_PEER: usize = 5_000;

/// The default of [`Serve::max_subscriptions_per_connection`]: a quarter
/// of [`MAX_CONCURRENT_STREAMS`], leaving streams for polls and publishes.
pub const MAX_SUBSCRIPTIONS_PER_CONNECTION: usize = 256;

/// The default of [`Serve::max_headers`], hyper's.
pub const MAX_HEADERS: usize = 100;

/// The longest a connection refused for a connection limit is kept to be
/// answered (its TLS handshake, its request, the refusal) before it is
/// dropped.
pub const REFUSED_CONNECTION_TIMEOUT: Duration = Duration::from_secs(2);

/// The most refused connections being answered at once; past it, a
/// connection over a limit is closed without an answer, so that a flood
/// of connections cannot hold more than this many descriptors beyond the
/// limits.
pub const MAX_REFUSALS_IN_FLIGHT: usize = 128;

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
        max_headers: MAX_HEADERS,
        max_connections: MAX_CONNECTIONS,
        max_connections_per_peer: MAX_CONNECTIONS_PER_PEER,
        max_subscriptions_per_connection: MAX_SUBSCRIPTIONS_PER_CONNECTION,
        #[cfg(feature = "tls")]
        tls: None,
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
    max_headers: usize,
    max_connections: usize,
    max_connections_per_peer: usize,
    max_subscriptions_per_connection: usize,
    #[cfg(feature = "tls")]
    tls: Option<tokio_rustls::TlsAcceptor>,
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
    /// a head one byte at a time, or nothing between requests) is closed.
    /// An HTTP/2 connection gets `GOAWAY` once it has had no open stream for
    /// as long, and is dropped if it is still open as long again after
    /// that. Default [`HEADER_READ_TIMEOUT`], 10 s.
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

    /// The most request headers read (on HTTP/1.1, by hyper's parser; on
    /// HTTP/2, counted once the head is decoded, within the header list's
    /// [`MAX_HEADER_LIST_BYTES`]); a request with more is answered
    /// `431 Request Header Fields Too Large` (and over HTTP/1.1 its
    /// connection closed). Default [`MAX_HEADERS`], 100.
    ///
    /// # Panics
    ///
    /// When `count` is 0.
    pub fn max_headers(mut self, count: usize) -> Self {
        assert!(count > 0, "max_headers must be at least 1");
        self.max_headers = count;
        self
    }

    /// The most connections open at once. A connection over it is still
    /// answered, briefly: every request on it gets
    /// `503 too_many_connections` with `Retry-After`, then it is closed
    /// (`Connection: close` on HTTP/1.1, `GOAWAY` on HTTP/2), and it is
    /// dropped after [`REFUSED_CONNECTION_TIMEOUT`] whatever it does. A
    /// place is free again as soon as a connection closes. Default
    /// [`MAX_CONNECTIONS`], 10,000: keep it under the process's limit of
    /// open files, less what upgraded sockets and backends need.
    ///
    /// # Panics
    ///
    /// When `max` is 0.
    pub fn max_connections(mut self, max: usize) -> Self {
        assert!(max > 0, "max_connections must be at least 1");
        self.max_connections = max;
        self
    }

    /// The most connections open at once from one peer IP address (any
    /// port; an IPv4 address mapped into IPv6 is the same peer). A
    /// connection over it is answered as over
    /// [`max_connections`](Self::max_connections), with
    /// `429 too_many_peer_connections`. Default
    /// [`MAX_CONNECTIONS_PER_PEER`], 5,000, half the default server limit;
    /// behind a proxy every client has the proxy's address, so raise it to
    /// the server limit there.
    ///
    /// # Panics
    ///
    /// When `max` is 0.
    pub fn max_connections_per_peer(mut self, max: usize) -> Self {
        assert!(max > 0, "max_connections_per_peer must be at least 1");
        self.max_connections_per_peer = max;
        self
    }

    /// The most streaming subscriptions (Server-Sent Events, NDJSON, HTTP/2
    /// push, WebSocket over HTTP/2) open at once on one HTTP/2 connection;
    /// the next is answered `429 too_many_subscriptions` before any stream
    /// starts, and the connection serves on. A place is free again when a
    /// stream ends. (An HTTP/1.1 connection holds one stream at a time.)
    /// Default [`MAX_SUBSCRIPTIONS_PER_CONNECTION`], 256; at most
    /// [`MAX_CONCURRENT_STREAMS`] streams of any kind are open anyway.
    ///
    /// # Panics
    ///
    /// When `max` is 0.
    pub fn max_subscriptions_per_connection(mut self, max: usize) -> Self {
        assert!(
            max > 0,
            "max_subscriptions_per_connection must be at least 1"
        );
        self.max_subscriptions_per_connection = max;
        self
    }

    /// Serves TLS with `config` instead of plain TCP: the handshake must
    /// finish within the [header read timeout](Self::header_read_timeout),
    /// then the protocol the client chose by ALPN is served (`h2`: HTTP/2,
    /// with push and WebSocket over HTTP/2; `http/1.1`: HTTP/1.1, with
    /// upgrades); a client that chose none is told apart by its first
    /// bytes. Set `config.alpn_protocols` to offer both, as
    /// [`tls::config_from_pem`] does; without `h2` there, clients speak
    /// HTTP/1.1. Needs the cargo feature `tls`.
    #[cfg(feature = "tls")]
    pub fn tls(mut self, config: Arc<tls::rustls::ServerConfig>) -> Self {
        self.tls = Some(tokio_rustls::TlsAcceptor::from(config));
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
            max_headers,
            max_connections,
            max_connections_per_peer,
            max_subscriptions_per_connection,
            #[cfg(feature = "tls")]
            tls,
        } = self;
        let lag_grace = drain
            .as_ref()
            .map_or(Config::default().lag_grace, |drain| drain.lag_grace);
        let settings = Settings {
            http1: Http1Limits {
                header_read_timeout,
                max_header_bytes,
                max_headers,
                lag_grace,
            },
            http2: http2::Limits {
                max_concurrent_streams: MAX_CONCURRENT_STREAMS,
                max_header_list_bytes: MAX_HEADER_LIST_BYTES,
                max_headers,
                max_subscriptions: max_subscriptions_per_connection,
                keep_alive,
                idle_timeout: header_read_timeout,
            },
            #[cfg(feature = "tls")]
            tls,
        };
        let open = Connections::new(max_connections, max_connections_per_peer);
        let refusals = Arc::new(Semaphore::new(MAX_REFUSALS_IN_FLIGHT));
        let (shutdown, shutting_down) = watch::channel(false);
        let mut connections = JoinSet::new();
        let mut signal = std::pin::pin!(signal);
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let (stream, peer) = match accepted {
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
                    match open.admit(peer.ip()) {
                        Ok(admitted) => {
                            connections.spawn(serve_connection(
                                stream,
                                peer,
                                Some(admitted),
                                service.clone(),
                                settings.clone(),
                                shutting_down.clone(),
                            ));
                        }
                        Err(refusal) => {
                            // Over the bound of refusals being answered, the
                            // connection is closed unanswered.
                            if let Ok(permit) = refusals.clone().try_acquire_owned() {
                                let (refused, answered) = Refused::new(refusal);
                                let settings = settings.clone();
                                connections.spawn(async move {
                                    let _ = tokio::time::timeout(
                                        REFUSED_CONNECTION_TIMEOUT,
                                        serve_connection(stream, peer, None, refused, settings, answered),
                                    )
                                    .await;
                                    drop(permit);
                                });
                            }
                        }
                    }
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

/// What bounds an HTTP/1.1 connection.
#[derive(Clone, Copy)]
struct Http1Limits {
    header_read_timeout: Duration,
    max_header_bytes: usize,
    max_headers: usize,
    lag_grace: Duration,
}

/// How every connection is served.
#[derive(Clone)]
struct Settings {
    http1: Http1Limits,
    http2: http2::Limits,
    #[cfg(feature = "tls")]
    tls: Option<tokio_rustls::TlsAcceptor>,
}

/// A connection's transport, TCP or TLS.
trait Io: AsyncRead + AsyncWrite + Unpin + Send + 'static {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Io for T {}

/// Serves one connection, after its TLS handshake if TLS is on, on the HTTP
/// version that ALPN or else its first bytes announce. Its `place` among
/// the server's connections goes with the socket, and so is held by a
/// WebSocket that takes the connection over as long as the socket is open.
async fn serve_connection<S: Served>(
    stream: TcpStream,
    peer: SocketAddr,
    place: Option<Admitted>,
    service: S,
    settings: Settings,
    shutdown: watch::Receiver<bool>,
) {
    #[cfg(feature = "tls")]
    if let Some(acceptor) = &settings.tls {
        // A client that stalls in the handshake is dropped when the head
        // would have been.
        let handshake =
            tokio::time::timeout(settings.http1.header_read_timeout, acceptor.accept(stream));
        let Ok(Ok(stream)) = handshake.await else {
            return;
        };
        let http2 = match stream.get_ref().1.alpn_protocol() {
            Some(b"h2") => Some(true),
            Some(b"http/1.1") => Some(false),
            _ => None,
        };
        serve_io(stream, http2, peer, place, service, settings, shutdown).await;
        return;
    }
    serve_io(stream, None, peer, place, service, settings, shutdown).await;
}

/// Serves `io` on HTTP/2 or HTTP/1.1 as `http2` says, or as its first bytes
/// announce if it says nothing.
async fn serve_io<T: Io, S: Served>(
    mut io: T,
    http2: Option<bool>,
    peer: SocketAddr,
    place: Option<Admitted>,
    service: S,
    settings: Settings,
    shutdown: watch::Receiver<bool>,
) {
    let (first, is_http2) = match http2 {
        Some(is_http2) => (Bytes::new(), is_http2),
        None => match sniff(&mut io, settings.http1.header_read_timeout).await {
            Some(sniffed) => sniffed,
            None => return,
        },
    };
    let io = Rewind::new(first, io).holding(place);
    if is_http2 {
        // Boxed: its state is several times an HTTP/1.1 connection's, and
        // every connection's task would otherwise be as large.
        Box::pin(http2::serve_connection(
            io,
            peer,
            service,
            settings.http2,
            shutdown,
        ))
        .await;
    } else {
        serve_http1(io, peer, service, settings.http1, shutdown).await;
    }
}

/// Reads enough of `io` to tell the HTTP/2 preface from an HTTP/1.1
/// request: the bytes read and whether it is HTTP/2, or `None` if the
/// client closed, failed or stalled past `timeout` first.
async fn sniff<T: Io>(io: &mut T, timeout: Duration) -> Option<(Bytes, bool)> {
    let mut first = BytesMut::with_capacity(PREFACE.len());
    // A client that sends nothing, or part of the preface, is dropped when
    // the head would have been.
    let sniffed = tokio::time::timeout(timeout, async {
        loop {
            match io.read_buf(&mut first).await {
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
        return None;
    };
    Some((first.freeze(), is_http2))
}

/// Serves an HTTP/1.1 connection on hyper, with upgrades; drops it if a
/// lagged stream does not end within `grace` (see the `stalled_reader`
/// module).
///
/// The connection is woken for every delivery, the shutdown and
/// stalled-reader watches almost never: they are polled through a [`Gate`],
/// only when one of them woke it.
async fn serve_http1<T: Io, S: Served>(
    io: Rewind<T>,
    peer: SocketAddr,
    service: S,
    limits: Http1Limits,
    mut shutdown: watch::Receiver<bool>,
) {
    let grace = limits.lag_grace;
    let stalled_reader = StalledReader::default();
    let service = Http1Service {
        inner: service,
        stalled_reader: stalled_reader.clone(),
        peer,
    };
    let mut builder = hyper::server::conn::http1::Builder::new();
    // hyper enforces the head's timeout only when it has a timer.
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_header_size(limits.max_header_bytes);
    // Any other count than hyper's default puts the headers on the heap.
    if limits.max_headers != MAX_HEADERS {
        builder.max_headers(limits.max_headers);
    }
    let connection = builder
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
/// [`RequestBody`], its connection's [`StalledReader`] watch and its peer's
/// address, once it passes the framing checks of RFC 9112 that hyper leaves
/// to the server (see [`check_framing`](crate::request::check_framing)); a
/// request that fails them is answered with the JSON error, and the
/// connection closed.
#[derive(Clone)]
struct Http1Service<S> {
    inner: S,
    stalled_reader: StalledReader,
    peer: SocketAddr,
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
            peer_addr: Some(self.peer),
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
            .field("max_connections", &self.max_connections)
            .field("max_connections_per_peer", &self.max_connections_per_peer)
            .field(
                "max_subscriptions_per_connection",
                &self.max_subscriptions_per_connection,
            )
            .field("max_headers", &self.max_headers)
            .finish_non_exhaustive()
    }
}
