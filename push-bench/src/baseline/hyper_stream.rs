//! `hyper-stream`: SSE and NDJSON on a bare hyper 1 server, the least a
//! streaming response costs on hyper.
//!
//! A tokio `TcpListener`, and hyper-util's `server::conn::auto` builder
//! serving each connection (`TokioIo`, `service_fn`): HTTP/1.1, or h2c
//! when the connection opens with the HTTP/2 preface, as push-server does.
//! A publish (its body read with `BodyExt::collect`) frames its event once
//! per technique into `Bytes` that a `tokio::sync::broadcast` hands to
//! every subscriber; a subscription's response body is a `StreamBody` over
//! the receiver's `BroadcastStream`, each event one data frame, which hyper
//! writes with chunked encoding (HTTP/1.1) or as a DATA frame (h2c).

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Either, Full, Limited, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
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
            let _ = auto::Builder::new(TokioExecutor::new())
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
