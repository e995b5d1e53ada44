//! warp filters for `push`: the whole wire contract, mounted in a warp app.
//!
//! [`routes`] answers every route of the wire contract (PROTOCOL.md) under
//! `/channels` and `/healthz`: publishing, describing and closing channels,
//! one event by id, and every technique warp's server carries (short and
//! long polling, Server-Sent Events, NDJSON streaming, WebSocket over
//! HTTP/1.1, and HTTP/2 push in its inline form). It is not a second
//! implementation: each request goes to push-tower's
//! [`Router`](push_tower::Router), so the subscribe step, the delivery engine,
//! the framings and the JSON errors are the ones every push server uses, and
//! each event's shared bytes reach warp's body without a per-subscriber copy.
//! Paths outside those two are rejected as warp rejects any unmatched path,
//! so the app's own routes serve them.
//!
//! ```no_run
//! use push_core::{Hub, HubConfig};
//! use push_tower::{Config, Push};
//! use warp::Filter;
//!
//! # async fn run() {
//! let push = Push::new(Hub::new(HubConfig::default()), Config::default());
//! let hello = warp::path("hello").map(|| "hello");
//! let app = push_warp::routes(push.clone()).or(hello);
//! let shutdown = async move {
//!     tokio::signal::ctrl_c().await.unwrap();
//!     // Streams end with the `shutdown` signal, so the server can drain.
//!     push.shutdown();
//! };
//! warp::serve(app)
//!     .bind(([127, 0, 0, 1], 8081))
//!     .await
//!     .graceful(shutdown)
//!     .run()
//!     .await;
//! # }
//! ```
//!
//! **What warp's server cannot carry.** warp's server does not enable
//! HTTP/2 extended `CONNECT` and cannot push, so WebSocket over HTTP/2 and
//! HTTP/2 server push (promise mode) need push-tower's
//! [`serve`](push_tower::serve()); the same filters run there once turned
//! into a tower service with `warp::service`.

use std::convert::Infallible;

use bytes::{Buf, Bytes};
use futures_util::{Stream, TryStreamExt};
use http::header::{self, HeaderValue};
use http::{HeaderMap, Method, Request, StatusCode};
use http_body::{Body as _, Frame};
use http_body_util::{BodyExt, StreamBody};
use hyper::upgrade::OnUpgrade;
use push_core::Channels;
use push_tower::{Push, PushBody};
use sync_wrapper::SyncStream;
use tower_service::Service;
use warp::filters::path::FullPath;
use warp::reply::Response;
use warp::{Filter, Rejection, Reply};

pub use push_core;
pub use push_tower;

/// Every route of the wire contract, answered by push-tower's router; see
/// the [crate docs](crate).
pub fn routes<C: Channels>(
    push: Push<C>,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    let router = push.router();
    ours()
        .and(warp::method())
        .and(warp::path::full())
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .and(warp::header::headers_cloned())
        .and(warp::ext::optional::<OnUpgrade>())
        .and(warp::body::stream())
        .and_then(
            move |method: Method,
                  path: FullPath,
                  query: String,
                  headers: HeaderMap,
                  on_upgrade: Option<OnUpgrade>,
                  body| {
                let mut router = router.clone();
                async move {
                    let request = request(method, &path, &query, headers, on_upgrade, body);
                    let Ok(response) = router.call(request).await;
                    Ok::<_, Infallible>(reply(response))
                }
            },
        )
}

/// Matches the paths of the wire contract, rejecting others untouched.
fn ours() -> impl Filter<Extract = (), Error = Rejection> + Copy {
    warp::path::full()
        .and_then(|path: FullPath| async move {
            let path = path.as_str();
            if path == "/healthz" || path.starts_with("/channels/") {
                Ok(())
            } else {
                Err(warp::reject::not_found())
            }
        })
        .untuple_one()
}

/// The request push-tower's router reads, from what warp extracted.
fn request<S, B>(
    method: Method,
    path: &FullPath,
    query: &str,
    headers: HeaderMap,
    on_upgrade: Option<OnUpgrade>,
    body: S,
) -> Request<StreamBody<impl Stream<Item = Result<Frame<Bytes>, warp::Error>> + Send>>
where
    S: Stream<Item = Result<B, warp::Error>> + Send + 'static,
    B: Buf,
{
    let uri = if query.is_empty() {
        path.as_str().to_owned()
    } else {
        format!("{}?{query}", path.as_str())
    };
    let body =
        StreamBody::new(body.map_ok(|mut data| Frame::data(data.copy_to_bytes(data.remaining()))));
    let mut request = Request::new(body);
    *request.method_mut() = method;
    *request.uri_mut() = uri.parse().unwrap_or_default();
    *request.headers_mut() = headers;
    if let Some(on_upgrade) = on_upgrade {
        request.extensions_mut().insert(on_upgrade);
    }
    request
}

/// push-tower's response as warp's: the body's shared chunks are handed on
/// as they are.
fn reply(response: http::Response<PushBody>) -> Response {
    let (mut parts, body) = response.into_parts();
    // warp's stream bodies have no length; a complete answer keeps it as a
    // header, so clients that read error bodies by length (a WebSocket
    // handshake's, say) get them whole.
    let bodiless = parts.status.is_informational()
        || parts.status == StatusCode::NO_CONTENT
        || parts.status == StatusCode::NOT_MODIFIED;
    if let (Some(length), false) = (body.size_hint().exact(), bodiless) {
        parts
            .headers
            .entry(header::CONTENT_LENGTH)
            .or_insert_with(|| HeaderValue::from(length));
    }
    let frames = body.into_data_stream();
    let mut reply = warp::reply::stream(SyncStream::new(frames)).into_response();
    *reply.status_mut() = parts.status;
    *reply.headers_mut() = parts.headers;
    reply
}
