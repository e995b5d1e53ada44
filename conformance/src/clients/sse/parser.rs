//! A spec-complete `text/event-stream` parser, as the WHATWG HTML standard
//! describes it (section "Parsing an event stream").
//!
//! It handles a leading BOM, CR, LF and CRLF line ends (also split across
//! chunks), comments, `id` values containing NUL (ignored), `retry` values
//! that are not all digits or too large for a `u64` (ignored), and keeps
//! the last event id across events, as `EventSource` does.
//!
//! ```
//! use conformance::clients::sse::parser::{Parser, SseItem};
//!
//! let mut parser = Parser::new();
//! let items = parser.feed(b"\xEF\xBB\xBFid: 7\r\ndata: a\rdata: b\n\n: ping\n\n");
//! assert_eq!(
//!     items,
//!     vec![
//!         SseItem::Event { last_event_id: "7".into(), event_type: "message".into(), data: "a\nb".into() },
//!         SseItem::Comment(" ping".into()),
//!         SseItem::Empty { last_event_id: "7".into(), id_field: false },
//!     ]
//! );
//! ```

/// What the parser reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SseItem {
    /// A dispatched event, as `EventSource` would fire it.
    Event {
        /// The last event id at dispatch (kept across events).
        last_event_id: String,
        /// The event type, `message` when none was given.
        event_type: String,
        /// The data, lines joined by LF.
        data: String,
    },
    /// A blank line that dispatched nothing (no data).
    Empty {
        /// The last event id after the blank line.
        last_event_id: String,
        /// Whether an `id` field came since the previous blank line: an
        /// `id:` line alone states a position.
        id_field: bool,
    },
    /// A comment line, without its leading colon.
    Comment(String),
}

/// An incremental event-stream parser.
#[derive(Debug, Default)]
pub struct Parser {
    line: Vec<u8>,
    after_cr: bool,
    started: bool,
    data: String,
    event_type: String,
    last_event_id_buffer: String,
    last_event_id: String,
    id_field: bool,
    retry: Option<u64>,
}

impl Parser {
    /// A parser at the start of a stream.
    pub fn new() -> Self {
        Parser::default()
    }

    /// The reconnection time a `retry:` field set, in milliseconds.
    pub fn retry(&self) -> Option<u64> {
        self.retry
    }

    /// The last event id, as `EventSource.lastEventId` would show it.
    pub fn last_event_id(&self) -> &str {
        &self.last_event_id
    }

    /// Feeds bytes; returns what they completed.
    pub fn feed(&mut self, mut bytes: &[u8]) -> Vec<SseItem> {
        let mut out = Vec::new();
        if !self.started {
            // The BOM may arrive split; wait for three bytes or a mismatch.
            let bom = b"\xEF\xBB\xBF";
            let have = self.line.len();
            let take = (3 - have).min(bytes.len());
            self.line.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if self.line.len() < 3 && bom.starts_with(&self.line) {
                return out;
            }
            self.started = true;
            let pending = std::mem::take(&mut self.line);
            let pending = pending.strip_prefix(bom).unwrap_or(&pending).to_vec();
            self.feed_bytes(&pending, &mut out);
        }
        self.feed_bytes(bytes, &mut out);
        out
    }

    fn feed_bytes(&mut self, bytes: &[u8], out: &mut Vec<SseItem>) {
        for &byte in bytes {
            match byte {
                b'\n' if self.after_cr => self.after_cr = false,
                b'\n' | b'\r' => {
                    self.after_cr = byte == b'\r';
                    let line = std::mem::take(&mut self.line);
                    self.process_line(&String::from_utf8_lossy(&line), out);
                }
                _ => {
                    self.after_cr = false;
                    self.line.push(byte);
                }
            }
        }
    }

    fn process_line(&mut self, line: &str, out: &mut Vec<SseItem>) {
        if line.is_empty() {
            self.dispatch(out);
            return;
        }
        if let Some(comment) = line.strip_prefix(':') {
            out.push(SseItem::Comment(comment.to_owned()));
            return;
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        match field {
            "event" => self.event_type = value.to_owned(),
            "data" => {
                self.data.push_str(value);
                self.data.push('\n');
            }
            "id" if !value.contains('\0') => {
                self.last_event_id_buffer = value.to_owned();
                self.id_field = true;
            }
            "retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                // Digits past `u64::MAX` are a value no client can use: the
                // field is ignored, as a non-digit one is, and the time set
                // before stands.
                if let Ok(ms) = value.parse() {
                    self.retry = Some(ms);
                }
            }
            _ => {}
        }
    }

