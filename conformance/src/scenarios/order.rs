//! PROTOCOL.md point 2, order and completeness: every event once, in
//! publish order, under concurrent publishers too.

use futures_util::future::join_all;

use super::{within_history, Run};
use crate::received::{Received, SignalKind};
use crate::scenario::{expect_events, next, Context, Outcome};
use crate::transport::StartAt;

pub(super) async fn order_and_completeness(ctx: &Context<'_>) -> Run {
    let channel = ctx.channel("order");
    let mut session = ctx.open(&channel, StartAt::Now).await?;
    let ids = ctx.publish_many(&channel, within_history(ctx, 30)).await?;
    expect_events(&mut session, &ids).await?;
    Ok(())
}

pub(super) async fn concurrent_publishers(ctx: &Context<'_>) -> Run {
    let channel = ctx.channel("concurrent");
    let mut first = ctx.open(&channel, StartAt::Now).await?;
    let mut second = ctx.open(&channel, StartAt::Now).await?;
    let per_publisher = within_history(ctx, 30) / 3;
    let publishers = (0..3).map(|p| {
        let channel = channel.clone();
        async move {
            let mut ids = Vec::new();
            for i in 0..per_publisher {
                ids.push(
                    ctx.publish(&channel, &format!("publisher {p} event {i}"))
                        .await?,
                );
            }
            Ok::<_, Outcome>(ids)
        }
    });
    let mut by_publisher = Vec::new();
    for ids in join_all(publishers).await {
        by_publisher.push(ids?);
    }
    let total = per_publisher * 3;
    let mut sequences = Vec::new();
    for session in [&mut first, &mut second] {
        let mut got = Vec::new();
        while got.len() < total {
            match next(session).await? {
                Some(Received::Event(event)) => got.push(event.id),
                Some(Received::Signal(s)) if s.kind == SignalKind::Position => {}
                other => {
                    return Err(Outcome::fail(
                        format!("{total} events"),
                        format!("{other:?}"),
                    ))
                }
            }
        }
        for (p, ids) in by_publisher.iter().enumerate() {
            let seen: Vec<&String> = got.iter().filter(|id| ids.contains(id)).collect();
            let expected: Vec<&String> = ids.iter().collect();
            if seen != expected {
                return Err(Outcome::fail(
                    format!("publisher {p}'s events once each in its order: {expected:?}"),
                    format!("{seen:?}"),
                ));
            }
        }
        sequences.push(got);
    }
    if sequences[0] != sequences[1] {
        return Err(Outcome::fail(
            format!("both subscribers see one order: {:?}", sequences[0]),
            format!("{:?}", sequences[1]),
        ));
    }
    Ok(())
}
