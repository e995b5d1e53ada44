//! The delivery engine: one driver that turns a [`Subscription`] and any
//! [`Delivery`] into that delivery's frames.
//!
//! [`Frames`] does everything a streaming technique has in common, once:
//! it takes the items that are ready from the subscription in one go
//! (coalescing what is queued), frames each event and signal, sends a
//! heartbeat on the shared [`Pulse`] tick when the stream has been idle, ends
//! with the shutdown signal and the stream's cursor when the server drains,
//! and ends after a terminal signal (lagged, closed), telling why through
//! [`Frames::end`]. It does no I/O: an HTTP body yields its frames as body
//! data, a WebSocket sends them as messages, an HTTP/2 push stream as pushed
//! responses.
//!
//! ```
//! use std::future::poll_fn;
//! use std::time::Duration;
//! use push_core::delivery::Ndjson;
//! use push_core::engine::{End, Frames, Pulse};
//! use push_core::{Data, Hub, HubConfig, Message, Start};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let hub = Hub::new(HubConfig::default());
//! let pulse = Pulse::new(Duration::from_secs(15));
//! let subscription = hub.subscribe("news", Start::Now)?;
//! let mut frames = Frames::new(subscription, Ndjson, pulse.listen());
//! hub.publish("news", Message::new(Data::text("hi")))?;
//!
//! let position = poll_fn(|cx| frames.poll_frame(cx)).await.unwrap();
//! assert!(position.starts_with(br#"{"signal":"position""#));
//! let event = poll_fn(|cx| frames.poll_frame(cx)).await.unwrap();
//! assert!(event.ends_with(b"\"data\":\"hi\"}\n"));
//!
//! pulse.shut_down();
//! let shutdown = poll_fn(|cx| frames.poll_frame(cx)).await.unwrap();
//! assert!(shutdown.starts_with(br#"{"signal":"shutdown""#));
//! assert_eq!(frames.end(), Some(End::Shutdown));
//! # Ok::<(), push_core::Error>(())
//! # }).unwrap();
//! ```

mod gate;
mod pulse;
mod retry;

pub use gate::Gate;
pub use pulse::{Listener, Pulse};
pub use retry::RetryWindow;

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use futures_core::Stream;

use crate::channel::Subscription;
use crate::delivery::Delivery;
use crate::id::EventId;
use crate::signal::{Item, Signal};
use pulse::IDLE_TICKS;

/// The most items taken from a subscription at once.
const MAX_TAKE: usize = 16;

/// Why a stream of [`Frames`] ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum End {
    /// The subscriber fell past its bound; the last frame was the lagged
    /// signal.
    Lagged,
    /// The channel closed; the last frame was the closed signal.
    Closed,
    /// The server is shutting down; the last frame was the shutdown signal.
    Shutdown,
    /// The subscription ended without a terminal signal (its source went
    /// away).
    Finished,
}

/// A subscription driven through a [`Delivery`]: the frames a streaming
/// technique sends. See the [module docs](self).
pub struct Frames<S, D> {
    subscription: S,
    delivery: D,
    listener: Listener,
    /// The waker the subscription and the listener are polled with, so that
    /// polls nothing woke skip them.
    gate: Gate,
    /// The tick at which the listener was last given the gate's waker; a
    /// tick or shutdown takes it, and only those.
    listener_tick: Option<u64>,
    /// Items taken from the subscription and not yet framed, from
    /// `next_item` on.
    items: Vec<Item>,
    next_item: usize,
    max_take_bytes: usize,
    cursor: Option<EventId>,
    last_activity_tick: u64,
    end: Option<End>,
}

impl<S: Subscription, D: Delivery> Frames<S, D> {
    /// Drives `subscription` through `delivery`, with heartbeats and shutdown
    /// from the pulse `listener` listens to.
    pub fn new(subscription: S, delivery: D, listener: Listener) -> Self {
        let last_activity_tick = listener.pulse().tick();
        Frames {
            subscription,
            delivery,
            listener,
            gate: Gate::new(),
            listener_tick: None,
            items: Vec::new(),
            next_item: 0,
            max_take_bytes: 256 * 1024,
            cursor: None,
            last_activity_tick,
            end: None,
        }
    }

