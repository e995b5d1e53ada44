//! The SSE fan-out load: many Server-Sent Events streams of one channel
//! over a few h2c connections, a bounded number of events published at a
//! fixed rate, and a count of what every stream received.
//!
//! ```text
//! $ push-bench sse-fanout --server 127.0.0.1:40123 --server-pid 4242 --server-core 0 \
//!     --streams 1000 --connections 10 --publishes 300 --rate 100
//! fanout-result streams=1000 published=300 deliveries=300000 lost=0 disordered=0 ended=0 server_cpu_ticks=87 server_core_busy_ticks=88 ticks_per_second=100 publish_ms=2990 drain_ms=3
//! ```
//!
//! 1. It opens `--connections` h2c connections and spreads `--streams`
//!    `GET /channels/{channel}/sse` streams over them (from now: no start
//!    position), and waits until each has its first block, the position.
//! 2. After a short settle, it reads the server's CPU time from
//!    `/proc/PID/stat` (and how busy the server's core has been, from
//!    `/proc/stat`) and publishes `--publishes` text events of
//!    `--event-bytes` bytes at `--rate` per second, one at a time on a
//!    connection of its own. Event `n` carries `seq=n` (eight digits),
//!    padded with dots.
//! 3. It waits until every stream has received the last event (or has
//!    ended, or `--within-secs` has passed since the last publish), reads
//!    both again, and prints one `fanout-result` line
//!    ([`FanoutReport`]) on stdout.
//!
//! Each stream must receive every event once, in order: an event after a
//! missing one counts the missing ones as lost, and one at or before an
//! event already received counts as disordered. A stream that ends (a
//! `lagged`, `closed` or `shutdown` signal, or the stream closed) before the
//! last event counts as ended, and what it did not receive as lost.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::h2_compare::FanoutShape;
use crate::h2c::Connection;
use crate::{cpu, http1};
use crate::{Error, Result};

/// What the load speaks to the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LoadProtocol {
    /// h2c: the streams spread over `--connections` connections.
    H2c,
    /// HTTP/1.1: one connection per stream, and one for publishing.
    Http1,
}

/// The wait between the last subscription and the first publish, so that
/// the server has finished setting the streams up.
const SETTLE: Duration = Duration::from_millis(500);

/// What to load the server with.
#[derive(Debug, Clone)]
pub struct FanoutOptions {
    /// The server's address, on loopback.
    pub server: SocketAddr,
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
}

/// What a fan-out run measured. Its [`Display`](fmt::Display) is the
/// `fanout-result` line, which [`FanoutReport::parse_line`] reads back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FanoutReport {
    /// SSE streams subscribed.
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
}

impl FanoutReport {
    /// The server's CPU time in the measured window, in seconds.
    pub fn server_cpu_seconds(&self) -> f64 {
        self.server_cpu_ticks as f64 / self.ticks_per_second.max(1) as f64
    }

    /// CPU seconds that other processes took on the server's core in the
    /// measured window.
    pub fn others_on_server_core_seconds(&self) -> f64 {
        self.server_core_busy_ticks
            .saturating_sub(self.server_cpu_ticks) as f64
            / self.ticks_per_second.max(1) as f64
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
        )
    }
}

