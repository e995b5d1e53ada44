//! WebSocket on real sockets, through third-party clients: tokio-tungstenite
//! over HTTP/1.1, and tungstenite over hyper's HTTP/2 extended CONNECT.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use conformance::OpenError;
use futures_util::{FutureExt, SinkExt, StreamExt};
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use push_core::Limits;
use push_tower::ws::close_code;
use push_tower::Config;
use serde_json::Value;
use support::{delete, publish, publish_with, test_limits, wait_for_info, TestServer, TIMEOUT};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::WebSocketStream;

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

type Socket = WebSocketStream<Box<dyn Io>>;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Version {
    Http1,
    Http2,
}

const VERSIONS: [Version; 2] = [Version::Http1, Version::Http2];

/// Opens `path` (with its query) as a WebSocket over `version`.
async fn connect(
    addr: SocketAddr,
    version: Version,
    path: &str,
    headers: &[(&str, &str)],
) -> Result<Socket, OpenError> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    tcp.set_nodelay(true).unwrap();
    match version {
        Version::Http1 => {
            let mut request = format!("ws://{addr}{path}").into_client_request().unwrap();
            for (name, value) in headers {
                let name = http::HeaderName::from_bytes(name.as_bytes()).unwrap();
                request.headers_mut().insert(name, value.parse().unwrap());
            }
            let io: Box<dyn Io> = Box::new(tcp);
            match tokio_tungstenite::client_async(request, io).await {
                Ok((socket, response)) => {
                    assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
                    Ok(socket)
                }
                Err(WsError::Http(response)) => Err(OpenError::refused(
                    response.status().as_u16(),
                    response.body().as_deref().unwrap_or_default(),
                )),
                Err(other) => panic!("handshake failed: {other}"),
            }
        }
        Version::Http2 => {
            let (mut send, connection) =
                hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
                    .await
                    .unwrap();
            // RFC 8441: no `:protocol` before the server's SETTINGS enable
            // it; hyper sets the flag without waking anyone, so look again.
            let mut connection = Box::pin(connection);
            let deadline = tokio::time::Instant::now() + TIMEOUT;
            while !connection.is_extended_connect_protocol_enabled() {
                assert!(connection.as_mut().now_or_never().is_none());
                assert!(tokio::time::Instant::now() < deadline, "no SETTINGS");
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            tokio::spawn(connection);
            let mut request = Request::builder()
                .method(Method::CONNECT)
                .uri(format!("http://{addr}{path}"))
                .header("sec-websocket-version", "13");
            for (name, value) in headers {
                request = request.header(*name, *value);
            }
            let mut request = request.body(Empty::<Bytes>::new()).unwrap();
            request
                .extensions_mut()
                .insert(hyper::ext::Protocol::from_static("websocket"));
            send.ready().await.unwrap();
            let response = send.send_request(request).await.unwrap();
            if response.status() != StatusCode::OK {
                let status = response.status();
                let body = response.into_body().collect().await.unwrap().to_bytes();
                return Err(OpenError::refused(status.as_u16(), &body));
            }
            let upgraded = hyper::upgrade::on(response).await.unwrap();
            let io: Box<dyn Io> = Box::new(TokioIo::new(upgraded));
            Ok(WebSocketStream::from_raw_socket(io, Role::Client, None).await)
        }
    }
}

async fn open(server: &TestServer, version: Version, path: &str) -> Socket {
    tokio::time::timeout(TIMEOUT, connect(server.addr, version, path, &[]))
        .await
        .expect("handshake timed out")
        .unwrap_or_else(|refused| panic!("{path} over {version:?} refused: {refused:?}"))
}

/// The next message that is not a ping or pong.
async fn next(socket: &mut Socket) -> Message {
    loop {
        let message = tokio::time::timeout(TIMEOUT, socket.next())
            .await
            .expect("timed out waiting for a message")
            .expect("the socket ended")
            .expect("the socket failed");
        if !matches!(message, Message::Ping(_) | Message::Pong(_)) {
            return message;
        }
    }
}

