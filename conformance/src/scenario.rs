//! What a scenario is, what it concludes, and the helpers scenarios share.

use std::fmt;
use std::time::Duration;

use futures_util::future::BoxFuture;
use push_core::Shape;

use crate::control::{ChannelState, Control, ServerLimits};
use crate::gate::StopTicket;
use crate::received::{Received, ReceivedEvent, SignalKind};
use crate::transport::{OpenError, Session, StartAt, Transport};

/// How long a scenario waits for one item before it fails.
pub const ITEM_TIMEOUT: Duration = Duration::from_secs(10);

/// One check of the semantics contract.
pub struct Scenario {
    /// A stable name, such as `resume_after_cursor`.
    pub name: &'static str,
    /// The contract point it checks: 1 to 11, as numbered in the section
    /// "The semantics contract" of the repository's PROTOCOL.md.
    pub point: u8,
    /// What it checks and how, in one sentence.
    pub checks: &'static str,
    /// What the scenario needs of the [`Control`] beyond publishing,
    /// closing and describing. Where the control lacks one
    /// ([`Control::can`]), the scenario is not applicable, for every
    /// transport, and does not run.
    pub needs: &'static [Capability],
    /// Runs the scenario against one transport.
    pub run: for<'a> fn(&'a Context<'a>) -> BoxFuture<'a, Result<(), Outcome>>,
}

impl fmt::Debug for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scenario")
            .field("name", &self.name)
            .field("point", &self.point)
            .field("needs", &self.needs)
            .finish()
    }
}

/// Something a scenario needs of the [`Control`] that not every control
/// can do; see [`Scenario::needs`] and [`Control::can`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Capability {
    /// The scenario stops the server (a graceful shutdown,
    /// [`Control::shutdown`]), so the control must be able to: a server in
    /// the same process can be, a server checked by URL cannot. Since
    /// nothing can run after it, the runner runs such a scenario after
    /// every other scenario of every transport, for all transports at once,
    /// and the transports share one shutdown ([`Context::stop_server`]).
    StopServer,
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
    /// This transport's place at the gate of a scenario that stops the
    /// server; `None` for every other scenario.
    pub(crate) stop: Option<StopTicket<'a>>,
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

    /// Stops the server, once for every transport running this scenario.
    ///
    /// The transports of a run share one server, so they meet here: the
    /// server stops ([`Control::shutdown`]) when every transport running
    /// the scenario has either called this or finished the scenario without
    /// calling it (a transport the scenario does not apply to holds no one
    /// back), and at the latest 30 s after the scenario started, so that a
    /// stuck transport cannot hold the others. A short pause comes first,
    /// so that requests the callers sent just before (a held long poll)
    /// reach the server before it stops: read concurrently with this call
    /// (`tokio::join!`), not after it. Returns once the shutdown has
    /// started.
    ///
    /// # Errors
    ///
    /// A failing [`Outcome`] when the scenario does not declare
    /// [`Capability::StopServer`] in its [`Scenario::needs`] (the server is
    /// then left running), or when [`Control::shutdown`] returns `None`
    /// although [`Control::can`] said the control can stop the server.
    pub async fn stop_server(&self) -> Result<(), Outcome> {
        match &self.stop {
            Some(ticket) => ticket.arrive().await,
            None => Err(Outcome::fail(
                "a scenario that stops the server declares Capability::StopServer in its needs",
                "it does not, so the server was left running",
            )),
        }
    }

    /// Marks the scenario finished for this transport, so that it no longer
    /// holds the gate of [`Context::stop_server`].
    pub(crate) fn leave_stop_gate(&self) {
        if let Some(ticket) = &self.stop {
            ticket.leave();
        }
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
