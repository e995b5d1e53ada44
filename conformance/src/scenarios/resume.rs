//! PROTOCOL.md point 3, resume: a cursor gives exactly the events after it,
//! then live ones, on any technique; a stream states its position first.

use std::time::Duration;

use super::{streams_only, within_history, Run};
use crate::received::{Received, SignalKind};
use crate::scenario::{expect_events, next, open_with, Context, Outcome};
use crate::transport::StartAt;

pub(super) async fn resume_after_cursor(ctx: &Context<'_>) -> Run {
    let channel = ctx.channel("resume");
    let ids = ctx.publish_many(&channel, within_history(ctx, 6)).await?;
    let mut session = ctx.open(&channel, StartAt::After(ids[1].clone())).await?;
    expect_events(&mut session, &ids[2..]).await?;
    let live = vec![
        ctx.publish(&channel, "live 1").await?,
        ctx.publish(&channel, "live 2").await?,
    ];
    expect_events(&mut session, &live).await?;
    Ok(())
}

pub(super) async fn resume_with_last_event_id(ctx: &Context<'_>) -> Run {
    let channel = ctx.channel("last-event-id");
    let ids = ctx.publish_many(&channel, within_history(ctx, 4)).await?;
    let mut session = ctx
        .open(&channel, StartAt::LastEventId(ids[0].clone()))
        .await?;
    expect_events(&mut session, &ids[1..]).await?;
    Ok(())
}

pub(super) async fn resume_while_publishing(ctx: &Context<'_>) -> Run {
    let channel = ctx.channel("handover");
    let total = within_history(ctx, 40);
    let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel();
    let publisher = {
        let channel = channel.clone();
        async move {
            let mut ids = Vec::new();
            for i in 0..total {
                let id = ctx.publish(&channel, &format!("event {i}")).await?;
                let _ = sender.send(id.clone());
                ids.push(id);
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            Ok::<_, Outcome>(ids)
        }
    };
    let subscriber = async {
        let mut early = Vec::new();
        while early.len() < 5 {
            match receiver.recv().await {
                Some(id) => early.push(id),
                None => break,
            }
        }
        let cursor = early
            .get(2)
            .cloned()
            .ok_or_else(|| Outcome::fail("five events published", "fewer"))?;
        let mut session = ctx.open(&channel, StartAt::After(cursor)).await?;
        let mut got = Vec::new();
        while got.len() < total - 3 {
            match next(&mut session).await? {
                Some(Received::Event(event)) => got.push(event.id),
                Some(Received::Signal(s)) if s.kind == SignalKind::Position => {}
                other => {
                    return Err(Outcome::fail(
                        format!("{} events", total - 3),
                        format!("{other:?}"),
                    ))
                }
            }
        }
        Ok::<_, Outcome>(got)
    };
    let (published, received) = tokio::join!(publisher, subscriber);
    let published = published?;
    let received = received?;
    if received != published[3..] {
        return Err(Outcome::fail(
            format!("exactly the events after the cursor: {:?}", &published[3..]),
            format!("{received:?}"),
        ));
    }
    Ok(())
}

pub(super) async fn resume_across_techniques(ctx: &Context<'_>) -> Run {
    let others: Vec<_> = ctx
        .all
        .iter()
        .filter(|t| t.name() != ctx.transport.name())
        .collect();
    if others.is_empty() {
        return Err(Outcome::not_applicable("only one technique in this run"));
    }
    let channel = ctx.channel("across");
    let ids = ctx.publish_many(&channel, within_history(ctx, 5)).await?;
    let mut session = ctx.open(&channel, StartAt::Earliest).await?;
    let seen = expect_events(&mut session, &ids[..2]).await?;
    let cursor = seen[1].id.clone();
    for other in others {
        let mut resumed = open_with(*other, &channel, StartAt::After(cursor.clone())).await?;
        expect_events(&mut resumed, &ids[2..])
            .await
            .map_err(|outcome| match outcome {
                Outcome::Fail { expected, got } => {
                    Outcome::fail(format!("on {}: {expected}", other.name()), got)
                }
                other => other,
            })?;
    }
    Ok(())
}

pub(super) async fn position_first(ctx: &Context<'_>) -> Run {
    streams_only(
        ctx,
        "polls state their position as the answer's cursor, checked by resume_after_cursor",
    )?;
    let channel = ctx.channel("position");
    let head = ctx.publish(&channel, "head").await?;
    for (start, expected) in [
        (StartAt::Now, head.clone()),
        (StartAt::After(head.clone()), head.clone()),
    ] {
        let mut session = ctx.open(&channel, start.clone()).await?;
        match next(&mut session).await? {
            Some(Received::Signal(signal)) if signal.kind == SignalKind::Position => {
                if signal.cursor.as_deref() != Some(expected.as_str()) {
                    return Err(Outcome::fail(
                        format!("position {expected} for {start:?}"),
                        format!("{:?}", signal.cursor),
                    ));
                }
            }
            other => {
                return Err(Outcome::fail(
                    format!("a position signal first for {start:?}"),
                    format!("{other:?}"),
                ))
            }
        }
    }
    Ok(())
}
