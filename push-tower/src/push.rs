//! The state every push service shares: the hub, the configuration, the
//! heartbeat tick and the shutdown switch.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use push_core::delivery::{Ndjson, Sse};
use push_core::{Delivery, Hub};

use crate::signals::Signals;

/// Settings of the push services, with sensible defaults.
///
/// The heartbeat interval and the longest long-poll hold are channel limits
/// (the wire contract reports them in the channel info), so they live in the
/// hub's [`Limits`](push_core::Limits); the rest is here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// The most events in one poll or long-poll answer. Default 1,000.
    pub max_batch: usize,
    /// The long-poll hold when the client sends no `?timeout=`, capped by
    /// the hub's `long_poll_max`. Default 30 s.
    pub long_poll_default: Duration,
    /// `retry:` sent to SSE clients with the position, if any. Default 3 s.
    pub sse_retry: Option<Duration>,
    /// The most event bytes coalesced into one write. Default 256 KiB.
    pub max_write_bytes: usize,
    /// `Retry-After` (seconds) on answers refused during shutdown. Default 2.
    pub shutdown_retry_after: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_batch: 1_000,
            long_poll_default: Duration::from_secs(30),
            sse_retry: Some(Duration::from_secs(3)),
            max_write_bytes: 256 * 1024,
            shutdown_retry_after: 2,
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

    /// Sets [`Config::shutdown_retry_after`].
    pub fn shutdown_retry_after(mut self, secs: u32) -> Self {
        self.shutdown_retry_after = secs;
        self
    }
}

/// The shared state of every push service: a [`Hub`], a [`Config`], one
/// heartbeat tick for all connections and the graceful-shutdown switch.
///
/// Cheap to clone. Build services from it: [`Push::router`] for the whole
/// wire contract, or one technique with [`Push::sse`], [`Push::stream`],
/// [`Push::poll`], [`Push::long_poll`].
///
/// ```
/// use push_core::{Hub, HubConfig};
/// use push_tower::{Config, Push};
///
/// let push = Push::new(Hub::new(HubConfig::default()), Config::default());
/// let router = push.router();
/// let sse = push.sse();
/// # let _ = (router, sse);
/// ```
#[derive(Clone)]
pub struct Push {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) hub: Hub,
    pub(crate) config: Config,
    pub(crate) signals: Arc<Signals>,
    /// The built-in stream framings, shared by every stream.
    pub(crate) sse: Arc<dyn Delivery<Frame = Bytes>>,
    pub(crate) ndjson: Arc<dyn Delivery<Frame = Bytes>>,
}

impl Push {
    /// Push services over `hub` with `config`.
    pub fn new(hub: Hub, config: Config) -> Self {
        let signals = Signals::new(hub.config().limits.heartbeat);
        let sse = match config.sse_retry {
            Some(retry) => Sse::new().retry(retry),
            None => Sse::new(),
        };
        Push {
            inner: Arc::new(Inner {
                hub,
                config,
                signals,
                sse: Arc::new(sse),
                ndjson: Arc::new(Ndjson),
            }),
        }
    }

    /// The hub.
    pub fn hub(&self) -> &Hub {
        &self.inner.hub
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// Starts a graceful shutdown: every open stream ends with the shutdown
    /// signal carrying its cursor, held long polls answer `503` with
    /// `Retry-After`, and new subscriptions are refused the same way.
    pub fn shutdown(&self) {
        self.inner.signals.shut_down();
    }

    /// Whether [`Push::shutdown`] was called.
    pub fn is_shutting_down(&self) -> bool {
        self.inner.signals.is_shutting_down()
    }
}

impl fmt::Debug for Push {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Push")
            .field("hub", &self.inner.hub)
            .field("config", &self.inner.config)
            .finish()
    }
}
