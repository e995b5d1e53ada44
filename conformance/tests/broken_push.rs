//! Proof that the HTTP/2 server-push client catches broken push servers.
//!
//! The push server here is written on the `h2` crate's server API, in front
//! of a real push-tower server: it serves `GET /channels/{name}/push` itself,
//! by reading the real server's `/channels/{name}/stream` and turning each
//! envelope line into a `PUSH_PROMISE` for `/channels/{name}/messages/{id}`
//! with the envelope as the pushed body (signal and heartbeat lines go on the
//! parent stream), and proxies every other request to the real server. Told
//! no fault, it passes the whole suite; with a fault, the suite fails, by
//! name of the scenario that caught it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use conformance::runner::suite_limits;
use conformance::scenarios::SCENARIOS;
use conformance::{
    HttpClient, OpenError, Protocol, Session, Shape, StartAt, Suite, Technique, Transport,
    WireClient, WireControl,
};
use futures_util::future::{poll_fn, BoxFuture};
use h2::server::SendResponse;
use h2::{RecvStream, SendStream};
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use push_core::{Hub, HubConfig};
use push_tower::{serve, Config, Push};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How the push server breaks the contract, on each `/push` stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    /// The second event is promised at the first event's URL.
    WrongUrl,
    /// The second event's pushed body is `{"id": …` (a space after the
    /// colon): the same event, but not the bytes a plain GET answers.
    AlteredBody,
    /// The third event is never promised.
    DropsPromise,
}

/// Pushed responses in flight per parent stream, as push-tower allows.
const MAX_IN_FLIGHT: usize = 16;

/// What a push server did, to show the client took the push path.
#[derive(Default)]
struct Tally {
    promises: AtomicUsize,
    proxied: AtomicUsize,
}

/// A push server in front of the push-tower server at `real`; its base URL.
async fn start_push_server(real: &str, fault: Option<Fault>, tally: Arc<Tally>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let real = real.to_owned();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(serve_connection(tcp, real.clone(), fault, tally.clone()));
        }
    });
    base
}

async fn serve_connection(tcp: TcpStream, real: String, fault: Option<Fault>, tally: Arc<Tally>) {
    tcp.set_nodelay(true).unwrap();
    let Ok(mut connection) = h2::server::handshake(tcp).await else {
        return;
    };
    let proxy = HttpClient::new(&real, Protocol::Http1);
    while let Some(Ok((request, respond))) = connection.accept().await {
        let segments: Vec<String> = request
            .uri()
            .path()
            .trim_start_matches('/')
            .split('/')
            .map(str::to_owned)
            .collect();
        match segments.as_slice() {
            [channels, name, push] if channels == "channels" && push == "push" => {
                tokio::spawn(serve_push(
                    request,
                    respond,
                    name.clone(),
                    real.clone(),
                    fault,
                    tally.clone(),
                ));
            }
            _ => {
                tally.proxied.fetch_add(1, Ordering::Relaxed);
                tokio::spawn(forward(request, respond, proxy.clone()));
            }
        }
    }
}

/// Hop-by-hop headers, which HTTP/2 forbids.
const HOP_BY_HOP: [&str; 6] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
    "te",
];

fn copy_headers(from: &HeaderMap, to: &mut HeaderMap) {
    for (name, value) in from {
        if !HOP_BY_HOP.contains(&name.as_str()) && name != http::header::HOST {
            to.append(name, value.clone());
        }
    }
}

