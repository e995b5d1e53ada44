//! The wire contract's errors: every code a server sends, and one message for
//! each, in one place.
//!
//! An error on the wire is `{"error":"<code>","message":"<what to do>"}`. The
//! [`ErrorCode`]s are stable (PROTOCOL.md's error table lists exactly
//! [`ErrorCode::ALL`]); the message text is for people and may change. How a
//! code is carried is the server's: push-tower maps each to an HTTP status,
//! a WebSocket to a close code.
//!
//! ```
//! use push_core::wire::{ErrorCode, WireError};
//! use push_core::{Error, Start};
//!
//! let error = Error::from(Start::from_wire(None, Some(""), None).unwrap_err());
//! let wire = WireError::from(&error);
//! assert_eq!(wire.code(), ErrorCode::BadCursor);
//! assert_eq!(wire.code().as_str(), "bad_cursor");
//! assert!(wire.to_json().starts_with(r#"{"error":"bad_cursor","message":"#));
//! ```

use std::fmt;

use crate::error::Error;
use crate::event::EventNameError;

/// A stable error code of the wire contract.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// A channel name breaks the naming rules.
    BadChannel,
    /// A malformed cursor, `after` with `from`, an empty `after`, an unknown
    /// `from`.
    BadCursor,
    /// A cursor of the channel's current incarnation past its head.
    CursorAhead,
    /// A text body that is not UTF-8.
    BadUtf8,
    /// An event name that is empty, too long, or has CR, LF or NUL.
    BadEventName,
    /// An event name starting with `push.`.
    ReservedEventName,
    /// A long-poll `timeout` that is not a number of seconds.
    BadTimeout,
    /// A request body that could not be read to its end.
    BadBody,
    /// A WebSocket handshake with a missing or malformed
    /// `Sec-WebSocket-Key`, or an HTTP/2 `CONNECT` for another protocol.
    BadHandshake,
    /// An unknown path, a message past the head, an absent channel.
    NotFound,
    /// A known path with another method.
    MethodNotAllowed,
    /// An event no longer retained, or of another incarnation.
    Gone,
    /// The channel's incarnation closed while the request was served.
    Closed,
    /// A body over the largest event accepted.
    TooLarge,
    /// A request to a WebSocket route that is not a WebSocket handshake, or
    /// asks for a WebSocket version other than 13.
    UpgradeRequired,
    /// A technique this server does not offer.
    NotImplemented,
    /// The cap on channels is reached.
    TooManyChannels,
    /// A graceful shutdown is under way.
    ShuttingDown,
    /// The channel store failed; retry.
    Unavailable,
    /// A request the server cannot read as HTTP: an HTTP/1.1 request with no
    /// `Host` or with more than one.
    BadRequest,
    /// The request carries no credentials, or ones that are malformed,
    /// badly signed or expired.
    Unauthorized,
    /// The credentials, or the request's `Origin`, do not allow this action
    /// on this channel.
    Forbidden,
    /// Publishing to this channel faster than the server allows.
    RateLimited,
    /// The server holds as many connections as it allows.
    TooManyConnections,
    /// The client's address holds as many connections as the server allows
    /// one address.
    TooManyPeerConnections,
    /// An HTTP/2 connection holds as many subscriptions as the server allows
    /// one connection.
    TooManySubscriptions,
}

impl ErrorCode {
    /// Every code a server of this crate's wire contract may send.
    pub const ALL: [ErrorCode; 26] = [
        ErrorCode::BadChannel,
        ErrorCode::BadCursor,
        ErrorCode::CursorAhead,
        ErrorCode::BadUtf8,
        ErrorCode::BadEventName,
        ErrorCode::ReservedEventName,
        ErrorCode::BadTimeout,
        ErrorCode::BadBody,
        ErrorCode::BadHandshake,
        ErrorCode::NotFound,
        ErrorCode::MethodNotAllowed,
        ErrorCode::Gone,
        ErrorCode::Closed,
        ErrorCode::TooLarge,
        ErrorCode::UpgradeRequired,
        ErrorCode::NotImplemented,
        ErrorCode::TooManyChannels,
        ErrorCode::ShuttingDown,
        ErrorCode::Unavailable,
        ErrorCode::BadRequest,
        ErrorCode::Unauthorized,
        ErrorCode::Forbidden,
        ErrorCode::RateLimited,
        ErrorCode::TooManyConnections,
        ErrorCode::TooManyPeerConnections,
        ErrorCode::TooManySubscriptions,
    ];

