//! The idle-memory run: the server memory each idle connection costs, with
//! many held at once, for push and the baselines side by side; over
//! WebSocket, Server-Sent Events or NDJSON streaming.
//!
//! ```text
//! $ push-bench idle-memory --connections 10000 --rounds 2
//! $ push-bench idle-memory --technique sse --connections 10000 --rounds 2
//! ```
//!
//! For each round, and in it for each server in turn (so push and the
//! baselines alternate, and drift in the machine falls on all of them), it:
//!
//! 1. starts the server pinned to core 0 and reads the address it prints;
//! 2. opens and closes one connection, so what the server sets up once (the
//!    channel, thread-local buffers, the allocator's first arenas) is not
//!    counted per connection, then waits [`IdleMemoryOptions::settle_before`];
//! 3. reads the server's resident memory (`VmRSS`);
//! 4. starts `push-bench hold` pinned to core 1, which opens the connections
//!    on the technique's route of channel `idle` ([`Technique::path`](crate::technique::Technique::path)) and
//!    prints `held N` once each has its first message (a WebSocket's first
//!    text message; a streaming response's first chunk); then waits
//!    [`IdleMemoryOptions::settle_after`];
//! 5. reads the server's resident memory again, and counts
//!    (after − before) / N as the bytes one connection costs;
//! 6. kills the holder, then the server.
//!
//! The report gives every measurement, then for each server the median over
//! the rounds, push's median against each baseline's, and the target of
//! `DESIGN.md` for the technique ([`MemoryTarget`]): an idle WebSocket costs
//! at most 8 KiB; an idle SSE (or NDJSON) stream at most 2 KiB more than
//! one of a bare hyper server holding a streaming response (`hyper-stream`).

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::Duration;

use clap::ValueEnum as _;

use crate::baseline::Baseline;
use crate::child::{self, PinnedChild};
use crate::hold::{self, Target};
use crate::proc::{self, Memory};
use crate::server::{parse_listening_line, Server};
use crate::technique::Technique;
use crate::{Error, Result};

/// The most an idle WebSocket may cost the server, from `DESIGN.md`.
pub const TARGET_BYTES_PER_CONNECTION: u64 = 8 * 1024;

/// The most an idle SSE (or NDJSON) stream may cost push beyond what one
/// costs a bare hyper server holding a streaming response (`hyper-stream`),
/// from `DESIGN.md`.
pub const TARGET_BYTES_OVER_HYPER: u64 = 2 * 1024;

/// The path every server is asked for over WebSocket: a push channel's
/// WebSocket. Baselines take any path.
pub const PATH: &str = "/channels/idle/ws";

/// The URL the holder opens for `technique` on a server at `address`:
/// `ws://` for a WebSocket, `http://` for a streaming response, on channel
/// `idle`.
pub fn url(technique: Technique, address: SocketAddr) -> String {
    let scheme = match technique {
        Technique::Ws => "ws",
        Technique::Sse | Technique::Ndjson => "http",
    };
    format!("{scheme}://{address}{}", technique.path("idle"))
}

/// The servers measured when none are named: push and every baseline that
/// serves `technique`, the memory floor first.
pub fn default_servers(technique: Technique) -> Vec<Server> {
    let baselines: &[Baseline] = match technique {
        Technique::Ws => &[Baseline::TungsteniteDefault],
        Technique::Sse | Technique::Ndjson => &[
            Baseline::HyperStream,
            Baseline::AxumSse,
            Baseline::RawWriter,
        ],
    };
    std::iter::once(Server::Push)
        .chain(baselines.iter().copied().map(Server::Baseline))
        .collect()
}

/// The target of `DESIGN.md` for an idle connection of `technique`.
pub fn target(technique: Technique) -> MemoryTarget {
    match technique {
        Technique::Ws => MemoryTarget::PerConnection(TARGET_BYTES_PER_CONNECTION),
        Technique::Sse | Technique::Ndjson => MemoryTarget::OverFloor {
            floor: Server::Baseline(Baseline::HyperStream),
            bytes: TARGET_BYTES_OVER_HYPER,
        },
    }
}

