//! `push-bench`: the benchmark harness of push.
//!
//! ```text
//! cargo build --release -p push-server -p push-bench
//! target/release/push-bench idle-memory --connections 10000 --rounds 2
//! target/release/push-bench idle-memory --technique sse --connections 10000 --rounds 2
//! target/release/push-bench longpoll-compare --servers push,hyper-ok --rounds 3
//! target/release/push-bench h2-compare --before OLD/push-server --after target/release/push-server
//! target/release/push-bench fanout-compare --techniques sse,ndjson,ws --quick --rounds 1 \
//!     --servers push,axum-sse,raw-writer,hyper-stream,tungstenite-default
//! target/release/push-bench soak --subscribers 1000 --events 100000   # reconnect soak
//! target/release/push-bench soak --quick                              # its CI size
//! target/release/push-bench slow-consumers --stalled 100 --readers 100
//! target/release/push-bench slow-consumers --quick
//! ```
//!
//! See the crate's `README.md` for what each command measures.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use push_bench::alloc_count::{self, AllocCountOptions};
use push_bench::baseline::{self, Baseline};
use push_bench::fanout::{self, FanoutOptions, LoadProtocol};
use push_bench::fanout_compare::{self, FanoutCompareOptions, Regime};
use push_bench::h2_compare::{self, FanoutShape, H2CompareOptions, LongPollShape};
use push_bench::hold::{self, HoldOptions};
use push_bench::idle::{self, IdleMemoryOptions};
use push_bench::longpoll::{self, CycleShape, LongPollOptions};
use push_bench::longpoll_compare::{self, LongPollCompareOptions};
use push_bench::redis_compare::{self, RedisCompareOptions};
use push_bench::server::Server;
use push_bench::slow_consumers::{self, SlowConsumersOptions};
use push_bench::soak::{self, Kind, SoakOptions};
use push_bench::technique::Technique;

