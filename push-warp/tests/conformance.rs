//! The whole conformance suite against a warp server mounting
//! `push_warp::routes` beside a route of its own: every technique warp's
//! server carries, on HTTP/1.1 and h2c.

use std::time::Duration;

use conformance::runner::suite_limits;
use conformance::{HttpClient, Protocol, Suite, Technique, WireClient, WireControl};
use push_core::{Hub, HubConfig};
use push_tower::{Config, Push};
use warp::Filter;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_suite_passes_over_warp() {
    let push = Push::new(
        Hub::new(HubConfig {
            limits: suite_limits(),
            max_channels: 10_000,
        }),
        Config::default(),
    );
    let hello = warp::path("hello").map(|| "hello");
    let app = push_warp::routes(push.clone()).or(hello);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(warp::serve(app).incoming(listener).run());

    let control = WireControl::new(HttpClient::new(&base, Protocol::Http1))
        .on_shutdown(move || push.shutdown());
    let mut clients = Vec::new();
    for protocol in [Protocol::Http1, Protocol::H2c] {
        for technique in Technique::ALL {
            // warp's server neither pushes nor takes extended CONNECT.
            let carried = protocol == Protocol::Http1
                || !matches!(technique, Technique::WebSocket | Technique::Http2Push);
            if carried {
                clients.push(
                    WireClient::new(technique, HttpClient::new(&base, protocol))
                        .long_poll_timeout(Duration::from_secs(1)),
                );
            }
        }
    }
    // HTTP/2 push's inline form, which any server carries.
    clients.push(
        WireClient::new(Technique::Http2Push, HttpClient::new(&base, Protocol::H2c))
            .push_disabled(),
    );
    let report = Suite::new(&control)
        .transports(&clients)
        .run()
        .await
        .unwrap();
    println!("{}", report.table());
    assert_eq!(report.failures(), 0, "{}", report.table());
    assert_eq!(
        report.rows.len(),
        conformance::scenarios::SCENARIOS.len() * clients.len()
    );

    // The app's own route is still served.
    let hello = HttpClient::new(&base, Protocol::Http1)
        .get("/hello")
        .await
        .unwrap();
    assert_eq!(hello.body, "hello");
}
