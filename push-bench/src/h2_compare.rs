//! The HTTP/2 comparison: two push-server builds (say, hyper's HTTP/2 server
//! before and push-tower's own loop on `h2` after) on the same h2c work,
//! side by side in one run.
//!
//! ```text
//! $ push-bench h2-compare --before OLD/push-server --after NEW/push-server --rounds 3
//! ```
//!
//! Each round measures both builds on two workloads, the builds in
//! alternating order (before first in odd rounds, after first in even ones),
//! so that drift in the machine falls on both. Every measurement starts a
//! fresh server pinned to core 0, with its default limits; the load runs
//! pinned to core 1.
//!
//! - **Long-poll cycle.** A channel with a few retained events, so that
//!   `GET /channels/{name}/longpoll?from=earliest` answers at once; a short
//!   `h2load` warm-up, then `h2load -n N -c C -m M` on that URL. Reported:
//!   requests per second (as `h2load` computes them) and the server's CPU
//!   time (user + system, from `/proc/PID/stat`) per 1,000 requests.
//! - **SSE fan-out.** `push-bench fanout` (see [`fanout`](crate::fanout)):
//!   many SSE streams over a few h2c connections, then a bounded number of
//!   events published at a fixed rate. Reported: deliveries per second of
//!   server CPU time, and events lost (which must be 0).
//!
//! Every measurement also shows the CPU time other processes took on the
//! server's core meanwhile (its busy time from `/proc/stat` less the
//! server's own): on a shared machine, a measurement with much of it
//! competed with something else and is worth repeating.
//!
//! The report lists every measurement, then each build's median over the
//! rounds and after's median against before's.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;

use crate::child::{self, PinnedChild};
use crate::cpu;
use crate::fanout::FanoutReport;
use crate::h2c::Connection;
use crate::h2load::{self, H2loadOptions, H2loadSummary};
use crate::idle::median;
use crate::server::parse_listening_line;
use crate::{Error, Result};

/// The core servers run on.
pub const SERVER_CORE: usize = 0;

/// The core the load runs on.
pub const LOAD_CORE: usize = 1;

/// How long a server may take to print where it listens.
const STARTUP: Duration = Duration::from_secs(10);

/// The channel the long polls read.
const LONG_POLL_CHANNEL: &str = "longpoll";

/// The channel the SSE streams subscribe to.
const FANOUT_CHANNEL: &str = "fanout";

/// A build under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Build {
    /// `--before`.
    Before,
    /// `--after`.
    After,
}

impl Build {
    /// Its name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Build::Before => "before",
            Build::After => "after",
        }
    }

    /// The builds in the order round `round` measures them.
    pub fn order(round: u32) -> [Build; 2] {
        if round % 2 == 1 {
            [Build::Before, Build::After]
        } else {
            [Build::After, Build::Before]
        }
    }
}

/// The long-poll workload.
#[derive(Debug, Clone)]
pub struct LongPollShape {
    /// Measured requests (`h2load -n`).
    pub requests: u64,
    /// Warm-up requests, run first and not measured.
    pub warm_up: u64,
    /// h2c connections (`h2load -c`).
    pub clients: u32,
    /// Streams in flight per connection (`h2load -m`).
    pub streams_per_client: u32,
    /// Events retained on the channel, each answered by every long poll.
    pub retained: usize,
}

/// The fan-out workload, as `h2-compare`, `redis-compare` and `fanout`
/// take it on the command line; see
/// [`FanoutOptions`](crate::fanout::FanoutOptions).
#[derive(Debug, Clone, clap::Args)]
pub struct FanoutShape {
    /// Streams (SSE, NDJSON or WebSocket).
    #[arg(long, default_value_t = 1000)]
    pub streams: usize,
    /// h2c connections the streams are spread over (over HTTP/1.1, each
    /// stream has its own).
    #[arg(long, default_value_t = 10)]
    pub connections: usize,
    /// Events published.
    #[arg(long, default_value_t = 300)]
    pub publishes: usize,
    /// Events published per second.
    #[arg(long, default_value_t = 100.0)]
    pub rate: f64,
    /// Bytes of data per event (at least 12: `seq=` and eight digits).
    #[arg(long, default_value_t = 64)]
    pub event_bytes: usize,
}

