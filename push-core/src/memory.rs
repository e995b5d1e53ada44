//! The in-memory channel, the embedded default.
//!
//! Events live once in a shared log; subscribers hold a position in it, never
//! a copy. The log keeps the retained history (bounded by count, bytes and
//! optionally age) plus, while subscribers are behind, at most
//! [`Limits::subscriber_buffer_bytes`] of older events on their behalf. So a
//! subscriber that stops reading costs the channel at most that bound, and
//! the channel's memory never depends on how many subscribers it has.
//!
//! ```
//! use futures_util::StreamExt;
//! use push_core::{Channel, Data, Item, Limits, MemoryChannel, Message, Signal, Start};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let channel = MemoryChannel::new(Limits::default());
//! let first = channel.publish(Message::new(Data::text("one"))).await?;
//!
//! let mut subscription = channel.subscribe(Start::After(first)).await?;
//! channel.publish(Message::new(Data::text("two"))).await?;
//!
//! assert_eq!(subscription.next().await, Some(Item::Signal(Signal::Position(first))));
//! match subscription.next().await {
//!     Some(Item::Event(event)) => assert_eq!(event.data().as_text(), Some("two")),
//!     other => panic!("expected an event, got {other:?}"),
//! }
//! # Ok::<(), push_core::Error>(())
//! # }).unwrap();
//! ```

use std::collections::VecDeque;
use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use futures_core::Stream;
use slab::Slab;

use crate::channel::{Channel, ChannelInfo, Limits, Lookup, Subscription};
use crate::error::Error;
use crate::event::{Event, Message};
use crate::id::{CursorRelation, Epoch, EventId};
use crate::signal::{Item, Signal};
use crate::start::Start;
use crate::sync::{Arc, Mutex, MutexGuard};

/// What one event counts for in the history and subscriber bounds, beyond
/// its data and name: a fair share of the log entry and the event's
/// allocation, so that a flood of empty events is bounded too.
pub const EVENT_OVERHEAD_BYTES: usize = 64;

/// What `message` counts for in the history and subscriber bounds: its
/// data, its name and [`EVENT_OVERHEAD_BYTES`]. A store that trims by
/// [`Limits::history_bytes`] counts with this to keep the same window as
/// the in-memory channel.
pub fn history_cost(message: &Message) -> usize {
    message.data().len() + message.name().map_or(0, str::len) + EVENT_OVERHEAD_BYTES
}

/// An in-memory channel: retained history, live fan-out, bounded subscribers.
///
/// Cloning gives another handle to the same channel. See the
/// [module docs](self) for how memory is bounded, and [`Channel`] for the
/// rules it follows.
#[derive(Clone)]
pub struct MemoryChannel {
    shared: Arc<Shared>,
}

struct Shared {
    limits: Limits,
    state: Mutex<State>,
    /// Reused between publishes so that waking subscribers allocates nothing.
    wake_scratch: Mutex<Vec<Waker>>,
}

struct State {
    epoch: Epoch,
    head_seq: u64,
    /// Events from `front_seq()` to `head_seq`, in order.
    log: VecDeque<Entry>,
    /// The oldest event retained for resume; `head_seq + 1` when none is.
    history_start: u64,
    history_bytes: usize,
    /// Accounted bytes published so far: the end offset of the head event.
    published_bytes: u64,
    subscribers: Slab<Slot>,
    /// Keys of subscribers waiting for the next event.
    waiting: Vec<usize>,
    closed: bool,
    /// Set when a hub evicts the channel; handles still held go back to the hub.
    retired: bool,
    /// Subscribers with a lag waker; the eviction scan is skipped when none.
    lag_watchers: usize,
    /// Lag wakers due, woken once the lock is released.
    lagged: Vec<Waker>,
}

struct Entry {
    event: Event,
    cost: usize,
    end_offset: u64,
    published_at: Option<Instant>,
}

struct Slot {
    waker: Option<Waker>,
    waiting: bool,
    /// End offset of the last event taken: how far the subscriber has read.
    taken_offset: u64,
    /// Woken once when an event this subscriber has not taken is dropped.
    lag_waker: Option<Waker>,
}

/// An operation refused because a hub evicted the channel meanwhile.
pub(crate) struct Retired;

impl MemoryChannel {
    /// A new channel with these limits and a fresh random epoch.
    ///
    /// # Panics
    ///
    /// Panics if `limits` fail [`Limits::validate`] (a subscriber bound under
    /// twice the largest event, say); validate them first to report the
    /// problem instead.
    pub fn new(limits: Limits) -> Self {
        Self::with_epoch(limits, Epoch::random())
    }

