//! Serving on hyper: HTTP/1.1 and HTTP/2 (h2c, prior knowledge) on one port,
//! upgrades enabled (HTTP/1.1 `Upgrade` and HTTP/2 extended `CONNECT`, so
//! WebSocket works on both), graceful shutdown with a drain deadline.
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

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::io;
use std::time::Duration;

use http::{Request, Response};
use http_body::Body;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;

use push_core::Channels;

use crate::push::Drain;
use crate::stalled_reader::StalledReader;
use crate::{Config, Push};

/// The most concurrent HTTP/2 streams (held subscriptions) per connection.
pub const MAX_CONCURRENT_STREAMS: u32 = 1024;

/// Serves `service` on `listener`; configure, then await
/// [`Serve::with_graceful_shutdown`] or [`Serve::run`].
pub fn serve<S>(listener: TcpListener, service: S) -> Serve<S> {
    Serve {
        listener,
        service,
        drain: None,
        drain_deadline: Duration::from_secs(10),
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
}

impl<S, B> Serve<S>
where
    S: tower_service::Service<Request<Incoming>, Response = Response<B>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
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
    /// connection to close after its current exchange, and waits for them up
    /// to the drain deadline.
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
        } = self;
        let lag_grace = drain
            .as_ref()
            .map_or(Config::default().lag_grace, |drain| drain.lag_grace);
        let mut builder = auto::Builder::new(TokioExecutor::new());
        // Each subscription holds a stream, and one client may multiplex
        // many over one connection; hyper's default of 200 is for requests
        // that finish. Extended CONNECT (RFC 8441) carries WebSocket.
        builder
            .http2()
            .max_concurrent_streams(MAX_CONCURRENT_STREAMS)
            .enable_connect_protocol();
        let graceful = GracefulShutdown::new();
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
                    let stalled_reader = StalledReader::default();
                    let service = WithStalledReader {
                        inner: service.clone(),
                        stalled_reader: stalled_reader.clone(),
                    };
                    let connection = builder.serve_connection_with_upgrades(
                        TokioIo::new(stream),
                        TowerToHyperService::new(service),
                    );
                    let connection = graceful.watch(connection.into_owned());
                    tokio::spawn(drive(connection, stalled_reader, lag_grace));
                }
                () = &mut signal => break,
            }
        }
        drop(listener);
        if let Some(drain) = &drain {
            drain.pulse.shut_down();
        }
        // Upgraded sockets have left their HTTP connections: wait for both.
        let sockets_closed = async {
            if let Some(drain) = &drain {
                drain.sockets.all_closed().await;
            }
        };
        let _ = tokio::time::timeout(drain_deadline, async {
            tokio::join!(graceful.shutdown(), sockets_closed)
        })
        .await;
        Ok(())
    }
}

/// Drives one connection; drops it if a lagged stream does not end within
/// `grace` (see the `stalled_reader` module).
async fn drive(connection: impl Future, stalled_reader: StalledReader, grace: Duration) {
    let mut connection = std::pin::pin!(connection);
    loop {
        tokio::select! {
            _ = connection.as_mut() => return,
            () = stalled_reader.raised() => {}
        }
        tokio::select! {
            _ = connection.as_mut() => return,
            () = stalled_reader.cleared() => {}
            // The client stopped reading: dropping the connection frees it.
            () = tokio::time::sleep(grace) => return,
        }
    }
}

/// Hands each request its connection's [`StalledReader`] watch.
#[derive(Clone)]
struct WithStalledReader<S> {
    inner: S,
    stalled_reader: StalledReader,
}

impl<S, B> tower_service::Service<Request<B>> for WithStalledReader<S>
where
    S: tower_service::Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> S::Future {
        request.extensions_mut().insert(self.stalled_reader.clone());
        self.inner.call(request)
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
