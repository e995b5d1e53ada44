//! The baselines over real sockets: each is served in-process on
//! 127.0.0.1, port 0, and driven the way the fan-out load drives
//! push-server (a plain HTTP/1.1 client, hyper's; the load's own h2c and
//! WebSocket clients): two subscribers, three publishes, every event at
//! both subscribers in order and framed exactly as push frames it, and
//! `404` for anything else; and `hyper-ok` over HTTP/1.1 and h2c, the way
//! the long-poll load drives it.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE, HOST};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use push_bench::baseline::{self, Baseline};
use push_bench::{h2c, ws};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpSocket, TcpStream};

mod common;
use common::start;

/// How long any one step may take before the test fails.
const STEP: Duration = Duration::from_secs(10);

const SSE_BASELINES: [Baseline; 3] = [
    Baseline::AxumSse,
    Baseline::RawWriter,
    Baseline::HyperStream,
];

/// Sends one request on a connection of its own and returns the answer's
/// head, its body still to be read.
async fn request(
    address: SocketAddr,
    method: Method,
    path: &str,
    body: &str,
) -> Response<Incoming> {
    request_over(Protocol::Http1, address, method, path, body).await
}

/// Sends one request on `stream`, connected to `address`, and returns the
/// answer's head, its body still to be read.
async fn request_on(
    stream: TcpStream,
    address: SocketAddr,
    method: Method,
    path: &str,
    body: &str,
) -> Response<Incoming> {
    let exchange = async {
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(async move {
            let _ = connection.await;
        });
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header(HOST, address.to_string())
            .header(CONTENT_LENGTH, body.len())
            .body(Full::new(Bytes::from(body.to_owned())))
            .unwrap();
        sender.send_request(request).await.unwrap()
    };
    tokio::time::timeout(STEP, exchange)
        .await
        .unwrap_or_else(|_| panic!("no answer to {path} within {STEP:?}"))
}

/// A body read to its end, as text.
async fn text(response: Response<Incoming>) -> String {
    let body = tokio::time::timeout(STEP, response.into_body().collect())
        .await
        .expect("the body did not end in time")
        .unwrap()
        .to_bytes();
    String::from_utf8(body.to_vec()).unwrap()
}

/// An SSE stream, read a block at a time.
struct Subscriber {
    body: Incoming,
    received: Vec<u8>,
}

impl Subscriber {
    /// Subscribes to `channel`, checking the answer's head.
    async fn new(address: SocketAddr, channel: &str) -> Subscriber {
        let stream = TcpStream::connect(address).await.unwrap();
        Subscriber::on(stream, address, channel).await
    }

    /// Subscribes to `channel` on `stream`, connected to `address`.
    async fn on(stream: TcpStream, address: SocketAddr, channel: &str) -> Subscriber {
        let path = format!("/channels/{channel}/sse");
        Subscriber::to(stream, address, &path, "text/event-stream").await
    }

    /// Subscribes to `channel` with NDJSON (`/stream`).
    async fn ndjson(address: SocketAddr, channel: &str) -> Subscriber {
        let stream = TcpStream::connect(address).await.unwrap();
        let path = format!("/channels/{channel}/stream");
        Subscriber::to(stream, address, &path, "application/x-ndjson").await
    }

    /// `GET path` on `stream`, checking the answer's head.
    async fn to(
        stream: TcpStream,
        address: SocketAddr,
        path: &str,
        content_type: &str,
    ) -> Subscriber {
        let response = request_on(stream, address, Method::GET, path, "").await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()[CONTENT_TYPE], content_type);
        assert_eq!(response.headers()[CACHE_CONTROL], "no-cache");
        Subscriber {
            body: response.into_body(),
            received: Vec::new(),
        }
    }

    /// The next block (up to and with its blank line), skipping comments
    /// (keep-alives).
    async fn next_block(&mut self) -> String {
        self.next_until(b"\n\n", |block| block.starts_with(b":"))
            .await
    }

    /// The next NDJSON line (with its `\n`), skipping empty ones
    /// (heartbeats).
    async fn next_line(&mut self) -> String {
        self.next_until(b"\n", |line| line == b"\n").await
    }

    /// The received bytes up to and with the next `end`, skipping those
    /// `skip` says are not data.
    async fn next_until(&mut self, end: &[u8], skip: impl Fn(&[u8]) -> bool) -> String {
        loop {
            if let Some(at) = self.received.windows(end.len()).position(|w| w == end) {
                let unit: Vec<u8> = self.received.drain(..at + end.len()).collect();
                if skip(&unit) {
                    continue;
                }
                return String::from_utf8(unit).unwrap();
            }
            let frame = tokio::time::timeout(STEP, self.body.frame())
                .await
                .expect("no block within the step")
                .expect("the stream ended")
                .unwrap();
            if let Ok(data) = frame.into_data() {
                self.received.extend_from_slice(&data);
            }
        }
    }
}

