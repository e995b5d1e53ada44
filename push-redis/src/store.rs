//! The layout in Redis and the scripts that change it, each one atomic.
//!
//! A channel `{name}` has a hash `{prefix}:{{name}}:meta` holding its
//! current incarnation (`epoch`, 16 hex digits), its head (`seq`) and the
//! history bytes retained (`bytes`), and one stream per incarnation,
//! `{prefix}:{{name}}:{epoch}`, whose entry `{seq}-0` is event `{seq}`
//! (fields `d` data, `k` kind, `n` name, `c` history cost). The braces keep
//! a channel's keys in one hash slot.
//!
//! Every script first makes sure the name has an incarnation, drawing the
//! epoch the caller proposes if not, so that the first use of a name on
//! any node creates it once. Publishing trims the stream exactly (never
//! `~`), by count and by bytes as the in-memory channel trims, so every
//! node's follower and Redis agree on what is retained. Closing appends a
//! marker entry (field `closed`) after the head, lets the stream expire,
//! and deletes the hash: the next use draws a new epoch.

use bytes::Bytes;
use push_core::{ChannelName, Data, Epoch, Event, EventId, Limits, Message};
use redis::aio::ConnectionManager;
use redis::{Script, ScriptInvocation, Value};

use crate::error::{backend, malformed};

/// Makes sure `KEYS[1]` holds an incarnation (proposing `ARGV[2]`), and
/// leaves `epoch`, `seq` and `stream` (`ARGV[1]` .. epoch) set.
const CURRENT: &str = r"
local meta = KEYS[1]
local epoch = redis.call('HGET', meta, 'epoch')
if not epoch then
  epoch = ARGV[2]
  redis.call('HSET', meta, 'epoch', epoch, 'seq', 0, 'bytes', 0)
end
local seq = tonumber(redis.call('HGET', meta, 'seq'))
local stream = ARGV[1] .. epoch
";

/// ARGV: 3 data, 4 kind, 5 name, 6 cost, 7 history events, 8 history bytes.
const PUBLISH: &str = r"
seq = redis.call('HINCRBY', meta, 'seq', 1)
redis.call('XADD', stream, seq .. '-0', 'd', ARGV[3], 'k', ARGV[4], 'n', ARGV[5], 'c', ARGV[6])
local bytes = redis.call('HINCRBY', meta, 'bytes', ARGV[6])
local len = redis.call('XLEN', stream)
local max_events = tonumber(ARGV[7])
local max_bytes = tonumber(ARGV[8])
while len > 0 and (len > max_events or bytes > max_bytes) do
  local oldest = redis.call('XRANGE', stream, '-', '+', 'COUNT', 1)[1]
  local fields = oldest[2]
  local cost = 0
  for i = 1, #fields, 2 do
    if fields[i] == 'c' then cost = tonumber(fields[i + 1]) end
  end
  redis.call('XDEL', stream, oldest[1])
  bytes = redis.call('HINCRBY', meta, 'bytes', -cost)
  len = len - 1
end
return {epoch, seq}
";

/// The incarnation, its head and every retained entry.
const SNAPSHOT: &str = r"
return {epoch, seq, redis.call('XRANGE', stream, '-', '+')}
";

/// The incarnation, its head, how many are retained and the oldest's id.
const DESCRIBE: &str = r"
local oldest = redis.call('XRANGE', stream, '-', '+', 'COUNT', 1)[1]
return {epoch, seq, redis.call('XLEN', stream), oldest and oldest[1] or ''}
";

/// ARGV: 3 the entry id looked up.
const LOOKUP: &str = r"
return {epoch, seq, redis.call('XRANGE', stream, ARGV[3], ARGV[3])}
";

/// ARGV: 2 seconds the closed stream is kept for followers to read the
/// marker. Returns 1 if the name had an incarnation.
const CLOSE: &str = r"
local meta = KEYS[1]
local epoch = redis.call('HGET', meta, 'epoch')
if not epoch then return 0 end
local seq = tonumber(redis.call('HGET', meta, 'seq'))
local stream = ARGV[1] .. epoch
redis.call('XADD', stream, (seq + 1) .. '-0', 'closed', '1')
redis.call('EXPIRE', stream, ARGV[2])
redis.call('DEL', meta)
return 1
";

/// How long a closed incarnation's stream stays for followers to read its
/// marker, in seconds.
const CLOSED_STREAM_TTL_SECS: u64 = 60;

