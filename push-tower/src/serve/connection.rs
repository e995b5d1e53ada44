//! The request extension through which techniques reach past the request to
//! the connection that [`serve`](super::serve()) runs.

use std::fmt;
use std::net::SocketAddr;

use http::Version;

use super::limits::SubscriptionSlot;
use super::server_push::ServerPush;
use super::upgrade::H2Upgrade;
use crate::stalled_reader::StalledReader;

/// What [`serve`](super::serve()) attaches to every request it hands to the
/// service: the stream's HTTP/2 push link, the stream of an HTTP/2
/// extended `CONNECT` once answered, the HTTP/2 connection's count of
/// subscriptions, the HTTP/1.1 connection's stalled-reader watch, and the
/// client's [address](Self::peer_addr). [`http2_push`](crate::http2_push)
/// pushes through it, [`ws`](crate::ws) takes an HTTP/2 stream over through
/// it, every stream counts itself against
/// [`Serve::max_subscriptions_per_connection`](super::Serve::max_subscriptions_per_connection)
/// and uses the watch to free a connection whose client stopped reading.
///
/// Its contents are private. Code that only passes requests on needs nothing
/// from it; a framework that builds a new request from the one `serve` gave
/// it (warp does, inside its filters) keeps these features only if it
/// copies this extension over, along with hyper's `OnUpgrade` and
/// `Protocol`, and restores the request's [version](Self::version):
///
/// ```
/// use push_tower::serve::ConnectionHandle;
///
/// fn rebuild(original: &http::Request<()>) -> http::Request<()> {
///     let mut rebuilt = http::Request::new(());
///     if let Some(handle) = original.extensions().get::<ConnectionHandle>() {
///         *rebuilt.version_mut() = handle.version();
///         rebuilt.extensions_mut().insert(handle.clone());
///     }
///     rebuilt
/// }
/// # let _ = rebuild(&http::Request::new(()));
/// ```
#[derive(Clone)]
pub struct ConnectionHandle {
    pub(crate) version: Version,
    pub(crate) server_push: Option<ServerPush>,
    pub(crate) upgrade: Option<H2Upgrade>,
    pub(crate) stalled_reader: Option<StalledReader>,
    pub(crate) subscription: Option<SubscriptionSlot>,
    pub(crate) peer_addr: Option<SocketAddr>,
}

impl ConnectionHandle {
    /// A handle with nothing attached yet, for a connection speaking
    /// `version`.
    pub(crate) fn new(version: Version) -> Self {
        ConnectionHandle {
            version,
            server_push: None,
            upgrade: None,
            stalled_reader: None,
            subscription: None,
            peer_addr: None,
        }
    }

    /// The HTTP version the connection speaks. Techniques answer by it (a
    /// WebSocket over HTTP/2 opens with `CONNECT`, over HTTP/1.1 with
    /// `Upgrade`), so a framework that rebuilds requests without their
    /// version restores it from here.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The address of the client at the other end of the connection (a
    /// proxy's, behind one), for decisions by address such as
    /// authorization or rate limits; `None` on a handle not made by
    /// `serve`.
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.peer_addr
    }

    /// Counts the request's stream as one of its HTTP/2 connection's
    /// subscriptions, until the stream ends; nothing to count on HTTP/1.1
    /// (one stream per connection) or outside `serve`.
    ///
    /// # Errors
    ///
    /// `too_many_subscriptions` when the connection holds its limit.
    pub(crate) fn take_subscription(&self) -> Result<(), push_core::wire::WireError> {
        self.subscription
            .as_ref()
            .map_or(Ok(()), SubscriptionSlot::take)
    }

    /// The handle a request carries, if `serve` gave it one.
    pub(crate) fn of(extensions: &http::Extensions) -> Option<&ConnectionHandle> {
        extensions.get::<ConnectionHandle>()
    }
}

impl fmt::Debug for ConnectionHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectionHandle")
            .field("version", &self.version)
            .field("server_push", &self.server_push.is_some())
            .field("upgrade", &self.upgrade.is_some())
            .field("stalled_reader", &self.stalled_reader.is_some())
            .field("subscription", &self.subscription.is_some())
            .field("peer_addr", &self.peer_addr)
            .finish()
    }
}