/// Runs the load as `options` say (see the module docs).
///
/// # Errors
///
/// When the server is not on a loopback address, an option is out of range,
/// a connection or stream cannot be opened, not every stream is subscribed
/// within `options.within`, a publish fails, or the server's CPU time
/// cannot be read. Lost events are not an error: the report counts them.
pub async fn run(options: &FanoutOptions) -> Result<FanoutReport> {
    check(options)?;
    let tally = Arc::new(Tally::new(options.shape.publishes));
    let path = format!("/channels/{}/sse", options.channel);
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
                let publishes = options.shape.publishes;
                tokio::spawn(async move {
                    match connection.get(&path).await {
                        Ok(body) => follow(StreamBody::H2c(body), publishes, tally).await,
                        Err(error) => tally.fail(error.to_string()),
                    }
                });
            }
        }
        LoadProtocol::Http1 => {
            for _ in 0..options.shape.streams {
                let (server, path) = (options.server, path.clone());
                let tally = Arc::clone(&tally);
                let publishes = options.shape.publishes;
                tokio::spawn(async move {
                    match http1::stream(server, &path).await {
                        Ok(body) => follow(StreamBody::Http1(body), publishes, tally).await,
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
        return Err(Error::new(format!("an SSE stream failed: {failure}")));
    }
    if !subscribed {
        return Err(Error::new(format!(
            "only {} of {} SSE streams had their position within {} s",
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
    tokio::time::sleep(SETTLE).await;
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

/// One SSE response body, on either protocol.
enum StreamBody {
    H2c(crate::h2c::Body),
    Http1(http1::Body),
}

impl StreamBody {
    async fn next_chunk(&mut self) -> Result<Option<Bytes>> {
        match self {
            StreamBody::H2c(body) => body.next_chunk().await,
            StreamBody::Http1(body) => body.next_chunk().await,
        }
    }
}

/// Reads one SSE stream into the tally until it ends.
async fn follow(mut body: StreamBody, publishes: usize, tally: Arc<Tally>) {
    let mut reader = SseReader::new(publishes);
    let mut latencies_us = Vec::with_capacity(publishes);
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

/// Reads the events of one SSE stream, as the fan-out publishes them.
///
/// ```
/// use push_bench::fanout::SseReader;
///
/// let mut reader = SseReader::new(2);
/// let read = reader.feed(b"id: e-0\n\nid: e-1\ndata: seq=00000000..\n\n:\n\nid: e-2\nda");
/// assert!(read.subscribed);
/// assert_eq!(read.delivered, [0]);
/// let read = reader.feed(b"ta: seq=00000001..\n\n");
/// assert_eq!(read.deliveries, 1);
/// assert!(read.complete && reader.is_complete());
/// ```
#[derive(Debug)]
pub struct SseReader {
    buffer: Vec<u8>,
    publishes: usize,
    subscribed: bool,
    next: usize,
}

/// What one chunk of an SSE stream brought.
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
    /// A `push.*` signal that ends the stream (`push.lagged`, …).
    pub signal: Option<String>,
}

impl SseReader {
    /// A reader of a stream that should bring events `0..publishes`.
    pub fn new(publishes: usize) -> Self {
        SseReader {
            buffer: Vec::new(),
            publishes,
            subscribed: false,
            next: 0,
        }
    }

    /// Whether the last event has come.
    pub fn is_complete(&self) -> bool {
        self.next >= self.publishes
    }

    /// Takes the next bytes of the stream.
    pub fn feed(&mut self, chunk: &[u8]) -> Read {
        self.buffer.extend_from_slice(chunk);
        let mut read = Read::default();
        let mut consumed = 0;
        while let Some(end) = find_blank_line(&self.buffer[consumed..]) {
            let block = &self.buffer[consumed..consumed + end];
            consumed += end + 2;
            if !self.subscribed {
                // The position is the first block of every stream.
                self.subscribed = true;
                read.subscribed = true;
                continue;
            }
            for line in block.split(|&byte| byte == b'\n') {
                if let Some(name) = line.strip_prefix(b"event: push.") {
                    read.signal = Some(String::from_utf8_lossy(name).into_owned());
                }
                let Some(seq) = line.strip_prefix(b"data: seq=") else {
                    continue;
                };
                let seq = std::str::from_utf8(&seq[..seq.len().min(8)])
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
        self.buffer.drain(..consumed);
        read
    }
}

/// Where the first `\n\n` starts.
fn find_blank_line(bytes: &[u8]) -> Option<usize> {
    bytes.windows(2).position(|pair| pair == b"\n\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_data_is_numbered_and_padded() {
        assert_eq!(event_data(42, 16), "seq=00000042....");
        assert_eq!(event_data(7, 4), "seq=00000007");
    }

    #[test]
    fn missing_events_are_lost_and_repeats_disordered() {
        let mut reader = SseReader::new(4);
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
        };
        assert_eq!(FanoutReport::parse_line(&report.to_string()), Some(report));
        assert_eq!(FanoutReport::parse_line("held 10"), None);
        assert_eq!(FanoutReport::parse_line("fanout-result streams=x"), None);
    }
}
