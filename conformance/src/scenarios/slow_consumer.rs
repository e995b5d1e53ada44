//! PROTOCOL.md point 7, slow consumers are bounded: a reader that stops is
//! held to a bound in bytes, then told it lagged, without slowing others.

use super::{streams_only, Run};
use crate::received::{Received, SignalKind};
use crate::scenario::{expect_events, next_within, Context, Outcome, ITEM_TIMEOUT};
use crate::transport::StartAt;

pub(super) async fn slow_consumer(ctx: &Context<'_>) -> Run {
    streams_only(
        ctx,
        "polls hold no connection between requests: the cursor is the only buffer",
    )?;
    let channel = ctx.channel("slow");
    let limits = ctx.limits;
    let bound = limits.subscriber_buffer_bytes;
    let size = (limits.max_event_bytes as usize).min(64 * 1024);
    let payload = vec![b'x'; size];
    let mut reader = ctx.open(&channel, StartAt::Now).await?;
    // Paused last, just before publishing: a stopped WebSocket reader cannot
    // answer pings either, and a server may take one that stays idle and
    // silent for two heartbeats for a dead peer.
    let mut slow = ctx.open(&channel, StartAt::Now).await?;
    slow.pause();
    // Past the bound, then past everything the history may still cover for it.
    let history_cover = limits
        .history_bytes
        .min(limits.history_events * (size as u64 + 64));
    let budget_bytes = (64 << 20) + 2 * bound + history_cover;
    let max_events = (budget_bytes / size as u64) as usize;
    let mut published = Vec::new();
    let mut extra_after: Option<u64> = None;
    let mut sent_bytes = 0u64;
    for i in 0..max_events {
        let id = ctx
            .control
            .publish(&channel, None, &payload, false)
            .await
            .map_err(|e| Outcome::fail("publish", e.to_string()))?;
        published.push(id.clone());
        sent_bytes += size as u64;
        // The other subscriber keeps receiving meanwhile.
        expect_events(&mut reader, std::slice::from_ref(&id)).await?;
        if i % 16 == 0 {
            let state = ctx.describe(&channel).await?;
            if state.buffered_bytes > bound * state.subscribers.max(1) {
                return Err(Outcome::fail(
                    format!(
                        "buffered_bytes at most {bound} per subscriber ({} subscribers)",
                        state.subscribers
                    ),
                    format!("{} buffered", state.buffered_bytes),
                ));
            }
            if state.subscribers < 2 {
                break; // the slow reader was disconnected
            }
            if extra_after.is_none() && state.buffered_bytes >= bound {
                extra_after = Some(sent_bytes + history_cover + bound + 4 * size as u64);
            }
        }
        if extra_after.is_some_and(|at| sent_bytes >= at) {
            break;
        }
    }
    if extra_after.is_none() {
        return Err(Outcome::fail(
            format!("the stopped reader's queue reaches the bound of {bound} bytes"),
            format!("it never did after {} MiB published", sent_bytes >> 20),
        ));
    }
    // The slow reader reads again: in-order events, then lagged or the end.
    let mut last: Option<usize> = None;
    loop {
        match next_within(&mut slow, ITEM_TIMEOUT).await {
            Ok(Some(Received::Event(event))) => {
                let Some(at) = published.iter().position(|id| *id == event.id) else {
                    return Err(Outcome::fail("an event that was published", event.id));
                };
                if last.is_some_and(|last| at != last + 1) {
                    return Err(Outcome::fail(
                        "in-order events with no gap before lagged",
                        format!("event {at} after event {last:?}"),
                    ));
                }
                last = Some(at);
            }
            Ok(Some(Received::Signal(s))) if s.kind == SignalKind::Position => {}
            Ok(Some(Received::Signal(s))) if s.kind == SignalKind::Lagged => {
                let expected = last.map(|at| published[at].clone());
                if s.cursor.is_some() && s.cursor != expected {
                    return Err(Outcome::fail(
                        format!("lagged with the last delivered event {expected:?}"),
                        format!("{:?}", s.cursor),
                    ));
                }
                return Ok(());
            }
            Ok(Some(Received::Heartbeat)) => {}
            Ok(None) | Err(Outcome::Fail { .. })
                if last.is_some_and(|at| at + 1 < published.len()) =>
            {
                // Disconnected without a signal: allowed where the technique
                // cannot carry one, as long as nothing was skipped before.
                return Ok(());
            }
            Ok(other) => return Err(Outcome::fail("events, then lagged", format!("{other:?}"))),
            Err(outcome) => return Err(outcome),
        }
        if last == Some(published.len() - 1) {
            return Err(Outcome::fail(
                "lagged or a disconnect after falling past the bound",
                "every event, as if the bound held nothing back",
            ));
        }
    }
}