/// What an idle connection of push may cost, from `DESIGN.md`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemoryTarget {
    /// At most this many bytes per connection.
    PerConnection(u64),
    /// At most this many bytes per connection more than `floor` costs.
    OverFloor {
        /// The server whose connections are the floor.
        floor: Server,
        /// The most push may cost beyond it.
        bytes: u64,
    },
}

/// push's median against a [`MemoryTarget`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Verdict {
    /// The target.
    pub target: MemoryTarget,
    /// The figure compared with it: push's median bytes per connection, or
    /// push's median less the floor's.
    pub figure: f64,
}

impl Verdict {
    /// push against `target`, from the medians in `summaries`; `None` when
    /// push (or the floor) was not measured.
    pub fn of(target: MemoryTarget, summaries: &[Summary]) -> Option<Verdict> {
        let median = |server: Server| {
            summaries
                .iter()
                .find(|s| s.server == server)
                .map(|s| s.median_bytes_per_connection)
        };
        let push = median(Server::Push)?;
        let figure = match target {
            MemoryTarget::PerConnection(_) => push,
            MemoryTarget::OverFloor { floor, .. } => push - median(floor)?,
        };
        Some(Verdict { target, figure })
    }

    /// Whether the figure is within the target.
    pub fn met(&self) -> bool {
        let bytes = match self.target {
            MemoryTarget::PerConnection(bytes) | MemoryTarget::OverFloor { bytes, .. } => bytes,
        };
        self.figure <= bytes as f64
    }

    /// One line for the report: the figure, the target, met or missed.
    pub fn line(&self) -> String {
        let state = if self.met() { "met" } else { "missed" };
        match self.target {
            MemoryTarget::PerConnection(bytes) => format!(
                "target: push <= {bytes} B per connection: {:.0} B ({:.2}x), {state}",
                self.figure,
                self.figure / bytes as f64
            ),
            MemoryTarget::OverFloor { floor, bytes } => format!(
                "target: push - {floor} <= {bytes} B per connection: {:.0} B, {state}",
                self.figure
            ),
        }
    }
}

/// The core servers run on.
pub const SERVER_CORE: usize = 0;

/// The core the load runs on.
pub const LOAD_CORE: usize = 1;

/// How long a server may take to print where it listens.
const STARTUP: Duration = Duration::from_secs(10);

/// How a run goes.
#[derive(Debug, Clone)]
pub struct IdleMemoryOptions {
    /// What the connections speak.
    pub technique: Technique,
    /// Connections held at once.
    pub connections: usize,
    /// Rounds; each round measures every server once.
    pub rounds: u32,
    /// The servers measured, in this order in each round.
    pub servers: Vec<Server>,
    /// The wait between the warm-up connection and the first reading.
    pub settle_before: Duration,
    /// The wait between `held N` and the second reading.
    pub settle_after: Duration,
    /// Every connection must be held within this.
    pub hold_within: Duration,
}

/// One server measured in one round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Measurement {
    /// The server.
    pub server: Server,
    /// The round, from 1.
    pub round: u32,
    /// Connections held.
    pub connections: usize,
    /// The server's memory after the warm-up connection, before the others.
    pub before: Memory,
    /// The server's memory with every connection held.
    pub after: Memory,
}

impl Measurement {
    /// The growth of the server's resident memory, divided by the
    /// connections held, in bytes. Negative if it shrank.
    pub fn bytes_per_connection(&self) -> f64 {
        let grown_kib = self.after.rss_kib as f64 - self.before.rss_kib as f64;
        grown_kib * 1024.0 / self.connections.max(1) as f64
    }
}

