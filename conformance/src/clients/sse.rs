//! Server-Sent Events: `text/event-stream` decoded per the wire contract.
//!
//! [`parser`] turns bytes into what `EventSource` would see, exactly as the
//! WHATWG standard describes; [`decode_sse`] maps that to [`Received`] items
//! (`push.*` event types are signals, `push.envelope` carries a lossless
//! event, a comment is a heartbeat, an `id:` line alone states a position).
//!
//! ```
//! use std::collections::VecDeque;
//!
//! use conformance::clients::{Decoder, SseDecoder};
//! use conformance::{Received, ReceivedEvent};
//!
//! let mut decoder = SseDecoder::default();
//! let mut out = VecDeque::new();
//! decoder.feed(b"id: e-1\ndata: hello\n\n: ping\n\n", &mut out).unwrap();
//! assert_eq!(
//!     Vec::from(out),
//!     vec![
//!         Received::Event(ReceivedEvent {
//!             id: "e-1".into(),
//!             name: None,
//!             data: b"hello".to_vec(),
//!             binary: false,
//!         }),
//!         Received::Heartbeat,
//!     ]
//! );
//! ```

use std::collections::VecDeque;

use super::Decoder;
use crate::received::{
    decode_envelope, retry_ms, Received, ReceivedEvent, ReceivedSignal, SignalKind,
};
use crate::transport::SessionError;

pub mod parser;

use parser::{Parser, SseItem};

/// Decodes `text/event-stream` per the wire contract.
#[derive(Debug, Default)]
pub struct SseDecoder {
    parser: Parser,
}

impl Decoder for SseDecoder {
    fn feed(&mut self, bytes: &[u8], out: &mut VecDeque<Received>) -> Result<(), SessionError> {
        for item in self.parser.feed(bytes) {
            if let Some(received) = decode_sse(item)? {
                out.push_back(received);
            }
        }
        Ok(())
    }
}

/// Decodes one SSE parser item per the wire contract; `None` for a blank
/// line that states nothing.
///
/// # Errors
///
/// [`SessionError::Malformed`] for an unknown `push.*` event type, signal
/// or envelope data that is not the JSON the wire contract defines, or an
/// envelope whose id differs from the SSE `id`.
pub fn decode_sse(item: SseItem) -> Result<Option<Received>, SessionError> {
    Ok(Some(match item {
        SseItem::Comment(_) => Received::Heartbeat,
        SseItem::Empty {
            last_event_id,
            id_field: true,
        } => Received::Signal(ReceivedSignal {
            kind: SignalKind::Position,
            cursor: Some(last_event_id),
            retry_ms: None,
        }),
        // A blank line after a comment, say: nothing happened.
        SseItem::Empty {
            id_field: false, ..
        } => return Ok(None),
        SseItem::Event {
            last_event_id,
            event_type,
            data,
        } => match event_type.strip_prefix("push.") {
            Some("envelope") => {
                let value: serde_json::Value = serde_json::from_str(&data).map_err(|e| {
                    SessionError::Malformed(format!("push.envelope data is not JSON: {e}"))
                })?;
                let event =
                    decode_envelope(&value).map_err(|e| SessionError::Malformed(e.to_string()))?;
                if event.id != last_event_id {
                    return Err(SessionError::Malformed(format!(
                        "push.envelope id {} differs from the SSE id {last_event_id}",
                        event.id
                    )));
                }
                Received::Event(event)
            }
            Some(signal) => {
                let kind = SignalKind::from_name(signal).ok_or_else(|| {
                    SessionError::Malformed(format!("unknown SSE event type push.{signal}"))
                })?;
                let value: serde_json::Value = serde_json::from_str(&data).map_err(|e| {
                    SessionError::Malformed(format!("push.{signal} data is not JSON: {e}"))
                })?;
                let object = value.as_object().ok_or_else(|| {
                    SessionError::Malformed(format!("push.{signal} data is not a JSON object"))
                })?;
                Received::Signal(ReceivedSignal {
                    kind,
                    cursor: object
                        .get("cursor")
                        .and_then(|c| c.as_str())
                        .map(str::to_owned),
                    retry_ms: retry_ms(object)
                        .map_err(|e| SessionError::Malformed(format!("push.{signal}: {e}")))?,
                })
            }
            None => Received::Event(ReceivedEvent {
                id: last_event_id,
                name: (event_type != "message").then_some(event_type),
                data: data.into_bytes(),
                binary: false,
            }),
        },
    }))
}
