//! PROTOCOL.md point 11, proxy-safe streams: headers at once, with the
//! headers that stop proxies buffering, and each event flushed when
//! published.

use super::{streams_only, Run};
use crate::scenario::{expect_events, Context, Outcome};
use crate::transport::StartAt;

pub(super) async fn proxy_safe_headers(ctx: &Context<'_>) -> Run {
    streams_only(
        ctx,
        "polls answer and end; nothing is held open for a proxy to buffer",
    )?;
    let channel = ctx.channel("headers");
    let session = ctx.open(&channel, StartAt::Now).await?;
    let Some(headers) = session.headers() else {
        return Err(Outcome::not_applicable(
            "the transport exposes no streaming response headers (a WebSocket's messages follow its handshake, not an HTTP body a proxy could buffer)",
        ));
    };
    for (name, value) in [("cache-control", "no-cache"), ("x-accel-buffering", "no")] {
        let got = headers.get(name).and_then(|v| v.to_str().ok());
        if got != Some(value) {
            return Err(Outcome::fail(
                format!("{name}: {value}"),
                format!("{got:?}"),
            ));
        }
    }
    Ok(())
}

pub(super) async fn flushed_on_publish(ctx: &Context<'_>) -> Run {
    streams_only(ctx, "a poll's answer is complete when sent")?;
    let channel = ctx.channel("flush");
    let mut session = ctx.open(&channel, StartAt::Now).await?;
    let id = ctx.publish(&channel, "alone").await?;
    expect_events(&mut session, &[id]).await?;
    Ok(())
}
