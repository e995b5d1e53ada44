//! Faults said, never silent: Redis stopped and restarted mid-stream (with
//! and without its data, within and past the grace), a slow subscriber on
//! one node while another keeps up. Each run counts what the subscribers
//! got: every event once and in order, or an explicit gap or signal.

mod support;

use std::time::Duration;

use futures_util::StreamExt;
use push_core::{
    ChannelName, Channels, Data, Error, EventId, Item, Limits, Message, Signal, Start,
};
use push_redis::{RedisChannels, RedisConfig, RedisSubscription};
use support::{channels_with, RedisServer};

const WAIT: Duration = Duration::from_secs(20);

fn config(grace: Duration) -> RedisConfig {
    RedisConfig {
        reconnect_grace: grace,
        ..RedisConfig::default()
    }
}

fn news() -> ChannelName {
    ChannelName::new("news").unwrap()
}

async fn publish(channels: &RedisChannels, n: u32) -> Result<EventId, Error> {
    channels
        .publish(&news(), Message::new(Data::text(n.to_string())))
        .await
}

/// Publishes `range`, retrying each until Redis takes it (it answers
/// `Backend` while down).
async fn publish_all(channels: &RedisChannels, range: std::ops::RangeInclusive<u32>) -> u32 {
    let mut refused = 0;
    for n in range {
        loop {
            match publish(channels, n).await {
                Ok(_) => break,
                Err(Error::Backend(_)) => {
                    refused += 1;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(other) => panic!("publish {n}: {other}"),
            }
        }
    }
    refused
}

/// A publish over HTTP through a push-tower server on `channels`.
async fn http_publish(channels: &RedisChannels) -> conformance::http::FullResponse {
    let push = push_tower::Push::new(channels.clone(), push_tower::Config::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(push_tower::serve(listener, push.router()).run());
    conformance::HttpClient::new(&base, conformance::Protocol::Http1)
        .fetch(
            http::Method::POST,
            "/channels/news",
            &[("content-type", "text/plain")],
            bytes::Bytes::from_static(b"refused"),
        )
        .await
        .unwrap()
}

/// The next item, skipping nothing.
async fn next(subscription: &mut RedisSubscription) -> Option<Item> {
    tokio::time::timeout(WAIT, subscription.next())
        .await
        .expect("an item within the wait")
}

/// Reads events until `last` (their data), or until a signal ends the
/// subscription; returns the events' data and the ending signal.
async fn read_until(subscription: &mut RedisSubscription, last: u32) -> (Vec<u32>, Option<Signal>) {
    let mut got = Vec::new();
    loop {
        match next(subscription).await {
            Some(Item::Event(event)) => {
                let text = event.data().as_text().unwrap();
                let n: u32 = text.split(' ').next().unwrap().parse().unwrap();
                got.push(n);
                if n == last {
                    return (got, None);
                }
            }
            Some(Item::Signal(Signal::Position(_) | Signal::Gap(_))) => {}
            Some(Item::Signal(signal)) => return (got, Some(signal)),
            None => return (got, None),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restarted_with_its_data_within_the_grace_is_caught_up_silently() {
    let mut redis = RedisServer::start();
    let node = channels_with(&redis, config(Duration::from_secs(10))).await;
    let mut subscription = node.subscribe(&news(), Start::Now).await.unwrap();
    assert!(matches!(
        next(&mut subscription).await,
        Some(Item::Signal(Signal::Position(_)))
    ));
    publish_all(&node, 1..=10).await;

    redis.stop(true);
    // While Redis is down, publishing is refused: on the wire, 503 with a
    // JSON error and Retry-After.
    assert!(matches!(publish(&node, 0).await, Err(Error::Backend(_))));
    let answer = http_publish(&node).await;
    assert_eq!(answer.status, 503);
    assert_eq!(answer.error_code().as_deref(), Some("unavailable"));
    assert_eq!(answer.headers["retry-after"], "1");
    redis.restart();
    let refused = publish_all(&node, 11..=20).await;

    let (got, ended) = read_until(&mut subscription, 20).await;
    assert_eq!(ended, None);
    assert_eq!(
        got,
        (1..=20).collect::<Vec<_>>(),
        "every event once, in order"
    );
    println!("restart with data: 20 delivered, 0 lost, 0 duplicated, {refused} publishes refused while reconnecting");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_past_the_grace_ends_streams_with_shutdown_and_they_resume() {
    let mut redis = RedisServer::start();
    let node = channels_with(&redis, config(Duration::from_millis(500))).await;
    let mut subscription = node.subscribe(&news(), Start::Now).await.unwrap();
    next(&mut subscription).await;
    publish_all(&node, 1..=10).await;
    let (got, _) = read_until(&mut subscription, 10).await;
    assert_eq!(got, (1..=10).collect::<Vec<_>>());

    // And a client over the wire, on SSE.
    let push = push_tower::Push::new(node.clone(), push_tower::Config::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(push_tower::serve(listener, push.router()).run());
    let sse = conformance::WireClient::new(
        conformance::Technique::Sse,
        conformance::HttpClient::new(&base, conformance::Protocol::Http1),
    );
    let mut session = conformance::Transport::open(&sse, "news", conformance::StartAt::Now)
        .await
        .unwrap();

    redis.stop(true);
    let (got, ended) = read_until(&mut subscription, u32::MAX).await;
    assert!(got.is_empty());
    let Some(Signal::Shutdown(cursor)) = ended else {
        panic!("expected shutdown, got {ended:?}");
    };
    assert_eq!(next(&mut subscription).await, None);
    let signal = loop {
        match tokio::time::timeout(WAIT, session.next())
            .await
            .unwrap()
            .unwrap()
        {
            Some(conformance::Received::Signal(signal))
                if signal.kind != conformance::SignalKind::Position =>
            {
                break signal
            }
            Some(_) => {}
            None => panic!("the SSE stream ended without a signal"),
        }
    };
    assert_eq!(signal.kind, conformance::SignalKind::Shutdown);
    assert_eq!(signal.cursor.as_deref(), Some(cursor.to_string().as_str()));

    redis.restart();
    publish_all(&node, 11..=20).await;
    let mut resumed = node.subscribe(&news(), Start::After(cursor)).await.unwrap();
    assert_eq!(
        next(&mut resumed).await,
        Some(Item::Signal(Signal::Position(cursor))),
        "no gap: Redis kept the events"
    );
    let (got, ended) = read_until(&mut resumed, 20).await;
    assert_eq!(ended, None);
    assert_eq!(got, (11..=20).collect::<Vec<_>>());
    println!(
        "down past the grace: shutdown at event 10, resumed with 11..=20, 0 lost, 0 duplicated"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restarted_without_its_data_is_a_new_epoch_and_a_gap() {
    let mut redis = RedisServer::start();
    let node = channels_with(&redis, config(Duration::from_secs(10))).await;
    let mut subscription = node.subscribe(&news(), Start::Now).await.unwrap();
    next(&mut subscription).await;
    publish_all(&node, 1..=5).await;
    let (got, _) = read_until(&mut subscription, 5).await;
    assert_eq!(got, (1..=5).collect::<Vec<_>>());

    redis.stop(false);
    redis.restart();
    // The reader reconnects, finds the incarnation gone, and says so.
    let (got, ended) = read_until(&mut subscription, u32::MAX).await;
    assert!(got.is_empty());
    let Some(Signal::Shutdown(cursor)) = ended else {
        panic!("expected shutdown, got {ended:?}");
    };
    publish_all(&node, 6..=8).await;
    let mut resumed = node.subscribe(&news(), Start::After(cursor)).await.unwrap();
    assert!(matches!(
        next(&mut resumed).await,
        Some(Item::Signal(Signal::Position(_)))
    ));
    let Some(Item::Signal(Signal::Gap(gap))) = next(&mut resumed).await else {
        panic!("the old epoch's cursor must meet a gap");
    };
    assert_ne!(
        gap.epoch(),
        cursor.epoch(),
        "a new epoch, never ids renumbered"
    );
    let (got, _) = read_until(&mut resumed, 8).await;
    assert_eq!(got, [6, 7, 8]);
    println!("restart without data: shutdown, then 1 gap (new epoch) and 6..=8");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_subscriber_on_one_node_is_lagged_while_the_other_node_keeps_up() {
    let redis = RedisServer::start();
    let small = RedisConfig {
        limits: Limits {
            history_events: 10,
            max_event_bytes: 1024,
            subscriber_buffer_bytes: 4096,
            ..conformance::runner::suite_limits()
        },
        ..RedisConfig::default()
    };
    let node_a = RedisChannels::connect(&redis.url(), small.clone())
        .await
        .unwrap();
    let node_b = RedisChannels::connect(&redis.url(), small).await.unwrap();
    let mut slow = node_a.subscribe(&news(), Start::Now).await.unwrap();
    let mut fast = node_b.subscribe(&news(), Start::Now).await.unwrap();
    next(&mut slow).await;
    next(&mut fast).await;

    let reader = tokio::spawn(async move { read_until(&mut fast, 300).await });
    let payload = "x".repeat(500);
    for n in 1..=300u32 {
        node_b
            .publish(&news(), Message::new(Data::text(format!("{n} {payload}"))))
            .await
            .unwrap();
    }
    let mut fast_got = Vec::new();
    let (got, ended) = reader.await.unwrap();
    fast_got.extend(got);
    assert_eq!(ended, None);
    assert_eq!(
        fast_got,
        (1..=300).collect::<Vec<_>>(),
        "the fast node got everything"
    );

    // The slow one took nothing; its node held it to the bound and lagged it.
    let info = node_a.describe(&news()).await.unwrap();
    assert!(info.buffered_bytes <= 4096, "{info:?}");
    let mut slow_got = Vec::new();
    let ended = loop {
        match next(&mut slow).await {
            Some(Item::Event(event)) => slow_got.push(event.id().seq()),
            Some(Item::Signal(signal)) => break signal,
            None => panic!("ended without a signal"),
        }
    };
    let Signal::Lagged(cursor) = ended else {
        panic!("expected lagged, got {ended:?}");
    };
    let expected: Vec<u64> = (1..=cursor.seq()).collect();
    assert_eq!(slow_got, expected, "in order, none skipped, up to the lag");
    println!(
        "slow subscriber: {} delivered then lagged at {cursor}; fast node: 300 delivered",
        slow_got.len()
    );
}
