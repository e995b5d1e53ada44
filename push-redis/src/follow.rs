//! Live delivery on one node: a follower per channel incarnation that has
//! local subscribers, fed by a few reader tasks that block on Redis.
//!
//! A follower is a [`MemoryChannel`] built with
//! [`MemoryChannel::following`]: seeded with the retained entries, then
//! given each new entry with its Redis-assigned id. Local subscribers
//! subscribe to it, so fan-out, the subscriber bound, the lag rule and
//! coalescing are the in-memory channel's. Each reader owns a fixed share
//! of the followers (by name) and one Redis connection, on which it runs
//! `XREAD BLOCK` over all of their streams at once; a new follower
//! interrupts it with `CLIENT UNBLOCK` so that it is read from at once.
//!
//! A follower ends in one of two ways. The stream's `closed` marker closes
//! it: its subscribers get `closed`. Anything that breaks the follower's
//! copy (Redis unreachable past the grace, the incarnation gone from a
//! restarted Redis, entries trimmed away while the reader was cut off)
//! ends it with `shutdown`: subscribers reconnect with their cursor and
//! meet the events or a gap, as Redis holds them.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use push_core::{Channel, ChannelName, Epoch, EventId, Limits, MemoryChannel};
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, Value};
use tokio::sync::{watch, Notify};

use crate::store::{decode_entry, Entry, Head, Keys};

/// How long a follower nobody holds is kept, still read, for the next
/// subscriber (a poll, say) to find it caught up.
const IDLE_FOLLOWER: Duration = Duration::from_secs(10);

/// How a follower ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum End {
    Open = 0,
    /// The incarnation was closed: subscribers get `closed`.
    Closed = 1,
    /// The follower lost its copy: subscribers get `shutdown`.
    Lost = 2,
}

/// One incarnation of one channel, followed on this node.
pub(crate) struct Follower {
    pub(crate) channel: MemoryChannel,
    pub(crate) stream: String,
    /// The head this follower holds; subscribes wait on it to catch up.
    head: watch::Sender<u64>,
    end: AtomicU8,
    /// Since when only the registry holds it: idle followers are kept a
    /// while, so that polls do not fetch the history every time.
    unheld_since: Mutex<Option<Instant>>,
}

impl Follower {
    pub(crate) fn end(&self) -> End {
        match self.end.load(Ordering::Acquire) {
            1 => End::Closed,
            2 => End::Lost,
            _ => End::Open,
        }
    }

    async fn finish(&self, end: End) {
        if self
            .end
            .compare_exchange(0, end as u8, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            // Subscribers take what they have, then `closed`, which a lost
            // follower's subscriptions turn into `shutdown`.
            let _ = self.channel.close().await;
            self.head.send_modify(|_| {});
        }
    }

    /// Waits until this follower holds event `seq`, or ends.
    pub(crate) async fn caught_up(&self, seq: u64, within: Duration) -> bool {
        let mut head = self.head.subscribe();
        let reached = head.wait_for(|head| *head >= seq || self.end() != End::Open);
        matches!(tokio::time::timeout(within, reached).await, Ok(Ok(_))) && self.end() == End::Open
    }
}

/// The followers of this node and the readers that feed them.
pub(crate) struct Followers {
    by_incarnation: Mutex<HashMap<(ChannelName, Epoch), Arc<Follower>>>,
    /// Counts followers added, so that a reader can say which it reads.
    generation: AtomicU64,
    readers: Vec<Reader>,
    hasher: RandomState,
    limits: Limits,
}

/// A reader's handle: where to wake it.
struct Reader {
    /// Its connection's `CLIENT ID`, 0 before it has one.
    client_id: AtomicU64,
    /// The generation its current or next read covers: every follower
    /// added up to it.
    reads_generation: AtomicU64,
    wake: Notify,
}

impl Followers {
    pub(crate) fn new(limits: Limits, readers: usize) -> Self {
        Followers {
            by_incarnation: Mutex::new(HashMap::new()),
            generation: AtomicU64::new(0),
            readers: (0..readers.max(1))
                .map(|_| Reader {
                    client_id: AtomicU64::new(0),
                    reads_generation: AtomicU64::new(0),
                    wake: Notify::new(),
                })
                .collect(),
            hasher: RandomState::new(),
            limits,
        }
    }

    pub(crate) fn readers(&self) -> usize {
        self.readers.len()
    }

