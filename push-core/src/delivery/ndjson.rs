use std::time::Duration;

use bytes::Bytes;

use super::Delivery;
use crate::envelope::{encode_shutdown, encode_signal};
use crate::event::Event;
use crate::id::EventId;
use crate::signal::Signal;

/// HTTP streaming as newline-delimited JSON: one envelope or signal object
/// per line, an empty line as heartbeat.
///
/// ```
/// use push_core::delivery::{Delivery, Ndjson};
/// assert_eq!(Ndjson.content_type(), "application/x-ndjson");
/// assert_eq!(Ndjson.heartbeat().unwrap(), "\n");
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct Ndjson;

impl Delivery for Ndjson {
    type Frame = Bytes;

    fn content_type(&self) -> &'static str {
        "application/x-ndjson"
    }

    fn event(&self, event: &Event) -> Bytes {
        event.envelope_line().clone()
    }

    fn signal(&self, signal: &Signal) -> Bytes {
        let mut line = encode_signal(signal);
        line.push('\n');
        Bytes::from(line)
    }

    fn shutdown(&self, cursor: EventId, retry: Duration) -> Bytes {
        let mut line = encode_shutdown(cursor, retry);
        line.push('\n');
        Bytes::from(line)
    }

    fn heartbeat(&self) -> Option<Bytes> {
        Some(Bytes::from_static(b"\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Data, Message};
    use crate::id::Epoch;

    #[test]
    fn event_lines_are_shared_not_copied() {
        let event = Event::new(
            EventId::new(Epoch::from_u64(1), 1),
            Message::new(Data::text("x\ny")),
        );
        let a = Ndjson.event(&event);
        let b = Ndjson.event(&event.clone());
        assert_eq!(a.as_ptr(), b.as_ptr());
        assert_eq!(a, "{\"id\":\"0000000000000001-1\",\"data\":\"x\\ny\"}\n");
        assert_eq!(a.iter().filter(|&&b| b == b'\n').count(), 1);
    }

    #[test]
    fn the_shutdown_line_says_when_to_come_back() {
        let cursor = EventId::new(Epoch::from_u64(1), 7);
        assert_eq!(
            Ndjson.shutdown(cursor, Duration::from_millis(1500)),
            "{\"signal\":\"shutdown\",\"cursor\":\"0000000000000001-7\",\"retry_ms\":1500}\n"
        );
    }
}
