//! The [`Gate`]: polling a stream's sources only when one of them woke it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Wake, Waker};

/// A waker for a task's rarely ready sources that records whether they
/// woke it, so that the task polls them only when one did.
///
/// A server polls a body several times per wakeup: hyper's HTTP/1.1
/// dispatcher asks for more after buffering a frame and again after each
/// flush. Each of those polls used to take from the subscription (locking
/// the channel to find nothing new) and re-register with the pulse. The
/// gate is the waker the subscription and the pulse are given instead of
/// the task's: it records that a source woke it before waking the task, so
/// a poll that nothing woke since the sources were last armed returns
/// `Pending` at once.
///
/// Wakes also coalesce: while the gate is open (woken, not yet passed), a
/// second wake does not schedule the task again.
///
/// [`Frames`](crate::engine::Frames) polls its subscription and pulse
/// through one; push-tower's server polls a connection's shutdown and stalled-reader
/// watches through another, so that a wakeup for a delivery polls neither.
///
/// ```
/// use std::future::{poll_fn, Future};
/// use std::pin::pin;
/// use std::task::{Context, Poll};
/// use push_core::engine::Gate;
///
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// let mut gate = Gate::new();
/// let mut rare = pin!(tokio::time::sleep(std::time::Duration::from_millis(10)));
/// let mut busy_polls = 0;
/// poll_fn(|cx| {
///     if gate.pass(cx) {
///         if rare.as_mut().poll(&mut Context::from_waker(gate.waker())).is_ready() {
///             return Poll::Ready(());
///         }
///         gate.set_armed(true);
///     }
///     // The task's frequent work; the sleep is not polled again until it
///     // wakes the gate.
///     busy_polls += 1;
///     Poll::Pending
/// })
/// .await;
/// assert!(busy_polls >= 1);
/// # });
/// ```
pub struct Gate {
    shared: Arc<Shared>,
    /// `shared` as a waker, made once.
    waker: Waker,
    /// The task last registered, kept here so that an unchanged task is
    /// recognised without taking the lock.
    task: Option<Waker>,
    /// Whether every source was polled with the gate's waker since it last
    /// passed, so that only a wake can make a new poll of them useful.
    armed: bool,
}

struct Shared {
    woken: AtomicBool,
    /// Always the task of the last poll: a wake never takes it, so the
    /// task need not register again after each one.
    task: Mutex<Option<Waker>>,
}

impl Shared {
    fn task(&self) -> MutexGuard<'_, Option<Waker>> {
        self.task
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Wake for Shared {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        // Already open: the task was woken when it opened and has not
        // passed since, so it will see this wake's cause too.
        if !self.woken.swap(true, Ordering::AcqRel) {
            if let Some(task) = &*self.task() {
                task.wake_by_ref();
            }
        }
    }
}

impl Default for Gate {
    fn default() -> Self {
        Gate::new()
    }
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gate")
            .field("woken", &self.shared.woken.load(Ordering::Acquire))
            .field("armed", &self.armed)
            .finish()
    }
}

impl Gate {
    /// A closed, unarmed gate: the first [`pass`](Gate::pass) is `true`.
    pub fn new() -> Self {
        let shared = Arc::new(Shared {
            woken: AtomicBool::new(false),
            task: Mutex::new(None),
        });
        Gate {
            waker: Waker::from(Arc::clone(&shared)),
            shared,
            task: None,
            armed: false,
        }
    }

    /// Whether the sources must be polled now (with [`Gate::waker`]):
    /// something woke the gate since they were armed, or they are not armed.
    /// Either way the task of `cx` is the one the next wake reaches.
    #[inline]
    pub fn pass(&mut self, cx: &Context<'_>) -> bool {
        if !self
            .task
            .as_ref()
            .is_some_and(|task| task.will_wake(cx.waker()))
        {
            // Registered before `woken` is read, so that no wake falls
            // between the two unseen.
            *self.shared.task() = Some(cx.waker().clone());
            self.task = Some(cx.waker().clone());
        }
        let woken = self.shared.woken.swap(false, Ordering::AcqRel);
        woken || !self.armed
    }

    /// Records whether every source was just polled with [`Gate::waker`]
    /// and is waiting on it: once armed, [`Gate::pass`] is `true` only after
    /// a wake.
    #[inline]
    pub fn set_armed(&mut self, armed: bool) {
        self.armed = armed;
    }

    /// The waker to poll the sources with.
    #[inline]
    pub fn waker(&self) -> &Waker {
        &self.waker
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    struct CountingWaker(AtomicUsize);

    impl Wake for CountingWaker {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn counting() -> (Arc<CountingWaker>, Waker) {
        let count = Arc::new(CountingWaker(AtomicUsize::new(0)));
        let waker = Waker::from(Arc::clone(&count));
        (count, waker)
    }

    #[test]
    fn passes_until_armed_then_only_when_woken() {
        let (count, task) = counting();
        let cx = Context::from_waker(&task);
        let mut gate = Gate::new();
        assert!(gate.pass(&cx), "not armed yet");
        gate.set_armed(true);
        assert!(!gate.pass(&cx));
        gate.waker().wake_by_ref();
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        assert!(gate.pass(&cx));
        assert!(!gate.pass(&cx), "one wake opens the gate once");
    }

    #[test]
    fn wakes_coalesce_until_the_gate_passes() {
        let (count, task) = counting();
        let cx = Context::from_waker(&task);
        let mut gate = Gate::new();
        gate.pass(&cx);
        gate.set_armed(true);
        gate.waker().wake_by_ref();
        gate.waker().wake_by_ref();
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        assert!(gate.pass(&cx));
        gate.waker().wake_by_ref();
        assert_eq!(count.0.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn a_new_task_is_woken_and_passes() {
        let (first_count, first) = counting();
        let (second_count, second) = counting();
        let mut gate = Gate::new();
        gate.pass(&Context::from_waker(&first));
        gate.set_armed(true);
        assert!(!gate.pass(&Context::from_waker(&second)));
        gate.waker().wake_by_ref();
        assert_eq!(first_count.0.load(Ordering::SeqCst), 0);
        assert_eq!(second_count.0.load(Ordering::SeqCst), 1);
    }
}
