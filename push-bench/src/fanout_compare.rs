//! The SSE fan-out comparison: push-server and the baselines a user would
//! write without push, on DESIGN.md's three fan-out regimes, side by side
//! in one run.
//!
//! ```text
//! $ push-bench fanout-compare --servers push,axum-sse,raw-writer --rounds 2 [--protocol http1] [--quick]
//! ```
//!
//! Each round measures every server on every regime, the servers in an
//! order that rotates by round, so that drift in the machine falls on all
//! of them. Each measurement starts a fresh server pinned to core 0 and
//! runs `push-bench sse-fanout` pinned to core 1 (see
//! [`fanout`](crate::fanout)): the streams subscribe, then events of
//! `--event-bytes` are published at the regime's rate.
//!
//! | regime | streams | rate | events |
//! |---|---|---|---|
//! | `wide` | 10,000 | 5/s | 50 |
//! | `middle` | 1,000 | 100/s | 300 |
//! | `fast` | 100 | 2,000/s | 6,000 |
//!
//! `--quick` shrinks every regime (100 streams, 20 events at 50/s) so that
//! a whole run takes well under two minutes: it checks that the harness and
//! every server still work, and says nothing about speed.
//!
//! Reported per measurement: deliveries and losses, deliveries per
//! CPU-second of the server, and publish-to-receive p50 and p99; then each
//! server's medians and push's ratio to each baseline.
//!
//! Write system calls per delivery are not counted here: `syscw` of
//! `/proc/PID/io` counts `write(2)` and `writev(2)` but not the `sendto(2)`
//! that tokio's sockets use for single buffers (nor the eventfd writes
//! apart from them), so it compares servers unfairly; `strace -c -f -p PID`
//! over a run counts them all, at a cost that distorts every other figure.

use std::fmt::Write as _;
use std::time::Duration;

use crate::child::PinnedChild;
use crate::fanout::{FanoutReport, LoadProtocol};
use crate::h2_compare::{spawn_fanout, FanoutShape, LoadTarget, SERVER_CORE};
use crate::idle::median;
use crate::server::{parse_listening_line, Server};
use crate::{Error, Result};

/// How long a server may take to start.
const STARTUP: Duration = Duration::from_secs(10);

/// One of DESIGN.md's fan-out regimes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Regime {
    /// 10,000 subscribers, 5 events per second.
    Wide,
    /// 1,000 subscribers, 100 events per second.
    Middle,
    /// 100 subscribers, 2,000 events per second.
    Fast,
}

impl Regime {
    /// Its name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Regime::Wide => "wide",
            Regime::Middle => "middle",
            Regime::Fast => "fast",
        }
    }

    /// Its workload; `quick` shrinks it to a smoke test.
    pub fn shape(self, event_bytes: usize, quick: bool) -> FanoutShape {
        let (streams, rate, publishes) = match (self, quick) {
            (_, true) => (100, 50.0, 20),
            (Regime::Wide, false) => (10_000, 5.0, 50),
            (Regime::Middle, false) => (1_000, 100.0, 300),
            (Regime::Fast, false) => (100, 2_000.0, 6_000),
        };
        FanoutShape {
            streams,
            connections: 10,
            publishes,
            rate,
            event_bytes,
        }
    }
}

/// How the comparison goes.
#[derive(Debug, Clone)]
pub struct FanoutCompareOptions {
    /// The servers, push first by convention; the first is compared with
    /// each of the others.
    pub servers: Vec<Server>,
    /// The regimes.
    pub regimes: Vec<Regime>,
    /// Rounds.
    pub rounds: u32,
    /// What the load speaks.
    pub protocol: LoadProtocol,
    /// Bytes of data per event.
    pub event_bytes: usize,
    /// Shrinks the regimes to a smoke test.
    pub quick: bool,
    /// The longest subscribing, or the wait for deliveries, may take.
    pub within: Duration,
}

/// One measurement.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Measurement {
    /// The server.
    pub server: Server,
    /// The regime.
    pub regime: Regime,
    /// The round, from 1.
    pub round: u32,
    /// What the load reported.
    pub report: FanoutReport,
}

/// The servers of round `round` (from 1), rotated so each leads in turn.
pub fn order(servers: &[Server], round: u32) -> Vec<Server> {
    let mut rotated = servers.to_vec();
    if !rotated.is_empty() {
        let by = (round as usize - 1) % rotated.len();
        rotated.rotate_left(by);
    }
    rotated
}