/// How a comparison goes.
#[derive(Debug, Clone)]
pub struct H2CompareOptions {
    /// The push-server binary measured as `before`.
    pub before: PathBuf,
    /// The push-server binary measured as `after`.
    pub after: PathBuf,
    /// Rounds; each measures both builds on both workloads.
    pub rounds: u32,
    /// The long-poll workload.
    pub long_poll: LongPollShape,
    /// The fan-out workload.
    pub fanout: FanoutShape,
    /// The longest any one step (an `h2load` run, subscribing, draining)
    /// may take.
    pub within: Duration,
}

impl H2CompareOptions {
    fn binary(&self, build: Build) -> &Path {
        match build {
            Build::Before => &self.before,
            Build::After => &self.after,
        }
    }
}

/// One long-poll measurement.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LongPollMeasurement {
    /// The build.
    pub build: Build,
    /// The round, from 1.
    pub round: u32,
    /// What `h2load` reported.
    pub summary: H2loadSummary,
    /// The server's CPU time over the measured requests.
    pub server_cpu: Duration,
    /// How long the server's core was busy meanwhile, by any process.
    pub server_core_busy: Duration,
}

impl LongPollMeasurement {
    /// CPU time other processes took on the server's core meanwhile.
    pub fn others_on_server_core(&self) -> Duration {
        self.server_core_busy.saturating_sub(self.server_cpu)
    }

    /// Server CPU milliseconds per 1,000 requests.
    pub fn cpu_ms_per_thousand(&self) -> f64 {
        self.server_cpu.as_secs_f64() * 1000.0 / (self.summary.succeeded.max(1) as f64 / 1000.0)
    }
}

/// One fan-out measurement.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FanoutMeasurement {
    /// The build.
    pub build: Build,
    /// The round, from 1.
    pub round: u32,
    /// What `push-bench fanout` reported.
    pub report: FanoutReport,
}

/// Every measurement of a comparison.
#[derive(Debug, Clone, Default)]
pub struct Comparison {
    /// The long-poll measurements, in the order taken.
    pub long_polls: Vec<LongPollMeasurement>,
    /// The fan-out measurements, in the order taken.
    pub fanouts: Vec<FanoutMeasurement>,
}

/// Measures both builds in every round, printing progress on stderr.
///
/// # Errors
///
/// When `taskset` or `h2load` is missing, a binary does not exist, or any
/// step of a measurement fails; the error names the build, workload and
/// round. Lost events are not an error: the report shows them.
pub async fn run(options: &H2CompareOptions) -> Result<Comparison> {
    child::taskset()?;
    h2load::h2load()?;
    cpu::ticks_per_second()?;
    for build in [Build::Before, Build::After] {
        let binary = options.binary(build);
        if !binary.is_file() {
            return Err(Error::new(format!(
                "--{} {} is not a file: build push-server (`cargo build --release -p \
                 push-server`) and give the path of the binary",
                build.name(),
                binary.display()
            )));
        }
    }
    if options.rounds == 0 {
        return Err(Error::new("nothing to measure: give at least one round"));
    }
    let mut comparison = Comparison::default();
    for round in 1..=options.rounds {
        for build in Build::order(round) {
            eprintln!(
                "h2-compare: round {round}/{}, {}, long-poll cycle",
                options.rounds,
                build.name()
            );
            let measurement = long_poll(build, round, options).await.map_err(|error| {
                Error::new(format!(
                    "h2-compare, round {round}, {}, long poll: {error}",
                    build.name()
                ))
            })?;
            comparison.long_polls.push(measurement);
        }
        for build in Build::order(round) {
            eprintln!(
                "h2-compare: round {round}/{}, {}, SSE fan-out",
                options.rounds,
                build.name()
            );
            let measurement = fanout(build, round, options).await.map_err(|error| {
                Error::new(format!(
                    "h2-compare, round {round}, {}, SSE fan-out: {error}",
                    build.name()
                ))
            })?;
            comparison.fanouts.push(measurement);
        }
    }
    Ok(comparison)
}

