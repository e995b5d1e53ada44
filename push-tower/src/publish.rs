//! Publishing: `POST /channels/{name}` with the data as the body.
//!
//! `text/*` and `application/json` bodies are text and must be UTF-8 (else
//! `400 bad_utf8`); anything else is binary. `?event=NAME` names the event.
//! A body over the channel source's `max_event_bytes` is `413 too_large`, answered from
//! `Content-Length` before reading, or as soon as the limit is passed. The
//! answer is `201` with `{"id":"<id>"}`.
//!
//! ```
//! use http::Request;
//! use http_body_util::BodyExt;
//! use push_core::{Hub, HubConfig};
//! use push_tower::{ChannelFrom, Config, Push};
//! use tower::ServiceExt;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let push = Push::new(Hub::new(HubConfig::default()), Config::default());
//! let publish = push.publish(ChannelFrom::path("/channels/{name}").unwrap());
//! let request = Request::post("/channels/news?event=headline")
//!     .header("content-type", "text/plain; charset=utf-8")
//!     .body(String::from("hello"))
//!     .unwrap();
//! let response = publish.oneshot(request).await.unwrap();
//! assert_eq!(response.status(), 201);
//! let body = response.into_body().collect().await.unwrap().to_bytes();
//! assert!(body.starts_with(br#"{"id":""#));
//! assert_eq!(push.channels().describe("news").unwrap().retained, 1);
//! # });
//! ```

use bytes::Bytes;
use http::header::{self, HeaderMap};
use http::{Request, StatusCode};
use http_body::Body;
use http_body_util::{BodyExt, Limited};
use push_core::wire::WireError;
use push_core::{ChannelName, Channels, Data, EventId, EventName, Message};

use crate::channel_from::technique_service;
use crate::request::Query;
use crate::{error, response, Push, ResponseFuture};

technique_service! {
    /// Publishing as a tower [`Service`](tower_service::Service), answering
    /// `POST`. See the [module docs](self).
    PublishService, POST => respond,
    crate::authorize::Action::Publish
}

pub(crate) fn respond<C, B>(
    push: &Push<C>,
    channel: ChannelName,
    request: Request<B>,
) -> ResponseFuture
where
    C: Channels,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let max = push.channels().limits().max_event_bytes;
    let query = match Query::parse(request.uri()) {
        Ok(query) => query,
        Err(error) => return ResponseFuture::error(error),
    };
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
        return ResponseFuture::error(WireError::body_too_large(max));
    }
    // Taken before the body is read: a refused publish costs no read.
    if let Some(rates) = &push.inner.publish_rates {
        if let Err(refusal) = rates.take(&channel, std::time::Instant::now()) {
            return ResponseFuture::error(refusal);
        }
    }
    let is_text = is_text(request.headers());
    let push = push.clone();
    ResponseFuture::pending(async move {
        let within = push.config().body_read_timeout;
        let read = tokio::time::timeout(within, Limited::new(request.into_body(), max).collect());
        let bytes = match read.await {
            Ok(Ok(collected)) => collected.to_bytes(),
            Ok(Err(error)) if error.is::<http_body_util::LengthLimitError>() => {
                return error::response(WireError::body_too_large(max))
            }
            Ok(Err(_)) => return error::response(WireError::bad_body()),
            Err(_) => return error::response(WireError::body_too_slow(within.as_secs())),
        };
        let data = if is_text {
            match Data::text_from_utf8(bytes) {
                Ok(data) => data,
                Err(_) => return error::response(WireError::bad_utf8()),
            }
        } else {
            Data::binary(bytes)
        };
        let mut message = Message::new(data);
        if let Some(name) = name {
            message = message.with_event_name(name);
        }
        match push.channels().publish(&channel, message).await {
            Ok(id) => response::json(StatusCode::CREATED, published_body(id)),
            Err(error) => error::response(error.into()),
        }
    })
}

/// `{"id":"…"}`, sized exactly so that the body is the one allocation
/// (`Bytes` takes a full `Vec` as it is).
fn published_body(id: EventId) -> Bytes {
    let id = id.to_text();
    let mut body = Vec::with_capacity(9 + id.as_bytes().len());
    body.extend_from_slice(b"{\"id\":\"");
    body.extend_from_slice(id.as_bytes());
    body.extend_from_slice(b"\"}");
    Bytes::from(body)
}

/// `text/*` and `application/json` are text; anything else is binary.
fn is_text(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return false;
    };
    let Ok(value) = value.to_str() else {
        return false;
    };
    let media_type = value.split(';').next().unwrap_or("").trim().as_bytes();
    media_type
        .get(..5)
        .is_some_and(|kind| kind.eq_ignore_ascii_case(b"text/"))
        || media_type.eq_ignore_ascii_case(b"application/json")
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

    #[test]
    fn the_published_body_fits_the_longest_id() {
        let id = EventId::new(push_core::Epoch::from_u64(u64::MAX), u64::MAX);
        assert_eq!(
            published_body(id),
            format!("{{\"id\":\"ffffffffffffffff-{}\"}}", u64::MAX)
        );
    }
}