/// The next message as JSON; it must be text.
async fn next_json(socket: &mut Socket) -> Value {
    match next(socket).await {
        Message::Text(text) => serde_json::from_str(&text).unwrap(),
        other => panic!("expected a text message, got {other:?}"),
    }
}

async fn expect_signal(socket: &mut Socket, kind: &str) -> String {
    let message = next_json(socket).await;
    assert_eq!(message["signal"], kind, "{message}");
    message["cursor"].as_str().unwrap().to_owned()
}

/// Reads until the close frame; its code.
async fn close_code_of(socket: &mut Socket) -> u16 {
    match next(socket).await {
        Message::Close(Some(frame)) => u16::from(frame.code),
        other => panic!("expected a close frame, got {other:?}"),
    }
}

/// The data of an envelope, decoded.
fn data(envelope: &Value) -> Vec<u8> {
    let data = envelope["data"].as_str().unwrap();
    if envelope["encoding"] == "base64" {
        base64::engine::general_purpose::STANDARD
            .decode(data)
            .unwrap()
    } else {
        data.as_bytes().to_vec()
    }
}

#[tokio::test]
async fn position_first_then_byte_exact_text_and_binary_on_both_versions() {
    let server = TestServer::start().await;
    let http = server.http(conformance::Protocol::Http1);
    for version in VERSIONS {
        let channel = format!("exact-{version:?}");
        let mut socket = open(&server, version, &format!("/channels/{channel}/ws")).await;
        let position = expect_signal(&mut socket, "position").await;
        assert!(position.ends_with("-0"), "{position}");

        let texts = [
            "",
            "a\nb",
            "crlf\r\nend",
            "lone\rcr",
            "nul\0byte",
            "héllo ✓ 𝄞",
        ];
        let mut ids = Vec::new();
        for text in texts {
            ids.push(publish(&http, &channel, text).await);
        }
        let binary: Vec<u8> = (0..=255u8).chain([0, 0xff, 0xfe]).collect();
        ids.push(
            publish_with(
                &http,
                &channel,
                Some("blob"),
                "application/octet-stream",
                Bytes::from(binary.clone()),
            )
            .await,
        );
        let large = "x".repeat(1 << 20);
        ids.push(publish(&http, &channel, &large).await);

        for (i, text) in texts.iter().enumerate() {
            let envelope = next_json(&mut socket).await;
            assert_eq!(envelope["id"], ids[i].as_str());
            assert!(envelope.get("event").is_none());
            assert_eq!(data(&envelope), text.as_bytes(), "{version:?} {text:?}");
        }
        let envelope = next_json(&mut socket).await;
        assert_eq!(envelope["event"], "blob");
        assert_eq!(envelope["encoding"], "base64");
        assert_eq!(data(&envelope), binary);
        let envelope = next_json(&mut socket).await;
        assert_eq!(data(&envelope).len(), 1 << 20);
        assert_eq!(envelope["id"], ids[ids.len() - 1].as_str());
    }
    server.stop().await;
}

#[tokio::test]
async fn resume_with_after_then_live_events() {
    let server = TestServer::start().await;
    let http = server.http(conformance::Protocol::Http1);
    for version in VERSIONS {
        let channel = format!("resume-{version:?}");
        let first = publish(&http, &channel, "one").await;
        let second = publish(&http, &channel, "two").await;
        let third = publish(&http, &channel, "three").await;
        let path = format!("/channels/{channel}/ws?after={first}");
        let mut socket = open(&server, version, &path).await;
        assert_eq!(expect_signal(&mut socket, "position").await, first);
        assert_eq!(next_json(&mut socket).await["id"], second.as_str());
        assert_eq!(next_json(&mut socket).await["id"], third.as_str());
        let live = publish(&http, &channel, "four").await;
        let envelope = next_json(&mut socket).await;
        assert_eq!(envelope["id"], live.as_str());
        assert_eq!(envelope["data"], "four");

        // Last-Event-ID works too, and wins over the query.
        let socket = connect(
            server.addr,
            version,
            &format!("/channels/{channel}/ws?from=earliest"),
            &[("last-event-id", &third)],
        )
        .await;
        let mut socket = socket.unwrap();
        assert_eq!(expect_signal(&mut socket, "position").await, third);
        assert_eq!(next_json(&mut socket).await["id"], live.as_str());
    }
    server.stop().await;
}

