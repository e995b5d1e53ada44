//! The browser client, `push.js`, and the demo page in headless Chromium
//! against a real push-server site on loopback: every transport alone
//! delivers byte-exact; a cut connection resumes with nothing lost or
//! repeated; a refused WebSocket falls back; `closed` ends it; a page on
//! another origin needs no preflight; and the demo page, with events
//! flowing, is saved as a screenshot.
//!
//! These tests need Chromium (Debian's `chromium`, as `.ci/run` installs)
//! and fail, never skip, without it.

#[path = "browser/chromium.rs"]
mod chromium;
#[path = "browser/proxy.rs"]
mod proxy;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use chromium::{Browser, Page};
use conformance::{HttpClient, Protocol};
use http::{Request, Response};
use proxy::Proxy;
use push_core::{Hub, HubConfig, Limits};
use push_server::Site;
use push_tower::{serve, Config, Push, PushBody, RequestBody};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tower_service::Service;

const TRANSPORTS: [&str; 5] = ["ws", "sse", "stream", "longpoll", "poll"];

/// A push-server site on a port of its own.
struct Server {
    url: String,
    address: SocketAddr,
    http: HttpClient,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Server {
    async fn start() -> Server {
        Self::start_with(HubConfig::default(), |site| site).await
    }

    /// With `config`, and `wrap` around the site (to add CORS headers, say).
    async fn start_with<S>(config: HubConfig, wrap: impl FnOnce(Site) -> S) -> Server
    where
        S: Service<Request<RequestBody>, Response = Response<PushBody>, Error = Infallible>
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        Self::serving(Push::new(Hub::new(config), Config::default()), wrap).await
    }

    /// Serving `push`, with `wrap` around its site.
    async fn serving<S>(push: Push, wrap: impl FnOnce(Site) -> S) -> Server
    where
        S: Service<Request<RequestBody>, Response = Response<PushBody>, Error = Infallible>
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let site = wrap(Site::new(push.router()));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(
            serve(listener, site)
                .with_push(push)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                }),
        );
        let url = format!("http://{address}");
        Server {
            http: HttpClient::new(&url, Protocol::Http1),
            url,
            address,
            stop: Some(stop),
        }
    }

    /// Starts a graceful shutdown: streams end with the shutdown signal.
    fn shut_down(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Publishes `body` with `content_type` (none: binary); returns its id.
    async fn publish(&self, channel: &str, content_type: Option<&str>, body: &[u8]) -> String {
        self.publish_named(channel, None, content_type, body).await
    }

    async fn publish_named(
        &self,
        channel: &str,
        event: Option<&str>,
        content_type: Option<&str>,
        body: &[u8],
    ) -> String {
        let path = match event {
            Some(event) => format!("/channels/{channel}?event={event}"),
            None => format!("/channels/{channel}"),
        };
        let headers: Vec<(&str, &str)> = content_type
            .map(|value| ("content-type", value))
            .into_iter()
            .collect();
        let answer = self
            .http
            .fetch(
                http::Method::POST,
                &path,
                &headers,
                bytes::Bytes::copy_from_slice(body),
            )
            .await
            .unwrap();
        assert_eq!(answer.status, 201, "publish answered {}", answer.status);
        answer.json()["id"].as_str().unwrap().to_owned()
    }

    async fn close(&self, channel: &str) {
        let answer = self
            .http
            .fetch(
                http::Method::DELETE,
                &format!("/channels/{channel}"),
                &[],
                bytes::Bytes::new(),
            )
            .await
            .unwrap();
        assert_eq!(answer.status, 204);
    }
}

