//! push-tower's query decoder (`Query::parse`, crate-private, reached
//! through `push_tower::__fuzz` under `--cfg fuzzing`), against the
//! `form_urlencoded` crate as the reference: for a query it accepts, each
//! of `after`, `from`, `event` and `timeout` is the first value that
//! decoder reads; a refusal names a key whose value is not UTF-8 once
//! decoded. Then the long-poll hold and the start position built on it.
#![no_main]

use std::time::Duration;

use http::{HeaderMap, HeaderValue, Uri};
use libfuzzer_sys::fuzz_target;
use push_core::Start;
use push_tower::__fuzz::{self, QueryValues};

/// The first value of each contract key, as `form_urlencoded` reads the
/// query (lossily: a non-UTF-8 value holds U+FFFD there).
fn reference(raw: &str) -> (QueryValues, Vec<(String, String)>) {
    let mut values = QueryValues::default();
    let mut pairs = Vec::new();
    for (key, value) in form_urlencoded::parse(raw.as_bytes()) {
        let slot = match &*key {
            "after" => &mut values.after,
            "from" => &mut values.from,
            "event" => &mut values.event,
            "timeout" => &mut values.timeout,
            _ => continue,
        };
        pairs.push((key.to_string(), value.to_string()));
        slot.get_or_insert_with(|| value.into_owned());
    }
    (values, pairs)
}

fn code_for(key: &str) -> &'static str {
    match key {
        "after" | "from" => "bad_cursor",
        "event" => "bad_event_name",
        _ => "bad_timeout",
    }
}

fuzz_target!(|input: (&str, Option<&[u8]>, u16, u16)| {
    let (raw, last_event_id, default_secs, max_secs) = input;
    let Ok(uri) = format!("/c?{raw}").parse::<Uri>() else {
        return;
    };
    let raw = uri.query().unwrap_or_default();
    let (expected, pairs) = reference(raw);
    // A replacement character the client sent itself: percent-encoded, or
    // as raw UTF-8, which `http::Uri` lets through in a query.
    let sent_replacement =
        raw.to_ascii_lowercase().contains("%ef%bf%bd") || raw.contains('\u{FFFD}');

    let parsed = __fuzz::query(&uri);
    match &parsed {
        Ok(values) => {
            assert_eq!(values, &expected, "{raw:?}");
            if !sent_replacement {
                for (key, value) in &pairs {
                    assert!(
                        !value.contains('\u{FFFD}'),
                        "{raw:?}: {key} is not UTF-8, yet accepted"
                    );
                }
            }
            if !raw.contains(['%', '+']) {
                assert_eq!(
                    __fuzz::query_borrows(&uri),
                    Some(true),
                    "{raw:?}: copied with nothing to decode"
                );
            }
        }
        Err(error) => {
            let code = error.code().as_str();
            assert!(
                pairs
                    .iter()
                    .any(|(key, value)| value.contains('\u{FFFD}') && code_for(key) == code),
                "{raw:?} refused with {code}, yet every contract value decodes as UTF-8"
            );
            assert!(!error.message().is_empty());
        }
    }

    let default = Duration::from_secs(u64::from(default_secs));
    let max = Duration::from_secs(u64::from(max_secs));
    match (__fuzz::hold(&uri, default, max), &parsed) {
        (Ok(hold), Ok(values)) => {
            assert!(hold <= max);
            match values.timeout.as_deref() {
                None => assert_eq!(hold, default.min(max)),
                Some(timeout) => {
                    if let Ok(secs) = timeout.parse::<u64>() {
                        assert_eq!(hold, Duration::from_secs(secs).min(max));
                    } else {
                        let secs: f64 = timeout.parse().expect("an accepted timeout is a number");
                        assert!(secs.is_finite() && secs >= 0.0, "{timeout:?}");
                    }
                }
            }
        }
        (Err(error), Ok(values)) => {
            assert_eq!(error.code().as_str(), "bad_timeout");
            let timeout = values
                .timeout
                .as_deref()
                .expect("a refused hold has a timeout");
            let number = timeout.parse::<f64>();
            assert!(
                !matches!(number, Ok(secs) if secs.is_finite() && secs >= 0.0),
                "{timeout:?} refused"
            );
        }
        (Ok(_), Err(_)) => panic!("{raw:?}: the hold was read from a refused query"),
        (Err(hold), Err(query)) => assert_eq!(hold.code(), query.code()),
    }

    let mut headers = HeaderMap::new();
    let header = last_event_id.and_then(|bytes| HeaderValue::from_bytes(bytes).ok());
    if let Some(value) = &header {
        headers.insert("last-event-id", value.clone());
    }
    let start = __fuzz::start(&headers, &uri);
    match &parsed {
        Err(query) => assert_eq!(start.map_err(|e| e.code()), Err(query.code())),
        Ok(values) => {
            let header = header.as_ref().map(|value| value.to_str());
            let expected = match header {
                Some(Err(_)) => None,
                Some(Ok(led)) => Some(Start::from_wire(
                    Some(led),
                    values.after.as_deref(),
                    values.from.as_deref(),
                )),
                None => Some(Start::from_wire(
                    None,
                    values.after.as_deref(),
                    values.from.as_deref(),
                )),
            };
            match (start, expected) {
                (Err(error), None) => assert_eq!(error.code().as_str(), "bad_cursor"),
                (start, Some(expected)) => {
                    assert_eq!(start.as_ref().ok(), expected.as_ref().ok());
                    if let Err(error) = start {
                        assert_eq!(error.code().as_str(), "bad_cursor");
                    }
                }
                (Ok(start), None) => panic!("a Last-Event-ID that is not text started at {start}"),
            }
        }
    }
});
