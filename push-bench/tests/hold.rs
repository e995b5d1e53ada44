//! The holder over real sockets on 127.0.0.1: its HTTP/1.1 streams (SSE and
//! NDJSON) against push's router and the baselines served in-process, and
//! against hand-written servers for the answers they must not count as
//! held; then the `hold` command itself.

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use push_bench::baseline::Baseline;
use push_bench::hold::{Held, Kind, Target};
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::TcpListener;

mod common;
use common::{start, start_push};
use tokio::sync::oneshot;

/// How long any one step may take before the test fails.
const STEP: Duration = Duration::from_secs(10);

/// Opens `url`, checks it is held as `kind`, then opens and closes another.
async fn hold_one(url: &str, kind: Kind) {
    let target = Target::resolve(url).await.unwrap();
    assert_eq!(target.kind(), kind, "{url}");
    let held = tokio::time::timeout(STEP, target.open())
        .await
        .unwrap_or_else(|_| panic!("{url} was not held within {STEP:?}"))
        .unwrap_or_else(|error| panic!("{url}: {error}"));
    match (kind, held) {
        (Kind::Stream, Held::Stream(_)) | (Kind::WebSocket, Held::WebSocket(_)) => {}
        (kind, held) => panic!("{url}: held {held:?} for {kind:?}"),
    }
    target.open_and_close(STEP).await.unwrap();
}

#[tokio::test]
async fn holds_every_technique_of_push() {
    let address = start_push().await;
    hold_one(&format!("http://{address}/channels/idle/sse"), Kind::Stream).await;
    hold_one(
        &format!("http://{address}/channels/idle/stream"),
        Kind::Stream,
    )
    .await;
    hold_one(&format!("ws://{address}/channels/idle/ws"), Kind::WebSocket).await;
}

#[tokio::test]
async fn holds_the_streams_of_every_baseline_that_serves_them() {
    for (baseline, path) in [
        (Baseline::HyperStream, "/channels/idle/sse"),
        (Baseline::HyperStream, "/channels/idle/stream"),
        (Baseline::AxumSse, "/channels/idle/sse"),
        (Baseline::RawWriter, "/channels/idle/sse"),
    ] {
        let address = start(baseline).await;
        hold_one(&format!("http://{address}{path}"), Kind::Stream).await;
    }
}

/// A server of one connection: it reads the request head, writes `head`
/// and `first`, then `rest` once `go` fires (nothing if `go` is dropped),
/// and sends back whether the client closed the connection (read to its
/// end) within the step after.
async fn scripted(
    head: &'static str,
    first: &'static str,
    rest: &'static str,
) -> (SocketAddr, oneshot::Sender<()>, oneshot::Receiver<bool>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (go_tx, go_rx) = oneshot::channel();
    let (closed_tx, closed_rx) = oneshot::channel();
    tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let mut stream = BufReader::new(stream);
        let mut line = String::new();
        while stream.read_line(&mut line).await.unwrap() > 0 && !line.ends_with("\r\n\r\n") {}
        stream.write_all(head.as_bytes()).await.unwrap();
        stream.write_all(first.as_bytes()).await.unwrap();
        if go_rx.await.is_ok() {
            let _ = stream.write_all(rest.as_bytes()).await;
        }
        let mut rest = Vec::new();
        let closed = tokio::time::timeout(STEP, stream.read_to_end(&mut rest))
            .await
            .is_ok();
        let _ = closed_tx.send(closed);
    });
    (address, go_tx, closed_rx)
}

const CHUNKED: &str = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\
                       transfer-encoding: chunked\r\n\r\n";

#[tokio::test]
async fn a_stream_is_held_until_the_server_ends_it() {
    let (address, go, _) = scripted(CHUNKED, "9\r\nid: e-0\n\n\r\n", "0\r\n\r\n").await;
    let target = Target::resolve(&format!("http://{address}/channels/idle/sse"))
        .await
        .unwrap();
    let held = tokio::time::timeout(STEP, target.open())
        .await
        .unwrap()
        .unwrap();
    let holding = tokio::spawn(held.hold());
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!holding.is_finished(), "held while the server says nothing");
    go.send(()).unwrap();
    let reason = tokio::time::timeout(STEP, holding).await.unwrap().unwrap();
    assert_eq!(reason, "the response ended");
}

#[tokio::test]
async fn closing_a_held_stream_closes_its_connection() {
    let (address, go, closed) = scripted(CHUNKED, "9\r\nid: e-0\n\n\r\n", "").await;
    // Nothing more to write: the server only waits for the close.
    drop(go);
    let target = Target::resolve(&format!("http://{address}/channels/idle/sse"))
        .await
        .unwrap();
    target.open_and_close(STEP).await.unwrap();
    assert!(
        closed.await.unwrap(),
        "the server saw its connection close within {STEP:?}"
    );
}

#[tokio::test]
async fn a_refusal_or_an_empty_response_is_not_held() {
    for (head, expected) in [
        (
            "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n",
            "answered 404 Not Found, not 200",
        ),
        (
            "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n",
            "the response ended before its first chunk",
        ),
    ] {
        let (address, _go, _) = scripted(head, "", "").await;
        let target = Target::resolve(&format!("http://{address}/channels/idle/sse"))
            .await
            .unwrap();
        let error = tokio::time::timeout(STEP, target.open())
            .await
            .unwrap()
            .unwrap_err()
            .to_string();
        assert!(error.contains(expected), "{error}");
    }
}

#[tokio::test]
async fn the_hold_command_holds_until_its_stdin_closes() {
    let address = start(Baseline::HyperStream).await;
    let mut hold = tokio::process::Command::new(env!("CARGO_BIN_EXE_push-bench"))
        .args([
            "hold",
            "--url",
            &format!("http://{address}/channels/idle/stream"),
            "--count",
            "20",
            "--within-secs",
            "10",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(hold.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(STEP, stdout.next_line())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(line.as_deref(), Some("held 20"));
    // It holds until its stdin closes, not until it has printed.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(hold.try_wait().unwrap().is_none(), "exited while holding");
    drop(hold.stdin.take());
    let status = tokio::time::timeout(STEP, hold.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status}");
}

#[tokio::test]
async fn the_hold_command_fails_when_the_server_refuses() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buffer = [0; 1024];
                let _ = stream.read(&mut buffer).await;
                let _ = stream
                    .write_all(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n")
                    .await;
            });
        }
    });
    let output = tokio::time::timeout(
        STEP,
        tokio::process::Command::new(env!("CARGO_BIN_EXE_push-bench"))
            .args([
                "hold",
                "--url",
                &format!("http://{address}/channels/idle/sse"),
                "--count",
                "3",
                "--within-secs",
                "5",
            ])
            .stdin(Stdio::piped())
            .output(),
    )
    .await
    .unwrap()
    .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("503"), "{stderr}");
}
