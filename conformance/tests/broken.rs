//! Proof that the suite can fail: transports that drop an event, reorder
//! two, or hide a gap are caught, by name of the scenario that caught them,
//! whether the events came as NDJSON lines or as WebSocket messages.

use std::time::Duration;

use conformance::{
    HttpClient, OpenError, Protocol, Received, Session, SessionError, Shape, SignalKind, StartAt,
    Suite, Technique, Transport, WireClient, WireControl,
};
use futures_util::future::BoxFuture;
use push_core::{Hub, HubConfig, Limits};
use push_tower::{serve, Config, Push};

#[derive(Clone, Copy, Debug, PartialEq)]
enum Fault {
    /// The third event of each subscription never arrives.
    DropsAnEvent,
    /// The second and third events arrive swapped.
    Reorders,
    /// Gap signals are swallowed.
    HidesGaps,
}

struct Broken {
    inner: WireClient,
    fault: Fault,
}

impl Transport for Broken {
    /// The fault, then the technique when it is not NDJSON:
    /// `DropsAnEvent`, `DropsAnEvent-ws`.
    fn name(&self) -> String {
        match self.inner.technique() {
            Technique::Ndjson => format!("{:?}", self.fault),
            other => format!("{:?}-{other}", self.fault),
        }
    }

    fn shape(&self) -> Shape {
        self.inner.shape()
    }

    fn open<'a>(
        &'a self,
        channel: &'a str,
        start: StartAt,
    ) -> BoxFuture<'a, Result<Box<dyn Session>, OpenError>> {
        Box::pin(async move {
            let inner = self.inner.open(channel, start).await?;
            Ok(Box::new(BrokenSession {
                inner,
                fault: self.fault,
                events: 0,
                held: None,
            }) as Box<dyn Session>)
        })
    }
}

struct BrokenSession {
    inner: Box<dyn Session>,
    fault: Fault,
    events: usize,
    held: Option<Received>,
}

impl Session for BrokenSession {
    fn next(&mut self) -> BoxFuture<'_, Result<Option<Received>, SessionError>> {
        Box::pin(async move {
            loop {
                let item = self.inner.next().await?;
                let is_event = matches!(item, Some(Received::Event(_)));
                if is_event {
                    self.events += 1;
                }
                match self.fault {
                    Fault::DropsAnEvent if is_event && self.events == 3 => continue,
                    Fault::Reorders if is_event && self.events == 2 => {
                        self.held = item;
                        continue;
                    }
                    Fault::Reorders if is_event && self.events == 3 => {
                        // Deliver the third now and the second right after.
                        let second = self.held.take();
                        let third = item;
                        self.held = second;
                        return Ok(third);
                    }
                    Fault::HidesGaps => {
                        if let Some(Received::Signal(signal)) = &item {
                            if signal.kind == SignalKind::Gap {
                                continue;
                            }
                        }
                    }
                    _ => {}
                }
                if let Some(held) = self.held.take() {
                    // The reordered second event, after the third.
                    self.held = item;
                    return Ok(Some(held));
                }
                return Ok(item);
            }
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_transports_fail_by_the_scenario_that_caught_them() {
    let limits = Limits {
        history_events: 20,
        heartbeat: Duration::from_millis(300),
        long_poll_max: Duration::from_secs(2),
        ..Limits::default()
    };
    let push = Push::new(
        Hub::new(HubConfig {
            limits,
            max_channels: 1000,
        }),
        Config::default(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(serve(listener, push.router()).run());
    let http = HttpClient::new(&base, Protocol::Http1);
    let control = WireControl::new(http.clone());
    // Every fault over a stream of HTTP bodies and over WebSocket frames.
    let techniques = [Technique::Ndjson, Technique::WebSocket];
    let broken: Vec<Broken> = techniques
        .into_iter()
        .flat_map(|technique| {
            [Fault::DropsAnEvent, Fault::Reorders, Fault::HidesGaps].map(|fault| Broken {
                inner: WireClient::new(technique, http.clone()),
                fault,
            })
        })
        .collect();
    let mut suite = Suite::new(&control).only(&[
        "order_and_completeness",
        "resume_after_cursor",
        "gap_when_history_exhausted",
        "gap_for_another_incarnation",
    ]);
    for transport in &broken {
        suite = suite.transport(transport as &dyn Transport);
    }
    let report = suite.run().await.unwrap();
    println!("{}", report.table());

    for suffix in ["", "-ws"] {
        let dropped = report.failed_scenarios(&format!("DropsAnEvent{suffix}"));
        assert!(dropped.contains(&"order_and_completeness"), "{dropped:?}");
        assert!(dropped.contains(&"resume_after_cursor"), "{dropped:?}");

        let reordered = report.failed_scenarios(&format!("Reorders{suffix}"));
        assert!(
            reordered.contains(&"order_and_completeness"),
            "{reordered:?}"
        );

        let hidden = report.failed_scenarios(&format!("HidesGaps{suffix}"));
        assert_eq!(
            hidden,
            ["gap_when_history_exhausted", "gap_for_another_incarnation"]
        );
    }

    // The failures say what was expected and what arrived.
    let table = report.table();
    assert!(
        table.contains("expected:") && table.contains("got:"),
        "{table}"
    );
    assert!(
        table.contains("a gap signal before the first event"),
        "{table}"
    );
}
