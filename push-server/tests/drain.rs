//! A rolling restart on Redis: push-server A drains on SIGTERM while events
//! keep coming, a new process B takes its place, and every client, on every
//! streaming technique and on long polls, waits the delay it was told and
//! resumes on B from its cursor, with nothing lost or repeated. The delays
//! are spread across the window the flags set, so that the clients of a
//! draining server do not come back at once.

mod process;
#[path = "../../push-redis/tests/support/mod.rs"]
mod support;

use std::process::Command;
use std::time::Duration;

use bytes::Bytes;
use conformance::{
    HttpClient, Protocol, Received, SignalKind, StartAt, Technique, Transport, WireClient,
};
use http::Method;
use support::RedisServer;
use tokio::sync::watch;

/// Events published in all: half before the drain starts, half after.
const EVENTS: u32 = 200;
/// Clients of each technique and protocol.
const EACH: usize = 6;
/// The retry window the servers run with.
const RETRY_MIN_MS: u64 = 200;
const RETRY_SPREAD_MS: u64 = 2_000;
const WAIT: Duration = Duration::from_secs(20);

/// A push-server process on the Redis at `redis_url`, with the test's
/// retry window; killed when dropped.
fn node(redis_url: &str) -> process::Running {
    process::Running::start(&[
        "--redis",
        redis_url,
        "--history-events",
        "1000",
        "--shutdown-retry-min-ms",
        &RETRY_MIN_MS.to_string(),
        "--shutdown-retry-spread-ms",
        &RETRY_SPREAD_MS.to_string(),
    ])
}

async fn publish(http: &HttpClient, n: u32) -> String {
    let answer = http
        .fetch(
            Method::POST,
            "/channels/news",
            &[("content-type", "text/plain")],
            Bytes::from(n.to_string()),
        )
        .await
        .unwrap();
    assert_eq!(answer.status, 201, "{:?}", answer.body);
    answer.json()["id"].as_str().unwrap().to_owned()
}

/// What one client saw: the numbers of the events, in order, and the
/// delay the draining server told it to wait (none for a long poller whose
/// connection closed between two polls, before it could be told).
struct Seen {
    who: String,
    numbers: Vec<u32>,
    retry_ms: Option<u64>,
    gaps: usize,
}

/// A streaming client: subscribes on A from `start`, reads until the
/// shutdown signal, waits its `retry_ms`, then resumes on the server that
/// `next_server` names from the signal's cursor until the last event.
async fn stream_client(
    technique: Technique,
    protocol: Protocol,
    url_a: String,
    start: String,
    mut next_server: watch::Receiver<Option<String>>,
    progress: tokio::sync::mpsc::Sender<()>,
) -> Seen {
    let who = format!("{technique:?} over {protocol:?}");
    let client = WireClient::new(technique, HttpClient::new(&url_a, protocol));
    let mut session = client.open("news", StartAt::After(start)).await.unwrap();
    progress.send(()).await.unwrap();
    let mut seen = Seen {
        who,
        numbers: Vec::new(),
        retry_ms: None,
        gaps: 0,
    };
    let cursor = loop {
        match tokio::time::timeout(WAIT, session.next()).await {
            Ok(Ok(Some(Received::Event(event)))) => {
                seen.numbers.push(number(&event.data));
                if seen.numbers.last() == Some(&(EVENTS / 2)) {
                    progress.send(()).await.unwrap();
                }
            }
            Ok(Ok(Some(Received::Signal(signal)))) => match signal.kind {
                SignalKind::Shutdown => {
                    let retry_ms = signal
                        .retry_ms
                        .unwrap_or_else(|| panic!("{}: shutdown without retry_ms", seen.who));
                    seen.retry_ms = Some(retry_ms);
                    tokio::time::sleep(Duration::from_millis(retry_ms)).await;
                    break signal.cursor.expect("the shutdown signal's cursor");
                }
                SignalKind::Gap => seen.gaps += 1,
                _ => {}
            },
            Ok(Ok(Some(Received::Heartbeat))) => {}
            other => panic!("{}: before the shutdown signal, {other:?}", seen.who),
        }
    };
    let url_b = new_server(&mut next_server).await;
    let client = WireClient::new(technique, HttpClient::new(&url_b, protocol));
    let mut resumed = client.open("news", StartAt::After(cursor)).await.unwrap();
    while seen.numbers.last() != Some(&EVENTS) {
        match tokio::time::timeout(WAIT, resumed.next()).await {
            Ok(Ok(Some(Received::Event(event)))) => seen.numbers.push(number(&event.data)),
            Ok(Ok(Some(Received::Signal(signal)))) if signal.kind == SignalKind::Gap => {
                seen.gaps += 1
            }
            Ok(Ok(Some(_))) => {}
            other => panic!("{}: resumed on B, {other:?}", seen.who),
        }
    }
    seen
}