    /// A new channel with these limits and this epoch.
    ///
    /// # Panics
    ///
    /// As [`MemoryChannel::new`].
    pub fn with_epoch(limits: Limits, epoch: Epoch) -> Self {
        if let Err(problem) = limits.validate() {
            panic!("invalid channel limits: {problem}");
        }
        MemoryChannel {
            shared: Arc::new(Shared {
                limits,
                state: Mutex::new(State {
                    epoch,
                    head_seq: 0,
                    log: VecDeque::new(),
                    history_start: 1,
                    history_bytes: 0,
                    published_bytes: 0,
                    subscribers: Slab::new(),
                    waiting: Vec::new(),
                    closed: false,
                    retired: false,
                    lag_watchers: 0,
                    lagged: Vec::new(),
                }),
                wake_scratch: Mutex::new(Vec::new()),
            }),
        }
    }

    /// A channel that follows a store numbering its events elsewhere (a
    /// remote store, mirrored on this node for local fan-out): its epoch is
    /// `head`'s, it holds no event yet, and its next event is `head`'s
    /// successor, given with [`MemoryChannel::publish_with_id`]. Fed the
    /// same events, it retains the same window as any other follower or
    /// store that trims by the same limits, so a cursor meets the same gap
    /// on every node.
    ///
    /// # Panics
    ///
    /// As [`MemoryChannel::new`].
    pub fn following(limits: Limits, head: EventId) -> Self {
        let channel = Self::with_epoch(limits, head.epoch());
        {
            let mut state = channel.shared.lock();
            state.head_seq = head.seq();
            state.history_start = head.seq() + 1;
        }
        channel
    }

    /// Stores `message` as event `id`, which must be the head's successor,
    /// and delivers it to every subscriber: how a
    /// [follower](MemoryChannel::following) takes the events its store
    /// numbered.
    ///
    /// # Errors
    ///
    /// [`Error::OutOfSequence`] if `id` is not the successor of the head
    /// (nothing is stored; a follower that missed events should be
    /// replaced), [`Error::TooLarge`] and [`Error::Closed`] as for
    /// [`Channel::publish`].
    pub fn publish_with_id(&self, id: EventId, message: Message) -> Result<(), Error> {
        match self.try_publish_as(Some(id), message) {
            Ok(result) => result.map(|_| ()),
            Err(Retired) => Err(Error::Closed),
        }
    }

    /// The channel's limits.
    pub fn limits(&self) -> &Limits {
        &self.shared.limits
    }

    /// The current epoch.
    pub fn epoch(&self) -> Epoch {
        self.shared.lock().epoch
    }

    pub(crate) fn try_publish(&self, message: Message) -> Result<Result<EventId, Error>, Retired> {
        self.try_publish_as(None, message)
    }

    /// Publishes as the head's successor, which must be `expected` if given.
    fn try_publish_as(
        &self,
        expected: Option<EventId>,
        message: Message,
    ) -> Result<Result<EventId, Error>, Retired> {
        let limits = &self.shared.limits;
        let len = message.data().len();
        if len > limits.max_event_bytes {
            return Ok(Err(Error::TooLarge {
                len,
                max: limits.max_event_bytes,
            }));
        }
        let cost = history_cost(&message);
        let now = limits.history_age.map(|_| Instant::now());
        let mut scratch = self.shared.scratch();
        let id = {
            let mut state = self.shared.lock();
            if state.retired {
                return Err(Retired);
            }
            if state.closed {
                return Ok(Err(Error::Closed));
            }
            let id = EventId::new(state.epoch, state.head_seq + 1);
            if let Some(expected) = expected.filter(|expected| *expected != id) {
                return Ok(Err(Error::OutOfSequence {
                    expected: id,
                    got: expected,
                }));
            }
            state.head_seq += 1;
            state.published_bytes += cost as u64;
            let end_offset = state.published_bytes;
            state.log.push_back(Entry {
                event: Event::new(id, message),
                cost,
                end_offset,
                published_at: now,
            });
            state.history_bytes += cost;
            state.trim(limits, now);
            state.take_wakers(&mut scratch);
            scratch.append(&mut state.lagged);
            id
        };
        scratch.drain(..).for_each(Waker::wake);
        Ok(Ok(id))
    }

    pub(crate) fn try_subscribe(
        &self,
        start: Start,
    ) -> Result<Result<MemorySubscription, Error>, Retired> {
        let mut state = self.shared.lock();
        let result = state.subscribe_locked(start, &self.shared);
        Shared::release(state);
        result
    }

    pub(crate) fn close_now(&self) {
        let mut scratch = self.shared.scratch();
        {
            let mut state = self.shared.lock();
            if state.closed {
                return;
            }
            state.closed = true;
            state.take_wakers(&mut scratch);
        }
        scratch.drain(..).for_each(Waker::wake);
    }

    pub(crate) fn try_describe(&self) -> Result<ChannelInfo, Retired> {
        let limits = self.shared.limits;
        let mut state = self.shared.lock();
        let result = state.describe_locked(limits);
        Shared::release(state);
        result
    }

    pub(crate) fn try_lookup(&self, id: EventId) -> Result<Lookup, Retired> {
        let mut state = self.shared.lock();
        let result = state.lookup_locked(id, &self.shared.limits);
        Shared::release(state);
        result
    }

    /// Whether the channel was closed.
    pub fn is_closed(&self) -> bool {
        self.shared.lock().closed
    }

