//! The reconnect soak: many subscribers on every technique, their
//! connections cut at random and resumed from their cursors while events
//! are published, each counted; and push-server's memory before, during
//! and after.
//!
//! ```text
//! $ push-bench soak --subscribers 1000 --events 100000 --seed 7
//! ```
//!
//! 1. It starts `push-server` (next to `push-bench`) pinned to core 0, with
//!    history large enough that every resume lands within it
//!    (`--history-events`, by default a channel's events), waits a
//!    moment and reads its resident memory: the **baseline**.
//! 2. It starts the subscribers, spread round-robin over every [`Kind`]:
//!    short and long polls, SSE, NDJSON and WebSocket over HTTP/1.1, and
//!    SSE, NDJSON, HTTP/2 server push and WebSocket (RFC 8441) over h2c,
//!    each on a connection of its own. Each first subscribes with
//!    `?from=earliest`, then keeps its **cursor** (the id of the last event
//!    it counted, or the position) and, after a random time (uniform up to
//!    twice `--cut-after-ms`, drawn from a generator seeded with `--seed`
//!    and the subscriber's number), cuts its connection (TCP, without a
//!    goodbye) and resumes: SSE with `Last-Event-ID`, every other technique
//!    with `?after=<cursor>`. A stream the server ends (`lagged`,
//!    `shutdown`) is resumed the same way.
//! 3. Once every subscriber has its first position, it publishes
//!    `--events` events at `--rate` per second, spread over `--channels`
//!    channels with a publisher each (event `n` of a channel carries
//!    `seq=n`; each subscriber follows one channel), reading the server's
//!    memory as it goes: the **peak**.
//! 4. Each subscriber stops once it has the last event. When all have (or
//!    `--within-secs` after the last publish), it waits until the channels
//!    have no subscriber left and reads the memory (**left**), deletes the
//!    channels and reads it again (**closed**).
//!
//! With `--rounds N`, steps 2 to 4 run N times on the same server, on new
//! channels each time.
//!
//! Every subscriber must end with every event exactly once and in order:
//! an event after a missing one counts the missing ones as lost, one at or
//! before an event already counted as duplicated, and a `gap` signal is a
//! fault too. The memory **returns to its baseline** when `closed` after
//! the last round is at most `--memory-margin-kib` above the baseline
//! ([`SoakReport::reference_kib`]: before any client with one round, after
//! the first round with more). [`SoakReport::check`] fails the run
//! otherwise.

use std::fmt::{self, Write as _};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method, StatusCode};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::child::PinnedChild;
use crate::fanout::{event_data, wait_until, EventReader, Read};
use crate::h2_compare::SERVER_CORE;
use crate::h2c::{self, Connection};
use crate::http1::{self, KeepAlive};
use crate::proc::{self, Memory};
use crate::server::{parse_listening_line, Server};
use crate::technique::Technique;
use crate::{ws, Error, Result};

/// How long push-server may take to print the address it listens on.
const STARTUP: Duration = Duration::from_secs(30);

/// The wait before each memory reading that should see the server at rest.
const SETTLE: Duration = Duration::from_secs(2);

/// How often the memory is read while events are published.
const SAMPLE_EVERY: Duration = Duration::from_millis(100);

/// How long a short poller waits after an answer with nothing new.
const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// The hold a long poller asks for, in seconds.
const LONG_POLL_TIMEOUT_SECS: u32 = 5;

/// A subscriber's technique and protocol: every way push-server delivers a
/// channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Kind {
    /// Short polling, `GET /poll?after=`, over HTTP/1.1 keep-alive.
    Poll,
    /// Long polling, `GET /longpoll?after=&timeout=5`, over HTTP/1.1
    /// keep-alive.
    Longpoll,
    /// Server-Sent Events over HTTP/1.1, resumed with `Last-Event-ID`.
    Sse,
    /// NDJSON streaming over HTTP/1.1.
    Ndjson,
    /// WebSocket upgraded over HTTP/1.1.
    Ws,
    /// Server-Sent Events over h2c, resumed with `Last-Event-ID`.
    H2Sse,
    /// NDJSON streaming over h2c.
    H2Ndjson,
    /// HTTP/2 server push (`/push`) over h2c: each event a pushed response.
    H2Push,
    /// WebSocket over h2c (RFC 8441 extended `CONNECT`).
    H2Ws,
}

impl Kind {
    /// Every kind, in the order subscribers are dealt to them.
    pub const ALL: [Kind; 9] = [
        Kind::Poll,
        Kind::Longpoll,
        Kind::Sse,
        Kind::Ndjson,
        Kind::Ws,
        Kind::H2Sse,
        Kind::H2Ndjson,
        Kind::H2Push,
        Kind::H2Ws,
    ];

    /// Its name in reports.
    pub fn label(self) -> &'static str {
        match self {
            Kind::Poll => "short poll (HTTP/1.1)",
            Kind::Longpoll => "long poll (HTTP/1.1)",
            Kind::Sse => "SSE (HTTP/1.1)",
            Kind::Ndjson => "NDJSON (HTTP/1.1)",
            Kind::Ws => "WebSocket (HTTP/1.1)",
            Kind::H2Sse => "SSE (h2c)",
            Kind::H2Ndjson => "NDJSON (h2c)",
            Kind::H2Push => "HTTP/2 push (h2c)",
            Kind::H2Ws => "WebSocket (h2c)",
        }
    }

    /// The framing its reader expects: polls and pushed responses are
    /// read one JSON object at a time, as WebSocket messages are.
    fn technique(self) -> Technique {
        match self {
            Kind::Sse | Kind::H2Sse => Technique::Sse,
            Kind::Ndjson | Kind::H2Ndjson => Technique::Ndjson,
            Kind::Poll | Kind::Longpoll | Kind::Ws | Kind::H2Push | Kind::H2Ws => Technique::Ws,
        }
    }
}

