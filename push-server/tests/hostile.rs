//! Malformed and hostile requests, as an attacker would send them, against
//! the real binary: each gets its documented status and error code (or, for
//! broken framing, hyper's bare refusal or a closed connection), and the
//! server is alive and serving after each.
//!
//! Every case is written out as the bytes that go on the wire, so what is
//! tested is exactly what a client can send.

mod process;

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The flags the server runs with: small limits, so that every limit can be
/// reached by a request of reasonable size.
const FLAGS: &[&str] = &[
    "--max-event-bytes",
    "1024",
    "--subscriber-buffer-bytes",
    "4096",
    "--history-events",
    "10",
    "--header-read-timeout-ms",
    "1000",
    "--body-read-timeout-ms",
    "1000",
];

/// How long any one case may take before the server counts as hung.
const CASE_DEADLINE: Duration = Duration::from_secs(10);

/// What the server must do with a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    /// Answer with this status and this wire error code.
    Error(u16, &'static str),
    /// Answer with this status and no wire error body: hyper's refusal of a
    /// message it cannot parse, or a success.
    Status(u16),
    /// Close the connection without answering.
    Dropped,
}

struct Case {
    name: String,
    request: Vec<u8>,
    expect: Expect,
}

fn case(name: &str, request: impl Into<Vec<u8>>, expect: Expect) -> Case {
    Case {
        name: name.to_owned(),
        request: request.into(),
        expect,
    }
}

/// A GET of `target` with a Host and `Connection: close`.
fn get(target: &str) -> Vec<u8> {
    format!("GET {target} HTTP/1.1\r\nhost: push.test\r\nconnection: close\r\n\r\n").into_bytes()
}

/// A request with `method`, `target`, `headers` (each with its CRLF) and
/// `body`; the Host and `Connection: close` are added.
fn request(method: &str, target: &str, headers: &str, body: &[u8]) -> Vec<u8> {
    let mut bytes = format!(
        "{method} {target} HTTP/1.1\r\nhost: push.test\r\nconnection: close\r\n{headers}\r\n"
    )
    .into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// A text publish of `body` to `target`.
fn publish(target: &str, body: &[u8]) -> Vec<u8> {
    request(
        "POST",
        target,
        &format!(
            "content-type: text/plain\r\ncontent-length: {}\r\n",
            body.len()
        ),
        body,
    )
}

/// `body` as one chunk of a chunked body.
fn chunked(body: &[u8]) -> Vec<u8> {
    let mut bytes = format!("{:x}\r\n", body.len()).into_bytes();
    bytes.extend_from_slice(body);
    bytes.extend_from_slice(b"\r\n0\r\n\r\n");
    bytes
}

/// Sends `request` on a fresh connection; returns everything the server
/// sent before it closed the connection.
async fn exchange(addr: SocketAddr, request: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    // The server may answer and close before taking every byte.
    let _ = stream.write_all(request).await;
    read_to_close(&mut stream).await
}

async fn read_to_close(stream: &mut TcpStream) -> Vec<u8> {
    let mut answer = Vec::new();
    let mut buffer = [0u8; 8192];
    loop {
        match stream.read(&mut buffer).await {
            Ok(0) | Err(_) => return answer,
            Ok(read) => answer.extend_from_slice(&buffer[..read]),
        }
    }
}

/// What an answer was: its status and wire error code, or nothing.
fn outcome(answer: &[u8]) -> Expect {
    let text = String::from_utf8_lossy(answer);
    let Some(status) = text
        .strip_prefix("HTTP/1.1 ")
        .or_else(|| text.strip_prefix("HTTP/1.0 "))
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse::<u16>().ok())
    else {
        return Expect::Dropped;
    };
    let code = text
        .split_once("\r\n\r\n")
        .and_then(|(_, body)| serde_json::from_str::<serde_json::Value>(body).ok())
        .and_then(|json| json["error"].as_str().map(str::to_owned));
    match code {
        Some(code) => Expect::Error(status, Box::leak(code.into_boxed_str())),
        None => Expect::Status(status),
    }
}

/// The server answers a plain request on a fresh connection.
async fn assert_serving(addr: SocketAddr, after: &str) {
    let answer = exchange(addr, &get("/healthz")).await;
    assert!(
        answer.starts_with(b"HTTP/1.1 200"),
        "the server stopped serving after {after}"
    );
}