/// Publishes `data` on `channel`, checks the `201` and returns the id.
async fn publish(address: SocketAddr, channel: &str, data: &str) -> String {
    let response = request(address, Method::POST, &format!("/channels/{channel}"), data).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(response.headers()[CONTENT_TYPE], "application/json");
    text(response).await
}

#[tokio::test]
async fn every_subscriber_gets_every_event_in_order() {
    for baseline in SSE_BASELINES {
        let name = baseline.name();
        let address = start(baseline).await;
        let mut first = Subscriber::new(address, "news").await;
        let mut second = Subscriber::new(address, "news").await;
        for subscriber in [&mut first, &mut second] {
            assert_eq!(
                subscriber.next_block().await,
                "id: 0000000000000000-0\n\n",
                "{name}"
            );
        }
        for (n, data) in [(1, "one"), (2, "two"), (3, "three")] {
            assert_eq!(
                publish(address, "news", data).await,
                format!(r#"{{"id":"0000000000000000-{n}"}}"#),
                "{name}"
            );
        }
        for subscriber in [&mut first, &mut second] {
            for (n, data) in [(1, "one"), (2, "two"), (3, "three")] {
                assert_eq!(
                    subscriber.next_block().await,
                    format!("id: 0000000000000000-{n}\ndata: {data}\n\n"),
                    "{name}"
                );
            }
        }
    }
}

#[tokio::test]
async fn a_later_subscriber_starts_at_the_last_event_and_channels_are_apart() {
    for baseline in SSE_BASELINES {
        let name = baseline.name();
        let address = start(baseline).await;
        publish(address, "news", "one").await;
        publish(address, "news", "two").await;
        let mut news = Subscriber::new(address, "news").await;
        let mut other = Subscriber::new(address, "other").await;
        assert_eq!(
            news.next_block().await,
            "id: 0000000000000000-2\n\n",
            "{name}"
        );
        assert_eq!(
            other.next_block().await,
            "id: 0000000000000000-0\n\n",
            "{name}"
        );
        assert_eq!(
            publish(address, "other", "first").await,
            r#"{"id":"0000000000000000-1"}"#,
            "{name}"
        );
        publish(address, "news", "three").await;
        assert_eq!(
            other.next_block().await,
            "id: 0000000000000000-1\ndata: first\n\n",
            "{name}"
        );
        assert_eq!(
            news.next_block().await,
            "id: 0000000000000000-3\ndata: three\n\n",
            "{name}"
        );
    }
}

#[tokio::test]
async fn anything_else_is_not_found() {
    for baseline in SSE_BASELINES {
        let name = baseline.name();
        let address = start(baseline).await;
        for (method, path, body) in [
            (Method::GET, "/nothing", ""),
            (Method::GET, "/", ""),
            (Method::GET, "/channels/news", ""),
            (Method::POST, "/channels/news/sse", "data"),
            (Method::GET, "/channels/news/ws", ""),
            (Method::GET, "/channels/news/ndjson", ""),
            (Method::POST, "/channels/news/stream", "data"),
            (Method::DELETE, "/channels/news", ""),
        ] {
            let response = request(address, method.clone(), path, body).await;
            assert_eq!(
                response.status(),
                StatusCode::NOT_FOUND,
                "{name}: {method} {path}"
            );
        }
    }
}

#[tokio::test]
async fn a_body_that_is_not_utf8_is_refused() {
    for baseline in SSE_BASELINES
        .into_iter()
        .chain([Baseline::TungsteniteDefault])
    {
        let address = start(baseline).await;
        let stream = TcpStream::connect(address).await.unwrap();
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(connection);
        let request = Request::post("/channels/news")
            .header(HOST, address.to_string())
            .body(Full::new(Bytes::from_static(b"\xff\xfe")))
            .unwrap();
        let response = tokio::time::timeout(STEP, sender.send_request(request))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::BAD_REQUEST,
            "{}",
            baseline.name()
        );
    }
}

