//! `push-server`: push channels served with every technique, kept in
//! memory or, with `--redis`, in Redis shared by several nodes.
//!
//! ```text
//! cargo run -p push-server -- --listen 127.0.0.1:8080 [--redis redis://127.0.0.1:6379/0]
//! ```
//!
//! It serves the wire contract of `PROTOCOL.md` (publish, short and long
//! polling, Server-Sent Events, NDJSON streaming, WebSocket, HTTP/2 push,
//! channel info and close) on HTTP/1.1 and h2c, with a demo page at `/` and
//! the browser client at `/client/push.js`; it prints the URL it serves, and stops cleanly on Ctrl-C or
//! SIGTERM: open streams end with the shutdown signal so clients reconnect
//! with their cursor.

use std::process::ExitCode;

use clap::Parser;
use push_core::{Channels, Hub};
use push_redis::{RedisChannels, RedisConfig};
use push_server::{stop_signal, ServerFlags, Site};
use push_tower::origin::CheckOriginLayer;
use push_tower::{serve, Push};
use tokio::net::TcpListener;
use tower::util::Either;
use tower::ServiceBuilder;

/// Prints a line to stdout, ignoring failure: a closed stdout (a log pipe
/// whose reader left) must not stop the server, as `println!` would.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// Serve push channels with every technique: an in-memory hub, or channels
/// in Redis shared with other nodes.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    #[command(flatten)]
    server: ServerFlags,
    /// Keep channels in this Redis (redis://HOST:PORT/DB), shared by every
    /// node started with it and the same limits, instead of in memory
    /// (--max-channels then does not apply).
    #[arg(long, value_name = "URL")]
    redis: Option<String>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let Args {
        server: args,
        redis,
    } = Args::parse();
    let config = match args.hub_config() {
        Ok(config) => config,
        Err(problem) => {
            eprintln!("push-server: {problem}");
            return ExitCode::from(2);
        }
    };
    let listener = match TcpListener::bind(args.listen).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("push-server: cannot listen on {}: {error}", args.listen);
            return ExitCode::FAILURE;
        }
    };
    match redis {
        None => run(Hub::new(config), listener, &args, "in memory").await,
        Some(url) => {
            let redis_config = RedisConfig {
                limits: config.limits,
                ..RedisConfig::default()
            };
            match RedisChannels::connect(&url, redis_config).await {
                Ok(channels) => run(channels, listener, &args, &format!("in Redis at {url}")).await,
                Err(error) => {
                    eprintln!("push-server: {error}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

/// Serves `channels` on `listener` until Ctrl-C or SIGTERM.
async fn run<C: Channels>(
    channels: C,
    listener: TcpListener,
    args: &ServerFlags,
    kept: &str,
) -> ExitCode {
    let mut push = Push::new(channels, args.config());
    let authorizer = args.authorizer();
    if let Some(authorizer) = &authorizer {
        push = push.with_authorizer(authorizer.clone());
    }
    let address = listener.local_addr().unwrap_or(args.listen);
    say!("push-server listening on http://{address}");
    say!("push-server: channels kept {kept}");
    if let Some(authorizer) = authorizer {
        say!("push-server: {}", authorizer.describe());
    }
    let site = Site::new(push.router());
    // Checked when the flags were read.
    let service = match args.allowed_origins().ok().flatten() {
        Some(origins) => Either::Left(
            ServiceBuilder::new()
                .layer(push_server::cors(&origins))
                .layer(CheckOriginLayer::new(origins))
                .service(site),
        ),
        None => Either::Right(site),
    };
    let served = serve(listener, service)
        .with_push(push)
        .drain_deadline(args.drain_deadline())
        .header_read_timeout(args.header_read_timeout())
        .max_header_bytes(args.max_header_bytes)
        .with_graceful_shutdown(stop_signal())
        .await;
    match served {
        Ok(()) => {
            say!("push-server stopped");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("push-server: {error}");
            ExitCode::FAILURE
        }
    }
}
