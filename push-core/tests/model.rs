//! Property tests of [`MemoryChannel`] and [`Hub`] against a reference model.
//!
//! Random sequences of operations (publish, subscribe from every kind of
//! start, read a few of the items that are ready, drop, close, start another
//! incarnation, look up) run on a channel with small limits, while a plain
//! model of the log says exactly what every subscription must yield next. The
//! model encodes the rules written on [`Channel`]:
//!
//! - the first item is always `Position`; an `After` start from a cursor of
//!   another incarnation, or whose following events left the history, gets a
//!   `Gap` with the position before the oldest retained event, and nothing
//!   else ever does;
//! - events arrive in publish order, each exactly once, until `Lagged` or
//!   `Closed`;
//! - a subscriber is lagged exactly when the next event it needs has left the
//!   history and the bytes it has not taken exceed its bound, and `Lagged`
//!   carries the last cursor it was given;
//! - a subscriber that was told to wait is woken by the next publish or close.
//!
//! Items are read synchronously through `poll_take` and `poll_next` with a
//! waker that records whether it was woken; the channel's async methods
//! complete at once, so `now_or_never` drives them.

use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use futures_util::{FutureExt, Stream};
use proptest::prelude::*;
use proptest::sample::Index;
use push_core::memory::EVENT_OVERHEAD_BYTES;
use push_core::{
    Channel, ChannelName, Data, Epoch, Error, EventId, Hub, HubConfig, Item, Limits, Lookup,
    MemoryChannel, MemorySubscription, Message, Signal, Start, Subscription,
};

/// Drives one of the channel's futures, which complete at once.
fn now<F: Future>(future: F) -> F::Output {
    future
        .now_or_never()
        .expect("the in-memory channel completes at once")
}

/// A waker that records whether it was woken.
#[derive(Default)]
struct Flag(AtomicBool);

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::SeqCst);
    }
}

const NAMES: [Option<&str>; 4] = [None, Some("tick"), Some("message"), Some("ünïcode name")];

/// `len` bytes of text (with LF, CR, NUL and multi-byte characters) or binary.
fn data(seed: u64, len: usize, binary: bool) -> Data {
    if binary {
        return Data::binary(
            (0..len)
                .map(|i| (seed as usize).wrapping_mul(31).wrapping_add(i) as u8)
                .collect::<Vec<_>>(),
        );
    }
    let pattern = ['a', '\n', 'é', '\r', '\0', '€', 'z'];
    let mut text = String::with_capacity(len);
    let mut i = seed as usize;
    while text.len() < len {
        let c = pattern[i % pattern.len()];
        text.push(if text.len() + c.len_utf8() <= len {
            c
        } else {
            'z'
        });
        i += 1;
    }
    Data::text(text)
}

#[derive(Clone, Debug)]
enum StartFrom {
    Now,
    Earliest,
    /// After one of the ids seen so far, of any incarnation.
    After(Index),
    /// After an id of the current incarnation past its head.
    Ahead(u64),
}

/// The byte limit of a `poll_take`.
#[derive(Clone, Copy, Debug)]
enum MaxBytes {
    Unlimited,
    Fixed(usize),
    /// The data of the first `events` ready events, plus `delta`: the
    /// boundary where `poll_take` must stop.
    Boundary {
        events: usize,
        delta: i8,
    },
}

#[derive(Clone, Debug)]
enum Op {
    Publish {
        len: usize,
        binary: bool,
        name: usize,
    },
    Subscribe(StartFrom),
    /// Takes at most `k` items (one with `poll_next`) from one subscription.
    Read {
        sub: Index,
        k: usize,
        max_bytes: MaxBytes,
        poll_next: bool,
    },
    Drop(Index),
    Lookup(Index),
    Close,
    /// Starts another incarnation with a different epoch; publishes and
    /// subscriptions go to it from now on.
    Reopen,
}

fn limits() -> impl Strategy<Value = Limits> {
    (1usize..8, 0usize..700, 1usize..200, 0usize..300).prop_map(
        |(history_events, history_bytes, max_event_bytes, extra)| Limits {
            history_events,
            history_bytes,
            max_event_bytes,
            subscriber_buffer_bytes: 2 * max_event_bytes + extra,
            ..Limits::default()
        },
    )
}

