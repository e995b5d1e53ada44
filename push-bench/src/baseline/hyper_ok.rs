//! `hyper-ok`: a bare hyper server that answers at once, the request rate
//! a long-poll cycle of push is measured against; and `hyper-held`, the same
//! server holding each `GET` until the next publish.
//!
//! A tokio `TcpListener`, and hyper-util's `server::conn::auto::Builder`
//! serving each connection (`TokioIo`, `service_fn`): HTTP/1.1, or h2c
//! with prior knowledge, told apart by the connection's first bytes. No
//! framework, no state but a counter:
//!
//! - every `GET`, whatever its path and query, answers `200` with
//!   `content-type: application/json` and the static body [`LONG_POLL_ANSWER`]:
//!   push's long-poll answer when nothing is new, so a long-poll client
//!   takes a cursor from it and polls again exactly as it does with push.
//!   `hyper-held` answers it once the next publish is counted (or after
//!   30 s), a `tokio::sync::watch` of the count waking every held `GET`,
//!   unless its query has `timeout=0`;
//! - `POST /channels/{name}` reads its body (at most
//!   [`MAX_PUBLISH_BYTES`](super::MAX_PUBLISH_BYTES), else `413`) and
//!   answers `201` with `{"id":"0000000000000000-n"}`, `n` counting the
//!   publishes of the whole server (the body goes nowhere);
//! - anything else answers `404`.

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_TYPE};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::{accept, published_body, route, Baseline, Route, MAX_PUBLISH_BYTES};
use crate::Result;

/// The body of every `GET`: push's long-poll answer when nothing is new
/// (no messages, the cursor of a channel with no events).
const LONG_POLL_ANSWER: &str = r#"{"messages":[],"cursor":"0000000000000000-0"}"#;

/// How long `hyper-held` holds a `GET` when nothing is published, as push
/// holds a long poll with `?timeout=30`.
const HOLD: Duration = Duration::from_secs(30);

/// What every connection shares: the publishes counted, and their watch.
struct Counter {
    published: AtomicU64,
    watch: watch::Sender<u64>,
}

/// Serves `baseline` (`hyper-ok`, or `hyper-held` to hold each `GET`
/// until the next publish) until the task is dropped.
pub(super) async fn serve(listener: TcpListener, baseline: Baseline) -> Result<()> {
    let holds = baseline == Baseline::HyperHeld;
    let counter = Arc::new(Counter {
        published: AtomicU64::new(0),
        watch: watch::Sender::new(0),
    });
    let mut refusals = 0_u64;
    loop {
        let stream = accept(&listener, baseline, &mut refusals).await;
        let counter = Arc::clone(&counter);
        tokio::spawn(async move {
            let service = service_fn(move |request| handle(request, holds, Arc::clone(&counter)));
            // An error ends this connection only.
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn handle(
    request: Request<Incoming>,
    holds: bool,
    counter: Arc<Counter>,
) -> std::result::Result<Response<Full<Bytes>>, Infallible> {
    if request.method() == Method::GET {
        // `?timeout=0` asks for the answer at once, as push gives it.
        let at_once = request
            .uri()
            .query()
            .is_some_and(|query| query.split('&').any(|pair| pair == "timeout=0"));
        if holds && !at_once {
            let mut next = counter.watch.subscribe();
            let _ = tokio::time::timeout(HOLD, next.changed()).await;
        }
        let mut response =
            Response::new(Full::new(Bytes::from_static(LONG_POLL_ANSWER.as_bytes())));
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        return Ok(response);
    }
    if !matches!(
        route(request.method().as_str(), request.uri().path()),
        Route::Publish(_)
    ) {
        return Ok(status(StatusCode::NOT_FOUND));
    }
    if Limited::new(request.into_body(), MAX_PUBLISH_BYTES)
        .collect()
        .await
        .is_err()
    {
        return Ok(status(StatusCode::PAYLOAD_TOO_LARGE));
    }
    let n = counter.published.fetch_add(1, Ordering::Relaxed) + 1;
    counter.watch.send_replace(n);
    let mut response = Response::new(Full::new(Bytes::from(published_body(n))));
    *response.status_mut() = StatusCode::CREATED;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(response)
}

/// An answer with `status` and no body.
fn status(status: StatusCode) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = status;
    response
}
