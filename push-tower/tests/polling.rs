//! Short and long polling: ETag and 304, hold, timeout, disconnects,
//! closed and shutdown answers, over HTTP/1.1 and h2c.

mod support;

use std::time::Duration;

use bytes::Bytes;
use conformance::Protocol;
use http::Method;
use support::*;

#[tokio::test]
async fn poll_etag_is_the_quoted_cursor_and_304_while_nothing_is_new() {
    let server = TestServer::start().await;
    for protocol in PROTOCOLS {
        let http = server.http(protocol);
        let channel = format!("etag-{protocol:?}");
        let id = publish(&http, &channel, "a").await;
        let answer = http
            .get(&format!("/channels/{channel}/poll?after={id}"))
            .await
            .unwrap();
        assert_eq!(answer.status, 200);
        assert_eq!(answer.headers["etag"], format!("\"{id}\"").as_str());
        assert_eq!(answer.json()["messages"], serde_json::json!([]));
        assert_eq!(answer.json()["cursor"], id);
        let etag = format!("\"{id}\"");
        let path = format!("/channels/{channel}/poll?after={id}");
        let not_modified = http
            .fetch(
                Method::GET,
                &path,
                &[("if-none-match", &etag)],
                Bytes::new(),
            )
            .await
            .unwrap();
        assert_eq!(not_modified.status, 304);
        assert!(not_modified.body.is_empty());
        let next = publish(&http, &channel, "b").await;
        let modified = http
            .fetch(
                Method::GET,
                &path,
                &[("if-none-match", &etag)],
                Bytes::new(),
            )
            .await
            .unwrap();
        assert_eq!(modified.status, 200);
        assert_eq!(modified.headers["etag"], format!("\"{next}\"").as_str());
        assert_eq!(modified.json()["messages"][0]["data"], "b");
        // From now, with nothing new: the head is the cursor.
        let now = http
            .get(&format!("/channels/{channel}/poll"))
            .await
            .unwrap();
        assert_eq!(now.json()["cursor"], next);
        assert_eq!(now.headers["cache-control"], "no-cache");
    }
}

#[tokio::test]
async fn poll_batches_are_capped_and_resume_from_the_cursor() {
    let server = TestServer::with(test_limits(), push_tower::Config::default().max_batch(3)).await;
    let http = server.http(Protocol::Http1);
    let mut ids = Vec::new();
    for i in 0..7 {
        ids.push(publish(&http, "batch", &format!("{i}")).await);
    }
    let mut cursor = format!("{}-0", ids[0].split('-').next().unwrap());
    let mut seen = Vec::new();
    for expected in [3, 3, 1, 0] {
        let answer = http
            .get(&format!("/channels/batch/poll?after={cursor}"))
            .await
            .unwrap()
            .json();
        let messages = answer["messages"].as_array().unwrap();
        assert_eq!(messages.len(), expected);
        seen.extend(
            messages
                .iter()
                .map(|m| m["id"].as_str().unwrap().to_owned()),
        );
        cursor = answer["cursor"].as_str().unwrap().to_owned();
    }
    assert_eq!(seen, ids);
}

#[tokio::test]
async fn a_long_poll_times_out_with_no_messages_and_the_same_cursor() {
    let server = TestServer::start().await;
    for protocol in PROTOCOLS {
        let http = server.http(protocol);
        let channel = format!("timeout-{protocol:?}");
        let id = publish(&http, &channel, "a").await;
        let answer = tokio::time::timeout(
            TIMEOUT,
            http.get(&format!(
                "/channels/{channel}/longpoll?after={id}&timeout=0.2"
            )),
        )
        .await
        .unwrap()
        .unwrap();
        assert_eq!(answer.status, 200);
        assert_eq!(
            answer.json(),
            serde_json::json!({"messages": [], "cursor": id})
        );
        // A timeout past the server's maximum (5 s here) is capped, not refused.
        let capped = tokio::time::timeout(
            Duration::from_secs(30),
            http.get(&format!(
                "/channels/{channel}/longpoll?after={id}&timeout=3600"
            )),
        )
        .await
        .expect("capped by long_poll_max")
        .unwrap();
        assert_eq!(capped.json()["cursor"], id);
        let bad = http
            .get(&format!("/channels/{channel}/longpoll?timeout=soon"))
            .await
            .unwrap();
        assert_eq!(bad.status, 400);
        assert_eq!(bad.error_code().as_deref(), Some("bad_timeout"));
    }
}

#[tokio::test]
async fn a_long_poll_answers_at_once_when_something_is_retained() {
    let server = TestServer::start().await;
    let http = server.http(Protocol::Http1);
    let first = publish(&http, "ready", "a").await;
    publish(&http, "ready", "b").await;
    let answer = tokio::time::timeout(
        Duration::from_secs(4),
        http.get(&format!(
            "/channels/ready/longpoll?after={first}&timeout=60"
        )),
    )
    .await
    .expect("answered without waiting for the hold")
    .unwrap();
    assert_eq!(answer.json()["messages"][0]["data"], "b");
}

#[tokio::test]
async fn a_client_that_disconnects_while_held_frees_its_subscription() {
    let server = TestServer::start().await;
    for protocol in PROTOCOLS {
        let http = server.http(protocol);
        let channel = format!("disconnect-{protocol:?}");
        let held = {
            let http = http.clone();
            let path = format!("/channels/{channel}/longpoll?timeout=5");
            tokio::spawn(async move { http.get(&path).await })
        };
        wait_for_info(&http, &channel, |info| info["subscribers"] == 1).await;
        held.abort();
        // Well within the 5 s hold: the subscription goes with the client.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
        loop {
            let info = http
                .get(&format!("/channels/{channel}"))
                .await
                .unwrap()
                .json();
            if info["subscribers"] == 0 {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{protocol}: still held: {info}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

#[tokio::test]
async fn a_held_long_poll_answers_closed_when_the_channel_is_deleted() {
    let server = TestServer::start().await;
    let http = server.http(Protocol::H2c);
    let id = publish(&http, "closing", "a").await;
    let held = {
        let http = http.clone();
        let path = format!("/channels/closing/longpoll?after={id}&timeout=5");
        tokio::spawn(async move { http.get(&path).await.unwrap() })
    };
    wait_for_info(&http, "closing", |info| info["subscribers"] == 1).await;
    http.fetch(Method::DELETE, "/channels/closing", &[], Bytes::new())
        .await
        .unwrap();
    let answer = tokio::time::timeout(TIMEOUT, held).await.unwrap().unwrap();
    assert_eq!(
        answer.json(),
        serde_json::json!({"messages": [], "cursor": id, "closed": true})
    );
}