fn op() -> impl Strategy<Value = Op> {
    let from = prop_oneof![
        1 => Just(StartFrom::Now),
        1 => Just(StartFrom::Earliest),
        4 => any::<Index>().prop_map(StartFrom::After),
        1 => (0u64..3).prop_map(StartFrom::Ahead),
    ];
    prop_oneof![
        8 => (0usize..220, any::<bool>(), 0..NAMES.len())
            .prop_map(|(len, binary, name)| Op::Publish { len, binary, name }),
        3 => from.prop_map(Op::Subscribe),
        8 => (
            any::<Index>(),
            1usize..6,
            prop_oneof![
                Just(MaxBytes::Unlimited),
                (1usize..300).prop_map(MaxBytes::Fixed),
                (1usize..4, -1i8..=1).prop_map(|(events, delta)| MaxBytes::Boundary { events, delta }),
            ],
            any::<bool>()
        )
            .prop_map(|(sub, k, max_bytes, poll_next)| Op::Read { sub, k, max_bytes, poll_next }),
        1 => any::<Index>().prop_map(Op::Drop),
        1 => any::<Index>().prop_map(Op::Lookup),
        1 => Just(Op::Close),
        1 => Just(Op::Reopen),
    ]
}

struct PublishedEvent {
    message: Message,
    cost: usize,
    /// Accounted bytes published before this event.
    start_offset: u64,
}

/// One incarnation of the channel and the model of its log.
struct Incarnation {
    channel: MemoryChannel,
    epoch: Epoch,
    limits: Limits,
    /// Every event published, `events[seq - 1]`.
    events: Vec<PublishedEvent>,
    /// The oldest retained event; `head + 1` when none is.
    history_start: u64,
    history_bytes: usize,
    published_bytes: u64,
    closed: bool,
}

impl Incarnation {
    fn new(limits: Limits, epoch: Epoch) -> Self {
        Incarnation {
            channel: MemoryChannel::with_epoch(limits, epoch),
            epoch,
            limits,
            events: Vec::new(),
            history_start: 1,
            history_bytes: 0,
            published_bytes: 0,
            closed: false,
        }
    }

    fn head(&self) -> u64 {
        self.events.len() as u64
    }

    fn id(&self, seq: u64) -> EventId {
        EventId::new(self.epoch, seq)
    }

    fn event_item(&self, seq: u64) -> Item {
        let message = self.events[seq as usize - 1].message.clone();
        Item::Event(push_core::Event::new(self.id(seq), message))
    }

    fn publish(&mut self, message: Message) {
        let cost = message.data().len() + message.name().map_or(0, str::len) + EVENT_OVERHEAD_BYTES;
        self.events.push(PublishedEvent {
            message,
            cost,
            start_offset: self.published_bytes,
        });
        self.published_bytes += cost as u64;
        self.history_bytes += cost;
        while self.history_start <= self.head() {
            let retained = (self.head() + 1 - self.history_start) as usize;
            if retained <= self.limits.history_events
                && self.history_bytes <= self.limits.history_bytes
            {
                break;
            }
            self.history_bytes -= self.events[self.history_start as usize - 1].cost;
            self.history_start += 1;
        }
    }

    /// The accounted bytes published before event `seq` (all of them when
    /// `seq` is not published yet).
    fn offset_before(&self, seq: u64) -> u64 {
        if seq > self.head() {
            self.published_bytes
        } else {
            self.events[seq as usize - 1].start_offset
        }
    }

    /// Bytes published at or after `next_seq`: what a subscriber about to take
    /// `next_seq` has not taken yet.
    fn unread(&self, next_seq: u64) -> u64 {
        self.published_bytes - self.offset_before(next_seq)
    }

    /// The bounding rule: a subscriber is lagged exactly when the next event
    /// it needs has left the history and what it has not taken is past its
    /// bound.
    fn lagged(&self, next_seq: u64) -> bool {
        next_seq < self.history_start
            && self.unread(next_seq) > self.limits.subscriber_buffer_bytes as u64
    }

