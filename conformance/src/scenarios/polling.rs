//! PROTOCOL.md point 10, stateless polling: the cursor carries the
//! position, so no session on the server is needed.

use push_core::Shape;

use super::{within_history, Run};
use crate::scenario::{expect_events, Context, Outcome};
use crate::transport::StartAt;

pub(super) async fn stateless_polling(ctx: &Context<'_>) -> Run {
    if ctx.shape() == Shape::Stream {
        return Err(Outcome::not_applicable(
            "a stream holds its connection by design",
        ));
    }
    let channel = ctx.channel("stateless");
    let ids = ctx.publish_many(&channel, within_history(ctx, 6)).await?;
    // Each step is a new subscription: nothing but the cursor carries over.
    let mut cursor = None::<String>;
    for step in ids.chunks(2) {
        let start = match &cursor {
            None => StartAt::Earliest,
            Some(id) => StartAt::After(id.clone()),
        };
        let mut session = ctx.open(&channel, start).await?;
        let got = expect_events(&mut session, step).await?;
        cursor = got.last().map(|e| e.id.clone());
    }
    Ok(())
}
