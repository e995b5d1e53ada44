//! The fan-out load: many streams of one channel (Server-Sent Events,
//! NDJSON or WebSocket), a bounded number of events published at a fixed
//! rate, and a count of what every stream received.
//!
//! ```text
//! $ push-bench fanout --technique ndjson --server 127.0.0.1:40123 --server-pid 4242 \
//!     --server-core 0 --streams 1000 --connections 10 --publishes 300 --rate 100
//! fanout-result streams=1000 published=300 deliveries=300000 lost=0 disordered=0 ended=0 server_cpu_ticks=87 server_core_busy_ticks=88 ticks_per_second=100 publish_ms=2990 drain_ms=3 latency_p50_us=3249 latency_p99_us=7906
//! ```
//!
//! 1. It opens `--streams` subscriptions of `--channel` with the technique
//!    ([`Technique`]; from now: no start position): over h2c, `GET`
//!    streams spread over `--connections` connections; over HTTP/1.1, one
//!    connection per stream (a `GET`, or for WebSocket the upgrade, with
//!    tokio-tungstenite as the client). It waits until each has its first
//!    block, line or message: the position.
//! 2. After a short settle, it reads the server's CPU time from
//!    `/proc/PID/stat` (and how busy the server's core has been, from
//!    `/proc/stat`), starts counting the server's write system calls if
//!    asked ([`writes`](crate::writes)), and publishes `--publishes` text
//!    events of `--event-bytes` bytes at `--rate` per second, one at a time
//!    on a connection of its own (h2c, or HTTP/1.1 for the other
//!    protocols). Event `n` carries `seq=n` (eight digits), padded with
//!    dots.
//! 3. It waits until every stream has received the last event (or has
//!    ended, or `--within-secs` has passed since the last publish), reads
//!    both again (and stops counting), and prints one `fanout-result` line
//!    ([`FanoutReport`]) on stdout.
//!
//! Each stream must receive every event once, in order: an event after a
//! missing one counts the missing ones as lost, and one at or before an
//! event already received counts as disordered. A stream that ends (a
//! `lagged`, `closed` or `shutdown` signal, or the stream or socket closed)
//! before the last event counts as ended, and what it did not receive as
//! lost. [`EventReader`] reads every technique's framing the same way.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::h2_compare::FanoutShape;
use crate::h2c::Connection;
use crate::technique::Technique;
use crate::writes::{WriteCounter, Writes};
use crate::{cpu, http1, ws};
use crate::{Error, Result};

/// What the load speaks to the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LoadProtocol {
    /// h2c: the streams spread over `--connections` connections. Not for
    /// WebSocket.
    H2c,
    /// HTTP/1.1: one connection per stream, and one for publishing.
    Http1,
}

impl LoadProtocol {
    /// Its name in reports: `h2c`, `HTTP/1.1`.
    pub fn label(self) -> &'static str {
        match self {
            LoadProtocol::H2c => "h2c",
            LoadProtocol::Http1 => "HTTP/1.1",
        }
    }

    /// Its value on the command line (`--protocol`): `h2c`, `http1`.
    pub fn arg(self) -> &'static str {
        match self {
            LoadProtocol::H2c => "h2c",
            LoadProtocol::Http1 => "http1",
        }
    }
}

/// The wait between the last subscription and the first publish, so that
/// the server has finished setting the streams up.
const SETTLE: Duration = Duration::from_millis(500);

/// What to load the server with.
#[derive(Debug, Clone)]
pub struct FanoutOptions {
    /// The server's address, on loopback.
    pub server: SocketAddr,
    /// How the streams subscribe.
    pub technique: Technique,
    /// What the load speaks.
    pub protocol: LoadProtocol,
    /// Where to publish, if not `server`: another node of a cluster.
    pub publish_to: Option<SocketAddr>,
    /// The server's process id, whose CPU time is read.
    pub server_pid: u32,
    /// The core the server is pinned to, whose busy time is read.
    pub server_core: usize,
    /// The channel subscribed to and published on.
    pub channel: String,
    /// The workload.
    pub shape: FanoutShape,
    /// How long subscribing, and the wait for deliveries after the last
    /// publish, may each take.
    pub within: Duration,
    /// Whether to count the server's write system calls over the measured
    /// window, with perf.
    pub count_writes: bool,
}

