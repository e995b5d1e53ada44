use std::time::Duration;

use bytes::Bytes;

use super::Delivery;
use crate::event::Event;
use crate::id::EventId;
use crate::signal::Signal;

/// Server-Sent Events (`text/event-stream`).
///
/// - An event whose data is text without CR goes raw: `id:`, `event:` when it
///   has a name, one `data:` line per line of the text, so a browser's
///   `EventSource` shows `e.data` unchanged.
/// - An event SSE cannot carry raw (binary data, or text containing CR) goes
///   as `event: push.envelope` with the JSON envelope as its data.
/// - The position is an `id:` line alone (preceded by `retry:` when set);
///   other signals are `event: push.<signal>` with `data: {"cursor":"<id>"}`,
///   and carry `id: <cursor>` too so a reconnecting browser resumes from there.
/// - The heartbeat is a comment line.
///
/// ```
/// use push_core::delivery::{Delivery, Sse};
/// use push_core::{Data, Epoch, Event, EventId, Message, Signal};
/// use std::time::Duration;
///
/// let id = EventId::new(Epoch::from_u64(1), 7);
/// let sse = Sse::new().retry(Duration::from_secs(2));
/// assert_eq!(sse.signal(&Signal::Position(id)), "retry: 2000\nid: 0000000000000001-7\n\n");
/// let event = Event::new(id, Message::new(Data::text("a\r\nb")));
/// assert!(sse.event(&event).starts_with(b"id: 0000000000000001-7\nevent: push.envelope\ndata: {"));
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct Sse {
    retry: Option<Duration>,
}

impl Sse {
    /// SSE framing with no `retry:` field.
    pub fn new() -> Self {
        Sse { retry: None }
    }

    /// Sends `retry: <ms>` with the position, telling browsers how long to
    /// wait before reconnecting.
    pub fn retry(mut self, delay: Duration) -> Self {
        self.retry = Some(delay);
        self
    }

    fn encode_event(event: &Event) -> Bytes {
        // The id is formatted on the stack and the block sized exactly, so
        // that the one allocation is the block's own: `Bytes` takes a `Vec`
        // as it is only when it is full.
        let id = event.id().to_text();
        let id = id.as_bytes();
        let data = event.data();
        let out = match data.as_text().filter(|text| !text.contains('\r')) {
            Some(text) => {
                let name = event.name();
                let lines = text.bytes().filter(|byte| *byte == b'\n').count() + 1;
                let size = 4 + id.len() + 1
                    + name.map_or(0, |name| 8 + name.len())
                    // Each line gains `data: ` and keeps its `\n` (the last gains one).
                    + text.len() + 6 * lines + 1
                    + 1;
                let mut out = Vec::with_capacity(size);
                out.extend_from_slice(b"id: ");
                out.extend_from_slice(id);
                out.push(b'\n');
                if let Some(name) = name {
                    out.extend_from_slice(b"event: ");
                    out.extend_from_slice(name.as_bytes());
                    out.push(b'\n');
                }
                for line in text.split('\n') {
                    out.extend_from_slice(b"data: ");
                    out.extend_from_slice(line.as_bytes());
                    out.push(b'\n');
                }
                out.push(b'\n');
                debug_assert_eq!(out.len(), size);
                out
            }
            None => {
                const HEAD: &[u8] = b"event: push.envelope\ndata: ";
                let line = event.envelope_line();
                let mut out = Vec::with_capacity(4 + id.len() + 1 + HEAD.len() + line.len() + 1);
                out.extend_from_slice(b"id: ");
                out.extend_from_slice(id);
                out.push(b'\n');
                out.extend_from_slice(HEAD);
                out.extend_from_slice(line);
                out.push(b'\n');
                out
            }
        };
        Bytes::from(out)
    }
}

impl Delivery for Sse {
    type Frame = Bytes;