    /// What a subscription from `start` states first, and the first event it
    /// delivers; `Err` for a cursor past the head.
    fn start(&self, start: Start) -> Result<(Vec<Signal>, u64), EventId> {
        let before_history = self.id(self.history_start - 1);
        Ok(match start {
            Start::Now => (
                vec![Signal::Position(self.id(self.head()))],
                self.head() + 1,
            ),
            Start::Earliest => (vec![Signal::Position(before_history)], self.history_start),
            Start::After(cursor) if cursor.epoch() != self.epoch => (
                vec![Signal::Position(cursor), Signal::Gap(before_history)],
                self.history_start,
            ),
            Start::After(cursor) if cursor.seq() > self.head() => return Err(cursor),
            Start::After(cursor) if cursor.seq() + 1 >= self.history_start => {
                (vec![Signal::Position(cursor)], cursor.seq() + 1)
            }
            Start::After(cursor) => (
                vec![Signal::Position(cursor), Signal::Gap(before_history)],
                self.history_start,
            ),
        })
    }

    /// Everything a subscription at `next_seq` with `pending` signals can
    /// take now, and whether it then waits (`false`) or has ended (`true`).
    fn ready(&self, pending: &VecDeque<Signal>, next_seq: u64, done: bool) -> (Vec<Item>, bool) {
        let mut items: Vec<Item> = pending.iter().copied().map(Item::Signal).collect();
        if done {
            return (items, true);
        }
        if self.lagged(next_seq) {
            items.push(Item::Signal(Signal::Lagged(self.id(next_seq - 1))));
            return (items, true);
        }
        items.extend((next_seq..=self.head()).map(|seq| self.event_item(seq)));
        if self.closed {
            items.push(Item::Signal(Signal::Closed(self.id(self.head()))));
        }
        (items, self.closed)
    }

    fn retained(&self) -> Vec<Item> {
        (self.history_start..=self.head())
            .map(|seq| self.event_item(seq))
            .collect()
    }
}

/// A subscription and the model of where it stands.
struct Sub {
    incarnation: usize,
    subscription: MemorySubscription,
    /// Position and gap not taken yet.
    pending: VecDeque<Signal>,
    next_seq: u64,
    /// Ended with `Lagged` or `Closed`.
    done: bool,
    /// The `Lagged` or `Closed` it ended with.
    end: Option<Signal>,
    /// Delivery starts after this cursor: the gap's if there is one, else
    /// the position's.
    start_cursor: EventId,
    /// Head of its incarnation when it subscribed.
    head_at_subscribe: u64,
    delivered: Vec<EventId>,
    flag: Arc<Flag>,
    /// Told to wait: the next publish or close must wake it.
    waiting: bool,
}

struct Model {
    limits: Limits,
    incarnations: Vec<Incarnation>,
    subs: Vec<Sub>,
    /// Every id seen: start positions and published ids of every incarnation.
    seen: Vec<EventId>,
    seed: u64,
}

impl Model {
    fn new(limits: Limits) -> Self {
        let first = Incarnation::new(limits, Epoch::random());
        Model {
            limits,
            seen: vec![EventId::start(first.epoch)],
            incarnations: vec![first],
            subs: Vec::new(),
            seed: 0,
        }
    }

    fn current(&mut self) -> &mut Incarnation {
        self.incarnations.last_mut().unwrap()
    }

