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
//! args.server.validate().unwrap();
//! assert_eq!(args.server.hub_config().limits.history_events, 5);
//!
//! let args = Args::parse_from(["server", "--max-channels", "0"]);
//! assert_eq!(args.server.validate().unwrap_err(), "--max-channels must be at least 1");
//!
//! let args = Args::parse_from(["server", "--max-connections", "0"]);
//! assert!(args.server.validate().is_err());
//! ```

pub mod auth;
mod site;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use push_core::{HubConfig, Limits};
use push_tower::origin::AllowedOrigins;
use tower_http::cors::{AllowOrigin, CorsLayer};

pub use auth::TokenAuth;
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
    /// Least milliseconds a client is told to wait before reconnecting once
    /// the server starts to drain (the shutdown signal's `retry_ms`, and
    /// `Retry-After` on 503 shutting_down).
    #[arg(long, default_value_t = push_tower::Config::default().shutdown_retry.least().as_millis() as u64)]
    pub shutdown_retry_min_ms: u64,
    /// Milliseconds over which those delays are spread, drawn at random per
    /// client, so that the clients of a draining server do not all
    /// reconnect at once.
    #[arg(long, default_value_t = push_tower::Config::default().shutdown_retry.spread().as_millis() as u64)]
    pub shutdown_retry_spread_ms: u64,
    /// The shared secret that publishing and closing channels need, as
    /// `Authorization: Bearer <token>` (or `?token=`); without it, anyone
    /// may publish. Prefer the environment variable: the command line shows
    /// in process lists.
    #[arg(long, env = "PUSH_PUBLISH_TOKEN", hide_env_values = true)]
    pub publish_token: Option<String>,
    /// The key that signs read tokens (JWT, HS256, with `exp` and
    /// `channels` claims); with it, subscribing, reading events and
    /// describing channels need a token naming the channel, or the publish
    /// token. Without it, anyone may read.
    #[arg(long, env = "PUSH_READ_TOKEN_KEY", hide_env_values = true)]
    pub read_token_key: Option<String>,
    /// An origin whose pages may use the server (`https://app.example`), or
    /// `*` for any; repeat for several. It turns on CORS for them (preflight,
    /// and the answers readable, `ETag` and `Retry-After` included) and
    /// refuses every request, WebSocket upgrades included, from pages of
    /// other origins with 403. Without it, no CORS headers are sent and no
    /// Origin is checked.
    #[arg(long = "allowed-origin", value_name = "ORIGIN")]
    pub allowed_origins: Vec<String>,
    /// The most publishes a second to any one channel; past it (and the
    /// burst), publishes are answered 429 rate_limited with Retry-After.
    /// Without it, no limit.
    #[arg(long, value_name = "PER_SECOND")]
    pub max_publish_rate: Option<u32>,
    /// Publishes to one channel allowed at once after a quiet spell
    /// (default: one second's worth of --max-publish-rate).
    #[arg(long, requires = "max_publish_rate")]
    pub publish_burst: Option<u32>,
    /// Milliseconds a client has to send a request's head, from the moment
    /// its connection opens or its previous answer is sent; a connection
    /// that has not by then (slowloris, or idle between requests) is closed,
    /// and an HTTP/2 connection with no open stream for as long gets GOAWAY.
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
    /// Largest message a WebSocket client may send, in bytes (at least
    /// 125); past it the socket is closed with 1009. Clients send nothing
    /// but control frames, so this only bounds what a hostile one can make
    /// the server read.
    #[arg(long, default_value_t = push_tower::ws::MAX_INBOUND_MESSAGE_BYTES)]
    pub max_ws_message_bytes: usize,
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
    /// Checks every flag that can be checked without reading a file (TLS's
    /// are read by [`ServerFlags::tls_config`]): call it first, and stop
    /// with its sentence, before using the others.
    ///
    /// # Errors
    ///
    /// A sentence naming the flag to change, if the limits break
    /// [`Limits::validate`], `--max-channels`, `--header-read-timeout-ms`,
    /// `--max-connections`, `--max-connections-per-peer`,
    /// `--max-subscriptions-per-connection` or `--max-headers` is 0,
    /// `--max-header-bytes` is under 8192, `--max-ws-message-bytes` is under
    /// 125, `--publish-token` is empty,
    /// `--read-token-key` is under 32 bytes, an `--allowed-origin` is not an
    /// origin, or `--max-publish-rate` or `--publish-burst` is 0.
    pub fn validate(&self) -> Result<(), String> {
        self.limits()
            .validate()
            .map_err(|problem| problem.to_string())?;
        for (flag, value) in [
            ("--max-channels", self.max_channels),
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
        if self.header_read_timeout_ms == 0 {
            return Err("--header-read-timeout-ms must be at least 1".to_owned());
        }
        if self.max_ws_message_bytes < 125 {
            return Err(
                "--max-ws-message-bytes must be at least 125, the largest control frame".to_owned(),
            );
        }
        if self.max_header_bytes < push_tower::serve::MIN_HEADER_BYTES {
            return Err(format!(
                "--max-header-bytes must be at least {}",
                push_tower::serve::MIN_HEADER_BYTES
            ));
        }
        self.allowed_origins()?;
        if self.max_publish_rate == Some(0) {
            return Err(
                "--max-publish-rate must be at least 1; leave it out for no limit".to_owned(),
            );
        }
        if self.publish_burst == Some(0) {
            return Err("--publish-burst must be at least 1".to_owned());
        }
        if self.publish_token.as_deref() == Some("") {
            return Err("--publish-token must not be empty".to_owned());
        }
        if self
            .read_token_key
            .as_ref()
            .is_some_and(|key| key.len() < 32)
        {
            return Err(
                "--read-token-key must be at least 32 bytes, as HS256 keys should be".to_owned(),
            );
        }
        Ok(())
    }

    /// The hub's configuration from the flags; [`validate`](Self::validate)
    /// them first.
    pub fn hub_config(&self) -> HubConfig {
        HubConfig {
            limits: self.limits(),
            max_channels: self.max_channels,
        }
    }

    /// The channel limits from the flags.
    fn limits(&self) -> Limits {
        Limits {
            history_events: self.history_events,
            history_bytes: self.history_bytes,
            heartbeat: Duration::from_millis(self.heartbeat_ms),
            long_poll_max: Duration::from_millis(self.long_poll_max_ms),
            max_event_bytes: self.max_event_bytes,
            subscriber_buffer_bytes: self.subscriber_buffer_bytes,
            ..Limits::default()
        }
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

    /// The push services' settings from the flags; [`validate`](Self::validate)
    /// them first.
    pub fn config(&self) -> push_tower::Config {
        let config = push_tower::Config::default()
            .body_read_timeout(Duration::from_millis(self.body_read_timeout_ms))
            .max_ws_inbound_bytes(self.max_ws_message_bytes)
            .shutdown_retry(
                Duration::from_millis(self.shutdown_retry_min_ms),
                Duration::from_millis(self.shutdown_retry_spread_ms),
            );
        match self.max_publish_rate.filter(|rate| *rate > 0) {
            Some(rate) => {
                let burst = self.publish_burst.unwrap_or(rate).max(1);
                config.publish_rate(rate, burst)
            }
            None => config,
        }
    }

    /// How long a client has to send a request's head.
    pub fn header_read_timeout(&self) -> Duration {
        Duration::from_millis(self.header_read_timeout_ms)
    }

    /// The origins `--allowed-origin` allows, if any is given.
    ///
    /// # Errors
    ///
    /// A sentence naming the origin that is not `scheme://host[:port]`.
    pub fn allowed_origins(&self) -> Result<Option<AllowedOrigins>, String> {
        if self.allowed_origins.is_empty() {
            return Ok(None);
        }
        if self.allowed_origins.iter().any(|origin| origin == "*") {
            return Ok(Some(AllowedOrigins::any()));
        }
        AllowedOrigins::list(&self.allowed_origins)
            .map(Some)
            .map_err(|error| format!("--allowed-origin: {error}"))
    }

    /// The built-in authorizer, if `--publish-token` or `--read-token-key`
    /// asks for one.
    pub fn authorizer(&self) -> Option<TokenAuth> {
        if self.publish_token.is_none() && self.read_token_key.is_none() {
            return None;
        }
        Some(TokenAuth::new(
            self.publish_token.clone(),
            self.read_token_key.clone().map(String::into_bytes),
        ))
    }
}

/// CORS for pages of `allowed` origins, as the wire protocol needs it:
/// preflights answered for `GET`, `POST` and `DELETE` with the headers
/// clients send (`Authorization`, `Content-Type`, `Last-Event-ID`,
/// `If-None-Match`), and the headers clients read exposed (`ETag`,
/// `Retry-After`, `WWW-Authenticate`). Pair it with
/// [`CheckOriginLayer`](push_tower::origin::CheckOriginLayer), which covers
/// WebSocket, where CORS does not apply.
pub fn cors(allowed: &AllowedOrigins) -> CorsLayer {
    use push_tower::origin::{
        CORS_EXPOSED_HEADERS, CORS_MAX_AGE, CORS_METHODS, CORS_REQUEST_HEADERS,
    };
    let allow_origin = match allowed.as_list() {
        None => AllowOrigin::any(),
        Some(list) => AllowOrigin::list(list.iter().cloned()),
    };
    CorsLayer::new()
        .allow_origin(allow_origin)
        .allow_methods(CORS_METHODS)
        .allow_headers(CORS_REQUEST_HEADERS)
        .expose_headers(CORS_EXPOSED_HEADERS)
        .max_age(CORS_MAX_AGE)
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
