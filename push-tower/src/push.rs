//! The state every push service shares: the channel source, the
//! configuration, the heartbeat tick and the shutdown switch.

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use push_core::delivery::{Ndjson, Sse};
use push_core::engine::{Listener, Pulse, RetryWindow};
use push_core::wire::WireError;
use push_core::{Channels, Hub};
use tokio::sync::Notify;

use crate::authorize::Authorize;
use crate::rate::{PublishRate, PublishRates};

/// Settings of the push services, with sensible defaults.
///
/// The heartbeat interval, the longest long-poll hold and the largest event
/// are channel limits (the wire contract reports them in the channel info),
/// so they live in the channel source's [`Limits`](push_core::Limits); the
/// rest is here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// The most events in one poll or long-poll answer. Default 1,000.
    pub max_batch: usize,
    /// The long-poll hold when the client sends no `?timeout=`, capped by
    /// the channel source's `long_poll_max`. Default 30 s.
    pub long_poll_default: Duration,
    /// `retry:` sent to SSE clients with the position, if any. Default 3 s.
    pub sse_retry: Option<Duration>,
    /// The most event bytes coalesced into one write. Default 256 KiB.
    pub max_write_bytes: usize,
    /// How long clients are told to wait before reconnecting once a
    /// graceful shutdown starts: each stream's `shutdown` signal carries a
    /// delay drawn from it (`retry_ms`), and each `503 shutting_down` answer
    /// a `Retry-After` drawn the same way, so that the clients of a draining
    /// server come back spread out. Default 1 s to 10 s.
    pub shutdown_retry: RetryWindow,
    /// How long a client that stopped reading gets to take what the server
    /// still has to send it (the lagged signal, a WebSocket close frame), or
    /// a WebSocket client at least to answer a ping, before its connection is
    /// dropped: an HTTP/1.1 stream's connection under
    /// [`serve`](crate::serve()), or a WebSocket. Default 5 s.
    pub lag_grace: Duration,
    /// How long a publish's body may take to arrive once its head has: a
    /// client that sends part of a body and stalls is answered
    /// `400 bad_body` when it passes. Default 10 s.
    pub body_read_timeout: Duration,
    /// The largest message a WebSocket client may send, in bytes (`1009`
    /// past it, found from the frame header). Clients have nothing to send
    /// on the socket but control frames, so this only bounds what a broken
    /// or hostile client can make the server read. Default
    /// [`MAX_INBOUND_MESSAGE_BYTES`](crate::ws::MAX_INBOUND_MESSAGE_BYTES),
    /// 4 KiB.
    pub max_ws_inbound_bytes: usize,
    /// The most publishes a second to any one channel, and the burst
    /// allowed after a quiet spell; past it, `429 rate_limited` with
    /// `Retry-After`. `None` (the default): no limit.
    pub publish_rate: Option<PublishRate>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_batch: 1_000,
            long_poll_default: Duration::from_secs(30),
            sse_retry: Some(Duration::from_secs(3)),
            max_write_bytes: 256 * 1024,
            shutdown_retry: RetryWindow::default(),
            lag_grace: Duration::from_secs(5),
            body_read_timeout: Duration::from_secs(10),
            max_ws_inbound_bytes: crate::ws::MAX_INBOUND_MESSAGE_BYTES,
            publish_rate: None,
        }
    }
}

impl Config {
    /// Sets [`Config::max_batch`].
    ///
    /// # Panics
    ///
    /// Panics if `max_batch` is zero.
    pub fn max_batch(mut self, max_batch: usize) -> Self {
        assert!(max_batch > 0, "max_batch must be at least 1");
        self.max_batch = max_batch;
        self
    }

    /// Sets [`Config::long_poll_default`].
    pub fn long_poll_default(mut self, hold: Duration) -> Self {
        self.long_poll_default = hold;
        self
    }

    /// Sets [`Config::sse_retry`].
    pub fn sse_retry(mut self, retry: Option<Duration>) -> Self {
        self.sse_retry = retry;
        self
    }

    /// Sets [`Config::max_write_bytes`].
    pub fn max_write_bytes(mut self, bytes: usize) -> Self {
        self.max_write_bytes = bytes.max(1);
        self
    }

    /// Sets [`Config::body_read_timeout`].
    pub fn body_read_timeout(mut self, timeout: Duration) -> Self {
        self.body_read_timeout = timeout;
        self
    }

    /// Sets [`Config::publish_rate`]: at most `per_second` publishes a
    /// second to any one channel, `burst` at once.
    ///
    /// # Panics
    ///
    /// Panics if `per_second` or `burst` is 0; for no limit, use
    /// [`Config::no_publish_rate`].
    pub fn publish_rate(mut self, per_second: u32, burst: u32) -> Self {
        assert!(
            per_second > 0 && burst > 0,
            "publish rates and bursts must be at least 1"
        );
        self.publish_rate = Some(PublishRate { per_second, burst });
        self
    }

