//! The fan-out comparison: push-server and the baselines a user would
//! write without push, on DESIGN.md's three fan-out regimes, technique by
//! technique (SSE, NDJSON, WebSocket), side by side in one run.
//!
//! ```text
//! $ push-bench fanout-compare --servers push,axum-sse,raw-writer,tungstenite-default \
//!     --techniques sse,ndjson,ws --rounds 2 [--protocol http1|h2c] [--count-writes] [--quick]
//! ```
//!
//! Each round measures every server on every technique and regime, the
//! servers in an order that rotates by round, so that drift in the machine
//! falls on all of them. Each measurement starts a fresh server pinned to
//! core 0 and runs `push-bench fanout` pinned to core 1 (see
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
//! A server is measured on each technique it serves over the protocol
//! asked ([`unmeasured`] says why not): a pair it cannot serve is skipped,
//! and the report names it under the technique. A server that would be
//! measured on no technique at all is refused before anything runs
//! (`raw-writer` over h2c, say: it speaks HTTP/1.1 only), and so is
//! WebSocket over h2c (the load upgrades HTTP/1.1 connections only).
//!
//! Reported per measurement: deliveries and losses, deliveries per
//! CPU-second of the server, and publish-to-receive p50 and p99; then each
//! server's medians and push's ratio to each baseline.
//!
//! With `--count-writes`, each measurement also counts the server's write
//! system calls (`write`, `writev`, `sendto`, `sendmsg`: every thread's,
//! from the kernel's syscall tracepoints, with `perf stat -p`; see
//! [`writes`](crate::writes)) over exactly the window its CPU time is read
//! in, from the first publish to the last delivery. Reported: the four
//! counts, and writes per delivery, which is the total **less one per
//! publish** (each publish request's answer is one write on every server
//! here, and is not a delivery) over the deliveries. DESIGN.md's coalescing
//! target is at most 1, and below 1 when events queue up. `write` also
//! counts what is not a socket write (a tokio runtime waking a thread
//! through its eventfd), so the four counts are shown apart. perf must be
//! installed and allowed to count (root): if not, the run fails at once,
//! saying how to install it.

use std::fmt::Write as _;
use std::time::Duration;

use crate::child::PinnedChild;
use crate::fanout::{FanoutReport, LoadProtocol};
use crate::h2_compare::{spawn_fanout, FanoutShape, LoadTarget, SERVER_CORE};
use crate::idle::median;
use crate::server::{parse_listening_line, Server};
use crate::technique::Technique;
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
            // h2c only: at most 100 streams per connection, under the 200
            // concurrent streams hyper (so axum) allows by default.
            connections: streams.div_ceil(100).max(10),
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
    /// The techniques.
    pub techniques: Vec<Technique>,
    /// The regimes.
    pub regimes: Vec<Regime>,
    /// Rounds.
    pub rounds: u32,
    /// What the load speaks.
    pub protocol: LoadProtocol,
    /// Bytes of data per event.
    pub event_bytes: usize,
    /// Whether to count the server's write system calls with perf.
    pub count_writes: bool,
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
    /// The technique.
    pub technique: Technique,
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

/// Why `server` cannot be measured on `technique` over `protocol`, or
/// `None` when it can.
///
/// ```
/// use push_bench::fanout::LoadProtocol;
/// use push_bench::fanout_compare::unmeasured;
/// use push_bench::server::Server;
/// use push_bench::technique::Technique;
///
/// let raw_writer: Server = "raw-writer".parse().unwrap();
/// assert_eq!(unmeasured(raw_writer, Technique::Ndjson, LoadProtocol::Http1), None);
/// assert!(unmeasured(raw_writer, Technique::Ws, LoadProtocol::Http1).is_some());
/// assert!(unmeasured(raw_writer, Technique::Sse, LoadProtocol::H2c).is_some());
/// assert_eq!(unmeasured(Server::Push, Technique::Ndjson, LoadProtocol::H2c), None);
/// ```
pub fn unmeasured(server: Server, technique: Technique, protocol: LoadProtocol) -> Option<String> {
    if technique == Technique::Ws && protocol == LoadProtocol::H2c {
        Some(format!(
            "{server}: the WebSocket load upgrades HTTP/1.1 connections only, not h2c"
        ))
    } else if !server.serves(technique) {
        Some(format!(
            "{server} does not serve {} ({})",
            technique.label(),
            technique.path("{name}")
        ))
    } else if protocol == LoadProtocol::H2c && !server.serves_h2c() {
        Some(format!("{server} speaks HTTP/1.1 only (no h2c)"))
    } else {
        None
    }
}