fn start_server(build: Build, options: &H2CompareOptions) -> Result<PinnedChild> {
    let args = ["--listen".to_owned(), "127.0.0.1:0".to_owned()];
    PinnedChild::spawn(build.name(), SERVER_CORE, options.binary(build), &args)
}

async fn long_poll(
    build: Build,
    round: u32,
    options: &H2CompareOptions,
) -> Result<LongPollMeasurement> {
    let shape = &options.long_poll;
    let mut server = start_server(build, options)?;
    let address = server
        .wait_for_line("the address it listens on", STARTUP, parse_listening_line)
        .await?;
    let mut connection = Connection::open(address).await?;
    for n in 0..shape.retained {
        let data = format!("retained event {n}, answered by every long poll");
        connection
            .publish(LONG_POLL_CHANNEL, Bytes::from(data))
            .await?;
    }
    drop(connection);
    let mut h2load = H2loadOptions {
        url: format!("http://{address}/channels/{LONG_POLL_CHANNEL}/longpoll?from=earliest"),
        requests: shape.warm_up,
        clients: shape.clients,
        streams_per_client: shape.streams_per_client,
        core: LOAD_CORE,
        within: options.within,
    };
    if shape.warm_up > 0 {
        h2load::run(&h2load).await?;
    }
    h2load.requests = shape.requests;
    let core_before = cpu::core_busy(SERVER_CORE)?;
    let before = cpu::cpu_time(server.pid())?;
    let summary = h2load::run(&h2load).await?;
    let after = cpu::cpu_time(server.pid())?;
    let core_after = cpu::core_busy(SERVER_CORE)?;
    server.ensure_running()?;
    server.stop().await?;
    Ok(LongPollMeasurement {
        build,
        round,
        summary,
        server_cpu: after.since(before),
        server_core_busy: core_after.since(core_before),
    })
}

async fn fanout(build: Build, round: u32, options: &H2CompareOptions) -> Result<FanoutMeasurement> {
    let mut server = start_server(build, options)?;
    let address = server
        .wait_for_line("the address it listens on", STARTUP, parse_listening_line)
        .await?;
    let target = LoadTarget {
        server: address,
        publish_to: None,
        server_pid: server.pid(),
        channel: FANOUT_CHANNEL.to_owned(),
        protocol: crate::fanout::LoadProtocol::H2c,
        technique: crate::technique::Technique::Sse,
        count_writes: false,
    };
    let report = spawn_fanout(&target, &options.fanout, options.within).await?;
    server.ensure_running()?;
    server.stop().await?;
    Ok(FanoutMeasurement {
        build,
        round,
        report,
    })
}

/// Where a fan-out load goes.
#[derive(Debug, Clone)]
pub(crate) struct LoadTarget {
    /// The node the streams subscribe to, pinned to [`SERVER_CORE`].
    pub(crate) server: std::net::SocketAddr,
    /// The node events are published to, if another.
    pub(crate) publish_to: Option<std::net::SocketAddr>,
    /// The subscribing node's process id.
    pub(crate) server_pid: u32,
    pub(crate) channel: String,
    /// What the load speaks.
    pub(crate) protocol: crate::fanout::LoadProtocol,
    /// How the streams subscribe.
    pub(crate) technique: crate::technique::Technique,
    /// Whether the load counts the server's write system calls.
    pub(crate) count_writes: bool,
}

