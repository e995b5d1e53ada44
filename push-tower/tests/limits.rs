//! `serve`'s bounds over real sockets: connections per server
//! (`503 too_many_connections`) and per peer address
//! (`429 too_many_peer_connections`), each refusal answered with
//! `Retry-After` and the connection closed, on HTTP/1.1 and HTTP/2;
//! subscriptions per HTTP/2 connection (`429 too_many_subscriptions`);
//! the request header count (`431`). Whoever is within the bounds is served
//! throughout, and a closed connection or stream frees its place.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use h2::client::SendRequest;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use push_core::{Hub, HubConfig};
use push_tower::{serve, Config, Push, Router, Serve};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::task::JoinHandle;

const TIMEOUT: Duration = Duration::from_secs(10);

async fn within<F: std::future::Future>(future: F) -> F::Output {
    tokio::time::timeout(TIMEOUT, future)
        .await
        .expect("no answer in time")
}

/// A server configured by `configure`, on a loopback port.
async fn start(configure: impl FnOnce(Serve<Router<Hub>>) -> Serve<Router<Hub>>) -> SocketAddr {
    let push = Push::new(Hub::new(HubConfig::default()), Config::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = configure(serve(listener, push.router()).with_push(push));
    tokio::spawn(server.run());
    addr
}

/// A TCP connection to `addr` from the loopback address `from`.
async fn connect_from(from: [u8; 4], addr: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::from((from, 0))).unwrap();
    socket.connect(addr).await.unwrap()
}

const LOCAL: [u8; 4] = [127, 0, 0, 1];
const OTHER_PEER: [u8; 4] = [127, 0, 0, 2];

/// An HTTP/1.1 connection on hyper's client; dropping the sender closes it.
struct Http1 {
    send: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    connection: JoinHandle<()>,
}