/// Fails, before anything runs, when there is nothing to measure, when
/// WebSocket is asked over h2c, or when a server would be measured on none
/// of the techniques asked (it serves none of them, or not over h2c).
///
/// # Errors
///
/// As said, with what to change.
pub fn check(options: &FanoutCompareOptions) -> Result<()> {
    if options.servers.is_empty()
        || options.techniques.is_empty()
        || options.regimes.is_empty()
        || options.rounds == 0
    {
        return Err(Error::new(
            "nothing to measure: give at least one server, technique, regime and round",
        ));
    }
    if options.protocol == LoadProtocol::H2c && options.techniques.contains(&Technique::Ws) {
        return Err(Error::new(
            "--protocol h2c cannot carry the WebSocket fan-out: its load upgrades HTTP/1.1 \
             connections only (push's RFC 8441 WebSockets over HTTP/2 are not driven); \
             measure ws in a run with --protocol http1",
        ));
    }
    for &server in &options.servers {
        let mut reasons: Vec<String> = options
            .techniques
            .iter()
            .map(|&technique| unmeasured(server, technique, options.protocol))
            .collect::<Option<_>>()
            .unwrap_or_default();
        reasons.dedup();
        if !reasons.is_empty() {
            let hint = if options.protocol == LoadProtocol::H2c && !server.serves_h2c() {
                "leave it out of --servers, or measure it with --protocol http1"
            } else {
                "leave it out of --servers, or ask for a technique it serves"
            };
            return Err(Error::new(format!(
                "{server} would be measured on nothing: {}; {hint}",
                reasons.join("; ")
            )));
        }
    }
    Ok(())
}

/// Measures every server on every technique it serves and every regime, in
/// every round, printing progress on stderr.
///
/// # Errors
///
/// When [`check`] refuses the options, `taskset` is missing, writes are to
/// be counted and perf cannot count them, a server cannot be started, or a
/// load fails.
pub async fn run(options: &FanoutCompareOptions) -> Result<Vec<Measurement>> {
    check(options)?;
    crate::child::taskset()?;
    if options.count_writes {
        crate::writes::check_perf().await?;
    }
    // Fail on a missing push-server before the first round, not midway.
    for server in &options.servers {
        server.command()?;
    }
    let mut measurements = Vec::new();
    for round in 1..=options.rounds {
        for &technique in &options.techniques {
            for &regime in &options.regimes {
                for server in order(&options.servers, round) {
                    if unmeasured(server, technique, options.protocol).is_some() {
                        continue;
                    }
                    eprintln!(
                        "fanout-compare: round {round}/{}, {technique}, {}, {}",
                        options.rounds,
                        regime.name(),
                        server.name()
                    );
                    let report = measure(server, technique, regime, round, options).await?;
                    measurements.push(Measurement {
                        server,
                        technique,
                        regime,
                        round,
                        report,
                    });
                }
            }
        }
    }
    Ok(measurements)
}

async fn measure(
    server: Server,
    technique: Technique,
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
        channel: format!("fanout-{technique}-{}-{round}", regime.name()),
        protocol: options.protocol,
        technique,
        count_writes: options.count_writes,
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
            Some(format!(
                "round {} {} {}: {fault}",
                m.round,
                m.technique,
                m.regime.name()
            ))
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

/// The medians of one server on one technique and regime.
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
    /// Write system calls per delivery, less one per publish, when they
    /// were counted ([`FanoutReport::writes_per_delivery`]).
    pub writes_per_delivery: Option<f64>,
}

/// `server`'s medians on `technique` and `regime`, if it was measured.
pub fn medians(
    measurements: &[Measurement],
    server: Server,
    technique: Technique,
    regime: Regime,
) -> Option<Medians> {
    let of_this: Vec<&Measurement> = measurements
        .iter()
        .filter(|m| m.server == server && m.technique == technique && m.regime == regime)
        .collect();
    let of = |value: fn(&FanoutReport) -> Option<f64>| {
        let values: Vec<f64> = of_this.iter().filter_map(|m| value(&m.report)).collect();
        median(&values)
    };
    Some(Medians {
        deliveries_per_cpu_second: of(|r| Some(r.deliveries_per_cpu_second()))?,
        p50_ms: of(|r| Some(r.latency_p50_us as f64 / 1000.0))?,
        p99_ms: of(|r| Some(r.latency_p99_us as f64 / 1000.0))?,
        lost: of_this.iter().map(|m| m.report.lost).sum(),
        writes_per_delivery: of(FanoutReport::writes_per_delivery),
    })
}

