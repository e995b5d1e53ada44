//! Heap allocations per delivery through push-server, counted by valgrind's
//! DHAT on the release binary as it is.
//!
//! ```text
//! $ push-bench alloc-count [--technique sse|ndjson|ws] [--streams 100] [--publishes 100] [--rate 20]
//! ```
//!
//! DESIGN.md's target: fewer than 0.1 heap allocations per delivery once an
//! event is published. A run under DHAT counts every allocation of the
//! server's whole life (start, connections, the publish requests, the
//! deliveries), so the command separates them by difference. It runs the
//! SSE fan-out load over HTTP/1.1 four times, each against a fresh
//! `valgrind --tool=dhat push-server`, with `S` or `2S` streams and `N` or
//! `2N` events, and reads the total number of blocks allocated, `A`, when
//! each server exits. If every connection costs `c`, every publish `p` and
//! every delivery `d`, then `A(s, n) = base + c·s + p·n + d·s·n`, and
//!
//! - per delivery, the publish excluded:
//!   `d = ((A(2S, 2N) − A(2S, N)) − (A(S, 2N) − A(S, N))) / (S·N)`;
//! - per delivery with each publish's own allocations (its request, the
//!   event, its encoding) spread over `S` subscribers:
//!   `(A(S, 2N) − A(S, N)) / (S·N)`.
//!
//! Every run must deliver every event: a lost one would lower the count.
//! The rate is low because the server runs about thirty times slower under
//! valgrind; allocations do not depend on speed. valgrind must be installed
//! (`apt-get install -y valgrind`).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use crate::child::PinnedChild;
use crate::fanout::{FanoutReport, LoadProtocol};
use crate::h2_compare::{spawn_fanout, FanoutShape, LoadTarget, SERVER_CORE};
use crate::server::parse_listening_line;
use crate::technique::Technique;
use crate::{Error, Result};

/// DESIGN.md's bound on heap allocations per delivery.
pub const TARGET_PER_DELIVERY: f64 = 0.1;

/// How long push-server may take to start under valgrind.
const STARTUP: Duration = Duration::from_secs(60);

/// How long it may take to exit, and valgrind to write its summary.
const EXIT: Duration = Duration::from_secs(60);

/// How the count goes.
#[derive(Debug, Clone)]
pub struct AllocCountOptions {
    /// The technique the streams subscribe with, over HTTP/1.1.
    pub technique: Technique,
    /// `S`: streams in the smaller runs.
    pub streams: usize,
    /// `N`: events in the smaller runs.
    pub publishes: usize,
    /// Events published per second.
    pub rate: f64,
    /// Bytes of data per event.
    pub event_bytes: usize,
    /// Subscribing, and the wait for deliveries, may each take this long.
    pub within: Duration,
}

/// One server's life under DHAT.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Run {
    /// Streams subscribed.
    pub streams: usize,
    /// Events published.
    pub publishes: usize,
    /// What the load saw.
    pub report: FanoutReport,
    /// Heap blocks the server allocated in its whole life.
    pub blocks: u64,
}

/// The four runs, and what their differences say.
#[derive(Debug, Clone, PartialEq)]
pub struct AllocCount {
    /// `A(S, N)`, `A(S, 2N)`, `A(2S, N)`, `A(2S, 2N)`, in that order.
    pub runs: [Run; 4],
}

impl AllocCount {
    fn extra_deliveries(&self) -> f64 {
        (self.runs[0].streams * self.runs[0].publishes) as f64
    }

    /// Allocations per delivery, the publish excluded.
    pub fn per_delivery(&self) -> f64 {
        let [small_short, small_long, wide_short, wide_long] =
            self.runs.map(|run| run.blocks as f64);
        ((wide_long - wide_short) - (small_long - small_short)) / self.extra_deliveries()
    }

    /// Allocations per delivery, each publish's own spread over the `S`
    /// subscribers of the smaller runs.
    pub fn per_delivery_with_publish(&self) -> f64 {
        (self.runs[1].blocks as f64 - self.runs[0].blocks as f64) / self.extra_deliveries()
    }
}

/// Runs the four servers in turn, printing progress on stderr.
///
/// # Errors
///
/// When valgrind, taskset or push-server is missing, a server does not
/// start or exit, its summary cannot be read, or a run loses an event.
pub async fn run(options: &AllocCountOptions) -> Result<AllocCount> {
    crate::child::taskset()?;
    let valgrind = valgrind()?;
    let push_server = crate::server::Server::Push.command()?.0;
    let (s, n) = (options.streams, options.publishes);
    let mut runs = Vec::new();
    for (index, (streams, publishes)) in [(s, n), (s, 2 * n), (2 * s, n), (2 * s, 2 * n)]
        .into_iter()
        .enumerate()
    {
        eprintln!(
            "alloc-count: run {}/4, {streams} streams, {publishes} events",
            index + 1
        );
        let shape = FanoutShape {
            streams,
            connections: 1,
            publishes,
            rate: options.rate,
            event_bytes: options.event_bytes,
        };
        runs.push(
            measure(
                options.technique,
                &valgrind,
                &push_server,
                &shape,
                index,
                options.within,
            )
            .await?,
        );
    }
    let runs: [Run; 4] = runs.try_into().expect("four runs");
    Ok(AllocCount { runs })
}

