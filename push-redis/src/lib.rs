//! A push channel source over Redis Streams, for several server nodes that
//! share channels: an event published on one node reaches the subscribers
//! of every node, and a cursor from one node resumes on any other.
//!
//! [`RedisChannels`] implements push-core's [`Channels`], so every
//! technique of push-tower and push-warp serves it unchanged:
//!
//! ```no_run
//! use push_redis::{RedisChannels, RedisConfig};
//! use push_tower::{serve, Config, Push};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let channels = RedisChannels::connect("redis://127.0.0.1:6379/0", RedisConfig::default()).await?;
//! let push = Push::new(channels, Config::default());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! serve(listener, push.router()).with_push(push).run().await?;
//! # Ok(())
//! # }
//! ```
//!
//! # How push's model maps onto Redis
//!
//! - **Ids.** Each channel incarnation is one stream, whose entry `{seq}-0`
//!   is event `{epoch}-{seq}`: the wire id carries the incarnation's epoch
//!   (kept in Redis beside the stream) and the stream's own sequence.
//!   Publishing is one Lua script (draw the incarnation if none, append,
//!   trim), so ids count from 1 without holes under concurrent publishers
//!   on any number of nodes.
//! - **History.** The script trims exactly, by [`Limits::history_events`]
//!   and [`Limits::history_bytes`] as the in-memory channel does, so the
//!   retained window, and so every gap, is the same on every node.
//!   [`Limits::history_age`] is not supported.
//! - **Close.** `DELETE` appends a `closed` marker to the incarnation's
//!   stream and drops the incarnation: subscribers on every node get
//!   `closed` after the events before it, and the next use of the name
//!   draws a new epoch, so old cursors meet a gap. Publish and close are
//!   both scripts, so a publish racing a close lands before the marker (and
//!   is delivered before `closed`) or in the next incarnation, never after
//!   the marker of a closed one.
//! - **Live delivery.** A node follows each channel that has local
//!   subscribers with an in-memory channel fed from Redis
//!   ([`MemoryChannel::following`](push_core::MemoryChannel::following)):
//!   fan-out, the subscriber bound, the lag rule and coalescing are the
//!   in-memory channel's. [`RedisConfig::readers`] tasks (2 by default)
//!   each hold one connection and run `XREAD BLOCK` over all of their
//!   channels' streams, so a node holds that many connections plus one for
//!   commands, whatever its number of subscribers.
//! - **Describe** reports what Redis holds (head, earliest, retained) and
//!   this node's subscribers and buffered bytes.
//!
//! # Faults
//!
//! - **Redis unreachable.** Publishes and new subscriptions fail with
//!   [`Error::Backend`], which the wire contract
//!   answers `503 unavailable` with `Retry-After`. Open subscriptions stay
//!   open for [`RedisConfig::reconnect_grace`] (5 s by default): if the
//!   node reconnects within it, they catch up from the last id they saw;
//!   past it they end with `shutdown` and their cursor.
//! - **Events trimmed meanwhile, or Redis restarted without its data.** A
//!   follower that cannot continue its copy without a hole ends its
//!   subscriptions with `shutdown`; they resume with their cursor and get
//!   the missed events, or a gap if Redis no longer holds them. A Redis
//!   that lost its data draws a new epoch on next use, so ids are never
//!   silently renumbered.
//!
//! # Why the `redis` crate
//!
//! `redis` (redis-rs) is the most used Rust client, maintained by the Redis
//! organization, with a tokio `ConnectionManager` that reconnects on its
//! own (for commands) and script support that sends `EVALSHA` and reloads
//! a script Redis forgot. `fred` is as capable, with its own pool and
//! reconnection policy; push needs neither, and the blocking readers need
//! plain dedicated connections, which `redis` gives directly.

mod error;
mod follow;
mod store;
mod subscription;

/// Entry points for the fuzz targets of the repository's `fuzz/` crate: the
/// decoder of what Redis returns, reached without making it public.
/// Compiled only under `--cfg fuzzing`, which `cargo fuzz` sets and no
/// ordinary build does, so it is no part of the API.
#[cfg(fuzzing)]
#[doc(hidden)]
pub mod __fuzz {
    use push_core::{Epoch, Event};
    use redis::Value;

    use crate::store::{self, Entry};

    /// Decodes a stream entry `[id, [field, value, …]]` of incarnation
    /// `epoch`: `Some` event, or `None` for the entry that closes it.
    ///
    /// # Errors
    ///
    /// The backend error of an entry this crate did not write.
    pub fn decode_entry(epoch: Epoch, entry: Value) -> Result<Option<Event>, push_core::Error> {
        Ok(match store::decode_entry(epoch, entry)? {
            Entry::Event(event) => Some(event),
            Entry::Closed => None,
        })
    }

