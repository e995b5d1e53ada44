//! PROTOCOL.md point 4, gaps are said, never hidden: a gap signal exactly
//! when the server cannot show nothing was missed, and malformed cursors
//! refused before any stream.

use super::{within_history, Run};
use crate::scenario::{expect_events, expect_gap, expect_refused, Context, Outcome};
use crate::transport::StartAt;

pub(super) async fn gap_when_history_exhausted(ctx: &Context<'_>) -> Run {
    let history = ctx.limits.history_events as usize;
    if history > 5_000 {
        return Err(Outcome::not_applicable(format!(
            "history_events is {history}; exhausting it would take too long"
        )));
    }
    let channel = ctx.channel("gap");
    let ids = ctx.publish_many(&channel, history + 3).await?;
    let mut session = ctx.open(&channel, StartAt::After(ids[0].clone())).await?;
    let cursor = expect_gap(&mut session).await?;
    expect_events(&mut session, &ids[3..]).await?;
    if let Some(cursor) = cursor {
        if cursor != ids[2] {
            return Err(Outcome::fail(
                format!(
                    "the gap carries the cursor delivery continues from, {}",
                    ids[2]
                ),
                cursor,
            ));
        }
        let mut again = ctx.open(&channel, StartAt::After(cursor)).await?;
        expect_events(&mut again, &ids[3..]).await?;
    }
    Ok(())
}

pub(super) async fn gap_for_another_incarnation(ctx: &Context<'_>) -> Run {
    let channel = ctx.channel("incarnation");
    let old = ctx.publish(&channel, "old").await?;
    ctx.control
        .close(&channel)
        .await
        .map_err(|e| Outcome::fail("the channel closes", e.to_string()))?;
    let new = ctx.publish_many(&channel, 2).await?;
    let mut session = ctx.open(&channel, StartAt::After(old)).await?;
    expect_gap(&mut session).await?;
    expect_events(&mut session, &new).await?;
    Ok(())
}

pub(super) async fn no_gap_when_covered(ctx: &Context<'_>) -> Run {
    let channel = ctx.channel("no-gap");
    let ids = ctx.publish_many(&channel, within_history(ctx, 3)).await?;
    let last = ids.last().cloned().unwrap_or_default();
    let mut mid = ctx.open(&channel, StartAt::After(ids[0].clone())).await?;
    expect_events(&mut mid, &ids[1..]).await?;
    let mut head = ctx.open(&channel, StartAt::After(last)).await?;
    let live = vec![ctx.publish(&channel, "live").await?];
    expect_events(&mut head, &live).await?;
    Ok(())
}

pub(super) async fn bad_cursors_refused(ctx: &Context<'_>) -> Run {
    let channel = ctx.channel("bad-cursor");
    let head = ctx.publish(&channel, "x").await?;
    expect_refused(
        ctx.transport,
        &channel,
        StartAt::After("not an id".into()),
        400,
        "bad_cursor",
    )
    .await?;
    expect_refused(
        ctx.transport,
        &channel,
        StartAt::LastEventId("!!".into()),
        400,
        "bad_cursor",
    )
    .await?;
    // Ids are opaque; the ahead check needs the in-memory `<epoch>-<seq>` form.
    let Some((epoch, seq)) = head.rsplit_once('-') else {
        return Ok(());
    };
    let Ok(seq) = seq.parse::<u64>() else {
        return Ok(());
    };
    expect_refused(
        ctx.transport,
        &channel,
        StartAt::After(format!("{epoch}-{}", seq + 5)),
        400,
        "cursor_ahead",
    )
    .await
}
