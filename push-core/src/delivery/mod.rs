//! The `Delivery` trait: a technique's framing and lifecycle, without I/O.
//!
//! A technique is a framing (how an event, a heartbeat and each signal become
//! frames) plus a lifecycle (does the response end after one batch, as a poll
//! does, or stay open, as a stream does). Servers drive a [`Delivery`] from a
//! [`Subscription`](crate::Subscription); the conformance suite decodes what it
//! produces. Built in: [`Sse`], [`Ndjson`] and [`Poll`]; WebSocket messages
//! and HTTP/2 pushed responses implement the same trait with their own
//! [`Delivery::Frame`] types.
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
//! [`Delivery::Frame`]. A WebSocket framing, say, shares each event's JSON
//! envelope as a text message and sends heartbeats as pings:
//!
//! ```
//! use bytes::Bytes;
//! use push_core::delivery::{Delivery, Lifecycle};
//! use push_core::{envelope, Data, Epoch, Event, EventId, Message, Signal};
//!
//! enum WsFrame {
//!     Text(Bytes),
//!     Ping,
//! }
//!
//! struct Ws;
//!
//! impl Delivery for Ws {
//!     type Frame = WsFrame;
//!     fn content_type(&self) -> &'static str { "application/json" }
//!     fn lifecycle(&self) -> Lifecycle { Lifecycle::Stream }
//!     fn event(&self, event: &Event) -> WsFrame {
//!         let line = event.envelope_line();
//!         WsFrame::Text(line.slice(..line.len() - 1)) // shared, not copied
//!     }
//!     fn signal(&self, signal: &Signal) -> WsFrame {
//!         WsFrame::Text(Bytes::from(envelope::encode_signal(signal)))
//!     }
//!     fn heartbeat(&self) -> Option<WsFrame> { Some(WsFrame::Ping) }
//! }
//!
//! let event = Event::new(EventId::new(Epoch::from_u64(1), 1), Message::new(Data::text("hi")));
//! match Ws.event(&event) {
//!     WsFrame::Text(text) => assert_eq!(text, r#"{"id":"0000000000000001-1","data":"hi"}"#),
//!     WsFrame::Ping => unreachable!(),
//! }
//! ```
//!
//! An HTTP/2 push framing would likewise make each event a pushed response
//! (a path such as `/channels/{name}/messages/{id}`, headers, and the
//! envelope as body) and send signals on the parent stream.
//!
//! # Rules for implementors
//!
//! - **Pure.** No I/O, no clocks, no randomness: the same input gives the same
//!   frame.
//! - **Encode once.** [`Delivery::event`] must depend only on the event, so
//!   that its result can be computed once and shared by every subscriber
//!   (use [`Event::encoded`] with your type as the key, or
//!   [`Event::envelope_line`] for the JSON envelope).
//! - **Lossless.** Every event's id, name and data must be recoverable
//!   byte-exact from its frame; where the wire cannot carry data raw, use a
//!   documented lossless form.
//! - **Heartbeats are not data.** A heartbeat frame must never decode as an
//!   event or a signal, nor move a cursor.

mod ndjson;
mod poll;
mod sse;

pub use ndjson::Ndjson;
pub use poll::Poll;
pub use sse::Sse;

use crate::event::Event;
use crate::id::EventId;
use crate::signal::Signal;

/// Whether a response ends after one batch or stays open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lifecycle {
    /// The response carries one [`Batch`] and ends (short and long polling).
    Batch,
    /// The response stays open and carries frames as they come (SSE, HTTP
    /// streaming, WebSocket, HTTP/2 push).
    Stream,
}

/// What a batch technique answers: the events taken, the cursor to send back,
/// and whether a gap preceded them or the channel closed.
#[derive(Clone, Copy, Debug)]
pub struct Batch<'a> {
    /// The events, in order.
    pub events: &'a [Event],
    /// The cursor the client sends back next time: the last event's id, or
    /// the position when there is none.
    pub cursor: EventId,
    /// Whether a gap preceded these events.
    pub gap: bool,
    /// Whether the channel closed (a held long poll ends with this).
    pub closed: bool,
}

/// A technique's framing and lifecycle. See the [module docs](self) for the
/// rules every implementation follows.
pub trait Delivery: Send + Sync + 'static {
    /// One unit of output: bytes to append to a response body, a WebSocket
    /// message, a pushed response.
    type Frame: Send + 'static;

    /// The `Content-Type` of the response (or of each pushed response).
    fn content_type(&self) -> &'static str;

    /// Whether the response ends after a batch or stays open.
    fn lifecycle(&self) -> Lifecycle;

    /// The frame of one event. Depends only on the event; share it.
    fn event(&self, event: &Event) -> Self::Frame;

    /// The frame of a signal.
    fn signal(&self, signal: &Signal) -> Self::Frame;

    /// The frame sent on an idle stream to keep it alive, if the technique
    /// sends one in band (`None` for batch techniques).
    fn heartbeat(&self) -> Option<Self::Frame>;

    /// The whole answer of a batch technique; `None` for streams.
    fn batch(&self, batch: &Batch<'_>) -> Option<Self::Frame> {
        let _ = batch;
        None
    }
}
