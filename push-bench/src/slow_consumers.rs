//! Slow consumers at scale: readers that keep up, measured with and
//! without clients that stopped reading, side by side; and push-server's
//! memory while the stalled clients hold their streams.
//!
//! ```text
//! $ push-bench slow-consumers --stalled 100 --readers 100
//! ```
//!
//! Two runs, each on a fresh `push-server` (next to `push-bench`, pinned to
//! core 0, with `--subscriber-buffer-bytes` as given):
//!
//! - **without**: `--readers` SSE streams over HTTP/1.1 read everything
//!   while events are published at `--rate` (the load of [`crate::fanout`],
//!   in this process): every delivery's publish-to-receive latency,
//!   and whether each reader got every event once and in order;
//! - **with**: the same, after `--stalled` clients have subscribed to the
//!   same channel (half SSE, half WebSocket, over HTTP/1.1), taken their
//!   position and then stopped reading: they never read their socket
//!   again, and their receive buffers are small (4 KiB asked of the
//!   kernel), so what the server sends them backs up in the server at
//!   once rather than in the client's kernel.
//!
//! Meanwhile it reads the server's resident memory every 250 ms and the
//! channel's subscriber count (`GET /channels/{name}`) every second.
//!
//! What should hold: push-server buffers at most `subscriber_buffer_bytes`
//! for a subscriber beyond the retained history, then sends it `lagged`;
//! over HTTP/1.1 a client that has not taken that signal within the lag
//! grace (5 s) is disconnected. So the memory of the **with** run may
//! exceed the peak of the **without** run by at most
//!
//! ```text
//! stalled × (subscriber_buffer_bytes + 64 KiB)
//! ```
//!
//! (64 KiB per connection for its state and the part of an event being
//! written), the **bound**; and the readers' p99 latency with the stalled
//! clients should stay within `--latency-margin-percent` of the p99
//! without them, plus `--latency-margin-ms` (what a busy two-core machine
//! varies by between runs of the same load). [`SlowConsumersReport::check`]
//! fails when the memory passes the bound or a reader missed an event, and,
//! unless asked not to (the CI's quick mode, whose debug build and shared
//! machine make latencies noise), when the p99 passes the margin.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt as _;
use http::{Method, StatusCode};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::WebSocketStream;

use crate::child::PinnedChild;
use crate::fanout::{self, FanoutOptions, FanoutReport, LoadProtocol};
use crate::h2_compare::{FanoutShape, SERVER_CORE};
use crate::http1::KeepAlive;
use crate::proc;
use crate::server::{parse_listening_line, Server};
use crate::technique::Technique;
use crate::{Error, Result};

/// How long push-server may take to print the address it listens on.
const STARTUP: Duration = Duration::from_secs(30);

/// The wait before the baseline reading.
const SETTLE: Duration = Duration::from_secs(1);

/// How often the memory is read.
const SAMPLE_EVERY: Duration = Duration::from_millis(250);

/// The receive buffer a stalled client asks the kernel for.
pub const STALLED_RECEIVE_BUFFER: u32 = 4 * 1024;

/// The memory allowed per stalled connection beyond its
/// `subscriber_buffer_bytes`: its state and the part of an event being
/// written.
pub const PER_CONNECTION_ALLOWANCE: u64 = 64 * 1024;

/// The channel every client subscribes to.
const CHANNEL: &str = "slow";

/// How the runs go.
#[derive(Debug, Clone)]
pub struct SlowConsumersOptions {
    /// Clients that subscribe and stop reading (half SSE, half WebSocket).
    pub stalled: usize,
    /// The fan-out the readers make: `streams` is the number of readers.
    pub shape: FanoutShape,
    /// push-server's `--subscriber-buffer-bytes`.
    pub subscriber_buffer_bytes: usize,
    /// How far the readers' p99 with the stalled clients may pass the p99
    /// without them, in percent of the latter…
    pub latency_margin_percent: f64,
    /// …plus this much.
    pub latency_margin: Duration,
    /// Whether [`SlowConsumersReport::check`] holds the p99 to the margin.
    pub check_latency: bool,
    /// How long subscribing, and the wait for deliveries after the last
    /// publish, may each take.
    pub within: Duration,
}

