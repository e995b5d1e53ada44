//! `serve` over TLS (cargo feature `tls`), with a certificate made by
//! rcgen and trusted by each client: ALPN `h2` for hyper's HTTP/2 client
//! (publish and Server-Sent Events), the `h2` crate (server push) and
//! WebSocket over HTTP/2; ALPN `http/1.1` for Server-Sent Events and a
//! tokio-tungstenite WebSocket; graceful drain; a client that stalls in the
//! handshake is dropped within the header read timeout; and
//! `config_from_pem`'s errors name the file to fix.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use push_core::{Hub, HubConfig};
use push_tower::serve::tls::{self, rustls};
use push_tower::{serve, Config, Push};
use rustls::pki_types::ServerName;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{Connector, WebSocketStream};

const TIMEOUT: Duration = Duration::from_secs(10);
const HEAD_TIMEOUT: Duration = Duration::from_millis(500);

async fn within<F: std::future::Future>(future: F) -> F::Output {
    tokio::time::timeout(TIMEOUT, future)
        .await
        .expect("no answer in time")
}

#[path = "support/certificate.rs"]
mod certificate;

use certificate::Certificate;

struct Server {
    addr: SocketAddr,
    cert: Certificate,
    stop: Option<oneshot::Sender<()>>,
    stopped: tokio::task::JoinHandle<()>,
}

impl Server {
    /// A TLS server from PEM files made for it, with a short header read
    /// timeout.
    async fn start() -> Self {
        let cert = Certificate::generate();
        let config = tls::config_from_pem(&cert.cert_path, &cert.key_path).unwrap();
        let push = Push::new(Hub::new(HubConfig::default()), Config::default());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopping) = oneshot::channel::<()>();
        let server = serve(listener, push.router())
            .with_push(push)
            .tls(Arc::new(config))
            .header_read_timeout(HEAD_TIMEOUT)
            .drain_deadline(Duration::from_secs(3));
        let stopped = tokio::spawn(async move {
            server
                .with_graceful_shutdown(async {
                    let _ = stopping.await;
                })
                .await
                .unwrap();
        });
        Server {
            addr,
            cert,
            stop: Some(stop),
            stopped,
        }
    }

    /// A TLS connection offering `alpn`; the protocol the server chose must
    /// be `expected`.
    async fn connect(&self, alpn: &[&[u8]], expected: Option<&[u8]>) -> TlsStream<TcpStream> {
        let tcp = TcpStream::connect(self.addr).await.unwrap();
        let connector = TlsConnector::from(self.cert.client(alpn));
        let name = ServerName::try_from("localhost").unwrap();
        let tls = within(connector.connect(name, tcp)).await.unwrap();
        assert_eq!(tls.get_ref().1.alpn_protocol(), expected);
        tls
    }

    fn uri(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.addr.port())
    }

    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        within(self.stopped).await.unwrap();
    }
}