    /// The code on the wire, such as `bad_cursor`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadChannel => "bad_channel",
            ErrorCode::BadCursor => "bad_cursor",
            ErrorCode::CursorAhead => "cursor_ahead",
            ErrorCode::BadUtf8 => "bad_utf8",
            ErrorCode::BadEventName => "bad_event_name",
            ErrorCode::ReservedEventName => "reserved_event_name",
            ErrorCode::BadTimeout => "bad_timeout",
            ErrorCode::BadBody => "bad_body",
            ErrorCode::BadHandshake => "bad_handshake",
            ErrorCode::NotFound => "not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::Gone => "gone",
            ErrorCode::Closed => "closed",
            ErrorCode::TooLarge => "too_large",
            ErrorCode::UpgradeRequired => "upgrade_required",
            ErrorCode::NotImplemented => "not_implemented",
            ErrorCode::TooManyChannels => "too_many_channels",
            ErrorCode::ShuttingDown => "shutting_down",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::TooManyConnections => "too_many_connections",
            ErrorCode::TooManyPeerConnections => "too_many_peer_connections",
            ErrorCode::TooManySubscriptions => "too_many_subscriptions",
        }
    }

    /// The code spelled `code` on the wire, if any.
    pub fn from_wire(code: &str) -> Option<ErrorCode> {
        ErrorCode::ALL.into_iter().find(|c| c.as_str() == code)
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error as the wire contract answers it: a stable code, a message that
/// says what to do, and when to retry if the client should.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WireError {
    code: ErrorCode,
    message: String,
    retry_after: Option<u32>,
}

