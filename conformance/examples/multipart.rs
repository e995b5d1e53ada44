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
//! Client side: a [`Transport`] whose sessions are the crate's
//! [`BodySession`] with a [`Decoder`] that parses the parts back into
//! [`Received`] items. The suite drives the server through the wire contract
//! ([`WireControl`]) and shuts it down at the end.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::task::{Context, Poll};

use bytes::Bytes;
use conformance::clients::{open_response, BodySession, Decoder};
use conformance::received::decode_json;
use conformance::{
    HttpClient, OpenError, Protocol, Received, Report, Session, SessionError, Shape, StartAt,
    Suite, Transport, WireControl,
};
use futures_util::future::BoxFuture;
use http::{Method, Request, Response};
use push_core::delivery::Delivery;
use push_core::{envelope, Event, Hub, HubConfig, Signal};
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

impl tower_service::Service<Request<push_tower::RequestBody>> for App {
    type Response = Response<PushBody>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<push_tower::RequestBody>) -> ResponseFuture {
        let path = request.uri().path().to_owned();
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        match segments.as_slice() {
            ["channels", name, "multipart"] if request.method() == Method::GET => {
                self.push.stream_with(name, &request, Multipart)
            }
            _ => self.router.call(request),
        }
    }
}

/// The client side: opens the route and decodes its parts.
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
            let path = format!("/channels/{channel}/multipart");
            let response = open_response(&self.http, &path, &start).await?;
            Ok(Box::new(BodySession::new(response, PartDecoder::default())) as Box<dyn Session>)
        })
    }
}

/// Parses parts: a boundary line, header lines, a blank line, and one body
/// line (the JSON never contains a raw line break).
#[derive(Default)]
struct PartDecoder {
    buffer: Vec<u8>,
}

impl Decoder for PartDecoder {
    fn feed(&mut self, bytes: &[u8], out: &mut VecDeque<Received>) -> Result<(), SessionError> {
        self.buffer.extend_from_slice(bytes);
        loop {
            let lines: Vec<&[u8]> = self.buffer.split(|&b| b == b'\n').collect();
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
            let heartbeat = lines[1..blank]
                .iter()
                .any(|line| line.starts_with(b"Content-Type: text/plain"));
            let body = lines[blank + 1]
                .strip_suffix(b"\r")
                .unwrap_or(lines[blank + 1]);
            out.push_back(if heartbeat {
                Received::Heartbeat
            } else {
                let value: serde_json::Value = serde_json::from_slice(body)
                    .map_err(|e| SessionError::Malformed(format!("part is not JSON: {e}")))?;
                decode_json(&value).map_err(|e| SessionError::Malformed(e.to_string()))?
            });
            let consumed: usize = lines[..blank + 2].iter().map(|l| l.len() + 1).sum();
            self.buffer.drain(..consumed);
        }
    }
}

/// Serves the app on a loopback port and runs the whole suite against the
/// multipart transport.
pub(crate) async fn run() -> Report {
    let push = Push::new(
        Hub::new(HubConfig {
            limits: conformance::runner::suite_limits(),
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
    let control = WireControl::new(http.clone()).on_shutdown(move || push.shutdown());
    let multipart = MultipartClient { http: http.clone() };
    // A built-in technique beside it, so that cursors are checked to resume
    // across the two.
    let sse = conformance::WireClient::new(conformance::Technique::Sse, http);
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
