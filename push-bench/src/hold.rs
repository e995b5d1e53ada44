//! The client that opens many connections to a push channel and holds them
//! open: WebSockets, or HTTP/1.1 streaming responses (SSE, NDJSON).
//!
//! ```text
//! $ push-bench hold --url ws://127.0.0.1:40123/channels/idle/ws --count 10000
//! held 10000
//! $ push-bench hold --url http://127.0.0.1:40123/channels/idle/sse --count 10000
//! held 10000
//! ```
//!
//! The URL's scheme says what it opens: for `ws://`, a WebSocket per
//! connection; for `http://`, an HTTP/1.1 connection per stream carrying
//! one `GET` of the URL, which must answer `200` (the way a browser's
//! `EventSource` holds an SSE stream).
//!
//! It opens `count` connections, at most a given number of handshakes at a
//! time, and counts a connection as held once its first message has come: a
//! WebSocket's first text message, or a streaming response's first chunk of
//! body (for push, the `position` signal on either: the connection is
//! subscribed). Once every one is held it prints `held N` and keeps them
//! open, reading each (so pings are answered and heartbeats taken), until
//! its stdin closes or it is killed.
//!
//! It connects to loopback addresses only, and fails when not every
//! connection is held within the time given. Its own connections are
//! [`ws`]'s, with a 4 KiB read buffer: this client is the load,
//! and its memory is not measured, but 10,000 tungstenite default buffers
//! would take 1.3 GB.

use std::io::{Read as _, Write as _};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt as _;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, Semaphore};
use tokio_tungstenite::tungstenite::http::Uri;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use crate::{http1, proc, ws, Error, Result};

/// File descriptors kept for everything but the connections (stdio, the
/// runtime, the listener in a server).
pub const SPARE_FILES: u64 = 64;

/// What to hold.
#[derive(Debug, Clone)]
pub struct HoldOptions {
    /// A `ws://` or `http://` URL on a loopback address.
    pub url: String,
    /// How many connections to hold.
    pub count: usize,
    /// At most this many connections between the start of their TCP
    /// connect and their first message.
    pub handshakes_in_flight: usize,
    /// Every connection must be held within this.
    pub within: Duration,
}

/// Opens and holds connections as `options` say, prints `held N` on stdout
/// once all are held, and returns when stdin closes.
///
/// A held connection that ends (the server closed it or failed) is reported
/// on stderr, the first one in full and then the count.
///
/// # Errors
///
/// When the URL is not a `ws://` or `http://` URL on a loopback address,
/// when `count`
/// connections would not fit under the open-files limit, when any
/// connection fails before it is held, or when not all are held within
/// `options.within`.
pub async fn run(options: HoldOptions) -> Result<()> {
    let target = Target::resolve(&options.url).await?;
    let limit = proc::open_files_limit()?;
    if options.count as u64 > limit.saturating_sub(SPARE_FILES) {
        return Err(Error::new(format!(
            "{} connections do not fit in the open-files limit of {limit} (`ulimit -n`) \
             with {SPARE_FILES} to spare",
            options.count
        )));
    }
    let handshakes = Arc::new(Semaphore::new(options.handshakes_in_flight.max(1)));
    let ended = Arc::new(AtomicUsize::new(0));
    let (held_tx, mut held_rx) = mpsc::channel::<Result<()>>(options.count.clamp(1, 1024));
    for _ in 0..options.count {
        let target = target.clone();
        let handshakes = Arc::clone(&handshakes);
        let ended = Arc::clone(&ended);
        let held_tx = held_tx.clone();
        tokio::spawn(async move {
            let Ok(permit) = handshakes.acquire_owned().await else {
                return;
            };
            let opened = target.open().await;
            drop(permit);
            let socket = match opened {
                Ok(socket) => {
                    if held_tx.send(Ok(())).await.is_err() {
                        return;
                    }
                    socket
                }
                Err(error) => {
                    let _ = held_tx.send(Err(error)).await;
                    return;
                }
            };
            drop(held_tx);
            let reason = socket.hold().await;
            let count = ended.fetch_add(1, Ordering::Relaxed) + 1;
            if count == 1 || count.is_power_of_two() {
                eprintln!("hold: {count} held connection(s) ended; latest: {reason}");
            }
        });
    }
    drop(held_tx);

    let all_held = tokio::time::timeout(options.within, async {
        let mut held = 0;
        while held < options.count {
            match held_rx.recv().await {
                Some(Ok(())) => held += 1,
                Some(Err(error)) => {
                    return Err(Error::new(format!(
                        "connection failed after {held} of {} were held: {error}",
                        options.count
                    )))
                }
                None => break,
            }
        }
        Ok(held)
    })
    .await;
    match all_held {
        Ok(Ok(held)) if held == options.count => {}
        Ok(Ok(held)) => {
            return Err(Error::new(format!(
                "only {held} of {} connections were held",
                options.count
            )))
        }
        Ok(Err(error)) => return Err(error),
        Err(_) => {
            return Err(Error::new(format!(
                "not all {} connections were held within {} s",
                options.count,
                options.within.as_secs_f64()
            )))
        }
    }

    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "held {}", options.count)
        .and_then(|()| stdout.flush())
        .map_err(|error| Error::new(format!("cannot write to stdout: {error}")))?;
    drop(stdout);
    stdin_closed().await;
    Ok(())
}

