//! `push-server`: an in-memory push hub served with every technique.
//!
//! ```text
//! cargo run -p push-server -- --listen 127.0.0.1:8080
//! ```
//!
//! It serves the wire contract of `PROTOCOL.md` (publish, short and long
//! polling, Server-Sent Events, NDJSON streaming, channel info and close) on
//! HTTP/1.1 and h2c, prints the URL it serves, and stops cleanly on Ctrl-C or
//! SIGTERM: open streams end with the shutdown signal so clients reconnect
//! with their cursor.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use push_core::{Hub, HubConfig, Limits};
use push_tower::{serve, Config, Push};

/// Serve an in-memory push hub with every technique.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
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
        eprintln!("push-server: {problem}");
        return ExitCode::from(2);
    }
    if args.max_channels == 0 {
        eprintln!("push-server: --max-channels must be at least 1");
        return ExitCode::from(2);
    }
    let hub = Hub::new(HubConfig {
        limits,
        max_channels: args.max_channels,
    });
    let push = Push::new(hub, Config::default());
    let listener = match tokio::net::TcpListener::bind(args.listen).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("push-server: cannot listen on {}: {error}", args.listen);
            return ExitCode::FAILURE;
        }
    };
    let address = listener.local_addr().unwrap_or(args.listen);
    println!("push-server listening on http://{address}");
    let served = serve(listener, push.router())
        .with_push(push)
        .drain_deadline(Duration::from_secs(args.drain_secs))
        .with_graceful_shutdown(stop_signal())
        .await;
    match served {
        Ok(()) => {
            println!("push-server stopped");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("push-server: {error}");
            ExitCode::FAILURE
        }
    }
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
