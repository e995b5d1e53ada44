//! PROTOCOL.md point 1, identity: every event gets one id from its channel,
//! and that id is what every client receives.

use super::Run;
use crate::scenario::{expect_events, Context, Outcome};
use crate::transport::StartAt;

pub(super) async fn identity(ctx: &Context<'_>) -> Run {
    let channel = ctx.channel("identity");
    let mut session = ctx.open(&channel, StartAt::Now).await?;
    let mut ids = vec![ctx.publish(&channel, "text").await?];
    ids.push(
        ctx.control
            .publish(&channel, Some("named"), b"named", false)
            .await
            .map_err(|e| Outcome::fail("a named publish", e.to_string()))?,
    );
    ids.push(
        ctx.control
            .publish(&channel, None, &[0, 159, 146, 150], true)
            .await
            .map_err(|e| Outcome::fail("a binary publish", e.to_string()))?,
    );
    expect_events(&mut session, &ids).await?;
    Ok(())
}