/// Resolves when stdin reaches its end or fails.
async fn stdin_closed() {
    // A thread rather than `tokio::io::stdin`, whose blocking read would
    // hold up the runtime's shutdown.
    let (closed_tx, closed_rx) = oneshot::channel();
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        let mut buffer = [0; 256];
        while matches!(stdin.read(&mut buffer), Ok(n) if n > 0) {}
        let _ = closed_tx.send(());
    });
    let _ = closed_rx.await;
}

/// What a [`Target`] opens, from its URL's scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `ws://`: a WebSocket.
    WebSocket,
    /// `http://`: an HTTP/1.1 connection carrying one `GET` whose response
    /// streams (SSE, NDJSON).
    Stream,
}

/// A URL to hold connections to, and the loopback address it names.
#[derive(Debug, Clone)]
pub struct Target {
    url: Uri,
    address: SocketAddr,
    kind: Kind,
}

/// One open connection, its first message received.
#[derive(Debug)]
pub enum Held {
    /// A WebSocket.
    WebSocket(Box<WebSocketStream<TcpStream>>),
    /// A streaming response over HTTP/1.1.
    Stream(http1::Body),
}

impl Held {
    /// Reads the connection (answering pings, taking heartbeats) until it
    /// ends, and says why it ended.
    pub async fn hold(self) -> String {
        match self {
            Held::WebSocket(mut socket) => loop {
                match socket.next().await {
                    Some(Ok(Message::Close(frame))) => {
                        break format!("closed by the server: {frame:?}")
                    }
                    Some(Ok(_)) => {}
                    Some(Err(error)) => break error.to_string(),
                    None => break "closed".to_owned(),
                }
            },
            Held::Stream(mut body) => loop {
                match body.next_chunk().await {
                    Ok(Some(_)) => {}
                    Ok(None) => break "the response ended".to_owned(),
                    Err(error) => break error.to_string(),
                }
            },
        }
    }
}

impl Target {
    /// Reads a `ws://` or `http://` URL and resolves its host.
    ///
    /// # Errors
    ///
    /// When `url` is not a `ws://` or `http://` URL, its host does not
    /// resolve, or it resolves to any address that is not loopback.
    pub async fn resolve(url: &str) -> Result<Target> {
        let parsed: Uri = url
            .parse()
            .map_err(|error| Error::new(format!("{url:?} is not a URL: {error}")))?;
        let kind = match parsed.scheme_str() {
            Some("ws") => Kind::WebSocket,
            Some("http") => Kind::Stream,
            _ => {
                return Err(Error::new(format!(
                    "{url:?} is neither a ws:// nor an http:// URL"
                )))
            }
        };
        let host = parsed
            .host()
            .ok_or_else(|| Error::new(format!("{url:?} has no host")))?;
        let port = parsed.port_u16().unwrap_or(80);
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let addresses: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
            .await
            .map_err(|error| Error::new(format!("cannot resolve {host}: {error}")))?
            .collect();
        match addresses.first() {
            Some(&address) if addresses.iter().all(|a| a.ip().is_loopback()) => Ok(Target {
                url: parsed,
                address,
                kind,
            }),
            Some(_) => Err(Error::new(format!(
                "{url:?} is not on a loopback address ({addresses:?}); \
                 the benchmark connects to loopback only"
            ))),
            None => Err(Error::new(format!("{host} resolves to no address"))),
        }
    }

