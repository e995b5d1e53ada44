//! Events: what a channel stores and every technique delivers.
//!
//! A publisher hands a channel a [`Message`] (data and an optional event
//! name); the channel gives it an [`EventId`] and stores it as an [`Event`].
//! An `Event` is a reference-counted handle: cloning it for each of ten
//! thousand subscribers copies no bytes, and each technique's encoding of it
//! is computed once and shared (see [`Event::encoded`]).
//!
//! ```
//! use push_core::{Data, Message};
//!
//! let message = Message::new(Data::text("hello")).with_name("greeting")?;
//! assert_eq!(message.name(), Some("greeting"));
//!
//! // `message` is the default event name, stored as no name.
//! let plain = Message::new(Data::binary(vec![0u8, 159, 146, 150])).with_name("message")?;
//! assert_eq!(plain.name(), None);
//!
//! // Names starting with `push.` belong to the protocol.
//! assert!(Message::new(Data::text("x")).with_name("push.gap").is_err());
//! # Ok::<(), push_core::EventNameError>(())
//! ```

use std::any::{Any, TypeId};
use std::fmt;
use std::sync::{Arc, Mutex, OnceLock};

use bytes::Bytes;

use crate::id::EventId;

/// The payload of an event: UTF-8 text or arbitrary bytes.
///
/// Both are [`Bytes`] underneath, so cloning is a reference-count increment.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Data {
    bytes: Bytes,
    is_text: bool,
}

impl Data {
    /// Text data.
    pub fn text(text: impl Into<String>) -> Self {
        Data {
            bytes: Bytes::from(text.into()),
            is_text: true,
        }
    }

    /// Text data from bytes that must be UTF-8.
    ///
    /// # Errors
    ///
    /// Returns the UTF-8 error if `bytes` is not valid UTF-8; publish such a
    /// payload with [`Data::binary`] instead.
    pub fn text_from_utf8(bytes: impl Into<Bytes>) -> Result<Self, std::str::Utf8Error> {
        let bytes = bytes.into();
        std::str::from_utf8(&bytes)?;
        Ok(Data {
            bytes,
            is_text: true,
        })
    }

    /// Binary data, delivered byte-exact (base64 where a wire format needs it).
    pub fn binary(bytes: impl Into<Bytes>) -> Self {
        Data {
            bytes: bytes.into(),
            is_text: false,
        }
    }

    /// Whether this is text (valid UTF-8 by construction).
    pub fn is_text(&self) -> bool {
        self.is_text
    }

    /// The text, or `None` for binary data.
    pub fn as_text(&self) -> Option<&str> {
        if self.is_text {
            // Checked when the `Data` was made; cannot fail.
            std::str::from_utf8(&self.bytes).ok()
        } else {
            None
        }
    }

    /// The raw bytes, text or binary.
    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// The payload's length in bytes.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether the payload is empty.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

impl fmt::Debug for Data {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.as_text() {
            Some(text) => f.debug_tuple("Text").field(&text).finish(),
            None => f.debug_tuple("Binary").field(&self.bytes).finish(),
        }
    }
}

/// A valid event name: 1 to 64 characters, no CR, LF or NUL, not starting
/// with `push.`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct EventName(Arc<str>);

impl EventName {
    /// The longest event name, in characters.
    pub const MAX_CHARS: usize = 64;
    /// The prefix reserved for the protocol's own event names.
    pub const RESERVED_PREFIX: &'static str = "push.";
    /// The name every technique treats as "no name".
    pub const DEFAULT: &'static str = "message";

