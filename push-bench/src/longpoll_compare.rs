//! The long-poll comparison: push's long-poll cycle (held, answered on
//! publish, polled again) against a bare hyper server that answers every
//! request at once (`hyper-ok`), driven by the same client, side by side in
//! one run.
//!
//! ```text
//! $ push-bench longpoll-compare --servers push,hyper-ok --rounds 3 [--protocol http1|h2c] [--quick]
//! ```
//!
//! Each round measures every server once, the order of the servers
//! rotating by round, so that drift in the machine falls on all of them.
//! Each measurement starts a fresh server pinned to core 0 and runs
//! `push-bench longpoll-load` pinned to core 1 (see
//! [`longpoll`](crate::longpoll)): `--pollers` pollers, each on a
//! keep-alive HTTP/1.1 connection (or, with `--protocol h2c`, as streams
//! over `--connections` h2c connections), loop long polls on one channel
//! while `--publishes` events are published at `--rate`. push holds each poll
//! until the next publish; `hyper-ok` answers each at once with the same
//! shape of answer, so the client's loop is the same. `hyper-held`
//! (`--servers push,hyper-ok,hyper-held`) is hyper-ok holding each poll
//! until the next publish: what holding a request costs on bare hyper.
//!
//! The figure the target of `DESIGN.md` is checked on (a long-poll cycle
//! runs at least 0.8x the request rate of a bare hyper "200 OK" server) is
//! **cycles per second of server CPU time**: with the server alone on its
//! core, the request rate it can reach is the inverse of the CPU time each
//! request takes. Cycles per wall second are reported too, but push's is
//! set by the workload (`pollers × rate` at most, since each publish
//! releases every held poll once).
//!
//! A server that answers at once is measured twice per round:
//! - **paced** (`longpoll-load --paced`): each poller polls again only after
//!   the next publish, so the server gets push's traffic, a burst of one
//!   poll per poller at each publish, with the same idle time between
//!   bursts. This is the like-for-like figure the target is checked on.
//! - **flat out**: each poller polls again at once, so the server runs
//!   saturated, where every wakeup of its event loop finds many requests
//!   ready and the cost of each falls. Reported beside it, for what a
//!   saturated hyper reaches.
//!
//! For push every poller must receive every event once and in order; the
//! run fails, after the report, if one did not. `hyper-ok` delivers no
//! events; only its pollers ending early fails it.
//!
//! `--quick` shrinks the workload (20 pollers, 100 events at 50/s) so
//! that a run takes seconds: it checks that the harness and the servers
//! work, and says nothing about speed.

use std::fmt::Write as _;
use std::time::Duration;

use crate::baseline::Baseline;
use crate::child::{self, PinnedChild};
use crate::fanout::LoadProtocol;
use crate::h2_compare::{LOAD_CORE, SERVER_CORE};
use crate::idle::median;
use crate::longpoll::{CycleShape, LongPollReport};
use crate::server::{parse_listening_line, Server};
use crate::{cpu, Error, Result};

/// How long a server may take to print where it listens.
const STARTUP: Duration = Duration::from_secs(10);

/// The least push's cycle rate may be, as a share of `hyper-ok`'s, from
/// `DESIGN.md`.
pub const TARGET_RATIO: f64 = 0.8;

/// How a comparison goes.
#[derive(Debug, Clone)]
pub struct LongPollCompareOptions {
    /// The servers, push first by convention; the first is compared with
    /// each of the others.
    pub servers: Vec<Server>,
    /// Rounds; each measures every server once.
    pub rounds: u32,
    /// What the load speaks.
    pub protocol: LoadProtocol,
    /// The workload, unless `quick`.
    pub shape: CycleShape,
    /// Replaces the workload with [`quick_shape`].
    pub quick: bool,
    /// The longest setting the pollers up, or the wait for deliveries, may
    /// take.
    pub within: Duration,
}

impl LongPollCompareOptions {
    /// The workload measured.
    pub fn effective_shape(&self) -> CycleShape {
        if self.quick {
            quick_shape(&self.shape)
        } else {
            self.shape.clone()
        }
    }
}

/// The workload of `--quick`: 20 pollers, 100 events at 50/s; the event
/// size and hold of `shape`.
pub fn quick_shape(shape: &CycleShape) -> CycleShape {
    CycleShape {
        pollers: 20,
        publishes: 100,
        rate: 50.0,
        ..shape.clone()
    }
}

