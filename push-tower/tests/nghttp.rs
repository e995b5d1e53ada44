//! HTTP/2 server push (`GET /channels/{name}/push`) as a real third-party
//! client sees it: `nghttp`, from nghttp2, run as a child process against
//! [`push_tower::serve`] on a loopback port.
//!
//! `nghttp -v` logs every frame it sends and receives and prints each
//! response body as it arrives, so its output is the whole exchange in wire
//! order: [`Transcript`] reads it back into frames. The tests need the
//! `nghttp` binary (Debian package `nghttp2-client`) and fail, never skip,
//! without it.

mod support;

use std::fmt::Write as _;
use std::process::Stdio;
use std::time::Duration;

use bytes::Bytes;
use conformance::Protocol;
use tokio::io::AsyncReadExt as _;
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;

use support::*;

/// The longest one `nghttp` run may take; it ends as soon as the parent
/// stream and every pushed stream have.
const NGHTTP_TIMEOUT: Duration = Duration::from_secs(30);

#[tokio::test]
async fn nghttp_gets_one_pushed_response_per_event_in_order() {
    let run = Run::with(
        &["-v"],
        "nghttp-push",
        mixed_retained(),
        mixed_live(),
        End::Delete,
    )
    .await;
    let parent = run.parent();
    assert_eq!(header(&parent.fields, ":status"), Some("200"));
    assert_eq!(
        header(&parent.fields, "content-type"),
        Some("application/x-ndjson")
    );
    assert_eq!(header(&parent.fields, "push-mode"), Some("promise"));
    run.assert_pushed_in_order();

    // The parent stream carries signals only: the position, then `closed`
    // once every promise is out.
    let lines = run.parent_lines();
    assert_eq!(
        lines.first().map(|line| line["signal"].clone()),
        Some("position".into()),
        "the parent stream starts with the position: {lines:?}"
    );
    assert!(
        lines.iter().all(|line| line.get("signal").is_some()),
        "the parent stream carries no events: {lines:?}"
    );
    let closed = lines.last().expect("a closed signal");
    assert_eq!(closed["signal"], "closed");
    assert_eq!(closed["cursor"], run.published.ids.last().unwrap().as_str());
    let closed_at = run
        .transcript
        .position(|frame| {
            frame.is_data_on(parent.stream) && contains(&frame.data, br#""signal":"closed""#)
        })
        .expect("the closed signal's DATA frame");
    let last_promise = run
        .transcript
        .frames
        .iter()
        .rposition(|frame| frame.is_received("PUSH_PROMISE"))
        .expect("promises");
    assert!(
        last_promise < closed_at,
        "every promise comes before the signal that follows its event\n{}",
        run.transcript.summary()
    );
}

#[tokio::test]
async fn nghttp_without_push_gets_the_envelopes_inline() {
    let run = Run::with(
        &["-v", "--no-push"],
        "nghttp-inline",
        mixed_retained(),
        mixed_live(),
        End::Delete,
    )
    .await;
    run.assert_inline();
}

#[tokio::test]
async fn nghttp_is_told_of_a_graceful_shutdown_after_its_pushes() {
    let run = Run::with(
        &["-v"],
        "nghttp-shutdown",
        mixed_retained(),
        mixed_live(),
        End::Shutdown,
    )
    .await;
    run.assert_pushed_in_order();
    let lines = run.parent_lines();
    let last = lines.last().expect("a shutdown signal");
    assert_eq!(last["signal"], "shutdown");
    assert_eq!(last["cursor"], run.published.ids.last().unwrap().as_str());
    // The server's GOAWAY follows the signal, and nghttp may be gone by
    // then: its last stream has ended.
}

#[tokio::test]
async fn nghttp_that_takes_no_pushed_streams_gets_the_envelopes_inline() {
    // No pushed stream can ever open (RFC 9113, 5.1.2), so nothing can be
    // pushed: the events must come inline, as to a client without push.
    let run = Run::with(
        &["-v", "--max-concurrent-streams=0"],
        "nghttp-no-streams",
        mixed_retained(),
        mixed_live(),
        End::Delete,
    )
    .await;
    run.assert_inline();
}

#[tokio::test]
async fn nghttp_that_takes_one_pushed_stream_at_a_time_gets_every_event() {
    // More events than the 16 pushes in flight a parent stream may have,
    // a client that allows one pushed stream at a time, and stream windows
    // of 1023 bytes, so that large pushed bodies wait for window updates.
    let mut retained: Vec<Event> = (1..=17)
        .map(|n| Event::text(&format!("event {n}")))
        .collect();
    retained.push(Event::binary(large_binary()));
    let live = vec![Event::text("live"), Event::binary(vec![0xff; 40_000])];
    let run = Run::with(
        &["-v", "--max-concurrent-streams=1", "--window-bits=10"],
        "nghttp-one-at-a-time",
        retained,
        live,
        End::Delete,
    )
    .await;
    assert_eq!(header(&run.parent().fields, "push-mode"), Some("promise"));
    run.assert_pushed_in_order();

    // RFC 9113, 5.1.2: promised (reserved) streams do not count toward the
    // client's limit, open ones do.
    let mut open = Vec::new();
    for frame in run.transcript.frames.iter().filter(|f| f.received) {
        let pushed = frame.stream % 2 == 0 && frame.stream != 0;
        if pushed && frame.kind == "HEADERS" {
            open.push(frame.stream);
            assert!(
                open.len() <= 1,
                "pushed streams {open:?} open at once\n{}",
                run.transcript.summary()
            );
        }
        if pushed && frame.end_stream() {
            open.retain(|&stream| stream != frame.stream);
        }
    }
}

/// One exchange: events published before `nghttp` subscribes (replayed
/// with `?from=earliest`) and while it is subscribed (live), then the
/// channel closed so that the parent stream ends and `nghttp` exits.
struct Run {
    published: Published,
    transcript: Transcript,
    /// The server's `host:port`, the promises' `:authority`.
    authority: String,
}

/// How the server ends the parent stream.
#[derive(Clone, Copy)]
enum End {
    /// `DELETE /channels/{name}`: the `closed` signal.
    Delete,
    /// A graceful shutdown: the `shutdown` signal, then `GOAWAY`.
    Shutdown,
}

/// The events of a channel in order, and what a plain `GET` of each
/// answers.
struct Published {
    channel: String,
    ids: Vec<String>,
    envelopes: Vec<Bytes>,
    content_types: Vec<String>,
}

impl Run {
    async fn with(
        args: &[&str],
        channel: &str,
        retained: Vec<Event>,
        live: Vec<Event>,
        end: End,
    ) -> Self {
        let server = TestServer::start().await;
        let http = server.http(Protocol::Http1);
        let mut ids = Vec::new();
        for event in &retained {
            ids.push(event.publish(&http, channel).await);
        }
        let url = format!("{}/channels/{channel}/push?from=earliest", server.base());
        let nghttp = Nghttp::spawn(args, &url);
        wait_for_info(&http, channel, |info| info["subscribers"] == 1).await;
        for event in &live {
            ids.push(event.publish(&http, channel).await);
        }
        let mut envelopes = Vec::new();
        let mut content_types = Vec::new();
        for id in &ids {
            let answer = http
                .get(&format!("/channels/{channel}/messages/{id}"))
                .await
                .unwrap();
            assert_eq!(answer.status, 200, "GET of {id}: {:?}", answer.body);
            let content_type = answer.headers["content-type"].to_str().unwrap();
            content_types.push(content_type.to_owned());
            envelopes.push(answer.body);
        }
        // Either signal ends the parent stream, and nghttp exits once its
        // pushed streams have ended too.
        let authority = server.addr.to_string();
        match end {
            End::Delete => delete(&http, channel).await,
            End::Shutdown => server.stop().await,
        }
        let transcript = nghttp.finish().await;
        Run {
            published: Published {
                channel: channel.to_owned(),
                ids,
                envelopes,
                content_types,
            },
            transcript,
            authority,
        }
    }

    /// The response head on the request's stream (the first odd stream a
    /// response arrives on).
    fn parent(&self) -> &Frame {
        self.transcript
            .frames
            .iter()
            .find(|frame| frame.is_received("HEADERS") && frame.stream % 2 == 1)
            .unwrap_or_else(|| panic!("no response\n{}", self.transcript.summary()))
    }

    fn parent_body(&self) -> Vec<u8> {
        self.transcript.body(self.parent().stream)
    }

    /// The non-empty lines of the parent stream (empty ones are
    /// heartbeats), as JSON.
    fn parent_lines(&self) -> Vec<serde_json::Value> {
        self.parent_body()
            .split(|&byte| byte == b'\n')
            .filter(|line| !line.is_empty())
            .map(|line| serde_json::from_slice(line).expect("a JSON line"))
            .collect()
    }

    /// Nothing was reset and the connection ended without an error.
    fn assert_clean(&self) {
        for frame in &self.transcript.frames {
            assert!(
                frame.kind != "RST_STREAM",
                "a stream was reset: {frame:?}\n{}",
                self.transcript.summary()
            );
            if frame.kind == "GOAWAY" {
                assert!(
                    frame.detail.contains("error_code=NO_ERROR"),
                    "GOAWAY with an error: {frame:?}"
                );
            }
        }
    }

    /// No promise, and every envelope on the parent stream, byte for byte as
    /// `/stream` sends them, with `Push-Mode: inline`.
    fn assert_inline(&self) {
        self.assert_clean();
        let summary = self.transcript.summary();
        assert!(
            !self
                .transcript
                .frames
                .iter()
                .any(|frame| frame.is_received("PUSH_PROMISE")),
            "no promise\n{summary}"
        );
        let parent = self.parent();
        assert_eq!(header(&parent.fields, ":status"), Some("200"));
        assert_eq!(header(&parent.fields, "push-mode"), Some("inline"));
        let responses = self
            .transcript
            .frames
            .iter()
            .filter(|frame| frame.is_received("HEADERS"))
            .count();
        assert_eq!(responses, 1, "one response, the parent's\n{summary}");
        let body = self.parent_body();
        let lines: Vec<&[u8]> = body
            .split(|&byte| byte == b'\n')
            .filter(|line| !line.is_empty())
            .collect();
        let (first, rest) = lines.split_first().expect("lines");
        let (last, envelopes) = rest.split_last().expect("more lines");
        assert!(first.starts_with(br#"{"signal":"position""#), "{first:?}");
        assert!(last.starts_with(br#"{"signal":"closed""#), "{last:?}");
        let expected: Vec<&[u8]> = self.published.envelopes.iter().map(|e| &e[..]).collect();
        assert_eq!(envelopes, expected);
    }

    /// One promise per event on the parent stream, in event order, each
    /// followed by the pushed response a plain `GET` of its URL answers.
    fn assert_pushed_in_order(&self) {
        self.assert_clean();
        let summary = self.transcript.summary();
        let parent = self.parent().stream;
        let promises: Vec<&Frame> = self
            .transcript
            .frames
            .iter()
            .filter(|frame| frame.is_received("PUSH_PROMISE"))
            .collect();
        let Published {
            channel,
            ids,
            envelopes,
            content_types,
        } = &self.published;
        let paths: Vec<&str> = promises
            .iter()
            .map(|promise| header(&promise.fields, ":path").unwrap_or(""))
            .collect();
        let expected: Vec<String> = ids
            .iter()
            .map(|id| format!("/channels/{channel}/messages/{id}"))
            .collect();
        assert_eq!(
            paths, expected,
            "one promise per event, in order\n{summary}"
        );
        let authority = self.authority.as_str();
        for (index, promise) in promises.into_iter().enumerate() {
            let id = &ids[index];
            assert_eq!(promise.stream, parent, "{id} promised on the parent");
            assert_eq!(header(&promise.fields, ":method"), Some("GET"));
            assert_eq!(header(&promise.fields, ":scheme"), Some("http"));
            assert_eq!(header(&promise.fields, ":authority"), Some(authority));
            let pushed = promise.promised_stream().expect("a promised stream id");
            let head = self
                .transcript
                .frames
                .iter()
                .find(|frame| frame.is_received("HEADERS") && frame.stream == pushed)
                .unwrap_or_else(|| panic!("no pushed response for {id}\n{summary}"));
            assert_eq!(header(&head.fields, ":status"), Some("200"), "{id}");
            assert_eq!(
                header(&head.fields, "content-type"),
                Some(content_types[index].as_str()),
                "{id}"
            );
            assert_eq!(header(&head.fields, "cache-control"), Some("no-cache"));
            let length = envelopes[index].len().to_string();
            assert_eq!(
                header(&head.fields, "content-length"),
                Some(length.as_str()),
                "{id}"
            );
            assert!(
                self.transcript.ended(pushed),
                "the pushed stream of {id} ended\n{summary}"
            );
            assert_eq!(
                Bytes::from(self.transcript.body(pushed)),
                envelopes[index],
                "the pushed body of {id} is what a GET answers"
            );
        }
    }
}

/// An event to publish.
struct Event {
    name: Option<&'static str>,
    content_type: &'static str,
    body: Bytes,
}

impl Event {
    fn text(text: &str) -> Self {
        Event {
            name: None,
            content_type: "text/plain; charset=utf-8",
            body: Bytes::from(text.to_owned()),
        }
    }

    fn binary(bytes: Vec<u8>) -> Self {
        Event {
            name: None,
            content_type: "application/octet-stream",
            body: Bytes::from(bytes),
        }
    }

    async fn publish(&self, http: &conformance::HttpClient, channel: &str) -> String {
        publish_with(
            http,
            channel,
            self.name,
            self.content_type,
            self.body.clone(),
        )
        .await
    }
}

/// Short and long, text and binary, named and not.
fn mixed_retained() -> Vec<Event> {
    vec![
        Event::text("hello"),
        Event {
            name: Some("greeting"),
            ..Event::text("héllo, \"wörld\"\nsecond line")
        },
        Event::binary(vec![0, 1, 2, 0xfe, 0xff]),
        // Larger than nghttp's 64 KiB stream window once in base64.
        Event::binary(large_binary()),
    ]
}

fn mixed_live() -> Vec<Event> {
    vec![
        Event::text("published while subscribed"),
        Event::binary(vec![0x80; 17]),
    ]
}

fn large_binary() -> Vec<u8> {
    (0..100_000u32).map(|n| (n * 31 % 251) as u8).collect()
}

/// The value of header `name` in a block of fields.
fn header<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(field, _)| field == name)
        .map(|(_, value)| value.as_str())
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

/// An `nghttp` process, its output read as it comes (so that it never
/// blocks on a full pipe while the test publishes).
struct Nghttp {
    child: Child,
    stdout: JoinHandle<Vec<u8>>,
    stderr: JoinHandle<Vec<u8>>,
    command: String,
}

impl Nghttp {
    fn spawn(args: &[&str], url: &str) -> Self {
        let command = format!("nghttp {} '{url}'", args.join(" "));
        let mut child = Command::new("nghttp")
            .args(args)
            .arg(url)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|error| {
                if error.kind() == std::io::ErrorKind::NotFound {
                    panic!(
                        "nghttp is not installed: these tests run the real nghttp client; \
                         install the nghttp2-client package (`sudo apt-get install -y \
                         nghttp2-client` on Debian and Ubuntu) and run them again"
                    )
                }
                panic!("cannot run `{command}`: {error}")
            });
        let mut stdout = child.stdout.take().expect("piped");
        let mut stderr = child.stderr.take().expect("piped");
        Nghttp {
            child,
            stdout: tokio::spawn(async move {
                let mut out = Vec::new();
                let _ = stdout.read_to_end(&mut out).await;
                out
            }),
            stderr: tokio::spawn(async move {
                let mut out = Vec::new();
                let _ = stderr.read_to_end(&mut out).await;
                out
            }),
            command,
        }
    }

    /// Waits for it to exit, and reads what it printed.
    ///
    /// # Panics
    ///
    /// When it does not exit within [`NGHTTP_TIMEOUT`] (it is killed) or
    /// exits with a failure, showing what it printed.
    async fn finish(mut self) -> Transcript {
        let status = tokio::time::timeout(NGHTTP_TIMEOUT, self.child.wait()).await;
        if status.is_err() {
            let _ = self.child.kill().await;
        }
        let stdout = self.stdout.await.unwrap();
        let stderr = String::from_utf8_lossy(&self.stderr.await.unwrap()).into_owned();
        let printed = || {
            format!(
                "stderr:\n{stderr}\nstdout:\n{}",
                String::from_utf8_lossy(&stdout)
            )
        };
        match status {
            Err(_) => panic!(
                "`{}` did not exit within {NGHTTP_TIMEOUT:?}; it printed\n{}",
                self.command,
                printed()
            ),
            Ok(Ok(status)) if status.success() => {}
            Ok(status) => panic!("`{}` failed: {status:?}\n{}", self.command, printed()),
        }
        Transcript::parse(&stdout).unwrap_or_else(|problem| {
            panic!(
                "cannot read the output of `{}`: {problem}\n{}",
                self.command,
                printed()
            )
        })
    }
}

/// The frames of an `nghttp -v` run, in the order it logged them.
#[derive(Debug)]
struct Transcript {
    frames: Vec<Frame>,
}

/// One frame `nghttp` sent or received.
#[derive(Debug)]
struct Frame {
    received: bool,
    /// `HEADERS`, `DATA`, `PUSH_PROMISE`, `RST_STREAM`, …
    kind: String,
    stream: u32,
    flags: u8,
    /// The indented lines under the frame's log line.
    detail: String,
    /// Received `HEADERS` and `PUSH_PROMISE`: the fields, in order.
    fields: Vec<(String, String)>,
    /// Received `DATA`: the payload.
    data: Vec<u8>,
}

impl Frame {
    fn is_received(&self, kind: &str) -> bool {
        self.received && self.kind == kind
    }

    fn is_data_on(&self, stream: u32) -> bool {
        self.is_received("DATA") && self.stream == stream
    }

    fn end_stream(&self) -> bool {
        // PUSH_PROMISE has no END_STREAM; its 0x1 bit means nothing.
        self.flags & 0x1 != 0 && matches!(self.kind.as_str(), "DATA" | "HEADERS")
    }

    fn promised_stream(&self) -> Option<u32> {
        let (_, rest) = self.detail.split_once("promised_stream_id=")?;
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        digits.parse().ok()
    }
}

impl Transcript {
    /// Reads `nghttp -v` output. Each log line starts with a timestamp
    /// such as `[  0.001] `, and the lines under it are indented by ten
    /// spaces; whatever lies between two log records is response body data,
    /// which `nghttp` prints before logging the `DATA` frame it came in.
    fn parse(out: &[u8]) -> Result<Self, String> {
        let mut frames = Vec::new();
        let mut fields = Vec::new();
        let mut data = Vec::new();
        let mut at = 0;
        while at < out.len() {
            let Some((start, line_start)) = next_log_line(out, at) else {
                data.extend_from_slice(&out[at..]);
                break;
            };
            data.extend_from_slice(&out[at..start]);
            let line_end = find(out, line_start, b'\n').unwrap_or(out.len());
            let line = String::from_utf8_lossy(&out[line_start..line_end]).into_owned();
            let mut detail = String::new();
            at = (line_end + 1).min(out.len());
            while out[at..].starts_with(b"          ") {
                let end = find(out, at, b'\n').unwrap_or(out.len());
                let _ = writeln!(detail, "{}", String::from_utf8_lossy(&out[at..end]).trim());
                at = (end + 1).min(out.len());
            }
            if let Some(field) = line.strip_prefix("recv (stream_id=") {
                let (_, field) = field.split_once(") ").ok_or("a header line")?;
                let (name, value) = field.split_once(": ").unwrap_or((field, ""));
                fields.push((name.to_owned(), value.to_owned()));
                continue;
            }
            let Some(frame) = parse_frame_line(&line)? else {
                continue;
            };
            let (received, kind, length, flags, stream) = frame;
            let mut frame = Frame {
                received,
                kind,
                stream,
                flags,
                detail,
                fields: Vec::new(),
                data: Vec::new(),
            };
            if frame.is_received("DATA") {
                if data.len() != length {
                    return Err(format!(
                        "DATA frame of {length} bytes on stream {stream} after {} bytes of body",
                        data.len()
                    ));
                }
                frame.data = std::mem::take(&mut data);
            } else if !data.is_empty() {
                return Err(format!(
                    "{} bytes of body before a {} frame",
                    data.len(),
                    frame.kind
                ));
            }
            if frame.is_received("HEADERS") || frame.is_received("PUSH_PROMISE") {
                frame.fields = std::mem::take(&mut fields);
            }
            frames.push(frame);
        }
        if !data.is_empty() {
            return Err(format!("{} bytes of body after the last frame", data.len()));
        }
        Ok(Transcript { frames })
    }

    fn position(&self, predicate: impl Fn(&Frame) -> bool) -> Option<usize> {
        self.frames.iter().position(predicate)
    }

    /// The body received on `stream`.
    fn body(&self, stream: u32) -> Vec<u8> {
        self.frames
            .iter()
            .filter(|frame| frame.is_data_on(stream))
            .flat_map(|frame| frame.data.iter().copied())
            .collect()
    }

    /// Whether `stream` got a frame with END_STREAM.
    fn ended(&self, stream: u32) -> bool {
        self.frames
            .iter()
            .any(|frame| frame.received && frame.stream == stream && frame.end_stream())
    }

    /// One line per frame, for failure messages.
    fn summary(&self) -> String {
        let mut summary = String::new();
        for frame in &self.frames {
            let _ = writeln!(
                summary,
                "{} {} stream={} flags={:#x} fields={:?} data={} bytes {}",
                if frame.received { "recv" } else { "send" },
                frame.kind,
                frame.stream,
                frame.flags,
                frame.fields,
                frame.data.len(),
                frame.detail.replace('\n', " "),
            );
        }
        summary
    }
}

/// The next `[  0.001] ` timestamp at or after `from`: where it starts and
/// where the text after it starts.
fn next_log_line(out: &[u8], from: usize) -> Option<(usize, usize)> {
    let mut at = from;
    while let Some(start) = find(out, at, b'[') {
        let mut i = start + 1;
        while out.get(i) == Some(&b' ') {
            i += 1;
        }
        let digits = i;
        while out.get(i).is_some_and(|b| b.is_ascii_digit() || *b == b'.') {
            i += 1;
        }
        if i > digits && out[i..].starts_with(b"] ") {
            return Some((start, i + 2));
        }
        at = start + 1;
    }
    None
}

fn find(out: &[u8], from: usize, byte: u8) -> Option<usize> {
    out[from..]
        .iter()
        .position(|&b| b == byte)
        .map(|offset| from + offset)
}

/// `recv DATA frame <length=52, flags=0x00, stream_id=13>`: direction,
/// kind, length, flags, stream. `None` for other log lines (`Connected`).
#[allow(clippy::type_complexity)]
fn parse_frame_line(line: &str) -> Result<Option<(bool, String, usize, u8, u32)>, String> {
    let (received, rest) = match line.split_once(' ') {
        Some(("recv", rest)) => (true, rest),
        Some(("send", rest)) => (false, rest),
        _ => return Ok(None),
    };
    let Some((kind, rest)) = rest.split_once(" frame <") else {
        return Ok(None);
    };
    let bad = || format!("an unreadable frame line: {line:?}");
    let rest = rest.strip_suffix('>').ok_or_else(bad)?;
    let mut length = None;
    let mut flags = None;
    let mut stream = None;
    for part in rest.split(", ") {
        match part.split_once('=') {
            Some(("length", value)) => length = value.parse().ok(),
            Some(("flags", value)) => {
                flags = u8::from_str_radix(value.trim_start_matches("0x"), 16).ok()
            }
            Some(("stream_id", value)) => stream = value.parse().ok(),
            _ => {}
        }
    }
    match (length, flags, stream) {
        (Some(length), Some(flags), Some(stream)) => {
            Ok(Some((received, kind.to_owned(), length, flags, stream)))
        }
        _ => Err(bad()),
    }
}

#[test]
fn reads_nghttp_output() {
    let out = concat!(
        "[  0.000] Connected\n",
        "[  0.001] recv (stream_id=13) :status: 200\n",
        "[  0.001] recv HEADERS frame <length=83, flags=0x04, stream_id=13>\n",
        "          ; END_HEADERS\n",
        "{\"signal\":\"position\"}\n",
        "[  0.001] recv DATA frame <length=22, flags=0x00, stream_id=13>\n",
        "[  0.001] recv (stream_id=13) :path: /channels/a/messages/x-1\n",
        "[  0.001] recv PUSH_PROMISE frame <length=50, flags=0x04, stream_id=13>\n",
        "          ; END_HEADERS\n",
        "          (padlen=0, promised_stream_id=2)\n",
        // A body without a newline runs into the next log line.
        "{\"id\":\"x-1\"}[ 10.001] recv DATA frame <length=12, flags=0x01, stream_id=2>\n",
        "          ; END_STREAM\n",
    )
    .as_bytes();
    let transcript = Transcript::parse(out).unwrap();
    let kinds: Vec<&str> = transcript.frames.iter().map(|f| f.kind.as_str()).collect();
    assert_eq!(kinds, ["HEADERS", "DATA", "PUSH_PROMISE", "DATA"]);
    assert_eq!(header(&transcript.frames[0].fields, ":status"), Some("200"));
    assert_eq!(transcript.frames[2].promised_stream(), Some(2));
    assert_eq!(
        header(&transcript.frames[2].fields, ":path"),
        Some("/channels/a/messages/x-1")
    );
    assert_eq!(transcript.body(2), br#"{"id":"x-1"}"#);
    assert!(transcript.ended(2));
    assert!(!transcript.ended(13));
}