/// What a fan-out run measured. Its [`Display`](fmt::Display) is the
/// `fanout-result` line, which [`FanoutReport::parse_line`] reads back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FanoutReport {
    /// Streams subscribed.
    pub streams: usize,
    /// Events published.
    pub published: usize,
    /// Events received, over all streams, each once and in order.
    pub deliveries: u64,
    /// Events not received: `streams × published − deliveries`.
    pub lost: u64,
    /// Events received out of order or twice.
    pub disordered: u64,
    /// Streams that ended before their last event.
    pub ended: u64,
    /// The server's CPU time from the first publish to the last delivery,
    /// in clock ticks.
    pub server_cpu_ticks: u64,
    /// How long the server's core was busy over the same window, by any
    /// process, in clock ticks.
    pub server_core_busy_ticks: u64,
    /// Clock ticks per second.
    pub ticks_per_second: u64,
    /// From the first publish to the last.
    pub publish_time: Duration,
    /// From the last publish to the last delivery (or the deadline).
    pub drain_time: Duration,
    /// Publish-to-receive latency, median over every delivery, in
    /// microseconds: from just before the publish request is sent to the
    /// chunk that completes the event being read.
    pub latency_p50_us: u64,
    /// The same, 99th percentile.
    pub latency_p99_us: u64,
    /// The server's write system calls over the same window as its CPU
    /// time, when they were counted (`server_write=…` and the three others
    /// on the line).
    pub writes: Option<Writes>,
}

impl FanoutReport {
    /// The server's CPU time in the measured window, in seconds.
    pub fn server_cpu_seconds(&self) -> f64 {
        crate::cpu::ticks_to_seconds(self.server_cpu_ticks, self.ticks_per_second)
    }

    /// CPU seconds that other processes took on the server's core in the
    /// measured window.
    pub fn others_on_server_core_seconds(&self) -> f64 {
        crate::cpu::others_seconds(
            self.server_core_busy_ticks,
            self.server_cpu_ticks,
            self.ticks_per_second,
        )
    }

    /// What went wrong with the deliveries (`"2 lost, 0 out of order, 1
    /// streams ended early"`), or `None` when every stream got every event
    /// once and in order.
    pub fn fault(&self) -> Option<String> {
        (self.lost > 0 || self.disordered > 0 || self.ended > 0).then(|| {
            format!(
                "{} lost, {} out of order, {} streams ended early",
                self.lost, self.disordered, self.ended
            )
        })
    }

    /// Deliveries per second of server CPU time; infinite when the server
    /// used less than a tick.
    pub fn deliveries_per_cpu_second(&self) -> f64 {
        self.deliveries as f64 / self.server_cpu_seconds()
    }

    /// The server's write system calls per delivery, less one per publish
    /// (the answer to each publish request, which is not a delivery), when
    /// they were counted and something was delivered.
    ///
    /// ```
    /// use push_bench::fanout::FanoutReport;
    ///
    /// let line = "fanout-result streams=2 published=3 deliveries=6 lost=0 disordered=0 \
    ///             ended=0 server_cpu_ticks=5 server_core_busy_ticks=6 ticks_per_second=100 \
    ///             publish_ms=30 drain_ms=1 latency_p50_us=250 latency_p99_us=900 \
    ///             server_write=1 server_writev=0 server_sendto=8 server_sendmsg=0";
    /// let report = FanoutReport::parse_line(line).unwrap();
    /// assert_eq!(report.writes_per_delivery(), Some(1.0));
    /// ```
    pub fn writes_per_delivery(&self) -> Option<f64> {
        let writes = self.writes?;
        (self.deliveries > 0).then(|| {
            writes.total().saturating_sub(self.published as u64) as f64 / self.deliveries as f64
        })
    }

    /// Reads a `fanout-result key=value …` line. `None` for any other line.
    ///
    /// ```
    /// use push_bench::fanout::FanoutReport;
    ///
    /// let line = "fanout-result streams=2 published=3 deliveries=6 lost=0 disordered=0 \
    ///             ended=0 server_cpu_ticks=5 server_core_busy_ticks=6 ticks_per_second=100 \
    ///             publish_ms=30 drain_ms=1 latency_p50_us=250 latency_p99_us=900";
    /// let report = FanoutReport::parse_line(line).unwrap();
    /// assert_eq!(report.deliveries, 6);
    /// assert_eq!(report.deliveries_per_cpu_second(), 120.0);
    /// assert_eq!(report.to_string(), line.split_whitespace().collect::<Vec<_>>().join(" "));
    /// ```
    pub fn parse_line(line: &str) -> Option<FanoutReport> {
        let fields = line.trim().strip_prefix("fanout-result ")?;
        let fields: BTreeMap<&str, u64> = fields
            .split_whitespace()
            .map(|field| {
                let (key, value) = field.split_once('=')?;
                Some((key, value.parse().ok()?))
            })
            .collect::<Option<_>>()?;
        let field = |key: &str| fields.get(key).copied();
        let writes = match (
            field("server_write"),
            field("server_writev"),
            field("server_sendto"),
            field("server_sendmsg"),
        ) {
            (Some(write), Some(writev), Some(sendto), Some(sendmsg)) => Some(Writes {
                write,
                writev,
                sendto,
                sendmsg,
            }),
            (None, None, None, None) => None,
            _ => return None,
        };
        Some(FanoutReport {
            streams: usize::try_from(field("streams")?).ok()?,
            published: usize::try_from(field("published")?).ok()?,
            deliveries: field("deliveries")?,
            lost: field("lost")?,
            disordered: field("disordered")?,
            ended: field("ended")?,
            server_cpu_ticks: field("server_cpu_ticks")?,
            server_core_busy_ticks: field("server_core_busy_ticks")?,
            ticks_per_second: field("ticks_per_second")?,
            publish_time: Duration::from_millis(field("publish_ms")?),
            drain_time: Duration::from_millis(field("drain_ms")?),
            latency_p50_us: field("latency_p50_us")?,
            latency_p99_us: field("latency_p99_us")?,
            writes,
        })
    }
}