    /// Retires the channel for a hub if nothing depends on it: no subscriber
    /// and no retained event. Returns whether it did.
    pub(crate) fn retire_if_idle(&self) -> bool {
        let mut state = self.shared.lock();
        let result = state.retire_locked(&self.shared.limits);
        Shared::release(state);
        result
    }

    pub(crate) fn same_as(&self, other: &MemoryChannel) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while the lock is held except on broken invariants;
        // the state is still consistent enough to serve and to drop.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Unlocks, then wakes the lag wakers that came due under the lock.
    fn release(mut state: MutexGuard<'_, State>) {
        if state.lagged.is_empty() {
            return;
        }
        let lagged = std::mem::take(&mut state.lagged);
        drop(state);
        lagged.into_iter().for_each(Waker::wake);
    }

    fn scratch(&self) -> ScratchWakers<'_> {
        match self.wake_scratch.try_lock() {
            Ok(guard) => ScratchWakers::Shared(guard),
            // Another publisher is waking its subscribers right now.
            Err(_) => ScratchWakers::Own(Vec::new()),
        }
    }
}

enum ScratchWakers<'a> {
    Shared(MutexGuard<'a, Vec<Waker>>),
    Own(Vec<Waker>),
}

impl std::ops::Deref for ScratchWakers<'_> {
    type Target = Vec<Waker>;
    fn deref(&self) -> &Vec<Waker> {
        match self {
            ScratchWakers::Shared(guard) => guard,
            ScratchWakers::Own(vec) => vec,
        }
    }
}

impl std::ops::DerefMut for ScratchWakers<'_> {
    fn deref_mut(&mut self) -> &mut Vec<Waker> {
        match self {
            ScratchWakers::Shared(guard) => guard,
            ScratchWakers::Own(vec) => vec,
        }
    }
}

impl State {
    fn subscribe_locked(
        &mut self,
        start: Start,
        shared: &Arc<Shared>,
    ) -> Result<Result<MemorySubscription, Error>, Retired> {
        if self.retired {
            return Err(Retired);
        }
        self.trim_by_age(&shared.limits);
        let head = EventId::new(self.epoch, self.head_seq);
        let before_history = EventId::new(self.epoch, self.history_start - 1);
        let (position, gap, next_seq) = match start {
            Start::Now => (head, None, self.head_seq + 1),
            Start::Earliest => (before_history, None, self.history_start),
            Start::After(cursor) => match cursor.relation_to(head) {
                CursorRelation::BeyondHead => return Ok(Err(Error::CursorAhead { cursor, head })),
                CursorRelation::Within if cursor.seq() + 1 >= self.history_start => {
                    (cursor, None, cursor.seq() + 1)
                }
                CursorRelation::Within | CursorRelation::OtherIncarnation => {
                    (cursor, Some(before_history), self.history_start)
                }
            },
        };
        let taken_offset = self.offset_before(next_seq);
        let key = self.subscribers.insert(Slot {
            waker: None,
            waiting: false,
            taken_offset,
            lag_waker: None,
        });
        Ok(Ok(MemorySubscription {
            shared: Arc::clone(shared),
            key,
            epoch: self.epoch,
            next_seq,
            pending: [Some(Signal::Position(position)), gap.map(Signal::Gap)],
            done: false,
        }))
    }

    fn describe_locked(&mut self, limits: Limits) -> Result<ChannelInfo, Retired> {
        if self.retired {
            return Err(Retired);
        }
        self.trim_by_age(&limits);
        let bound = limits.subscriber_buffer_bytes as u64;
        let buffered_bytes = self
            .subscribers
            .iter()
            .map(|(_, slot)| (self.published_bytes - slot.taken_offset).min(bound))
            .sum();
        let retained = (self.head_seq + 1 - self.history_start) as usize;
        Ok(ChannelInfo {
            head: EventId::new(self.epoch, self.head_seq),
            earliest: (retained > 0).then(|| EventId::new(self.epoch, self.history_start)),
            retained,
            subscribers: self.subscribers.len(),
            buffered_bytes,
            limits,
        })
    }

    fn lookup_locked(&mut self, id: EventId, limits: &Limits) -> Result<Lookup, Retired> {
        if self.retired {
            return Err(Retired);
        }
        self.trim_by_age(limits);
        let head = EventId::new(self.epoch, self.head_seq);
        Ok(match id.relation_to(head) {
            CursorRelation::OtherIncarnation => Lookup::Gone,
            CursorRelation::BeyondHead => Lookup::NotPublished,
            CursorRelation::Within if id.seq() == 0 => Lookup::NotPublished,
            CursorRelation::Within if id.seq() < self.history_start => Lookup::Gone,
            CursorRelation::Within => {
                let index = (id.seq() - self.front_seq()) as usize;
                Lookup::Found(self.log[index].event.clone())
            }
        })
    }

    fn retire_locked(&mut self, limits: &Limits) -> bool {
        self.trim_by_age(limits);
        let idle = self.subscribers.is_empty() && self.history_start > self.head_seq;
        if idle {
            self.retired = true;
        }
        idle
    }

