//! Publishing: `POST /channels/{name}` with the data as the body.
//!
//! `text/*` and `application/json` bodies are text and must be UTF-8 (else
//! `400 bad_utf8`); anything else is binary. `?event=NAME` names the event.
//! A body over the hub's `max_event_bytes` is `413 too_large`, answered from
//! `Content-Length` before reading, or as soon as the limit is passed. The
//! answer is `201` with `{"id":"<id>"}`.
//!
//! ```
//! use http::Request;
//! use http_body_util::BodyExt;
//! use push_core::{Hub, HubConfig};
//! use push_tower::{publish::PublishService, Config, Push};
//! use tower::ServiceExt;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let push = Push::new(Hub::new(HubConfig::default()), Config::default());
//! let request = Request::post("/channels/news?event=headline")
//!     .header("content-type", "text/plain; charset=utf-8")
//!     .body(String::from("hello"))
//!     .unwrap();
//! let response = PublishService::new(push.clone()).oneshot(request).await.unwrap();
//! assert_eq!(response.status(), 201);
//! let body = response.into_body().collect().await.unwrap().to_bytes();
//! assert!(body.starts_with(br#"{"id":""#));
//! assert_eq!(push.hub().describe("news").unwrap().retained, 1);
//! # });
//! ```

use std::convert::Infallible;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{self, HeaderMap};
use http::{Request, StatusCode};
use http_body::Body;
use http_body_util::{BodyExt, Limited};
use push_core::wire::WireError;
use push_core::{ChannelName, Data, EventName, Message};

use crate::request::{self, Query};
use crate::service::Target;
use crate::{Push, ResponseFuture};

/// Publishing as a tower [`Service`](tower_service::Service). See the
/// [module docs](self).
#[derive(Clone)]
pub struct PublishService {
    push: Push,
    target: Target,
}

impl PublishService {
    /// Publishes to any channel of the hub, named by a
    /// [`ChannelName`] request extension or else the last path segment.
    pub fn new(push: Push) -> Self {
        PublishService {
            push,
            target: Target::FromRequest,
        }
    }

    /// Publishes only to the channel `name`.
    ///
    /// # Errors
    ///
    /// Returns the [`ChannelNameError`](push_core::ChannelNameError) if
    /// `name` breaks the naming rules.
    pub fn for_channel(push: Push, name: &str) -> Result<Self, push_core::ChannelNameError> {
        Ok(PublishService {
            push,
            target: Target::Fixed(ChannelName::new(name)?),
        })
    }
}

impl std::fmt::Debug for PublishService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublishService")
            .field("target", &self.target)
            .finish()
    }
}

impl<B> tower_service::Service<Request<B>> for PublishService
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Response = http::Response<crate::PushBody>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> ResponseFuture {
        match self.target.resolve(&request) {
            Ok(channel) => respond(&self.push, channel, request),
            Err(error) => ResponseFuture::error(error),
        }
    }
}

pub(crate) fn respond<B>(push: &Push, channel: ChannelName, request: Request<B>) -> ResponseFuture
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let max = push.hub().config().limits.max_event_bytes;
    let query = Query::parse(request.uri());
    // Checked before reading a body that would be refused anyway.
    let name = match query.event.as_deref().map(EventName::new).transpose() {
        Ok(name) => name,
        Err(error) => return ResponseFuture::error(push_core::Error::from(error).into()),
    };
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|len| len > max as u64) {
        return ResponseFuture::error(too_large(max));
    }
    let is_text = is_text(request.headers());
    let push = push.clone();
    ResponseFuture::pending(async move {
        let bytes = match Limited::new(request.into_body(), max).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(error) if error.is::<http_body_util::LengthLimitError>() => {
                return request::error(too_large(max))
            }
            Err(_) => {
                return request::error(WireError::new(
                    StatusCode::BAD_REQUEST,
                    "bad_body",
                    "the request body could not be read to its end; send it again",
                ))
            }
        };
        let data = if is_text {
            match Data::text_from_utf8(bytes) {
                Ok(data) => data,
                Err(_) => return request::error(WireError::bad_utf8()),
            }
        } else {
            Data::binary(bytes)
        };
        let mut message = Message::new(data);
        if let Some(name) = name {
            message = message.with_name(name);
        }
        match push.hub().publish(channel.as_str(), message) {
            Ok(id) => request::json(
                StatusCode::CREATED,
                Bytes::from(format!("{{\"id\":\"{id}\"}}")),
            ),
            Err(error) => request::error(error.into()),
        }
    })
}

fn too_large(max: usize) -> WireError {
    WireError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "too_large",
        format!("the body is over the limit of {max} bytes; split it or send a reference to it"),
    )
}

/// `text/*` and `application/json` are text; anything else is binary.
fn is_text(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return false;
    };
    let Ok(value) = value.to_str() else {
        return false;
    };
    let media_type = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    media_type.starts_with("text/") || media_type == "application/json"
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn text_media_types() {
        let check = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_str(value).unwrap());
            is_text(&headers)
        };
        assert!(check("text/plain"));
        assert!(check("Text/HTML; charset=utf-8"));
        assert!(check("application/json"));
        assert!(check("application/JSON ; charset=utf-8"));
        assert!(!check("application/octet-stream"));
        assert!(!check("application/jsonx"));
        assert!(!is_text(&HeaderMap::new()));
    }
}