/// How a server answers long polls, which says how the load treats it;
/// `None` when it does not serve them.
pub fn long_poll_role(server: Server) -> Option<Role> {
    match server {
        Server::Push => Some(Role::Delivers),
        Server::Baseline(Baseline::HyperOk) => Some(Role::AnswersAtOnce),
        Server::Baseline(Baseline::HyperHeld) => Some(Role::Holds),
        Server::Baseline(_) => None,
    }
}

/// How a server answers long polls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// It holds each poll until an event is published and delivers every
    /// event: the load checks that each poller gets each event once, in
    /// order.
    Delivers,
    /// It answers at once and delivers nothing: the load counts answers
    /// only, paced and flat out.
    AnswersAtOnce,
    /// It holds each poll until the next publish and delivers nothing: the
    /// load counts answers only.
    Holds,
}

/// One measurement.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Measurement {
    /// The server.
    pub server: Server,
    /// Whether its pollers were paced by the publishes (always so for a
    /// server that holds polls; see the [module docs](self)).
    pub paced: bool,
    /// The round, from 1.
    pub round: u32,
    /// What the load reported.
    pub report: LongPollReport,
}

/// Measures every server in every round, printing progress on stderr.
///
/// # Errors
///
/// When `taskset` is missing, a server does not serve long polls (only
/// push, `hyper-ok` and `hyper-held` do), push-server is not built, or a server or a
/// load fails; the error names the server and round. Lost events are not
/// an error here: see [`check_deliveries`].
pub async fn run(options: &LongPollCompareOptions) -> Result<Vec<Measurement>> {
    child::taskset()?;
    cpu::ticks_per_second()?;
    if options.rounds == 0 || options.servers.is_empty() {
        return Err(Error::new(
            "nothing to measure: give at least one round and one server",
        ));
    }
    if let Some(server) = options
        .servers
        .iter()
        .find(|s| long_poll_role(**s).is_none())
    {
        return Err(Error::new(format!(
            "{server} does not answer long polls: choose --servers among push, hyper-ok, hyper-held"
        )));
    }
    // Fail on a missing push-server before the first round, not midway.
    for server in &options.servers {
        server.command()?;
    }
    let mut measurements = Vec::new();
    for round in 1..=options.rounds {
        for server in crate::fanout_compare::order(&options.servers, round) {
            let mut paces = paces(server).to_vec();
            if round % 2 == 0 {
                paces.reverse();
            }
            for paced in paces {
                let label = label(server, paced);
                eprintln!(
                    "longpoll-compare: round {round}/{}, {label}",
                    options.rounds
                );
                let report = measure(server, paced, round, options)
                    .await
                    .map_err(|error| {
                        Error::new(format!("longpoll-compare, round {round}, {label}: {error}"))
                    })?;
                eprintln!(
                    "longpoll-compare: {label}: {} cycles, {:.0} per server CPU second",
                    report.cycles,
                    report.cycles_per_cpu_second()
                );
                measurements.push(Measurement {
                    server,
                    paced,
                    round,
                    report,
                });
            }
        }
    }
    Ok(measurements)
}

/// How `server` is measured, paced or not: a server that answers at once
/// both ways, any other once (`true`, paced by its own holding).
fn paces(server: Server) -> &'static [bool] {
    match long_poll_role(server) {
        Some(Role::AnswersAtOnce) => &[true, false],
        _ => &[true],
    }
}

/// How a measurement is named in the report: the server, and for one that
/// answers at once, whether it was paced.
fn label(server: Server, paced: bool) -> String {
    match long_poll_role(server) {
        Some(Role::AnswersAtOnce) if paced => format!("{server} paced"),
        Some(Role::AnswersAtOnce) => format!("{server} flat out"),
        _ => server.to_string(),
    }
}

