//! A streaming response of any byte framing: the subscribe step, then the
//! engine's frames as the body.

use bytes::Bytes;
use http::Request;
use push_core::delivery::Delivery;
use push_core::engine::Frames;
use push_core::{ChannelName, Channels};

use crate::body::PushBody;
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
    if let Err(refusal) = push.accepting() {
        return ResponseFuture::error(refusal);
    }
    let subscribe = match Subscribe::from_request(channel, request) {
        Ok(subscribe) => subscribe,
        Err(error) => return ResponseFuture::error(error),
    };
    // Only HTTP/1 connections are dropped for one stalled stream.
    let stalled_reader = (request.version() <= http::Version::HTTP_11)
        .then(|| request.extensions().get::<StalledReader>().cloned())
        .flatten();
    let push = push.clone();
    ResponseFuture::pending(async move {
        match subscribe.on(push.channels()).await {
            Ok(subscription) => {
                let content_type = delivery.content_type();
                let frames = Frames::new(subscription, delivery, push.listen())
                    .max_take_bytes(push.config().max_write_bytes);
                response::stream(content_type, PushBody::stream(frames, stalled_reader))
            }
            Err(error) => error::response(error),
        }
    })
}
