//! SSE and NDJSON streams: headers, raw framing, heartbeats, close,
//! slow consumers and shutdown, over HTTP/1.1 and h2c.

mod support;

use std::time::Duration;

use bytes::Bytes;
use conformance::{Protocol, Received, SignalKind, StartAt, Technique};
use http::Method;
use http_body_util::BodyExt;
use push_core::Limits;
use push_tower::Config;
use support::*;

#[tokio::test]
async fn stream_headers_are_sent_at_once_and_proxy_safe() {
    let server = TestServer::start().await;
    for protocol in PROTOCOLS {
        let http = server.http(protocol);
        for (technique, content_type) in [
            ("sse", "text/event-stream"),
            ("stream", "application/x-ndjson"),
        ] {
            // Nothing is published: the headers must still arrive.
            let response = tokio::time::timeout(
                TIMEOUT,
                http.send(
                    Method::GET,
                    &format!("/channels/headers/{technique}"),
                    &[],
                    Bytes::new(),
                ),
            )
            .await
            .expect("headers at once")
            .unwrap();
            assert_eq!(response.status(), 200);
            let headers = response.headers();
            assert_eq!(headers["content-type"], content_type);
            assert_eq!(headers["cache-control"], "no-cache");
            assert_eq!(headers["x-accel-buffering"], "no");
        }
    }
}

async fn read_text(body: &mut hyper::body::Incoming, until: &str) -> String {
    let mut text = String::new();
    while !text.contains(until) {
        let frame = tokio::time::timeout(TIMEOUT, body.frame())
            .await
            .expect("more data")
            .expect("not ended")
            .unwrap();
        if let Ok(data) = frame.into_data() {
            text.push_str(std::str::from_utf8(&data).unwrap());
        }
    }
    text
}

#[tokio::test]
async fn sse_sends_text_raw_and_the_rest_as_envelopes() {
    let server = TestServer::with(
        test_limits(),
        Config::default().sse_retry(Some(Duration::from_millis(1500))),
    )
    .await;
    let http = server.http(Protocol::Http1);
    let response = http
        .send(Method::GET, "/channels/raw/sse", &[], Bytes::new())
        .await
        .unwrap();
    let mut body = response.into_body();
    let first = read_text(&mut body, "\n\n").await;
    assert!(first.starts_with("retry: 1500\nid: "), "{first:?}");
    let lf = publish_with(
        &http,
        "raw",
        Some("note"),
        "text/plain",
        Bytes::from_static(b"one\ntwo"),
    )
    .await;
    let text = read_text(&mut body, "two\n\n").await;
    assert_eq!(
        text,
        format!("id: {lf}\nevent: note\ndata: one\ndata: two\n\n")
    );
    let cr = publish(&http, "raw", "a\r\nb").await;
    let text = read_text(&mut body, "}\n\n").await;
    assert_eq!(
        text,
        format!(
            "id: {cr}\nevent: push.envelope\ndata: {{\"id\":\"{cr}\",\"data\":\"a\\r\\nb\"}}\n\n"
        )
    );
}

#[tokio::test]
async fn idle_streams_get_heartbeats_that_are_not_data() {
    let server = TestServer::start().await;
    for (technique, protocol) in stream_matrix() {
        let channel = format!("heartbeat-{}-{protocol:?}", technique.name());
        let mut session = open(&server.client(technique, protocol), &channel, StartAt::Now).await;
        let mut heartbeats = 0;
        while heartbeats < 2 {
            match tokio::time::timeout(TIMEOUT, session.next())
                .await
                .unwrap()
                .unwrap()
            {
                Some(Received::Heartbeat) => heartbeats += 1,
                Some(Received::Signal(s)) if s.kind == SignalKind::Position => {}
                other => panic!("{}: unexpected {other:?}", technique.name()),
            }
        }
        // The stream still works after heartbeats.
        let id = publish(&server.http(protocol), &channel, "after").await;
        assert_eq!(next_event(&mut session).await.id, id);
    }
}

