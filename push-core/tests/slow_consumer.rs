//! A subscriber that stops reading holds the channel's memory to the bound
//! (contract point 7).
//!
//! Stalled subscribers and a reader share a channel while far more than the
//! bound is published. The channel's own account (`buffered_bytes`) must stay
//! within the bound for each stalled subscriber, the reader must get every
//! event as it is published, and each stalled subscriber must end with
//! `Lagged` carrying the last event it took. Memory is also measured
//! directly, by counting the bytes this test's thread holds allocated.

// Counting allocations needs a `GlobalAlloc`, which is an unsafe trait; the
// implementation only forwards to `System` and updates a thread-local counter.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::future::Future;
use std::task::{Context, Poll};

use futures_util::task::noop_waker;
use futures_util::FutureExt;
use push_core::memory::EVENT_OVERHEAD_BYTES;
use push_core::{
    Channel, Data, EventId, Item, Limits, MemoryChannel, MemorySubscription, Message, Signal,
    Start, Subscription,
};

/// Counts the bytes allocated and not yet freed by each thread. Every test
/// here allocates and frees its channel's memory on its own thread, so the
/// harness and tests running in parallel do not disturb the figure.
struct Counting;

thread_local! {
    static LIVE_BYTES: Cell<isize> = const { Cell::new(0) };
}

fn count(delta: isize) {
    // `try_with` fails only while the thread is being torn down.
    let _ = LIVE_BYTES.try_with(|live| live.set(live.get() + delta));
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            count(layout.size() as isize);
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            count(layout.size() as isize);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.dealloc(ptr, layout) };
        count(-(layout.size() as isize));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            count(new_size as isize - layout.size() as isize);
        }
        new
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Bytes this thread holds allocated now.
fn live_bytes() -> isize {
    LIVE_BYTES.with(Cell::get)
}

fn now<F: Future>(future: F) -> F::Output {
    future
        .now_or_never()
        .expect("the in-memory channel completes at once")
}

const DATA_BYTES: usize = 1000;
const COST: usize = DATA_BYTES + EVENT_OVERHEAD_BYTES;
const BOUND: usize = 4096;
const HISTORY_EVENTS: usize = 4;

fn limits() -> Limits {
    Limits {
        history_events: 1000,
        // Four events of history, bounded by bytes.
        history_bytes: HISTORY_EVENTS * COST,
        max_event_bytes: DATA_BYTES,
        subscriber_buffer_bytes: BOUND,
        ..Limits::default()
    }
}

/// Takes what is ready, at most `max` items, into `out` (cleared first).
fn take(subscription: &mut MemorySubscription, out: &mut Vec<Item>, max: usize) {
    let waker = noop_waker();
    let mut cx = Context::from_waker(&waker);
    out.clear();
    while out.len() < max {
        match subscription.poll_take(&mut cx, out, max - out.len(), usize::MAX) {
            Poll::Ready(0) | Poll::Pending => break,
            Poll::Ready(_) => {}
        }
    }
}

fn message(i: u64) -> Message {
    let mut text = format!("{i:010}");
    text.extend(std::iter::repeat_n('x', DATA_BYTES - text.len()));
    Message::new(Data::text(text))
}

/// What the channel's account says one stalled subscriber holds: the bytes
/// published after what it took, up to the bound.
fn stalled_account(published: usize, taken: usize) -> u64 {
    (((published - taken) * COST).min(BOUND)) as u64
}