async fn measure(
    technique: Technique,
    valgrind: &Path,
    push_server: &Path,
    shape: &FanoutShape,
    index: usize,
    within: Duration,
) -> Result<Run> {
    let log = std::env::temp_dir().join(format!(
        "push-bench-dhat-{}-{index}.log",
        std::process::id()
    ));
    let args = [
        "--tool=dhat".to_owned(),
        "--dhat-out-file=/dev/null".to_owned(),
        format!("--log-file={}", log.display()),
        push_server.display().to_string(),
        "--listen".to_owned(),
        "127.0.0.1:0".to_owned(),
    ];
    let mut server = PinnedChild::spawn("push-server under dhat", SERVER_CORE, valgrind, &args)?;
    let address = server
        .wait_for_line("the address it listens on", STARTUP, parse_listening_line)
        .await?;
    let target = LoadTarget {
        server: address,
        publish_to: None,
        server_pid: server.pid(),
        channel: "allocations".to_owned(),
        protocol: LoadProtocol::Http1,
        technique,
        count_writes: false,
    };
    let report = spawn_fanout(&target, shape, within).await;
    server.ensure_running()?;
    let ended = interrupt_and_wait(server).await;
    let summary = std::fs::read_to_string(&log);
    let _ = std::fs::remove_file(&log);
    let report = report?;
    ended?;
    let summary = summary.map_err(|error| {
        Error::new(format!(
            "cannot read valgrind's log {}: {error}",
            log.display()
        ))
    })?;
    if let Some(fault) = report.fault() {
        return Err(Error::new(format!(
            "push-server under dhat did not deliver every event ({fault}); \
             lower --rate, as the server runs about thirty times slower under valgrind"
        )));
    }
    let blocks = parse_total_blocks(&summary).ok_or_else(|| {
        Error::new(format!(
            "valgrind's log has no `Total: … bytes in … blocks` line:\n{summary}"
        ))
    })?;
    Ok(Run {
        streams: shape.streams,
        publishes: shape.publishes,
        report,
        blocks,
    })
}

/// Stops the server with `SIGINT`, as a user would, so that it exits on its
/// own and valgrind writes its summary.
async fn interrupt_and_wait(server: PinnedChild) -> Result<()> {
    let pid = server.pid();
    let status = tokio::process::Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .stdin(Stdio::null())
        .status()
        .await
        .map_err(|error| Error::new(format!("cannot run `kill -INT {pid}`: {error}")))?;
    if !status.success() {
        return Err(Error::new(format!("`kill -INT {pid}` failed: {status}")));
    }
    server.wait(EXIT).await
}

/// The number of blocks of DHAT's `Total:` line.
pub fn parse_total_blocks(log: &str) -> Option<u64> {
    let line = log.lines().find(|line| line.contains("Total:"))?;
    let (_, rest) = line.split_once(" bytes in ")?;
    let count = rest.trim().strip_suffix("blocks")?.trim();
    count.replace(',', "").parse().ok()
}

/// Where `valgrind` is.
///
/// # Errors
///
/// When it is not on the `PATH`.
pub fn valgrind() -> Result<PathBuf> {
    crate::child::on_path("valgrind").ok_or_else(|| {
        Error::new(
            "valgrind is not on the PATH: install it (`apt-get install -y valgrind`); \
                 alloc-count counts push-server's heap allocations with its DHAT tool",
        )
    })
}

/// The report as text.
pub fn render_table(count: &AllocCount, technique: Technique) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Heap allocations of push-server (valgrind DHAT), {} over HTTP/1.1",
        technique.label()
    );
    let _ = writeln!(
        out,
        "{:>8}  {:>7}  {:>10}  {:>6}  {:>12}",
        "streams", "events", "deliveries", "lost", "blocks"
    );
    for run in &count.runs {
        let _ = writeln!(
            out,
            "{:>8}  {:>7}  {:>10}  {:>6}  {:>12}",
            run.streams, run.publishes, run.report.deliveries, run.report.lost, run.blocks
        );
    }
    let per_delivery = count.per_delivery();
    let _ = writeln!(
        out,
        "per delivery, the publish excluded: {per_delivery:.4} (target < {TARGET_PER_DELIVERY}: {})",
        if per_delivery < TARGET_PER_DELIVERY { "met" } else { "missed" }
    );
    let _ = writeln!(
        out,
        "per delivery, each publish's own spread over {} subscribers: {:.4}",
        count.runs[0].streams,
        count.per_delivery_with_publish()
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_dhats_total() {
        let log = "==22930== \n==22930== Total:     4,840,899 bytes in 5,515 blocks\n\
                   ==22930== At t-gmax: 1 bytes in 1 blocks\n";
        assert_eq!(parse_total_blocks(log), Some(5_515));
        assert_eq!(parse_total_blocks("==1== nothing"), None);
    }

    #[test]
    fn the_differences_separate_deliveries_from_publishes() {
        let report = FanoutReport::parse_line(
            "fanout-result streams=2 published=3 deliveries=6 lost=0 disordered=0 \
             ended=0 server_cpu_ticks=5 server_core_busy_ticks=6 ticks_per_second=100 \
             publish_ms=30 drain_ms=1 latency_p50_us=250 latency_p99_us=900",
        )
        .unwrap();
        // base 1000, 50 per connection, 20 per publish, 0.5 per delivery.
        let blocks = |s: u64, n: u64| 1000 + 50 * s + 20 * n + s * n / 2;
        let run = |s: usize, n: usize| Run {
            streams: s,
            publishes: n,
            report,
            blocks: blocks(s as u64, n as u64),
        };
        let count = AllocCount {
            runs: [run(100, 100), run(100, 200), run(200, 100), run(200, 200)],
        };
        assert_eq!(count.per_delivery(), 0.5);
        assert_eq!(count.per_delivery_with_publish(), 0.5 + 20.0 / 100.0);
        assert!(render_table(&count, Technique::Sse).contains("missed"));
    }
}
