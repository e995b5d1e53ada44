//! Event ids, epochs and cursors.
//!
//! Every event gets an [`EventId`] from its channel. An id is an [`Epoch`],
//! drawn at random whenever a channel incarnation starts, and a sequence
//! number counting from 1 within that incarnation. A *cursor* is the id of the
//! last event a client has seen; `<epoch>-0` is the position before the first
//! event of an incarnation.
//!
//! The string form is the wire contract's: sixteen lowercase hex digits, a
//! dash, and the decimal sequence number without leading zeros.
//!
//! ```
//! use push_core::EventId;
//!
//! let id: EventId = "00000000000000ff-42".parse()?;
//! assert_eq!(id.seq(), 42);
//! assert_eq!(id.to_string(), "00000000000000ff-42");
//! assert!("ff-42".parse::<EventId>().is_err());
//! # Ok::<(), push_core::ParseEventIdError>(())
//! ```

use std::fmt;
use std::str::FromStr;

/// The incarnation of a channel an [`EventId`] belongs to.
///
/// A channel draws a fresh random epoch whenever an incarnation starts (on
/// first use, and again after it is closed), so that a cursor from an earlier
/// incarnation is recognised as such rather than mistaken for a position in
/// the current one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Epoch(u64);

impl Epoch {
    /// An epoch with the given value; useful for tests and for backends that
    /// store their epoch elsewhere.
    pub const fn from_u64(value: u64) -> Self {
        Epoch(value)
    }

    /// Draws a random epoch from the operating system's random source.
    ///
    /// # Panics
    ///
    /// Panics if the operating system cannot provide random bytes, which on
    /// the platforms Rust supports means the system is unusable.
    pub fn random() -> Self {
        Epoch(getrandom::u64().expect("the operating system's random source failed"))
    }

    /// A random epoch different from `previous`, for a channel's next
    /// incarnation.
    pub fn next_after(previous: Epoch) -> Self {
        loop {
            let epoch = Epoch::random();
            if epoch != previous {
                return epoch;
            }
        }
    }

    /// The epoch's numeric value.
    pub const fn as_u64(self) -> u64 {
        self.0
    }
}

impl fmt::Display for Epoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// The id of an event within a channel, and the cursor a client resumes from.
///
/// Ids order events within one incarnation of a channel by their sequence
/// number. Ids of different epochs are not ordered in any meaningful way: use
/// [`EventId::epoch`] to tell them apart before comparing sequence numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct EventId {
    epoch: Epoch,
    seq: u64,
}

impl EventId {
    /// The longest string form an id may have on the wire.
    pub const MAX_LEN: usize = 64;

    /// The id with this epoch and sequence number.
    pub const fn new(epoch: Epoch, seq: u64) -> Self {
        EventId { epoch, seq }
    }

    /// The position before the first event of the incarnation `epoch`.
    pub const fn start(epoch: Epoch) -> Self {
        EventId { epoch, seq: 0 }
    }

    /// The incarnation this id belongs to.
    pub const fn epoch(self) -> Epoch {
        self.epoch
    }

    /// The sequence number within the incarnation; `0` is the position before
    /// the first event.
    pub const fn seq(self) -> u64 {
        self.seq
    }

    /// The id as text, exactly as [`Display`](fmt::Display) writes it, held
    /// on the stack: an encoder copies it into its frame without
    /// allocating a `String` first.
    ///
    /// ```
    /// use push_core::{Epoch, EventId};
    ///
    /// let id = EventId::new(Epoch::from_u64(255), 7);
    /// assert_eq!(id.to_text().as_str(), "00000000000000ff-7");
    /// assert_eq!(id.to_text().as_str(), id.to_string());
    /// ```
    pub fn to_text(self) -> EventIdText {
        let mut bytes = [0u8; EventIdText::CAPACITY];
        // Written by hand, a byte of the epoch at a time: `core::fmt` costs
        // several times as much, on every frame and every poll answer.
        for (pair, byte) in bytes[..16]
            .chunks_exact_mut(2)
            .zip(self.epoch.0.to_be_bytes())
        {
            pair.copy_from_slice(&HEX_PAIRS[usize::from(byte)]);
        }
        bytes[16] = b'-';
        let mut decimal = [0u8; 20];
        let mut start = decimal.len();
        let mut seq = self.seq;
        loop {
            start -= 1;
            decimal[start] = b'0' + (seq % 10) as u8;
            seq /= 10;
            if seq == 0 {
                break;
            }
        }
        let len = 17 + decimal.len() - start;
        bytes[17..len].copy_from_slice(&decimal[start..]);
        EventIdText { bytes, len }
    }

