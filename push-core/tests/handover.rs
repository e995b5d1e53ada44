//! Stress tests of the switch from retained history to live events.
//!
//! Publishers run on their own threads while subscribers join from a cursor
//! inside the history (`Start::After(k)`), so that the replay of `k+1..head`
//! and the first live events race. Every subscriber must see exactly
//! `k+1, k+2, …` up to the last event, with no gap and no duplicate; with
//! several publishers, ids must be unique and every subscriber must see the
//! one order the ids define (contract points 2 and 3).
//!
//! Subscribers read on plain threads through a waker that unparks them, and
//! fail (instead of hanging) when they wait ten seconds without being woken:
//! a lost wakeup. One variant runs everything as tasks of a multi-thread
//! tokio runtime awaiting `StreamExt::next`.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

use futures_util::{FutureExt, Stream, StreamExt};
use push_core::{
    Channel, Data, Epoch, EventId, Item, Limits, MemoryChannel, MemorySubscription, Message,
    Signal, Start, Subscription,
};

/// How long a subscriber waits without a wakeup before the test fails.
const LOST_WAKEUP: Duration = Duration::from_secs(10);

fn now<F: Future>(future: F) -> F::Output {
    future
        .now_or_never()
        .expect("the in-memory channel completes at once")
}

/// History large enough that every cursor of a run stays retained.
fn channel() -> MemoryChannel {
    MemoryChannel::new(Limits {
        history_events: 100_000,
        history_bytes: 64 << 20,
        ..Limits::default()
    })
}

/// A small deterministic generator, so that a failing iteration can be
/// replayed.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

/// Wakes a parked reader thread and records that it did.
struct Unpark {
    thread: Thread,
    woken: AtomicBool,
}

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::SeqCst);
        self.thread.unpark();
    }
}

/// Reads a subscription on the current thread, waiting by parking.
struct Reader {
    subscription: MemorySubscription,
    unpark: Arc<Unpark>,
    waker: Waker,
    /// Take items in batches with `poll_take` rather than one by one.
    batches: bool,
    ready: std::collections::VecDeque<Item>,
    out: Vec<Item>,
}

impl Reader {
    fn new(subscription: MemorySubscription, batches: bool) -> Self {
        let unpark = Arc::new(Unpark {
            thread: thread::current(),
            woken: AtomicBool::new(false),
        });
        Reader {
            subscription,
            waker: Waker::from(Arc::clone(&unpark)),
            unpark,
            batches,
            ready: Default::default(),
            out: Vec::new(),
        }
    }

    fn next(&mut self) -> Option<Item> {
        loop {
            if let Some(item) = self.ready.pop_front() {
                return Some(item);
            }
            self.unpark.woken.store(false, Ordering::SeqCst);
            let mut cx = Context::from_waker(&self.waker);
            let poll = if self.batches {
                self.subscription
                    .poll_take(&mut cx, &mut self.out, 16, usize::MAX)
                    .map(|_| {
                        self.ready.extend(self.out.drain(..));
                        self.ready.pop_front()
                    })
            } else {
                Pin::new(&mut self.subscription).poll_next(&mut cx)
            };
            match poll {
                Poll::Ready(item) => return item,
                Poll::Pending => {
                    let deadline = Instant::now() + LOST_WAKEUP;
                    while !self.unpark.woken.load(Ordering::SeqCst) {
                        let left = deadline.saturating_duration_since(Instant::now());
                        assert!(
                            !left.is_zero(),
                            "a waiting subscriber was never woken (at {})",
                            self.subscription.cursor()
                        );
                        thread::park_timeout(left);
                    }
                }
            }
        }
    }

    /// Reads the events after `start` up to `last`, checking each id.
    fn expect_events(&mut self, start: EventId, last: u64) -> Vec<push_core::Event> {
        assert_eq!(self.next(), Some(Item::Signal(Signal::Position(start))));
        let mut events = Vec::new();
        for seq in start.seq() + 1..=last {
            match self.next() {
                Some(Item::Event(event)) => {
                    assert_eq!(
                        event.id(),
                        EventId::new(start.epoch(), seq),
                        "after {start}: gap or duplicate"
                    );
                    events.push(event);
                }
                other => panic!("after {start}, expected event {seq}, got {other:?}"),
            }
        }
        events
    }
}

fn text(s: String) -> Message {
    Message::new(Data::text(s))
}