    fn apply(&mut self, op: Op) {
        match op {
            Op::Publish { len, binary, name } => self.publish(len, binary, name),
            Op::Subscribe(from) => {
                let start = match from {
                    StartFrom::Now => Start::Now,
                    StartFrom::Earliest => Start::Earliest,
                    StartFrom::After(index) => Start::After(*index.get(&self.seen)),
                    StartFrom::Ahead(k) => {
                        let current = self.current();
                        Start::After(current.id(current.head() + 1 + k))
                    }
                };
                let incarnation = self.incarnations.len() - 1;
                self.subscribe(incarnation, start);
            }
            Op::Read {
                sub,
                k,
                max_bytes,
                poll_next,
            } => {
                if !self.subs.is_empty() {
                    let sub = sub.index(self.subs.len());
                    self.read(sub, k, max_bytes, poll_next);
                }
            }
            Op::Drop(sub) => {
                if !self.subs.is_empty() {
                    self.subs.remove(sub.index(self.subs.len()));
                }
            }
            Op::Lookup(index) => {
                let id = *index.get(&self.seen);
                self.lookup(id);
            }
            Op::Close => self.close(),
            Op::Reopen => {
                let epoch = Epoch::next_after(self.current().epoch);
                self.incarnations.push(Incarnation::new(self.limits, epoch));
                self.seen.push(EventId::start(epoch));
            }
        }
        for incarnation in 0..self.incarnations.len() {
            self.check_describe(incarnation);
        }
    }

    fn publish(&mut self, len: usize, binary: bool, name: usize) {
        self.seed += 1;
        let mut message = Message::new(data(self.seed, len, binary));
        if let Some(name) = NAMES[name] {
            message = message.with_name(name).unwrap();
        }
        let index = self.incarnations.len() - 1;
        let current = &mut self.incarnations[index];
        let result = now(current.channel.publish(message.clone()));
        if len > self.limits.max_event_bytes {
            assert!(
                matches!(result, Err(Error::TooLarge { len: l, max }) if l == len && max == self.limits.max_event_bytes),
                "{result:?}"
            );
            return;
        }
        if current.closed {
            assert!(matches!(result, Err(Error::Closed)), "{result:?}");
            return;
        }
        let id = result.expect("publish");
        assert_eq!(
            id,
            current.id(current.head() + 1),
            "ids count from 1 without holes"
        );
        current.publish(message);
        self.seen.push(id);
        self.check_woken(index);
    }

    fn close(&mut self) {
        let index = self.incarnations.len() - 1;
        let current = &mut self.incarnations[index];
        now(current.channel.close()).unwrap();
        assert!(current.channel.is_closed());
        current.closed = true;
        self.check_woken(index);
    }

    /// Every subscription of `incarnation` that was told to wait has been
    /// woken.
    fn check_woken(&mut self, incarnation: usize) {
        for sub in self
            .subs
            .iter_mut()
            .filter(|s| s.incarnation == incarnation)
        {
            if sub.waiting {
                assert!(
                    sub.flag.0.load(Ordering::SeqCst),
                    "a waiting subscriber was not woken"
                );
                sub.waiting = false;
            }
        }
    }

    fn subscribe(&mut self, incarnation: usize, start: Start) {
        let model = &self.incarnations[incarnation];
        let result = now(model.channel.subscribe(start));
        let (signals, next_seq) = match model.start(start) {
            Ok(expected) => expected,
            Err(cursor) => {
                let head = model.id(model.head());
                assert!(
                    matches!(result, Err(Error::CursorAhead { cursor: c, head: h }) if c == cursor && h == head),
                    "{result:?}"
                );
                return;
            }
        };
        let subscription = result.expect("subscribe");
        self.subs.push(Sub {
            incarnation,
            subscription,
            start_cursor: signals.last().unwrap().cursor(),
            pending: signals.into(),
            next_seq,
            done: false,
            end: None,
            head_at_subscribe: model.head(),
            delivered: Vec::new(),
            flag: Arc::default(),
            waiting: false,
        });
    }

