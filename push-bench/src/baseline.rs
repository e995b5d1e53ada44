//! The servers push is compared with, written the way a user would write
//! them without push.
//!
//! ```text
//! $ push-bench baseline tungstenite-default --listen 127.0.0.1:0
//! tungstenite-default listening on http://127.0.0.1:40123
//! ```
//!
//! Each baseline prints the line push-server prints once it listens
//! (`<name> listening on http://ADDR`, read by
//! [`parse_listening_line`](crate::server::parse_listening_line)) and serves
//! until it is killed.
//!
//! Every baseline answers the routes of push the fan-out uses, framing
//! every event exactly as push does (PROTOCOL.md), so that the bytes on the
//! wire are the same and only the server differs:
//!
//! - `GET /channels/{name}/sse` ([`Baseline::AxumSse`],
//!   [`Baseline::RawWriter`], [`Baseline::HyperStream`]) answers `200` with
//!   `content-type: text/event-stream` and `cache-control: no-cache`, sends
//!   the position first (`id: 0000000000000000-N`, N the number of the last
//!   event published on the channel, 0 if none, then a blank line), then
//!   every event published on the channel from then on, in order, as
//!   `id: 0000000000000000-n`, `data: <body>` and a blank line (n counts
//!   from 1 on each channel).
//! - `GET /channels/{name}/stream` (the same three) answers `200` with
//!   `content-type: application/x-ndjson` and `cache-control: no-cache`,
//!   sends the position line `{"signal":"position","cursor":"0000000000000000-N"}`,
//!   then one envelope line per event, `{"id":"0000000000000000-n","data":<body>}`
//!   (the body as a JSON string, escaped as `serde_json` escapes it, as push
//!   does).
//! - `GET /channels/{name}/ws` ([`Baseline::TungsteniteDefault`]), a
//!   WebSocket handshake over HTTP/1.1, sends the position signal as a text
//!   message, then one text message per event holding its envelope (the
//!   NDJSON line without its `\n`).
//! - `POST /channels/{name}` (every baseline) with a UTF-8 body publishes the
//!   body to every current subscriber of the channel and answers `201` with
//!   `content-type: application/json` and `{"id":"0000000000000000-n"}`.
//! - Anything else answers `404`.
//!
//! [`Baseline::HyperOk`] is apart: a bare hyper server (HTTP/1.1 and h2c)
//! that answers every `GET` at once with `200` and push's long-poll answer
//! when nothing is new, and every publish with `201`: the request rate a
//! long-poll cycle is measured against. [`Baseline::HyperHeld`] is the same
//! server holding each `GET` until the next publish: what holding a request
//! costs on hyper, with no channel behind it.
//!
//! A subscriber that falls more than [`CHANNEL_CAPACITY`] events behind is
//! dropped: its stream ends (its socket closes). Channels are made by the
//! first subscribe or publish on them and never removed.
//!
//! Every baseline sets `TCP_NODELAY` on its connections, as push-server
//! does, so that none of them waits to pack small events into one segment.
//! [`Baseline::AxumSse`] and [`Baseline::HyperStream`] also serve h2c
//! (HTTP/2 with prior knowledge) on the same port, as push-server does;
//! [`Baseline::RawWriter`] and [`Baseline::TungsteniteDefault`] speak
//! HTTP/1.1 only ([`Baseline::serves_h2c`]).

mod axum_sse;
mod hyper_ok;
mod hyper_stream;
mod raw_writer;
mod tungstenite_default;

use std::collections::HashMap;
use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast;

use crate::technique::Technique;
use crate::{Error, Result};

/// How many events a baseline keeps for a subscriber that has not taken
/// them yet (the capacity of each channel's `tokio::sync::broadcast`). A
/// subscriber that falls further behind is dropped.
pub const CHANNEL_CAPACITY: usize = 1024;

/// The largest body the baselines take in a `POST`; a larger one is
/// refused with `413`. A body that is not UTF-8 is refused with `400`.
pub const MAX_PUBLISH_BYTES: usize = 64 * 1024;

/// The part of every event id before the `-`: the baselines keep no time,
/// so it is the same for all (push puts the publish time there).
const ID_PREFIX: &str = "0000000000000000";

