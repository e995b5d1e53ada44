//! The scenarios: every point of the semantics contract, each named after
//! what it checks. [`SCENARIOS`] is the one list every run goes through;
//! [`SHUTDOWN`] runs last, once, where the control can shut the server down.

use std::time::Duration;

use futures_util::future::{join_all, BoxFuture};

use crate::received::{Received, SignalKind};
use crate::scenario::{
    expect_events, expect_gap, expect_refused, next, next_within, open_with, Context, Outcome,
    ITEM_TIMEOUT,
};
use crate::transport::{Shape, StartAt};

type Run = Result<(), Outcome>;

macro_rules! scenario {
    ($name:ident, $point:expr, $checks:expr) => {
        crate::scenario::Scenario {
            name: stringify!($name),
            point: $point,
            checks: $checks,
            run: |ctx| Box::pin($name(ctx)),
        }
    };
}

/// Every scenario but shutdown, in the order they run.
pub static SCENARIOS: &[crate::scenario::Scenario] = &[
    scenario!(identity, 1, "each event arrives with the id its publish was given, text, named and binary alike"),
    scenario!(order_and_completeness, 2, "events published one after another arrive once each, in publish order"),
    scenario!(concurrent_publishers, 2, "with three concurrent publishers, two subscribers see every event once, in the same order, each publisher's events in its own order"),
    scenario!(resume_after_cursor, 3, "a subscription after cursor K gets exactly the events after K, then live ones"),
    scenario!(resume_with_last_event_id, 3, "the Last-Event-ID header resumes like ?after="),
    scenario!(resume_while_publishing, 3, "resuming while a publisher runs switches from history to live with no gap and no duplicate"),
    scenario!(resume_across_techniques, 3, "a cursor received over this technique resumes exactly on every other technique of the run"),
    scenario!(position_first, 3, "a stream states its position before anything else: the cursor for ?after=, the head for now"),
    scenario!(gap_when_history_exhausted, 4, "a cursor whose following events are no longer retained gets a gap, then the oldest retained events; the gap's cursor resumes without a second gap"),
    scenario!(gap_for_another_incarnation, 4, "after the channel is closed and used again, an old cursor gets a gap, then the new incarnation's events"),
    scenario!(no_gap_when_covered, 4, "a cursor whose following events are all retained, the head included, gets no gap"),
    scenario!(bad_cursors_refused, 4, "a malformed cursor is 400 bad_cursor and a cursor past the head is 400 cursor_ahead, before any stream"),
    scenario!(fidelity, 5, "empty, LF, CRLF, lone CR, NUL, multi-byte UTF-8, 1 MiB and binary data, and event names, arrive byte-exact"),
    scenario!(heartbeats, 6, "an idle subscription gets a heartbeat within the interval (a long poll: an empty answer with the same cursor), never seen as data"),
    scenario!(slow_consumer, 7, "a reader that stops is held to the bound (buffered_bytes), others keep receiving, and it then gets lagged (or is disconnected) after in-order events"),
    scenario!(closed, 8, "closing the channel ends the subscription with the closed signal after the events published before"),
    scenario!(fan_out, 9, "two hundred subscribers of one channel all receive the same sequence"),
    scenario!(stateless_polling, 10, "a poll cursor continues on a fresh client and connection: no session on the server"),
    scenario!(proxy_safe_headers, 11, "a stream's headers arrive at once with Cache-Control: no-cache and X-Accel-Buffering: no"),
    scenario!(flushed_on_publish, 11, "an event published to an idle stream arrives without waiting for more"),
];

/// The graceful-shutdown scenario (contract point 8), run once after the
/// others because it stops the server.
pub static SHUTDOWN: crate::scenario::Scenario = crate::scenario::Scenario {
    name: "shutdown",
    point: 8,
    checks: "a graceful shutdown ends each stream with the shutdown signal and its cursor; a held long poll answers 503",
    run: |_| Box::pin(async { Ok(()) }),
};

fn streams_only(ctx: &Context<'_>, why: &str) -> Run {
    match ctx.shape() {
        Shape::Stream => Ok(()),
        _ => Err(Outcome::not_applicable(why.to_owned())),
    }
}

