//! What a subscription yields: events and signals.

use std::fmt;

use crate::event::Event;
use crate::id::EventId;

/// One item of a subscription: an event, or a signal about the stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Item {
    /// A published event.
    Event(Event),
    /// A statement about the subscription's position or end.
    Signal(Signal),
}

/// A statement about a subscription, with the cursor it concerns.
///
/// Every signal carries a cursor the client can resume from (except after
/// [`Signal::Closed`], which says not to resume).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Signal {
    /// The first item of every subscription: where delivery stands, so that
    /// a client reconnecting before any event arrives loses nothing.
    Position(EventId),
    /// Events after the client's cursor are no longer retained, or the cursor
    /// belongs to another incarnation: some may have been missed. Delivery
    /// continues with the events after `cursor`, so resuming from it never
    /// meets the same gap again.
    Gap(EventId),
    /// The subscriber fell further behind than its bound; the subscription
    /// ends. `cursor` is the last event delivered: resume from it.
    Lagged(EventId),
    /// The channel's incarnation ended; the subscription ends. Do not resume
    /// with this cursor: the next subscription starts a new incarnation.
    Closed(EventId),
    /// The server is shutting down, or its channel source lost the store it
    /// mirrors; the subscription ends. Reconnect later with `cursor`.
    /// Servers add it on shutdown; a source yields it only when it can no
    /// longer deliver without a hole (push-redis, past its reconnect grace),
    /// so that the client resumes and meets the events or a gap.
    Shutdown(EventId),
}

impl Signal {
    /// The signal's name on the wire: `position`, `gap`, `lagged`, `closed`
    /// or `shutdown`.
    pub fn name(&self) -> &'static str {
        match self {
            Signal::Position(_) => "position",
            Signal::Gap(_) => "gap",
            Signal::Lagged(_) => "lagged",
            Signal::Closed(_) => "closed",
            Signal::Shutdown(_) => "shutdown",
        }
    }

    /// The cursor the signal carries.
    pub fn cursor(&self) -> EventId {
        match *self {
            Signal::Position(id)
            | Signal::Gap(id)
            | Signal::Lagged(id)
            | Signal::Closed(id)
            | Signal::Shutdown(id) => id,
        }
    }

    /// Whether the subscription ends after this signal.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            Signal::Lagged(_) | Signal::Closed(_) | Signal::Shutdown(_)
        )
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at {}", self.name(), self.cursor())
    }
}
