//! `--allowed-origin`: CORS for the listed pages (preflights, readable
//! answers) and an Origin check on every request, WebSocket upgrades
//! included; without the flag, answers carry no CORS header at all.

mod process;

use process::Running;

use bytes::Bytes;
use conformance::http::FullResponse;
use conformance::{HttpClient, Protocol};
use http::Method;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const APP: &str = "http://app.test:3000";

/// `GET path` from a page of `origin`.
async fn get_from(http: &HttpClient, path: &str, origin: &str) -> FullResponse {
    http.fetch(Method::GET, path, &[("origin", origin)], Bytes::new())
        .await
        .unwrap()
}

/// Opens a WebSocket to `channel` from a page of `origin`; the status the
/// handshake got.
async fn websocket_from(server: &Running, channel: &str, origin: &str) -> u16 {
    let url = format!(
        "{}/channels/{channel}/ws",
        server.url.replacen("http", "ws", 1)
    );
    let mut request = url.into_client_request().unwrap();
    request
        .headers_mut()
        .insert("origin", origin.parse().unwrap());
    match tokio_tungstenite::connect_async(request).await {
        Ok((_, answer)) => answer.status().as_u16(),
        Err(tokio_tungstenite::tungstenite::Error::Http(answer)) => answer.status().as_u16(),
        Err(other) => panic!("the handshake failed: {other}"),
    }
}

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
        let preflight = http
            .fetch(
                Method::OPTIONS,
                "/channels/news",
                &[
                    ("origin", APP),
                    ("access-control-request-method", "POST"),
                    (
                        "access-control-request-headers",
                        "authorization, content-type",
                    ),
                ],
                Bytes::new(),
            )
            .await
            .unwrap();
        assert_eq!(preflight.status, 200, "{protocol:?}");
        let headers = &preflight.headers;
        assert_eq!(headers["access-control-allow-origin"], APP);
        let methods = headers["access-control-allow-methods"].to_str().unwrap();
        assert!(
            methods.contains("POST") && methods.contains("DELETE"),
            "{methods}"
        );
        let allowed = headers["access-control-allow-headers"].to_str().unwrap();
        assert!(
            allowed.contains("authorization") && allowed.contains("last-event-id"),
            "{allowed}"
        );
        assert_eq!(headers["access-control-max-age"], "600");

        // A poll from the page: readable, its ETag exposed.
        let poll = get_from(&http, "/channels/news/poll", APP).await;
        assert_eq!(poll.status, 200);
        assert_eq!(poll.headers["access-control-allow-origin"], APP);
        let exposed = poll.headers["access-control-expose-headers"]
            .to_str()
            .unwrap();
        assert!(
            exposed.contains("etag") && exposed.contains("retry-after"),
            "{exposed}"
        );

        // A page of another origin: refused before anything is served.
        for path in [
            "/channels/news/poll",
            "/channels/news/sse",
            "/channels/news",
        ] {
            let refused = get_from(&http, path, "https://evil.test").await;
            assert_eq!(refused.status, 403, "{path}");
            assert_eq!(refused.error_code().as_deref(), Some("forbidden"));
        }
        // Clients that are not pages send no Origin, and are served.
        assert_eq!(http.get("/channels/news/poll").await.unwrap().status, 200);
    }
    // CORS does not cover WebSocket; the Origin check does.
    assert_eq!(
        websocket_from(&server, "news", "https://evil.test").await,
        403
    );
    assert_eq!(websocket_from(&server, "news", APP).await, 101);
}

#[tokio::test]
async fn any_origin_with_a_star_and_no_cors_at_all_without_the_flag() {
    let open = Running::start(&["--allowed-origin", "*"]);
    let http = HttpClient::new(&open.url, Protocol::Http1);
    let poll = get_from(&http, "/channels/news/poll", "https://any.test").await;
    assert_eq!(poll.status, 200);
    assert_eq!(poll.headers["access-control-allow-origin"], "*");
    assert_eq!(websocket_from(&open, "news", "https://any.test").await, 101);

    let plain = Running::start(&[]);
    let http = HttpClient::new(&plain.url, Protocol::Http1);
    let poll = get_from(&http, "/channels/news/poll", "https://any.test").await;
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
