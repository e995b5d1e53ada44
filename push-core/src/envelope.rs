//! The JSON envelope and signal objects of the wire contract.
//!
//! An event: `{"id":"<id>","event":"<name>","data":"<text>"}`, `event` left
//! out when the event has no name; binary data is base64 (standard alphabet,
//! padded) with `"encoding":"base64"`. A signal:
//! `{"signal":"<name>","cursor":"<id>"}`.
//!
//! ```
//! use push_core::{envelope, Data, Epoch, Event, EventId, Message};
//!
//! let id = EventId::new(Epoch::from_u64(1), 2);
//! let event = Event::new(id, Message::new(Data::binary(vec![0u8, 255])).with_name("blob")?);
//! assert_eq!(
//!     envelope::encode_event(&event),
//!     r#"{"id":"0000000000000001-2","event":"blob","data":"AP8=","encoding":"base64"}"#
//! );
//! # Ok::<(), push_core::EventNameError>(())
//! ```

use std::time::Duration;

use base64::Engine;
use bytes::Bytes;

use crate::event::Event;
use crate::id::EventId;
use crate::signal::Signal;

/// The envelope of `event`, as a string.
pub fn encode_event(event: &Event) -> String {
    let line = event.envelope_line();
    String::from_utf8_lossy(&line[..line.len() - 1]).into_owned()
}

/// The envelope of `event` followed by `\n`; [`Event::envelope_line`] caches it.
pub(crate) fn encode_event_line(event: &Event) -> Bytes {
    let data = event.data();
    let mut out = Vec::with_capacity(data.len() + data.len() / 3 + 64);
    out.extend_from_slice(b"{\"id\":\"");
    out.extend_from_slice(event.id().to_text().as_bytes());
    out.push(b'"');
    if let Some(name) = event.name() {
        out.extend_from_slice(b",\"event\":");
        write_json_string(&mut out, name);
    }
    out.extend_from_slice(b",\"data\":");
    match data.as_text() {
        Some(text) => {
            write_json_string(&mut out, text);
            out.push(b'}');
        }
        None => {
            out.push(b'"');
            let start = out.len();
            let encoded_len = base64::encoded_len(data.len(), true).unwrap_or(0);
            out.resize(start + encoded_len, 0);
            let written = base64::engine::general_purpose::STANDARD
                .encode_slice(data.bytes(), &mut out[start..])
                .unwrap_or(0);
            out.truncate(start + written);
            out.extend_from_slice(b"\",\"encoding\":\"base64\"}");
        }
    }
    out.push(b'\n');
    Bytes::from(out)
}

/// The JSON object of `signal`: `{"signal":"<name>","cursor":"<id>"}`.
pub fn encode_signal(signal: &Signal) -> String {
    format!(
        "{{\"signal\":\"{}\",\"cursor\":\"{}\"}}",
        signal.name(),
        signal.cursor()
    )
}

/// The JSON object of the `shutdown` signal at `cursor` with its reconnect
/// delay: `{"signal":"shutdown","cursor":"<id>","retry_ms":<ms>}`.
pub fn encode_shutdown(cursor: EventId, retry: Duration) -> String {
    format!(
        "{{\"signal\":\"shutdown\",\"cursor\":\"{cursor}\",\"retry_ms\":{}}}",
        retry.as_millis()
    )
}

/// Appends `text` as a JSON string literal.
pub(crate) fn write_json_string(out: &mut Vec<u8>, text: &str) {
    // Writing a &str into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, text);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Data, Message};
    use crate::id::Epoch;

    fn event(message: Message) -> Event {
        Event::new(EventId::new(Epoch::from_u64(0xab), 3), message)
    }

    #[test]
    fn text_envelope_escapes_and_round_trips() {
        let text = "a\r\nb\0\u{1}\"\\é😀";
        let encoded = encode_event(&event(Message::new(Data::text(text))));
        let value: serde_json::Value = serde_json::from_str(&encoded).unwrap();
        assert_eq!(value["id"], "00000000000000ab-3");
        assert_eq!(value["data"], text);
        assert!(value.get("event").is_none());
        assert!(value.get("encoding").is_none());
        assert!(!encoded.contains('\n') && !encoded.contains('\r'));
    }

    #[test]
    fn binary_envelope_is_base64() {
        let bytes: Vec<u8> = (0..=255).collect();
        let encoded = encode_event(&event(Message::new(Data::binary(bytes.clone()))));
        let value: serde_json::Value = serde_json::from_str(&encoded).unwrap();
        assert_eq!(value["encoding"], "base64");
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(value["data"].as_str().unwrap())
            .unwrap();
        assert_eq!(decoded, bytes);
    }

    #[test]
    fn empty_data_and_names() {
        let message = Message::new(Data::text("")).with_name("x y").unwrap();
        assert_eq!(
            encode_event(&event(message)),
            r#"{"id":"00000000000000ab-3","event":"x y","data":""}"#
        );
        let binary = encode_event(&event(Message::new(Data::binary(Vec::new()))));
        assert_eq!(
            binary,
            r#"{"id":"00000000000000ab-3","data":"","encoding":"base64"}"#
        );
    }

    #[test]
    fn signals() {
        let id = EventId::new(Epoch::from_u64(1), 0);
        assert_eq!(
            encode_signal(&Signal::Gap(id)),
            r#"{"signal":"gap","cursor":"0000000000000001-0"}"#
        );
        assert_eq!(
            encode_shutdown(id, Duration::from_millis(4210)),
            r#"{"signal":"shutdown","cursor":"0000000000000001-0","retry_ms":4210}"#
        );
    }
}
