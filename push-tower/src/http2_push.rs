//! HTTP/2 server push: the request stream is held open as a parent stream of
//! signals, and every event is pushed as the response to its own URL,
//! `GET …/channels/{name}/messages/{id}`.
//!
//! The parent stream (`application/x-ndjson`, `Push-Mode: promise`) carries
//! the `position` signal first, then `gap`, `lagged`, `closed` and
//! `shutdown` signals and empty-line heartbeats, as
//! [`ndjson`](crate::ndjson) does, but no events: each event is a
//! `PUSH_PROMISE` on the parent stream, in event order, followed by the
//! pushed response, exactly what a plain `GET` of the promised URL answers
//! (`200`, `application/json`, the envelope, shared by every subscriber).
//! The promised path is the request's own with its last segment replaced by
//! `messages/{id}`, which under the [`Router`](crate::Router) is the event's
//! route.
//!
//! Only [`serve`](crate::serve()) can push: its HTTP/2 loop gives each request
//! of a client that accepts push the means to. At most 16 pushes per parent
//! stream are in flight (fewer if the client allows fewer concurrent
//! streams), their bodies sent as the client's windows allow; events beyond
//! wait in the subscription, whose bound makes a client that falls behind
//! `lagged` as on every stream.
//!
//! **Fallback.** Over HTTP/1.1, from a client that disabled push
//! (`SETTINGS_ENABLE_PUSH = 0`) or allows no concurrent streams, or under
//! another server, the parent stream
//! carries the envelopes inline, byte for byte as [`ndjson`](crate::ndjson),
//! with `Push-Mode: inline`. A client that disables push while its stream is
//! open gets the remaining events inline on the same stream.
//!
//! Browsers no longer accept pushes; this is for HTTP/2 clients that do
//! (service-to-service, native clients, `nghttp`, `h2`-based tools).
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
//! let service = push.http2_push(ChannelFrom::fixed("news").unwrap());
//! // Called directly, not through `serve`'s HTTP/2 loop: no push, so inline.
//! let request = Request::get("/channels/news/push").body(String::new()).unwrap();
//! let response = service.oneshot(request).await.unwrap();
//! assert_eq!(response.headers()["push-mode"], "inline");
//! let mut body = response.into_body();
//! let position = body.frame().await.unwrap().unwrap().into_data().unwrap();
//! assert!(position.starts_with(br#"{"signal":"position""#));
//!
//! push.channels().publish("news", Message::new(Data::text("hi"))).unwrap();
//! let line = body.frame().await.unwrap().unwrap().into_data().unwrap();
//! assert!(line.ends_with(b"\"data\":\"hi\"}\n"));
//! # });
//! ```

use std::convert::Infallible;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderValue, Request, StatusCode};
use http_body::Frame;
use push_core::delivery::{PushFrame, ServerPush as PushFraming};
use push_core::engine::Frames;
use push_core::{ChannelName, Channels, Delivery, Subscription};

use crate::body::{ByteStream, PushBody};
use crate::channel_from::technique_service;
use crate::serve::server_push::{Pushed, ServerPush};
use crate::serve::ConnectionHandle;
use crate::{response, streaming, Push, ResponseFuture};

/// The response header that says how events arrive: `promise` (pushed
/// responses) or `inline` (envelopes on the parent stream).
pub const PUSH_MODE: &str = "push-mode";

technique_service! {
    /// HTTP/2 server push as a tower [`Service`](tower_service::Service),
    /// answering `GET`. See the [module docs](self).
    Http2PushService, GET => respond,
    crate::authorize::Action::Subscribe(Some(push_core::Technique::Http2Push))
}

pub(crate) fn respond<C: Channels, B>(
    push: &Push<C>,
    channel: ChannelName,
    request: Request<B>,
) -> ResponseFuture {
    let server_push = ConnectionHandle::of(request.extensions())
        .and_then(|handle| handle.server_push.as_ref())
        .filter(|link| !link.is_refused())
        .cloned();
    let messages = messages_path(request.uri().path());
    streaming::respond_with(
        push,
        channel,
        &request,
        move |push, subscription, stalled_reader| {
            let (mut response, mode) = match server_push {
                Some(link) => {
                    let frames = Frames::new(subscription, PushFraming, push.listen())
                        .max_take_bytes(push.config().max_write_bytes);
                    let body = PromiseBody {
                        frames,
                        link,
                        messages,
                    };
                    let body = PushBody::from_stream(body);
                    (
                        response::stream(PushFraming.content_type(), body),
                        "promise",
                    )
                }
                None => {
                    let inline =
                        streaming::bytes(push, subscription, push.inner.ndjson, stalled_reader);
                    (inline, "inline")
                }
            };
            response
                .headers_mut()
                .insert(PUSH_MODE, HeaderValue::from_static(mode));
            response
        },
    )
}

/// `/p/channels/news/push` → `/p/channels/news/messages/`.
fn messages_path(path: &str) -> String {
    let parent = path.rsplit_once('/').map_or("", |(parent, _)| parent);
    format!("{parent}/messages/")
}

/// The parent stream of a client that accepts push: signal lines as body
/// data, each event handed to the HTTP/2 loop as a response to push.
struct PromiseBody<S> {
    frames: Frames<S, PushFraming>,
    link: ServerPush,
    /// The path the event's id is appended to.
    messages: String,
}

impl<S: Subscription> ByteStream for PromiseBody<S> {
    fn poll_frame(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        loop {
            // Events wait in the subscription while pushes are in flight: a
            // client that takes no pushed bodies is bounded like any stopped
            // reader, and sees `lagged` once it takes them again.
            if self.link.poll_room(cx).is_pending() {
                return Poll::Pending;
            }
            let promised = match self.frames.poll_frame(cx) {
                Poll::Ready(Some(PushFrame::Parent(line))) => {
                    return Poll::Ready(Some(Ok(Frame::data(line))))
                }
                Poll::Ready(Some(PushFrame::Promise(promised))) => promised,
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            };
            if self.link.is_refused() {
                return Poll::Ready(Some(Ok(Frame::data(promised.line().clone()))));
            }
            self.link.push(Pushed {
                path: format!("{}{}", self.messages, promised.id()),
                response: response::json_body(StatusCode::OK, promised.body()),
                inline: promised.line().clone(),
            });
        }
    }

    fn is_ended(&self) -> bool {
        self.frames.end().is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn promised_paths_are_siblings_of_the_request() {
        assert_eq!(
            messages_path("/channels/news/push"),
            "/channels/news/messages/"
        );
        assert_eq!(
            messages_path("/p/channels/a.b/push"),
            "/p/channels/a.b/messages/"
        );
        assert_eq!(messages_path("/feed"), "/messages/");
    }
}
