//! The long-poll load: pollers that each hold one long poll at a time on a
//! keep-alive HTTP/1.1 connection of their own (or as h2c streams spread
//! over a few connections), a publisher at a fixed rate, and a count of the
//! poll cycles completed against the server's CPU time.
//!
//! ```text
//! $ push-bench longpoll-load --server 127.0.0.1:40123 --server-pid 4242 \
//!     --pollers 100 --publishes 1000 --rate 100 --check-deliveries
//! longpoll-result pollers=100 published=1000 cycles=100000 empty=0 deliveries=100000 lost=0 disordered=0 gaps=0 ended=0 checked=1 connections=100 server_cpu_ticks=310 server_core_busy_ticks=322 ticks_per_second=100 window_ms=10012
//! ```
//!
//! 1. Each of `--pollers` pollers opens its connection (hyper's HTTP/1.1
//!    client; with `--protocol h2c`, the pollers share `--connections` h2c
//!    connections of the load's own, a stream per poll) and polls
//!    `GET /channels/{channel}/longpoll?timeout=0` once:
//!    answered at once with nothing new and the channel's head as cursor
//!    (PROTOCOL.md: a long poll whose hold passes answers no messages and
//!    the same cursor). Every poller thus starts at the same place, before
//!    the first publish.
//! 2. Once every poller has its cursor, and after a short settle, the load
//!    reads the server's CPU time from `/proc/PID/stat` (and how busy its
//!    core has been, from `/proc/stat`), lets the pollers go, and publishes
//!    `--publishes` text events of `--event-bytes` bytes at `--rate` per
//!    second, one `POST /channels/{channel}` at a time on a keep-alive
//!    connection of its own, over the same protocol. Event `n` carries
//!    `seq=n` (eight digits), padded with dots.
//! 3. Meanwhile each poller loops `GET
//!    /channels/{channel}/longpoll?after={cursor}&timeout={hold}`: push
//!    holds the poll until an event is published, answers it, and the
//!    poller polls again with the answer's `cursor`. Every answer is one
//!    **cycle**. An answer may carry several events.
//! 4. The measured window ends, with `--check-deliveries`, once every
//!    poller has the last event (or has ended, or `--within-secs` has
//!    passed since the last publish); without it (for a server that
//!    answers at once and delivers nothing, such as `hyper-ok`), once the
//!    last publish is answered. The load reads the server's CPU time again
//!    and prints one `longpoll-result` line ([`LongPollReport`]).
//!
//! With `--check-deliveries`, each poller must receive every event once, in
//! order: an event after a missing one counts the missing ones as lost, one
//! at or before an event already received counts as disordered, an answer
//! with `"gap":true` counts as a gap, and a poller whose poll fails, answers
//! another status than `200` or says `"closed":true` counts as ended (what
//! it did not receive, as lost). Without it the messages are not checked,
//! but a poller that fails still counts as ended.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, StatusCode};
use serde::Deserialize;
use tokio::sync::watch;

use crate::fanout::{event_data, wait_until, LoadProtocol, Publisher};
use crate::h2c::Connection;
use crate::http1::{self, KeepAlive};
use crate::{cpu, Error, Result};

/// The wait between the last poller getting its cursor and the first
/// publish, so that the server has finished setting the connections up.
const SETTLE: Duration = Duration::from_millis(500);

/// How much longer than its hold a long poll may take to be answered
/// before the poller gives up on it.
const ANSWER_MARGIN: Duration = Duration::from_secs(10);

/// The long-poll workload, as `longpoll-compare` and `longpoll-load` take it
/// on the command line.
#[derive(Debug, Clone, PartialEq, clap::Args)]
pub struct CycleShape {
    /// Pollers, each on a keep-alive HTTP/1.1 connection of its own (over
    /// h2c, spread over --connections).
    #[arg(long, default_value_t = 100)]
    pub pollers: usize,
    /// h2c connections the pollers are spread over (with --protocol h2c).
    #[arg(long, default_value_t = 10)]
    pub connections: usize,
    /// Events published.
    #[arg(long, default_value_t = 1000)]
    pub publishes: usize,
    /// Events published per second.
    #[arg(long, default_value_t = 100.0)]
    pub rate: f64,
    /// Bytes of data per event (at least 12: `seq=` and eight digits).
    #[arg(long, default_value_t = 64)]
    pub event_bytes: usize,
    /// The hold each long poll asks for (`?timeout=`), in seconds.
    #[arg(long, default_value_t = 30)]
    pub hold_secs: u64,
}