    /// What it opens.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// Opens a connection and waits for its first message: a WebSocket's
    /// first text message, or a streaming response's first chunk of body.
    ///
    /// # Errors
    ///
    /// When the TCP connection or the handshake fails; for a WebSocket,
    /// when the socket ends or carries a binary message before a text
    /// message; for a stream, when the `GET` does not answer `200` or its
    /// body ends or fails before its first chunk.
    pub async fn open(&self) -> Result<Held> {
        match self.kind {
            Kind::WebSocket => self.open_websocket().await,
            Kind::Stream => self.open_stream().await,
        }
    }

    async fn open_stream(&self) -> Result<Held> {
        let path = self.url.path_and_query().map_or("/", |path| path.as_str());
        let mut body = http1::stream(self.address, path).await?;
        loop {
            match body.next_chunk().await? {
                Some(chunk) if chunk.is_empty() => {}
                Some(_) => return Ok(Held::Stream(body)),
                None => {
                    return Err(Error::new(format!(
                        "GET {path}: the response ended before its first chunk"
                    )))
                }
            }
        }
    }

    async fn open_websocket(&self) -> Result<Held> {
        let mut socket = ws::connect(self.address, &self.url.to_string()).await?;
        loop {
            match socket.next().await {
                Some(Ok(Message::Text(_))) => return Ok(Held::WebSocket(Box::new(socket))),
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
                Some(Ok(Message::Binary(_))) => {
                    return Err(Error::new(
                        "a binary message came before the first text message",
                    ))
                }
                Some(Ok(Message::Close(frame))) => {
                    return Err(Error::new(format!(
                        "closed before the first text message: {frame:?}"
                    )))
                }
                Some(Err(error)) => {
                    return Err(Error::new(format!(
                        "failed before the first text message: {error}"
                    )))
                }
                None => return Err(Error::new("ended before the first text message")),
            }
        }
    }

    /// Opens a connection, waits for its first message, then closes it (a
    /// WebSocket with a close handshake; a stream by dropping its
    /// connection, as a browser closing an `EventSource` does); all within
    /// `within`.
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open), and when it all takes longer than `within`.
    pub async fn open_and_close(&self, within: Duration) -> Result<()> {
        tokio::time::timeout(within, async {
            match self.open().await? {
                Held::WebSocket(mut socket) => {
                    socket
                        .close(None)
                        .await
                        .map_err(|error| Error::new(format!("cannot close: {error}")))?;
                    while let Some(Ok(_)) = socket.next().await {}
                }
                // Dropping the body ends the connection's task, which
                // closes the socket.
                Held::Stream(body) => drop(body),
            }
            Ok(())
        })
        .await
        .map_err(|_| {
            Error::new(format!(
                "a connection to {} was not opened and closed within {} s",
                self.url,
                within.as_secs_f64()
            ))
        })?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_scheme_says_what_is_opened() {
        let ws = Target::resolve("ws://127.0.0.1:9/channels/idle/ws")
            .await
            .unwrap();
        assert_eq!(ws.kind(), Kind::WebSocket);
        let sse = Target::resolve("http://127.0.0.1:9/channels/idle/sse?from=now")
            .await
            .unwrap();
        assert_eq!(sse.kind(), Kind::Stream);
        assert_eq!(sse.address, "127.0.0.1:9".parse().unwrap());
        assert_eq!(
            Target::resolve("http://[::1]:9/x").await.unwrap().address,
            "[::1]:9".parse().unwrap()
        );
        for url in [
            "https://127.0.0.1:9/x",
            "wss://127.0.0.1:9/x",
            "127.0.0.1:9",
            "nonsense",
        ] {
            let error = Target::resolve(url).await.unwrap_err().to_string();
            assert!(error.contains("URL"), "{url}: {error}");
        }
    }

    #[tokio::test]
    async fn only_loopback_is_a_target() {
        let error = Target::resolve("http://192.0.2.1:80/channels/idle/sse")
            .await
            .unwrap_err()
            .to_string();
        assert!(error.contains("loopback"), "{error}");
    }
}
