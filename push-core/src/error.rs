//! The one error type of channel and hub operations.

use std::fmt;

use crate::event::EventNameError;
use crate::id::EventId;
use crate::start::StartError;

/// Why a channel or hub operation failed.
///
/// Every variant says what the caller can do about it. The message text is
/// for people and may change between versions; match on the variant, or use
/// [`crate::wire::WireError`] for the wire contract's status and code.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A channel name breaks the naming rules.
    BadChannelName(ChannelNameError),
    /// An event name breaks the naming rules.
    BadEventName(EventNameError),
    /// The requested start position is malformed.
    BadStart(StartError),
    /// The cursor is of the current incarnation but past its head: no such
    /// event was ever published.
    CursorAhead {
        /// The cursor the client sent.
        cursor: EventId,
        /// The channel's newest id.
        head: EventId,
    },
    /// The event is larger than the channel accepts.
    TooLarge {
        /// The event's size in bytes.
        len: usize,
        /// The largest size accepted.
        max: usize,
    },
    /// The hub is at its cap on channels and none could be evicted.
    TooManyChannels {
        /// The cap.
        max: usize,
    },
    /// The channel was closed; a closed [`MemoryChannel`](crate::MemoryChannel)
    /// accepts no more events. Through a [`Hub`](crate::Hub) the next use of
    /// the name starts a new incarnation instead.
    Closed,
    /// A [follower](crate::MemoryChannel::following) was given an event
    /// that is not its head's successor: it missed events, and should be
    /// replaced by one that starts where its store stands.
    OutOfSequence {
        /// The id the follower expected next.
        expected: EventId,
        /// The id it was given.
        got: EventId,
    },
    /// A backend (a remote store, say) failed; the operation may succeed if
    /// retried later.
    Backend(Box<dyn std::error::Error + Send + Sync>),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::BadChannelName(error) => error.fmt(f),
            Error::BadEventName(error) => error.fmt(f),
            Error::BadStart(error) => error.fmt(f),
            Error::CursorAhead { cursor, head } => write!(
                f,
                "cursor {cursor} is past the channel's newest event {head}; send back an id the server gave you"
            ),
            Error::TooLarge { len, max } => write!(
                f,
                "the event is {len} bytes, past the limit of {max} bytes; split it or send a reference to it"
            ),
            Error::TooManyChannels { max } => write!(
                f,
                "the server already holds its maximum of {max} channels; retry later or reuse an existing channel"
            ),
            Error::Closed => f.write_str("the channel is closed; open a new one"),
            Error::OutOfSequence { expected, got } => write!(
                f,
                "event {got} arrived where {expected} was due: events were missed; follow the store again from its current head"
            ),
            Error::Backend(error) => write!(f, "the channel's backend failed: {error}; retry later"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::BadChannelName(error) => Some(error),
            Error::BadEventName(error) => Some(error),
            Error::BadStart(error) => Some(error),
            Error::Backend(error) => Some(&**error),
            _ => None,
        }
    }
}

impl From<EventNameError> for Error {
    fn from(error: EventNameError) -> Self {
        Error::BadEventName(error)
    }
}

impl From<StartError> for Error {
    fn from(error: StartError) -> Self {
        Error::BadStart(error)
    }
}

impl From<ChannelNameError> for Error {
    fn from(error: ChannelNameError) -> Self {
        Error::BadChannelName(error)
    }
}

/// Why a string is not a valid channel name.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChannelNameError {
    /// The name is empty.
    Empty,
    /// The name is longer than 128 characters.
    TooLong {
        /// Its length.
        len: usize,
    },
    /// The name contains a character outside `A-Z a-z 0-9 _ - . :`.
    ForbiddenCharacter {
        /// The first such character.
        found: char,
    },
    /// The name is made of dots alone, which paths treat specially.
    DotsOnly,
}

impl fmt::Display for ChannelNameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const RULE: &str =
            "channel names are 1 to 128 characters of A-Z a-z 0-9 _ - . : and not dots alone";
        match self {
            ChannelNameError::Empty => write!(f, "the channel name is empty; {RULE}"),
            ChannelNameError::TooLong { len } => {
                write!(f, "the channel name is {len} characters long; {RULE}")
            }
            ChannelNameError::ForbiddenCharacter { found } => {
                write!(f, "the channel name contains {found:?}; {RULE}")
            }
            ChannelNameError::DotsOnly => {
                write!(f, "the channel name is made of dots alone; {RULE}")
            }
        }
    }
}

impl std::error::Error for ChannelNameError {}
