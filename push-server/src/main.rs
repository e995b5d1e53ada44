//! `push-server`: push channels served with every technique, kept in
//! memory or, with `--redis`, in Redis shared by several nodes.
//!
//! ```text
//! cargo run -p push-server -- --listen 127.0.0.1:8080 [--redis redis://127.0.0.1:6379/0]
//! cargo run -p push-server -- --listen 0.0.0.0:8443 --tls-cert cert.pem --tls-key key.pem
//! ```
//!
//! It serves the wire contract of `PROTOCOL.md` (publish, short and long
//! polling, Server-Sent Events, NDJSON streaming, WebSocket, HTTP/2 push,
//! channel info and close) on HTTP/1.1 and h2c, or over TLS (HTTP/2 or
//! HTTP/1.1 by ALPN) with `--tls-cert` and `--tls-key`, with a demo page at `/` and
//! the browser client at `/client/push.js`; it prints the URL it serves, and stops cleanly on Ctrl-C or
//! SIGTERM: open streams end with the shutdown signal so clients reconnect
//! with their cursor.

use std::process::ExitCode;
use std::sync::Arc;

/// jemalloc, which hands the memory of clients that left back to the
/// system: glibc's malloc keeps most of it in its heaps, so a server that
/// once held many connections would stay that large (push-bench soak, 1,000
/// subscribers: 61 MiB after they left against 5 MiB before, under glibc).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's settings, read before `main`: a background thread returns
/// pages unused for a second, rather than at the allocating threads' next
/// calls, so an idle server shrinks too.
// Defining the symbol jemalloc reads its settings from is what
// tikv-jemalloc-sys documents for this; jemalloc declares it weak, and
// nothing else in the process defines it.
#[allow(unsafe_code)]
#[export_name = "_rjem_malloc_conf"]
static JEMALLOC_CONF: &[u8; 63] =
    b"background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:1000\0";

use clap::Parser;
use push_core::{Channels, Hub};
use push_redis::{RedisChannels, RedisConfig};
use push_server::{stop_signal, ServerFlags, Site};
use push_tower::origin::CheckOriginLayer;
use push_tower::serve::tls::rustls::ServerConfig;
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
    let checked = args.validate().and_then(|()| args.tls_config());
    let tls = match checked {
        Ok(tls) => tls,
        Err(problem) => {
            eprintln!("push-server: {problem}");
            return ExitCode::from(2);
        }
    };
    let tls = tls.map(Arc::new);
    let listener = match TcpListener::bind(args.listen).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("push-server: cannot listen on {}: {error}", args.listen);
            return ExitCode::FAILURE;
        }
    };
    let config = args.hub_config();
    match redis {
        None => run(Hub::new(config), listener, &args, tls, "in memory").await,
        Some(url) => {
            let redis_config = RedisConfig {
                limits: config.limits,
                ..RedisConfig::default()
            };
            match RedisChannels::connect(&url, redis_config).await {
                Ok(channels) => {
                    let kept = format!("in Redis at {url}");
                    run(channels, listener, &args, tls, &kept).await
                }
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
    tls: Option<Arc<ServerConfig>>,
    kept: &str,
) -> ExitCode {
    let mut push = Push::new(channels, args.config());
    let authorizer = args.authorizer();
    if let Some(authorizer) = &authorizer {
        push = push.with_authorizer(authorizer.clone());
    }
    let address = listener.local_addr().unwrap_or(args.listen);
    let scheme = if tls.is_some() { "https" } else { "http" };
    say!("push-server listening on {scheme}://{address}");
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
    let mut server = serve(listener, service)
        .with_push(push)
        .drain_deadline(args.drain_deadline())
        .header_read_timeout(args.header_read_timeout())
        .max_header_bytes(args.max_header_bytes)
        .max_headers(args.max_headers)
        .max_connections(args.max_connections)
        .max_connections_per_peer(args.max_connections_per_peer)
        .max_subscriptions_per_connection(args.max_subscriptions_per_connection);
    if let Some(tls) = tls {
        server = server.tls(tls);
    }
    let served = server.with_graceful_shutdown(stop_signal()).await;
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
