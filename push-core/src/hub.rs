//! A hub of named in-memory channels, created on first use.
//!
//! ```
//! use futures_util::StreamExt;
//! use push_core::{Data, Hub, HubConfig, Item, Message, Start};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let hub = Hub::new(HubConfig::default());
//! let mut news = hub.subscribe("news", Start::Now)?;
//! let id = hub.publish("news", Message::new(Data::text("hello")))?;
//!
//! let _position = news.next().await;
//! assert!(matches!(news.next().await, Some(Item::Event(e)) if e.id() == id));
//!
//! assert!(hub.publish("no spaces", Message::new(Data::text("x"))).is_err());
//! # Ok::<(), push_core::Error>(())
//! # }).unwrap();
//! ```

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::channel::{ChannelInfo, Limits, Lookup};
use crate::channels::Channels;
use crate::error::{ChannelNameError, Error};
use crate::event::Message;
use crate::id::{Epoch, EventId};
use crate::memory::{MemoryChannel, MemorySubscription, Retired};
use crate::start::Start;

/// A valid channel name: 1 to 128 characters of `A-Z a-z 0-9 _ - . :`, not
/// made of dots alone.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChannelName(Arc<str>);

impl ChannelName {
    /// The longest channel name.
    pub const MAX_LEN: usize = 128;

    /// Checks `name` against the naming rules.
    ///
    /// # Errors
    ///
    /// A [`ChannelNameError`] saying which rule `name` breaks.
    pub fn new(name: &str) -> Result<Self, ChannelNameError> {
        if name.is_empty() {
            return Err(ChannelNameError::Empty);
        }
        if let Some(found) = name
            .chars()
            .find(|&c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':')))
        {
            return Err(ChannelNameError::ForbiddenCharacter { found });
        }
        if name.len() > Self::MAX_LEN {
            return Err(ChannelNameError::TooLong { len: name.len() });
        }
        if name.bytes().all(|b| b == b'.') {
            return Err(ChannelNameError::DotsOnly);
        }
        Ok(ChannelName(Arc::from(name)))
    }

    /// The name as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ChannelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ChannelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

/// How a [`Hub`] is set up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HubConfig {
    /// The limits of every channel.
    pub limits: Limits,
    /// The most channels held at once in each of two pools: channels that
    /// have been published to, and channels that only readers (subscribers,
    /// polls, describes) have opened. A channel moves to the first pool on
    /// its first publish, so readers of names nobody publishes to never take
    /// a place publishers need. Past the cap, idle channels (no subscriber,
    /// no retained event) are evicted; if none is idle, a request that would
    /// add a channel to the full pool fails with [`Error::TooManyChannels`].
    pub max_channels: usize,
}

impl Default for HubConfig {
    /// Default [`Limits`] and at most 10,000 channels.
    fn default() -> Self {
        HubConfig {
            limits: Limits::default(),
            max_channels: 10_000,
        }
    }
}

/// Named in-memory channels, created on first use: the default
/// [`Channels`] source.
///
/// Cloning gives another handle to the same hub. Every operation names its
/// channel; a name that breaks the rules of [`ChannelName`] is
/// [`Error::BadChannelName`]. Closing a channel removes it: its name's next
/// use starts a new incarnation with a new epoch.
///
/// The inherent methods (`publish`, `subscribe`, …) take a name as a string
/// and complete at once, for in-process callers; the [`Channels`] methods of
/// the same names are their async form over a checked [`ChannelName`], which
/// is what servers call.
#[derive(Clone)]
pub struct Hub {
    inner: Arc<Inner>,
}

struct Inner {
    config: HubConfig,
    table: Mutex<Table>,
}

/// The hub's channels, in two pools of `max_channels` places each: channels
/// that have been published to, and channels only readers have opened.
#[derive(Default)]
struct Table {
    slots: HashMap<ChannelName, Slot>,
    /// How many slots are `published`.
    published: usize,
}

struct Slot {
    channel: MemoryChannel,
    /// Whether the incarnation has been published to, so that it holds a
    /// publishers' place rather than a readers' one.
    published: bool,
}

/// What a channel is looked up for, which decides the pool a new one takes
/// its place in.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Purpose {
    Publish,
    Read,
}

impl Table {
    fn in_pool(&self, purpose: Purpose) -> usize {
        match purpose {
            Purpose::Publish => self.published,
            Purpose::Read => self.slots.len() - self.published,
        }
    }

    fn remove(&mut self, name: &ChannelName) -> Option<MemoryChannel> {
        let slot = self.slots.remove(name)?;
        self.published -= usize::from(slot.published);
        Some(slot.channel)
    }

