//! `push-bench`: the benchmark harness of push.
//!
//! ```text
//! cargo build --release -p push-server -p push-bench
//! target/release/push-bench idle-memory --connections 10000 --rounds 2
//! ```
//!
//! See the crate's `README.md` for what each command measures.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use push_bench::baseline::{self, Baseline};
use push_bench::hold::{self, HoldOptions};
use push_bench::idle::{self, IdleMemoryOptions};
use push_bench::server::Server;

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
    /// Open WebSocket connections, print `held N` once each has its first
    /// message, and hold them until stdin closes.
    Hold {
        /// A ws:// URL on a loopback address.
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
    /// Measure the server memory per idle WebSocket connection, for push and
    /// baselines side by side.
    IdleMemory {
        /// Connections held at once.
        #[arg(long, default_value_t = 10_000)]
        connections: usize,
        /// Rounds; each measures every server once.
        #[arg(long, default_value_t = 2)]
        rounds: u32,
        /// Servers to measure, in order within each round.
        #[arg(
            long,
            value_enum,
            value_delimiter = ',',
            default_value = "push,tungstenite-default"
        )]
        servers: Vec<Server>,
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
            connections,
            rounds,
            servers,
            settle_before_ms,
            settle_after_ms,
            within_secs,
            json,
        } => {
            let options = IdleMemoryOptions {
                connections,
                rounds,
                servers,
                settle_before: Duration::from_millis(settle_before_ms),
                settle_after: Duration::from_millis(settle_after_ms),
                hold_within: Duration::from_secs(within_secs),
            };
            idle::run(&options).await.map(|measurements| {
                if json {
                    println!("{}", idle::render_json(&measurements));
                } else {
                    print!("{}", idle::render_table(&measurements));
                }
            })
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
