//! What a client received, decoded from any technique's wire format.

use base64::Engine;
use std::fmt;

/// One thing a client received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Received {
    /// An event.
    Event(ReceivedEvent),
    /// A signal: position, gap, lagged, closed or shutdown.
    Signal(ReceivedSignal),
    /// A heartbeat: never data, never moves a cursor.
    Heartbeat,
}

/// An event as received.
#[derive(Clone, PartialEq, Eq)]
pub struct ReceivedEvent {
    /// The event's id (opaque).
    pub id: String,
    /// The event name; `None` for the default `message`.
    pub name: Option<String>,
    /// The data, byte-exact.
    pub data: Vec<u8>,
    /// Whether the data arrived as binary (base64 in JSON).
    pub binary: bool,
}

impl fmt::Debug for ReceivedEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut data = String::from_utf8_lossy(&self.data).into_owned();
        if data.len() > 64 {
            let mut end = 64;
            while !data.is_char_boundary(end) {
                end -= 1;
            }
            data = format!("{}… ({} bytes)", &data[..end], self.data.len());
        }
        f.debug_struct("Event")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("data", &data)
            .field("binary", &self.binary)
            .finish()
    }
}

/// The kinds of signal the wire contract defines.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SignalKind {
    /// Where delivery starts.
    Position,
    /// Events may have been missed.
    Gap,
    /// The client fell behind and was disconnected.
    Lagged,
    /// The channel's incarnation ended.
    Closed,
    /// The server is shutting down.
    Shutdown,
}

impl SignalKind {
    /// Parses a wire name (`position`, `gap`, …).
    pub fn from_name(name: &str) -> Option<SignalKind> {
        Some(match name {
            "position" => SignalKind::Position,
            "gap" => SignalKind::Gap,
            "lagged" => SignalKind::Lagged,
            "closed" => SignalKind::Closed,
            "shutdown" => SignalKind::Shutdown,
            _ => return None,
        })
    }
}

/// A signal as received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceivedSignal {
    /// Which signal.
    pub kind: SignalKind,
    /// The cursor it carries, when the technique carries one.
    pub cursor: Option<String>,
    /// How long the server asked the client to wait before reconnecting,
    /// in milliseconds: `retry_ms`, which the `shutdown` signal carries.
    pub retry_ms: Option<u64>,
}

/// Why a frame could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeError(pub String);

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DecodeError {}

/// Decodes a JSON envelope or signal object.
///
/// # Errors
///
/// A [`DecodeError`] naming what is wrong when `value` is neither.
pub fn decode_json(value: &serde_json::Value) -> Result<Received, DecodeError> {
    let object = value
        .as_object()
        .ok_or_else(|| DecodeError(format!("expected a JSON object, got {value}")))?;
    if let Some(signal) = object.get("signal") {
        let name = signal.as_str().unwrap_or_default();
        let kind = SignalKind::from_name(name)
            .ok_or_else(|| DecodeError(format!("unknown signal {signal}")))?;
        let cursor = object
            .get("cursor")
            .and_then(|c| c.as_str())
            .map(str::to_owned);
        let retry_ms = retry_ms(object)?;
        return Ok(Received::Signal(ReceivedSignal {
            kind,
            cursor,
            retry_ms,
        }));
    }
    decode_envelope(value).map(Received::Event)
}

/// The `retry_ms` of a signal object: absent, or a whole number of
/// milliseconds.
///
/// # Errors
///
/// A [`DecodeError`] when it is present and anything else.
pub fn retry_ms(
    object: &serde_json::Map<String, serde_json::Value>,
) -> Result<Option<u64>, DecodeError> {
    match object.get("retry_ms") {
        None => Ok(None),
        Some(value) => value.as_u64().map(Some).ok_or_else(|| {
            DecodeError(format!(
                "retry_ms must be a whole number of milliseconds, got {value}"
            ))
        }),
    }
}

/// Decodes a JSON envelope `{"id","event"?,"data","encoding"?}`.
///
/// # Errors
///
/// A [`DecodeError`] when a field is missing or malformed.
pub fn decode_envelope(value: &serde_json::Value) -> Result<ReceivedEvent, DecodeError> {
    let field = |name: &str| value.get(name).and_then(|v| v.as_str());
    let id = field("id").ok_or_else(|| DecodeError(format!("envelope without id: {value}")))?;
    let data =
        field("data").ok_or_else(|| DecodeError(format!("envelope without data: {value}")))?;
    let (data, binary) = match field("encoding") {
        None => (data.as_bytes().to_vec(), false),
        Some("base64") => (
            base64::engine::general_purpose::STANDARD
                .decode(data)
                .map_err(|e| DecodeError(format!("bad base64 in envelope {id}: {e}")))?,
            true,
        ),
        Some(other) => return Err(DecodeError(format!("unknown encoding {other:?}"))),
    };
    Ok(ReceivedEvent {
        id: id.to_owned(),
        name: field("event").map(str::to_owned),
        data,
        binary,
    })
}