    fn read(&mut self, index: usize, k: usize, max_bytes: MaxBytes, poll_next: bool) {
        let sub = &mut self.subs[index];
        let model = &self.incarnations[sub.incarnation];
        let (ready, ends) = model.ready(&sub.pending, sub.next_seq, sub.done);
        let max_bytes = match max_bytes {
            _ if poll_next => usize::MAX,
            MaxBytes::Unlimited => usize::MAX,
            MaxBytes::Fixed(max) => max,
            MaxBytes::Boundary { events, delta } => {
                let data: usize = ready
                    .iter()
                    .filter_map(|item| match item {
                        Item::Event(event) => Some(event.data().len()),
                        Item::Signal(_) => None,
                    })
                    .take(events)
                    .sum();
                data.saturating_add_signed(delta.into()).max(1)
            }
        };
        let k = if poll_next { 1 } else { k };

        // The rule of `poll_take`: at most `k` items, stopping once their
        // data reaches `max_bytes` (the first is always taken), and after a
        // terminal signal.
        let mut expected = Vec::new();
        let mut bytes = 0;
        for item in ready {
            if expected.len() >= k || (!expected.is_empty() && bytes >= max_bytes) {
                break;
            }
            let terminal = matches!(&item, Item::Signal(s) if s.is_terminal());
            if let Item::Event(event) = &item {
                bytes += event.data().len();
            }
            expected.push(item);
            if terminal {
                break;
            }
        }

        // A fresh waker each time: the channel must wake the latest one.
        sub.flag = Arc::default();
        let waker = Waker::from(Arc::clone(&sub.flag));
        let mut cx = Context::from_waker(&waker);
        let taken = if poll_next {
            match Pin::new(&mut sub.subscription).poll_next(&mut cx) {
                Poll::Ready(Some(item)) => Poll::Ready(vec![item]),
                Poll::Ready(None) => Poll::Ready(Vec::new()),
                Poll::Pending => Poll::Pending,
            }
        } else {
            let mut out = Vec::new();
            match sub.subscription.poll_take(&mut cx, &mut out, k, max_bytes) {
                Poll::Ready(n) => {
                    assert_eq!(n, out.len(), "poll_take counts what it appends");
                    Poll::Ready(out)
                }
                Poll::Pending => {
                    assert!(out.is_empty(), "Pending appends nothing");
                    Poll::Pending
                }
            }
        };
        let taken = match taken {
            Poll::Pending => {
                assert!(
                    expected.is_empty() && !ends,
                    "Pending while {expected:?} (ended: {ends}) is ready"
                );
                sub.waiting = true;
                return;
            }
            Poll::Ready(taken) => taken,
        };
        assert_eq!(taken, expected, "items taken from {:?}", sub.subscription);
        if taken.is_empty() {
            assert!(ends, "Ready with nothing before the end");
        }

        let mut checks = Vec::new();
        for item in taken {
            match item {
                Item::Signal(signal @ (Signal::Position(_) | Signal::Gap(_))) => {
                    assert_eq!(sub.pending.pop_front(), Some(signal));
                    if let Signal::Gap(cursor) = signal {
                        checks.push(Check::Gap(cursor));
                    }
                }
                Item::Event(event) => {
                    assert_eq!(event.id().seq(), sub.next_seq);
                    sub.delivered.push(event.id());
                    sub.next_seq += 1;
                }
                Item::Signal(Signal::Lagged(cursor)) => {
                    let last = sub.delivered.last().copied().unwrap_or(sub.start_cursor);
                    assert_eq!(cursor, last, "Lagged carries the last delivered id");
                    sub.done = true;
                    sub.end = Some(Signal::Lagged(cursor));
                    checks.push(Check::Lagged(cursor));
                }
                Item::Signal(signal @ Signal::Closed(_)) => {
                    sub.done = true;
                    sub.end = Some(signal);
                }
                Item::Signal(other) => panic!("a channel never yields {other:?}"),
            }
        }
        assert_eq!(sub.subscription.cursor(), model.id(sub.next_seq - 1));

        let incarnation = sub.incarnation;
        let published_since = model.head() != sub.head_at_subscribe;
        for check in checks {
            match check {
                // Resuming from a gap's cursor meets no second gap, as long as
                // nothing was published in between.
                Check::Gap(cursor) if !published_since => {
                    let items = self.resume(incarnation, cursor);
                    assert!(
                        !items
                            .iter()
                            .any(|i| matches!(i, Item::Signal(Signal::Gap(_)))),
                        "second gap resuming from {cursor}: {items:?}"
                    );
                }
                Check::Gap(_) => {}
                // Resuming after Lagged yields the gap the model says (events
                // after the cursor left the history, or the subscriber would
                // not have lagged) and then exactly the retained events.
                Check::Lagged(cursor) => {
                    let model = &self.incarnations[incarnation];
                    let items = self.resume(incarnation, cursor);
                    let mut expected = vec![
                        Item::Signal(Signal::Position(cursor)),
                        Item::Signal(Signal::Gap(model.id(model.history_start - 1))),
                    ];
                    expected.extend(model.retained());
                    if model.closed {
                        expected.push(Item::Signal(Signal::Closed(model.id(model.head()))));
                    }
                    assert_eq!(items, expected, "resuming after Lagged at {cursor}");
                }
            }
        }
    }

