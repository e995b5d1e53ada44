//! Model checks of the in-memory channel with loom: every interleaving of a
//! publisher and a subscriber, to show that the switch from history to live
//! events has no gap and no duplicate, and that a waiting subscriber is
//! always woken.
//!
//! Under `--cfg loom` the channel's locks are loom's (`src/sync.rs`), so loom
//! explores every order in which the threads take them. Run with:
//!
//! ```text
//! RUSTFLAGS="--cfg loom" cargo test -p push-core --test loom --release
//! ```
//!
//! Without `--cfg loom` this file compiles to nothing. The models are kept
//! tiny on purpose: the number of interleavings grows very fast.
#![cfg(loom)]

use futures_util::{FutureExt, StreamExt};
use loom::thread;
use push_core::{
    Channel, Data, Epoch, EventId, Item, Limits, MemoryChannel, MemorySubscription, Message,
    Signal, Start,
};

const EPOCH: Epoch = Epoch::from_u64(1);

fn channel() -> MemoryChannel {
    MemoryChannel::with_epoch(
        Limits {
            history_events: 8,
            ..Limits::default()
        },
        EPOCH,
    )
}

fn publish(channel: &MemoryChannel, seq: u64) {
    let id = channel
        .publish(Message::new(Data::text(seq.to_string())))
        .now_or_never()
        .unwrap()
        .unwrap();
    assert_eq!(id, EventId::new(EPOCH, seq));
}

fn subscribe(channel: &MemoryChannel, start: Start) -> MemorySubscription {
    channel.subscribe(start).now_or_never().unwrap().unwrap()
}

/// Reads `Position(cursor)`, then the events after `cursor` up to `last`,
/// waiting (and so relying on being woken) whenever none is ready.
fn expect_events(subscription: &mut MemorySubscription, cursor: EventId, last: u64) {
    loom::future::block_on(async {
        assert_eq!(
            subscription.next().await,
            Some(Item::Signal(Signal::Position(cursor)))
        );
        for seq in cursor.seq() + 1..=last {
            match subscription.next().await {
                Some(Item::Event(event)) => {
                    assert_eq!(event.id(), EventId::new(EPOCH, seq), "gap or duplicate");
                    assert_eq!(event.data().as_text(), Some(&*seq.to_string()));
                }
                other => panic!("expected event {seq}, got {other:?}"),
            }
        }
    });
}

/// Subscribing from the start position while two events are published: the
/// subscription may begin before, between or after them, and must deliver
/// both, once each, in order.
#[test]
fn subscribe_from_start_while_publishing() {
    loom::model(|| {
        let channel = channel();
        let publisher = channel.clone();
        let publishing = thread::spawn(move || {
            publish(&publisher, 1);
            publish(&publisher, 2);
        });
        let cursor = EventId::start(EPOCH);
        let mut subscription = subscribe(&channel, Start::After(cursor));
        expect_events(&mut subscription, cursor, 2);
        publishing.join().unwrap();
    });
}

/// Subscribing after the first event (in history) on one thread while the
/// next two are published on another: replay and live meet without gap or
/// duplicate.
#[test]
fn subscribe_after_a_retained_cursor_while_publishing() {
    loom::model(|| {
        let channel = channel();
        publish(&channel, 1);
        let subscriber = channel.clone();
        let reading = thread::spawn(move || {
            let cursor = EventId::new(EPOCH, 1);
            let mut subscription = subscribe(&subscriber, Start::After(cursor));
            expect_events(&mut subscription, cursor, 3);
        });
        publish(&channel, 2);
        publish(&channel, 3);
        reading.join().unwrap();
    });
}

/// A subscriber waiting for the next event is woken by a close, and sees
/// every event published before it, then `Closed` with the head.
#[test]
fn close_wakes_a_waiting_subscriber() {
    loom::model(|| {
        let channel = channel();
        let mut subscription = subscribe(&channel, Start::Now);
        let closer = channel.clone();
        let closing = thread::spawn(move || {
            publish(&closer, 1);
            closer.close().now_or_never().unwrap().unwrap();
        });
        loom::future::block_on(async {
            assert_eq!(
                subscription.next().await,
                Some(Item::Signal(Signal::Position(EventId::start(EPOCH))))
            );
            assert!(matches!(subscription.next().await, Some(Item::Event(e)) if e.id().seq() == 1));
            assert_eq!(
                subscription.next().await,
                Some(Item::Signal(Signal::Closed(EventId::new(EPOCH, 1))))
            );
            assert_eq!(subscription.next().await, None);
        });
        closing.join().unwrap();
    });
}

/// A subscriber that registered its waker and leaves while an event is
/// published leaves the channel consistent: the other subscriber still gets
/// the event, and the channel counts one subscriber.
#[test]
fn leaving_while_publishing_leaves_the_channel_consistent() {
    loom::model(|| {
        let channel = channel();
        let mut staying = subscribe(&channel, Start::Now);
        let mut leaving = subscribe(&channel, Start::Now);
        let leaver = thread::spawn(move || {
            let waker = futures_util::task::noop_waker();
            let mut cx = std::task::Context::from_waker(&waker);
            // Position, then wait.
            assert!(leaving.poll_next_unpin(&mut cx).is_ready());
            let _ = leaving.poll_next_unpin(&mut cx);
            drop(leaving);
        });
        publish(&channel, 1);
        expect_events(&mut staying, EventId::start(EPOCH), 1);
        leaver.join().unwrap();
        let info = channel.describe().now_or_never().unwrap().unwrap();
        assert_eq!(info.subscribers, 1);
        assert_eq!(info.buffered_bytes, 0);
    });
}
