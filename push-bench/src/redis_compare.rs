//! The Redis comparison: the SSE fan-out on the in-memory hub against the
//! same fan-out across two push-server nodes sharing one Redis, side by
//! side in one run.
//!
//! ```text
//! $ push-bench redis-compare --rounds 3 [--streams 1000 --publishes 300 --rate 100 …]
//! ```
//!
//! It starts its own `redis-server` (from `PATH`, on a free loopback port,
//! persistence off) pinned to the load's core. Each round measures both
//! modes, in alternating order:
//!
//! - **hub:** one `push-server`, pinned to core 0; the streams subscribe
//!   to it and the events are published to it.
//! - **redis:** two `push-server --redis` nodes: B, pinned to core 0, holds
//!   every stream; A, pinned to core 1 beside Redis and the load, takes
//!   every publish. Each event goes A → Redis → B's reader → the streams.
//!
//! Reported per measurement (see [`fanout`](crate::fanout)): deliveries,
//! losses, deliveries per CPU-second of the subscribing node, the
//! publish-to-receive latency's median and 99th percentile, and, for the
//! Redis mode, the CPU time node A and Redis took over the whole load run
//! (subscribing included), which the hub mode does not spend at all.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::child::{self, PinnedChild};
use crate::cpu;
use crate::fanout::FanoutReport;
use crate::h2_compare::{spawn_fanout, FanoutShape, LoadTarget, LOAD_CORE, SERVER_CORE};
use crate::idle::median;
use crate::server::{parse_listening_line, Server};
use crate::{Error, Result};

/// How long a server may take to start.
const STARTUP: Duration = Duration::from_secs(10);

/// Where the channels are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// One node, the in-memory hub.
    Hub,
    /// Two nodes on one Redis, publishing on one, subscribing on the other.
    Redis,
}

impl Mode {
    /// Its name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Hub => "hub",
            Mode::Redis => "redis",
        }
    }

    /// The order of round `round` (from 1): hub first in odd rounds.
    pub fn order(round: u32) -> [Mode; 2] {
        if round % 2 == 1 {
            [Mode::Hub, Mode::Redis]
        } else {
            [Mode::Redis, Mode::Hub]
        }
    }
}

/// How the comparison goes.
#[derive(Debug, Clone)]
pub struct RedisCompareOptions {
    /// Rounds; each measures both modes.
    pub rounds: u32,
    /// The fan-out workload.
    pub fanout: FanoutShape,
    /// The longest subscribing, or the wait for deliveries, may take.
    pub within: Duration,
}

/// One measurement.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Measurement {
    /// The mode.
    pub mode: Mode,
    /// The round, from 1.
    pub round: u32,
    /// What the load reported, about the subscribing node.
    pub report: FanoutReport,
    /// CPU time node A and Redis took over the load run (Redis mode only).
    pub publish_side_cpu: Option<Duration>,
}

/// Measures both modes in every round, printing progress on stderr.
///
/// # Errors
///
/// When `taskset` or `redis-server` is missing, `push-server` has not been
/// built next to push-bench, or any server or load fails.
pub async fn run(options: &RedisCompareOptions) -> Result<Vec<Measurement>> {
    child::taskset()?;
    let mut redis = start_redis().await?;
    let mut measurements = Vec::new();
    for round in 1..=options.rounds {
        for mode in Mode::order(round) {
            eprintln!(
                "redis-compare: round {round}/{}, {}",
                options.rounds,
                mode.name()
            );
            let measurement = match mode {
                Mode::Hub => hub(round, options).await?,
                Mode::Redis => across_redis(round, &redis, options).await?,
            };
            measurements.push(measurement);
        }
    }
    redis.child.ensure_running()?;
    redis.child.stop().await?;
    Ok(measurements)
}

/// A `redis-server` of the run's own.
struct Redis {
    child: PinnedChild,
    url: String,
}