    fn dispatch(&mut self, out: &mut Vec<SseItem>) {
        self.last_event_id = self.last_event_id_buffer.clone();
        let id_field = std::mem::take(&mut self.id_field);
        if self.data.is_empty() {
            self.event_type.clear();
            out.push(SseItem::Empty {
                last_event_id: self.last_event_id.clone(),
                id_field,
            });
            return;
        }
        let mut data = std::mem::take(&mut self.data);
        if data.ends_with('\n') {
            data.pop();
        }
        let event_type = match std::mem::take(&mut self.event_type) {
            name if name.is_empty() => "message".to_owned(),
            name => name,
        };
        out.push(SseItem::Event {
            last_event_id: self.last_event_id.clone(),
            event_type,
            data,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(input: &[u8]) -> Vec<SseItem> {
        Parser::new().feed(input)
    }

    fn event(id: &str, kind: &str, data: &str) -> SseItem {
        SseItem::Event {
            last_event_id: id.into(),
            event_type: kind.into(),
            data: data.into(),
        }
    }

    #[test]
    fn line_ends_of_every_kind_also_split_across_chunks() {
        let input = b"data: a\r\ndata: b\rdata: c\n\r\n";
        let whole = events(input);
        assert_eq!(whole, vec![event("", "message", "a\nb\nc")]);
        for split in 0..input.len() {
            let mut parser = Parser::new();
            let mut items = parser.feed(&input[..split]);
            items.extend(parser.feed(&input[split..]));
            assert_eq!(items, whole, "split at {split}");
        }
    }

    #[test]
    fn bom_is_stripped_once_even_when_split() {
        let mut parser = Parser::new();
        let mut items = parser.feed(b"\xEF");
        items.extend(parser.feed(b"\xBB\xBFdata: x\n\n"));
        assert_eq!(items, vec![event("", "message", "x")]);
        // A second BOM is not stripped: the field name is then unknown.
        assert_eq!(
            events(b"\xEF\xBB\xBF\xEF\xBB\xBFdata: x\n\n"),
            vec![SseItem::Empty {
                last_event_id: String::new(),
                id_field: false,
            }]
        );
    }

    #[test]
    fn id_with_nul_is_ignored_and_id_persists() {
        let items = events(b"id: 1\ndata: a\n\nid: 2\0x\ndata: b\n\ndata: c\n\n");
        assert_eq!(
            items,
            vec![
                event("1", "message", "a"),
                event("1", "message", "b"),
                event("1", "message", "c")
            ]
        );
    }

    #[test]
    fn retry_digits_only() {
        let mut parser = Parser::new();
        parser.feed(b"retry: 12x\n\n");
        assert_eq!(parser.retry(), None);
        parser.feed(b"retry: 1500\n\n");
        assert_eq!(parser.retry(), Some(1500));
    }

    /// Found by the `sse_parser` fuzz target (its seed
    /// `fuzz/seeds/sse_parser/regression-retry-overflow`): a `retry` of
    /// digits past `u64::MAX` cleared the reconnection time set before.
    #[test]
    fn retry_past_u64_is_ignored_and_the_previous_time_stands() {
        let mut parser = Parser::new();
        parser.feed(b"retry: 5\nretry: 99999999999999999999999\n\n");
        assert_eq!(parser.retry(), Some(5));
        parser.feed(b"retry: 18446744073709551615\n");
        assert_eq!(parser.retry(), Some(u64::MAX));
        parser.feed(b"retry: 18446744073709551616\n");
        assert_eq!(parser.retry(), Some(u64::MAX));
    }

    #[test]
    fn fields_without_colon_and_one_space_stripped() {
        assert_eq!(events(b"data\n\n"), vec![event("", "message", "")]);
        assert_eq!(events(b"data\ndata\n\n"), vec![event("", "message", "\n")]);
        assert_eq!(
            events(b"data:  two\n\n"),
            vec![event("", "message", " two")]
        );
        assert_eq!(events(b"event: x\ndata:y\n\n"), vec![event("", "x", "y")]);
    }

    #[test]
    fn id_alone_sets_last_event_id_without_an_event() {
        let mut parser = Parser::new();
        let items = parser.feed(b"id: 5\n\n");
        assert_eq!(
            items,
            vec![SseItem::Empty {
                last_event_id: "5".into(),
                id_field: true,
            }]
        );
        assert_eq!(parser.last_event_id(), "5");
        assert_eq!(
            parser.feed(b":\n\n"),
            vec![
                SseItem::Comment(String::new()),
                SseItem::Empty {
                    last_event_id: "5".into(),
                    id_field: false,
                }
            ]
        );
    }
}
