//! `raw-writer`: SSE and NDJSON with no HTTP library, the fastest thing a
//! careful user could write by hand. HTTP/1.1 only.
//!
//! A tokio `TcpListener`; each connection reads one request head (up to the
//! blank line: the method, the target and `content-length`) and its body,
//! answers it, and closes. There is no chunked encoding: an SSE or NDJSON
//! response says `connection: close` and its body runs until the
//! connection closes.
//!
//! A publish frames its event once per technique (an SSE block and an
//! NDJSON line), under the channel's lock, into `Bytes` that a
//! `tokio::sync::broadcast` hands to every subscriber (a reference count,
//! no copy). Each subscriber's task waits for an event, takes
//! everything else already queued for it, and writes the lot with one
//! vectored write, so a subscriber that fell behind catches up in one
//! system call. It also watches its socket, so a subscriber that hangs up is
//! let go at once rather than at the next event.

use std::io::{self, IoSlice};
use std::sync::Arc;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast::error::TryRecvError;

use super::{
    accept, content_type, position, published_body, route, Baseline, Channels, Framed, Route,
    MAX_PUBLISH_BYTES,
};
use crate::technique::Technique;
use crate::Result;

/// The longest request head read; a longer one is answered `431`.
const MAX_HEAD_BYTES: usize = 8 * 1024;

/// The head of every response of a subscription of `technique`.
fn stream_head(technique: Technique) -> String {
    format!(
        "HTTP/1.1 200 OK\r\ncontent-type: {}\r\ncache-control: no-cache\r\n\
         connection: close\r\n\r\n",
        content_type(technique)
    )
}

/// Serves until the task is dropped.
pub(super) async fn serve(listener: TcpListener) -> Result<()> {
    let channels = Arc::new(Channels::<Framed>::new());
    let mut refusals = 0_u64;
    loop {
        let stream = accept(&listener, Baseline::RawWriter, &mut refusals).await;
        tokio::spawn(connection(stream, Arc::clone(&channels)));
    }
}

/// A request as read: what [`route`] needs, and the body.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Request {
    pub(super) method: String,
    pub(super) target: String,
    pub(super) body: Vec<u8>,
}

/// Why a request could not be read, as the status line to answer.
pub(super) type Refusal = &'static str;

async fn connection(mut stream: TcpStream, channels: Arc<Channels<Framed>>) {
    let request = match read_request(&mut stream).await {
        Ok(Some(request)) => request,
        Ok(None) => return,
        Err(status) => return answer(&mut stream, status, None, b"").await,
    };
    match route(&request.method, &request.target) {
        Route::Subscribe(name, technique @ (Technique::Sse | Technique::Ndjson)) => {
            let name = name.to_owned();
            drop(request);
            subscriber(stream, &channels, &name, technique).await;
        }
        Route::Publish(name) => {
            publish(&mut stream, &channels, name, &request.body, Framed::new).await;
        }
        Route::Subscribe(_, Technique::Ws) | Route::NotFound => {
            answer(&mut stream, "404 Not Found", None, b"").await;
        }
    }
}

/// Publishes `body` on channel `name`, framed once by `frame` (given the
/// event's number and its text), and answers `201` with its id (`400` when
/// it is not UTF-8).
pub(super) async fn publish<T: Clone>(
    stream: &mut TcpStream,
    channels: &Channels<T>,
    name: &str,
    body: &[u8],
    frame: impl FnOnce(u64, &str) -> T,
) {
    let Ok(data) = std::str::from_utf8(body) else {
        return answer(stream, "400 Bad Request", None, b"").await;
    };
    let n = channels.publish(name, |n| frame(n, data));
    let body = published_body(n);
    answer(
        stream,
        "201 Created",
        Some("application/json"),
        body.as_bytes(),
    )
    .await;
}