/// What to load the server with.
#[derive(Debug, Clone)]
pub struct LongPollOptions {
    /// The server's address, on loopback.
    pub server: SocketAddr,
    /// The server's process id, whose CPU time is read.
    pub server_pid: u32,
    /// The core the server is pinned to, whose busy time is read.
    pub server_core: usize,
    /// What the load speaks.
    pub protocol: LoadProtocol,
    /// The channel polled and published on.
    pub channel: String,
    /// The workload.
    pub shape: CycleShape,
    /// Whether every poller must receive every event once and in order
    /// (for push); without it, the window ends with the last publish.
    pub check_deliveries: bool,
    /// How long setting the pollers up, and the wait for deliveries after
    /// the last publish, may each take; publishing may take this much
    /// longer than `publishes / rate`.
    pub within: Duration,
    /// Whether each poller, once answered, polls again only after the next
    /// publish is answered: a server that answers at once then gets push's
    /// traffic (each publish, one poll from every poller), instead of as
    /// many polls as the client can send.
    pub paced: bool,
}

/// What a long-poll run measured. Its [`Display`](fmt::Display) is the
/// `longpoll-result` line, which [`LongPollReport::parse_line`] reads back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LongPollReport {
    /// Pollers.
    pub pollers: usize,
    /// Events published.
    pub published: usize,
    /// Long polls answered within the window, over all pollers.
    pub cycles: u64,
    /// Of those, answers with no message (a hold that passed, or a server
    /// that answers at once).
    pub empty: u64,
    /// Events received, over all pollers, each once and in order.
    pub deliveries: u64,
    /// Events not received, when checked: `pollers × published −
    /// deliveries`; 0 when not checked.
    pub lost: u64,
    /// Events received out of order or twice.
    pub disordered: u64,
    /// Answers with `"gap":true`.
    pub gaps: u64,
    /// Pollers that stopped before their last event: a poll failed,
    /// answered another status than `200`, or said the channel closed.
    pub ended: u64,
    /// Whether deliveries were checked.
    pub checked: bool,
    /// TCP connections the pollers opened: over HTTP/1.1 one each, more if
    /// the server closed some; over h2c, the connections they share.
    pub connections: u64,
    /// The server's CPU time over the window, in clock ticks.
    pub server_cpu_ticks: u64,
    /// How long the server's core was busy over the window, by any
    /// process, in clock ticks.
    pub server_core_busy_ticks: u64,
    /// Clock ticks per second.
    pub ticks_per_second: u64,
    /// The measured window, from the first publish to its end.
    pub window: Duration,
}

impl LongPollReport {
    /// The server's CPU time in the window, in seconds.
    pub fn server_cpu_seconds(&self) -> f64 {
        crate::cpu::ticks_to_seconds(self.server_cpu_ticks, self.ticks_per_second)
    }

    /// CPU seconds that other processes took on the server's core in the
    /// window.
    pub fn others_on_server_core_seconds(&self) -> f64 {
        crate::cpu::others_seconds(
            self.server_core_busy_ticks,
            self.server_cpu_ticks,
            self.ticks_per_second,
        )
    }

    /// Cycles per second of server CPU time; infinite when the server used
    /// less than a tick.
    pub fn cycles_per_cpu_second(&self) -> f64 {
        self.cycles as f64 / self.server_cpu_seconds()
    }

    /// Cycles per second of the window.
    pub fn cycles_per_second(&self) -> f64 {
        self.cycles as f64 / self.window.as_secs_f64()
    }

