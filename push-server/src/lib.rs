//! What `push-server` and the servers modeled on it share: the command-line
//! flags that shape the hub and the drain, the stop signal, and the
//! [`Site`]: the wire protocol plus the demo page at `/` and the browser
//! client at `/client/push.js`.
//!
//! ```
//! use clap::Parser;
//! use push_server::ServerFlags;
//!
//! #[derive(Parser)]
//! struct Args {
//!     #[command(flatten)]
//!     server: ServerFlags,
//! }
//!
//! let args = Args::parse_from(["server", "--history-events", "5"]);
//! let config = args.server.hub_config().unwrap();
//! assert_eq!(config.limits.history_events, 5);
//!
//! let args = Args::parse_from(["server", "--max-channels", "0"]);
//! assert!(args.server.hub_config().is_err());
//!
//! let args = Args::parse_from(["server", "--max-connections", "0"]);
//! assert!(args.server.serve_limits().is_err());
//! ```

mod site;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use push_core::{HubConfig, Limits};

pub use site::{Site, DEMO_PAGE};

/// The flags of `push-server`: the address, the hub's limits, the drain
/// deadline, the bounds on requests and connections, and TLS. Flatten it
/// into a clap parser to take the same flags.
#[derive(Clone, Debug, clap::Args)]
pub struct ServerFlags {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Events retained per channel for resume.
    #[arg(long, default_value_t = Limits::default().history_events)]
    pub history_events: usize,
    /// Bytes of event data retained per channel for resume.
    #[arg(long, default_value_t = Limits::default().history_bytes)]
    pub history_bytes: usize,
    /// Heartbeat interval on idle streams, in milliseconds.
    #[arg(long, default_value_t = Limits::default().heartbeat.as_millis() as u64)]
    pub heartbeat_ms: u64,
    /// Longest a long poll is held, in milliseconds.
    #[arg(long, default_value_t = Limits::default().long_poll_max.as_millis() as u64)]
    pub long_poll_max_ms: u64,
    /// Largest event accepted, in bytes.
    #[arg(long, default_value_t = Limits::default().max_event_bytes)]
    pub max_event_bytes: usize,
    /// Bytes held for one subscriber beyond the history before it is lagged
    /// (at least twice --max-event-bytes).
    #[arg(long, default_value_t = Limits::default().subscriber_buffer_bytes)]
    pub subscriber_buffer_bytes: usize,
    /// Most channels held at once.
    #[arg(long, default_value_t = HubConfig::default().max_channels)]
    pub max_channels: usize,
    /// Seconds open connections get to finish on shutdown.
    #[arg(long, default_value_t = 5)]
    pub drain_secs: u64,
    /// Milliseconds a client has to send a request's head, from the moment
    /// its connection opens or its previous answer is sent; a connection
    /// that has not by then (slowloris, or idle between requests) is closed.
    #[arg(long, default_value_t = push_tower::serve::HEADER_READ_TIMEOUT.as_millis() as u64)]
    pub header_read_timeout_ms: u64,
    /// Milliseconds a publish's body may take once its head has arrived;
    /// a body that stalls is answered 400 bad_body.
    #[arg(long, default_value_t = push_tower::Config::default().body_read_timeout.as_millis() as u64)]
    pub body_read_timeout_ms: u64,
    /// Largest HTTP/1.1 request head (request line and headers) in bytes; a
    /// larger one is answered 431 (at least 8192).
    #[arg(long, default_value_t = push_tower::serve::MAX_HEADER_LIST_BYTES as usize)]
    pub max_header_bytes: usize,
    /// Most connections open at once; one more is answered 503
    /// too_many_connections with Retry-After and closed. Keep it under the
    /// process's open-files limit.
    #[arg(long, default_value_t = push_tower::serve::MAX_CONNECTIONS)]
    pub max_connections: usize,
    /// Most connections open at once from one IP address; one more is
    /// answered 429 too_many_peer_connections with Retry-After and closed.
    #[arg(long, default_value_t = push_tower::serve::MAX_CONNECTIONS_PER_PEER)]
    pub max_connections_per_peer: usize,
    /// Most streaming subscriptions (SSE, NDJSON, push, WebSocket) open at
    /// once on one HTTP/2 connection; one more is answered 429
    /// too_many_subscriptions.
    #[arg(long, default_value_t = push_tower::serve::MAX_SUBSCRIPTIONS_PER_CONNECTION)]
    pub max_subscriptions_per_connection: usize,
    /// Most headers in a request; a request with more is answered 431.
    #[arg(long, default_value_t = push_tower::serve::MAX_HEADERS)]
    pub max_headers: usize,
    /// Serve HTTPS with this PEM certificate chain (the server's first),
    /// offering h2 and http/1.1 by ALPN; needs --tls-key.
    #[arg(long, value_name = "PATH", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key (PKCS #8, PKCS #1 or SEC1) of --tls-cert; needs
    /// --tls-cert.
    #[arg(long, value_name = "PATH", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

impl ServerFlags {
    /// The hub's configuration from the flags.
    ///
    /// # Errors
    ///
    /// A sentence naming the flag to change, if the limits break
    /// [`Limits::validate`], `--max-channels` or `--header-read-timeout-ms`
    /// is 0, or `--max-header-bytes` is under 8192.
    pub fn hub_config(&self) -> Result<HubConfig, String> {
        let limits = Limits {
            history_events: self.history_events,
            history_bytes: self.history_bytes,
            heartbeat: Duration::from_millis(self.heartbeat_ms),
            long_poll_max: Duration::from_millis(self.long_poll_max_ms),
            max_event_bytes: self.max_event_bytes,
            subscriber_buffer_bytes: self.subscriber_buffer_bytes,
            ..Limits::default()
        };
        limits.validate().map_err(|problem| problem.to_string())?;
        if self.max_channels == 0 {
            return Err("--max-channels must be at least 1".to_owned());
        }
        if self.max_header_bytes < push_tower::serve::MIN_HEADER_BYTES {
            return Err(format!(
                "--max-header-bytes must be at least {}",
                push_tower::serve::MIN_HEADER_BYTES
            ));
        }
        if self.header_read_timeout_ms == 0 {
            return Err("--header-read-timeout-ms must be at least 1".to_owned());
        }
        Ok(HubConfig {
            limits,
            max_channels: self.max_channels,
        })
    }