/// Reads one request: its head, then `content-length` bytes of body.
/// `Ok(None)` when the connection closed (or failed) before a whole request
/// came; `Err` with the status to answer when it is malformed or too big.
pub(super) async fn read_request(
    stream: &mut (impl AsyncRead + Unpin),
) -> std::result::Result<Option<Request>, Refusal> {
    let mut buffer = Vec::with_capacity(1024);
    let head_end = loop {
        if let Some(at) = buffer.windows(4).position(|window| window == b"\r\n\r\n") {
            break at + 4;
        }
        if buffer.len() >= MAX_HEAD_BYTES {
            return Err("431 Request Header Fields Too Large");
        }
        match stream.read_buf(&mut buffer).await {
            Ok(0) | Err(_) => return Ok(None),
            Ok(_) => {}
        }
    };
    let head = parse_head(&buffer[..head_end]).ok_or("400 Bad Request")?;
    if head.transfer_encoding {
        // A chunked body is not read here: ask for a length.
        return Err("411 Length Required");
    }
    let length = head.content_length.unwrap_or(0);
    if length > MAX_PUBLISH_BYTES {
        return Err("413 Content Too Large");
    }
    let (method, target) = (head.method.to_owned(), head.target.to_owned());
    let mut body = buffer.split_off(head_end);
    while body.len() < length {
        body.reserve(length - body.len());
        match stream.read_buf(&mut body).await {
            Ok(0) | Err(_) => return Ok(None),
            Ok(_) => {}
        }
    }
    body.truncate(length);
    Ok(Some(Request {
        method,
        target,
        body,
    }))
}

/// The parts of a request head that matter here.
#[derive(Debug, PartialEq, Eq)]
struct Head<'a> {
    method: &'a str,
    target: &'a str,
    content_length: Option<usize>,
    /// Whether it has a `transfer-encoding` (a chunked body, say).
    transfer_encoding: bool,
}

/// Reads the request line, `content-length` and whether there is a
/// `transfer-encoding` in a head (which ends with its blank line). `None` when it is not a request head or the length is
/// not a number.
fn parse_head(head: &[u8]) -> Option<Head<'_>> {
    let head = std::str::from_utf8(head).ok()?;
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next()?.split(' ');
    let (method, target, version) = (
        request_line.next()?,
        request_line.next()?,
        request_line.next()?,
    );
    if method.is_empty() || !target.starts_with('/') || !version.starts_with("HTTP/1.") {
        return None;
    }
    let mut content_length = None;
    let mut transfer_encoding = false;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let name = name.trim();
        if name.eq_ignore_ascii_case("content-length") {
            content_length = Some(value.trim().parse().ok()?);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            transfer_encoding = true;
        }
    }
    Some(Head {
        method,
        target,
        content_length,
        transfer_encoding,
    })
}

/// Answers with `status` and `body` in one write, then closes.
pub(super) async fn answer(
    stream: &mut TcpStream,
    status: &str,
    content_type: Option<&str>,
    body: &[u8],
) {
    let content_type = content_type
        .map(|content_type| format!("content-type: {content_type}\r\n"))
        .unwrap_or_default();
    let mut response = format!(
        "HTTP/1.1 {status}\r\n{content_type}content-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    response.extend_from_slice(body);
    if stream.write_all(&response).await.is_ok() {
        let _ = stream.shutdown().await;
    }
}

/// Streams channel `name` to `stream` as `technique` (SSE or NDJSON) until
/// the subscriber hangs up, falls more than the channel's capacity behind,
/// or a write fails.
async fn subscriber(
    mut stream: TcpStream,
    channels: &Channels<Framed>,
    name: &str,
    technique: Technique,
) {
    let (last, mut receiver) = channels.subscribe(name);
    let mut first = stream_head(technique).into_bytes();
    first.extend_from_slice(&position(technique, last));
    if stream.write_all(&first).await.is_err() {
        return;
    }
    drop(first);
    let (mut reader, mut writer) = stream.split();
    let mut batch: Vec<Bytes> = Vec::new();
    loop {
        let event = tokio::select! {
            event = receiver.recv() => event,
            () = hung_up(&mut reader) => return,
        };
        // Lagged or closed: the stream ends.
        let Ok(event) = event else { return };
        batch.push(event.bytes(technique).clone());
        loop {
            match receiver.try_recv() {
                Ok(event) => batch.push(event.bytes(technique).clone()),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Lagged(_) | TryRecvError::Closed) => return,
            }
        }
        if write_all_vectored(&mut writer, &batch).await.is_err() {
            return;
        }
        batch.clear();
    }
}

/// Returns once `reader` is at its end or fails; whatever the client sends
/// after its request is read and dropped.
async fn hung_up(reader: &mut (impl AsyncRead + Unpin)) {
    let mut scratch = [0_u8; 64];
    while let Ok(1..) = reader.read(&mut scratch).await {}
}

