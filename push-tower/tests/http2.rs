//! `serve`'s own HTTP/2 loop, read by a raw `h2` client: server push with
//! its promises, fallback and bounds; flow control both ways; resets; header
//! limits; keep-alive pings; `GOAWAY` on shutdown.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use conformance::Protocol;
use h2::client::{PushPromises, ResponseFuture, SendRequest};
use h2::RecvStream;
use http::{Method, Request, Response, StatusCode};
use push_core::Limits;
use push_tower::Config;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use support::{publish, publish_with, test_limits, wait_for_info, TestServer, TIMEOUT};

/// A raw h2 client connection; `push` sets `SETTINGS_ENABLE_PUSH`.
async fn connect(addr: SocketAddr, push: bool, window: Option<u32>) -> SendRequest<Bytes> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let mut builder = h2::client::Builder::new();
    builder.enable_push(push);
    if let Some(window) = window {
        builder.initial_window_size(window);
    }
    let (client, connection) = builder.handshake::<_, Bytes>(tcp).await.unwrap();
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client.ready().await.unwrap()
}

fn get(addr: SocketAddr, path: &str) -> Request<()> {
    Request::get(format!("http://{addr}{path}"))
        .body(())
        .unwrap()
}

/// Sends `request` without a body; the response future and its promises.
fn send(client: &mut SendRequest<Bytes>, request: Request<()>) -> (ResponseFuture, PushPromises) {
    let (mut response, _) = client.send_request(request, true).unwrap();
    let promises = response.push_promises();
    (response, promises)
}

async fn within<F: std::future::Future>(future: F) -> F::Output {
    tokio::time::timeout(TIMEOUT, future)
        .await
        .expect("no answer in time")
}

/// Reads a body to its end, giving the window back as it goes.
async fn read_all(mut body: RecvStream) -> Bytes {
    let mut all = BytesMut::new();
    while let Some(chunk) = within(body.data()).await {
        let chunk = chunk.unwrap();
        let _ = body.flow_control().release_capacity(chunk.len());
        all.extend_from_slice(&chunk);
    }
    all.freeze()
}

/// The parent stream's lines, read as needed.
struct Lines {
    body: RecvStream,
    buffer: BytesMut,
}

impl Lines {
    fn new(response: Response<RecvStream>) -> Self {
        Lines {
            body: response.into_body(),
            buffer: BytesMut::new(),
        }
    }

    /// The next non-empty line, or `None` at the end of the stream.
    async fn next(&mut self) -> Option<String> {
        loop {
            if let Some(at) = self.buffer.iter().position(|&b| b == b'\n') {
                let line = self.buffer.split_to(at + 1);
                if line.len() > 1 {
                    return Some(String::from_utf8(line[..at].to_vec()).unwrap());
                }
                continue;
            }
            let chunk = within(self.body.data()).await?.unwrap();
            let _ = self.body.flow_control().release_capacity(chunk.len());
            self.buffer.extend_from_slice(&chunk);
        }
    }

    async fn signal(&mut self) -> (String, String) {
        let line = self.next().await.expect("a signal line");
        let json: serde_json::Value = serde_json::from_str(&line).unwrap();
        (
            json["signal"]
                .as_str()
                .unwrap_or_else(|| panic!("not a signal: {line}"))
                .to_owned(),
            json["cursor"].as_str().unwrap().to_owned(),
        )
    }
}

async fn plain_get(client: &mut SendRequest<Bytes>, uri: &http::Uri) -> Response<Bytes> {
    let request = Request::get(uri.clone()).body(()).unwrap();
    let (response, _) = send(client, request);
    let response = within(response).await.unwrap();
    let (head, body) = response.into_parts();
    Response::from_parts(head, read_all(body).await)
}

/// The connection still answers a new request.
async fn assert_serves_on(client: &mut SendRequest<Bytes>, addr: SocketAddr) {
    let health = plain_get(client, &format!("http://{addr}/healthz").parse().unwrap()).await;
    assert_eq!(health.status(), StatusCode::OK);
}