    /// The length of [`to_text`](Self::to_text)'s text, without writing
    /// it.
    ///
    /// ```
    /// use push_core::{Epoch, EventId};
    ///
    /// let id = EventId::new(Epoch::from_u64(255), 1234);
    /// assert_eq!(id.text_len(), id.to_text().as_str().len());
    /// ```
    pub fn text_len(self) -> usize {
        17 + self.seq.checked_ilog10().unwrap_or(0) as usize + 1
    }

    /// Where this cursor stands relative to `head`, the id of the newest event
    /// of the current incarnation (or its start position).
    pub fn relation_to(self, head: EventId) -> CursorRelation {
        if self.epoch != head.epoch {
            CursorRelation::OtherIncarnation
        } else if self.seq > head.seq {
            CursorRelation::BeyondHead
        } else {
            CursorRelation::Within
        }
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.epoch, self.seq)
    }
}

/// The two lowercase hex digits of every byte.
const HEX_PAIRS: [[u8; 2]; 256] = {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut pairs = [[0; 2]; 256];
    let mut byte = 0;
    while byte < 256 {
        pairs[byte] = [HEX[byte >> 4], HEX[byte & 0xf]];
        byte += 1;
    }
    pairs
};

/// An [`EventId`] as text, held inline; see [`EventId::to_text`].
#[derive(Clone, Copy)]
pub struct EventIdText {
    bytes: [u8; EventIdText::CAPACITY],
    len: usize,
}

impl EventIdText {
    /// 16 hex digits, `-`, and the 20 digits of the largest `u64`.
    const CAPACITY: usize = 16 + 1 + 20;

    /// The text.
    pub fn as_str(&self) -> &str {
        // Only ASCII digits, letters and `-` were written.
        std::str::from_utf8(self.as_bytes()).unwrap_or_default()
    }

    /// The text's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

impl fmt::Display for EventIdText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for EventIdText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl FromStr for EventId {
    type Err = ParseEventIdError;

    /// Parses the wire form `<16 lowercase hex digits>-<decimal seq>`.
    ///
    /// # Errors
    ///
    /// Returns an error for anything that [`EventId`]'s `Display` would not
    /// produce: an empty string, more than [`EventId::MAX_LEN`] characters, a
    /// missing dash, an epoch that is not exactly sixteen lowercase hex
    /// digits, or a sequence number with a sign, leading zeros, non-digits or
    /// a value past `u64::MAX`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() {
            return Err(ParseEventIdError::Empty);
        }
        if s.len() > Self::MAX_LEN {
            return Err(ParseEventIdError::TooLong { len: s.len() });
        }
        // A well-formed id has its dash at 16; look there before searching.
        let (epoch, seq) = match s.as_bytes().get(16) {
            Some(b'-') => (&s[..16], &s[17..]),
            _ if s.contains('-') => return Err(ParseEventIdError::BadEpoch),
            _ => return Err(ParseEventIdError::Malformed),
        };
        // One pass each, by hand: cursors are parsed on every poll.
        let epoch = epoch.bytes().try_fold(0u64, |value, digit| {
            let nibble = match digit {
                b'0'..=b'9' => digit - b'0',
                b'a'..=b'f' => digit - b'a' + 10,
                _ => return Err(ParseEventIdError::BadEpoch),
            };
            Ok(value << 4 | u64::from(nibble))
        })?;
        if seq.is_empty() || (seq.len() > 1 && seq.starts_with('0')) {
            return Err(ParseEventIdError::BadSequence);
        }
        let seq = seq.bytes().try_fold(0u64, |value, digit| {
            if !digit.is_ascii_digit() {
                return Err(ParseEventIdError::BadSequence);
            }
            value
                .checked_mul(10)
                .and_then(|value| value.checked_add(u64::from(digit - b'0')))
                .ok_or(ParseEventIdError::BadSequence)
        })?;
        Ok(EventId::new(Epoch(epoch), seq))
    }
}

/// Where a cursor stands relative to a channel's head.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CursorRelation {
    /// Of the current incarnation, at or before the head.
    Within,
    /// Of the current incarnation, past the head: no such event was published.
    BeyondHead,
    /// Of another incarnation of the channel: the client may have missed
    /// events, so delivery starts with a gap.
    OtherIncarnation,
}