/// Measures every server in every round, printing progress on stderr.
///
/// # Errors
///
/// When `taskset` is missing, the connections would not fit in the
/// open-files limit, a server's command cannot be formed (push-server is
/// not built), or any step of a measurement fails (see the module
/// documentation); the error names the server and round.
pub async fn run(options: &IdleMemoryOptions) -> Result<Vec<Measurement>> {
    child::taskset()?;
    let limit = proc::open_files_limit()?;
    if options.connections as u64 > limit.saturating_sub(hold::SPARE_FILES) {
        return Err(Error::new(format!(
            "{} connections do not fit in the open-files limit of {limit} (`ulimit -n`): \
             the server and the holder each need one file per connection, plus {} to spare",
            options.connections,
            hold::SPARE_FILES
        )));
    }
    if options.connections == 0 || options.rounds == 0 || options.servers.is_empty() {
        return Err(Error::new(
            "nothing to measure: give at least one connection, one round and one server",
        ));
    }
    let technique = options.technique;
    if let Some(server) = options.servers.iter().find(|s| !s.serves(technique)) {
        let serving: Vec<_> = Server::value_variants()
            .iter()
            .filter(|s| s.serves(technique))
            .map(|s| s.name())
            .collect();
        return Err(Error::new(format!(
            "{server} does not serve --technique {technique}: choose --servers among {}",
            serving.join(", ")
        )));
    }
    // Fail on a missing push-server before the first round, not midway.
    for server in &options.servers {
        server.command()?;
    }
    let mut measurements = Vec::new();
    for round in 1..=options.rounds {
        for &server in &options.servers {
            eprintln!(
                "idle-memory: round {round}/{}, {server}, {} {technique} connections",
                options.rounds, options.connections
            );
            let measurement = measure(server, round, options).await.map_err(|error| {
                Error::new(format!("idle-memory, round {round}, {server}: {error}"))
            })?;
            eprintln!(
                "idle-memory: {server}: {:.0} bytes per connection",
                measurement.bytes_per_connection()
            );
            measurements.push(measurement);
        }
    }
    Ok(measurements)
}

async fn measure(server: Server, round: u32, options: &IdleMemoryOptions) -> Result<Measurement> {
    let (program, args) = server.command()?;
    let mut running = PinnedChild::spawn(server.name(), SERVER_CORE, &program, &args)?;
    let address = running
        .wait_for_line("the address it listens on", STARTUP, parse_listening_line)
        .await?;
    let url = url(options.technique, address);
    let target = Target::resolve(&url).await?;
    target
        .open_and_close(STARTUP)
        .await
        .map_err(|error| Error::new(format!("warm-up connection: {error}")))?;
    tokio::time::sleep(options.settle_before).await;
    let before = proc::memory(running.pid())?;

    let bench = std::env::current_exe().map_err(|error| {
        Error::new(format!(
            "cannot find the path of push-bench itself: {error}"
        ))
    })?;
    let hold_args = vec![
        "hold".to_owned(),
        "--url".to_owned(),
        url,
        "--count".to_owned(),
        options.connections.to_string(),
        "--within-secs".to_owned(),
        options.hold_within.as_secs().max(1).to_string(),
    ];
    let mut holder = PinnedChild::spawn("hold", LOAD_CORE, &bench, &hold_args)?;
    let expected = format!("held {}", options.connections);
    // The holder gives up on its own after `hold_within`; the margin lets
    // its own message through first.
    holder
        .wait_for_line(
            &format!("`{expected}`"),
            options.hold_within + Duration::from_secs(15),
            |line| (line.trim() == expected).then_some(()),
        )
        .await?;
    tokio::time::sleep(options.settle_after).await;
    holder.ensure_running()?;
    running.ensure_running()?;
    let after = proc::memory(running.pid())?;

    holder.stop().await?;
    running.stop().await?;
    Ok(Measurement {
        server,
        round,
        connections: options.connections,
        before,
        after,
    })
}