#[tokio::test]
async fn each_event_is_pushed_as_exactly_what_a_plain_get_answers() {
    let server = TestServer::start().await;
    let http = server.http(Protocol::Http1);
    let ids = vec![
        publish(&http, "news", "one").await,
        publish_with(
            &http,
            "news",
            Some("greeting"),
            "text/plain",
            "two\nlines".into(),
        )
        .await,
        publish_with(
            &http,
            "news",
            None,
            "application/octet-stream",
            vec![0u8, 255].into(),
        )
        .await,
    ];
    let mut client = connect(server.addr, true, None).await;
    let (response, mut promises) = send(
        &mut client,
        get(server.addr, "/channels/news/push?from=earliest"),
    );
    let response = within(response).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["push-mode"], "promise");
    assert_eq!(response.headers()["content-type"], "application/x-ndjson");
    let mut parent = Lines::new(response);
    assert_eq!(parent.signal().await.0, "position");

    for id in &ids {
        let promise = within(promises.push_promise()).await.unwrap().unwrap();
        let (request, pushed) = promise.into_parts();
        assert_eq!(request.method(), Method::GET);
        assert_eq!(
            request.uri().path(),
            format!("/channels/news/messages/{id}")
        );
        assert_eq!(
            request.uri().authority().unwrap().as_str(),
            server.addr.to_string()
        );
        let pushed = within(pushed).await.unwrap();
        let (head, body) = pushed.into_parts();
        let body = read_all(body).await;
        let plain = plain_get(&mut client, request.uri()).await;
        assert_eq!(head.status, StatusCode::OK);
        assert_eq!(plain.status(), StatusCode::OK);
        for name in ["content-type", "cache-control", "content-length"] {
            assert_eq!(head.headers[name], plain.headers()[name], "{name}");
        }
        assert_eq!(&body, plain.body(), "the pushed body is the plain GET's");
    }

    // A live event is promised too, and the close comes after it.
    let live = publish(&http, "news", "four").await;
    let (request, _) = within(promises.push_promise())
        .await
        .unwrap()
        .unwrap()
        .into_parts();
    assert_eq!(
        request.uri().path(),
        format!("/channels/news/messages/{live}")
    );
    support::delete(&http, "news").await;
    assert_eq!(parent.signal().await, ("closed".to_owned(), live));
    assert_eq!(parent.next().await, None);
}

#[tokio::test]
async fn a_client_that_disables_push_gets_the_envelopes_inline_as_on_stream() {
    let server = TestServer::start().await;
    let http = server.http(Protocol::Http1);
    publish(&http, "news", "one").await;
    publish_with(
        &http,
        "news",
        None,
        "application/octet-stream",
        vec![1u8].into(),
    )
    .await;
    let mut client = connect(server.addr, false, None).await;

    let (response, _) = send(
        &mut client,
        get(server.addr, "/channels/news/push?from=earliest"),
    );
    let response = within(response).await.unwrap();
    assert_eq!(response.headers()["push-mode"], "inline");
    let mut push = Lines::new(response);
    let (response, _) = send(
        &mut client,
        get(server.addr, "/channels/news/stream?from=earliest"),
    );
    let mut stream = Lines::new(within(response).await.unwrap());
    for _ in 0..3 {
        assert_eq!(push.next().await, stream.next().await);
    }
}

