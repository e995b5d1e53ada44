//! push-redis's decoder of stream entries (crate-private, reached through
//! `push_redis::__fuzz`): an entry laid out as the publish script writes it
//! (`{seq}-0` with fields `d`, `k`, `n`, `c`) decodes to the event that was
//! published, ids and epochs round-trip through their stored text, and any
//! other reply Redis might hold (written by something else, or damaged) is
//! a backend error, never a panic nor an event the wire contract refuses.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use push_core::{Epoch, EventName};
use push_fuzz::EventInput;
use push_redis::__fuzz;
use redis::Value;

/// A reply as Redis might hold it.
#[derive(Arbitrary, Debug)]
enum Reply {
    Nil,
    Int(i64),
    Bulk(Vec<u8>),
    /// A bulk string from a few the decoder looks for.
    Known(u8),
    Simple(String),
    Okay,
    Array(Vec<Reply>),
}

impl Reply {
    fn value(&self) -> Value {
        match self {
            Reply::Nil => Value::Nil,
            Reply::Int(n) => Value::Int(*n),
            Reply::Bulk(bytes) => Value::BulkString(bytes.clone()),
            Reply::Known(which) => {
                let known: [&[u8]; 8] = [b"d", b"k", b"n", b"c", b"t", b"b", b"closed", b"1-0"];
                Value::BulkString(known[usize::from(*which) % known.len()].to_vec())
            }
            Reply::Simple(text) => Value::SimpleString(text.clone()),
            Reply::Okay => Value::Okay,
            Reply::Array(items) => Value::Array(items.iter().map(Reply::value).collect()),
        }
    }
}

fn bulk(bytes: &[u8]) -> Value {
    Value::BulkString(bytes.to_vec())
}

fuzz_target!(|input: (EventInput, u64, &[u8], Reply)| {
    let (event, epoch, text, reply) = input;
    let event = event.event();
    let epoch = Epoch::from_u64(epoch);

    // What the publish script stores, read back.
    let data = event.data();
    let entry = Value::Array(vec![
        bulk(format!("{}-0", event.id().seq()).as_bytes()),
        Value::Array(vec![
            bulk(b"d"),
            bulk(data.bytes()),
            bulk(b"k"),
            bulk(if data.is_text() { b"t" } else { b"b" }),
            bulk(b"n"),
            bulk(event.name().unwrap_or("").as_bytes()),
            bulk(b"c"),
            bulk(b"123"),
        ]),
    ]);
    let decoded = __fuzz::decode_entry(epoch, entry)
        .expect("what the script writes decodes")
        .expect("an event, not a close");
    assert_eq!(decoded.id().epoch(), epoch);
    assert_eq!(decoded.id().seq(), event.id().seq());
    assert_eq!(decoded.name(), event.name());
    assert_eq!(decoded.data(), event.data());

    assert_eq!(
        __fuzz::parse_epoch(__fuzz::epoch_text(epoch).as_bytes()).ok(),
        Some(epoch)
    );
    let seq = event.id().seq();
    assert_eq!(
        __fuzz::entry_seq(format!("{seq}-0").as_bytes()).ok(),
        Some(seq)
    );
    let _ = __fuzz::parse_epoch(text);
    if let Ok(seq) = __fuzz::entry_seq(text) {
        assert!(text.ends_with(b"-0"));
        let _ = seq;
    }

    // Anything else: an error or an event the wire contract can carry.
    match __fuzz::decode_entry(epoch, reply.value()) {
        Ok(Some(event)) => {
            assert_eq!(event.id().epoch(), epoch);
            if let Some(name) = event.name() {
                assert!(EventName::new(name).is_ok());
                assert_ne!(name, EventName::DEFAULT);
            }
            if event.data().is_text() {
                assert!(std::str::from_utf8(event.data().bytes()).is_ok());
            }
        }
        Ok(None) => {}
        Err(error) => assert!(matches!(error, push_core::Error::Backend(_)), "{error:?}"),
    }
});