    /// Everything a new subscription `After(cursor)` yields at once, checked
    /// against the model; the subscription is dropped afterwards.
    fn resume(&self, incarnation: usize, cursor: EventId) -> Vec<Item> {
        let model = &self.incarnations[incarnation];
        let (signals, next_seq) = model.start(Start::After(cursor)).expect("not ahead");
        let (expected, _) = model.ready(&signals.into(), next_seq, false);
        let mut subscription = now(model.channel.subscribe(Start::After(cursor))).unwrap();
        let items = drain(&mut subscription);
        assert_eq!(items, expected, "resuming from {cursor}");
        items
    }

    fn lookup(&self, id: EventId) {
        let model = self.incarnations.last().unwrap();
        let expected = if id.epoch() != model.epoch {
            Lookup::Gone
        } else if id.seq() == 0 || id.seq() > model.head() {
            Lookup::NotPublished
        } else if id.seq() < model.history_start {
            Lookup::Gone
        } else {
            match model.event_item(id.seq()) {
                Item::Event(event) => Lookup::Found(event),
                Item::Signal(_) => unreachable!(),
            }
        };
        assert_eq!(
            now(model.channel.lookup(id)).unwrap(),
            expected,
            "lookup {id}"
        );
    }

    fn check_describe(&self, incarnation: usize) {
        let model = &self.incarnations[incarnation];
        let info = now(model.channel.describe()).unwrap();
        let retained = model.head() + 1 - model.history_start;
        let subs: Vec<_> = self
            .subs
            .iter()
            .filter(|s| s.incarnation == incarnation)
            .collect();
        let bound = self.limits.subscriber_buffer_bytes as u64;
        let buffered: u64 = subs
            .iter()
            .map(|s| model.unread(s.next_seq).min(bound))
            .sum();
        assert_eq!(info.head, model.id(model.head()));
        assert_eq!(info.retained as u64, retained);
        assert_eq!(
            info.earliest,
            (retained > 0).then(|| model.id(model.history_start))
        );
        assert_eq!(info.subscribers, subs.len());
        assert_eq!(info.buffered_bytes, buffered, "buffered bytes");
        assert_eq!(info.limits, self.limits);
        assert_eq!(model.channel.epoch(), model.epoch);
    }

    /// Reads every subscription to the end of what is ready, then checks that
    /// each delivered, exactly once and in order, every event after its start
    /// up to the head or its `Lagged`/`Closed`.
    fn finish(mut self) {
        for index in 0..self.subs.len() {
            while !self.subs[index].done {
                self.read(index, usize::MAX, MaxBytes::Unlimited, false);
                if self.subs[index].waiting {
                    break;
                }
            }
            let sub = &self.subs[index];
            let model = &self.incarnations[sub.incarnation];
            let first = sub.start_cursor.seq() + 1;
            let last = match sub.end {
                // Everything up to the cursor it was lagged at, which is
                // still lagged: past the history and past the bound.
                Some(Signal::Lagged(cursor)) => {
                    assert!(model.lagged(cursor.seq() + 1));
                    cursor.seq()
                }
                Some(Signal::Closed(head)) => {
                    assert_eq!(head, model.id(model.head()));
                    model.head()
                }
                Some(other) => unreachable!("ended with {other:?}"),
                None => model.head(),
            };
            let expected: Vec<_> = (first..=last).map(|seq| model.id(seq)).collect();
            assert_eq!(sub.delivered, expected, "complete, in order, once");
            assert!(sub.pending.is_empty());
        }
    }
}

enum Check {
    Gap(EventId),
    Lagged(EventId),
}