#[tokio::test]
async fn resetting_pushed_streams_or_the_parent_leaves_nothing_held() {
    let server = TestServer::start().await;
    let http = server.http(Protocol::Http1);
    // 100-byte windows: a push stays in flight until its body is read or
    // its stream reset.
    let mut client = connect(server.addr, true, Some(100)).await;
    let (response, mut promises) = send(&mut client, get(server.addr, "/channels/news/push"));
    let mut parent = Lines::new(within(response).await.unwrap());
    assert_eq!(parent.signal().await.0, "position");
    wait_for_info(&http, "news", |info| info["subscribers"] == 1).await;

    // Declining pushes (dropping them resets their streams) frees their
    // room: far more than 16 are promised, and the parent goes on.
    let text = "y".repeat(500);
    for _ in 0..40 {
        publish(&http, "news", &text).await;
    }
    for _ in 0..40 {
        let promise = within(promises.push_promise()).await.unwrap().unwrap();
        drop(promise);
    }
    let last = publish(&http, "news", "after").await;
    let (request, _) = within(promises.push_promise())
        .await
        .unwrap()
        .unwrap()
        .into_parts();
    assert!(request.uri().path().ends_with(&last));

    // Resetting the parent ends the subscription.
    drop(parent);
    drop(promises);
    wait_for_info(&http, "news", |info| info["subscribers"] == 0).await;
    // The connection serves on.
    assert_serves_on(&mut client, server.addr).await;
}

#[tokio::test]
async fn a_client_with_a_tiny_window_is_lagged_not_buffered_for() {
    let bound = 16 * 1024;
    let limits = Limits {
        subscriber_buffer_bytes: bound,
        max_event_bytes: 4096,
        ..test_limits()
    };
    let server = TestServer::with(limits, Config::default()).await;
    let http = server.http(Protocol::Http1);
    // 100-byte stream windows: each pushed body waits for the client.
    let mut client = connect(server.addr, true, Some(100)).await;
    let (response, mut promises) = send(&mut client, get(server.addr, "/channels/news/push"));
    let mut parent = Lines::new(within(response).await.unwrap());
    assert_eq!(parent.signal().await.0, "position");

    // Pushed bodies are not read meanwhile: pushes stall, and what waits
    // stays within the subscriber's bound.
    let text = "x".repeat(500);
    for _ in 0..200 {
        publish(&http, "news", &text).await;
    }
    let info = wait_for_info(&http, "news", |info| info["subscribers"] == 1).await;
    assert!(
        info["buffered_bytes"].as_u64().unwrap() <= bound as u64,
        "held beyond the bound: {info}"
    );

    // Reading again, the client gets what was promised, then `lagged`.
    let reader = tokio::spawn(async move {
        let mut promised = 0;
        while let Some(promise) = within(promises.push_promise()).await {
            let (_, pushed) = promise.unwrap().into_parts();
            read_all(within(pushed).await.unwrap().into_body()).await;
            promised += 1;
        }
        promised
    });
    let (signal, cursor) = parent.signal().await;
    assert_eq!(signal, "lagged");
    assert_eq!(parent.next().await, None);
    let promised = within(reader).await.unwrap();
    assert!(
        (1..200).contains(&promised),
        "{promised} promises: pushes wait while bodies are not taken"
    );
    assert!(
        cursor.ends_with(&format!("-{promised}")),
        "lagged at {cursor} after {promised} promises"
    );
    wait_for_info(&http, "news", |info| info["subscribers"] == 0).await;
}

#[tokio::test]
async fn request_bodies_flow_past_the_initial_window_under_the_announced_limits() {
    let server = TestServer::start().await;
    let mut client = connect(server.addr, false, None).await;
    // Four times HTTP/2's default 64 KiB window: the server must give
    // capacity back as it reads.
    let body = Bytes::from(vec![b'a'; 256 * 1024]);
    let request = Request::post(format!("http://{}/channels/big", server.addr))
        .header("content-type", "text/plain")
        .body(())
        .unwrap();
    let (response, mut upload) = client.send_request(request, false).unwrap();
    let mut remaining = body.clone();
    while !remaining.is_empty() {
        upload.reserve_capacity(remaining.len());
        let capacity = within(std::future::poll_fn(|cx| upload.poll_capacity(cx)))
            .await
            .unwrap()
            .unwrap();
        let chunk = remaining.split_to(capacity.min(remaining.len()));
        upload.send_data(chunk, remaining.is_empty()).unwrap();
    }
    let response = within(response).await.unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    // The server's SETTINGS came first: a subscription per stream, many.
    assert_eq!(
        client.current_max_send_streams(),
        push_tower::serve::MAX_CONCURRENT_STREAMS as usize
    );
    let answer: serde_json::Value =
        serde_json::from_slice(&read_all(response.into_body()).await).unwrap();
    let id = answer["id"].as_str().unwrap();
    let message = plain_get(
        &mut client,
        &format!("http://{}/channels/big/messages/{id}", server.addr)
            .parse()
            .unwrap(),
    )
    .await;
    let envelope: serde_json::Value = serde_json::from_slice(message.body()).unwrap();
    assert_eq!(envelope["data"].as_str().unwrap().len(), body.len());
}

