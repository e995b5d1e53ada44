//! Fan-out through push-tower's stream bodies: one channel, 10,000 open SSE
//! response bodies, each publish framed and handed to every body.
//!
//! Each iteration publishes one 100-byte event and polls every body for its
//! next frame (with a no-op waker, as hyper would after a wakeup), so the
//! figure covers publish, wake, the engine's take and framing, and the body
//! adapter: everything between a publish and the bytes hyper writes.
//! Throughput is in deliveries (one body yielding one event).
//!
//! ```text
//! cargo bench -p push-tower --bench body_fanout -- --warm-up-time 1 --measurement-time 5
//! ```

use std::hint::black_box;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use criterion::{Criterion, Throughput};
use http_body::Body;
use push_core::{Data, Hub, HubConfig, Message};
use push_tower::{ChannelFrom, Config, Push, PushBody};
use tower::ServiceExt;

const SUBSCRIBERS: usize = 10_000;

fn poll_body(body: &mut PushBody, cx: &mut Context<'_>) -> bool {
    matches!(Pin::new(body).poll_frame(cx), Poll::Ready(Some(Ok(_))))
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let push = Push::new(Hub::new(HubConfig::default()), Config::default());
    let sse = push.sse(ChannelFrom::path("/{channel}").unwrap());
    let mut bodies: Vec<PushBody> = runtime.block_on(async {
        let mut bodies = Vec::with_capacity(SUBSCRIBERS);
        for _ in 0..SUBSCRIBERS {
            let request = http::Request::get("/fanout").body(String::new()).unwrap();
            bodies.push(sse.clone().oneshot(request).await.unwrap().into_body());
        }
        bodies
    });
    let mut cx = Context::from_waker(Waker::noop());
    // The position frame first.
    for body in &mut bodies {
        assert!(poll_body(body, &mut cx));
    }
    let payload = "x".repeat(100);
    // A fixed number of publishes, without criterion, for instruction
    // counts under `valgrind --tool=callgrind` (repeatable where timings on
    // a shared machine are not).
    if let Some(publishes) = std::env::var("FANOUT_PUBLISHES")
        .ok()
        .and_then(|n| n.parse::<usize>().ok())
    {
        for _ in 0..publishes {
            push.channels()
                .publish("fanout", Message::new(Data::text(payload.clone())))
                .unwrap();
            for body in &mut bodies {
                assert!(poll_body(body, &mut cx));
            }
        }
        return;
    }
    let mut group = c.benchmark_group("body_fanout");
    group.throughput(Throughput::Elements(SUBSCRIBERS as u64));
    group.bench_function("sse_10000_bodies", |b| {
        b.iter(|| {
            push.channels()
                .publish("fanout", Message::new(Data::text(payload.clone())))
                .unwrap();
            let mut delivered = 0;
            for body in &mut bodies {
                delivered += usize::from(poll_body(body, &mut cx));
            }
            assert_eq!(delivered, SUBSCRIBERS);
            black_box(delivered)
        })
    });
    group.finish();
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    bench(&mut criterion);
    criterion.final_summary();
}