/// Why a string is not an [`EventId`].
///
/// The message text is for people and may change; match on the variant.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParseEventIdError {
    /// The string is empty.
    Empty,
    /// The string is longer than [`EventId::MAX_LEN`].
    TooLong {
        /// The length of the string, in bytes.
        len: usize,
    },
    /// There is no `-` between epoch and sequence number.
    Malformed,
    /// The epoch is not exactly sixteen lowercase hex digits.
    BadEpoch,
    /// The sequence number is not a canonical decimal `u64`.
    BadSequence,
}

impl fmt::Display for ParseEventIdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self {
            ParseEventIdError::Empty => "the id is empty".to_owned(),
            ParseEventIdError::TooLong { len } => {
                format!("the id is {len} characters long, past the limit of 64")
            }
            ParseEventIdError::Malformed => "the id has no '-' between epoch and sequence".into(),
            ParseEventIdError::BadEpoch => {
                "the epoch is not sixteen lowercase hex digits".to_owned()
            }
            ParseEventIdError::BadSequence => {
                "the sequence is not a decimal number without leading zeros".to_owned()
            }
        };
        write!(
            f,
            "{what}; send back an id exactly as the server gave it (`<epoch>-<seq>`)"
        )
    }
}

impl std::error::Error for ParseEventIdError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_form_is_the_display_form_up_to_the_longest_id() {
        for id in [
            EventId::start(Epoch::from_u64(0)),
            EventId::new(Epoch::from_u64(1), 42),
            EventId::new(Epoch::from_u64(u64::MAX), u64::MAX),
            EventId::new(Epoch::from_u64(0x0123_4567_89ab_cdef), 10),
            EventId::new(Epoch::from_u64(0xfedc_ba98_7654_3210), 99_999),
        ] {
            assert_eq!(id.to_text().as_str(), id.to_string());
            assert_eq!(id.text_len(), id.to_string().len());
            assert_eq!(id.to_text().as_bytes(), id.to_string().as_bytes());
        }
    }

    #[test]
    fn display_round_trips() {
        let id = EventId::new(Epoch::from_u64(0xdead_beef), 7);
        assert_eq!(id.to_string(), "00000000deadbeef-7");
        assert_eq!(id.to_string().parse::<EventId>(), Ok(id));
        let max = EventId::new(Epoch::from_u64(u64::MAX), u64::MAX);
        assert_eq!(max.to_string().parse::<EventId>(), Ok(max));
        let start = EventId::start(Epoch::from_u64(1));
        assert_eq!(start.to_string(), "0000000000000001-0");
    }

    #[test]
    fn rejects_malformed_ids_with_the_reason() {
        use ParseEventIdError::*;
        let cases: &[(&str, ParseEventIdError)] = &[
            ("", Empty),
            ("0000000000000001", Malformed),
            ("01-1", BadEpoch),
            ("000000000000000G-1", BadEpoch),
            ("000000000000000A-1", BadEpoch),
            ("+000000000000001-1", BadEpoch),
            ("0000000000000001-", BadSequence),
            ("0000000000000001-01", BadSequence),
            ("0000000000000001-+1", BadSequence),
            ("0000000000000001--1", BadSequence),
            ("0000000000000001-1-2", BadSequence),
            ("0000000000000001-18446744073709551616", BadSequence),
            ("0000000000000001- 1", BadSequence),
        ];
        for (input, expected) in cases {
            assert_eq!(
                input.parse::<EventId>().as_ref(),
                Err(expected),
                "{input:?}"
            );
        }
        let long = format!("0000000000000001-{}", "1".repeat(60));
        assert_eq!(long.parse::<EventId>(), Err(TooLong { len: long.len() }));
    }

    #[test]
    fn relation_tells_incarnation_and_head_apart() {
        let epoch = Epoch::from_u64(5);
        let head = EventId::new(epoch, 10);
        assert_eq!(
            EventId::new(epoch, 10).relation_to(head),
            CursorRelation::Within
        );
        assert_eq!(
            EventId::new(epoch, 0).relation_to(head),
            CursorRelation::Within
        );
        assert_eq!(
            EventId::new(epoch, 11).relation_to(head),
            CursorRelation::BeyondHead
        );
        assert_eq!(
            EventId::new(Epoch::from_u64(6), 1).relation_to(head),
            CursorRelation::OtherIncarnation
        );
    }

    #[test]
    fn next_epoch_differs() {
        let first = Epoch::random();
        assert_ne!(Epoch::next_after(first), first);
    }

    #[test]
    fn error_messages_say_what_to_do() {
        let message = "x".parse::<EventId>().unwrap_err().to_string();
        assert!(message.contains("send back an id exactly as the server gave it"));
    }
}
