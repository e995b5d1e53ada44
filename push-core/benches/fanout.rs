//! Fan-out of one channel to 10,000 in-process subscribers.
//!
//! Each iteration publishes one 100-byte event and lets every subscriber take
//! it and frame it as SSE (`Sse::event`, which encodes once per event and
//! shares the bytes), so the figure covers publish, wake, take, encode and
//! share. Two shapes:
//!
//! - `sync`: one thread drives all 10,000 subscriptions with `poll_take` and
//!   a no-op waker, each polling until it would wait again (so every
//!   publish also wakes 10,000 registered wakers);
//! - `tasks`: 10,000 tasks on a two-worker tokio runtime, each awaiting
//!   `StreamExt::next`.
//!
//! Throughput is in deliveries (one subscriber receiving one event). Before
//! measuring, each shape counts heap allocations over 100 publishes to
//! 10,000 subscribers with a counting global allocator and prints
//! `allocations per delivery: X` (the target is under 0.1). Taking and
//! framing an event allocates nothing; what is counted is per publish: the
//! event itself, and its SSE encoding, made once and shared.
//!
//! ```text
//! cargo bench -p push-core --bench fanout -- --warm-up-time 1 --measurement-time 3
//! ```

// Counting allocations needs a `GlobalAlloc`, which is an unsafe trait; the
// implementation only forwards to `System` and bumps a counter.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::future::Future;
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{Criterion, Throughput};
use futures_util::task::noop_waker;
use futures_util::{FutureExt, StreamExt};
use push_core::delivery::{Delivery, Sse};
use push_core::{
    Channel, Data, Item, Limits, MemoryChannel, MemorySubscription, Message, Start, Subscription,
};
use tokio::sync::Notify;

struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const SUBSCRIBERS: usize = 10_000;
const EVENT_BYTES: usize = 100;
/// Publishes over which allocations are counted.
const COUNTED_PUBLISHES: u64 = 100;

/// A 100-byte text message whose data is static, so that building it per
/// publish allocates nothing: what is counted is the channel's work.
fn message() -> Message {
    static TEXT: [u8; EVENT_BYTES] = [b'x'; EVENT_BYTES];
    Message::new(Data::text_from_utf8(Bytes::from_static(&TEXT)).unwrap())
}

fn now<F: Future>(future: F) -> F::Output {
    future
        .now_or_never()
        .expect("the in-memory channel completes at once")
}

fn channel() -> MemoryChannel {
    MemoryChannel::new(Limits::default())
}

fn report(shape: &str, allocations: u64) {
    let deliveries = COUNTED_PUBLISHES * SUBSCRIBERS as u64;
    println!(
        "{shape}: {allocations} allocations over {COUNTED_PUBLISHES} publishes to {SUBSCRIBERS} \
         subscribers ({:.1} per publish); allocations per delivery: {:.5}",
        allocations as f64 / COUNTED_PUBLISHES as f64,
        allocations as f64 / deliveries as f64,
    );
}

/// Every subscription driven by one thread.
struct SyncFanout {
    channel: MemoryChannel,
    subscriptions: Vec<MemorySubscription>,
    out: Vec<Item>,
}

impl SyncFanout {
    fn new() -> Self {
        let channel = channel();
        let mut fanout = SyncFanout {
            subscriptions: (0..SUBSCRIBERS)
                .map(|_| now(channel.subscribe(Start::Now)).unwrap())
                .collect(),
            channel,
            out: Vec::with_capacity(16),
        };
        // Take the positions and register every waker.
        assert_eq!(fanout.deliver(), 0);
        fanout
    }

    /// Each subscriber takes what is ready, frames the events as SSE, and
    /// polls until it would wait. Returns the events delivered.
    fn deliver(&mut self) -> usize {
        let waker = noop_waker();
        let mut cx = Context::from_waker(&waker);
        let sse = Sse::new();
        let mut delivered = 0;
        for subscription in &mut self.subscriptions {
            while let Poll::Ready(n) =
                subscription.poll_take(&mut cx, &mut self.out, 16, usize::MAX)
            {
                assert!(n > 0, "the channel stays open");
                for item in self.out.drain(..) {
                    if let Item::Event(event) = item {
                        black_box(sse.event(&event));
                        delivered += 1;
                    }
                }
            }
        }
        delivered
    }

    fn publish_and_deliver(&mut self) {
        now(self.channel.publish(message())).unwrap();
        assert_eq!(self.deliver(), SUBSCRIBERS);
    }
}

/// Every subscription a task of a multi-thread runtime.
struct TaskFanout {
    runtime: tokio::runtime::Runtime,
    channel: MemoryChannel,
    remaining: Arc<AtomicUsize>,
    done: Arc<Notify>,
}

impl TaskFanout {
    fn new() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        let channel = channel();
        let remaining = Arc::new(AtomicUsize::new(0));
        let done = Arc::new(Notify::new());
        let started = Arc::new(AtomicUsize::new(0));
        for _ in 0..SUBSCRIBERS {
            let mut subscription = now(channel.subscribe(Start::Now)).unwrap();
            let (remaining, done, started) = (remaining.clone(), done.clone(), started.clone());
            runtime.spawn(async move {
                let sse = Sse::new();
                // The position.
                subscription.next().await;
                started.fetch_add(1, Ordering::SeqCst);
                while let Some(item) = subscription.next().await {
                    if let Item::Event(event) = item {
                        black_box(sse.event(&event));
                        if remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
                            done.notify_one();
                        }
                    }
                }
            });
        }
        while started.load(Ordering::SeqCst) < SUBSCRIBERS {
            std::thread::sleep(Duration::from_millis(1));
        }
        TaskFanout {
            runtime,
            channel,
            remaining,
            done,
        }
    }

    /// Publishes `publishes` events one after the other, each once every
    /// task has received the previous one.
    fn run(&self, publishes: u64) -> Duration {
        self.runtime.block_on(async {
            let start = Instant::now();
            for _ in 0..publishes {
                self.remaining.store(SUBSCRIBERS, Ordering::Release);
                self.channel.publish(message()).await.unwrap();
                self.done.notified().await;
            }
            start.elapsed()
        })
    }
}

fn fanout(c: &mut Criterion) {
    let mut group = c.benchmark_group("fanout_10k");
    group.throughput(Throughput::Elements(SUBSCRIBERS as u64));
    group.sample_size(10);

    let mut sync = SyncFanout::new();
    for _ in 0..10 {
        sync.publish_and_deliver();
    }
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    for _ in 0..COUNTED_PUBLISHES {
        sync.publish_and_deliver();
    }
    report("sync", ALLOCATIONS.load(Ordering::Relaxed) - before);
    group.bench_function("sync_poll_take_sse", |b| {
        b.iter(|| sync.publish_and_deliver());
    });
    drop(sync);

    let tasks = TaskFanout::new();
    tasks.run(10);
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    tasks.run(COUNTED_PUBLISHES);
    report("tasks", ALLOCATIONS.load(Ordering::Relaxed) - before);
    group.bench_function("tasks_stream_next_sse", |b| {
        b.iter_custom(|iters| tasks.run(iters));
    });
    drop(tasks);

    group.finish();
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    fanout(&mut criterion);
    criterion.final_summary();
}
