//! A real server on a loopback port and helpers shared by the socket tests.
#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use conformance::http::FullResponse;
use conformance::{
    HttpClient, Protocol, Received, ReceivedEvent, Session, StartAt, Technique, Transport,
};
use http::Method;
use push_core::{Hub, HubConfig, Limits};
use push_tower::{serve, Config, Push};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const PROTOCOLS: [Protocol; 2] = [Protocol::Http1, Protocol::H2c];
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// Limits small enough to reach in tests.
pub fn test_limits() -> Limits {
    Limits {
        history_events: 20,
        history_bytes: 8 * 1024 * 1024,
        subscriber_buffer_bytes: 4 * 1024 * 1024,
        heartbeat: Duration::from_millis(400),
        long_poll_max: Duration::from_secs(5),
        max_event_bytes: 2 * 1024 * 1024,
        ..Limits::default()
    }
}

pub struct TestServer {
    pub addr: SocketAddr,
    pub push: Push,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl TestServer {
    pub async fn start() -> Self {
        Self::with(test_limits(), Config::default()).await
    }

    pub async fn with(limits: Limits, config: Config) -> Self {
        let hub = Hub::new(HubConfig {
            limits,
            max_channels: 1000,
        });
        // A short grace, so that tests of stopped readers finish quickly.
        let config = config.lag_grace(Duration::from_millis(500));
        Self::from_push(Push::new(hub, config)).await
    }

    pub async fn from_push(push: Push) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let server = serve(listener, push.router())
            .with_push(push.clone())
            .drain_deadline(Duration::from_secs(3));
        let task = tokio::spawn(async move {
            server
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
        });
        TestServer {
            addr,
            push,
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn http(&self, protocol: Protocol) -> HttpClient {
        HttpClient::new(&self.base(), protocol)
    }

    pub fn client(&self, technique: Technique, protocol: Protocol) -> conformance::WireClient {
        conformance::WireClient::new(technique, self.http(protocol))
            .long_poll_timeout(Duration::from_secs(3))
            .poll_interval(Duration::from_millis(10))
    }

    /// Starts a graceful shutdown and waits for the server to finish.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(TIMEOUT, task).await.unwrap().unwrap();
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Publishes text through the HTTP API; returns the id.
pub async fn publish(http: &HttpClient, channel: &str, text: &str) -> String {
    publish_with(
        http,
        channel,
        None,
        "text/plain",
        Bytes::from(text.to_owned()),
    )
    .await
}

pub async fn publish_with(
    http: &HttpClient,
    channel: &str,
    event: Option<&str>,
    content_type: &str,
    body: Bytes,
) -> String {
    let answer = publish_raw(http, channel, event, content_type, body).await;
    assert_eq!(answer.status, 201, "publish answered {:?}", answer.body);
    answer.json()["id"].as_str().unwrap().to_owned()
}

pub async fn publish_raw(
    http: &HttpClient,
    channel: &str,
    event: Option<&str>,
    content_type: &str,
    body: Bytes,
) -> FullResponse {
    let path = match event {
        Some(event) => format!(
            "/channels/{channel}?event={}",
            conformance::clients::encode(event)
        ),
        None => format!("/channels/{channel}"),
    };
    http.fetch(Method::POST, &path, &[("content-type", content_type)], body)
        .await
        .unwrap()
}

/// Closes `channel` with `DELETE /channels/{channel}`, checking the `204`.
pub async fn delete(http: &HttpClient, channel: &str) {
    let answer = http
        .fetch(
            Method::DELETE,
            &format!("/channels/{channel}"),
            &[],
            Bytes::new(),
        )
        .await
        .unwrap();
    assert_eq!(answer.status, 204, "DELETE {channel}: {:?}", answer.body);
}

pub async fn open(
    client: &conformance::WireClient,
    channel: &str,
    start: StartAt,
) -> Box<dyn Session> {
    tokio::time::timeout(TIMEOUT, client.open(channel, start))
        .await
        .expect("open timed out")
        .unwrap_or_else(|e| panic!("{} open failed: {e}", client.name()))
}

/// The next item, skipping heartbeats.
pub async fn next(session: &mut Box<dyn Session>) -> Option<Received> {
    loop {
        let item = tokio::time::timeout(TIMEOUT, session.next())
            .await
            .expect("timed out waiting for an item")
            .expect("session failed");
        if item != Some(Received::Heartbeat) {
            return item;
        }
    }
}

pub async fn next_event(session: &mut Box<dyn Session>) -> ReceivedEvent {
    loop {
        match next(session).await {
            Some(Received::Event(event)) => return event,
            Some(Received::Signal(signal)) if signal.kind == conformance::SignalKind::Position => {}
            other => panic!("expected an event, got {other:?}"),
        }
    }
}

/// Reads `n` events, failing on anything but a position before them.
pub async fn events(session: &mut Box<dyn Session>, n: usize) -> Vec<ReceivedEvent> {
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        out.push(next_event(session).await);
    }
    out
}

/// Waits until `check` holds on the channel info.
pub async fn wait_for_info(
    http: &HttpClient,
    channel: &str,
    check: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let info = http
            .get(&format!("/channels/{channel}"))
            .await
            .unwrap()
            .json();
        if check(&info) {
            return info;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition never held; last info {info}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Every technique on every protocol.
pub fn matrix() -> Vec<(Technique, Protocol)> {
    Technique::ALL
        .into_iter()
        .flat_map(|t| PROTOCOLS.into_iter().map(move |p| (t, p)))
        .collect()
}

pub fn stream_matrix() -> Vec<(Technique, Protocol)> {
    matrix()
        .into_iter()
        .filter(|(t, _)| matches!(t, Technique::Sse | Technique::Ndjson))
        .collect()
}
