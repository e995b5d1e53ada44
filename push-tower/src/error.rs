//! Wire errors as HTTP answers: the one mapping from push-core's stable
//! [`ErrorCode`]s to HTTP statuses.
//!
//! ```
//! use http::StatusCode;
//! use push_core::wire::{ErrorCode, WireError};
//! use push_tower::error::{response, status};
//!
//! assert_eq!(status(ErrorCode::CursorAhead), StatusCode::BAD_REQUEST);
//! let answer = response(WireError::shutting_down(2));
//! assert_eq!(answer.status(), StatusCode::SERVICE_UNAVAILABLE);
//! assert_eq!(answer.headers()["retry-after"], "2");
//! assert_eq!(answer.headers()["content-type"], "application/json");
//! ```

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Response, StatusCode};
use push_core::wire::{ErrorCode, WireError};

use crate::body::PushBody;
use crate::response;

/// The HTTP status that answers `code`.
pub fn status(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::BadChannel
        | ErrorCode::BadCursor
        | ErrorCode::CursorAhead
        | ErrorCode::BadUtf8
        | ErrorCode::BadEventName
        | ErrorCode::ReservedEventName
        | ErrorCode::BadTimeout
        | ErrorCode::BadBody
        | ErrorCode::BadHandshake
        | ErrorCode::BadRequest => StatusCode::BAD_REQUEST,
        ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
        ErrorCode::Forbidden => StatusCode::FORBIDDEN,
        ErrorCode::RateLimited
        | ErrorCode::TooManyPeerConnections
        | ErrorCode::TooManySubscriptions => StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::NotFound => StatusCode::NOT_FOUND,
        ErrorCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        ErrorCode::Gone | ErrorCode::Closed => StatusCode::GONE,
        ErrorCode::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::UpgradeRequired => StatusCode::UPGRADE_REQUIRED,
        ErrorCode::NotImplemented => StatusCode::NOT_IMPLEMENTED,
        ErrorCode::TooManyChannels
        | ErrorCode::TooManyConnections
        | ErrorCode::ShuttingDown
        | ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        // A code added to push-core before it is mapped here: the request
        // could not be served, and the JSON body still names the code.
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The wire contract's JSON error answer: the status of its code,
/// `{"error":"<code>","message":"<what to do>"}`, `Retry-After` when the
/// client should retry, and `WWW-Authenticate: Bearer` on `401`, as HTTP
/// requires.
pub fn response(error: WireError) -> Response<PushBody> {
    response_with(error, PushBody::full)
}

/// [`response`] with the JSON carried by a body of another type, made from
/// its bytes by `body`: what `serve` answers before any service runs.
pub(crate) fn response_with<B>(error: WireError, body: impl FnOnce(Bytes) -> B) -> Response<B> {
    let json = body(Bytes::from(error.to_json()));
    let mut answer = response::json_body(status(error.code()), json);
    let headers = answer.headers_mut();
    if let Some(secs) = error.retry_after() {
        headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    if error.code() == ErrorCode::Unauthorized {
        headers.insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"push\""),
        );
    }
    answer
}

/// `405` with the JSON body and `Allow` naming the methods the path takes.
pub(crate) fn method_not_allowed(allowed: &'static str) -> Response<PushBody> {
    let mut answer = response(WireError::method_not_allowed(allowed));
    answer
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allowed));
    answer
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_a_client_or_server_error_status() {
        for code in ErrorCode::ALL {
            let status = status(code);
            assert!(
                status.is_client_error() || status.is_server_error(),
                "{code}"
            );
            assert_ne!(status, StatusCode::INTERNAL_SERVER_ERROR, "{code}");
        }
    }
}
