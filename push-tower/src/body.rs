//! The response body of every push service.
//!
//! A [`PushBody`] is either a complete answer (a poll's JSON, an error) or a
//! stream: the [engine](push_core::engine)'s frames of a subscription through
//! a byte framing. Its data are [`Bytes`]: each event's encoding, shared by
//! every subscriber, is handed to the server as it is, never copied. Items
//! that are ready together are taken from the channel at once and yielded
//! back to back, so hyper gathers them into one vectored write instead of one
//! write per event.

use std::convert::Infallible;
use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use push_core::engine::{End, Frames};
use push_core::{Delivery, Subscription};

use crate::stalled_reader::StalledReader;

/// The body of every response of this crate.
pub struct PushBody {
    kind: Kind,
}

enum Kind {
    Full(Option<Bytes>),
    Parts {
        parts: std::vec::IntoIter<Bytes>,
        remaining: u64,
    },
    Stream(Box<dyn ByteStream>),
}

/// A stream body, whatever its subscription and framing. It answers in
/// `http_body`'s own terms so that the body only forwards: this is the hot
/// path of every delivery.
pub(crate) trait ByteStream: Send {
    fn poll_frame(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>>;
    fn is_ended(&self) -> bool;
}

struct StreamBody<S, D> {
    frames: Frames<S, D>,
    /// The connection's watch, told when this stream ends lagged.
    stalled_reader: Option<StalledReader>,
}

impl<S: Subscription, D: Delivery<Frame = Bytes>> ByteStream for StreamBody<S, D> {
    fn poll_frame(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let frame = self.frames.poll_frame(cx);
        let lagged = self.frames.end() == Some(End::Lagged);
        if let Some(watch) = self.stalled_reader.take_if(|_| lagged) {
            watch.resolve();
        }
        frame.map(|bytes| bytes.map(|bytes| Ok(Frame::data(bytes))))
    }

    fn is_ended(&self) -> bool {
        self.frames.end().is_some()
    }
}

impl Default for PushBody {
    /// An empty body, as CORS preflight answers have.
    fn default() -> Self {
        PushBody::empty()
    }
}

impl PushBody {
    /// An empty body.
    pub fn empty() -> Self {
        PushBody {
            kind: Kind::Full(None),
        }
    }

    /// A complete body of these bytes.
    pub fn full(bytes: impl Into<Bytes>) -> Self {
        let bytes = bytes.into();
        PushBody {
            kind: Kind::Full((!bytes.is_empty()).then_some(bytes)),
        }
    }

    /// A complete body of several shared chunks (a poll's answer), sent
    /// without copying them into one buffer.
    pub fn from_parts(parts: Vec<Bytes>) -> Self {
        let remaining = parts.iter().map(|part| part.len() as u64).sum();
        PushBody {
            kind: Kind::Parts {
                parts: parts.into_iter(),
                remaining,
            },
        }
    }

    /// A streaming body of another kind than [`PushBody::stream`]'s.
    pub(crate) fn from_stream(stream: impl ByteStream + 'static) -> Self {
        PushBody {
            kind: Kind::Stream(Box::new(stream)),
        }
    }

    /// A streaming body of `frames`. With a `stalled_reader` watch, the
    /// subscription raises it when lagged, and the stream resolves it when
    /// it delivers the lagged signal.
    pub(crate) fn stream<S, D>(
        mut frames: Frames<S, D>,
        stalled_reader: Option<StalledReader>,
    ) -> Self
    where
        S: Subscription,
        D: Delivery<Frame = Bytes>,
    {
        if let Some(watch) = &stalled_reader {
            frames.on_lag(watch.lag_waker());
        }
        PushBody {
            kind: Kind::Stream(Box::new(StreamBody {
                frames,
                stalled_reader,
            })),
        }
    }
}

impl Body for PushBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match &mut self.get_mut().kind {
            Kind::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            Kind::Parts { parts, remaining } => {
                let part = parts.find(|part| !part.is_empty());
                if let Some(part) = &part {
                    *remaining -= part.len() as u64;
                }
                Poll::Ready(part.map(|part| Ok(Frame::data(part))))
            }
            Kind::Stream(stream) => stream.poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Full(bytes) => bytes.is_none(),
            Kind::Parts { remaining, .. } => *remaining == 0,
            Kind::Stream(stream) => stream.is_ended(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Full(Some(bytes)) => SizeHint::with_exact(bytes.len() as u64),
            Kind::Full(None) => SizeHint::with_exact(0),
            Kind::Parts { remaining, .. } => SizeHint::with_exact(*remaining),
            Kind::Stream(_) => SizeHint::default(),
        }
    }
}

impl fmt::Debug for PushBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Full(bytes) => f.debug_tuple("PushBody::Full").field(bytes).finish(),
            Kind::Parts { remaining, .. } => f
                .debug_struct("PushBody::Parts")
                .field("remaining", remaining)
                .finish(),
            Kind::Stream(stream) => f
                .debug_struct("PushBody::Stream")
                .field("ended", &stream.is_ended())
                .finish(),
        }
    }
}
