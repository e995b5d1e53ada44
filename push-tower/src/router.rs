//! The whole wire contract under one path prefix, as one tower service.
//!
//! | method and path | answer |
//! |---|---|
//! | `POST /channels/{name}` | [`publish`](mod@crate::publish) |
//! | `GET /channels/{name}` | the channel's info and limits |
//! | `DELETE /channels/{name}` | close the channel: subscribers get `closed` |
//! | `GET /channels/{name}/poll` | [short poll](crate::poll) |
//! | `GET /channels/{name}/longpoll` | [long poll](crate::long_poll) |
//! | `GET /channels/{name}/sse` | [Server-Sent Events](crate::sse) |
//! | `GET /channels/{name}/stream` | [NDJSON stream](crate::stream) |
//! | `GET /channels/{name}/ws`, `/push` | `501` until those techniques land |
//! | `GET /channels/{name}/messages/{id}` | one retained event's envelope |
//! | `GET /healthz` | `200` while serving |
//!
//! Unknown paths answer `404 not_found`, known paths with another method
//! `405 method_not_allowed` with `Allow`; both with the JSON error body.
//!
//! ```
//! use http::Request;
//! use push_core::{Hub, HubConfig};
//! use push_tower::{Config, Push};
//! use tower::ServiceExt;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let push = Push::new(Hub::new(HubConfig::default()), Config::default());
//! let router = push.router().with_prefix("/push");
//! let response = router
//!     .oneshot(Request::get("/push/channels/news").body(String::new()).unwrap())
//!     .await
//!     .unwrap();
//! assert_eq!(response.status(), 200);
//! # });
//! ```

use std::convert::Infallible;
use std::fmt;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body::Body;
use push_core::wire::WireError;
use push_core::{ChannelInfo, EventId, Lookup};

use crate::body::PushBody;
use crate::request;
use crate::{long_poll, poll, publish, sse, stream, Push, ResponseFuture};

/// Serves the whole wire contract under a path prefix. See the
/// [module docs](self).
#[derive(Clone)]
pub struct Router {
    push: Push,
    prefix: String,
}

impl Router {
    /// The router for `push`, with no prefix.
    pub fn new(push: Push) -> Self {
        Router {
            push,
            prefix: String::new(),
        }
    }

    /// Serves under `prefix` (such as `/push`); requests outside it are
    /// `404`. Not needed under axum's `nest_service`, which strips the prefix.
    pub fn with_prefix(mut self, prefix: &str) -> Self {
        self.prefix = prefix.trim_end_matches('/').to_owned();
        self
    }