#[tokio::test]
async fn refusals_are_json_errors_before_any_upgrade() {
    let server = TestServer::start().await;
    let http = server.http(conformance::Protocol::Http1);
    let head = publish(&http, "refused", "x").await;
    let epoch = head.split('-').next().unwrap().to_owned();
    for version in VERSIONS {
        for (path, status, code) in [
            ("/channels/refused/ws?after=bogus", 400, "bad_cursor"),
            ("/channels/refused/ws?after=", 400, "bad_cursor"),
            (
                &format!("/channels/refused/ws?after={epoch}-99") as &str,
                400,
                "cursor_ahead",
            ),
            ("/channels/bad%20name/ws", 400, "bad_channel"),
        ] {
            let Err(refused) = connect(server.addr, version, path, &[]).await else {
                panic!("{path} over {version:?} was accepted");
            };
            let expected = OpenError::Refused {
                status,
                code: Some(code.to_owned()),
            };
            assert_eq!(refused, expected, "{version:?} {path}");
        }
    }
    // A plain request is told to upgrade, on both versions.
    for protocol in support::PROTOCOLS {
        let answer = server
            .http(protocol)
            .get("/channels/refused/ws")
            .await
            .unwrap();
        assert_eq!(answer.status, 426, "{protocol}");
        assert_eq!(answer.error_code().as_deref(), Some("upgrade_required"));
        assert_eq!(answer.headers["sec-websocket-version"], "13");
        let answer = server
            .http(protocol)
            .fetch(Method::POST, "/channels/refused/ws", &[], Bytes::new())
            .await
            .unwrap();
        assert_eq!(answer.status, 405);
        assert_eq!(answer.headers["allow"], "GET, CONNECT");
    }
    // A handshake without a valid key.
    let mut tcp = TcpStream::connect(server.addr).await.unwrap();
    tcp.write_all(
        b"GET /channels/refused/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: nope\r\n\r\n",
    )
    .await
    .unwrap();
    let mut answer = vec![0; 4096];
    let n = tokio::time::timeout(TIMEOUT, tcp.read(&mut answer))
        .await
        .unwrap()
        .unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("\"error\":\"bad_handshake\""), "{answer}");

    // A draining server refuses new sockets.
    server.push.shutdown();
    for version in VERSIONS {
        let Err(refused) = connect(server.addr, version, "/channels/refused/ws", &[]).await else {
            panic!("accepted while draining");
        };
        let expected = OpenError::Refused {
            status: 503,
            code: Some("shutting_down".to_owned()),
        };
        assert_eq!(refused, expected);
    }
}

#[tokio::test]
async fn delete_sends_closed_then_1000() {
    let server = TestServer::start().await;
    let http = server.http(conformance::Protocol::Http1);
    for version in VERSIONS {
        let channel = format!("deleted-{version:?}");
        let mut socket = open(&server, version, &format!("/channels/{channel}/ws")).await;
        expect_signal(&mut socket, "position").await;
        let last = publish(&http, &channel, "last").await;
        assert_eq!(next_json(&mut socket).await["id"], last.as_str());
        delete(&http, &channel).await;
        assert_eq!(expect_signal(&mut socket, "closed").await, last);
        assert_eq!(close_code_of(&mut socket).await, close_code::CLOSED);
    }
    server.stop().await;
}

