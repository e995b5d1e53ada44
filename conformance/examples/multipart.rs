//! A custom transport under test: events as `multipart/mixed` parts over one
//! plain HTTP response, built outside the built-in crates and checked with
//! the whole conformance suite.
//!
//! ```text
//! cargo run -p conformance --example multipart
//! ```
//!
//! Server side: a [`Delivery`] that frames each event, signal and heartbeat
//! as a part, served with `Push::stream_with` beside push-tower's router.
//! Client side: a [`Transport`] that parses the parts back into
//! [`Received`] items. The suite drives the server through the wire
//! contract ([`WireControl`]) and shuts it down at the end.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use conformance::clients::start_request;
use conformance::received::decode_json;
use conformance::{
    ChannelState, Control, ControlError, HttpClient, OpenError, Protocol, Received, Report,
    Session, SessionError, Shape, StartAt, Suite, Transport, WireControl,
};
use futures_util::future::BoxFuture;
use http::{Method, Request, Response};
use http_body_util::BodyExt;
use push_core::delivery::{Delivery, Lifecycle};
use push_core::{envelope, Event, Hub, HubConfig, Limits, Signal};
use push_tower::{serve, Config, Push, PushBody, ResponseFuture, Router};

const BOUNDARY: &str = "push-boundary";

/// The server side: every item is one part whose body is a JSON line.
struct Multipart;

fn part(content_type: &str, body: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(body.len() + 64);
    out.extend_from_slice(
        format!("--{BOUNDARY}\r\nContent-Type: {content_type}\r\n\r\n").as_bytes(),
    );
    out.extend_from_slice(body);
    out.extend_from_slice(b"\r\n");
    Bytes::from(out)
}

impl Delivery for Multipart {
    type Frame = Bytes;

    fn content_type(&self) -> &'static str {
        "multipart/mixed; boundary=push-boundary"
    }

    fn lifecycle(&self) -> Lifecycle {
        Lifecycle::Stream
    }

    fn event(&self, event: &Event) -> Bytes {
        // Encoded once per event and shared by every subscriber.
        event.encoded::<Multipart>(|event| {
            let line = event.envelope_line();
            part("application/json", &line[..line.len() - 1])
        })
    }

    fn signal(&self, signal: &Signal) -> Bytes {
        part(
            "application/json",
            envelope::encode_signal(signal).as_bytes(),
        )
    }

    fn heartbeat(&self) -> Option<Bytes> {
        Some(part("text/plain", b""))
    }
}

/// push-tower's router, plus `GET /channels/{name}/multipart`.
#[derive(Clone)]
struct App {
    push: Push,
    router: Router,
}

impl tower_service::Service<Request<hyper::body::Incoming>> for App {
    type Response = Response<PushBody>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<hyper::body::Incoming>) -> ResponseFuture {
        let path = request.uri().path().to_owned();
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        match segments.as_slice() {
            ["channels", name, "multipart"] if request.method() == Method::GET => {
                self.push.stream_with(name, &request, Arc::new(Multipart))
            }
            _ => self.router.call(request),
        }
    }
}

/// The client side: parses parts back into items.
struct MultipartClient {
    http: HttpClient,
}

impl Transport for MultipartClient {
    fn name(&self) -> String {
        "multipart".into()
    }

    fn shape(&self) -> Shape {
        Shape::Stream
    }

    fn open<'a>(
        &'a self,
        channel: &'a str,
        start: StartAt,
    ) -> BoxFuture<'a, Result<Box<dyn Session>, OpenError>> {
        Box::pin(async move {
            let (query, headers) = start_request(&start);
            let headers: Vec<(&str, &str)> =
                headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
            let path = format!("/channels/{channel}/multipart?{query}");
            let response = self
                .http
                .send(Method::GET, &path, &headers, Bytes::new())
                .await
                .map_err(|e| OpenError::Failed(e.to_string()))?;
            if response.status() != 200 {
                let status = response.status().as_u16();
                let body = response
                    .into_body()
                    .collect()
                    .await
                    .map(|b| b.to_bytes())
                    .unwrap_or_default();
                let code = serde_json::from_slice::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|v| v["error"].as_str().map(str::to_owned));
                return Err(OpenError::Refused { status, code });
            }
            let (parts, body) = response.into_parts();
            Ok(Box::new(MultipartSession {
                headers: parts.headers,
                body,
                buffer: Vec::new(),
                queue: VecDeque::new(),
                ended: false,
            }) as Box<dyn Session>)
        })
    }
}

struct MultipartSession {
    headers: http::HeaderMap,
    body: hyper::body::Incoming,
    buffer: Vec<u8>,
    queue: VecDeque<Received>,
    ended: bool,
}

