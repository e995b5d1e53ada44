//! The answers every technique builds: JSON, and the headers of a stream.

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Response, StatusCode};

use crate::body::PushBody;

/// A complete JSON answer.
pub(crate) fn json(status: StatusCode, body: impl Into<Bytes>) -> Response<PushBody> {
    json_body(status, PushBody::full(body))
}

/// A JSON answer with this body (a poll's shared chunks, say).
pub(crate) fn json_body<B>(status: StatusCode, body: B) -> Response<B> {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// Headers of every streaming response: sent at once, never cached or
/// buffered by proxies.
pub(crate) fn stream(content_type: &'static str, body: PushBody) -> Response<PushBody> {
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

/// The entity tags that `If-None-Match` values list, weak ones (`W/`)
/// as strong, quotes kept: `"a"` and `*` as sent.
pub(crate) fn entity_tags<'a>(
    values: impl IntoIterator<Item = &'a HeaderValue>,
) -> impl Iterator<Item = &'a str> {
    values
        .into_iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|tag| tag.trim().trim_start_matches("W/"))
}

/// An answer with no body.
pub(crate) fn empty(status: StatusCode) -> Response<PushBody> {
    let mut response = Response::new(PushBody::empty());
    *response.status_mut() = status;
    response
}
