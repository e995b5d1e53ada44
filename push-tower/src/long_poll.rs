//! Long polling: a `GET` that the server holds until something is new, the
//! channel closes, or a timeout passes.
//!
//! It answers like a [short poll](crate::poll): `{"messages":[…],"cursor":…}`
//! with `"gap":true` when a gap precedes the messages and `"closed":true` when
//! the channel closed while the request was held. The hold is `?timeout=`
//! seconds, else [`Config::long_poll_default`](crate::Config), capped by the
//! hub's `long_poll_max`; on timeout it answers no messages and the same
//! cursor. During a graceful shutdown a held long poll answers `503` with
//! `Retry-After`. A client that goes away while held frees its subscription
//! at once, because dropping the response future drops it.
//!
//! ```
//! use http::Request;
//! use http_body_util::BodyExt;
//! use push_core::{Data, Hub, HubConfig, Message};
//! use push_tower::{long_poll::LongPollService, Config, Push};
//! use tower::ServiceExt;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let push = Push::new(Hub::new(HubConfig::default()), Config::default());
//! let held = tokio::spawn(
//!     LongPollService::new(push.clone())
//!         .oneshot(Request::get("/longpoll/news?timeout=10").body(String::new()).unwrap()),
//! );
//! while push.hub().describe("news").unwrap().subscribers == 0 {
//!     tokio::task::yield_now().await;
//! }
//! push.hub().publish("news", Message::new(Data::text("now"))).unwrap();
//!
//! let body = held.await.unwrap().unwrap().into_body().collect().await.unwrap().to_bytes();
//! let answer: serde_json::Value = serde_json::from_slice(&body).unwrap();
//! assert_eq!(answer["messages"][0]["data"], "now");
//! # });
//! ```

use std::future::{poll_fn, Future};
use std::pin::pin;
use std::task::Poll;

use http::Request;
use push_core::wire::WireError;
use push_core::ChannelName;

use crate::poll::Collected;
use crate::request::{self, Query};
use crate::service::technique_service;
use crate::{Push, ResponseFuture};

technique_service! {
    /// Long polling as a tower [`Service`](tower_service::Service). See the
    /// [module docs](self).
    LongPollService => respond
}

pub(crate) fn respond<B>(
    push: &Push,
    channel: &ChannelName,
    request: Request<B>,
) -> ResponseFuture {
    let config = push.config();
    if push.is_shutting_down() {
        return ResponseFuture::error(WireError::shutting_down(config.shutdown_retry_after));
    }
    let query = Query::parse(request.uri());
    let limits = push.hub().config().limits;
    let prepared = query
        .hold(config.long_poll_default, limits.long_poll_max)
        .and_then(|hold| {
            let start = request::start(request.headers(), &query)?;
            let subscription = push.hub().subscribe(channel.as_str(), start)?;
            Ok((hold, subscription))
        });
    let (hold, mut subscription) = match prepared {
        Ok(prepared) => prepared,
        Err(error) => return ResponseFuture::error(error),
    };
    let max_batch = config.max_batch;
    let retry_after = config.shutdown_retry_after;
    let listener = push.inner.signals.listen();
    ResponseFuture::pending(async move {
        let mut collected = Collected::default();
        let mut timeout = pin!(tokio::time::sleep(hold));
        let timed_out = poll_fn(|cx| {
            if listener.signals().is_shutting_down() {
                return Poll::Ready(None);
            }
            if collected.take(&mut subscription, cx, max_batch).is_ready()
                && !collected.is_nothing_new()
            {
                return Poll::Ready(Some(false));
            }
            if timeout.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Some(true));
            }
            listener.register(cx);
            if listener.signals().is_shutting_down() {
                return Poll::Ready(None);
            }
            Poll::Pending
        })
        .await;
        match timed_out {
            None => request::error(WireError::shutting_down(retry_after)),
            Some(_) => collected.answer(),
        }
    })
}