/// A long-polling client: polls A from `start` until a held poll is
/// answered `503 shutting_down`, waits its `Retry-After`, then polls B.
async fn long_poll_client(
    url_a: String,
    start: String,
    mut next_server: watch::Receiver<Option<String>>,
    progress: tokio::sync::mpsc::Sender<()>,
) -> Seen {
    let mut seen = Seen {
        who: "long poll over Http1".to_owned(),
        numbers: Vec::new(),
        retry_ms: None,
        gaps: 0,
    };
    let mut http = HttpClient::new(&url_a, Protocol::Http1);
    let mut cursor = start;
    let mut on_b = false;
    let mut first = true;
    while seen.numbers.last() != Some(&EVENTS) {
        let target = format!("/channels/news/longpoll?after={cursor}&timeout=5");
        let poll = tokio::spawn({
            let http = http.clone();
            async move { http.get(&target).await }
        });
        if first {
            // Held, or about to be: the client is in place.
            tokio::time::sleep(Duration::from_millis(50)).await;
            progress.send(()).await.unwrap();
            first = false;
        }
        let answer = tokio::time::timeout(WAIT, poll)
            .await
            .expect("a long poll is answered")
            .unwrap();
        let answer = match answer {
            Ok(answer) => answer,
            // A's connection closed under a poll sent as it stopped: try B.
            Err(_) if !on_b => {
                http = switch(&mut next_server, &mut on_b).await;
                continue;
            }
            Err(error) => panic!("long poll on B: {error}"),
        };
        match answer.status.as_u16() {
            200 => {
                let body = answer.json();
                if body["gap"] == true {
                    seen.gaps += 1;
                }
                for message in body["messages"].as_array().unwrap() {
                    seen.numbers
                        .push(number(message["data"].as_str().unwrap().as_bytes()));
                    if seen.numbers.last() == Some(&(EVENTS / 2)) {
                        progress.send(()).await.unwrap();
                    }
                }
                cursor = body["cursor"].as_str().unwrap().to_owned();
            }
            503 if !on_b => {
                assert_eq!(answer.error_code().as_deref(), Some("shutting_down"));
                let secs: u64 = answer.headers["retry-after"]
                    .to_str()
                    .unwrap()
                    .parse()
                    .unwrap();
                seen.retry_ms = Some(secs * 1000);
                tokio::time::sleep(Duration::from_secs(secs)).await;
                http = switch(&mut next_server, &mut on_b).await;
            }
            status => panic!("long poll answered {status}: {:?}", answer.body),
        }
    }
    seen
}

/// The URL of the server that took A's place, once it is up.
async fn new_server(next_server: &mut watch::Receiver<Option<String>>) -> String {
    let url = next_server.wait_for(Option::is_some).await.unwrap();
    url.clone().unwrap()
}

async fn switch(next_server: &mut watch::Receiver<Option<String>>, on_b: &mut bool) -> HttpClient {
    *on_b = true;
    HttpClient::new(&new_server(next_server).await, Protocol::Http1)
}