async fn measure(
    server: Server,
    paced: bool,
    round: u32,
    options: &LongPollCompareOptions,
) -> Result<LongPollReport> {
    let shape = options.effective_shape();
    let (program, args) = server.command()?;
    let mut running = PinnedChild::spawn(server.name(), SERVER_CORE, &program, &args)?;
    let address = running
        .wait_for_line("the address it listens on", STARTUP, parse_listening_line)
        .await?;
    let bench = std::env::current_exe().map_err(|error| {
        Error::new(format!(
            "cannot find the path of push-bench itself: {error}"
        ))
    })?;
    let mut load_args: Vec<String> = [
        "longpoll-load",
        "--server",
        &address.to_string(),
        "--server-pid",
        &running.pid().to_string(),
        "--server-core",
        &SERVER_CORE.to_string(),
        "--channel",
        &format!("longpoll-{round}"),
        "--protocol",
        options.protocol.arg(),
        "--pollers",
        &shape.pollers.to_string(),
        "--connections",
        &shape.connections.to_string(),
        "--publishes",
        &shape.publishes.to_string(),
        "--rate",
        &shape.rate.to_string(),
        "--event-bytes",
        &shape.event_bytes.to_string(),
        "--hold-secs",
        &shape.hold_secs.to_string(),
        "--within-secs",
        &options.within.as_secs().max(1).to_string(),
    ]
    .iter()
    .map(|arg| (*arg).to_owned())
    .collect();
    if long_poll_role(server) == Some(Role::Delivers) {
        load_args.push("--check-deliveries".to_owned());
    } else if paced && long_poll_role(server) == Some(Role::AnswersAtOnce) {
        load_args.push("--paced".to_owned());
    }
    let mut load = PinnedChild::spawn("longpoll-load", LOAD_CORE, &bench, &load_args)?;
    // Setting up, publishing and draining, each bounded by the load
    // itself; the margin lets its own message through first.
    let bound = options.within * 3
        + Duration::from_secs_f64(shape.publishes as f64 / shape.rate)
        + Duration::from_secs(15);
    let report = load
        .wait_for_line(
            "a `longpoll-result` line",
            bound,
            LongPollReport::parse_line,
        )
        .await;
    let _ = load.stop().await;
    running.ensure_running()?;
    running.stop().await?;
    report
}

/// Fails when any measurement of push (the first server) lost an event,
/// received one out of order or with a gap, or had a poller end early, or
/// when a poller of another server ended early (its figures would not
/// count every poller).
///
/// # Errors
///
/// As said, naming each such measurement.
pub fn check_deliveries(measurements: &[Measurement]) -> Result<()> {
    let faults: Vec<String> = measurements
        .iter()
        .filter_map(|m| {
            let fault = m.report.fault()?;
            Some(format!(
                "round {} {}: {fault}",
                m.round,
                label(m.server, m.paced)
            ))
        })
        .collect();
    if faults.is_empty() {
        Ok(())
    } else {
        Err(Error::new(format!(
            "not every poller got every event once and in order, or a poller ended early ({}); \
             the server's stderr above may say why",
            faults.join("; ")
        )))
    }
}

/// One server's medians over the rounds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Medians {
    /// Cycles per server CPU second.
    pub cycles_per_cpu_second: f64,
    /// Cycles per wall second.
    pub cycles_per_second: f64,
    /// Events lost, summed over the rounds.
    pub lost: u64,
}

/// The medians of `server` measured paced (or not), if it was.
pub fn medians(measurements: &[Measurement], server: Server, paced: bool) -> Option<Medians> {
    let reports = || {
        measurements
            .iter()
            .filter(move |m| m.server == server && m.paced == paced)
            .map(|m| &m.report)
    };
    let of = |value: fn(&LongPollReport) -> f64| {
        let values: Vec<f64> = reports().map(value).collect();
        median(&values)
    };
    Some(Medians {
        cycles_per_cpu_second: of(LongPollReport::cycles_per_cpu_second)?,
        cycles_per_second: of(LongPollReport::cycles_per_second)?,
        lost: reports().map(|report| report.lost).sum(),
    })
}

