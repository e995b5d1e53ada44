//! Requests as a browser page of some origin sends them, and what CORS
//! must answer them: shared by push-server's `--allowed-origin` tests and
//! push-warp's `with_origins` tests, which check the same contract.

use std::time::Duration;

use bytes::Bytes;
use conformance::http::FullResponse;
use conformance::HttpClient;
use http::Method;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Error;

/// How long a WebSocket handshake may take.
const HANDSHAKE_DEADLINE: Duration = Duration::from_secs(10);

/// `method path` from a page of `origin`, with no body.
pub(crate) async fn request_from(
    http: &HttpClient,
    method: Method,
    path: &str,
    origin: &str,
) -> FullResponse {
    http.fetch(method, path, &[("origin", origin)], Bytes::new())
        .await
        .unwrap()
}

/// The status of a WebSocket handshake to `channel` of the server at `base`
/// (`http://…`) from a page of `origin`.
pub(crate) async fn websocket_from(base: &str, channel: &str, origin: &str) -> u16 {
    let url = format!("{}/channels/{channel}/ws", base.replacen("http", "ws", 1));
    let mut request = url.into_client_request().unwrap();
    request
        .headers_mut()
        .insert("origin", origin.parse().unwrap());
    let handshake = tokio_tungstenite::connect_async(request);
    match tokio::time::timeout(HANDSHAKE_DEADLINE, handshake)
        .await
        .expect("the handshake was answered")
    {
        Ok((_, answer)) => answer.status().as_u16(),
        Err(Error::Http(answer)) => answer.status().as_u16(),
        Err(other) => panic!("the handshake failed: {other}"),
    }
}

/// Sends the preflight a page of `origin` makes before publishing with a
/// token, and checks it is allowed: the origin, the contract's methods and
/// request headers, and the 10 minutes a browser may keep the answer.
pub(crate) async fn assert_publish_preflight_allowed(http: &HttpClient, origin: &str) {
    let preflight = http
        .fetch(
            Method::OPTIONS,
            "/channels/news",
            &[
                ("origin", origin),
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
    assert_eq!(preflight.status, 200, "{:?}", http.protocol());
    let headers = &preflight.headers;
    assert_eq!(headers["access-control-allow-origin"], origin);
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
}

/// Checks that `answer`, to a page of `origin`, was served and is readable
/// by the page, with the headers pages read (`ETag`, `Retry-After`)
/// exposed.
pub(crate) fn assert_readable_by(answer: &FullResponse, origin: &str) {
    assert_eq!(answer.status, 200);
    assert_eq!(answer.headers["access-control-allow-origin"], origin);
    let exposed = answer.headers["access-control-expose-headers"]
        .to_str()
        .unwrap();
    assert!(
        exposed.contains("etag") && exposed.contains("retry-after"),
        "{exposed}"
    );
}