/// A baseline server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Baseline {
    /// WebSocket on tokio-tungstenite with its default configuration
    /// (`accept_hdr_async`: 128 KiB read buffer), one
    /// `tokio::sync::broadcast` per channel, each subscriber sending every
    /// event with `SinkExt::send`.
    TungsteniteDefault,
    /// SSE and NDJSON on axum 0.8: `Sse`, and `Body::from_stream`, over a
    /// `BroadcastStream` of one `tokio::sync::broadcast` channel per
    /// channel name, each subscriber formatting every event itself.
    AxumSse,
    /// SSE and NDJSON on a bare tokio `TcpListener`, HTTP/1.1 read and
    /// written by hand: each event is framed once into shared `Bytes`, and
    /// each subscriber writes everything queued for it in one vectored
    /// write.
    RawWriter,
    /// SSE and NDJSON on a bare hyper 1 server (hyper-util's `auto`
    /// builder: HTTP/1.1 and h2c): the response body is a `StreamBody` over
    /// the broadcast receiver of events framed once.
    HyperStream,
    /// A bare hyper 1 server (hyper-util's auto builder: HTTP/1.1 and h2c)
    /// answering every `GET` at once with `200` and a static long-poll
    /// answer, and `POST /channels/{name}` with `201` and an id.
    HyperOk,
    /// `hyper-ok` holding every `GET` until the next publish (or 30 s),
    /// then answering it the same way: a long poll on bare hyper, with no
    /// channel, cursor or history behind it.
    HyperHeld,
}

impl Baseline {
    /// Its name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Baseline::TungsteniteDefault => "tungstenite-default",
            Baseline::AxumSse => "axum-sse",
            Baseline::RawWriter => "raw-writer",
            Baseline::HyperStream => "hyper-stream",
            Baseline::HyperOk => "hyper-ok",
            Baseline::HyperHeld => "hyper-held",
        }
    }

    /// Whether it serves `technique`: WebSocket for `tungstenite-default`,
    /// SSE and NDJSON for the stream baselines, none for `hyper-ok` and
    /// `hyper-held`.
    pub fn serves(self, technique: Technique) -> bool {
        match self {
            Baseline::TungsteniteDefault => technique == Technique::Ws,
            Baseline::AxumSse | Baseline::RawWriter | Baseline::HyperStream => {
                technique != Technique::Ws
            }
            Baseline::HyperOk | Baseline::HyperHeld => false,
        }
    }

    /// Whether it serves h2c (HTTP/2 with prior knowledge) besides
    /// HTTP/1.1: `axum-sse` (`axum::serve`) and `hyper-stream` (hyper-util's
    /// `auto` builder), `hyper-ok` and `hyper-held` do; `raw-writer` reads and writes HTTP/1.1 by hand,
    /// and `tungstenite-default` upgrades HTTP/1.1 requests only.
    pub fn serves_h2c(self) -> bool {
        match self {
            Baseline::AxumSse | Baseline::HyperStream | Baseline::HyperOk | Baseline::HyperHeld => {
                true
            }
            Baseline::RawWriter | Baseline::TungsteniteDefault => false,
        }
    }
}

/// Serves `baseline` on `listen` until the process is killed, after printing
/// `<name> listening on http://ADDR` to stdout.
///
/// # Errors
///
/// When it cannot listen on `listen` or cannot write to stdout. Errors on one
/// connection end that connection only.
pub async fn serve(baseline: Baseline, listen: SocketAddr) -> Result<()> {
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|error| Error::new(format!("cannot listen on {listen}: {error}")))?;
    let address = listener.local_addr().unwrap_or(listen);
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{} listening on http://{address}", baseline.name())
        .and_then(|()| stdout.flush())
        .map_err(|error| Error::new(format!("cannot write to stdout: {error}")))?;
    drop(stdout);
    run(baseline, listener).await
}

/// Serves `baseline` on a listener already bound, without printing
/// anything, until the task is dropped; what [`serve`] does once it
/// listens. Tests run baselines in-process with it.
///
/// ```no_run
/// # async fn example() -> push_bench::Result<()> {
/// use push_bench::baseline::{self, Baseline};
///
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
/// let address = listener.local_addr().unwrap();
/// tokio::spawn(baseline::run(Baseline::RawWriter, listener));
/// // Subscribe at http://{address}/channels/news/sse ...
/// # Ok(())
/// # }
/// ```
///
/// # Errors
///
/// Only when the server stops for good, which none of the baselines does:
/// failing to accept a connection (out of file descriptors, say) pauses the
/// accept loop, and errors on one connection end that connection only.
pub async fn run(baseline: Baseline, listener: TcpListener) -> Result<()> {
    match baseline {
        Baseline::TungsteniteDefault => tungstenite_default::serve(listener).await,
        Baseline::AxumSse => axum_sse::serve(listener).await,
        Baseline::RawWriter => raw_writer::serve(listener).await,
        Baseline::HyperStream => hyper_stream::serve(listener).await,
        Baseline::HyperOk | Baseline::HyperHeld => hyper_ok::serve(listener, baseline).await,
    }
}