    /// Drops every channel that nothing depends on.
    fn retire_idle(&mut self) {
        let mut retired_published = 0;
        self.slots.retain(|_, slot| {
            let idle = slot.channel.retire_if_idle();
            retired_published += usize::from(idle && slot.published);
            !idle
        });
        self.published -= retired_published;
    }
}

impl Hub {
    /// A hub with this configuration.
    ///
    /// # Panics
    ///
    /// Panics if `config.limits` fail [`Limits::validate`] or
    /// `config.max_channels` is zero.
    pub fn new(config: HubConfig) -> Self {
        if let Err(problem) = config.limits.validate() {
            panic!("invalid hub limits: {problem}");
        }
        assert!(config.max_channels > 0, "max_channels must be at least 1");
        Hub {
            inner: Arc::new(Inner {
                config,
                table: Mutex::new(Table::default()),
            }),
        }
    }

    /// The hub's configuration.
    pub fn config(&self) -> &HubConfig {
        &self.inner.config
    }

    /// Publishes to the channel `name`, creating it if needed.
    ///
    /// # Errors
    ///
    /// [`Error::BadChannelName`], [`Error::TooManyChannels`], or the errors of
    /// [`Channel::publish`](crate::Channel::publish).
    pub fn publish(&self, name: &str, message: Message) -> Result<EventId, Error> {
        self.publish_named(&ChannelName::new(name)?, message)
    }

    fn publish_named(&self, name: &ChannelName, message: Message) -> Result<EventId, Error> {
        loop {
            let channel = self.get_or_create(name, Purpose::Publish)?;
            match channel.try_publish(message.clone()) {
                Ok(Err(Error::Closed)) | Err(Retired) => self.forget(name, &channel),
                Ok(result) => return result,
            }
        }
    }

    /// Subscribes to the channel `name` from `start`, creating it if needed.
    ///
    /// # Errors
    ///
    /// [`Error::BadChannelName`], [`Error::TooManyChannels`], or
    /// [`Error::CursorAhead`].
    pub fn subscribe(&self, name: &str, start: Start) -> Result<MemorySubscription, Error> {
        self.subscribe_named(&ChannelName::new(name)?, start)
    }

    fn subscribe_named(
        &self,
        name: &ChannelName,
        start: Start,
    ) -> Result<MemorySubscription, Error> {
        loop {
            let channel = self.get_or_create(name, Purpose::Read)?;
            if channel.is_closed() {
                self.forget(name, &channel);
                continue;
            }
            match channel.try_subscribe(start) {
                Ok(result) => return result,
                Err(Retired) => self.forget(name, &channel),
            }
        }
    }

    /// Closes the channel `name`: its subscribers get the closed signal and
    /// the name's next use starts a new incarnation. Returns whether the
    /// channel existed.
    ///
    /// # Errors
    ///
    /// [`Error::BadChannelName`].
    pub fn close(&self, name: &str) -> Result<bool, Error> {
        Ok(self.close_named(&ChannelName::new(name)?))
    }

    fn close_named(&self, name: &ChannelName) -> bool {
        let removed = self.table().remove(name);
        if let Some(channel) = &removed {
            channel.close_now();
        }
        removed.is_some()
    }

    /// Describes the channel `name`, creating it if needed (a new channel
    /// describes its epoch and limits).
    ///
    /// # Errors
    ///
    /// [`Error::BadChannelName`] or [`Error::TooManyChannels`].
    pub fn describe(&self, name: &str) -> Result<ChannelInfo, Error> {
        self.describe_named(&ChannelName::new(name)?)
    }

    fn describe_named(&self, name: &ChannelName) -> Result<ChannelInfo, Error> {
        loop {
            let channel = self.get_or_create(name, Purpose::Read)?;
            match channel.try_describe() {
                Ok(info) => return Ok(info),
                Err(Retired) => self.forget(name, &channel),
            }
        }
    }

    /// Looks up event `id` of the channel `name`.
    ///
    /// # Errors
    ///
    /// [`Error::BadChannelName`] or [`Error::TooManyChannels`].
    pub fn lookup(&self, name: &str, id: EventId) -> Result<Lookup, Error> {
        self.lookup_named(&ChannelName::new(name)?, id)
    }

    fn lookup_named(&self, name: &ChannelName, id: EventId) -> Result<Lookup, Error> {
        loop {
            let channel = self.get_or_create(name, Purpose::Read)?;
            match channel.try_lookup(id) {
                Ok(lookup) => return Ok(lookup),
                Err(Retired) => self.forget(name, &channel),
            }
        }
    }

    /// How many channels the hub holds now.
    pub fn len(&self) -> usize {
        self.table().slots.len()
    }

    /// Whether the hub holds no channel.
    pub fn is_empty(&self) -> bool {
        self.table().slots.is_empty()
    }

