//! The list of techniques: one variant each, shared by the router, the
//! conformance clients and the docs.
//!
//! Adding a technique is one variant here and one module in the server
//! crates; everything that lists techniques iterates [`Technique::ALL`].
//!
//! ```
//! use push_core::{Shape, Technique};
//!
//! let ndjson = Technique::from_path_segment("stream").unwrap();
//! assert_eq!(ndjson, Technique::Ndjson);
//! assert_eq!(ndjson.name(), "ndjson");
//! assert_eq!(ndjson.shape(), Shape::Stream);
//! assert_eq!(
//!     Technique::ALL.map(Technique::path_segment),
//!     ["poll", "longpoll", "sse", "stream", "ws", "push"]
//! );
//! ```

use std::fmt;

/// A way of delivering a channel's events to a client.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Technique {
    /// Short (interval) polling: `GET …/poll` answers at once.
    Poll,
    /// Long polling: `GET …/longpoll` is held until something is new.
    LongPoll,
    /// Server-Sent Events: `GET …/sse`, one `text/event-stream` response.
    Sse,
    /// HTTP streaming as newline-delimited JSON: `GET …/stream`.
    Ndjson,
    /// WebSocket: `GET …/ws` upgraded over HTTP/1.1, or an extended
    /// `CONNECT` over HTTP/2; one text message per event.
    WebSocket,
    /// HTTP/2 server push: `GET …/push` holds a parent stream of signals,
    /// and each event arrives as a pushed response for its own URL (inline
    /// on the parent stream where push is unavailable).
    Http2Push,
}

/// How a technique's exchanges are shaped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Shape {
    /// One long-lived response or connection that states its position first
    /// and carries signals and heartbeats (SSE, NDJSON, WebSocket, HTTP/2
    /// push, most custom transports).
    Stream,
    /// Repeated requests that each answer a batch at once (short polling).
    Poll,
    /// Repeated requests that are held until something is new or a timeout
    /// passes (long polling); a timeout answers no events.
    LongPoll,
}

impl Technique {
    /// Every technique, in the order the docs list them.
    pub const ALL: [Technique; 6] = [
        Technique::Poll,
        Technique::LongPoll,
        Technique::Sse,
        Technique::Ndjson,
        Technique::WebSocket,
        Technique::Http2Push,
    ];

    /// The technique's name in docs and reports: `poll`, `longpoll`, `sse`,
    /// `ndjson`, `ws`, `push`.
    pub fn name(self) -> &'static str {
        match self {
            Technique::Poll => "poll",
            Technique::LongPoll => "longpoll",
            Technique::Sse => "sse",
            Technique::Ndjson => "ndjson",
            Technique::WebSocket => "ws",
            Technique::Http2Push => "push",
        }
    }

    /// The last segment of the technique's route,
    /// `/channels/{name}/{segment}` (`stream` for NDJSON).
    pub fn path_segment(self) -> &'static str {
        match self {
            Technique::Ndjson => "stream",
            other => other.name(),
        }
    }

    /// How the technique's exchanges are shaped.
    pub fn shape(self) -> Shape {
        match self {
            Technique::Poll => Shape::Poll,
            Technique::LongPoll => Shape::LongPoll,
            Technique::Sse | Technique::Ndjson | Technique::WebSocket | Technique::Http2Push => {
                Shape::Stream
            }
        }
    }

    /// The technique served at `/channels/{name}/{segment}`, if any.
    pub fn from_path_segment(segment: &str) -> Option<Technique> {
        Technique::ALL
            .into_iter()
            .find(|t| t.path_segment() == segment)
    }

    /// The technique with this [name](Technique::name) or
    /// [path segment](Technique::path_segment), if any.
    pub fn from_name(name: &str) -> Option<Technique> {
        Technique::ALL
            .into_iter()
            .find(|t| t.name() == name || t.path_segment() == name)
    }
}

impl fmt::Display for Technique {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_segments_are_unique_and_round_trip() {
        for technique in Technique::ALL {
            assert_eq!(Technique::from_name(technique.name()), Some(technique));
            assert_eq!(
                Technique::from_path_segment(technique.path_segment()),
                Some(technique)
            );
        }
        assert_eq!(Technique::from_path_segment("ndjson"), None);
        assert_eq!(Technique::from_name("stream"), Some(Technique::Ndjson));
    }
}