/// Everything ready now, without waiting.
fn drain(subscription: &mut MemorySubscription) -> Vec<Item> {
    let waker = futures_util::task::noop_waker();
    let mut cx = Context::from_waker(&waker);
    let mut out = Vec::new();
    while let Poll::Ready(n) = subscription.poll_take(&mut cx, &mut out, usize::MAX, usize::MAX) {
        if n == 0 {
            break;
        }
    }
    out
}

proptest! {
    // 512 cases by default; `PROPTEST_CASES=20000` for a deeper run.
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(512),
        ..ProptestConfig::default()
    })]

    #[test]
    fn memory_channel_follows_the_model(
        limits in limits(),
        ops in prop::collection::vec(op(), 1..80),
    ) {
        let mut model = Model::new(limits);
        for op in ops {
            model.apply(op);
        }
        model.finish();
    }
}

// --- Hub ---

fn valid_channel_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= ChannelName::MAX_LEN
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'))
        && !name.chars().all(|c| c == '.')
}

fn channel_name() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Za-z0-9_.:-]{1,8}",
        "[A-Za-z0-9_.:-]{120,135}",
        "\\.{1,4}",
        "[A-Za-z0-9_.:%/ é\n-]{0,12}",
        Just(String::new()),
    ]
}

#[derive(Clone, Debug)]
enum HubOp {
    Publish(usize),
    Close(usize),
    /// Subscribes after a seen cursor (of any incarnation of any name), reads
    /// what is ready and keeps the subscription.
    Subscribe(usize, Index),
}

fn hub_op() -> impl Strategy<Value = HubOp> {
    prop_oneof![
        4 => (0usize..2).prop_map(HubOp::Publish),
        1 => (0usize..2).prop_map(HubOp::Close),
        3 => (0usize..2, any::<Index>()).prop_map(|(n, i)| HubOp::Subscribe(n, i)),
    ]
}