    /// Removes the publish rate limit.
    pub fn no_publish_rate(mut self) -> Self {
        self.publish_rate = None;
        self
    }

    /// Sets [`Config::shutdown_retry`]: delays from `least` to
    /// `least + spread`.
    ///
    /// # Panics
    ///
    /// Panics if `least + spread` overflows a [`Duration`].
    pub fn shutdown_retry(mut self, least: Duration, spread: Duration) -> Self {
        self.shutdown_retry = RetryWindow::new(least, spread);
        self
    }

    /// Sets [`Config::max_ws_inbound_bytes`].
    ///
    /// # Panics
    ///
    /// Panics if `bytes` is under 125, the largest control frame a client
    /// may send (a ping, or a close with its reason).
    pub fn max_ws_inbound_bytes(mut self, bytes: usize) -> Self {
        assert!(
            bytes >= 125,
            "max_ws_inbound_bytes must be at least 125, the largest control frame"
        );
        self.max_ws_inbound_bytes = bytes;
        self
    }

    /// Sets [`Config::lag_grace`].
    pub fn lag_grace(mut self, grace: Duration) -> Self {
        self.lag_grace = grace;
        self
    }
}

/// The shared state of every push service: a [`Channels`] source (the
/// in-memory [`Hub`] unless you name another), a [`Config`], one heartbeat
/// tick for all connections and the graceful-shutdown switch.
///
/// Cheap to clone. Build services from it: [`Push::router`] for the whole
/// wire contract, or one technique with [`Push::sse`], [`Push::ndjson`],
/// [`Push::poll`], [`Push::long_poll`], [`Push::publish`].
///
/// ```
/// use push_core::{Hub, HubConfig};
/// use push_tower::{ChannelFrom, Config, Push};
///
/// let push = Push::new(Hub::new(HubConfig::default()), Config::default());
/// let router = push.router();
/// let sse = push.sse(ChannelFrom::path("/events/{name}").unwrap());
/// # let _ = (router, sse);
/// ```
///
/// Any other source serves every technique the same way: `Push::new(source,
/// config)` with a `source` of your own type gives a `Push<YourSource>`; see
/// push-tower's `custom_backend` example.
pub struct Push<C = Hub> {
    pub(crate) inner: Arc<Inner<C>>,
    pub(crate) authorizer: Option<Arc<dyn Authorize>>,
}

impl<C> Clone for Push<C> {
    fn clone(&self) -> Self {
        Push {
            inner: Arc::clone(&self.inner),
            authorizer: self.authorizer.clone(),
        }
    }
}

pub(crate) struct Inner<C> {
    pub(crate) channels: C,
    pub(crate) config: Config,
    pulse: Arc<Pulse>,
    ticker_started: AtomicBool,
    /// The built-in stream framings; each stream gets a copy, and every
    /// event's encoding is shared through the event itself.
    pub(crate) sse: Sse,
    pub(crate) ndjson: Ndjson,
    /// The WebSockets open, which outlive the HTTP exchange that opened them.
    pub(crate) sockets: Arc<Sockets>,
    pub(crate) publish_rates: Option<PublishRates>,
}

impl<C: Channels> Push<C> {
    /// Push services over the channel source `channels` with `config`.
    pub fn new(channels: C, config: Config) -> Self {
        let pulse = Pulse::with_retry(channels.limits().heartbeat, config.shutdown_retry);
        let sse = match config.sse_retry {
            Some(retry) => Sse::new().retry(retry),
            None => Sse::new(),
        };
        Push {
            inner: Arc::new(Inner {
                channels,
                config,
                pulse,
                ticker_started: AtomicBool::new(false),
                sse,
                ndjson: Ndjson,
                sockets: Arc::default(),
                publish_rates: config.publish_rate.map(PublishRates::new),
            }),
            authorizer: None,
        }
    }

    /// This `Push` with every request that names a channel decided by
    /// `authorizer` first, through the router and every technique's service
    /// made from it afterwards; see [`authorize`](crate::authorize).
    ///
    /// The result shares everything else with `self` (channels, config,
    /// heartbeat, shutdown), so one hub can be served under several
    /// authorizers: an open router for readers beside a guarded one for
    /// publishers, say.
    pub fn with_authorizer(mut self, authorizer: impl Authorize) -> Self {
        self.authorizer = Some(Arc::new(authorizer));
        self
    }