/// The loaded scripts (sent by hash, loaded again if Redis lost them).
pub(crate) struct Scripts {
    publish: Script,
    snapshot: Script,
    describe: Script,
    lookup: Script,
    close: Script,
}

impl Scripts {
    pub(crate) fn new() -> Self {
        let with_current = |body: &str| Script::new(&format!("{CURRENT}{body}"));
        Scripts {
            publish: with_current(PUBLISH),
            snapshot: with_current(SNAPSHOT),
            describe: with_current(DESCRIBE),
            lookup: with_current(LOOKUP),
            close: Script::new(CLOSE),
        }
    }
}

/// Where a channel lives in Redis.
#[derive(Clone, Debug)]
pub(crate) struct Keys {
    pub(crate) meta: String,
    /// The stream key without the epoch.
    pub(crate) stream_prefix: String,
}

impl Keys {
    pub(crate) fn new(prefix: &str, channel: &ChannelName) -> Self {
        let base = format!("{prefix}:{{{}}}:", channel.as_str());
        Keys {
            meta: format!("{base}meta"),
            stream_prefix: base,
        }
    }

    pub(crate) fn stream(&self, epoch: Epoch) -> String {
        format!("{}{}", self.stream_prefix, epoch_text(epoch))
    }
}

pub(crate) fn epoch_text(epoch: Epoch) -> String {
    format!("{:016x}", epoch.as_u64())
}

pub(crate) fn parse_epoch(text: &[u8]) -> Result<Epoch, push_core::Error> {
    std::str::from_utf8(text)
        .ok()
        .and_then(|text| u64::from_str_radix(text, 16).ok())
        .map(Epoch::from_u64)
        .ok_or_else(|| malformed("an epoch that is not 16 hex digits"))
}

/// One stream entry as Redis returns it.
pub(crate) enum Entry {
    Event(Event),
    /// The incarnation was closed after the event before.
    Closed,
}

/// The incarnation and head a script reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Head {
    pub(crate) epoch: Epoch,
    pub(crate) seq: u64,
}

impl Head {
    pub(crate) fn id(self) -> EventId {
        EventId::new(self.epoch, self.seq)
    }
}

/// What a channel holds, as [`Store::describe`] reports it.
pub(crate) struct Held {
    pub(crate) head: Head,
    pub(crate) retained: usize,
    pub(crate) earliest: Option<EventId>,
}

/// `script` on `keys`, with the arguments [`CURRENT`] reads: the stream
/// key prefix and an epoch to draw if the name has no incarnation.
fn on<'a>(script: &'a Script, keys: &Keys) -> ScriptInvocation<'a> {
    let mut invocation = script.key(&keys.meta);
    invocation
        .arg(&keys.stream_prefix)
        .arg(epoch_text(Epoch::random()));
    invocation
}

/// The scripts, run on one connection.
pub(crate) struct Store<'a> {
    pub(crate) redis: ConnectionManager,
    pub(crate) scripts: &'a Scripts,
    pub(crate) limits: Limits,
}

