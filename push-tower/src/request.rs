//! What every technique reads from a request: the query, the start
//! position, the channel name.

use std::borrow::Cow;
use std::time::Duration;

use http::header::HeaderMap;
use http::Uri;
use push_core::wire::WireError;
use push_core::{ChannelName, Start};

/// The query parameters the wire contract defines; the first of each wins.
/// Values borrow from the URI unless they had to be decoded.
#[derive(Debug, Default)]
pub(crate) struct Query<'a> {
    pub(crate) after: Option<Cow<'a, str>>,
    pub(crate) from: Option<Cow<'a, str>>,
    pub(crate) event: Option<Cow<'a, str>>,
    pub(crate) timeout: Option<Cow<'a, str>>,
}

impl<'a> Query<'a> {
    /// Reads `application/x-www-form-urlencoded` pairs from the URI's query.
    pub(crate) fn parse(uri: &'a Uri) -> Query<'a> {
        let mut query = Query::default();
        let Some(raw) = uri.query() else {
            return query;
        };
        if memchr::memchr2(b'%', b'+', raw.as_bytes()).is_some() {
            for (key, value) in form_urlencoded::parse(raw.as_bytes()) {
                query.offer(&key, value);
            }
            return query;
        }
        // Nothing to decode (the usual request): split by hand, exactly as
        // the decoder would, without its per-byte work.
        let mut rest = raw;
        while !rest.is_empty() {
            let (pair, next) = split_at_first(rest, b'&');
            rest = next.unwrap_or_default();
            if !pair.is_empty() {
                let (key, value) = split_at_first(pair, b'=');
                query.offer(key, Cow::Borrowed(value.unwrap_or_default()));
            }
        }
        query
    }

    fn offer(&mut self, key: &str, value: Cow<'a, str>) {
        let slot = match key {
            "after" => &mut self.after,
            "from" => &mut self.from,
            "event" => &mut self.event,
            "timeout" => &mut self.timeout,
            _ => return,
        };
        if slot.is_none() {
            *slot = Some(value);
        }
    }

    /// The long-poll hold: `?timeout=` seconds, else `default`, capped by `max`.
    pub(crate) fn hold(&self, default: Duration, max: Duration) -> Result<Duration, WireError> {
        let requested = match &self.timeout {
            None => default,
            // Whole seconds, the usual form, without the float parser.
            Some(raw) => match raw.parse::<u64>() {
                Ok(secs) => Duration::from_secs(secs),
                Err(_) => raw
                    .parse::<f64>()
                    .ok()
                    .filter(|secs| secs.is_finite() && *secs >= 0.0)
                    .map(|secs| Duration::from_secs_f64(secs.min(max.as_secs_f64())))
                    .ok_or_else(|| WireError::bad_timeout(raw))?,
            },
        };
        Ok(requested.min(max))
    }
}

/// `text` before and after the first `separator` (an ASCII byte), or all of
/// it and `None`.
fn split_at_first(text: &str, separator: u8) -> (&str, Option<&str>) {
    match memchr::memchr(separator, text.as_bytes()) {
        Some(at) => (&text[..at], Some(&text[at + 1..])),
        None => (text, None),
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
    fn query_without_escapes_reads_as_the_decoder_would() {
        for raw in [
            "after=a-b&after=zzz&event=hi&other=1",
            "&&from=earliest&&timeout&event=",
            "timeout=5=6&=x&after",
            "event=x&from==",
        ] {
            let uri: Uri = format!("/x?{raw}").parse().unwrap();
            let query = Query::parse(&uri);
            let mut expected = Query::default();
            for (key, value) in form_urlencoded::parse(raw.as_bytes()) {
                expected.offer(&key, Cow::Owned(value.into_owned()));
            }
            assert_eq!(format!("{query:?}"), format!("{expected:?}"), "{raw}");
            assert!(
                [&query.after, &query.from, &query.event, &query.timeout]
                    .into_iter()
                    .flatten()
                    .all(|value| matches!(value, Cow::Borrowed(_))),
                "{raw}: a value was copied"
            );
        }
    }

    #[test]
    fn hold_is_capped_and_validated() {
        let max = Duration::from_secs(30);
        let default = Duration::from_secs(20);
        let hold = |raw: Option<&str>| {
            Query {
                timeout: raw.map(Cow::Borrowed),
                ..Query::default()
            }
            .hold(default, max)
        };
        assert_eq!(hold(None), Ok(default));
        assert_eq!(hold(Some("1.5")), Ok(Duration::from_millis(1500)));
        assert_eq!(hold(Some("999")), Ok(max));
        assert_eq!(hold(Some("7")), Ok(Duration::from_secs(7)));
        assert_eq!(hold(Some("+7")), Ok(Duration::from_secs(7)));
        assert_eq!(hold(Some("99999999999999999999999")), Ok(max));
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
