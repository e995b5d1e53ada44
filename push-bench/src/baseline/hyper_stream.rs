//! `hyper-stream`: SSE (and NDJSON) on a bare hyper 1 server, the least a
//! streaming response costs on hyper.
//!
//! A tokio `TcpListener`, and `hyper::server::conn::http1` serving each
//! connection (`TokioIo`, `service_fn`). A publish (its body read with
//! `BodyExt::collect`) frames its event once per technique into `Bytes`
//! (`Framed`) that a `tokio::sync::broadcast` hands to every subscriber;
//! a subscription's response body is a `StreamBody` over the receiver's
//! `BroadcastStream`, each event one data frame, which hyper writes with
//! chunked encoding.
//!
//! Besides the SSE routes of every baseline, it answers
//! `GET /channels/{name}/stream` (push's NDJSON route, for the idle-memory
//! floor of NDJSON) with `content-type: application/x-ndjson`: the line
//! `{"signal":"position","cursor":"0000000000000000-N"}`, then each event
//! as `{"id":"0000000000000000-n","data":"…"}` and a newline.

use std::convert::Infallible;
use std::fmt::Write as _;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Either, Full, Limited, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::{Stream, StreamExt as _};

use super::{
    accept, event_block, event_id, position_block, published_body, route, Baseline, Channels,
    Route, MAX_PUBLISH_BYTES,
};
use crate::Result;

/// Serves until the task is dropped.
pub(super) async fn serve(listener: TcpListener) -> Result<()> {
    let channels = Arc::new(Channels::<Framed>::new());
    let mut refusals = 0_u64;
    loop {
        let stream = accept(&listener, Baseline::HyperStream, true, &mut refusals).await;
        let channels = Arc::clone(&channels);
        tokio::spawn(async move {
            let service = service_fn(move |request| handle(request, Arc::clone(&channels)));
            // An error ends this connection only.
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// The body of an answer: a subscription's events, or all at once.
type Body<S> = Either<StreamBody<S>, Full<Bytes>>;

async fn handle(
    request: Request<Incoming>,
    channels: Arc<Channels<Framed>>,
) -> std::result::Result<
    Response<Body<impl Stream<Item = std::result::Result<Frame<Bytes>, Infallible>>>>,
    Infallible,
> {
    let (method, path) = (request.method().as_str(), request.uri().path());
    match route(method, path) {
        Route::Subscribe(name) => Ok(subscribe(&channels, name, Technique::Sse)),
        Route::Publish(name) => {
            let name = name.to_owned();
            let body = match Limited::new(request.into_body(), MAX_PUBLISH_BYTES)
                .collect()
                .await
            {
                Ok(body) => body.to_bytes(),
                Err(_) => return Ok(status(StatusCode::PAYLOAD_TOO_LARGE)),
            };
            let Ok(data) = std::str::from_utf8(&body) else {
                return Ok(status(StatusCode::BAD_REQUEST));
            };
            let n = channels.publish(&name, |n| Framed {
                sse: event_block(n, data),
                ndjson: event_line(n, data),
            });
            let mut response =
                Response::new(Either::Right(Full::new(Bytes::from(published_body(n)))));
            *response.status_mut() = StatusCode::CREATED;
            response
                .headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            Ok(response)
        }
        Route::NotFound => match ndjson_route(method, path) {
            Some(name) => Ok(subscribe(&channels, name, Technique::Ndjson)),
            None => Ok(status(StatusCode::NOT_FOUND)),
        },
    }
}

/// Subscribes to channel `name`: a `200` whose body streams the position,
/// then every event, framed for `technique`.
fn subscribe(
    channels: &Channels<Framed>,
    name: &str,
    technique: Technique,
) -> Response<Body<impl Stream<Item = std::result::Result<Frame<Bytes>, Infallible>>>> {
    let (last, receiver) = channels.subscribe(name);
    let events = BroadcastStream::new(receiver)
        // Lagged: the subscriber is dropped, its stream ends.
        .map_while(|event| event.ok())
        .map(move |event| Ok(Frame::data(event.take(technique))));
    let (first, content_type) = match technique {
        Technique::Sse => (position_block(last), "text/event-stream"),
        Technique::Ndjson => (position_line(last), "application/x-ndjson"),
    };
    let body = tokio_stream::once(Ok(Frame::data(first))).chain(events);
    let mut response = Response::new(Either::Left(StreamBody::new(body)));
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// An answer with `status` and no body.
fn status<S>(status: StatusCode) -> Response<Body<S>> {
    let mut response = Response::new(Either::Right(Full::new(Bytes::new())));
    *response.status_mut() = status;
    response
}

/// What a subscription streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Technique {
    Sse,
    Ndjson,
}

/// An event framed once for each technique at its publish, so that no
/// subscriber frames it again.
#[derive(Debug, Clone)]
struct Framed {
    sse: Bytes,
    ndjson: Bytes,
}

impl Framed {
    fn take(self, technique: Technique) -> Bytes {
        match technique {
            Technique::Sse => self.sse,
            Technique::Ndjson => self.ndjson,
        }
    }
}

/// The channel of `GET /channels/{name}/stream`, push's NDJSON route.
fn ndjson_route<'a>(method: &str, path: &'a str) -> Option<&'a str> {
    let name = path.strip_prefix("/channels/")?.strip_suffix("/stream")?;
    (method == "GET" && !name.is_empty() && !name.contains('/')).then_some(name)
}

/// The line an NDJSON subscription starts with: push's `position` signal
/// at event `n` (0 if none).
fn position_line(n: u64) -> Bytes {
    Bytes::from(format!(
        "{{\"signal\":\"position\",\"cursor\":\"{}\"}}\n",
        event_id(n)
    ))
}

/// Event `n` as an NDJSON line: `{"id":"…","data":"…"}` and a newline, the
/// data a JSON string.
fn event_line(n: u64, data: &str) -> Bytes {
    let mut line = String::with_capacity(data.len() + 48);
    line.push_str("{\"id\":\"");
    line.push_str(&event_id(n));
    line.push_str("\",\"data\":\"");
    for c in data.chars() {
        match c {
            '"' => line.push_str("\\\""),
            '\\' => line.push_str("\\\\"),
            '\n' => line.push_str("\\n"),
            '\r' => line.push_str("\\r"),
            '\t' => line.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(line, "\\u{:04x}", u32::from(c));
            }
            c => line.push(c),
        }
    }
    line.push_str("\"}\n");
    Bytes::from(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_the_ndjson_stream() {
        assert_eq!(ndjson_route("GET", "/channels/news/stream"), Some("news"));
        for (method, path) in [
            ("POST", "/channels/news/stream"),
            ("GET", "/channels//stream"),
            ("GET", "/channels/a/b/stream"),
            ("GET", "/channels/news/sse"),
            ("GET", "/stream"),
        ] {
            assert_eq!(ndjson_route(method, path), None, "{method} {path}");
        }
    }

    #[test]
    fn frames_ndjson_lines_as_json() {
        assert_eq!(
            &position_line(3)[..],
            b"{\"signal\":\"position\",\"cursor\":\"0000000000000000-3\"}\n"
        );
        assert_eq!(
            &event_line(4, "seq=00000004..")[..],
            b"{\"id\":\"0000000000000000-4\",\"data\":\"seq=00000004..\"}\n"
        );
        assert_eq!(
            &event_line(5, "a\"b\\c\nd\re\tf\u{1}\u{e9}")[..],
            "{\"id\":\"0000000000000000-5\",\"data\":\"a\\\"b\\\\c\\nd\\re\\tf\\u0001\u{e9}\"}\n"
                .as_bytes()
        );
    }
}