/// Runs `push-bench fanout` against `target`, pinned to [`LOAD_CORE`],
/// and returns its report.
pub(crate) async fn spawn_fanout(
    target: &LoadTarget,
    shape: &FanoutShape,
    within: Duration,
) -> Result<FanoutReport> {
    let bench = std::env::current_exe().map_err(|error| {
        Error::new(format!(
            "cannot find the path of push-bench itself: {error}"
        ))
    })?;
    let protocol = target.protocol.arg();
    let mut args: Vec<String> = [
        "fanout",
        "--technique",
        target.technique.name(),
        "--protocol",
        protocol,
        "--server",
        &target.server.to_string(),
        "--server-pid",
        &target.server_pid.to_string(),
        "--server-core",
        &SERVER_CORE.to_string(),
        "--channel",
        &target.channel,
        "--streams",
        &shape.streams.to_string(),
        "--connections",
        &shape.connections.to_string(),
        "--publishes",
        &shape.publishes.to_string(),
        "--rate",
        &shape.rate.to_string(),
        "--event-bytes",
        &shape.event_bytes.to_string(),
        "--within-secs",
        &within.as_secs().max(1).to_string(),
    ]
    .iter()
    .map(|arg| (*arg).to_owned())
    .collect();
    if let Some(publish_to) = target.publish_to {
        args.extend(["--publish-to".to_owned(), publish_to.to_string()]);
    }
    if target.count_writes {
        args.push("--count-writes".to_owned());
    }
    let mut load = PinnedChild::spawn("fanout", LOAD_CORE, &bench, &args)?;
    // Subscribing, publishing and draining, each bounded by the load itself
    // (and perf's steps by 10 s each); the margin lets its own message
    // through first.
    let bound = within * 2
        + Duration::from_secs_f64(shape.publishes as f64 / shape.rate)
        + Duration::from_secs(if target.count_writes { 45 } else { 15 });
    let report = load
        .wait_for_line("a `fanout-result` line", bound, FanoutReport::parse_line)
        .await?;
    load.stop().await?;
    Ok(report)
}

/// Fails when any fan-out lost an event, received one out of order or had
/// a stream end early: each stream must receive every event once, in
/// order.
///
/// # Errors
///
/// As said, naming each such measurement.
pub fn check_deliveries(comparison: &Comparison) -> Result<()> {
    let faults: Vec<String> = comparison
        .fanouts
        .iter()
        .filter_map(|m| {
            let fault = m.report.fault()?;
            Some(format!("round {} {}: {fault}", m.round, m.build.name()))
        })
        .collect();
    if faults.is_empty() {
        return Ok(());
    }
    Err(Error::new(format!(
        "SSE fan-out did not deliver every event once and in order ({}); the server's \
         stderr above may say why",
        faults.join("; ")
    )))
}

/// One build's medians over the rounds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Medians {
    /// Long-poll requests per second.
    pub requests_per_second: f64,
    /// Long-poll server CPU milliseconds per 1,000 requests.
    pub cpu_ms_per_thousand: f64,
    /// Fan-out deliveries per server CPU second.
    pub deliveries_per_cpu_second: f64,
    /// Fan-out events lost, summed over the rounds.
    pub lost: u64,
}

/// `build`'s medians, or `None` when it has no measurement of either
/// workload.
pub fn medians(comparison: &Comparison, build: Build) -> Option<Medians> {
    let long_polls: Vec<&LongPollMeasurement> = comparison
        .long_polls
        .iter()
        .filter(|m| m.build == build)
        .collect();
    let fanouts: Vec<&FanoutMeasurement> = comparison
        .fanouts
        .iter()
        .filter(|m| m.build == build)
        .collect();
    let of = |values: Vec<f64>| median(&values);
    Some(Medians {
        requests_per_second: of(long_polls
            .iter()
            .map(|m| m.summary.requests_per_second)
            .collect())?,
        cpu_ms_per_thousand: of(long_polls.iter().map(|m| m.cpu_ms_per_thousand()).collect())?,
        deliveries_per_cpu_second: of(fanouts
            .iter()
            .map(|m| m.report.deliveries_per_cpu_second())
            .collect())?,
        lost: fanouts.iter().map(|m| m.report.lost).sum(),
    })
}

