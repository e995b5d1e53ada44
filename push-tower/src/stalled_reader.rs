//! Disconnecting HTTP/1.1 clients that stopped reading.
//!
//! A client that stops reading is never polled for more: hyper stops pulling
//! from the body once its buffers and the socket's are full, so the body
//! never learns that its channel lagged it. The subscription wakes a lag
//! waker instead ([`Subscription::on_lag`](push_core::Subscription::on_lag)),
//! which raises this connection's watch. If the stream then ends with the lagged signal, the client was
//! merely slow and the connection goes on; if it does not within the grace
//! period, the client stopped reading and the connection is dropped.
//!
//! HTTP/2 streams share their connection, so one stalled stream must not
//! take the others down; they keep the lazy behaviour (the lagged signal
//! when the client reads again), with memory bounded all the same.

use std::future::poll_fn;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Poll, Wake, Waker};

use atomic_waker::AtomicWaker;

/// One connection's watch for stalled readers; a request extension for its
/// streams.
#[derive(Clone, Default)]
pub(crate) struct StalledReader(Arc<Inner>);

#[derive(Default)]
struct Inner {
    /// Streams of this connection their channel lagged.
    raised: AtomicU64,
    /// Of those, the ones that ended with the lagged signal.
    resolved: AtomicU64,
    waker: AtomicWaker,
}

impl Wake for Inner {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.raised.fetch_add(1, Ordering::AcqRel);
        self.waker.wake();
    }
}

impl StalledReader {
    /// The waker a subscription wakes when its source lags it.
    pub(crate) fn lag_waker(&self) -> Waker {
        Waker::from(Arc::clone(&self.0))
    }

    /// A lagged stream ended with the lagged signal.
    pub(crate) fn resolve(&self) {
        self.0.resolved.fetch_add(1, Ordering::AcqRel);
        self.0.waker.wake();
    }

    fn pending(&self) -> bool {
        self.0.raised.load(Ordering::Acquire) > self.0.resolved.load(Ordering::Acquire)
    }

    /// Completes once some lagged stream has not ended yet.
    pub(crate) async fn raised(&self) {
        self.until(true).await;
    }

    /// Completes once every lagged stream has ended.
    pub(crate) async fn cleared(&self) {
        self.until(false).await;
    }

    async fn until(&self, pending: bool) {
        poll_fn(|cx| {
            self.0.waker.register(cx.waker());
            if self.pending() == pending {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn raised_until_resolved() {
        let watch = StalledReader::default();
        assert!(!watch.pending());
        watch.lag_waker().wake();
        watch.raised().await;
        let waiting = tokio::spawn({
            let watch = watch.clone();
            async move { watch.cleared().await }
        });
        watch.resolve();
        waiting.await.unwrap();
        assert!(!watch.pending());
    }
}
