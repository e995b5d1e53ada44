//! Event and channel names: each validator accepts exactly what the wire
//! contract's rules allow (checked against the rules read plainly), keeps
//! an accepted name unchanged, and refuses with the wire error code the
//! contract gives.
#![no_main]

use libfuzzer_sys::fuzz_target;
use push_core::wire::WireError;
use push_core::{ChannelName, ChannelNameError, Data, EventName, EventNameError, Message};

fn event_name_ok(name: &str) -> bool {
    let chars = name.chars().count();
    (1..=64).contains(&chars) && !name.contains(['\r', '\n', '\0']) && !name.starts_with("push.")
}

fn channel_name_ok(name: &str) -> bool {
    (1..=128).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.:".contains(&b))
        && name.bytes().any(|b| b != b'.')
}

fuzz_target!(|name: &str| {
    match EventName::new(name) {
        Ok(valid) => {
            assert!(event_name_ok(name), "{name:?} accepted");
            assert_eq!(valid.as_str(), name);
            assert_eq!(valid.to_string(), name);
            let message = Message::new(Data::text("")).with_event_name(valid);
            let expected = (name != EventName::DEFAULT).then_some(name);
            assert_eq!(message.name(), expected);
        }
        Err(error) => {
            assert!(!event_name_ok(name), "{name:?} refused: {error}");
            match &error {
                EventNameError::Empty => assert!(name.is_empty()),
                EventNameError::TooLong { chars } => assert_eq!(*chars, name.chars().count()),
                EventNameError::ForbiddenCharacter { found } => assert!(name.contains(*found)),
                EventNameError::Reserved => assert!(name.starts_with("push.")),
                _ => unreachable!("an error variant the target does not know: {error:?}"),
            }
            let code = WireError::from(push_core::Error::from(error.clone())).code();
            let expected = match error {
                EventNameError::Reserved => "reserved_event_name",
                _ => "bad_event_name",
            };
            assert_eq!(code.as_str(), expected);
            assert!(Message::new(Data::text("")).with_name(name).is_err());
        }
    }

    match ChannelName::new(name) {
        Ok(valid) => {
            assert!(channel_name_ok(name), "{name:?} accepted");
            assert_eq!(valid.as_str(), name);
            assert_eq!(valid.to_string(), name);
            assert_eq!(push_tower::__fuzz::channel_name(name).ok(), Some(valid));
        }
        Err(error) => {
            assert!(!channel_name_ok(name), "{name:?} refused: {error}");
            match error {
                ChannelNameError::Empty => assert!(name.is_empty()),
                ChannelNameError::TooLong { len } => assert_eq!(len, name.len()),
                ChannelNameError::ForbiddenCharacter { found } => assert!(name.contains(found)),
                ChannelNameError::DotsOnly => assert!(name.bytes().all(|b| b == b'.')),
                _ => unreachable!("an error variant the target does not know: {error:?}"),
            }
            let refused = push_tower::__fuzz::channel_name(name).unwrap_err();
            assert_eq!(refused.code().as_str(), "bad_channel");
            assert!(!refused.message().is_empty());
        }
    }
});
