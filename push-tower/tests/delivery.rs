//! Order, completeness, resume, gaps and fidelity for every technique, over
//! HTTP/1.1 and h2c, on real loopback sockets.

mod support;

use bytes::Bytes;
use conformance::{Received, SignalKind, StartAt, Technique};
use push_core::EventId;
use support::*;

fn seq(id: &str) -> u64 {
    id.parse::<EventId>().unwrap().seq()
}

#[tokio::test]
async fn every_event_once_in_publish_order_under_concurrent_publishers() {
    let server = TestServer::start().await;
    for (technique, protocol) in matrix() {
        let channel = format!("order-{}-{protocol:?}", technique.name());
        let http = server.http(protocol);
        let mut session = open(&server.client(technique, protocol), &channel, StartAt::Now).await;
        let publishers: Vec<_> = (0..2)
            .map(|p| {
                let http = http.clone();
                let channel = channel.clone();
                tokio::spawn(async move {
                    let mut ids = Vec::new();
                    for i in 0..8 {
                        ids.push(publish(&http, &channel, &format!("p{p}-{i}")).await);
                    }
                    ids
                })
            })
            .collect();
        let mut published = Vec::new();
        for publisher in publishers {
            published.extend(publisher.await.unwrap());
        }
        published.sort_by_key(|id| seq(id));
        let received = events(&mut session, published.len()).await;
        let ids: Vec<_> = received.iter().map(|e| e.id.clone()).collect();
        assert_eq!(ids, published, "{} over {protocol}", technique.name());
        // Each publisher's own events keep their order.
        for p in 0..2 {
            let own: Vec<_> = received
                .iter()
                .map(|e| String::from_utf8(e.data.clone()).unwrap())
                .filter(|d| d.starts_with(&format!("p{p}-")))
                .collect();
            let expected: Vec<_> = (0..8).map(|i| format!("p{p}-{i}")).collect();
            assert_eq!(own, expected);
        }
    }
}

#[tokio::test]
async fn streams_state_the_position_first() {
    let server = TestServer::start().await;
    for (technique, protocol) in stream_matrix() {
        let channel = format!("position-{}-{protocol:?}", technique.name());
        let http = server.http(protocol);
        let head = publish(&http, &channel, "x").await;
        let client = server.client(technique, protocol);
        for (start, expected) in [
            (StartAt::Now, head.clone()),
            (StartAt::After(head.clone()), head.clone()),
            (StartAt::LastEventId(head.clone()), head.clone()),
            (
                StartAt::Earliest,
                format!("{}-0", head.split('-').next().unwrap()),
            ),
        ] {
            let mut session = open(&client, &channel, start.clone()).await;
            let first = tokio::time::timeout(TIMEOUT, session.next())
                .await
                .unwrap()
                .unwrap();
            let Some(Received::Signal(signal)) = first else {
                panic!("{} {start:?}: first item {first:?}", technique.name());
            };
            assert_eq!(signal.kind, SignalKind::Position);
            assert_eq!(
                signal.cursor.as_deref(),
                Some(expected.as_str()),
                "{start:?}"
            );
        }
    }
}

#[tokio::test]
async fn resume_after_a_cursor_then_live_without_gap_or_duplicate() {
    let server = TestServer::start().await;
    for (technique, protocol) in matrix() {
        let channel = format!("resume-{}-{protocol:?}", technique.name());
        let http = server.http(protocol);
        let mut ids = Vec::new();
        for i in 0..5 {
            ids.push(publish(&http, &channel, &format!("e{i}")).await);
        }
        for start in [
            StartAt::After(ids[1].clone()),
            StartAt::LastEventId(ids[1].clone()),
        ] {
            let mut session = open(&server.client(technique, protocol), &channel, start).await;
            let replayed = events(&mut session, ids.len() - 2).await;
            assert_eq!(
                replayed.iter().map(|e| e.id.clone()).collect::<Vec<_>>(),
                ids[2..].to_vec(),
                "{} over {protocol}",
                technique.name()
            );
            let live_id = publish(&http, &channel, "live").await;
            let live = next_event(&mut session).await;
            assert_eq!(live.id, live_id);
            ids.push(live_id);
        }
    }
}

