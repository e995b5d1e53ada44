//! What a scenario is, what it concludes, and the helpers scenarios share.

use std::fmt;
use std::time::Duration;

use futures_util::future::BoxFuture;

use crate::control::{ChannelState, Control, ServerLimits};
use crate::received::{Received, ReceivedEvent, SignalKind};
use crate::transport::{OpenError, Session, Shape, StartAt, Transport};

/// How long a scenario waits for one item before it fails.
pub const ITEM_TIMEOUT: Duration = Duration::from_secs(10);

/// One check of the semantics contract.
pub struct Scenario {
    /// A stable name, such as `resume_after_cursor`.
    pub name: &'static str,
    /// The contract point it checks (1 to 11, as in DESIGN.md).
    pub point: u8,
    /// What it checks and how, in one sentence.
    pub checks: &'static str,
    /// Runs the scenario against one transport.
    pub run: for<'a> fn(&'a Context<'a>) -> BoxFuture<'a, Result<(), Outcome>>,
}

impl fmt::Debug for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scenario")
            .field("name", &self.name)
            .field("point", &self.point)
            .finish()
    }
}

/// What a scenario concluded for one transport.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The contract holds.
    Pass,
    /// The contract is broken: what was expected and what arrived.
    Fail {
        /// What the contract requires.
        expected: String,
        /// What arrived instead.
        got: String,
    },
    /// The scenario does not apply, and why.
    NotApplicable(String),
}

impl Outcome {
    /// A failure.
    pub fn fail(expected: impl Into<String>, got: impl Into<String>) -> Outcome {
        Outcome::Fail {
            expected: expected.into(),
            got: got.into(),
        }
    }

    /// Not applicable, with the reason.
    pub fn not_applicable(reason: impl Into<String>) -> Outcome {
        Outcome::NotApplicable(reason.into())
    }
}

/// Everything a scenario can use.
pub struct Context<'a> {
    /// The transport under test.
    pub transport: &'a dyn Transport,
    /// Every transport in this run, for cross-technique checks.
    pub all: &'a [&'a dyn Transport],
    /// The server side.
    pub control: &'a dyn Control,
    /// The server's limits.
    pub limits: ServerLimits,
    pub(crate) run_id: String,
}

impl Context<'_> {
    /// A channel name unique to this run, scenario and transport.
    pub fn channel(&self, scenario: &str) -> String {
        format!("{}-{scenario}-{}", self.run_id, self.transport.name())
    }

    /// The transport's shape.
    pub fn shape(&self) -> Shape {
        self.transport.shape()
    }

    /// Opens a subscription, failing the scenario if it is refused.
    pub async fn open(&self, channel: &str, start: StartAt) -> Result<Box<dyn Session>, Outcome> {
        open_with(self.transport, channel, start).await
    }

    /// Publishes text, failing the scenario if the server refuses.
    pub async fn publish(&self, channel: &str, text: &str) -> Result<String, Outcome> {
        self.control
            .publish(channel, None, text.as_bytes(), false)
            .await
            .map_err(|e| Outcome::fail("the server accepts a publish", e.to_string()))
    }

    /// Publishes `count` numbered text events; returns their ids in order.
    pub async fn publish_many(&self, channel: &str, count: usize) -> Result<Vec<String>, Outcome> {
        let mut ids = Vec::with_capacity(count);
        for i in 0..count {
            ids.push(self.publish(channel, &format!("event {i}")).await?);
        }
        Ok(ids)
    }

    /// Describes a channel.
    pub async fn describe(&self, channel: &str) -> Result<ChannelState, Outcome> {
        self.control
            .describe(channel)
            .await
            .map_err(|e| Outcome::fail("the server describes the channel", e.to_string()))
    }
}

/// Opens a subscription on `transport`, failing the scenario if refused.
pub async fn open_with(
    transport: &dyn Transport,
    channel: &str,
    start: StartAt,
) -> Result<Box<dyn Session>, Outcome> {
    match tokio::time::timeout(ITEM_TIMEOUT, transport.open(channel, start.clone())).await {
        Ok(Ok(session)) => Ok(session),
        Ok(Err(error)) => Err(Outcome::fail(
            format!("{} opens from {start:?}", transport.name()),
            error.to_string(),
        )),
        Err(_) => Err(Outcome::fail(
            format!("{} opens from {start:?}", transport.name()),
            "no answer within 10 s",
        )),
    }
}

