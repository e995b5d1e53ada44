//! Every error code of the wire contract, over HTTP/1.1 and h2c: a status,
//! a JSON body with `error` and `message`, before any stream starts.

mod support;

use std::time::Duration;

use bytes::Bytes;
use conformance::http::FullResponse;
use http::Method;
use push_core::HubConfig;
use push_tower::Config;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn assert_error(answer: &FullResponse, status: u16, code: &str, what: &str) {
    assert_eq!(answer.status, status, "{what}: {:?}", answer.body);
    assert_eq!(answer.headers["content-type"], "application/json", "{what}");
    let json = answer.json();
    assert_eq!(json["error"], code, "{what}: {json}");
    assert!(
        json["message"].as_str().is_some_and(|m| m.len() > 10),
        "{what}: a message that says what to do: {json}"
    );
}

#[tokio::test]
async fn subscription_errors_come_before_any_stream() {
    let server = TestServer::start().await;
    for protocol in PROTOCOLS {
        let http = server.http(protocol);
        let channel = format!("errors-{protocol:?}");
        let head = publish(&http, &channel, "x").await;
        let epoch = head.split('-').next().unwrap().to_owned();
        let long_name = "n".repeat(129);
        type Case = (String, Vec<(&'static str, String)>, u16, &'static str);
        let cases: Vec<Case> = vec![
            (
                "/channels/bad%20name/TECH".into(),
                vec![],
                400,
                "bad_channel",
            ),
            ("/channels/.../TECH".into(), vec![], 400, "bad_channel"),
            (
                format!("/channels/{long_name}/TECH"),
                vec![],
                400,
                "bad_channel",
            ),
            ("/channels/a%2Fb/TECH".into(), vec![], 400, "bad_channel"),
            (
                "/channels/CHANNEL/TECH?after=nope".into(),
                vec![],
                400,
                "bad_cursor",
            ),
            (
                "/channels/CHANNEL/TECH?after=".into(),
                vec![],
                400,
                "bad_cursor",
            ),
            (
                format!("/channels/CHANNEL/TECH?after={head}&from=earliest"),
                vec![],
                400,
                "bad_cursor",
            ),
            (
                "/channels/CHANNEL/TECH?from=latest".into(),
                vec![],
                400,
                "bad_cursor",
            ),
            (
                "/channels/CHANNEL/TECH".into(),
                vec![("last-event-id", "garbage".into())],
                400,
                "bad_cursor",
            ),
            (
                format!("/channels/CHANNEL/TECH?after={epoch}-99"),
                vec![],
                400,
                "cursor_ahead",
            ),
            (
                "/channels/CHANNEL/TECH".to_owned(),
                vec![("last-event-id", format!("{epoch}-2"))],
                400,
                "cursor_ahead",
            ),
        ];
        for technique in ["poll", "longpoll", "sse", "stream"] {
            for (path, headers, status, code) in &cases {
                let path = path.replace("TECH", technique).replace("CHANNEL", &channel);
                let headers: Vec<(&str, &str)> =
                    headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
                let answer = tokio::time::timeout(
                    TIMEOUT,
                    http.fetch(Method::GET, &path, &headers, Bytes::new()),
                )
                .await
                .expect("an error answers at once")
                .unwrap();
                assert_error(&answer, *status, code, &format!("{protocol} {path}"));
            }
        }
    }
}

#[tokio::test]
async fn publish_errors() {
    let server = TestServer::start().await;
    for protocol in PROTOCOLS {
        let http = server.http(protocol);
        let post = |path: &str, content_type: &str, body: Vec<u8>| {
            let http = http.clone();
            let path = path.to_owned();
            let content_type = content_type.to_owned();
            async move {
                http.fetch(
                    Method::POST,
                    &path,
                    &[("content-type", &content_type)],
                    Bytes::from(body),
                )
                .await
                .unwrap()
            }
        };
        let cases = vec![
            (
                "/channels/bad%21/x",
                "text/plain",
                b"x".to_vec(),
                404,
                "not_found",
            ),
            (
                "/channels/bad%21",
                "text/plain",
                b"x".to_vec(),
                400,
                "bad_channel",
            ),
            (
                "/channels/ok",
                "text/plain",
                vec![0xff, 0xfe],
                400,
                "bad_utf8",
            ),
            (
                "/channels/ok",
                "application/json",
                vec![b'"', 0xc3],
                400,
                "bad_utf8",
            ),
            (
                "/channels/ok?event=",
                "text/plain",
                b"x".to_vec(),
                400,
                "bad_event_name",
            ),
            (
                "/channels/ok?event=a%0Ab",
                "text/plain",
                b"x".to_vec(),
                400,
                "bad_event_name",
            ),
            (
                "/channels/ok?event=a%0Db",
                "text/plain",
                b"x".to_vec(),
                400,
                "bad_event_name",
            ),
            (
                "/channels/ok?event=a%00b",
                "text/plain",
                b"x".to_vec(),
                400,
                "bad_event_name",
            ),
            (
                "/channels/ok?event=push.gap",
                "text/plain",
                b"x".to_vec(),
                400,
                "reserved_event_name",
            ),
            (
                "/channels/ok",
                "application/octet-stream",
                vec![0; 2 * 1024 * 1024 + 1],
                413,
                "too_large",
            ),
        ];
        let long_name = format!("/channels/ok?event={}", "e".repeat(65));
        let mut all = cases;
        all.push((
            long_name.as_str(),
            "text/plain",
            b"x".to_vec(),
            400,
            "bad_event_name",
        ));
        for (path, content_type, body, status, code) in all {
            let answer = post(path, content_type, body).await;
            assert_error(&answer, status, code, &format!("{protocol} POST {path}"));
        }
        // Binary bodies need not be UTF-8; the max size is accepted.
        let ok = post(
            "/channels/ok",
            "application/octet-stream",
            vec![0xff; 2 * 1024 * 1024],
        )
        .await;
        assert_eq!(ok.status, 201);
    }
}

#[tokio::test]
async fn too_large_is_answered_without_reading_the_whole_body() {
    let server = TestServer::start().await;
    // Declare 100 MiB, send a few bytes, and get the answer anyway.
    let mut socket = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    socket
        .write_all(b"POST /channels/big HTTP/1.1\r\nhost: x\r\ncontent-type: application/octet-stream\r\ncontent-length: 104857600\r\n\r\nabc")
        .await
        .unwrap();
    let mut answer = vec![0u8; 4096];
    let n = tokio::time::timeout(TIMEOUT, socket.read(&mut answer))
        .await
        .unwrap()
        .unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("\"error\":\"too_large\""), "{answer}");

    // Chunked, with no length: answered once the limit is passed.
    let mut socket = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    socket
        .write_all(b"POST /channels/big HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n")
        .await
        .unwrap();
    let chunk = vec![b'a'; 64 * 1024];
    let mut sent = 0;
    let mut reply = Vec::new();
    while sent < 16 * 1024 * 1024 {
        socket
            .write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
            .await
            .unwrap();
        if socket.write_all(&chunk).await.is_err() || socket.write_all(b"\r\n").await.is_err() {
            break;
        }
        sent += chunk.len();
        let mut buf = [0u8; 4096];
        if let Ok(Ok(n)) =
            tokio::time::timeout(Duration::from_millis(1), socket.read(&mut buf)).await
        {
            reply.extend_from_slice(&buf[..n]);
            if n == 0 || reply.len() > 12 {
                break;
            }
        }
    }
    if reply.is_empty() {
        let mut buf = [0u8; 4096];
        let n = tokio::time::timeout(TIMEOUT, socket.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        reply.extend_from_slice(&buf[..n]);
    }
    let reply = String::from_utf8_lossy(&reply);
    assert!(reply.starts_with("HTTP/1.1 413"), "{reply}");
    assert!(
        sent < 8 * 1024 * 1024,
        "answered after {sent} bytes, long past the 2 MiB limit"
    );
}

#[tokio::test]
async fn messages_by_id_found_gone_and_not_found() {
    let server = TestServer::start().await;
    for protocol in PROTOCOLS {
        let http = server.http(protocol);
        let channel = format!("messages-{protocol:?}");
        let mut ids = Vec::new();
        for i in 0..25 {
            ids.push(publish(&http, &channel, &format!("m{i}")).await);
        }
        let found = http
            .get(&format!("/channels/{channel}/messages/{}", ids[24]))
            .await
            .unwrap();
        assert_eq!(found.status, 200);
        assert_eq!(found.json()["data"], "m24");
        assert_eq!(found.json()["id"], ids[24]);
        let gone = http
            .get(&format!("/channels/{channel}/messages/{}", ids[0]))
            .await
            .unwrap();
        assert_error(&gone, 410, "gone", "evicted");
        let epoch = ids[0].split('-').next().unwrap();
        let ahead = http
            .get(&format!("/channels/{channel}/messages/{epoch}-26"))
            .await
            .unwrap();
        assert_error(&ahead, 404, "not_found", "beyond the head");
        let other = http
            .get(&format!("/channels/{channel}/messages/0000000000000001-1"))
            .await
            .unwrap();
        assert_error(&other, 410, "gone", "other incarnation");
        let malformed = http
            .get(&format!("/channels/{channel}/messages/xyz"))
            .await
            .unwrap();
        assert_error(&malformed, 400, "bad_cursor", "malformed id");
    }
}

#[tokio::test]
async fn unknown_paths_and_methods() {
    let server = TestServer::start().await;
    for protocol in PROTOCOLS {
        let http = server.http(protocol);
        let cases = [
            (Method::GET, "/nope", 404, "not_found"),
            (Method::GET, "/channels/x/nope", 404, "not_found"),
            (Method::GET, "/channels/x/messages", 404, "not_found"),
            (Method::PUT, "/channels/x", 405, "method_not_allowed"),
            (Method::POST, "/channels/x/sse", 405, "method_not_allowed"),
            (Method::DELETE, "/healthz", 405, "method_not_allowed"),
            (Method::DELETE, "/channels/never-made", 404, "not_found"),
            // A plain request to the WebSocket route is told to upgrade;
            // tests/ws.rs checks the refusals of real handshakes.
            (Method::GET, "/channels/x/ws", 426, "upgrade_required"),
            (Method::POST, "/channels/x/push", 405, "method_not_allowed"),
        ];
        for (method, path, status, code) in cases {
            let answer = http
                .fetch(method.clone(), path, &[], Bytes::new())
                .await
                .unwrap();
            assert_error(
                &answer,
                status,
                code,
                &format!("{protocol} {method} {path}"),
            );
            if status == 405 {
                assert!(answer.headers.contains_key("allow"), "{path}: Allow header");
            }
        }
        assert_eq!(http.get("/healthz").await.unwrap().status, 200);
    }
}

#[tokio::test]
async fn too_many_channels_is_503_with_retry_after() {
    let server = {
        let hub = push_core::Hub::new(HubConfig {
            limits: test_limits(),
            max_channels: 3,
        });
        let push = push_tower::Push::new(hub, Config::default());
        TestServer::from_push(push).await
    };
    for protocol in PROTOCOLS {
        let http = server.http(protocol);
        for name in ["a", "b", "c"] {
            publish(&http, name, "keeps the channel from being evicted").await;
        }
        let refused = http
            .fetch(
                Method::POST,
                "/channels/d",
                &[("content-type", "text/plain")],
                Bytes::from_static(b"x"),
            )
            .await
            .unwrap();
        assert_error(&refused, 503, "too_many_channels", "POST /channels/d");
        assert!(refused.headers.contains_key("retry-after"));
        // Reading a name nobody publishes to takes no publisher's place.
        for path in ["/channels/d", "/channels/d/poll", "/channels/e/poll"] {
            assert_eq!(http.get(path).await.unwrap().status, 200, "{path}");
        }
        // Idle channels (no subscriber, nothing retained) are evicted to make room.
        assert_eq!(http.get("/channels/a/poll").await.unwrap().status, 200);
    }
    // Closing one makes room.
    let http = server.http(conformance::Protocol::Http1);
    assert_eq!(
        http.fetch(Method::DELETE, "/channels/a", &[], Bytes::new())
            .await
            .unwrap()
            .status,
        204
    );
    publish(&http, "d", "takes the place a closed").await;
}
