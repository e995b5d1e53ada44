//! The long-poll load over real sockets on 127.0.0.1: against push's router
//! served in-process (every event at every poller, once and in order),
//! against `hyper-ok` (answers counted, nothing delivered), and the check
//! failing when the events do not come. The "server" whose CPU time is
//! read is this test process.

use std::net::SocketAddr;
use std::time::Duration;

use push_bench::baseline::Baseline;
use push_bench::fanout::LoadProtocol;
use push_bench::longpoll::{self, CycleShape, LongPollOptions};
use tokio::net::TcpListener;

mod common;
use common::{start, start_push};

/// How long a whole run may take before the test fails.
const RUN: Duration = Duration::from_secs(60);

fn options(server: SocketAddr, check_deliveries: bool) -> LongPollOptions {
    LongPollOptions {
        server,
        server_pid: std::process::id(),
        server_core: 0,
        protocol: LoadProtocol::Http1,
        channel: "cycles".to_owned(),
        shape: CycleShape {
            pollers: 5,
            connections: 2,
            publishes: 20,
            rate: 100.0,
            event_bytes: 32,
            hold_secs: 30,
        },
        check_deliveries,
        within: Duration::from_secs(10),
        paced: false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_poller_gets_every_event_of_push_once_and_in_order() {
    let address = start_push().await;
    let report = tokio::time::timeout(RUN, longpoll::run(&options(address, true)))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(report.fault(), None, "{report}");
    assert!(report.checked);
    assert_eq!(report.deliveries, 5 * 20, "{report}");
    assert_eq!(report.lost, 0);
    // Each answer brings one event or more: at most one cycle per event
    // and poller, at least one per poller.
    assert!(
        (5..=5 * 20).contains(&report.cycles),
        "{} cycles: {report}",
        report.cycles
    );
    assert_eq!(report.connections, 5, "kept alive: {report}");
    assert!(report.window >= Duration::from_millis(190), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hyper_ok_is_polled_the_same_way_and_answers_every_poll_at_once() {
    let address = start(Baseline::HyperOk).await;
    let report = tokio::time::timeout(RUN, longpoll::run(&options(address, false)))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(report.fault(), None, "{report}");
    assert!(!report.checked);
    assert_eq!(report.deliveries, 0);
    // Answered at once: many more cycles than publishes, each empty (empty
    // counts every answer, the window's and the few after it).
    assert!(report.cycles > 5 * 20, "{report}");
    assert!(report.empty >= report.cycles, "{report}");
    assert_eq!(report.connections, 5, "kept alive: {report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paced_pollers_poll_once_per_publish() {
    let address = start(Baseline::HyperOk).await;
    let mut options = options(address, false);
    options.paced = true;
    let report = tokio::time::timeout(RUN, longpoll::run(&options))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(report.fault(), None, "{report}");
    // The first poll of each poller goes at once, then one per publish:
    // pollers × (publishes + 1) at most, and at least one per publish but
    // the last, whose answer may come after the window closes.
    assert!(
        (5 * 20..=5 * 21).contains(&report.cycles),
        "{} cycles: {report}",
        report.cycles
    );
    assert_eq!(report.connections, 5, "kept alive: {report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_check_fails_when_events_do_not_come() {
    // hyper-ok takes the publishes and delivers nothing: every event is
    // lost at every poller, and the drain gives up after `within`.
    let address = start(Baseline::HyperOk).await;
    let mut options = options(address, true);
    options.shape.publishes = 3;
    options.within = Duration::from_secs(1);
    let report = tokio::time::timeout(RUN, longpoll::run(&options))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(report.lost, 5 * 3, "{report}");
    assert_eq!(report.deliveries, 0);
    assert!(report.fault().unwrap().starts_with("15 lost"), "{report}");
}

#[tokio::test]
async fn a_server_that_is_not_there_fails_the_setup() {
    // A port just freed: nothing listens on it.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    let mut options = options(address, true);
    options.within = Duration::from_secs(2);
    let error = tokio::time::timeout(RUN, longpoll::run(&options))
        .await
        .unwrap()
        .unwrap_err()
        .to_string();
    assert!(error.contains("cannot connect"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_loop_runs_over_h2c() {
    for (server, check_deliveries) in [
        (start_push().await, true),
        (start(Baseline::HyperOk).await, false),
    ] {
        let mut options = options(server, check_deliveries);
        options.protocol = LoadProtocol::H2c;
        let report = tokio::time::timeout(RUN, longpoll::run(&options))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(report.fault(), None, "{report}");
        assert_eq!(report.connections, 2, "shared by the 5 pollers: {report}");
        if check_deliveries {
            assert_eq!(report.deliveries, 5 * 20, "{report}");
            assert!((5..=5 * 20).contains(&report.cycles), "{report}");
        } else {
            assert!(report.cycles > 5 * 20, "{report}");
        }
    }
}