fn number(data: &[u8]) -> u32 {
    std::str::from_utf8(data).unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_client_resumes_on_a_new_process_after_its_spread_out_delay_with_nothing_lost() {
    let redis = RedisServer::start();
    let mut node_a = node(&redis.url());
    let a = HttpClient::new(&node_a.url, Protocol::Http1);
    let start = publish(&a, 0).await;

    let (announce_b, next_server) = watch::channel(None);
    // Each client reports once it is open, and once it has the last event
    // published before the drain.
    let (progress, mut reports) = tokio::sync::mpsc::channel(1024);
    let mut clients = Vec::new();
    let streams = [
        (Technique::Sse, Protocol::Http1),
        (Technique::Ndjson, Protocol::Http1),
        (Technique::WebSocket, Protocol::Http1),
        (Technique::Sse, Protocol::H2c),
        (Technique::Ndjson, Protocol::H2c),
        (Technique::WebSocket, Protocol::H2c),
        (Technique::Http2Push, Protocol::H2c),
    ];
    for (technique, protocol) in streams {
        for _ in 0..EACH {
            clients.push(tokio::spawn(stream_client(
                technique,
                protocol,
                node_a.url.clone(),
                start.clone(),
                next_server.clone(),
                progress.clone(),
            )));
        }
    }
    for _ in 0..EACH {
        clients.push(tokio::spawn(long_poll_client(
            node_a.url.clone(),
            start.clone(),
            next_server.clone(),
            progress.clone(),
        )));
    }
    drop(progress);
    for _ in 0..clients.len() {
        reports.recv().await.expect("every client opens");
    }

    for n in 1..=EVENTS / 2 {
        publish(&a, n).await;
    }
    // Before the drain, so that the HTTP/2 push client's check of each pushed
    // response (a plain GET on the connection) is not refused by A's GOAWAY.
    for _ in 0..clients.len() {
        reports
            .recv()
            .await
            .expect("every client has the first half");
    }
    // The drain: A tells every client when to come back, and exits.
    let pid = node_a.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let redis_url = redis.url();
    let node_b = tokio::task::spawn_blocking(move || node(&redis_url))
        .await
        .unwrap();
    let b = HttpClient::new(&node_b.url, Protocol::Http1);
    // Published while the clients wait out their delays: each gets these
    // from the history when it resumes.
    for n in EVENTS / 2 + 1..=EVENTS {
        publish(&b, n).await;
    }
    announce_b.send(Some(node_b.url.clone())).unwrap();

    let mut retries = Vec::new();
    let mut untold = 0;
    for client in clients {
        let seen = tokio::time::timeout(WAIT * 2, client)
            .await
            .expect("every client finishes")
            .unwrap();
        assert_eq!(
            seen.gaps, 0,
            "{}: the history covered the restart",
            seen.who
        );
        assert_eq!(
            seen.numbers,
            (1..=EVENTS).collect::<Vec<_>>(),
            "{}: every event once, in order",
            seen.who
        );
        match seen.retry_ms {
            Some(retry_ms) => retries.push(retry_ms),
            None => untold += 1,
        }
    }
    let status = tokio::task::spawn_blocking(move || node_a.child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "A exits cleanly: {status}");

    // Every streaming client was told a delay; long pollers between two
    // polls may not have been.
    assert!(untold <= EACH, "{untold} clients were told no delay");
    let (least, most) = (
        *retries.iter().min().unwrap(),
        *retries.iter().max().unwrap(),
    );
    for retry in &retries {
        assert!(
            (RETRY_MIN_MS..RETRY_MIN_MS + RETRY_SPREAD_MS + 1000).contains(retry),
            "{retry} ms is outside the window (Retry-After rounds up to the second)"
        );
    }
    // 42 or more uniform draws over 2 s all within one second of each other:
    // a chance under 1e-11.
    assert!(
        most - least >= RETRY_SPREAD_MS / 2,
        "the delays are spread: {least}..{most} ms"
    );
    let distinct: std::collections::BTreeSet<_> = retries.iter().collect();
    println!(
        "{} clients resumed on a new process with nothing lost or repeated; \
         {} told a delay, from {least} to {most} ms ({} distinct)",
        retries.len() + untold,
        retries.len(),
        distinct.len()
    );
}
