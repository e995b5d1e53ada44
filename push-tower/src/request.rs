//! What every technique reads from a request, and how errors are answered.

use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Response, StatusCode, Uri};
use push_core::wire::WireError;
use push_core::{ChannelName, Start};

use crate::body::PushBody;

/// The query parameters the wire contract defines; the first of each wins.
#[derive(Debug, Default)]
pub(crate) struct Query {
    pub(crate) after: Option<String>,
    pub(crate) from: Option<String>,
    pub(crate) event: Option<String>,
    pub(crate) timeout: Option<String>,
}

impl Query {
    pub(crate) fn parse(uri: &Uri) -> Query {
        let mut query = Query::default();
        let Some(raw) = uri.query() else {
            return query;
        };
        for (key, value) in form_urlencoded::parse(raw.as_bytes()) {
            let slot = match &*key {
                "after" => &mut query.after,
                "from" => &mut query.from,
                "event" => &mut query.event,
                "timeout" => &mut query.timeout,
                _ => continue,
            };
            if slot.is_none() {
                *slot = Some(value.into_owned());
            }
        }
        query
    }

    /// The long-poll hold: `?timeout=` seconds, else `default`, capped by `max`.
    pub(crate) fn hold(&self, default: Duration, max: Duration) -> Result<Duration, WireError> {
        let requested = match &self.timeout {
            None => default,
            Some(raw) => raw
                .parse::<f64>()
                .ok()
                .filter(|secs| secs.is_finite() && *secs >= 0.0)
                .map(|secs| Duration::from_secs_f64(secs.min(max.as_secs_f64())))
                .ok_or_else(|| {
                    WireError::new(
                        StatusCode::BAD_REQUEST,
                        "bad_timeout",
                        format!("`timeout={raw}` is not a number of seconds; send for example `timeout=25`"),
                    )
                })?,
        };
        Ok(requested.min(max))
    }
}

/// Where delivery starts: `Last-Event-ID` > `after` > `from=earliest` > now.
pub(crate) fn start(headers: &HeaderMap, query: &Query) -> Result<Start, WireError> {
    let last_event_id = match headers.get("last-event-id") {
        None => None,
        Some(value) => Some(value.to_str().map_err(|_| {
            WireError::new(
                StatusCode::BAD_REQUEST,
                "bad_cursor",
                "the Last-Event-ID header is not an id this server gave; send back an id exactly as received",
            )
        })?),
    };
    Start::from_wire(last_event_id, query.after.as_deref(), query.from.as_deref())
        .map_err(|error| WireError::from(push_core::Error::from(error)))
}

/// Checks a channel name taken from a path segment.
pub(crate) fn channel_name(raw: &str) -> Result<ChannelName, WireError> {
    ChannelName::new(raw).map_err(|error| WireError::from(push_core::Error::from(error)))
}

pub(crate) fn json(status: StatusCode, body: impl Into<Bytes>) -> Response<PushBody> {
    json_body(status, PushBody::full(body))
}

pub(crate) fn json_body(status: StatusCode, body: PushBody) -> Response<PushBody> {
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

/// The wire contract's JSON error answer.
pub(crate) fn error(error: WireError) -> Response<PushBody> {
    let mut response = json(error.status(), error.to_json());
    if let Some(secs) = error.retry_after() {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}

/// Headers of every streaming response: sent at once, never cached or
/// buffered by proxies.
pub(crate) fn stream_response(content_type: &'static str, body: PushBody) -> Response<PushBody> {
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_takes_the_first_of_each_and_decodes() {
        let uri: Uri = "/x?after=a%2Db&after=zzz&event=hi+there&other=1"
            .parse()
            .unwrap();
        let query = Query::parse(&uri);
        assert_eq!(query.after.as_deref(), Some("a-b"));
        assert_eq!(query.event.as_deref(), Some("hi there"));
        assert_eq!(query.from, None);
    }

    #[test]
    fn hold_is_capped_and_validated() {
        let max = Duration::from_secs(30);
        let default = Duration::from_secs(20);
        let hold = |raw: Option<&str>| {
            Query {
                timeout: raw.map(str::to_owned),
                ..Query::default()
            }
            .hold(default, max)
        };
        assert_eq!(hold(None), Ok(default));
        assert_eq!(hold(Some("1.5")), Ok(Duration::from_millis(1500)));
        assert_eq!(hold(Some("999")), Ok(max));
        assert_eq!(hold(Some("0")), Ok(Duration::ZERO));
        for bad in ["-1", "NaN", "inf", "x", ""] {
            assert_eq!(hold(Some(bad)).unwrap_err().code(), "bad_timeout", "{bad}");
        }
    }

    #[test]
    fn non_utf8_last_event_id_is_bad_cursor() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "last-event-id",
            HeaderValue::from_bytes(b"\xff\xfe").unwrap(),
        );
        assert_eq!(
            start(&headers, &Query::default()).unwrap_err().code(),
            "bad_cursor"
        );
    }
}
