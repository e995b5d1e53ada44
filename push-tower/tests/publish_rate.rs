//! `Config::publish_rate`: past the burst, publishes to one channel are
//! `429 rate_limited` with `Retry-After`, before the body is stored, while
//! other channels and subscribers go on unaffected.

mod support;

use bytes::Bytes;
use conformance::StartAt;
use http::Method;
use push_tower::Config;
use support::{TestServer, PROTOCOLS};

#[tokio::test]
async fn publishes_past_the_burst_are_429_and_nothing_else_is_held_up() {
    // One a minute sustained: the burst is all a test sees.
    let config = Config::default().publish_rate(1, 3);
    let server = TestServer::with(support::test_limits(), config).await;
    for protocol in PROTOCOLS {
        let http = server.http(protocol);
        let channel = format!("busy-{protocol:?}");
        let client = server.client(conformance::Technique::Sse, protocol);
        let mut session = support::open(&client, &channel, StartAt::Now).await;
        let mut ids = Vec::new();
        for _ in 0..3 {
            ids.push(support::publish(&http, &channel, "within").await);
        }
        let refused = http
            .fetch(
                Method::POST,
                &format!("/channels/{channel}"),
                &[("content-type", "text/plain")],
                Bytes::from_static(b"over"),
            )
            .await
            .unwrap();
        assert_eq!(refused.status, 429, "{protocol:?}");
        assert_eq!(refused.error_code().as_deref(), Some("rate_limited"));
        assert_eq!(refused.headers["retry-after"], "1");
        // Another channel has its own allowance.
        support::publish(&http, &format!("calm-{protocol:?}"), "fine").await;
        // The subscriber got the three, and not the refused one.
        let received: Vec<String> = support::events(&mut session, 3)
            .await
            .into_iter()
            .map(|event| event.id)
            .collect();
        assert_eq!(received, ids);
        let info = http
            .get(&format!("/channels/{channel}"))
            .await
            .unwrap()
            .json();
        assert_eq!(info["retained"], 3);
    }
}
