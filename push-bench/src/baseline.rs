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
//! - [`Baseline::TungsteniteDefault`]: a WebSocket server on tokio-tungstenite
//!   with its default configuration. Every connection gets the small text
//!   message push sends first (the `position` signal), then the server reads
//!   until the socket closes, as a subscription server that only pushes
//!   would. Any path is accepted, so it answers the URL push serves.
//! - [`Baseline::AxumSse`], [`Baseline::RawWriter`] and
//!   [`Baseline::HyperStream`]: Server-Sent Events servers over HTTP/1.1,
//!   for the SSE fan-out. Each answers the two routes of push the fan-out
//!   uses, the same way:
//!   - `GET /channels/{name}/sse` answers `200` with
//!     `content-type: text/event-stream` and `cache-control: no-cache`, sends
//!     the position first (`id: 0000000000000000-N`, N the number of the
//!     last event published on the channel, 0 if none, then a blank line),
//!     then every event published on the channel from then on, in order, as
//!     `id: 0000000000000000-n`, `data: <body>` and a blank line (n counts
//!     from 1 on each channel). A subscriber that falls more than
//!     [`CHANNEL_CAPACITY`] events behind is dropped: its stream ends.
//!   - `POST /channels/{name}` with a UTF-8 body publishes the body to every
//!     current subscriber of the channel and answers `201` with
//!     `content-type: application/json` and `{"id":"0000000000000000-n"}`.
//!   - Anything else answers `404`.
//! - [`Baseline::HyperOk`]: a bare hyper server (HTTP/1.1 and h2c) that
//!   answers every `GET` at once with `200` and push's long-poll answer
//!   when nothing is new, and every publish with `201`: the request rate a
//!   long-poll cycle is measured against.
//!
//! Every baseline sets `TCP_NODELAY` on its connections, as push-server
//! does, so that none of them waits to pack small events into one segment.

mod axum_sse;
mod hyper_ok;
mod hyper_stream;
mod raw_writer;

use std::collections::HashMap;
use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt as _, StreamExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast;
use tokio_tungstenite::tungstenite::Message;

use crate::{Error, Result};

/// The first message every connection gets: what push sends first on a
/// WebSocket (the `position` signal of a channel with no events).
pub const FIRST_MESSAGE: &str = r#"{"signal":"position","cursor":"0000000000000000-0"}"#;

/// How many events an SSE baseline keeps for a subscriber that has not
/// taken them yet (the capacity of each channel's `tokio::sync::broadcast`).
/// A subscriber that falls further behind is dropped.
pub const CHANNEL_CAPACITY: usize = 1024;

/// The largest body the SSE baselines take in a `POST`; a larger one is
/// refused with `413`. A body that is not UTF-8 is refused with `400`.
pub const MAX_PUBLISH_BYTES: usize = 64 * 1024;

/// The part of every event id before the `-`: the SSE baselines keep no
/// time, so it is the same for all (push puts the publish time there).
const ID_PREFIX: &str = "0000000000000000";

/// A baseline server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Baseline {
    /// WebSocket on tokio-tungstenite with its default configuration
    /// (`accept_async`: 128 KiB read buffer).
    TungsteniteDefault,
    /// SSE on axum 0.8: `Sse` over a `BroadcastStream` of one
    /// `tokio::sync::broadcast` channel per channel name, each subscriber
    /// formatting every event itself.
    AxumSse,
    /// SSE on a bare tokio `TcpListener`, HTTP/1.1 read and written by
    /// hand: each event is framed once into shared `Bytes`, and each
    /// subscriber writes everything queued for it in one vectored write.
    RawWriter,
    /// SSE on a bare hyper 1 HTTP/1.1 server: the response body is a
    /// `StreamBody` over the broadcast receiver of events framed once.
    HyperStream,
    /// A bare hyper 1 server (hyper-util's auto builder: HTTP/1.1 and h2c)
    /// answering every `GET` at once with `200` and a static long-poll
    /// answer, and `POST /channels/{name}` with `201` and an id.
    HyperOk,
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
        }
    }

    /// Whether it serves WebSockets (`idle-memory` holds WebSockets). The
    /// others serve Server-Sent Events, or, for `hyper-ok`, answers only.
    pub fn serves_websocket(self) -> bool {
        match self {
            Baseline::TungsteniteDefault => true,
            Baseline::AxumSse | Baseline::RawWriter | Baseline::HyperStream => false,
            Baseline::HyperOk => false,
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
        Baseline::TungsteniteDefault => tungstenite_default(listener).await,
        Baseline::AxumSse => axum_sse::serve(listener).await,
        Baseline::RawWriter => raw_writer::serve(listener).await,
        Baseline::HyperStream => hyper_stream::serve(listener).await,
        Baseline::HyperOk => hyper_ok::serve(listener).await,
    }
}

/// The next connection on `listener`, with `TCP_NODELAY` set when
/// `nodelay`. A failed accept (out of file descriptors, which would end the
/// accept loop of a tokio example) is counted in `refusals`, reported on
/// stderr at every power of two, and waited out for 10 ms.
async fn accept(
    listener: &TcpListener,
    baseline: Baseline,
    nodelay: bool,
    refusals: &mut u64,
) -> TcpStream {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                if nodelay {
                    let _ = stream.set_nodelay(true);
                }
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

/// The accept loop every tokio-tungstenite example has, made to survive
/// running out of file descriptors (which would otherwise end it).
async fn tungstenite_default(listener: TcpListener) -> Result<()> {
    let mut refusals = 0_u64;
    loop {
        let stream = accept(
            &listener,
            Baseline::TungsteniteDefault,
            false,
            &mut refusals,
        )
        .await;
        tokio::spawn(tungstenite_default_connection(stream));
    }
}

async fn tungstenite_default_connection(stream: TcpStream) {
    let Ok(mut socket) = tokio_tungstenite::accept_async(stream).await else {
        return;
    };
    if socket.send(Message::text(FIRST_MESSAGE)).await.is_err() {
        return;
    }
    while let Some(Ok(_)) = socket.next().await {}
}

/// What an SSE baseline does with a request, from its method and target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route<'a> {
    /// `GET /channels/{name}/sse`.
    Subscribe(&'a str),
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
    match (method, rest.strip_suffix("/sse")) {
        ("GET", Some(name)) if is_name(name) => Route::Subscribe(name),
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

/// The block a subscription starts with: the id of the last event published
/// before it (`n`, 0 if none) and a blank line.
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

/// The channels of an SSE baseline: a `tokio::sync::broadcast` sender per
/// name, made by the first subscribe or publish on it and never removed,
/// and the number of the last event published on it. Events are numbered
/// under the lock, so every subscriber sees them in the same order.
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
        assert_eq!(route("GET", "/channels/news/sse"), Route::Subscribe("news"));
        assert_eq!(
            route("GET", "/channels/news/sse?from=now"),
            Route::Subscribe("news")
        );
        assert_eq!(route("POST", "/channels/news"), Route::Publish("news"));
        for (method, target) in [
            ("GET", "/channels/news"),
            ("POST", "/channels/news/sse"),
            ("PUT", "/channels/news"),
            ("GET", "/channels//sse"),
            ("GET", "/channels/a/b/sse"),
            ("POST", "/channels/"),
            ("POST", "/channels/a/b"),
            ("GET", "/channels/news/ws"),
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
            .filter(|baseline| baseline.serves_websocket())
            .map(|baseline| baseline.name())
            .collect();
        assert_eq!(websocket, ["tungstenite-default"]);
    }
}
