//! The `Channel` trait: one channel, the unit a storage backend implements.
//!
//! Techniques reach storage by channel name, through
//! [`Channels`](crate::Channels); a backend that keeps one object per channel
//! implements `Channel` for it and serves names with a map of its own, as
//! push-tower's `custom_backend` example does. [`MemoryChannel`](crate::MemoryChannel)
//! is the in-memory implementation.
//!
//! # The rules every implementation follows
//!
//! The conformance suite checks these through every technique; a channel that
//! breaks one breaks them all. "Point N" is the numbered point of the
//! repository's `PROTOCOL.md` ("The semantics contract") that the rule serves.
//!
//! 1. **Ids** (point 1). [`Channel::publish`] gives each event an [`EventId`]
//!    of the current incarnation's [`Epoch`](crate::Epoch), with sequence
//!    numbers counting from 1 without holes. A new incarnation (after
//!    [`Channel::close`]) draws a new epoch.
//! 2. **Order and completeness** (points 2 and 3). A subscription yields
//!    every event published after its start position exactly once, in publish
//!    order, under concurrent publishers too. The switch from retained
//!    history to live events has no gap and no duplicate.
//! 3. **Position first** (point 3). The first item of every subscription is
//!    [`Signal::Position`] with the cursor delivery starts after: the client's
//!    own cursor for [`Start::After`], the head for [`Start::Now`], the
//!    position before the oldest retained event for [`Start::Earliest`].
//! 4. **Caught up on return** (points 3 and 10). When [`Channel::subscribe`]
//!    completes, the position, any gap and every retained event after the
//!    start are ready to take without waiting: a subscription waits only for
//!    events not yet published. Short polls answer with what is ready, so a
//!    remote store fetches the backlog before `subscribe` returns.
//! 5. **Gaps are said, never hidden** (point 4). For [`Start::After`] with a
//!    cursor of another incarnation, or one whose following events are no
//!    longer retained, the second item is [`Signal::Gap`] carrying the
//!    position before the oldest retained event, and delivery continues from
//!    there. Never otherwise: a cursor whose following events are all
//!    retained (the head included) gets no gap. A cursor of this incarnation
//!    past the head is [`Error::CursorAhead`].
//! 6. **Slow subscribers are bounded** (point 7). A subscriber that stops
//!    taking items never makes the channel hold more than
//!    [`Limits::subscriber_buffer_bytes`] on its behalf beyond the retained
//!    history. When the next event it needs is no longer held, it gets
//!    [`Signal::Lagged`] with the last event it took, and its subscription
//!    ends; it resumes from that cursor. A subscription that can tell when
//!    this happens wakes its [`Subscription::on_lag`] waker.
//! 7. **Ends** (point 8). After [`Channel::close`] each subscription yields
//!    the events published before the close, then [`Signal::Closed`], then
//!    ends. A subscription also ends (with no item) when dropped; dropping
//!    frees its place at once.
//! 8. **Cancellation.** Dropping a subscription or any future of this trait
//!    at any point leaves the channel consistent.
//!
//! [`Error::CursorAhead`]: crate::Error::CursorAhead

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use futures_core::Stream;

use crate::error::Error;
use crate::event::{Event, Message};
use crate::id::EventId;
use crate::signal::Item;
#[cfg(doc)]
use crate::signal::Signal;
use crate::start::Start;

/// A channel: publish events, subscribe from a position, describe, close.
///
/// Methods are async because a remote backend needs them to be; the
/// in-memory channel completes them at once. See the [module docs](self) for
/// the rules every implementation follows.
pub trait Channel: Clone + Send + Sync + 'static {
    /// The stream of items a subscription yields.
    type Subscription: Subscription;

    /// Stores `message` as the channel's next event and delivers it to every
    /// subscriber.
    ///
    /// # Errors
    ///
    /// [`Error::TooLarge`] if the data is over [`Limits::max_event_bytes`];
    /// [`Error::Closed`] if the channel was closed; [`Error::Backend`] if a
    /// remote store failed.
    fn publish(&self, message: Message) -> impl Future<Output = Result<EventId, Error>> + Send;

    /// Subscribes from `start`.
    ///
    /// # Errors
    ///
    /// [`Error::CursorAhead`] for a cursor of this incarnation past the head;
    /// [`Error::Backend`] if a remote store failed.
    fn subscribe(
        &self,
        start: Start,
    ) -> impl Future<Output = Result<Self::Subscription, Error>> + Send;

    /// Ends this incarnation: subscribers get [`Signal::Closed`] after the
    /// events published before the close.
    ///
    /// # Errors
    ///
    /// [`Error::Backend`] if a remote store failed.
    fn close(&self) -> impl Future<Output = Result<(), Error>> + Send;

    /// Describes the channel: head, retained history, subscribers, limits.
    ///
    /// # Errors
    ///
    /// [`Error::Backend`] if a remote store failed.
    fn describe(&self) -> impl Future<Output = Result<ChannelInfo, Error>> + Send;

    /// Looks up one event by id.
    ///
    /// # Errors
    ///
    /// [`Error::Backend`] if a remote store failed.
    fn lookup(&self, id: EventId) -> impl Future<Output = Result<Lookup, Error>> + Send;
}

/// A channel's answer to [`Channel::lookup`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lookup {
    /// The event is retained.
    Found(Event),
    /// The event was published but is no longer retained, or the id is of
    /// another incarnation.
    Gone,
    /// The id is of this incarnation but past the head.
    NotPublished,
}