    /// What went wrong (`"2 lost, 0 out of order, 0 gaps, 1 pollers ended
    /// early"`), or `None` when every poller got every event once and in
    /// order (when checked) and none ended early.
    pub fn fault(&self) -> Option<String> {
        (self.lost > 0 || self.disordered > 0 || self.gaps > 0 || self.ended > 0).then(|| {
            format!(
                "{} lost, {} out of order, {} gaps, {} pollers ended early",
                self.lost, self.disordered, self.gaps, self.ended
            )
        })
    }

    /// Reads a `longpoll-result key=value …` line. `None` for any other
    /// line.
    ///
    /// ```
    /// use push_bench::longpoll::LongPollReport;
    ///
    /// let line = "longpoll-result pollers=2 published=3 cycles=6 empty=0 deliveries=6 \
    ///             lost=0 disordered=0 gaps=0 ended=0 checked=1 connections=2 \
    ///             server_cpu_ticks=5 server_core_busy_ticks=6 ticks_per_second=100 window_ms=60";
    /// let report = LongPollReport::parse_line(line).unwrap();
    /// assert_eq!(report.cycles_per_cpu_second(), 120.0);
    /// assert_eq!(report.cycles_per_second(), 100.0);
    /// assert_eq!(report.to_string(), line.split_whitespace().collect::<Vec<_>>().join(" "));
    /// ```
    pub fn parse_line(line: &str) -> Option<LongPollReport> {
        let fields = line.trim().strip_prefix("longpoll-result ")?;
        let fields: BTreeMap<&str, u64> = fields
            .split_whitespace()
            .map(|field| {
                let (key, value) = field.split_once('=')?;
                Some((key, value.parse().ok()?))
            })
            .collect::<Option<_>>()?;
        let field = |key: &str| fields.get(key).copied();
        Some(LongPollReport {
            pollers: usize::try_from(field("pollers")?).ok()?,
            published: usize::try_from(field("published")?).ok()?,
            cycles: field("cycles")?,
            empty: field("empty")?,
            deliveries: field("deliveries")?,
            lost: field("lost")?,
            disordered: field("disordered")?,
            gaps: field("gaps")?,
            ended: field("ended")?,
            checked: match field("checked")? {
                0 => false,
                1 => true,
                _ => return None,
            },
            connections: field("connections")?,
            server_cpu_ticks: field("server_cpu_ticks")?,
            server_core_busy_ticks: field("server_core_busy_ticks")?,
            ticks_per_second: field("ticks_per_second")?,
            window: Duration::from_millis(field("window_ms")?),
        })
    }
}

impl fmt::Display for LongPollReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "longpoll-result pollers={} published={} cycles={} empty={} deliveries={} lost={} \
             disordered={} gaps={} ended={} checked={} connections={} server_cpu_ticks={} \
             server_core_busy_ticks={} ticks_per_second={} window_ms={}",
            self.pollers,
            self.published,
            self.cycles,
            self.empty,
            self.deliveries,
            self.lost,
            self.disordered,
            self.gaps,
            self.ended,
            u8::from(self.checked),
            self.connections,
            self.server_cpu_ticks,
            self.server_core_busy_ticks,
            self.ticks_per_second,
            self.window.as_millis()
        )
    }
}

/// A long poll's answer: `{"messages":[…],"cursor":"…"}`, with `"gap":true`
/// or `"closed":true` when they apply (PROTOCOL.md, "Long polling").
/// Fields it does not know are ignored.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Answer {
    /// The events, oldest first.
    pub messages: Vec<Envelope>,
    /// Where to poll from next.
    pub cursor: String,
    /// A gap precedes the messages.
    #[serde(default)]
    pub gap: bool,
    /// The channel closed while the poll was held.
    #[serde(default)]
    pub closed: bool,
}

/// One event of an [`Answer`]: its id and its data (text, as the load
/// publishes it).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Envelope {
    /// The event's id.
    pub id: String,
    /// Its data.
    pub data: String,
}