impl fmt::Display for FanoutReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "fanout-result streams={} published={} deliveries={} lost={} disordered={} \
             ended={} server_cpu_ticks={} server_core_busy_ticks={} ticks_per_second={} \
             publish_ms={} drain_ms={} latency_p50_us={} latency_p99_us={}",
            self.streams,
            self.published,
            self.deliveries,
            self.lost,
            self.disordered,
            self.ended,
            self.server_cpu_ticks,
            self.server_core_busy_ticks,
            self.ticks_per_second,
            self.publish_time.as_millis(),
            self.drain_time.as_millis(),
            self.latency_p50_us,
            self.latency_p99_us
        )?;
        if let Some(writes) = self.writes {
            write!(
                f,
                " server_write={} server_writev={} server_sendto={} server_sendmsg={}",
                writes.write, writes.writev, writes.sendto, writes.sendmsg
            )?;
        }
        Ok(())
    }
}

/// Runs the load as `options` say (see the module docs).
///
/// # Errors
///
/// When the server is not on a loopback address, an option is out of range
/// (or WebSocket is asked over h2c), a connection or stream cannot be
/// opened, not every stream is subscribed within `options.within`, a
/// publish fails, the server's CPU time cannot be read, or its writes were
/// to be counted and perf cannot count them. Lost events are not an error:
/// the report counts them.
pub async fn run(options: &FanoutOptions) -> Result<FanoutReport> {
    check(options)?;
    let tally = Arc::new(Tally::new(options.shape.publishes));
    let technique = options.technique;
    let label = technique.label();
    let path = technique.path(&options.channel);
    let publishes = options.shape.publishes;
    match options.protocol {
        LoadProtocol::H2c => {
            let mut connections = Vec::with_capacity(options.shape.connections);
            for _ in 0..options.shape.connections {
                connections.push(Connection::open(options.server).await?);
            }
            for stream in 0..options.shape.streams {
                let mut connection = connections[stream % connections.len()].clone();
                let path = path.clone();
                let tally = Arc::clone(&tally);
                tokio::spawn(async move {
                    match connection.get(&path).await {
                        Ok(body) => {
                            let reader = EventReader::new(technique, publishes);
                            follow(StreamBody::H2c(body), reader, tally).await;
                        }
                        Err(error) => tally.fail(error.to_string()),
                    }
                });
            }
        }
        LoadProtocol::Http1 => {
            for _ in 0..options.shape.streams {
                let (server, path) = (options.server, path.clone());
                let tally = Arc::clone(&tally);
                tokio::spawn(async move {
                    let body = match technique {
                        Technique::Ws => ws::stream(server, &path)
                            .await
                            .map(|messages| StreamBody::Ws(Box::new(messages))),
                        Technique::Sse | Technique::Ndjson => {
                            http1::stream(server, &path).await.map(StreamBody::Http1)
                        }
                    };
                    match body {
                        Ok(body) => {
                            let reader = EventReader::new(technique, publishes);
                            follow(body, reader, tally).await;
                        }
                        Err(error) => tally.fail(error.to_string()),
                    }
                });
            }
        }
    }
    let subscribed = wait_until(options.within, || {
        tally.failure().is_some()
            || tally.subscribed.load(Ordering::Relaxed) == options.shape.streams
    })
    .await;
    if let Some(failure) = tally.failure() {
        return Err(Error::new(format!("a {label} stream failed: {failure}")));
    }
    if !subscribed {
        return Err(Error::new(format!(
            "only {} of {} {label} streams had their position within {} s",
            tally.subscribed.load(Ordering::Relaxed),
            options.shape.streams,
            options.within.as_secs_f64()
        )));
    }

    let publish_to = options.publish_to.unwrap_or(options.server);
    let mut publisher = match options.protocol {
        LoadProtocol::H2c => Publisher::H2c(Connection::open(publish_to).await?),
        LoadProtocol::Http1 => Publisher::Http1(http1::Publisher::new(publish_to)),
    };
    let mut counter = match options.count_writes {
        // Attached during the settle, started just before the first publish.
        true => Some(WriteCounter::attach(options.server_pid).await?),
        false => None,
    };
    tokio::time::sleep(SETTLE).await;
    if let Some(counter) = counter.as_mut() {
        counter.start().await?;
    }
    let core_before = cpu::core_busy(options.server_core)?;
    let before = cpu::cpu_time(options.server_pid)?;
    let started = Instant::now();
    let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / options.shape.rate));
    for seq in 0..options.shape.publishes {
        ticks.tick().await;
        tally.published(seq);
        publisher
            .publish(&options.channel, event_data(seq, options.shape.event_bytes))
            .await?;
    }
    let published = Instant::now();
    wait_until(options.within, || {
        tally.complete.load(Ordering::Relaxed) + tally.ended.load(Ordering::Relaxed) as usize
            >= options.shape.streams
    })
    .await;
    let after = cpu::cpu_time(options.server_pid)?;
    let core_after = cpu::core_busy(options.server_core)?;
    let drained = Instant::now();
    let writes = match counter {
        Some(counter) => Some(counter.stop().await?),
        None => None,
    };

    let deliveries = tally.deliveries.load(Ordering::Relaxed);
    let (latency_p50_us, latency_p99_us) = tally.latency_percentiles();
    let expected = (options.shape.streams * options.shape.publishes) as u64;
    Ok(FanoutReport {
        streams: options.shape.streams,
        published: options.shape.publishes,
        deliveries,
        lost: expected.saturating_sub(deliveries),
        disordered: tally.disordered.load(Ordering::Relaxed),
        ended: tally.ended.load(Ordering::Relaxed),
        server_cpu_ticks: after.ticks.saturating_sub(before.ticks),
        server_core_busy_ticks: core_after.ticks.saturating_sub(core_before.ticks),
        ticks_per_second: after.ticks_per_second,
        publish_time: published - started,
        drain_time: drained - published,
        latency_p50_us,
        latency_p99_us,
        writes,
    })
}

