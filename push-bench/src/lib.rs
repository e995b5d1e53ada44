#![doc = include_str!("../README.md")]
//!
//! # Modules
//!
//! - [`alloc_count`]: heap allocations per delivery through push-server,
//!   counted by valgrind's DHAT.
//! - [`baseline`]: the servers push is compared with, written the way a user
//!   would write them without push.
//! - [`server`]: every server under test, how to start it and where it
//!   listens.
//! - [`hold`]: the client that opens many connections (WebSocket, or
//!   HTTP/1.1 streaming responses) and holds them.
//! - [`idle`]: the idle-memory run, which starts servers and holders and
//!   reports the memory each connection costs.
//! - [`longpoll`]: the long-poll load, pollers on keep-alive HTTP/1.1
//!   connections and a publisher at a fixed rate.
//! - [`longpoll_compare`]: the long-poll cycle rate of push against a bare
//!   hyper server that answers at once.
//! - [`h2_compare`]: the HTTP/2 comparison of two push-server builds on
//!   h2c long polls and SSE fan-out.
//! - [`fanout`]: the fan-out load: many SSE, NDJSON or WebSocket streams of
//!   one channel, events published at a fixed rate, and what each stream
//!   received.
//! - [`fanout_compare`]: push-server against the baselines on the fan-out
//!   regimes of DESIGN.md, technique by technique.
//! - [`slow_consumers`]: readers' latency with and without clients that
//!   stopped reading, and the server's memory meanwhile.
//! - [`soak`]: the reconnect soak: subscribers on every technique cut and
//!   resumed at random, every event counted, and the server's memory.
//! - [`technique`]: the techniques a fan-out measures.
//! - [`writes`]: the server's write system calls, counted with `perf`.
//! - [`h2c`]: the load's h2c client.
//! - [`http1`]: the load's HTTP/1.1 client.
//! - [`ws`]: the load's WebSocket client.
//! - [`h2load`]: nghttp2's `h2load`, run and read.
//! - [`child`]: child processes pinned to one core.
//! - [`proc`]: readings from `/proc`.
//! - [`cpu`]: a process's CPU time, from `/proc`.

pub mod alloc_count;
pub mod baseline;
pub mod child;
pub mod cpu;
pub mod fanout;
pub mod fanout_compare;
pub mod h2_compare;
pub mod h2c;
pub mod h2load;
pub mod hold;
pub mod http1;
pub mod idle;
pub mod longpoll;
pub mod longpoll_compare;
pub mod proc;
pub mod redis_compare;
pub mod server;
pub mod slow_consumers;
pub mod soak;
pub mod technique;
pub mod writes;
pub mod ws;

use std::fmt;

/// What went wrong in a benchmark run, said for the person running it.
///
/// The message names the step that failed and, where there is one, what to
/// do about it. Its text is not a stable interface.
#[derive(Debug)]
pub struct Error {
    message: String,
}

impl Error {
    /// An error with this message.
    pub fn new(message: impl Into<String>) -> Self {
        Error {
            message: message.into(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

/// The result of a benchmark step.
pub type Result<T> = std::result::Result<T, Error>;
