//! warp filters for `push`: the whole wire contract, mounted in a warp app.
//!
//! [`routes`] answers every route of the wire contract (PROTOCOL.md):
//! publishing, describing and closing channels, one event by id,
//! `/healthz`, and every technique (short and long polling, Server-Sent
//! Events, NDJSON streaming, WebSocket, HTTP/2 push). The filters per
//! technique ([`poll`], [`long_poll`], [`sse`], [`ndjson`], [`ws`],
//! [`http2_push`], [`publish`], and [`message`] for one event by id) serve
//! one route each, the channel name a
//! path parameter, for apps that mount only some.
//!
//! They are not a second implementation: each request goes to push-tower's
//! [`Router`], so the subscribe step, the delivery engine, the framings and
//! the JSON errors are those of every push server, and each event's shared
//! bytes reach warp's body without a per-subscriber copy. `Last-Event-ID`
//! and the query (`after`, `from`, `timeout`) are read there too, so a
//! malformed one gets the wire contract's `400` and its JSON body, which
//! warp's own `header` and `query` filters would turn into a bare
//! rejection. A request outside the filters' paths is rejected as warp
//! rejects any unmatched path, so the app's other routes serve it; one on
//! their paths is answered, errors included, so a `recover` of the app sees
//! only what push did not take.
//!
//! ```no_run
//! use push_core::{Hub, HubConfig};
//! use push_tower::{Config, Push};
//! use warp::Filter;
//!
//! # async fn run() {
//! let push = Push::new(Hub::new(HubConfig::default()), Config::default());
//! let hello = warp::path("hello").map(|| "hello");
//! // `/push/channels/{name}/sse` and the rest, beside the app's `/hello`.
//! let app = warp::path("push").and(push_warp::routes(push.clone())).or(hello);
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
//! # WebSocket
//!
//! [`ws`] does not use warp's `ws` filter, which cannot meet the wire
//! contract: it runs its own tokio-tungstenite (0.29 in warp 0.4, where
//! push is on 0.30), cannot set the read buffer (tungstenite's default is
//! 128 KiB per socket; push's sockets use 512 bytes), takes text messages
//! as `String` (a copy of every text event for every subscriber), and
//! refuses a bad handshake with warp rejections instead of the contract's
//! `426 upgrade_required` and `400 bad_handshake`. [`ws`] takes the
//! connection's upgrade from the request as warp's filter does (hyper's
//! `OnUpgrade`) and runs push-tower's socket: the same handshake checks and
//! refusals, buffers, pings, backpressure on input and close codes, and
//! each encoded event written as the shared bytes every subscriber gets.
//!
//! # Pages on other origins
//!
//! [`with_origins`] wraps an app's filters so that pages of the allowed
//! origins get CORS (warp's own [`cors`](warp::cors()) filter, set up for
//! the wire contract's methods and headers) and pages of any other origin
//! are refused with push's `403 forbidden`, WebSocket handshakes included,
//! which CORS does not protect: what push-tower's
//! [`CheckOriginLayer`](push_tower::origin::CheckOriginLayer) and a CORS
//! layer do for a tower service.
//!
//! # What warp's server cannot carry
//!
//! warp's server cannot push and does not offer HTTP/2 extended `CONNECT`,
//! so under it HTTP/2 push answers in its inline form (`Push-Mode:
//! inline`) and WebSocket works over HTTP/1.1 only. The same filters carry
//! both under push-tower's [`serve`](push_tower::serve()), once turned into a
//! tower service with `warp::service`; they hand its
//! [`ConnectionHandle`] on to push-tower:
//!
//! ```no_run
//! use push_core::{Hub, HubConfig};
//! use push_tower::{serve, Config, Push};
//! use warp::Filter;
//!
//! # async fn run() -> std::io::Result<()> {
//! let push = Push::new(Hub::new(HubConfig::default()), Config::default());
//! let hello = warp::path("hello").map(|| "hello");
//! let app = push_warp::routes(push.clone()).or(hello);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8081").await?;
//! serve(listener, warp::service(app))
//!     .with_push(push)
//!     .with_graceful_shutdown(async { tokio::signal::ctrl_c().await.unwrap() })
//!     .await
//! # }
//! ```
//!
//! The example server runs either way:
//!
//! ```text
//! cargo run -p push-warp --example server -- --listen 127.0.0.1:8081 [--server push-tower]
//! cargo run -p conformance -- --url http://127.0.0.1:8081 --skip ws-h2c,push-h2c
//! ```
//!
//! (`--skip` only under warp's server; under push-tower's, every transport
//! passes.) `cargo test -p push-warp` runs the whole conformance suite
//! under both servers.

