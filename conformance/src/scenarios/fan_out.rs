//! PROTOCOL.md point 9, fan-out: many subscribers of one channel all
//! receive the same sequence.

use futures_util::future::join_all;

use super::{within_history, Run};
use crate::scenario::{expect_events, Context, Outcome};
use crate::transport::StartAt;

pub(super) async fn fan_out(ctx: &Context<'_>) -> Run {
    let channel = ctx.channel("fan-out");
    let head = ctx.publish(&channel, "head").await?;
    let count = 200;
    let mut sessions = Vec::with_capacity(count);
    for _ in 0..count {
        sessions.push(ctx.open(&channel, StartAt::After(head.clone())).await?);
    }
    let ids = ctx.publish_many(&channel, within_history(ctx, 5)).await?;
    let readers = sessions.iter_mut().map(|session| {
        let ids = &ids;
        async move { expect_events(session, ids).await.map(|_| ()) }
    });
    for (i, result) in join_all(readers).await.into_iter().enumerate() {
        result.map_err(|outcome| match outcome {
            Outcome::Fail { expected, got } => {
                Outcome::fail(format!("subscriber {i}: {expected}"), got)
            }
            other => other,
        })?;
    }
    Ok(())
}