    /// The channel source.
    pub fn channels(&self) -> &C {
        &self.inner.channels
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// Registers a stream for heartbeat ticks and shutdown. Starts the shared
    /// ticker on first use: services may be built outside a runtime, but
    /// streams are polled inside one.
    pub(crate) fn listen(&self) -> Listener {
        let inner = &self.inner;
        if !inner.ticker_started.swap(true, Ordering::AcqRel) {
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) => drop(runtime.spawn(inner.pulse.ticker())),
                Err(_) => inner.ticker_started.store(false, Ordering::Release),
            }
        }
        inner.pulse.listen()
    }

    /// Starts a graceful shutdown: every open stream ends with the shutdown
    /// signal carrying its cursor, held long polls answer `503` with
    /// `Retry-After`, and new subscriptions are refused the same way.
    ///
    /// [`serve`](crate::serve()) calls it when its shutdown signal fires if
    /// given the push with [`Serve::with_push`](crate::Serve::with_push);
    /// under another server, call it (or use [`Push::shutdown_on`]) when
    /// that server starts draining, or streams keep its connections open.
    pub fn shutdown(&self) {
        self.inner.pulse.shut_down();
    }

    /// Waits for `signal`, then [shuts down](Push::shutdown): the future to
    /// hand another server's graceful shutdown, so that streams end with the
    /// shutdown signal as soon as it starts draining.
    ///
    /// ```no_run
    /// use push_core::{Hub, HubConfig};
    /// use push_tower::{Config, Push};
    ///
    /// # async fn run() -> std::io::Result<()> {
    /// let push = Push::new(Hub::new(HubConfig::default()), Config::default());
    /// let app = axum::Router::new().nest_service("/push", push.router());
    /// let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    /// axum::serve(listener, app)
    ///     .with_graceful_shutdown(push.shutdown_on(async {
    ///         let _ = tokio::signal::ctrl_c().await;
    ///     }))
    ///     .await
    /// # }
    /// ```
    pub fn shutdown_on(
        &self,
        signal: impl Future<Output = ()> + Send + 'static,
    ) -> impl Future<Output = ()> + Send + 'static {
        let push = self.clone();
        async move {
            signal.await;
            push.shutdown();
        }
    }

    /// Whether [`Push::shutdown`] was called.
    pub fn is_shutting_down(&self) -> bool {
        self.inner.pulse.is_shutting_down()
    }

    /// `Ok` while new subscriptions are accepted; the `shutting_down`
    /// refusal, with `Retry-After`, once a graceful shutdown started.
    pub(crate) fn accepting(&self) -> Result<(), WireError> {
        if self.is_shutting_down() {
            return Err(WireError::shutting_down(
                self.inner.pulse.retry().draw_secs(),
            ));
        }
        Ok(())
    }

    /// What a server waits for when it drains: the shutdown switch, and the
    /// WebSockets that outlive their HTTP exchange.
    pub(crate) fn drain(&self) -> Drain {
        Drain {
            pulse: Arc::clone(&self.inner.pulse),
            sockets: Arc::clone(&self.inner.sockets),
            lag_grace: self.inner.config.lag_grace,
        }
    }
}

/// A count of open WebSockets, so that a draining server waits for their
/// close handshakes as it waits for its connections.
#[derive(Debug, Default)]
pub(crate) struct Sockets {
    open: AtomicUsize,
    all_closed: Notify,
}

impl Sockets {
    /// Counts a socket as open until the guard is dropped.
    pub(crate) fn open(self: &Arc<Self>) -> SocketGuard {
        self.open.fetch_add(1, Ordering::AcqRel);
        SocketGuard(Arc::clone(self))
    }

    /// Waits until no socket is open.
    pub(crate) async fn all_closed(&self) {
        loop {
            let notified = self.all_closed.notified();
            if self.open.load(Ordering::Acquire) == 0 {
                return;
            }
            notified.await;
        }
    }
}

/// Keeps one WebSocket counted as open.
#[derive(Debug)]
pub(crate) struct SocketGuard(Arc<Sockets>);

impl Drop for SocketGuard {
    fn drop(&mut self) {
        if self.0.open.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.all_closed.notify_waiters();
        }
    }
}

/// A push's part in a server's drain; see [`Push::drain`].
#[derive(Clone, Debug)]
pub(crate) struct Drain {
    pub(crate) pulse: Arc<Pulse>,
    pub(crate) sockets: Arc<Sockets>,
    pub(crate) lag_grace: Duration,
}

impl<C: fmt::Debug> fmt::Debug for Push<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Push")
            .field("channels", &self.inner.channels)
            .field("config", &self.inner.config)
            .field("authorized", &self.authorizer.is_some())
            .finish()
    }
}