impl Answer {
    /// Reads an answer from its JSON body.
    ///
    /// ```
    /// use push_bench::longpoll::Answer;
    ///
    /// let answer = Answer::parse(br#"{"messages":[{"id":"e-1","data":"seq=00000000"}],"cursor":"e-1"}"#).unwrap();
    /// assert_eq!(answer.cursor, "e-1");
    /// assert_eq!(answer.messages[0].data, "seq=00000000");
    /// ```
    ///
    /// # Errors
    ///
    /// When the body is not such a JSON object, or its cursor is not an id
    /// PROTOCOL.md allows (1 to 64 characters of `A-Z a-z 0-9 . _ ~ -`,
    /// which go into the next poll's query as they are).
    pub fn parse(body: &[u8]) -> Result<Answer> {
        let answer: Answer = serde_json::from_slice(body).map_err(|error| {
            Error::new(format!(
                "the answer {:?} is not a long-poll answer ({error})",
                String::from_utf8_lossy(&body[..body.len().min(200)])
            ))
        })?;
        let id_character =
            |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '~' | '-');
        if answer.cursor.is_empty()
            || answer.cursor.len() > 64
            || !answer.cursor.chars().all(id_character)
        {
            return Err(Error::new(format!(
                "the answer's cursor {:?} is not an id (1 to 64 of A-Z a-z 0-9 . _ ~ -)",
                answer.cursor
            )));
        }
        Ok(answer)
    }
}

/// Follows the events one poller receives, as the load publishes them
/// (event `n` carries `seq=n`, eight digits).
///
/// ```
/// use push_bench::longpoll::{Answer, EventOrder};
///
/// let mut order = EventOrder::new(2);
/// let answer = Answer::parse(br#"{"messages":[{"id":"a","data":"seq=00000000.."},{"id":"b","data":"seq=00000001.."}],"cursor":"b"}"#).unwrap();
/// let taken = order.take(&answer);
/// assert_eq!(taken.deliveries, 2);
/// assert!(taken.complete && order.is_complete());
/// ```
#[derive(Debug, Clone)]
pub struct EventOrder {
    publishes: usize,
    next: usize,
}

/// What one answer brought to a poller.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Taken {
    /// Events received once and in order.
    pub deliveries: u64,
    /// Events at or before one already received, or not the load's.
    pub disordered: u64,
    /// The last event came with this answer.
    pub complete: bool,
}

impl EventOrder {
    /// A poller that should receive events `0..publishes`.
    pub fn new(publishes: usize) -> Self {
        EventOrder { publishes, next: 0 }
    }

    /// Whether the last event has come.
    pub fn is_complete(&self) -> bool {
        self.next >= self.publishes
    }

    /// Takes the messages of one answer.
    pub fn take(&mut self, answer: &Answer) -> Taken {
        let mut taken = Taken::default();
        let was_complete = self.is_complete();
        for message in &answer.messages {
            let seq = message
                .data
                .strip_prefix("seq=")
                .and_then(|rest| rest.get(..8))
                .and_then(|digits| digits.parse::<usize>().ok());
            match seq {
                Some(seq) if seq >= self.next => {
                    taken.deliveries += 1;
                    self.next = seq + 1;
                }
                _ => taken.disordered += 1,
            }
        }
        taken.complete = !was_complete && self.is_complete();
        taken
    }
}

/// What every poller has done so far.
#[derive(Debug, Default)]
struct Tally {
    ready: AtomicUsize,
    cycles: AtomicU64,
    empty: AtomicU64,
    deliveries: AtomicU64,
    disordered: AtomicU64,
    gaps: AtomicU64,
    complete: AtomicUsize,
    ended: AtomicUsize,
    connections: AtomicU64,
    first_failure: Mutex<Option<String>>,
}

impl Tally {
    fn fail(&self, failure: String) {
        let mut first = self.first_failure.lock().unwrap_or_else(|p| p.into_inner());
        first.get_or_insert(failure);
    }