#[tokio::test]
async fn graceful_shutdown_sends_shutdown_then_1001() {
    let server = TestServer::start().await;
    let http = server.http(conformance::Protocol::Http1);
    let mut sockets = Vec::new();
    for version in VERSIONS {
        let mut socket = open(&server, version, "/channels/draining/ws").await;
        expect_signal(&mut socket, "position").await;
        sockets.push(socket);
    }
    let last = publish(&http, "draining", "before the drain").await;
    for socket in &mut sockets {
        assert_eq!(next_json(socket).await["id"], last.as_str());
    }
    // The server waits for the sockets' closing handshakes, which the
    // clients answer while the server stops.
    let readers = sockets.into_iter().map(|mut socket| {
        let last = last.clone();
        tokio::spawn(async move {
            assert_eq!(expect_signal(&mut socket, "shutdown").await, last);
            assert_eq!(close_code_of(&mut socket).await, close_code::SHUTDOWN);
            // The client's answer to the close; then the socket ends.
            assert!(socket.next().await.is_none_or(|end| end.is_err()));
        })
    });
    let readers: Vec<_> = readers.collect();
    tokio::time::timeout(TIMEOUT, server.stop()).await.unwrap();
    for reader in readers {
        reader.await.unwrap();
    }
}

#[tokio::test]
async fn idle_sockets_get_pings_and_client_pings_are_answered() {
    let server = TestServer::start().await;
    for version in VERSIONS {
        let mut socket = open(&server, version, "/channels/idle/ws").await;
        expect_signal(&mut socket, "position").await;
        // Heartbeats: pings within the interval (400 ms here), never data.
        let mut pings = 0;
        while pings < 2 {
            match tokio::time::timeout(Duration::from_secs(2), socket.next()).await {
                Ok(Some(Ok(Message::Ping(payload)))) => {
                    assert!(payload.is_empty());
                    pings += 1;
                }
                other => panic!("expected a ping, got {other:?}"),
            }
        }
        socket
            .send(Message::Ping(Bytes::from_static(b"are you there")))
            .await
            .unwrap();
        loop {
            match next_any(&mut socket).await {
                Message::Pong(payload) => {
                    assert_eq!(payload, "are you there");
                    break;
                }
                Message::Ping(_) => {}
                other => panic!("expected a pong, got {other:?}"),
            }
        }
        // Still delivering after all that.
        let http = server.http(conformance::Protocol::Http1);
        let id = publish(&http, "idle", "still here").await;
        assert_eq!(next_json(&mut socket).await["id"], id.as_str());
    }
    server.stop().await;
}

async fn next_any(socket: &mut Socket) -> Message {
    tokio::time::timeout(TIMEOUT, socket.next())
        .await
        .expect("timed out")
        .expect("ended")
        .expect("failed")
}