impl MultipartSession {
    /// Parses every complete part in the buffer: a boundary line, header
    /// lines, a blank line, and one body line.
    fn parse(&mut self) -> Result<(), SessionError> {
        loop {
            let text = &self.buffer[..];
            let lines: Vec<&[u8]> = text.split(|&b| b == b'\n').collect();
            // A part needs its boundary, headers, blank line and body, all
            // terminated: find the blank line, then the body's end.
            let Some(blank) = lines.iter().position(|l| *l == b"\r") else {
                return Ok(());
            };
            if lines.len() < blank + 3 {
                return Ok(()); // the body line is not complete yet
            }
            let boundary = lines[0].strip_suffix(b"\r").unwrap_or(lines[0]);
            if boundary != format!("--{BOUNDARY}").as_bytes() {
                return Err(SessionError::Malformed(format!(
                    "expected a boundary, got {:?}",
                    String::from_utf8_lossy(boundary)
                )));
            }
            let content_type = lines[1..blank]
                .iter()
                .filter_map(|l| std::str::from_utf8(l).ok())
                .find_map(|l| l.trim_end().strip_prefix("Content-Type: "))
                .unwrap_or("")
                .to_owned();
            let body = lines[blank + 1]
                .strip_suffix(b"\r")
                .unwrap_or(lines[blank + 1]);
            let item = if content_type == "text/plain" {
                Received::Heartbeat
            } else {
                let value: serde_json::Value = serde_json::from_slice(body)
                    .map_err(|e| SessionError::Malformed(format!("part is not JSON: {e}")))?;
                decode_json(&value).map_err(|e| SessionError::Malformed(e.to_string()))?
            };
            self.queue.push_back(item);
            let consumed: usize = lines[..blank + 2].iter().map(|l| l.len() + 1).sum();
            self.buffer.drain(..consumed);
        }
    }
}

impl Session for MultipartSession {
    fn next(&mut self) -> BoxFuture<'_, Result<Option<Received>, SessionError>> {
        Box::pin(async move {
            loop {
                if let Some(item) = self.queue.pop_front() {
                    return Ok(Some(item));
                }
                if self.ended {
                    return Ok(None);
                }
                match self.body.frame().await {
                    None => self.ended = true,
                    Some(Err(e)) => return Err(SessionError::Broken(e.to_string())),
                    Some(Ok(frame)) => {
                        if let Ok(data) = frame.into_data() {
                            self.buffer.extend_from_slice(&data);
                            self.parse()?;
                        }
                    }
                }
            }
        })
    }

    fn headers(&self) -> Option<&http::HeaderMap> {
        Some(&self.headers)
    }
}

/// The wire contract's control, plus shutdown of the in-process server.
struct InProcess {
    wire: WireControl,
    push: Push,
}

impl Control for InProcess {
    fn publish<'a>(
        &'a self,
        channel: &'a str,
        event: Option<&'a str>,
        data: &'a [u8],
        binary: bool,
    ) -> BoxFuture<'a, Result<String, ControlError>> {
        self.wire.publish(channel, event, data, binary)
    }

    fn close<'a>(&'a self, channel: &'a str) -> BoxFuture<'a, Result<(), ControlError>> {
        self.wire.close(channel)
    }

    fn describe<'a>(
        &'a self,
        channel: &'a str,
    ) -> BoxFuture<'a, Result<ChannelState, ControlError>> {
        self.wire.describe(channel)
    }

    fn shutdown(&self) -> Option<BoxFuture<'_, ()>> {
        Some(Box::pin(async move { self.push.shutdown() }))
    }
}

/// Serves the app on a loopback port and runs the whole suite against the
/// multipart transport.
pub(crate) async fn run() -> Report {
    let limits = Limits {
        history_events: 20,
        history_bytes: 4 << 20,
        subscriber_buffer_bytes: 2 << 20,
        heartbeat: std::time::Duration::from_millis(300),
        long_poll_max: std::time::Duration::from_secs(2),
        max_event_bytes: 1 << 20,
        ..Limits::default()
    };
    let push = Push::new(
        Hub::new(HubConfig {
            limits,
            max_channels: 10_000,
        }),
        Config::default(),
    );
    let app = App {
        router: push.router(),
        push: push.clone(),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port");
    let base = format!("http://{}", listener.local_addr().expect("bound"));
    tokio::spawn(serve(listener, app).with_push(push.clone()).run());

    let http = HttpClient::new(&base, Protocol::Http1);
    let control = InProcess {
        wire: WireControl::new(http.clone()),
        push,
    };
    let multipart = MultipartClient { http: http.clone() };
    // A built-in technique beside it, so that cursors are checked to resume
    // across the two.
    let sse = conformance::Technique::Sse.client(http);
    Suite::new(&control)
        .transport(&multipart)
        .transport(&sse)
        .run()
        .await
        .expect("the server describes its channels")
}

#[allow(dead_code)] // The test includes this file for `run` alone.
#[tokio::main]
async fn main() -> std::process::ExitCode {
    let report = run().await;
    print!("{}", report.table());
    if report.failures() == 0 {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    }
}