/// How to soak the server.
#[derive(Debug, Clone)]
pub struct SoakOptions {
    /// Subscribers, dealt round-robin over `kinds`.
    pub subscribers: usize,
    /// The kinds of subscriber.
    pub kinds: Vec<Kind>,
    /// Channels: subscriber `n` follows channel `(n / kinds) % channels`,
    /// so that each has every kind.
    pub channels: usize,
    /// Events published, spread evenly over the channels.
    pub events: usize,
    /// Events published per second, over all channels.
    pub rate: f64,
    /// Bytes of data per event (at least 12: `seq=` and eight digits).
    pub event_bytes: usize,
    /// The mean time a connection lives before its subscriber cuts it.
    pub cut_after: Duration,
    /// Seeds every subscriber's random generator (with its number).
    pub seed: u64,
    /// push-server's `--history-events` (per channel).
    pub history_events: usize,
    /// Rounds on the same server; see [`SoakReport::reference_kib`].
    pub rounds: u32,
    /// How far above the baseline the memory may stay once the clients
    /// have left and the channels are closed, in KiB.
    pub memory_margin_kib: u64,
    /// How long subscribing, and the wait for deliveries after the last
    /// publish, may each take.
    pub within: Duration,
}

impl SoakOptions {
    /// The events published on channel `channel`: an even share, the
    /// first channels taking one more when they do not divide.
    pub fn events_on(&self, channel: usize) -> usize {
        self.events / self.channels + usize::from(channel < self.events % self.channels)
    }

    /// push-server's `--history-bytes`: room for every retained event
    /// (data and 64 bytes of overhead each), twice over, and at least the
    /// server's default of 16 MiB.
    pub fn history_bytes(&self) -> usize {
        (self.history_events * (self.event_bytes + 64) * 2).max(16 << 20)
    }
}

/// What one kind of subscriber received, summed over its subscribers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KindReport {
    /// The kind.
    pub kind: Kind,
    /// Its subscribers.
    pub subscribers: usize,
    /// Of those, the ones that received the last event.
    pub complete: usize,
    /// Events counted, each once and in order.
    pub delivered: u64,
    /// Events never counted: the events of each subscriber's channel,
    /// summed, less `delivered`.
    pub lost: u64,
    /// Events received again, or after a later one.
    pub duplicated: u64,
    /// `gap` signals (or poll answers with `"gap":true`).
    pub gaps: u64,
    /// Connections (or, for polls, keep-alive connections) opened.
    pub connections: u64,
    /// Connections the subscribers cut.
    pub cuts: u64,
    /// Streams the server ended (`lagged`, `shutdown`, or the stream
    /// closing) before the last event.
    pub server_ends: u64,
    /// Connections that failed to open or broke with an error (each
    /// retried).
    pub errors: u64,
}

impl KindReport {
    /// Whether every subscriber got every event exactly once, with no gap.
    pub fn is_clean(&self) -> bool {
        self.lost == 0
            && self.duplicated == 0
            && self.gaps == 0
            && self.complete == self.subscribers
    }
}

/// Resident memory of push-server over one round, in KiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryReport {
    /// Once every subscriber had its first position.
    pub subscribed_kib: u64,
    /// The highest reading while events were published and delivered.
    pub peak_kib: u64,
    /// Once every subscriber had left (the channels still retaining their
    /// events).
    pub left_kib: u64,
    /// After the channels were deleted.
    pub closed_kib: u64,
}

/// What `GET /channels/{name}` said once the subscribers had left, summed
/// over the channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ChannelInfo {
    /// `subscribers`.
    pub subscribers: u64,
    /// `buffered_bytes`.
    pub buffered_bytes: u64,
    /// `retained`.
    pub retained: u64,
}

impl ChannelInfo {
    fn add(&mut self, other: ChannelInfo) {
        self.subscribers += other.subscribers;
        self.buffered_bytes += other.buffered_bytes;
        self.retained += other.retained;
    }
}

/// What a soak measured: its rounds, on one server.
#[derive(Debug, Clone)]
pub struct SoakReport {
    /// The seed the subscribers' generators were seeded with.
    pub seed: u64,
    /// The server's resident memory before any client, in KiB.
    pub baseline_kib: u64,
    /// The kernel's high-water mark of it (`VmHWM`) at the end, in KiB.
    pub high_water_kib: u64,
    /// The allowed distance from the baseline, in KiB.
    pub memory_margin_kib: u64,
    /// Each round.
    pub rounds: Vec<RoundReport>,
}

/// One round: every subscriber subscribes, the events are published, the
/// subscribers leave and the channels are deleted.
#[derive(Debug, Clone)]
pub struct RoundReport {
    /// Its number, from 1.
    pub round: u32,
    /// Events published, over all channels.
    pub events: usize,
    /// The channels they were published on.
    pub channels: usize,
    /// Events every subscriber should have received, over all of them.
    pub expected: u64,
    /// One line per kind.
    pub kinds: Vec<KindReport>,
    /// The server's memory.
    pub memory: MemoryReport,
    /// The channels once the subscribers had left.
    pub left: ChannelInfo,
    /// From the first publish to the last.
    pub publish_time: Duration,
    /// From the last publish to the last subscriber's last event (or the
    /// deadline).
    pub drain_time: Duration,
    /// The first error of each kind that had one (a connection that failed
    /// to open or broke; each was retried).
    pub first_errors: Vec<(Kind, String)>,
}