/// A subscription: a stream of [`Item`]s, with a way to take several at once
/// and a way to learn that it was lagged while nobody polled it.
///
/// It follows the rules of the [module docs](self): the position first, a
/// gap when one applies, every event once in order, and `Lagged` or `Closed`
/// as its last item.
pub trait Subscription: Stream<Item = Item> + Send + Unpin + 'static {
    /// Takes several ready items at once, so that a technique can coalesce
    /// what is queued into one write.
    ///
    /// Appends to `out` the items that are ready, at most `max_items` of them
    /// and stopping once their data reaches `max_bytes` (one item is always
    /// taken even if larger).
    ///
    /// Returns `Poll::Ready(n)` with the number of items appended, `0`
    /// meaning the subscription has ended; `Poll::Pending` when none is ready,
    /// after arranging for the task to be woken.
    ///
    /// The default polls [`Stream::poll_next`] until it would wait; override
    /// it to take several items under one lock.
    fn poll_take(
        &mut self,
        cx: &mut Context<'_>,
        out: &mut Vec<Item>,
        max_items: usize,
        max_bytes: usize,
    ) -> Poll<usize> {
        let mut taken = 0;
        let mut bytes = 0;
        while taken < max_items.max(1) && (taken == 0 || bytes < max_bytes) {
            match Pin::new(&mut *self).poll_next(cx) {
                Poll::Ready(Some(item)) => {
                    if let Item::Event(event) = &item {
                        bytes += event.data().len();
                    }
                    let terminal = matches!(&item, Item::Signal(s) if s.is_terminal());
                    out.push(item);
                    taken += 1;
                    if terminal {
                        break;
                    }
                }
                Poll::Ready(None) => break,
                Poll::Pending if taken == 0 => return Poll::Pending,
                Poll::Pending => break,
            }
        }
        Poll::Ready(taken)
    }
    /// Arranges for `waker` to be woken, once, as soon as this subscription
    /// is lagged: its source dropped an event it had not taken, so its next
    /// item will be [`Signal::Lagged`]. Unlike a poll's wakeup this must fire
    /// even while nobody polls the subscription, so that a server can tell a
    /// client that stopped reading (whose response body is no longer polled)
    /// from one that is merely slow, and drop its connection. Wake it after
    /// releasing any lock of your own. A later call replaces the waker.
    ///
    /// The default does nothing, for a source that cannot tell. Its
    /// subscribers still get `Lagged` when they are next polled, and the
    /// source's memory is bounded all the same (rule 6); only a stalled
    /// HTTP/1.1 connection is then kept open until the client reads again or
    /// goes away, instead of being dropped after a grace period.
    fn on_lag(&mut self, waker: Waker) {
        let _ = waker;
    }
}

/// A channel's limits, as the wire contract's channel info reports them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The most events retained for resume.
    pub history_events: usize,
    /// The most bytes of event data retained for resume.
    pub history_bytes: usize,
    /// How long an event is retained at most, if limited by age.
    pub history_age: Option<Duration>,
    /// The most bytes held for one subscriber beyond the retained history
    /// before it is lagged; at least twice `max_event_bytes`.
    pub subscriber_buffer_bytes: usize,
    /// The interval of heartbeats on idle streams.
    pub heartbeat: Duration,
    /// The longest a long poll is held.
    pub long_poll_max: Duration,
    /// The largest event data accepted, in bytes.
    pub max_event_bytes: usize,
}

impl Default for Limits {
    /// 1,000 events and 16 MiB of history, a 4 MiB subscriber bound,
    /// 15 s heartbeats, 30 s long polls, 1 MiB events.
    fn default() -> Self {
        Limits {
            history_events: 1_000,
            history_bytes: 16 * 1024 * 1024,
            history_age: None,
            subscriber_buffer_bytes: 4 * 1024 * 1024,
            heartbeat: Duration::from_secs(15),
            long_poll_max: Duration::from_secs(30),
            max_event_bytes: 1024 * 1024,
        }
    }
}

impl Limits {
    /// Checks that the limits are consistent.
    ///
    /// # Errors
    ///
    /// Returns a message saying what to change when `subscriber_buffer_bytes`
    /// is less than twice `max_event_bytes`, or when `history_events`,
    /// `max_event_bytes`, `heartbeat` or `long_poll_max` is zero.
    pub fn validate(&self) -> Result<(), String> {
        if self.subscriber_buffer_bytes < self.max_event_bytes.saturating_mul(2) {
            return Err(format!(
                "subscriber_buffer_bytes ({}) must be at least twice max_event_bytes ({}); raise it or lower max_event_bytes",
                self.subscriber_buffer_bytes, self.max_event_bytes
            ));
        }
        if self.history_events == 0 {
            return Err("history_events must be at least 1".into());
        }
        if self.max_event_bytes == 0 {
            return Err("max_event_bytes must be at least 1".into());
        }
        if self.heartbeat.is_zero() || self.long_poll_max.is_zero() {
            return Err("heartbeat and long_poll_max must be longer than zero".into());
        }
        Ok(())
    }
}

/// What [`Channel::describe`] reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelInfo {
    /// The newest id (`<epoch>-0` before the first event).
    pub head: EventId,
    /// The oldest retained event, if any.
    pub earliest: Option<EventId>,
    /// How many events are retained.
    pub retained: usize,
    /// How many subscriptions are open.
    pub subscribers: usize,
    /// Bytes of event data queued for subscribers now: for each subscriber,
    /// the data published after its position and not yet taken, counted up
    /// to [`Limits::subscriber_buffer_bytes`].
    pub buffered_bytes: u64,
    /// The channel's limits.
    pub limits: Limits,
}
