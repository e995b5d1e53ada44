//! Runs the scenarios against transports and reports, per scenario per
//! transport: pass, fail (expected and got), or not applicable (why).

use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::future::join_all;
use push_core::Limits;

use crate::control::{Control, ControlError, ServerLimits};
use crate::gate::StopGate;
use crate::scenario::{Capability, Context, Outcome, Scenario};
use crate::scenarios::SCENARIOS;
use crate::transport::Transport;

/// Limits for a server that runs in the same process as the suite, small
/// enough for every bound to be reached quickly: 20 events and 4 MiB of
/// history, a 2 MiB subscriber bound, 300 ms heartbeats, 2 s long polls and
/// 1 MiB events.
///
/// ```
/// let limits = conformance::runner::suite_limits();
/// assert!(limits.validate().is_ok());
/// assert_eq!(limits.history_events, 20);
/// ```
pub fn suite_limits() -> Limits {
    Limits {
        history_events: 20,
        history_bytes: 4 << 20,
        subscriber_buffer_bytes: 2 << 20,
        heartbeat: Duration::from_millis(300),
        long_poll_max: Duration::from_secs(2),
        max_event_bytes: 1 << 20,
        ..Limits::default()
    }
}

/// How long one scenario may take before it fails.
pub const SCENARIO_TIMEOUT: Duration = Duration::from_secs(120);

/// The suite, set up for one run.
pub struct Suite<'a> {
    control: &'a dyn Control,
    transports: Vec<&'a dyn Transport>,
    only: Option<Vec<String>>,
}

/// One line of the report.
#[derive(Clone, Debug)]
pub struct Row {
    /// The scenario's name.
    pub scenario: &'static str,
    /// The contract point it checks (PROTOCOL.md, "The semantics
    /// contract").
    pub point: u8,
    /// The transport's name.
    pub transport: String,
    /// What it concluded.
    pub outcome: Outcome,
}

/// What a run found.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Every scenario for every transport, in order.
    pub rows: Vec<Row>,
}

impl<'a> Suite<'a> {
    /// A suite that drives the server through `control`.
    pub fn new(control: &'a dyn Control) -> Self {
        Suite {
            control,
            transports: Vec::new(),
            only: None,
        }
    }

    /// Adds a transport under test. Names must be unique within a run.
    pub fn transport(mut self, transport: &'a dyn Transport) -> Self {
        self.transports.push(transport);
        self
    }

    /// Adds every transport of `transports`, as [`Suite::transport`] does.
    pub fn transports<T: Transport>(mut self, transports: &'a [T]) -> Self {
        self.transports
            .extend(transports.iter().map(|t| t as &dyn Transport));
        self
    }

    /// Runs only the scenarios with these names.
    pub fn only(mut self, names: &[&str]) -> Self {
        self.only = Some(names.iter().map(|n| (*n).to_owned()).collect());
        self
    }

    fn selected(&self, scenario: &Scenario) -> bool {
        self.only
            .as_ref()
            .is_none_or(|only| only.iter().any(|n| n == scenario.name))
    }

    /// Runs every selected scenario for every transport (transports in
    /// parallel, scenarios in order), then the scenarios that stop the
    /// server ([`Capability::StopServer`]), for every transport at once. A
    /// scenario that needs what the control cannot do ([`Control::can`]) is
    /// not applicable, with the reason.
    ///
    /// # Errors
    ///
    /// A [`ControlError`] if the server's limits cannot be read
    /// (`GET /channels/{name}` failing), since every scenario needs them.
    pub async fn run(&self) -> Result<Report, ControlError> {
        let run_id = format!(
            "c{}",
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_millis() % 1_000_000_000)
                .unwrap_or(0)
        );
        let limits = self
            .control
            .describe(&format!("{run_id}-limits"))
            .await?
            .limits;
        // Nothing can run once the server is stopped.
        let (stopping, others): (Vec<&Scenario>, Vec<&Scenario>) = SCENARIOS
            .iter()
            .filter(|s| self.selected(s))
            .partition(|s| s.needs.contains(&Capability::StopServer));

        let contexts = self.contexts(&run_id, limits, None);
        let per_transport = contexts.iter().map(|ctx| {
            let others = &others;
            async move {
                let mut rows = Vec::with_capacity(others.len());
                for scenario in others {
                    rows.push(self.run_one(scenario, ctx).await);
                }
                rows
            }
        });
        let mut report = Report::default();
        for rows in join_all(per_transport).await {
            report.rows.extend(rows);
        }

        for scenario in stopping {
            let gate = StopGate::new(self.transports.len());
            let contexts = self.contexts(&run_id, limits, Some(&gate));
            let runs = contexts.iter().map(|ctx| async move {
                let row = self.run_one(scenario, ctx).await;
                ctx.leave_stop_gate();
                row
            });
            let (rows, ()) = tokio::join!(join_all(runs), gate.stop_when_ready(self.control));
            report.rows.extend(rows);
        }
        Ok(report)
    }

    /// One context per transport, each with its place at `gate` if given.
    fn contexts<'s>(
        &'s self,
        run_id: &str,
        limits: ServerLimits,
        gate: Option<&'s StopGate>,
    ) -> Vec<Context<'s>> {
        self.transports
            .iter()
            .map(|transport| Context {
                transport: *transport,
                all: &self.transports,
                control: self.control,
                limits,
                run_id: run_id.to_owned(),
                stop: gate.map(StopGate::ticket),
            })
            .collect()
    }

    /// Runs `scenario` for one transport, unless the control lacks what it
    /// needs, within [`SCENARIO_TIMEOUT`].
    async fn run_one(&self, scenario: &Scenario, ctx: &Context<'_>) -> Row {
        let lacking = scenario
            .needs
            .iter()
            .find(|&&capability| !self.control.can(capability));
        let outcome = match lacking {
            Some(&capability) => Outcome::not_applicable(lacking_reason(capability)),
            None => match tokio::time::timeout(SCENARIO_TIMEOUT, (scenario.run)(ctx)).await {
                Ok(Ok(())) => Outcome::Pass,
                Ok(Err(outcome)) => outcome,
                Err(_) => Outcome::fail(
                    format!(
                        "the scenario finishes within {} s",
                        SCENARIO_TIMEOUT.as_secs()
                    ),
                    "it did not",
                ),
            },
        };
        Row {
            scenario: scenario.name,
            point: scenario.point,
            transport: ctx.transport.name(),
            outcome,
        }
    }
}