/// Proxies `request` to the real server and its answer back, whole.
async fn forward(
    request: Request<RecvStream>,
    mut respond: SendResponse<Bytes>,
    proxy: HttpClient,
) {
    let (parts, mut body) = request.into_parts();
    let Ok(body) = read_all(&mut body).await else {
        return;
    };
    let path = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .filter_map(|(n, v)| Some((n.to_string(), v.to_str().ok()?.to_owned())))
        .collect();
    let headers: Vec<(&str, &str)> = headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let Ok(answer) = proxy.fetch(parts.method, &path, &headers, body).await else {
        respond.send_reset(h2::Reason::INTERNAL_ERROR);
        return;
    };
    let mut response = Response::new(());
    *response.status_mut() = answer.status;
    copy_headers(&answer.headers, response.headers_mut());
    let Ok(mut stream) = respond.send_response(response, answer.body.is_empty()) else {
        return;
    };
    if !answer.body.is_empty() {
        // The last bytes carry END_STREAM: no empty DATA frame after them.
        let _ = stream.send_data(answer.body, true);
    }
}

async fn read_all(body: &mut RecvStream) -> Result<Bytes, h2::Error> {
    let mut all = BytesMut::new();
    while let Some(chunk) = body.data().await {
        let chunk = chunk?;
        body.flow_control().release_capacity(chunk.len())?;
        all.extend_from_slice(&chunk);
    }
    Ok(all.freeze())
}

/// Lines of a streaming response body.
struct Lines {
    body: hyper::body::Incoming,
    buffer: Vec<u8>,
}

impl Lines {
    /// The next line without its `\n`; `None` at the end of the body.
    async fn next(&mut self) -> Option<Vec<u8>> {
        loop {
            if let Some(end) = self.buffer.iter().position(|&b| b == b'\n') {
                let mut line: Vec<u8> = self.buffer.drain(..=end).collect();
                line.pop();
                return Some(line);
            }
            match self.body.frame().await? {
                Ok(frame) => {
                    if let Ok(data) = frame.into_data() {
                        self.buffer.extend_from_slice(&data);
                    }
                }
                Err(_) => return None,
            }
        }
    }
}

/// Serves one `/push` stream from the real server's `/stream`, with `fault`.
async fn serve_push(
    request: Request<RecvStream>,
    mut respond: SendResponse<Bytes>,
    name: String,
    real: String,
    fault: Option<Fault>,
    tally: Arc<Tally>,
) {
    let uri = request.uri().clone();
    let origin = format!(
        "{}://{}",
        uri.scheme_str().unwrap_or("http"),
        uri.authority().map_or("", |a| a.as_str())
    );
    let path = match uri.query() {
        Some(query) => format!("/channels/{name}/stream?{query}"),
        None => format!("/channels/{name}/stream"),
    };
    let last_event_id = request
        .headers()
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let headers: Vec<(&str, &str)> = last_event_id
        .iter()
        .map(|id| ("last-event-id", id.as_str()))
        .collect();
    // An upstream connection of its own, whose windows close when this
    // stream stops reading: the real server sees the slow consumer.
    let upstream = HttpClient::new(&real, Protocol::H2c);
    let Ok(answer) = upstream
        .send(Method::GET, &path, &headers, Bytes::new())
        .await
    else {
        respond.send_reset(h2::Reason::INTERNAL_ERROR);
        return;
    };
    let (parts, body) = answer.into_parts();
    let mut response = Response::new(());
    *response.status_mut() = parts.status;
    copy_headers(&parts.headers, response.headers_mut());
    if parts.status != StatusCode::OK {
        // The refusal, as the real server said it.
        let body = body
            .collect()
            .await
            .map(|c| c.to_bytes())
            .unwrap_or_default();
        if let Ok(mut stream) = respond.send_response(response, body.is_empty()) {
            let _ = stream.send_data(body, true);
        }
        return;
    }
    response
        .headers_mut()
        .insert("push-mode", "promise".parse().unwrap());
    let Ok(mut parent) = respond.send_response(response, false) else {
        return;
    };
    let in_flight = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let mut lines = Lines {
        body,
        buffer: Vec::new(),
    };
    let mut events = 0;
    let mut previous: Option<String> = None;
    loop {
        let Some(Some(line)) = until_reset(&mut parent, lines.next()).await else {
            break;
        };
        let value: serde_json::Value = serde_json::from_slice(&line).unwrap_or_default();
        let Some(id) = value.get("id").and_then(|v| v.as_str()).map(str::to_owned) else {
            // A signal or a heartbeat: the parent stream's.
            let mut line = line;
            line.push(b'\n');
            if parent.send_data(line.into(), false).is_err() {
                return;
            }
            continue;
        };
        events += 1;
        let (url_id, body) = match fault {
            Some(Fault::DropsPromise) if events == 3 => continue,
            Some(Fault::WrongUrl) if events == 2 => (previous.clone().unwrap(), line),
            Some(Fault::AlteredBody) if events == 2 => {
                let text = String::from_utf8(line).unwrap();
                (
                    id.clone(),
                    text.replacen("\"id\":", "\"id\": ", 1).into_bytes(),
                )
            }
            _ => (id.clone(), line),
        };
        previous = Some(id);
        let Some(Ok(permit)) = until_reset(&mut parent, in_flight.clone().acquire_owned()).await
        else {
            return;
        };
        let promise = Request::get(format!("{origin}/channels/{name}/messages/{url_id}"))
            .body(())
            .unwrap();
        let Ok(mut pushed) = respond.push_request(promise) else {
            return;
        };
        tally.promises.fetch_add(1, Ordering::Relaxed);
        let head = Response::builder()
            .status(StatusCode::OK)
            .header("content-type", "application/json")
            .header("cache-control", "no-cache")
            .header("content-length", body.len())
            .body(())
            .unwrap();
        let Ok(stream) = pushed.send_response(head, false) else {
            return;
        };
        tokio::spawn(send_body(stream, body.into(), permit));
    }
    // The real stream ended (after closed, shutdown or lagged): so does this.
    let _ = parent.send_data(Bytes::new(), true);
}