/// One run.
#[derive(Debug, Clone)]
pub struct Run {
    /// Stalled clients in it.
    pub stalled: usize,
    /// What the readers received, and their latencies.
    pub readers: FanoutReport,
    /// The server's resident memory before any client, in KiB.
    pub baseline_kib: u64,
    /// Its resident memory every 250 ms from the first stalled client (or
    /// reader) to the end, in KiB.
    pub rss_kib: Vec<u64>,
    /// The channel's subscribers every second over the same time.
    pub subscribers: Vec<u64>,
    /// Subscribers still attached once the readers were done (the readers'
    /// streams are still open then).
    pub subscribers_at_end: u64,
}

impl Run {
    /// The highest memory reading, in KiB.
    pub fn peak_kib(&self) -> u64 {
        self.rss_kib
            .iter()
            .copied()
            .max()
            .unwrap_or(self.baseline_kib)
    }
}

/// Both runs.
#[derive(Debug, Clone)]
pub struct SlowConsumersReport {
    /// Readers only.
    pub without: Run,
    /// Readers and stalled clients.
    pub with: Run,
    /// The `--subscriber-buffer-bytes` both ran with.
    pub subscriber_buffer_bytes: usize,
    /// Bytes of data per event.
    pub event_bytes: usize,
    /// The margin's percent.
    pub latency_margin_percent: f64,
    /// The margin's constant.
    pub latency_margin: Duration,
    /// Whether the p99 is held to the margin.
    pub check_latency: bool,
}

impl SlowConsumersReport {
    /// The most the **with** run's memory may reach, in KiB: the peak of
    /// the **without** run plus `stalled × (subscriber_buffer_bytes +
    /// 64 KiB)`.
    pub fn bound_kib(&self) -> u64 {
        let per_client = self.subscriber_buffer_bytes as u64 + PER_CONNECTION_ALLOWANCE;
        self.without.peak_kib() + (self.with.stalled as u64 * per_client).div_ceil(1024)
    }

    /// The most the readers' p99 may be with the stalled clients, in
    /// microseconds.
    pub fn p99_limit_us(&self) -> u64 {
        let base = self.without.readers.latency_p99_us as f64;
        (base * (1.0 + self.latency_margin_percent / 100.0)) as u64
            + self.latency_margin.as_micros() as u64
    }

    /// Fails when a reader of either run missed an event or got one twice,
    /// the memory of the **with** run passed the bound, or (when held to
    /// it) the readers' p99 passed the margin.
    ///
    /// # Errors
    ///
    /// As said, naming every fault.
    pub fn check(&self) -> Result<()> {
        let mut faults = Vec::new();
        for (name, run) in [("without", &self.without), ("with", &self.with)] {
            if let Some(fault) = run.readers.fault() {
                faults.push(format!("the readers {name} stalled clients: {fault}"));
            }
        }
        if self.with.peak_kib() > self.bound_kib() {
            faults.push(format!(
                "the memory with stalled clients peaked at {} KiB, over the bound of {} KiB",
                self.with.peak_kib(),
                self.bound_kib()
            ));
        }
        if self.check_latency && self.with.readers.latency_p99_us > self.p99_limit_us() {
            faults.push(format!(
                "the readers' p99 was {} µs with stalled clients, over the margin's {} µs \
                 ({} µs without)",
                self.with.readers.latency_p99_us,
                self.p99_limit_us(),
                self.without.readers.latency_p99_us
            ));
        }
        match faults.is_empty() {
            true => Ok(()),
            false => Err(Error::new(format!(
                "the slow-consumers run failed: {}",
                faults.join("; ")
            ))),
        }
    }

