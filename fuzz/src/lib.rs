//! What the fuzz targets share: events and signals built from fuzzer
//! input, and what a client decoder must read back from them.

use arbitrary::Arbitrary;
use conformance::{Received, ReceivedEvent, ReceivedSignal, SignalKind};
use push_core::{Data, Epoch, Event, EventId, Message, Signal};

/// An event as the fuzzer describes it; names that break the rules are
/// left out, so every input makes an event.
#[derive(Arbitrary, Debug)]
pub struct EventInput {
    epoch: u64,
    seq: u64,
    name: Option<String>,
    data: DataInput,
}

/// Text or binary data.
#[derive(Arbitrary, Debug)]
pub enum DataInput {
    /// Text data.
    Text(String),
    /// Binary data.
    Binary(Vec<u8>),
}

impl EventInput {
    /// The event.
    pub fn event(&self) -> Event {
        let data = match &self.data {
            DataInput::Text(text) => Data::text(text.clone()),
            DataInput::Binary(bytes) => Data::binary(bytes.clone()),
        };
        let message = Message::new(data);
        let message = match &self.name {
            Some(name) => message.clone().with_name(name).unwrap_or(message),
            None => message,
        };
        Event::new(EventId::new(Epoch::from_u64(self.epoch), self.seq), message)
    }
}

/// A signal as the fuzzer describes it.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum SignalInput {
    /// `position`.
    Position(u64, u64),
    /// `gap`.
    Gap(u64, u64),
    /// `lagged`.
    Lagged(u64, u64),
    /// `closed`.
    Closed(u64, u64),
    /// `shutdown`.
    Shutdown(u64, u64),
}

impl SignalInput {
    /// The signal.
    pub fn signal(self) -> Signal {
        let id = |epoch, seq| EventId::new(Epoch::from_u64(epoch), seq);
        match self {
            SignalInput::Position(e, s) => Signal::Position(id(e, s)),
            SignalInput::Gap(e, s) => Signal::Gap(id(e, s)),
            SignalInput::Lagged(e, s) => Signal::Lagged(id(e, s)),
            SignalInput::Closed(e, s) => Signal::Closed(id(e, s)),
            SignalInput::Shutdown(e, s) => Signal::Shutdown(id(e, s)),
        }
    }
}

/// One item of a stream: an event, a signal or a heartbeat.
#[derive(Arbitrary, Debug)]
pub enum ItemInput {
    /// An event.
    Event(EventInput),
    /// A signal.
    Signal(SignalInput),
    /// A heartbeat.
    Heartbeat,
    /// The `shutdown` signal at an id, framed with a reconnect delay in
    /// milliseconds ([`Delivery::shutdown`](push_core::Delivery::shutdown)).
    Drain(u64, u64, u32),
}

/// What a client must read back from `event`: its id, name and data,
/// byte-exact, and whether the data was binary.
pub fn received_event(event: &Event) -> ReceivedEvent {
    ReceivedEvent {
        id: event.id().to_string(),
        name: event.name().map(str::to_owned),
        data: event.data().bytes().to_vec(),
        binary: !event.data().is_text(),
    }
}

/// What a client must read back from `signal`.
pub fn received_signal(signal: &Signal) -> Received {
    let kind = match signal {
        Signal::Position(_) => SignalKind::Position,
        Signal::Gap(_) => SignalKind::Gap,
        Signal::Lagged(_) => SignalKind::Lagged,
        Signal::Closed(_) => SignalKind::Closed,
        Signal::Shutdown(_) => SignalKind::Shutdown,
    };
    Received::Signal(ReceivedSignal {
        kind,
        cursor: Some(signal.cursor().to_string()),
        retry_ms: None,
    })
}

/// Cuts `bytes` into pieces at the offsets `cuts` names (taken modulo the
/// length), in order: the same stream as a network might deliver it.
pub fn pieces<'a>(bytes: &'a [u8], cuts: &[u16]) -> Vec<&'a [u8]> {
    let mut offsets: Vec<usize> = cuts
        .iter()
        .map(|&cut| usize::from(cut) % (bytes.len() + 1))
        .collect();
    offsets.sort_unstable();
    offsets.dedup();
    let mut out = Vec::with_capacity(offsets.len() + 1);
    let mut start = 0;
    for offset in offsets {
        out.push(&bytes[start..offset]);
        start = offset;
    }
    out.push(&bytes[start..]);
    out
}
