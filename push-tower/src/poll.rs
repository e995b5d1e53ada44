//! Short (interval) polling: each `GET` answers at once with what is new
//! since the client's cursor.
//!
//! The answer is `{"messages":[<envelope>…],"cursor":"<id>"}`, plus
//! `"gap":true` when a gap precedes the messages. The quoted cursor is the
//! `ETag`; `If-None-Match` with it answers `304 Not Modified` while nothing
//! is new. No session is kept: the cursor carries the position.
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
//! let id = push.channels().publish("news", Message::new(Data::text("hello"))).unwrap();
//!
//! let poll = push.poll(ChannelFrom::path("/poll/{channel}").unwrap());
//! let request = Request::get("/poll/news?from=earliest").body(String::new()).unwrap();
//! let response = poll.oneshot(request).await.unwrap();
//! assert_eq!(response.headers()["etag"], format!("\"{id}\"").as_str());
//! let body = response.into_body().collect().await.unwrap().to_bytes();
//! let answer: serde_json::Value = serde_json::from_slice(&body).unwrap();
//! assert_eq!(answer["messages"][0]["data"], "hello");
//! assert_eq!(answer["cursor"], id.to_string());
//! # });
//! ```

use std::task::{Context, Poll, Waker};

use http::header::{self, HeaderMap, HeaderValue};
use http::{Request, Response, StatusCode};
use push_core::delivery::Batch;
use push_core::wire::WireError;
use push_core::{ChannelName, Channels, Event, EventId, Item, Signal, Subscription};

use crate::body::PushBody;
use crate::channel_from::technique_service;
use crate::subscribe::Subscribe;
use crate::{error, response, Push, ResponseFuture};

technique_service! {
    /// Short polling as a tower [`Service`](tower_service::Service),
    /// answering `GET`. See the [module docs](self).
    PollService, GET => respond,
    crate::authorize::Action::Subscribe(Some(push_core::Technique::Poll))
}

pub(crate) fn respond<C: Channels, B>(
    push: &Push<C>,
    channel: ChannelName,
    request: Request<B>,
) -> ResponseFuture {
    let subscribe = match Subscribe::from_request(channel, &request) {
        Ok(subscribe) => subscribe,
        Err(error) => return ResponseFuture::error(error),
    };
    let if_none_match: Vec<HeaderValue> = request
        .headers()
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .cloned()
        .collect();
    let push = push.clone();
    ResponseFuture::pending(async move {
        let mut subscription = match subscribe.on(push.channels()).await {
            Ok(subscription) => subscription,
            Err(error) => return error::response(error),
        };
        let mut collected = Collected::default();
        // A subscription is caught up when subscribe completes (the rules of
        // `Channels`), so what is ready now is everything that is new.
        let _ = collected.take(
            &mut subscription,
            &mut Context::from_waker(Waker::noop()),
            push.config().max_batch,
        );
        let cursor = match collected.cursor() {
            Ok(cursor) => cursor,
            Err(error) => return error::response(error),
        };
        if collected.is_nothing_new() && if_none_match_names(&if_none_match, cursor) {
            let mut response = response::empty(StatusCode::NOT_MODIFIED);
            set_etag(response.headers_mut(), cursor);
            return response;
        }
        let mut response = collected.answer(cursor);
        set_etag(response.headers_mut(), cursor);
        response
    })
}

fn set_etag(headers: &mut HeaderMap, cursor: EventId) {
    if let Ok(value) = HeaderValue::from_str(&format!("\"{cursor}\"")) {
        headers.insert(header::ETAG, value);
    }
}

/// Whether `If-None-Match` names the quoted cursor (or `*`).
fn if_none_match_names(values: &[HeaderValue], cursor: EventId) -> bool {
    let cursor = cursor.to_string();
    response::entity_tags(values).any(|tag| {
        tag == "*"
            || tag.strip_prefix('"').and_then(|tag| tag.strip_suffix('"')) == Some(cursor.as_str())
    })
}