async fn start_redis() -> Result<Redis> {
    let program = which("redis-server").ok_or_else(|| {
        Error::new(
            "redis-server is not on the PATH: install Debian's redis-server (`apt-get install redis-server`)",
        )
    })?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map_err(|error| Error::new(format!("cannot find a free port for Redis: {error}")))?
        .port();
    let args: Vec<String> = [
        "--port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
    ]
    .iter()
    .map(|arg| (*arg).to_owned())
    .collect();
    let mut child = PinnedChild::spawn("redis-server", LOAD_CORE, &program, &args)?;
    child
        .wait_for_line("that it is ready", STARTUP, |line| {
            line.contains("Ready to accept connections").then_some(())
        })
        .await?;
    Ok(Redis {
        child,
        url: format!("redis://127.0.0.1:{port}/0"),
    })
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|directory| PathBuf::from(directory).join(program))
        .find(|path| path.is_file())
}

/// A push-server on `core`, with `extra` arguments; and its address.
async fn push_server(name: &str, core: usize, extra: &[&str]) -> Result<(PinnedChild, SocketAddr)> {
    let (program, mut args) = Server::Push.command()?;
    args.extend(extra.iter().map(|arg| (*arg).to_owned()));
    let mut child = PinnedChild::spawn(name, core, &program, &args)?;
    let address = child
        .wait_for_line("the address it listens on", STARTUP, parse_listening_line)
        .await?;
    Ok((child, address))
}

async fn hub(round: u32, options: &RedisCompareOptions) -> Result<Measurement> {
    let (mut server, address) = push_server("push-server", SERVER_CORE, &[]).await?;
    let target = LoadTarget {
        server: address,
        publish_to: None,
        server_pid: server.pid(),
        channel: format!("fanout-hub-{round}"),
        protocol: crate::fanout::LoadProtocol::H2c,
        technique: crate::technique::Technique::Sse,
        count_writes: false,
    };
    let report = spawn_fanout(&target, &options.fanout, options.within).await?;
    server.ensure_running()?;
    server.stop().await?;
    Ok(Measurement {
        mode: Mode::Hub,
        round,
        report,
        publish_side_cpu: None,
    })
}

async fn across_redis(
    round: u32,
    redis: &Redis,
    options: &RedisCompareOptions,
) -> Result<Measurement> {
    let url = redis.url.as_str();
    let (mut node_a, address_a) = push_server("node-a", LOAD_CORE, &["--redis", url]).await?;
    let (mut node_b, address_b) = push_server("node-b", SERVER_CORE, &["--redis", url]).await?;
    let redis_pid = redis.child.pid();
    let before = (cpu::cpu_time(node_a.pid())?, cpu::cpu_time(redis_pid)?);
    let target = LoadTarget {
        server: address_b,
        publish_to: Some(address_a),
        server_pid: node_b.pid(),
        channel: format!("fanout-redis-{round}"),
        protocol: crate::fanout::LoadProtocol::H2c,
        technique: crate::technique::Technique::Sse,
        count_writes: false,
    };
    let report = spawn_fanout(&target, &options.fanout, options.within).await?;
    let after = (cpu::cpu_time(node_a.pid())?, cpu::cpu_time(redis_pid)?);
    node_a.ensure_running()?;
    node_b.ensure_running()?;
    node_a.stop().await?;
    node_b.stop().await?;
    Ok(Measurement {
        mode: Mode::Redis,
        round,
        report,
        publish_side_cpu: Some(after.0.since(before.0) + after.1.since(before.1)),
    })
}

/// Fails when any measurement lost an event, received one out of order or
/// had a stream end early.
///
/// # Errors
///
/// As said, naming each such measurement.
pub fn check_deliveries(measurements: &[Measurement]) -> Result<()> {
    let faults: Vec<String> = measurements
        .iter()
        .filter_map(|m| {
            let fault = m.report.fault()?;
            Some(format!("round {} {}: {fault}", m.round, m.mode.name()))
        })
        .collect();
    if faults.is_empty() {
        Ok(())
    } else {
        Err(Error::new(format!(
            "deliveries were not complete: {}",
            faults.join("; ")
        )))
    }
}