/// Loads the client into `page` and subscribes to `channel` at `base` with
/// `options`; what arrives is kept, in order, in `window.log`: events
/// (`text`, or `bytes` for binary), signals and statuses.
async fn subscribe(page: &Page, base: &str, channel: &str, options: Value) {
    page.eval(&format!(
        r#"(async () => {{
            const {{ subscribe, publish }} = await import("/client/push.js");
            window.publish = publish;
            window.log = [];
            const options = {options};
            window.sub = subscribe({base}, {channel}, {{
                ...options,
                onevent: (e) => log.push(typeof e.data === "string"
                    ? {{ kind: "event", id: e.id, event: e.event, text: e.data }}
                    : {{ kind: "event", id: e.id, event: e.event, bytes: Array.from(e.data) }}),
                onsignal: (s) => log.push({{ kind: "signal", ...s }}),
                onstatus: (s) => log.push({{ kind: "status", ...s }}),
            }});
            return true;
        }})()"#,
        base = json!(base),
        channel = json!(channel),
    ))
    .await;
}

/// A page of `origin` subscribed as [`subscribe`] does, once the
/// subscription is open.
async fn open(browser: &Browser, origin: &str, base: &str, channel: &str, options: Value) -> Page {
    let page = browser.page(&format!("{origin}/healthz")).await;
    subscribe(&page, base, channel, options).await;
    page.wait_for("log.some((e) => e.state === 'open')").await;
    page
}

/// Waits until the page's log holds `count` events; returns the whole log.
async fn wait_for_events(page: &Page, count: usize) -> Vec<Value> {
    page.wait_for(&format!(
        "log.filter((e) => e.kind === 'event').length >= {count}"
    ))
    .await;
    log(page).await
}

async fn log(page: &Page) -> Vec<Value> {
    page.eval("log").await.as_array().unwrap().clone()
}

fn events(log: &[Value]) -> Vec<Value> {
    log.iter()
        .filter(|entry| entry["kind"] == "event")
        .cloned()
        .collect()
}

/// The ids of the events in `log`, in order.
fn event_ids(log: &[Value]) -> Vec<String> {
    events(log)
        .iter()
        .map(|event| event["id"].as_str().unwrap().to_owned())
        .collect()
}

fn states(log: &[Value]) -> Vec<String> {
    log.iter()
        .filter(|entry| entry["kind"] == "status")
        .map(|entry| {
            format!(
                "{}:{}",
                entry["transport"].as_str().unwrap(),
                entry["state"].as_str().unwrap()
            )
        })
        .collect()
}

/// Text with a line feed, with emoji and other multi-byte UTF-8, 70 KB of
/// lines, a CR (which SSE carries in an envelope), empty, and every byte
/// value as binary: each must arrive exactly as published.
fn payloads() -> Vec<(Option<&'static str>, Option<&'static str>, Vec<u8>)> {
    let long: String = (0..1100)
        .map(|line| format!("line {line:04} of seventy kilobytes, with ünïcödé and 🚀 emoji ...\n"))
        .collect();
    assert!(long.len() > 70_000);
    vec![
        (
            None,
            Some("text/plain"),
            b"first line\nsecond line\n".to_vec(),
        ),
        (
            Some("greeting"),
            Some("text/plain; charset=utf-8"),
            "héllo wörld 👋🏽 ✓ 日本語".as_bytes().to_vec(),
        ),
        (None, Some("text/plain"), long.into_bytes()),
        (
            Some("crlf"),
            Some("text/plain"),
            b"carriage\r\nreturn\rlone".to_vec(),
        ),
        (None, Some("application/json"), b"".to_vec()),
        (Some("bytes"), None, (0..=255u8).collect()),
        (
            None,
            Some("text/plain"),
            b"  leading spaces and a trailing one ".to_vec(),
        ),
    ]
}