#[tokio::test]
async fn a_gap_is_said_when_history_no_longer_covers_the_cursor() {
    let server = TestServer::start().await;
    for (technique, protocol) in matrix() {
        let channel = format!("gap-{}-{protocol:?}", technique.name());
        let http = server.http(protocol);
        let mut ids = Vec::new();
        for i in 0..25 {
            ids.push(publish(&http, &channel, &format!("e{i}")).await);
        }
        // History keeps 20: ids[5..25]. A cursor at ids[4] misses nothing.
        let mut session = open(
            &server.client(technique, protocol),
            &channel,
            StartAt::After(ids[4].clone()),
        )
        .await;
        let got = events(&mut session, 20).await;
        assert_eq!(got.first().map(|e| e.id.clone()), Some(ids[5].clone()));

        let mut session = open(
            &server.client(technique, protocol),
            &channel,
            StartAt::After(ids[0].clone()),
        )
        .await;
        let mut seen_gap = None;
        let first_event = loop {
            match next(&mut session).await {
                Some(Received::Signal(s)) if s.kind == SignalKind::Gap => seen_gap = Some(s.cursor),
                Some(Received::Signal(s)) if s.kind == SignalKind::Position => {
                    assert!(seen_gap.is_none(), "position after gap")
                }
                Some(Received::Event(event)) => break event,
                other => panic!("unexpected {other:?}"),
            }
        };
        let gap_cursor = seen_gap.expect("a gap before the first event");
        if technique == Technique::Sse || technique == Technique::Ndjson {
            assert_eq!(
                gap_cursor.as_deref(),
                Some(ids[4].as_str()),
                "gap carries the continuation cursor"
            );
            // Resuming from the gap's cursor meets no second gap.
            let mut again = open(
                &server.client(technique, protocol),
                &channel,
                StartAt::After(ids[4].clone()),
            )
            .await;
            let got = events(&mut again, 20).await;
            assert_eq!(got[0].id, ids[5]);
        }
        assert_eq!(first_event.id, ids[5]);
    }
}