/// Measures every server on every regime in every round, printing
/// progress on stderr.
///
/// # Errors
///
/// When `taskset` is missing, a server cannot be started, or a load fails.
pub async fn run(options: &FanoutCompareOptions) -> Result<Vec<Measurement>> {
    crate::child::taskset()?;
    let mut measurements = Vec::new();
    for round in 1..=options.rounds {
        for regime in &options.regimes {
            for server in order(&options.servers, round) {
                eprintln!(
                    "fanout-compare: round {round}/{}, {}, {}",
                    options.rounds,
                    regime.name(),
                    server.name()
                );
                let report = measure(server, *regime, round, options).await?;
                measurements.push(Measurement {
                    server,
                    regime: *regime,
                    round,
                    report,
                });
            }
        }
    }
    Ok(measurements)
}

async fn measure(
    server: Server,
    regime: Regime,
    round: u32,
    options: &FanoutCompareOptions,
) -> Result<FanoutReport> {
    let (program, args) = server.command()?;
    let mut child = PinnedChild::spawn(server.name(), SERVER_CORE, &program, &args)?;
    let address = child
        .wait_for_line("the address it listens on", STARTUP, parse_listening_line)
        .await?;
    let target = LoadTarget {
        server: address,
        publish_to: None,
        server_pid: child.pid(),
        channel: format!("fanout-{}-{round}", regime.name()),
        protocol: options.protocol,
    };
    let shape = regime.shape(options.event_bytes, options.quick);
    let report = spawn_fanout(&target, &shape, options.within).await;
    child.ensure_running()?;
    child.stop().await?;
    report
}

/// Fails when push (the first server) lost an event, received one out of
/// order or had a stream end early. Baselines may drop a slow stream, as
/// the servers users write do; their losses are reported, not failed.
///
/// # Errors
///
/// As said, naming each such measurement.
pub fn check_deliveries(measurements: &[Measurement], push: Server) -> Result<()> {
    let faults: Vec<String> = measurements
        .iter()
        .filter(|m| m.server == push)
        .filter_map(|m| {
            let fault = m.report.fault()?;
            Some(format!("round {} {}: {fault}", m.round, m.regime.name()))
        })
        .collect();
    if faults.is_empty() {
        Ok(())
    } else {
        Err(Error::new(format!(
            "{} did not deliver every event: {}",
            push.name(),
            faults.join("; ")
        )))
    }
}

/// The medians of one server on one regime.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Medians {
    /// Deliveries per server CPU-second.
    pub deliveries_per_cpu_second: f64,
    /// Publish-to-receive median, in milliseconds.
    pub p50_ms: f64,
    /// Publish-to-receive 99th percentile, in milliseconds.
    pub p99_ms: f64,
    /// Events lost, summed over the rounds.
    pub lost: u64,
}

/// `server`'s medians on `regime`, if it was measured.
pub fn medians(measurements: &[Measurement], server: Server, regime: Regime) -> Option<Medians> {
    let of = |value: fn(&FanoutReport) -> f64| {
        let values: Vec<f64> = measurements
            .iter()
            .filter(|m| m.server == server && m.regime == regime)
            .map(|m| value(&m.report))
            .collect();
        median(&values)
    };
    Some(Medians {
        deliveries_per_cpu_second: of(FanoutReport::deliveries_per_cpu_second)?,
        p50_ms: of(|r| r.latency_p50_us as f64 / 1000.0)?,
        p99_ms: of(|r| r.latency_p99_us as f64 / 1000.0)?,
        lost: measurements
            .iter()
            .filter(|m| m.server == server && m.regime == regime)
            .map(|m| m.report.lost)
            .sum(),
    })
}

