//! The conformance crate's incremental `text/event-stream` parser on
//! arbitrary bytes, against a whole-stream reference written from the WHATWG
//! "Parsing an event stream" steps (decode the stream as UTF-8, strip one
//! BOM, split at CRLF, CR or LF, process each complete line): same items,
//! same last event id and reconnection time, however the stream is cut into
//! pieces. The wire decoder on top of it never panics.
#![no_main]

use conformance::clients::decode_sse;
use conformance::clients::sse::parser::{Parser, SseItem};
use libfuzzer_sys::fuzz_target;
use push_fuzz::pieces;

#[derive(Default)]
struct Reference {
    items: Vec<SseItem>,
    data: String,
    event_type: String,
    last_event_id_buffer: String,
    last_event_id: String,
    id_field: bool,
    retry: Option<u64>,
}

impl Reference {
    fn run(stream: &[u8]) -> Self {
        let text = String::from_utf8_lossy(stream);
        let mut rest = text.strip_prefix('\u{FEFF}').unwrap_or(&text);
        let mut state = Reference::default();
        while let Some(end) = rest.find(['\r', '\n']) {
            let line = &rest[..end];
            let skip = if rest[end..].starts_with("\r\n") {
                2
            } else {
                1
            };
            rest = &rest[end + skip..];
            state.line(line);
        }
        state
    }

    fn line(&mut self, line: &str) {
        if line.is_empty() {
            self.last_event_id = self.last_event_id_buffer.clone();
            let id_field = std::mem::take(&mut self.id_field);
            if self.data.is_empty() {
                self.event_type.clear();
                self.items.push(SseItem::Empty {
                    last_event_id: self.last_event_id.clone(),
                    id_field,
                });
                return;
            }
            let mut data = std::mem::take(&mut self.data);
            data.pop();
            let event_type = std::mem::take(&mut self.event_type);
            self.items.push(SseItem::Event {
                last_event_id: self.last_event_id.clone(),
                event_type: if event_type.is_empty() {
                    "message".into()
                } else {
                    event_type
                },
                data,
            });
            return;
        }
        if let Some(comment) = line.strip_prefix(':') {
            self.items.push(SseItem::Comment(comment.into()));
            return;
        }
        let (field, value) = match line.find(':') {
            Some(at) => {
                let value = &line[at + 1..];
                (&line[..at], value.strip_prefix(' ').unwrap_or(value))
            }
            None => (line, ""),
        };
        match field {
            "event" => self.event_type = value.into(),
            "data" => {
                self.data += value;
                self.data.push('\n');
            }
            "id" => {
                if !value.contains('\0') {
                    self.last_event_id_buffer = value.into();
                    self.id_field = true;
                }
            }
            "retry" => {
                // Digits only; a value past any integer the client can hold
                // is ignored like any other it cannot use.
                if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
                    if let Ok(ms) = value.parse() {
                        self.retry = Some(ms);
                    }
                }
            }
            _ => {}
        }
    }
}

fuzz_target!(|input: (&[u8], Vec<u16>)| {
    let (stream, cuts) = input;
    let reference = Reference::run(stream);

    let mut whole = Parser::new();
    let items = whole.feed(stream);
    assert_eq!(
        items, reference.items,
        "the items differ from the reference"
    );
    assert_eq!(
        whole.retry(),
        reference.retry,
        "the reconnection time differs"
    );
    assert_eq!(whole.last_event_id(), reference.last_event_id);

    let mut cut = Parser::new();
    let mut cut_items = Vec::new();
    for piece in pieces(stream, &cuts) {
        cut_items.extend(cut.feed(piece));
    }
    assert_eq!(
        cut_items, items,
        "the items depend on where the stream was cut"
    );
    assert_eq!(cut.retry(), whole.retry());
    assert_eq!(cut.last_event_id(), whole.last_event_id());

    for item in items {
        let _ = decode_sse(item);
    }
});