    fn failure(&self) -> Option<String> {
        self.first_failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// Runs the load as `options` say (see the module docs).
///
/// # Errors
///
/// When the server is not on a loopback address, an option is out of range,
/// a poller cannot get its first cursor within `options.within`, a publish
/// fails or publishing takes `options.within` longer than planned, or the
/// server's CPU time cannot be read. Lost events are not an error: the
/// report counts them.
pub async fn run(options: &LongPollOptions) -> Result<LongPollReport> {
    check(options)?;
    let shape = &options.shape;
    let tally = Arc::new(Tally::default());
    let (go_tx, go_rx) = watch::channel(Phase::Setup);
    let base = format!("/channels/{}/longpoll", options.channel);
    let mut shared = Vec::new();
    if options.protocol == LoadProtocol::H2c {
        for _ in 0..shape.connections {
            shared.push(Connection::open(options.server).await?);
        }
        tally
            .connections
            .fetch_add(shared.len() as u64, Ordering::Relaxed);
    }
    let mut pollers = Vec::with_capacity(shape.pollers);
    for poller in 0..shape.pollers {
        let connection = match shared.get(poller % shared.len().max(1)) {
            Some(shared) => PollConnection::H2c(shared.clone()),
            None => PollConnection::Http1(KeepAlive::new(options.server)),
        };
        pollers.push(tokio::spawn(poll(
            connection,
            base.clone(),
            shape.clone(),
            options.check_deliveries,
            options.paced,
            Arc::clone(&tally),
            go_rx.clone(),
        )));
    }
    let ready = wait_until(options.within, || {
        tally.failure().is_some() || tally.ready.load(Ordering::Relaxed) == shape.pollers
    })
    .await;
    if let Some(failure) = tally.failure() {
        return Err(Error::new(format!(
            "a poller failed before it had its cursor: {failure}"
        )));
    }
    if !ready {
        return Err(Error::new(format!(
            "only {} of {} pollers had their first cursor within {} s",
            tally.ready.load(Ordering::Relaxed),
            shape.pollers,
            options.within.as_secs_f64()
        )));
    }

    let mut publisher = match options.protocol {
        LoadProtocol::H2c => Publisher::H2c(Connection::open(options.server).await?),
        LoadProtocol::Http1 => Publisher::Http1(http1::Publisher::new(options.server)),
    };
    tokio::time::sleep(SETTLE).await;
    let core_before = cpu::core_busy(options.server_core)?;
    let before = cpu::cpu_time(options.server_pid)?;
    let cycles_before = tally.cycles.load(Ordering::Relaxed);
    let started = Instant::now();
    let _ = go_tx.send(Phase::Polling(0));
    let planned = Duration::from_secs_f64(shape.publishes as f64 / shape.rate);
    tokio::time::timeout(planned + options.within, async {
        let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / shape.rate));
        for seq in 0..shape.publishes {
            ticks.tick().await;
            publisher
                .publish(&options.channel, event_data(seq, shape.event_bytes))
                .await?;
            let _ = go_tx.send(Phase::Polling(seq as u64 + 1));
        }
        Ok::<_, Error>(())
    })
    .await
    .map_err(|_| {
        Error::new(format!(
            "{} publishes at {}/s took over {} s",
            shape.publishes,
            shape.rate,
            (planned + options.within).as_secs_f64()
        ))
    })??;
    if options.check_deliveries {
        wait_until(options.within, || {
            tally.complete.load(Ordering::Relaxed) + tally.ended.load(Ordering::Relaxed)
                >= shape.pollers
        })
        .await;
    }
    let after = cpu::cpu_time(options.server_pid)?;
    let core_after = cpu::core_busy(options.server_core)?;
    let cycles = tally.cycles.load(Ordering::Relaxed) - cycles_before;
    let window = started.elapsed();
    let _ = go_tx.send(Phase::Stop);
    // Pollers that answer at once see the stop at their next poll; one held
    // (a lost event) is left to the end of the process.
    let stopped = wait_until(Duration::from_secs(2), || {
        pollers.iter().all(|poller| poller.is_finished())
    })
    .await;
    if !stopped {
        for poller in &pollers {
            poller.abort();
        }
    }
    if let Some(failure) = tally.failure() {
        eprintln!("longpoll-load: a poller ended early; the first: {failure}");
    }