    fn reader_of(&self, name: &ChannelName) -> usize {
        (self.hasher.hash_one(name) % self.readers.len() as u64) as usize
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(ChannelName, Epoch), Arc<Follower>>> {
        self.by_incarnation
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The open follower of `name`'s incarnation `epoch`, if this node has
    /// one.
    pub(crate) fn get(&self, name: &ChannelName, epoch: Epoch) -> Option<Arc<Follower>> {
        self.lock()
            .get(&(name.clone(), epoch))
            .filter(|follower| follower.end() == End::Open)
            .cloned()
    }

    /// Follows `name` from a snapshot: `head` and the retained events.
    /// Returns the follower already there if another call won the race,
    /// and the generation a reader must read for it to be fed (see
    /// [`Followers::is_read`]).
    pub(crate) fn follow(
        &self,
        name: &ChannelName,
        keys: &Keys,
        head: Head,
        events: Vec<push_core::Event>,
    ) -> Result<(Arc<Follower>, u64), push_core::Error> {
        let start = events
            .first()
            .map_or(head.seq, |event| event.id().seq() - 1);
        let channel = MemoryChannel::following(self.limits, EventId::new(head.epoch, start));
        for event in events {
            channel.publish_with_id(event.id(), event.message().clone())?;
        }
        let follower = Arc::new(Follower {
            channel,
            stream: keys.stream(head.epoch),
            head: watch::Sender::new(head.seq),
            end: AtomicU8::new(End::Open as u8),
            unheld_since: Mutex::new(None),
        });
        let follower = {
            let mut followers = self.lock();
            let key = (name.clone(), head.epoch);
            match followers.get(&key) {
                Some(existing) if existing.end() == End::Open => existing.clone(),
                _ => {
                    followers.insert(key, follower.clone());
                    follower
                }
            }
        };
        let generation = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
        self.readers[self.reader_of(name)].wake.notify_one();
        Ok((follower, generation))
    }

    /// Whether `name`'s reader reads (or is about to read) every follower
    /// added up to `generation`.
    pub(crate) fn is_read(&self, name: &ChannelName, generation: u64) -> bool {
        self.readers[self.reader_of(name)]
            .reads_generation
            .load(Ordering::SeqCst)
            >= generation
    }

    /// The `CLIENT ID` to unblock for `name`'s reader, if it is blocked.
    pub(crate) fn reader_client(&self, name: &ChannelName) -> Option<u64> {
        let id = self.readers[self.reader_of(name)]
            .client_id
            .load(Ordering::Acquire);
        (id != 0).then_some(id)
    }

    /// Reader `index`'s followers, with their names.
    fn share(&self, index: usize) -> Vec<(ChannelName, Arc<Follower>)> {
        self.lock()
            .iter()
            .filter(|((name, _), _)| self.reader_of(name) == index)
            .map(|((name, _), follower)| (name.clone(), follower.clone()))
            .collect()
    }

    /// Drops followers that ended, and those nobody has held (no
    /// subscription, no call in progress) for [`IDLE_FOLLOWER`].
    fn prune(&self, index: usize) {
        self.lock().retain(|(name, _), follower| {
            if self.reader_of(name) != index {
                return true;
            }
            if follower.end() != End::Open {
                return false;
            }
            let mut unheld_since = follower
                .unheld_since
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if Arc::strong_count(follower) > 1 {
                *unheld_since = None;
                return true;
            }
            unheld_since.get_or_insert_with(Instant::now).elapsed() < IDLE_FOLLOWER
        });
    }

    /// Ends every follower of reader `index` with `shutdown`.
    async fn lose_all(&self, index: usize) {
        for (_, follower) in self.share(index) {
            follower.finish(End::Lost).await;
        }
        self.prune(index);
    }
}

/// What a reader needs to run.
pub(crate) struct ReaderTask {
    pub(crate) followers: Arc<Followers>,
    pub(crate) index: usize,
    pub(crate) client: Client,
    pub(crate) prefix: String,
    /// How long a blocking read waits before looking at its followers again.
    pub(crate) block: Duration,
    /// How long followers outlive a lost connection to Redis.
    pub(crate) grace: Duration,
    pub(crate) stopped: watch::Receiver<bool>,
}

impl ReaderTask {
    /// Runs until `stopped`: reads, and reconnects when Redis goes away.
    pub(crate) async fn run(mut self) {
        let mut down_since: Option<Instant> = None;
        loop {
            if *self.stopped.borrow() {
                return;
            }
            let config = AsyncConnectionConfig::new()
                .set_connection_timeout(Some(Duration::from_secs(1)))
                .set_response_timeout(Some(self.block + Duration::from_secs(5)));
            let connected = self
                .client
                .get_multiplexed_async_connection_with_config(&config)
                .await;
            let mut connection = match connected {
                Ok(connection) => connection,
                Err(_) => {
                    let since = *down_since.get_or_insert_with(Instant::now);
                    if since.elapsed() >= self.grace {
                        self.followers.lose_all(self.index).await;
                    }
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_millis(100)) => {}
                        _ = self.stopped.changed() => {}
                    }
                    continue;
                }
            };
            if down_since.take().is_some() {
                // Back within the grace: keep only followers whose
                // incarnation Redis still holds; the rest lose their copy.
                if self.check_incarnations(&mut connection).await.is_err() {
                    continue;
                }
            }
            let result = self.read(&mut connection).await;
            self.followers.readers[self.index]
                .client_id
                .store(0, Ordering::Release);
            match result {
                Ok(()) => return,
                Err(_) => {
                    down_since = Some(Instant::now());
                }
            }
        }
    }

