//! The link between a push stream's body and the HTTP/2 loop that sends
//! its promises.
//!
//! A body cannot push: only the loop holds the stream's `h2` handle. So the
//! loop gives each `GET` of a client that accepts push a [`ServerPush`]
//! extension; the push technique's body hands it one [`Pushed`] response per
//! event while it is polled, and the loop, which polls that body, sends the
//! queued promises before the next bytes of the parent stream: promises and
//! parent lines leave in the order the body made them.

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use http::Response;

/// The most pushed responses per parent stream promised and not yet fully
/// sent, unless the client allows fewer concurrent streams.
pub(crate) const MAX_PUSHES_IN_FLIGHT: usize = 16;

/// A request extension: this request's stream can push. See the module
/// docs.
#[derive(Clone)]
pub(crate) struct ServerPush(Arc<Mutex<Link>>);

struct Link {
    /// Handed over by the body and not yet promised.
    queue: VecDeque<Pushed>,
    /// Promised and not yet fully sent.
    in_flight: usize,
    limit: usize,
    /// A promise failed (the client disabled push, say): send inline.
    refused: bool,
    /// The body, waiting for room.
    waker: Option<Waker>,
}

/// A response to push.
pub(crate) struct Pushed {
    /// The promised request's path, under the parent request's scheme and
    /// authority.
    pub(crate) path: String,
    pub(crate) response: Response<Bytes>,
    /// What the parent stream carries instead if the promise fails.
    pub(crate) inline: Bytes,
}

impl ServerPush {
    /// A link for one stream allowing `limit` pushes in flight.
    pub(super) fn new(limit: usize) -> Self {
        ServerPush(Arc::new(Mutex::new(Link {
            queue: VecDeque::new(),
            in_flight: 0,
            limit: limit.max(1),
            refused: false,
            waker: None,
        })))
    }

    fn link(&self) -> MutexGuard<'_, Link> {
        // Nothing panics while holding the lock; recover the data anyway.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Ready when another push may be handed over (or pushing failed and
    /// events go inline).
    pub(crate) fn poll_room(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut link = self.link();
        if link.refused || link.queue.len() + link.in_flight < link.limit {
            return Poll::Ready(());
        }
        link.waker = Some(cx.waker().clone());
        Poll::Pending
    }

    /// Whether pushing failed, so that events must go inline.
    pub(crate) fn is_refused(&self) -> bool {
        self.link().refused
    }

    /// Hands over a response to push before whatever the body yields next.
    pub(crate) fn push(&self, pushed: Pushed) {
        self.link().queue.push_back(pushed);
    }

    /// The loop takes what to promise now; each counts as in flight until
    /// [`ServerPush::finished`].
    pub(super) fn take(&self) -> VecDeque<Pushed> {
        let mut link = self.link();
        link.in_flight += link.queue.len();
        std::mem::take(&mut link.queue)
    }

    /// `count` pushes were sent (or reset, or failed): room for as many.
    pub(super) fn finished(&self, count: usize) {
        let mut link = self.link();
        link.in_flight = link.in_flight.saturating_sub(count);
        if let Some(waker) = link.waker.take() {
            waker.wake();
        }
    }

    /// Promising failed: from now on the body sends events inline.
    pub(super) fn refuse(&self) {
        let mut link = self.link();
        link.refused = true;
        if let Some(waker) = link.waker.take() {
            waker.wake();
        }
    }
}

impl fmt::Debug for ServerPush {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let link = self.link();
        f.debug_struct("ServerPush")
            .field("queued", &link.queue.len())
            .field("in_flight", &link.in_flight)
            .field("limit", &link.limit)
            .field("refused", &link.refused)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pushed(n: usize) -> Pushed {
        Pushed {
            path: format!("/channels/a/messages/{n}"),
            response: Response::new(Bytes::new()),
            inline: Bytes::new(),
        }
    }

    #[test]
    fn room_is_the_limit_less_what_is_queued_and_in_flight() {
        let link = ServerPush::new(2);
        let mut cx = Context::from_waker(Waker::noop());
        link.push(pushed(1));
        assert!(link.poll_room(&mut cx).is_ready());
        link.push(pushed(2));
        assert!(link.poll_room(&mut cx).is_pending());
        assert_eq!(link.take().len(), 2);
        assert!(link.poll_room(&mut cx).is_pending(), "in flight counts");
        link.finished(1);
        assert!(link.poll_room(&mut cx).is_ready());
        link.push(pushed(3));
        assert!(link.poll_room(&mut cx).is_pending());
        link.refuse();
        assert!(link.poll_room(&mut cx).is_ready(), "inline needs no room");
        assert!(link.is_refused());
    }
}
