//! The baselines over real sockets: each is served in-process on
//! 127.0.0.1, port 0, and driven by a plain HTTP/1.1 client (hyper's), the
//! way the fan-out load drives push-server: two subscribers, three
//! publishes, every event at both subscribers in order, and `404` for
//! anything else. `hyper-stream`'s NDJSON route, and `hyper-ok` over
//! HTTP/1.1 and h2c, the way the long-poll load drives it.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE, HOST};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use push_bench::baseline::{self, Baseline};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

/// How long any one step may take before the test fails.
const STEP: Duration = Duration::from_secs(10);

const SSE_BASELINES: [Baseline; 3] = [
    Baseline::AxumSse,
    Baseline::RawWriter,
    Baseline::HyperStream,
];

/// Serves `baseline` on the test's runtime; its address.
async fn start(baseline: Baseline) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        if let Err(error) = baseline::run(baseline, listener).await {
            panic!("{} stopped: {error}", baseline.name());
        }
    });
    address
}

/// Sends one request on a connection of its own and returns the answer's
/// head, its body still to be read.
async fn request(
    address: SocketAddr,
    method: Method,
    path: &str,
    body: &str,
) -> Response<Incoming> {
    let stream = tokio::time::timeout(STEP, TcpStream::connect(address))
        .await
        .unwrap()
        .unwrap();
    request_on(stream, address, method, path, body).await
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
        let response = request_on(stream, address, Method::GET, &path, "").await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()[CONTENT_TYPE], "text/event-stream");
        assert_eq!(response.headers()[CACHE_CONTROL], "no-cache");
        Subscriber {
            body: response.into_body(),
            received: Vec::new(),
        }
    }

    /// The next block (up to and with its blank line), skipping comments
    /// (keep-alives).
    async fn next_block(&mut self) -> String {
        loop {
            if let Some(end) = self.received.windows(2).position(|w| w == b"\n\n") {
                let block: Vec<u8> = self.received.drain(..end + 2).collect();
                if block.starts_with(b":") {
                    continue;
                }
                return String::from_utf8(block).unwrap();
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
    for baseline in SSE_BASELINES {
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

/// An NDJSON stream, read a line at a time.
struct Lines {
    body: Incoming,
    received: Vec<u8>,
}

impl Lines {
    async fn next_line(&mut self) -> String {
        loop {
            if let Some(end) = self.received.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.received.drain(..=end).collect();
                return String::from_utf8(line).unwrap();
            }
            let frame = tokio::time::timeout(STEP, self.body.frame())
                .await
                .expect("no line within the step")
                .expect("the stream ended")
                .unwrap();
            if let Ok(data) = frame.into_data() {
                self.received.extend_from_slice(&data);
            }
        }
    }
}

#[tokio::test]
async fn hyper_stream_streams_ndjson_with_the_ids_of_sse() {
    let address = start(Baseline::HyperStream).await;
    publish(address, "news", "before").await;
    let response = request(address, Method::GET, "/channels/news/stream", "").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[CONTENT_TYPE], "application/x-ndjson");
    assert_eq!(response.headers()[CACHE_CONTROL], "no-cache");
    let mut ndjson = Lines {
        body: response.into_body(),
        received: Vec::new(),
    };
    let mut sse = Subscriber::new(address, "news").await;
    assert_eq!(
        ndjson.next_line().await,
        "{\"signal\":\"position\",\"cursor\":\"0000000000000000-1\"}\n"
    );
    assert_eq!(sse.next_block().await, "id: 0000000000000000-1\n\n");
    publish(address, "news", "two").await;
    publish(address, "news", "say \"three\"\nfour").await;
    assert_eq!(
        ndjson.next_line().await,
        "{\"id\":\"0000000000000000-2\",\"data\":\"two\"}\n"
    );
    assert_eq!(
        ndjson.next_line().await,
        "{\"id\":\"0000000000000000-3\",\"data\":\"say \\\"three\\\"\\nfour\"}\n"
    );
    assert_eq!(
        sse.next_block().await,
        "id: 0000000000000000-2\ndata: two\n\n"
    );
    assert_eq!(
        sse.next_block().await,
        "id: 0000000000000000-3\ndata: say \"three\"\ndata: four\n\n"
    );
    for (method, path) in [
        (Method::POST, "/channels/news/stream"),
        (Method::GET, "/channels/a/b/stream"),
        (Method::GET, "/channels//stream"),
    ] {
        let response = request(address, method.clone(), path, "").await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{method} {path}");
    }
}