/// `future`, or `None` once the client resets the parent stream or leaves.
async fn until_reset<F: std::future::Future>(
    parent: &mut SendStream<Bytes>,
    future: F,
) -> Option<F::Output> {
    tokio::select! {
        output = future => Some(output),
        _ = poll_fn(|cx| parent.poll_reset(cx)) => None,
    }
}

/// Sends a pushed body as the client's windows allow, holding its place
/// among the pushes in flight until the last byte went out.
async fn send_body(mut stream: SendStream<Bytes>, mut body: Bytes, _permit: OwnedSemaphorePermit) {
    while !body.is_empty() {
        stream.reserve_capacity(body.len());
        match poll_fn(|cx| stream.poll_capacity(cx)).await {
            Some(Ok(0)) => {}
            Some(Ok(capacity)) => {
                let chunk = body.split_to(capacity.min(body.len()));
                if stream.send_data(chunk, body.is_empty()).is_err() {
                    return;
                }
            }
            _ => return,
        }
    }
}

/// A push-tower server on loopback with the suite's limits; its base URL.
async fn start_real_server() -> (String, Push) {
    let push = Push::new(
        Hub::new(HubConfig {
            limits: suite_limits(),
            max_channels: 10_000,
        }),
        Config::default(),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(serve(listener, push.router()).with_push(push.clone()).run());
    (base, push)
}

/// The push client under a name of its own, so that clients of several push
/// servers can share a run.
struct Named {
    name: &'static str,
    client: WireClient,
}

impl Named {
    fn new(name: &'static str, base: &str) -> Self {
        Named {
            name,
            client: WireClient::new(Technique::Http2Push, HttpClient::new(base, Protocol::H2c)),
        }
    }
}

impl Transport for Named {
    fn name(&self) -> String {
        self.name.to_owned()
    }

    fn shape(&self) -> Shape {
        self.client.shape()
    }

    fn open<'a>(
        &'a self,
        channel: &'a str,
        start: StartAt,
    ) -> BoxFuture<'a, Result<Box<dyn Session>, OpenError>> {
        self.client.open(channel, start)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_honest_push_server_passes_the_whole_suite() {
    let (real, push) = start_real_server().await;
    let tally = Arc::new(Tally::default());
    let base = start_push_server(&real, None, tally.clone()).await;
    let control = WireControl::new(HttpClient::new(&real, Protocol::Http1))
        .on_shutdown(move || push.shutdown());
    let honest = Named::new("Honest", &base);
    // Cursors of the pushed events resume on the real server's NDJSON, and
    // the other way round.
    let ndjson = WireClient::new(Technique::Ndjson, HttpClient::new(&real, Protocol::Http1));
    let report = Suite::new(&control)
        .transport(&honest)
        .transport(&ndjson)
        .run()
        .await
        .unwrap();
    println!("{}", report.table());
    assert_eq!(report.failures(), 0, "{}", report.table());
    assert_eq!(report.rows.len(), 2 * SCENARIOS.len());
    // Every scenario that applies to a stream ran, shutdown included.
    let not_applicable: Vec<&str> = report
        .rows
        .iter()
        .filter(|row| row.transport == "Honest")
        .filter(|row| matches!(row.outcome, conformance::Outcome::NotApplicable(_)))
        .map(|row| row.scenario)
        .collect();
    assert_eq!(not_applicable, ["stateless_polling"], "{}", report.table());
    // The events came as promises, each checked against a plain GET.
    let promises = tally.promises.load(Ordering::Relaxed);
    let proxied = tally.proxied.load(Ordering::Relaxed);
    println!("{promises} promises, {proxied} plain GETs");
    assert!(promises > 1000, "{promises} promises");
    assert!(
        proxied > promises / 2,
        "{proxied} plain GETs for {promises} promises"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_push_servers_fail_by_the_scenario_that_caught_them() {
    let (real, _push) = start_real_server().await;
    let tally = Arc::new(Tally::default());
    let mut clients = Vec::new();
    for (name, fault) in [
        ("WrongUrl", Fault::WrongUrl),
        ("AlteredBody", Fault::AlteredBody),
        ("DropsPromise", Fault::DropsPromise),
    ] {
        let base = start_push_server(&real, Some(fault), tally.clone()).await;
        clients.push(Named::new(name, &base));
    }
    let control = WireControl::new(HttpClient::new(&real, Protocol::Http1));
    let mut suite = Suite::new(&control).only(&[
        "order_and_completeness",
        "resume_after_cursor",
        "flushed_on_publish",
    ]);
    for client in &clients {
        suite = suite.transport(client as &dyn Transport);
    }
    let report = suite.run().await.unwrap();
    println!("{}", report.table());

    for name in ["WrongUrl", "AlteredBody", "DropsPromise"] {
        // Each fault is caught wherever a subscription reads past it, and a
        // subscription of one event, which never meets it, passes.
        assert_eq!(
            report.failed_scenarios(name),
            ["order_and_completeness", "resume_after_cursor"],
            "{name}: {}",
            report.table()
        );
    }
    let says = |name: &str, what: &str| {
        report
            .rows
            .iter()
            .filter(|row| row.transport == name)
            .any(|row| format!("{:?}", row.outcome).contains(what))
    };
    assert!(
        says("WrongUrl", "each event is promised at its own URL"),
        "{}",
        report.table()
    );
    assert!(
        says("AlteredBody", "must match byte for byte"),
        "{}",
        report.table()
    );
    assert!(
        !says("DropsPromise", "malformed"),
        "a dropped promise is a missing event: {}",
        report.table()
    );
}

/// The pushed bodies of the scripted server, by event id.
const SCRIPTED: [(&str, &str); 2] = [
    ("e-1", r#"{"id":"e-1","data":"one"}"#),
    ("e-2", r#"{"id":"e-2","event":"n","data":"two"}"#),
];

/// A server that answers `/channels/c/push` with `mode` and, in order: the
/// position line, the promise of `e-1`, a gap line, the promise of `e-2`, a
/// heartbeat, the end; and `/channels/c/messages/{id}` as pushed.
async fn start_scripted_server(mode: &'static str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut connection = h2::server::handshake(tcp).await.unwrap();
                while let Some(Ok((request, respond))) = connection.accept().await {
                    tokio::spawn(script(request, respond, mode));
                }
            });
        }
    });
    base
}