/// The report as text tables.
pub fn render_table(measurements: &[Measurement], options: &FanoutCompareOptions) -> String {
    let mut out = String::new();
    let protocol = match options.protocol {
        LoadProtocol::H2c => "h2c",
        LoadProtocol::Http1 => "HTTP/1.1",
    };
    let _ = writeln!(
        out,
        "SSE fan-out over {protocol}, {}-byte events{}; server pinned to core {SERVER_CORE}, load to core 1",
        options.event_bytes,
        if options.quick { " (quick mode: says nothing about speed)" } else { "" }
    );
    for regime in &options.regimes {
        let shape = regime.shape(options.event_bytes, options.quick);
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "{}: {} streams, {} events at {}/s",
            regime.name(),
            shape.streams,
            shape.publishes,
            shape.rate
        );
        let _ = writeln!(
            out,
            "{:>5}  {:<20}  {:>10}  {:>6}  {:>16}  {:>8}  {:>8}  {:>13}",
            "round",
            "server",
            "deliveries",
            "lost",
            "deliveries/CPU s",
            "p50 ms",
            "p99 ms",
            "others core 0"
        );
        for m in measurements.iter().filter(|m| m.regime == *regime) {
            let _ = writeln!(
                out,
                "{:>5}  {:<20}  {:>10}  {:>6}  {:>16.0}  {:>8.2}  {:>8.2}  {:>12.2}s",
                m.round,
                m.server.name(),
                m.report.deliveries,
                m.report.lost,
                m.report.deliveries_per_cpu_second(),
                m.report.latency_p50_us as f64 / 1000.0,
                m.report.latency_p99_us as f64 / 1000.0,
                m.report.others_on_server_core_seconds()
            );
        }
        let _ = writeln!(
            out,
            "{:<20}  {:>16}  {:>8}  {:>8}  {:>6}",
            "median", "deliveries/CPU s", "p50 ms", "p99 ms", "lost"
        );
        for server in &options.servers {
            if let Some(m) = medians(measurements, *server, *regime) {
                let _ = writeln!(
                    out,
                    "{:<20}  {:>16.0}  {:>8.2}  {:>8.2}  {:>6}",
                    server.name(),
                    m.deliveries_per_cpu_second,
                    m.p50_ms,
                    m.p99_ms,
                    m.lost
                );
            }
        }
        if let Some((push, baselines)) = options.servers.split_first() {
            if let Some(ours) = medians(measurements, *push, *regime) {
                for baseline in baselines {
                    if let Some(theirs) = medians(measurements, *baseline, *regime) {
                        let _ = writeln!(
                            out,
                            "{:<20}  {:>15.3}x  {:>7.2}x  {:>7.2}x",
                            format!("{} / {}", push.name(), baseline.name()),
                            ours.deliveries_per_cpu_second / theirs.deliveries_per_cpu_second,
                            ours.p50_ms / theirs.p50_ms,
                            ours.p99_ms / theirs.p99_ms
                        );
                    }
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_rotate_the_servers() {
        let servers = [Server::Push, "tungstenite-default".parse().unwrap()];
        assert_eq!(order(&servers, 1), servers);
        assert_eq!(order(&servers, 2), [servers[1], servers[0]]);
        assert_eq!(order(&servers, 3), servers);
    }

    #[test]
    fn the_regimes_are_designs_and_quick_mode_is_small() {
        let middle = Regime::Middle.shape(100, false);
        assert_eq!(
            (middle.streams, middle.rate, middle.publishes),
            (1_000, 100.0, 300)
        );
        let wide = Regime::Wide.shape(100, false);
        assert_eq!((wide.streams, wide.rate), (10_000, 5.0));
        let fast = Regime::Fast.shape(100, false);
        assert_eq!((fast.streams, fast.rate), (100, 2_000.0));
        for regime in [Regime::Wide, Regime::Middle, Regime::Fast] {
            let quick = regime.shape(100, true);
            assert!(quick.streams <= 100 && quick.publishes as f64 / quick.rate < 1.0);
        }
    }

    #[test]
    fn push_losing_an_event_fails_the_run_and_a_baseline_losing_one_does_not() {
        let report = |lost| {
            FanoutReport::parse_line(&format!(
                "fanout-result streams=2 published=3 deliveries={} lost={lost} disordered=0 \
                 ended=0 server_cpu_ticks=5 server_core_busy_ticks=6 ticks_per_second=100 \
                 publish_ms=30 drain_ms=1 latency_p50_us=250 latency_p99_us=900",
                6 - lost
            ))
            .unwrap()
        };
        let baseline: Server = "tungstenite-default".parse().unwrap();
        let measurement = |server, lost| Measurement {
            server,
            regime: Regime::Fast,
            round: 1,
            report: report(lost),
        };
        assert!(check_deliveries(&[measurement(baseline, 2)], Server::Push).is_ok());
        let error = check_deliveries(&[measurement(Server::Push, 1)], Server::Push)
            .unwrap_err()
            .to_string();
        assert!(error.contains("round 1 fast: 1 lost"), "{error}");
        let m = medians(&[measurement(Server::Push, 0)], Server::Push, Regime::Fast).unwrap();
        assert_eq!(m.p99_ms, 0.9);
    }
}
