//! The scenarios: every point of the semantics contract, each named after
//! what it checks. [`SCENARIOS`] is the one list every run goes through.
//!
//! The points are those of the section "The semantics contract" in the
//! repository's PROTOCOL.md; each file holds the scenarios of one point:
//!
//! | file | PROTOCOL.md point | scenarios |
//! |---|---|---|
//! | `identity.rs` | 1, identity | `identity` |
//! | `order.rs` | 2, order and completeness | `order_and_completeness`, `concurrent_publishers` |
//! | `resume.rs` | 3, resume | `resume_after_cursor`, `resume_with_last_event_id`, `resume_while_publishing`, `resume_across_techniques`, `position_first` |
//! | `gaps.rs` | 4, gaps are said | `gap_when_history_exhausted`, `gap_for_another_incarnation`, `no_gap_when_covered`, `bad_cursors_refused` |
//! | `fidelity.rs` | 5, fidelity | `fidelity` |
//! | `heartbeats.rs` | 6, heartbeats | `heartbeats` |
//! | `slow_consumer.rs` | 7, slow consumers are bounded | `slow_consumer` |
//! | `ends.rs` | 8, ends are distinct | `closed`, `shutdown` |
//! | `fan_out.rs` | 9, fan-out | `fan_out` |
//! | `polling.rs` | 10, stateless polling | `stateless_polling` |
//! | `streams.rs` | 11, proxy-safe streams | `proxy_safe_headers`, `flushed_on_publish` |
//!
//! ```
//! use conformance::scenarios::SCENARIOS;
//! use conformance::Capability;
//!
//! let shutdown = SCENARIOS.iter().find(|s| s.name == "shutdown").unwrap();
//! assert_eq!(shutdown.point, 8);
//! assert_eq!(shutdown.needs, [Capability::StopServer]);
//! assert!(SCENARIOS.iter().all(|s| (1..=11).contains(&s.point)));
//! ```

use push_core::Shape;

use crate::scenario::{Capability, Context, Outcome, Scenario};

mod ends;
mod fan_out;
mod fidelity;
mod gaps;
mod heartbeats;
mod identity;
mod order;
mod polling;
mod resume;
mod slow_consumer;
mod streams;

pub use fidelity::fidelity_payloads;

/// What a scenario function returns: `Ok` for a pass, the outcome otherwise.
type Run = Result<(), Outcome>;

/// A [`Scenario`] entry: `scenario!(topic::function, point, checks)`, with
/// `needs: [capabilities]` last where the scenario needs any.
macro_rules! scenario {
    ($topic:ident :: $name:ident, $point:expr, $checks:expr) => {
        scenario!($topic::$name, $point, $checks, needs: [])
    };
    ($topic:ident :: $name:ident, $point:expr, $checks:expr, needs: [$($need:expr),*]) => {
        Scenario {
            name: stringify!($name),
            point: $point,
            checks: $checks,
            needs: &[$($need),*],
            run: |ctx| Box::pin($topic::$name(ctx)),
        }
    };
}

/// Every scenario, in the order they run for each transport. Those that
/// need [`Capability::StopServer`] (`shutdown`, last here) run after every
/// other scenario of every transport, for all transports at once.
pub static SCENARIOS: &[Scenario] = &[
    scenario!(identity::identity, 1, "each event arrives with the id its publish was given, text, named and binary alike"),
    scenario!(order::order_and_completeness, 2, "events published one after another arrive once each, in publish order"),
    scenario!(order::concurrent_publishers, 2, "with three concurrent publishers, two subscribers see every event once, in the same order, each publisher's events in its own order"),
    scenario!(resume::resume_after_cursor, 3, "a subscription after cursor K gets exactly the events after K, then live ones"),
    scenario!(resume::resume_with_last_event_id, 3, "the Last-Event-ID header resumes like ?after="),
    scenario!(resume::resume_while_publishing, 3, "resuming while a publisher runs switches from history to live with no gap and no duplicate"),
    scenario!(resume::resume_across_techniques, 3, "a cursor received over this technique resumes exactly on every other technique of the run"),
    scenario!(resume::position_first, 3, "a stream states its position before anything else: the cursor for ?after=, the head for now"),
    scenario!(gaps::gap_when_history_exhausted, 4, "a cursor whose following events are no longer retained gets a gap, then the oldest retained events; the gap's cursor resumes without a second gap"),
    scenario!(gaps::gap_for_another_incarnation, 4, "after the channel is closed and used again, an old cursor gets a gap, then the new incarnation's events"),
    scenario!(gaps::no_gap_when_covered, 4, "a cursor whose following events are all retained, the head included, gets no gap"),
    scenario!(gaps::bad_cursors_refused, 4, "a malformed cursor is 400 bad_cursor and a cursor past the head is 400 cursor_ahead, before any stream"),
    scenario!(fidelity::fidelity, 5, "empty, LF, CRLF, lone CR, NUL, multi-byte UTF-8, 1 MiB and binary data, and event names, arrive byte-exact"),
    scenario!(heartbeats::heartbeats, 6, "an idle subscription gets a heartbeat within the interval (a long poll: an empty answer with the same cursor), never seen as data"),
    scenario!(slow_consumer::slow_consumer, 7, "a reader that stops is held to the bound (buffered_bytes), others keep receiving, and it then gets lagged (or is disconnected) after in-order events"),
    scenario!(ends::closed, 8, "closing the channel ends the subscription with the closed signal after the events published before"),
    scenario!(fan_out::fan_out, 9, "two hundred subscribers of one channel all receive the same sequence"),
    scenario!(polling::stateless_polling, 10, "a poll cursor continues on a fresh client and connection: no session on the server"),
    scenario!(streams::proxy_safe_headers, 11, "a stream's headers arrive at once with Cache-Control: no-cache and X-Accel-Buffering: no"),
    scenario!(streams::flushed_on_publish, 11, "an event published to an idle stream arrives without waiting for more"),
    scenario!(ends::shutdown, 8, "a graceful shutdown ends each stream with the shutdown signal and its cursor; a held long poll answers 503", needs: [Capability::StopServer]),
];

/// Ends a scenario as not applicable, with `why`, unless the transport is a
/// stream.
fn streams_only(ctx: &Context<'_>, why: &str) -> Run {
    match ctx.shape() {
        Shape::Stream => Ok(()),
        _ => Err(Outcome::not_applicable(why.to_owned())),
    }
}

/// How many events a scenario may publish and still find them all retained.
fn within_history(ctx: &Context<'_>, wanted: usize) -> usize {
    wanted.min(ctx.limits.history_events as usize)
}