/// Why a scenario that needs `capability` is not applicable.
fn lacking_reason(capability: Capability) -> &'static str {
    match capability {
        Capability::StopServer => {
            "the server cannot be shut down from here (checking a server by URL)"
        }
    }
}

impl Report {
    /// Checks a whole run in a test: no scenario failed, every scenario ran
    /// for each of `transports`, and more than half passed (the rest not
    /// applicable).
    ///
    /// # Panics
    ///
    /// With the report's table when any of that does not hold.
    pub fn assert_passed(&self, transports: usize) {
        let table = self.table();
        assert_eq!(self.failures(), 0, "{table}");
        assert_eq!(
            self.rows.len(),
            crate::scenarios::SCENARIOS.len() * transports,
            "every scenario runs for every transport\n{table}"
        );
        assert!(self.passes() > self.rows.len() / 2, "{table}");
    }

    /// How many scenario runs failed.
    pub fn failures(&self) -> usize {
        self.rows
            .iter()
            .filter(|row| matches!(row.outcome, Outcome::Fail { .. }))
            .count()
    }

    /// How many passed.
    pub fn passes(&self) -> usize {
        self.rows
            .iter()
            .filter(|row| row.outcome == Outcome::Pass)
            .count()
    }

    /// The outcome of `scenario` for `transport`.
    pub fn outcome(&self, scenario: &str, transport: &str) -> Option<&Outcome> {
        self.rows
            .iter()
            .find(|row| row.scenario == scenario && row.transport == transport)
            .map(|row| &row.outcome)
    }

    /// The names of the scenarios that failed for `transport`.
    pub fn failed_scenarios(&self, transport: &str) -> Vec<&'static str> {
        self.rows
            .iter()
            .filter(|row| row.transport == transport && matches!(row.outcome, Outcome::Fail { .. }))
            .map(|row| row.scenario)
            .collect()
    }

    /// A table (scenario by transport) followed by every failure's details
    /// and every reason for "not applicable", and a closing count line.
    pub fn table(&self) -> String {
        let mut transports: Vec<&str> = Vec::new();
        let mut scenarios: Vec<(&str, u8)> = Vec::new();
        for row in &self.rows {
            if !transports.contains(&row.transport.as_str()) {
                transports.push(&row.transport);
            }
            if !scenarios.iter().any(|(name, _)| *name == row.scenario) {
                scenarios.push((row.scenario, row.point));
            }
        }
        let name_width = scenarios
            .iter()
            .map(|(n, _)| n.len())
            .max()
            .unwrap_or(8)
            .max(8)
            + 6;
        let column = transports.iter().map(|t| t.len()).max().unwrap_or(4).max(4) + 2;
        let mut out = String::new();
        let _ = write!(out, "{:<name_width$}", "scenario (point)");
        for transport in &transports {
            let _ = write!(out, "{transport:<column$}");
        }
        out.push('\n');
        for (scenario, point) in &scenarios {
            let _ = write!(out, "{:<name_width$}", format!("{scenario} ({point})"));
            for transport in &transports {
                let mark = match self.outcome(scenario, transport) {
                    Some(Outcome::Pass) => "pass",
                    Some(Outcome::Fail { .. }) => "FAIL",
                    Some(Outcome::NotApplicable(_)) => "n/a",
                    None => "-",
                };
                let _ = write!(out, "{mark:<column$}");
            }
            out.push('\n');
        }
        let failures: Vec<&Row> = self
            .rows
            .iter()
            .filter(|r| matches!(r.outcome, Outcome::Fail { .. }))
            .collect();
        if !failures.is_empty() {
            out.push_str("\nfailures:\n");
            for row in failures {
                if let Outcome::Fail { expected, got } = &row.outcome {
                    let _ = writeln!(
                        out,
                        "  {} on {} (point {}):\n    expected: {expected}\n    got:      {got}",
                        row.scenario, row.transport, row.point
                    );
                }
            }
        }
        let mut reasons: Vec<(String, &str)> = Vec::new();
        for row in &self.rows {
            if let Outcome::NotApplicable(reason) = &row.outcome {
                let key = format!("{} on {}", row.scenario, row.transport);
                reasons.push((key, reason));
            }
        }
        if !reasons.is_empty() {
            out.push_str("\nnot applicable:\n");
            for (key, reason) in reasons {
                let _ = writeln!(out, "  {key}: {reason}");
            }
        }
        let skipped = self.rows.len() - self.passes() - self.failures();
        let _ = writeln!(
            out,
            "\ntotals: pass {}, fail {}, not applicable {}",
            self.passes(),
            self.failures(),
            skipped
        );
        out
    }
}
