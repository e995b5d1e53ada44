//! The services drop into axum as they are: `route_service` and
//! `nest_service`.

mod support;

use conformance::{HttpClient, Protocol, StartAt, Technique, Transport};
use push_core::{Hub, HubConfig};
use push_tower::sse::SseService;
use push_tower::{Config, Push};
use support::{next_event, publish, TIMEOUT};

#[tokio::test]
async fn route_service_and_nest_service() {
    let push = Push::new(Hub::new(HubConfig::default()), Config::default());
    let app = axum::Router::new()
        .route_service("/events/{name}", SseService::new(push.clone()))
        .route_service(
            "/ticker",
            SseService::for_channel(push.clone(), "ticker").unwrap(),
        )
        .nest_service("/push", push.router());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    // The nested router answers the whole wire contract under /push.
    let nested = HttpClient::new(&format!("http://{addr}/push"), Protocol::Http1);
    assert_eq!(nested.get("/healthz").await.unwrap().status, 200);
    let mut session = tokio::time::timeout(
        TIMEOUT,
        Technique::Stream
            .client(nested.clone())
            .open("news", StartAt::Now),
    )
    .await
    .unwrap()
    .unwrap();
    let id = publish(&nested, "news", "through axum").await;
    assert_eq!(next_event(&mut session).await.id, id);

    // route_service: the channel is the last path segment.
    let root = HttpClient::new(&format!("http://{addr}"), Protocol::Http1);
    let response = root.get("/events/bad%20name").await.unwrap();
    assert_eq!(response.error_code().as_deref(), Some("bad_channel"));
    let response = root
        .send(
            http::Method::GET,
            "/events/news",
            &[("last-event-id", id.as_str())],
            bytes::Bytes::new(),
        )
        .await
        .unwrap();
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let response = root
        .send(http::Method::GET, "/ticker", &[], bytes::Bytes::new())
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(push.hub().describe("ticker").unwrap().subscribers, 1);
}