/// hyper's HTTP/2 client over TLS negotiated `h2`.
async fn hyper_h2(server: &Server) -> hyper::client::conn::http2::SendRequest<Full<Bytes>> {
    let tls = server.connect(&[b"h2", b"http/1.1"], Some(b"h2")).await;
    let (send, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
            .await
            .unwrap();
    tokio::spawn(connection);
    send
}

/// hyper's HTTP/1.1 client over TLS negotiated `http/1.1`.
async fn hyper_h1(server: &Server) -> hyper::client::conn::http1::SendRequest<Full<Bytes>> {
    let tls = server
        .connect(&[b"http/1.1"], Some(b"http/1.1".as_slice()))
        .await;
    let (send, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(connection);
    send
}

fn request(
    server: &Server,
    method: Method,
    path: &str,
    body: &'static str,
) -> Request<Full<Bytes>> {
    Request::builder()
        .method(method)
        .uri(server.uri(path))
        .header("host", format!("localhost:{}", server.addr.port()))
        .header("content-type", "text/plain")
        .body(Full::new(Bytes::from_static(body.as_bytes())))
        .unwrap()
}

/// Publishes `text` on a connection of its own; the event's id.
async fn publish(server: &Server, channel: &str, text: &'static str) -> String {
    let mut client = hyper_h2(server).await;
    let answer = within(client.send_request(request(
        server,
        Method::POST,
        &format!("/channels/{channel}"),
        text,
    )))
    .await
    .unwrap();
    assert_eq!(answer.status(), StatusCode::CREATED);
    let body = answer.into_body().collect().await.unwrap().to_bytes();
    let json: Value = serde_json::from_slice(&body).unwrap();
    json["id"].as_str().unwrap().to_owned()
}

/// Reads a streaming body until `needle` has arrived; what was read.
async fn read_until(body: &mut Incoming, needle: &str) -> String {
    let mut seen = String::new();
    while !seen.contains(needle) {
        let frame = within(body.frame())
            .await
            .expect("the stream ended")
            .unwrap();
        if let Ok(data) = frame.into_data() {
            seen.push_str(&String::from_utf8_lossy(&data));
        }
    }
    seen
}

#[tokio::test]
async fn alpn_h2_serves_publish_and_server_sent_events() {
    let server = Server::start().await;
    let mut client = hyper_h2(&server).await;
    let answer = within(client.send_request(request(&server, Method::GET, "/channels/c/sse", "")))
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    assert_eq!(answer.version(), http::Version::HTTP_2);
    let mut sse = answer.into_body();
    let id = publish(&server, "c", "over h2").await;
    let seen = read_until(&mut sse, "data: over h2").await;
    assert!(seen.contains(&format!("id: {id}")), "{seen}");

    // Graceful drain over TLS: the stream ends with the shutdown signal.
    let stopping = tokio::spawn(server.stop());
    read_until(&mut sse, "event: push.shutdown").await;
    within(stopping).await.unwrap();
}

#[tokio::test]
async fn alpn_http11_serves_server_sent_events_and_a_websocket() {
    let server = Server::start().await;
    let mut client = hyper_h1(&server).await;
    let answer = within(client.send_request(request(&server, Method::GET, "/channels/c/sse", "")))
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    assert_eq!(answer.version(), http::Version::HTTP_11);
    let mut sse = answer.into_body();

    // tokio-tungstenite's own rustls connector, over HTTP/1.1 upgrade.
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    let ws_request = format!("wss://localhost:{}/channels/c/ws", server.addr.port())
        .into_client_request()
        .unwrap();
    let connector = Connector::Rustls(server.cert.client(&[b"http/1.1"]));
    let (mut socket, response) = within(tokio_tungstenite::client_async_tls_with_config(
        ws_request,
        tcp,
        None,
        Some(connector),
    ))
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
    let position = next_json(&mut socket).await;
    assert_eq!(position["signal"], "position", "{position}");

    let id = publish(&server, "c", "over http/1.1").await;
    read_until(&mut sse, "data: over http/1.1").await;
    let event = next_json(&mut socket).await;
    assert_eq!(event["id"], id.as_str(), "{event}");
    assert_eq!(event["data"], "over http/1.1", "{event}");
    server.stop().await;
}

#[tokio::test]
async fn without_alpn_the_first_bytes_tell_the_version() {
    let server = Server::start().await;
    let tls = server.connect(&[], None).await;
    let (mut http1, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(connection);
    let answer = within(http1.send_request(request(&server, Method::GET, "/healthz", "")))
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    assert_eq!(answer.version(), http::Version::HTTP_11);

    // HTTP/2 with prior knowledge, as on plain TCP.
    let tls = server.connect(&[], None).await;
    let (mut http2, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
            .await
            .unwrap();
    tokio::spawn(connection);
    let answer = within(http2.send_request(request(&server, Method::GET, "/healthz", "")))
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    assert_eq!(answer.version(), http::Version::HTTP_2);
    server.stop().await;
}

/// The next text message's JSON, past pings.
async fn next_json<S>(socket: &mut WebSocketStream<S>) -> Value
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    loop {
        match within(socket.next())
            .await
            .expect("the socket ended")
            .unwrap()
        {
            Message::Text(text) => return serde_json::from_str(&text).unwrap(),
            Message::Ping(_) | Message::Pong(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[tokio::test]
async fn http2_server_push_over_tls() {
    let server = Server::start().await;
    let tls = server.connect(&[b"h2"], Some(b"h2")).await;
    let (client, connection) = h2::client::Builder::new()
        .enable_push(true)
        .handshake::<_, Bytes>(tls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let mut client = within(client.ready()).await.unwrap();
    let parent = Request::get(server.uri("/channels/news/push"))
        .body(())
        .unwrap();
    let (mut response, _) = client.send_request(parent, true).unwrap();
    let mut promises = response.push_promises();
    let response = within(response).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["push-mode"], "promise");

    let id = publish(&server, "news", "pushed over TLS").await;
    let promise = within(promises.push_promise()).await.unwrap().unwrap();
    let (promised, pushed) = promise.into_parts();
    assert_eq!(promised.uri().scheme_str(), Some("https"));
    assert_eq!(
        promised.uri().path(),
        format!("/channels/news/messages/{id}")
    );
    let pushed = within(pushed).await.unwrap();
    assert_eq!(pushed.status(), StatusCode::OK);
    let mut body = pushed.into_body();
    let mut data = Vec::new();
    while let Some(chunk) = within(body.data()).await {
        let chunk = chunk.unwrap();
        let _ = body.flow_control().release_capacity(chunk.len());
        data.extend_from_slice(&chunk);
    }
    // The pushed response is the event's envelope, as a GET of its URL.
    let envelope: Value = serde_json::from_slice(&data).unwrap();
    assert_eq!(envelope["id"], id.as_str(), "{envelope}");
    assert_eq!(envelope["data"], "pushed over TLS", "{envelope}");
    server.stop().await;
}

#[tokio::test]
async fn websocket_over_http2_over_tls() {
    let server = Server::start().await;
    let tls = server.connect(&[b"h2"], Some(b"h2")).await;
    let (mut send, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
            .await
            .unwrap();
    // RFC 8441: no `:protocol` before the server's SETTINGS enable it;
    // hyper sets the flag without waking anyone, so look again.
    let mut connection = Box::pin(connection);
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while !connection.is_extended_connect_protocol_enabled() {
        assert!(futures_util::FutureExt::now_or_never(connection.as_mut()).is_none());
        assert!(tokio::time::Instant::now() < deadline, "no SETTINGS");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    tokio::spawn(connection);
    let mut connect = Request::builder()
        .method(Method::CONNECT)
        .uri(server.uri("/channels/c/ws"))
        .header("sec-websocket-version", "13")
        .body(Empty::<Bytes>::new())
        .unwrap();
    connect
        .extensions_mut()
        .insert(hyper::ext::Protocol::from_static("websocket"));
    within(send.ready()).await.unwrap();
    let response = within(send.send_request(connect)).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let upgraded = within(hyper::upgrade::on(response)).await.unwrap();
    let mut socket =
        WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Client, None).await;
    let position = next_json(&mut socket).await;
    assert_eq!(position["signal"], "position", "{position}");
    let id = publish(&server, "c", "over h2 and TLS").await;
    let event = next_json(&mut socket).await;
    assert_eq!(event["id"], id.as_str(), "{event}");
    assert_eq!(event["data"], "over h2 and TLS", "{event}");
    server.stop().await;
}

/// Reads until the server closes the connection; fails if it still holds
/// it long after the header read timeout.
async fn assert_dropped(mut tcp: TcpStream) {
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(HEAD_TIMEOUT * 20, tcp.read_to_end(&mut rest)).await;
    assert!(closed.is_ok(), "the server still holds the connection");
}

#[tokio::test]
async fn a_client_that_stalls_in_the_handshake_is_dropped() {
    let server = Server::start().await;
    // Nothing at all.
    let silent = TcpStream::connect(server.addr).await.unwrap();
    // The first bytes of a ClientHello record, then nothing.
    let mut half = TcpStream::connect(server.addr).await.unwrap();
    half.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
        .await
        .unwrap();
    // A whole handshake, then no request: held as long as a head may take.
    let idle = server.connect(&[b"http/1.1"], Some(b"http/1.1")).await;
    let (mut idle_tcp, _) = idle.into_inner();
    let idle_closed = async {
        let mut rest = Vec::new();
        tokio::time::timeout(HEAD_TIMEOUT * 20, idle_tcp.read_to_end(&mut rest))
            .await
            .is_ok()
    };
    let (_, _, idle_closed) =
        tokio::join!(assert_dropped(silent), assert_dropped(half), idle_closed);
    assert!(idle_closed, "the idle TLS connection is still held");

    // Others are served throughout.
    publish(&server, "c", "still serving").await;
    server.stop().await;
}

#[tokio::test]
async fn config_from_pem_errors_name_the_file_to_fix() {
    let cert = Certificate::generate();
    let missing = cert.cert_path.with_file_name("missing.pem");
    let error = tls::config_from_pem(&missing, &cert.key_path).unwrap_err();
    assert!(error.is_unreadable());
    assert_eq!(error.path(), missing);
    assert!(error.to_string().contains("missing.pem"), "{error}");

    // The key given as the certificate, and the certificate as the key.
    let error = tls::config_from_pem(&cert.key_path, &cert.key_path).unwrap_err();
    assert_eq!(error.path(), cert.key_path);
    assert!(
        error.to_string().contains("holds no certificate"),
        "{error}"
    );
    let error = tls::config_from_pem(&cert.cert_path, &cert.cert_path).unwrap_err();
    assert_eq!(error.path(), cert.cert_path);
    assert!(
        error.to_string().contains("holds no private key"),
        "{error}"
    );

    // A key that is not the certificate's.
    let other = Certificate::generate();
    let error = tls::config_from_pem(&cert.cert_path, &other.key_path).unwrap_err();
    assert!(error.is_rejected(), "{error}");
    assert_eq!(error.path(), other.key_path);

    let config = tls::config_from_pem(&cert.cert_path, &cert.key_path).unwrap();
    assert_eq!(
        config.alpn_protocols,
        [b"h2".to_vec(), b"http/1.1".to_vec()]
    );
}