#[tokio::test]
async fn delete_reaches_every_open_subscriber() {
    let server = TestServer::start().await;
    for protocol in PROTOCOLS {
        let channel = format!("delete-{protocol:?}");
        let http = server.http(protocol);
        let last = publish(&http, &channel, "before").await;
        let mut sessions = Vec::new();
        for technique in [Technique::Sse, Technique::Ndjson, Technique::LongPoll] {
            let client = server.client(technique, protocol);
            sessions.push((
                technique,
                open(&client, &channel, StartAt::After(last.clone())).await,
            ));
        }
        let mut waits = Vec::new();
        for (technique, mut session) in sessions {
            waits.push(tokio::spawn(async move {
                loop {
                    match next(&mut session).await {
                        Some(Received::Signal(s)) if s.kind == SignalKind::Closed => {
                            return (technique, s.cursor, next(&mut session).await);
                        }
                        Some(Received::Signal(s)) if s.kind == SignalKind::Position => {}
                        other => panic!("{}: unexpected {other:?}", technique.name()),
                    }
                }
            }));
        }
        wait_for_info(&http, &channel, |info| info["subscribers"] == 3).await;
        delete(&http, &channel).await;
        for wait in waits {
            let (technique, cursor, after) =
                tokio::time::timeout(TIMEOUT, wait).await.unwrap().unwrap();
            assert_eq!(
                cursor.as_deref(),
                Some(last.as_str()),
                "{}",
                technique.name()
            );
            assert_eq!(
                after,
                None,
                "{}: the stream ends after closed",
                technique.name()
            );
        }
    }
}

