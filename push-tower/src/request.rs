//! What every technique reads from a request: the query, the start
//! position, the channel name.

use std::time::Duration;

use http::header::HeaderMap;
use http::Uri;
use push_core::wire::WireError;
use push_core::{ChannelName, Start};

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
                .ok_or_else(|| WireError::bad_timeout(raw))?,
        };
        Ok(requested.min(max))
    }
}

/// Where delivery starts: `Last-Event-ID` > `after` > `from=earliest` > now.
pub(crate) fn start(headers: &HeaderMap, query: &Query) -> Result<Start, WireError> {
    let last_event_id = match headers.get("last-event-id") {
        None => None,
        Some(value) => Some(value.to_str().map_err(|_| WireError::bad_last_event_id())?),
    };
    Start::from_wire(last_event_id, query.after.as_deref(), query.from.as_deref())
        .map_err(|error| WireError::from(push_core::Error::from(error)))
}

/// Checks a channel name taken from a path segment.
pub(crate) fn channel_name(raw: &str) -> Result<ChannelName, WireError> {
    ChannelName::new(raw).map_err(|error| WireError::from(push_core::Error::from(error)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

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
            assert_eq!(
                hold(Some(bad)).unwrap_err().code().as_str(),
                "bad_timeout",
                "{bad}"
            );
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
            start(&headers, &Query::default())
                .unwrap_err()
                .code()
                .as_str(),
            "bad_cursor"
        );
    }
}
