//! Where the transports running a scenario that stops the server meet: one
//! server serves every transport of a run, so they share one shutdown, and
//! it must start only when each of them is ready for it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::watch;

use crate::control::Control;
use crate::scenario::Outcome;

/// How long the gate waits for transports that have neither arrived nor
/// finished. Well under the runner's scenario timeout, so that the transports
/// already waiting still see the shutdown when another one is stuck.
const GATE_TIMEOUT: Duration = Duration::from_secs(30);

/// The pause between the last arrival and the shutdown. Transports start
/// reading as they arrive; a held long poll must reach the server before it
/// stops, or it would be refused instead of answered `503`.
const SETTLE: Duration = Duration::from_millis(300);

/// How many transports the gate still waits for, and how many wait at it.
#[derive(Clone, Copy, Debug)]
struct Progress {
    outstanding: usize,
    arrived: usize,
}

/// What became of the server, once the gate opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stop {
    /// The shutdown started.
    Started,
    /// [`Control::shutdown`] returned `None`.
    Refused,
    /// Every transport finished without arriving: nobody needed it.
    Skipped,
}

/// The gate of one scenario run that stops the server.
pub(crate) struct StopGate {
    progress: watch::Sender<Progress>,
    stop: watch::Sender<Option<Stop>>,
}

impl StopGate {
    /// A gate for `transports` transports running the scenario.
    pub(crate) fn new(transports: usize) -> Self {
        StopGate {
            progress: watch::Sender::new(Progress {
                outstanding: transports,
                arrived: 0,
            }),
            stop: watch::Sender::new(None),
        }
    }

    /// One transport's place at the gate.
    pub(crate) fn ticket(&self) -> StopTicket<'_> {
        StopTicket {
            gate: self,
            counted: AtomicBool::new(false),
        }
    }

    /// Waits until no transport is outstanding (or [`GATE_TIMEOUT`]), then
    /// calls `control.shutdown()` once, unless nobody arrived. The runner
    /// drives it beside the transports' runs of the scenario.
    pub(crate) async fn stop_when_ready(&self, control: &dyn Control) {
        let mut progress = self.progress.subscribe();
        let ready = progress.wait_for(|p| p.outstanding == 0);
        // Past the timeout, whoever is still outstanding is left behind.
        let _ = tokio::time::timeout(GATE_TIMEOUT, ready).await;
        let Progress {
            outstanding,
            arrived,
        } = *self.progress.borrow();
        if outstanding == 0 && arrived == 0 {
            self.stop.send_replace(Some(Stop::Skipped));
            return;
        }
        tokio::time::sleep(SETTLE).await;
        let stop = match control.shutdown() {
            Some(shutdown) => {
                shutdown.await;
                Stop::Started
            }
            None => Stop::Refused,
        };
        self.stop.send_replace(Some(stop));
    }
}

/// One transport's place at a [`StopGate`]: it counts once, either when the
/// transport arrives or when it finishes the scenario.
pub(crate) struct StopTicket<'a> {
    gate: &'a StopGate,
    counted: AtomicBool,
}

