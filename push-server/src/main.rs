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

use std::process::ExitCode;

use clap::Parser;
use push_core::Hub;
use push_server::{stop_signal, ServerFlags};
use push_tower::{serve, Config, Push};

/// Serve an in-memory push hub with every technique.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    #[command(flatten)]
    server: ServerFlags,
}

#[tokio::main]
async fn main() -> ExitCode {
    let Args { server: args } = Args::parse();
    let config = match args.hub_config() {
        Ok(config) => config,
        Err(problem) => {
            eprintln!("push-server: {problem}");
            return ExitCode::from(2);
        }
    };
    let push = Push::new(Hub::new(config), Config::default());
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
        .drain_deadline(args.drain_deadline())
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