/// The report as text tables.
pub fn render_table(measurements: &[Measurement], options: &LongPollCompareOptions) -> String {
    let shape = options.effective_shape();
    let mut out = String::new();
    let protocol = match options.protocol {
        LoadProtocol::Http1 => "HTTP/1.1 keep-alive, a connection per poller".to_owned(),
        LoadProtocol::H2c => format!("h2c, {} connections", shape.connections),
    };
    let _ = writeln!(
        out,
        "long-poll cycles over {protocol}: {} pollers, {} events of {} bytes at {}/s, \
         hold {} s{}; server pinned to core {SERVER_CORE}, load to core {LOAD_CORE}",
        shape.pollers,
        shape.publishes,
        shape.event_bytes,
        shape.rate,
        shape.hold_secs,
        if options.quick {
            " (quick mode: says nothing about speed)"
        } else {
            ""
        }
    );
    let _ = writeln!(
        out,
        "{:>5}  {:<17}  {:>9}  {:>7}  {:>10}  {:>12}  {:>11}  {:>9}  {:>6}  {:>13}",
        "round",
        "server",
        "cycles",
        "empty",
        "deliveries",
        "cycles/CPU s",
        "cycles/s",
        "server CPU",
        "lost",
        "others core 0"
    );
    for m in measurements {
        let r = &m.report;
        let lost = if r.checked {
            r.lost.to_string()
        } else {
            "-".to_owned()
        };
        let _ = writeln!(
            out,
            "{:>5}  {:<17}  {:>9}  {:>7}  {:>10}  {:>12.0}  {:>11.0}  {:>8.2}s  {:>6}  {:>12.2}s",
            m.round,
            label(m.server, m.paced),
            r.cycles,
            r.empty,
            r.deliveries,
            r.cycles_per_cpu_second(),
            r.cycles_per_second(),
            r.server_cpu_seconds(),
            lost,
            r.others_on_server_core_seconds()
        );
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "{:<26}  {:>12}  {:>11}  {:>6}",
        "median", "cycles/CPU s", "cycles/s", "lost"
    );
    let variants: Vec<(Server, bool)> = options
        .servers
        .iter()
        .flat_map(|server| paces(*server).iter().map(|paced| (*server, *paced)))
        .collect();
    for &(server, paced) in &variants {
        if let Some(m) = medians(measurements, server, paced) {
            let _ = writeln!(
                out,
                "{:<26}  {:>12.0}  {:>11.0}  {:>6}",
                label(server, paced),
                m.cycles_per_cpu_second,
                m.cycles_per_second,
                m.lost
            );
        }
    }
    let ratio = |(server, paced): (Server, bool)| {
        let ours = medians(measurements, Server::Push, true)?;
        let theirs = medians(measurements, server, paced)?;
        Some((
            ours.cycles_per_cpu_second / theirs.cycles_per_cpu_second,
            ours.cycles_per_second / theirs.cycles_per_second,
        ))
    };
    for &variant in variants
        .iter()
        .filter(|(server, _)| *server != Server::Push)
    {
        if let Some((per_cpu, per_second)) = ratio(variant) {
            let _ = writeln!(
                out,
                "{:<26}  {:>11.3}x  {:>10.3}x",
                format!("push / {}", label(variant.0, variant.1)),
                per_cpu,
                per_second
            );
        }
    }
    let hyper_ok = Server::Baseline(Baseline::HyperOk);
    match (ratio((hyper_ok, true)), ratio((hyper_ok, false))) {
        (Some((paced, _)), flat_out) => {
            let state = if paced >= TARGET_RATIO {
                "met"
            } else {
                "missed"
            };
            let flat_out = flat_out
                .map(|(ratio, _)| format!(" (against hyper-ok flat out: {ratio:.3}x)"))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "target: push >= {TARGET_RATIO}x hyper-ok paced (the same polls per publish) \
                 in cycles per server CPU second: {paced:.3}x, {state}{flat_out}{}",
                if options.quick {
                    " (quick mode: not a measurement)"
                } else {
                    ""
                }
            );
        }
        _ => {
            let _ = writeln!(
                out,
                "target: not measured; measure push and hyper-ok (--servers) to check it"
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYPER_OK: Server = Server::Baseline(Baseline::HyperOk);

    fn report(cycles: u64, cpu_ticks: u64, lost: u64, checked: bool) -> LongPollReport {
        LongPollReport {
            pollers: 10,
            published: 100,
            cycles,
            empty: 0,
            deliveries: if checked { 1000 - lost } else { 0 },
            lost,
            disordered: 0,
            gaps: 0,
            ended: 0,
            checked,
            connections: 10,
            server_cpu_ticks: cpu_ticks,
            server_core_busy_ticks: cpu_ticks,
            ticks_per_second: 100,
            window: Duration::from_secs(2),
        }
    }

    fn options(quick: bool) -> LongPollCompareOptions {
        LongPollCompareOptions {
            servers: vec![Server::Push, HYPER_OK],
            rounds: 2,
            protocol: LoadProtocol::Http1,
            shape: CycleShape {
                pollers: 100,
                connections: 10,
                publishes: 1000,
                rate: 100.0,
                event_bytes: 64,
                hold_secs: 30,
            },
            quick,
            within: Duration::from_secs(60),
        }
    }

    #[test]
    fn only_push_hyper_ok_and_hyper_held_answer_long_polls() {
        assert_eq!(long_poll_role(Server::Push), Some(Role::Delivers));
        assert_eq!(long_poll_role(HYPER_OK), Some(Role::AnswersAtOnce));
        assert_eq!(
            long_poll_role("hyper-held".parse().unwrap()),
            Some(Role::Holds)
        );
        for name in [
            "axum-sse",
            "raw-writer",
            "hyper-stream",
            "tungstenite-default",
        ] {
            assert_eq!(long_poll_role(name.parse().unwrap()), None, "{name}");
        }
    }

    #[test]
    fn quick_mode_is_small_and_keeps_the_event_size() {
        let quick = options(true).effective_shape();
        assert_eq!((quick.pollers, quick.publishes), (20, 100));
        assert!(quick.publishes as f64 / quick.rate <= 2.0);
        assert_eq!(quick.event_bytes, 64);
        assert_eq!(options(false).effective_shape(), options(false).shape);
    }

    #[test]
    fn the_target_is_the_ratio_of_cycles_per_cpu_second() {
        // push: 1000 cycles per CPU second in both rounds; hyper-ok: 1250,
        // then 1150: median 1200, ratio 0.833.
        let measurements = [
            Measurement {
                server: Server::Push,
                paced: true,
                round: 1,
                report: report(1000, 100, 0, true),
            },
            Measurement {
                server: HYPER_OK,
                paced: true,
                round: 1,
                report: report(2500, 200, 0, false),
            },
            Measurement {
                server: HYPER_OK,
                paced: true,
                round: 2,
                report: report(2300, 200, 0, false),
            },
            Measurement {
                server: Server::Push,
                paced: true,
                round: 2,
                report: report(2000, 200, 0, true),
            },
        ];
        let push = medians(&measurements, Server::Push, true).unwrap();
        assert_eq!(push.cycles_per_cpu_second, 1000.0);
        assert_eq!(push.cycles_per_second, 750.0);
        let table = render_table(&measurements, &options(false));
        assert!(table.contains("push / hyper-ok paced"), "{table}");
        assert!(!table.contains("flat out"), "{table}");
        assert!(
            table.starts_with(
                "long-poll cycles over HTTP/1.1 keep-alive, a connection per poller: 100 pollers"
            ),
            "{table}"
        );
        let h2c = LongPollCompareOptions {
            protocol: LoadProtocol::H2c,
            ..options(false)
        };
        assert!(render_table(&measurements, &h2c)
            .starts_with("long-poll cycles over h2c, 10 connections:"),);
        assert!(
            table.contains("in cycles per server CPU second: 0.833x, met\n"),
            "{table}"
        );
        assert!(check_deliveries(&measurements).is_ok());

        // Flat out, hyper-ok is faster; it is reported, and the target
        // stays on the paced figure.
        let mut with_flat_out = measurements.to_vec();
        with_flat_out.push(Measurement {
            server: HYPER_OK,
            paced: false,
            round: 1,
            report: report(4000, 200, 0, false),
        });
        let table = render_table(&with_flat_out, &options(false));
        assert!(table.contains("push / hyper-ok flat out"), "{table}");
        assert!(
            table.contains("0.833x, met (against hyper-ok flat out: 0.500x)"),
            "{table}"
        );

        let mut slow = measurements;
        slow[0].report.server_cpu_ticks = 150;
        slow[3].report.server_cpu_ticks = 300;
        let table = render_table(&slow, &options(true));
        assert!(
            table.contains("0.556x, missed (quick mode: not a measurement)"),
            "{table}"
        );
    }

    #[test]
    fn a_lost_event_or_an_ended_poller_fails_the_run() {
        let lossy = [Measurement {
            server: Server::Push,
            paced: true,
            round: 2,
            report: report(1000, 100, 3, true),
        }];
        let error = check_deliveries(&lossy).unwrap_err().to_string();
        assert!(error.contains("round 2 push: 3 lost"), "{error}");
        let mut ended = report(1000, 100, 0, false);
        ended.ended = 1;
        let error = check_deliveries(&[Measurement {
            server: HYPER_OK,
            paced: false,
            round: 1,
            report: ended,
        }])
        .unwrap_err()
        .to_string();
        assert!(error.contains("1 pollers ended early"), "{error}");
        let table = render_table(
            &[Measurement {
                server: HYPER_OK,
                paced: false,
                round: 1,
                report: ended,
            }],
            &options(false),
        );
        assert!(table.contains("target: not measured"), "{table}");
    }
}
