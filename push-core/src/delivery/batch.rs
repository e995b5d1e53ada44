use bytes::Bytes;

use crate::event::Event;
use crate::id::{EventId, EventIdText};

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

/// What opens every answer.
const HEAD: &[u8] = b"{\"messages\":[";
/// What follows the messages, before the cursor's text and its closing quote.
const CURSOR: &[u8] = b"],\"cursor\":\"";
const GAP: &[u8] = b",\"gap\":true";
const CLOSED: &[u8] = b",\"closed\":true";

impl Batch<'_> {
    /// The `Content-Type` of a poll's answer.
    pub const CONTENT_TYPE: &'static str = "application/json";

    /// The answer's JSON, as chunks that share each event's envelope: for
    /// answers whose events are large, where copying them would cost more
    /// than writing each chunk.
    pub fn encode(&self) -> Vec<Bytes> {
        let mut chunks = Vec::with_capacity(self.events.len() * 2 + 2);
        chunks.push(Bytes::from_static(HEAD));
        for (i, event) in self.events.iter().enumerate() {
            if i > 0 {
                chunks.push(Bytes::from_static(b","));
            }
            let line = event.envelope_line();
            chunks.push(line.slice(..line.len() - 1));
        }
        let cursor = self.cursor.to_text();
        // Exactly sized, so that `Bytes` takes the buffer without another
        // allocation.
        let mut tail = Vec::with_capacity(self.tail_len());
        self.write_tail(&cursor, &mut tail);
        chunks.push(Bytes::from(tail));
        chunks
    }

    /// The same JSON as [`encode`](Self::encode), in one buffer, each
    /// envelope copied into it: for small answers, where one chunk costs
    /// the HTTP stack less than several and copying is cheap.
    ///
    /// ```
    /// use push_core::delivery::Batch;
    /// use push_core::{Data, Epoch, Event, EventId, Message};
    ///
    /// let id = EventId::new(Epoch::from_u64(1), 1);
    /// let events = [Event::new(id, Message::new(Data::text("hi")))];
    /// let batch = Batch { events: &events, cursor: id, gap: false, closed: true };
    /// let joined = batch.encode_joined();
    /// assert_eq!(joined, batch.encode().concat());
    /// assert_eq!(joined.len(), batch.encoded_len());
    /// ```
    pub fn encode_joined(&self) -> Bytes {
        let cursor = self.cursor.to_text();
        let mut out = Vec::with_capacity(self.encoded_len());
        out.extend_from_slice(HEAD);
        for (i, event) in self.events.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            let line = event.envelope_line();
            out.extend_from_slice(&line[..line.len() - 1]);
        }
        self.write_tail(&cursor, &mut out);
        Bytes::from(out)
    }

    /// The answer's length in bytes, whichever way it is encoded.
    pub fn encoded_len(&self) -> usize {
        let envelopes: usize = self
            .events
            .iter()
            .map(|event| event.envelope_line().len() - 1)
            .sum();
        let commas = self.events.len().saturating_sub(1);
        HEAD.len() + envelopes + commas + self.tail_len()
    }

    /// The length of what follows the messages.
    fn tail_len(&self) -> usize {
        let gap = if self.gap { GAP.len() } else { 0 };
        let closed = if self.closed { CLOSED.len() } else { 0 };
        CURSOR.len() + self.cursor.text_len() + gap + closed + br#""}"#.len()
    }

    /// What follows the messages: the cursor, the flags that apply, `}`.
    fn write_tail(&self, cursor: &EventIdText, out: &mut Vec<u8>) {
        out.extend_from_slice(CURSOR);
        out.extend_from_slice(cursor.as_bytes());
        out.push(b'"');
        if self.gap {
            out.extend_from_slice(GAP);
        }
        if self.closed {
            out.extend_from_slice(CLOSED);
        }
        out.push(b'}');
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

    #[test]
    fn joined_is_the_chunks_concatenated_for_every_shape() {
        let epoch = Epoch::from_u64(0xabc);
        let events: Vec<Event> = (1..=3)
            .map(|seq| {
                Event::new(
                    EventId::new(epoch, seq),
                    Message::new(Data::binary(vec![seq as u8; seq as usize * 40])),
                )
            })
            .collect();
        for count in 0..=events.len() {
            for (gap, closed) in [(false, false), (true, false), (false, true), (true, true)] {
                let batch = Batch {
                    events: &events[..count],
                    cursor: EventId::new(epoch, 1000 + count as u64),
                    gap,
                    closed,
                };
                let chunks = batch.encode();
                let joined = batch.encode_joined();
                assert_eq!(joined, chunks.concat(), "{count} {gap} {closed}");
                assert_eq!(joined.len(), batch.encoded_len());
                serde_json::from_slice::<serde_json::Value>(&joined).unwrap();
            }
        }
    }
}
