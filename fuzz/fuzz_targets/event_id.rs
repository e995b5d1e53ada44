//! `EventId`'s parser: it accepts exactly the strings `Display` writes
//! (checked against a reference grammar), and `Display`, `to_text` and
//! `text_len` agree for every id.
#![no_main]

use libfuzzer_sys::fuzz_target;
use push_core::{CursorRelation, Epoch, EventId, ParseEventIdError};

/// The wire grammar, read plainly: `<16 lowercase hex>-<decimal u64 without
/// leading zeros>`.
fn reference(text: &str) -> Option<EventId> {
    let (epoch, seq) = text.split_once('-')?;
    let hex = |b: u8| b.is_ascii_digit() || (b'a'..=b'f').contains(&b);
    if epoch.len() != 16 || !epoch.bytes().all(hex) {
        return None;
    }
    if seq.is_empty()
        || !seq.bytes().all(|b| b.is_ascii_digit())
        || (seq.len() > 1 && seq.starts_with('0'))
    {
        return None;
    }
    let epoch = u64::from_str_radix(epoch, 16).ok()?;
    Some(EventId::new(Epoch::from_u64(epoch), seq.parse().ok()?))
}

fuzz_target!(|input: (u64, u64, u64, &[u8])| {
    let (epoch, seq, head_seq, text) = input;

    let id = EventId::new(Epoch::from_u64(epoch), seq);
    let shown = id.to_string();
    assert_eq!(shown.parse::<EventId>(), Ok(id));
    assert_eq!(id.to_text().as_str(), shown);
    assert_eq!(id.to_text().as_bytes(), shown.as_bytes());
    assert_eq!(id.text_len(), shown.len());
    assert!(shown.len() <= EventId::MAX_LEN);
    let head = EventId::new(Epoch::from_u64(epoch), head_seq);
    let expected = if seq > head_seq {
        CursorRelation::BeyondHead
    } else {
        CursorRelation::Within
    };
    assert_eq!(id.relation_to(head), expected);
    let other = EventId::new(Epoch::from_u64(epoch ^ 1), head_seq);
    assert_eq!(id.relation_to(other), CursorRelation::OtherIncarnation);

    let Ok(text) = std::str::from_utf8(text) else {
        return;
    };
    let parsed = text.parse::<EventId>();
    assert_eq!(parsed.as_ref().ok(), reference(text).as_ref(), "{text:?}");
    match parsed {
        Ok(id) => assert_eq!(id.to_string(), text, "only the canonical form parses"),
        Err(ParseEventIdError::Empty) => assert!(text.is_empty()),
        Err(ParseEventIdError::TooLong { len }) => {
            assert_eq!(len, text.len());
            assert!(len > EventId::MAX_LEN);
        }
        Err(ParseEventIdError::Malformed) => assert!(!text.contains('-')),
        Err(error) => assert!(!error.to_string().is_empty()),
    }
});