#[tokio::test]
async fn oversized_headers_are_refused_and_the_connection_serves_on() {
    let server = TestServer::start().await;
    let mut client = connect(server.addr, false, None).await;
    let request = Request::get(format!("http://{}/healthz", server.addr))
        .header("x-big", "b".repeat(32 * 1024))
        .body(())
        .unwrap();
    let (response, _) = send(&mut client, request);
    match within(response).await {
        Ok(response) => assert_eq!(
            response.status(),
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
        ),
        Err(error) => assert!(error.is_reset(), "{error}"),
    }
    assert_serves_on(&mut client, server.addr).await;
}

#[tokio::test]
async fn a_reset_request_drops_its_held_long_poll() {
    let server = TestServer::start().await;
    let http = server.http(Protocol::Http1);
    let mut client = connect(server.addr, false, None).await;
    let (response, _) = send(
        &mut client,
        get(server.addr, "/channels/news/longpoll?timeout=30"),
    );
    wait_for_info(&http, "news", |info| info["subscribers"] == 1).await;
    drop(response);
    wait_for_info(&http, "news", |info| info["subscribers"] == 0).await;
}

#[tokio::test]
async fn a_client_that_never_answers_pings_is_dropped() {
    let push = push_tower::Push::new(
        push_core::Hub::new(push_core::HubConfig::default()),
        Config::default(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        push_tower::serve(listener, push.router())
            .http2_keep_alive(Some(Duration::from_millis(100)))
            .run(),
    );
    // A preface and empty SETTINGS, then silence: never a PING ACK.
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0")
        .await
        .unwrap();
    let mut received = Vec::new();
    // Returns (with the bytes, or a reset) only once the server has closed.
    let _ = within(tcp.read_to_end(&mut received)).await;
    // PING frames (length 8, type 6) came before the close.
    assert!(
        received.windows(4).any(|w| w == [0, 0, 8, 6]),
        "no PING was sent"
    );
}

#[tokio::test]
async fn shutdown_sends_goaway_and_ends_push_streams_with_the_shutdown_signal() {
    let server = TestServer::start().await;
    let http = server.http(Protocol::Http1);
    let id = publish(&http, "news", "one").await;
    let mut client = connect(server.addr, true, None).await;
    let (response, mut promises) = send(
        &mut client,
        get(server.addr, "/channels/news/push?from=earliest"),
    );
    let mut parent = Lines::new(within(response).await.unwrap());
    assert_eq!(parent.signal().await.0, "position");
    within(promises.push_promise()).await.unwrap().unwrap();

    let stopped = tokio::spawn(server.stop());
    assert_eq!(parent.signal().await, ("shutdown".to_owned(), id));
    assert_eq!(parent.next().await, None);
    within(stopped).await.unwrap();
    // After GOAWAY the connection takes no new streams.
    let refused = client.send_request(get("127.0.0.1:1".parse().unwrap(), "/healthz"), true);
    match refused {
        Err(_) => {}
        Ok((response, _)) => assert!(within(response).await.is_err()),
    }
}