proptest! {
    #[test]
    fn hub_validates_channel_names(name in channel_name()) {
        let hub = Hub::new(HubConfig::default());
        let valid = valid_channel_name(&name);
        let bad = |result: Result<(), Error>| matches!(result, Err(Error::BadChannelName(_)));
        prop_assert_eq!(ChannelName::new(&name).is_ok(), valid);
        if let Ok(checked) = ChannelName::new(&name) {
            prop_assert_eq!(checked.as_str(), name.as_str());
        }
        let id = EventId::start(Epoch::from_u64(1));
        prop_assert_eq!(bad(hub.publish(&name, Message::new(Data::text("x"))).map(drop)), !valid);
        prop_assert_eq!(bad(hub.subscribe(&name, Start::Now).map(drop)), !valid);
        prop_assert_eq!(bad(hub.describe(&name).map(drop)), !valid);
        prop_assert_eq!(bad(hub.lookup(&name, id).map(drop)), !valid);
        prop_assert_eq!(bad(hub.close(&name).map(drop)), !valid);
        if !valid {
            prop_assert_eq!(hub.len(), 0, "a bad name creates nothing");
        }
    }

    /// Closing a name ends its incarnation: its subscribers get `Closed`, the
    /// next use draws a new epoch, and every cursor of an old incarnation
    /// meets a gap at the start of the new one.
    #[test]
    fn hub_close_starts_a_new_incarnation(ops in prop::collection::vec(hub_op(), 1..40)) {
        const NAMES: [&str; 2] = ["news", "a.b:c-d_1"];
        let hub = Hub::new(HubConfig {
            limits: Limits {
                history_events: 3,
                max_event_bytes: 100,
                subscriber_buffer_bytes: 1 << 20,
                ..Limits::default()
            },
            max_channels: 10,
        });
        let mut epochs: HashMap<&str, HashSet<Epoch>> = HashMap::new();
        let mut seen: Vec<EventId> = vec![EventId::start(Epoch::from_u64(0))];
        // Open subscriptions by name, with the head of their incarnation.
        let mut subs: Vec<(&str, MemorySubscription)> = Vec::new();
        for op in ops {
            match op {
                HubOp::Publish(n) => {
                    let name = NAMES[n];
                    let before = hub.describe(name).unwrap().head;
                    let id = hub.publish(name, Message::new(Data::text("x"))).unwrap();
                    prop_assert_eq!(id, EventId::new(before.epoch(), before.seq() + 1));
                    epochs.entry(name).or_default().insert(id.epoch());
                    seen.push(id);
                }
                HubOp::Close(n) => {
                    let name = NAMES[n];
                    let head = hub.describe(name).unwrap().head;
                    epochs.entry(name).or_default().insert(head.epoch());
                    prop_assert!(hub.close(name).unwrap());
                    prop_assert!(!hub.close(name).unwrap(), "closing removes the channel");
                    for (_, subscription) in subs.iter_mut().filter(|(s, _)| *s == name) {
                        let items = drain(subscription);
                        prop_assert_eq!(items.last(), Some(&Item::Signal(Signal::Closed(head))));
                    }
                    subs.retain(|(s, _)| *s != name);
                    // The next use is a new incarnation with a new epoch.
                    let info = hub.describe(name).unwrap();
                    prop_assert_eq!(info.head.seq(), 0);
                    prop_assert!(
                        epochs.entry(name).or_default().insert(info.head.epoch()),
                        "a new incarnation draws a new epoch"
                    );
                    seen.push(info.head);
                }
                HubOp::Subscribe(n, index) => {
                    let name = NAMES[n];
                    let cursor = *index.get(&seen);
                    let info = hub.describe(name).unwrap();
                    let head = info.head;
                    let result = hub.subscribe(name, Start::After(cursor));
                    if cursor.epoch() == head.epoch() && cursor.seq() > head.seq() {
                        prop_assert!(
                            matches!(result, Err(Error::CursorAhead { .. })),
                            "{:?}",
                            result
                        );
                        continue;
                    }
                    let mut subscription = result.unwrap();
                    let items = drain(&mut subscription);
                    let history_start = info.earliest.map_or(head.seq() + 1, EventId::seq);
                    let gap = cursor.epoch() != head.epoch() || cursor.seq() + 1 < history_start;
                    prop_assert_eq!(&items[0], &Item::Signal(Signal::Position(cursor)));
                    let first = if gap {
                        let before = EventId::new(head.epoch(), history_start - 1);
                        prop_assert_eq!(&items[1], &Item::Signal(Signal::Gap(before)));
                        history_start
                    } else {
                        cursor.seq() + 1
                    };
                    let events: Vec<EventId> = items[1 + usize::from(gap)..]
                        .iter()
                        .map(|item| match item {
                            Item::Event(event) => event.id(),
                            other => panic!("unexpected {other:?}"),
                        })
                        .collect();
                    let expected: Vec<EventId> =
                        (first..=head.seq()).map(|seq| EventId::new(head.epoch(), seq)).collect();
                    prop_assert_eq!(events, expected);
                    subs.push((name, subscription));
                }
            }
        }
    }
}

#[test]
fn hub_evicts_only_idle_channels_and_old_cursors_meet_a_gap() {
    let hub = Hub::new(HubConfig {
        limits: Limits {
            // Nothing retained: a channel without subscribers is idle.
            history_bytes: 0,
            max_event_bytes: 10,
            subscriber_buffer_bytes: 20,
            ..Limits::default()
        },
        max_channels: 1,
    });
    let old = hub.publish("a", Message::new(Data::text("x"))).unwrap();
    let published = hub.publish("b", Message::new(Data::text("x")));
    assert!(
        published.is_ok(),
        "the idle channel `a` was evicted for `b`"
    );
    let held = hub.subscribe("b", Start::Now).unwrap();
    assert!(matches!(
        hub.publish("a", Message::new(Data::text("x"))),
        Err(Error::TooManyChannels { max: 1 })
    ));
    drop(held);
    let mut again = hub.subscribe("a", Start::After(old)).unwrap();
    let items = drain(&mut again);
    let epoch = hub.describe("a").unwrap().head.epoch();
    assert_ne!(epoch, old.epoch());
    assert_eq!(
        items,
        [
            Item::Signal(Signal::Position(old)),
            Item::Signal(Signal::Gap(EventId::start(epoch)))
        ]
    );
}
