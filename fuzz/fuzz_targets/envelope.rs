//! The JSON envelope and signal objects: every event encodes to one line of
//! JSON with exactly the contract's fields, which the conformance crate's
//! decoder (the one its WebSocket, NDJSON and HTTP/2 push clients use)
//! reads back to the same id, name and bytes; likewise every signal.
#![no_main]

use base64::Engine;
use conformance::received::decode_json;
use conformance::Received;
use libfuzzer_sys::fuzz_target;
use push_core::envelope::{encode_event, encode_signal};
use push_fuzz::{received_event, received_signal, EventInput, SignalInput};

fuzz_target!(|input: (EventInput, SignalInput)| {
    let (event, signal) = input;
    let event = event.event();

    let line = event.envelope_line();
    assert_eq!(line.last(), Some(&b'\n'));
    assert_eq!(line.iter().filter(|&&b| b == b'\n').count(), 1, "one line");
    assert!(!line.contains(&b'\r'));
    let text = encode_event(&event);
    assert_eq!(text.as_bytes(), &line[..line.len() - 1]);

    let value: serde_json::Value = serde_json::from_str(&text).expect("the envelope is JSON");
    let object = value.as_object().expect("the envelope is an object");
    let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
    keys.sort_unstable();
    let mut expected_keys = vec!["data", "id"];
    if event.name().is_some() {
        expected_keys.push("event");
    }
    if !event.data().is_text() {
        expected_keys.push("encoding");
    }
    expected_keys.sort_unstable();
    assert_eq!(keys, expected_keys);
    assert_eq!(object["id"], event.id().to_string());
    if let Some(name) = event.name() {
        assert_eq!(object["event"], name);
    }
    match event.data().as_text() {
        Some(data) => assert_eq!(object["data"], data),
        None => {
            assert_eq!(object["encoding"], "base64");
            let data = object["data"].as_str().unwrap();
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(data)
                .unwrap();
            assert_eq!(decoded, event.data().bytes().as_ref());
        }
    }
    assert_eq!(
        decode_json(&value),
        Ok(Received::Event(received_event(&event)))
    );

    let signal = signal.signal();
    let text = encode_signal(&signal);
    assert!(!text.contains(['\n', '\r']));
    let value: serde_json::Value = serde_json::from_str(&text).expect("a signal is JSON");
    assert_eq!(value.as_object().map(|o| o.len()), Some(2));
    assert_eq!(decode_json(&value), Ok(received_signal(&signal)));
});
