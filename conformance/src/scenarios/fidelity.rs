//! PROTOCOL.md point 5, fidelity: data and event names arrive byte-exact,
//! whatever the framing.

use super::Run;
use crate::scenario::{expect_events, Context, Outcome};
use crate::transport::StartAt;

/// The payloads of PROTOCOL.md point 5, as `(what, event name, data,
/// binary)`: every awkward byte the framings must carry, the largest as big
/// as `max_event_bytes` allows (up to 1 MiB).
pub fn fidelity_payloads(
    max_event_bytes: usize,
) -> Vec<(String, Option<&'static str>, Vec<u8>, bool)> {
    let large = max_event_bytes.min(1 << 20);
    let mut text = String::with_capacity(large);
    while text.len() + 8 <= large {
        text.push_str("line é\n");
    }
    vec![
        ("empty".into(), None, Vec::new(), false),
        ("LF".into(), None, b"one\ntwo\n".to_vec(), false),
        ("lone LF".into(), None, b"\n".to_vec(), false),
        ("CRLF".into(), None, b"one\r\ntwo".to_vec(), false),
        ("lone CR".into(), None, b"one\rtwo".to_vec(), false),
        ("NUL".into(), None, b"nul\0inside".to_vec(), false),
        (
            "multi-byte UTF-8".into(),
            None,
            "é ü 中文 😀".as_bytes().to_vec(),
            false,
        ),
        ("leading space".into(), None, b" lead".to_vec(), false),
        (
            "named".into(),
            Some("ünïcode name"),
            b"named".to_vec(),
            false,
        ),
        (
            "default name".into(),
            Some("message"),
            b"default".to_vec(),
            false,
        ),
        (
            format!("{} bytes of text", text.len()),
            None,
            text.into_bytes(),
            false,
        ),
        ("binary".into(), None, (0..=255u8).collect(), true),
        ("empty binary".into(), Some("bin"), Vec::new(), true),
        (
            format!("{large} bytes of binary"),
            None,
            (0..large).map(|i| (i * 7 % 251) as u8).collect(),
            true,
        ),
    ]
}

pub(super) async fn fidelity(ctx: &Context<'_>) -> Run {
    let channel = ctx.channel("fidelity");
    let mut session = ctx.open(&channel, StartAt::Now).await?;
    for (what, name, data, binary) in fidelity_payloads(ctx.limits.max_event_bytes as usize) {
        let id = ctx
            .control
            .publish(&channel, name, &data, binary)
            .await
            .map_err(|e| Outcome::fail(format!("publishing {what}"), e.to_string()))?;
        let event = expect_events(&mut session, std::slice::from_ref(&id))
            .await?
            .remove(0);
        if event.data != data {
            return Err(Outcome::fail(
                format!("{what}: {} bytes byte-exact", data.len()),
                format!("{} bytes: {:?}", event.data.len(), event),
            ));
        }
        let expected_name = name.filter(|n| *n != "message");
        if event.name.as_deref() != expected_name {
            return Err(Outcome::fail(
                format!("{what}: event name {expected_name:?}"),
                format!("{:?}", event.name),
            ));
        }
        if binary && !event.binary && !data.is_empty() {
            return Err(Outcome::fail(
                format!("{what}: marked binary"),
                "marked text",
            ));
        }
    }
    Ok(())
}
