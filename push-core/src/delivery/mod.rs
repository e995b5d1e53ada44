//! The `Delivery` trait: a streaming technique's framing, without I/O.
//!
//! A streaming technique is a framing: how an event, a heartbeat and each
//! signal become frames. The [engine](crate::engine) drives any [`Delivery`]
//! from a [`Subscription`](crate::Subscription), with heartbeats, shutdown,
//! lag and coalescing; the conformance suite decodes what it produces. Built
//! in: [`Sse`] and [`Ndjson`] (body bytes), [`WebSocket`] (messages) and
//! [`ServerPush`] (pushed responses and a parent stream). Polls
//! answer one [`Batch`] per request instead of a stream of frames.
//!
//! ```
//! use push_core::delivery::{Delivery, Ndjson, Sse};
//! use push_core::{Data, Epoch, Event, EventId, Message, Signal};
//!
//! let id = EventId::new(Epoch::from_u64(1), 1);
//! let event = Event::new(id, Message::new(Data::text("a\nb")));
//! assert_eq!(Sse::new().event(&event), "id: 0000000000000001-1\ndata: a\ndata: b\n\n");
//! assert_eq!(
//!     Ndjson.signal(&Signal::Position(id)),
//!     "{\"signal\":\"position\",\"cursor\":\"0000000000000001-1\"}\n"
//! );
//! ```
//!
//! # Frames that are not bytes
//!
//! A technique whose unit is a message rather than body bytes picks its own
//! [`Delivery::Frame`]: [`WebSocket`] frames are [`WsMessage`]s, each event's
//! JSON envelope shared as a text message and pings as heartbeats.
//!
//! [`ServerPush`] frames are [`PushFrame`]s: each event a [`Promised`]
//! response (the id that names its URL, `/channels/{name}/messages/{id}`,
//! and the envelope as body), signals and heartbeats lines of the parent
//! stream.
//!
//! # Rules for implementors
//!
//! - **Pure.** No I/O, no clocks, no randomness: the same input gives the same
//!   frame (the engine draws the shutdown's reconnect delay, and hands it to
//!   [`Delivery::shutdown`]).
//! - **Encode once.** [`Delivery::event`] must depend only on the event, so
//!   that its result can be computed once and shared by every subscriber
//!   (use [`Event::encoded`] with your type as the key, or
//!   [`Event::envelope_line`] for the JSON envelope).
//! - **Lossless.** Every event's id, name and data must be recoverable
//!   byte-exact from its frame; where the wire cannot carry data raw, use a
//!   documented lossless form.
//! - **Heartbeats are not data.** A heartbeat frame must never decode as an
//!   event or a signal, nor move a cursor.

mod batch;
mod ndjson;
mod server_push;
mod sse;
mod websocket;

pub use batch::Batch;
pub use ndjson::Ndjson;
pub use server_push::{Promised, PushFrame, ServerPush};
pub use sse::Sse;
pub use websocket::{WebSocket, WsMessage};

use std::sync::Arc;
use std::time::Duration;

use crate::event::Event;
use crate::id::EventId;
use crate::signal::Signal;

/// A streaming technique's framing. See the [module docs](self) for the
/// rules every implementation follows.
pub trait Delivery: Send + Sync + 'static {
    /// One unit of output: bytes to append to a response body, a WebSocket
    /// message, a pushed response.
    type Frame: Send + 'static;

    /// The `Content-Type` of the response that carries the frames (or of
    /// each pushed response, or of a message's payload).
    fn content_type(&self) -> &'static str;

    /// The frame of one event. Depends only on the event; share it.
    fn event(&self, event: &Event) -> Self::Frame;

    /// The frame of a signal.
    fn signal(&self, signal: &Signal) -> Self::Frame;

    /// The frame of the `shutdown` signal at `cursor`, telling the client
    /// to wait `retry` before it reconnects (the engine draws it from the
    /// [`Pulse`](crate::engine::Pulse)'s window, so that clients come back
    /// spread out). The default frames the bare
    /// [`signal`](Delivery::signal), without the delay: override it where
    /// the framing can say when to come back.
    fn shutdown(&self, cursor: EventId, retry: Duration) -> Self::Frame {
        let _ = retry;
        self.signal(&Signal::Shutdown(cursor))
    }

    /// The frame sent on an idle stream to keep it alive, or `None` when the
    /// technique keeps connections alive out of band (a protocol-level
    /// ping, say).
    fn heartbeat(&self) -> Option<Self::Frame>;
}

/// A shared framing is a framing: servers hold one per technique and hand
/// every stream a clone of the `Arc`.
impl<D: Delivery + ?Sized> Delivery for Arc<D> {
    type Frame = D::Frame;

    fn content_type(&self) -> &'static str {
        (**self).content_type()
    }

    fn event(&self, event: &Event) -> Self::Frame {
        (**self).event(event)
    }

    fn signal(&self, signal: &Signal) -> Self::Frame {
        (**self).signal(signal)
    }

    fn shutdown(&self, cursor: EventId, retry: Duration) -> Self::Frame {
        (**self).shutdown(cursor, retry)
    }

    fn heartbeat(&self) -> Option<Self::Frame> {
        (**self).heartbeat()
    }
}
