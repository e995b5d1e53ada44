//! warp filters for `push`: the whole wire contract, mounted in a warp app.
//!
//! [`routes`] answers every route of the wire contract (PROTOCOL.md) under
//! `/channels` and `/healthz`: publishing, describing and closing channels,
//! one event by id, and every technique warp's server carries (short and
//! long polling, Server-Sent Events, NDJSON streaming, WebSocket over
//! HTTP/1.1, and HTTP/2 push in its inline form). It is not a second
//! implementation: each request goes to push-tower's
//! [`Router`], so the subscribe step, the delivery engine,
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
use push_core::{Channels, Technique};
use push_tower::{Push, PushBody, Router};
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
    ours().and(warp::path::full()).and(exchange()).and_then(
        move |path: FullPath, exchange: Exchange<_>| {
            let router = router.clone();
            async move { Ok::<_, Infallible>(exchange.answer(router, path.as_str()).await) }
        },
    )
}

/// `GET /channels/{name}/poll`: short polling (push-tower's
/// [`poll`](push_tower::poll)).
pub fn poll<C: Channels>(
    push: Push<C>,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    technique(push, Technique::Poll)
}

/// `GET /channels/{name}/longpoll`: long polling (push-tower's
/// [`long_poll`](push_tower::long_poll)).
pub fn long_poll<C: Channels>(
    push: Push<C>,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    technique(push, Technique::LongPoll)
}

/// `GET /channels/{name}/sse`: Server-Sent Events (push-tower's
/// [`sse`](push_tower::sse)).
pub fn sse<C: Channels>(
    push: Push<C>,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    technique(push, Technique::Sse)
}

/// `GET /channels/{name}/stream`: NDJSON streaming (push-tower's
/// [`ndjson`](push_tower::ndjson)).
pub fn ndjson<C: Channels>(
    push: Push<C>,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    technique(push, Technique::Ndjson)
}

/// `GET /channels/{name}/ws`: WebSocket over HTTP/1.1 (push-tower's
/// [`ws`](push_tower::ws)). warp's own `ws` filter is not used: it pins its
/// own tungstenite and its default buffers, and copies each message; this
/// takes the connection's upgrade from the request, as warp's filter does,
/// and runs push-tower's socket, with its 512-byte read buffer, coalesced
/// writes and close codes.
pub fn ws<C: Channels>(
    push: Push<C>,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    technique(push, Technique::WebSocket)
}

/// `GET /channels/{name}/push`: HTTP/2 server push in its inline form
/// (push-tower's [`http2_push`](push_tower::http2_push)); warp's server
/// cannot push.
pub fn http2_push<C: Channels>(
    push: Push<C>,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    technique(push, Technique::Http2Push)
}

/// `POST /channels/{name}`: publishing (push-tower's
/// [`publish`](push_tower::publish)); `201 {"id":…}`.
pub fn publish<C: Channels>(
    push: Push<C>,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    let router = push.router();
    warp::post()
        .and(warp::path("channels"))
        .and(warp::path::param::<String>())
        .and(warp::path::end())
        .and(exchange())
        .and_then(move |name: String, exchange: Exchange<_>| {
            let router = router.clone();
            async move {
                Ok::<_, Infallible>(exchange.answer(router, &format!("/channels/{name}")).await)
            }
        })
}

/// One technique's route: `GET /channels/{name}/{segment}`, the name a path
/// parameter, the start position from `Last-Event-ID` or the query.
fn technique<C: Channels>(
    push: Push<C>,
    technique: Technique,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    let router = push.router();
    let segment = technique.path_segment();
    warp::get()
        .and(warp::path("channels"))
        .and(warp::path::param::<String>())
        .and(warp::path(segment))
        .and(warp::path::end())
        .and(exchange())
        .and_then(move |name: String, exchange: Exchange<_>| {
            let router = router.clone();
            async move {
                let path = format!("/channels/{name}/{segment}");
                Ok::<_, Infallible>(exchange.answer(router, &path).await)
            }
        })
}

/// What a route hands on from the request: method, query, headers (among
/// them `Last-Event-ID` and a WebSocket handshake's), the connection's
/// upgrade and the body.
struct Exchange<S> {
    method: Method,
    query: String,
    headers: HeaderMap,
    on_upgrade: Option<OnUpgrade>,
    body: S,
}

fn exchange() -> impl Filter<
    Extract = (Exchange<impl Stream<Item = Result<impl Buf, warp::Error>> + Send + 'static>,),
    Error = Rejection,
> + Clone {
    warp::method()
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .and(warp::header::headers_cloned())
        .and(warp::ext::optional::<OnUpgrade>())
        .and(warp::body::stream())
        .map(|method, query, headers, on_upgrade, body| Exchange {
            method,
            query,
            headers,
            on_upgrade,
            body,
        })
}

impl<S, B> Exchange<S>
where
    S: Stream<Item = Result<B, warp::Error>> + Send + 'static,
    B: Buf + 'static,
{
    /// push-tower's answer to this exchange at `path`.
    async fn answer<C: Channels>(self, mut router: Router<C>, path: &str) -> Response {
        let request = request(
            self.method,
            path,
            &self.query,
            self.headers,
            self.on_upgrade,
            self.body,
        );
        let Ok(response) = router.call(request).await;
        reply(response)
    }
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
    path: &str,
    query: &str,
    headers: HeaderMap,
    on_upgrade: Option<OnUpgrade>,
    body: S,
) -> Request<StreamBody<impl Stream<Item = Result<Frame<Bytes>, warp::Error>> + Send>>
where
    S: Stream<Item = Result<B, warp::Error>> + Send + 'static,
    B: Buf + 'static,
{
    let uri = if query.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{query}")
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
