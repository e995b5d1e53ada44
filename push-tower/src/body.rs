//! The response body of every push service.
//!
//! A [`PushBody`] is either a complete answer (a poll's JSON, an error) or a
//! stream driven by a subscription and a byte-oriented
//! [`Delivery`](push_core::Delivery). Its data type, [`Chunks`], holds the
//! shared bytes of several frames at once, so that events already queued go
//! out in one vectored write without being copied.

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use http_body::{Body, Frame, SizeHint};
use push_core::{Delivery, EventId, Item, MemorySubscription, Signal, Subscription};

use crate::signals::{Listener, IDLE_TICKS};

/// The most frames coalesced into one [`Chunks`].
pub const MAX_PARTS: usize = 8;

/// Up to [`MAX_PARTS`] shared byte chunks written as one.
///
/// Implements [`Buf`] with vectored chunks, so hyper writes them with one
/// `writev` and never copies the shared event bytes. Holding them inline
/// means coalescing allocates nothing.
#[derive(Clone, Default)]
pub struct Chunks {
    parts: [Bytes; MAX_PARTS],
    start: usize,
    end: usize,
}

impl Chunks {
    /// One chunk.
    pub fn one(bytes: Bytes) -> Self {
        let mut chunks = Chunks::default();
        chunks.push(bytes);
        chunks
    }

    /// Whether another chunk fits.
    pub fn is_full(&self) -> bool {
        self.end == MAX_PARTS
    }

    /// How many chunks are held.
    pub fn len(&self) -> usize {
        self.end - self.start
    }

    /// Whether no chunk is held.
    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// Appends a chunk; empty chunks are skipped.
    ///
    /// # Panics
    ///
    /// Panics if [`Chunks::is_full`]; check it first.
    pub fn push(&mut self, bytes: Bytes) {
        assert!(!self.is_full(), "Chunks holds at most {MAX_PARTS} parts");
        if !bytes.is_empty() {
            self.parts[self.end] = bytes;
            self.end += 1;
        }
    }

    /// All bytes copied into one buffer (for tests and small answers).
    pub fn to_bytes(&self) -> Bytes {
        let mut out = Vec::with_capacity(self.remaining());
        for part in &self.parts[self.start..self.end] {
            out.extend_from_slice(part);
        }
        Bytes::from(out)
    }
}

impl Buf for Chunks {
    fn remaining(&self) -> usize {
        self.parts[self.start..self.end]
            .iter()
            .map(Bytes::len)
            .sum()
    }

    fn chunk(&self) -> &[u8] {
        if self.start < self.end {
            &self.parts[self.start]
        } else {
            &[]
        }
    }

    fn advance(&mut self, mut cnt: usize) {
        while cnt > 0 {
            assert!(self.start < self.end, "advanced past the end of Chunks");
            let part = &mut self.parts[self.start];
            if cnt < part.len() {
                part.advance(cnt);
                return;
            }
            cnt -= part.len();
            *part = Bytes::new();
            self.start += 1;
        }
    }

    fn chunks_vectored<'a>(&'a self, dst: &mut [std::io::IoSlice<'a>]) -> usize {
        let mut filled = 0;
        for part in &self.parts[self.start..self.end] {
            if filled == dst.len() {
                break;
            }
            dst[filled] = std::io::IoSlice::new(part);
            filled += 1;
        }
        filled
    }
}

impl fmt::Debug for Chunks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Chunks")
            .field("parts", &self.len())
            .field("bytes", &self.remaining())
            .finish()
    }
}

/// The body of every response of this crate.
pub struct PushBody {
    kind: Kind,
}

enum Kind {
    Full(Option<Chunks>),
    Parts {
        parts: std::vec::IntoIter<Bytes>,
        remaining: u64,
    },
    Stream(Box<StreamState>),
}

