//! The synchronisation primitives of the in-memory channel, swapped for
//! loom's under `--cfg loom` so that `tests/loom.rs` can explore every
//! interleaving of publish, subscribe, take and drop.

#[cfg(loom)]
pub(crate) use loom::sync::{Arc, Mutex, MutexGuard};
#[cfg(not(loom))]
pub(crate) use std::sync::{Arc, Mutex, MutexGuard};
