//! Several push-server processes on one Redis (`--redis`): what one node
//! publishes, the other delivers and resumes; a node killed with SIGKILL
//! while its subscribers resume on the other loses and repeats nothing.

mod process;
#[path = "../../push-redis/tests/support/mod.rs"]
mod support;

use std::io::BufRead;
use std::process::Child;
use std::time::Duration;

use bytes::Bytes;
use conformance::{
    HttpClient, Protocol, Received, ReceivedEvent, SignalKind, StartAt, Technique, Transport,
    WireClient,
};
use http::Method;
use support::RedisServer;

const WAIT: Duration = Duration::from_secs(20);

/// A push-server process on `redis`, and its URL.
fn node(redis: &RedisServer) -> (Child, String) {
    let (child, mut stdout, url) = process::start(&["--redis", &redis.url()]);
    let mut line = String::new();
    line.clear();
    stdout.read_line(&mut line).unwrap();
    assert!(
        line.contains("channels kept in Redis at redis://"),
        "{line:?}"
    );
    (child, url)
}

async fn publish(http: &HttpClient, text: &str) -> String {
    let answer = http
        .fetch(
            Method::POST,
            "/channels/news",
            &[("content-type", "text/plain")],
            Bytes::copy_from_slice(text.as_bytes()),
        )
        .await
        .unwrap();
    assert_eq!(answer.status, 201, "{:?}", answer.body);
    answer.json()["id"].as_str().unwrap().to_owned()
}

fn number(event: &ReceivedEvent) -> u32 {
    std::str::from_utf8(&event.data).unwrap().parse().unwrap()
}

fn kill(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_on_one_node_delivered_and_resumed_on_the_other() {
    let redis = RedisServer::start();
    let (mut child_a, url_a) = node(&redis);
    let (mut child_b, url_b) = node(&redis);
    let (a, b) = (
        HttpClient::new(&url_a, Protocol::Http1),
        HttpClient::new(&url_b, Protocol::Http1),
    );

    let first = publish(&a, "one").await;
    let poll = b.get("/channels/news/poll?from=earliest").await.unwrap();
    assert_eq!(poll.json()["messages"][0]["id"], first.as_str());
    // SSE on B from A's cursor: the position, then what A publishes next.
    let sse = WireClient::new(Technique::Sse, b.clone());
    let mut session = sse
        .open("news", StartAt::LastEventId(first.clone()))
        .await
        .unwrap();
    let second = publish(&a, "two").await;
    let event = loop {
        match tokio::time::timeout(WAIT, session.next())
            .await
            .unwrap()
            .unwrap()
        {
            Some(Received::Event(event)) => break event,
            Some(_) => {}
            None => panic!("ended early"),
        }
    };
    assert_eq!(
        (event.id.as_str(), event.data.as_slice()),
        (second.as_str(), b"two".as_slice())
    );
    // Both nodes describe the same channel.
    let info_a = a.get("/channels/news").await.unwrap().json();
    let info_b = b.get("/channels/news").await.unwrap().json();
    assert_eq!(info_a["cursor"], second.as_str());
    assert_eq!(info_b["cursor"], second.as_str());
    assert_eq!(info_b["subscribers"], 1);
    assert_eq!(info_a["subscribers"], 0, "subscribers are counted per node");
    kill(&mut child_a);
    kill(&mut child_b);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribers_of_a_killed_node_resume_on_the_other_with_nothing_lost_or_repeated() {
    const EVENTS: u32 = 200;
    let redis = RedisServer::start();
    let (mut child_a, url_a) = node(&redis);
    let (mut child_b, url_b) = node(&redis);

    let mut sessions = Vec::new();
    for technique in [Technique::Sse, Technique::Ndjson, Technique::WebSocket] {
        let client = WireClient::new(technique, HttpClient::new(&url_a, Protocol::Http1));
        sessions.push((technique, client.open("news", StartAt::Now).await.unwrap()));
    }
    let publisher = {
        let b = HttpClient::new(&url_b, Protocol::Http1);
        tokio::spawn(async move {
            for n in 1..=EVENTS {
                publish(&b, &n.to_string()).await;
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
    };

    let mut results = Vec::new();
    for (technique, mut session) in sessions {
        let mut got = Vec::new();
        let mut last_id = String::new();
        while got.len() < (EVENTS / 4) as usize {
            match tokio::time::timeout(WAIT, session.next())
                .await
                .unwrap()
                .unwrap()
            {
                Some(Received::Event(event)) => {
                    got.push(number(&event));
                    last_id = event.id;
                }
                Some(_) => {}
                None => panic!("{technique}: ended early"),
            }
        }
        results.push((technique, got, last_id, session));
    }
    kill(&mut child_a);

    for (technique, mut got, mut last_id, mut session) in results {
        // What the client had already received still counts; then the
        // stream breaks.
        while let Ok(Ok(Some(received))) = tokio::time::timeout(WAIT, session.next()).await {
            if let Received::Event(event) = received {
                got.push(number(&event));
                last_id = event.id;
            }
        }
        let at_kill = got.len();
        let client = WireClient::new(technique, HttpClient::new(&url_b, Protocol::Http1));
        let mut resumed = client.open("news", StartAt::After(last_id)).await.unwrap();
        let mut gaps = 0;
        while got.last() != Some(&EVENTS) {
            match tokio::time::timeout(WAIT, resumed.next())
                .await
                .unwrap()
                .unwrap()
            {
                Some(Received::Event(event)) => got.push(number(&event)),
                Some(Received::Signal(signal)) if signal.kind == SignalKind::Gap => gaps += 1,
                Some(_) => {}
                None => panic!("{technique}: the resumed stream ended early"),
            }
        }
        assert_eq!(gaps, 0, "{technique}: the history covered the switch");
        assert_eq!(
            got,
            (1..=EVENTS).collect::<Vec<_>>(),
            "{technique}: once each, in order"
        );
        println!(
            "{technique}: {at_kill} events from the killed node, {} from the other, 0 lost, 0 duplicated",
            EVENTS as usize - at_kill
        );
    }
    publisher.await.unwrap();
    kill(&mut child_b);
}