impl Store<'_> {
    pub(crate) async fn publish(
        &mut self,
        keys: &Keys,
        message: &Message,
    ) -> Result<EventId, push_core::Error> {
        let data = message.data();
        let kind = if data.is_text() { "t" } else { "b" };
        let reply: Value = on(&self.scripts.publish, keys)
            .arg(data.bytes().as_ref())
            .arg(kind)
            .arg(message.name().unwrap_or(""))
            .arg(push_core::memory::history_cost(message))
            .arg(self.limits.history_events)
            .arg(self.limits.history_bytes)
            .invoke_async(&mut self.redis)
            .await
            .map_err(backend)?;
        let mut parts = array(reply)?.into_iter();
        Ok(head(&mut parts)?.id())
    }

    /// The incarnation, its head and its retained events, oldest first.
    pub(crate) async fn snapshot(
        &mut self,
        keys: &Keys,
    ) -> Result<(Head, Vec<Event>), push_core::Error> {
        let reply: Value = on(&self.scripts.snapshot, keys)
            .invoke_async(&mut self.redis)
            .await
            .map_err(backend)?;
        let mut parts = array(reply)?.into_iter();
        let head = head(&mut parts)?;
        let mut events = Vec::new();
        for entry in array(parts.next().unwrap_or(Value::Nil))? {
            match decode_entry(head.epoch, entry)? {
                Entry::Event(event) => events.push(event),
                Entry::Closed => {}
            }
        }
        Ok((head, events))
    }

    pub(crate) async fn describe(&mut self, keys: &Keys) -> Result<Held, push_core::Error> {
        let reply: Value = on(&self.scripts.describe, keys)
            .invoke_async(&mut self.redis)
            .await
            .map_err(backend)?;
        let mut parts = array(reply)?.into_iter();
        let head = head(&mut parts)?;
        let retained = integer(parts.next())?;
        let earliest = match parts.next() {
            Some(Value::BulkString(id)) if !id.is_empty() => {
                Some(EventId::new(head.epoch, entry_seq(&id)?))
            }
            _ => None,
        };
        Ok(Held {
            head,
            retained: usize::try_from(retained).map_err(|_| malformed("a negative length"))?,
            earliest,
        })
    }

    /// The current head, and event `id` if it is of the current incarnation
    /// and retained.
    pub(crate) async fn lookup(
        &mut self,
        keys: &Keys,
        id: EventId,
    ) -> Result<(Head, Option<Event>), push_core::Error> {
        let reply: Value = on(&self.scripts.lookup, keys)
            .arg(format!("{}-0", id.seq()))
            .invoke_async(&mut self.redis)
            .await
            .map_err(backend)?;
        let mut parts = array(reply)?.into_iter();
        let head = head(&mut parts)?;
        if head.epoch != id.epoch() {
            return Ok((head, None));
        }
        let event = array(parts.next().unwrap_or(Value::Nil))?
            .into_iter()
            .next()
            .map(|entry| decode_entry(head.epoch, entry))
            .transpose()?
            .and_then(|entry| match entry {
                Entry::Event(event) => Some(event),
                Entry::Closed => None,
            });
        Ok((head, event))
    }

    pub(crate) async fn close(&mut self, keys: &Keys) -> Result<bool, push_core::Error> {
        let closed: i64 = self
            .scripts
            .close
            .key(&keys.meta)
            .arg(&keys.stream_prefix)
            .arg(CLOSED_STREAM_TTL_SECS)
            .invoke_async(&mut self.redis)
            .await
            .map_err(backend)?;
        Ok(closed == 1)
    }

    /// The incarnation and head the name has now, if it has one; creates
    /// none.
    pub(crate) async fn current(&mut self, keys: &Keys) -> Result<Option<Head>, push_core::Error> {
        let (epoch, seq): (Option<Vec<u8>>, Option<u64>) = redis::cmd("HMGET")
            .arg(&keys.meta)
            .arg("epoch")
            .arg("seq")
            .query_async(&mut self.redis)
            .await
            .map_err(backend)?;
        match (epoch, seq) {
            (Some(epoch), Some(seq)) => Ok(Some(Head {
                epoch: parse_epoch(&epoch)?,
                seq,
            })),
            _ => Ok(None),
        }
    }
}

fn array(value: Value) -> Result<Vec<Value>, push_core::Error> {
    match value {
        Value::Array(values) => Ok(values),
        Value::Nil => Ok(Vec::new()),
        _ => Err(malformed("a reply that is not an array")),
    }
}

fn integer(value: Option<Value>) -> Result<i64, push_core::Error> {
    match value {
        Some(Value::Int(n)) => Ok(n),
        Some(Value::BulkString(text)) => std::str::from_utf8(&text)
            .ok()
            .and_then(|text| text.parse().ok())
            .ok_or_else(|| malformed("a number that does not parse")),
        _ => Err(malformed("a missing number")),
    }
}

fn head(parts: &mut impl Iterator<Item = Value>) -> Result<Head, push_core::Error> {
    let epoch = match parts.next() {
        Some(Value::BulkString(epoch)) => parse_epoch(&epoch)?,
        _ => return Err(malformed("a missing epoch")),
    };
    let seq = u64::try_from(integer(parts.next())?).map_err(|_| malformed("a negative head"))?;
    Ok(Head { epoch, seq })
}

/// The sequence number of entry id `{seq}-0`.
pub(crate) fn entry_seq(id: &[u8]) -> Result<u64, push_core::Error> {
    std::str::from_utf8(id)
        .ok()
        .and_then(|id| id.strip_suffix("-0"))
        .and_then(|seq| seq.parse().ok())
        .ok_or_else(|| malformed("an entry id that is not {seq}-0"))
}

