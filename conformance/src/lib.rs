//! The `push` conformance suite.
//!
//! Today this crate holds the built-in clients of each technique, decoded to
//! one model ([`Received`]), a spec-complete SSE parser ([`sse`]) and the
//! [`Transport`] trait a custom transport implements to be put under test.
//! The scenarios of the semantics contract and the by-URL command come with
//! the conformance issue.

pub mod clients;
pub mod http;
pub mod received;
pub mod sse;
pub mod transport;

pub use clients::{Technique, WireClient};
pub use http::{HttpClient, Protocol};
pub use received::{Received, ReceivedEvent, ReceivedSignal, SignalKind};
pub use transport::{OpenError, Session, SessionError, Shape, StartAt, Transport};
