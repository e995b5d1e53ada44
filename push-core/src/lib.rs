//! The transport-neutral model of `push`.
//!
//! Every technique (short and long polling, Server-Sent Events, HTTP
//! streaming, WebSocket, HTTP/2 server push) delivers the same things:
//!
//! - [`Event`]s, published to a [`Channel`] as [`Message`]s, each given an
//!   [`EventId`] that carries its channel's [`Epoch`];
//! - [`Signal`]s: the position a stream starts from, gaps, lag, close and
//!   shutdown, each with the cursor to resume from;
//! - subscriptions from a [`Start`]: now, after a cursor, or the earliest
//!   retained event.
//!
//! Storage sits behind two traits whose docs carry the rules every backend
//! follows: [`Channels`], channels by name, which every technique reaches
//! storage through, and [`Channel`], one channel. [`MemoryChannel`] is the
//! embedded channel and [`Hub`] a set of named ones, the default source.
//!
//! The [`Delivery`] trait is a streaming technique's framing, pure;
//! [`delivery`] holds the built-in SSE, NDJSON and WebSocket framings and the polls'
//! [`Batch`](delivery::Batch). The [`engine`] drives any framing from a
//! subscription, with heartbeats, shutdown, lag and coalescing.
//! [`Technique`] lists the techniques; [`wire`] holds the wire contract's
//! error codes.
//!
//! ```
//! use futures_util::StreamExt;
//! use push_core::delivery::{Delivery, Sse};
//! use push_core::{Data, Hub, HubConfig, Item, Message, Start};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let hub = Hub::new(HubConfig::default());
//! let mut subscription = hub.subscribe("prices", Start::Now)?;
//! hub.publish("prices", Message::new(Data::text("42")).with_name("tick")?)?;
//!
//! let sse = Sse::new();
//! let mut body = Vec::new();
//! for _ in 0..2 {
//!     match subscription.next().await.unwrap() {
//!         Item::Event(event) => body.extend_from_slice(&sse.event(&event)),
//!         Item::Signal(signal) => body.extend_from_slice(&sse.signal(&signal)),
//!     }
//! }
//! let body = String::from_utf8(body).unwrap();
//! assert!(body.ends_with("event: tick\ndata: 42\n\n"));
//! # Ok::<(), push_core::Error>(())
//! # }).unwrap();
//! ```
//!
//! The wire protocol these types encode is documented in [`protocol`].

pub mod channel;
pub mod channels;
pub mod delivery;
pub mod engine;
pub mod envelope;
mod error;
pub mod event;
pub mod hub;
pub mod id;
pub mod memory;
pub mod signal;
pub mod start;
mod sync;
pub mod technique;
pub mod wire;

/// The wire protocol, as a client author needs it (the repository's
/// `PROTOCOL.md`).
pub mod protocol {
    #![doc = include_str!("../../PROTOCOL.md")]
}

pub use channel::{Channel, ChannelInfo, Limits, Lookup, Subscription};
pub use channels::Channels;
pub use delivery::Delivery;
pub use error::{ChannelNameError, Error};
pub use event::{Data, Event, EventName, EventNameError, Message};
pub use hub::{ChannelName, Hub, HubConfig};
pub use id::{CursorRelation, Epoch, EventId, EventIdText, ParseEventIdError};
pub use memory::{MemoryChannel, MemorySubscription};
pub use signal::{Item, Signal};
pub use start::{Start, StartError};
pub use technique::{Shape, Technique};