#[tokio::test]
async fn a_client_that_never_answers_pings_is_disconnected() {
    let server = TestServer::start().await;
    let mut tcp = TcpStream::connect(server.addr).await.unwrap();
    tcp.write_all(
        b"GET /channels/silent/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    )
    .await
    .unwrap();
    // Read raw bytes, never answering the pings, until the server hangs up:
    // two heartbeat intervals (400 ms each) and some.
    let mut received = Vec::new();
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        let mut buffer = [0u8; 1024];
        loop {
            match tcp.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(n) => received.extend_from_slice(&buffer[..n]),
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the server kept a silent client");
    let text = String::from_utf8_lossy(&received);
    assert!(text.starts_with("HTTP/1.1 101"), "{text}");
    // At least one ping (0x89) went out before the hang-up.
    assert!(received.windows(2).any(|w| w == [0x89, 0x00]), "{text}");
}

#[tokio::test]
async fn what_the_client_sends_wrong_gets_its_close_code() {
    let server = TestServer::start().await;
    for version in VERSIONS {
        // A data message: this socket only delivers.
        let mut socket = open(&server, version, "/channels/inbound/ws").await;
        expect_signal(&mut socket, "position").await;
        socket.send(Message::text("publish me")).await.unwrap();
        assert_eq!(
            close_code_of(&mut socket).await,
            close_code::DATA_FROM_CLIENT
        );

        // A text message that is not UTF-8.
        let mut socket = open(&server, version, "/channels/inbound/ws").await;
        expect_signal(&mut socket, "position").await;
        let frame = Frame::message(vec![0xff, 0xfe, 0xfd], OpCode::Data(Data::Text), true);
        socket.send(Message::Frame(frame)).await.unwrap();
        assert_eq!(close_code_of(&mut socket).await, close_code::BAD_UTF8);

        // A message over the inbound limit.
        let mut socket = open(&server, version, "/channels/inbound/ws").await;
        expect_signal(&mut socket, "position").await;
        let big = vec![0u8; push_tower::ws::MAX_INBOUND_MESSAGE_BYTES + 1];
        socket.send(Message::binary(big)).await.unwrap();
        assert_eq!(close_code_of(&mut socket).await, close_code::TOO_BIG);

        // An unmasked frame, written under the client library's feet.
        let mut socket = open(&server, version, "/channels/inbound/ws").await;
        expect_signal(&mut socket, "position").await;
        socket
            .get_mut()
            .write_all(&[0x81, 0x02, b'h', b'i'])
            .await
            .unwrap();
        socket.get_mut().flush().await.unwrap();
        assert_eq!(close_code_of(&mut socket).await, close_code::PROTOCOL_ERROR);
    }
    // None of that disturbed the server.
    let http = server.http(conformance::Protocol::Http1);
    assert_eq!(http.get("/healthz").await.unwrap().status, 200);
    wait_for_info(&http, "inbound", |info| info["subscribers"] == 0).await;
    server.stop().await;
}

#[tokio::test]
async fn a_client_close_is_answered_and_frees_the_subscription() {
    let server = TestServer::start().await;
    let http = server.http(conformance::Protocol::Http1);
    for version in VERSIONS {
        let mut socket = open(&server, version, "/channels/leaving/ws").await;
        expect_signal(&mut socket, "position").await;
        wait_for_info(&http, "leaving", |info| info["subscribers"] == 1).await;
        socket.close(None).await.unwrap();
        // The server's answer to the close, then the end.
        loop {
            match tokio::time::timeout(TIMEOUT, socket.next()).await.unwrap() {
                Some(Ok(Message::Close(_))) | Some(Ok(Message::Ping(_))) => {}
                None | Some(Err(WsError::ConnectionClosed)) => break,
                other => panic!("expected the close answered, got {other:?}"),
            }
        }
        wait_for_info(&http, "leaving", |info| info["subscribers"] == 0).await;
    }
    server.stop().await;
}

/// Limits where a stopped reader lags soon: a small bound and a short
/// history (the bound counts beyond what history retains anyway).
fn lag_limits() -> Limits {
    Limits {
        subscriber_buffer_bytes: 256 * 1024,
        max_event_bytes: 128 * 1024,
        history_events: 4,
        history_bytes: 256 * 1024,
        ..test_limits()
    }
}

/// Publishes 64 MiB in 64 KiB events: far more than loopback's socket
/// buffers and the bound together, so a reader that reads nothing lags.
async fn publish_past_the_bound(http: &conformance::HttpClient, channel: &str) -> Vec<String> {
    let payload = Bytes::from(vec![b'x'; 64 * 1024]);
    let mut ids = Vec::new();
    for i in 0..1024 {
        let publish = publish_with(http, channel, None, "text/plain", payload.clone());
        let id = tokio::time::timeout(TIMEOUT, publish)
            .await
            .unwrap_or_else(|_| panic!("publish {i} hung"));
        ids.push(id);
    }
    ids
}

#[tokio::test]
async fn a_lagged_reader_gets_lagged_then_4000() {
    // A long grace: the reader comes back in time to take the signal.
    let server = TestServer::from_push(push_tower::Push::new(
        push_core::Hub::new(push_core::HubConfig {
            limits: lag_limits(),
            max_channels: 100,
        }),
        Config::default().lag_grace(Duration::from_secs(30)),
    ))
    .await;
    let http = server.http(conformance::Protocol::Http1);
    for version in VERSIONS {
        let channel = format!("lagging-{version:?}");
        let mut socket = open(&server, version, &format!("/channels/{channel}/ws")).await;
        expect_signal(&mut socket, "position").await;
        let ids = publish_past_the_bound(&http, &channel).await;
        // Reading again: events in order from the first, then lagged with the
        // last one delivered, then 4000.
        let mut delivered = 0;
        let cursor = loop {
            let message = next_json(&mut socket).await;
            if message.get("signal").is_some() {
                assert_eq!(message["signal"], "lagged", "{message}");
                break message["cursor"].as_str().unwrap().to_owned();
            }
            assert_eq!(message["id"], ids[delivered].as_str());
            delivered += 1;
        };
        assert!(delivered > 0 && delivered < ids.len(), "{delivered}");
        assert_eq!(cursor, ids[delivered - 1]);
        assert_eq!(close_code_of(&mut socket).await, close_code::LAGGED);
    }
    server.stop().await;
}

#[tokio::test]
async fn a_reader_that_stopped_is_dropped_without_slowing_others() {
    // The test server's grace is 500 ms.
    let server = TestServer::with(lag_limits(), Config::default()).await;
    let http = server.http(conformance::Protocol::Http1);
    for version in VERSIONS {
        let channel = format!("stopped-{version:?}");
        let mut stopped = open(&server, version, &format!("/channels/{channel}/ws")).await;
        expect_signal(&mut stopped, "position").await;
        let mut reader = open(&server, version, &format!("/channels/{channel}/ws")).await;
        expect_signal(&mut reader, "position").await;
        let payload = Bytes::from(vec![b'y'; 64 * 1024]);
        let mut dropped = false;
        for i in 0..2048 {
            let id = publish_with(&http, &channel, None, "text/plain", payload.clone()).await;
            // The reader keeps up all along.
            assert_eq!(next_json(&mut reader).await["id"], id.as_str());
            if i % 32 == 31 {
                let info = http
                    .get(&format!("/channels/{channel}"))
                    .await
                    .unwrap()
                    .json();
                assert!(
                    info["buffered_bytes"].as_u64().unwrap() <= 2 * 256 * 1024,
                    "{info}"
                );
                if info["subscribers"] == 1 {
                    dropped = true;
                    break;
                }
            }
        }
        assert!(dropped, "the stopped reader was never dropped");
        drop(stopped);
    }
    server.stop().await;
}

#[tokio::test]
async fn axum_route_service_serves_websocket() {
    let push = push_tower::Push::new(
        push_core::Hub::new(push_core::HubConfig::default()),
        Config::default(),
    );
    let app = axum::Router::new().route_service(
        "/live/{room}",
        push.ws(push_tower::ChannelFrom::path("/live/{room}").unwrap()),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let (mut socket, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/live/lobby"))
        .await
        .unwrap();
    let position = socket.next().await.unwrap().unwrap();
    assert!(position.to_text().unwrap().contains("\"position\""));
    let id = push
        .channels()
        .publish(
            "lobby",
            push_core::Message::new(push_core::Data::text("hi")),
        )
        .unwrap();
    let event = socket.next().await.unwrap().unwrap();
    let event: Value = serde_json::from_str(event.to_text().unwrap()).unwrap();
    assert_eq!(event["id"], id.to_string());
}

/// A small deterministic generator, so a failing case can be replayed.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Opens a raw socket past the HTTP/1.1 handshake.
async fn raw_socket(addr: SocketAddr, channel: &str) -> TcpStream {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "GET /channels/{channel}/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    );
    tcp.write_all(request.as_bytes()).await.unwrap();
    tcp
}

#[tokio::test]
async fn hostile_input_ends_the_socket_and_nothing_else() {
    let server = TestServer::start().await;
    let http = server.http(conformance::Protocol::Http1);
    let mut random = XorShift(0x9e37_79b9_7f4a_7c15);
    for case in 0..200 {
        let mut tcp = raw_socket(server.addr, "hostile").await;
        // Frame-like garbage: a random first byte and length form (7-bit,
        // 16-bit or 64-bit, some declaring gigabytes), a mask or none, then
        // random bytes.
        let mut bytes = vec![random.next() as u8];
        match random.next() % 3 {
            0 => bytes.push(random.next() as u8),
            1 => {
                bytes.push(0x80 | 126);
                bytes.extend_from_slice(&(random.next() as u16).to_be_bytes());
            }
            _ => {
                bytes.push(0x80 | 127);
                bytes.extend_from_slice(&random.next().to_be_bytes());
            }
        }
        let tail = (random.next() % 256) as usize;
        bytes.extend((0..tail).map(|_| random.next() as u8));
        let _ = tcp.write_all(&bytes).await;
        // The server answers with a close frame or hangs up, or waits for
        // more; it never stops serving others.
        let mut sink = [0u8; 4096];
        let _ = tokio::time::timeout(Duration::from_millis(20), tcp.read(&mut sink)).await;
        drop(tcp);
        if case % 50 == 49 {
            assert_eq!(
                http.get("/healthz").await.unwrap().status,
                200,
                "case {case}"
            );
        }
    }
    // Every socket let go of its subscription.
    wait_for_info(&http, "hostile", |info| info["subscribers"] == 0).await;
    // And a well-behaved client is served as before.
    let mut socket = open(&server, Version::Http1, "/channels/hostile/ws").await;
    expect_signal(&mut socket, "position").await;
    let id = publish(&http, "hostile", "still fine").await;
    assert_eq!(next_json(&mut socket).await["id"], id.as_str());
    server.stop().await;
}

#[tokio::test]
async fn a_client_that_floods_pings_and_reads_nothing_is_not_read_either() {
    // A long heartbeat, so that the ping timeout does not end this first.
    let limits = Limits {
        heartbeat: Duration::from_secs(60),
        ..test_limits()
    };
    let server = TestServer::with(limits, Config::default()).await;
    let http = server.http(conformance::Protocol::Http1);
    let mut tcp = raw_socket(server.addr, "flood").await;
    // 64 MB of masked 100-byte pings, never reading the pongs. Once the
    // pongs fill the sockets' buffers the server stops reading this client,
    // so its pings back up in the kernel instead of the server queueing
    // pongs: the write cannot finish.
    let mut ping = vec![0x89, 0x80 | 100, 1, 2, 3, 4];
    ping.extend(std::iter::repeat_n(b'p' ^ 1, 100));
    let flood: Vec<u8> = ping
        .iter()
        .copied()
        .cycle()
        .take(ping.len() * 640_000)
        .collect();
    let sent = tokio::time::timeout(Duration::from_secs(3), tcp.write_all(&flood)).await;
    assert!(
        sent.is_err(),
        "the server read 64 MB of pings whose pongs nobody took: {sent:?}"
    );
    // Meanwhile everything else is served.
    assert_eq!(http.get("/healthz").await.unwrap().status, 200);
    let info = wait_for_info(&http, "flood", |info| info["subscribers"] == 1).await;
    assert!(
        info["buffered_bytes"].as_u64().unwrap() < 64 * 1024,
        "{info}"
    );
    drop(tcp);
    wait_for_info(&http, "flood", |info| info["subscribers"] == 0).await;
    server.stop().await;
}

#[tokio::test]
async fn the_inbound_limit_is_the_configs() {
    let hub = push_core::Hub::new(push_core::HubConfig {
        limits: test_limits(),
        max_channels: 100,
    });
    let small = TestServer::from_push(push_tower::Push::new(
        hub,
        Config::default().max_ws_inbound_bytes(1024),
    ))
    .await;
    let default = TestServer::start().await;
    // 2,000 bytes: past the configured 1 KiB (1009), within the default
    // 4 KiB, where it is refused only as data from the client (1008).
    for (server, code) in [
        (&small, close_code::TOO_BIG),
        (&default, close_code::DATA_FROM_CLIENT),
    ] {
        for version in VERSIONS {
            let mut socket = open(server, version, "/channels/limit/ws").await;
            expect_signal(&mut socket, "position").await;
            socket.send(Message::binary(vec![0u8; 2000])).await.unwrap();
            assert_eq!(close_code_of(&mut socket).await, code, "{version:?}");
        }
    }
    small.stop().await;
    default.stop().await;
}