impl WireError {
    fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        WireError {
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// `bad_cursor`: a `Last-Event-ID` header that is not even text.
    pub fn bad_last_event_id() -> Self {
        Self::new(
            ErrorCode::BadCursor,
            "the Last-Event-ID header is not an id this server gave; send back an id exactly as received",
        )
    }

    /// `bad_utf8`: a text body that is not UTF-8.
    pub fn bad_utf8() -> Self {
        Self::new(
            ErrorCode::BadUtf8,
            "the body is not valid UTF-8 but its Content-Type says text; fix the encoding or send it as application/octet-stream",
        )
    }

    /// `bad_timeout`: a long-poll `timeout` that is not a number of seconds.
    pub fn bad_timeout(raw: &str) -> Self {
        Self::new(
            ErrorCode::BadTimeout,
            format!("`timeout={raw}` is not a number of seconds; send for example `timeout=25`"),
        )
    }

    /// `bad_event_name`, `bad_cursor` or `bad_timeout` (by `key`): a query
    /// value that is not UTF-8 once percent-decoded.
    pub fn query_not_utf8(key: &str) -> Self {
        let code = match key {
            "event" => ErrorCode::BadEventName,
            "timeout" => ErrorCode::BadTimeout,
            _ => ErrorCode::BadCursor,
        };
        Self::new(
            code,
            format!(
                "`{key}` is not UTF-8 once percent-decoded; percent-encode the value's UTF-8 bytes"
            ),
        )
    }

    /// `bad_body`: the request body did not arrive within `secs` seconds.
    pub fn body_too_slow(secs: u64) -> Self {
        Self::new(
            ErrorCode::BadBody,
            format!(
                "the request body did not arrive within {secs} s; send it at once, in one request"
            ),
        )
    }

    /// `bad_body`: the request body could not be read to its end.
    pub fn bad_body() -> Self {
        Self::new(
            ErrorCode::BadBody,
            "the request body could not be read to its end; send it again",
        )
    }

    /// `upgrade_required`: a request to a WebSocket route that is not a
    /// WebSocket handshake, or asks for another version than 13.
    pub fn upgrade_required() -> Self {
        Self::new(
            ErrorCode::UpgradeRequired,
            "this route speaks WebSocket only: open it with a WebSocket client (HTTP/1.1 `Upgrade: websocket` with `Sec-WebSocket-Version: 13`, or an HTTP/2 extended CONNECT with `:protocol: websocket`)",
        )
    }

    /// `bad_handshake`: a WebSocket handshake that is missing `what`.
    pub fn bad_handshake(what: &str) -> Self {
        Self::new(
            ErrorCode::BadHandshake,
            format!("the WebSocket handshake is incomplete: {what}; use a WebSocket client library, which sends a complete one"),
        )
    }

    /// `not_implemented`: the server this service runs under cannot hand
    /// over upgraded connections.
    pub fn upgrades_unavailable() -> Self {
        Self::new(
            ErrorCode::NotImplemented,
            "this server cannot hand over upgraded connections, so it cannot serve WebSocket; serve with upgrades enabled (push_tower::serve, axum::serve, or hyper's serve_connection_with_upgrades)",
        )
    }

    /// `not_found`: no route has this path.
    pub fn no_such_path() -> Self {
        Self::new(
            ErrorCode::NotFound,
            "no such path; see PROTOCOL.md for the routes (/channels/{name}, /channels/{name}/sse, …)",
        )
    }

    /// `not_found`: a single-technique service found no channel in the
    /// request where it was told to look.
    pub fn no_channel_in_request(looked_for: &str) -> Self {
        Self::new(
            ErrorCode::NotFound,
            format!("this path names no channel; the service takes it from {looked_for}"),
        )
    }

    /// `not_found`: deleting a channel that does not exist.
    pub fn no_such_channel() -> Self {
        Self::new(
            ErrorCode::NotFound,
            "no such channel; it may already be closed",
        )
    }

    /// `not_found`: an event id past the channel's head.
    pub fn not_published() -> Self {
        Self::new(
            ErrorCode::NotFound,
            "no event has this id yet; it is past the channel's newest event",
        )
    }

    /// `method_not_allowed`, naming the methods the path accepts.
    pub fn method_not_allowed(allowed: &str) -> Self {
        Self::new(
            ErrorCode::MethodNotAllowed,
            format!("this path accepts {allowed}"),
        )
    }

    /// `gone`: an event no longer retained, or of another incarnation.
    pub fn gone() -> Self {
        Self::new(
            ErrorCode::Gone,
            "that event is no longer retained or belongs to an earlier incarnation of the channel; resume from the channel's earliest event",
        )
    }

    /// `too_large`: a body over `max` bytes, refused before it is read.
    pub fn body_too_large(max: usize) -> Self {
        Self::new(
            ErrorCode::TooLarge,
            format!(
                "the body is over the limit of {max} bytes; split it or send a reference to it"
            ),
        )
    }

    /// `not_implemented`: the technique at `segment` is not served here.
    pub fn not_implemented(segment: &str, served: &[&str]) -> Self {
        Self::new(
            ErrorCode::NotImplemented,
            format!(
                "the {segment} technique is not available on this server yet; use {}",
                served.join(", ")
            ),
        )
    }

    /// `shutting_down` with `Retry-After`: the server is draining.
    pub fn shutting_down(retry_after_secs: u32) -> Self {
        Self::new(
            ErrorCode::ShuttingDown,
            "the server is shutting down; retry with your cursor after the Retry-After delay",
        )
        .with_retry_after(retry_after_secs)
    }

    /// `bad_request`: an HTTP/1.1 request with `hosts` `Host` headers where
    /// it must carry exactly one (RFC 9112, section 3.2).
    pub fn bad_host(hosts: usize) -> Self {
        Self::new(
            ErrorCode::BadRequest,
            format!(
                "an HTTP/1.1 request must carry exactly one Host header, and this one carries {hosts}; send one, naming the server"
            ),
        )
    }

    /// `not_implemented`: a `Transfer-Encoding` other than `chunked` alone,
    /// which this server cannot decode (RFC 9112, section 6.1).
    pub fn unsupported_transfer_coding() -> Self {
        Self::new(
            ErrorCode::NotImplemented,
            "this server decodes no transfer coding but `chunked`; send the body as it is, with Content-Length or `Transfer-Encoding: chunked` alone",
        )
    }

    /// `unauthorized`: the request carries no credentials, or ones that do
    /// not hold; `message` says which, and what to send.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unauthorized, message)
    }

