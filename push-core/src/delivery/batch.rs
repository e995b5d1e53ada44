use bytes::Bytes;

use crate::event::Event;
use crate::id::EventId;

/// What a short or long poll answers: the events taken, the cursor to send
/// back, and whether a gap preceded them or the channel closed.
///
/// [`Batch::encode`] gives the wire contract's JSON,
/// `{"messages":[<envelope>…],"cursor":"<id>"}` plus `"gap":true` and
/// `"closed":true` when they apply, as a list of byte chunks so that each
/// event's shared envelope is written as it is, never copied into the answer.
///
/// ```
/// use push_core::delivery::Batch;
/// use push_core::{Epoch, EventId};
///
/// let cursor = EventId::new(Epoch::from_u64(1), 0);
/// let chunks = Batch { events: &[], cursor, gap: true, closed: false }.encode();
/// let body: Vec<u8> = chunks.concat();
/// assert_eq!(body, br#"{"messages":[],"cursor":"0000000000000001-0","gap":true}"#);
/// ```
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

impl Batch<'_> {
    /// The `Content-Type` of a poll's answer.
    pub const CONTENT_TYPE: &'static str = "application/json";

    /// The answer's JSON, as chunks that share each event's envelope.
    pub fn encode(&self) -> Vec<Bytes> {
        let mut chunks = Vec::with_capacity(self.events.len() * 2 + 2);
        chunks.push(Bytes::from_static(b"{\"messages\":["));
        for (i, event) in self.events.iter().enumerate() {
            if i > 0 {
                chunks.push(Bytes::from_static(b","));
            }
            let line = event.envelope_line();
            chunks.push(line.slice(..line.len() - 1));
        }
        let mut tail = format!("],\"cursor\":\"{}\"", self.cursor);
        if self.gap {
            tail.push_str(",\"gap\":true");
        }
        if self.closed {
            tail.push_str(",\"closed\":true");
        }
        tail.push('}');
        chunks.push(Bytes::from(tail));
        chunks
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Data, Message};
    use crate::id::{Epoch, EventId};

    #[test]
    fn batch_is_valid_json_with_every_flag() {
        let epoch = Epoch::from_u64(9);
        let events: Vec<Event> = (1..=3)
            .map(|seq| {
                Event::new(
                    EventId::new(epoch, seq),
                    Message::new(Data::text(format!("e{seq}"))),
                )
            })
            .collect();
        let chunks = Batch {
            events: &events,
            cursor: events[2].id(),
            gap: true,
            closed: true,
        }
        .encode();
        let value: serde_json::Value = serde_json::from_slice(&chunks.concat()).unwrap();
        assert_eq!(value["messages"].as_array().unwrap().len(), 3);
        assert_eq!(value["messages"][1]["data"], "e2");
        assert_eq!(value["cursor"], "0000000000000009-3");
        assert_eq!(value["gap"], true);
        assert_eq!(value["closed"], true);
        // The envelope chunk is the event's shared encoding, not a copy.
        assert_eq!(chunks[1].as_ptr(), events[0].envelope_line().as_ptr());
    }

    #[test]
    fn flags_are_left_out_when_false() {
        let cursor = EventId::new(Epoch::from_u64(9), 4);
        let body = Batch {
            events: &[],
            cursor,
            gap: false,
            closed: false,
        }
        .encode()
        .concat();
        assert_eq!(body, br#"{"messages":[],"cursor":"0000000000000009-4"}"#);
    }
}