/// The median of `values`: the middle one, or the mean of the two middle
/// ones. `None` when there are none.
///
/// ```
/// use push_bench::idle::median;
///
/// assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
/// assert_eq!(median(&[4.0, 1.0]), Some(2.5));
/// ```
pub fn median(values: &[f64]) -> Option<f64> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let middle = sorted.len() / 2;
    match sorted.len() {
        0 => None,
        n if n % 2 == 1 => Some(sorted[middle]),
        _ => Some((sorted[middle - 1] + sorted[middle]) / 2.0),
    }
}

/// One server's median over the rounds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    /// The server.
    pub server: Server,
    /// Its median bytes per connection.
    pub median_bytes_per_connection: f64,
}

/// Each server's median, in the order the servers first appear.
pub fn summarize(measurements: &[Measurement]) -> Vec<Summary> {
    let mut servers: Vec<Server> = Vec::new();
    for measurement in measurements {
        if !servers.contains(&measurement.server) {
            servers.push(measurement.server);
        }
    }
    servers
        .into_iter()
        .filter_map(|server| {
            let values: Vec<f64> = measurements
                .iter()
                .filter(|m| m.server == server)
                .map(Measurement::bytes_per_connection)
                .collect();
            Some(Summary {
                server,
                median_bytes_per_connection: median(&values)?,
            })
        })
        .collect()
}

/// The report as text tables, for a run of `technique`.
pub fn render_table(measurements: &[Measurement], technique: Technique) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "idle {technique} connections on {}; server pinned to core {SERVER_CORE}, holder to core {LOAD_CORE}",
        technique.path("idle")
    );
    let _ = writeln!(
        out,
        "{:<20} {:>5} {:>11} {:>17} {:>16} {:>16} {:>14}",
        "server",
        "round",
        "connections",
        "RSS before (KiB)",
        "RSS after (KiB)",
        "HWM after (KiB)",
        "bytes/conn"
    );
    for m in measurements {
        let _ = writeln!(
            out,
            "{:<20} {:>5} {:>11} {:>17} {:>16} {:>16} {:>14.0}",
            m.server.name(),
            m.round,
            m.connections,
            m.before.rss_kib,
            m.after.rss_kib,
            m.after.hwm_kib,
            m.bytes_per_connection()
        );
    }
    let summaries = summarize(measurements);
    let _ = writeln!(out);
    let _ = writeln!(out, "{:<20} {:>18}", "server", "median bytes/conn");
    for summary in &summaries {
        let _ = writeln!(
            out,
            "{:<20} {:>18.0}",
            summary.server.name(),
            summary.median_bytes_per_connection,
        );
    }
    let push = summaries.iter().find(|s| s.server == Server::Push);
    if let Some(push) = push {
        for other in summaries.iter().filter(|s| s.server != Server::Push) {
            let _ = write!(
                out,
                "push - {}: {:+.0} B",
                other.server.name(),
                push.median_bytes_per_connection - other.median_bytes_per_connection
            );
            if other.median_bytes_per_connection > 0.0 {
                let _ = write!(
                    out,
                    " ({:.3}x)",
                    push.median_bytes_per_connection / other.median_bytes_per_connection
                );
            }
            let _ = writeln!(out);
        }
    }
    let target = target(technique);
    match Verdict::of(target, &summaries) {
        Some(verdict) => {
            let _ = writeln!(out, "{}", verdict.line());
        }
        None => {
            let missing = match target {
                MemoryTarget::PerConnection(_) => "push".to_owned(),
                MemoryTarget::OverFloor { floor, .. } => format!("push and {floor}"),
            };
            let _ = writeln!(
                out,
                "target: not measured; measure {missing} (--servers) to check it"
            );
        }
    }
    out
}