impl SoakReport {
    /// What the memory after the last round is held to, in KiB: the
    /// baseline before any client when there is one round; with more, the
    /// reading after the first round's channels closed (the **warm
    /// baseline**: the allocator then holds the pages the first round
    /// made it take, and a leak shows as growth from there).
    pub fn reference_kib(&self) -> u64 {
        match self.rounds.as_slice() {
            [first, _, ..] => first.memory.closed_kib,
            _ => self.baseline_kib,
        }
    }

    /// Fails unless every subscriber of every round got every event
    /// exactly once with no gap, the channels had no subscriber and no
    /// buffered byte once the clients left, and the memory after the last
    /// round is within the margin of [`SoakReport::reference_kib`].
    ///
    /// # Errors
    ///
    /// As said, naming every fault.
    pub fn check(&self) -> Result<()> {
        let mut faults = Vec::new();
        for round in &self.rounds {
            for k in round.kinds.iter().filter(|k| !k.is_clean()) {
                faults.push(format!(
                    "round {}, {}: {} lost, {} duplicated, {} gaps, {} of {} subscribers incomplete",
                    round.round,
                    k.kind.label(),
                    k.lost,
                    k.duplicated,
                    k.gaps,
                    k.subscribers - k.complete,
                    k.subscribers
                ));
            }
            if round.left.subscribers > 0 || round.left.buffered_bytes > 0 {
                faults.push(format!(
                    "round {}: the channels still had {} subscribers and {} buffered bytes \
                     after every client left",
                    round.round, round.left.subscribers, round.left.buffered_bytes
                ));
            }
        }
        if let Some(last) = self.rounds.last() {
            if last.memory.closed_kib > self.reference_kib() + self.memory_margin_kib {
                faults.push(format!(
                    "the memory did not return to its baseline: {} KiB after the last round, \
                     {} KiB {}, more than the {} KiB margin",
                    last.memory.closed_kib,
                    self.reference_kib(),
                    match self.rounds.len() {
                        1 => "before any client",
                        _ => "after the first round",
                    },
                    self.memory_margin_kib
                ));
            }
        }
        match faults.is_empty() {
            true => Ok(()),
            false => Err(Error::new(format!(
                "the soak failed: {}",
                faults.join("; ")
            ))),
        }
    }

    /// The report as tables, for people.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for round in &self.rounds {
            round.render(self.seed, &mut out);
        }
        let last = self
            .rounds
            .last()
            .map_or(0, |round| round.memory.closed_kib);
        let _ = writeln!(
            out,
            "server RSS: {} KiB before any client (VmHWM at the end {} KiB); after the last round \
             {} KiB: {:+} KiB from {} ({} KiB), margin {} KiB",
            self.baseline_kib,
            self.high_water_kib,
            last,
            last as i64 - self.reference_kib() as i64,
            match self.rounds.len() {
                1 => "the baseline",
                _ => "the warm baseline, after round 1",
            },
            self.reference_kib(),
            self.memory_margin_kib
        );
        out
    }
}

