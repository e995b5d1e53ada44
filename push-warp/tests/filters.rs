//! The filters in a warp app: composed with the app's own routes and its
//! `recover`, rejecting what is not theirs so that warp tries the next
//! route, and draining with the `shutdown` signal on graceful shutdown.

#[path = "../../push-server/tests/pages/mod.rs"]
mod pages;

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use conformance::{
    HttpClient, Protocol, Received, SignalKind, StartAt, Technique, Transport, WireClient,
};
use http::{Method, StatusCode};
use pages::{assert_publish_preflight_allowed, assert_readable_by, request_from, websocket_from};
use push_core::{Hub, HubConfig};
use push_tower::{Config, Push};
use warp::{Filter, Rejection, Reply};

const TIMEOUT: Duration = Duration::from_secs(10);

fn push() -> Push {
    Push::new(Hub::new(HubConfig::default()), Config::default())
}

/// The app's own answer to what no route took (warp merges the rejections
/// of every route tried, so a path no route knows may come back as a wrong
/// method of one of them).
async fn app_not_found(_: Rejection) -> Result<impl Reply, Infallible> {
    Ok(warp::reply::with_status(
        "the app's own not found",
        StatusCode::NOT_FOUND,
    ))
}

/// Publishes `text` to `channel`, which must succeed.
async fn publish(http: &HttpClient, channel: &str, text: &'static str) {
    let published = http
        .fetch(
            Method::POST,
            &format!("/channels/{channel}"),
            &[("content-type", "text/plain")],
            Bytes::from(text),
        )
        .await
        .unwrap();
    assert_eq!(published.status, 201, "{:?}", published.body);
}

async fn start<F>(app: F) -> String
where
    F: Filter + Clone + Send + Sync + 'static,
    F::Extract: Reply,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(warp::serve(app).incoming(listener).run());
    base
}

#[tokio::test]
async fn technique_filters_compose_with_the_apps_routes_and_recover() {
    let push = push();
    let hello = warp::path("hello").map(|| "hello");
    let app = push_warp::publish(push.clone())
        .or(push_warp::poll(push.clone()))
        .or(push_warp::ndjson(push.clone()))
        .or(hello)
        .recover(app_not_found);
    let base = start(app).await;
    let http = HttpClient::new(&base, Protocol::Http1);

    publish(&http, "news", "hi").await;
    let poll = http.get("/channels/news/poll?from=earliest").await.unwrap();
    assert_eq!(poll.status, 200);
    assert_eq!(poll.json()["messages"][0]["data"], "hi");
    assert_eq!(http.get("/hello").await.unwrap().body, "hello");
    let elsewhere = http.get("/nowhere").await.unwrap();
    assert_eq!(elsewhere.status, 404);
    assert_eq!(elsewhere.body, "the app's own not found");

    // A matched route answers push's own JSON errors, not a rejection.
    let bad = http
        .get("/channels/news/poll?after=nonsense")
        .await
        .unwrap();
    assert_eq!(bad.status, 400);
    assert_eq!(bad.error_code().as_deref(), Some("bad_cursor"));
}

#[tokio::test]
async fn what_the_filters_reject_reaches_the_apps_other_routes() {
    let push = push();
    // The app answers other methods and paths beside push's routes.
    let app_post = warp::post()
        .and(warp::path!("channels" / String / "poll"))
        .map(|name: String| format!("the app's POST to {name}"));
    let app_custom = warp::path!("channels" / String / "custom").map(|name: String| name);
    let app = push_warp::poll(push.clone())
        .or(push_warp::sse(push.clone()))
        .or(app_post)
        .or(app_custom);
    let base = start(app).await;
    let http = HttpClient::new(&base, Protocol::Http1);

    let posted = http
        .fetch(Method::POST, "/channels/a/poll", &[], Bytes::new())
        .await
        .unwrap();
    assert_eq!(posted.body, "the app's POST to a");
    assert_eq!(http.get("/channels/a/custom").await.unwrap().body, "a");
    assert_eq!(http.get("/channels/a/poll").await.unwrap().status, 200);
}

