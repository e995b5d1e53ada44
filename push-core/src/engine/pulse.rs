//! One shared heartbeat tick and one shutdown switch for every stream.
//!
//! A timer per connection costs memory and wakeups for ten thousand idle
//! streams; instead one task ([`Pulse::ticker`]) ticks four times per
//! heartbeat interval and wakes every listening stream, which sends a
//! heartbeat once it has been idle for three ticks (between half and the
//! whole interval).

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::Context;
use std::time::Duration;

use atomic_waker::AtomicWaker;
use slab::Slab;

use super::RetryWindow;

/// Ticks of idleness after which a stream sends a heartbeat.
pub(crate) const IDLE_TICKS: u64 = 3;
const TICKS_PER_INTERVAL: u32 = 4;

/// The heartbeat tick and the shutdown switch that every stream of a server
/// listens to.
///
/// Create one per server, spawn its [`ticker`](Pulse::ticker), and hand each
/// stream a [`Listener`]. [`Pulse::shut_down`] ends every stream with the
/// shutdown signal.
///
/// ```
/// use std::time::Duration;
/// use push_core::engine::Pulse;
///
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// let pulse = Pulse::new(Duration::from_millis(40));
/// tokio::spawn(pulse.ticker());
/// let before = pulse.tick();
/// tokio::time::sleep(Duration::from_millis(100)).await;
/// assert!(pulse.tick() > before);
/// pulse.shut_down();
/// assert!(pulse.is_shutting_down());
/// # });
/// ```
pub struct Pulse {
    interval: Duration,
    retry: RetryWindow,
    tick: AtomicU64,
    shutting_down: AtomicBool,
    listeners: Mutex<Slab<Arc<AtomicWaker>>>,
}

impl Pulse {
    /// A pulse for streams that send a heartbeat at least every `heartbeat`,
    /// telling clients to reconnect after a shutdown within the default
    /// [`RetryWindow`].
    pub fn new(heartbeat: Duration) -> Arc<Self> {
        Pulse::with_retry(heartbeat, RetryWindow::default())
    }

    /// A pulse whose shutdown tells each stream's client to reconnect after
    /// a delay drawn from `retry`.
    pub fn with_retry(heartbeat: Duration, retry: RetryWindow) -> Arc<Self> {
        Arc::new(Pulse {
            interval: heartbeat,
            retry,
            tick: AtomicU64::new(0),
            shutting_down: AtomicBool::new(false),
            listeners: Mutex::new(Slab::new()),
        })
    }

    /// The number of ticks so far.
    #[inline]
    pub fn tick(&self) -> u64 {
        self.tick.load(Ordering::Acquire)
    }

    /// The delays clients are told to wait before reconnecting once the
    /// pulse has shut down.
    #[inline]
    pub fn retry(&self) -> RetryWindow {
        self.retry
    }

    /// Whether [`Pulse::shut_down`] was called.
    #[inline]
    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Acquire)
    }

    /// Starts a graceful shutdown: every stream ends with the shutdown signal
    /// at its next poll, carrying a delay drawn from [`Pulse::retry`], and
    /// every listener is woken now.
    pub fn shut_down(&self) {
        self.shutting_down.store(true, Ordering::Release);
        self.wake_all();
    }

    /// The task that ticks four times per heartbeat interval; spawn it once,
    /// on a Tokio runtime with time enabled. It ends when the last handle to
    /// the pulse is dropped.
    pub fn ticker(self: &Arc<Self>) -> impl Future<Output = ()> + Send + 'static {
        let pulse = Arc::downgrade(self);
        let interval = self.interval;
        run_ticker(pulse, interval)
    }

    /// Registers a stream for ticks and shutdown; unregisters when dropped.
    pub fn listen(self: &Arc<Self>) -> Listener {
        let waker = Arc::new(AtomicWaker::new());
        let key = self.listeners().insert(Arc::clone(&waker));
        Listener {
            pulse: Arc::clone(self),
            waker,
            key,
        }
    }

    fn listeners(&self) -> MutexGuard<'_, Slab<Arc<AtomicWaker>>> {
        self.listeners
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn wake_all(&self) {
        for (_, waker) in self.listeners().iter() {
            waker.wake();
        }
    }
}

impl std::fmt::Debug for Pulse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pulse")
            .field("heartbeat", &self.interval)
            .field("retry", &self.retry)
            .field("tick", &self.tick())
            .field("shutting_down", &self.is_shutting_down())
            .finish()
    }
}

async fn run_ticker(pulse: Weak<Pulse>, interval: Duration) {
    let period = (interval / TICKS_PER_INTERVAL).max(Duration::from_millis(1));
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    loop {
        ticker.tick().await;
        let Some(pulse) = pulse.upgrade() else {
            return;
        };
        pulse.tick.fetch_add(1, Ordering::AcqRel);
        pulse.wake_all();
    }
}

/// One stream's registration with a [`Pulse`]; unregisters on drop.
pub struct Listener {
    pulse: Arc<Pulse>,
    waker: Arc<AtomicWaker>,
    key: usize,
}

impl Listener {
    /// Wakes the task of `cx` at the next tick or at shutdown.
    #[inline]
    pub fn register(&self, cx: &mut Context<'_>) {
        self.waker.register(cx.waker());
    }

    /// The pulse listened to.
    #[inline]
    pub fn pulse(&self) -> &Pulse {
        &self.pulse
    }
}

impl std::fmt::Debug for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listener").field("key", &self.key).finish()
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.pulse.listeners().remove(self.key);
    }
}