    /// Closes every channel, as on shutdown.
    pub fn close_all(&self) {
        let slots = std::mem::take(&mut *self.table());
        for slot in slots.slots.into_values() {
            slot.channel.close_now();
        }
    }

    fn table(&self) -> MutexGuard<'_, Table> {
        self.inner
            .table
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The channel `name`, created if absent. A channel readers created takes
    /// a publishers' place on its first publish, so reading names that
    /// nobody publishes to cannot lock publishers out.
    fn get_or_create(&self, name: &ChannelName, purpose: Purpose) -> Result<MemoryChannel, Error> {
        let mut table = self.table();
        if let Some(slot) = table.slots.get(name) {
            if slot.published || purpose == Purpose::Read {
                return Ok(slot.channel.clone());
            }
        }
        let max = self.inner.config.max_channels;
        if table.in_pool(purpose) >= max {
            table.retire_idle();
            if table.in_pool(purpose) >= max {
                return Err(Error::TooManyChannels { max });
            }
        }
        let published = purpose == Purpose::Publish;
        table.published += usize::from(published);
        // Still there unless it was idle and just retired.
        if let Some(slot) = table.slots.get_mut(name) {
            slot.published = true;
            return Ok(slot.channel.clone());
        }
        let channel = MemoryChannel::with_epoch(self.inner.config.limits, Epoch::random());
        let slot = Slot {
            channel: channel.clone(),
            published,
        };
        table.slots.insert(name.clone(), slot);
        Ok(channel)
    }

    /// Drops `channel` from the table if it is still the one under `name`.
    fn forget(&self, name: &ChannelName, channel: &MemoryChannel) {
        let mut table = self.table();
        if table
            .slots
            .get(name)
            .is_some_and(|held| held.channel.same_as(channel))
        {
            table.remove(name);
        }
    }
}

impl Channels for Hub {
    type Subscription = MemorySubscription;

    fn limits(&self) -> Limits {
        self.inner.config.limits
    }

    async fn publish(&self, channel: &ChannelName, message: Message) -> Result<EventId, Error> {
        self.publish_named(channel, message)
    }

    async fn subscribe(
        &self,
        channel: &ChannelName,
        start: Start,
    ) -> Result<MemorySubscription, Error> {
        self.subscribe_named(channel, start)
    }

    async fn close(&self, channel: &ChannelName) -> Result<bool, Error> {
        Ok(self.close_named(channel))
    }

    async fn describe(&self, channel: &ChannelName) -> Result<ChannelInfo, Error> {
        self.describe_named(channel)
    }

    async fn lookup(&self, channel: &ChannelName, id: EventId) -> Result<Lookup, Error> {
        self.lookup_named(channel, id)
    }
}

