//! Clients that hold a connection without finishing a request head
//! (slowloris) are dropped after `Serve::header_read_timeout`, a publish
//! whose body stalls is answered `400 bad_body` after
//! `Config::body_read_timeout`, and a head over `Serve::max_header_bytes`
//! is answered `431`; the server keeps serving others throughout.

use std::net::SocketAddr;
use std::time::Duration;

use push_core::{Hub, HubConfig};
use push_tower::{serve, Config, Push};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The timeout these tests give the server.
const HEAD_TIMEOUT: Duration = Duration::from_millis(500);

async fn start() -> SocketAddr {
    let config = Config::default().body_read_timeout(HEAD_TIMEOUT);
    let push = Push::new(Hub::new(HubConfig::default()), config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        serve(listener, push.router())
            .with_push(push)
            .header_read_timeout(HEAD_TIMEOUT)
            .run(),
    );
    addr
}

/// Reads until the server closes the connection; returns what it sent.
/// Fails if the server has not closed it long after the timeout.
async fn read_until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut answer = Vec::new();
    let closed = tokio::time::timeout(HEAD_TIMEOUT * 20, async {
        let mut buffer = [0u8; 4096];
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(read) => answer.extend_from_slice(&buffer[..read]),
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the server still holds the connection");
    answer
}

/// Sends `request` on a fresh connection; returns what the server answered
/// before it closed the connection.
async fn exchange(addr: SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    String::from_utf8(read_until_closed(&mut stream).await).unwrap()
}

/// A plain request on a fresh connection is served.
async fn still_serving(addr: SocketAddr) {
    let answer = exchange(
        addr,
        b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[tokio::test]
async fn a_connection_that_sends_nothing_is_closed() {
    let addr = start().await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    assert!(read_until_closed(&mut stream).await.is_empty());
    still_serving(addr).await;
}

#[tokio::test]
async fn part_of_the_http2_preface_then_nothing_is_closed() {
    let addr = start().await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(b"PRI * HTTP/2.0\r\n").await.unwrap();
    assert!(read_until_closed(&mut stream).await.is_empty());
    still_serving(addr).await;
}

#[tokio::test]
async fn half_a_head_then_nothing_is_closed() {
    let addr = start().await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /channels/news/poll HTTP/1.1\r\nhost: x\r\n")
        .await
        .unwrap();
    read_until_closed(&mut stream).await;
    still_serving(addr).await;
}

#[tokio::test]
async fn a_head_sent_a_line_at_a_time_is_closed_when_the_time_is_up() {
    let addr = start().await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /channels/news/poll HTTP/1.1\r\n")
        .await
        .unwrap();
    // A header line every tenth of the timeout, forever: bytes keep
    // coming, but the head is never done.
    let (mut reader, mut writer) = stream.into_split();
    let trickle = tokio::spawn(async move {
        for line in 0..1000 {
            tokio::time::sleep(HEAD_TIMEOUT / 10).await;
            if writer
                .write_all(format!("x-line-{line}: slow\r\n").as_bytes())
                .await
                .is_err()
            {
                return line;
            }
        }
        panic!("the server took 1,000 header lines, a tenth of its timeout apart");
    });
    let mut buffer = [0u8; 1024];
    let closed = tokio::time::timeout(HEAD_TIMEOUT * 20, async {
        while let Ok(read) = reader.read(&mut buffer).await {
            if read == 0 {
                break;
            }
        }
    })
    .await;
    assert!(
        closed.is_ok(),
        "the server still holds the trickling connection"
    );
    trickle.abort();
    still_serving(addr).await;
}

#[tokio::test]
async fn a_head_over_the_limit_is_431() {
    let addr = start().await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let big = "a".repeat(100_000);
    let request = format!("GET /healthz HTTP/1.1\r\nhost: x\r\nx-big: {big}\r\n\r\n");
    // The server may close before taking every byte; what it answered counts.
    let _ = stream.write_all(request.as_bytes()).await;
    let answer = read_until_closed(&mut stream).await;
    assert!(
        answer.starts_with(b"HTTP/1.1 431"),
        "{}",
        String::from_utf8_lossy(&answer[..answer.len().min(200)])
    );
    // Just under the limit is served.
    let fits = "a".repeat(15_000);
    let request =
        format!("GET /healthz HTTP/1.1\r\nhost: x\r\nx-big: {fits}\r\nconnection: close\r\n\r\n");
    let answer = exchange(addr, request.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[tokio::test]
async fn a_body_that_stalls_is_answered_bad_body_and_nothing_is_stored() {
    let addr = start().await;
    let answer = exchange(
        addr,
        b"POST /channels/stalled HTTP/1.1\r\nhost: x\r\ncontent-type: text/plain\r\ncontent-length: 100\r\n\r\nx",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains(r#""error":"bad_body""#), "{answer}");
    // Nothing was published.
    let answer = exchange(
        addr,
        b"GET /channels/stalled/poll?from=earliest HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
    )
    .await;
    assert!(answer.contains(r#""messages":[]"#), "{answer}");
}

#[tokio::test]
async fn an_event_name_that_is_not_utf8_is_refused_not_stored_altered() {
    let addr = start().await;
    for name in ["%FF", "%C0%AF", "ok%80"] {
        let request = format!(
            "POST /channels/names?event={name} HTTP/1.1\r\nhost: x\r\ncontent-type: text/plain\r\ncontent-length: 2\r\nconnection: close\r\n\r\nhi"
        );
        let answer = exchange(addr, request.as_bytes()).await;
        assert!(answer.starts_with("HTTP/1.1 400"), "{name}: {answer}");
        assert!(
            answer.contains(r#""error":"bad_event_name""#),
            "{name}: {answer}"
        );
    }
}

/// An HTTP/2 connection from a real client (the `h2` crate), whose
/// connection task reports when the server has closed it.
async fn http2_client(
    addr: SocketAddr,
) -> (
    h2::client::SendRequest<bytes::Bytes>,
    tokio::task::JoinHandle<Result<(), h2::Error>>,
) {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (client, connection) = h2::client::handshake(stream).await.unwrap();
    (client, tokio::spawn(connection))
}

/// Waits for the server to close `connection`, cleanly (`GOAWAY` with
/// `NO_ERROR`, then the end of the socket).
async fn closed_cleanly(connection: tokio::task::JoinHandle<Result<(), h2::Error>>) {
    let ended = tokio::time::timeout(HEAD_TIMEOUT * 20, connection)
        .await
        .expect("the server still holds the idle HTTP/2 connection")
        .unwrap();
    if let Err(error) = ended {
        assert_eq!(error.reason(), Some(h2::Reason::NO_ERROR), "{error}");
    }
}

/// `GET path` on `client`; the response's status and the body's stream.
async fn http2_get(
    client: &mut h2::client::SendRequest<bytes::Bytes>,
    path: &str,
) -> (http::StatusCode, h2::RecvStream) {
    let request = http::Request::get(format!("http://localhost{path}"))
        .body(())
        .unwrap();
    let (response, _) = client.send_request(request, true).unwrap();
    let (head, body) = response.await.unwrap().into_parts();
    (head.status, body)
}

#[tokio::test]
async fn an_http2_connection_with_no_stream_open_is_closed_like_an_idle_keep_alive() {
    let addr = start().await;
    // Never a request.
    let (_silent, silent) = http2_client(addr).await;
    // A request answered, then nothing.
    let (mut client, connection) = http2_client(addr).await;
    let (status, _) = http2_get(&mut client, "/healthz").await;
    assert_eq!(status, 200);
    closed_cleanly(silent).await;
    closed_cleanly(connection).await;
    still_serving(addr).await;
}

#[tokio::test]
async fn an_http2_connection_is_not_idle_while_a_stream_is_open() {
    let addr = start().await;
    let (mut client, connection) = http2_client(addr).await;
    let (status, mut events) = http2_get(&mut client, "/channels/news/sse").await;
    assert_eq!(status, 200);
    // The position block first, then the stream waits for events.
    let first = events.data().await.unwrap().unwrap();
    assert!(first.windows(4).any(|w| w == b"id: "), "{first:?}");
    // Held well past the idle timeout, the stream still delivers.
    tokio::time::sleep(HEAD_TIMEOUT * 4).await;
    let published = exchange(
        addr,
        b"POST /channels/news HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-type: text/plain\r\ncontent-length: 5\r\n\r\nlater",
    )
    .await;
    assert!(published.starts_with("HTTP/1.1 201"), "{published}");
    let mut received = Vec::new();
    while !received.windows(10).any(|w| w == b"data: late") {
        let chunk = tokio::time::timeout(HEAD_TIMEOUT * 20, events.data())
            .await
            .expect("the event did not arrive")
            .expect("the stream ended")
            .unwrap();
        received.extend_from_slice(&chunk);
    }
    assert!(!connection.is_finished());
    // Once the client gives the stream up (the client itself stays), the
    // connection is idle.
    drop(events);
    closed_cleanly(connection).await;
    drop(client);
}