    /// `forbidden`: the credentials or the `Origin` do not allow the action;
    /// `message` says what is refused.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Forbidden, message)
    }

    /// `rate_limited` with `Retry-After`: publishing to a channel faster than
    /// `per_second` events a second.
    pub fn rate_limited(per_second: u32, retry_after_secs: u32) -> Self {
        Self::new(
            ErrorCode::RateLimited,
            format!(
                "this channel takes at most {per_second} publishes a second; retry after the Retry-After delay, or publish less often"
            ),
        )
        .with_retry_after(retry_after_secs)
    }

    /// `too_many_connections` with `Retry-After`: the server holds `max`
    /// connections.
    pub fn too_many_connections(max: usize, retry_after_secs: u32) -> Self {
        Self::new(
            ErrorCode::TooManyConnections,
            format!(
                "the server holds its limit of {max} connections; retry after the Retry-After delay"
            ),
        )
        .with_retry_after(retry_after_secs)
    }

    /// `too_many_peer_connections` with `Retry-After`: the client's address
    /// holds `max` connections.
    pub fn too_many_peer_connections(max: usize, retry_after_secs: u32) -> Self {
        Self::new(
            ErrorCode::TooManyPeerConnections,
            format!(
                "your address holds its limit of {max} connections; reuse an open connection, close one, or retry after the Retry-After delay"
            ),
        )
        .with_retry_after(retry_after_secs)
    }

    /// `too_many_subscriptions`: an HTTP/2 connection holds `max`
    /// subscriptions.
    pub fn too_many_subscriptions(max: usize) -> Self {
        Self::new(
            ErrorCode::TooManySubscriptions,
            format!(
                "this connection holds its limit of {max} subscriptions; close one, or open another connection"
            ),
        )
    }

    /// Adds a `Retry-After` in seconds.
    pub fn with_retry_after(mut self, secs: u32) -> Self {
        self.retry_after = Some(secs);
        self
    }

    /// The stable error code.
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// The message for people.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The delay in seconds after which the client should retry, if it
    /// should.
    pub fn retry_after(&self) -> Option<u32> {
        self.retry_after
    }

    /// The JSON body: `{"error":"<code>","message":"<message>"}`.
    pub fn to_json(&self) -> String {
        let mut out = Vec::with_capacity(self.message.len() + 48);
        out.extend_from_slice(b"{\"error\":\"");
        out.extend_from_slice(self.code.as_str().as_bytes());
        out.extend_from_slice(b"\",\"message\":");
        crate::envelope::write_json_string(&mut out, &self.message);
        out.push(b'}');
        String::from_utf8(out).unwrap_or_default()
    }
}

impl From<&Error> for WireError {
    fn from(error: &Error) -> Self {
        let code = match error {
            Error::BadChannelName(_) => ErrorCode::BadChannel,
            Error::BadEventName(EventNameError::Reserved) => ErrorCode::ReservedEventName,
            Error::BadEventName(_) => ErrorCode::BadEventName,
            Error::BadStart(_) => ErrorCode::BadCursor,
            Error::CursorAhead { .. } => ErrorCode::CursorAhead,
            Error::TooLarge { .. } => ErrorCode::TooLarge,
            Error::TooManyChannels { .. } => {
                return Self::new(ErrorCode::TooManyChannels, error.to_string()).with_retry_after(5)
            }
            Error::Closed => ErrorCode::Closed,
            Error::Backend(_) | Error::OutOfSequence { .. } => {
                return Self::new(ErrorCode::Unavailable, error.to_string()).with_retry_after(1)
            }
        };
        Self::new(code, error.to_string())
    }
}

impl From<Error> for WireError {
    fn from(error: Error) -> Self {
        WireError::from(&error)
    }
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for WireError {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ChannelNameError;
    use crate::id::{Epoch, EventId};
    use crate::start::StartError;

    #[test]
    fn every_error_maps_to_its_contract_code() {
        let id = EventId::new(Epoch::from_u64(1), 2);
        let cases: Vec<(Error, &str)> = vec![
            (
                Error::BadChannelName(ChannelNameError::Empty),
                "bad_channel",
            ),
            (Error::BadEventName(EventNameError::Empty), "bad_event_name"),
            (
                Error::BadEventName(EventNameError::Reserved),
                "reserved_event_name",
            ),
            (Error::BadStart(StartError::EmptyAfter), "bad_cursor"),
            (
                Error::CursorAhead {
                    cursor: id,
                    head: id,
                },
                "cursor_ahead",
            ),
            (Error::TooLarge { len: 2, max: 1 }, "too_large"),
            (Error::TooManyChannels { max: 1 }, "too_many_channels"),
            (Error::Closed, "closed"),
            (Error::Backend("down".into()), "unavailable"),
        ];
        for (error, code) in cases {
            let wire = WireError::from(&error);
            assert_eq!(wire.code().as_str(), code, "{error:?}");
            let json: serde_json::Value = serde_json::from_str(&wire.to_json()).unwrap();
            assert_eq!(json["error"], code);
            assert_eq!(json["message"], error.to_string());
        }
        assert_eq!(
            WireError::from(&Error::TooManyChannels { max: 1 }).retry_after(),
            Some(5)
        );
    }

    #[test]
    fn codes_round_trip_and_are_unique() {
        for code in ErrorCode::ALL {
            assert_eq!(ErrorCode::from_wire(code.as_str()), Some(code));
        }
        let mut names: Vec<_> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ErrorCode::ALL.len());
    }
}
