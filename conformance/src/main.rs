//! `conformance`: checks a running server that implements the wire contract.
//!
//! ```text
//! cargo run -p conformance -- --url http://127.0.0.1:8080 [--technique sse,ndjson] [--protocol http1,h2c] [--skip ws-h2c] [--control-url http://127.0.0.1:8081]
//! ```
//!
//! It learns the server's limits from `GET /channels/{name}`, runs every
//! scenario for every technique asked for, prints a table, and exits with 1
//! if any scenario failed (2 if the server could not be reached). HTTP/2
//! server push over h2c is checked twice: with push enabled (`push-h2c`) and
//! with the client's `SETTINGS_ENABLE_PUSH = 0` (`push-h2c-nopush`).
//! `--skip` leaves out transports a server does not carry, by the names the
//! table's columns use: warp's server, for one, neither pushes nor takes
//! WebSocket over HTTP/2 (`--skip ws-h2c,push-h2c`). `--control-url`
//! checks a cluster: publishes and closes go to one node, subscriptions to
//! another.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use conformance::clients::every_client;
use conformance::{HttpClient, Protocol, Suite, Technique, Transport, WireControl};

/// Check a running push server against the semantics contract.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// The server's base URL (a path prefix may follow).
    #[arg(long)]
    url: String,
    /// Techniques to check, by name or path segment; every one by default.
    #[arg(
        long,
        value_delimiter = ',',
        value_parser = parse_technique,
        default_values_t = Technique::ALL,
        help = technique_help()
    )]
    technique: Vec<Technique>,
    /// Protocols to check, comma-separated: http1, h2c.
    #[arg(long, value_delimiter = ',', default_values_t = ["http1".to_string(), "h2c".into()])]
    protocol: Vec<String>,
    /// Run only these scenarios (comma-separated names).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Publish and close through this URL instead (another node of a
    /// cluster); subscriptions, and descriptions of their node, go to --url.
    #[arg(long)]
    control_url: Option<String>,
    /// Transports to leave out, by the names the table's columns use (such
    /// as ws-h2c, push-h2c), for a server that does not carry them.
    #[arg(long, value_delimiter = ',')]
    skip: Vec<String>,
    /// The long-poll `timeout` the client asks for, in seconds.
    #[arg(long, default_value_t = 5.0)]
    long_poll_timeout: f64,
}

/// The names `--technique` takes, from the one list of techniques.
fn technique_names() -> String {
    Technique::ALL.map(Technique::name).join(", ")
}

fn technique_help() -> String {
    format!(
        "Techniques to check, comma-separated: {} (a path segment such as `stream` works too)",
        technique_names()
    )
}

/// Parses a technique by name or path segment.
fn parse_technique(name: &str) -> Result<Technique, String> {
    Technique::from_name(name)
        .ok_or_else(|| format!("unknown technique; use {}", technique_names()))
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let mut protocols = Vec::new();
    for name in &args.protocol {
        match name.as_str() {
            "http1" => protocols.push(Protocol::Http1),
            "h2c" => protocols.push(Protocol::H2c),
            other => {
                eprintln!("conformance: unknown protocol {other:?}; use http1 or h2c");
                return ExitCode::from(2);
            }
        }
    }
    if !(args.long_poll_timeout.is_finite() && args.long_poll_timeout > 0.0) {
        eprintln!("conformance: --long-poll-timeout must be a positive number of seconds");
        return ExitCode::from(2);
    }
    let control = match &args.control_url {
        None => WireControl::new(HttpClient::new(&args.url, Protocol::Http1)),
        Some(control_url) => WireControl::new(HttpClient::new(control_url, Protocol::Http1))
            .observing(HttpClient::new(&args.url, Protocol::Http1)),
    };
    let long_poll_timeout = Duration::from_secs_f64(args.long_poll_timeout);
    let mut clients = every_client(&args.url, &protocols, &args.technique, long_poll_timeout);
    let names: Vec<String> = clients.iter().map(Transport::name).collect();
    if let Some(unknown) = args.skip.iter().find(|name| !names.contains(name)) {
        eprintln!(
            "conformance: --skip {unknown:?} names no transport of this run; these run: {}",
            names.join(", ")
        );
        return ExitCode::from(2);
    }
    clients.retain(|client| !args.skip.contains(&client.name()));
    let mut suite = Suite::new(&control).transports(&clients);
    let only: Vec<&str> = args.only.iter().map(String::as_str).collect();
    if !only.is_empty() {
        suite = suite.only(&only);
    }
    println!("checking {} ({} transports)", args.url, clients.len());
    match suite.run().await {
        Ok(report) => {
            print!("{}", report.table());
            if report.failures() == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(error) => {
            eprintln!(
                "conformance: cannot read the server's limits from GET /channels/{{name}} at {}: {error}",
                args.url
            );
            ExitCode::from(2)
        }
    }
}