    /// The report as a table, for people.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let r = &self.without.readers;
        let _ = writeln!(
            out,
            "slow consumers: {} SSE readers over HTTP/1.1, {} events of {} bytes at {}/s \
             ({:.1} s); --subscriber-buffer-bytes {}",
            r.streams,
            r.published,
            self.event_bytes,
            (r.published as f64 / r.publish_time.as_secs_f64().max(1e-9)).round(),
            r.publish_time.as_secs_f64(),
            self.subscriber_buffer_bytes
        );
        let _ = writeln!(
            out,
            "{:<26} {:>8} {:>10} {:>6} {:>6} {:>6} {:>9} {:>9} {:>10} {:>10} {:>10}",
            "run",
            "stalled",
            "delivered",
            "lost",
            "disord",
            "ended",
            "p50 µs",
            "p99 µs",
            "base KiB",
            "peak KiB",
            "end subs"
        );
        for (name, run) in [
            ("without stalled clients", &self.without),
            ("with stalled clients", &self.with),
        ] {
            let r = &run.readers;
            let _ = writeln!(
                out,
                "{name:<26} {:>8} {:>10} {:>6} {:>6} {:>6} {:>9} {:>9} {:>10} {:>10} {:>10}",
                run.stalled,
                r.deliveries,
                r.lost,
                r.disordered,
                r.ended,
                r.latency_p50_us,
                r.latency_p99_us,
                run.baseline_kib,
                run.peak_kib(),
                run.subscribers_at_end
            );
        }
        let _ = writeln!(
            out,
            "memory bound with stalled clients: {} KiB (peak without) + {} × ({} + {}) bytes \
             = {} KiB; peak with: {} KiB",
            self.without.peak_kib(),
            self.with.stalled,
            self.subscriber_buffer_bytes,
            PER_CONNECTION_ALLOWANCE,
            self.bound_kib(),
            self.with.peak_kib()
        );
        let _ = writeln!(
            out,
            "readers' p99: {} µs without, {} µs with ({:+.1}%); margin: {}% + {} ms = {} µs{}",
            self.without.readers.latency_p99_us,
            self.with.readers.latency_p99_us,
            (self.with.readers.latency_p99_us as f64
                / self.without.readers.latency_p99_us.max(1) as f64
                - 1.0)
                * 100.0,
            self.latency_margin_percent,
            self.latency_margin.as_millis(),
            self.p99_limit_us(),
            if self.check_latency {
                ""
            } else {
                " (not checked in quick mode)"
            }
        );
        for (name, run) in [("without", &self.without), ("with", &self.with)] {
            let rss: Vec<String> = run
                .rss_kib
                .iter()
                .step_by(4)
                .map(|kib| kib.to_string())
                .collect();
            let subscribers: Vec<String> = run.subscribers.iter().map(|n| n.to_string()).collect();
            let _ = writeln!(out, "RSS KiB each second, {name}: {}", rss.join(" "));
            let _ = writeln!(
                out,
                "channel subscribers each second, {name}: {}",
                subscribers.join(" ")
            );
        }
        out
    }
}

/// Runs both (see the module docs).
///
/// # Errors
///
/// When push-server cannot be started or its memory read, a stalled client
/// cannot subscribe, or the readers' fan-out fails (see
/// [`fanout::run`]).
pub async fn run(options: &SlowConsumersOptions) -> Result<SlowConsumersReport> {
    if options.shape.streams == 0 {
        return Err(Error::new("give at least one reader"));
    }
    if options.shape.event_bytes > options.subscriber_buffer_bytes / 2 {
        return Err(Error::new(
            "--subscriber-buffer-bytes must be at least twice --event-bytes",
        ));
    }
    let without = measure(options, 0).await?;
    let with = measure(options, options.stalled).await?;
    Ok(SlowConsumersReport {
        without,
        with,
        subscriber_buffer_bytes: options.subscriber_buffer_bytes,
        event_bytes: options.shape.event_bytes,
        latency_margin_percent: options.latency_margin_percent,
        latency_margin: options.latency_margin,
        check_latency: options.check_latency,
    })
}