    /// Checks `name` against the wire contract's rules.
    ///
    /// `"message"` is a valid name; [`Message::with_name`] stores it as no
    /// name.
    ///
    /// # Errors
    ///
    /// [`EventNameError::Empty`] for an empty name, [`EventNameError::TooLong`]
    /// past 64 characters, [`EventNameError::ForbiddenCharacter`] for CR, LF or
    /// NUL, and [`EventNameError::Reserved`] for names starting with `push.`.
    pub fn new(name: &str) -> Result<Self, EventNameError> {
        if name.is_empty() {
            return Err(EventNameError::Empty);
        }
        let chars = name.chars().count();
        if chars > Self::MAX_CHARS {
            return Err(EventNameError::TooLong { chars });
        }
        if let Some(found) = name.chars().find(|c| matches!(c, '\r' | '\n' | '\0')) {
            return Err(EventNameError::ForbiddenCharacter { found });
        }
        if name.starts_with(Self::RESERVED_PREFIX) {
            return Err(EventNameError::Reserved);
        }
        Ok(EventName(Arc::from(name)))
    }

    /// The name as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for EventName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for EventName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a string is not a valid event name.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum EventNameError {
    /// The name is empty; leave the name out to publish a plain message.
    Empty,
    /// The name is longer than 64 characters.
    TooLong {
        /// The name's length in characters.
        chars: usize,
    },
    /// The name contains CR, LF or NUL, which no wire format can carry in a name.
    ForbiddenCharacter {
        /// The offending character.
        found: char,
    },
    /// The name starts with `push.`, which the protocol reserves for its signals.
    Reserved,
}

impl fmt::Display for EventNameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EventNameError::Empty => f.write_str(
                "the event name is empty; leave `event` out to publish a plain message",
            ),
            EventNameError::TooLong { chars } => write!(
                f,
                "the event name is {chars} characters long; use at most 64"
            ),
            EventNameError::ForbiddenCharacter { found } => write!(
                f,
                "the event name contains {found:?}; names cannot contain CR, LF or NUL"
            ),
            EventNameError::Reserved => f.write_str(
                "event names starting with `push.` are reserved for protocol signals; pick another name",
            ),
        }
    }
}

impl std::error::Error for EventNameError {}

/// What a publisher hands to a channel: data and an optional event name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    name: Option<EventName>,
    data: Data,
}

impl Message {
    /// A message with no event name (delivered as the default `message`).
    pub fn new(data: Data) -> Self {
        Message { name: None, data }
    }

    /// Sets the event name; `"message"` is stored as no name.
    ///
    /// # Errors
    ///
    /// Returns an [`EventNameError`] if `name` breaks the rules of
    /// [`EventName::new`].
    pub fn with_name(self, name: &str) -> Result<Self, EventNameError> {
        Ok(self.with_event_name(EventName::new(name)?))
    }

    /// Sets an event name already checked; `message` is stored as no name.
    pub fn with_event_name(mut self, name: EventName) -> Self {
        self.name = (name.as_str() != EventName::DEFAULT).then_some(name);
        self
    }

    /// The event name, if any.
    pub fn name(&self) -> Option<&str> {
        self.name.as_ref().map(EventName::as_str)
    }

    /// The data.
    pub fn data(&self) -> &Data {
        &self.data
    }
}

/// A published event: an id, an optional name and data.
///
/// Cheap to clone: every subscriber of a channel shares the same allocation.
#[derive(Clone)]
pub struct Event {
    inner: Arc<Inner>,
}

struct Inner {
    id: EventId,
    message: Message,
    /// Encodings by technique, each computed once and shared by every
    /// subscriber. The built-in JSON envelope gets its own slot because all
    /// techniques but SSE reuse it.
    envelope: OnceLock<Bytes>,
    encodings: Mutex<Vec<(TypeId, Bytes)>>,
}

impl Event {
    /// An event with this id and message. Channels call this when they store
    /// a published message.
    pub fn new(id: EventId, message: Message) -> Self {
        Event {
            inner: Arc::new(Inner {
                id,
                message,
                envelope: OnceLock::new(),
                encodings: Mutex::new(Vec::new()),
            }),
        }
    }

    /// The event's id.
    pub fn id(&self) -> EventId {
        self.inner.id
    }

    /// The event name, if any (`None` means the default `message`).
    pub fn name(&self) -> Option<&str> {
        self.inner.message.name()
    }

    /// The data.
    pub fn data(&self) -> &Data {
        self.inner.message.data()
    }