fn check(options: &FanoutOptions) -> Result<()> {
    for address in std::iter::once(options.server).chain(options.publish_to) {
        if !address.ip().is_loopback() {
            return Err(Error::new(format!(
                "{address} is not a loopback address; the benchmark connects to loopback only"
            )));
        }
    }
    if options.shape.streams == 0 || options.shape.connections == 0 || options.shape.publishes == 0
    {
        return Err(Error::new(
            "nothing to measure: give at least one stream, connection and publish",
        ));
    }
    if !(options.shape.rate.is_finite() && options.shape.rate > 0.0) {
        return Err(Error::new(
            "--rate must be a positive number of events per second",
        ));
    }
    if options.technique == Technique::Ws && options.protocol == LoadProtocol::H2c {
        return Err(Error::new(
            "the WebSocket fan-out opens its sockets with an HTTP/1.1 upgrade only: \
             give --protocol http1 (the default for --technique ws)",
        ));
    }
    if options.shape.event_bytes < 12 {
        return Err(Error::new(
            "--event-bytes must be at least 12 (`seq=` and eight digits)",
        ));
    }
    Ok(())
}

/// Polls `done` every millisecond until it holds (true) or `within` passes
/// (false).
pub(crate) async fn wait_until(within: Duration, done: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + within;
    while !done() {
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    true
}

/// `seq=00000042` padded with dots to `bytes`.
pub(crate) fn event_data(seq: usize, bytes: usize) -> Bytes {
    let mut data = format!("seq={seq:08}");
    let pad = bytes.saturating_sub(data.len());
    data.extend(std::iter::repeat_n('.', pad));
    Bytes::from(data)
}

/// What every stream has received so far.
#[derive(Debug)]
struct Tally {
    /// What publish times are measured from.
    epoch: Instant,
    /// When each event was published, in nanoseconds since `epoch` (0: not
    /// yet).
    published_at: Vec<AtomicU64>,
    /// Every delivery's publish-to-receive latency, in microseconds.
    latencies_us: Mutex<Vec<u64>>,
    subscribed: AtomicUsize,
    complete: AtomicUsize,
    ended: AtomicU64,
    deliveries: AtomicU64,
    disordered: AtomicU64,
    first_failure: Mutex<Option<String>>,
}

impl Tally {
    fn new(publishes: usize) -> Self {
        Tally {
            epoch: Instant::now(),
            published_at: (0..publishes).map(|_| AtomicU64::new(0)).collect(),
            latencies_us: Mutex::new(Vec::new()),
            subscribed: AtomicUsize::new(0),
            complete: AtomicUsize::new(0),
            ended: AtomicU64::new(0),
            deliveries: AtomicU64::new(0),
            disordered: AtomicU64::new(0),
            first_failure: Mutex::new(None),
        }
    }

    /// Notes that event `seq` is being published now.
    fn published(&self, seq: usize) {
        let nanos = self.epoch.elapsed().as_nanos().max(1) as u64;
        self.published_at[seq].store(nanos, Ordering::Release);
    }

    /// The latency of event `seq`, received now, if its publish time is
    /// known.
    fn latency_us(&self, seq: usize, now: Instant) -> Option<u64> {
        let published = self.published_at.get(seq)?.load(Ordering::Acquire);
        let received = now.duration_since(self.epoch).as_nanos() as u64;
        (published != 0).then(|| received.saturating_sub(published) / 1_000)
    }

    /// The median and 99th percentile of every latency, in microseconds.
    fn latency_percentiles(&self) -> (u64, u64) {
        let mut latencies = self.latencies_us.lock().unwrap_or_else(|p| p.into_inner());
        latencies.sort_unstable();
        let at = |quantile: f64| {
            latencies
                .get(((latencies.len() as f64 - 1.0) * quantile).round() as usize)
                .copied()
                .unwrap_or(0)
        };
        (at(0.5), at(0.99))
    }

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

/// Where events are published.
pub(crate) enum Publisher {
    H2c(Connection),
    Http1(http1::Publisher),
}

impl Publisher {
    pub(crate) async fn publish(&mut self, channel: &str, data: Bytes) -> Result<String> {
        match self {
            Publisher::H2c(connection) => connection.publish(channel, data).await,
            Publisher::Http1(publisher) => publisher.publish(channel, data).await,
        }
    }
}

/// One subscription being read: a response body on either protocol, or a
/// WebSocket.
enum StreamBody {
    H2c(crate::h2c::Body),
    Http1(http1::Body),
    /// Boxed: a WebSocket's state is several times a body's.
    Ws(Box<ws::Messages>),
}

impl StreamBody {
    /// The next chunk of a body, or the next message of a WebSocket.
    async fn next_chunk(&mut self) -> Result<Option<Bytes>> {
        match self {
            StreamBody::H2c(body) => body.next_chunk().await,
            StreamBody::Http1(body) => body.next_chunk().await,
            StreamBody::Ws(messages) => messages.next_message().await,
        }
    }
}

/// Reads one stream into the tally until it ends.
async fn follow(mut body: StreamBody, mut reader: EventReader, tally: Arc<Tally>) {
    let mut latencies_us = Vec::with_capacity(reader.publishes);
    loop {
        let chunk = match body.next_chunk().await {
            Ok(Some(chunk)) => chunk,
            Ok(None) | Err(_) => break,
        };
        let received = Instant::now();
        let read = reader.feed(&chunk);
        latencies_us.extend(
            read.delivered
                .iter()
                .filter_map(|&seq| tally.latency_us(seq, received)),
        );
        if read.complete {
            // Handed over before the run reads the tally: streams stay open.
            tally
                .latencies_us
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .append(&mut latencies_us);
        }
        if read.subscribed {
            tally.subscribed.fetch_add(1, Ordering::Relaxed);
        }
        tally
            .deliveries
            .fetch_add(read.deliveries, Ordering::Relaxed);
        tally
            .disordered
            .fetch_add(read.disordered, Ordering::Relaxed);
        if read.complete {
            tally.complete.fetch_add(1, Ordering::Relaxed);
        }
        if read.signal.is_some() {
            break;
        }
    }
    if !reader.is_complete() {
        tally.ended.fetch_add(1, Ordering::Relaxed);
    }
    tally
        .latencies_us
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .append(&mut latencies_us);
}

/// Reads the events of one stream, as the fan-out publishes them, in the
/// framing of its technique: SSE blocks (up to a blank line), NDJSON lines,
/// or WebSocket messages, each given whole to [`EventReader::feed`].
///
/// The first block, line or message is the position. After it, an SSE
/// block's `data: seq=NNNNNNNN` line, or a JSON object's `"data":"seq=NNNNNNNN`,
/// is event `NNNNNNNN`; an SSE `event: push.<kind>` or a JSON
/// `{"signal":"<kind>"` is a signal, which ends the stream; anything else
/// (a heartbeat: an SSE comment, an empty NDJSON line) is skipped.
///
/// ```
/// use push_bench::fanout::EventReader;
/// use push_bench::technique::Technique;
///
/// let mut reader = EventReader::new(Technique::Sse, 2);
/// let read = reader.feed(b"id: e-0\n\nid: e-1\ndata: seq=00000000..\n\n:\n\nid: e-2\nda");
/// assert!(read.subscribed);
/// assert_eq!(read.delivered, [0]);
/// let read = reader.feed(b"ta: seq=00000001..\n\n");
/// assert_eq!(read.deliveries, 1);
/// assert!(read.complete && reader.is_complete());
///
/// let mut reader = EventReader::new(Technique::Ndjson, 1);
/// let read = reader.feed(b"{\"signal\":\"position\",\"cursor\":\"e-0\"}\n\n{\"id\":\"e-1\",");
/// assert!(read.subscribed);
/// let read = reader.feed(b"\"data\":\"seq=00000000..\"}\n");
/// assert!(read.complete);
///
/// let mut reader = EventReader::new(Technique::Ws, 1);
/// assert!(reader.feed(br#"{"signal":"position","cursor":"e-0"}"#).subscribed);
/// let read = reader.feed(br#"{"signal":"lagged","cursor":"e-0"}"#);
/// assert_eq!(read.signal.as_deref(), Some("lagged"));
/// ```
#[derive(Debug)]
pub struct EventReader {
    technique: Technique,
    buffer: Vec<u8>,
    publishes: usize,
    progress: Progress,
}

/// What one chunk (or message) of a stream brought.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Read {
    /// The position came: the stream is subscribed.
    pub subscribed: bool,
    /// Events received once and in order.
    pub deliveries: u64,
    /// Their sequence numbers.
    pub delivered: Vec<usize>,
    /// Events at or before one already received.
    pub disordered: u64,
    /// The last event came.
    pub complete: bool,
    /// A signal that ends the stream (`lagged`, `closed`, …), without
    /// SSE's `push.` prefix.
    pub signal: Option<String>,
    /// Where to resume from, if the chunk moved it: the id of the last
    /// event it carried, or the position's cursor. A signal's cursor is not
    /// taken (events promised before it may still be on their way).
    pub cursor: Option<String>,
}

impl EventReader {
    /// A reader of a stream of `technique` that should bring events
    /// `0..publishes`.
    pub fn new(technique: Technique, publishes: usize) -> Self {
        EventReader {
            technique,
            buffer: Vec::new(),
            publishes,
            progress: Progress {
                publishes,
                subscribed: false,
                next: 0,
            },
        }
    }

    /// Whether the last event has come.
    pub fn is_complete(&self) -> bool {
        self.progress.is_complete()
    }

    /// The sequence number of the next event expected: how many events
    /// have come once and in order, with the missing ones skipped.
    pub fn next_seq(&self) -> usize {
        self.progress.next
    }

    /// Whether the position has come on the current connection.
    pub fn has_position(&self) -> bool {
        self.progress.subscribed
    }

    /// Readies the reader for a new connection of the same subscriber: the
    /// position is expected again and a partial block or line of the old
    /// connection is dropped; what has been received is kept.
    pub fn resume(&mut self) {
        self.buffer.clear();
        self.progress.subscribed = false;
    }

    /// Takes one event read some other way (a poll's answer): its id and
    /// its data, which should be `seq=NNNNNNNN…`.
    ///
    /// ```
    /// use push_bench::fanout::EventReader;
    /// use push_bench::technique::Technique;
    ///
    /// let mut reader = EventReader::new(Technique::Ws, 2);
    /// let read = reader.feed_event("e-1", "seq=00000000..");
    /// assert_eq!((read.deliveries, read.cursor.as_deref()), (1, Some("e-1")));
    /// assert_eq!(reader.feed_event("e-1", "seq=00000000..").disordered, 1);
    /// assert!(reader.feed_event("e-2", "seq=00000001..").complete);
    /// ```
    pub fn feed_event(&mut self, id: &str, data: &str) -> Read {
        let mut read = Read {
            cursor: Some(id.to_owned()),
            ..Read::default()
        };
        self.progress.subscribed = true;
        match data.strip_prefix("seq=") {
            Some(digits) => self.progress.event(digits.as_bytes(), &mut read),
            None => read.disordered += 1,
        }
        read
    }

    /// Takes the next bytes of an SSE or NDJSON stream, or the next
    /// WebSocket message (whole).
    pub fn feed(&mut self, chunk: &[u8]) -> Read {
        let mut read = Read::default();
        let (separator, skip) = match self.technique {
            Technique::Ws => {
                self.progress.json_object(chunk, &mut read);
                return read;
            }
            Technique::Sse => (&b"\n\n"[..], 2),
            Technique::Ndjson => (&b"\n"[..], 1),
        };
        self.buffer.extend_from_slice(chunk);
        let mut consumed = 0;
        while let Some(end) = find(&self.buffer[consumed..], separator) {
            let unit = &self.buffer[consumed..consumed + end];
            consumed += end + skip;
            match self.technique {
                Technique::Sse => self.progress.sse_block(unit, &mut read),
                Technique::Ndjson | Technique::Ws => self.progress.json_object(unit, &mut read),
            }
        }
        self.buffer.drain(..consumed);
        read
    }
}

/// Where one stream stands.
#[derive(Debug)]
struct Progress {
    publishes: usize,
    subscribed: bool,
    /// The sequence number of the next event expected.
    next: usize,
}

impl Progress {
    fn is_complete(&self) -> bool {
        self.next >= self.publishes
    }

    /// The position, if it has not come yet: the first unit of every
    /// stream. Returns whether `unit` was it.
    fn position(&mut self, read: &mut Read) -> bool {
        if self.subscribed {
            return false;
        }
        self.subscribed = true;
        read.subscribed = true;
        true
    }

    fn sse_block(&mut self, block: &[u8], read: &mut Read) {
        let id = block
            .split(|&byte| byte == b'\n')
            .find_map(|line| line.strip_prefix(b"id: "));
        let signal = block
            .split(|&byte| byte == b'\n')
            .any(|line| line.starts_with(b"event: push.") && line != b"event: push.envelope");
        if let (Some(id), false) = (id, signal) {
            read.cursor = Some(String::from_utf8_lossy(id).into_owned());
        }
        if self.position(read) {
            return;
        }
        for line in block.split(|&byte| byte == b'\n') {
            if let Some(name) = line.strip_prefix(b"event: push.") {
                read.signal = Some(String::from_utf8_lossy(name).into_owned());
            }
            if let Some(seq) = line.strip_prefix(b"data: seq=") {
                self.event(seq, read);
            }
        }
    }

    /// An NDJSON line or a WebSocket message: one JSON object, or nothing
    /// (a heartbeat).
    fn json_object(&mut self, object: &[u8], read: &mut Read) {
        if object.is_empty() {
            return;
        }
        let signal = object.starts_with(br#"{"signal":""#);
        if self.position(read) {
            if let Some(cursor) = string_field(object, br#""cursor":""#) {
                read.cursor = Some(String::from_utf8_lossy(cursor).into_owned());
            }
            return;
        }
        if let (Some(id), false) = (string_field(object, br#""id":""#), signal) {
            read.cursor = Some(String::from_utf8_lossy(id).into_owned());
        }
        if let Some(name) = object.strip_prefix(br#"{"signal":""#) {
            let end = name.iter().position(|&b| b == b'"').unwrap_or(name.len());
            read.signal = Some(String::from_utf8_lossy(&name[..end]).into_owned());
        } else if let Some(at) = find(object, br#""data":"seq="#) {
            self.event(&object[at + br#""data":"seq="#.len()..], read);
        }
    }

    /// An event whose data, after `seq=`, starts with `digits`.
    fn event(&mut self, digits: &[u8], read: &mut Read) {
        let seq = std::str::from_utf8(&digits[..digits.len().min(8)])
            .ok()
            .and_then(|digits| digits.parse::<usize>().ok());
        match seq {
            Some(seq) if seq >= self.next => {
                let was_complete = self.is_complete();
                read.deliveries += 1;
                read.delivered.push(seq);
                self.next = seq + 1;
                read.complete |= !was_complete && self.is_complete();
            }
            _ => read.disordered += 1,
        }
    }
}

/// The value of the first JSON string field that starts with `key`
/// (`"name":"`), without its closing quote. Ids and cursors have no escapes.
fn string_field<'a>(object: &'a [u8], key: &[u8]) -> Option<&'a [u8]> {
    let value = &object[find(object, key)? + key.len()..];
    let end = value.iter().position(|&b| b == b'"')?;
    Some(&value[..end])
}

/// Where `needle` first starts in `bytes`.
fn find(bytes: &[u8], needle: &[u8]) -> Option<usize> {
    bytes
        .windows(needle.len())
        .position(|window| window == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_protocol_arg_is_what_the_command_line_reads() {
        use clap::ValueEnum as _;
        for protocol in LoadProtocol::value_variants() {
            assert_eq!(LoadProtocol::from_str(protocol.arg(), false), Ok(*protocol));
        }
    }

    #[test]
    fn event_data_is_numbered_and_padded() {
        assert_eq!(event_data(42, 16), "seq=00000042....");
        assert_eq!(event_data(7, 4), "seq=00000007");
    }

    #[test]
    fn missing_events_are_lost_and_repeats_disordered() {
        let mut reader = EventReader::new(Technique::Sse, 4);
        let read = reader.feed(b"id: x\n\ndata: seq=00000000\n\ndata: seq=00000002\n\n");
        assert_eq!(read.deliveries, 2, "0 and 2; 1 is lost");
        let read = reader.feed(b"data: seq=00000002\n\ndata: seq=00000001\n\n");
        assert_eq!(read.disordered, 2);
        assert!(!read.complete);
        let read = reader.feed(b"data: seq=00000003\n\nevent: push.closed\ndata: {}\n\n");
        assert_eq!(read.deliveries, 1);
        assert!(read.complete);
        assert_eq!(read.signal.as_deref(), Some("closed"));
    }

    #[test]
    fn ndjson_and_websocket_streams_are_read_as_sse_ones() {
        let event = |seq: usize| format!(r#"{{"id":"e-{seq}","data":"seq={seq:08}.."}}"#);
        for technique in [Technique::Ndjson, Technique::Ws] {
            let mut reader = EventReader::new(technique, 4);
            let mut read = Read::default();
            let mut take = |object: &str| {
                let got = match technique {
                    Technique::Ws => reader.feed(object.as_bytes()),
                    _ => reader.feed(format!("{object}\n").as_bytes()),
                };
                read.subscribed |= got.subscribed;
                read.deliveries += got.deliveries;
                read.delivered.extend(got.delivered);
                read.disordered += got.disordered;
                read.complete |= got.complete;
                read.signal = read.signal.take().or(got.signal);
            };
            take(r#"{"signal":"position","cursor":"e-0"}"#);
            take(&event(0));
            take("");
            take(&event(2));
            take(&event(2));
            take(&event(1));
            take(r#"{"id":"e-9","data":"seq=0000000x"}"#);
            take(&event(3));
            take(r#"{"signal":"closed","cursor":"e-4"}"#);
            assert!(read.subscribed, "{technique}");
            assert_eq!(read.delivered, [0, 2, 3], "{technique}: 1 is lost");
            assert_eq!(read.disordered, 3, "{technique}: 2 again, 1 late, x");
            assert!(read.complete, "{technique}");
            assert_eq!(read.signal.as_deref(), Some("closed"), "{technique}");
        }
    }

    #[test]
    fn the_cursor_follows_events_and_the_position_not_signals() {
        let mut reader = EventReader::new(Technique::Sse, 3);
        let read = reader.feed(b"retry: 1000\nid: e-0\n\nid: e-1\ndata: seq=00000000\n\n");
        assert_eq!(read.cursor.as_deref(), Some("e-1"));
        let read = reader.feed(b"id: e-9\nevent: push.lagged\ndata: {\"cursor\":\"e-9\"}\n\n");
        assert_eq!(
            (read.cursor, read.signal.as_deref()),
            (None, Some("lagged"))
        );
        reader.resume();
        assert!(!reader.has_position());
        let read = reader.feed(b"id: e-1\n\nid: e-2\ndata: seq=00000001\n\n");
        assert!(read.subscribed && reader.has_position());
        assert_eq!((read.deliveries, read.cursor.as_deref()), (1, Some("e-2")));
        assert_eq!(reader.next_seq(), 2);

        let mut reader = EventReader::new(Technique::Ws, 2);
        let read = reader.feed(br#"{"signal":"position","cursor":"e-0"}"#);
        assert_eq!(read.cursor.as_deref(), Some("e-0"));
        let read = reader.feed(br#"{"id":"e-1","data":"seq=00000000"}"#);
        assert_eq!(read.cursor.as_deref(), Some("e-1"));
        let read = reader.feed(br#"{"signal":"gap","cursor":"e-5"}"#);
        assert_eq!((read.cursor, read.signal.as_deref()), (None, Some("gap")));
    }

    #[test]
    fn an_ndjson_line_split_across_chunks_is_read_once_whole() {
        let mut reader = EventReader::new(Technique::Ndjson, 1);
        let stream = b"{\"signal\":\"position\",\"cursor\":\"e-0\"}\n{\"id\":\"e-1\",\"data\":\"seq=00000000\"}\n";
        let mut delivered = Vec::new();
        for byte in stream {
            delivered.extend(reader.feed(&[*byte]).delivered);
        }
        assert_eq!(delivered, [0]);
        assert!(reader.is_complete());
    }

    #[test]
    fn a_report_line_reads_back() {
        let report = FanoutReport {
            streams: 1000,
            published: 300,
            deliveries: 299_990,
            lost: 10,
            disordered: 0,
            ended: 1,
            server_cpu_ticks: 87,
            server_core_busy_ticks: 90,
            ticks_per_second: 100,
            publish_time: Duration::from_millis(2990),
            drain_time: Duration::from_millis(4),
            latency_p50_us: 310,
            latency_p99_us: 2200,
            writes: None,
        };
        assert_eq!(FanoutReport::parse_line(&report.to_string()), Some(report));
        let counted = FanoutReport {
            writes: Some(Writes {
                write: 3,
                writev: 4,
                sendto: 300_000,
                sendmsg: 0,
            }),
            ..report
        };
        let line = counted.to_string();
        assert!(
            line.ends_with(" server_write=3 server_writev=4 server_sendto=300000 server_sendmsg=0")
        );
        assert_eq!(FanoutReport::parse_line(&line), Some(counted));
        assert_eq!(
            counted.writes_per_delivery(),
            Some((300_007 - 300) as f64 / 299_990.0)
        );
        assert_eq!(report.writes_per_delivery(), None);
        let partial = line.replace(" server_sendmsg=0", "");
        assert_eq!(FanoutReport::parse_line(&partial), None);
        assert_eq!(FanoutReport::parse_line("held 10"), None);
        assert_eq!(FanoutReport::parse_line("fanout-result streams=x"), None);
    }
}
