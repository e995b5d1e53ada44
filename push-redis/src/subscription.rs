//! A subscription to a channel followed on this node.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use futures_core::Stream;
use push_core::{Item, MemorySubscription, Signal, Subscription};

use crate::follow::{End, Follower};

/// A subscription of [`RedisChannels`](crate::RedisChannels): the local
/// follower's subscription, whose end says `shutdown` instead of `closed`
/// when the follower lost its copy of the channel (Redis unreachable past
/// the grace, or restarted without the incarnation), so that the client
/// reconnects with its cursor.
pub struct RedisSubscription {
    inner: MemorySubscription,
    /// Held so the node keeps following the channel.
    follower: Arc<Follower>,
}

impl RedisSubscription {
    pub(crate) fn new(inner: MemorySubscription, follower: Arc<Follower>) -> Self {
        RedisSubscription { inner, follower }
    }

    fn translate(&self, item: &mut Item) {
        if let Item::Signal(Signal::Closed(cursor)) = *item {
            if self.follower.end() == End::Lost {
                *item = Item::Signal(Signal::Shutdown(cursor));
            }
        }
    }
}

impl std::fmt::Debug for RedisSubscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisSubscription")
            .field("stream", &self.follower.stream)
            .finish_non_exhaustive()
    }
}

impl Stream for RedisSubscription {
    type Item = Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Item>> {
        let mut polled = Pin::new(&mut self.inner).poll_next(cx);
        if let Poll::Ready(Some(item)) = &mut polled {
            self.translate(item);
        }
        polled
    }
}

impl Subscription for RedisSubscription {
    fn poll_take(
        &mut self,
        cx: &mut Context<'_>,
        out: &mut Vec<Item>,
        max_items: usize,
        max_bytes: usize,
    ) -> Poll<usize> {
        let start = out.len();
        let taken = self.inner.poll_take(cx, out, max_items, max_bytes);
        if let Some(last) = out[start..].last_mut() {
            self.translate(last);
        }
        taken
    }

    fn on_lag(&mut self, waker: Waker) {
        self.inner.on_lag(waker);
    }
}