/// An entry `[id, [field, value, …]]` of incarnation `epoch`.
pub(crate) fn decode_entry(epoch: Epoch, entry: Value) -> Result<Entry, push_core::Error> {
    let mut parts = array(entry)?.into_iter();
    let seq = match parts.next() {
        Some(Value::BulkString(id)) => entry_seq(&id)?,
        _ => return Err(malformed("an entry without an id")),
    };
    let mut data = None;
    let mut text = true;
    let mut name = None;
    let mut fields = array(parts.next().unwrap_or(Value::Nil))?.into_iter();
    while let (Some(field), Some(value)) = (fields.next(), fields.next()) {
        let (Value::BulkString(field), Value::BulkString(value)) = (field, value) else {
            return Err(malformed("an entry field that is not a string"));
        };
        match field.as_slice() {
            b"closed" => return Ok(Entry::Closed),
            b"d" => data = Some(Bytes::from(value)),
            b"k" => text = value == b"t",
            b"n" if !value.is_empty() => {
                name = Some(String::from_utf8(value).map_err(|_| malformed("a name"))?);
            }
            _ => {}
        }
    }
    let data = data.ok_or_else(|| malformed("an entry without data"))?;
    let data = if text {
        Data::text_from_utf8(data).map_err(|_| malformed("text data that is not UTF-8"))?
    } else {
        Data::binary(data)
    };
    let mut message = Message::new(data);
    if let Some(name) = name {
        message = message
            .with_name(&name)
            .map_err(|_| malformed("an event name the wire contract refuses"))?;
    }
    Ok(Entry::Event(Event::new(EventId::new(epoch, seq), message)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(text: &[u8]) -> Value {
        Value::BulkString(text.to_vec())
    }

    #[test]
    fn keys_keep_a_channel_in_one_hash_slot() {
        let keys = Keys::new("push", &ChannelName::new("room:42").unwrap());
        assert_eq!(keys.meta, "push:{room:42}:meta");
        let epoch = Epoch::from_u64(0xab);
        assert_eq!(keys.stream(epoch), "push:{room:42}:00000000000000ab");
    }

    #[test]
    fn entries_decode_to_events_with_their_ids() {
        let epoch = Epoch::from_u64(7);
        let entry = Value::Array(vec![
            bulk(b"12-0"),
            Value::Array(vec![
                bulk(b"d"),
                bulk(b"hello"),
                bulk(b"k"),
                bulk(b"t"),
                bulk(b"n"),
                bulk(b"greeting"),
                bulk(b"c"),
                bulk(b"77"),
            ]),
        ]);
        let Ok(Entry::Event(event)) = decode_entry(epoch, entry) else {
            panic!("an event");
        };
        assert_eq!(event.id(), EventId::new(epoch, 12));
        assert_eq!(event.data().as_text(), Some("hello"));
        assert_eq!(event.name(), Some("greeting"));

        let binary = Value::Array(vec![
            bulk(b"13-0"),
            Value::Array(vec![
                bulk(b"d"),
                bulk(&[0xff, 0]),
                bulk(b"k"),
                bulk(b"b"),
                bulk(b"n"),
                bulk(b""),
            ]),
        ]);
        let Ok(Entry::Event(event)) = decode_entry(epoch, binary) else {
            panic!("an event");
        };
        assert!(!event.data().is_text());
        assert_eq!(event.name(), None);

        let closed = Value::Array(vec![
            bulk(b"14-0"),
            Value::Array(vec![bulk(b"closed"), bulk(b"1")]),
        ]);
        assert!(matches!(decode_entry(epoch, closed), Ok(Entry::Closed)));
    }

    #[test]
    fn what_this_crate_did_not_write_is_a_backend_error_not_a_panic() {
        let epoch = Epoch::from_u64(7);
        for entry in [
            Value::Array(vec![
                bulk(b"12-1"),
                Value::Array(vec![bulk(b"d"), bulk(b"x")]),
            ]),
            Value::Array(vec![
                bulk(b"12-0"),
                Value::Array(vec![bulk(b"k"), bulk(b"t")]),
            ]),
            Value::Array(vec![
                bulk(b"12-0"),
                Value::Array(vec![bulk(b"d"), bulk(&[0xff]), bulk(b"k"), bulk(b"t")]),
            ]),
            Value::Int(3),
        ] {
            assert!(matches!(
                decode_entry(epoch, entry),
                Err(push_core::Error::Backend(_))
            ));
        }
        assert!(parse_epoch(b"not hex").is_err());
    }
}