    fn route<B>(&self, request: Request<B>) -> ResponseFuture
    where
        B: Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let push = &self.push;
        let Some(path) = request.uri().path().strip_prefix(self.prefix.as_str()) else {
            return not_found();
        };
        let segments: Vec<&str> = path
            .strip_prefix('/')
            .unwrap_or("\u{0}")
            .split('/')
            .collect();
        let method = request.method().clone();
        match segments.as_slice() {
            ["healthz"] => match method {
                Method::GET => healthz(push),
                _ => method_not_allowed("GET"),
            },
            ["channels", name] => {
                let channel = match request::channel_name(name) {
                    Ok(channel) => channel,
                    Err(error) => return ResponseFuture::error(error),
                };
                match method {
                    Method::POST => publish::respond(push, channel, request),
                    Method::GET => answer(push.hub().describe(channel.as_str()).map(|info| {
                        request::json(StatusCode::OK, info_json(channel.as_str(), &info))
                    })),
                    Method::DELETE => answer(push.hub().close(channel.as_str()).map(|existed| {
                        if existed {
                            let mut response = Response::new(PushBody::empty());
                            *response.status_mut() = StatusCode::NO_CONTENT;
                            response
                        } else {
                            request::error(WireError::not_found(
                                "no such channel; it may already be closed",
                            ))
                        }
                    })),
                    _ => method_not_allowed("GET, POST, DELETE"),
                }
            }
            ["channels", name, technique] => {
                const TECHNIQUES: [&str; 6] = ["poll", "longpoll", "sse", "stream", "ws", "push"];
                if !TECHNIQUES.contains(technique) {
                    return not_found();
                }
                if method != Method::GET {
                    return method_not_allowed("GET");
                }
                let respond = match *technique {
                    "poll" => poll::respond::<B>,
                    "longpoll" => long_poll::respond::<B>,
                    "sse" => sse::respond::<B>,
                    "stream" => stream::respond::<B>,
                    "ws" | "push" => {
                        return ResponseFuture::error(WireError::new(
                            StatusCode::NOT_IMPLEMENTED,
                            "not_implemented",
                            format!("the {technique} technique is not available on this server yet; use sse, stream, longpoll or poll"),
                        ))
                    }
                    _ => return not_found(),
                };
                match request::channel_name(name) {
                    Ok(channel) => respond(push, &channel, request),
                    Err(error) => ResponseFuture::error(error),
                }
            }
            ["channels", name, "messages", id] => {
                if method != Method::GET {
                    return method_not_allowed("GET");
                }
                let channel = match request::channel_name(name) {
                    Ok(channel) => channel,
                    Err(error) => return ResponseFuture::error(error),
                };
                let id: EventId = match id.parse() {
                    Ok(id) => id,
                    Err(error) => {
                        return ResponseFuture::error(
                            push_core::Error::from(push_core::StartError::BadId(error)).into(),
                        )
                    }
                };
                answer(
                    push.hub()
                        .lookup(channel.as_str(), id)
                        .map(|lookup| match lookup {
                            Lookup::Found(event) => {
                                let line = event.envelope_line();
                                request::json(StatusCode::OK, line.slice(..line.len() - 1))
                            }
                            Lookup::Gone => request::error(WireError::gone()),
                            Lookup::NotPublished => request::error(WireError::not_found(
                                "no event has this id yet; it is past the channel's newest event",
                            )),
                        }),
                )
            }
            _ => not_found(),
        }
    }
}

fn answer(result: Result<Response<PushBody>, push_core::Error>) -> ResponseFuture {
    match result {
        Ok(response) => ResponseFuture::ready(response),
        Err(error) => ResponseFuture::error(error.into()),
    }
}

fn not_found() -> ResponseFuture {
    ResponseFuture::error(WireError::not_found(
        "no such path; see PROTOCOL.md for the routes (/channels/{name}, /channels/{name}/sse, …)",
    ))
}

fn method_not_allowed(allowed: &'static str) -> ResponseFuture {
    let mut response = request::error(WireError::method_not_allowed(allowed));
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allowed));
    ResponseFuture::ready(response)
}

fn healthz(push: &Push) -> ResponseFuture {
    if push.is_shutting_down() {
        return ResponseFuture::error(WireError::shutting_down(push.config().shutdown_retry_after));
    }
    ResponseFuture::ready(request::json(
        StatusCode::OK,
        Bytes::from_static(b"{\"status\":\"ok\"}"),
    ))
}

/// The wire contract's channel info.
fn info_json(name: &str, info: &ChannelInfo) -> String {
    let limits = &info.limits;
    serde_json::json!({
        "name": name,
        "cursor": info.head.to_string(),
        "earliest": info.earliest.map(|id| id.to_string()),
        "retained": info.retained,
        "subscribers": info.subscribers,
        "buffered_bytes": info.buffered_bytes,
        "limits": {
            "history_events": limits.history_events,
            "history_bytes": limits.history_bytes,
            "subscriber_buffer_bytes": limits.subscriber_buffer_bytes,
            "heartbeat_ms": limits.heartbeat.as_millis() as u64,
            "long_poll_max_ms": limits.long_poll_max.as_millis() as u64,
            "max_event_bytes": limits.max_event_bytes,
        }
    })
    .to_string()
}

impl<B> tower_service::Service<Request<B>> for Router
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Response = Response<PushBody>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> ResponseFuture {
        self.route(request)
    }
}

impl fmt::Debug for Router {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Router")
            .field("prefix", &self.prefix)
            .finish()
    }
}
