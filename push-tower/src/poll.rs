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
//! use push_tower::{poll::PollService, Config, Push};
//! use tower::ServiceExt;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let push = Push::new(Hub::new(HubConfig::default()), Config::default());
//! let id = push.hub().publish("news", Message::new(Data::text("hello"))).unwrap();
//!
//! let request = Request::get("/poll/news?from=earliest").body(String::new()).unwrap();
//! let response = PollService::new(push).oneshot(request).await.unwrap();
//! assert_eq!(response.headers()["etag"], format!("\"{id}\"").as_str());
//! let body = response.into_body().collect().await.unwrap().to_bytes();
//! let answer: serde_json::Value = serde_json::from_slice(&body).unwrap();
//! assert_eq!(answer["messages"][0]["data"], "hello");
//! assert_eq!(answer["cursor"], id.to_string());
//! # });
//! ```

use std::task::{Context, Poll};

use http::header::{self, HeaderMap, HeaderValue};
use http::{Request, Response, StatusCode};
use push_core::delivery::{self, Batch, Delivery};
use push_core::{ChannelName, Event, EventId, Item, MemorySubscription, Signal, Subscription};

use crate::body::PushBody;
use crate::request::{self, Query};
use crate::service::technique_service;
use crate::{Push, ResponseFuture};

technique_service! {
    /// Short polling as a tower [`Service`](tower_service::Service). See the
    /// [module docs](self).
    PollService => respond
}

pub(crate) fn respond<B>(
    push: &Push,
    channel: &ChannelName,
    request: Request<B>,
) -> ResponseFuture {
    let query = Query::parse(request.uri());
    let answer = request::start(request.headers(), &query).and_then(|start| {
        push.hub()
            .subscribe(channel.as_str(), start)
            .map_err(Into::into)
    });
    let mut subscription = match answer {
        Ok(subscription) => subscription,
        Err(error) => return ResponseFuture::error(error),
    };
    let mut collected = Collected::default();
    let waker = std::task::Waker::noop();
    // A short poll answers with what is ready now, whatever that is.
    let _ = collected.take(
        &mut subscription,
        &mut Context::from_waker(waker),
        push.config().max_batch,
    );
    if collected.is_nothing_new() && if_none_match(request.headers(), collected.cursor()) {
        let mut response = Response::new(PushBody::empty());
        *response.status_mut() = StatusCode::NOT_MODIFIED;
        set_etag(response.headers_mut(), collected.cursor());
        return ResponseFuture::ready(response);
    }
    let mut response = collected.answer();
    set_etag(response.headers_mut(), collected.cursor());
    ResponseFuture::ready(response)
}

fn set_etag(headers: &mut HeaderMap, cursor: EventId) {
    if let Ok(value) = HeaderValue::from_str(&format!("\"{cursor}\"")) {
        headers.insert(header::ETAG, value);
    }
}

/// Whether `If-None-Match` names the quoted cursor (or `*`).
fn if_none_match(headers: &HeaderMap, cursor: EventId) -> bool {
    let cursor = cursor.to_string();
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|tag| tag.trim())
        .any(|tag| {
            tag == "*"
                || tag
                    .trim_start_matches("W/")
                    .strip_prefix('"')
                    .and_then(|tag| tag.strip_suffix('"'))
                    == Some(cursor.as_str())
        })
}

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
    pub(crate) fn take(
        &mut self,
        subscription: &mut MemorySubscription,
        cx: &mut Context<'_>,
        max_batch: usize,
    ) -> Poll<()> {
        let mut progressed = false;
        while !self.closed && self.events.len() < max_batch {
            self.items.clear();
            let room = max_batch - self.events.len();
            match subscription.poll_take(cx, &mut self.items, room, usize::MAX) {
                Poll::Ready(0) => break,
                Poll::Ready(_) => progressed = true,
                Poll::Pending => break,
            }
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

    pub(crate) fn cursor(&self) -> EventId {
        self.cursor
            .expect("a subscription states its position before anything else")
    }

    pub(crate) fn answer(&self) -> Response<PushBody> {
        let batch = Batch {
            events: &self.events,
            cursor: self.cursor(),
            gap: self.gap,
            closed: self.closed,
        };
        let poll = delivery::Poll;
        let parts = poll.batch(&batch).unwrap_or_default();
        request::json_body(StatusCode::OK, PushBody::from_parts(parts))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use push_core::{Epoch, EventId};

    #[test]
    fn if_none_match_forms() {
        let cursor = EventId::new(Epoch::from_u64(1), 2);
        let matches = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::IF_NONE_MATCH, HeaderValue::from_str(value).unwrap());
            if_none_match(&headers, cursor)
        };
        assert!(matches("\"0000000000000001-2\""));
        assert!(matches("W/\"0000000000000001-2\""));
        assert!(matches("\"x\", \"0000000000000001-2\""));
        assert!(matches("*"));
        assert!(!matches("\"0000000000000001-3\""));
        assert!(!matches("0000000000000001-2"));
        assert!(!if_none_match(&HeaderMap::new(), cursor));
    }
}
