//! The trait a transport implements to be put under test.
//!
//! A transport opens subscriptions and hands back what arrives, decoded to
//! [`Received`] items; the suite publishes, closes and describes channels
//! through the server's HTTP API (the wire contract's `POST`, `DELETE` and
//! `GET /channels/{name}`), so a transport only has to implement the
//! receiving side of its technique.

use std::fmt;

use futures_util::future::BoxFuture;
use push_core::Shape;

use crate::received::Received;

/// Where a subscription starts, as a client asks for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StartAt {
    /// From now.
    Now,
    /// From the oldest retained event (`?from=earliest`).
    Earliest,
    /// After this cursor (`?after=<id>`).
    After(String),
    /// After this cursor, sent as the `Last-Event-ID` header.
    LastEventId(String),
}

/// A technique's client, put under test by the suite.
///
/// Implement it for your own transport to run the whole suite against it;
/// see the crate docs for a full example.
pub trait Transport: Send + Sync {
    /// A short name for reports, such as `sse` or `multipart`.
    fn name(&self) -> String;

    /// The shape of the technique, which decides the scenarios that apply
    /// (a short poll has no heartbeat to check, say). A
    /// [`Shape::LongPoll`] transport reports a held request that timed out
    /// with no events as [`Received::Heartbeat`].
    fn shape(&self) -> Shape;

    /// Opens a subscription to `channel` from `start`.
    ///
    /// A refusal by the server (`400 bad_cursor`, say) is
    /// [`OpenError::Refused`] with the status and the JSON error code, and
    /// must come before any stream starts.
    fn open<'a>(
        &'a self,
        channel: &'a str,
        start: StartAt,
    ) -> BoxFuture<'a, Result<Box<dyn Session>, OpenError>>;
}

/// An open subscription.
pub trait Session: Send {
    /// The next item received. `Ok(None)` once the subscription ended (the
    /// stream closed, or a poll session saw the channel close). The suite
    /// bounds every call with a timeout; dropping the future or the session
    /// must be safe at any point.
    fn next(&mut self) -> BoxFuture<'_, Result<Option<Received>, SessionError>>;

    /// Stops reading without closing, to act as a slow consumer. Optional:
    /// the default does nothing, which simply never reads (the suite just
    /// stops calling [`Session::next`]).
    fn pause(&mut self) {}

    /// The response headers, for transports carried by one HTTP response;
    /// `None` where there are none to check.
    fn headers(&self) -> Option<&http::HeaderMap> {
        None
    }
}

/// Why a subscription could not be opened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OpenError {
    /// The server answered an error before any stream started.
    Refused {
        /// The HTTP status.
        status: u16,
        /// The JSON error code, if the body had one.
        code: Option<String>,
    },
    /// The connection or exchange failed.
    Failed(String),
}

impl OpenError {
    /// The refusal of a server that answered `status` with `body`, the code
    /// taken from the JSON error body's `"error"` field, as every technique
    /// answers before any stream starts.
    pub fn refused(status: u16, body: &[u8]) -> Self {
        OpenError::Refused {
            status,
            code: error_code(body),
        }
    }
}

/// The `"error"` code of a JSON error body, if it is one.
pub(crate) fn error_code(body: &[u8]) -> Option<String> {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()?
        .get("error")?
        .as_str()
        .map(str::to_owned)
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpenError::Refused { status, code } => {
                write!(
                    f,
                    "refused with {status} {}",
                    code.as_deref().unwrap_or("(no code)")
                )
            }
            OpenError::Failed(message) => write!(f, "failed: {message}"),
        }
    }
}

impl std::error::Error for OpenError {}

/// Why reading a subscription failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SessionError {
    /// The connection broke.
    Broken(String),
    /// What arrived does not follow the technique's wire format.
    Malformed(String),
}

impl fmt::Display for SessionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SessionError::Broken(message) => write!(f, "connection broke: {message}"),
            SessionError::Malformed(message) => write!(f, "malformed: {message}"),
        }
    }
}

impl std::error::Error for SessionError {}