    /// The message this event was published with.
    pub fn message(&self) -> &Message {
        &self.inner.message
    }

    /// The JSON envelope of this event followed by a newline, computed once.
    ///
    /// See [`crate::envelope`] for the format.
    pub fn envelope_line(&self) -> &Bytes {
        self.inner
            .envelope
            .get_or_init(|| crate::envelope::encode_event_line(self))
    }

    /// This event encoded by the technique `K`, computed by `encode` the first
    /// time any subscriber asks and shared afterwards.
    ///
    /// `K` is a type that names the encoding, usually the [`Delivery`]
    /// implementation itself; the encoding must depend only on the event and
    /// on `K`, never on per-connection state.
    ///
    /// [`Delivery`]: crate::Delivery
    pub fn encoded<K: Any>(&self, encode: impl FnOnce(&Event) -> Bytes) -> Bytes {
        let key = TypeId::of::<K>();
        let cached = |encodings: &Vec<(TypeId, Bytes)>| {
            encodings
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, bytes)| bytes.clone())
        };
        // A poisoned lock only means another encoder panicked; the cache is
        // still a valid list.
        let lock = || {
            self.inner
                .encodings
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
        };
        if let Some(bytes) = cached(&lock()) {
            return bytes;
        }
        let bytes = encode(self);
        let mut encodings = lock();
        if let Some(bytes) = cached(&encodings) {
            return bytes;
        }
        encodings.push((key, bytes.clone()));
        bytes
    }

    /// Whether two handles share the same stored event.
    pub fn ptr_eq(&self, other: &Event) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

impl PartialEq for Event {
    fn eq(&self, other: &Self) -> bool {
        self.inner.id == other.inner.id && self.inner.message == other.inner.message
    }
}

impl Eq for Event {}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("id", &self.inner.id)
            .field("name", &self.name())
            .field("data", self.data())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::Epoch;

    #[test]
    fn event_name_rules() {
        assert!(EventName::new("a").is_ok());
        assert!(EventName::new(&"é".repeat(64)).is_ok());
        assert_eq!(
            EventName::new(&"é".repeat(65)),
            Err(EventNameError::TooLong { chars: 65 })
        );
        assert_eq!(EventName::new(""), Err(EventNameError::Empty));
        for bad in ["a\rb", "a\nb", "a\0b"] {
            assert!(matches!(
                EventName::new(bad),
                Err(EventNameError::ForbiddenCharacter { .. })
            ));
        }
        assert_eq!(EventName::new("push.x"), Err(EventNameError::Reserved));
        assert!(EventName::new("push").is_ok());
        assert!(EventName::new("Push.x").is_ok());
    }

    #[test]
    fn default_name_is_stored_as_none() {
        let message = Message::new(Data::text("x")).with_name("message").unwrap();
        assert_eq!(message.name(), None);
        let message = Message::new(Data::text("x")).with_name("tick").unwrap();
        assert_eq!(message.name(), Some("tick"));
    }

    #[test]
    fn text_must_be_utf8() {
        assert!(Data::text_from_utf8(vec![0xff]).is_err());
        let data = Data::text_from_utf8(&b"\xe2\x82\xac"[..]).unwrap();
        assert_eq!(data.as_text(), Some("€"));
        assert_eq!(Data::binary(vec![1]).as_text(), None);
    }

    #[test]
    fn clones_share_storage_and_encodings() {
        let event = Event::new(
            EventId::new(Epoch::from_u64(1), 1),
            Message::new(Data::text("x")),
        );
        let clone = event.clone();
        assert!(event.ptr_eq(&clone));
        struct Upper;
        let mut calls = 0;
        let first = event.encoded::<Upper>(|e| {
            calls += 1;
            Bytes::copy_from_slice(e.data().bytes())
        });
        let second = clone.encoded::<Upper>(|_| unreachable!("computed once"));
        assert_eq!(calls, 1);
        assert_eq!(first.as_ptr(), second.as_ptr());
    }
}
