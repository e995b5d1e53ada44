//! The servers push is compared with, written the way a user would write
//! them without push.
//!
//! ```text
//! $ push-bench baseline tungstenite-default --listen 127.0.0.1:0
//! tungstenite-default listening on http://127.0.0.1:40123
//! ```
//!
//! Each baseline prints the line push-server prints once it listens
//! (`<name> listening on http://ADDR`, read by
//! [`parse_listening_line`](crate::server::parse_listening_line)) and serves
//! until it is killed.
//!
//! - [`Baseline::TungsteniteDefault`]: a WebSocket server on tokio-tungstenite
//!   with its default configuration. Every connection gets the small text
//!   message push sends first (the `position` signal), then the server reads
//!   until the socket closes, as a subscription server that only pushes
//!   would. Any path is accepted, so it answers the URL push serves.

use std::io::Write as _;
use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;

use crate::{Error, Result};

/// The first message every connection gets: what push sends first on a
/// WebSocket (the `position` signal of a channel with no events).
pub const FIRST_MESSAGE: &str = r#"{"signal":"position","cursor":"0000000000000000-0"}"#;

/// A baseline server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Baseline {
    /// WebSocket on tokio-tungstenite with its default configuration
    /// (`accept_async`: 128 KiB read buffer).
    TungsteniteDefault,
}

impl Baseline {
    /// Its name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Baseline::TungsteniteDefault => "tungstenite-default",
        }
    }
}

/// Serves `baseline` on `listen` until the process is killed, after printing
/// `<name> listening on http://ADDR` to stdout.
///
/// # Errors
///
/// When it cannot listen on `listen` or cannot write to stdout. Errors on one
/// connection end that connection only.
pub async fn serve(baseline: Baseline, listen: SocketAddr) -> Result<()> {
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|error| Error::new(format!("cannot listen on {listen}: {error}")))?;
    let address = listener.local_addr().unwrap_or(listen);
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{} listening on http://{address}", baseline.name())
        .and_then(|()| stdout.flush())
        .map_err(|error| Error::new(format!("cannot write to stdout: {error}")))?;
    drop(stdout);
    match baseline {
        Baseline::TungsteniteDefault => tungstenite_default(listener).await,
    }
}

/// The accept loop every tokio-tungstenite example has, made to survive
/// running out of file descriptors (which would otherwise end it).
async fn tungstenite_default(listener: TcpListener) -> Result<()> {
    let mut refusals = 0_u64;
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(tungstenite_default_connection(stream));
            }
            Err(error) => {
                refusals += 1;
                if refusals.is_power_of_two() {
                    eprintln!("tungstenite-default: accept failed ({refusals} so far): {error}");
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

async fn tungstenite_default_connection(stream: TcpStream) {
    let Ok(mut socket) = tokio_tungstenite::accept_async(stream).await else {
        return;
    };
    if socket.send(Message::text(FIRST_MESSAGE)).await.is_err() {
        return;
    }
    while let Some(Ok(_)) = socket.next().await {}
}