/// `event` as the page logged it equals what was published with `id`.
fn assert_event_is(
    event: &Value,
    id: &str,
    name: Option<&str>,
    content_type: Option<&str>,
    body: &[u8],
) {
    assert_eq!(event["id"], id, "{event}");
    assert_eq!(event["event"], name.unwrap_or("message"));
    if content_type.is_some() {
        let text = event["text"]
            .as_str()
            .unwrap_or_else(|| panic!("{id} not text"));
        assert_eq!(text.as_bytes(), body, "{id}");
    } else {
        let bytes: Vec<u8> = event["bytes"]
            .as_array()
            .unwrap_or_else(|| panic!("{id} not binary"))
            .iter()
            .map(|byte| byte.as_u64().unwrap() as u8)
            .collect();
        assert_eq!(bytes, body, "{id}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_transport_alone_delivers_every_event_in_order_byte_exact() {
    let server = Server::start().await;
    let browser = Browser::launch().await;
    for transport in TRANSPORTS {
        let channel = format!("exact-{transport}");
        let page = browser.page(&format!("{}/healthz", server.url)).await;
        // One event before the subscription, from a cursor of another
        // incarnation: the gap comes first, then that event, then live ones.
        let before = server
            .publish(&channel, Some("text/plain"), b"retained")
            .await;
        subscribe(
            &page,
            &server.url,
            &channel,
            json!({ "transports": [transport], "after": "00000000000000ff-3", "pollInterval": 100 }),
        )
        .await;
        wait_for_events(&page, 1).await;

        let mut published = vec![(before, None, Some("text/plain"), b"retained".to_vec())];
        for (name, content_type, body) in payloads() {
            let id = server
                .publish_named(&channel, name, content_type, &body)
                .await;
            published.push((id, name, content_type, body));
        }
        // And through the client's own publish: a string, bytes and a Blob.
        let ids = page
            .eval(&format!(
                r#"(async () => [
                    await publish(location.origin, {channel}, "from the page ✓", {{ event: "page" }}),
                    await publish(location.origin, {channel}, new Uint8Array([0, 13, 10, 255])),
                    await publish(location.origin, {channel}, new Blob(["blob\r\n"], {{ type: "text/plain" }})),
                ])()"#,
                channel = json!(channel)
            ))
            .await;
        let ids: Vec<String> = ids
            .as_array()
            .unwrap()
            .iter()
            .map(|id| id.as_str().unwrap().to_owned())
            .collect();
        published.push((
            ids[0].clone(),
            Some("page"),
            Some("text/plain"),
            "from the page ✓".as_bytes().to_vec(),
        ));
        published.push((ids[1].clone(), None, None, vec![0, 13, 10, 255]));
        published.push((ids[2].clone(), None, None, b"blob\r\n".to_vec()));

        let log = wait_for_events(&page, published.len()).await;
        let received = events(&log);
        assert_eq!(received.len(), published.len(), "{transport}: {received:?}");
        for (event, (id, name, content_type, body)) in received.iter().zip(&published) {
            assert_event_is(event, id, *name, *content_type, body);
        }
        let first_signal = log
            .iter()
            .position(|entry| entry["kind"] == "signal")
            .unwrap();
        let first_event = log
            .iter()
            .position(|entry| entry["kind"] == "event")
            .unwrap();
        assert_eq!(log[first_signal]["signal"], "gap", "{transport}");
        assert!(
            first_signal < first_event,
            "{transport}: the gap comes before the events"
        );
        assert_eq!(
            states(&log)[..2],
            [
                format!("{transport}:connecting"),
                format!("{transport}:open")
            ]
        );
        assert_eq!(
            page.eval("sub.cursor").await,
            json!(published.last().unwrap().0),
            "{transport}: the cursor is the last id"
        );
        assert_eq!(page.eval("sub.transport").await, transport);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_connection_resumes_from_the_cursor_with_nothing_lost_or_repeated() {
    let server = Server::start().await;
    let proxy = Proxy::start(server.address, false).await;
    let browser = Browser::launch().await;
    for transport in TRANSPORTS {
        let channel = format!("cut-{transport}");
        let page = open(
            &browser,
            &proxy.url,
            &proxy.url,
            &channel,
            json!({ "transports": [transport], "minDelay": 100, "maxDelay": 400, "pollInterval": 100 }),
        )
        .await;
        let mut ids = Vec::new();
        for round in 0..3 {
            for n in 0..10 {
                let body = format!("round {round} event {n}");
                ids.push(
                    server
                        .publish(&channel, Some("text/plain"), body.as_bytes())
                        .await,
                );
                if n == 4 {
                    // Mid-round: half the round is published while cut.
                    proxy.cut();
                }
            }
            wait_for_events(&page, ids.len()).await;
        }
        let log = log(&page).await;
        assert_eq!(
            event_ids(&log),
            ids,
            "{transport}: every event once, in order"
        );
        if !transport.ends_with("poll") {
            // A stream feels the cut; a poll between requests may not.
            assert!(
                states(&log).contains(&format!("{transport}:reconnecting")),
                "{transport}: {:?}",
                states(&log)
            );
        }
        assert!(
            states(&log)
                .iter()
                .all(|state| state.starts_with(transport)),
            "{transport} stays in use: {:?}",
            states(&log)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_websocket_refused_the_client_falls_back_and_receives_everything() {
    let server = Server::start().await;
    let proxy = Proxy::start(server.address, true).await;
    let browser = Browser::launch().await;
    // The default transports: WebSocket first.
    let page = open(&browser, &proxy.url, &proxy.url, "fallback", json!({})).await;
    let mut ids = Vec::new();
    for n in 0..5 {
        ids.push(
            server
                .publish(
                    "fallback",
                    Some("text/plain"),
                    format!("event {n}").as_bytes(),
                )
                .await,
        );
    }
    let log = wait_for_events(&page, ids.len()).await;
    assert_eq!(event_ids(&log), ids);
    assert_eq!(
        states(&log),
        ["ws:connecting", "ws:fallback", "sse:connecting", "sse:open"]
    );
    assert_eq!(page.eval("sub.transport").await, "sse");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_ends_the_subscription_without_reconnecting() {
    let server = Server::start().await;
    let browser = Browser::launch().await;
    // A poll cannot see closed (the next poll meets the new incarnation).
    for transport in ["ws", "sse", "stream", "longpoll"] {
        let channel = format!("closing-{transport}");
        let page = open(
            &browser,
            &server.url,
            &server.url,
            &channel,
            json!({ "transports": [transport], "minDelay": 50, "maxDelay": 100 }),
        )
        .await;
        let id = server
            .publish(&channel, Some("text/plain"), b"last words")
            .await;
        wait_for_events(&page, 1).await;
        server.close(&channel).await;
        page.wait_for("log.some((e) => e.state === 'closed')").await;
        // The name's next incarnation is not delivered: nothing reconnected.
        server
            .publish(&channel, Some("text/plain"), b"after the close")
            .await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let log = log(&page).await;
        let signals: Vec<&Value> = log
            .iter()
            .filter(|entry| entry["kind"] == "signal")
            .collect();
        assert_eq!(signals.len(), 1, "{transport}: {log:?}");
        assert_eq!(signals[0]["signal"], "closed");
        assert_eq!(signals[0]["cursor"], id);
        assert_eq!(events(&log).len(), 1, "{transport}: {log:?}");
        assert_eq!(
            states(&log),
            [
                format!("{transport}:connecting"),
                format!("{transport}:open"),
                format!("{transport}:closed")
            ]
        );
        let info = server
            .http
            .get(&format!("/channels/{channel}"))
            .await
            .unwrap()
            .json();
        assert_eq!(
            info["subscribers"], 0,
            "{transport}: no connection is left open"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_reconnects_after_the_servers_hint_to_the_next_server_from_the_cursor() {
    let browser = Browser::launch().await;
    // Told to come back within 200 ms to 1 s.
    let retry =
        || Config::default().shutdown_retry(Duration::from_millis(200), Duration::from_millis(800));
    let serve = || {
        Server::serving(Push::new(Hub::new(HubConfig::default()), retry()), |site| {
            site
        })
    };
    for transport in ["ws", "sse", "stream", "longpoll"] {
        let mut old = serve().await;
        let proxy = Proxy::start(old.address, false).await;
        let channel = format!("restart-{transport}");
        let page = open(
            &browser,
            &proxy.url,
            &proxy.url,
            &channel,
            json!({ "transports": [transport], "minDelay": 200 }),
        )
        .await;
        let mut ids = Vec::new();
        for body in ["one", "two"] {
            ids.push(
                old.publish(&channel, Some("text/plain"), body.as_bytes())
                    .await,
            );
        }
        wait_for_events(&page, 2).await;

        // A new server process takes over the address; the old one drains.
        let new = serve().await;
        proxy.set_upstream(new.address);
        old.shut_down();
        page.wait_for("log.filter((e) => e.state === 'open').length === 2")
            .await;
        for body in ["three", "four"] {
            ids.push(
                new.publish(&channel, Some("text/plain"), body.as_bytes())
                    .await,
            );
        }
        let log = wait_for_events(&page, 4).await;
        assert_eq!(event_ids(&log), ids, "{transport}");
        let signals: Vec<String> = log
            .iter()
            .filter(|entry| entry["kind"] == "signal")
            .map(|entry| entry["signal"].as_str().unwrap().to_owned())
            .collect();
        // The old server's cursor is of another incarnation on the new one.
        let expected: &[&str] = if transport == "longpoll" {
            // A held long poll is answered 503 shutting_down, not a signal.
            &["gap"]
        } else {
            &["shutdown", "gap"]
        };
        assert_eq!(signals, expected, "{transport}: {log:?}");
        let delays: Vec<f64> = log
            .iter()
            .filter(|entry| entry["state"] == "reconnecting")
            .map(|entry| entry["delay"].as_f64().unwrap())
            .collect();
        assert_eq!(delays.len(), 1, "{transport}: {log:?}");
        // Exactly the server's hint: the shutdown signal's retry_ms, drawn
        // from the window, or the long poll's Retry-After, the window's
        // draw rounded up to a second.
        let hint = match transport {
            "longpoll" => 1000.0,
            _ => {
                let shutdown = log
                    .iter()
                    .find(|entry| entry["signal"] == "shutdown")
                    .unwrap();
                let retry_ms = shutdown["retry_ms"].as_f64().unwrap();
                assert!(
                    (200.0..=1000.0).contains(&retry_ms),
                    "{transport}: {retry_ms}"
                );
                retry_ms
            }
        };
        assert_eq!(delays[0], hint, "{transport}: {log:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lagged_client_is_told_reconnects_at_once_and_is_told_the_gap() {
    // Ten events of history, and 1 MiB a subscriber may fall behind it.
    let config = HubConfig {
        limits: Limits {
            history_events: 10,
            max_event_bytes: 512 * 1024,
            subscriber_buffer_bytes: 1024 * 1024,
            ..Limits::default()
        },
        ..HubConfig::default()
    };
    let server = Server::start_with(config, |site| site).await;
    let browser = Browser::launch().await;
    for transport in ["ws", "sse", "stream"] {
        let channel = format!("lagging-{transport}");
        let page = open(
            &browser,
            &server.url,
            &server.url,
            &channel,
            json!({ "transports": [transport] }),
        )
        .await;
        // The page stops reading for three seconds (its only thread is
        // busy) while 40 MB are published: past what the socket buffers and
        // the browser hold, and far past history and buffer.
        let busy = page.eval(
            "(() => { const until = Date.now() + 3000; while (Date.now() < until) {} return true; })()",
        );
        let publishing = async {
            let body = vec![b'x'; 400_000];
            let mut ids = Vec::new();
            for _ in 0..100 {
                ids.push(server.publish(&channel, Some("text/plain"), &body).await);
            }
            ids
        };
        let (_, ids) = tokio::join!(busy, publishing);
        let last = json!(ids.last().unwrap());
        page.wait_for(&format!("sub.cursor === {last}")).await;
        // The ids, not 40 MB of data, back to the test.
        let log = page
            .eval("log.map((e) => e.kind === 'event' ? { kind: e.kind, id: e.id, length: e.text.length } : e)")
            .await
            .as_array()
            .unwrap()
            .clone();
        let signals: Vec<&Value> = log
            .iter()
            .filter(|entry| entry["kind"] == "signal")
            .collect();
        assert_eq!(signals.len(), 2, "{transport}: {signals:?}");
        assert_eq!(signals[0]["signal"], "lagged");
        assert_eq!(signals[1]["signal"], "gap");
        // Every event up to the lagged cursor, then after the gap the
        // retained ones to the last: in order, none twice.
        let position = |entry: &&Value| log.iter().position(|e| e == *entry).unwrap();
        let (lagged_at, gap_at) = (position(&signals[0]), position(&signals[1]));
        let before = event_ids(&log[..lagged_at]);
        let after = event_ids(&log[gap_at..]);
        assert_eq!(before, ids[..before.len()], "{transport}");
        if let Some(last_before) = before.last() {
            // The lagged cursor is the last event delivered.
            assert_eq!(signals[0]["cursor"], *last_before, "{transport}");
        }
        assert_eq!(after, ids[ids.len() - after.len()..], "{transport}");
        assert!(
            before.len() + after.len() < ids.len(),
            "{transport}: events were missed"
        );
        assert!(log[lagged_at..gap_at]
            .iter()
            .any(|entry| entry["state"] == "reconnecting" && entry["delay"] == 0));
        assert!(log
            .iter()
            .filter(|e| e["kind"] == "event")
            .all(|event| event["length"] == 400_000));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_that_retrying_cannot_mend_end_the_subscription_and_publish_rejects_with_the_code() {
    let server = Server::start().await;
    let browser = Browser::launch().await;
    let page = browser.page(&format!("{}/healthz", server.url)).await;
    subscribe(
        &page,
        &server.url,
        "not a channel name",
        json!({ "transports": ["sse", "stream"] }),
    )
    .await;
    page.wait_for("log.some((e) => e.state === 'closed')").await;
    let closing = page.eval("log.find((e) => e.state === 'closed')").await;
    assert_eq!(
        closing["transport"], "sse",
        "a 400 is not a reason to fall back"
    );
    assert_eq!(closing["error"]["status"], 400);
    assert_eq!(closing["error"]["error"], "bad_channel");
    let error = page.eval("(async () => { try { await publish(location.origin, 'news', 'x', { event: 'push.mine' }); } catch (e) { return [e.name, e.status, e.error]; } })()").await;
    assert_eq!(error, json!(["PushError", 400, "reserved_event_name"]));
}

/// Adds `Access-Control-Allow-Origin: *` to every answer (the server
/// allowing other origins, which is the CORS layer's job in production) and
/// records every request's method, so a preflight would show.
#[derive(Clone)]
struct AllowAnyOrigin {
    site: Site,
    methods: Arc<Mutex<Vec<String>>>,
}

impl Service<Request<RequestBody>> for AllowAnyOrigin {
    type Response = Response<PushBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<PushBody>, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<RequestBody>) -> Self::Future {
        self.methods
            .lock()
            .unwrap()
            .push(request.method().to_string());
        let answer = self.site.call(request);
        Box::pin(async move {
            let mut response = answer.await?;
            response.headers_mut().insert(
                "access-control-allow-origin",
                http::HeaderValue::from_static("*"),
            );
            Ok(response)
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_on_another_origin_subscribes_and_publishes_without_a_preflight() {
    let methods = Arc::new(Mutex::new(Vec::new()));
    let recorded = methods.clone();
    let api = Server::start_with(HubConfig::default(), move |site| AllowAnyOrigin {
        site,
        methods: recorded,
    })
    .await;
    let pages = Server::start().await;
    let browser = Browser::launch().await;
    for transport in TRANSPORTS {
        let channel = format!("cors-{transport}");
        let page = open(
            &browser,
            &pages.url,
            &api.url,
            &channel,
            json!({ "transports": [transport], "pollInterval": 100 }),
        )
        .await;
        let ids = page
            .eval(&format!(
                r#"(async () => [
                    await publish({api}, {channel}, "text from elsewhere"),
                    await publish({api}, {channel}, new Uint8Array([1, 2, 3])),
                    await publish({api}, {channel}, new Blob([new Uint8Array([4])], {{ type: "application/octet-stream" }})),
                ])()"#,
                api = json!(api.url),
                channel = json!(channel)
            ))
            .await;
        let log = wait_for_events(&page, 3).await;
        assert_eq!(json!(event_ids(&log)), ids, "{transport}");
        assert_event_is(&events(&log)[2], ids[2].as_str().unwrap(), None, None, &[4]);
    }
    let methods = methods.lock().unwrap().clone();
    assert!(methods.iter().any(|method| method == "POST"));
    assert!(
        methods
            .iter()
            .all(|method| method == "GET" || method == "POST"),
        "no preflight (OPTIONS) or other method: {methods:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_page_shows_every_technique_side_by_side() {
    let server = Server::start().await;
    let browser = Browser::launch().await;
    for (name, body) in [
        (None, b"Hello from push" as &[u8]),
        (
            Some("greeting"),
            b"Every technique, the same events.\nSame ids, same order." as &[u8],
        ),
    ] {
        server
            .publish_named("lobby", name, Some("text/plain"), body)
            .await;
    }
    let page = browser
        .page(&format!("{}/?channel=lobby", server.url))
        .await;
    page.wait_for("document.querySelectorAll('section[data-state=open]').length === 5")
        .await;
    server
        .publish(
            "lobby",
            None,
            &[0x89, b'P', b'N', b'G', 13, 10, 26, 10, 0, 0, 0, 13],
        )
        .await;
    let last = server
        .publish_named(
            "lobby",
            Some("news"),
            Some("text/plain"),
            "Cursor, state and transport in every column ✓".as_bytes(),
        )
        .await;
    // Every column has every event, and the same cursor.
    page.wait_for(&format!(
        "[...document.querySelectorAll('.cursor')].every((c) => c.title === {})",
        json!(last)
    ))
    .await;
    let columns = page
        .eval("[...document.querySelectorAll('section')].map((s) => [s.dataset.transport, s.querySelector('.count').textContent])")
        .await;
    assert_eq!(
        columns,
        json!([
            ["ws", "4 events"],
            ["sse", "4 events"],
            ["stream", "4 events"],
            ["longpoll", "4 events"],
            ["poll", "4 events"]
        ])
    );
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("browser/demo-1280x800.png");
    page.screenshot(&path).await;
    eprintln!("demo page screenshot: {}", path.display());
    // `PUSH_UPDATE_SCREENSHOT=1` refreshes the README's copy.
    if std::env::var_os("PUSH_UPDATE_SCREENSHOT").is_some() {
        let readme_copy = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/demo.png");
        std::fs::create_dir_all(readme_copy.parent().unwrap()).unwrap();
        std::fs::copy(&path, readme_copy).unwrap();
    }
}

/// Records every answer's method, path and status; answers the first
/// subscription on each `busy-*` channel `429 too_many_subscriptions` with
/// `Retry-After: 1` instead of passing it on.
#[derive(Clone)]
struct Busy {
    site: Site,
    answers: Arc<Mutex<Vec<String>>>,
}

impl Service<Request<RequestBody>> for Busy {
    type Response = Response<PushBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<PushBody>, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<RequestBody>) -> Self::Future {
        let what = format!("{} {}", request.method(), request.uri().path());
        let answers = Arc::clone(&self.answers);
        let first_busy = what.starts_with("GET /channels/busy-")
            && !answers
                .lock()
                .unwrap()
                .iter()
                .any(|seen| seen.starts_with(&what));
        let answer = (!first_busy).then(|| self.site.call(request));
        Box::pin(async move {
            let response = match answer {
                Some(answer) => answer.await?,
                None => push_tower::error::response(
                    push_core::wire::WireError::too_many_subscriptions(1).with_retry_after(1),
                ),
            };
            answers
                .lock()
                .unwrap()
                .push(format!("{what} {}", response.status().as_u16()));
            Ok(response)
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_opens_every_transport_and_429s_are_waited_out_not_fallen_back_from() {
    // Reading needs the token `reader`, publishing `writer`; one publish a
    // second per channel.
    let push = Push::new(
        Hub::new(HubConfig::default()),
        Config::default().publish_rate(1, 1),
    )
    .with_authorizer(|access: &push_tower::authorize::Access<'_>| {
        let wanted = if access.action().is_read() {
            "reader"
        } else {
            "writer"
        };
        match access.bearer_token().as_deref() {
            Some(token) if token == wanted => push_tower::authorize::Decision::allow(),
            Some(_) => push_tower::authorize::Decision::deny(
                push_core::wire::WireError::forbidden("wrong token"),
            ),
            None => push_tower::authorize::Decision::deny(
                push_core::wire::WireError::unauthorized("send a token"),
            ),
        }
    });
    let answers = Arc::new(Mutex::new(Vec::new()));
    let recorded = Arc::clone(&answers);
    let server = Server::serving(push, move |site| Busy {
        site,
        answers: recorded,
    })
    .await;
    let browser = Browser::launch().await;
    for transport in TRANSPORTS {
        // The token as a string, and as a function asked at each connection.
        for (channel, token) in [
            (format!("busy-{transport}"), "'reader'"),
            (format!("fresh-{transport}"), "() => 'reader'"),
        ] {
            // `subscribe` takes JSON options; a function goes in this way.
            let page = browser.page(&format!("{}/healthz", server.url)).await;
            page.eval(&format!(
                r#"(async () => {{
                    const {{ subscribe, publish }} = await import("/client/push.js");
                    window.publish = publish;
                    window.log = [];
                    window.sub = subscribe(location.origin, {channel}, {{
                        transports: [{transport}], pollInterval: 100, token: {token},
                        onevent: (e) => log.push({{ kind: "event", id: e.id, text: e.data }}),
                        onstatus: (s) => log.push({{ kind: "status", ...s }}),
                    }});
                    return true;
                }})()"#,
                channel = json!(channel),
                transport = json!(transport),
            ))
            .await;
            page.wait_for("log.some((e) => e.state === 'open')").await;
            // Two publishes at once: the second is refused 429 and retried
            // after its Retry-After.
            let ids = page
                .eval(&format!(
                    r#"(async () => Promise.all([
                        publish(location.origin, {channel}, "one", {{ token: "writer" }}),
                        publish(location.origin, {channel}, "two", {{ token: "writer" }}),
                    ]))()"#,
                    channel = json!(channel)
                ))
                .await;
            let log = wait_for_events(&page, 2).await;
            // The browser holds six connections to a host: free this one's.
            page.eval("(() => { sub.close(); return true; })()").await;
            // Published at once, so stored in either order.
            let mut published: Vec<String> = ids
                .as_array()
                .unwrap()
                .iter()
                .map(|id| id.as_str().unwrap().to_owned())
                .collect();
            published.sort_unstable();
            assert_eq!(event_ids(&log), published, "{transport} {channel}");
            // A page cannot see why a WebSocket handshake failed (the
            // browser hides the status), so a refused "ws" falls back like
            // any failure; every other transport reads the 429.
            if transport == "ws" {
                continue;
            }
            let states = states(&log);
            assert!(
                !states.iter().any(|state| state.ends_with(":fallback")),
                "{transport} {channel}: a 429 is waited out on the same transport: {states:?}"
            );
            if channel.starts_with("busy-") {
                let delays: Vec<f64> = log
                    .iter()
                    .filter(|entry| entry["state"] == "reconnecting")
                    .map(|entry| entry["delay"].as_f64().unwrap())
                    .collect();
                assert!(
                    delays.first().is_some_and(|delay| *delay >= 1000.0),
                    "{transport}: waited the Retry-After: {log:?}"
                );
            }
        }
    }
    let answers = answers.lock().unwrap().clone();
    for transport in TRANSPORTS {
        let published = format!("POST /channels/busy-{transport} ");
        let mut statuses: Vec<&str> = answers
            .iter()
            .filter_map(|answer| answer.strip_prefix(&published))
            .collect();
        statuses.sort_unstable();
        assert_eq!(statuses, ["201", "201", "429"], "{transport}: {answers:?}");
    }

    // Without a token, the subscription ends with the server's 401.
    let page = browser.page(&format!("{}/healthz", server.url)).await;
    subscribe(&page, &server.url, "news", json!({ "transports": ["sse"] })).await;
    page.wait_for("log.some((e) => e.state === 'closed')").await;
    let closing = page.eval("log.find((e) => e.state === 'closed')").await;
    assert_eq!(closing["error"]["status"], 401);
    assert_eq!(closing["error"]["error"], "unauthorized");
}
