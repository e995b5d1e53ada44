//! What every technique reads from a request: the query, the start
//! position, the channel name.

use std::borrow::Cow;
use std::time::Duration;

use http::header::{self, HeaderMap};
use http::{Request, Uri, Version};
use push_core::wire::WireError;
use push_core::{ChannelName, Start};

/// Refuses what RFC 9112 says a server must not serve and hyper leaves to
/// it: an HTTP/1.1 request without exactly one `Host` (`400 bad_request`),
/// and a transfer coding other than `chunked` alone (`501
/// not_implemented`), whose body would otherwise be read still encoded.
/// (With both `Content-Length` and `Transfer-Encoding`, hyper drops the
/// length, reads the chunks and closes the connection after the answer, as
/// section 6.3 says.)
pub(crate) fn check_framing<B>(request: &Request<B>) -> Result<(), WireError> {
    let headers = request.headers();
    if request.version() == Version::HTTP_11 {
        let hosts = headers.get_all(header::HOST).iter().count();
        if hosts != 1 {
            return Err(WireError::bad_host(hosts));
        }
    }
    let mut codings = headers
        .get_all(header::TRANSFER_ENCODING)
        .iter()
        .flat_map(|value| value.as_bytes().split(|&byte| byte == b','))
        .map(<[u8]>::trim_ascii)
        .filter(|coding| !coding.is_empty());
    match (codings.next(), codings.next()) {
        (None, _) => Ok(()),
        (Some(coding), None) if coding.eq_ignore_ascii_case(b"chunked") => Ok(()),
        _ => Err(WireError::unsupported_transfer_coding()),
    }
}

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
    /// Values borrow from the URI unless they have escapes to decode.
    ///
    /// # Errors
    ///
    /// A value of the contract's that is not UTF-8 once decoded
    /// (`event=%FF`): refused rather than stored altered.
    pub(crate) fn parse(uri: &'a Uri) -> Result<Query<'a>, WireError> {
        let mut query = Query::default();
        for (key, value) in pairs(uri) {
            // A key that is not UTF-8 is no key of the contract's: ignored.
            let Some(key) = decode(key) else { continue };
            if let Some(slot) = query.slot(&key) {
                let value = decode(value).ok_or_else(|| WireError::query_not_utf8(&key))?;
                slot.get_or_insert(value);
            }
        }
        Ok(query)
    }

    /// Where the value of `key` goes, if the contract defines it.
    fn slot(&mut self, key: &str) -> Option<&mut Option<Cow<'a, str>>> {
        match key {
            "after" => Some(&mut self.after),
            "from" => Some(&mut self.from),
            "event" => Some(&mut self.event),
            "timeout" => Some(&mut self.timeout),
            _ => None,
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

/// The decoded value of the first `key` in `uri`'s query, if there is one
/// and it is UTF-8 once decoded.
pub(crate) fn query_value<'a>(uri: &'a Uri, key: &str) -> Option<Cow<'a, str>> {
    let (_, value) = pairs(uri).find(|(raw_key, _)| decode(raw_key).is_some_and(|k| k == key))?;
    decode(value)
}

/// The query's `key=value` pairs as sent, empty ones skipped; a pair
/// without `=` has an empty value.
fn pairs(uri: &Uri) -> impl Iterator<Item = (&str, &str)> {
    let mut rest = uri.query().unwrap_or_default();
    std::iter::from_fn(move || loop {
        if rest.is_empty() {
            return None;
        }
        let (pair, next) = split_at_first(rest, b'&');
        rest = next.unwrap_or_default();
        if !pair.is_empty() {
            let (key, value) = split_at_first(pair, b'=');
            return Some((key, value.unwrap_or_default()));
        }
    })
}

/// `text` before and after the first `separator` (an ASCII byte), or all of
/// it and `None`.
fn split_at_first(text: &str, separator: u8) -> (&str, Option<&str>) {
    match memchr::memchr(separator, text.as_bytes()) {
        Some(at) => (&text[..at], Some(&text[at + 1..])),
        None => (text, None),
    }
}

/// Decodes one form-urlencoded key or value (`+` is a space, `%XX` a
/// byte), borrowing when there is nothing to decode; `None` when the bytes
/// are not UTF-8.
fn decode(raw: &str) -> Option<Cow<'_, str>> {
    if memchr::memchr2(b'%', b'+', raw.as_bytes()).is_none() {
        return Some(Cow::Borrowed(raw));
    }
    let spaced = raw.replace('+', " ");
    let bytes: Vec<u8> = percent_encoding::percent_decode_str(&spaced).collect();
    String::from_utf8(bytes).ok().map(Cow::Owned)
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
        let query = Query::parse(&uri).unwrap();
        assert_eq!(query.after.as_deref(), Some("a-b"));
        assert_eq!(query.event.as_deref(), Some("hi there"));
        assert_eq!(query.from, None);
    }

    /// The query `form_urlencoded` reads from `raw`, as `Query`'s debug
    /// form.
    fn form_decoder_reads(raw: &str) -> String {
        let mut expected = Query::default();
        for (key, value) in form_urlencoded::parse(raw.as_bytes()) {
            if let Some(slot) = expected.slot(&key) {
                slot.get_or_insert(Cow::Owned(value.into_owned()));
            }
        }
        format!("{expected:?}")
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
            let query = Query::parse(&uri).unwrap();
            assert_eq!(format!("{query:?}"), form_decoder_reads(raw), "{raw}");
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
    fn escaped_values_decode_as_the_form_decoder_does_and_non_utf8_is_refused() {
        for raw in [
            "event=%E2%9C%93+ok&after=a%2Db",
            "event=caf%C3%A9&timeout=1%2E5",
            "%65vent=x",
        ] {
            let uri: Uri = format!("/x?{raw}").parse().unwrap();
            let query = Query::parse(&uri).unwrap();
            assert_eq!(format!("{query:?}"), form_decoder_reads(raw), "{raw}");
        }
        for (raw, code) in [
            ("event=%FF", "bad_event_name"),
            ("event=%C0%AF", "bad_event_name"),
            ("after=%80", "bad_cursor"),
            ("from=%FE", "bad_cursor"),
            ("timeout=%FF", "bad_timeout"),
        ] {
            let uri: Uri = format!("/x?{raw}").parse().unwrap();
            let error = Query::parse(&uri).unwrap_err();
            assert_eq!(error.code().as_str(), code, "{raw}");
        }
        // Keys and values the contract does not define are ignored, whatever they hold.
        let uri: Uri = "/x?other=%FF&%FF=1&event=ok".parse().unwrap();
        assert_eq!(Query::parse(&uri).unwrap().event.as_deref(), Some("ok"));
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