/// Writes every buffer of `batch`, in order, with as few vectored writes
/// as the socket takes.
async fn write_all_vectored(
    writer: &mut (impl AsyncWrite + Unpin),
    batch: &[Bytes],
) -> io::Result<()> {
    if let [only] = batch {
        return writer.write_all(only).await;
    }
    let mut slices: Vec<IoSlice<'_>> = batch.iter().map(|bytes| IoSlice::new(bytes)).collect();
    let mut slices = &mut slices[..];
    while !slices.is_empty() {
        let written = writer.write_vectored(slices).await?;
        if written == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        IoSlice::advance_slices(&mut slices, written);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_request_line_and_the_content_length() {
        assert_eq!(
            parse_head(b"POST /channels/a HTTP/1.1\r\nhost: x\r\nContent-Length: 12\r\n\r\n"),
            Some(Head {
                method: "POST",
                target: "/channels/a",
                content_length: Some(12),
                transfer_encoding: false,
            })
        );
        assert_eq!(
            parse_head(b"GET /channels/a/sse HTTP/1.0\r\n\r\n"),
            Some(Head {
                method: "GET",
                target: "/channels/a/sse",
                content_length: None,
                transfer_encoding: false,
            })
        );
        assert!(
            parse_head(b"POST /channels/a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n")
                .unwrap()
                .transfer_encoding
        );
        for head in [
            &b"GET /channels/a/sse\r\n\r\n"[..],
            b"GET channels HTTP/1.1\r\n\r\n",
            b"POST /channels/a HTTP/1.1\r\ncontent-length: many\r\n\r\n",
            b"\r\n\r\n",
            b"GET /\xff HTTP/1.1\r\n\r\n",
        ] {
            assert_eq!(parse_head(head), None, "{}", head.escape_ascii());
        }
    }

    #[tokio::test]
    async fn reads_a_request_and_its_body_across_reads() {
        let (mut client, mut server) = tokio::io::duplex(64);
        let reading = tokio::spawn(async move { read_request(&mut server).await });
        client
            .write_all(b"POST /channels/a HTTP/1.1\r\ncontent-length: 5\r\n\r\nhel")
            .await
            .unwrap();
        client.write_all(b"lo, and more").await.unwrap();
        assert_eq!(
            reading.await.unwrap(),
            Ok(Some(Request {
                method: "POST".to_owned(),
                target: "/channels/a".to_owned(),
                body: b"hello".to_vec(),
            }))
        );
    }

    #[tokio::test]
    async fn refuses_what_it_does_not_read_and_stops_at_a_hang_up() {
        let (mut client, mut server) = tokio::io::duplex(64 * 1024);
        let head = format!(
            "POST /channels/a HTTP/1.1\r\ncontent-length: {}\r\n\r\n",
            MAX_PUBLISH_BYTES + 1
        );
        client.write_all(head.as_bytes()).await.unwrap();
        assert_eq!(
            read_request(&mut server).await,
            Err("413 Content Too Large")
        );

        let (mut client, mut server) = tokio::io::duplex(64 * 1024);
        client
            .write_all(b"POST /channels/a HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n")
            .await
            .unwrap();
        assert_eq!(read_request(&mut server).await, Err("411 Length Required"));

        let (mut client, mut server) = tokio::io::duplex(64 * 1024);
        client.write_all(&[b'x'; MAX_HEAD_BYTES + 1]).await.unwrap();
        assert_eq!(
            read_request(&mut server).await,
            Err("431 Request Header Fields Too Large")
        );

        let (mut client, mut server) = tokio::io::duplex(64);
        client.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
        drop(client);
        assert_eq!(read_request(&mut server).await, Ok(None));
    }

    #[tokio::test]
    async fn writes_a_batch_in_order() {
        let (mut client, mut server) = tokio::io::duplex(4);
        let batch = [
            Bytes::from_static(b"id: 1\n\n"),
            Bytes::from_static(b"id: 2\n\n"),
            Bytes::from_static(b"id: 3\n\n"),
        ];
        let writing = tokio::spawn(async move {
            write_all_vectored(&mut server, &batch).await.unwrap();
        });
        let mut received = vec![0; 21];
        client.read_exact(&mut received).await.unwrap();
        writing.await.unwrap();
        assert_eq!(received, b"id: 1\n\nid: 2\n\nid: 3\n\n");
    }
}
