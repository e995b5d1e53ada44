//! The whole conformance suite over the Redis source: one node, and two
//! nodes sharing one Redis (publishing and closing on one, subscribing on
//! the other), every technique on HTTP/1.1 and h2c.

mod support;

use std::time::Duration;

use conformance::clients::every_client;
use conformance::{HttpClient, Protocol, Suite, Technique, WireControl};
use push_redis::RedisChannels;
use push_tower::{serve, Config, Push};
use support::{channels, RedisServer};

async fn node(channels: RedisChannels) -> (Push<RedisChannels>, String) {
    let push = Push::new(channels, Config::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(serve(listener, push.router()).with_push(push.clone()).run());
    (push, base)
}

async fn passes(control: &WireControl, subscribe_on: &str) {
    let clients = every_client(
        subscribe_on,
        &[Protocol::Http1, Protocol::H2c],
        &Technique::ALL,
        Duration::from_secs(1),
    );
    let report = Suite::new(control)
        .transports(&clients)
        .run()
        .await
        .unwrap();
    println!("{}", report.table());
    report.assert_passed(clients.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_suite_passes_on_one_node() {
    let redis = RedisServer::start();
    let (push, base) = node(channels(&redis).await).await;
    let control = WireControl::new(HttpClient::new(&base, Protocol::Http1))
        .on_shutdown(move || push.shutdown());
    passes(&control, &base).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_suite_passes_across_two_nodes() {
    let redis = RedisServer::start();
    let (node_a, base_a) = node(channels(&redis).await).await;
    let (node_b, base_b) = node(channels(&redis).await).await;
    // Publish and close on A; subscribe on B (which counts its own
    // subscribers); the shutdown scenario stops B, where the streams are.
    let control = WireControl::new(HttpClient::new(&base_a, Protocol::Http1))
        .observing(HttpClient::new(&base_b, Protocol::Http1))
        .on_shutdown(move || node_b.shutdown());
    passes(&control, &base_b).await;
    drop(node_a);
}