/// One publisher; subscribers join at random cursors while it runs.
#[test]
fn replay_to_live_handover_has_no_gap_and_no_duplicate() {
    const ITERATIONS: u64 = 500;
    const BEFORE: u64 = 20;
    const DURING: u64 = 200;
    const SUBSCRIBERS: u64 = 3;
    let last = BEFORE + DURING;
    for iteration in 0..ITERATIONS {
        let channel = channel();
        for i in 1..=BEFORE {
            now(channel.publish(text(i.to_string()))).unwrap();
        }
        let start = Barrier::new(1 + SUBSCRIBERS as usize);
        thread::scope(|scope| {
            scope.spawn(|| {
                start.wait();
                for i in BEFORE + 1..=last {
                    now(channel.publish(text(i.to_string()))).unwrap();
                    if i % 8 == 0 {
                        thread::yield_now();
                    }
                }
            });
            for s in 0..SUBSCRIBERS {
                let (channel, start) = (&channel, &start);
                scope.spawn(move || {
                    let mut rng = Rng::new(iteration * 31 + s);
                    start.wait();
                    for _ in 0..rng.below(50) {
                        thread::yield_now();
                    }
                    let head = now(channel.describe()).unwrap().head;
                    // A cursor in the history, often the head itself: the
                    // switch to live happens at once.
                    let k = head.seq() - rng.below(4).min(head.seq());
                    let cursor = EventId::new(head.epoch(), k);
                    let subscription = now(channel.subscribe(Start::After(cursor))).unwrap();
                    let mut reader = Reader::new(subscription, s % 2 == 0);
                    let events = reader.expect_events(cursor, last);
                    for event in events {
                        assert_eq!(event.data().as_text(), Some(&*event.id().seq().to_string()));
                    }
                });
            }
        });
    }
}

