//! The start position from the wire's three inputs (`Last-Event-ID`,
//! `after`, `from`), against the rules PROTOCOL.md states.
#![no_main]

use libfuzzer_sys::fuzz_target;
use push_core::{EventId, Start, StartError};

fuzz_target!(|input: (Option<&str>, Option<&str>, Option<&str>)| {
    let (last_event_id, after, from) = input;
    let start = Start::from_wire(last_event_id, after, from);
    match last_event_id.filter(|id| !id.is_empty()) {
        // A non-empty Last-Event-ID wins and the query is not read.
        Some(id) => match id.parse::<EventId>() {
            Ok(id) => assert_eq!(start, Ok(Start::After(id))),
            Err(error) => assert_eq!(start, Err(StartError::BadId(error))),
        },
        None => {
            let expected = match (after, from) {
                (Some(_), Some(_)) => Err(StartError::AfterWithFrom),
                (Some(""), None) => Err(StartError::EmptyAfter),
                (Some(after), None) => after.parse().map(Start::After).map_err(StartError::BadId),
                (None, Some("earliest")) => Ok(Start::Earliest),
                (None, Some(other)) => Err(StartError::UnknownFrom(other.to_owned())),
                (None, None) => Ok(Start::Now),
            };
            assert_eq!(start, expected);
        }
    }
    match start {
        Ok(Start::After(id)) => assert_eq!(Start::After(id).to_string(), format!("after {id}")),
        Ok(start) => assert!(["now", "earliest"].contains(&start.to_string().as_str())),
        Err(error) => {
            // Every refusal is `bad_cursor` on the wire, with a message.
            let wire = push_core::wire::WireError::from(push_core::Error::from(error));
            assert_eq!(wire.code().as_str(), "bad_cursor");
            assert!(!wire.message().is_empty());
        }
    }
});