#[tokio::test]
async fn a_stalled_reader_is_lagged_while_others_keep_receiving() {
    let limits = Limits {
        history_events: 4,
        history_bytes: 1024 * 1024,
        subscriber_buffer_bytes: 256 * 1024,
        max_event_bytes: 64 * 1024,
        ..test_limits()
    };
    let server = TestServer::with(limits, Config::default()).await;
    for (technique, protocol) in stream_matrix() {
        let channel = format!("lag-{}-{protocol:?}", technique.name());
        let http = server.http(protocol);
        let mut stalled = open(&server.client(technique, protocol), &channel, StartAt::Now).await;
        let mut reader = open(&server.client(technique, protocol), &channel, StartAt::Now).await;
        let payload = "x".repeat(16 * 1024);
        let mut published = Vec::new();
        let mut max_buffered = 0;
        let mut extra = None;
        // Enough to fill every buffer between the server and the stalled
        // reader (hyper's queue, both kernel socket buffers), then past the
        // bound: once the channel holds the whole bound for the stalled
        // reader, a few more events make it lagged.
        for i in 0..2_500 {
            published.push(publish(&http, &channel, &payload).await);
            assert_eq!(
                next_event(&mut reader).await.id,
                published[i],
                "the reader keeps up"
            );
            if i % 20 == 0 {
                let info = http
                    .get(&format!("/channels/{channel}"))
                    .await
                    .unwrap()
                    .json();
                let buffered = info["buffered_bytes"].as_u64().unwrap();
                max_buffered = max_buffered.max(buffered);
                // Two subscribers, each held to the bound.
                assert!(buffered <= 2 * 256 * 1024, "buffered {buffered}");
                if buffered >= 256 * 1024 && extra.is_none() {
                    extra = Some(i + 40);
                }
            }
            if extra == Some(i) {
                break;
            }
        }
        assert!(max_buffered > 0, "the stalled reader had something queued");
        if protocol == Protocol::Http1 {
            // Over HTTP/1.1 the connection of a reader that stopped is dropped
            // once the grace passes, without waiting for it to read again.
            wait_for_info(&http, &channel, |info| info["subscribers"] == 1).await;
        }
        // The stalled reader now reads: in-order events, then lagged (or,
        // once disconnected, the end of what the kernel still held).
        let mut last = None;
        let lagged_cursor = loop {
            let item = tokio::time::timeout(TIMEOUT, stalled.next())
                .await
                .expect("an item");
            match item {
                Ok(Some(Received::Event(event))) => {
                    if let Some(previous) = &last {
                        let index = published.iter().position(|id| id == previous).unwrap();
                        assert_eq!(published[index + 1], event.id, "no gap before lagged");
                    }
                    last = Some(event.id);
                }
                Ok(Some(Received::Signal(s))) if s.kind == SignalKind::Position => {}
                Ok(Some(Received::Heartbeat)) => {}
                Ok(Some(Received::Signal(s))) if s.kind == SignalKind::Lagged => {
                    assert_eq!(
                        protocol,
                        Protocol::H2c,
                        "HTTP/1.1 drops the connection instead"
                    );
                    assert_eq!(s.cursor, last, "lagged carries the last delivered event");
                    assert_eq!(next(&mut stalled).await, None, "the lagged stream ends");
                    break s.cursor;
                }
                Ok(None) | Err(_) if protocol == Protocol::Http1 => break last,
                other => panic!("{} over {protocol}: unexpected {other:?}", technique.name()),
            }
        };
        assert!(
            lagged_cursor.as_ref() != published.last(),
            "the stalled reader cannot have received everything"
        );
        // It resumes from its cursor: the events still retained, after a gap.
        let cursor = lagged_cursor.expect("something was delivered before lag");
        let mut resumed = open(
            &server.client(technique, protocol),
            &channel,
            StartAt::After(cursor),
        )
        .await;
        let mut gap = false;
        loop {
            match next(&mut resumed).await {
                Some(Received::Signal(s)) if s.kind == SignalKind::Gap => gap = true,
                Some(Received::Signal(_)) => {}
                Some(Received::Event(event)) => {
                    assert!(gap, "history (4 events) cannot cover the lagged cursor");
                    let index = published.iter().position(|id| *id == event.id).unwrap();
                    assert!(index + 4 >= published.len());
                    break;
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    }
}

#[tokio::test]
async fn shutdown_ends_streams_with_their_cursor_and_refuses_long_polls() {
    let server = TestServer::start().await;
    let mut streams = Vec::new();
    let mut last_ids = Vec::new();
    for (technique, protocol) in stream_matrix() {
        let channel = format!("shutdown-{}-{protocol:?}", technique.name());
        let http = server.http(protocol);
        let mut session = open(&server.client(technique, protocol), &channel, StartAt::Now).await;
        let id = publish(&http, &channel, "last before shutdown").await;
        assert_eq!(next_event(&mut session).await.id, id);
        streams.push((technique, protocol, session));
        last_ids.push(id);
    }
    let mut held = Vec::new();
    for protocol in PROTOCOLS {
        let http = server.http(protocol);
        held.push(tokio::spawn(async move {
            http.get("/channels/held/longpoll?timeout=5").await.unwrap()
        }));
    }
    wait_for_info(&server.http(Protocol::Http1), "held", |info| {
        info["subscribers"] == 2
    })
    .await;
    let push = server.push.clone();
    let stopping = tokio::spawn(server.stop());
    for ((technique, protocol, mut session), id) in streams.into_iter().zip(last_ids) {
        match next(&mut session).await {
            Some(Received::Signal(s)) => {
                assert_eq!(
                    s.kind,
                    SignalKind::Shutdown,
                    "{} over {protocol}",
                    technique.name()
                );
                assert_eq!(s.cursor.as_deref(), Some(id.as_str()));
            }
            other => panic!("{} over {protocol}: unexpected {other:?}", technique.name()),
        }
        assert_eq!(next(&mut session).await, None);
    }
    for answer in held {
        let answer = answer.await.unwrap();
        assert_eq!(answer.status, 503);
        assert_eq!(answer.error_code().as_deref(), Some("shutting_down"));
        assert!(answer.headers.contains_key("retry-after"));
    }
    assert!(push.is_shutting_down());
    tokio::time::timeout(TIMEOUT, stopping)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn a_stream_body_is_not_copied_per_subscriber() {
    // Two subscribers' bodies hold the same shared bytes for one event.
    use push_core::{Data, Hub, HubConfig, Message};
    use tower::ServiceExt;
    let push = push_tower::Push::new(Hub::new(HubConfig::default()), Config::default());
    let open = |push: push_tower::Push| async move {
        let request = http::Request::get("/x/shared").body(String::new()).unwrap();
        let ndjson = push.ndjson(push_tower::ChannelFrom::path("/x/{channel}").unwrap());
        let mut body = ndjson.oneshot(request).await.unwrap().into_body();
        let _position = body.frame().await.unwrap().unwrap();
        body
    };
    let mut a = open(push.clone()).await;
    let mut b = open(push.clone()).await;
    push.channels()
        .publish("shared", Message::new(Data::text("same bytes")))
        .unwrap();
    let chunk = |frame: http_body::Frame<Bytes>| frame.into_data().unwrap();
    let a = chunk(a.frame().await.unwrap().unwrap());
    let b = chunk(b.frame().await.unwrap().unwrap());
    assert_eq!(a, b);
    assert_eq!(
        a.as_ptr(),
        b.as_ptr(),
        "one shared encoding, not a copy per subscriber"
    );
}
