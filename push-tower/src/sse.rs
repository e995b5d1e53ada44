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
//! use push_tower::{ChannelFrom, Config, Push};
//! use tower::ServiceExt;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let push = Push::new(Hub::new(HubConfig::default()), Config::default().sse_retry(None));
//! let first = push.channels().publish("news", Message::new(Data::text("one"))).unwrap();
//!
//! let sse = push.sse(ChannelFrom::path("/sse/{channel}").unwrap());
//! let request = Request::get("/sse/news")
//!     .header("last-event-id", "0000000000000000-0")
//!     .body(String::new())
//!     .unwrap();
//! let response = sse.oneshot(request).await.unwrap();
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

use http::Request;
use push_core::{ChannelName, Channels};

use crate::channel_from::technique_service;
use crate::{streaming, Push, ResponseFuture};

technique_service! {
    /// Server-Sent Events as a tower [`Service`](tower_service::Service),
    /// answering `GET`. See the [module docs](self).
    SseService, GET => respond,
    crate::authorize::Action::Subscribe(Some(push_core::Technique::Sse))
}

pub(crate) fn respond<C: Channels, B>(
    push: &Push<C>,
    channel: ChannelName,
    request: Request<B>,
) -> ResponseFuture {
    streaming::respond(push, channel, &request, push.inner.sse)
}