async fn measure(options: &SlowConsumersOptions, stalled: usize) -> Result<Run> {
    let (program, mut args) = Server::Push.command()?;
    args.extend([
        "--subscriber-buffer-bytes".to_owned(),
        options.subscriber_buffer_bytes.to_string(),
        // push-server holds the buffer to at least twice the largest event.
        "--max-event-bytes".to_owned(),
        (options.subscriber_buffer_bytes / 2).to_string(),
    ]);
    let mut server = PinnedChild::spawn("push-server", SERVER_CORE, &program, &args)?;
    let address = server
        .wait_for_line("the address it listens on", STARTUP, parse_listening_line)
        .await?;
    let pid = server.pid();
    tokio::time::sleep(SETTLE).await;
    let baseline = proc::memory(pid)?;

    let rss = Arc::new(Mutex::new(Vec::new()));
    let subscribers = Arc::new(Mutex::new(Vec::new()));
    let sampler = tokio::spawn(sample(
        address,
        pid,
        Arc::clone(&rss),
        Arc::clone(&subscribers),
    ));

    let mut held = Vec::with_capacity(stalled);
    for number in 0..stalled {
        let client = match number % 2 {
            0 => Stalled::Sse {
                _stream: stall_sse(address).await?,
            },
            _ => Stalled::Ws {
                _socket: Box::new(stall_ws(address).await?),
            },
        };
        held.push(client);
    }
    if stalled > 0 {
        eprintln!(
            "slow-consumers: {stalled} stalled clients have their position and stopped reading"
        );
    }

    let readers = fanout::run(&FanoutOptions {
        server: address,
        technique: Technique::Sse,
        protocol: LoadProtocol::Http1,
        publish_to: None,
        server_pid: pid,
        server_core: SERVER_CORE,
        channel: CHANNEL.to_owned(),
        shape: options.shape.clone(),
        within: options.within,
        count_writes: false,
    })
    .await?;
    eprintln!("slow-consumers: {readers}");
    // Give the server its lag grace to drop the stalled clients, and read
    // the memory meanwhile.
    tokio::time::sleep(Duration::from_secs(6)).await;
    sampler.abort();
    let subscribers_at_end = describe(&mut KeepAlive::new(address)).await?;
    drop(held);
    server.ensure_running()?;
    server.stop().await?;
    let rss_kib = rss.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let subscribers = subscribers
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    Ok(Run {
        stalled,
        readers,
        baseline_kib: baseline.rss_kib,
        rss_kib,
        subscribers,
        subscribers_at_end,
    })
}

/// A client that subscribed and stopped reading; dropping it closes it.
enum Stalled {
    Sse {
        _stream: TcpStream,
    },
    Ws {
        _socket: Box<WebSocketStream<TcpStream>>,
    },
}

/// A TCP connection to `address` with a small receive buffer.
async fn connect_small(address: SocketAddr) -> Result<TcpStream> {
    let failed = |error: std::io::Error| {
        Error::new(format!(
            "a stalled client cannot connect to {address}: {error}"
        ))
    };
    let socket = match address {
        SocketAddr::V4(_) => TcpSocket::new_v4(),
        SocketAddr::V6(_) => TcpSocket::new_v6(),
    }
    .map_err(failed)?;
    socket
        .set_recv_buffer_size(STALLED_RECEIVE_BUFFER)
        .map_err(failed)?;
    socket.connect(address).await.map_err(failed)
}