use std::convert::Infallible;

use bytes::{Buf, Bytes};
use futures_util::{Stream, TryStreamExt};
use http::header::{self, HeaderValue};
use http::{HeaderMap, Method, Request, StatusCode};
use http_body::{Body as _, Frame};
use http_body_util::{BodyExt, StreamBody};
use hyper::ext::Protocol;
use hyper::upgrade::OnUpgrade;
use push_core::{Channels, Technique};
use push_tower::origin::{
    AllowedOrigins, CORS_EXPOSED_HEADERS, CORS_MAX_AGE, CORS_METHODS, CORS_REQUEST_HEADERS,
};
use push_tower::serve::ConnectionHandle;
use push_tower::{Push, PushBody, Router};
use sync_wrapper::SyncStream;
use tower_service::Service;
use warp::filters::path::{FullPath, Peek, Tail};
use warp::reply::Response;
use warp::{Filter, Rejection, Reply};

pub use push_core;
pub use push_tower;

/// Every route of the wire contract, answered by push-tower's router; see
/// the [crate docs](crate).
///
/// It matches the path that earlier filters left unmatched, so it can be
/// mounted under a prefix: `warp::path("push").and(routes(push))` serves
/// `/push/channels/{name}/sse`, and the URLs it hands out (HTTP/2 pushes'
/// `/push/channels/{name}/messages/{id}`) keep the prefix.
pub fn routes<C: Channels>(
    push: Push<C>,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    let ours = warp::path::tail()
        .and_then(|tail: Tail| async move {
            let tail = tail.as_str();
            if tail == "healthz" || tail.starts_with("channels/") {
                Ok(())
            } else {
                Err(warp::reject::not_found())
            }
        })
        .untuple_one();
    answered(push, ours)
}

/// `GET /channels/{name}/poll`: short polling (push-tower's
/// [`poll`](push_tower::poll)).
pub fn poll<C: Channels>(
    push: Push<C>,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    technique(push, Technique::Poll, warp::get())
}

/// `GET /channels/{name}/longpoll`: long polling (push-tower's
/// [`long_poll`](push_tower::long_poll)).
pub fn long_poll<C: Channels>(
    push: Push<C>,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    technique(push, Technique::LongPoll, warp::get())
}

/// `GET /channels/{name}/sse`: Server-Sent Events (push-tower's
/// [`sse`](push_tower::sse)).
pub fn sse<C: Channels>(
    push: Push<C>,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    technique(push, Technique::Sse, warp::get())
}

/// `GET /channels/{name}/stream`: NDJSON streaming (push-tower's
/// [`ndjson`](push_tower::ndjson)).
pub fn ndjson<C: Channels>(
    push: Push<C>,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    technique(push, Technique::Ndjson, warp::get())
}

/// `GET /channels/{name}/ws`: WebSocket (push-tower's [`ws`](push_tower::ws))
/// over HTTP/1.1, and over HTTP/2 (`CONNECT`) under push-tower's
/// [`serve`](push_tower::serve()). Not warp's own `ws` filter; the
/// [crate docs](crate#websocket) say why.
pub fn ws<C: Channels>(
    push: Push<C>,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    let connect = warp::method()
        .and_then(|method: Method| async move {
            if method == Method::CONNECT {
                Ok(())
            } else {
                Err(warp::reject::not_found())
            }
        })
        .untuple_one();
    technique(push, Technique::WebSocket, warp::get().or(connect).unify())
}