    /// Checks the connection limits: `--max-connections`,
    /// `--max-connections-per-peer`, `--max-subscriptions-per-connection`
    /// and `--max-headers`, which [`serve`](push_tower::serve()) takes as
    /// they are.
    ///
    /// # Errors
    ///
    /// A sentence naming the flag to change, if any of them is 0.
    pub fn serve_limits(&self) -> Result<(), String> {
        for (flag, value) in [
            ("--max-connections", self.max_connections),
            ("--max-connections-per-peer", self.max_connections_per_peer),
            (
                "--max-subscriptions-per-connection",
                self.max_subscriptions_per_connection,
            ),
            ("--max-headers", self.max_headers),
        ] {
            if value == 0 {
                return Err(format!("{flag} must be at least 1"));
            }
        }
        Ok(())
    }

    /// The TLS configuration of `--tls-cert` and `--tls-key`, if given (clap
    /// requires both or neither).
    ///
    /// # Errors
    ///
    /// A sentence naming the file and what to fix, if a file cannot be
    /// read, is not PEM, holds no certificate or key, or the key does not
    /// fit the certificate; see
    /// [`config_from_pem`](push_tower::serve::tls::config_from_pem).
    pub fn tls_config(
        &self,
    ) -> Result<Option<push_tower::serve::tls::rustls::ServerConfig>, String> {
        match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => push_tower::serve::tls::config_from_pem(cert, key)
                .map(Some)
                .map_err(|error| error.to_string()),
            (None, None) => Ok(None),
            _ => Err("--tls-cert and --tls-key go together: give both, or neither".to_owned()),
        }
    }

    /// How long open connections get to finish on shutdown.
    pub fn drain_deadline(&self) -> Duration {
        Duration::from_secs(self.drain_secs)
    }

    /// The push services' settings from the flags.
    pub fn config(&self) -> push_tower::Config {
        push_tower::Config::default()
            .body_read_timeout(Duration::from_millis(self.body_read_timeout_ms))
    }

    /// How long a client has to send a request's head.
    pub fn header_read_timeout(&self) -> Duration {
        Duration::from_millis(self.header_read_timeout_ms)
    }
}

/// Resolves on Ctrl-C, or SIGTERM on Unix.
pub async fn stop_signal() {
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