    fn front_seq(&self) -> u64 {
        self.head_seq + 1 - self.log.len() as u64
    }

    fn entry(&self, seq: u64) -> &Entry {
        &self.log[(seq - self.front_seq()) as usize]
    }

    /// The accounted offset just before event `seq`, which must be held or be
    /// the next one to be published.
    fn offset_before(&self, seq: u64) -> u64 {
        if seq > self.head_seq {
            self.published_bytes
        } else {
            let entry = self.entry(seq);
            entry.end_offset - entry.cost as u64
        }
    }

    fn trim_by_age(&mut self, limits: &Limits) {
        if limits.history_age.is_some() {
            self.trim(limits, Some(Instant::now()));
        }
    }

    /// Drops events from the history past its limits, then frees the events
    /// before the history that no subscriber may still need.
    fn trim(&mut self, limits: &Limits, now: Option<Instant>) {
        while self.history_start <= self.head_seq {
            let count = (self.head_seq + 1 - self.history_start) as usize;
            let entry = self.entry(self.history_start);
            let expired = match (limits.history_age, now, entry.published_at) {
                (Some(age), Some(now), Some(at)) => now.saturating_duration_since(at) > age,
                _ => false,
            };
            if count <= limits.history_events
                && self.history_bytes <= limits.history_bytes
                && !expired
            {
                break;
            }
            self.history_bytes -= entry.cost;
            self.history_start += 1;
        }
        let bound = limits.subscriber_buffer_bytes as u64;
        while self.front_seq() < self.history_start {
            let entry = &self.log[0];
            let start_offset = entry.end_offset - entry.cost as u64;
            let needed =
                !self.subscribers.is_empty() && self.published_bytes - start_offset <= bound;
            if needed {
                break;
            }
            if self.lag_watchers > 0 {
                self.notify_lagged(self.log[0].end_offset);
            }
            self.log.pop_front();
        }
    }

    /// Queues the lag wakers of subscribers that had not taken the event
    /// ending at `end_offset`, which is being dropped.
    fn notify_lagged(&mut self, end_offset: u64) {
        for (_, slot) in self.subscribers.iter_mut() {
            if slot.taken_offset < end_offset {
                if let Some(waker) = slot.lag_waker.take() {
                    self.lag_watchers -= 1;
                    self.lagged.push(waker);
                }
            }
        }
    }

    /// Keys of dropped subscribers stay in `waiting` until the next publish,
    /// and a new subscriber may reuse such a key and list it again; so on a
    /// quiet channel that subscribers keep joining, waiting on and leaving,
    /// the list would grow without bound. Rebuilding it from the slots once
    /// it is twice the slab's size keeps it bounded, at amortized O(1).
    fn compact_waiting(&mut self) {
        if self.waiting.len() > 2 * self.subscribers.capacity() + 16 {
            let State {
                waiting,
                subscribers,
                ..
            } = self;
            waiting.clear();
            waiting.extend(
                subscribers
                    .iter()
                    .filter(|(_, slot)| slot.waiting)
                    .map(|(key, _)| key),
            );
        }
    }

    fn take_wakers(&mut self, into: &mut Vec<Waker>) {
        for key in self.waiting.drain(..) {
            if let Some(slot) = self.subscribers.get_mut(key) {
                slot.waiting = false;
                into.extend(slot.waker.take());
            }
        }
    }
}

/// A subscription to a [`MemoryChannel`]: a stream of [`Item`]s.
///
/// Dropping it unsubscribes at once.
pub struct MemorySubscription {
    shared: Arc<Shared>,
    key: usize,
    epoch: Epoch,
    next_seq: u64,
    /// The position signal, then a gap if there is one.
    pending: [Option<Signal>; 2],
    done: bool,
}

impl MemorySubscription {
    /// The cursor of the last item delivered or stated: where a client would
    /// resume from.
    pub fn cursor(&self) -> EventId {
        EventId::new(self.epoch, self.next_seq - 1)
    }

    fn poll_items(
        &mut self,
        cx: &mut Context<'_>,
        max_items: usize,
        max_bytes: usize,
        mut emit: impl FnMut(Item),
    ) -> Poll<usize> {
        let max_items = max_items.max(1);
        let mut taken = 0;
        for signal in self.pending.iter_mut() {
            if taken < max_items {
                if let Some(signal) = signal.take() {
                    emit(Item::Signal(signal));
                    taken += 1;
                }
            }
        }
        if self.done || taken == max_items {
            return Poll::Ready(taken);
        }
        let mut state = self.shared.lock();
        let mut bytes = 0;
        while taken < max_items && (taken == 0 || bytes < max_bytes) {
            if self.next_seq < state.front_seq() {
                emit(Item::Signal(Signal::Lagged(self.cursor())));
                taken += 1;
                self.done = true;
                break;
            }
            if self.next_seq <= state.head_seq {
                let entry = state.entry(self.next_seq);
                let (event, end_offset) = (entry.event.clone(), entry.end_offset);
                bytes += event.data().len();
                state.subscribers[self.key].taken_offset = end_offset;
                self.next_seq += 1;
                emit(Item::Event(event));
                taken += 1;
                continue;
            }
            if state.closed {
                emit(Item::Signal(Signal::Closed(EventId::new(
                    state.epoch,
                    state.head_seq,
                ))));
                taken += 1;
                self.done = true;
                break;
            }
            if taken == 0 {
                let key = self.key;
                let slot = &mut state.subscribers[key];
                match &mut slot.waker {
                    Some(waker) if waker.will_wake(cx.waker()) => {}
                    waker => *waker = Some(cx.waker().clone()),
                }
                if !slot.waiting {
                    slot.waiting = true;
                    state.waiting.push(key);
                    state.compact_waiting();
                }
                return Poll::Pending;
            }
            break;
        }
        Poll::Ready(taken)
    }
}