async fn script(request: Request<RecvStream>, mut respond: SendResponse<Bytes>, mode: &str) {
    let path = request.uri().path();
    if let Some(id) = path.strip_prefix("/channels/c/messages/") {
        let (_, body) = SCRIPTED.iter().find(|(known, _)| *known == id).unwrap();
        let response = Response::builder()
            .header("content-type", "application/json")
            .body(())
            .unwrap();
        let mut stream = respond.send_response(response, false).unwrap();
        stream
            .send_data(Bytes::from_static(body.as_bytes()), true)
            .unwrap();
        return;
    }
    assert_eq!(path, "/channels/c/push");
    let origin = format!("http://{}", request.uri().authority().unwrap());
    let response = Response::builder()
        .header("content-type", "application/x-ndjson")
        .header("push-mode", mode)
        .body(())
        .unwrap();
    let mut parent = respond.send_response(response, false).unwrap();
    let line = |text: &str| Bytes::from(format!("{text}\n"));
    parent
        .send_data(line(r#"{"signal":"position","cursor":"e-0"}"#), false)
        .unwrap();
    for (at, (id, body)) in SCRIPTED.iter().enumerate() {
        let promise = Request::get(format!("{origin}/channels/c/messages/{id}"))
            .body(())
            .unwrap();
        let head = Response::builder()
            .header("content-type", "application/json")
            .body(())
            .unwrap();
        let mut pushed = respond.push_request(promise).unwrap();
        let mut stream = pushed.send_response(head, false).unwrap();
        stream
            .send_data(Bytes::from_static(body.as_bytes()), true)
            .unwrap();
        if at == 0 {
            parent
                .send_data(line(r#"{"signal":"gap","cursor":"e-0"}"#), false)
                .unwrap();
        }
    }
    parent.send_data(line(""), true).unwrap();
    // Keep the stream's handles until the client has read it all.
    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
}

#[tokio::test]
async fn promises_and_parent_lines_arrive_in_wire_order() {
    use conformance::{Received, ReceivedSignal, SignalKind};

    let base = start_scripted_server("promise").await;
    let client = Named::new("push-h2c", &base);
    let mut session = client.open("c", StartAt::Now).await.unwrap();
    // Everything is in the client's buffers before the first read: the two
    // queues h2 hands over (promises, parent DATA) are both full, and only
    // the order the frames came in tells where each promise goes.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let mut items = Vec::new();
    while let Some(item) = session.next().await.unwrap() {
        items.push(item);
    }
    let signal = |kind| {
        Received::Signal(ReceivedSignal {
            kind,
            cursor: Some("e-0".into()),
            retry_ms: None,
        })
    };
    let event = |at: usize| match &items[at] {
        Received::Event(event) => event.id.clone(),
        other => format!("{other:?}"),
    };
    assert_eq!(items.len(), 5, "{items:?}");
    assert_eq!(items[0], signal(SignalKind::Position));
    assert_eq!(event(1), "e-1");
    assert_eq!(items[2], signal(SignalKind::Gap));
    assert_eq!(event(3), "e-2");
    assert_eq!(items[4], Received::Heartbeat);
    assert!(session.headers().unwrap().contains_key("push-mode"));

    // A server that answers inline to a client that keeps push enabled.
    let base = start_scripted_server("inline").await;
    let client = Named::new("push-h2c", &base);
    let Err(OpenError::Failed(why)) = client.open("c", StartAt::Now).await else {
        panic!("the open must fail on the push mode");
    };
    assert!(
        why.contains("push-mode: inline") && why.contains("push-mode: promise was expected"),
        "{why}"
    );
}
