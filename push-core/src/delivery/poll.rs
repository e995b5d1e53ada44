use bytes::Bytes;

use super::{Batch, Delivery, Lifecycle};
use crate::envelope::encode_signal;
use crate::event::Event;
use crate::signal::Signal;

/// Short and long polling: one JSON object per response,
/// `{"messages":[<envelope>…],"cursor":"<id>"}` plus `"gap":true` and
/// `"closed":true` when they apply.
///
/// The frame is a list of byte chunks so that each event's shared envelope is
/// written as it is, never copied into the answer.
///
/// ```
/// use push_core::delivery::{Batch, Delivery, Poll};
/// use push_core::{Epoch, EventId};
///
/// let cursor = EventId::new(Epoch::from_u64(1), 0);
/// let chunks = Poll.batch(&Batch { events: &[], cursor, gap: true, closed: false }).unwrap();
/// let body: Vec<u8> = chunks.concat();
/// assert_eq!(body, br#"{"messages":[],"cursor":"0000000000000001-0","gap":true}"#);
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct Poll;

impl Delivery for Poll {
    type Frame = Vec<Bytes>;

    fn content_type(&self) -> &'static str {
        "application/json"
    }

    fn lifecycle(&self) -> Lifecycle {
        Lifecycle::Batch
    }

    /// The event's envelope (without the newline).
    fn event(&self, event: &Event) -> Vec<Bytes> {
        let line = event.envelope_line();
        vec![line.slice(..line.len() - 1)]
    }

    fn signal(&self, signal: &Signal) -> Vec<Bytes> {
        vec![Bytes::from(encode_signal(signal))]
    }

    fn heartbeat(&self) -> Option<Vec<Bytes>> {
        None
    }

    fn batch(&self, batch: &Batch<'_>) -> Option<Vec<Bytes>> {
        let mut chunks = Vec::with_capacity(batch.events.len() * 2 + 2);
        chunks.push(Bytes::from_static(b"{\"messages\":["));
        for (i, event) in batch.events.iter().enumerate() {
            if i > 0 {
                chunks.push(Bytes::from_static(b","));
            }
            let line = event.envelope_line();
            chunks.push(line.slice(..line.len() - 1));
        }
        let mut tail = format!("],\"cursor\":\"{}\"", batch.cursor);
        if batch.gap {
            tail.push_str(",\"gap\":true");
        }
        if batch.closed {
            tail.push_str(",\"closed\":true");
        }
        tail.push('}');
        chunks.push(Bytes::from(tail));
        Some(chunks)
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
        let chunks = Poll
            .batch(&Batch {
                events: &events,
                cursor: events[2].id(),
                gap: true,
                closed: true,
            })
            .unwrap();
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
        let body = Poll
            .batch(&Batch {
                events: &[],
                cursor,
                gap: false,
                closed: false,
            })
            .unwrap()
            .concat();
        assert_eq!(body, br#"{"messages":[],"cursor":"0000000000000009-4"}"#);
    }
}
