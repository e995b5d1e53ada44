//! What the fuzz targets reach: the query decoder, the long-poll hold, the
//! start position as a request chooses it, the WebSocket handshake check and
//! the HTTP/2 `SETTINGS_ENABLE_PUSH` watch. See the repository's
//! `fuzz/README.md`.

use std::time::Duration;

use http::{HeaderMap, Request, StatusCode, Uri};
use push_core::wire::WireError;
use push_core::{ChannelName, Start};

use crate::request::{self, Query};

/// The values [`Query`] keeps from a request's query string, owned.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QueryValues {
    /// `after`.
    pub after: Option<String>,
    /// `from`.
    pub from: Option<String>,
    /// `event`.
    pub event: Option<String>,
    /// `timeout`.
    pub timeout: Option<String>,
}

/// Decodes `uri`'s query as every technique does.
///
/// # Errors
///
/// The wire error a client gets for a query the contract refuses.
pub fn query(uri: &Uri) -> Result<QueryValues, WireError> {
    let query = Query::parse(uri)?;
    Ok(QueryValues {
        after: query.after.map(|value| value.into_owned()),
        from: query.from.map(|value| value.into_owned()),
        event: query.event.map(|value| value.into_owned()),
        timeout: query.timeout.map(|value| value.into_owned()),
    })
}

/// Whether every value of the query that was kept borrows from the URI
/// (nothing to decode), or `None` when the query is refused.
pub fn query_borrows(uri: &Uri) -> Option<bool> {
    let query = Query::parse(uri).ok()?;
    let borrows = [&query.after, &query.from, &query.event, &query.timeout]
        .into_iter()
        .flatten()
        .all(|value| matches!(value, std::borrow::Cow::Borrowed(_)));
    Some(borrows)
}

/// The long-poll hold `uri`'s query asks for.
///
/// # Errors
///
/// The wire error of a refused query or `timeout`.
pub fn hold(uri: &Uri, default: Duration, max: Duration) -> Result<Duration, WireError> {
    Query::parse(uri)?.hold(default, max)
}

/// Where a subscription with these headers and this URI starts.
///
/// # Errors
///
/// The wire error of a refused query or start position.
pub fn start(headers: &HeaderMap, uri: &Uri) -> Result<Start, WireError> {
    request::start(headers, &Query::parse(uri)?)
}

/// A channel name from a path segment, as the router checks it.
///
/// # Errors
///
/// The wire error of a refused name.
pub fn channel_name(raw: &str) -> Result<ChannelName, WireError> {
    request::channel_name(raw)
}

/// The WebSocket opening handshake's verdict: `Ok(Some(accept))` for an
/// HTTP/1.1 upgrade, `Ok(None)` for an HTTP/2 extended CONNECT, else the
/// refusal's status.
///
/// # Errors
///
/// The status of the refusal.
pub fn websocket_handshake<B>(request: &Request<B>) -> Result<Option<String>, StatusCode> {
    crate::ws::check_handshake(request)
}

/// The watch over an HTTP/2 client's bytes that learns whether it accepts
/// server push.
#[derive(Debug)]
pub struct PushSettingWatch {
    watch: crate::serve::peer_settings::PeerSettings,
    enabled: crate::serve::peer_settings::PushEnabled,
}

impl PushSettingWatch {
    /// A watch at the start of a connection, before the client preface.
    pub fn new() -> Self {
        let (watch, enabled) = crate::serve::peer_settings::PeerSettings::new();
        PushSettingWatch { watch, enabled }
    }

    /// Takes note of the next bytes the client sent.
    pub fn observe(&mut self, bytes: &[u8]) {
        self.watch.observe(bytes);
    }

    /// Whether the client's settings so far allow push.
    pub fn push_enabled(&self) -> bool {
        self.enabled.get()
    }
}

impl Default for PushSettingWatch {
    fn default() -> Self {
        PushSettingWatch::new()
    }
}