/// Publishes `data` on `channel` with the least a client can do (one
/// request written at once, the answer read to its end), for the many
/// publishes that make a subscriber fall behind; checks the `201`.
async fn publish_quickly(address: SocketAddr, channel: &str, data: &str) {
    let exchange = async {
        let mut stream = TcpStream::connect(address).await.unwrap();
        let request = format!(
            "POST /channels/{channel} HTTP/1.1\r\nhost: {address}\r\ncontent-length: {}\r\n\
             connection: close\r\n\r\n{data}",
            data.len()
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await.unwrap();
        answer
    };
    let answer = tokio::time::timeout(STEP, exchange).await.unwrap();
    assert!(
        answer.starts_with(b"HTTP/1.1 201 Created\r\n"),
        "{}",
        answer.escape_ascii()
    );
}

#[tokio::test]
async fn a_subscriber_that_falls_behind_is_dropped() {
    let data = "x".repeat(8 * 1024);
    // Well past what the channel, the server's buffers and the sockets
    // hold together: the subscriber's receive buffer is small, and it reads
    // nothing until every publish is done.
    let publishes = 3 * baseline::CHANNEL_CAPACITY as u64;
    for baseline in SSE_BASELINES {
        let name = baseline.name();
        let address = start(baseline).await;
        let socket = TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let stream = socket.connect(address).await.unwrap();
        let mut slow = Subscriber::on(stream, address, "news").await;
        assert_eq!(
            slow.next_block().await,
            "id: 0000000000000000-0\n\n",
            "{name}"
        );
        for _ in 0..publishes {
            publish_quickly(address, "news", &data).await;
        }
        let mut last = 0;
        loop {
            let frame = tokio::time::timeout(STEP, slow.body.frame())
                .await
                .unwrap_or_else(|_| panic!("{name}: the slow subscriber was not dropped"));
            let Some(Ok(frame)) = frame else {
                // The stream ended (or its connection closed).
                break;
            };
            if let Ok(data) = frame.into_data() {
                slow.received.extend_from_slice(&data);
            }
            while let Some(end) = slow.received.windows(2).position(|w| w == b"\n\n") {
                let block: Vec<u8> = slow.received.drain(..end + 2).collect();
                let block = String::from_utf8(block).unwrap();
                let id = block
                    .strip_prefix("id: 0000000000000000-")
                    .and_then(|rest| rest.split_once('\n'))
                    .map(|(n, _)| n.parse::<u64>().unwrap());
                assert_eq!(id, Some(last + 1), "{name}: events in order, none missing");
                last += 1;
            }
        }
        assert!(
            (1..publishes).contains(&last),
            "{name}: {last} of {publishes} events came before the stream ended"
        );
    }
}

/// The NDJSON envelope line push writes for event `n` with text `data`.
fn envelope_line(n: u64, escaped_data: &str) -> String {
    format!("{{\"id\":\"0000000000000000-{n}\",\"data\":\"{escaped_data}\"}}\n")
}

/// The position signal of a channel whose last event is `n`.
fn position_signal(n: u64) -> String {
    format!(r#"{{"signal":"position","cursor":"0000000000000000-{n}"}}"#)
}

#[tokio::test]
async fn ndjson_subscribers_get_every_event_framed_as_push_frames_it() {
    for baseline in SSE_BASELINES {
        let name = baseline.name();
        let address = start(baseline).await;
        publish(address, "news", "before").await;
        let mut first = Subscriber::ndjson(address, "news").await;
        let mut second = Subscriber::ndjson(address, "news").await;
        // An SSE subscriber of the same channel gets the same events.
        let mut sse = Subscriber::new(address, "news").await;
        for subscriber in [&mut first, &mut second] {
            assert_eq!(
                subscriber.next_line().await,
                format!("{}\n", position_signal(1)),
                "{name}"
            );
        }
        assert_eq!(
            sse.next_block().await,
            "id: 0000000000000000-1\n\n",
            "{name}"
        );
        let events = [
            (2, "one", "one"),
            (3, "two", "two"),
            (4, "say \"hi\"\\ \u{1}é", r#"say \"hi\"\\ \u0001é"#),
        ];
        for (n, data, _) in events {
            assert_eq!(
                publish(address, "news", data).await,
                format!(r#"{{"id":"0000000000000000-{n}"}}"#),
                "{name}"
            );
        }
        for subscriber in [&mut first, &mut second] {
            for (n, _, escaped) in events {
                assert_eq!(
                    subscriber.next_line().await,
                    envelope_line(n, escaped),
                    "{name}"
                );
            }
        }
        for (n, data, _) in events {
            assert_eq!(
                sse.next_block().await,
                format!("id: 0000000000000000-{n}\ndata: {data}\n\n"),
                "{name}"
            );
        }
    }
}

/// The baselines that serve h2c, and the paths the fan-out reads there.
const H2C_BASELINES: [Baseline; 2] = [Baseline::AxumSse, Baseline::HyperStream];

/// The text of the next chunks of `body` until `expected` bytes came.
async fn h2c_text(body: &mut h2c::Body, expected: usize) -> String {
    let mut text = Vec::new();
    while text.len() < expected {
        let chunk = tokio::time::timeout(STEP, body.next_chunk())
            .await
            .expect("no chunk within the step")
            .unwrap()
            .expect("the stream ended");
        text.extend_from_slice(&chunk);
    }
    String::from_utf8(text).unwrap()
}

#[tokio::test]
async fn sse_and_ndjson_over_h2c_are_framed_as_over_http1() {
    for baseline in H2C_BASELINES {
        let name = baseline.name();
        let address = start(baseline).await;
        let mut connection = tokio::time::timeout(STEP, h2c::Connection::open(address))
            .await
            .unwrap()
            .unwrap();
        let mut streams = Vec::new();
        for _ in 0..2 {
            streams.push(connection.get("/channels/news/sse").await.unwrap());
            streams.push(connection.get("/channels/news/stream").await.unwrap());
        }
        let sse_position = "id: 0000000000000000-0\n\n";
        let ndjson_position = format!("{}\n", position_signal(0));
        for (n, stream) in streams.iter_mut().enumerate() {
            let expected = if n % 2 == 0 {
                sse_position
            } else {
                &ndjson_position
            };
            assert_eq!(h2c_text(stream, expected.len()).await, expected, "{name}");
        }
        for (n, data) in [(1, "one"), (2, "two")] {
            let id = connection.publish("news", Bytes::from(data)).await.unwrap();
            assert_eq!(id, format!("0000000000000000-{n}"), "{name}");
        }
        for (n, stream) in streams.iter_mut().enumerate() {
            let expected = if n % 2 == 0 {
                "id: 0000000000000000-1\ndata: one\n\nid: 0000000000000000-2\ndata: two\n\n"
                    .to_owned()
            } else {
                envelope_line(1, "one") + &envelope_line(2, "two")
            };
            assert_eq!(h2c_text(stream, expected.len()).await, expected, "{name}");
        }
    }
}

/// How a test request travels.
#[derive(Debug, Clone, Copy)]
enum Protocol {
    Http1,
    H2c,
}

/// Sends one request over `protocol` on a connection of its own and
/// returns the answer's head, its body still to be read.
async fn request_over(
    protocol: Protocol,
    address: SocketAddr,
    method: Method,
    path: &str,
    body: &str,
) -> Response<Incoming> {
    let stream = tokio::time::timeout(STEP, TcpStream::connect(address))
        .await
        .unwrap()
        .unwrap();
    match protocol {
        Protocol::Http1 => request_on(stream, address, method, path, body).await,
        Protocol::H2c => {
            let exchange = async {
                let (mut sender, connection) = hyper::client::conn::http2::handshake(
                    TokioExecutor::new(),
                    TokioIo::new(stream),
                )
                .await
                .unwrap();
                tokio::spawn(async move {
                    let _ = connection.await;
                });
                let request = Request::builder()
                    .method(method)
                    .uri(format!("http://{address}{path}"))
                    .body(Full::new(Bytes::from(body.to_owned())))
                    .unwrap();
                sender.send_request(request).await.unwrap()
            };
            tokio::time::timeout(STEP, exchange)
                .await
                .unwrap_or_else(|_| panic!("no answer to {path} over h2c within {STEP:?}"))
        }
    }
}

#[tokio::test]
async fn hyper_ok_answers_every_get_at_once_over_http1_and_h2c() {
    let address = start(Baseline::HyperOk).await;
    let mut published = 0;
    for protocol in [Protocol::Http1, Protocol::H2c] {
        for path in [
            // Held for 30 s by push; answered at once here.
            "/channels/news/longpoll?after=0000000000000000-0&timeout=30",
            "/channels/news/longpoll?timeout=0",
            "/",
            "/anything/else",
        ] {
            let response = request_over(protocol, address, Method::GET, path, "").await;
            assert_eq!(response.status(), StatusCode::OK, "{protocol:?} {path}");
            assert_eq!(response.headers()[CONTENT_TYPE], "application/json");
            assert_eq!(
                text(response).await,
                r#"{"messages":[],"cursor":"0000000000000000-0"}"#,
                "{protocol:?} {path}"
            );
        }
        for channel in ["news", "other"] {
            let response = request_over(
                protocol,
                address,
                Method::POST,
                &format!("/channels/{channel}"),
                "seq=00000000",
            )
            .await;
            assert_eq!(response.status(), StatusCode::CREATED, "{protocol:?}");
            assert_eq!(response.headers()[CONTENT_TYPE], "application/json");
            published += 1;
            assert_eq!(
                text(response).await,
                format!(r#"{{"id":"0000000000000000-{published}"}}"#),
                "ids count the server's publishes"
            );
        }
        for (method, path) in [
            (Method::POST, "/nothing"),
            (Method::POST, "/channels/a/b"),
            (Method::POST, "/channels/news/longpoll"),
            (Method::DELETE, "/channels/news"),
            (Method::PUT, "/channels/news"),
        ] {
            let response = request_over(protocol, address, method.clone(), path, "x").await;
            assert_eq!(
                response.status(),
                StatusCode::NOT_FOUND,
                "{protocol:?} {method} {path}"
            );
        }
    }
}

#[tokio::test]
async fn hyper_ok_keeps_connections_alive_and_refuses_large_publishes() {
    let address = start(Baseline::HyperOk).await;
    let mut connection = push_bench::http1::KeepAlive::new(address);
    for n in 1..=3 {
        let (status, body) = connection
            .request(Method::GET, "/channels/c/longpoll?timeout=30", Bytes::new())
            .await
            .unwrap();
        assert_eq!(status, StatusCode::OK);
        assert!(body.starts_with(br#"{"messages":[]"#));
        let (status, body) = connection
            .request(Method::POST, "/channels/c", Bytes::from_static(b"data"))
            .await
            .unwrap();
        assert_eq!(status, StatusCode::CREATED);
        assert_eq!(body, format!(r#"{{"id":"0000000000000000-{n}"}}"#));
    }
    assert_eq!(connection.connections_opened(), 1);
    let too_large = "x".repeat(baseline::MAX_PUBLISH_BYTES + 1);
    let response = request(address, Method::POST, "/channels/c", &too_large).await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn the_raw_writer_and_tungstenite_default_do_not_speak_h2c() {
    for baseline in [Baseline::RawWriter, Baseline::TungsteniteDefault] {
        let address = start(baseline).await;
        let served = tokio::time::timeout(STEP, async {
            let mut connection = h2c::Connection::open(address).await?;
            connection.publish("news", Bytes::from("x")).await
        })
        .await
        .expect("no answer within the step");
        assert!(served.is_err(), "{}: {served:?}", baseline.name());
        assert!(!baseline.serves_h2c());
    }
}

/// The next WebSocket message, as text.
async fn next_message(messages: &mut ws::Messages) -> String {
    let message = tokio::time::timeout(STEP, messages.next_message())
        .await
        .expect("no message within the step")
        .unwrap()
        .expect("the socket closed");
    String::from_utf8(message.to_vec()).unwrap()
}

#[tokio::test]
async fn websocket_subscribers_get_every_event_framed_as_push_frames_it() {
    let address = start(Baseline::TungsteniteDefault).await;
    let path = "/channels/news/ws";
    let mut first = ws::stream(address, path).await.unwrap();
    let mut second = ws::stream(address, path).await.unwrap();
    let mut other = ws::stream(address, "/channels/other/ws").await.unwrap();
    for subscriber in [&mut first, &mut second, &mut other] {
        assert_eq!(next_message(subscriber).await, position_signal(0));
    }
    let events = [
        (1, "one", "one"),
        (2, "two", "two"),
        (3, "a\nb \"c\"", r#"a\nb \"c\""#),
    ];
    for (n, data, _) in events {
        assert_eq!(
            publish(address, "news", data).await,
            format!(r#"{{"id":"0000000000000000-{n}"}}"#)
        );
    }
    assert_eq!(
        publish(address, "other", "first").await,
        r#"{"id":"0000000000000000-1"}"#
    );
    for subscriber in [&mut first, &mut second] {
        for (n, _, escaped) in events {
            let line = envelope_line(n, escaped);
            assert_eq!(next_message(subscriber).await, line.trim_end());
        }
    }
    assert_eq!(
        next_message(&mut other).await,
        envelope_line(1, "first").trim_end()
    );
    // A later subscriber starts at the last event.
    let mut later = ws::stream(address, path).await.unwrap();
    assert_eq!(next_message(&mut later).await, position_signal(3));
}

#[tokio::test]
async fn tungstenite_default_refuses_what_it_does_not_serve() {
    let address = start(Baseline::TungsteniteDefault).await;
    for path in [
        "/channels/news/sse",
        "/channels/news",
        "/nothing",
        "/channels//ws",
    ] {
        let error = tokio::time::timeout(STEP, ws::stream(address, path))
            .await
            .unwrap()
            .unwrap_err()
            .to_string();
        assert!(error.contains("404"), "{path}: {error}");
    }
    for (method, path) in [
        (Method::POST, "/channels/news/ws"),
        (Method::POST, "/channels/a/b"),
        (Method::PUT, "/channels/news"),
    ] {
        let response = request(address, method.clone(), path, "data").await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{method} {path}");
    }
}

#[tokio::test]
async fn hyper_held_holds_every_get_until_the_next_publish() {
    let address = start(Baseline::HyperHeld).await;
    for protocol in [Protocol::Http1, Protocol::H2c] {
        let path = "/channels/news/longpoll?after=0000000000000000-0&timeout=30";
        let held = tokio::spawn(request_over(protocol, address, Method::GET, path, ""));
        // Still held well after an answer at once would have come.
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            !held.is_finished(),
            "{protocol:?}: answered before a publish"
        );
        let response = request_over(
            protocol,
            address,
            Method::POST,
            "/channels/news",
            "seq=00000000",
        )
        .await;
        assert_eq!(response.status(), StatusCode::CREATED, "{protocol:?}");
        let response = tokio::time::timeout(Duration::from_secs(10), held)
            .await
            .expect("answered once published")
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{protocol:?}");
        assert_eq!(
            text(response).await,
            r#"{"messages":[],"cursor":"0000000000000000-0"}"#
        );
        // As with push, `timeout=0` answers at once.
        let response = tokio::time::timeout(
            Duration::from_secs(10),
            request_over(
                protocol,
                address,
                Method::GET,
                "/channels/news/longpoll?timeout=0",
                "",
            ),
        )
        .await
        .expect("answered at once");
        assert_eq!(response.status(), StatusCode::OK, "{protocol:?}");
    }
}