/// Answers up to this many bytes are copied into one buffer: hyper spends
/// more on each extra chunk of a body than copying a small envelope costs.
/// Larger answers share each event's envelope instead.
const JOIN_ANSWERS_UP_TO: usize = 2048;

/// What a poll or long poll has taken so far.
#[derive(Default)]
pub(crate) struct Collected {
    items: Vec<Item>,
    events: Vec<Event>,
    cursor: Option<EventId>,
    gap: bool,
    closed: bool,
}

impl Collected {
    /// Takes what is ready, up to `max_batch` events; `Pending` if nothing was.
    pub(crate) fn take<S: Subscription>(
        &mut self,
        subscription: &mut S,
        cx: &mut Context<'_>,
        max_batch: usize,
    ) -> Poll<()> {
        let mut progressed = false;
        while !self.closed && self.events.len() < max_batch {
            self.items.clear();
            let room = max_batch - self.events.len();
            let taken = match subscription.poll_take(cx, &mut self.items, room, usize::MAX) {
                Poll::Ready(0) | Poll::Pending => break,
                Poll::Ready(taken) => taken,
            };
            progressed = true;
            for item in self.items.drain(..) {
                match item {
                    Item::Event(event) => {
                        self.cursor = Some(event.id());
                        self.events.push(event);
                    }
                    Item::Signal(Signal::Position(cursor)) => self.cursor = Some(cursor),
                    Item::Signal(Signal::Gap(cursor)) => {
                        self.gap = true;
                        self.cursor = Some(cursor);
                    }
                    Item::Signal(Signal::Closed(_)) => self.closed = true,
                    // Lag needs a bound's worth of events ready at once, more
                    // than a batch takes; shutdown is not a channel signal.
                    Item::Signal(Signal::Lagged(_) | Signal::Shutdown(_)) => {}
                }
            }
            // Fewer than asked for is everything that was ready. With
            // something to answer, polling again would only lock the channel
            // and register a waker for nothing; with nothing yet, it must go
            // on until the subscription waits, so that a publish wakes it.
            if taken < room && !self.is_nothing_new() {
                break;
            }
        }
        if progressed {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }

    /// Nothing to tell: no event, no gap, not closed.
    pub(crate) fn is_nothing_new(&self) -> bool {
        self.events.is_empty() && !self.gap && !self.closed
    }

    /// The cursor to answer: the last event's id, or the position.
    ///
    /// # Errors
    ///
    /// `unavailable` if the subscription stated no position, which breaks
    /// the rules of `Channels`.
    pub(crate) fn cursor(&self) -> Result<EventId, WireError> {
        self.cursor.ok_or_else(|| {
            WireError::from(push_core::Error::Backend(
                "the channel source gave no position for the subscription".into(),
            ))
        })
    }

    pub(crate) fn answer(&self, cursor: EventId) -> Response<PushBody> {
        let batch = Batch {
            events: &self.events,
            cursor,
            gap: self.gap,
            closed: self.closed,
        };
        let body = if batch.encoded_len() <= JOIN_ANSWERS_UP_TO {
            PushBody::full(batch.encode_joined())
        } else {
            PushBody::from_parts(batch.encode())
        };
        response::json_body(StatusCode::OK, body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use push_core::{Epoch, EventId};

    #[test]
    fn if_none_match_forms() {
        let cursor = EventId::new(Epoch::from_u64(1), 2);
        let matches =
            |value: &str| if_none_match_names(&[HeaderValue::from_str(value).unwrap()], cursor);
        assert!(matches("\"0000000000000001-2\""));
        assert!(matches("W/\"0000000000000001-2\""));
        assert!(matches("\"x\", \"0000000000000001-2\""));
        assert!(matches("*"));
        assert!(!matches("\"0000000000000001-3\""));
        assert!(!matches("0000000000000001-2"));
        assert!(!if_none_match_names(&[], cursor));
    }
}
