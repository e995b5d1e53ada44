//! PROTOCOL.md point 8, ends are distinct: a closed channel ends its
//! subscriptions with `closed`, a server shutting down with `shutdown` and
//! the cursor to resume from.

use std::time::Duration;

use push_core::Shape;

use super::Run;
use crate::received::{Received, SignalKind};
use crate::scenario::{expect_events, next, next_within, Context, Outcome, ITEM_TIMEOUT};
use crate::transport::{Session, StartAt};

pub(super) async fn closed(ctx: &Context<'_>) -> Run {
    if ctx.shape() == Shape::Poll {
        return Err(Outcome::not_applicable(
            "a short poll holds no subscription to close; its next poll meets the new incarnation's gap (gap_for_another_incarnation)",
        ));
    }
    let channel = ctx.channel("closed");
    let head = ctx.publish(&channel, "before").await?;
    let mut session = ctx.open(&channel, StartAt::After(head.clone())).await?;
    let last = vec![ctx.publish(&channel, "last").await?];
    expect_events(&mut session, &last).await?;
    // A long poll is held only while a request is out: read and close at once.
    let reading = async {
        match next(&mut session).await? {
            Some(Received::Signal(s)) if s.kind == SignalKind::Closed => {}
            other => return Err(Outcome::fail("the closed signal", format!("{other:?}"))),
        }
        match next(&mut session).await? {
            None => Ok(()),
            other => Err(Outcome::fail(
                "the end of the subscription after closed",
                format!("{other:?}"),
            )),
        }
    };
    let closing = async {
        wait_for_subscribers(ctx, &channel, 1).await?;
        ctx.control
            .close(&channel)
            .await
            .map_err(|e| Outcome::fail("the channel closes", e.to_string()))
    };
    let (read, closed) = tokio::join!(reading, closing);
    closed?;
    read
}

async fn wait_for_subscribers(ctx: &Context<'_>, channel: &str, at_least: u64) -> Run {
    let started = tokio::time::Instant::now();
    loop {
        if ctx.describe(channel).await?.subscribers >= at_least {
            return Ok(());
        }
        if started.elapsed() > ITEM_TIMEOUT {
            return Err(Outcome::fail(
                format!("{at_least} subscribers"),
                "fewer after 10 s",
            ));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Needs [`Capability::StopServer`](crate::Capability::StopServer): the
/// server stops once for every transport, when each has its subscription
/// waiting ([`Context::stop_server`]).
pub(super) async fn shutdown(ctx: &Context<'_>) -> Run {
    if ctx.shape() == Shape::Poll {
        return Err(Outcome::not_applicable(
            "a short poll holds nothing open; the server just stops answering",
        ));
    }
    let (session, last) = prepare_shutdown(ctx).await?;
    // Reading starts before the gate opens, so that a long poll is held by
    // the server when the shutdown starts.
    let (read, stopped) = tokio::join!(finish_shutdown(ctx, session, last), ctx.stop_server());
    stopped?;
    read
}

/// Opens a subscription that is waiting for what comes next; returns it with
/// the cursor its shutdown signal must carry.
async fn prepare_shutdown(ctx: &Context<'_>) -> Result<(Box<dyn Session>, String), Outcome> {
    let channel = ctx.channel("shutdown");
    let head = ctx.publish(&channel, "before").await?;
    let mut session = ctx.open(&channel, StartAt::After(head.clone())).await?;
    if ctx.shape() == Shape::Stream {
        let last = vec![ctx.publish(&channel, "last").await?];
        expect_events(&mut session, &last).await?;
        return Ok((session, last[0].clone()));
    }
    Ok((session, head))
}

/// Reads what the shutdown brings: a stream gets the shutdown signal with
/// its cursor and then ends; a held long poll is answered 503.
async fn finish_shutdown(ctx: &Context<'_>, mut session: Box<dyn Session>, last: String) -> Run {
    if ctx.shape() == Shape::LongPoll {
        loop {
            return match next_within(&mut session, ITEM_TIMEOUT).await {
                // A position synthesized by the client from the first answer.
                Ok(Some(Received::Signal(s))) if s.kind == SignalKind::Position => continue,
                // A hold that timed out before the shutdown began; the next
                // request is held again.
                Ok(Some(Received::Heartbeat)) => continue,
                Err(Outcome::Fail { got, .. })
                    if got.contains("503") && got.contains("shutting_down") =>
                {
                    Ok(())
                }
                other => Err(Outcome::fail(
                    "a held long poll answers 503 shutting_down",
                    format!("{other:?}"),
                )),
            };
        }
    }
    match next(&mut session).await {
        Ok(Some(Received::Signal(s))) if s.kind == SignalKind::Shutdown => {
            if s.cursor.as_deref() != Some(last.as_str()) {
                return Err(Outcome::fail(
                    format!("shutdown with cursor {last}"),
                    format!("{:?}", s.cursor),
                ));
            }
            match next(&mut session).await {
                Ok(None) => Ok(()),
                other => Err(Outcome::fail(
                    "the end after shutdown",
                    format!("{other:?}"),
                )),
            }
        }
        other => Err(Outcome::fail("the shutdown signal", format!("{other:?}"))),
    }
}
