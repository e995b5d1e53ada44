//! The conformance crate's NDJSON decoder (whose line decoder, JSON and
//! `decode_json`, also reads WebSocket text messages and HTTP/2 pushed
//! bodies) on arbitrary bytes: the same items or the same error however the
//! stream is cut, each line decoded as `decode_ndjson_line` decodes it alone,
//! and a decoded event that re-encodes through push-core reads back equal.
#![no_main]

use std::collections::VecDeque;

use conformance::clients::{decode_ndjson_line, Decoder, NdjsonDecoder};
use conformance::Received;
use libfuzzer_sys::fuzz_target;
use push_core::{Data, Event, EventId, Message};
use push_fuzz::pieces;

fn decode(stream: &[u8], cuts: &[u16]) -> Result<Vec<Received>, ()> {
    let mut decoder = NdjsonDecoder::default();
    let mut out = VecDeque::new();
    for piece in pieces(stream, cuts) {
        decoder.feed(piece, &mut out).map_err(|_| ())?;
    }
    decoder.finish().map_err(|_| ())?;
    Ok(out.into())
}

fuzz_target!(|input: (&[u8], Vec<u16>)| {
    let (stream, cuts) = input;
    let whole = decode(stream, &[]);
    assert_eq!(
        decode(stream, &cuts),
        whole,
        "the result depends on where the stream was cut"
    );

    // Line by line, as the decoder must read it.
    let mut lines: Vec<&[u8]> = stream.split(|&b| b == b'\n').collect();
    let unfinished = lines.pop().unwrap_or_default();
    let mut expected = Vec::new();
    let mut failed = false;
    for line in lines {
        match decode_ndjson_line(line) {
            Ok(item) => expected.push(item),
            Err(_) => {
                failed = true;
                break;
            }
        }
    }
    if failed || !unfinished.is_empty() {
        assert!(whole.is_err());
        return;
    }
    assert_eq!(whole.as_ref(), Ok(&expected));

    // An event this decoder reads, with an id the server could have given,
    // is one push-core encodes back to the same reading.
    for item in expected {
        let Received::Event(event) = item else {
            continue;
        };
        let Ok(id) = event.id.parse::<EventId>() else {
            continue;
        };
        let data = if event.binary {
            Data::binary(event.data.clone())
        } else {
            Data::text_from_utf8(event.data.clone()).expect("JSON text is UTF-8")
        };
        let message = match &event.name {
            Some(name) => match Message::new(data).with_name(name) {
                Ok(message) if message.name().is_some() => message,
                _ => continue,
            },
            None => Message::new(data),
        };
        let again = Event::new(id, message);
        assert_eq!(
            decode_ndjson_line(&again.envelope_line()[..again.envelope_line().len() - 1]).ok(),
            Some(Received::Event(event))
        );
    }
});