#[tokio::test]
async fn a_closed_and_recreated_channel_meets_old_cursors_with_a_gap() {
    let server = TestServer::start().await;
    for (technique, protocol) in matrix() {
        let channel = format!("epoch-{}-{protocol:?}", technique.name());
        let http = server.http(protocol);
        let old = publish(&http, &channel, "old").await;
        delete(&http, &channel).await;
        let new = publish(&http, &channel, "new").await;
        assert_ne!(old.split('-').next(), new.split('-').next(), "a new epoch");
        let mut session = open(
            &server.client(technique, protocol),
            &channel,
            StartAt::After(old.clone()),
        )
        .await;
        let mut gap = false;
        loop {
            match next(&mut session).await {
                Some(Received::Signal(s)) if s.kind == SignalKind::Gap => gap = true,
                Some(Received::Signal(s)) if s.kind == SignalKind::Position => {}
                Some(Received::Event(event)) => {
                    assert!(gap, "{}: event before the gap", technique.name());
                    assert_eq!(event.id, new);
                    assert_eq!(event.data, b"new");
                    break;
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    }
}

#[tokio::test]
async fn no_gap_when_nothing_was_missed() {
    let server = TestServer::start().await;
    for (technique, protocol) in matrix() {
        let channel = format!("nogap-{}-{protocol:?}", technique.name());
        let http = server.http(protocol);
        let head = publish(&http, &channel, "a").await;
        let mut session = open(
            &server.client(technique, protocol),
            &channel,
            StartAt::After(head),
        )
        .await;
        let id = publish(&http, &channel, "b").await;
        loop {
            match next(&mut session).await {
                Some(Received::Signal(s)) => {
                    assert_eq!(s.kind, SignalKind::Position, "{}", technique.name())
                }
                Some(Received::Event(event)) => {
                    assert_eq!(event.id, id);
                    break;
                }
                None => panic!("ended"),
                Some(Received::Heartbeat) => unreachable!(),
            }
        }
    }
}

struct Payload {
    content_type: &'static str,
    event: Option<&'static str>,
    body: Vec<u8>,
    binary: bool,
}

fn payloads() -> Vec<Payload> {
    let text = |s: &str| Payload {
        content_type: "text/plain; charset=utf-8",
        event: None,
        body: s.as_bytes().to_vec(),
        binary: false,
    };
    let mut large = String::with_capacity(1 << 20);
    while large.len() < (1 << 20) - 8 {
        large.push_str("line é\n");
    }
    vec![
        text(""),
        text("plain"),
        text("a\nb\n"),
        text("\n"),
        text("a\r\nb"),
        text("lone\rcr"),
        text("nul\0inside"),
        text("multi-byte: é ü 中文 😀"),
        text(&large),
        Payload {
            content_type: "application/json",
            event: Some("json event"),
            body: br#"{"k":[1,2,"\u00e9"]}"#.to_vec(),
            binary: false,
        },
        Payload {
            content_type: "text/plain",
            event: Some("ünïcode-name"),
            body: b"named".to_vec(),
            binary: false,
        },
        Payload {
            content_type: "text/plain",
            event: Some("message"),
            body: b"default name".to_vec(),
            binary: false,
        },
        Payload {
            content_type: "application/octet-stream",
            event: None,
            body: (0..=255u8).collect(),
            binary: true,
        },
        Payload {
            content_type: "application/octet-stream",
            event: Some("bin"),
            body: Vec::new(),
            binary: true,
        },
        Payload {
            content_type: "image/png",
            event: None,
            body: (0..(1 << 20)).map(|i| (i * 7 % 251) as u8).collect(),
            binary: true,
        },
    ]
}

#[tokio::test]
async fn data_and_names_arrive_byte_exact() {
    let server = TestServer::start().await;
    for (technique, protocol) in matrix() {
        let channel = format!("fidelity-{}-{protocol:?}", technique.name());
        let http = server.http(protocol);
        let mut session = open(&server.client(technique, protocol), &channel, StartAt::Now).await;
        for payload in payloads() {
            let id = publish_with(
                &http,
                &channel,
                payload.event,
                payload.content_type,
                Bytes::from(payload.body.clone()),
            )
            .await;
            let event = next_event(&mut session).await;
            let what = format!(
                "{} over {protocol}: {:?}",
                technique.name(),
                String::from_utf8_lossy(&payload.body[..payload.body.len().min(20)])
            );
            assert_eq!(event.id, id, "{what}");
            assert!(
                event.data == payload.body,
                "{what}: data differs ({} vs {} bytes)",
                event.data.len(),
                payload.body.len()
            );
            let expected_name = payload.event.filter(|n| *n != "message").map(str::to_owned);
            assert_eq!(event.name, expected_name, "{what}");
            // SSE carries text raw (binary flag false) and the rest as envelopes.
            assert_eq!(event.binary, payload.binary, "{what}");
        }
    }
}

#[tokio::test]
async fn a_cursor_from_one_technique_resumes_on_every_other() {
    let server = TestServer::start().await;
    for protocol in PROTOCOLS {
        for from in Technique::ALL {
            let channel = format!("cross-{}-{protocol:?}", from.name());
            let http = server.http(protocol);
            let mut ids = Vec::new();
            for i in 0..4 {
                ids.push(publish(&http, &channel, &format!("e{i}")).await);
            }
            let mut session =
                open(&server.client(from, protocol), &channel, StartAt::Earliest).await;
            let seen = events(&mut session, 2).await;
            let cursor = seen[1].id.clone();
            for to in Technique::ALL {
                let mut resumed = open(
                    &server.client(to, protocol),
                    &channel,
                    StartAt::After(cursor.clone()),
                )
                .await;
                let rest = events(&mut resumed, 2).await;
                assert_eq!(
                    rest.iter().map(|e| e.id.clone()).collect::<Vec<_>>(),
                    ids[2..].to_vec(),
                    "{} -> {} over {protocol}",
                    from.name(),
                    to.name()
                );
            }
        }
    }
}