/// The report as text tables, one section per technique.
pub fn render_table(measurements: &[Measurement], options: &FanoutCompareOptions) -> String {
    let mut out = String::new();
    for (n, technique) in options.techniques.iter().enumerate() {
        if n > 0 {
            let _ = writeln!(out);
        }
        render_technique(&mut out, measurements, options, *technique);
    }
    out
}

fn render_technique(
    out: &mut String,
    measurements: &[Measurement],
    options: &FanoutCompareOptions,
    technique: Technique,
) {
    let protocol = match technique {
        Technique::Ws => "HTTP/1.1 upgrade".to_owned(),
        Technique::Sse | Technique::Ndjson => options.protocol.label().to_owned(),
    };
    let _ = writeln!(
        out,
        "{} fan-out ({}) over {protocol}, {}-byte events{}; server pinned to core {SERVER_CORE}, load to core 1",
        technique.label(),
        technique.path("{name}"),
        options.event_bytes,
        if options.quick { " (quick mode: says nothing about speed)" } else { "" }
    );
    let servers: Vec<Server> = options
        .servers
        .iter()
        .copied()
        .filter(|&server| unmeasured(server, technique, options.protocol).is_none())
        .collect();
    for &server in &options.servers {
        if let Some(reason) = unmeasured(server, technique, options.protocol) {
            let _ = writeln!(out, "not measured: {reason}");
        }
    }
    if options.count_writes {
        let _ = writeln!(
            out,
            "writes: the server's write/writev/sendto/sendmsg calls from the first publish to \
             the last delivery; writes/dlv = (their sum - one answer per publish) / deliveries"
        );
    }
    let writes = options.count_writes;
    for regime in &options.regimes {
        let shape = regime.shape(options.event_bytes, options.quick);
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "{} {}: {} streams, {} events at {}/s",
            technique.label(),
            regime.name(),
            shape.streams,
            shape.publishes,
            shape.rate
        );
        let _ = write!(
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
        if writes {
            let _ = write!(
                out,
                "  {:>10}  {:>27}",
                "writes/dlv", "write/writev/sendto/sendmsg"
            );
        }
        let _ = writeln!(out);
        for m in measurements
            .iter()
            .filter(|m| m.technique == technique && m.regime == *regime)
        {
            let _ = write!(
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
            if writes {
                let counts = m.report.writes.map_or_else(String::new, |w| {
                    format!("{}/{}/{}/{}", w.write, w.writev, w.sendto, w.sendmsg)
                });
                let _ = write!(
                    out,
                    "  {:>10}  {counts:>27}",
                    per_delivery(m.report.writes_per_delivery())
                );
            }
            let _ = writeln!(out);
        }
        let _ = write!(
            out,
            "{:<27}  {:>16}  {:>8}  {:>8}  {:>6}",
            "median", "deliveries/CPU s", "p50 ms", "p99 ms", "lost"
        );
        if writes {
            let _ = write!(out, "  {:>10}", "writes/dlv");
        }
        let _ = writeln!(out);
        for &server in &servers {
            if let Some(m) = medians(measurements, server, technique, *regime) {
                let _ = write!(
                    out,
                    "{:<27}  {:>16.0}  {:>8.2}  {:>8.2}  {:>6}",
                    server.name(),
                    m.deliveries_per_cpu_second,
                    m.p50_ms,
                    m.p99_ms,
                    m.lost
                );
                if writes {
                    let _ = write!(out, "  {:>10}", per_delivery(m.writes_per_delivery));
                }
                let _ = writeln!(out);
            }
        }
        let Some((first, others)) = servers.split_first() else {
            continue;
        };
        let Some(ours) = medians(measurements, *first, technique, *regime) else {
            continue;
        };
        for baseline in others {
            if let Some(theirs) = medians(measurements, *baseline, technique, *regime) {
                let _ = write!(
                    out,
                    "{:<27}  {:>15.3}x  {:>7.2}x  {:>7.2}x",
                    format!("{} / {}", first.name(), baseline.name()),
                    ours.deliveries_per_cpu_second / theirs.deliveries_per_cpu_second,
                    ours.p50_ms / theirs.p50_ms,
                    ours.p99_ms / theirs.p99_ms,
                );
                if writes {
                    let ratio = ours
                        .writes_per_delivery
                        .zip(theirs.writes_per_delivery)
                        .map_or_else(|| "-".to_owned(), |(a, b)| format!("{:.2}x", a / b));
                    let _ = write!(out, "  {:>6}  {ratio:>10}", "");
                }
                let _ = writeln!(out);
            }
        }
    }
}

/// Writes per delivery as the tables show it: three decimals, `-` when
/// not counted.
fn per_delivery(value: Option<f64>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| format!("{v:.3}"))
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
            technique: Technique::Ndjson,
            regime: Regime::Fast,
            round: 1,
            report: report(lost),
        };
        assert!(check_deliveries(&[measurement(baseline, 2)], Server::Push).is_ok());
        let error = check_deliveries(&[measurement(Server::Push, 1)], Server::Push)
            .unwrap_err()
            .to_string();
        assert!(error.contains("round 1 ndjson fast: 1 lost"), "{error}");
        let m = medians(
            &[measurement(Server::Push, 0)],
            Server::Push,
            Technique::Ndjson,
            Regime::Fast,
        )
        .unwrap();
        assert_eq!(m.p99_ms, 0.9);
        assert_eq!(m.writes_per_delivery, None);
        let other = medians(
            &[measurement(Server::Push, 0)],
            Server::Push,
            Technique::Sse,
            Regime::Fast,
        );
        assert_eq!(other, None);
    }

    fn options(servers: &str, techniques: &str, protocol: LoadProtocol) -> FanoutCompareOptions {
        FanoutCompareOptions {
            servers: servers.split(',').map(|s| s.parse().unwrap()).collect(),
            techniques: techniques.split(',').map(|t| t.parse().unwrap()).collect(),
            regimes: vec![Regime::Middle],
            rounds: 1,
            protocol,
            event_bytes: 100,
            count_writes: false,
            quick: true,
            within: Duration::from_secs(1),
        }
    }

    #[test]
    fn a_pair_a_server_cannot_serve_is_skipped_and_a_server_with_none_refused() {
        let all = "push,axum-sse,raw-writer,hyper-stream,tungstenite-default";
        assert!(check(&options(all, "sse,ndjson,ws", LoadProtocol::Http1)).is_ok());
        let error = check(&options("push,raw-writer", "sse,ndjson", LoadProtocol::H2c))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("raw-writer would be measured on nothing")
                && error.matches("HTTP/1.1 only (no h2c)").count() == 1
                && error.contains("--protocol http1"),
            "{error}"
        );
        let error = check(&options(
            "push,tungstenite-default",
            "sse",
            LoadProtocol::Http1,
        ))
        .unwrap_err()
        .to_string();
        assert!(error.contains("does not serve SSE"), "{error}");
        let error = check(&options("push", "sse,ws", LoadProtocol::H2c))
            .unwrap_err()
            .to_string();
        assert!(error.contains("upgrades HTTP/1.1"), "{error}");
        assert!(check(&options(
            "push,axum-sse,hyper-stream",
            "sse,ndjson",
            LoadProtocol::H2c
        ))
        .is_ok());
        let mut no_rounds = options("push", "sse", LoadProtocol::Http1);
        no_rounds.rounds = 0;
        assert!(check(&no_rounds).is_err());
    }

    #[test]
    fn the_table_names_what_was_not_measured_and_counts_writes() {
        let mut options = options("push,axum-sse", "ndjson,ws", LoadProtocol::Http1);
        options.count_writes = true;
        let report = FanoutReport::parse_line(
            "fanout-result streams=100 published=20 deliveries=2000 lost=0 disordered=0 \
             ended=0 server_cpu_ticks=10 server_core_busy_ticks=10 ticks_per_second=100 \
             publish_ms=400 drain_ms=1 latency_p50_us=250 latency_p99_us=900 \
             server_write=2 server_writev=0 server_sendto=2018 server_sendmsg=0",
        )
        .unwrap();
        let measurement = |server| Measurement {
            server,
            technique: Technique::Ndjson,
            regime: Regime::Middle,
            round: 1,
            report,
        };
        let axum: Server = "axum-sse".parse().unwrap();
        let table = render_table(&[measurement(Server::Push), measurement(axum)], &options);
        assert!(
            table.contains("NDJSON fan-out (/channels/{name}/stream) over HTTP/1.1"),
            "{table}"
        );
        assert!(
            table.contains("not measured: axum-sse does not serve WebSocket"),
            "{table}"
        );
        let push_row = table
            .lines()
            .find(|line| line.starts_with("    1  push "))
            .unwrap();
        // (2 + 2018 - 20) / 2000.
        assert!(
            push_row.ends_with("1.000                   2/0/2018/0"),
            "{push_row}"
        );
        assert!(table.contains("push / axum-sse"), "{table}");
        assert!(table.contains("1.00x"), "{table}");
    }
}