    let deliveries = tally.deliveries.load(Ordering::Relaxed);
    let expected = (shape.pollers * shape.publishes) as u64;
    Ok(LongPollReport {
        pollers: shape.pollers,
        published: shape.publishes,
        cycles,
        empty: tally.empty.load(Ordering::Relaxed),
        deliveries,
        lost: if options.check_deliveries {
            expected.saturating_sub(deliveries)
        } else {
            0
        },
        disordered: tally.disordered.load(Ordering::Relaxed),
        gaps: tally.gaps.load(Ordering::Relaxed),
        ended: tally.ended.load(Ordering::Relaxed) as u64,
        checked: options.check_deliveries,
        connections: tally.connections.load(Ordering::Relaxed),
        server_cpu_ticks: after.ticks.saturating_sub(before.ticks),
        server_core_busy_ticks: core_after.ticks.saturating_sub(core_before.ticks),
        ticks_per_second: after.ticks_per_second,
        window,
    })
}

fn check(options: &LongPollOptions) -> Result<()> {
    if !options.server.ip().is_loopback() {
        return Err(Error::new(format!(
            "{} is not a loopback address; the benchmark connects to loopback only",
            options.server
        )));
    }
    let shape = &options.shape;
    if shape.pollers == 0 || shape.publishes == 0 {
        return Err(Error::new(
            "nothing to measure: give at least one poller and one publish",
        ));
    }
    if options.protocol == LoadProtocol::H2c && shape.connections == 0 {
        return Err(Error::new(
            "--connections must be at least 1 over h2c: the pollers share them",
        ));
    }
    if !(shape.rate.is_finite() && shape.rate > 0.0) {
        return Err(Error::new(
            "--rate must be a positive number of events per second",
        ));
    }
    if shape.event_bytes < 12 {
        return Err(Error::new(
            "--event-bytes must be at least 12 (`seq=` and eight digits)",
        ));
    }
    if shape.hold_secs == 0 {
        return Err(Error::new(
            "--hold-secs must be at least 1: a long poll that is not held is a short poll",
        ));
    }
    Ok(())
}

/// Where the run is, as the pollers see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Getting the first cursor, then waiting.
    Setup,
    /// Polling, with this many events published so far.
    Polling(u64),
    /// The window is over: stop.
    Stop,
}

/// A poller's connection: its own over HTTP/1.1, a shared one over h2c.
enum PollConnection {
    Http1(KeepAlive),
    H2c(Connection),
}

impl PollConnection {
    /// `GET path`: the answer's status and body.
    async fn get(&mut self, path: &str) -> Result<(StatusCode, Bytes)> {
        match self {
            PollConnection::Http1(connection) => {
                connection.request(Method::GET, path, Bytes::new()).await
            }
            // Anything but a `200` is an error there, with its status.
            PollConnection::H2c(connection) => {
                let body = connection.get(path).await?;
                Ok((StatusCode::OK, Bytes::from(body.read_to_end().await?)))
            }
        }
    }

    /// TCP connections it opened itself (h2c's are opened for all pollers
    /// at once, and counted then).
    fn connections_opened(&self) -> u64 {
        match self {
            PollConnection::Http1(connection) => connection.connections_opened(),
            PollConnection::H2c(_) => 0,
        }
    }
}