impl StopTicket<'_> {
    /// Arrives at the gate and waits for it to open.
    pub(crate) async fn arrive(&self) -> Result<(), Outcome> {
        if !self.counted.swap(true, Ordering::AcqRel) {
            self.gate.progress.send_modify(|p| {
                p.outstanding = p.outstanding.saturating_sub(1);
                p.arrived += 1;
            });
        }
        let mut stop = self.gate.stop.subscribe();
        let opened = stop.wait_for(Option::is_some).await.map(|stop| *stop);
        match opened {
            Ok(Some(Stop::Started)) => Ok(()),
            Ok(Some(Stop::Refused)) => Err(Outcome::fail(
                "the server stops, since Control::can(StopServer) answered true",
                "Control::shutdown returned None",
            )),
            // Skipped needs every transport finished, this one included,
            // and the sender lives as long as the gate: neither happens.
            Ok(Some(Stop::Skipped) | None) | Err(_) => Err(Outcome::fail(
                "the gate stops the server",
                "it closed without stopping it",
            )),
        }
    }

    /// The transport finished the scenario: if it never arrived, it no
    /// longer holds the gate.
    pub(crate) fn leave(&self) {
        if !self.counted.swap(true, Ordering::AcqRel) {
            self.gate.progress.send_modify(|p| {
                p.outstanding = p.outstanding.saturating_sub(1);
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use futures_util::future::BoxFuture;

    use super::*;
    use crate::control::{ChannelState, ControlError};
    use crate::scenario::Capability;

    /// Counts shutdowns; answers nothing else.
    #[derive(Default)]
    struct Stopper {
        shutdowns: AtomicUsize,
        refuses: bool,
    }

    impl Control for Stopper {
        fn publish<'a>(
            &'a self,
            _: &'a str,
            _: Option<&'a str>,
            _: &'a [u8],
            _: bool,
        ) -> BoxFuture<'a, Result<String, ControlError>> {
            Box::pin(async { Err(ControlError("not in this test".into())) })
        }

        fn close<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<(), ControlError>> {
            Box::pin(async { Err(ControlError("not in this test".into())) })
        }

        fn describe<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<ChannelState, ControlError>> {
            Box::pin(async { Err(ControlError("not in this test".into())) })
        }

        fn can(&self, capability: Capability) -> bool {
            capability == Capability::StopServer
        }

        fn shutdown(&self) -> Option<BoxFuture<'_, ()>> {
            if self.refuses {
                return None;
            }
            self.shutdowns.fetch_add(1, Ordering::SeqCst);
            Some(Box::pin(async {}))
        }
    }

    #[tokio::test(start_paused = true)]
    async fn stops_once_when_every_transport_arrived_or_left() {
        let control = Stopper::default();
        let gate = StopGate::new(3);
        let (first, second, third) = (gate.ticket(), gate.ticket(), gate.ticket());
        let started = tokio::time::Instant::now();
        let arrivals = async {
            let early = first.arrive();
            let late = async {
                tokio::time::sleep(Duration::from_secs(2)).await;
                third.arrive().await
            };
            second.leave();
            tokio::join!(early, late)
        };
        let ((early, late), ()) = tokio::join!(arrivals, gate.stop_when_ready(&control));
        assert_eq!((early, late), (Ok(()), Ok(())));
        assert_eq!(control.shutdowns.load(Ordering::SeqCst), 1);
        // The last arrival, then the pause for requests in flight.
        assert_eq!(started.elapsed(), Duration::from_secs(2) + SETTLE);
    }

    #[tokio::test(start_paused = true)]
    async fn a_stuck_transport_holds_the_gate_only_until_the_timeout() {
        let control = Stopper::default();
        let gate = StopGate::new(2);
        let (waiting, _stuck) = (gate.ticket(), gate.ticket());
        let started = tokio::time::Instant::now();
        let (arrived, ()) = tokio::join!(waiting.arrive(), gate.stop_when_ready(&control));
        assert_eq!(arrived, Ok(()));
        assert_eq!(control.shutdowns.load(Ordering::SeqCst), 1);
        assert_eq!(started.elapsed(), GATE_TIMEOUT + SETTLE);
    }

    #[tokio::test(start_paused = true)]
    async fn nobody_arriving_leaves_the_server_running() {
        let control = Stopper::default();
        let gate = StopGate::new(2);
        let (first, second) = (gate.ticket(), gate.ticket());
        first.leave();
        second.leave();
        // Leaving twice, or after arriving, counts once.
        second.leave();
        gate.stop_when_ready(&control).await;
        assert_eq!(control.shutdowns.load(Ordering::SeqCst), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_control_that_cannot_stop_fails_the_arrivals() {
        let control = Stopper {
            refuses: true,
            ..Stopper::default()
        };
        let gate = StopGate::new(1);
        let ticket = gate.ticket();
        let (arrived, ()) = tokio::join!(ticket.arrive(), gate.stop_when_ready(&control));
        assert!(
            matches!(&arrived, Err(Outcome::Fail { got, .. }) if got.contains("returned None")),
            "{arrived:?}"
        );
    }
}
