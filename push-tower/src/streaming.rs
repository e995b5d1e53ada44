//! A streaming response: the subscribe step every stream shares, then the
//! engine's frames as the body (any byte framing, or HTTP/2 push's).

use bytes::Bytes;
use http::{Request, Response};
use push_core::delivery::Delivery;
use push_core::engine::Frames;
use push_core::{ChannelName, Channels};

use crate::body::PushBody;
use crate::serve::ConnectionHandle;
use crate::stalled_reader::StalledReader;
use crate::subscribe::Subscribe;
use crate::{error, response, Push, ResponseFuture};

/// Answers `request` with a stream of `channel` framed by `delivery`; errors
/// are answered as JSON before any stream starts.
pub(crate) fn respond<C, B, D>(
    push: &Push<C>,
    channel: ChannelName,
    request: &Request<B>,
    delivery: D,
) -> ResponseFuture
where
    C: Channels,
    D: Delivery<Frame = Bytes>,
{
    respond_with(
        push,
        channel,
        request,
        move |push, subscription, stalled_reader| {
            bytes(push, subscription, delivery, stalled_reader)
        },
    )
}

/// The steps every streaming response shares: refused while shutting down,
/// the start position read from `request`, the subscription made (errors as
/// JSON before any stream starts), then `answer` builds the response from
/// the subscription and, over HTTP/1, the connection's stalled-reader watch.
pub(crate) fn respond_with<C, B, F>(
    push: &Push<C>,
    channel: ChannelName,
    request: &Request<B>,
    answer: F,
) -> ResponseFuture
where
    C: Channels,
    F: FnOnce(&Push<C>, C::Subscription, Option<StalledReader>) -> Response<PushBody>
        + Send
        + 'static,
{
    if let Err(refusal) = push.accepting() {
        return ResponseFuture::error(refusal);
    }
    let subscribe = match Subscribe::from_request(channel, request) {
        Ok(subscribe) => subscribe,
        Err(error) => return ResponseFuture::error(error),
    };
    // Counted against its HTTP/2 connection's subscriptions until it ends.
    let handle = ConnectionHandle::of(request.extensions());
    if let Err(error) = handle.map_or(Ok(()), ConnectionHandle::take_subscription) {
        return ResponseFuture::error(error);
    }
    // Only HTTP/1 connections are dropped for one stalled stream.
    let stalled_reader = (request.version() <= http::Version::HTTP_11)
        .then(|| ConnectionHandle::of(request.extensions()))
        .flatten()
        .and_then(|handle| handle.stalled_reader.clone());
    let push = push.clone();
    ResponseFuture::pending(async move {
        match subscribe.on(push.channels()).await {
            Ok(subscription) => answer(&push, subscription, stalled_reader),
            Err(error) => error::response(error),
        }
    })
}

/// A byte stream of `subscription` framed by `delivery`.
pub(crate) fn bytes<C, D>(
    push: &Push<C>,
    subscription: C::Subscription,
    delivery: D,
    stalled_reader: Option<StalledReader>,
) -> Response<PushBody>
where
    C: Channels,
    D: Delivery<Frame = Bytes>,
{
    let content_type = delivery.content_type();
    let frames = Frames::new(subscription, delivery, push.listen())
        .max_take_bytes(push.config().max_write_bytes);
    response::stream(content_type, PushBody::stream(frames, stalled_reader))
}
