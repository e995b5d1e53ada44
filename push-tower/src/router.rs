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
//! | `GET /channels/{name}/stream` | [NDJSON stream](crate::ndjson) |
//! | `GET /channels/{name}/ws` (HTTP/1.1), `CONNECT` (HTTP/2) | [WebSocket](crate::ws) |
//! | `GET /channels/{name}/push` | [HTTP/2 server push](crate::http2_push) (inline over HTTP/1.1) |
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
use http::{Method, Request, Response, StatusCode};
use http_body::Body;
use push_core::wire::WireError;
use push_core::{ChannelInfo, ChannelName, Channels, EventId, Lookup, Technique};

use crate::authorize::{self, Action};
use crate::body::PushBody;
use crate::{
    error, http2_push, long_poll, ndjson, poll, publish, request, response, sse, ws, Push,
    ResponseFuture,
};

/// Serves the whole wire contract under a path prefix. See the
/// [module docs](self).
pub struct Router<C = push_core::Hub> {
    push: Push<C>,
    prefix: String,
}

impl<C> Clone for Router<C> {
    fn clone(&self) -> Self {
        Router {
            push: self.push.clone(),
            prefix: self.prefix.clone(),
        }
    }
}

impl<C: Channels> Router<C> {
    /// The router for `push`, with no prefix.
    pub fn new(push: Push<C>) -> Self {
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
    {
        let push = &self.push;
        let Some(path) = request.uri().path().strip_prefix(self.prefix.as_str()) else {
            return not_found();
        };
        // No route has more than four segments; a longer path matches none.
        let mut segments = [""; 5];
        let mut count = 0;
        for segment in path.strip_prefix('/').unwrap_or("\u{0}").split('/') {
            segments[count] = segment;
            count += 1;
            if count == segments.len() {
                break;
            }
        }
        let method = request.method().clone();
        match &segments[..count] {
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
                    Method::POST => {
                        authorize::then(push, channel, Action::Publish, request, publish::respond)
                    }
                    Method::GET => {
                        authorize::then(push, channel, Action::Describe, request, describe)
                    }
                    Method::DELETE => authorize::then(push, channel, Action::Close, request, close),
                    _ => method_not_allowed("GET, POST, DELETE"),
                }
            }
            ["channels", name, segment] => {
                let technique = Technique::from_path_segment(segment);
                if technique.is_none() {
                    return not_found();
                }
                if technique == Some(Technique::WebSocket) {
                    if method != Method::GET && method != Method::CONNECT {
                        return method_not_allowed("GET, CONNECT");
                    }
                } else if method != Method::GET {
                    return method_not_allowed("GET");
                }
                let respond = match technique {
                    Some(Technique::Poll) => poll::respond::<C, B>,
                    Some(Technique::LongPoll) => long_poll::respond::<C, B>,
                    Some(Technique::Sse) => sse::respond::<C, B>,
                    Some(Technique::Ndjson) => ndjson::respond::<C, B>,
                    Some(Technique::WebSocket) => ws::respond::<C, B>,
                    Some(Technique::Http2Push) => http2_push::respond::<C, B>,
                    // A technique push-core lists before this router serves it.
                    _ => {
                        let served = Technique::ALL.map(Technique::path_segment);
                        return ResponseFuture::error(WireError::not_implemented(segment, &served));
                    }
                };
                match request::channel_name(name) {
                    Ok(channel) => {
                        let action = Action::Subscribe(technique);
                        authorize::then(push, channel, action, request, respond)
                    }
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
                match id.parse::<EventId>() {
                    Ok(id) => authorize::then(
                        push,
                        channel,
                        Action::ReadMessage,
                        request,
                        |push, channel, _| message(push, channel, id),
                    ),
                    Err(error) => ResponseFuture::error(
                        push_core::Error::from(push_core::StartError::BadId(error)).into(),
                    ),
                }
            }
            _ => not_found(),
        }
    }
}

/// `GET /channels/{name}`: the channel's info.
fn describe<C: Channels, B>(push: &Push<C>, channel: ChannelName, _: Request<B>) -> ResponseFuture {
    let push = push.clone();
    ResponseFuture::pending(async move {
        match push.channels().describe(&channel).await {
            Ok(info) => response::json(StatusCode::OK, info_json(channel.as_str(), &info)),
            Err(error) => error::response(error.into()),
        }
    })
}

/// `DELETE /channels/{name}`: close it, `404` if it did not exist.
fn close<C: Channels, B>(push: &Push<C>, channel: ChannelName, _: Request<B>) -> ResponseFuture {
    let push = push.clone();
    ResponseFuture::pending(async move {
        match push.channels().close(&channel).await {
            Ok(true) => response::empty(StatusCode::NO_CONTENT),
            Ok(false) => error::response(WireError::no_such_channel()),
            Err(error) => error::response(error.into()),
        }
    })
}

/// `GET /channels/{name}/messages/{id}`: one retained event's envelope.
fn message<C: Channels>(push: &Push<C>, channel: ChannelName, id: EventId) -> ResponseFuture {
    let push = push.clone();
    ResponseFuture::pending(async move {
        match push.channels().lookup(&channel, id).await {
            Ok(Lookup::Found(event)) => {
                let line = event.envelope_line();
                response::json(StatusCode::OK, line.slice(..line.len() - 1))
            }
            Ok(Lookup::Gone) => error::response(WireError::gone()),
            Ok(Lookup::NotPublished) => error::response(WireError::not_published()),
            Err(error) => error::response(error.into()),
        }
    })
}

fn not_found() -> ResponseFuture {
    ResponseFuture::error(WireError::no_such_path())
}

fn method_not_allowed(allowed: &'static str) -> ResponseFuture {
    ResponseFuture::ready(error::method_not_allowed(allowed))
}

fn healthz<C: Channels>(push: &Push<C>) -> ResponseFuture {
    if let Err(refusal) = push.accepting() {
        return ResponseFuture::error(refusal);
    }
    ResponseFuture::ready(response::json(
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

impl<C, B> tower_service::Service<Request<B>> for Router<C>
where
    C: Channels,
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

impl<C> fmt::Debug for Router<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Router")
            .field("prefix", &self.prefix)
            .finish()
    }
}
