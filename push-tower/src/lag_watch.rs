//! A waker that records that a subscription lagged, for a driver that has
//! stopped polling its frames (its client's window or socket is full).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::Wake;

use atomic_waker::AtomicWaker;

/// Give `Arc<LagWatch>` to
/// [`Frames::on_lag`](push_core::engine::Frames::on_lag) as a waker; the
/// driver registers its task and checks [`LagWatch::is_lagged`].
#[derive(Debug, Default)]
pub(crate) struct LagWatch {
    lagged: AtomicBool,
    pub(crate) task: AtomicWaker,
}

impl LagWatch {
    pub(crate) fn is_lagged(&self) -> bool {
        self.lagged.load(Ordering::Acquire)
    }
}

impl Wake for LagWatch {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.lagged.store(true, Ordering::Release);
        self.task.wake();
    }
}
