//! The whole suite against every built-in technique served by push-tower,
//! over real loopback sockets, on HTTP/1.1 and on HTTP/2 (h2c).

use std::time::Duration;

use conformance::{HttpClient, Protocol, Suite, Technique, Transport, WireClient, WireControl};
use push_core::{Hub, HubConfig, Limits};
use push_tower::{serve, Config, Push};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_builtin_technique_passes_on_http1_and_h2c() {
    let limits = Limits {
        history_events: 20,
        history_bytes: 4 << 20,
        subscriber_buffer_bytes: 2 << 20,
        heartbeat: Duration::from_millis(300),
        long_poll_max: Duration::from_secs(2),
        max_event_bytes: 1 << 20,
        ..Limits::default()
    };
    let push = Push::new(
        Hub::new(HubConfig {
            limits,
            max_channels: 10_000,
        }),
        Config::default(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(serve(listener, push.router()).with_push(push.clone()).run());

    let control = WireControl::new(HttpClient::new(&base, Protocol::Http1))
        .on_shutdown(move || push.shutdown());
    let clients: Vec<WireClient> = [Protocol::Http1, Protocol::H2c]
        .into_iter()
        .flat_map(|protocol| {
            let http = HttpClient::new(&base, protocol);
            Technique::ALL.into_iter().map(move |t| {
                WireClient::new(t, http.clone()).long_poll_timeout(Duration::from_secs(1))
            })
        })
        .collect();
    let mut suite = Suite::new(&control);
    for client in &clients {
        suite = suite.transport(client as &dyn Transport);
    }
    let report = suite.run().await.unwrap();
    println!("{}", report.table());
    assert_eq!(report.failures(), 0, "{}", report.table());
    // Every scenario ran for every transport, shutdown included.
    assert_eq!(
        report.rows.len(),
        conformance::scenarios::SCENARIOS.len() * clients.len()
    );
    assert!(report.passes() > report.rows.len() / 2);
}