impl RoundReport {
    fn render(&self, seed: u64, out: &mut String) {
        let total = |f: fn(&KindReport) -> u64| self.kinds.iter().map(f).sum::<u64>();
        let subscribers: usize = self.kinds.iter().map(|k| k.subscribers).sum();
        let _ = writeln!(
            out,
            "reconnect soak, round {}: {subscribers} subscribers, {} events over {} channels \
             ({} deliveries expected), seed {seed}; published in {:.1} s, drained {:.1} s after",
            self.round,
            self.events,
            self.channels,
            self.expected,
            self.publish_time.as_secs_f64(),
            self.drain_time.as_secs_f64()
        );
        let _ = writeln!(
            out,
            "{:<22} {:>5} {:>8} {:>12} {:>6} {:>6} {:>5} {:>7} {:>6} {:>7} {:>6}",
            "technique",
            "subs",
            "complete",
            "delivered",
            "lost",
            "dup",
            "gaps",
            "conns",
            "cuts",
            "srv-end",
            "errors"
        );
        let mut line = |label: &str, k: &KindReport| {
            let _ = writeln!(
                out,
                "{label:<22} {:>5} {:>8} {:>12} {:>6} {:>6} {:>5} {:>7} {:>6} {:>7} {:>6}",
                k.subscribers,
                k.complete,
                k.delivered,
                k.lost,
                k.duplicated,
                k.gaps,
                k.connections,
                k.cuts,
                k.server_ends,
                k.errors
            );
        };
        for kind in &self.kinds {
            line(kind.kind.label(), kind);
        }
        let all = KindReport {
            kind: Kind::Poll,
            subscribers,
            complete: self.kinds.iter().map(|k| k.complete).sum(),
            delivered: total(|k| k.delivered),
            lost: total(|k| k.lost),
            duplicated: total(|k| k.duplicated),
            gaps: total(|k| k.gaps),
            connections: total(|k| k.connections),
            cuts: total(|k| k.cuts),
            server_ends: total(|k| k.server_ends),
            errors: total(|k| k.errors),
        };
        line("all", &all);
        let m = &self.memory;
        let _ = writeln!(
            out,
            "server RSS: subscribed {} KiB, peak {} KiB, clients left {} KiB, channels closed {} KiB",
            m.subscribed_kib, m.peak_kib, m.left_kib, m.closed_kib
        );
        let _ = writeln!(
            out,
            "channels once the clients left: {} subscribers, {} buffered bytes, {} events retained",
            self.left.subscribers, self.left.buffered_bytes, self.left.retained
        );
        for (kind, error) in &self.first_errors {
            let _ = writeln!(out, "first error, {kind}: {error}");
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// Runs the soak as `options` say (see the module docs).
///
/// # Errors
///
/// When an option is out of range, push-server cannot be started or its
/// memory read, not every subscriber has its position within
/// `options.within`, a publish fails, or the channel cannot be described or
/// deleted. Lost or duplicated events are not an error here: the report
/// counts them, and [`SoakReport::check`] fails on them.
pub async fn run(options: &SoakOptions) -> Result<SoakReport> {
    check(options)?;
    let (program, mut args) = Server::Push.command()?;
    args.extend([
        "--history-events".to_owned(),
        options.history_events.to_string(),
        "--history-bytes".to_owned(),
        options.history_bytes().to_string(),
    ]);
    let mut server = PinnedChild::spawn("push-server", SERVER_CORE, &program, &args)?;
    let address = server
        .wait_for_line("the address it listens on", STARTUP, parse_listening_line)
        .await?;
    let pid = server.pid();
    tokio::time::sleep(SETTLE).await;
    let baseline = proc::memory(pid)?;
    let mut rounds = Vec::new();
    for round in 1..=options.rounds {
        rounds.push(soak_round(options, round, address, pid).await?);
    }
    let end = proc::memory(pid)?;
    server.ensure_running()?;
    server.stop().await?;
    Ok(SoakReport {
        seed: options.seed,
        baseline_kib: baseline.rss_kib,
        high_water_kib: end.hwm_kib,
        memory_margin_kib: options.memory_margin_kib,
        rounds,
    })
}

/// One round on the server at `address` (process `pid`).
async fn soak_round(
    options: &SoakOptions,
    round: u32,
    address: SocketAddr,
    pid: u32,
) -> Result<RoundReport> {
    let channels: Vec<String> = (0..options.channels)
        .map(|n| format!("soak-{round}-{n}"))
        .collect();
    let shared = Arc::new(Shared::new(&options.kinds));
    let (stop, stopped) = watch::channel(false);
    let mut subscribers = JoinSet::new();
    for number in 0..options.subscribers {
        let kind = options.kinds[number % options.kinds.len()];
        let on = (number / options.kinds.len()) % options.channels;
        let subscriber = Subscriber {
            kind,
            address,
            channel: channels[on].clone(),
            events: options.events_on(on),
            reader: EventReader::new(kind.technique(), options.events_on(on)),
            cursor: None,
            subscribed: false,
            rng: fastrand::Rng::with_seed(
                options.seed ^ (number as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
            ),
            cut_after: options.cut_after,
            tally: Tally::default(),
            shared: Arc::clone(&shared),
        };
        subscribers.spawn(subscriber.run(stopped.clone()));
    }
    let subscribed = wait_until(options.within, || {
        shared.subscribed.load(Ordering::Relaxed) == options.subscribers
    })
    .await;
    if !subscribed {
        let _ = stop.send(true);
        return Err(Error::new(format!(
            "only {} of {} subscribers had their position within {} s",
            shared.subscribed.load(Ordering::Relaxed),
            options.subscribers,
            options.within.as_secs_f64()
        )));
    }
    let subscribed_memory = proc::memory(pid)?;
    eprintln!(
        "soak, round {round}: {} subscribers have their position; publishing {} events at {}/s",
        options.subscribers, options.events, options.rate
    );

    let peak = Arc::new(AtomicU64::new(subscribed_memory.rss_kib));
    let sampler = tokio::spawn(sample_memory(pid, Arc::clone(&peak)));
    let started = Instant::now();
    let mut publishers = JoinSet::new();
    for (on, channel) in channels.iter().enumerate() {
        let (channel, events) = (channel.clone(), options.events_on(on));
        let every = Duration::from_secs_f64(options.channels as f64 / options.rate);
        let event_bytes = options.event_bytes;
        publishers.spawn(async move {
            let mut publisher = Connection::open(address).await?;
            let mut ticks = tokio::time::interval(every);
            for seq in 0..events {
                ticks.tick().await;
                publisher
                    .publish(&channel, event_data(seq, event_bytes))
                    .await?;
            }
            publisher.cut();
            Ok::<_, Error>(())
        });
    }
    while let Some(published) = publishers.join_next().await {
        published.map_err(|error| Error::new(format!("a publisher panicked: {error}")))??;
    }
    let published = Instant::now();
    eprintln!(
        "soak: published in {:.1} s; waiting for the subscribers",
        (published - started).as_secs_f64()
    );
    let deadline = tokio::time::sleep(options.within);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            joined = subscribers.join_next() => match joined {
                Some(_) => continue,
                None => break,
            },
            () = &mut deadline => {
                let _ = stop.send(true);
                while subscribers.join_next().await.is_some() {}
                break;
            }
        }
    }
    let drained = Instant::now();
    eprintln!(
        "soak: subscribers done {:.1} s after the last publish",
        (drained - published).as_secs_f64()
    );
    sampler.abort();
    let peak_kib = peak.load(Ordering::Relaxed).max(proc::memory(pid)?.rss_kib);

    // Every client has gone: wait for the server to see their connections
    // close, then let it settle.
    let mut info = KeepAlive::new(address);
    let until = Instant::now() + options.within;
    let left = loop {
        let mut left = ChannelInfo::default();
        for channel in &channels {
            left.add(describe(&mut info, channel).await?);
        }
        if left.subscribers == 0 || Instant::now() >= until {
            break left;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    drop(info);
    tokio::time::sleep(SETTLE).await;
    let left_memory = proc::memory(pid)?;
    let mut closer = KeepAlive::new(address);
    for channel in &channels {
        let (status, answer) = closer
            .request(
                Method::DELETE,
                &format!("/channels/{channel}"),
                Bytes::new(),
            )
            .await?;
        if status != StatusCode::NO_CONTENT {
            return Err(Error::new(format!(
                "DELETE /channels/{channel} answered {status} {}, not 204",
                String::from_utf8_lossy(&answer)
            )));
        }
    }
    drop(closer);
    tokio::time::sleep(SETTLE).await;
    let closed: Memory = proc::memory(pid)?;
    Ok(RoundReport {
        round,
        events: options.events,
        channels: options.channels,
        expected: shared.expected.load(Ordering::Relaxed),
        kinds: shared.reports(),
        memory: MemoryReport {
            subscribed_kib: subscribed_memory.rss_kib,
            peak_kib,
            left_kib: left_memory.rss_kib,
            closed_kib: closed.rss_kib,
        },
        left,
        publish_time: published - started,
        drain_time: drained - published,
        first_errors: shared.first_errors(),
    })
}

fn check(options: &SoakOptions) -> Result<()> {
    if options.channels == 0 || options.events < options.channels {
        return Err(Error::new(
            "give at least one channel, and at least as many events as channels",
        ));
    }
    if options.subscribers == 0 || options.events == 0 || options.kinds.is_empty() {
        return Err(Error::new(
            "nothing to soak: give at least one subscriber, event and technique",
        ));
    }
    if !(options.rate.is_finite() && options.rate > 0.0) {
        return Err(Error::new(
            "--rate must be a positive number of events per second",
        ));
    }
    if options.event_bytes < 12 {
        return Err(Error::new(
            "--event-bytes must be at least 12 (`seq=` and eight digits)",
        ));
    }
    if options.cut_after.is_zero() {
        return Err(Error::new("--cut-after-ms must be at least 1"));
    }
    if options.rounds == 0 {
        return Err(Error::new("--rounds must be at least 1"));
    }
    if options.history_events == 0 {
        return Err(Error::new("--history-events must be at least 1"));
    }
    Ok(())
}

/// Reads the server's memory every [`SAMPLE_EVERY`], keeping the highest.
async fn sample_memory(pid: u32, peak: Arc<AtomicU64>) {
    let mut every = tokio::time::interval(SAMPLE_EVERY);
    loop {
        every.tick().await;
        if let Ok(memory) = proc::memory(pid) {
            peak.fetch_max(memory.rss_kib, Ordering::Relaxed);
        }
    }
}

/// `GET /channels/{name}`, read.
async fn describe(connection: &mut KeepAlive, channel: &str) -> Result<ChannelInfo> {
    let path = format!("/channels/{channel}");
    let (status, answer) = connection.request(Method::GET, &path, Bytes::new()).await?;
    let parsed: Option<ChannelInfo> = (status == StatusCode::OK)
        .then(|| serde_json::from_slice::<serde_json::Value>(&answer).ok())
        .flatten()
        .and_then(|info| {
            Some(ChannelInfo {
                subscribers: info["subscribers"].as_u64()?,
                buffered_bytes: info["buffered_bytes"].as_u64()?,
                retained: info["retained"].as_u64()?,
            })
        });
    parsed.ok_or_else(|| {
        Error::new(format!(
            "GET {path} answered {status} {}, not 200 with the channel's figures",
            String::from_utf8_lossy(&answer)
        ))
    })
}

/// What every subscriber shares: how many have their position, and each
/// kind's sums.
#[derive(Debug)]
struct Shared {
    subscribed: AtomicUsize,
    /// Events the subscribers that finished should have received.
    expected: AtomicU64,
    kinds: Vec<(Kind, KindSums)>,
}

/// One kind's sums, added to as its subscribers finish.
#[derive(Debug, Default)]
struct KindSums {
    first_error: Mutex<Option<String>>,
    expected: AtomicU64,
    subscribers: AtomicUsize,
    complete: AtomicUsize,
    tally: [AtomicU64; 7],
}

impl Shared {
    fn new(kinds: &[Kind]) -> Self {
        let mut distinct: Vec<Kind> = Vec::new();
        for kind in kinds {
            if !distinct.contains(kind) {
                distinct.push(*kind);
            }
        }
        Shared {
            subscribed: AtomicUsize::new(0),
            expected: AtomicU64::new(0),
            kinds: distinct
                .into_iter()
                .map(|kind| (kind, KindSums::default()))
                .collect(),
        }
    }

    fn add(&self, kind: Kind, tally: &Tally, events: usize, complete: bool) {
        let Some((_, sums)) = self.kinds.iter().find(|(k, _)| *k == kind) else {
            return;
        };
        self.expected.fetch_add(events as u64, Ordering::Relaxed);
        sums.expected.fetch_add(events as u64, Ordering::Relaxed);
        sums.subscribers.fetch_add(1, Ordering::Relaxed);
        sums.complete
            .fetch_add(usize::from(complete), Ordering::Relaxed);
        for (sum, value) in sums.tally.iter().zip(tally.values()) {
            sum.fetch_add(value, Ordering::Relaxed);
        }
    }

    fn fail(&self, kind: Kind, error: Error) {
        if let Some((_, sums)) = self.kinds.iter().find(|(k, _)| *k == kind) {
            let mut first = sums.first_error.lock().unwrap_or_else(|p| p.into_inner());
            first.get_or_insert_with(|| error.to_string());
        }
    }

    fn first_errors(&self) -> Vec<(Kind, String)> {
        self.kinds
            .iter()
            .filter_map(|(kind, sums)| {
                let first = sums.first_error.lock().unwrap_or_else(|p| p.into_inner());
                Some((*kind, first.clone()?))
            })
            .collect()
    }

    fn reports(&self) -> Vec<KindReport> {
        self.kinds
            .iter()
            .map(|(kind, sums)| {
                let [delivered, duplicated, gaps, connections, cuts, server_ends, errors] =
                    sums.tally.each_ref().map(|sum| sum.load(Ordering::Relaxed));
                let subscribers = sums.subscribers.load(Ordering::Relaxed);
                KindReport {
                    kind: *kind,
                    subscribers,
                    complete: sums.complete.load(Ordering::Relaxed),
                    delivered,
                    lost: sums
                        .expected
                        .load(Ordering::Relaxed)
                        .saturating_sub(delivered),
                    duplicated,
                    gaps,
                    connections,
                    cuts,
                    server_ends,
                    errors,
                }
            })
            .collect()
    }
}

/// One subscriber's counts.
#[derive(Debug, Default)]
struct Tally {
    delivered: u64,
    duplicated: u64,
    gaps: u64,
    connections: u64,
    cuts: u64,
    server_ends: u64,
    errors: u64,
}

impl Tally {
    fn values(&self) -> [u64; 7] {
        [
            self.delivered,
            self.duplicated,
            self.gaps,
            self.connections,
            self.cuts,
            self.server_ends,
            self.errors,
        ]
    }
}

/// How one connection of a subscriber ended.
#[derive(Debug)]
enum Outcome {
    /// The last event came.
    Complete,
    /// The server ended the stream: a signal (`lagged`, `shutdown`,
    /// `closed`), or the stream closing without one.
    ServerEnded,
}

/// A poll's answer.
#[derive(Debug, Deserialize)]
struct PollAnswer {
    messages: Vec<Envelope>,
    cursor: String,
    #[serde(default)]
    gap: bool,
    #[serde(default)]
    closed: bool,
}

/// An event's envelope, as the soak publishes them (text, no name).
#[derive(Debug, Deserialize)]
struct Envelope {
    id: String,
    data: String,
}

/// A subscription being read: a response body on either protocol, or a
/// WebSocket on either.
enum Stream {
    Http1(http1::Body),
    H2c {
        body: h2c::Body,
        _connection: CutOnDrop,
    },
    Ws(Box<ws::Messages>),
    H2Ws(Box<ws::Messages<TokioIo<Upgraded>>>),
}

impl Stream {
    async fn next_chunk(&mut self) -> Result<Option<Bytes>> {
        match self {
            Stream::Http1(body) => body.next_chunk().await,
            Stream::H2c { body, .. } => body.next_chunk().await,
            Stream::Ws(messages) => messages.next_message().await,
            Stream::H2Ws(messages) => messages.next_message().await,
        }
    }
}

/// Cuts an h2c connection when dropped.
struct CutOnDrop(Connection);

impl Drop for CutOnDrop {
    fn drop(&mut self) {
        self.0.cut();
    }
}

/// One subscriber.
struct Subscriber {
    kind: Kind,
    address: SocketAddr,
    channel: String,
    /// Events published on it.
    events: usize,
    reader: EventReader,
    /// The id of the last event counted, or the position; `None` before
    /// the first.
    cursor: Option<String>,
    subscribed: bool,
    rng: fastrand::Rng,
    cut_after: Duration,
    tally: Tally,
    shared: Arc<Shared>,
}

impl Subscriber {
    /// Connects, reads, cuts and resumes until the last event has come or
    /// the run stops; then adds its counts to the kind's.
    async fn run(mut self, mut stop: watch::Receiver<bool>) {
        while !self.reader.is_complete() && !*stop.borrow() {
            let lifetime = self.cut_after.mul_f64(2.0 * self.rng.f64());
            self.tally.connections += 1;
            let outcome = tokio::select! {
                outcome = self.connection() => Some(outcome),
                () = tokio::time::sleep(lifetime) => None,
                _ = stop.wait_for(|stopped| *stopped) => break,
            };
            let pause = match outcome {
                Some(Ok(Outcome::Complete)) => break,
                Some(Ok(Outcome::ServerEnded)) => {
                    self.tally.server_ends += 1;
                    Duration::from_millis(self.rng.u64(0..20))
                }
                Some(Err(error)) => {
                    self.shared.fail(self.kind, error);
                    self.tally.errors += 1;
                    Duration::from_millis(self.rng.u64(50..150))
                }
                None => {
                    self.tally.cuts += 1;
                    Duration::from_millis(self.rng.u64(0..50))
                }
            };
            tokio::time::sleep(pause).await;
        }
        self.shared.add(
            self.kind,
            &self.tally,
            self.events,
            self.reader.is_complete(),
        );
    }

    /// One connection, read until it ends.
    async fn connection(&mut self) -> Result<Outcome> {
        self.reader.resume();
        match self.kind {
            Kind::Poll => self.poll(false).await,
            Kind::Longpoll => self.poll(true).await,
            Kind::H2Push => self.push().await,
            _ => match self.open().await {
                Ok(mut stream) => self.follow(&mut stream).await,
                Err(error) => Err(error),
            },
        }
    }

    /// `?after=<cursor>`, or `?from=earliest` the first time.
    fn start_query(&self) -> String {
        match &self.cursor {
            Some(cursor) => format!("?after={cursor}"),
            None => "?from=earliest".to_owned(),
        }
    }

    /// Opens a stream of a streaming kind.
    async fn open(&self) -> Result<Stream> {
        let base = |technique: Technique| technique.path(&self.channel);
        let last_event_id = || -> Vec<(HeaderName, HeaderValue)> {
            self.cursor
                .as_deref()
                .and_then(|cursor| HeaderValue::from_str(cursor).ok())
                .map(|cursor| (HeaderName::from_static("last-event-id"), cursor))
                .into_iter()
                .collect()
        };
        // SSE resumes with `Last-Event-ID`, as browsers do; the rest with
        // the query.
        let sse_path = match self.cursor {
            Some(_) => base(Technique::Sse),
            None => format!("{}?from=earliest", base(Technique::Sse)),
        };
        let query = self.start_query();
        Ok(match self.kind {
            Kind::Sse => {
                Stream::Http1(http1::stream_with(self.address, &sse_path, &last_event_id()).await?)
            }
            Kind::Ndjson => Stream::Http1(
                http1::stream(self.address, &format!("{}{query}", base(Technique::Ndjson))).await?,
            ),
            Kind::Ws => Stream::Ws(Box::new(
                ws::stream(self.address, &format!("{}{query}", base(Technique::Ws))).await?,
            )),
            Kind::H2Sse | Kind::H2Ndjson => {
                let mut connection = Connection::open(self.address).await?;
                let body = match self.kind {
                    Kind::H2Sse => connection.get_with(&sse_path, &last_event_id()).await,
                    _ => {
                        let path = format!("{}{query}", base(Technique::Ndjson));
                        connection.get(&path).await
                    }
                };
                let guard = CutOnDrop(connection);
                Stream::H2c {
                    body: body?,
                    _connection: guard,
                }
            }
            Kind::H2Ws => Stream::H2Ws(Box::new(
                ws::stream_h2(self.address, &format!("{}{query}", base(Technique::Ws))).await?,
            )),
            Kind::Poll | Kind::Longpoll | Kind::H2Push => {
                return Err(Error::new(format!("{} is not a plain stream", self.kind)))
            }
        })
    }

    /// Reads a stream until it ends.
    async fn follow(&mut self, stream: &mut Stream) -> Result<Outcome> {
        loop {
            let Some(chunk) = stream.next_chunk().await? else {
                return Ok(Outcome::ServerEnded);
            };
            let read = self.reader.feed(&chunk);
            if let Some(outcome) = self.take(read) {
                return Ok(outcome);
            }
        }
    }

    /// Counts what a chunk brought; `Some` when the connection is done.
    fn take(&mut self, read: Read) -> Option<Outcome> {
        if read.subscribed && !self.subscribed {
            self.subscribed = true;
            self.shared.subscribed.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(cursor) = read.cursor {
            self.cursor = Some(cursor);
        }
        self.tally.delivered += read.deliveries;
        self.tally.duplicated += read.disordered;
        if self.reader.is_complete() {
            return Some(Outcome::Complete);
        }
        match read.signal.as_deref() {
            None => None,
            Some("gap") => {
                self.tally.gaps += 1;
                None
            }
            Some(_) => Some(Outcome::ServerEnded),
        }
    }

    /// Short or long polls on one keep-alive connection until the last
    /// event has come or the channel closed.
    async fn poll(&mut self, long: bool) -> Result<Outcome> {
        let mut connection = KeepAlive::new(self.address);
        loop {
            let path = match long {
                false => format!("/channels/{}/poll{}", self.channel, self.start_query()),
                // The first answers at once, with the position.
                true => format!(
                    "/channels/{}/longpoll{}&timeout={}",
                    self.channel,
                    self.start_query(),
                    if self.cursor.is_some() {
                        LONG_POLL_TIMEOUT_SECS
                    } else {
                        0
                    }
                ),
            };
            let (status, answer) = connection.request(Method::GET, &path, Bytes::new()).await?;
            if status != StatusCode::OK {
                return Err(Error::new(format!(
                    "GET {path} answered {status} {}",
                    String::from_utf8_lossy(&answer)
                )));
            }
            let answer: PollAnswer = serde_json::from_slice(&answer).map_err(|error| {
                Error::new(format!("GET {path}: the answer is not a poll's: {error}"))
            })?;
            if !self.subscribed {
                self.subscribed = true;
                self.shared.subscribed.fetch_add(1, Ordering::Relaxed);
            }
            self.tally.gaps += u64::from(answer.gap);
            let empty = answer.messages.is_empty();
            for message in answer.messages {
                let read = self.reader.feed_event(&message.id, &message.data);
                if let Some(outcome) = self.take(read) {
                    return Ok(outcome);
                }
            }
            self.cursor = Some(answer.cursor);
            if answer.closed {
                return Ok(Outcome::ServerEnded);
            }
            if empty && !long {
                tokio::time::sleep(POLL_INTERVAL).await;
            }
        }
    }

    /// HTTP/2 server push: the parent stream's lines (the position and the
    /// signals) and one pushed response per event.
    async fn push(&mut self) -> Result<Outcome> {
        let mut connection = Connection::open_pushable(self.address).await?;
        let path = format!("{}{}", push_path(&self.channel), self.start_query());
        let (mut parent, mut promises) = match connection.get_pushed(&path).await {
            Ok(opened) => opened,
            Err(error) => {
                connection.cut();
                return Err(error);
            }
        };
        let _guard = CutOnDrop(connection);
        let mut lines = LineBuffer::default();
        let mut parent_open = true;
        loop {
            tokio::select! {
                // Promises first: each was sent before any later line.
                biased;
                promise = promises.push_promise(), if self.reader.has_position() => {
                    let Some(promise) = promise else {
                        return Ok(Outcome::ServerEnded);
                    };
                    let promise = promise.map_err(|error| {
                        Error::new(format!("{path}: a push promise failed: {error}"))
                    })?;
                    let (request, response) = promise.into_parts();
                    let what = format!("pushed {}", request.uri());
                    let response = response.await.map_err(|error| {
                        Error::new(format!("{what} failed: {error}"))
                    })?;
                    let envelope = h2c::Body::pushed(what, response.into_body())
                        .read_to_end()
                        .await?;
                    let read = self.reader.feed(&envelope);
                    if let Some(outcome) = self.take(read) {
                        return Ok(outcome);
                    }
                }
                chunk = parent.next_chunk(), if parent_open => {
                    let Some(chunk) = chunk? else {
                        // Promises already sent are still read.
                        parent_open = false;
                        continue;
                    };
                    for line in lines.push(&chunk) {
                        let read = self.reader.feed(&line);
                        if let Some(outcome) = self.take(read) {
                            if matches!(outcome, Outcome::ServerEnded) {
                                parent_open = false;
                                break;
                            }
                            return Ok(outcome);
                        }
                    }
                }
                else => return Ok(Outcome::ServerEnded),
            }
        }
    }
}

fn push_path(channel: &str) -> String {
    format!("/channels/{channel}/push")
}

/// Whole NDJSON lines out of chunks.
#[derive(Debug, Default)]
struct LineBuffer {
    buffer: Vec<u8>,
}

impl LineBuffer {
    /// Adds `chunk` and returns the lines it completed, without their
    /// newlines.
    fn push(&mut self, chunk: &[u8]) -> Vec<Vec<u8>> {
        self.buffer.extend_from_slice(chunk);
        let mut lines = Vec::new();
        while let Some(end) = self.buffer.iter().position(|&b| b == b'\n') {
            let mut line: Vec<u8> = self.buffer.drain(..=end).collect();
            line.pop();
            lines.push(line);
        }
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(kind: Kind, delivered: u64, lost: u64) -> KindReport {
        KindReport {
            kind,
            subscribers: 2,
            complete: 2,
            delivered,
            lost,
            duplicated: 0,
            gaps: 0,
            connections: 5,
            cuts: 3,
            server_ends: 0,
            errors: 0,
        }
    }

    fn round(number: u32, closed_kib: u64, lost: u64) -> RoundReport {
        RoundReport {
            round: number,
            events: 10,
            channels: 1,
            expected: 40,
            kinds: vec![kind(Kind::Sse, 20, 0), kind(Kind::H2Push, 20 - lost, lost)],
            memory: MemoryReport {
                subscribed_kib: 9_000,
                peak_kib: 12_000,
                left_kib: 11_000,
                closed_kib,
            },
            left: ChannelInfo::default(),
            publish_time: Duration::from_secs(1),
            drain_time: Duration::ZERO,
            first_errors: Vec::new(),
        }
    }

    fn report(rounds: Vec<RoundReport>) -> SoakReport {
        SoakReport {
            seed: 7,
            baseline_kib: 5_000,
            high_water_kib: 12_000,
            memory_margin_kib: 1_000,
            rounds,
        }
    }

    #[test]
    fn a_clean_soak_passes_and_a_lost_event_fails() {
        assert!(report(vec![round(1, 5_900, 0)]).check().is_ok());
        let lossy = report(vec![round(1, 5_900, 1)])
            .check()
            .unwrap_err()
            .to_string();
        assert!(lossy.contains("HTTP/2 push (h2c): 1 lost"), "{lossy}");
        let mut held = round(1, 5_900, 0);
        held.left.subscribers = 1;
        assert!(report(vec![held]).check().is_err());
    }

    #[test]
    fn memory_is_held_to_the_cold_baseline_alone_and_the_warm_one_over_rounds() {
        let one = report(vec![round(1, 6_100, 0)]);
        assert_eq!(one.reference_kib(), 5_000);
        assert!(one
            .check()
            .unwrap_err()
            .to_string()
            .contains("before any client"));
        let flat = report(vec![round(1, 9_000, 0), round(2, 9_900, 0)]);
        assert_eq!(flat.reference_kib(), 9_000);
        assert!(flat.check().is_ok());
        let growing = report(vec![
            round(1, 9_000, 0),
            round(2, 9_600, 0),
            round(3, 10_100, 0),
        ]);
        assert!(growing
            .check()
            .unwrap_err()
            .to_string()
            .contains("after the first round"));
        assert!(growing
            .render()
            .contains("+1100 KiB from the warm baseline"));
    }

    #[test]
    fn events_are_shared_evenly_over_the_channels() {
        let options = SoakOptions {
            subscribers: 9,
            kinds: Kind::ALL.to_vec(),
            channels: 3,
            events: 10,
            rate: 10.0,
            event_bytes: 32,
            cut_after: Duration::from_millis(10),
            seed: 1,
            history_events: 4,
            rounds: 1,
            memory_margin_kib: 0,
            within: Duration::from_secs(1),
        };
        let shares: Vec<usize> = (0..3).map(|on| options.events_on(on)).collect();
        assert_eq!(shares, [4, 3, 3]);
        assert_eq!(options.history_bytes(), 16 << 20);
        assert!(check(&options).is_ok());
        assert!(check(&SoakOptions {
            channels: 11,
            ..options.clone()
        })
        .is_err());
        assert!(check(&SoakOptions {
            rounds: 0,
            ..options
        })
        .is_err());
    }

    #[test]
    fn lines_are_cut_at_newlines_across_chunks() {
        let mut lines = LineBuffer::default();
        assert!(lines.push(b"{\"a\"").is_empty());
        assert_eq!(
            lines.push(b":1}\n\n{\"b\":2}\n{"),
            [b"{\"a\":1}".to_vec(), vec![], b"{\"b\":2}".to_vec()]
        );
        assert_eq!(lines.push(b"}\n"), [b"{}".to_vec()]);
    }
}