impl fmt::Debug for Hub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hub")
            .field("config", &self.inner.config)
            .field("channels", &self.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Data;
    use crate::signal::{Item, Signal};
    use futures_util::StreamExt;

    fn hub(max_channels: usize) -> Hub {
        Hub::new(HubConfig {
            limits: Limits {
                history_events: 3,
                ..Limits::default()
            },
            max_channels,
        })
    }

    fn text(s: &str) -> Message {
        Message::new(Data::text(s))
    }

    #[test]
    fn channel_name_rules() {
        for good in ["a", "A-z_0.9:x", "..a", &"n".repeat(128)] {
            assert!(ChannelName::new(good).is_ok(), "{good}");
        }
        assert_eq!(ChannelName::new(""), Err(ChannelNameError::Empty));
        assert_eq!(ChannelName::new("."), Err(ChannelNameError::DotsOnly));
        assert_eq!(ChannelName::new(".."), Err(ChannelNameError::DotsOnly));
        assert_eq!(
            ChannelName::new(&"n".repeat(129)),
            Err(ChannelNameError::TooLong { len: 129 })
        );
        for (bad, found) in [("a b", ' '), ("a/b", '/'), ("a%20", '%'), ("é", 'é')] {
            assert_eq!(
                ChannelName::new(bad),
                Err(ChannelNameError::ForbiddenCharacter { found })
            );
        }
    }

    #[test]
    fn every_operation_checks_the_name() {
        let hub = hub(10);
        assert!(matches!(
            hub.publish("a b", text("x")),
            Err(Error::BadChannelName(_))
        ));
        assert!(matches!(
            hub.subscribe("", Start::Now),
            Err(Error::BadChannelName(_))
        ));
        assert!(matches!(hub.describe("."), Err(Error::BadChannelName(_))));
        assert!(matches!(hub.close("a/b"), Err(Error::BadChannelName(_))));
        assert!(hub.is_empty());
    }

    #[tokio::test]
    async fn close_sends_closed_and_the_next_use_is_a_new_incarnation() {
        let hub = hub(10);
        let old = hub.publish("room", text("a")).unwrap();
        let mut subscriber = hub.subscribe("room", Start::Now).unwrap();
        assert!(hub.close("room").unwrap());
        assert!(!hub.close("room").unwrap());
        assert_eq!(
            subscriber.next().await,
            Some(Item::Signal(Signal::Position(old)))
        );
        assert_eq!(
            subscriber.next().await,
            Some(Item::Signal(Signal::Closed(old)))
        );
        assert_eq!(subscriber.next().await, None);

        let new = hub.publish("room", text("b")).unwrap();
        assert_ne!(new.epoch(), old.epoch());
        assert_eq!(new.seq(), 1);
        let mut resumed = hub.subscribe("room", Start::After(old)).unwrap();
        assert_eq!(
            resumed.next().await,
            Some(Item::Signal(Signal::Position(old)))
        );
        assert_eq!(
            resumed.next().await,
            Some(Item::Signal(Signal::Gap(EventId::start(new.epoch()))))
        );
        assert!(matches!(resumed.next().await, Some(Item::Event(e)) if e.id() == new));
    }

    #[test]
    fn the_cap_evicts_idle_channels_and_refuses_past_it() {
        let hub = hub(2);
        hub.publish("one", text("retained")).unwrap();
        hub.publish("two", text("retained")).unwrap();
        assert!(matches!(
            hub.publish("three", text("x")),
            Err(Error::TooManyChannels { max: 2 })
        ));
        let _held = hub.subscribe("held", Start::Now).unwrap();
        hub.describe("described").unwrap();
        // "described" has no subscriber and no event: evicted for "other".
        let _other = hub.subscribe("other", Start::Now).unwrap();
        assert!(matches!(
            hub.describe("fourth"),
            Err(Error::TooManyChannels { max: 2 })
        ));
        assert_eq!(hub.len(), 4);
        assert!(hub.close("one").unwrap());
        hub.publish("three", text("x")).unwrap();
    }

    #[tokio::test]
    async fn readers_of_names_nobody_publishes_to_never_lock_publishers_out() {
        let hub = hub(2);
        let mut first = hub.subscribe("first", Start::Now).unwrap();
        let _second = hub.subscribe("second", Start::Now).unwrap();
        assert!(matches!(
            hub.subscribe("third", Start::Now),
            Err(Error::TooManyChannels { max: 2 })
        ));
        hub.publish("news", text("a")).unwrap();
        // The readers' channel moves to the publishers' pool, same
        // incarnation: its subscriber gets the event with no gap.
        let id = hub.publish("first", text("b")).unwrap();
        assert!(matches!(
            first.next().await,
            Some(Item::Signal(Signal::Position(_)))
        ));
        assert!(matches!(first.next().await, Some(Item::Event(e)) if e.id() == id));
        // Both publishers' places are taken by channels that retain events;
        // the readers' pool has a place again.
        assert!(matches!(
            hub.publish("sports", text("c")),
            Err(Error::TooManyChannels { max: 2 })
        ));
        let _third = hub.subscribe("third", Start::Now).unwrap();
        assert_eq!(hub.len(), 4);
    }

    #[test]
    fn random_names_cannot_exhaust_the_hub() {
        let hub = hub(10);
        for i in 0..1_000 {
            let name = format!("probe-{i}");
            hub.describe(&name).unwrap();
            drop(hub.subscribe(&name, Start::Now).unwrap());
        }
        assert!(hub.len() <= 10);
    }

    #[test]
    fn a_handle_held_across_eviction_goes_back_to_the_hub() {
        let hub = hub(1);
        let stale = hub
            .get_or_create(&ChannelName::new("a").unwrap(), Purpose::Read)
            .unwrap();
        // Creating "b" at the cap evicts the idle "a".
        hub.describe("b").unwrap();
        assert!(
            stale.try_describe().is_err(),
            "the evicted channel is retired"
        );
        // Operations by name never use a retired channel.
        hub.close("b").unwrap();
        let id = hub.publish("a", text("x")).unwrap();
        assert_eq!(hub.describe("a").unwrap().head, id);
    }

    #[test]
    fn close_all_closes_every_channel() {
        let hub = hub(10);
        let mut subscription = hub.subscribe("x", Start::Now).unwrap();
        hub.close_all();
        assert!(hub.is_empty());
        let waker = futures_util::task::noop_waker();
        let mut cx = std::task::Context::from_waker(&waker);
        let mut items = Vec::new();
        let _ =
            crate::Subscription::poll_take(&mut subscription, &mut cx, &mut items, 10, usize::MAX);
        assert!(matches!(
            items.last(),
            Some(Item::Signal(Signal::Closed(_)))
        ));
    }
}
