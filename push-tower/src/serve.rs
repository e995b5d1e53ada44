//! Serving on hyper: HTTP/1.1 and HTTP/2 (h2c, prior knowledge) on one port,
//! upgrades enabled, graceful shutdown with a drain deadline.
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

use crate::alarm::LagAlarm;
use crate::Push;

/// The most concurrent HTTP/2 streams (held subscriptions) per connection.
pub const MAX_CONCURRENT_STREAMS: u32 = 1024;

/// Serves `service` on `listener`; configure, then await
/// [`Serve::with_graceful_shutdown`] or [`Serve::run`].
pub fn serve<S>(listener: TcpListener, service: S) -> Serve<S> {
    Serve {
        listener,
        service,
        push: None,
        drain_deadline: Duration::from_secs(10),
        lag_grace: Duration::from_secs(5),
    }
}

/// A server being configured; see [`serve`].
pub struct Serve<S> {
    listener: TcpListener,
    service: S,
    push: Option<Push>,
    drain_deadline: Duration,
    lag_grace: Duration,
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
    /// shutdown signal and held long polls answer `503`.
    pub fn with_push(mut self, push: Push) -> Self {
        self.push = Some(push);
        self
    }

    /// How long connections may take to finish after shutdown starts before
    /// they are dropped. Default 10 s.
    pub fn drain_deadline(mut self, deadline: Duration) -> Self {
        self.drain_deadline = deadline;
        self
    }

    /// How long an HTTP/1.1 connection whose stream was lagged by its
    /// channel gets to deliver the lagged signal before it is dropped as a
    /// client that stopped reading. Default 5 s.
    pub fn lag_grace(mut self, grace: Duration) -> Self {
        self.lag_grace = grace;
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
            push,
            drain_deadline,
            lag_grace,
        } = self;
        let mut builder = auto::Builder::new(TokioExecutor::new());
        // Each subscription holds a stream, and one client may multiplex
        // many over one connection; hyper's default of 200 is for requests
        // that finish.
        builder
            .http2()
            .max_concurrent_streams(MAX_CONCURRENT_STREAMS);
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
                    let alarm = LagAlarm::default();
                    let service = WithAlarm {
                        inner: service.clone(),
                        alarm: alarm.clone(),
                    };
                    let connection = builder.serve_connection_with_upgrades(
                        TokioIo::new(stream),
                        TowerToHyperService::new(service),
                    );
                    let connection = graceful.watch(connection.into_owned());
                    tokio::spawn(drive(connection, alarm, lag_grace));
                }
                () = &mut signal => break,
            }
        }
        drop(listener);
        if let Some(push) = &push {
            push.shutdown();
        }
        let _ = tokio::time::timeout(drain_deadline, graceful.shutdown()).await;
        Ok(())
    }
}

/// Drives one connection; drops it if a lagged stream does not end within
/// `grace` (see the `alarm` module).
async fn drive(connection: impl Future, alarm: LagAlarm, grace: Duration) {
    let mut connection = std::pin::pin!(connection);
    loop {
        tokio::select! {
            _ = connection.as_mut() => return,
            () = alarm.raised() => {}
        }
        tokio::select! {
            _ = connection.as_mut() => return,
            () = alarm.cleared() => {}
            // The client stopped reading: dropping the connection frees it.
            () = tokio::time::sleep(grace) => return,
        }
    }
}

/// Hands each request its connection's [`LagAlarm`].
#[derive(Clone)]
struct WithAlarm<S> {
    inner: S,
    alarm: LagAlarm,
}

impl<S, B> tower_service::Service<Request<B>> for WithAlarm<S>
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
        request.extensions_mut().insert(self.alarm.clone());
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