    /// Takes at most about `bytes` of event data from the subscription at
    /// once (one event is always taken, however large). Default 256 KiB.
    pub fn max_take_bytes(mut self, bytes: usize) -> Self {
        self.max_take_bytes = bytes.max(1);
        self
    }

    /// Wakes `waker` once the subscription is lagged, even while nobody
    /// polls these frames; see [`Subscription::on_lag`].
    pub fn on_lag(&mut self, waker: Waker) {
        self.subscription.on_lag(waker);
    }

    /// The cursor of the last frame that carried one: where a client that
    /// received everything so far resumes.
    #[inline]
    pub fn cursor(&self) -> Option<EventId> {
        self.cursor
    }

    /// Why the stream ended, once it has.
    #[inline]
    pub fn end(&self) -> Option<End> {
        self.end
    }

    /// Whether some item is taken and waiting to be framed, so that the next
    /// poll yields a frame at once. A sink that writes frames can hold back
    /// its flush while this is true.
    #[inline]
    pub fn has_ready(&self) -> bool {
        self.end.is_none() && self.next_item < self.items.len()
    }

    /// The next frame: `Ready(Some)` to send, `Ready(None)` once the stream
    /// has ended, `Pending` after arranging a wakeup from the subscription,
    /// the heartbeat tick or shutdown.
    #[inline]
    pub fn poll_frame(&mut self, cx: &mut Context<'_>) -> Poll<Option<D::Frame>> {
        loop {
            if self.end.is_some() {
                return Poll::Ready(None);
            }
            if self.listener.pulse().is_shutting_down() {
                return Poll::Ready(self.shutdown_frame());
            }
            if let Some(item) = self.items.get(self.next_item) {
                self.next_item += 1;
                let frame = match item {
                    Item::Event(event) => {
                        self.cursor = Some(event.id());
                        self.delivery.event(event)
                    }
                    Item::Signal(Signal::Shutdown(cursor)) => {
                        self.end = Some(End::Shutdown);
                        let retry = self.listener.pulse().retry().draw();
                        self.delivery.shutdown(*cursor, retry)
                    }
                    Item::Signal(signal) => {
                        match signal {
                            Signal::Lagged(_) => self.end = Some(End::Lagged),
                            Signal::Closed(_) => self.end = Some(End::Closed),
                            Signal::Position(cursor) | Signal::Gap(cursor) => {
                                self.cursor = Some(*cursor)
                            }
                            // Framed with its reconnect delay above.
                            Signal::Shutdown(_) => {}
                        }
                        self.delivery.signal(signal)
                    }
                };
                self.last_activity_tick = self.listener.pulse().tick();
                return Poll::Ready(Some(frame));
            }
            self.items.clear();
            self.next_item = 0;
            if !self.gate.pass(cx) {
                return Poll::Pending;
            }
            let mut sources = Context::from_waker(self.gate.waker());
            match self.subscription.poll_take(
                &mut sources,
                &mut self.items,
                MAX_TAKE,
                self.max_take_bytes,
            ) {
                Poll::Ready(0) => self.end = Some(End::Finished),
                Poll::Ready(_) => self.gate.set_armed(false),
                Poll::Pending => {
                    self.gate.set_armed(true);
                    return self.poll_idle();
                }
            }
        }
    }

    /// Nothing to send: a heartbeat if idle long enough, else wait for the
    /// subscription, the tick or shutdown.
    #[inline(never)]
    fn poll_idle(&mut self) -> Poll<Option<D::Frame>> {
        let pulse = self.listener.pulse();
        let tick = pulse.tick();
        if self.listener_tick != Some(tick) {
            self.listener
                .register(&mut Context::from_waker(self.gate.waker()));
            self.listener_tick = Some(tick);
        }
        if pulse.is_shutting_down() {
            return Poll::Ready(self.shutdown_frame());
        }
        if tick.saturating_sub(self.last_activity_tick) >= IDLE_TICKS {
            self.last_activity_tick = tick;
            if let Some(heartbeat) = self.delivery.heartbeat() {
                return Poll::Ready(Some(heartbeat));
            }
        }
        Poll::Pending
    }