/// The benchmark harness of push: servers, load and the runs that compare
/// push with baselines.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve a baseline: a server written the way a user would without push.
    Baseline {
        /// Which baseline.
        #[arg(value_enum)]
        baseline: Baseline,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: SocketAddr,
    },
    /// Open WebSocket connections (ws:// URL) or HTTP/1.1 streaming
    /// responses (http:// URL), print `held N` once each has its first
    /// message or chunk, and hold them until stdin closes.
    Hold {
        /// A ws:// or http:// URL on a loopback address.
        #[arg(long)]
        url: String,
        /// Connections to hold.
        #[arg(long, default_value_t = 10_000)]
        count: usize,
        /// Most handshakes in flight at once.
        #[arg(long, default_value_t = 256)]
        handshakes_in_flight: usize,
        /// Fail unless every connection is held within this many seconds.
        #[arg(long, default_value_t = 120)]
        within_secs: u64,
    },
    /// Measure the server memory per idle connection (WebSocket, SSE or
    /// NDJSON), for push and baselines side by side.
    IdleMemory {
        /// What the connections speak: ws, sse or ndjson (the last two over
        /// HTTP/1.1, a connection per stream).
        #[arg(long, value_enum, default_value_t = Technique::Ws)]
        technique: Technique,
        /// Connections held at once.
        #[arg(long, default_value_t = 10_000)]
        connections: usize,
        /// Rounds; each measures every server once.
        #[arg(long, default_value_t = 2)]
        rounds: u32,
        /// Servers to measure, in order within each round, among those that
        /// serve the technique [default: ws: push,tungstenite-default; sse:
        /// push,hyper-stream,axum-sse,raw-writer; ndjson: push,hyper-stream]
        #[arg(long, value_enum, value_delimiter = ',')]
        servers: Option<Vec<Server>>,
        /// Milliseconds between the warm-up connection and the first reading.
        #[arg(long, default_value_t = 1000)]
        settle_before_ms: u64,
        /// Milliseconds between `held N` and the second reading.
        #[arg(long, default_value_t = 2000)]
        settle_after_ms: u64,
        /// Fail unless every connection is held within this many seconds.
        #[arg(long, default_value_t = 120)]
        within_secs: u64,
        /// Print the report as JSON rather than tables.
        #[arg(long)]
        json: bool,
    },
    /// Compare two push-server builds over h2c, side by side: the long-poll
    /// cycle rate (h2load) and SSE fan-out deliveries per server CPU second.
    H2Compare {
        /// The push-server binary measured as `before`.
        #[arg(long)]
        before: PathBuf,
        /// The push-server binary measured as `after`.
        #[arg(long)]
        after: PathBuf,
        /// Rounds; each measures both builds on both workloads, in
        /// alternating order.
        #[arg(long, default_value_t = 3)]
        rounds: u32,
        /// Measured long-poll requests per run (`h2load -n`).
        #[arg(long, default_value_t = 200_000)]
        requests: u64,
        /// Unmeasured long-poll requests before each measured run.
        #[arg(long, default_value_t = 20_000)]
        warm_up_requests: u64,
        /// h2load connections (`-c`).
        #[arg(long, default_value_t = 10)]
        clients: u32,
        /// h2load streams in flight per connection (`-m`).
        #[arg(long, default_value_t = 10)]
        streams_per_client: u32,
        /// Events retained on the long-polled channel.
        #[arg(long, default_value_t = 3)]
        retained: usize,
        /// The SSE fan-out.
        #[command(flatten)]
        fanout: FanoutShape,
        /// The longest one step (an h2load run, subscribing, draining) may
        /// take, in seconds.
        #[arg(long, default_value_t = 120)]
        within_secs: u64,
    },
    /// Fan-out (SSE, NDJSON, WebSocket) on DESIGN.md's three regimes:
    /// push-server against the baselines, side by side in one run.
    FanoutCompare {
        /// The servers, comma-separated; the first is compared with each
        /// of the others. A server that does not serve a technique (or
        /// h2c) is left out of that technique, and the report says so.
        #[arg(long, value_delimiter = ',', default_value = "push")]
        servers: Vec<Server>,
        /// The techniques, comma-separated: sse, ndjson, ws.
        #[arg(long, value_enum, value_delimiter = ',', default_value = "sse")]
        techniques: Vec<Technique>,
        /// The regimes, comma-separated.
        #[arg(long, value_enum, value_delimiter = ',', default_values_t = [Regime::Wide, Regime::Middle, Regime::Fast])]
        regimes: Vec<Regime>,
        /// Rounds; each measures every server on every technique it serves
        /// and every regime.
        #[arg(long, default_value_t = 2)]
        rounds: u32,
        /// What the load speaks: http1 (a connection per stream) or h2c
        /// (SSE and NDJSON only).
        #[arg(long, value_enum, default_value_t = LoadProtocol::Http1)]
        protocol: LoadProtocol,
        /// Bytes of data per event.
        #[arg(long, default_value_t = 100)]
        event_bytes: usize,
        /// Count the server's write system calls over each measured window
        /// with `perf stat` on the syscall tracepoints (perf must be
        /// installed: `apt-get install -y linux-perf`, and run as root) and
        /// report writes per delivery.
        #[arg(long)]
        count_writes: bool,
        /// Shrinks every regime to a smoke test of the harness (well under
        /// two minutes); its figures say nothing about speed.
        #[arg(long)]
        quick: bool,
        /// Subscribing, and the wait for deliveries, may each take this
        /// many seconds.
        #[arg(long, default_value_t = 60)]
        within_secs: u64,
    },
    /// The SSE fan-out on the in-memory hub against the same fan-out
    /// across two push-server nodes sharing a Redis of the run's own
    /// (publishing on one, subscribing on the other), in alternating
    /// rounds.
    RedisCompare {
        /// Rounds; each measures both modes.
        #[arg(long, default_value_t = 3)]
        rounds: u32,
        /// The SSE fan-out.
        #[command(flatten)]
        fanout: FanoutShape,
        /// Subscribing, and the wait for deliveries, may each take this
        /// many seconds.
        #[arg(long, default_value_t = 60)]
        within_secs: u64,
    },
    /// Count push-server's heap allocations per delivery under valgrind's
    /// DHAT: four runs of the SSE fan-out over HTTP/1.1, whose differences
    /// separate deliveries from connections and publishes.
    AllocCount {
        /// The technique the streams subscribe with, over HTTP/1.1.
        #[arg(long, value_enum, default_value_t = Technique::Sse)]
        technique: Technique,
        /// Streams in the smaller runs (the larger have twice as many).
        #[arg(long, default_value_t = 100)]
        streams: usize,
        /// Events in the smaller runs (the larger have twice as many).
        #[arg(long, default_value_t = 100)]
        publishes: usize,
        /// Events published per second; low, as the server runs about
        /// thirty times slower under valgrind.
        #[arg(long, default_value_t = 20.0)]
        rate: f64,
        /// Bytes of data per event.
        #[arg(long, default_value_t = 100)]
        event_bytes: usize,
        /// Subscribing, and the wait for deliveries, may each take this
        /// many seconds.
        #[arg(long, default_value_t = 120)]
        within_secs: u64,
    },
    /// push's long-poll cycle (held, answered on publish, polled again)
    /// against a bare hyper server answering at once, driven by the same
    /// client, side by side in one run.
    LongpollCompare {
        /// The servers, comma-separated: push, hyper-ok (answers at once;
        /// measured paced and flat out) and hyper-held (holds each poll
        /// until the next publish); push is compared with each of the others.
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "push,hyper-ok,hyper-held"
        )]
        servers: Vec<Server>,
        /// Rounds; each measures every server once.
        #[arg(long, default_value_t = 3)]
        rounds: u32,
        /// What the load speaks: http1 (a keep-alive connection per poller)
        /// or h2c (the pollers' streams spread over --connections).
        #[arg(long, value_enum, default_value_t = LoadProtocol::Http1)]
        protocol: LoadProtocol,
        /// The workload.
        #[command(flatten)]
        shape: CycleShape,
        /// Shrinks the workload to a smoke test of the harness (20 pollers,
        /// 100 events at 50/s; seconds per run); its figures say nothing
        /// about speed.
        #[arg(long)]
        quick: bool,
        /// Setting the pollers up, and the wait for deliveries, may each
        /// take this many seconds.
        #[arg(long, default_value_t = 60)]
        within_secs: u64,
    },
    /// Loop long polls on keep-alive HTTP/1.1 connections while events are
    /// published at a fixed rate, and print a `longpoll-result` line with
    /// the cycles completed and the server's CPU time.
    LongpollLoad {
        /// The server's address, on loopback.
        #[arg(long)]
        server: SocketAddr,
        /// The server's process id, whose CPU time is read from /proc.
        #[arg(long)]
        server_pid: u32,
        /// The core the server is pinned to, whose busy time is read from
        /// /proc/stat.
        #[arg(long, default_value_t = 0)]
        server_core: usize,
        /// The channel polled and published on.
        #[arg(long, default_value = "longpoll")]
        channel: String,
        /// What the load speaks: http1 (a keep-alive connection per poller)
        /// or h2c (the pollers' streams spread over --connections).
        #[arg(long, value_enum, default_value_t = LoadProtocol::Http1)]
        protocol: LoadProtocol,
        /// The workload.
        #[command(flatten)]
        shape: CycleShape,
        /// Check that every poller receives every event once and in order
        /// (for push); without it, the measured window ends with the last
        /// publish.
        #[arg(long)]
        check_deliveries: bool,
        /// Setting the pollers up, and the wait for deliveries after the
        /// last publish, may each take this many seconds.
        #[arg(long, default_value_t = 60)]
        within_secs: u64,
        /// Once answered, each poller polls again only after the next
        /// publish is answered (for a server that answers at once: it then
        /// gets push's traffic, a poll from every poller per publish).
        #[arg(long)]
        paced: bool,
    },
    /// The reconnect soak: subscribers on every technique (polls, SSE,
    /// NDJSON, WebSocket over HTTP/1.1; SSE, NDJSON, server push, WebSocket
    /// over h2c), their connections cut at random and resumed from their
    /// cursors while events are published; fails unless every subscriber
    /// gets every event exactly once and push-server's memory returns to
    /// its baseline.
    Soak {
        /// Subscribers, dealt round-robin over --techniques.
        #[arg(long, default_value_t = 1000)]
        subscribers: usize,
        /// Events published, spread evenly over --channels.
        #[arg(long, default_value_t = 100_000)]
        events: usize,
        /// Channels; each subscriber follows one, and each channel has
        /// subscribers of every technique.
        #[arg(long, default_value_t = 10)]
        channels: usize,
        /// Events published per second, over all channels (one publisher
        /// per channel).
        #[arg(long, default_value_t = 1000.0)]
        rate: f64,
        /// Bytes of data per event (at least 12).
        #[arg(long, default_value_t = 32)]
        event_bytes: usize,
        /// The mean time a connection lives before its subscriber cuts it
        /// (each is drawn uniformly up to twice this), in milliseconds.
        #[arg(long, default_value_t = 2000)]
        cut_after_ms: u64,
        /// The seed of the subscribers' random generators [default: drawn
        /// at random, and reported].
        #[arg(long)]
        seed: Option<u64>,
        /// push-server's --history-events [default: the events of a
        /// channel, so that every resume lands within history].
        #[arg(long)]
        history_events: Option<usize>,
        /// Rounds on the same server (new channels each). With one, the
        /// memory after it is held to the baseline before any client; with
        /// more, the memory after the last is held to the memory after the
        /// first (the warm baseline), so a leak shows as growth.
        #[arg(long, default_value_t = 1)]
        rounds: u32,
        /// How far above its baseline push-server's resident memory may
        /// stay once the clients have left and the channels are deleted,
        /// in KiB.
        #[arg(long, default_value_t = 16 * 1024)]
        memory_margin_kib: u64,
        /// The techniques, comma-separated [default: all].
        #[arg(long, value_enum, value_delimiter = ',')]
        techniques: Option<Vec<Kind>>,
        /// The CI size: 90 subscribers, 1,000 events on 2 channels at
        /// 200/s, cuts every 500 ms on average (overrides the five options).
        #[arg(long)]
        quick: bool,
        /// Subscribing, and the wait for deliveries after the last publish,
        /// may each take this many seconds.
        #[arg(long, default_value_t = 120)]
        within_secs: u64,
    },
    /// Readers that keep up (SSE over HTTP/1.1) measured with and without
    /// clients that stopped reading, side by side, each on a fresh
    /// push-server: their publish-to-receive latency, and the server's
    /// memory against the bound the limits set.
    SlowConsumers {
        /// Clients that subscribe and stop reading (half SSE, half
        /// WebSocket, over HTTP/1.1).
        #[arg(long, default_value_t = 100)]
        stalled: usize,
        /// Readers that keep up.
        #[arg(long, default_value_t = 100)]
        readers: usize,
        /// Events published.
        #[arg(long, default_value_t = 15_000)]
        publishes: usize,
        /// Events published per second.
        #[arg(long, default_value_t = 500.0)]
        rate: f64,
        /// Bytes of data per event (at least 12).
        #[arg(long, default_value_t = 2048)]
        event_bytes: usize,
        /// push-server's --subscriber-buffer-bytes.
        #[arg(long, default_value_t = 256 * 1024)]
        subscriber_buffer_bytes: usize,
        /// How far the readers' p99 with the stalled clients may pass the
        /// p99 without them, in percent…
        #[arg(long, default_value_t = 50.0)]
        latency_margin_percent: f64,
        /// …plus this many milliseconds.
        #[arg(long, default_value_t = 2)]
        latency_margin_ms: u64,
        /// The CI size: 20 stalled clients, 20 readers, 2,000 events of
        /// 4,096 bytes at 500/s (overrides the five options); the latency
        /// margin is reported, not checked.
        #[arg(long)]
        quick: bool,
        /// Subscribing, and the wait for deliveries after the last publish,
        /// may each take this many seconds.
        #[arg(long, default_value_t = 60)]
        within_secs: u64,
    },
    /// Subscribe many streams (SSE, NDJSON or WebSocket), publish a bounded
    /// number of events at a fixed rate, and print a `fanout-result` line
    /// with what arrived and the server's CPU time. `sse-fanout` is its
    /// old name.
    #[command(alias = "sse-fanout")]
    Fanout {
        /// The server's address, on loopback.
        #[arg(long)]
        server: SocketAddr,
        /// Publish through this address instead (another node of a cluster
        /// sharing the channel), on loopback.
        #[arg(long)]
        publish_to: Option<SocketAddr>,
        /// How the streams subscribe: sse (/sse), ndjson (/stream) or ws
        /// (/ws).
        #[arg(long, value_enum, default_value_t = Technique::Sse)]
        technique: Technique,
        /// What the load speaks: h2c (streams spread over --connections) or
        /// http1 (a connection per stream). Defaults to h2c, and to http1
        /// for ws, which upgrades HTTP/1.1 connections only.
        #[arg(long, value_enum)]
        protocol: Option<LoadProtocol>,
        /// The server's process id, whose CPU time is read from /proc.
        #[arg(long)]
        server_pid: u32,
        /// The core the server is pinned to, whose busy time is read from
        /// /proc/stat.
        #[arg(long, default_value_t = 0)]
        server_core: usize,
        /// The channel subscribed to and published on.
        #[arg(long, default_value = "fanout")]
        channel: String,
        /// The workload.
        #[command(flatten)]
        shape: FanoutShape,
        /// Subscribing, and the wait for deliveries after the last publish,
        /// may each take this many seconds.
        #[arg(long, default_value_t = 60)]
        within_secs: u64,
        /// Count the server's write system calls from the first publish to
        /// the last delivery with `perf stat` (root; `apt-get install -y
        /// linux-perf`), and add them to the line.
        #[arg(long)]
        count_writes: bool,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let outcome = match args.command {
        Command::Baseline { baseline, listen } => baseline::serve(baseline, listen).await,
        Command::Hold {
            url,
            count,
            handshakes_in_flight,
            within_secs,
        } => {
            hold::run(HoldOptions {
                url,
                count,
                handshakes_in_flight,
                within: Duration::from_secs(within_secs),
            })
            .await
        }
        Command::IdleMemory {
            technique,
            connections,
            rounds,
            servers,
            settle_before_ms,
            settle_after_ms,
            within_secs,
            json,
        } => {
            let options = IdleMemoryOptions {
                technique,
                connections,
                rounds,
                servers: servers.unwrap_or_else(|| idle::default_servers(technique)),
                settle_before: Duration::from_millis(settle_before_ms),
                settle_after: Duration::from_millis(settle_after_ms),
                hold_within: Duration::from_secs(within_secs),
            };
            idle::run(&options).await.map(|measurements| {
                if json {
                    println!("{}", idle::render_json(&measurements, technique));
                } else {
                    print!("{}", idle::render_table(&measurements, technique));
                }
            })
        }
        Command::H2Compare {
            before,
            after,
            rounds,
            requests,
            warm_up_requests,
            clients,
            streams_per_client,
            retained,
            fanout,
            within_secs,
        } => {
            let options = H2CompareOptions {
                before,
                after,
                rounds,
                long_poll: LongPollShape {
                    requests,
                    warm_up: warm_up_requests,
                    clients,
                    streams_per_client,
                    retained,
                },
                fanout,
                within: Duration::from_secs(within_secs),
            };
            h2_compare::run(&options).await.and_then(|comparison| {
                print!("{}", h2_compare::render_table(&comparison, &options));
                h2_compare::check_deliveries(&comparison)
            })
        }
        Command::FanoutCompare {
            servers,
            techniques,
            regimes,
            rounds,
            protocol,
            event_bytes,
            count_writes,
            quick,
            within_secs,
        } => {
            let options = FanoutCompareOptions {
                servers,
                techniques,
                regimes,
                rounds,
                protocol,
                event_bytes,
                count_writes,
                quick,
                within: Duration::from_secs(within_secs),
            };
            fanout_compare::run(&options)
                .await
                .and_then(|measurements| {
                    print!("{}", fanout_compare::render_table(&measurements, &options));
                    match options.servers.first() {
                        Some(push) => fanout_compare::check_deliveries(&measurements, *push),
                        None => Ok(()),
                    }
                })
        }
        Command::RedisCompare {
            rounds,
            fanout,
            within_secs,
        } => {
            let options = RedisCompareOptions {
                rounds,
                fanout,
                within: Duration::from_secs(within_secs),
            };
            redis_compare::run(&options).await.and_then(|measurements| {
                print!("{}", redis_compare::render_table(&measurements, &options));
                redis_compare::check_deliveries(&measurements)
            })
        }
        Command::AllocCount {
            technique,
            streams,
            publishes,
            rate,
            event_bytes,
            within_secs,
        } => {
            let options = AllocCountOptions {
                technique,
                streams,
                publishes,
                rate,
                event_bytes,
                within: Duration::from_secs(within_secs),
            };
            alloc_count::run(&options)
                .await
                .map(|count| print!("{}", alloc_count::render_table(&count, technique)))
        }
        Command::LongpollCompare {
            servers,
            rounds,
            protocol,
            shape,
            quick,
            within_secs,
        } => {
            let options = LongPollCompareOptions {
                servers,
                rounds,
                protocol,
                shape,
                quick,
                within: Duration::from_secs(within_secs),
            };
            longpoll_compare::run(&options)
                .await
                .and_then(|measurements| {
                    print!(
                        "{}",
                        longpoll_compare::render_table(&measurements, &options)
                    );
                    longpoll_compare::check_deliveries(&measurements)
                })
        }
        Command::LongpollLoad {
            server,
            server_pid,
            server_core,
            channel,
            protocol,
            shape,
            check_deliveries,
            within_secs,
            paced,
        } => {
            let options = LongPollOptions {
                server,
                server_pid,
                server_core,
                protocol,
                channel,
                shape,
                check_deliveries,
                within: Duration::from_secs(within_secs),
                paced,
            };
            longpoll::run(&options)
                .await
                .map(|report| println!("{report}"))
        }
        Command::Soak {
            subscribers,
            events,
            channels,
            rate,
            event_bytes,
            cut_after_ms,
            seed,
            history_events,
            rounds,
            memory_margin_kib,
            techniques,
            quick,
            within_secs,
        } => {
            let (subscribers, events, channels, rate, cut_after_ms) = match quick {
                true => (90, 1_000, 2, 200.0, 500),
                false => (subscribers, events, channels, rate, cut_after_ms),
            };
            let options = SoakOptions {
                subscribers,
                kinds: techniques.unwrap_or_else(|| Kind::ALL.to_vec()),
                channels,
                events,
                rate,
                event_bytes,
                cut_after: Duration::from_millis(cut_after_ms),
                seed: seed.unwrap_or_else(|| fastrand::u64(..)),
                history_events: history_events.unwrap_or(events.div_ceil(channels.max(1))),
                rounds,
                memory_margin_kib,
                within: Duration::from_secs(within_secs),
            };
            soak::run(&options).await.and_then(|report| {
                print!("{}", report.render());
                report.check()
            })
        }
        Command::SlowConsumers {
            stalled,
            readers,
            publishes,
            rate,
            event_bytes,
            subscriber_buffer_bytes,
            latency_margin_percent,
            latency_margin_ms,
            quick,
            within_secs,
        } => {
            let (stalled, readers, publishes, rate, event_bytes) = match quick {
                true => (20, 20, 2_000, 500.0, 4096),
                false => (stalled, readers, publishes, rate, event_bytes),
            };
            let options = SlowConsumersOptions {
                stalled,
                shape: FanoutShape {
                    streams: readers,
                    connections: 1,
                    publishes,
                    rate,
                    event_bytes,
                },
                subscriber_buffer_bytes,
                latency_margin_percent,
                latency_margin: Duration::from_millis(latency_margin_ms),
                check_latency: !quick,
                within: Duration::from_secs(within_secs),
            };
            slow_consumers::run(&options).await.and_then(|report| {
                print!("{}", report.render());
                report.check()
            })
        }
        Command::Fanout {
            server,
            publish_to,
            technique,
            protocol,
            server_pid,
            server_core,
            channel,
            shape,
            within_secs,
            count_writes,
        } => {
            let protocol = protocol.unwrap_or(match technique {
                Technique::Ws => LoadProtocol::Http1,
                Technique::Sse | Technique::Ndjson => LoadProtocol::H2c,
            });
            let options = FanoutOptions {
                server,
                technique,
                protocol,
                publish_to,
                server_pid,
                server_core,
                channel,
                shape,
                within: Duration::from_secs(within_secs),
                count_writes,
            };
            fanout::run(&options)
                .await
                .map(|report| println!("{report}"))
        }
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("push-bench: {error}");
            ExitCode::FAILURE
        }
    }
}