    /// The sequence number of an entry id `{seq}-0`.
    ///
    /// # Errors
    ///
    /// The backend error of an id of another form.
    pub fn entry_seq(id: &[u8]) -> Result<u64, push_core::Error> {
        store::entry_seq(id)
    }

    /// An epoch as the publish script stores it.
    pub fn epoch_text(epoch: Epoch) -> String {
        store::epoch_text(epoch)
    }

    /// An epoch read back from Redis.
    ///
    /// # Errors
    ///
    /// The backend error of text that is not an epoch.
    pub fn parse_epoch(text: &[u8]) -> Result<Epoch, push_core::Error> {
        store::parse_epoch(text)
    }
}

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use push_core::{
    ChannelInfo, ChannelName, Channels, Error, EventId, Limits, Lookup, Message, Start,
};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::Client;
use tokio::sync::watch;

use follow::{Followers, ReaderTask};
use store::{Keys, Scripts, Store};

pub use subscription::RedisSubscription;

/// How a [`RedisChannels`] source behaves.
#[derive(Clone, Debug)]
pub struct RedisConfig {
    /// The limits of every channel. Every node sharing a Redis must use the
    /// same; `history_age` must be `None`.
    pub limits: Limits,
    /// The prefix of every key push writes (`push` by default).
    pub key_prefix: String,
    /// Reader tasks, each with its own connection (2 by default).
    pub readers: usize,
    /// How long open subscriptions outlive a lost connection to Redis
    /// before they end with `shutdown` (5 s by default).
    pub reconnect_grace: Duration,
    /// How long a new subscription waits for this node to catch up with
    /// Redis's head before failing with a backend error (5 s by default).
    pub catch_up_timeout: Duration,
}

impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig {
            limits: Limits::default(),
            key_prefix: "push".to_owned(),
            readers: 2,
            reconnect_grace: Duration::from_secs(5),
            catch_up_timeout: Duration::from_secs(5),
        }
    }
}

/// Why [`RedisChannels::connect`] failed.
#[derive(Debug)]
pub enum ConnectError {
    /// The configuration is inconsistent; the message says what to change.
    Config(String),
    /// Redis could not be reached or refused the connection.
    Redis(redis::RedisError),
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectError::Config(problem) => write!(f, "invalid Redis source configuration: {problem}"),
            ConnectError::Redis(error) => write!(
                f,
                "cannot reach Redis: {error}; check the URL (redis://HOST:PORT/DB) and that Redis is running"
            ),
        }
    }
}

impl std::error::Error for ConnectError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConnectError::Config(_) => None,
            ConnectError::Redis(error) => Some(error),
        }
    }
}

/// Channels stored in Redis Streams and shared by every node using the same
/// Redis and key prefix. See the [crate docs](crate).
///
/// Cloning gives another handle to the same source. The reader tasks stop
/// when the last handle is dropped.
#[derive(Clone)]
pub struct RedisChannels {
    inner: Arc<Inner>,
}

struct Inner {
    config: RedisConfig,
    commands: ConnectionManager,
    scripts: Scripts,
    followers: Arc<Followers>,
    stop: watch::Sender<bool>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

impl fmt::Debug for RedisChannels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisChannels")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl RedisChannels {
    /// Connects to the Redis at `url` (`redis://HOST:PORT/DB`) and starts
    /// this node's reader tasks on the current tokio runtime.
    ///
    /// # Errors
    ///
    /// [`ConnectError::Config`] if the limits fail [`Limits::validate`], set
    /// `history_age`, or `readers` is 0; [`ConnectError::Redis`] if the URL
    /// does not parse or Redis cannot be reached.
    ///
    /// # Panics
    ///
    /// Panics if called outside a tokio runtime.
    pub async fn connect(url: &str, config: RedisConfig) -> Result<Self, ConnectError> {
        config.limits.validate().map_err(ConnectError::Config)?;
        if config.limits.history_age.is_some() {
            return Err(ConnectError::Config(
                "history_age is not supported over Redis; trim by history_events and history_bytes"
                    .to_owned(),
            ));
        }
        if config.readers == 0 {
            return Err(ConnectError::Config(
                "readers must be at least 1".to_owned(),
            ));
        }
        let client = Client::open(url).map_err(ConnectError::Redis)?;
        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(Some(Duration::from_secs(5)))
            .set_number_of_retries(2);
        let commands = client
            .get_connection_manager_with_config(manager_config)
            .await
            .map_err(ConnectError::Redis)?;
        let followers = Arc::new(Followers::new(config.limits, config.readers));
        let (stop, stopped) = watch::channel(false);
        for index in 0..followers.readers() {
            let task = ReaderTask {
                followers: followers.clone(),
                index,
                client: client.clone(),
                prefix: config.key_prefix.clone(),
                block: Duration::from_secs(1),
                grace: config.reconnect_grace,
                stopped: stopped.clone(),
            };
            tokio::spawn(task.run());
        }
        Ok(RedisChannels {
            inner: Arc::new(Inner {
                config,
                commands,
                scripts: Scripts::new(),
                followers,
                stop,
            }),
        })
    }