    /// The shutdown signal with the stream's cursor and a reconnect delay
    /// drawn from the pulse's window. Before anything was framed the cursor
    /// is the subscription's position, which every subscription has ready at
    /// once.
    #[inline(never)]
    fn shutdown_frame(&mut self) -> Option<D::Frame> {
        self.end = Some(End::Shutdown);
        let cursor = self.cursor.or_else(|| {
            if self.items.len() <= self.next_item {
                self.items.clear();
                self.next_item = 0;
                let mut cx = Context::from_waker(Waker::noop());
                let _ = self
                    .subscription
                    .poll_take(&mut cx, &mut self.items, 1, usize::MAX);
            }
            match self.items.get(self.next_item) {
                Some(Item::Signal(Signal::Position(cursor))) => Some(*cursor),
                _ => None,
            }
        })?;
        let retry = self.listener.pulse().retry().draw();
        Some(self.delivery.shutdown(cursor, retry))
    }
}

// No field is ever pinned: the subscription is `Unpin` and the delivery is
// only borrowed.
impl<S, D> Unpin for Frames<S, D> {}

impl<S: Subscription, D: Delivery> Stream for Frames<S, D> {
    type Item = D::Frame;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<D::Frame>> {
        self.get_mut().poll_frame(cx)
    }
}

