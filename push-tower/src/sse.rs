//! Server-Sent Events: one `text/event-stream` response that stays open.
//!
//! The stream first states the position (an `id:` line alone, after
//! `retry:`), then a `push.gap` event if events were missed, then every event
//! as `id:`/`event:`/`data:` lines, flushed as it is published. Text without
//! CR goes raw, so a browser's `EventSource` shows `e.data` unchanged;
//! binary data and text containing CR go as `event: push.envelope` with the
//! JSON envelope. Idle streams get a comment line as heartbeat. The stream
//! ends with `push.lagged`, `push.closed` or `push.shutdown`. Browsers resume
//! with `Last-Event-ID`, which wins over `?after=` and `?from=earliest`.
//!
//! ```
//! use http::Request;
//! use http_body_util::BodyExt;
//! use push_core::{Data, Hub, HubConfig, Message};
//! use push_tower::{sse::SseService, Config, Push};
//! use tower::ServiceExt;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let push = Push::new(Hub::new(HubConfig::default()), Config::default().sse_retry(None));
//! let first = push.hub().publish("news", Message::new(Data::text("one"))).unwrap();
//!
//! let request = Request::get("/sse/news")
//!     .header("last-event-id", "0000000000000000-0")
//!     .body(String::new())
//!     .unwrap();
//! let response = SseService::new(push.clone()).oneshot(request).await.unwrap();
//! assert_eq!(response.headers()["content-type"], "text/event-stream");
//! let mut body = response.into_body();
//! let mut text = String::new();
//! for _ in 0..3 {
//!     let frame = body.frame().await.unwrap().unwrap().into_data().unwrap();
//!     text.push_str(std::str::from_utf8(&frame).unwrap());
//! }
//! // A cursor of another incarnation: position, gap, then the retained event.
//! assert!(text.starts_with("id: 0000000000000000-0\n\nid: "));
//! assert!(text.contains("event: push.gap\n"));
//! assert!(text.ends_with(&format!("id: {first}\ndata: one\n\n")));
//! # });
//! ```

use std::sync::Arc;

use http::Request;
use push_core::delivery::Delivery;
use push_core::wire::WireError;
use push_core::ChannelName;

use crate::alarm::LagAlarm;
use crate::body::PushBody;
use crate::request::{self, Query};
use crate::service::technique_service;
use crate::{Push, ResponseFuture};

technique_service! {
    /// Server-Sent Events as a tower [`Service`](tower_service::Service). See
    /// the [module docs](self).
    SseService => respond
}

pub(crate) fn respond<B>(
    push: &Push,
    channel: &ChannelName,
    request: Request<B>,
) -> ResponseFuture {
    stream_response(push, channel, &request, Arc::clone(&push.inner.sse))
}

/// Opens a streaming response framed by `delivery`: errors are answered
/// before any stream starts.
pub(crate) fn stream_response<B>(
    push: &Push,
    channel: &ChannelName,
    request: &Request<B>,
    delivery: Arc<dyn Delivery<Frame = bytes::Bytes>>,
) -> ResponseFuture {
    if push.is_shutting_down() {
        return ResponseFuture::error(WireError::shutting_down(push.config().shutdown_retry_after));
    }
    let query = Query::parse(request.uri());
    let subscription = request::start(request.headers(), &query).and_then(|start| {
        push.hub()
            .subscribe(channel.as_str(), start)
            .map_err(Into::into)
    });
    match subscription {
        Ok(subscription) => {
            let content_type = delivery.content_type();
            // Only HTTP/1 connections are dropped for one stalled stream.
            let alarm = (request.version() <= http::Version::HTTP_11)
                .then(|| request.extensions().get::<LagAlarm>().cloned())
                .flatten();
            let body = PushBody::stream(
                subscription,
                delivery,
                push.inner.signals.listen(),
                push.config().max_write_bytes,
                alarm,
            );
            ResponseFuture::ready(request::stream_response(content_type, body))
        }
        Err(error) => ResponseFuture::error(error),
    }
}
