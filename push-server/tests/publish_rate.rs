//! `--max-publish-rate` and `--publish-burst` as a user runs them.

mod process;

use bytes::Bytes;
use conformance::{HttpClient, Protocol};
use http::Method;

#[tokio::test]
async fn the_binary_limits_publishes_per_channel() {
    let server = process::Running::start(&["--max-publish-rate", "1", "--publish-burst", "2"]);
    let http = HttpClient::new(&server.url, Protocol::Http1);
    let publish = |channel: &'static str| {
        let http = http.clone();
        async move {
            http.fetch(
                Method::POST,
                &format!("/channels/{channel}"),
                &[("content-type", "text/plain")],
                Bytes::from_static(b"x"),
            )
            .await
            .unwrap()
        }
    };
    assert_eq!(publish("news").await.status, 201);
    assert_eq!(publish("news").await.status, 201);
    let refused = publish("news").await;
    assert_eq!(refused.status, 429);
    assert_eq!(refused.error_code().as_deref(), Some("rate_limited"));
    assert!(refused.headers.contains_key("retry-after"));
    assert_eq!(publish("sports").await.status, 201);
    drop(server);

    let (code, stderr) = process::exit_of(&["--max-publish-rate", "0"]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("--max-publish-rate"), "{stderr}");
}