/// The next connection on `listener`, with `TCP_NODELAY` set. A failed
/// accept (out of file descriptors, which would end the accept loop of a
/// tokio example) is counted in `refusals`, reported on stderr at every
/// power of two, and waited out for 10 ms.
async fn accept(listener: &TcpListener, baseline: Baseline, refusals: &mut u64) -> TcpStream {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let _ = stream.set_nodelay(true);
                return stream;
            }
            Err(error) => {
                *refusals += 1;
                if refusals.is_power_of_two() {
                    eprintln!(
                        "{}: accept failed ({refusals} so far): {error}",
                        baseline.name()
                    );
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

/// What a baseline does with a request, from its method and target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route<'a> {
    /// `GET /channels/{name}/sse`, `/stream` or `/ws`.
    Subscribe(&'a str, Technique),
    /// `POST /channels/{name}`.
    Publish(&'a str),
    /// Anything else: `404`.
    NotFound,
}

/// Routes a request by its method and target (a path, perhaps with a
/// query, which is ignored). A channel name is one non-empty path segment,
/// taken as it is (not percent-decoded).
fn route<'a>(method: &str, target: &'a str) -> Route<'a> {
    let path = target.split_once('?').map_or(target, |(path, _)| path);
    let Some(rest) = path.strip_prefix("/channels/") else {
        return Route::NotFound;
    };
    let is_name = |name: &str| !name.is_empty() && !name.contains('/');
    let subscription = [Technique::Sse, Technique::Ndjson, Technique::Ws]
        .into_iter()
        .find_map(|technique| {
            let suffix = technique.path("");
            let suffix = suffix.strip_prefix("/channels/").unwrap_or(&suffix);
            Some((rest.strip_suffix(suffix)?, technique))
        });
    match (method, subscription) {
        ("GET", Some((name, technique))) if is_name(name) => Route::Subscribe(name, technique),
        ("POST", _) if is_name(rest) => Route::Publish(rest),
        _ => Route::NotFound,
    }
}

/// The id of event `n` of a channel: `0000000000000000-n`.
fn event_id(n: u64) -> String {
    format!("{ID_PREFIX}-{n}")
}

/// The body of a `201` answer to a publish: `{"id":"0000000000000000-n"}`.
fn published_body(n: u64) -> String {
    format!(r#"{{"id":"{}"}}"#, event_id(n))
}

/// The block an SSE subscription starts with: the id of the last event
/// published before it (`n`, 0 if none) and a blank line.
fn position_block(n: u64) -> Bytes {
    Bytes::from(format!("id: {}\n\n", event_id(n)))
}

/// Event `n` framed as an SSE block: its id, a `data:` line for each line
/// of `data` (a line ends at `\r\n`, `\n` or `\r`, as SSE reads them) and a
/// blank line.
fn event_block(n: u64, data: &str) -> Bytes {
    let mut block = String::with_capacity(data.len() + 48);
    block.push_str("id: ");
    block.push_str(&event_id(n));
    block.push('\n');
    let bytes = data.as_bytes();
    if !bytes.contains(&b'\n') && !bytes.contains(&b'\r') {
        // One line, as the fan-out load publishes.
        block.push_str("data: ");
        block.push_str(data);
        block.push('\n');
    } else {
        for line in data.replace("\r\n", "\n").split(['\n', '\r']) {
            block.push_str("data: ");
            block.push_str(line);
            block.push('\n');
        }
    }
    block.push('\n');
    Bytes::from(block)
}

/// The `position` signal of a subscription that starts after event `n` (0:
/// before the first), as a JSON object: the first NDJSON line (with a
/// `\n`) or WebSocket message (without).
fn position_signal(n: u64) -> String {
    format!(r#"{{"signal":"position","cursor":"{}"}}"#, event_id(n))
}

/// The envelope of event `n`, whose data is the text `data`:
/// `{"id":"…","data":"…"}`, the data escaped as push escapes it (with
/// `serde_json`). An NDJSON line is this and `\n`; a WebSocket message is
/// this alone.
fn envelope(n: u64, data: &str) -> String {
    let mut out = String::with_capacity(data.len() + 48);
    out.push_str(r#"{"id":""#);
    out.push_str(&event_id(n));
    out.push_str(r#"","data":"#);
    // A str always serializes.
    out.push_str(&serde_json::to_string(data).unwrap_or_default());
    out.push('}');
    out
}

/// Appends `\n` to a JSON object: an NDJSON line.
fn line(mut object: String) -> Bytes {
    object.push('\n');
    Bytes::from(object)
}

/// An event framed once for each technique a subscriber may read it with;
/// subscribers share the bytes.
#[derive(Debug, Clone)]
struct Framed {
    /// The SSE block.
    sse: Bytes,
    /// The NDJSON line.
    ndjson: Bytes,
}

impl Framed {
    /// Event `n` with the text `data`, framed for SSE and NDJSON.
    fn new(n: u64, data: &str) -> Self {
        Framed {
            sse: event_block(n, data),
            ndjson: line(envelope(n, data)),
        }
    }

    /// The bytes of `technique` (SSE or NDJSON).
    fn bytes(&self, technique: Technique) -> &Bytes {
        match technique {
            Technique::Ndjson => &self.ndjson,
            Technique::Sse | Technique::Ws => &self.sse,
        }
    }
}

/// The first bytes of a subscription of `technique` (SSE or NDJSON) that
/// starts after event `n`: the position block or line.
fn position(technique: Technique, n: u64) -> Bytes {
    match technique {
        Technique::Ndjson => line(position_signal(n)),
        Technique::Sse | Technique::Ws => position_block(n),
    }
}

/// The content type of a subscription of `technique` (SSE or NDJSON).
fn content_type(technique: Technique) -> &'static str {
    match technique {
        Technique::Ndjson => "application/x-ndjson",
        Technique::Sse | Technique::Ws => "text/event-stream",
    }
}

/// The channels of a baseline: a `tokio::sync::broadcast` sender per name,
/// made by the first subscribe or publish on it and never removed, and the
/// number of the last event published on it. Events are numbered under the
/// lock, so every subscriber sees them in the same order.
#[derive(Debug)]
struct Channels<T> {
    by_name: Mutex<HashMap<String, Channel<T>>>,
}

#[derive(Debug)]
struct Channel<T> {
    sender: broadcast::Sender<T>,
    last: u64,
}

impl<T: Clone> Channels<T> {
    fn new() -> Self {
        Channels {
            by_name: Mutex::new(HashMap::new()),
        }
    }

    fn with_channel<R>(&self, name: &str, f: impl FnOnce(&mut Channel<T>) -> R) -> R {
        let mut by_name = self.by_name.lock().unwrap_or_else(PoisonError::into_inner);
        match by_name.get_mut(name) {
            Some(channel) => f(channel),
            None => {
                let mut channel = Channel {
                    sender: broadcast::channel(CHANNEL_CAPACITY).0,
                    last: 0,
                };
                let answer = f(&mut channel);
                by_name.insert(name.to_owned(), channel);
                answer
            }
        }
    }

    /// Subscribes to channel `name`: the number of the last event published
    /// on it (0 if none) and a receiver of every event published after it.
    fn subscribe(&self, name: &str) -> (u64, broadcast::Receiver<T>) {
        self.with_channel(name, |channel| (channel.last, channel.sender.subscribe()))
    }

    /// Publishes on channel `name` the event `event(n)` makes, `n` being its
    /// number (one more than the last's), to every current subscriber;
    /// returns `n`.
    fn publish(&self, name: &str, event: impl FnOnce(u64) -> T) -> u64 {
        self.with_channel(name, |channel| {
            channel.last += 1;
            // No subscriber is no error: the event goes to nobody.
            let _ = channel.sender.send(event(channel.last));
            channel.last
        })
    }
}

#[cfg(test)]
mod tests {
    use clap::ValueEnum as _;

    use super::*;

    #[test]
    fn routes_subscribe_publish_and_nothing_else() {
        assert_eq!(
            route("GET", "/channels/news/sse"),
            Route::Subscribe("news", Technique::Sse)
        );
        assert_eq!(
            route("GET", "/channels/news/sse?from=now"),
            Route::Subscribe("news", Technique::Sse)
        );
        assert_eq!(
            route("GET", "/channels/news/stream"),
            Route::Subscribe("news", Technique::Ndjson)
        );
        assert_eq!(
            route("GET", "/channels/news/ws"),
            Route::Subscribe("news", Technique::Ws)
        );
        assert_eq!(route("POST", "/channels/news"), Route::Publish("news"));
        for (method, target) in [
            ("GET", "/channels/news"),
            ("POST", "/channels/news/sse"),
            ("POST", "/channels/news/stream"),
            ("PUT", "/channels/news"),
            ("GET", "/channels//sse"),
            ("GET", "/channels//stream"),
            ("GET", "/channels/a/b/sse"),
            ("GET", "/channels/a/b/ws"),
            ("POST", "/channels/"),
            ("POST", "/channels/a/b"),
            ("GET", "/channels/news/ndjson"),
            ("GET", "/"),
            ("GET", "/nothing"),
        ] {
            assert_eq!(route(method, target), Route::NotFound, "{method} {target}");
        }
    }

    #[test]
    fn frames_ids_positions_and_events() {
        assert_eq!(event_id(7), "0000000000000000-7");
        assert_eq!(published_body(1), r#"{"id":"0000000000000000-1"}"#);
        assert_eq!(&position_block(0)[..], b"id: 0000000000000000-0\n\n");
        assert_eq!(
            &event_block(3, "seq=00000003...")[..],
            b"id: 0000000000000000-3\ndata: seq=00000003...\n\n"
        );
        assert_eq!(
            &event_block(4, "a\nb\r\nc\rd")[..],
            b"id: 0000000000000000-4\ndata: a\ndata: b\ndata: c\ndata: d\n\n"
        );
        assert_eq!(
            &event_block(5, "")[..],
            b"id: 0000000000000000-5\ndata: \n\n"
        );
    }

    #[test]
    fn frames_json_as_push_does() {
        assert_eq!(
            position_signal(0),
            r#"{"signal":"position","cursor":"0000000000000000-0"}"#
        );
        assert_eq!(
            &position(Technique::Ndjson, 2)[..],
            b"{\"signal\":\"position\",\"cursor\":\"0000000000000000-2\"}\n"
        );
        assert_eq!(
            envelope(3, "seq=00000003..."),
            r#"{"id":"0000000000000000-3","data":"seq=00000003..."}"#
        );
        // Escaped as JSON requires, and as serde_json (push's escaper) does.
        assert_eq!(
            envelope(4, "a\"b\\c\nd\u{1}é"),
            r#"{"id":"0000000000000000-4","data":"a\"b\\c\nd\u0001é"}"#
        );
        let framed = Framed::new(5, "x");
        assert_eq!(
            &framed.bytes(Technique::Ndjson)[..],
            b"{\"id\":\"0000000000000000-5\",\"data\":\"x\"}\n"
        );
        assert_eq!(
            &framed.bytes(Technique::Sse)[..],
            b"id: 0000000000000000-5\ndata: x\n\n"
        );
    }

    #[test]
    fn channels_number_events_per_channel_and_deliver_them_in_order() {
        let channels = Channels::<u64>::new();
        assert_eq!(channels.publish("a", |n| n), 1);
        let (last, mut receiver) = channels.subscribe("a");
        assert_eq!(last, 1);
        assert_eq!(channels.publish("a", |n| n * 10), 2);
        assert_eq!(channels.publish("b", |n| n), 1);
        assert_eq!(channels.publish("a", |n| n * 10), 3);
        assert_eq!(receiver.try_recv().unwrap(), 20);
        assert_eq!(receiver.try_recv().unwrap(), 30);
        assert!(receiver.try_recv().is_err());
        assert_eq!(channels.subscribe("b").0, 1);
        assert_eq!(channels.subscribe("new").0, 0);
    }

    #[test]
    fn a_subscriber_past_the_capacity_lags() {
        let channels = Channels::<u64>::new();
        let (_, mut receiver) = channels.subscribe("a");
        for _ in 0..=CHANNEL_CAPACITY {
            channels.publish("a", |n| n);
        }
        assert!(matches!(
            receiver.try_recv(),
            Err(broadcast::error::TryRecvError::Lagged(1))
        ));
    }

    #[test]
    fn only_tungstenite_default_serves_websockets() {
        let websocket: Vec<_> = Baseline::value_variants()
            .iter()
            .filter(|baseline| baseline.serves(Technique::Ws))
            .map(|baseline| baseline.name())
            .collect();
        assert_eq!(websocket, ["tungstenite-default"]);
        let techniques = [Technique::Sse, Technique::Ndjson, Technique::Ws];
        for long_poll in [Baseline::HyperOk, Baseline::HyperHeld] {
            assert!(!techniques.iter().any(|t| long_poll.serves(*t)));
        }
        for baseline in Baseline::value_variants()
            .iter()
            .filter(|baseline| !matches!(baseline, Baseline::HyperOk | Baseline::HyperHeld))
        {
            let streams = baseline.serves(Technique::Sse);
            assert_eq!(streams, baseline.serves(Technique::Ndjson), "{baseline:?}");
            assert_ne!(streams, baseline.serves(Technique::Ws), "{baseline:?}");
        }
        assert!(Baseline::AxumSse.serves_h2c() && Baseline::HyperStream.serves_h2c());
        assert!(!Baseline::RawWriter.serves_h2c());
    }
}