struct StreamState {
    subscription: MemorySubscription,
    delivery: Arc<dyn Delivery<Frame = Bytes>>,
    listener: Listener,
    items: Vec<Item>,
    max_frame_bytes: usize,
    cursor: Option<EventId>,
    last_activity_tick: u64,
    ended: bool,
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
            kind: Kind::Full((!bytes.is_empty()).then(|| Chunks::one(bytes))),
        }
    }

    /// A complete body of several shared chunks (a poll's answer), written
    /// without copying them.
    pub fn from_parts(parts: Vec<Bytes>) -> Self {
        let remaining = parts.iter().map(|part| part.len() as u64).sum();
        PushBody {
            kind: Kind::Parts {
                parts: parts.into_iter(),
                remaining,
            },
        }
    }

    /// A streaming body: every item of `subscription` framed by `delivery`,
    /// a heartbeat when idle, and the shutdown signal when the server drains.
    pub(crate) fn stream(
        subscription: MemorySubscription,
        delivery: Arc<dyn Delivery<Frame = Bytes>>,
        listener: Listener,
        max_frame_bytes: usize,
    ) -> Self {
        let last_activity_tick = listener.signals().tick();
        PushBody {
            kind: Kind::Stream(Box::new(StreamState {
                subscription,
                delivery,
                listener,
                items: Vec::new(),
                max_frame_bytes,
                cursor: None,
                last_activity_tick,
                ended: false,
            })),
        }
    }
}

impl StreamState {
    fn poll_frame(&mut self, cx: &mut Context<'_>) -> Poll<Option<Chunks>> {
        if self.ended {
            return Poll::Ready(None);
        }
        if self.listener.signals().is_shutting_down() {
            return Poll::Ready(Some(self.shutdown_frame()));
        }
        self.items.clear();
        let max_items = MAX_PARTS;
        match self
            .subscription
            .poll_take(cx, &mut self.items, max_items, self.max_frame_bytes)
        {
            Poll::Ready(0) => {
                self.ended = true;
                Poll::Ready(None)
            }
            Poll::Ready(_) => {
                let mut chunks = Chunks::default();
                for item in self.items.drain(..) {
                    let bytes = match &item {
                        Item::Event(event) => {
                            self.cursor = Some(event.id());
                            self.delivery.event(event)
                        }
                        Item::Signal(signal) => {
                            if signal.is_terminal() {
                                self.ended = true;
                            } else {
                                self.cursor = Some(signal.cursor());
                            }
                            self.delivery.signal(signal)
                        }
                    };
                    chunks.push(bytes);
                }
                self.last_activity_tick = self.listener.signals().tick();
                Poll::Ready(Some(chunks))
            }
            Poll::Pending => {
                self.listener.register(cx);
                let signals = self.listener.signals();
                if signals.is_shutting_down() {
                    return Poll::Ready(Some(self.shutdown_frame()));
                }
                let tick = signals.tick();
                if tick.saturating_sub(self.last_activity_tick) >= IDLE_TICKS {
                    self.last_activity_tick = tick;
                    if let Some(heartbeat) = self.delivery.heartbeat() {
                        return Poll::Ready(Some(Chunks::one(heartbeat)));
                    }
                }
                Poll::Pending
            }
        }
    }

    fn shutdown_frame(&mut self) -> Chunks {
        self.ended = true;
        let cursor = self.cursor.unwrap_or_else(|| self.subscription.cursor());
        Chunks::one(self.delivery.signal(&Signal::Shutdown(cursor)))
    }
}

impl Body for PushBody {
    type Data = Chunks;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Chunks>, Self::Error>>> {
        match &mut self.get_mut().kind {
            Kind::Full(chunks) => Poll::Ready(chunks.take().map(|c| Ok(Frame::data(c)))),
            Kind::Parts { parts, remaining } => {
                let mut chunks = Chunks::default();
                while !chunks.is_full() {
                    match parts.next() {
                        Some(part) => chunks.push(part),
                        None => break,
                    }
                }
                *remaining -= chunks.remaining() as u64;
                Poll::Ready((!chunks.is_empty()).then(|| Ok(Frame::data(chunks))))
            }
            Kind::Stream(state) => state.poll_frame(cx).map(|c| c.map(|c| Ok(Frame::data(c)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Full(chunks) => chunks.is_none(),
            Kind::Parts { remaining, .. } => *remaining == 0,
            Kind::Stream(state) => state.ended,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Full(Some(chunks)) => SizeHint::with_exact(chunks.remaining() as u64),
            Kind::Full(None) => SizeHint::with_exact(0),
            Kind::Parts { remaining, .. } => SizeHint::with_exact(*remaining),
            Kind::Stream(_) => SizeHint::default(),
        }
    }
}

impl fmt::Debug for PushBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Full(chunks) => f.debug_tuple("PushBody::Full").field(chunks).finish(),
            Kind::Parts { remaining, .. } => f
                .debug_struct("PushBody::Parts")
                .field("remaining", remaining)
                .finish(),
            Kind::Stream(state) => f
                .debug_struct("PushBody::Stream")
                .field("cursor", &state.cursor)
                .field("ended", &state.ended)
                .finish(),
        }
    }
}
