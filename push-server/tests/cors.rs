//! `--allowed-origin`: CORS for the listed pages (preflights, readable
//! answers) and an Origin check on every request, WebSocket upgrades
//! included; without the flag, answers carry no CORS header at all.

mod pages;
mod process;

use pages::{assert_publish_preflight_allowed, assert_readable_by, request_from, websocket_from};
use process::Running;

use conformance::{HttpClient, Protocol};
use http::Method;

const APP: &str = "http://app.test:3000";

#[tokio::test]
async fn listed_origins_get_cors_and_others_are_refused_websocket_included() {
    let server = Running::start(&[
        "--allowed-origin",
        APP,
        "--allowed-origin",
        "https://b.test",
    ]);
    for protocol in [Protocol::Http1, Protocol::H2c] {
        let http = HttpClient::new(&server.url, protocol);
        // A preflight for a publish with a token.
        assert_publish_preflight_allowed(&http, APP).await;

        // A poll from the page: readable, its ETag exposed.
        let poll = request_from(&http, Method::GET, "/channels/news/poll", APP).await;
        assert_readable_by(&poll, APP);

        // A page of another origin: refused before anything is served.
        for path in [
            "/channels/news/poll",
            "/channels/news/sse",
            "/channels/news",
        ] {
            let refused = request_from(&http, Method::GET, path, "https://evil.test").await;
            assert_eq!(refused.status, 403, "{path}");
            assert_eq!(refused.error_code().as_deref(), Some("forbidden"));
        }
        // Clients that are not pages send no Origin, and are served.
        assert_eq!(http.get("/channels/news/poll").await.unwrap().status, 200);
    }
    // CORS does not cover WebSocket; the Origin check does.
    assert_eq!(
        websocket_from(&server.url, "news", "https://evil.test").await,
        403
    );
    assert_eq!(websocket_from(&server.url, "news", APP).await, 101);
}

#[tokio::test]
async fn any_origin_with_a_star_and_no_cors_at_all_without_the_flag() {
    const ANY: &str = "https://any.test";
    let open = Running::start(&["--allowed-origin", "*"]);
    let http = HttpClient::new(&open.url, Protocol::Http1);
    let poll = request_from(&http, Method::GET, "/channels/news/poll", ANY).await;
    assert_eq!(poll.status, 200);
    assert_eq!(poll.headers["access-control-allow-origin"], "*");
    assert_eq!(websocket_from(&open.url, "news", ANY).await, 101);

    let plain = Running::start(&[]);
    let http = HttpClient::new(&plain.url, Protocol::Http1);
    let poll = request_from(&http, Method::GET, "/channels/news/poll", ANY).await;
    assert_eq!(poll.status, 200);
    assert!(
        !poll
            .headers
            .keys()
            .any(|name| name.as_str().starts_with("access-control") || name == "vary"),
        "{:?}",
        poll.headers
    );
}

#[test]
fn an_origin_with_a_path_is_refused_at_start() {
    let (code, stderr) = process::exit_of(&["--allowed-origin", "https://app.test/"]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("--allowed-origin"), "{stderr}");
}