impl<S, D> fmt::Debug for Frames<S, D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Frames")
            .field("cursor", &self.cursor)
            .field("end", &self.end)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::Sse;
    use crate::event::{Data, Message};
    use crate::hub::{Hub, HubConfig};
    use crate::start::Start;
    use std::time::Duration;

    fn poll_now<S: Subscription, D: Delivery>(frames: &mut Frames<S, D>) -> Poll<Option<D::Frame>> {
        frames.poll_frame(&mut Context::from_waker(Waker::noop()))
    }

    #[test]
    fn frames_items_in_order_and_ends_after_closed() {
        let hub = Hub::new(HubConfig::default());
        let pulse = Pulse::new(Duration::from_secs(15));
        let subscription = hub.subscribe("a", Start::Now).unwrap();
        let mut frames = Frames::new(subscription, Sse::new(), pulse.listen());
        let id = hub.publish("a", Message::new(Data::text("x"))).unwrap();
        hub.close("a").unwrap();
        let mut text = String::new();
        while let Poll::Ready(Some(frame)) = poll_now(&mut frames) {
            text.push_str(std::str::from_utf8(&frame).unwrap());
        }
        assert!(text.contains(&format!("id: {id}\ndata: x\n\n")));
        assert!(text.contains("event: push.closed\n"));
        assert_eq!(frames.end(), Some(End::Closed));
        assert_eq!(frames.cursor(), Some(id));
        assert!(matches!(poll_now(&mut frames), Poll::Ready(None)));
    }

    #[test]
    fn shutdown_before_anything_carries_the_position() {
        let hub = Hub::new(HubConfig::default());
        let head = hub.publish("a", Message::new(Data::text("x"))).unwrap();
        let retry = RetryWindow::new(Duration::from_millis(1500), Duration::ZERO);
        let pulse = Pulse::with_retry(Duration::from_secs(15), retry);
        let subscription = hub.subscribe("a", Start::Now).unwrap();
        let mut frames = Frames::new(subscription, crate::delivery::Ndjson, pulse.listen());
        pulse.shut_down();
        let Poll::Ready(Some(frame)) = poll_now(&mut frames) else {
            panic!("a shutdown frame");
        };
        assert_eq!(
            frame,
            format!("{{\"signal\":\"shutdown\",\"cursor\":\"{head}\",\"retry_ms\":1500}}\n")
        );
        assert_eq!(frames.end(), Some(End::Shutdown));
    }

    /// A subscription that yields what it was given, then ends.
    struct Scripted(std::vec::IntoIter<Item>);

    impl Stream for Scripted {
        type Item = Item;

        fn poll_next(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Item>> {
            Poll::Ready(self.0.next())
        }
    }

    impl Subscription for Scripted {}

    #[test]
    fn a_shutdown_from_the_source_also_says_when_to_come_back() {
        let cursor = EventId::new(crate::Epoch::from_u64(1), 4);
        let script = vec![
            Item::Signal(Signal::Position(cursor)),
            Item::Signal(Signal::Shutdown(cursor)),
        ];
        let retry = RetryWindow::new(Duration::from_millis(700), Duration::ZERO);
        let pulse = Pulse::with_retry(Duration::from_secs(15), retry);
        let subscription = Scripted(script.into_iter());
        let mut frames = Frames::new(subscription, crate::delivery::Ndjson, pulse.listen());
        let _position = poll_now(&mut frames);
        let Poll::Ready(Some(frame)) = poll_now(&mut frames) else {
            panic!("a shutdown frame");
        };
        assert_eq!(
            frame,
            format!("{{\"signal\":\"shutdown\",\"cursor\":\"{cursor}\",\"retry_ms\":700}}\n")
        );
        assert_eq!(frames.end(), Some(End::Shutdown));
    }

    /// A subscription that counts how often it is polled.
    struct Counted<S> {
        inner: S,
        polls: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    }

    impl<S: Subscription> Stream for Counted<S> {
        type Item = Item;

        fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Item>> {
            Pin::new(&mut self.inner).poll_next(cx)
        }
    }

    impl<S: Subscription> Subscription for Counted<S> {
        fn poll_take(
            &mut self,
            cx: &mut Context<'_>,
            out: &mut Vec<Item>,
            max_items: usize,
            max_bytes: usize,
        ) -> Poll<usize> {
            self.polls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            self.inner.poll_take(cx, out, max_items, max_bytes)
        }
    }

    #[test]
    fn polls_nothing_woke_skip_the_subscription_and_a_publish_gets_through() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::Arc;
        use std::task::Wake;

        struct Count(AtomicUsize);
        impl Wake for Count {
            fn wake(self: Arc<Self>) {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
        let wakes = Arc::new(Count(AtomicUsize::new(0)));
        let task = Waker::from(Arc::clone(&wakes));
        let mut cx = Context::from_waker(&task);

        let hub = Hub::new(HubConfig::default());
        let pulse = Pulse::new(Duration::from_secs(15));
        let polls = Arc::new(AtomicUsize::new(0));
        let subscription = Counted {
            inner: hub.subscribe("a", Start::Now).unwrap(),
            polls: Arc::clone(&polls),
        };
        let mut frames = Frames::new(subscription, Sse::new(), pulse.listen());
        assert!(matches!(frames.poll_frame(&mut cx), Poll::Ready(Some(_))));
        assert!(frames.poll_frame(&mut cx).is_pending());
        let armed = polls.load(Ordering::SeqCst);
        for _ in 0..3 {
            assert!(frames.poll_frame(&mut cx).is_pending());
        }
        assert_eq!(polls.load(Ordering::SeqCst), armed, "nothing woke it");

        hub.publish("a", Message::new(Data::text("x"))).unwrap();
        hub.publish("a", Message::new(Data::text("y"))).unwrap();
        assert_eq!(
            wakes.0.load(Ordering::SeqCst),
            1,
            "the second wake coalesced"
        );
        let Poll::Ready(Some(frame)) = frames.poll_frame(&mut cx) else {
            panic!("the published event");
        };
        assert!(frame.ends_with(b"data: x\n\n"));
        assert!(matches!(frames.poll_frame(&mut cx), Poll::Ready(Some(_))));
        assert!(frames.poll_frame(&mut cx).is_pending());

        pulse.shut_down();
        assert_eq!(wakes.0.load(Ordering::SeqCst), 2, "shutdown wakes it");
        assert!(matches!(frames.poll_frame(&mut cx), Poll::Ready(Some(_))));
        assert_eq!(frames.end(), Some(End::Shutdown));
    }

    #[test]
    fn ready_items_are_taken_together() {
        let hub = Hub::new(HubConfig::default());
        let pulse = Pulse::new(Duration::from_secs(15));
        let subscription = hub.subscribe("a", Start::Now).unwrap();
        let mut frames = Frames::new(subscription, Sse::new(), pulse.listen());
        for i in 0..5 {
            hub.publish("a", Message::new(Data::text(i.to_string())))
                .unwrap();
        }
        assert!(!frames.has_ready());
        assert!(matches!(poll_now(&mut frames), Poll::Ready(Some(_))));
        // The position was framed; the five events were taken with it.
        assert!(frames.has_ready());
    }
}
