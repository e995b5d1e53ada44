//! The whole wire contract from warp filters, mounted in a warp app beside
//! a route of its own (`GET /hello`), with push-server's flags:
//!
//! ```text
//! cargo run -p push-warp --example server -- --listen 127.0.0.1:8081
//! curl -N 'http://127.0.0.1:8081/channels/news/sse?from=earliest'
//! curl http://127.0.0.1:8081/hello
//! ```
//!
//! Ctrl-C (or SIGTERM) shuts push down first, so open streams end with the
//! `shutdown` signal, and then lets the server drain its connections.
//!
//! warp's server cannot push and does not take HTTP/2 extended `CONNECT`.
//! `--server push-tower` runs the same filters, turned into a tower service
//! by `warp::service`, under push-tower's `serve`, which carries both:
//!
//! ```text
//! cargo run -p push-warp --example server -- --listen 127.0.0.1:8081 --server push-tower
//! nghttp -v http://127.0.0.1:8081/channels/news/push?from=earliest
//! ```

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use push_core::{Hub, HubConfig, Limits};
use push_tower::{serve, Config, Push};
use warp::Filter;

/// Serve an in-memory push hub with every technique warp carries, beside an
/// app route.
#[derive(Debug, Parser)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8081")]
    listen: SocketAddr,
    /// Events retained per channel for resume.
    #[arg(long, default_value_t = Limits::default().history_events)]
    history_events: usize,
    /// Bytes of event data retained per channel for resume.
    #[arg(long, default_value_t = Limits::default().history_bytes)]
    history_bytes: usize,
    /// Heartbeat interval on idle streams, in milliseconds.
    #[arg(long, default_value_t = Limits::default().heartbeat.as_millis() as u64)]
    heartbeat_ms: u64,
    /// Longest a long poll is held, in milliseconds.
    #[arg(long, default_value_t = Limits::default().long_poll_max.as_millis() as u64)]
    long_poll_max_ms: u64,
    /// Largest event accepted, in bytes.
    #[arg(long, default_value_t = Limits::default().max_event_bytes)]
    max_event_bytes: usize,
    /// Bytes held for one subscriber beyond the history before it is lagged
    /// (at least twice --max-event-bytes).
    #[arg(long, default_value_t = Limits::default().subscriber_buffer_bytes)]
    subscriber_buffer_bytes: usize,
    /// Most channels held at once.
    #[arg(long, default_value_t = HubConfig::default().max_channels)]
    max_channels: usize,
    /// Seconds open connections get to finish on shutdown.
    #[arg(long, default_value_t = 5)]
    drain_secs: u64,
    /// The server that runs the filters.
    #[arg(long, value_enum, default_value_t = Server::Warp)]
    server: Server,
}

/// Which server runs the warp filters.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum Server {
    /// warp's own: HTTP/1.1 and h2c; HTTP/2 push inline, WebSocket over
    /// HTTP/1.1 only.
    Warp,
    /// push-tower's `serve`: every technique on HTTP/1.1 and h2c, HTTP/2
    /// push and WebSocket over HTTP/2 included.
    PushTower,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let limits = Limits {
        history_events: args.history_events,
        history_bytes: args.history_bytes,
        heartbeat: Duration::from_millis(args.heartbeat_ms),
        long_poll_max: Duration::from_millis(args.long_poll_max_ms),
        max_event_bytes: args.max_event_bytes,
        subscriber_buffer_bytes: args.subscriber_buffer_bytes,
        ..Limits::default()
    };
    if let Err(problem) = limits.validate() {
        eprintln!("server: {problem}");
        return ExitCode::from(2);
    }
    if args.max_channels == 0 {
        eprintln!("server: --max-channels must be at least 1");
        return ExitCode::from(2);
    }
    let hub = Hub::new(HubConfig {
        limits,
        max_channels: args.max_channels,
    });
    let push = Push::new(hub, Config::default());

    // The application's own route, and push mounted beside it.
    let hello = warp::get()
        .and(warp::path("hello"))
        .and(warp::path::end())
        .map(|| "hello from the app\n");
    let app = push_warp::routes(push.clone()).or(hello);

    let listener = match tokio::net::TcpListener::bind(args.listen).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("server: cannot listen on {}: {error}", args.listen);
            return ExitCode::FAILURE;
        }
    };
    let address = listener.local_addr().unwrap_or(args.listen);
    println!(
        "push-warp example listening on http://{address} ({:?} server)",
        args.server
    );
    let drain = Duration::from_secs(args.drain_secs);
    match args.server {
        Server::Warp => {
            let (stopping, stopped) = tokio::sync::oneshot::channel::<()>();
            let shutdown = push.clone();
            let server = warp::serve(app)
                .incoming(listener)
                .graceful(async move {
                    stop_signal().await;
                    // Streams end with the shutdown signal, so connections
                    // finish.
                    shutdown.shutdown();
                    let _ = stopping.send(());
                })
                .run();
            // warp's graceful shutdown has no deadline of its own.
            let deadline = async {
                let _ = stopped.await;
                tokio::time::sleep(drain).await;
            };
            tokio::select! {
                () = server => {}
                () = deadline => eprintln!("server: connections still open after --drain-secs; leaving"),
            }
        }
        Server::PushTower => {
            let served = serve(listener, warp::service(app))
                .with_push(push)
                .drain_deadline(drain)
                .with_graceful_shutdown(stop_signal())
                .await;
            if let Err(error) = served {
                eprintln!("server: {error}");
                return ExitCode::FAILURE;
            }
        }
    }
    println!("push-warp example stopped");
    ExitCode::SUCCESS
}

/// Ctrl-C, or SIGTERM on Unix.
async fn stop_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