/// One poller: its first cursor, then long polls until the last event (when
/// checking), the stop, or a failure.
async fn poll(
    mut connection: PollConnection,
    base: String,
    shape: CycleShape,
    check_deliveries: bool,
    paced: bool,
    tally: Arc<Tally>,
    mut phase: watch::Receiver<Phase>,
) {
    let first = exchange(&mut connection, &format!("{base}?timeout=0"), ANSWER_MARGIN).await;
    // Counted as they open, so a poller aborted while held still counts its.
    let mut connections = 0;
    let mut count_connections = |connection: &PollConnection| {
        let opened = connection.connections_opened();
        tally
            .connections
            .fetch_add(opened - connections, Ordering::Relaxed);
        connections = opened;
    };
    count_connections(&connection);
    let mut cursor = match first {
        Ok(answer) => answer.cursor,
        Err(error) => {
            tally.fail(error.to_string());
            return;
        }
    };
    tally.ready.fetch_add(1, Ordering::Relaxed);
    if phase
        .wait_for(|phase| *phase != Phase::Setup)
        .await
        .is_err()
    {
        return;
    }
    let mut order = EventOrder::new(shape.publishes);
    let bound = Duration::from_secs(shape.hold_secs) + ANSWER_MARGIN;
    let ended = loop {
        let published_before = match *phase.borrow() {
            Phase::Stop => break None,
            Phase::Polling(published) => published,
            Phase::Setup => 0,
        };
        let path = format!("{base}?after={cursor}&timeout={}", shape.hold_secs);
        let answer = exchange(&mut connection, &path, bound).await;
        count_connections(&connection);
        let answer = match answer {
            Ok(answer) => answer,
            Err(error) => break Some(error.to_string()),
        };
        tally.cycles.fetch_add(1, Ordering::Relaxed);
        if answer.messages.is_empty() {
            tally.empty.fetch_add(1, Ordering::Relaxed);
        }
        if check_deliveries {
            let taken = order.take(&answer);
            tally
                .deliveries
                .fetch_add(taken.deliveries, Ordering::Relaxed);
            tally
                .disordered
                .fetch_add(taken.disordered, Ordering::Relaxed);
            if answer.gap {
                tally.gaps.fetch_add(1, Ordering::Relaxed);
            }
            if taken.complete {
                tally.complete.fetch_add(1, Ordering::Relaxed);
                break None;
            }
        }
        if answer.closed {
            break Some(format!("GET {path}: the channel closed"));
        }
        cursor = answer.cursor;
        if paced {
            let next = phase
                .wait_for(|phase| match phase {
                    Phase::Polling(published) => *published > published_before,
                    Phase::Setup | Phase::Stop => true,
                })
                .await;
            if next.is_err() {
                break None;
            }
        }
    };
    if let Some(failure) = ended {
        tally.ended.fetch_add(1, Ordering::Relaxed);
        tally.fail(failure);
    }
}

