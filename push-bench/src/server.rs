//! Every server under test: how to start it and where it listens.
//!
//! ```
//! use push_bench::server::{parse_listening_line, Server};
//!
//! let line = "push-server listening on http://127.0.0.1:40123";
//! assert_eq!(
//!     parse_listening_line(line),
//!     Some("127.0.0.1:40123".parse().unwrap())
//! );
//! assert_eq!("tungstenite-default".parse::<Server>().unwrap().name(), "tungstenite-default");
//! ```
//!
//! Servers are separate processes: push is the `push-server` binary built
//! next to `push-bench`, and each baseline is `push-bench baseline <name>`.
//! Every one listens on a port the kernel picks (`--listen 127.0.0.1:0`) and
//! prints `<name> listening on http://ADDR` once it does.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::OnceLock;

use clap::ValueEnum;

use crate::baseline::Baseline;
use crate::technique::Technique;
use crate::{Error, Result};

/// A server under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Server {
    /// `push-server`.
    Push,
    /// A baseline, served by `push-bench baseline`.
    Baseline(Baseline),
}

impl Server {
    /// Its name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Server::Push => "push",
            Server::Baseline(baseline) => baseline.name(),
        }
    }

    /// Whether it serves `technique` (at push's path for it). push serves
    /// every one; see [`Baseline::serves`].
    pub fn serves(self, technique: Technique) -> bool {
        match self {
            Server::Push => true,
            Server::Baseline(baseline) => baseline.serves(technique),
        }
    }

    /// Whether it serves h2c (HTTP/2 with prior knowledge) besides
    /// HTTP/1.1. push-server does; see [`Baseline::serves_h2c`].
    pub fn serves_h2c(self) -> bool {
        match self {
            Server::Push => true,
            Server::Baseline(baseline) => baseline.serves_h2c(),
        }
    }

    /// The program and arguments that start it listening on a port of
    /// 127.0.0.1 the kernel picks.
    ///
    /// # Errors
    ///
    /// When the path of the running executable is unknown, or, for push,
    /// when `push-server` is not next to it (it has not been built).
    pub fn command(self) -> Result<(PathBuf, Vec<String>)> {
        let bench = std::env::current_exe().map_err(|error| {
            Error::new(format!(
                "cannot find the path of push-bench itself: {error}"
            ))
        })?;
        let listen = ["--listen".to_owned(), "127.0.0.1:0".to_owned()];
        match self {
            Server::Push => {
                let push_server = bench.with_file_name("push-server");
                if !push_server.is_file() {
                    return Err(Error::new(format!(
                        "{} is missing: run `cargo build --release -p push-server -p push-bench` \
                         (with the same CARGO_TARGET_DIR) and run push-bench from that target directory",
                        push_server.display()
                    )));
                }
                Ok((push_server, listen.into()))
            }
            Server::Baseline(baseline) => {
                let mut args = vec!["baseline".to_owned(), baseline.name().to_owned()];
                args.extend(listen);
                Ok((bench, args))
            }
        }
    }
}

impl fmt::Display for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl ValueEnum for Server {
    fn value_variants<'a>() -> &'a [Self] {
        static ALL: OnceLock<Vec<Server>> = OnceLock::new();
        ALL.get_or_init(|| {
            std::iter::once(Server::Push)
                .chain(
                    Baseline::value_variants()
                        .iter()
                        .copied()
                        .map(Server::Baseline),
                )
                .collect()
        })
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(self.name()))
    }
}

impl FromStr for Server {
    type Err = Error;

    fn from_str(name: &str) -> Result<Self> {
        Server::value_variants()
            .iter()
            .copied()
            .find(|server| server.name() == name)
            .ok_or_else(|| {
                let known: Vec<_> = Server::value_variants().iter().map(|s| s.name()).collect();
                Error::new(format!(
                    "no server is called {name:?}; the servers are {}",
                    known.join(", ")
                ))
            })
    }
}

/// The address in a `<name> listening on http://ADDR` line, the line
/// push-server and every baseline print once they listen.
///
/// Returns `None` for any other line.
pub fn parse_listening_line(line: &str) -> Option<SocketAddr> {
    let (_, address) = line.trim_end().split_once(" listening on http://")?;
    address.trim_end_matches('/').parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_address_push_server_and_the_baselines_print() {
        let expected: SocketAddr = "127.0.0.1:40123".parse().unwrap();
        for line in [
            "push-server listening on http://127.0.0.1:40123",
            "push-server listening on http://127.0.0.1:40123\n",
            "tungstenite-default listening on http://127.0.0.1:40123/",
        ] {
            assert_eq!(parse_listening_line(line), Some(expected), "{line:?}");
        }
        assert_eq!(
            parse_listening_line("x listening on http://[::1]:8080"),
            Some("[::1]:8080".parse().unwrap())
        );
    }

    #[test]
    fn other_lines_are_none() {
        for line in [
            "",
            "push-server stopped",
            "push-server listening on https://127.0.0.1:1",
            "push-server listening on http://localhost:8080",
            "push-server listening on http://127.0.0.1",
        ] {
            assert_eq!(parse_listening_line(line), None, "{line:?}");
        }
    }

    #[test]
    fn every_server_parses_from_its_name() {
        for server in Server::value_variants() {
            assert_eq!(server.name().parse::<Server>().unwrap(), *server);
        }
        assert_eq!("push".parse::<Server>().unwrap(), Server::Push);
        assert!("axum".parse::<Server>().is_err());
        for name in ["axum-sse", "raw-writer", "hyper-stream"] {
            let server = name.parse::<Server>().unwrap();
            assert_eq!(server.name(), name);
            assert!(!server.serves(Technique::Ws), "{name}");
            assert!(server.serves(Technique::Ndjson), "{name}");
        }
        for technique in [Technique::Sse, Technique::Ndjson, Technique::Ws] {
            assert!(Server::Push.serves(technique));
        }
        assert!(Server::Push.serves_h2c());
        let tungstenite = "tungstenite-default".parse::<Server>().unwrap();
        assert!(tungstenite.serves(Technique::Ws) && !tungstenite.serves(Technique::Sse));
    }
}