/// The report as text tables.
pub fn render_table(comparison: &Comparison, options: &H2CompareOptions) -> String {
    let mut out = String::new();
    let long_poll = &options.long_poll;
    let _ = writeln!(out, "before: {}", options.before.display());
    let _ = writeln!(out, "after:  {}", options.after.display());
    let _ = writeln!(
        out,
        "server pinned to core {SERVER_CORE}, load to core {LOAD_CORE}; \
         server CPU = utime + stime from /proc/PID/stat"
    );
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "Long-poll cycle over h2c: h2load -n {} -c {} -m {} \
         /channels/{LONG_POLL_CHANNEL}/longpoll?from=earliest ({} retained events, {} warm-up requests)",
        long_poll.requests,
        long_poll.clients,
        long_poll.streams_per_client,
        long_poll.retained,
        long_poll.warm_up
    );
    let _ = writeln!(
        out,
        "{:>5}  {:<6}  {:>9}  {:>11}  {:>12}  {:>18}  {:>13}",
        "round",
        "build",
        "succeeded",
        "requests/s",
        "server CPU s",
        "CPU ms / 1,000 req",
        "others core 0"
    );
    for m in &comparison.long_polls {
        let _ = writeln!(
            out,
            "{:>5}  {:<6}  {:>9}  {:>11.0}  {:>12.2}  {:>18.2}  {:>12.2}s",
            m.round,
            m.build.name(),
            m.summary.succeeded,
            m.summary.requests_per_second,
            m.server_cpu.as_secs_f64(),
            m.cpu_ms_per_thousand(),
            m.others_on_server_core().as_secs_f64()
        );
    }
    let _ = writeln!(out);
    let fanout = &options.fanout;
    let _ = writeln!(
        out,
        "SSE fan-out over h2c: {} streams on {} connections, {} publishes at {}/s, {}-byte events",
        fanout.streams, fanout.connections, fanout.publishes, fanout.rate, fanout.event_bytes
    );
    let _ = writeln!(
        out,
        "{:>5}  {:<6}  {:>10}  {:>4}  {:>10}  {:>5}  {:>12}  {:>16}  {:>8}  {:>13}",
        "round",
        "build",
        "deliveries",
        "lost",
        "disordered",
        "ended",
        "server CPU s",
        "deliveries/CPU s",
        "drain ms",
        "others core 0"
    );
    for m in &comparison.fanouts {
        let r = &m.report;
        let _ = writeln!(
            out,
            "{:>5}  {:<6}  {:>10}  {:>4}  {:>10}  {:>5}  {:>12.2}  {:>16.0}  {:>8}  {:>12.2}s",
            m.round,
            m.build.name(),
            r.deliveries,
            r.lost,
            r.disordered,
            r.ended,
            r.server_cpu_seconds(),
            r.deliveries_per_cpu_second(),
            r.drain_time.as_millis(),
            r.others_on_server_core_seconds()
        );
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "{:<15}  {:>11}  {:>18}  {:>17}  {:>10}",
        "median", "requests/s", "CPU ms / 1,000 req", "deliveries/CPU s", "lost (sum)"
    );
    let before = medians(comparison, Build::Before);
    let after = medians(comparison, Build::After);
    for (build, medians) in [(Build::Before, before), (Build::After, after)] {
        if let Some(m) = medians {
            let _ = writeln!(
                out,
                "{:<15}  {:>11.0}  {:>18.2}  {:>17.0}  {:>10}",
                build.name(),
                m.requests_per_second,
                m.cpu_ms_per_thousand,
                m.deliveries_per_cpu_second,
                m.lost
            );
        }
    }
    if let (Some(before), Some(after)) = (before, after) {
        let _ = writeln!(
            out,
            "{:<15}  {:>10.3}x  {:>17.3}x  {:>16.3}x",
            "after / before",
            after.requests_per_second / before.requests_per_second,
            after.cpu_ms_per_thousand / before.cpu_ms_per_thousand,
            after.deliveries_per_cpu_second / before.deliveries_per_cpu_second
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn long_poll(build: Build, round: u32, rps: f64, cpu_ms: u64) -> LongPollMeasurement {
        LongPollMeasurement {
            build,
            round,
            summary: H2loadSummary {
                succeeded: 100_000,
                failed: 0,
                status_2xx: 100_000,
                requests_per_second: rps,
            },
            server_cpu: Duration::from_millis(cpu_ms),
            server_core_busy: Duration::from_millis(cpu_ms + 10),
        }
    }

    fn fanout(build: Build, round: u32, ticks: u64) -> FanoutMeasurement {
        FanoutMeasurement {
            build,
            round,
            report: FanoutReport {
                streams: 1000,
                published: 100,
                deliveries: 100_000,
                lost: 0,
                disordered: 0,
                ended: 0,
                server_cpu_ticks: ticks,
                server_core_busy_ticks: ticks,
                ticks_per_second: 100,
                publish_time: Duration::from_secs(1),
                drain_time: Duration::from_millis(2),
                latency_p50_us: 300,
                latency_p99_us: 900,
                writes: None,
            },
        }
    }

    #[test]
    fn rounds_alternate_the_order() {
        assert_eq!(Build::order(1), [Build::Before, Build::After]);
        assert_eq!(Build::order(2), [Build::After, Build::Before]);
        assert_eq!(Build::order(3), [Build::Before, Build::After]);
    }

    #[test]
    fn cpu_per_thousand_requests() {
        assert_eq!(
            long_poll(Build::After, 1, 1.0, 1500).cpu_ms_per_thousand(),
            15.0
        );
    }

    #[test]
    fn medians_and_ratios() {
        let comparison = Comparison {
            long_polls: vec![
                long_poll(Build::Before, 1, 90_000.0, 1000),
                long_poll(Build::After, 1, 72_000.0, 1500),
                long_poll(Build::After, 2, 80_000.0, 1300),
                long_poll(Build::Before, 2, 100_000.0, 1100),
            ],
            fanouts: vec![
                fanout(Build::Before, 1, 50),
                fanout(Build::After, 1, 40),
                fanout(Build::After, 2, 40),
                fanout(Build::Before, 2, 50),
            ],
        };
        let before = medians(&comparison, Build::Before).unwrap();
        assert_eq!(before.requests_per_second, 95_000.0);
        assert_eq!(before.deliveries_per_cpu_second, 200_000.0);
        let after = medians(&comparison, Build::After).unwrap();
        assert_eq!(after.cpu_ms_per_thousand, 14.0);
        assert_eq!(after.deliveries_per_cpu_second, 250_000.0);
        let options = H2CompareOptions {
            before: "old".into(),
            after: "new".into(),
            rounds: 2,
            long_poll: LongPollShape {
                requests: 100_000,
                warm_up: 0,
                clients: 10,
                streams_per_client: 10,
                retained: 3,
            },
            fanout: FanoutShape {
                streams: 1000,
                connections: 10,
                publishes: 100,
                rate: 100.0,
                event_bytes: 64,
            },
            within: Duration::from_secs(60),
        };
        let table = render_table(&comparison, &options);
        assert!(table.contains("after / before"), "{table}");
        assert!(table.contains("1.250x"), "deliveries per CPU s: {table}");
        assert!(check_deliveries(&comparison).is_ok());
        let mut lossy = comparison;
        lossy.fanouts[1].report.lost = 3;
        let error = check_deliveries(&lossy).unwrap_err().to_string();
        assert!(error.contains("round 1 after: 3 lost"), "{error}");
    }
}
