//! Where a subscription starts, and how the wire contract chooses it.
//!
//! A non-empty `Last-Event-ID` header wins, then `?after=<id>`, then
//! `?from=earliest`, else delivery starts from now:
//!
//! ```
//! use push_core::{Start, StartError};
//!
//! let start = Start::from_wire(None, Some("0000000000000001-4"), None)?;
//! assert_eq!(start.to_string(), "after 0000000000000001-4");
//! assert_eq!(Start::from_wire(None, None, Some("earliest"))?, Start::Earliest);
//! assert_eq!(Start::from_wire(Some(""), None, None)?, Start::Now);
//! assert!(matches!(
//!     Start::from_wire(None, Some("x"), Some("earliest")),
//!     Err(StartError::AfterWithFrom)
//! ));
//! # Ok::<(), StartError>(())
//! ```

use std::fmt;

use crate::id::{EventId, ParseEventIdError};

/// Where a subscription starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    /// With the next event published.
    Now,
    /// With the event after this cursor (the last event the client saw).
    After(EventId),
    /// With the oldest retained event.
    Earliest,
}

impl Start {
    /// Chooses the start from the wire contract's three inputs: the
    /// `Last-Event-ID` header, the `after` query parameter and the `from`
    /// query parameter, each as received (`None` when absent).
    ///
    /// A non-empty `Last-Event-ID` wins and the query is then ignored, since
    /// browsers reconnect to the URL they first opened.
    ///
    /// # Errors
    ///
    /// - [`StartError::BadId`] when the id chosen is malformed;
    /// - [`StartError::AfterWithFrom`] when both `after` and `from` are given;
    /// - [`StartError::EmptyAfter`] when `after` is present but empty;
    /// - [`StartError::UnknownFrom`] when `from` is anything but `earliest`.
    pub fn from_wire(
        last_event_id: Option<&str>,
        after: Option<&str>,
        from: Option<&str>,
    ) -> Result<Start, StartError> {
        if let Some(id) = last_event_id.filter(|id| !id.is_empty()) {
            return Ok(Start::After(id.parse()?));
        }
        match (after, from) {
            (Some(_), Some(_)) => Err(StartError::AfterWithFrom),
            (Some(""), None) => Err(StartError::EmptyAfter),
            (Some(after), None) => Ok(Start::After(after.parse()?)),
            (None, Some("earliest")) => Ok(Start::Earliest),
            (None, Some(other)) => Err(StartError::UnknownFrom(other.to_owned())),
            (None, None) => Ok(Start::Now),
        }
    }
}

impl fmt::Display for Start {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Start::Now => f.write_str("now"),
            Start::After(id) => write!(f, "after {id}"),
            Start::Earliest => f.write_str("earliest"),
        }
    }
}

/// Why the requested start position is not acceptable; the wire contract
/// answers all of these with `400 bad_cursor`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StartError {
    /// The cursor is not an id this server could have given.
    BadId(ParseEventIdError),
    /// Both `after` and `from` were given.
    AfterWithFrom,
    /// `after` was given empty.
    EmptyAfter,
    /// `from` has a value other than `earliest`.
    UnknownFrom(String),
}

impl From<ParseEventIdError> for StartError {
    fn from(error: ParseEventIdError) -> Self {
        StartError::BadId(error)
    }
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::BadId(error) => write!(f, "malformed cursor: {error}"),
            StartError::AfterWithFrom => {
                f.write_str("give either `after=<id>` or `from=earliest`, not both")
            }
            StartError::EmptyAfter => f.write_str(
                "`after` is empty; leave it out to start from now, or send the last id you received",
            ),
            StartError::UnknownFrom(value) => write!(
                f,
                "`from={value}` is not supported; the only value is `from=earliest`"
            ),
        }
    }
}

impl std::error::Error for StartError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StartError::BadId(error) => Some(error),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "0000000000000001-4";

    #[test]
    fn last_event_id_wins_over_the_query() {
        let id: EventId = "0000000000000002-9".parse().unwrap();
        assert_eq!(
            Start::from_wire(Some("0000000000000002-9"), Some(ID), Some("earliest")),
            Ok(Start::After(id))
        );
    }

    #[test]
    fn empty_last_event_id_falls_through() {
        assert_eq!(
            Start::from_wire(Some(""), None, Some("earliest")),
            Ok(Start::Earliest)
        );
        assert_eq!(
            Start::from_wire(Some(""), Some(ID), None),
            Ok(Start::After(ID.parse().unwrap()))
        );
    }

    #[test]
    fn bad_inputs_are_typed_errors() {
        assert_eq!(
            Start::from_wire(None, Some(ID), Some("earliest")),
            Err(StartError::AfterWithFrom)
        );
        assert_eq!(
            Start::from_wire(None, Some(""), None),
            Err(StartError::EmptyAfter)
        );
        assert_eq!(
            Start::from_wire(None, None, Some("latest")),
            Err(StartError::UnknownFrom("latest".into()))
        );
        assert!(matches!(
            Start::from_wire(None, Some("nope"), None),
            Err(StartError::BadId(_))
        ));
        assert!(matches!(
            Start::from_wire(Some("nope"), None, None),
            Err(StartError::BadId(_))
        ));
    }

    #[test]
    fn nothing_means_now() {
        assert_eq!(Start::from_wire(None, None, None), Ok(Start::Now));
    }
}
