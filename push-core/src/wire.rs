//! The wire contract's errors: one place maps every error to its HTTP status
//! and JSON code.
//!
//! ```
//! use push_core::wire::WireError;
//! use push_core::{Error, Start};
//!
//! let error = Error::from(Start::from_wire(None, Some(""), None).unwrap_err());
//! let wire = WireError::from(&error);
//! assert_eq!(wire.status(), http::StatusCode::BAD_REQUEST);
//! assert_eq!(wire.code(), "bad_cursor");
//! assert!(wire.to_json().starts_with(r#"{"error":"bad_cursor","message":"#));
//! ```

use std::fmt;

use http::StatusCode;

use crate::error::Error;
use crate::event::EventNameError;

/// An error as the wire contract answers it: a status, a stable code and a
/// message that says what to do, sent as `{"error":"<code>","message":"…"}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WireError {
    status: StatusCode,
    code: &'static str,
    message: String,
    retry_after: Option<u32>,
}

impl WireError {
    /// An error with this status, code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        WireError {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// `400 bad_utf8`: a text body that is not UTF-8.
    pub fn bad_utf8() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "bad_utf8",
            "the body is not valid UTF-8 but its Content-Type says text; fix the encoding or send it as application/octet-stream",
        )
    }

    /// `404 not_found`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// `405 method_not_allowed`, naming the methods the path accepts.
    pub fn method_not_allowed(allowed: &str) -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!("this path accepts {allowed}"),
        )
    }

    /// `410 gone`: an event no longer retained, or of another incarnation.
    pub fn gone() -> Self {
        Self::new(
            StatusCode::GONE,
            "gone",
            "that event is no longer retained or belongs to an earlier incarnation of the channel; resume from the channel's earliest event",
        )
    }

    /// `503 shutting_down` with `Retry-After`: the server is draining.
    pub fn shutting_down(retry_after_secs: u32) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting_down",
            "the server is shutting down; retry with your cursor after the Retry-After delay",
        )
        .with_retry_after(retry_after_secs)
    }

    /// Adds a `Retry-After` in seconds.
    pub fn with_retry_after(mut self, secs: u32) -> Self {
        self.retry_after = Some(secs);
        self
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The stable error code, such as `bad_cursor`.
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// The message for people.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The `Retry-After` delay in seconds, when the client should retry.
    pub fn retry_after(&self) -> Option<u32> {
        self.retry_after
    }

    /// The JSON body: `{"error":"<code>","message":"<message>"}`.
    pub fn to_json(&self) -> String {
        let mut out = Vec::with_capacity(self.message.len() + 48);
        out.extend_from_slice(b"{\"error\":\"");
        out.extend_from_slice(self.code.as_bytes());
        out.extend_from_slice(b"\",\"message\":");
        crate::envelope::write_json_string(&mut out, &self.message);
        out.push(b'}');
        String::from_utf8(out).unwrap_or_default()
    }
}

impl From<&Error> for WireError {
    fn from(error: &Error) -> Self {
        let message = error.to_string();
        match error {
            Error::BadChannelName(_) => Self::new(StatusCode::BAD_REQUEST, "bad_channel", message),
            Error::BadEventName(EventNameError::Reserved) => {
                Self::new(StatusCode::BAD_REQUEST, "reserved_event_name", message)
            }
            Error::BadEventName(_) => Self::new(StatusCode::BAD_REQUEST, "bad_event_name", message),
            Error::BadStart(_) => Self::new(StatusCode::BAD_REQUEST, "bad_cursor", message),
            Error::CursorAhead { .. } => {
                Self::new(StatusCode::BAD_REQUEST, "cursor_ahead", message)
            }
            Error::TooLarge { .. } => {
                Self::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", message)
            }
            Error::TooManyChannels { .. } => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "too_many_channels",
                message,
            )
            .with_retry_after(5),
            Error::Closed => Self::new(StatusCode::GONE, "closed", message),
            Error::Backend(_) => Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
                .with_retry_after(1),
        }
    }
}

impl From<Error> for WireError {
    fn from(error: Error) -> Self {
        WireError::from(&error)
    }
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.code,
            self.message
        )
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
        let cases: Vec<(Error, u16, &str)> = vec![
            (
                Error::BadChannelName(ChannelNameError::Empty),
                400,
                "bad_channel",
            ),
            (
                Error::BadEventName(EventNameError::Empty),
                400,
                "bad_event_name",
            ),
            (
                Error::BadEventName(EventNameError::Reserved),
                400,
                "reserved_event_name",
            ),
            (Error::BadStart(StartError::EmptyAfter), 400, "bad_cursor"),
            (
                Error::CursorAhead {
                    cursor: id,
                    head: id,
                },
                400,
                "cursor_ahead",
            ),
            (Error::TooLarge { len: 2, max: 1 }, 413, "too_large"),
            (Error::TooManyChannels { max: 1 }, 503, "too_many_channels"),
        ];
        for (error, status, code) in cases {
            let wire = WireError::from(&error);
            assert_eq!(
                (wire.status().as_u16(), wire.code()),
                (status, code),
                "{error:?}"
            );
            let json: serde_json::Value = serde_json::from_str(&wire.to_json()).unwrap();
            assert_eq!(json["error"], code);
            assert_eq!(json["message"], error.to_string());
        }
        assert_eq!(
            WireError::from(&Error::TooManyChannels { max: 1 }).retry_after(),
            Some(5)
        );
    }
}
