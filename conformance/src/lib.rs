//! The `push` conformance suite.
//!
//! This crate will hold every point of the semantics contract as a named
//! scenario, a trait to put any transport under test, built-in clients for
//! each technique, and a command that checks a running server by URL. It is
//! a placeholder until that issue lands: it only re-exports the core model.

pub use push_core;
