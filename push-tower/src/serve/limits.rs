//! The places [`serve`](super::serve()) gives out: connections per server
//! and per peer address, taken when a connection is accepted and given back
//! when it closes; streaming subscriptions per HTTP/2 connection, taken by
//! the technique that starts one and given back when its stream ends. The
//! same count keeps the streams open on the connection, so that it knows
//! when it is idle.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::{ready, Ready};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use http::header::{self, HeaderValue};
use http::{Request, Response, Version};
use push_core::wire::WireError;
use tokio::sync::watch;
use tokio::time::{Duration, Instant};

use super::RequestBody;
use crate::body::PushBody;
use crate::error;

/// `Retry-After` (seconds) on connections refused for a limit.
pub(super) const REFUSAL_RETRY_AFTER_SECS: u32 = 5;

/// The open connections, in all and per peer address.
#[derive(Debug)]
pub(super) struct Connections {
    max: usize,
    max_per_peer: usize,
    open: Mutex<Open>,
}

#[derive(Debug, Default)]
struct Open {
    all: usize,
    per_peer: HashMap<IpAddr, usize>,
}

/// Why a connection was not admitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Refusal {
    /// The server holds its limit.
    Server { max: usize },
    /// The peer's address holds its limit.
    Peer { max: usize },
}

impl Refusal {
    fn error(self) -> WireError {
        match self {
            Refusal::Server { max } => {
                WireError::too_many_connections(max, REFUSAL_RETRY_AFTER_SECS)
            }
            Refusal::Peer { max } => {
                WireError::too_many_peer_connections(max, REFUSAL_RETRY_AFTER_SECS)
            }
        }
    }
}

impl Connections {
    pub(super) fn new(max: usize, max_per_peer: usize) -> Arc<Self> {
        Arc::new(Connections {
            max,
            max_per_peer,
            open: Mutex::new(Open::default()),
        })
    }

    /// A place for a connection from `peer`, given back when the returned
    /// guard drops.
    pub(super) fn admit(self: &Arc<Self>, peer: IpAddr) -> Result<Admitted, Refusal> {
        // An IPv4 client on a dual-stack socket is the same client either way.
        let peer = peer.to_canonical();
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if open.all >= self.max {
            return Err(Refusal::Server { max: self.max });
        }
        let of_peer = open.per_peer.entry(peer).or_default();
        if *of_peer >= self.max_per_peer {
            return Err(Refusal::Peer {
                max: self.max_per_peer,
            });
        }
        *of_peer += 1;
        open.all += 1;
        Ok(Admitted {
            connections: self.clone(),
            peer,
        })
    }
}

/// An admitted connection's place; dropping it frees the place.
#[derive(Debug)]
pub(super) struct Admitted {
    connections: Arc<Connections>,
    peer: IpAddr,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut open = self
            .connections
            .open
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        open.all -= 1;
        if let Some(of_peer) = open.per_peer.get_mut(&self.peer) {
            *of_peer -= 1;
            if *of_peer == 0 {
                open.per_peer.remove(&self.peer);
            }
        }
    }
}

/// The service of a refused connection: every request is answered with the
/// refusal (`Connection: close` on HTTP/1.1), and the first answer asks the
/// connection to close (`GOAWAY` on HTTP/2).
#[derive(Clone, Debug)]
pub(super) struct Refused {
    refusal: Refusal,
    answered: Arc<watch::Sender<bool>>,
}

impl Refused {
    /// The service, and the watch that turns when it has answered.
    pub(super) fn new(refusal: Refusal) -> (Self, watch::Receiver<bool>) {
        let (answered, close) = watch::channel(false);
        let service = Refused {
            refusal,
            answered: Arc::new(answered),
        };
        (service, close)
    }
}

impl tower_service::Service<Request<RequestBody>> for Refused {
    type Response = Response<PushBody>;
    type Error = Infallible;
    type Future = Ready<Result<Response<PushBody>, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<RequestBody>) -> Self::Future {
        let mut response = error::response(self.refusal.error());
        if request.version() <= Version::HTTP_11 {
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        self.answered.send_replace(true);
        ready(Ok(response))
    }
}

/// The streams open on one HTTP/2 connection, and the streaming
/// subscriptions among them.
#[derive(Debug)]
pub(super) struct Subscriptions {
    max: usize,
    open: AtomicUsize,
    streams: AtomicUsize,
    opened: Instant,
    /// When the connection last had its last stream end, in nanoseconds
    /// since `opened`: read by the connection only when its idle timer
    /// fires, so a stream that ends costs a clock read, not a wake.
    idle_since: AtomicU64,
}

impl Subscriptions {
    /// The count of a connection opened now.
    pub(super) fn new(max: usize) -> Arc<Self> {
        Arc::new(Subscriptions {
            max,
            open: AtomicUsize::new(0),
            streams: AtomicUsize::new(0),
            opened: Instant::now(),
            idle_since: AtomicU64::new(0),
        })
    }