#[tokio::test]
async fn graceful_shutdown_ends_streams_with_the_shutdown_signal() {
    let push = push();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let drain = push.clone();
    let server = tokio::spawn(
        warp::serve(push_warp::routes(push.clone()))
            .incoming(listener)
            .graceful(async move {
                let _ = stopped.await;
                drain.shutdown();
            })
            .run(),
    );
    let mut sessions = Vec::new();
    for technique in [Technique::Sse, Technique::Ndjson, Technique::WebSocket] {
        let client = WireClient::new(technique, HttpClient::new(&base, Protocol::Http1));
        let mut session = client.open("news", StartAt::Now).await.unwrap();
        let first = tokio::time::timeout(TIMEOUT, session.next())
            .await
            .unwrap()
            .unwrap();
        assert!(
            matches!(&first, Some(Received::Signal(s)) if s.kind == SignalKind::Position),
            "{technique}: {first:?}"
        );
        sessions.push((technique, session));
    }
    stop.send(()).unwrap();
    for (technique, mut session) in sessions {
        let last = loop {
            match tokio::time::timeout(TIMEOUT, session.next())
                .await
                .unwrap()
                .unwrap()
            {
                Some(Received::Heartbeat) => continue,
                other => break other,
            }
        };
        assert!(
            matches!(&last, Some(Received::Signal(s)) if s.kind == SignalKind::Shutdown),
            "{technique}: {last:?}"
        );
    }
    // Every stream ended, so the server drains and stops.
    tokio::time::timeout(TIMEOUT, server)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_push_towers_serve_the_filters_push_and_take_websockets_over_http2() {
    let push = push();
    let app = push_warp::ws(push.clone())
        .or(push_warp::http2_push(push.clone()))
        .or(push_warp::message(push.clone()))
        .or(push_warp::publish(push.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(push_tower::serve(listener, warp::service(app)).run());

    let mut sessions = Vec::new();
    for technique in [Technique::WebSocket, Technique::Http2Push] {
        let client = WireClient::new(technique, HttpClient::new(&base, Protocol::H2c));
        // Opening at all proves the handover: over h2c, the ws client sends
        // an extended CONNECT, and the push client accepts only promises.
        let session = client.open("news", StartAt::Now).await.unwrap();
        sessions.push((client.name(), session));
    }
    let http = HttpClient::new(&base, Protocol::Http1);
    publish(&http, "news", "over h2").await;
    for (name, mut session) in sessions {
        let event = loop {
            match tokio::time::timeout(TIMEOUT, session.next())
                .await
                .unwrap()
                .unwrap()
            {
                Some(Received::Event(event)) => break event,
                Some(Received::Heartbeat | Received::Signal(_)) => continue,
                None => panic!("{name}: ended before the event"),
            }
        };
        assert_eq!(event.data, b"over h2".as_slice(), "{name}");
    }
}

#[tokio::test]
async fn the_authorizer_decides_requests_through_warp_too() {
    use push_core::wire::WireError;
    use push_tower::authorize::{Access, Decision};

    let push = push().with_authorizer(|access: &Access<'_>| {
        if access.action().is_read() || access.bearer_token().as_deref() == Some("writer") {
            Decision::allow()
        } else {
            Decision::deny(WireError::unauthorized("send the writer's token"))
        }
    });
    let app = push_warp::routes(push.clone()).recover(app_not_found);
    let base = start(app).await;
    let http = HttpClient::new(&base, Protocol::Http1);
    let refused = http
        .fetch(
            Method::POST,
            "/channels/news",
            &[("content-type", "text/plain")],
            Bytes::from("x"),
        )
        .await
        .unwrap();
    assert_eq!(refused.status, 401);
    assert_eq!(refused.error_code().as_deref(), Some("unauthorized"));
    let published = http
        .fetch(
            Method::POST,
            "/channels/news?token=writer",
            &[("content-type", "text/plain")],
            Bytes::from("x"),
        )
        .await
        .unwrap();
    assert_eq!(published.status, 201);
    let id = published.json()["id"].as_str().unwrap().to_owned();
    let mut session = tokio::time::timeout(
        TIMEOUT,
        WireClient::new(Technique::Sse, http.clone()).open("news", StartAt::Earliest),
    )
    .await
    .unwrap()
    .unwrap();
    loop {
        match tokio::time::timeout(TIMEOUT, session.next())
            .await
            .unwrap()
            .unwrap()
        {
            Some(Received::Event(event)) => {
                assert_eq!(event.id, id);
                break;
            }
            Some(_) => {}
            None => panic!("the stream ended"),
        }
    }
}

#[tokio::test]
async fn with_origins_gives_listed_pages_cors_and_refuses_others_websocket_included() {
    use push_tower::origin::AllowedOrigins;

    const APP: &str = "http://app.test:3000";
    const EVIL: &str = "https://evil.test";
    let push = push();
    let hello = warp::path("hello").map(|| "hello");
    let origins = AllowedOrigins::list([APP]).unwrap();
    let app = push_warp::with_origins(origins, push_warp::routes(push.clone()).or(hello));
    let base = start(app).await;
    for protocol in [Protocol::Http1, Protocol::H2c] {
        let http = HttpClient::new(&base, protocol);
        // A preflight for a publish with a token, answered by warp's CORS.
        assert_publish_preflight_allowed(&http, APP).await;

        // The page's requests are served and readable, the ETag exposed.
        let poll = request_from(&http, Method::GET, "/channels/news/poll", APP).await;
        assert_readable_by(&poll, APP);

        // Another origin's page: push's JSON refusal, on push's routes and
        // the app's own, before anything is served.
        for (method, path) in [
            (Method::GET, "/channels/news/poll"),
            (Method::GET, "/channels/news/sse"),
            (Method::POST, "/channels/news"),
            (Method::GET, "/hello"),
        ] {
            let refused = request_from(&http, method, path, EVIL).await;
            assert_eq!(refused.status, 403, "{path} {protocol:?}");
            assert_eq!(refused.error_code().as_deref(), Some("forbidden"));
        }
        // Clients that are not pages send no Origin and are served, with no
        // CORS headers.
        let plain = http.get("/channels/news/poll").await.unwrap();
        assert_eq!(plain.status, 200);
        assert!(!plain.headers.contains_key("access-control-allow-origin"));
    }
    // Nothing the refused pages sent was published.
    let http = HttpClient::new(&base, Protocol::Http1);
    let poll = http.get("/channels/news/poll?from=earliest").await.unwrap();
    assert_eq!(poll.json()["messages"].as_array().map(Vec::len), Some(0));
    // CORS does not cover WebSocket; the Origin check does.
    assert_eq!(websocket_from(&base, "news", EVIL).await, 403);
    assert_eq!(websocket_from(&base, "news", APP).await, 101);
}