impl Http1 {
    async fn open(stream: TcpStream) -> Self {
        let (send, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        let connection = tokio::spawn(async move {
            let _ = connection.await;
        });
        Http1 { send, connection }
    }

    async fn request(
        &mut self,
        method: Method,
        path: &str,
        body: &'static str,
    ) -> http::Response<Incoming> {
        within(self.send.ready()).await.unwrap();
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header("host", "localhost")
            .header("content-type", "text/plain")
            .body(Full::new(Bytes::from_static(body.as_bytes())))
            .unwrap();
        within(self.send.send_request(request)).await.unwrap()
    }

    /// Closes the connection and waits until it is closed.
    async fn close(self) {
        drop(self.send);
        within(self.connection).await.unwrap();
    }
}

/// Reads a streaming body until `needle` has arrived.
async fn read_until(body: &mut Incoming, needle: &str) {
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
}

/// Publishes `text` to `channel` on `client`.
async fn publish(client: &mut Http1, channel: &str, text: &'static str) {
    let answer = client
        .request(Method::POST, &format!("/channels/{channel}"), text)
        .await;
    assert_eq!(answer.status(), StatusCode::CREATED);
    let _ = answer.into_body().collect().await;
}

/// Sends a plain GET over HTTP/1.1 on `stream` and reads until the server
/// closes it: the refusal, whole.
async fn refused_http1(mut stream: TcpStream) -> String {
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    within(stream.read_to_end(&mut answer))
        .await
        .expect("the server closes the refused connection");
    String::from_utf8(answer).unwrap().to_ascii_lowercase()
}

fn assert_refused_http1(answer: &str, status: &str, code: &str) {
    assert!(
        answer.starts_with(&format!("http/1.1 {status}")),
        "{answer}"
    );
    assert!(answer.contains("\r\nretry-after: 5\r\n"), "{answer}");
    assert!(answer.contains("\r\nconnection: close\r\n"), "{answer}");
    assert!(
        answer.contains(&format!("\"error\":\"{code}\"")),
        "{answer}"
    );
}

/// Sends a GET over HTTP/2 on `stream`: the refusal's status and JSON
/// body, once the server has closed the connection (`GOAWAY`).
async fn refused_http2(stream: TcpStream, status: StatusCode, code: &str) {
    let (client, connection) = within(h2::client::handshake(stream)).await.unwrap();
    let connection = tokio::spawn(connection);
    let mut client = within(client.ready()).await.unwrap();
    let request = Request::get("http://localhost/healthz").body(()).unwrap();
    let (response, _) = client.send_request(request, true).unwrap();
    let response = within(response).await.unwrap();
    assert_eq!(response.status(), status);
    assert_eq!(response.headers()["retry-after"], "5");
    let mut body = response.into_body();
    let mut json = Vec::new();
    while let Some(chunk) = within(body.data()).await {
        json.extend_from_slice(&chunk.unwrap());
    }
    let json: Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(json["error"], code);
    // GOAWAY, then the connection ends: no more requests on it.
    within(connection).await.unwrap().unwrap();
    assert!(
        client.ready().await.is_err(),
        "the refused connection serves on"
    );
}

/// Retries a plain GET on new connections from `from` until one is served:
/// a closed connection's place comes back once the server has seen it
/// close.
async fn served_again(addr: SocketAddr, from: [u8; 4]) {
    for _ in 0..200 {
        let mut client = Http1::open(connect_from(from, addr).await).await;
        let answer = client.request(Method::GET, "/healthz", "").await;
        if answer.status() == StatusCode::OK {
            return;
        }
        let _ = answer.into_body().collect().await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the freed place never came back");
}

#[tokio::test]
async fn over_max_connections_every_request_is_503_and_the_others_are_served() {
    let addr = start(|serve| serve.max_connections(2)).await;

    // Two connections hold the two places: one streams, one publishes.
    let mut streaming = Http1::open(connect_from(LOCAL, addr).await).await;
    let mut sse = streaming
        .request(Method::GET, "/channels/c/sse", "")
        .await
        .into_body();
    let mut publisher = Http1::open(connect_from(LOCAL, addr).await).await;
    publish(&mut publisher, "c", "first").await;
    read_until(&mut sse, "data: first").await;

    // A third, over either version and from any address, is refused.
    let answer = refused_http1(connect_from(LOCAL, addr).await).await;
    assert_refused_http1(&answer, "503", "too_many_connections");
    let answer = refused_http1(connect_from(OTHER_PEER, addr).await).await;
    assert_refused_http1(&answer, "503", "too_many_connections");
    refused_http2(
        connect_from(LOCAL, addr).await,
        StatusCode::SERVICE_UNAVAILABLE,
        "too_many_connections",
    )
    .await;

    // Nothing lost for the two: the stream gets what is published after.
    publish(&mut publisher, "c", "second").await;
    read_until(&mut sse, "data: second").await;

    // Closing one frees its place.
    publisher.close().await;
    served_again(addr, LOCAL).await;
    drop(sse);
    streaming.close().await;
}

#[tokio::test]
async fn over_max_connections_per_peer_that_peer_is_429_and_others_are_served() {
    let addr = start(|serve| serve.max_connections_per_peer(2)).await;

    let mut streaming = Http1::open(connect_from(LOCAL, addr).await).await;
    let mut sse = streaming
        .request(Method::GET, "/channels/c/sse", "")
        .await
        .into_body();
    let mut publisher = Http1::open(connect_from(LOCAL, addr).await).await;
    publish(&mut publisher, "c", "first").await;
    read_until(&mut sse, "data: first").await;

    let answer = refused_http1(connect_from(LOCAL, addr).await).await;
    assert_refused_http1(&answer, "429", "too_many_peer_connections");
    refused_http2(
        connect_from(LOCAL, addr).await,
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_peer_connections",
    )
    .await;

    // Another address has places of its own.
    let mut other = Http1::open(connect_from(OTHER_PEER, addr).await).await;
    publish(&mut other, "c", "second").await;
    read_until(&mut sse, "data: second").await;
    publish(&mut publisher, "c", "third").await;
    read_until(&mut sse, "data: third").await;

    publisher.close().await;
    served_again(addr, LOCAL).await;
    other.close().await;
    drop(sse);
    streaming.close().await;
}

/// An h2 client connection with extended CONNECT known to be on.
async fn h2_connect(addr: SocketAddr) -> SendRequest<Bytes> {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (client, connection) = within(h2::client::handshake(stream)).await.unwrap();
    tokio::spawn(connection);
    // RFC 8441: no `:protocol` before the server's SETTINGS enable it.
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while !client.is_extended_connect_protocol_enabled() {
        assert!(tokio::time::Instant::now() < deadline, "no SETTINGS");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    client
}

/// Sends a bodiless request on `client`; the response.
async fn h2_send(
    client: &mut SendRequest<Bytes>,
    request: Request<()>,
) -> http::Response<h2::RecvStream> {
    let mut ready = within(client.clone().ready()).await.unwrap();
    let (response, _) = ready.send_request(request, true).unwrap();
    within(response).await.unwrap()
}

async fn h2_body(response: http::Response<h2::RecvStream>) -> Bytes {
    let mut body = response.into_body();
    let mut all = Vec::new();
    while let Some(chunk) = within(body.data()).await {
        let chunk = chunk.unwrap();
        let _ = body.flow_control().release_capacity(chunk.len());
        all.extend_from_slice(&chunk);
    }
    Bytes::from(all)
}

async fn h2_read_until(body: &mut h2::RecvStream, needle: &str) {
    let mut seen = String::new();
    while !seen.contains(needle) {
        let chunk = within(body.data())
            .await
            .expect("the stream ended")
            .unwrap();
        let _ = body.flow_control().release_capacity(chunk.len());
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
}

fn get(path: &str) -> Request<()> {
    Request::get(format!("http://localhost{path}"))
        .body(())
        .unwrap()
}

fn assert_too_many_subscriptions(status: StatusCode, body: &[u8]) {
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    let json: Value = serde_json::from_slice(body).unwrap();
    assert_eq!(json["error"], "too_many_subscriptions", "{json}");
}

#[tokio::test]
async fn over_max_subscriptions_per_connection_the_next_stream_is_429_before_it_starts() {
    let addr = start(|serve| serve.max_subscriptions_per_connection(2)).await;
    let mut client = h2_connect(addr).await;

    let sse = h2_send(&mut client, get("/channels/c/sse")).await;
    assert_eq!(sse.status(), StatusCode::OK);
    let mut sse = sse.into_body();
    let ndjson = h2_send(&mut client, get("/channels/c/stream")).await;
    assert_eq!(ndjson.status(), StatusCode::OK);
    let mut ndjson = ndjson.into_body();

    // The third streaming subscription of any technique is refused.
    for path in ["/channels/c/sse", "/channels/c/stream", "/channels/c/push"] {
        let refused = h2_send(&mut client, get(path)).await;
        let status = refused.status();
        assert_too_many_subscriptions(status, &h2_body(refused).await);
    }
    let mut connect = Request::builder()
        .method(Method::CONNECT)
        .uri("http://localhost/channels/c/ws")
        .header("sec-websocket-version", "13")
        .body(())
        .unwrap();
    connect
        .extensions_mut()
        .insert(h2::ext::Protocol::from_static("websocket"));
    let refused = h2_send(&mut client, connect).await;
    let status = refused.status();
    assert_too_many_subscriptions(status, &h2_body(refused).await);

    // The connection serves on: polls and publishes are not subscriptions,
    // and the two streams get what is published.
    let poll = h2_send(&mut client, get("/channels/c/poll")).await;
    assert_eq!(poll.status(), StatusCode::OK);
    let publish = Request::post("http://localhost/channels/c")
        .header("content-type", "text/plain")
        .body(())
        .unwrap();
    let mut ready = within(client.clone().ready()).await.unwrap();
    let (response, mut body) = ready.send_request(publish, false).unwrap();
    body.send_data(Bytes::from_static(b"after"), true).unwrap();
    assert_eq!(
        within(response).await.unwrap().status(),
        StatusCode::CREATED
    );
    h2_read_until(&mut sse, "data: after").await;
    h2_read_until(&mut ndjson, "\"data\":\"after\"").await;

    // A stream the client resets frees its place.
    drop(sse);
    for attempt in 0.. {
        let again = h2_send(&mut client, get("/channels/c/sse")).await;
        if again.status() == StatusCode::OK {
            break;
        }
        assert!(attempt < 200, "the reset stream's place never came back");
        let _ = h2_body(again).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn over_max_headers_the_request_is_431_on_both_versions() {
    let addr = start(|serve| serve.max_headers(8)).await;
    let mut headers = String::new();
    for i in 0..10 {
        headers.push_str(&format!("x-extra-{i}: {i}\r\n"));
    }

    // HTTP/1.1: hyper's 431, and the connection closed.
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = format!("GET /healthz HTTP/1.1\r\nhost: localhost\r\n{headers}\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    within(stream.read_to_end(&mut answer)).await.unwrap();
    let answer = String::from_utf8(answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");

    // Within the count, served.
    let mut client = Http1::open(TcpStream::connect(addr).await.unwrap()).await;
    let answer = client.request(Method::GET, "/healthz", "").await;
    assert_eq!(answer.status(), StatusCode::OK);

    // HTTP/2: 431 on the stream, and the connection serves on.
    let mut client = h2_connect(addr).await;
    let mut request = get("/healthz");
    for i in 0..10 {
        let name = http::HeaderName::try_from(format!("x-extra-{i}")).unwrap();
        request.headers_mut().insert(name, i.into());
    }
    let refused = h2_send(&mut client, request).await;
    assert_eq!(
        refused.status(),
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
    );
    let served = h2_send(&mut client, get("/healthz")).await;
    assert_eq!(served.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_websocket_holds_its_connections_place_until_it_closes() {
    let addr = start(|serve| serve.max_connections(2)).await;
    let mut publisher = Http1::open(connect_from(LOCAL, addr).await).await;

    // The upgrade takes the socket away from hyper; its place goes with it.
    let (mut socket, _) = within(tokio_tungstenite::client_async(
        format!("ws://{addr}/channels/c/ws"),
        connect_from(LOCAL, addr).await,
    ))
    .await
    .unwrap();
    let answer = refused_http1(connect_from(LOCAL, addr).await).await;
    assert_refused_http1(&answer, "503", "too_many_connections");

    // The socket is served throughout.
    publish(&mut publisher, "c", "to the socket").await;
    loop {
        let message = within(socket.next()).await.unwrap().unwrap();
        if message
            .to_text()
            .unwrap_or_default()
            .contains("to the socket")
        {
            break;
        }
    }

    // Closed, it gives its place back.
    within(socket.close(None)).await.unwrap();
    drop(socket);
    served_again(addr, LOCAL).await;
    publisher.close().await;
}
