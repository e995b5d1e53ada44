//! Long polling: a `GET` that the server holds until something is new, the
//! channel closes, or a timeout passes.
//!
//! It answers like a [short poll](crate::poll): `{"messages":[…],"cursor":…}`
//! with `"gap":true` when a gap precedes the messages and `"closed":true` when
//! the channel closed while the request was held. The hold is `?timeout=`
//! seconds, else [`Config::long_poll_default`](crate::Config), capped by the
//! channel source's `long_poll_max`; on timeout it answers no messages and the same
//! cursor. During a graceful shutdown a held long poll answers `503` with
//! `Retry-After`. A client that goes away while held frees its subscription
//! at once, because dropping the response future drops it.
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
//! let long_poll = push.long_poll(ChannelFrom::path("/longpoll/{channel}").unwrap());
//! let held = tokio::spawn(
//!     long_poll.oneshot(Request::get("/longpoll/news?timeout=10").body(String::new()).unwrap()),
//! );
//! while push.channels().describe("news").unwrap().subscribers == 0 {
//!     tokio::task::yield_now().await;
//! }
//! push.channels().publish("news", Message::new(Data::text("now"))).unwrap();
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
use push_core::{ChannelName, Channels};

use crate::channel_from::technique_service;
use crate::poll::Collected;
use crate::request::Query;
use crate::subscribe::Subscribe;
use crate::{error, Push, ResponseFuture};

technique_service! {
    /// Long polling as a tower [`Service`](tower_service::Service),
    /// answering `GET`. See the [module docs](self).
    LongPollService, GET => respond,
    crate::authorize::Action::Subscribe(Some(push_core::Technique::LongPoll))
}

pub(crate) fn respond<C: Channels, B>(
    push: &Push<C>,
    channel: ChannelName,
    request: Request<B>,
) -> ResponseFuture {
    let config = *push.config();
    if let Err(refusal) = push.accepting() {
        return ResponseFuture::error(refusal);
    }
    let long_poll_max = push.channels().limits().long_poll_max;
    let prepared = Query::parse(request.uri()).and_then(|query| {
        let hold = query.hold(config.long_poll_default, long_poll_max)?;
        Ok((
            hold,
            Subscribe::with_query(channel, request.headers(), query)?,
        ))
    });
    let (hold, subscribe) = match prepared {
        Ok(prepared) => prepared,
        Err(error) => return ResponseFuture::error(error),
    };
    let push = push.clone();
    ResponseFuture::pending(async move {
        let listener = push.listen();
        let mut subscription = match subscribe.on(push.channels()).await {
            Ok(subscription) => subscription,
            Err(error) => return error::response(error),
        };
        let mut collected = Collected::default();
        let mut timeout = pin!(tokio::time::sleep(hold));
        let answered = poll_fn(|cx| {
            if listener.pulse().is_shutting_down() {
                return Poll::Ready(false);
            }
            if collected
                .take(&mut subscription, cx, config.max_batch)
                .is_ready()
                && !collected.is_nothing_new()
            {
                return Poll::Ready(true);
            }
            if timeout.as_mut().poll(cx).is_ready() {
                return Poll::Ready(true);
            }
            listener.register(cx);
            if listener.pulse().is_shutting_down() {
                return Poll::Ready(false);
            }
            Poll::Pending
        })
        .await;
        if !answered {
            let retry_after = listener.pulse().retry().draw_secs();
            return error::response(WireError::shutting_down(retry_after));
        }
        match collected.cursor() {
            Ok(cursor) => collected.answer(cursor),
            Err(error) => error::response(error),
        }
    })
}
