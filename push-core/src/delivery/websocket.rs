use std::time::Duration;

use bytes::Bytes;

use super::Delivery;
use crate::envelope::{encode_shutdown, encode_signal};
use crate::event::Event;
use crate::id::EventId;
use crate::signal::Signal;

/// One WebSocket message of the wire contract, before any WebSocket library
/// frames it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WsMessage {
    /// A text message: an event's JSON envelope or a signal object. Always
    /// valid UTF-8 (JSON text), so a sender may mark it text without
    /// checking it again.
    Text(Bytes),
    /// A ping with an empty payload: the heartbeat.
    Ping,
}

/// WebSocket messages: one text message per event holding its JSON
/// envelope, signals as text messages, pings as heartbeats.
///
/// An event's message shares the bytes of [`Event::envelope_line`] (without
/// its `\n`): every subscriber, of this and of the NDJSON technique, sends
/// the same allocation.
///
/// ```
/// use push_core::delivery::{Delivery, WebSocket, WsMessage};
/// use push_core::{Data, Epoch, Event, EventId, Message, Signal};
///
/// let id = EventId::new(Epoch::from_u64(1), 1);
/// let event = Event::new(id, Message::new(Data::text("hi")));
/// assert_eq!(
///     WebSocket.event(&event),
///     WsMessage::Text(r#"{"id":"0000000000000001-1","data":"hi"}"#.into())
/// );
/// assert_eq!(
///     WebSocket.signal(&Signal::Closed(id)),
///     WsMessage::Text(r#"{"signal":"closed","cursor":"0000000000000001-1"}"#.into())
/// );
/// assert_eq!(WebSocket.heartbeat(), Some(WsMessage::Ping));
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct WebSocket;

impl Delivery for WebSocket {
    type Frame = WsMessage;

    /// The content of every text message.
    fn content_type(&self) -> &'static str {
        "application/json"
    }

    #[inline]
    fn event(&self, event: &Event) -> WsMessage {
        let line = event.envelope_line();
        WsMessage::Text(line.slice(..line.len() - 1))
    }

    fn signal(&self, signal: &Signal) -> WsMessage {
        WsMessage::Text(Bytes::from(encode_signal(signal)))
    }

    fn shutdown(&self, cursor: EventId, retry: Duration) -> WsMessage {
        WsMessage::Text(Bytes::from(encode_shutdown(cursor, retry)))
    }

    fn heartbeat(&self) -> Option<WsMessage> {
        Some(WsMessage::Ping)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Data, Message};
    use crate::id::Epoch;

    #[test]
    fn event_messages_share_the_envelope_line() {
        let event = Event::new(
            EventId::new(Epoch::from_u64(1), 1),
            Message::new(Data::binary(vec![0u8, 255])),
        );
        let WsMessage::Text(text) = WebSocket.event(&event) else {
            panic!("a text message");
        };
        assert_eq!(text.as_ptr(), event.envelope_line().as_ptr());
        assert!(std::str::from_utf8(&text).is_ok());
        assert!(!text.ends_with(b"\n"));
    }
}