    fn content_type(&self) -> &'static str {
        "text/event-stream"
    }

    fn event(&self, event: &Event) -> Bytes {
        event.encoded::<Sse>(Sse::encode_event)
    }

    fn signal(&self, signal: &Signal) -> Bytes {
        let cursor = signal.cursor();
        let frame = match signal {
            Signal::Position(_) => match self.retry {
                Some(retry) => format!("retry: {}\nid: {cursor}\n\n", retry.as_millis()),
                None => format!("id: {cursor}\n\n"),
            },
            _ => format!(
                "id: {cursor}\nevent: push.{}\ndata: {{\"cursor\":\"{cursor}\"}}\n\n",
                signal.name()
            ),
        };
        Bytes::from(frame)
    }

    /// `retry:` with the delay first, so that a browser's `EventSource`
    /// waits it before reconnecting on its own.
    fn shutdown(&self, cursor: EventId, retry: Duration) -> Bytes {
        let retry_ms = retry.as_millis();
        Bytes::from(format!(
            "retry: {retry_ms}\nid: {cursor}\nevent: push.shutdown\ndata: {{\"cursor\":\"{cursor}\",\"retry_ms\":{retry_ms}}}\n\n"
        ))
    }

    fn heartbeat(&self) -> Option<Bytes> {
        Some(Bytes::from_static(b":\n\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Data, Message};
    use crate::id::Epoch;

    fn frame(message: Message) -> String {
        let event = Event::new(EventId::new(Epoch::from_u64(1), 1), message);
        String::from_utf8(Sse::new().event(&event).to_vec()).unwrap()
    }

    #[test]
    fn text_without_cr_goes_raw_line_by_line() {
        assert_eq!(
            frame(Message::new(Data::text("a\n\nb\n"))),
            "id: 0000000000000001-1\ndata: a\ndata: \ndata: b\ndata: \n\n"
        );
        assert_eq!(
            frame(Message::new(Data::text(""))),
            "id: 0000000000000001-1\ndata: \n\n"
        );
        assert_eq!(
            frame(Message::new(Data::text(" lead")).with_name(" n").unwrap()),
            "id: 0000000000000001-1\nevent:  n\ndata:  lead\n\n"
        );
    }

    #[test]
    fn cr_and_binary_use_the_envelope_form() {
        for message in [
            Message::new(Data::text("a\rb")),
            Message::new(Data::binary(vec![0u8, 1])),
        ] {
            let text = frame(message);
            let data = text
                .strip_prefix("id: 0000000000000001-1\nevent: push.envelope\ndata: ")
                .unwrap();
            let json = data.strip_suffix("\n\n").unwrap();
            assert!(!json.contains('\n') && !json.contains('\r'));
            serde_json::from_str::<serde_json::Value>(json).unwrap();
        }
    }

    #[test]
    fn signals_carry_the_cursor_as_id() {
        let cursor = EventId::new(Epoch::from_u64(2), 5);
        assert_eq!(
            Sse::new().signal(&Signal::Gap(cursor)),
            "id: 0000000000000002-5\nevent: push.gap\ndata: {\"cursor\":\"0000000000000002-5\"}\n\n"
        );
        assert_eq!(
            Sse::new().signal(&Signal::Position(cursor)),
            "id: 0000000000000002-5\n\n"
        );
        assert_eq!(
            Sse::new().shutdown(cursor, Duration::from_millis(4210)),
            "retry: 4210\nid: 0000000000000002-5\nevent: push.shutdown\ndata: {\"cursor\":\"0000000000000002-5\",\"retry_ms\":4210}\n\n"
        );
    }

    #[test]
    fn encoded_once_per_event() {
        let event = Event::new(
            EventId::new(Epoch::from_u64(1), 1),
            Message::new(Data::text("x")),
        );
        assert_eq!(
            Sse::new().event(&event).as_ptr(),
            Sse::new()
                .retry(Duration::from_secs(1))
                .event(&event)
                .as_ptr()
        );
    }
}
