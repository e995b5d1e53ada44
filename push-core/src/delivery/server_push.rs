use std::time::Duration;

use bytes::Bytes;

use super::{Delivery, Ndjson};
use crate::event::Event;
use crate::id::EventId;
use crate::signal::Signal;

/// One frame of HTTP/2 server push: a line for the parent stream, or an
/// event to promise as a pushed response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PushFrame {
    /// NDJSON for the parent stream: a signal line or the empty-line
    /// heartbeat.
    Parent(Bytes),
    /// An event, to push as the response to `GET …/messages/{id}`.
    Promise(Promised),
}

/// An event to push: its id, which names the pushed URL, and its envelope
/// line, shared with every subscriber of this and of the NDJSON technique.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Promised {
    id: EventId,
    line: Bytes,
}

impl Promised {
    /// The event's id: the pushed request is for
    /// `…/channels/{name}/messages/{id}`.
    pub fn id(&self) -> EventId {
        self.id
    }

    /// The body of the pushed response: the JSON envelope, exactly as
    /// `GET …/messages/{id}` answers it (no trailing newline).
    pub fn body(&self) -> Bytes {
        self.line.slice(..self.line.len() - 1)
    }

    /// The envelope as an NDJSON line, for a parent stream that carries
    /// events inline (the client disabled push after the stream started).
    pub fn line(&self) -> &Bytes {
        &self.line
    }
}

/// HTTP/2 server push: every event a pushed response holding its JSON
/// envelope, signals and heartbeats as NDJSON lines on the parent stream.
///
/// [`Delivery::content_type`] is the parent stream's; each pushed response
/// is `application/json`.
///
/// ```
/// use push_core::delivery::{Delivery, PushFrame, ServerPush};
/// use push_core::{Data, Epoch, Event, EventId, Message, Signal};
///
/// let id = EventId::new(Epoch::from_u64(1), 1);
/// let event = Event::new(id, Message::new(Data::text("hi")));
/// let PushFrame::Promise(promised) = ServerPush.event(&event) else { unreachable!() };
/// assert_eq!(promised.id(), id);
/// assert_eq!(promised.body(), r#"{"id":"0000000000000001-1","data":"hi"}"#);
/// assert_eq!(
///     ServerPush.signal(&Signal::Position(id)),
///     PushFrame::Parent("{\"signal\":\"position\",\"cursor\":\"0000000000000001-1\"}\n".into())
/// );
/// assert_eq!(ServerPush.heartbeat(), Some(PushFrame::Parent("\n".into())));
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct ServerPush;

impl Delivery for ServerPush {
    type Frame = PushFrame;

    /// The parent stream's content type.
    fn content_type(&self) -> &'static str {
        Ndjson.content_type()
    }

    #[inline]
    fn event(&self, event: &Event) -> PushFrame {
        PushFrame::Promise(Promised {
            id: event.id(),
            line: event.envelope_line().clone(),
        })
    }

    fn signal(&self, signal: &Signal) -> PushFrame {
        PushFrame::Parent(Ndjson.signal(signal))
    }

    fn shutdown(&self, cursor: EventId, retry: Duration) -> PushFrame {
        PushFrame::Parent(Ndjson.shutdown(cursor, retry))
    }

    fn heartbeat(&self) -> Option<PushFrame> {
        Ndjson.heartbeat().map(PushFrame::Parent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Data, Message};
    use crate::id::Epoch;

    #[test]
    fn pushed_bodies_share_the_envelope_line() {
        let event = Event::new(
            EventId::new(Epoch::from_u64(1), 7),
            Message::new(Data::binary(vec![0u8, 255])),
        );
        let PushFrame::Promise(promised) = ServerPush.event(&event) else {
            panic!("an event is a promise");
        };
        assert_eq!(promised.line().as_ptr(), event.envelope_line().as_ptr());
        assert_eq!(promised.body().as_ptr(), event.envelope_line().as_ptr());
        assert_eq!(
            promised.body(),
            r#"{"id":"0000000000000001-7","data":"AP8=","encoding":"base64"}"#
        );
    }
}
