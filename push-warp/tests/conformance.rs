//! The whole conformance suite against `push_warp::routes` mounted beside a
//! route of the app's own: under warp's server, every technique it carries
//! on HTTP/1.1 and h2c; under push-tower's `serve`, every technique,
//! HTTP/2 push and WebSocket over HTTP/2 included; and under warp's server
//! over a channel source that is not the hub (push-tower's `custom_backend`
//! example), since the filters are generic over it.

#[path = "../../push-tower/examples/custom_backend.rs"]
mod custom_backend;

use std::time::Duration;

use conformance::clients::every_client;
use conformance::runner::suite_limits;
use conformance::{HttpClient, Protocol, Suite, Technique, Transport, WireClient, WireControl};
use push_core::{Channels, Hub, HubConfig};
use push_tower::{serve, Config, Push};
use warp::Filter;

fn push() -> Push {
    Push::new(
        Hub::new(HubConfig {
            limits: suite_limits(),
            max_channels: 10_000,
        }),
        Config::default(),
    )
}

/// The app: push under `/api`, beside `GET /hello`.
fn app<C: Channels>(
    push: Push<C>,
) -> impl Filter<Extract = (impl warp::Reply,), Error = warp::Rejection> + Clone {
    let hello = warp::path("hello").map(|| "hello");
    warp::path("api").and(push_warp::routes(push)).or(hello)
}

/// Runs the whole suite against `base` (push under `{base}/api`) with
/// `clients`, and checks that the app's own route still answers.
async fn passes<C: Channels>(push: Push<C>, base: &str, clients: &[WireClient]) {
    let api = format!("{base}/api");
    let control = WireControl::new(HttpClient::new(&api, Protocol::Http1))
        .on_shutdown(move || push.shutdown());
    let report = Suite::new(&control)
        .transports(clients)
        .run()
        .await
        .unwrap();
    println!("{}", report.table());
    report.assert_passed(clients.len());

    let hello = HttpClient::new(base, Protocol::Http1)
        .get("/hello")
        .await
        .unwrap();
    assert_eq!(hello.body, "hello");
}

/// Serves `app(push)` on warp's server; the base URL.
async fn on_warp<C: Channels>(push: Push<C>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(warp::serve(app(push)).incoming(listener).run());
    base
}

/// Every client of the suite but those warp's server cannot carry: it
/// neither pushes nor takes HTTP/2 extended CONNECT.
fn carried_by_warp(base: &str) -> Vec<WireClient> {
    let clients: Vec<WireClient> = every_client(
        &format!("{base}/api"),
        &[Protocol::Http1, Protocol::H2c],
        &Technique::ALL,
        Duration::from_secs(1),
    )
    .into_iter()
    .filter(|client| !["ws-h2c", "push-h2c"].contains(&client.name().as_str()))
    .collect();
    assert_eq!(clients.len(), 11);
    clients
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_suite_passes_under_warps_server() {
    let push = push();
    let base = on_warp(push.clone()).await;
    passes(push, &base, &carried_by_warp(&base)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_suite_passes_over_a_custom_backend() {
    let source = custom_backend::source();
    let push = Push::new(source.clone(), Config::default());
    let base = on_warp(push.clone()).await;
    passes(push, &base, &carried_by_warp(&base)).await;
    // Every operation went through the custom source.
    assert!(source.calls() > 1_000, "{} calls", source.calls());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_suite_passes_under_push_towers_serve() {
    let push = push();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let service = warp::service(app(push.clone()));
    tokio::spawn(serve(listener, service).with_push(push.clone()).run());

    // Every technique, pushed responses and WebSocket over HTTP/2 included.
    let clients = every_client(
        &format!("{base}/api"),
        &[Protocol::Http1, Protocol::H2c],
        &Technique::ALL,
        Duration::from_secs(1),
    );
    assert_eq!(clients.len(), 13);
    passes(push, &base, &clients).await;
}
