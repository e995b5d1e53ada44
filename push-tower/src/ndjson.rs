//! HTTP streaming: one chunked (HTTP/1.1) or DATA-framed (HTTP/2) response,
//! one JSON object per line (NDJSON, `application/x-ndjson`).
//!
//! The first line is `{"signal":"position","cursor":"<id>"}`; then a `gap`
//! signal if events were missed; then one envelope per event,
//! `{"id":"<id>","event":"<name>","data":"<text>"}` (base64 with
//! `"encoding":"base64"` for binary data), flushed as it is published. An
//! empty line is a heartbeat. The stream ends with a `lagged`, `closed` or
//! `shutdown` signal.
//!
//! ```
//! use http::Request;
//! use http_body_util::BodyExt;
//! use push_core::{Data, Hub, HubConfig, Message};
//! use push_tower::{ChannelFrom, Config, Push};
//! use tower::ServiceExt;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let push = Push::new(Hub::new(HubConfig::default()), Config::default());
//! let ndjson = push.ndjson(ChannelFrom::fixed("news").unwrap());
//! let request = Request::get("/anything").body(String::new()).unwrap();
//! let mut body = ndjson.oneshot(request).await.unwrap().into_body();
//! let position = body.frame().await.unwrap().unwrap().into_data().unwrap();
//! assert!(position.starts_with(br#"{"signal":"position","cursor":""#));
//!
//! push.channels().publish("news", Message::new(Data::binary(vec![0u8, 1]))).unwrap();
//! let line = body.frame().await.unwrap().unwrap().into_data().unwrap();
//! assert!(line.ends_with(b"\"data\":\"AAE=\",\"encoding\":\"base64\"}\n"));
//! # });
//! ```

use http::Request;
use push_core::{ChannelName, Channels};

use crate::channel_from::technique_service;
use crate::{streaming, Push, ResponseFuture};

technique_service! {
    /// HTTP streaming (NDJSON) as a tower [`Service`](tower_service::Service),
    /// answering `GET`. See the [module docs](self).
    NdjsonService, GET => respond,
    crate::authorize::Action::Subscribe(Some(push_core::Technique::Ndjson))
}

pub(crate) fn respond<C: Channels, B>(
    push: &Push<C>,
    channel: ChannelName,
    request: Request<B>,
) -> ResponseFuture {
    streaming::respond(push, channel, &request, push.inner.ndjson)
}
