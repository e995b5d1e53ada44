//! warp 0.4 filters for `push`.
//!
//! This crate will hold filters for every technique that warp's own server
//! can carry (short and long polling, Server-Sent Events, HTTP streaming, and
//! WebSocket over HTTP/1.1), built over [`push_core`] so that they deliver
//! exactly what the tower services of `push-tower` deliver. It is a
//! placeholder until that issue lands: it only re-exports the core model.

pub use push_core;