impl Stream for MemorySubscription {
    type Item = Item;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Item>> {
        let mut item = None;
        match self
            .get_mut()
            .poll_items(cx, 1, usize::MAX, |i| item = Some(i))
        {
            Poll::Ready(_) => Poll::Ready(item),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Subscription for MemorySubscription {
    fn poll_take(
        &mut self,
        cx: &mut Context<'_>,
        out: &mut Vec<Item>,
        max_items: usize,
        max_bytes: usize,
    ) -> Poll<usize> {
        self.poll_items(cx, max_items, max_bytes, |item| out.push(item))
    }

    /// Fires once the channel drops an event this subscriber has not taken,
    /// even while nobody polls the subscription; woken after the channel's
    /// lock is released.
    fn on_lag(&mut self, waker: Waker) {
        let mut state = self.shared.lock();
        let slot = &mut state.subscribers[self.key];
        let had = slot.lag_waker.replace(waker).is_some();
        if !had {
            state.lag_watchers += 1;
        }
    }
}

impl Drop for MemorySubscription {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        let slot = state.subscribers.remove(self.key);
        if slot.lag_waker.is_some() {
            state.lag_watchers -= 1;
        }
        if state.subscribers.is_empty() {
            state.waiting.clear();
            let limits = self.shared.limits;
            state.trim(&limits, None);
        }
        Shared::release(state);
    }
}

impl fmt::Debug for MemorySubscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemorySubscription")
            .field("cursor", &self.cursor())
            .field("done", &self.done)
            .finish()
    }
}

impl fmt::Debug for MemoryChannel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.shared.lock();
        f.debug_struct("MemoryChannel")
            .field("head", &EventId::new(state.epoch, state.head_seq))
            .field("retained", &(state.head_seq + 1 - state.history_start))
            .field("subscribers", &state.subscribers.len())
            .field("closed", &state.closed)
            .finish()
    }
}

/// A standalone channel never retires (only a hub retires channels), so the
/// trait methods map `Retired` to nothing.
fn standalone<T>(result: Result<T, Retired>) -> T {
    match result {
        Ok(value) => value,
        Err(Retired) => unreachable!("only a hub retires channels, and it never hands them out"),
    }
}

impl Channel for MemoryChannel {
    type Subscription = MemorySubscription;

    async fn publish(&self, message: Message) -> Result<EventId, Error> {
        standalone(self.try_publish(message))
    }

    async fn subscribe(&self, start: Start) -> Result<MemorySubscription, Error> {
        standalone(self.try_subscribe(start))
    }

    async fn close(&self) -> Result<(), Error> {
        self.close_now();
        Ok(())
    }

    async fn describe(&self) -> Result<ChannelInfo, Error> {
        Ok(standalone(self.try_describe()))
    }