async fn identity(ctx: &Context<'_>) -> Run {
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

/// How many events a scenario may publish and still find them all retained.
fn within_history(ctx: &Context<'_>, wanted: usize) -> usize {
    wanted.min(ctx.limits.history_events as usize)
}

async fn order_and_completeness(ctx: &Context<'_>) -> Run {
    let channel = ctx.channel("order");
    let mut session = ctx.open(&channel, StartAt::Now).await?;
    let ids = ctx.publish_many(&channel, within_history(ctx, 30)).await?;
    expect_events(&mut session, &ids).await?;
    Ok(())
}

async fn concurrent_publishers(ctx: &Context<'_>) -> Run {
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

async fn resume_after_cursor(ctx: &Context<'_>) -> Run {
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

async fn resume_with_last_event_id(ctx: &Context<'_>) -> Run {
    let channel = ctx.channel("last-event-id");
    let ids = ctx.publish_many(&channel, within_history(ctx, 4)).await?;
    let mut session = ctx
        .open(&channel, StartAt::LastEventId(ids[0].clone()))
        .await?;
    expect_events(&mut session, &ids[1..]).await?;
    Ok(())
}

async fn resume_while_publishing(ctx: &Context<'_>) -> Run {
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

async fn resume_across_techniques(ctx: &Context<'_>) -> Run {
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

async fn position_first(ctx: &Context<'_>) -> Run {
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

async fn gap_when_history_exhausted(ctx: &Context<'_>) -> Run {
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

async fn gap_for_another_incarnation(ctx: &Context<'_>) -> Run {
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

async fn no_gap_when_covered(ctx: &Context<'_>) -> Run {
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

async fn bad_cursors_refused(ctx: &Context<'_>) -> Run {
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

/// The payloads of contract point 5.
pub fn fidelity_payloads(
    max_event_bytes: usize,
) -> Vec<(String, Option<&'static str>, Vec<u8>, bool)> {
    let large = max_event_bytes.min(1 << 20);
    let mut text = String::with_capacity(large);
    while text.len() + 8 <= large {
        text.push_str("line é\n");
    }
    vec![
        ("empty".into(), None, Vec::new(), false),
        ("LF".into(), None, b"one\ntwo\n".to_vec(), false),
        ("lone LF".into(), None, b"\n".to_vec(), false),
        ("CRLF".into(), None, b"one\r\ntwo".to_vec(), false),
        ("lone CR".into(), None, b"one\rtwo".to_vec(), false),
        ("NUL".into(), None, b"nul\0inside".to_vec(), false),
        (
            "multi-byte UTF-8".into(),
            None,
            "é ü 中文 😀".as_bytes().to_vec(),
            false,
        ),
        ("leading space".into(), None, b" lead".to_vec(), false),
        (
            "named".into(),
            Some("ünïcode name"),
            b"named".to_vec(),
            false,
        ),
        (
            "default name".into(),
            Some("message"),
            b"default".to_vec(),
            false,
        ),
        (
            format!("{} bytes of text", text.len()),
            None,
            text.into_bytes(),
            false,
        ),
        ("binary".into(), None, (0..=255u8).collect(), true),
        ("empty binary".into(), Some("bin"), Vec::new(), true),
        (
            format!("{large} bytes of binary"),
            None,
            (0..large).map(|i| (i * 7 % 251) as u8).collect(),
            true,
        ),
    ]
}

async fn fidelity(ctx: &Context<'_>) -> Run {
    let channel = ctx.channel("fidelity");
    let mut session = ctx.open(&channel, StartAt::Now).await?;
    for (what, name, data, binary) in fidelity_payloads(ctx.limits.max_event_bytes as usize) {
        let id = ctx
            .control
            .publish(&channel, name, &data, binary)
            .await
            .map_err(|e| Outcome::fail(format!("publishing {what}"), e.to_string()))?;
        let event = expect_events(&mut session, std::slice::from_ref(&id))
            .await?
            .remove(0);
        if event.data != data {
            return Err(Outcome::fail(
                format!("{what}: {} bytes byte-exact", data.len()),
                format!("{} bytes: {:?}", event.data.len(), event),
            ));
        }
        let expected_name = name.filter(|n| *n != "message");
        if event.name.as_deref() != expected_name {
            return Err(Outcome::fail(
                format!("{what}: event name {expected_name:?}"),
                format!("{:?}", event.name),
            ));
        }
        if binary && !event.binary && !data.is_empty() {
            return Err(Outcome::fail(
                format!("{what}: marked binary"),
                "marked text",
            ));
        }
    }
    Ok(())
}

async fn heartbeats(ctx: &Context<'_>) -> Run {
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

async fn slow_consumer(ctx: &Context<'_>) -> Run {
    streams_only(
        ctx,
        "polls hold no connection between requests: the cursor is the only buffer",
    )?;
    let channel = ctx.channel("slow");
    let limits = ctx.limits;
    let bound = limits.subscriber_buffer_bytes;
    let size = (limits.max_event_bytes as usize).min(64 * 1024);
    let payload = vec![b'x'; size];
    let mut slow = ctx.open(&channel, StartAt::Now).await?;
    slow.pause();
    let mut reader = ctx.open(&channel, StartAt::Now).await?;
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

async fn closed(ctx: &Context<'_>) -> Run {
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

async fn fan_out(ctx: &Context<'_>) -> Run {
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

async fn stateless_polling(ctx: &Context<'_>) -> Run {
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

async fn proxy_safe_headers(ctx: &Context<'_>) -> Run {
    streams_only(
        ctx,
        "polls answer and end; nothing is held open for a proxy to buffer",
    )?;
    let channel = ctx.channel("headers");
    let session = ctx.open(&channel, StartAt::Now).await?;
    let Some(headers) = session.headers() else {
        return Err(Outcome::not_applicable(
            "the transport exposes no response headers",
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

async fn flushed_on_publish(ctx: &Context<'_>) -> Run {
    streams_only(ctx, "a poll's answer is complete when sent")?;
    let channel = ctx.channel("flush");
    let mut session = ctx.open(&channel, StartAt::Now).await?;
    let id = ctx.publish(&channel, "alone").await?;
    expect_events(&mut session, &[id]).await?;
    Ok(())
}

/// Runs the shutdown scenario for every transport at once: a subscription
/// per transport is waiting when the shutdown starts. `None` when the control
/// cannot shut the server down.
pub(crate) fn run_shutdown<'a>(contexts: &'a [Context<'a>]) -> BoxFuture<'a, Option<Vec<Outcome>>> {
    Box::pin(async move {
        let control = contexts.first()?.control;
        let shutdown = control.shutdown()?;
        let mut prepared = Vec::new();
        for ctx in contexts {
            prepared.push(prepare_shutdown(ctx).await);
        }
        let waiting = contexts
            .iter()
            .zip(prepared)
            .map(|(ctx, prepared)| async move {
                match prepared {
                    Ok(Some((session, last))) => finish_shutdown(ctx, session, last).await,
                    Ok(None) => Outcome::not_applicable(
                        "a short poll holds nothing open; the server just stops answering",
                    ),
                    Err(outcome) => outcome,
                }
            });
        let (outcomes, ()) = tokio::join!(join_all(waiting), async {
            // Let held long polls reach the server first.
            tokio::time::sleep(Duration::from_millis(300)).await;
            shutdown.await;
        });
        Some(outcomes)
    })
}

type Prepared = Option<(Box<dyn crate::transport::Session>, String)>;

async fn prepare_shutdown(ctx: &Context<'_>) -> Result<Prepared, Outcome> {
    if ctx.shape() == Shape::Poll {
        return Ok(None);
    }
    let channel = ctx.channel("shutdown");
    let head = ctx.publish(&channel, "before").await?;
    let mut session = ctx.open(&channel, StartAt::After(head.clone())).await?;
    if ctx.shape() == Shape::Stream {
        let last = vec![ctx.publish(&channel, "last").await?];
        expect_events(&mut session, &last).await?;
        return Ok(Some((session, last[0].clone())));
    }
    Ok(Some((session, head)))
}

async fn finish_shutdown(
    ctx: &Context<'_>,
    mut session: Box<dyn crate::transport::Session>,
    last: String,
) -> Outcome {
    if ctx.shape() == Shape::LongPoll {
        loop {
            return match next_within(&mut session, ITEM_TIMEOUT).await {
                // A position synthesized by the client from the first answer.
                Ok(Some(Received::Signal(s))) if s.kind == SignalKind::Position => continue,
                Err(Outcome::Fail { got, .. })
                    if got.contains("503") && got.contains("shutting_down") =>
                {
                    Outcome::Pass
                }
                other => Outcome::fail(
                    "a held long poll answers 503 shutting_down",
                    format!("{other:?}"),
                ),
            };
        }
    }
    match next(&mut session).await {
        Ok(Some(Received::Signal(s))) if s.kind == SignalKind::Shutdown => {
            if s.cursor.as_deref() != Some(last.as_str()) {
                return Outcome::fail(
                    format!("shutdown with cursor {last}"),
                    format!("{:?}", s.cursor),
                );
            }
            match next(&mut session).await {
                Ok(None) => Outcome::Pass,
                other => Outcome::fail("the end after shutdown", format!("{other:?}")),
            }
        }
        other => Outcome::fail("the shutdown signal", format!("{other:?}")),
    }
}
