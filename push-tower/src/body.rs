//! The response body of every push service.
//!
//! A [`PushBody`] is either a complete answer (a poll's JSON, an error) or a
//! stream driven by a subscription and a byte-oriented
//! [`Delivery`]. Its data are [`Bytes`]: each event's
//! encoding, shared by every subscriber, is handed to the server as it is,
//! never copied. Items that are ready together are taken from the channel
//! under one lock and yielded back to back, so hyper gathers them into one
//! vectored write instead of one write per event.

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use push_core::{Delivery, EventId, Item, MemorySubscription, Signal, Subscription};

use crate::alarm::LagAlarm;
use crate::signals::{Listener, IDLE_TICKS};

/// The most items taken from a channel at once.
const MAX_TAKE: usize = 16;

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
    Stream(Box<StreamState>),
}

struct StreamState {
    subscription: MemorySubscription,
    delivery: Arc<dyn Delivery<Frame = Bytes>>,
    listener: Listener,
    /// Items taken from the channel and not yet yielded, from `next_item` on.
    items: Vec<Item>,
    next_item: usize,
    max_frame_bytes: usize,
    cursor: Option<EventId>,
    last_activity_tick: u64,
    ended: bool,
    /// The connection's alarm, told when this stream ends lagged.
    alarm: Option<LagAlarm>,
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

    /// A streaming body: every item of `subscription` framed by `delivery`,
    /// a heartbeat when idle, and the shutdown signal when the server drains.
    pub(crate) fn stream(
        mut subscription: MemorySubscription,
        delivery: Arc<dyn Delivery<Frame = Bytes>>,
        listener: Listener,
        max_frame_bytes: usize,
        alarm: Option<LagAlarm>,
    ) -> Self {
        if let Some(alarm) = &alarm {
            subscription.on_lag(alarm.lag_waker());
        }
        let last_activity_tick = listener.signals().tick();
        PushBody {
            kind: Kind::Stream(Box::new(StreamState {
                subscription,
                delivery,
                listener,
                items: Vec::new(),
                next_item: 0,
                max_frame_bytes,
                cursor: None,
                last_activity_tick,
                ended: false,
                alarm,
            })),
        }
    }
}

impl StreamState {
    fn poll_frame(&mut self, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        loop {
            if self.ended {
                return Poll::Ready(None);
            }
            if self.listener.signals().is_shutting_down() {
                return Poll::Ready(Some(self.shutdown_frame()));
            }
            if let Some(item) = self.items.get(self.next_item) {
                self.next_item += 1;
                let bytes = match item {
                    Item::Event(event) => {
                        self.cursor = Some(event.id());
                        self.delivery.event(event)
                    }
                    Item::Signal(signal) => {
                        if let (Signal::Lagged(_), Some(alarm)) = (signal, &self.alarm) {
                            alarm.resolve();
                        }
                        if signal.is_terminal() {
                            self.ended = true;
                        } else {
                            self.cursor = Some(signal.cursor());
                        }
                        self.delivery.signal(signal)
                    }
                };
                self.last_activity_tick = self.listener.signals().tick();
                return Poll::Ready(Some(bytes));
            }
            self.items.clear();
            self.next_item = 0;
            match self
                .subscription
                .poll_take(cx, &mut self.items, MAX_TAKE, self.max_frame_bytes)
            {
                Poll::Ready(0) => self.ended = true,
                Poll::Ready(_) => {}
                Poll::Pending => return self.poll_idle(cx),
            }
        }
    }

    /// Nothing to send: a heartbeat if idle long enough, else wait for the
    /// channel, the shared tick or shutdown.
    fn poll_idle(&mut self, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        self.listener.register(cx);
        let signals = self.listener.signals();
        if signals.is_shutting_down() {
            return Poll::Ready(Some(self.shutdown_frame()));
        }
        let tick = signals.tick();
        if tick.saturating_sub(self.last_activity_tick) >= IDLE_TICKS {
            self.last_activity_tick = tick;
            if let Some(heartbeat) = self.delivery.heartbeat() {
                return Poll::Ready(Some(heartbeat));
            }
        }
        Poll::Pending
    }

    fn shutdown_frame(&mut self) -> Bytes {
        self.ended = true;
        let cursor = self.cursor.unwrap_or_else(|| self.subscription.cursor());
        self.delivery.signal(&Signal::Shutdown(cursor))
    }
}

impl Body for PushBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

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
            Kind::Stream(state) => state.poll_frame(cx).map(|c| c.map(|c| Ok(Frame::data(c)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Full(bytes) => bytes.is_none(),
            Kind::Parts { remaining, .. } => *remaining == 0,
            Kind::Stream(state) => state.ended,
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
            Kind::Stream(state) => f
                .debug_struct("PushBody::Stream")
                .field("cursor", &state.cursor)
                .field("ended", &state.ended)
                .finish(),
        }
    }
}
