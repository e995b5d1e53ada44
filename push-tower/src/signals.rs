//! One shared heartbeat tick and one shutdown switch for every connection.
//!
//! A timer per connection costs memory and wakeups for ten thousand idle
//! streams; instead one task ticks four times per heartbeat interval and wakes
//! every registered stream, which sends a heartbeat once it has been idle for
//! three ticks (between half and the whole interval).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::Context;
use std::time::Duration;

use atomic_waker::AtomicWaker;
use slab::Slab;

/// Ticks of idleness after which a stream sends a heartbeat.
pub(crate) const IDLE_TICKS: u64 = 3;
const TICKS_PER_INTERVAL: u32 = 4;

pub(crate) struct Signals {
    interval: Duration,
    tick: AtomicU64,
    shutting_down: AtomicBool,
    listeners: Mutex<Slab<Arc<AtomicWaker>>>,
    ticker_started: AtomicBool,
}

impl Signals {
    pub(crate) fn new(heartbeat: Duration) -> Arc<Self> {
        Arc::new(Signals {
            interval: heartbeat,
            tick: AtomicU64::new(0),
            shutting_down: AtomicBool::new(false),
            listeners: Mutex::new(Slab::new()),
            ticker_started: AtomicBool::new(false),
        })
    }

    pub(crate) fn tick(&self) -> u64 {
        self.tick.load(Ordering::Acquire)
    }

    pub(crate) fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Acquire)
    }

    pub(crate) fn shut_down(&self) {
        self.shutting_down.store(true, Ordering::Release);
        self.wake_all();
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

    /// Registers a connection for ticks and shutdown; starts the ticker on
    /// first use (services may be built outside a runtime, bodies are not).
    pub(crate) fn listen(self: &Arc<Self>) -> Listener {
        if !self.ticker_started.swap(true, Ordering::AcqRel) {
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(run_ticker(Arc::downgrade(self), self.interval));
            } else {
                self.ticker_started.store(false, Ordering::Release);
            }
        }
        let waker = Arc::new(AtomicWaker::new());
        let key = self.listeners().insert(Arc::clone(&waker));
        Listener {
            signals: Arc::clone(self),
            waker,
            key,
        }
    }
}

async fn run_ticker(signals: Weak<Signals>, interval: Duration) {
    let period = (interval / TICKS_PER_INTERVAL).max(Duration::from_millis(1));
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    loop {
        ticker.tick().await;
        let Some(signals) = signals.upgrade() else {
            return;
        };
        signals.tick.fetch_add(1, Ordering::AcqRel);
        signals.wake_all();
    }
}

/// One connection's registration; unregisters on drop.
pub(crate) struct Listener {
    signals: Arc<Signals>,
    waker: Arc<AtomicWaker>,
    key: usize,
}

impl Listener {
    pub(crate) fn register(&self, cx: &mut Context<'_>) {
        self.waker.register(cx.waker());
    }

    pub(crate) fn signals(&self) -> &Signals {
        &self.signals
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.signals.listeners().remove(self.key);
    }
}
