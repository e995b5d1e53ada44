//! The whole suite against every built-in technique served by push-tower,
//! over real loopback sockets, on HTTP/1.1 and on HTTP/2 (h2c), and HTTP/2
//! server push with push disabled by the client as well.

use std::time::Duration;

use conformance::clients::every_client;
use conformance::runner::suite_limits;
use conformance::{HttpClient, Protocol, Suite, Technique, Transport, WireControl};
use push_core::{Hub, HubConfig};
use push_tower::{serve, Config, Push};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_builtin_technique_passes_on_http1_and_h2c() {
    let push = Push::new(
        Hub::new(HubConfig {
            limits: suite_limits(),
            max_channels: 10_000,
        }),
        Config::default(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(serve(listener, push.router()).with_push(push.clone()).run());

    let control = WireControl::new(HttpClient::new(&base, Protocol::Http1))
        .on_shutdown(move || push.shutdown());
    // With the fallback of HTTP/2 push: SETTINGS_ENABLE_PUSH = 0, events
    // inline.
    let clients = every_client(
        &base,
        &[Protocol::Http1, Protocol::H2c],
        &Technique::ALL,
        Duration::from_secs(1),
    );
    let names: Vec<String> = clients.iter().map(Transport::name).collect();
    for push in ["push", "push-h2c", "push-h2c-nopush"] {
        assert!(names.iter().any(|name| name == push), "{names:?}");
    }
    let report = Suite::new(&control)
        .transports(&clients)
        .run()
        .await
        .unwrap();
    println!("{}", report.table());
    report.assert_passed(clients.len());
}