/// Publishes `text` to `channel` on the server at `addr`; returns its id.
async fn publish_text(addr: SocketAddr, channel: &str, text: &str) -> String {
    let answer = exchange(
        addr,
        &publish(&format!("/channels/{channel}"), text.as_bytes()),
    )
    .await;
    let text = String::from_utf8(answer).unwrap();
    let (_, body) = text.split_once("\r\n\r\n").unwrap();
    let json: serde_json::Value = serde_json::from_str(body).unwrap();
    json["id"].as_str().unwrap().to_owned()
}

/// Requests over HTTP/1.1, each with what the server must answer.
fn http1_cases(id: &str) -> Vec<Case> {
    use Expect::{Dropped, Error, Status};
    let (epoch, _) = id.split_once('-').unwrap();
    let ahead = format!("{epoch}-999");
    let long_name = "a".repeat(129);
    let long_event = "e".repeat(65);
    let mut cases = vec![
        // Channel names.
        case("empty channel name", get("/channels//sse"), Error(400, "bad_channel")),
        case("129-character channel name", get(&format!("/channels/{long_name}")), Error(400, "bad_channel")),
        case("space in a channel name", get("/channels/a%20b/poll"), Error(400, "bad_channel")),
        case("channel name of dots", get("/channels/../poll"), Error(400, "bad_channel")),
        case("channel name of one dot", get("/channels/./sse"), Error(400, "bad_channel")),
        case("accented channel name", get("/channels/caf%C3%A9/poll"), Error(400, "bad_channel")),
        case("NUL in a channel name", get("/channels/a%00b/poll"), Error(400, "bad_channel")),
        case("encoded slash in a channel name", get("/channels/a%2Fb/poll"), Error(400, "bad_channel")),
        case("star channel name", get("/channels/*/poll"), Error(400, "bad_channel")),
        case("percent sign in a channel name", get("/channels/100%/poll"), Error(400, "bad_channel")),
        case("channel name with a query-like tail", get("/channels/a;b/poll"), Error(400, "bad_channel")),
        case("publish to a bad channel name", publish("/channels/no%20spaces", b"x"), Error(400, "bad_channel")),
        case("delete a bad channel name", request("DELETE", "/channels/%FF", "", b""), Error(400, "bad_channel")),
        case("message of a bad channel name", get(&format!("/channels/%7E/messages/{id}")), Error(400, "bad_channel")),
        // Cursors and start positions.
        case("garbage cursor", get("/channels/news/poll?after=garbage"), Error(400, "bad_cursor")),
        case("empty cursor", get("/channels/news/sse?after="), Error(400, "bad_cursor")),
        case("cursor without a sequence", get(&format!("/channels/news/poll?after={epoch}")), Error(400, "bad_cursor")),
        case("cursor with a sequence past u64", get(&format!("/channels/news/poll?after={epoch}-99999999999999999999999")), Error(400, "bad_cursor")),
        case("cursor with a negative sequence", get(&format!("/channels/news/poll?after={epoch}--1")), Error(400, "bad_cursor")),
        case("cursor with a short epoch", get("/channels/news/poll?after=abc-1"), Error(400, "bad_cursor")),
        case("cursor with a non-hex epoch", get("/channels/news/poll?after=zzzzzzzzzzzzzzzz-1"), Error(400, "bad_cursor")),
        case("cursor ahead of the head", get(&format!("/channels/news/poll?after={ahead}")), Error(400, "cursor_ahead")),
        case("cursor ahead on a stream", get(&format!("/channels/news/stream?after={ahead}")), Error(400, "cursor_ahead")),
        case("after with from", get(&format!("/channels/news/poll?after={id}&from=earliest")), Error(400, "bad_cursor")),
        case("unknown from", get("/channels/news/poll?from=latest"), Error(400, "bad_cursor")),
        case("cursor that is not UTF-8", get("/channels/news/poll?after=%FF"), Error(400, "bad_cursor")),
        case("from that is not UTF-8", get("/channels/news/poll?from=%C0%AF"), Error(400, "bad_cursor")),
        case("4,000-character cursor", get(&format!("/channels/news/poll?after={}", "1".repeat(4000))), Error(400, "bad_cursor")),
        case("garbage Last-Event-ID", request("GET", "/channels/news/sse", "last-event-id: nope\r\n", b""), Error(400, "bad_cursor")),
        case("Last-Event-ID that is not text", b"GET /channels/news/sse HTTP/1.1\r\nhost: x\r\nconnection: close\r\nlast-event-id: \xff\xfe\r\n\r\n".to_vec(), Error(400, "bad_cursor")),
        case("message id that is garbage", get("/channels/news/messages/garbage"), Error(400, "bad_cursor")),
        case("message id ahead of the head", get(&format!("/channels/news/messages/{ahead}")), Error(404, "not_found")),
        case("message of another incarnation", get("/channels/news/messages/0000000000000001-1"), Error(410, "gone")),
        // Event names.
        case("empty event name", publish("/channels/news?event=", b"x"), Error(400, "bad_event_name")),
        case("65-character event name", publish(&format!("/channels/news?event={long_event}"), b"x"), Error(400, "bad_event_name")),
        case("reserved event name", publish("/channels/news?event=push.signal", b"x"), Error(400, "reserved_event_name")),
        case("CR in an event name", publish("/channels/news?event=a%0Db", b"x"), Error(400, "bad_event_name")),
        case("LF in an event name", publish("/channels/news?event=a%0Ab", b"x"), Error(400, "bad_event_name")),
        case("NUL in an event name", publish("/channels/news?event=a%00b", b"x"), Error(400, "bad_event_name")),
        case("event name that is not UTF-8", publish("/channels/news?event=%FF", b"x"), Error(400, "bad_event_name")),
        case("overlong UTF-8 event name", publish("/channels/news?event=%C0%AF", b"x"), Error(400, "bad_event_name")),
        case("truncated UTF-8 event name", publish("/channels/news?event=ok%E2%82", b"x"), Error(400, "bad_event_name")),
        // Bodies.
        case("text body that is not UTF-8", publish("/channels/news", b"\xff\xfe"), Error(400, "bad_utf8")),
        case("text body with a lone surrogate", publish("/channels/news", b"\xed\xa0\x80"), Error(400, "bad_utf8")),
        case("body over the event limit", publish("/channels/news", &[b'x'; 1025]), Error(413, "too_large")),
        case("declared length over the limit", request("POST", "/channels/news", "content-length: 1000000000\r\n", b""), Error(413, "too_large")),
        case("chunked body over the limit", request("POST", "/channels/news", "transfer-encoding: chunked\r\n", &chunked(&[b'x'; 1025])), Error(413, "too_large")),
        case("body shorter than its length", request("POST", "/channels/news", "content-length: 100\r\n", b"short"), Error(400, "bad_body")),
        case("chunked body cut off", request("POST", "/channels/news", "transfer-encoding: chunked\r\n", b"10\r\nabc"), Error(400, "bad_body")),
        case("chunk size that is not hex", request("POST", "/channels/news", "transfer-encoding: chunked\r\n", b"zz\r\nabc\r\n0\r\n\r\n"), Error(400, "bad_body")),
        case("chunk size past u64", request("POST", "/channels/news", "transfer-encoding: chunked\r\n", b"fffffffffffffffffffff\r\nabc\r\n0\r\n\r\n"), Error(400, "bad_body")),
        case("empty body", publish("/channels/news", b""), Status(201)),
        // Headers and framing.
        case("no Host", b"GET /healthz HTTP/1.1\r\nconnection: close\r\n\r\n".to_vec(), Error(400, "bad_request")),
        case("two Hosts", b"GET /healthz HTTP/1.1\r\nhost: a\r\nhost: b\r\nconnection: close\r\n\r\n".to_vec(), Error(400, "bad_request")),
        case("no Host on a stream", b"GET /channels/news/sse HTTP/1.1\r\nconnection: close\r\n\r\n".to_vec(), Error(400, "bad_request")),
        case("no Host on HTTP/1.0", b"GET /healthz HTTP/1.0\r\n\r\n".to_vec(), Status(200)),
        case("gzip then chunked", request("POST", "/channels/news", "content-type: text/plain\r\ntransfer-encoding: gzip, chunked\r\n", b"2\r\nhi\r\n0\r\n\r\n"), Error(501, "not_implemented")),
        case("chunked twice", request("POST", "/channels/news", "transfer-encoding: chunked\r\ntransfer-encoding: chunked\r\n", b"2\r\nhi\r\n0\r\n\r\n"), Error(501, "not_implemented")),
        case("identity transfer coding", request("POST", "/channels/news", "transfer-encoding: identity\r\n", b"hi"), Status(400)),
        case("transfer coding on a GET", request("GET", "/channels/news/poll", "transfer-encoding: gzip, chunked\r\n", b"0\r\n\r\n"), Error(501, "not_implemented")),
        case("gzip alone", request("POST", "/channels/news", "transfer-encoding: gzip\r\n", b"hi"), Status(400)),
        // RFC 9112, section 6.3: the chunks win, and hyper closes after.
        case("Content-Length with Transfer-Encoding", request("POST", "/channels/news", "content-type: text/plain\r\ncontent-length: 3\r\ntransfer-encoding: chunked\r\n", b"2\r\nhi\r\n0\r\n\r\n"), Status(201)),
        case("two different Content-Lengths", request("POST", "/channels/news", "content-length: 2\r\ncontent-length: 3\r\n", b"hi"), Status(400)),
        case("negative Content-Length", request("POST", "/channels/news", "content-length: -1\r\n", b""), Status(400)),
        case("Content-Length that is not a number", request("POST", "/channels/news", "content-length: two\r\n", b"hi"), Status(400)),
        case("Content-Length past u64", request("POST", "/channels/news", "content-length: 99999999999999999999999\r\n", b""), Status(400)),
        case("100 KB header", request("GET", "/healthz", &format!("x-big: {}\r\n", "a".repeat(100_000)), b""), Status(431)),
        case("header without a colon", request("GET", "/healthz", "no colon here\r\n", b""), Status(400)),
        case("header folded over two lines", request("GET", "/healthz", "x-fold: a\r\n b\r\n", b""), Status(400)),
        case("NUL in a header value", request("GET", "/healthz", "x-nul: a\0b\r\n", b""), Status(400)),
        case("space before a header's colon", request("GET", "/healthz", "x-space : a\r\n", b""), Status(400)),
        case("500 headers", request("GET", "/healthz", &(0..500).map(|i| format!("x-{i}: v\r\n")).collect::<String>(), b""), Status(431)),
        case("bare LF line endings", b"GET /healthz HTTP/1.1\nhost: x\nconnection: close\n\n".to_vec(), Status(200)),
        case("Expect 100-continue on a publish", request("POST", "/channels/news", "content-type: text/plain\r\ncontent-length: 2\r\nexpect: 100-continue\r\n", b"hi"), Status(100)),
        case("unknown Expect is ignored", request("POST", "/channels/news", "content-length: 2\r\nexpect: magic\r\n", b"hi"), Status(201)),
        // Query strings.
        case("negative timeout", get("/channels/news/longpoll?timeout=-1"), Error(400, "bad_timeout")),
        case("infinite timeout", get("/channels/news/longpoll?timeout=inf"), Error(400, "bad_timeout")),
        case("NaN timeout", get("/channels/news/longpoll?timeout=NaN"), Error(400, "bad_timeout")),
        case("timeout that is not UTF-8", get("/channels/news/longpoll?timeout=%FF"), Error(400, "bad_timeout")),
        case("timeout past f64", get(&format!("/channels/news/longpoll?timeout=1{}", "0".repeat(400))), Error(400, "bad_timeout")),
        case("empty timeout", get("/channels/news/longpoll?timeout="), Error(400, "bad_timeout")),
        case("lone percent sign", get(&format!("/channels/news/poll?after=%&x=1&after={id}")), Error(400, "bad_cursor")),
        case("bad escape", get("/channels/news/poll?after=%ZZ"), Error(400, "bad_cursor")),
        case("separators only", get("/channels/news/poll?&&&==&="), Status(200)),
        case("1,000 unknown parameters", get(&format!("/channels/news/poll?{}", "x=1&".repeat(1_000))), Status(200)),
        case("a query past the head limit", get(&format!("/channels/news/poll?{}", "x=1&".repeat(10_000))), Status(431)),
        case("repeated after: the first wins", get(&format!("/channels/news/poll?after={id}&after=garbage")), Status(200)),
        case("non-UTF-8 key is ignored", get("/channels/news/poll?%FF=1"), Status(200)),
        // Methods and paths.
        case("PUT a channel", request("PUT", "/channels/news", "content-length: 0\r\n", b""), Error(405, "method_not_allowed")),
        case("PATCH a channel", request("PATCH", "/channels/news", "content-length: 0\r\n", b""), Error(405, "method_not_allowed")),
        case("HEAD a stream", request("HEAD", "/channels/news/sse", "", b""), Status(405)),
        case("OPTIONS a channel", request("OPTIONS", "/channels/news", "", b""), Error(405, "method_not_allowed")),
        case("TRACE", request("TRACE", "/channels/news", "", b""), Error(405, "method_not_allowed")),
        case("POST to a stream", publish("/channels/news/sse", b"x"), Error(405, "method_not_allowed")),
        case("made-up method", request("BREW", "/channels/news", "", b""), Error(405, "method_not_allowed")),
        case("lower-case method", request("get", "/healthz", "", b""), Error(405, "method_not_allowed")),
        case("unknown technique", get("/channels/news/carrier-pigeon"), Error(404, "not_found")),
        case("path past every route", get("/channels/news/messages/a/b"), Error(404, "not_found")),
        case("dot segments out of the root", get("/../../etc/passwd"), Error(404, "not_found")),
        case("doubled slash", get("//channels/news"), Error(404, "not_found")),
        case("absolute-form target", get("http://push.test/healthz"), Status(200)),
        case("asterisk-form target", request("OPTIONS", "*", "", b""), Error(404, "not_found")),
        case("70 KB request line", get(&format!("/channels/{}", "a".repeat(70_000))), Status(431)),
        case("HTTP/1.2", b"GET /healthz HTTP/1.2\r\nhost: x\r\nconnection: close\r\n\r\n".to_vec(), Status(400)),
        case("HTTP/2.0 in a request line", b"GET /healthz HTTP/2.0\r\nhost: x\r\nconnection: close\r\n\r\n".to_vec(), Status(400)),
        case("HTTP/0.9", b"GET /healthz\r\n\r\n".to_vec(), Status(400)),
        case("no version", b"GET\r\n\r\n".to_vec(), Status(400)),
        case("binary garbage", (0u8..=255).cycle().take(4096).collect::<Vec<u8>>(), Status(400)),
        case("a WebSocket request without Upgrade", get("/channels/news/ws"), Error(426, "upgrade_required")),
        case("a WebSocket handshake without a key", request("GET", "/channels/news/ws", "upgrade: websocket\r\nconnection: upgrade\r\nsec-websocket-version: 13\r\n", b""), Error(400, "bad_handshake")),
        case("a WebSocket handshake for version 8", request("GET", "/channels/news/ws", "upgrade: websocket\r\nconnection: upgrade\r\nsec-websocket-version: 8\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n", b""), Error(426, "upgrade_required")),
        case("a WebSocket handshake with a short key", request("GET", "/channels/news/ws", "upgrade: websocket\r\nconnection: upgrade\r\nsec-websocket-version: 13\r\nsec-websocket-key: c2hvcnQ=\r\n", b""), Error(400, "bad_handshake")),
    ];
    // Slowloris: dropped without an answer once the head's time is up.
    cases.extend([
        case("nothing at all", b"".to_vec(), Dropped),
        case(
            "half a head",
            b"GET /healthz HTTP/1.1\r\nhost: x\r\n".to_vec(),
            Dropped,
        ),
        case(
            "part of the HTTP/2 preface",
            b"PRI * HTTP/2.0\r\n".to_vec(),
            Dropped,
        ),
    ]);
    cases.push(case(
        "a channel that does not exist",
        request("DELETE", "/channels/never-made", "", b""),
        Error(404, "not_found"),
    ));
    cases
}

#[tokio::test]
async fn every_hostile_http1_request_gets_its_answer_and_the_server_keeps_serving() {
    let mut server = process::Running::start(FLAGS);
    let id = publish_text(server.addr(), "news", "first").await;
    let cases = http1_cases(&id);
    let mut wrong = Vec::new();
    for case in &cases {
        let answer = tokio::time::timeout(CASE_DEADLINE, exchange(server.addr(), &case.request))
            .await
            .unwrap_or_else(|_| panic!("the server hung on {}", case.name));
        let got = outcome(&answer);
        if got != case.expect {
            wrong.push(format!(
                "{}: expected {:?}, got {:?}: {}",
                case.name,
                case.expect,
                got,
                String::from_utf8_lossy(&answer[..answer.len().min(300)])
            ));
        }
        server.assert_alive();
        assert_serving(server.addr(), &case.name).await;
    }
    assert!(
        wrong.is_empty(),
        "{} of {} cases were answered wrongly:\n{}",
        wrong.len(),
        cases.len(),
        wrong.join("\n")
    );
    assert!(cases.len() >= 80, "the table has {} cases", cases.len());
}