    async fn check_incarnations(
        &self,
        connection: &mut MultiplexedConnection,
    ) -> Result<(), redis::RedisError> {
        for (name, follower) in self.followers.share(self.index) {
            let keys = Keys::new(&self.prefix, &name);
            let epoch: Option<String> = redis::cmd("HGET")
                .arg(&keys.meta)
                .arg("epoch")
                .query_async(connection)
                .await?;
            if epoch.as_deref() != follower.stream.strip_prefix(&keys.stream_prefix) {
                follower.finish(End::Lost).await;
            }
        }
        self.followers.prune(self.index);
        Ok(())
    }

    /// Reads until the connection fails (`Err`) or the source stops.
    async fn read(
        &mut self,
        connection: &mut MultiplexedConnection,
    ) -> Result<(), redis::RedisError> {
        let client_id: u64 = redis::cmd("CLIENT")
            .arg("ID")
            .query_async(connection)
            .await?;
        self.followers.readers[self.index]
            .client_id
            .store(client_id, Ordering::Release);
        loop {
            if *self.stopped.borrow() {
                return Ok(());
            }
            self.followers.prune(self.index);
            let generation = self.followers.generation.load(Ordering::SeqCst);
            let share = self.followers.share(self.index);
            self.followers.readers[self.index]
                .reads_generation
                .store(generation, Ordering::SeqCst);
            if share.is_empty() {
                let reader = &self.followers.readers[self.index];
                tokio::select! {
                    () = reader.wake.notified() => {}
                    () = tokio::time::sleep(self.block) => {}
                    _ = self.stopped.changed() => {}
                }
                continue;
            }
            let mut command = redis::cmd("XREAD");
            command
                .arg("COUNT")
                .arg(1024)
                .arg("BLOCK")
                .arg(self.block.as_millis() as u64)
                .arg("STREAMS");
            for (_, follower) in &share {
                command.arg(&follower.stream);
            }
            for (_, follower) in &share {
                command.arg(format!("{}-0", *follower.head.borrow()));
            }
            let reply: Value = tokio::select! {
                reply = command.query_async(connection) => reply?,
                _ = self.stopped.changed() => return Ok(()),
            };
            self.deliver(&share, reply).await;
        }
    }

    /// Hands each entry read to its follower.
    async fn deliver(&self, share: &[(ChannelName, Arc<Follower>)], reply: Value) {
        let Value::Array(streams) = reply else {
            return; // Nil: the block timed out, or a new follower woke us.
        };
        for stream in streams {
            let Value::Array(mut parts) = stream else {
                continue;
            };
            let (Some(Value::Array(entries)), Some(Value::BulkString(key))) =
                (parts.pop(), parts.pop())
            else {
                continue;
            };
            let Some((_, follower)) = share
                .iter()
                .find(|(_, follower)| follower.stream.as_bytes() == key.as_slice())
            else {
                continue;
            };
            let epoch = follower.channel.epoch();
            for entry in entries {
                match decode_entry(epoch, entry) {
                    Ok(Entry::Event(event)) => {
                        let id = event.id();
                        let published = follower
                            .channel
                            .publish_with_id(id, event.message().clone());
                        if published.is_err() {
                            // Entries were trimmed while we were cut off, or
                            // are not ours: subscribers resume from Redis.
                            follower.finish(End::Lost).await;
                            break;
                        }
                        follower.head.send_replace(id.seq());
                    }
                    Ok(Entry::Closed) => {
                        follower.finish(End::Closed).await;
                        break;
                    }
                    Err(_) => {
                        follower.finish(End::Lost).await;
                        break;
                    }
                }
            }
        }
    }
}