    async fn lookup(&self, id: EventId) -> Result<Lookup, Error> {
        Ok(standalone(self.try_lookup(id)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Data;
    use futures_util::task::noop_waker;

    fn limits() -> Limits {
        Limits {
            history_events: 5,
            history_bytes: 1 << 20,
            max_event_bytes: 1000,
            subscriber_buffer_bytes: 2000,
            ..Limits::default()
        }
    }

    fn text(s: &str) -> Message {
        Message::new(Data::text(s))
    }

    fn publish(channel: &MemoryChannel, s: &str) -> EventId {
        standalone(channel.try_publish(text(s))).unwrap()
    }

    fn subscribe(channel: &MemoryChannel, start: Start) -> MemorySubscription {
        standalone(channel.try_subscribe(start)).unwrap()
    }

    /// Everything ready now, without waiting.
    fn drain(subscription: &mut MemorySubscription) -> Vec<Item> {
        let waker = noop_waker();
        let mut cx = Context::from_waker(&waker);
        let mut out = Vec::new();
        while let Poll::Ready(n) = subscription.poll_take(&mut cx, &mut out, 100, usize::MAX) {
            if n == 0 {
                break;
            }
        }
        out
    }

    fn data(items: &[Item]) -> Vec<String> {
        items
            .iter()
            .filter_map(|item| match item {
                Item::Event(event) => Some(event.data().as_text().unwrap().to_owned()),
                Item::Signal(_) => None,
            })
            .collect()
    }

    #[test]
    fn ids_count_from_one_in_one_epoch() {
        let channel = MemoryChannel::with_epoch(limits(), Epoch::from_u64(7));
        assert_eq!(publish(&channel, "a").to_string(), "0000000000000007-1");
        assert_eq!(publish(&channel, "b").to_string(), "0000000000000007-2");
    }

    #[test]
    fn now_starts_with_the_head_position_and_live_events() {
        let channel = MemoryChannel::new(limits());
        let head = publish(&channel, "old");
        let mut sub = subscribe(&channel, Start::Now);
        publish(&channel, "new");
        let items = drain(&mut sub);
        assert_eq!(items[0], Item::Signal(Signal::Position(head)));
        assert_eq!(data(&items), ["new"]);
    }

    #[test]
    fn after_a_retained_cursor_replays_without_gap() {
        let channel = MemoryChannel::new(limits());
        let ids: Vec<_> = ["a", "b", "c"]
            .iter()
            .map(|s| publish(&channel, s))
            .collect();
        let mut sub = subscribe(&channel, Start::After(ids[0]));
        let items = drain(&mut sub);
        assert_eq!(items[0], Item::Signal(Signal::Position(ids[0])));
        assert_eq!(data(&items), ["b", "c"]);
        assert!(!items
            .iter()
            .any(|i| matches!(i, Item::Signal(Signal::Gap(_)))));
    }

    #[test]
    fn after_an_evicted_cursor_says_gap_with_the_continuation_cursor() {
        let channel = MemoryChannel::new(limits());
        let ids: Vec<_> = (0..8).map(|i| publish(&channel, &i.to_string())).collect();
        // Retains 5: ids[3..8].
        let mut sub = subscribe(&channel, Start::After(ids[1]));
        let items = drain(&mut sub);
        assert_eq!(items[0], Item::Signal(Signal::Position(ids[1])));
        assert_eq!(items[1], Item::Signal(Signal::Gap(ids[2])));
        assert_eq!(data(&items), ["3", "4", "5", "6", "7"]);
        // Resuming from the gap's cursor meets no second gap.
        let mut again = subscribe(&channel, Start::After(ids[2]));
        let items = drain(&mut again);
        assert!(!items
            .iter()
            .any(|i| matches!(i, Item::Signal(Signal::Gap(_)))));
        assert_eq!(data(&items).len(), 5);
        // The cursor just before the oldest retained event has no gap either.
        let exact = drain(&mut subscribe(&channel, Start::After(ids[2])));
        assert_eq!(exact.len(), 6);
    }

    #[test]
    fn cursor_of_another_epoch_is_a_gap_even_at_seq_zero() {
        let channel = MemoryChannel::with_epoch(limits(), Epoch::from_u64(1));
        publish(&channel, "a");
        let foreign = EventId::start(Epoch::from_u64(2));
        let items = drain(&mut subscribe(&channel, Start::After(foreign)));
        assert_eq!(
            items[1],
            Item::Signal(Signal::Gap(EventId::start(Epoch::from_u64(1))))
        );
        assert_eq!(data(&items), ["a"]);
    }

    #[test]
    fn cursor_beyond_head_is_an_error() {
        let channel = MemoryChannel::with_epoch(limits(), Epoch::from_u64(1));
        publish(&channel, "a");
        let ahead = EventId::new(Epoch::from_u64(1), 2);
        assert!(matches!(
            standalone(channel.try_subscribe(Start::After(ahead))),
            Err(Error::CursorAhead { .. })
        ));
    }

    #[test]
    fn earliest_starts_before_the_oldest_retained() {
        let channel = MemoryChannel::new(limits());
        let ids: Vec<_> = (0..7).map(|i| publish(&channel, &i.to_string())).collect();
        let items = drain(&mut subscribe(&channel, Start::Earliest));
        assert_eq!(items[0], Item::Signal(Signal::Position(ids[1])));
        assert_eq!(data(&items), ["2", "3", "4", "5", "6"]);
    }

    #[test]
    fn too_large_is_refused_before_storing() {
        let channel = MemoryChannel::new(limits());
        let big = Message::new(Data::binary(vec![0u8; 1001]));
        assert!(matches!(
            standalone(channel.try_publish(big)),
            Err(Error::TooLarge {
                len: 1001,
                max: 1000
            })
        ));
        assert_eq!(standalone(channel.try_describe()).retained, 0);
    }

    #[test]
    fn close_delivers_what_was_published_then_closed() {
        let channel = MemoryChannel::new(limits());
        let mut sub = subscribe(&channel, Start::Now);
        let last = publish(&channel, "a");
        channel.close_now();
        let items = drain(&mut sub);
        assert_eq!(data(&items), ["a"]);
        assert_eq!(items.last(), Some(&Item::Signal(Signal::Closed(last))));
        assert!(matches!(
            standalone(channel.try_publish(text("b"))),
            Err(Error::Closed)
        ));
        let late = drain(&mut subscribe(&channel, Start::Now));
        assert_eq!(
            late,
            [
                Item::Signal(Signal::Position(last)),
                Item::Signal(Signal::Closed(last))
            ]
        );
    }

    #[test]
    fn a_stalled_subscriber_is_lagged_with_its_cursor_and_holds_at_most_the_bound() {
        // 1 event retained; each event costs 100 + 64 bytes; the bound is 2000.
        let channel = MemoryChannel::new(Limits {
            history_events: 1,
            ..limits()
        });
        let mut stalled = subscribe(&channel, Start::Now);
        let mut reader = subscribe(&channel, Start::Now);
        drain(&mut stalled);
        drain(&mut reader);
        let first = publish(&channel, &"x".repeat(100));
        assert_eq!(data(&drain(&mut stalled)).len(), 1);
        assert_eq!(data(&drain(&mut reader)).len(), 1);
        for _ in 0..100 {
            publish(&channel, &"x".repeat(100));
            assert_eq!(data(&drain(&mut reader)).len(), 1);
            let state = channel.shared.lock();
            let held: usize = state.log.iter().map(|e| e.cost).sum();
            assert!(held <= 2000 + 164, "held {held}");
        }
        let info = standalone(channel.try_describe());
        assert_eq!(info.buffered_bytes, 2000);
        let items = drain(&mut stalled);
        assert_eq!(items, [Item::Signal(Signal::Lagged(first))]);
        assert_eq!(standalone(channel.try_describe()).buffered_bytes, 2000);
        drop(stalled);
        assert_eq!(standalone(channel.try_describe()).buffered_bytes, 0);
        assert_eq!(standalone(channel.try_describe()).subscribers, 1);
    }

    #[test]
    fn a_subscriber_behind_within_history_is_not_lagged() {
        let channel = MemoryChannel::new(Limits {
            history_events: 1000,
            ..limits()
        });
        let mut sub = subscribe(&channel, Start::Now);
        for i in 0..500 {
            publish(&channel, &i.to_string());
        }
        assert_eq!(data(&drain(&mut sub)).len(), 500);
    }

    #[test]
    fn the_lag_waker_fires_once_when_an_untaken_event_is_dropped() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        struct Count(AtomicUsize);
        impl std::task::Wake for Count {
            fn wake(self: Arc<Self>) {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
        let channel = MemoryChannel::new(Limits {
            history_events: 1,
            ..limits()
        });
        let mut stalled = subscribe(&channel, Start::Now);
        let mut reader = subscribe(&channel, Start::Now);
        let stalled_count = Arc::new(Count(AtomicUsize::new(0)));
        let reader_count = Arc::new(Count(AtomicUsize::new(0)));
        stalled.on_lag(Waker::from(Arc::clone(&stalled_count)));
        reader.on_lag(Waker::from(Arc::clone(&reader_count)));
        drain(&mut stalled);
        // Each event costs 100 + 64 bytes: the 2000-byte bound holds 12.
        for _ in 0..30 {
            publish(&channel, &"x".repeat(100));
            drain(&mut reader);
        }
        assert_eq!(stalled_count.0.load(Ordering::SeqCst), 1, "woken once");
        assert_eq!(
            reader_count.0.load(Ordering::SeqCst),
            0,
            "a reader that keeps up is never lagged"
        );
        assert!(matches!(
            drain(&mut stalled).last(),
            Some(Item::Signal(Signal::Lagged(_)))
        ));
        assert_eq!(channel.shared.lock().lag_watchers, 1);
        drop(reader);
        assert_eq!(channel.shared.lock().lag_watchers, 0);
    }

    #[test]
    fn the_window_is_freed_when_the_last_subscriber_leaves() {
        let channel = MemoryChannel::new(Limits {
            history_events: 1,
            ..limits()
        });
        let sub = subscribe(&channel, Start::Now);
        for _ in 0..5 {
            publish(&channel, "x");
        }
        assert_eq!(channel.shared.lock().log.len(), 5);
        drop(sub);
        assert_eq!(channel.shared.lock().log.len(), 1);
    }

    #[test]
    fn history_by_bytes_and_age() {
        let channel = MemoryChannel::new(Limits {
            history_events: 100,
            history_bytes: 3 * (10 + EVENT_OVERHEAD_BYTES),
            ..limits()
        });
        for _ in 0..10 {
            publish(&channel, &"y".repeat(10));
        }
        assert_eq!(standalone(channel.try_describe()).retained, 3);

        let aged = MemoryChannel::new(Limits {
            history_age: Some(std::time::Duration::from_millis(1)),
            ..limits()
        });
        let id = publish(&aged, "old");
        std::thread::sleep(std::time::Duration::from_millis(5));
        let info = standalone(aged.try_describe());
        assert_eq!((info.retained, info.earliest), (0, None));
        assert_eq!(standalone(aged.try_lookup(id)), Lookup::Gone);
    }

    #[test]
    fn lookup_tells_found_gone_and_not_published() {
        let channel = MemoryChannel::with_epoch(limits(), Epoch::from_u64(3));
        let ids: Vec<_> = (0..7).map(|i| publish(&channel, &i.to_string())).collect();
        assert!(
            matches!(standalone(channel.try_lookup(ids[6])), Lookup::Found(e) if e.id() == ids[6])
        );
        assert_eq!(standalone(channel.try_lookup(ids[0])), Lookup::Gone);
        assert_eq!(
            standalone(channel.try_lookup(EventId::new(Epoch::from_u64(3), 8))),
            Lookup::NotPublished
        );
        assert_eq!(
            standalone(channel.try_lookup(EventId::start(Epoch::from_u64(3)))),
            Lookup::NotPublished
        );
        assert_eq!(
            standalone(channel.try_lookup(EventId::new(Epoch::from_u64(4), 1))),
            Lookup::Gone
        );
    }

    #[test]
    fn events_are_shared_not_copied() {
        let channel = MemoryChannel::new(limits());
        let mut a = subscribe(&channel, Start::Now);
        let mut b = subscribe(&channel, Start::Now);
        publish(&channel, "shared");
        let event = |items: Vec<Item>| match items.into_iter().last() {
            Some(Item::Event(event)) => event,
            other => panic!("expected an event, got {other:?}"),
        };
        assert!(event(drain(&mut a)).ptr_eq(&event(drain(&mut b))));
    }

    #[test]
    fn poll_take_respects_item_and_byte_limits() {
        let channel = MemoryChannel::new(Limits {
            history_events: 100,
            ..limits()
        });
        let mut sub = subscribe(&channel, Start::Now);
        for _ in 0..10 {
            publish(&channel, &"z".repeat(10));
        }
        let waker = noop_waker();
        let mut cx = Context::from_waker(&waker);
        let mut out = Vec::new();
        assert_eq!(
            sub.poll_take(&mut cx, &mut out, 3, usize::MAX),
            Poll::Ready(3)
        );
        out.clear();
        assert_eq!(sub.poll_take(&mut cx, &mut out, 100, 25), Poll::Ready(3));
        out.clear();
        assert_eq!(sub.poll_take(&mut cx, &mut out, 100, 1), Poll::Ready(1));
        out.clear();
        assert_eq!(
            sub.poll_take(&mut cx, &mut out, 100, usize::MAX),
            Poll::Ready(4)
        );
        assert!(sub
            .poll_take(&mut cx, &mut out, 100, usize::MAX)
            .is_pending());
    }

    #[tokio::test]
    async fn a_waiting_subscriber_is_woken_by_publish() {
        use futures_util::StreamExt;
        let channel = MemoryChannel::new(limits());
        let mut sub = subscribe(&channel, Start::Now);
        sub.next().await;
        let publisher = channel.clone();
        let task = tokio::spawn(async move { sub.next().await });
        tokio::task::yield_now().await;
        publish(&publisher, "wake");
        let item = tokio::time::timeout(std::time::Duration::from_secs(10), task)
            .await
            .expect("woken")
            .unwrap();
        assert!(matches!(item, Some(Item::Event(_))));
    }

    #[test]
    fn a_follower_takes_its_stores_ids_and_trims_as_the_store_does() {
        let epoch = Epoch::from_u64(7);
        let follower = MemoryChannel::following(limits(), EventId::new(epoch, 40));
        let info = standalone(follower.try_describe());
        assert_eq!(info.head, EventId::new(epoch, 40));
        assert_eq!((info.retained, info.earliest), (0, None));

        let mut sub = subscribe(&follower, Start::Now);
        for seq in 41..=47 {
            let id = EventId::new(epoch, seq);
            follower
                .publish_with_id(id, text(&seq.to_string()))
                .unwrap();
        }
        let items = drain(&mut sub);
        assert_eq!(
            items[0],
            Item::Signal(Signal::Position(EventId::new(epoch, 40)))
        );
        assert_eq!(data(&items), ["41", "42", "43", "44", "45", "46", "47"]);
        // The window of any store keeping five events.
        let info = standalone(follower.try_describe());
        assert_eq!(info.earliest, Some(EventId::new(epoch, 43)));
        assert_eq!(info.retained, 5);

        // An id that is not the successor is refused, and nothing stored.
        let skipped = EventId::new(epoch, 49);
        assert!(matches!(
            follower.publish_with_id(skipped, text("late")),
            Err(Error::OutOfSequence { expected, got })
                if expected == EventId::new(epoch, 48) && got == skipped
        ));
        let other = EventId::new(Epoch::from_u64(8), 48);
        assert!(follower.publish_with_id(other, text("x")).is_err());
        assert_eq!(
            standalone(follower.try_describe()).head,
            EventId::new(epoch, 47)
        );
    }

    #[test]
    #[should_panic(expected = "twice max_event_bytes")]
    fn inconsistent_limits_are_refused() {
        MemoryChannel::new(Limits {
            subscriber_buffer_bytes: 1,
            ..limits()
        });
    }
}
