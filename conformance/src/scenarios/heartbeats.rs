//! PROTOCOL.md point 6, heartbeats: an idle subscription is kept alive
//! within the interval, and a heartbeat is never data.

use std::time::Duration;

use push_core::Shape;

use super::Run;
use crate::received::{Received, SignalKind};
use crate::scenario::{expect_events, next_within, Context, Outcome, ITEM_TIMEOUT};
use crate::transport::StartAt;

pub(super) async fn heartbeats(ctx: &Context<'_>) -> Run {
    if ctx.shape() == Shape::Poll {
        return Err(Outcome::not_applicable(
            "a short poll answers at once; there is no idle connection to keep alive",
        ));
    }
    let channel = ctx.channel("heartbeat");
    let head = ctx.publish(&channel, "before").await?;
    let mut session = ctx.open(&channel, StartAt::After(head)).await?;
    let interval = Duration::from_millis(ctx.limits.heartbeat_ms);
    let within = match ctx.shape() {
        Shape::LongPoll => Duration::from_millis(ctx.limits.long_poll_max_ms).max(ITEM_TIMEOUT),
        _ => interval,
    };
    // Slack for a loaded machine, on top of the promised interval.
    let deadline = within + within / 2 + Duration::from_secs(1);
    let started = tokio::time::Instant::now();
    let mut heartbeats = 0;
    while heartbeats < 2 {
        let left = deadline.saturating_sub(started.elapsed() / (heartbeats + 1));
        match next_within(&mut session, left).await {
            Ok(Some(Received::Heartbeat)) => heartbeats += 1,
            Ok(Some(Received::Signal(s))) if s.kind == SignalKind::Position => {}
            Ok(other) => {
                return Err(Outcome::fail(
                    "only heartbeats on an idle channel",
                    format!("{other:?}"),
                ))
            }
            Err(_) => {
                return Err(Outcome::fail(
                    format!("a heartbeat within {} ms", within.as_millis()),
                    format!(
                        "{heartbeats} heartbeats in {} ms",
                        started.elapsed().as_millis()
                    ),
                ))
            }
        }
    }
    // Heartbeats moved nothing: the next event is the next one published.
    let id = ctx.publish(&channel, "after").await?;
    expect_events(&mut session, &[id]).await?;
    Ok(())
}
