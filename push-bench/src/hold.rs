//! The client that opens many WebSocket connections and holds them open.
//!
//! ```text
//! $ push-bench hold --url ws://127.0.0.1:40123/channels/idle/ws --count 10000
//! held 10000
//! ```
//!
//! It opens `count` connections, at most a given number of handshakes at a
//! time, and counts a connection as held once its first text message has
//! come (for push, the `position` signal: the connection is subscribed).
//! Once every one is held it prints `held N` and keeps them open, reading
//! each so pings are answered, until its stdin closes or it is killed.
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

use crate::{proc, ws, Error, Result};

/// File descriptors kept for everything but the connections (stdio, the
/// runtime, the listener in a server).
pub const SPARE_FILES: u64 = 64;

/// What to hold.
#[derive(Debug, Clone)]
pub struct HoldOptions {
    /// A `ws://` URL on a loopback address.
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
/// When the URL is not a `ws://` URL on a loopback address, when `count`
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
            let mut socket = match opened {
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
            let reason = loop {
                match socket.next().await {
                    Some(Ok(Message::Close(frame))) => {
                        break format!("closed by the server: {frame:?}")
                    }
                    Some(Ok(_)) => {}
                    Some(Err(error)) => break error.to_string(),
                    None => break "closed".to_owned(),
                }
            };
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

/// A WebSocket URL and the loopback address it names.
#[derive(Debug, Clone)]
pub struct Target {
    url: Uri,
    address: SocketAddr,
}

impl Target {
    /// Reads a `ws://` URL and resolves its host.
    ///
    /// # Errors
    ///
    /// When `url` is not a `ws://` URL, its host does not resolve, or it
    /// resolves to any address that is not loopback.
    pub async fn resolve(url: &str) -> Result<Target> {
        let parsed: Uri = url
            .parse()
            .map_err(|error| Error::new(format!("{url:?} is not a URL: {error}")))?;
        if parsed.scheme_str() != Some("ws") {
            return Err(Error::new(format!("{url:?} is not a ws:// URL")));
        }
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
            }),
            Some(_) => Err(Error::new(format!(
                "{url:?} is not on a loopback address ({addresses:?}); \
                 the benchmark connects to loopback only"
            ))),
            None => Err(Error::new(format!("{host} resolves to no address"))),
        }
    }

    /// Opens a connection and waits for its first text message.
    ///
    /// # Errors
    ///
    /// When the TCP connection or the handshake fails, or the socket ends or
    /// carries a binary message before a text message.
    pub async fn open(&self) -> Result<WebSocketStream<TcpStream>> {
        let mut socket = ws::connect(self.address, &self.url.to_string()).await?;
        loop {
            match socket.next().await {
                Some(Ok(Message::Text(_))) => return Ok(socket),
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

    /// Opens a connection, waits for its first text message, then closes it
    /// with a close handshake; all within `within`.
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open), and when it all takes longer than `within`.
    pub async fn open_and_close(&self, within: Duration) -> Result<()> {
        tokio::time::timeout(within, async {
            let mut socket = self.open().await?;
            socket
                .close(None)
                .await
                .map_err(|error| Error::new(format!("cannot close: {error}")))?;
            while let Some(Ok(_)) = socket.next().await {}
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