/// Several publishers and subscribers at once: ids are unique and counted
/// without holes, each publisher's events keep its order, and every
/// subscriber sees the same order, the one the ids define.
#[test]
fn concurrent_publishers_share_one_order() {
    const ITERATIONS: u64 = 300;
    const PUBLISHERS: u64 = 3;
    const EACH: u64 = 100;
    const SUBSCRIBERS: u64 = 3;
    let last = PUBLISHERS * EACH;
    for iteration in 0..ITERATIONS {
        let channel = channel();
        let epoch = channel.epoch();
        let start = Barrier::new((PUBLISHERS + SUBSCRIBERS) as usize);
        let (published, seen) = thread::scope(|scope| {
            let publishers: Vec<_> = (0..PUBLISHERS)
                .map(|p| {
                    let (channel, start) = (&channel, &start);
                    scope.spawn(move || {
                        start.wait();
                        (0..EACH)
                            .map(|i| {
                                let data = format!("{p}/{i}");
                                let id = now(channel.publish(text(data.clone()))).unwrap();
                                (id, data)
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            let subscribers: Vec<_> = (0..SUBSCRIBERS)
                .map(|s| {
                    let (channel, start) = (&channel, &start);
                    scope.spawn(move || {
                        let mut rng = Rng::new(iteration * 17 + s);
                        // The first subscriber joins before anything is
                        // published; the others at a cursor mid-flight.
                        let cursor = if s == 0 {
                            EventId::start(epoch)
                        } else {
                            start.wait();
                            for _ in 0..rng.below(30) {
                                thread::yield_now();
                            }
                            let head = now(channel.describe()).unwrap().head;
                            EventId::new(epoch, head.seq() - rng.below(3).min(head.seq()))
                        };
                        let subscription = now(channel.subscribe(Start::After(cursor))).unwrap();
                        if s == 0 {
                            start.wait();
                        }
                        let mut reader = Reader::new(subscription, s % 2 == 1);
                        reader.expect_events(cursor, last)
                    })
                })
                .collect();
            let published: Vec<_> = publishers.into_iter().map(|p| p.join().unwrap()).collect();
            let seen: Vec<_> = subscribers.into_iter().map(|s| s.join().unwrap()).collect();
            (published, seen)
        });

        let mut by_id = HashMap::new();
        for ids in &published {
            assert!(
                ids.windows(2).all(|w| w[0].0.seq() < w[1].0.seq()),
                "a publisher's events keep its order"
            );
            for (id, data) in ids {
                assert_eq!(id.epoch(), epoch);
                assert!(
                    by_id.insert(id.seq(), data.clone()).is_none(),
                    "id {id} given twice"
                );
            }
        }
        let mut seqs: Vec<_> = by_id.keys().copied().collect();
        seqs.sort_unstable();
        assert_eq!(seqs, (1..=last).collect::<Vec<_>>(), "ids without holes");
        for events in &seen {
            for event in events {
                assert_eq!(event.data().as_text(), Some(&*by_id[&event.id().seq()]));
            }
        }
        // The first subscriber saw everything; the others a suffix of it.
        let everything: Vec<_> = seen[0].iter().map(|e| e.id()).collect();
        assert_eq!(everything.len() as u64, last);
        for events in &seen[1..] {
            let ids: Vec<_> = events.iter().map(|e| e.id()).collect();
            assert!(everything.ends_with(&ids));
        }
    }
}

/// The same handover with tasks of a multi-thread runtime awaiting
/// `StreamExt::next` and publishers awaiting `Channel::publish`.
#[test]
fn handover_on_a_multi_thread_runtime() {
    const ITERATIONS: u64 = 200;
    const BEFORE: u64 = 10;
    const EACH: u64 = 100;
    const PUBLISHERS: u64 = 2;
    const SUBSCRIBERS: u64 = 4;
    let last = BEFORE + PUBLISHERS * EACH;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap();
    for iteration in 0..ITERATIONS {
        runtime.block_on(async {
            let channel = channel();
            for i in 1..=BEFORE {
                channel.publish(text(i.to_string())).await.unwrap();
            }
            let publishers: Vec<_> = (0..PUBLISHERS)
                .map(|p| {
                    let channel = channel.clone();
                    tokio::spawn(async move {
                        for i in 0..EACH {
                            channel.publish(text(format!("{p}/{i}"))).await.unwrap();
                            if i % 10 == 0 {
                                tokio::task::yield_now().await;
                            }
                        }
                    })
                })
                .collect();
            let subscribers: Vec<_> = (0..SUBSCRIBERS)
                .map(|s| {
                    let channel = channel.clone();
                    tokio::spawn(async move {
                        let mut rng = Rng::new(iteration * 13 + s);
                        for _ in 0..rng.below(20) {
                            tokio::task::yield_now().await;
                        }
                        let head = channel.describe().await.unwrap().head;
                        let cursor =
                            EventId::new(head.epoch(), head.seq() - rng.below(5).min(head.seq()));
                        let mut subscription =
                            channel.subscribe(Start::After(cursor)).await.unwrap();
                        assert_eq!(
                            subscription.next().await,
                            Some(Item::Signal(Signal::Position(cursor)))
                        );
                        for seq in cursor.seq() + 1..=last {
                            match subscription.next().await {
                                Some(Item::Event(event)) => {
                                    assert_eq!(event.id(), EventId::new(head.epoch(), seq));
                                }
                                other => panic!("expected event {seq}, got {other:?}"),
                            }
                        }
                    })
                })
                .collect();
            let all = async {
                for task in publishers.into_iter().chain(subscribers) {
                    task.await.unwrap();
                }
            };
            tokio::time::timeout(LOST_WAKEUP, all)
                .await
                .expect("every subscriber woken and done");
        });
    }
}

/// Identity across incarnations: a second channel's cursors are not this
/// channel's, even with the same sequence number.
#[test]
fn cursors_of_another_epoch_never_hand_over_silently() {
    let first = MemoryChannel::with_epoch(Limits::default(), Epoch::from_u64(1));
    let second = MemoryChannel::with_epoch(Limits::default(), Epoch::from_u64(2));
    for i in 0..3 {
        now(first.publish(text(i.to_string()))).unwrap();
        now(second.publish(text(i.to_string()))).unwrap();
    }
    let cursor = EventId::new(Epoch::from_u64(1), 2);
    let subscription = now(second.subscribe(Start::After(cursor))).unwrap();
    let mut reader = Reader::new(subscription, false);
    assert_eq!(reader.next(), Some(Item::Signal(Signal::Position(cursor))));
    assert_eq!(
        reader.next(),
        Some(Item::Signal(Signal::Gap(EventId::start(Epoch::from_u64(
            2
        )))))
    );
    assert!(matches!(reader.next(), Some(Item::Event(e)) if e.id().seq() == 1));
}