/// The report as one JSON object: `technique`, the target
/// (`target_bytes_per_connection` for WebSocket,
/// `target_bytes_over_hyper_stream` for the streams), `measurements`,
/// `summary`, and `target_met` with the `figure` compared (`null` when it
/// could not be checked).
pub fn render_json(measurements: &[Measurement], technique: Technique) -> String {
    // Every string is a server name (a fixed identifier) and every number
    // finite, so the JSON is written directly.
    let runs: Vec<String> = measurements
        .iter()
        .map(|m| {
            format!(
                "{{\"server\":\"{}\",\"round\":{},\"connections\":{},\
                 \"rss_before_kib\":{},\"hwm_before_kib\":{},\
                 \"rss_after_kib\":{},\"hwm_after_kib\":{},\
                 \"bytes_per_connection\":{}}}",
                m.server.name(),
                m.round,
                m.connections,
                m.before.rss_kib,
                m.before.hwm_kib,
                m.after.rss_kib,
                m.after.hwm_kib,
                json_number(m.bytes_per_connection(), 1)
            )
        })
        .collect();
    let summaries = summarize(measurements);
    let summary: Vec<String> = summaries
        .iter()
        .map(|s| {
            format!(
                "{{\"server\":\"{}\",\"median_bytes_per_connection\":{}}}",
                s.server.name(),
                json_number(s.median_bytes_per_connection, 1),
            )
        })
        .collect();
    let target_field = match target(technique) {
        MemoryTarget::PerConnection(bytes) => format!("\"target_bytes_per_connection\":{bytes}"),
        MemoryTarget::OverFloor { bytes, .. } => {
            format!("\"target_bytes_over_hyper_stream\":{bytes}")
        }
    };
    let (met, figure) = match Verdict::of(target(technique), &summaries) {
        Some(verdict) => (verdict.met().to_string(), json_number(verdict.figure, 1)),
        None => ("null".to_owned(), "null".to_owned()),
    };
    format!(
        "{{\"technique\":\"{technique}\",{target_field},\
         \"measurements\":[{}],\"summary\":[{}],\"figure\":{figure},\"target_met\":{met}}}",
        runs.join(","),
        summary.join(",")
    )
}

