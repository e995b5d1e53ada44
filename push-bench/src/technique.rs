//! The push techniques a fan-out measures, and where each is served.
//!
//! ```
//! use push_bench::technique::Technique;
//!
//! assert_eq!(Technique::Ndjson.path("news"), "/channels/news/stream");
//! assert_eq!("ws".parse::<Technique>().unwrap(), Technique::Ws);
//! assert_eq!(Technique::Ws.label(), "WebSocket");
//! ```
//!
//! Every technique delivers the same events of one channel; what differs is
//! the framing (PROTOCOL.md): an SSE block, an NDJSON line, a WebSocket text
//! message. The first thing on every stream is the position.

use std::fmt;
use std::str::FromStr;

use clap::ValueEnum as _;

use crate::Error;

/// A technique a fan-out subscribes with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Technique {
    /// Server-Sent Events, `GET /channels/{name}/sse`: the position block
    /// (`id:` alone), then one block per event (`id:` and `data:`).
    Sse,
    /// HTTP streaming, `GET /channels/{name}/stream`: one JSON object per
    /// line, the `position` signal first, then one envelope per event.
    Ndjson,
    /// WebSocket, `GET /channels/{name}/ws` upgraded over HTTP/1.1: one text
    /// message per JSON object, the `position` signal first, then one
    /// envelope per event.
    Ws,
}

impl Technique {
    /// Its name on the command line and in reports: `sse`, `ndjson`, `ws`.
    pub fn name(self) -> &'static str {
        match self {
            Technique::Sse => "sse",
            Technique::Ndjson => "ndjson",
            Technique::Ws => "ws",
        }
    }

    /// Its name in the titles of reports: `SSE`, `NDJSON`, `WebSocket`.
    pub fn label(self) -> &'static str {
        match self {
            Technique::Sse => "SSE",
            Technique::Ndjson => "NDJSON",
            Technique::Ws => "WebSocket",
        }
    }

    /// The path that subscribes to `channel` with it.
    pub fn path(self, channel: &str) -> String {
        let suffix = match self {
            Technique::Sse => "sse",
            Technique::Ndjson => "stream",
            Technique::Ws => "ws",
        };
        format!("/channels/{channel}/{suffix}")
    }
}

impl fmt::Display for Technique {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Technique {
    type Err = Error;

    fn from_str(name: &str) -> Result<Self, Error> {
        Technique::value_variants()
            .iter()
            .copied()
            .find(|technique| technique.name() == name)
            .ok_or_else(|| {
                Error::new(format!(
                    "no technique is called {name:?}; the techniques are sse, ndjson, ws"
                ))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_technique_has_push_s_path() {
        assert_eq!(Technique::Sse.path("a"), "/channels/a/sse");
        assert_eq!(Technique::Ndjson.path("a"), "/channels/a/stream");
        assert_eq!(Technique::Ws.path("a"), "/channels/a/ws");
        for technique in Technique::value_variants() {
            assert_eq!(technique.name().parse::<Technique>().unwrap(), *technique);
        }
        assert!("websocket".parse::<Technique>().is_err());
    }
}