/// Opens a subscription that the server must refuse with `status` and `code`.
pub async fn expect_refused(
    transport: &dyn Transport,
    channel: &str,
    start: StartAt,
    status: u16,
    code: &str,
) -> Result<(), Outcome> {
    let expected = format!("{start:?} refused with {status} {code} before any stream");
    match tokio::time::timeout(ITEM_TIMEOUT, transport.open(channel, start.clone())).await {
        Ok(Err(OpenError::Refused {
            status: got_status,
            code: got_code,
        })) if got_status == status && got_code.as_deref() == Some(code) => Ok(()),
        Ok(Err(error)) => Err(Outcome::fail(expected, error.to_string())),
        Ok(Ok(_)) => Err(Outcome::fail(expected, "the subscription opened")),
        Err(_) => Err(Outcome::fail(expected, "no answer within 10 s")),
    }
}

/// The next item, waiting at most `within`; heartbeats included.
pub async fn next_within(
    session: &mut Box<dyn Session>,
    within: Duration,
) -> Result<Option<Received>, Outcome> {
    match tokio::time::timeout(within, session.next()).await {
        Ok(Ok(item)) => Ok(item),
        Ok(Err(error)) => Err(Outcome::fail("a readable subscription", error.to_string())),
        Err(_) => Err(Outcome::fail(
            "another item",
            format!("nothing within {} ms", within.as_millis()),
        )),
    }
}

/// The next item that is not a heartbeat.
pub async fn next(session: &mut Box<dyn Session>) -> Result<Option<Received>, Outcome> {
    loop {
        match next_within(session, ITEM_TIMEOUT).await? {
            Some(Received::Heartbeat) => continue,
            item => return Ok(item),
        }
    }
}

/// Reads events until `ids.len()` have arrived and checks they are exactly
/// `ids`, in order. A position signal may come first; any other signal, a
/// missing event, a duplicate or a reordering fails.
pub async fn expect_events(
    session: &mut Box<dyn Session>,
    ids: &[String],
) -> Result<Vec<ReceivedEvent>, Outcome> {
    let mut got: Vec<ReceivedEvent> = Vec::with_capacity(ids.len());
    while got.len() < ids.len() {
        match next(session).await {
            Ok(Some(Received::Event(event))) => {
                let index = got.len();
                if event.id != ids[index] {
                    return Err(Outcome::fail(
                        format!("event {} at position {index}", ids[index]),
                        format!(
                            "event {} ({})",
                            event.id,
                            describe_position(ids, &event.id, index)
                        ),
                    ));
                }
                got.push(event);
            }
            Ok(Some(Received::Signal(signal))) if signal.kind == SignalKind::Position => {
                if !got.is_empty() {
                    return Err(Outcome::fail(
                        "the position only before any event",
                        format!("a position signal after {} events", got.len()),
                    ));
                }
            }
            Ok(Some(other)) => {
                return Err(Outcome::fail(
                    format!("event {} at position {}", ids[got.len()], got.len()),
                    format!("{other:?}"),
                ))
            }
            Ok(None) => {
                return Err(Outcome::fail(
                    format!("{} events", ids.len()),
                    format!("the subscription ended after {}", got.len()),
                ))
            }
            Err(Outcome::Fail {
                expected,
                got: what,
            }) => {
                return Err(Outcome::fail(
                    format!("{expected} (event {} of {})", got.len() + 1, ids.len()),
                    what,
                ))
            }
            Err(other) => return Err(other),
        }
    }
    Ok(got)
}

fn describe_position(ids: &[String], id: &str, index: usize) -> String {
    match ids.iter().position(|known| known == id) {
        Some(at) if at < index => format!("a duplicate of position {at}"),
        Some(at) => format!("position {at}: events were skipped or reordered"),
        None => "not an id the publisher was given".to_owned(),
    }
}

/// Skips the position and reads a gap signal, failing if the first other
/// item is not a gap. Returns the gap's cursor, if the technique carries one.
pub async fn expect_gap(session: &mut Box<dyn Session>) -> Result<Option<String>, Outcome> {
    loop {
        match next(session).await? {
            Some(Received::Signal(signal)) if signal.kind == SignalKind::Position => {}
            Some(Received::Signal(signal)) if signal.kind == SignalKind::Gap => {
                return Ok(signal.cursor)
            }
            other => {
                return Err(Outcome::fail(
                    "a gap signal before the first event",
                    format!("{other:?}"),
                ))
            }
        }
    }
}