/// `GET /channels/{name}/push`: HTTP/2 server push (push-tower's
/// [`http2_push`](push_tower::http2_push)): inline under warp's server,
/// which cannot push; pushed responses under push-tower's
/// [`serve`](push_tower::serve()), where the promised
/// `/channels/{name}/messages/{id}` should be served too (by [`message`] or
/// [`routes`]), for clients that fetch it again.
pub fn http2_push<C: Channels>(
    push: Push<C>,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    technique(push, Technique::Http2Push, warp::get())
}

/// `GET /channels/{name}/messages/{id}`: one retained event's envelope,
/// the URL each HTTP/2 push promises.
pub fn message<C: Channels>(
    push: Push<C>,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    let route = warp::get()
        .and(warp::path("channels"))
        .and(segment())
        .and(warp::path("messages"))
        .and(segment())
        .and(warp::path::end());
    answered(push, route)
}

/// `POST /channels/{name}`: publishing (push-tower's
/// [`publish`](push_tower::publish)); `201 {"id":…}`.
pub fn publish<C: Channels>(
    push: Push<C>,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    let route = warp::post()
        .and(warp::path("channels"))
        .and(segment())
        .and(warp::path::end());
    answered(push, route)
}

/// `filter` for browser pages of the `allowed` origins only: a request
/// whose `Origin` is not allowed is answered `403 forbidden` (push's JSON
/// error) before `filter` sees it, WebSocket handshakes included; the
/// others go on through warp's [`cors`](warp::cors()) filter, which answers
/// preflights for the wire contract's methods and request headers and
/// exposes the headers pages read (`ETag`, `Retry-After`,
/// `WWW-Authenticate`). Requests with no `Origin`, from clients that are
/// not pages, are served as they are.
///
/// Mount it around everything the pages reach, so that a preflight for any
/// route is answered:
///
/// ```
/// use push_core::{Hub, HubConfig};
/// use push_tower::origin::AllowedOrigins;
/// use push_tower::{Config, Push};
/// use warp::Filter;
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let push = Push::new(Hub::new(HubConfig::default()), Config::default());
/// let origins = AllowedOrigins::list(["https://app.example"]).unwrap();
/// let app = push_warp::with_origins(origins, push_warp::routes(push));
/// let from = |origin: &'static str| {
///     warp::test::request()
///         .path("/channels/news/poll")
///         .header("origin", origin)
///         .reply(&app)
/// };
/// assert_eq!(from("https://evil.example").await.status(), 403);
/// let allowed = from("https://app.example").await;
/// assert_eq!(allowed.status(), 200);
/// assert_eq!(allowed.headers()["access-control-allow-origin"], "https://app.example");
/// # });
/// ```
pub fn with_origins<F, R>(
    allowed: AllowedOrigins,
    filter: F,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone
where
    F: Filter<Extract = (R,), Error = Rejection> + Clone + Send + Sync + 'static,
    R: Reply,
{
    // Only allowed origins get past the check, so warp's CORS filter, which
    // would refuse the others with a text body of its own, may take any.
    let cors = warp::cors()
        .allow_any_origin()
        .allow_methods(CORS_METHODS)
        .allow_headers(CORS_REQUEST_HEADERS)
        .expose_headers(CORS_EXPOSED_HEADERS)
        .max_age(CORS_MAX_AGE);
    let refused = warp::header::value(header::ORIGIN.as_str()).and_then(move |origin| {
        let checked = allowed.check(&origin);
        async move {
            match checked {
                Err(refusal) => Ok(reply(push_tower::error::response(refusal))),
                // On to `filter`, as a request with no `Origin` goes.
                Ok(()) => Err(warp::reject()),
            }
        }
    });
    refused
        .or(filter.with(cors).map(Reply::into_response))
        .unify()
}

/// One technique's route: `{method} /channels/{name}/{segment}`, the name a
/// path parameter.
fn technique<C: Channels>(
    push: Push<C>,
    technique: Technique,
    method: impl Filter<Extract = (), Error = Rejection> + Clone + Send,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    let route = method
        .and(warp::path("channels"))
        .and(segment())
        .and(warp::path(technique.path_segment()))
        .and(warp::path::end());
    answered(push, route)
}

/// One path segment, any (push-tower's router reads the name and id, and
/// answers bad ones with the wire contract's errors).
fn segment() -> impl Filter<Extract = (), Error = Rejection> + Copy {
    warp::path::param::<String>().map(drop).untuple_one()
}

/// Requests `route` matches, answered by push-tower's router where they
/// were mounted.
fn answered<C: Channels>(
    push: Push<C>,
    route: impl Filter<Extract = (), Error = Rejection> + Clone + Send,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    let router = push.router();
    let here = warp::path::full()
        .and(warp::path::peek())
        .map(|full: FullPath, rest: Peek| mounted(full, rest.as_str().len()));
    here.and(route)
        .and(exchange())
        .and_then(move |at: Mounted, exchange: Exchange<_>| {
            let router = router.clone();
            async move { Ok::<_, Infallible>(exchange.answer(router, at).await) }
        })
}

/// Where a route matched: the whole path, and the prefix that filters
/// before ours matched.
struct Mounted {
    path: String,
    prefix_len: usize,
}

/// `full`, whose last `ours` bytes (without their leading `/`) are left
/// for our filter to match.
fn mounted(full: FullPath, ours: usize) -> Mounted {
    let path = full.as_str().to_owned();
    let prefix_len = path.len().saturating_sub(ours + 1);
    Mounted { path, prefix_len }
}

/// What a route hands on from the request: method, query, headers (among
/// them `Last-Event-ID` and a WebSocket handshake's), what the connection
/// attached to it, and the body.
struct Exchange<S> {
    method: Method,
    query: String,
    headers: HeaderMap,
    attached: Attached,
    body: S,
}

/// The request extensions push-tower's techniques read: hyper's upgrade
/// (WebSocket over HTTP/1.1), the `:protocol` of an HTTP/2 `CONNECT`, and,
/// under push-tower's `serve`, its [`ConnectionHandle`] (HTTP/2 push,
/// WebSocket over HTTP/2, the stalled-reader watch). warp builds a new
/// request for its filters, so these are carried over by hand.
struct Attached {
    on_upgrade: Option<OnUpgrade>,
    protocol: Option<Protocol>,
    handle: Option<ConnectionHandle>,
}

fn exchange() -> impl Filter<
    Extract = (Exchange<impl Stream<Item = Result<impl Buf, warp::Error>> + Send + 'static>,),
    Error = Rejection,
> + Clone {
    let attached = warp::ext::optional::<OnUpgrade>()
        .and(warp::ext::optional::<Protocol>())
        .and(warp::ext::optional::<ConnectionHandle>())
        .map(|on_upgrade, protocol, handle| Attached {
            on_upgrade,
            protocol,
            handle,
        });
    warp::method()
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .and(warp::header::headers_cloned())
        .and(attached)
        .and(warp::body::stream())
        .map(|method, query, headers, attached, body| Exchange {
            method,
            query,
            headers,
            attached,
            body,
        })
}

impl<S, B> Exchange<S>
where
    S: Stream<Item = Result<B, warp::Error>> + Send + 'static,
    B: Buf + 'static,
{
    /// push-tower's answer to this exchange, made where it was mounted.
    async fn answer<C: Channels>(self, router: Router<C>, at: Mounted) -> Response {
        let mut router = router.with_prefix(&at.path[..at.prefix_len]);
        let Ok(response) = router.call(self.request(&at.path)).await;
        reply(response)
    }

    /// The request push-tower's router reads, from what warp extracted.
    fn request(
        self,
        path: &str,
    ) -> Request<StreamBody<impl Stream<Item = Result<Frame<Bytes>, warp::Error>> + Send>> {
        let uri = if self.query.is_empty() {
            path.to_owned()
        } else {
            format!("{path}?{}", self.query)
        };
        let body = StreamBody::new(
            self.body
                .map_ok(|mut data| Frame::data(data.copy_to_bytes(data.remaining()))),
        );
        let mut request = Request::new(body);
        *request.method_mut() = self.method;
        *request.uri_mut() = uri.parse().unwrap_or_default();
        *request.headers_mut() = self.headers;
        let Attached {
            on_upgrade,
            protocol,
            handle,
        } = self.attached;
        if let Some(on_upgrade) = on_upgrade {
            request.extensions_mut().insert(on_upgrade);
        }
        if let Some(protocol) = protocol {
            request.extensions_mut().insert(protocol);
        }
        if let Some(handle) = handle {
            // warp has no filter for the version; under warp's own server
            // it stays HTTP/1.1, which answers as HTTP/2 would there (no
            // extended CONNECT, and hyper drops `Upgrade` from HTTP/2
            // answers).
            *request.version_mut() = handle.version();
            request.extensions_mut().insert(handle);
        }
        request
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    async fn full_path_of(path: &'static str) -> FullPath {
        warp::test::request()
            .path(path)
            .filter(&warp::path::full())
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn mounted_splits_off_the_prefix_filters_before_ours_matched() {
        let at = mounted(full_path_of("/api/v1/channels/news/sse").await, 17);
        assert_eq!(&at.path[..at.prefix_len], "/api/v1");
        let at = mounted(full_path_of("/channels/news/sse").await, 17);
        assert_eq!(&at.path[..at.prefix_len], "");
        assert_eq!(at.path, "/channels/news/sse");
    }

    #[tokio::test]
    async fn routes_serve_under_a_prefix_and_only_there() {
        let push = Push::new(
            push_core::Hub::new(push_core::HubConfig::default()),
            push_tower::Config::default(),
        );
        let api = warp::path("api").and(routes(push));
        let published = warp::test::request()
            .method("POST")
            .path("/api/channels/news")
            .header("content-type", "text/plain")
            .body("one")
            .reply(&api)
            .await;
        assert_eq!(published.status(), StatusCode::CREATED);
        let polled = warp::test::request()
            .path("/api/channels/news/poll?from=earliest")
            .reply(&api)
            .await;
        assert_eq!(polled.status(), StatusCode::OK);
        assert!(std::str::from_utf8(polled.body())
            .unwrap()
            .contains("\"one\""));
        // Outside the prefix, nothing of ours matches.
        let outside = warp::test::request()
            .path("/channels/news/poll")
            .reply(&api)
            .await;
        assert_eq!(outside.status(), StatusCode::NOT_FOUND);
        assert!(outside.body().is_empty(), "warp's rejection, not ours");
    }

    #[tokio::test]
    async fn complete_answers_keep_their_length_and_bodiless_ones_get_none() {
        let push = Push::new(
            push_core::Hub::new(push_core::HubConfig::default()),
            push_tower::Config::default(),
        );
        let app = routes(push);
        let missing = warp::test::request()
            .path("/channels/news/nope")
            .reply(&app)
            .await;
        assert_eq!(missing.status(), StatusCode::NOT_FOUND);
        let length: usize = missing.headers()[header::CONTENT_LENGTH]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(length, missing.body().len());
        assert!(length > 0, "the JSON error body");
        let published = warp::test::request()
            .method("POST")
            .path("/channels/news")
            .body("one")
            .reply(&app)
            .await;
        assert_eq!(published.status(), StatusCode::CREATED);
        let closed = warp::test::request()
            .method("DELETE")
            .path("/channels/news")
            .reply(&app)
            .await;
        assert_eq!(closed.status(), StatusCode::NO_CONTENT);
        assert!(closed.headers().get(header::CONTENT_LENGTH).is_none());
    }
}
