//! A channel source of your own, served by every technique.
//!
//! ```text
//! cargo run -p push-tower --example custom_backend -- 127.0.0.1:8081
//! cargo run -p conformance -- --url http://127.0.0.1:8081
//! ```
//!
//! `Remote` stands in for a store on another machine: it keeps its own map
//! of channels, each reached only through push-core's `Channel` trait, and
//! every call answers only after a short sleep, as a network round trip
//! would. Nothing in it is the built-in `Hub`: push-tower's router serves it
//! through the `Channels` trait alone. Its channels keep their events in a
//! `MemoryChannel` here; a real backend would talk to its store instead.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use futures_core::Stream;
use push_core::{
    Channel, ChannelInfo, ChannelName, Channels, Error, EventId, Item, Limits, Lookup,
    MemoryChannel, Message, Start, Subscription,
};

/// How long every call to the store takes.
const ROUND_TRIP: Duration = Duration::from_millis(1);

/// A channel source over any [`Channel`] implementation, with channels made
/// by `make` on first use and answers that come only after an `await`.
#[derive(Clone)]
pub(crate) struct Remote<Ch> {
    state: Arc<State<Ch>>,
}

struct State<Ch> {
    limits: Limits,
    max_channels: usize,
    make: fn(Limits) -> Ch,
    channels: Mutex<HashMap<ChannelName, Arc<Ch>>>,
    /// Operations served, to show that this source, not a hub, did the work.
    calls: AtomicU64,
}

impl<Ch: Channel> Remote<Ch> {
    /// A source whose channels `make` creates with `limits`.
    pub(crate) fn new(limits: Limits, max_channels: usize, make: fn(Limits) -> Ch) -> Self {
        Remote {
            state: Arc::new(State {
                limits,
                max_channels,
                make,
                channels: Mutex::new(HashMap::new()),
                calls: AtomicU64::new(0),
            }),
        }
    }

    /// How many operations the source has served.
    pub(crate) fn calls(&self) -> u64 {
        self.state.calls.load(Ordering::Relaxed)
    }

    /// A network round trip's worth of waiting, counted as one call.
    async fn round_trip(&self) {
        tokio::time::sleep(ROUND_TRIP).await;
        self.state.calls.fetch_add(1, Ordering::Relaxed);
    }

    /// A round trip, then the channel of `name`.
    async fn channel(&self, name: &ChannelName) -> Result<Arc<Ch>, Error> {
        self.round_trip().await;
        let mut channels = self.channels();
        if let Some(channel) = channels.get(name) {
            return Ok(Arc::clone(channel));
        }
        if channels.len() >= self.state.max_channels {
            return Err(Error::TooManyChannels {
                max: self.state.max_channels,
            });
        }
        let channel = Arc::new((self.state.make)(self.state.limits));
        channels.insert(name.clone(), Arc::clone(&channel));
        Ok(channel)
    }

    /// Forgets `channel` if it is still the one under `name`: its
    /// incarnation closed, so the name's next use starts a new one.
    fn forget(&self, name: &ChannelName, channel: &Arc<Ch>) {
        let mut channels = self.channels();
        if channels
            .get(name)
            .is_some_and(|held| Arc::ptr_eq(held, channel))
        {
            channels.remove(name);
        }
    }

    fn channels(&self) -> std::sync::MutexGuard<'_, HashMap<ChannelName, Arc<Ch>>> {
        self.state
            .channels
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl<Ch: Channel> Channels for Remote<Ch> {
    type Subscription = RemoteSubscription<Ch::Subscription>;

    fn limits(&self) -> Limits {
        self.state.limits
    }

    async fn publish(&self, name: &ChannelName, message: Message) -> Result<EventId, Error> {
        loop {
            let channel = self.channel(name).await?;
            match channel.publish(message.clone()).await {
                // Closed between the lookup and the publish: the next
                // incarnation takes it.
                Err(Error::Closed) => self.forget(name, &channel),
                result => return result,
            }
        }
    }

    async fn subscribe(
        &self,
        name: &ChannelName,
        start: Start,
    ) -> Result<Self::Subscription, Error> {
        let channel = self.channel(name).await?;
        let inner = channel.subscribe(start).await?;
        Ok(RemoteSubscription { inner, taken: 0 })
    }

    async fn close(&self, name: &ChannelName) -> Result<bool, Error> {
        self.round_trip().await;
        let removed = self.channels().remove(name);
        match removed {
            Some(channel) => {
                channel.close().await?;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    async fn describe(&self, name: &ChannelName) -> Result<ChannelInfo, Error> {
        self.channel(name).await?.describe().await
    }

    async fn lookup(&self, name: &ChannelName, id: EventId) -> Result<Lookup, Error> {
        self.channel(name).await?.lookup(id).await
    }
}

/// A subscription of [`Remote`]: the channel's own, counting what it hands
/// out.
pub(crate) struct RemoteSubscription<S> {
    inner: S,
    taken: u64,
}

impl<S: Subscription> Stream for RemoteSubscription<S> {
    type Item = Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Item>> {
        let item = Pin::new(&mut self.inner).poll_next(cx);
        if let Poll::Ready(Some(_)) = item {
            self.taken += 1;
        }
        item
    }
}

impl<S: Subscription> Subscription for RemoteSubscription<S> {
    fn poll_take(
        &mut self,
        cx: &mut Context<'_>,
        out: &mut Vec<Item>,
        max_items: usize,
        max_bytes: usize,
    ) -> Poll<usize> {
        let taken = self.inner.poll_take(cx, out, max_items, max_bytes);
        if let Poll::Ready(n) = taken {
            self.taken += n as u64;
        }
        taken
    }

    fn on_lag(&mut self, waker: Waker) {
        self.inner.on_lag(waker);
    }
}

/// The remote source over in-memory channels, with limits the conformance
/// suite reaches quickly.
pub(crate) fn source() -> Remote<MemoryChannel> {
    Remote::new(
        conformance::runner::suite_limits(),
        10_000,
        MemoryChannel::new,
    )
}

#[allow(dead_code)] // The test includes this file for the source alone.
#[tokio::main]
async fn main() -> std::io::Result<()> {
    let address = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8081".to_owned());
    let source = source();
    let push = push_tower::Push::new(source.clone(), push_tower::Config::default());
    let listener = tokio::net::TcpListener::bind(&address).await?;
    println!(
        "serving a custom backend on http://{}",
        listener.local_addr()?
    );
    push_tower::serve(listener, push.router())
        .with_push(push.clone())
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    println!("stopped after {} calls to the store", source.calls());
    Ok(())
}