fn json_number(value: f64, decimals: usize) -> String {
    if value.is_finite() {
        format!("{value:.decimals$}")
    } else {
        "null".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASELINE: Server = Server::Baseline(Baseline::TungsteniteDefault);
    const HYPER: Server = Server::Baseline(Baseline::HyperStream);

    fn measurement(server: Server, round: u32, before: u64, after: u64) -> Measurement {
        Measurement {
            server,
            round,
            connections: 1000,
            before: Memory {
                rss_kib: before,
                hwm_kib: before,
            },
            after: Memory {
                rss_kib: after,
                hwm_kib: after,
            },
        }
    }

    #[test]
    fn median_of_odd_even_and_none() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[7.0]), Some(7.0));
        assert_eq!(median(&[9.0, 1.0, 5.0]), Some(5.0));
        assert_eq!(median(&[9.0, 1.0, 5.0, 3.0]), Some(4.0));
        assert_eq!(median(&[-2.0, 2.0]), Some(0.0));
    }

    #[test]
    fn bytes_per_connection_is_growth_over_connections() {
        assert_eq!(
            measurement(Server::Push, 1, 1000, 9000).bytes_per_connection(),
            8192.0
        );
        assert_eq!(
            measurement(Server::Push, 1, 1000, 1000).bytes_per_connection(),
            0.0
        );
        assert!(measurement(Server::Push, 1, 1000, 900).bytes_per_connection() < 0.0);
    }

    #[test]
    fn summaries_take_each_servers_median_in_order() {
        let measurements = [
            measurement(Server::Push, 1, 1000, 5000),
            measurement(BASELINE, 1, 1000, 131_000),
            measurement(Server::Push, 2, 1000, 7000),
            measurement(BASELINE, 2, 1000, 133_000),
        ];
        let summaries = summarize(&measurements);
        assert_eq!(summaries.len(), 2);
        assert_eq!(summaries[0].server, Server::Push);
        assert_eq!(summaries[0].median_bytes_per_connection, 5120.0);
        assert_eq!(summaries[1].server, BASELINE);
        assert_eq!(summaries[1].median_bytes_per_connection, 134_144.0);

        let table = render_table(&measurements, Technique::Ws);
        assert!(
            table.contains("push - tungstenite-default: -129024 B (0.038x)"),
            "{table}"
        );
        assert!(
            table.contains("target: push <= 8192 B per connection: 5120 B (0.62x), met"),
            "{table}"
        );
        let json = render_json(&measurements, Technique::Ws);
        assert!(
            json.starts_with("{\"technique\":\"ws\",\"target_bytes_per_connection\":8192,"),
            "{json}"
        );
        assert!(
            json.contains("\"median_bytes_per_connection\":5120.0}"),
            "{json}"
        );
        assert!(
            json.ends_with("\"figure\":5120.0,\"target_met\":true}"),
            "{json}"
        );
    }

    #[test]
    fn a_stream_is_held_to_the_hyper_floor_plus_two_kib() {
        // push at 18 KiB, hyper-stream at 16 KiB: 2048 B over, met.
        let at = |push_kib: u64, hyper_kib: u64| {
            [
                measurement(Server::Push, 1, 1000, 1000 + push_kib * 1000),
                measurement(HYPER, 1, 1000, 1000 + hyper_kib * 1000),
            ]
        };
        let summaries = summarize(&at(18, 16));
        let verdict = Verdict::of(target(Technique::Sse), &summaries).unwrap();
        assert_eq!(verdict.figure, 2048.0);
        assert!(verdict.met());
        let table = render_table(&at(18, 16), Technique::Sse);
        assert!(
            table.contains("target: push - hyper-stream <= 2048 B per connection: 2048 B, met"),
            "{table}"
        );
        let table = render_table(&at(19, 16), Technique::Ndjson);
        assert!(
            table.contains("target: push - hyper-stream <= 2048 B per connection: 3072 B, missed"),
            "{table}"
        );
        let json = render_json(&at(19, 16), Technique::Ndjson);
        assert!(
            json.starts_with("{\"technique\":\"ndjson\",\"target_bytes_over_hyper_stream\":2048,"),
            "{json}"
        );
        assert!(
            json.ends_with("\"figure\":3072.0,\"target_met\":false}"),
            "{json}"
        );
    }

    #[test]
    fn without_the_floor_the_target_is_not_checked() {
        let measurements = [
            measurement(Server::Push, 1, 1000, 19_000),
            measurement(Server::Baseline(Baseline::AxumSse), 1, 1000, 20_000),
        ];
        let table = render_table(&measurements, Technique::Sse);
        assert!(
            table.contains("target: not measured; measure push and hyper-stream"),
            "{table}"
        );
        assert!(render_json(&measurements, Technique::Sse).ends_with("\"target_met\":null}"));
    }

    #[test]
    fn each_technique_has_its_route_and_servers() {
        let address: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        assert_eq!(
            url(Technique::Ws, address),
            "ws://127.0.0.1:4000/channels/idle/ws"
        );
        assert_eq!(
            url(Technique::Sse, address),
            "http://127.0.0.1:4000/channels/idle/sse"
        );
        assert_eq!(
            url(Technique::Ndjson, address),
            "http://127.0.0.1:4000/channels/idle/stream"
        );
        for technique in [Technique::Ws, Technique::Sse, Technique::Ndjson] {
            let servers = default_servers(technique);
            assert_eq!(servers[0], Server::Push);
            assert!(servers.len() >= 2, "{technique}: push and a baseline");
            assert!(servers.iter().all(|s| s.serves(technique)));
        }
        assert_eq!(
            default_servers(Technique::Sse)[1],
            HYPER,
            "the floor comes first"
        );
        assert!(!HYPER.serves(Technique::Ws));
        assert!(!BASELINE.serves(Technique::Sse));
        assert!(HYPER.serves(Technique::Ndjson));
    }
}