#[test]
fn stalled_subscribers_are_held_to_the_bound_and_lagged_with_their_cursor() {
    const STALLED: usize = 3;
    let channel = MemoryChannel::new(limits());
    let mut out = Vec::with_capacity(64);
    let mut reader = now(channel.subscribe(Start::Now)).unwrap();
    take(&mut reader, &mut out, 1);
    // Stalled subscriber `s` takes `s` events, then stops reading.
    let mut stalled: Vec<_> = (0..STALLED)
        .map(|_| now(channel.subscribe(Start::Now)).unwrap())
        .collect();
    let mut last_taken = [EventId::start(channel.epoch()); STALLED];
    for subscription in &mut stalled {
        take(subscription, &mut out, 1);
    }

    let total = 10 * BOUND / COST + 50;
    for i in 1..=total as u64 {
        let id = now(channel.publish(message(i))).unwrap();
        assert_eq!(id.seq(), i);
        for (s, subscription) in stalled.iter_mut().enumerate() {
            if i <= s as u64 {
                take(subscription, &mut out, 1);
                match &out[..] {
                    [Item::Event(event)] => last_taken[s] = event.id(),
                    other => panic!("expected event {i}, got {other:?}"),
                }
            }
        }
        // The reader is not slowed: it gets each event as it is published.
        take(&mut reader, &mut out, usize::MAX);
        assert!(matches!(&out[..], [Item::Event(event)] if event.id() == id));

        let info = now(channel.describe()).unwrap();
        let expected: u64 = (0..STALLED)
            .map(|s| stalled_account(i as usize, last_taken[s].seq() as usize))
            .sum();
        assert_eq!(info.buffered_bytes, expected, "after {i} events");
        assert!(info.buffered_bytes <= (STALLED * BOUND) as u64);
        assert_eq!(info.retained, HISTORY_EVENTS.min(i as usize));
    }

    for (s, subscription) in stalled.iter_mut().enumerate() {
        take(subscription, &mut out, usize::MAX);
        assert_eq!(out, [Item::Signal(Signal::Lagged(last_taken[s]))]);
        // Resuming from the cursor says the gap, then the whole history.
        let mut resumed = now(channel.subscribe(Start::After(last_taken[s]))).unwrap();
        take(&mut resumed, &mut out, usize::MAX);
        let head = total as u64;
        let first_retained = head + 1 - HISTORY_EVENTS as u64;
        assert_eq!(
            out[..2],
            [
                Item::Signal(Signal::Position(last_taken[s])),
                Item::Signal(Signal::Gap(EventId::new(
                    channel.epoch(),
                    first_retained - 1
                )))
            ]
        );
        let ids: Vec<u64> = out[2..]
            .iter()
            .map(|item| match item {
                Item::Event(event) => event.id().seq(),
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        assert_eq!(ids, (first_retained..=head).collect::<Vec<_>>());
    }
    drop(stalled);
    assert_eq!(now(channel.describe()).unwrap().buffered_bytes, 0);
}

/// Live bytes, measured: however much is published and however many
/// subscribers stall, the channel holds at most its history plus one bound
/// (the bound is counted from the head, so with a history larger than the
/// bound the window lies inside the history and nothing more is held).
#[test]
fn measured_memory_stays_within_history_and_bound() {
    // History larger than the bound.
    measure(limits());
    // History of one event, a bound of fifteen: the window beyond the
    // history is what stalled subscribers hold.
    measure(Limits {
        history_events: 1,
        subscriber_buffer_bytes: 15 * COST,
        ..limits()
    });
}

fn measure(limits: Limits) {
    // What the log's own bookkeeping (ring buffer of entries, subscriber
    // slots) and the per-event allocations beyond the accounted overhead
    // may add on top of `history_bytes + subscriber_buffer_bytes`.
    const SLACK: isize = 4096;
    let bound = limits.subscriber_buffer_bytes;
    let history = (limits.history_bytes.min(limits.history_events * COST)) as isize;

    let start = live_bytes();
    let channel = MemoryChannel::new(limits);
    let mut out = Vec::with_capacity(64);
    let mut reader = now(channel.subscribe(Start::Now)).unwrap();
    let mut stalled: Vec<_> = (0..10)
        .map(|_| now(channel.subscribe(Start::Now)).unwrap())
        .collect();
    for subscription in &mut stalled {
        take(subscription, &mut out, usize::MAX);
    }
    take(&mut reader, &mut out, usize::MAX);
    out.clear();
    // Channel, subscriptions and buffers, before any event.
    let empty = live_bytes();

    let mut published = 0u64;
    let mut publish = |events: usize, reader: Option<&mut MemorySubscription>| {
        let mut reader = reader;
        for _ in 0..events {
            published += 1;
            now(channel.publish(message(published))).unwrap();
            if let Some(reader) = reader.as_deref_mut() {
                take(reader, &mut out, usize::MAX);
                assert_eq!(out.len(), 1);
            }
        }
        // Hold no event outside the channel while measuring.
        out.clear();
        live_bytes() - empty
    };
    let ten_bounds = 10 * bound / COST + 1;
    let after_10x = publish(ten_bounds, Some(&mut reader));
    let after_100x = publish(10 * ten_bounds, Some(&mut reader));
    drop(stalled);
    drop(reader);
    let without_subscribers = live_bytes() - empty;
    // Publishing with no subscriber holds only the history.
    let idle = publish(ten_bounds, None);
    drop(out);
    drop(channel);
    let end = live_bytes() - start;

    let bound = bound as isize;
    println!(
        "live bytes held by the channel beyond its empty state: after 10x the bound {after_10x}, \
         after 100x {after_100x}, without subscribers {without_subscribers}, \
         publishing without subscribers {idle}; accounted history {history}, bound {bound}; \
         after drop {end}"
    );
    assert!(
        after_10x <= history + bound + SLACK,
        "{after_10x} > {history} + {bound} + {SLACK}"
    );
    assert!(
        after_100x <= after_10x + 1024,
        "grows with what is published: {after_10x} then {after_100x}"
    );
    assert!(
        without_subscribers <= history + SLACK,
        "the window is not freed when the last subscriber leaves: {without_subscribers}"
    );
    assert!(
        idle <= history + SLACK,
        "publishing without subscribers holds more than the history: {idle}"
    );
    assert!(end <= 0, "{end} bytes leaked");
}

/// Subscribers that wait and leave while nothing is published (long polls
/// timing out on an idle channel, say) cost nothing once gone, however many
/// come and go.
#[test]
fn subscribers_that_wait_and_leave_cost_nothing_once_gone() {
    let channel = MemoryChannel::new(limits());
    let waker = noop_waker();
    let mut cx = Context::from_waker(&waker);
    let mut out = Vec::with_capacity(8);
    // One subscriber stays, waiting, so the channel is never empty.
    let mut staying = now(channel.subscribe(Start::Now)).unwrap();
    take(&mut staying, &mut out, usize::MAX);
    assert!(staying
        .poll_take(&mut cx, &mut out, 1, usize::MAX)
        .is_pending());
    let mut cycle = || {
        let mut subscription = now(channel.subscribe(Start::Now)).unwrap();
        take(&mut subscription, &mut out, usize::MAX);
        assert!(subscription
            .poll_take(&mut cx, &mut out, 1, usize::MAX)
            .is_pending());
    };
    for _ in 0..100 {
        cycle();
    }
    let before = live_bytes();
    for _ in 0..10_000 {
        cycle();
    }
    let grown = live_bytes() - before;
    assert!(
        grown <= 256,
        "10,000 subscribers that waited and left still hold {grown} bytes"
    );
    // The one still waiting is woken by the next event.
    now(channel.publish(message(1))).unwrap();
    take(&mut staying, &mut out, usize::MAX);
    assert_eq!(out.len(), 1);
}