    /// Since when the connection has had no open stream, or `None` while
    /// it has one.
    pub(super) fn idle_since(&self) -> Option<Instant> {
        if self.streams.load(Ordering::Acquire) != 0 {
            return None;
        }
        let since = Duration::from_nanos(self.idle_since.load(Ordering::Acquire));
        Some(self.opened + since)
    }
}

/// One HTTP/2 stream's claim on its connection's [`Subscriptions`], reached
/// by techniques through the [`ConnectionHandle`](super::ConnectionHandle).
#[derive(Clone, Debug)]
pub(crate) struct SubscriptionSlot {
    subscriptions: Arc<Subscriptions>,
    taken: Arc<AtomicBool>,
}

impl SubscriptionSlot {
    /// A slot for a new stream, and the guard that frees it when the stream
    /// (or the socket that took it over) ends.
    pub(super) fn new(subscriptions: &Arc<Subscriptions>) -> (Self, SlotGuard) {
        subscriptions.streams.fetch_add(1, Ordering::AcqRel);
        let slot = SubscriptionSlot {
            subscriptions: subscriptions.clone(),
            taken: Arc::new(AtomicBool::new(false)),
        };
        (slot.clone(), SlotGuard(slot))
    }

    /// Counts this stream as a subscription of its connection.
    ///
    /// # Errors
    ///
    /// `too_many_subscriptions` when the connection holds its limit.
    pub(crate) fn take(&self) -> Result<(), WireError> {
        if self.taken.load(Ordering::Acquire) {
            return Ok(());
        }
        let max = self.subscriptions.max;
        self.subscriptions
            .open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |open| {
                (open < max).then_some(open + 1)
            })
            .map_err(|_| WireError::too_many_subscriptions(max))?;
        self.taken.store(true, Ordering::Release);
        Ok(())
    }
}

/// Frees its stream's subscription, if one was taken, and its place among
/// the connection's open streams, on drop.
#[derive(Debug)]
pub(crate) struct SlotGuard(SubscriptionSlot);

impl Drop for SlotGuard {
    fn drop(&mut self) {
        let subscriptions = &self.0.subscriptions;
        if self.0.taken.swap(false, Ordering::AcqRel) {
            subscriptions.open.fetch_sub(1, Ordering::AcqRel);
        }
        if subscriptions.streams.fetch_sub(1, Ordering::AcqRel) == 1 {
            // The latest wins, should a stream opened since end first.
            let since = subscriptions.opened.elapsed().as_nanos();
            let since = u64::try_from(since).unwrap_or(u64::MAX);
            subscriptions.idle_since.fetch_max(since, Ordering::AcqRel);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    const A: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

    #[test]
    fn the_server_limit_comes_before_the_peer_limit_and_places_come_back() {
        let connections = Connections::new(3, 2);
        let a1 = connections.admit(A).unwrap();
        let _a2 = connections.admit(A).unwrap();
        assert_eq!(connections.admit(A).unwrap_err(), Refusal::Peer { max: 2 });
        let _b1 = connections.admit(B).unwrap();
        assert_eq!(
            connections.admit(B).unwrap_err(),
            Refusal::Server { max: 3 }
        );
        drop(a1);
        let _a3 = connections.admit(A).unwrap();
    }

    #[test]
    fn a_mapped_ipv4_address_is_the_same_peer() {
        let connections = Connections::new(10, 1);
        let _a = connections.admit(A).unwrap();
        let mapped = IpAddr::V6(Ipv4Addr::new(127, 0, 0, 1).to_ipv6_mapped());
        assert!(connections.admit(mapped).is_err());
    }

    #[test]
    fn a_connection_is_idle_since_its_last_stream_ended() {
        let subscriptions = Subscriptions::new(4);
        let opened = subscriptions
            .idle_since()
            .expect("a new connection is idle");
        let (_, first) = SubscriptionSlot::new(&subscriptions);
        let (_, second) = SubscriptionSlot::new(&subscriptions);
        assert_eq!(subscriptions.idle_since(), None);
        drop(first);
        assert_eq!(subscriptions.idle_since(), None);
        std::thread::sleep(Duration::from_millis(2));
        drop(second);
        let since = subscriptions.idle_since().expect("no stream is open");
        assert!(since > opened, "{since:?} after {opened:?}");
    }

    #[test]
    fn a_slot_is_taken_once_and_freed_with_its_stream() {
        let subscriptions = Subscriptions::new(1);
        let (slot, guard) = SubscriptionSlot::new(&subscriptions);
        slot.take().unwrap();
        slot.take().unwrap();
        let (other, _other_guard) = SubscriptionSlot::new(&subscriptions);
        assert_eq!(
            other.take().unwrap_err().code(),
            WireError::too_many_subscriptions(1).code()
        );
        drop(guard);
        other.take().unwrap();
    }
}
