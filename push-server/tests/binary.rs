//! The binary as a user runs it: it prints its URL, serves the protocol, and
//! stops cleanly on SIGTERM with open streams and WebSockets told to
//! reconnect.

mod process;

use std::process::Command;
use std::time::Duration;

use conformance::{
    HttpClient, Protocol, Received, Session, SignalKind, StartAt, Technique, Transport,
};

#[tokio::test]
async fn serves_and_stops_cleanly_on_sigterm() {
    let (mut child, mut stdout, url) =
        process::start(&["--heartbeat-ms", "500", "--history-events", "5"]);

    let http = HttpClient::new(&url, Protocol::Http1);
    assert_eq!(http.get("/healthz").await.unwrap().status, 200);
    let info = http.get("/channels/demo").await.unwrap().json();
    assert_eq!(info["limits"]["history_events"], 5);
    assert_eq!(info["limits"]["heartbeat_ms"], 500);

    let mut session = tokio::time::timeout(
        Duration::from_secs(10),
        conformance::WireClient::new(Technique::Sse, http.clone()).open("demo", StartAt::Now),
    )
    .await
    .unwrap()
    .unwrap();
    let mut socket = tokio::time::timeout(
        Duration::from_secs(10),
        conformance::clients::ws::open(&http, "demo", StartAt::Now),
    )
    .await
    .unwrap()
    .unwrap();
    let published = http
        .fetch(
            http::Method::POST,
            "/channels/demo",
            &[("content-type", "text/plain")],
            bytes::Bytes::from_static(b"hello"),
        )
        .await
        .unwrap();
    assert_eq!(published.status, 201);
    let id = published.json()["id"].as_str().unwrap().to_owned();

    for session in [session.as_mut(), &mut socket as &mut dyn Session] {
        loop {
            match next(session).await {
                Some(Received::Event(event)) => {
                    assert_eq!(event.id, id);
                    break;
                }
                Some(_) => {}
                None => panic!("stream ended early"),
            }
        }
    }

    // SIGTERM: the stream ends with shutdown and its cursor, the process exits 0.
    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    for session in [session.as_mut(), &mut socket as &mut dyn Session] {
        loop {
            match next(session).await {
                Some(Received::Heartbeat) => {}
                Some(Received::Signal(signal)) => {
                    assert_eq!(signal.kind, SignalKind::Shutdown);
                    assert_eq!(signal.cursor.as_deref(), Some(id.as_str()));
                    break;
                }
                other => panic!("expected the shutdown signal, got {other:?}"),
            }
        }
    }
    // The socket then closes with 1001, going away.
    assert_eq!(next(&mut socket).await, None);
    assert_eq!(socket.close_code(), Some(1001));
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "exit status {status}");
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    assert!(rest.contains("push-server stopped"), "{rest:?}");
}

async fn next(session: &mut (impl Session + ?Sized)) -> Option<Received> {
    tokio::time::timeout(Duration::from_secs(10), session.next())
        .await
        .unwrap()
        .unwrap()
}

#[test]
fn refuses_inconsistent_limits_with_a_message() {
    let (code, stderr) = process::exit_of(&[
        "--max-event-bytes",
        "1000",
        "--subscriber-buffer-bytes",
        "10",
    ]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("subscriber_buffer_bytes"), "{stderr}");
}

#[test]
fn says_what_to_check_when_redis_cannot_be_reached() {
    let (code, stderr) = process::exit_of(&["--redis", "redis://127.0.0.1:9/0"]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("cannot reach Redis"), "{stderr}");
    assert!(stderr.contains("redis://HOST:PORT/DB"), "{stderr}");
}

#[tokio::test]
async fn serves_the_demo_page_and_the_browser_client_with_their_types_and_caching() {
    let (mut child, _stdout, url) = process::start(&[]);
    let http = HttpClient::new(&url, Protocol::Http1);

    let script = http.get("/client/push.js").await.unwrap();
    assert_eq!(script.status, 200);
    assert_eq!(
        script.headers["content-type"],
        "text/javascript; charset=utf-8"
    );
    assert_eq!(script.headers["cache-control"], "public, max-age=600");
    assert_eq!(script.headers["access-control-allow-origin"], "*");
    assert_eq!(script.body, push_tower::client::SCRIPT.as_bytes());
    let etag = script.headers["etag"].to_str().unwrap().to_owned();
    let revalidated = http
        .fetch(
            http::Method::GET,
            "/client/push.js",
            &[("if-none-match", &etag)],
            bytes::Bytes::new(),
        )
        .await
        .unwrap();
    assert_eq!(revalidated.status, 304);
    assert!(revalidated.body.is_empty());

    let page = http.get("/").await.unwrap();
    assert_eq!(page.status, 200);
    assert_eq!(page.headers["content-type"], "text/html; charset=utf-8");
    assert_eq!(page.headers["cache-control"], "no-cache");
    assert_eq!(page.body, push_server::DEMO_PAGE.as_bytes());
    assert!(std::str::from_utf8(&page.body)
        .unwrap()
        .contains(r#"import { subscribe, publish } from "/client/push.js";"#));

    // The protocol is still all there, and other paths are its 404.
    assert_eq!(http.get("/healthz").await.unwrap().status, 200);
    let missing = http.get("/client/other.js").await.unwrap();
    assert_eq!(missing.status, 404);
    assert_eq!(missing.error_code().as_deref(), Some("not_found"));

    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn refuses_a_websocket_message_limit_under_a_control_frame() {
    let (code, stderr) = process::exit_of(&["--max-ws-message-bytes", "124"]);
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains("--max-ws-message-bytes must be at least 125"),
        "{stderr}"
    );
}