/// Subscribes to SSE over HTTP/1.1 and reads up to the position block.
async fn stall_sse(address: SocketAddr) -> Result<TcpStream> {
    let mut stream = connect_small(address).await?;
    let path = Technique::Sse.path(CHANNEL);
    let request = format!("GET {path} HTTP/1.1\r\nhost: {address}\r\n\r\n");
    let failed = |error: std::io::Error| {
        Error::new(format!("a stalled client's GET {path} failed: {error}"))
    };
    stream.write_all(request.as_bytes()).await.map_err(failed)?;
    let mut seen = Vec::new();
    let mut buffer = [0u8; 1024];
    let read_position = async {
        loop {
            let read = stream.read(&mut buffer).await.map_err(failed)?;
            if read == 0 {
                return Err(Error::new(format!(
                    "GET {path} closed before the position: {}",
                    String::from_utf8_lossy(&seen)
                )));
            }
            seen.extend_from_slice(&buffer[..read]);
            let text = String::from_utf8_lossy(&seen);
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                if !head.starts_with("HTTP/1.1 200") {
                    return Err(Error::new(format!("GET {path} answered {head}")));
                }
                if body.contains("id: ") && body.contains("\n\n") {
                    return Ok(());
                }
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read_position)
        .await
        .map_err(|_| Error::new(format!("GET {path} sent no position within 10 s")))??;
    Ok(stream)
}

/// Opens a WebSocket over HTTP/1.1 and reads its first message (the
/// position).
async fn stall_ws(address: SocketAddr) -> Result<WebSocketStream<TcpStream>> {
    let stream = connect_small(address).await?;
    let url = format!("ws://{address}{}", Technique::Ws.path(CHANNEL));
    let config = WebSocketConfig::default().read_buffer_size(crate::ws::CLIENT_READ_BUFFER);
    let (mut socket, _) = tokio_tungstenite::client_async_with_config(&url, stream, Some(config))
        .await
        .map_err(|error| Error::new(format!("handshake with {url} failed: {error}")))?;
    match tokio::time::timeout(Duration::from_secs(10), socket.next()).await {
        Ok(Some(Ok(_))) => Ok(socket),
        _ => Err(Error::new(format!("{url} sent no position within 10 s"))),
    }
}

/// Reads the memory every [`SAMPLE_EVERY`] and the channel's subscribers
/// every fourth time, until aborted.
async fn sample(
    address: SocketAddr,
    pid: u32,
    rss: Arc<Mutex<Vec<u64>>>,
    subscribers: Arc<Mutex<Vec<u64>>>,
) {
    let mut every = tokio::time::interval(SAMPLE_EVERY);
    let mut connection = KeepAlive::new(address);
    for tick in 0u64.. {
        every.tick().await;
        if let Ok(memory) = proc::memory(pid) {
            rss.lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(memory.rss_kib);
        }
        if tick % 4 == 0 {
            if let Ok(count) = describe(&mut connection).await {
                subscribers
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(count);
            }
        }
    }
}

/// The channel's `subscribers`, from `GET /channels/{name}`.
async fn describe(connection: &mut KeepAlive) -> Result<u64> {
    let path = format!("/channels/{CHANNEL}");
    let (status, answer) = connection.request(Method::GET, &path, Bytes::new()).await?;
    serde_json::from_slice::<serde_json::Value>(&answer)
        .ok()
        .filter(|_| status == StatusCode::OK)
        .and_then(|info| info["subscribers"].as_u64())
        .ok_or_else(|| {
            Error::new(format!(
                "GET {path} answered {status} {}, not 200 with a subscriber count",
                String::from_utf8_lossy(&answer)
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn readers(p99_us: u64, lost: u64) -> FanoutReport {
        FanoutReport {
            streams: 2,
            published: 10,
            deliveries: 20 - lost,
            lost,
            disordered: 0,
            ended: 0,
            server_cpu_ticks: 1,
            server_core_busy_ticks: 1,
            ticks_per_second: 100,
            publish_time: Duration::from_secs(1),
            drain_time: Duration::ZERO,
            latency_p50_us: 100,
            latency_p99_us: p99_us,
            writes: None,
        }
    }

    fn run(stalled: usize, peak_kib: u64, p99_us: u64) -> Run {
        Run {
            stalled,
            readers: readers(p99_us, 0),
            baseline_kib: 5_000,
            rss_kib: vec![5_000, peak_kib, 6_000],
            subscribers: vec![2],
            subscribers_at_end: 2,
        }
    }

    fn report(with: Run, check_latency: bool) -> SlowConsumersReport {
        SlowConsumersReport {
            without: run(0, 10_000, 1_000),
            with,
            subscriber_buffer_bytes: 256 * 1024,
            event_bytes: 512,
            latency_margin_percent: 50.0,
            latency_margin: Duration::from_millis(2),
            check_latency,
        }
    }

    #[test]
    fn the_bound_is_the_peak_without_plus_a_buffer_and_an_allowance_per_stalled_client() {
        let report = report(run(10, 12_000, 1_000), true);
        assert_eq!(report.bound_kib(), 10_000 + 10 * (256 + 64));
        assert_eq!(report.p99_limit_us(), 1_500 + 2_000);
        assert!(report.check().is_ok());
        assert!(report
            .render()
            .contains("= 13200 KiB; peak with: 12000 KiB"));
    }

    #[test]
    fn memory_past_the_bound_fails_and_latency_only_when_checked() {
        let over = report(run(10, 13_201, 1_000), true).check().unwrap_err();
        assert!(
            over.to_string().contains("over the bound of 13200 KiB"),
            "{over}"
        );
        assert!(report(run(10, 12_000, 3_501), true).check().is_err());
        assert!(report(run(10, 12_000, 3_501), false).check().is_ok());
        let mut lossy = run(10, 12_000, 1_000);
        lossy.readers = readers(1_000, 1);
        assert!(report(lossy, false).check().is_err());
    }
}