/// The report as text tables.
pub fn render_table(measurements: &[Measurement], options: &RedisCompareOptions) -> String {
    let shape = &options.fanout;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "SSE fan-out over h2c: {} streams on {} connections, {} publishes at {}/s, {}-byte events",
        shape.streams, shape.connections, shape.publishes, shape.rate, shape.event_bytes
    );
    let _ = writeln!(
        out,
        "hub: one push-server on core {SERVER_CORE}. redis: node B (streams) on core {SERVER_CORE}, \
         node A (publishes) and Redis on core {LOAD_CORE} with the load"
    );
    let _ = writeln!(
        out,
        "{:>5}  {:<5}  {:>10}  {:>4}  {:>10}  {:>12}  {:>16}  {:>8}  {:>8}  {:>15}",
        "round",
        "mode",
        "deliveries",
        "lost",
        "disordered",
        "node CPU s",
        "deliveries/CPU s",
        "p50 ms",
        "p99 ms",
        "A + Redis CPU s"
    );
    for m in measurements {
        let _ = writeln!(
            out,
            "{:>5}  {:<5}  {:>10}  {:>4}  {:>10}  {:>12.2}  {:>16.0}  {:>8.2}  {:>8.2}  {:>15}",
            m.round,
            m.mode.name(),
            m.report.deliveries,
            m.report.lost,
            m.report.disordered,
            m.report.server_cpu_seconds(),
            m.report.deliveries_per_cpu_second(),
            m.report.latency_p50_us as f64 / 1000.0,
            m.report.latency_p99_us as f64 / 1000.0,
            m.publish_side_cpu
                .map_or("-".to_owned(), |cpu| format!("{:.2}", cpu.as_secs_f64()))
        );
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "{:<14}  {:>16}  {:>8}  {:>8}",
        "median", "deliveries/CPU s", "p50 ms", "p99 ms"
    );
    let medians = |mode: Mode| {
        let of = |value: fn(&Measurement) -> f64| {
            let values: Vec<f64> = measurements
                .iter()
                .filter(|m| m.mode == mode)
                .map(value)
                .collect();
            median(&values)
        };
        Some((
            of(|m| m.report.deliveries_per_cpu_second())?,
            of(|m| m.report.latency_p50_us as f64 / 1000.0)?,
            of(|m| m.report.latency_p99_us as f64 / 1000.0)?,
        ))
    };
    let (hub, redis) = (medians(Mode::Hub), medians(Mode::Redis));
    for (mode, values) in [(Mode::Hub, hub), (Mode::Redis, redis)] {
        if let Some((rate, p50, p99)) = values {
            let _ = writeln!(
                out,
                "{:<14}  {rate:>16.0}  {p50:>8.2}  {p99:>8.2}",
                mode.name()
            );
        }
    }
    if let (Some(hub), Some(redis)) = (hub, redis) {
        let _ = writeln!(
            out,
            "{:<14}  {:>15.3}x  {:>7.2}x  {:>7.2}x",
            "redis / hub",
            redis.0 / hub.0,
            redis.1 / hub.1,
            redis.2 / hub.2
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_alternate_the_order() {
        assert_eq!(Mode::order(1), [Mode::Hub, Mode::Redis]);
        assert_eq!(Mode::order(2), [Mode::Redis, Mode::Hub]);
    }

    #[test]
    fn incomplete_deliveries_fail_the_run() {
        let report = FanoutReport::parse_line(
            "fanout-result streams=2 published=3 deliveries=5 lost=1 disordered=0 ended=1 \
             server_cpu_ticks=5 server_core_busy_ticks=6 ticks_per_second=100 publish_ms=30 \
             drain_ms=1 latency_p50_us=250 latency_p99_us=900",
        )
        .unwrap();
        let measurement = Measurement {
            mode: Mode::Redis,
            round: 2,
            report,
            publish_side_cpu: Some(Duration::from_millis(40)),
        };
        let error = check_deliveries(&[measurement]).unwrap_err().to_string();
        assert!(error.contains("round 2 redis: 1 lost"), "{error}");
        let table = render_table(
            &[measurement],
            &RedisCompareOptions {
                rounds: 1,
                fanout: FanoutShape {
                    streams: 2,
                    connections: 1,
                    publishes: 3,
                    rate: 100.0,
                    event_bytes: 64,
                },
                within: Duration::from_secs(1),
            },
        );
        assert!(table.contains("0.25"), "{table}");
        assert!(table.contains("0.04"), "{table}");
    }
}