    fn keys(&self, channel: &ChannelName) -> Keys {
        Keys::new(&self.inner.config.key_prefix, channel)
    }

    fn store(&self) -> Store<'_> {
        Store {
            redis: self.inner.commands.clone(),
            scripts: &self.inner.scripts,
            limits: self.inner.config.limits,
        }
    }

    /// This node's follower of `channel`'s current incarnation, caught up
    /// with Redis's head as of this call.
    async fn follower(&self, channel: &ChannelName) -> Result<Arc<follow::Follower>, Error> {
        let keys = self.keys(channel);
        let followers = &self.inner.followers;
        let mut store = self.store();
        if let Some(head) = store.current(&keys).await? {
            if let Some(follower) = followers.get(channel, head.epoch) {
                if follower
                    .caught_up(head.seq, self.inner.config.catch_up_timeout)
                    .await
                {
                    return Ok(follower);
                }
                if follower.end() == follow::End::Open {
                    return Err(not_caught_up());
                }
            }
        }
        let (head, events) = store.snapshot(&keys).await?;
        let (follower, generation) = followers.follow(channel, &keys, head, events)?;
        // Make sure the reader reads the new stream now: a reader blocked
        // in a read that predates it is unblocked; one between reads takes
        // it into its next.
        for _ in 0..1000 {
            if followers.is_read(channel, generation) {
                break;
            }
            if let Some(reader) = followers.reader_client(channel) {
                let unblocked: Result<i64, _> = redis::cmd("CLIENT")
                    .arg("UNBLOCK")
                    .arg(reader)
                    .query_async(&mut store.redis)
                    .await;
                if unblocked == Ok(1) {
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        if !follower
            .caught_up(head.seq, self.inner.config.catch_up_timeout)
            .await
        {
            return Err(not_caught_up());
        }
        Ok(follower)
    }
}

/// A follower that did not reach Redis's head within
/// [`RedisConfig::catch_up_timeout`].
fn not_caught_up() -> Error {
    Error::Backend("this node did not catch up with Redis in time; retry".into())
}

impl Channels for RedisChannels {
    type Subscription = RedisSubscription;

    fn limits(&self) -> Limits {
        self.inner.config.limits
    }

    async fn publish(&self, channel: &ChannelName, message: Message) -> Result<EventId, Error> {
        let max = self.inner.config.limits.max_event_bytes;
        let len = message.data().len();
        if len > max {
            return Err(Error::TooLarge { len, max });
        }
        self.store().publish(&self.keys(channel), &message).await
    }

    async fn subscribe(
        &self,
        channel: &ChannelName,
        start: Start,
    ) -> Result<RedisSubscription, Error> {
        let follower = self.follower(channel).await?;
        let subscription = push_core::Channel::subscribe(&follower.channel, start).await?;
        Ok(RedisSubscription::new(subscription, follower))
    }

    async fn close(&self, channel: &ChannelName) -> Result<bool, Error> {
        self.store().close(&self.keys(channel)).await
    }

    async fn describe(&self, channel: &ChannelName) -> Result<ChannelInfo, Error> {
        let held = self.store().describe(&self.keys(channel)).await?;
        let local = match self.inner.followers.get(channel, held.head.epoch) {
            Some(follower) => Some(push_core::Channel::describe(&follower.channel).await?),
            None => None,
        };
        Ok(ChannelInfo {
            head: held.head.id(),
            earliest: held.earliest,
            retained: held.retained,
            subscribers: local.as_ref().map_or(0, |local| local.subscribers),
            buffered_bytes: local.map_or(0, |local| local.buffered_bytes),
            limits: self.inner.config.limits,
        })
    }

    async fn lookup(&self, channel: &ChannelName, id: EventId) -> Result<Lookup, Error> {
        let (head, event) = self.store().lookup(&self.keys(channel), id).await?;
        Ok(match event {
            Some(event) => Lookup::Found(event),
            None if head.epoch == id.epoch() && id.seq() > head.seq => Lookup::NotPublished,
            None => Lookup::Gone,
        })
    }
}
