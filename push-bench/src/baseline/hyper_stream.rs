//! `hyper-stream`: SSE and NDJSON on a bare hyper 1 server, the least a
//! streaming response costs on hyper.
//!
//! A tokio `TcpListener`, and hyper's `server::conn::http1` builder serving
//! each connection (`TokioIo`, `service_fn`), or its `http2` builder when
//! the connection opens with the HTTP/2 preface (h2c), told apart by peeking
//! at the first bytes as push-server does. Not hyper-util's `auto` builder:
//! its connection future holds both protocols' state, which would raise the
//! floor that `idle-memory` measures push against by several KiB.
//! A publish (its body read with `BodyExt::collect`) frames its event once
//! per technique into `Bytes` that a `tokio::sync::broadcast` hands to
//! every subscriber; a subscription's response body is a `StreamBody` over
//! the receiver's `BroadcastStream`, each event one data frame, which hyper
//! writes with chunked encoding (HTTP/1.1) or as a DATA frame (h2c).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Either, Full, Limited, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::server::conn::{http1, http2};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::{TcpListener, TcpStream};
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::{Stream, StreamExt as _};

use super::{
    accept, content_type, position, published_body, route, Baseline, Channels, Framed, Route,
    MAX_PUBLISH_BYTES,
};
use crate::technique::Technique;
use crate::Result;

/// Serves until the task is dropped.
pub(super) async fn serve(listener: TcpListener) -> Result<()> {
    let channels = Arc::new(Channels::<Framed>::new());
    let mut refusals = 0_u64;
    loop {
        let stream = accept(&listener, Baseline::HyperStream, &mut refusals).await;
        let channels = Arc::clone(&channels);
        tokio::spawn(async move {
            let service = service_fn(move |request| handle(request, Arc::clone(&channels)));
            // An error ends this connection only.
            if opens_with_preface(&stream).await {
                let connection = http2::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service);
                let _ = Box::pin(connection).await;
            } else {
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            }
        });
    }
}

/// Whether the client's first bytes are the HTTP/2 preface, peeked at so
/// that hyper reads them again.
async fn opens_with_preface(stream: &TcpStream) -> bool {
    const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    let mut first = [0u8; PREFACE.len()];
    loop {
        let seen = match stream.peek(&mut first).await {
            Ok(0) | Err(_) => return false,
            Ok(seen) => seen,
        };
        if first[..seen] != PREFACE[..seen] {
            return false;
        }
        if seen == PREFACE.len() {
            return true;
        }
        // A preface cut short: peeking again at once would spin.
        tokio::time::sleep(Duration::from_millis(1)).await;
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
        Route::Subscribe(name, technique @ (Technique::Sse | Technique::Ndjson)) => {
            let (last, receiver) = channels.subscribe(name);
            let events = BroadcastStream::new(receiver)
                // Lagged: the subscriber is dropped, its stream ends.
                .map_while(|event| event.ok())
                .map(move |event| Ok(Frame::data(event.bytes(technique).clone())));
            let first = position(technique, last);
            let body = tokio_stream::once(Ok(Frame::data(first))).chain(events);
            let mut response = Response::new(Either::Left(StreamBody::new(body)));
            let headers = response.headers_mut();
            headers.insert(
                CONTENT_TYPE,
                HeaderValue::from_static(content_type(technique)),
            );
            headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            Ok(response)
        }
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
            let n = channels.publish(&name, |n| Framed::new(n, data));
            let mut response =
                Response::new(Either::Right(Full::new(Bytes::from(published_body(n)))));
            *response.status_mut() = StatusCode::CREATED;
            response
                .headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            Ok(response)
        }
        Route::Subscribe(_, Technique::Ws) | Route::NotFound => Ok(status(StatusCode::NOT_FOUND)),
    }
}

/// An answer with `status` and no body.
fn status<S>(status: StatusCode) -> Response<Body<S>> {
    let mut response = Response::new(Either::Right(Full::new(Bytes::new())));
    *response.status_mut() = status;
    response
}
