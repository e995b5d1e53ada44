//! The seam holds: a channel source that is not the built-in hub, written
//! outside push-core (the `custom_backend` example: its own map of channels,
//! reached through the `Channel` trait, every call answered after an
//! `await`), served by push-tower's router, passes the whole conformance
//! suite over every technique on HTTP/1.1 and h2c, shutdown included.

#[path = "../examples/custom_backend.rs"]
mod custom_backend;

use std::time::Duration;

use conformance::clients::every_client;
use conformance::{HttpClient, Protocol, Suite, Technique, WireControl};
use push_tower::{serve, Config, Push};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_like_backend_passes_the_whole_suite() {
    let source = custom_backend::source();
    let push = Push::new(source.clone(), Config::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(serve(listener, push.router()).with_push(push.clone()).run());

    let control = WireControl::new(HttpClient::new(&base, Protocol::Http1))
        .on_shutdown(move || push.shutdown());
    let clients = every_client(
        &base,
        &[Protocol::Http1, Protocol::H2c],
        &Technique::ALL,
        Duration::from_secs(1),
    );
    let report = Suite::new(&control)
        .transports(&clients)
        .run()
        .await
        .unwrap();
    println!("{}", report.table());
    report.assert_passed(clients.len());
    // Every operation went through the custom source.
    assert!(source.calls() > 1_000, "{} calls", source.calls());
}