/// One long poll: `GET path`, which must answer `200` with an [`Answer`]
/// within `bound`.
async fn exchange(connection: &mut PollConnection, path: &str, bound: Duration) -> Result<Answer> {
    let (status, body) = tokio::time::timeout(bound, connection.get(path))
        .await
        .map_err(|_| {
            Error::new(format!(
                "GET {path} was not answered within {} s",
                bound.as_secs_f64()
            ))
        })??;
    if status != StatusCode::OK {
        return Err(Error::new(format!(
            "GET {path} answered {status} {}, not 200",
            String::from_utf8_lossy(&body[..body.len().min(200)])
        )));
    }
    Answer::parse(&body).map_err(|error| Error::new(format!("GET {path}: {error}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(json: &str) -> Answer {
        Answer::parse(json.as_bytes()).unwrap()
    }

    #[test]
    fn reads_push_answers_and_refuses_others() {
        let held = answer(
            r#"{"messages":[{"id":"9f2c4e1a07b3d855-7","event":"greeting","data":"seq=00000006"}],"cursor":"9f2c4e1a07b3d855-7"}"#,
        );
        assert_eq!(held.cursor, "9f2c4e1a07b3d855-7");
        assert_eq!(held.messages.len(), 1);
        assert!(!held.gap && !held.closed);
        let gap = answer(r#"{"messages":[],"cursor":"e-3","gap":true,"closed":true}"#);
        assert!(gap.gap && gap.closed);
        for body in [
            "",
            "{}",
            r#"{"messages":[]}"#,
            r#"{"messages":[],"cursor":""}"#,
            r#"{"messages":[],"cursor":"a b"}"#,
            r#"{"messages":[],"cursor":"a&after=b"}"#,
            r#"{"error":"bad_cursor","message":"…"}"#,
            r#"{"messages":[{"id":"e-1"}],"cursor":"e-1"}"#,
        ] {
            assert!(Answer::parse(body.as_bytes()).is_err(), "{body:?}");
        }
        let long = format!(r#"{{"messages":[],"cursor":"{}"}}"#, "a".repeat(65));
        assert!(Answer::parse(long.as_bytes()).is_err());
    }

    #[test]
    fn events_are_counted_once_and_in_order() {
        let mut order = EventOrder::new(4);
        let taken = order.take(&answer(
            r#"{"messages":[{"id":"a","data":"seq=00000000.."},{"id":"c","data":"seq=00000002.."}],"cursor":"c"}"#,
        ));
        assert_eq!(
            taken,
            Taken {
                deliveries: 2,
                disordered: 0,
                complete: false
            },
            "0 and 2; 1 is lost"
        );
        let taken = order.take(&answer(
            r#"{"messages":[{"id":"c","data":"seq=00000002"},{"id":"b","data":"seq=00000001"},{"id":"x","data":"other"}],"cursor":"c"}"#,
        ));
        assert_eq!(taken.disordered, 3);
        assert_eq!(taken.deliveries, 0);
        let taken = order.take(&answer(r#"{"messages":[],"cursor":"c"}"#));
        assert_eq!(taken, Taken::default());
        let taken = order.take(&answer(
            r#"{"messages":[{"id":"d","data":"seq=00000003"}],"cursor":"d"}"#,
        ));
        assert!(taken.complete && order.is_complete());
        let taken = order.take(&answer(
            r#"{"messages":[{"id":"d","data":"seq=00000003"}],"cursor":"d"}"#,
        ));
        assert!(!taken.complete, "complete once");
        assert_eq!(taken.disordered, 1);
    }

    #[test]
    fn a_report_line_reads_back() {
        let report = LongPollReport {
            pollers: 100,
            published: 1000,
            cycles: 99_990,
            empty: 3,
            deliveries: 99_999,
            lost: 1,
            disordered: 0,
            gaps: 0,
            ended: 1,
            checked: true,
            connections: 100,
            server_cpu_ticks: 310,
            server_core_busy_ticks: 330,
            ticks_per_second: 100,
            window: Duration::from_millis(10_012),
        };
        assert_eq!(
            LongPollReport::parse_line(&report.to_string()),
            Some(report)
        );
        assert_eq!(
            report.fault().as_deref(),
            Some("1 lost, 0 out of order, 0 gaps, 1 pollers ended early")
        );
        assert!((report.others_on_server_core_seconds() - 0.2).abs() < 1e-9);
        let unchecked = LongPollReport {
            checked: false,
            lost: 0,
            ended: 0,
            ..report
        };
        assert_eq!(unchecked.fault(), None);
        assert_eq!(
            LongPollReport::parse_line(&unchecked.to_string()),
            Some(unchecked)
        );
        assert_eq!(LongPollReport::parse_line("held 10"), None);
        assert_eq!(
            LongPollReport::parse_line(&report.to_string().replace("checked=1", "checked=2")),
            None
        );
    }

    #[test]
    fn options_out_of_range_are_refused() {
        let options = LongPollOptions {
            server: "127.0.0.1:1".parse().unwrap(),
            server_pid: 1,
            server_core: 0,
            protocol: LoadProtocol::Http1,
            channel: "c".to_owned(),
            shape: CycleShape {
                pollers: 1,
                connections: 1,
                publishes: 1,
                rate: 1.0,
                event_bytes: 12,
                hold_secs: 1,
            },
            check_deliveries: true,
            within: Duration::from_secs(1),
            paced: false,
        };
        assert!(check(&options).is_ok());
        let refused = |change: fn(&mut LongPollOptions)| {
            let mut options = options.clone();
            change(&mut options);
            check(&options).unwrap_err().to_string()
        };
        assert!(refused(|o| o.server = "192.0.2.1:80".parse().unwrap()).contains("loopback"));
        assert!(refused(|o| o.shape.pollers = 0).contains("nothing to measure"));
        assert!(check(&LongPollOptions {
            shape: CycleShape {
                connections: 0,
                ..options.shape.clone()
            },
            ..options.clone()
        })
        .is_ok());
        assert!(refused(|o| {
            o.protocol = LoadProtocol::H2c;
            o.shape.connections = 0;
        })
        .contains("--connections"));
        assert!(refused(|o| o.shape.rate = 0.0).contains("--rate"));
        assert!(refused(|o| o.shape.rate = f64::NAN).contains("--rate"));
        assert!(refused(|o| o.shape.event_bytes = 11).contains("--event-bytes"));
        assert!(refused(|o| o.shape.hold_secs = 0).contains("--hold-secs"));
    }
}
