//! The services drop into axum as they are: `route_service` with the channel
//! from a stated path parameter or a fixed name, `nest_service` for the
//! whole protocol, and axum's graceful shutdown ending streams with the
//! shutdown signal.

mod support;

use conformance::{
    HttpClient, Protocol, Received, SignalKind, StartAt, Technique, Transport, WireClient,
};
use push_core::{Hub, HubConfig};
use push_tower::{ChannelFrom, Config, Push};
use support::{next, next_event, publish, TIMEOUT};

#[tokio::test]
async fn route_service_and_nest_service() {
    let push = Push::new(Hub::new(HubConfig::default()), Config::default());
    let app = axum::Router::new()
        .route_service(
            "/events/{name}",
            push.sse(ChannelFrom::path("/events/{name}").unwrap()),
        )
        .route_service(
            "/rooms/{room}/live",
            push.sse(ChannelFrom::path("/rooms/{room}/live").unwrap()),
        )
        .route_service("/ticker", push.sse(ChannelFrom::fixed("ticker").unwrap()))
        .nest_service("/push", push.router());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    // The nested router answers the whole wire contract under /push.
    let nested = HttpClient::new(&format!("http://{addr}/push"), Protocol::Http1);
    assert_eq!(nested.get("/healthz").await.unwrap().status, 200);
    let mut session = tokio::time::timeout(
        TIMEOUT,
        WireClient::new(Technique::Ndjson, nested.clone()).open("news", StartAt::Now),
    )
    .await
    .unwrap()
    .unwrap();
    let id = publish(&nested, "news", "through axum").await;
    assert_eq!(next_event(&mut session).await.id, id);

    // route_service: the channel is the path parameter the service was told.
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

    // The parameter is not the last segment: the channel is the room, not
    // `live`.
    let _lobby = root
        .send(
            http::Method::GET,
            "/rooms/lobby/live",
            &[],
            bytes::Bytes::new(),
        )
        .await
        .unwrap();
    assert_eq!(push.channels().describe("lobby").unwrap().subscribers, 1);
    assert_eq!(push.channels().describe("live").unwrap().subscribers, 0);

    // A single technique answers the methods it does not serve with 405.
    let refused = root
        .fetch(
            http::Method::POST,
            "/rooms/lobby/live",
            &[],
            bytes::Bytes::from("x"),
        )
        .await
        .unwrap();
    assert_eq!(refused.status, 405);
    assert_eq!(refused.error_code().as_deref(), Some("method_not_allowed"));
    assert_eq!(push.channels().describe("lobby").unwrap().retained, 0);

    let response = root
        .send(http::Method::GET, "/ticker", &[], bytes::Bytes::new())
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(push.channels().describe("ticker").unwrap().subscribers, 1);
}

#[tokio::test]
async fn axum_graceful_shutdown_ends_streams_with_the_shutdown_signal() {
    let push = Push::new(Hub::new(HubConfig::default()), Config::default());
    let app = axum::Router::new().nest_service("/push", push.router());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(push.shutdown_on(async {
                let _ = stopped.await;
            }))
            .await
    });

    let http = HttpClient::new(&format!("http://{addr}/push"), Protocol::Http1);
    let mut sessions = Vec::new();
    for technique in [Technique::Sse, Technique::Ndjson] {
        let mut session = tokio::time::timeout(
            TIMEOUT,
            WireClient::new(technique, http.clone()).open("drain", StartAt::Now),
        )
        .await
        .unwrap()
        .unwrap();
        let _position = next(&mut session).await;
        sessions.push(session);
    }
    let last = publish(&http, "drain", "last").await;
    for session in &mut sessions {
        assert_eq!(next_event(session).await.id, last);
    }

    stop.send(()).unwrap();
    for session in &mut sessions {
        match next(session).await {
            Some(Received::Signal(signal)) if signal.kind == SignalKind::Shutdown => {
                assert_eq!(signal.cursor.as_deref(), Some(last.as_str()));
            }
            other => panic!("expected the shutdown signal, got {other:?}"),
        }
        assert_eq!(next(session).await, None, "the stream ends after shutdown");
    }
    // With every stream ended, axum's drain completes.
    tokio::time::timeout(TIMEOUT, server)
        .await
        .expect("axum finished draining")
        .unwrap()
        .unwrap();
}
