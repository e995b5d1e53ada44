//! HTTP streaming as newline-delimited JSON, decoded per the wire contract:
//! one envelope or signal object per line, an empty line as heartbeat.
//!
//! ```
//! use conformance::clients::decode_ndjson_line;
//! use conformance::{Received, ReceivedSignal, SignalKind};
//!
//! assert_eq!(decode_ndjson_line(b"").unwrap(), Received::Heartbeat);
//! assert_eq!(
//!     decode_ndjson_line(br#"{"signal":"gap","cursor":"e-3"}"#).unwrap(),
//!     Received::Signal(ReceivedSignal {
//!         kind: SignalKind::Gap,
//!         cursor: Some("e-3".into()),
//!         retry_ms: None,
//!     })
//! );
//! ```

use std::collections::VecDeque;

use super::Decoder;
use crate::received::{decode_json, Received};
use crate::transport::SessionError;

/// Decodes NDJSON per the wire contract: one object per line, an empty
/// line as heartbeat.
#[derive(Debug, Default)]
pub struct NdjsonDecoder {
    buffer: Vec<u8>,
}

impl Decoder for NdjsonDecoder {
    fn feed(&mut self, bytes: &[u8], out: &mut VecDeque<Received>) -> Result<(), SessionError> {
        self.buffer.extend_from_slice(bytes);
        while let Some(end) = self.buffer.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.buffer.drain(..=end).collect();
            out.push_back(decode_ndjson_line(&line[..line.len() - 1])?);
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<(), SessionError> {
        if self.buffer.is_empty() {
            Ok(())
        } else {
            Err(SessionError::Malformed(
                "the stream ended inside a line".into(),
            ))
        }
    }
}

/// Decodes one NDJSON line (without its `\n`) per the wire contract.
///
/// # Errors
///
/// [`SessionError::Malformed`] when the line is neither empty nor a JSON
/// envelope or signal object.
pub fn decode_ndjson_line(line: &[u8]) -> Result<Received, SessionError> {
    if line.is_empty() {
        return Ok(Received::Heartbeat);
    }
    let value: serde_json::Value = serde_json::from_slice(line).map_err(|e| {
        SessionError::Malformed(format!(
            "line is not JSON ({e}): {}",
            String::from_utf8_lossy(line)
        ))
    })?;
    decode_json(&value).map_err(|e| SessionError::Malformed(e.to_string()))
}
