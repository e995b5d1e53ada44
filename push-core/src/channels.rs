//! The `Channels` trait: the seam between techniques and storage.
//!
//! Every technique reaches storage through this trait, by channel name, so a
//! backend on a distributed engine (Redis Streams, say) or a store of your
//! own serves every technique unchanged. [`Hub`](crate::Hub), the in-memory
//! default, implements it; push-tower's services are generic over it.
//!
//! # The rules every implementation follows
//!
//! "Point N" is the numbered point of the repository's `PROTOCOL.md` ("The
//! semantics contract"); the conformance suite checks each through every
//! technique.
//!
//! 1. **Each name is one channel at a time.** Every operation on a name acts
//!    on that name's current incarnation, created on first use (a publish, a
//!    subscription, a description or a lookup). Within an incarnation the
//!    rules of [`Channel`](crate::Channel) hold: ids of one epoch counting
//!    from 1 (point 1), order and completeness (point 2), the position first
//!    and gaps said, never hidden (points 3 and 4), slow subscribers bounded
//!    (point 7), and a subscription caught up when
//!    [`Channels::subscribe`] returns: its position, gap and retained events
//!    ready without waiting.
//! 2. **Close ends an incarnation** (point 8). [`Channels::close`] gives every
//!    subscriber of the name [`Signal::Closed`](crate::Signal::Closed) after
//!    the events published before it. The name's next use starts a new
//!    incarnation with a new epoch, so cursors of the old one meet a gap
//!    (point 4); a publish never fails because the name was closed.
//! 3. **Same id, same event, on every node** (points 1, 3 and 10). A cursor
//!    given by one call resumes on any other call, from any process that
//!    shares the store; polls keep no session.
//! 4. **Limits are the source's.** [`Channels::limits`] are the limits of
//!    every channel of the source; the wire contract reports them in the
//!    channel info and servers read the heartbeat interval, the long-poll
//!    cap and the largest event from them. Publishing over
//!    [`Limits::max_event_bytes`] is [`Error::TooLarge`].
//! 5. **Never block.** Methods are async and their futures `Send`: a remote
//!    store awaits its I/O, and must not block a runtime thread. Dropping a
//!    future at any point leaves the source consistent.
//! 6. **Names are checked before they arrive.** Every method takes a
//!    [`ChannelName`], already checked against the naming rules; a source
//!    may refuse to create a channel past a cap of its own with
//!    [`Error::TooManyChannels`].
//!
//! A source that wraps another (a remote store, a log of each publish, a
//! test double that answers only after an `await`):
//!
//! ```
//! use push_core::{
//!     ChannelInfo, ChannelName, Channels, Data, Error, EventId, Hub, HubConfig, Limits,
//!     Lookup, MemorySubscription, Message, Start,
//! };
//!
//! /// Counts publishes, and stores in a hub.
//! #[derive(Clone)]
//! struct Counted {
//!     hub: Hub,
//!     published: std::sync::Arc<std::sync::atomic::AtomicU64>,
//! }
//!
//! impl Channels for Counted {
//!     type Subscription = MemorySubscription;
//!
//!     fn limits(&self) -> Limits {
//!         self.hub.limits()
//!     }
//!     async fn publish(&self, channel: &ChannelName, message: Message) -> Result<EventId, Error> {
//!         self.published.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
//!         Channels::publish(&self.hub, channel, message).await
//!     }
//!     async fn subscribe(&self, channel: &ChannelName, start: Start) -> Result<MemorySubscription, Error> {
//!         Channels::subscribe(&self.hub, channel, start).await
//!     }
//!     async fn close(&self, channel: &ChannelName) -> Result<bool, Error> {
//!         Channels::close(&self.hub, channel).await
//!     }
//!     async fn describe(&self, channel: &ChannelName) -> Result<ChannelInfo, Error> {
//!         Channels::describe(&self.hub, channel).await
//!     }
//!     async fn lookup(&self, channel: &ChannelName, id: EventId) -> Result<Lookup, Error> {
//!         Channels::lookup(&self.hub, channel, id).await
//!     }
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let counted = Counted { hub: Hub::new(HubConfig::default()), published: Default::default() };
//! let news = ChannelName::new("news")?;
//! counted.publish(&news, Message::new(Data::text("hello"))).await?;
//! assert_eq!(counted.describe(&news).await?.retained, 1);
//! assert_eq!(counted.published.load(std::sync::atomic::Ordering::Relaxed), 1);
//! # Ok::<(), Error>(())
//! # }).unwrap();
//! ```

use std::future::Future;

use crate::channel::{ChannelInfo, Limits, Lookup, Subscription};
use crate::error::Error;
use crate::event::Message;
use crate::hub::ChannelName;
use crate::id::EventId;
use crate::start::Start;

/// Named channels: what every technique reads from and writes to. See the
/// [module docs](self) for the rules every implementation follows.
pub trait Channels: Clone + Send + Sync + 'static {
    /// The stream of items a subscription yields.
    type Subscription: Subscription;

    /// The limits of every channel of this source.
    fn limits(&self) -> Limits;

    /// Stores `message` as the next event of `channel` and delivers it to
    /// every subscriber; returns its id.
    ///
    /// # Errors
    ///
    /// [`Error::TooLarge`] if the data is over [`Limits::max_event_bytes`];
    /// [`Error::TooManyChannels`] if the channel would be created past the
    /// source's cap; [`Error::Backend`] if a remote store failed.
    fn publish(
        &self,
        channel: &ChannelName,
        message: Message,
    ) -> impl Future<Output = Result<EventId, Error>> + Send;

    /// Subscribes to `channel` from `start`.
    ///
    /// # Errors
    ///
    /// [`Error::CursorAhead`] for a cursor of the current incarnation past its
    /// head; [`Error::TooManyChannels`] and [`Error::Backend`] as for
    /// [`Channels::publish`].
    fn subscribe(
        &self,
        channel: &ChannelName,
        start: Start,
    ) -> impl Future<Output = Result<Self::Subscription, Error>> + Send;

    /// Closes `channel`: its subscribers get the closed signal and its next
    /// use starts a new incarnation. Returns whether the channel existed.
    ///
    /// # Errors
    ///
    /// [`Error::Backend`] if a remote store failed.
    fn close(&self, channel: &ChannelName) -> impl Future<Output = Result<bool, Error>> + Send;

    /// Describes `channel` (creating it, so that a new channel reports its
    /// epoch and limits).
    ///
    /// # Errors
    ///
    /// [`Error::TooManyChannels`] and [`Error::Backend`] as for
    /// [`Channels::publish`].
    fn describe(
        &self,
        channel: &ChannelName,
    ) -> impl Future<Output = Result<ChannelInfo, Error>> + Send;

    /// Looks up event `id` of `channel`.
    ///
    /// # Errors
    ///
    /// [`Error::TooManyChannels`] and [`Error::Backend`] as for
    /// [`Channels::publish`].
    fn lookup(
        &self,
        channel: &ChannelName,
        id: EventId,
    ) -> impl Future<Output = Result<Lookup, Error>> + Send;
}
