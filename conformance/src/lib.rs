//! The `push` conformance suite: the semantics contract as scenarios, run
//! against any technique, built in or your own.
//!
//! - [`scenarios::SCENARIOS`] holds every point of the contract as a named
//!   scenario; each names the point it checks, numbered as in the section
//!   "The semantics contract" of the repository's PROTOCOL.md.
//! - A [`Transport`] is the receiving side of a technique: open a
//!   subscription from a [`StartAt`] and decode what arrives into
//!   [`Received`] items. [`WireClient`] implements it for every built-in
//!   [`Technique`]; implement it for yours.
//! - A [`Control`] is the server side: publish, close, describe, and where
//!   it [can](Control::can), shut down. [`WireControl`] drives any server
//!   that implements the wire contract. A scenario that needs a
//!   [`Capability`] the control lacks is not applicable.
//! - [`Suite`] runs them and returns a [`Report`]: a table of pass, fail
//!   (expected and got) and not applicable (with the reason).
//!
//! ```no_run
//! use conformance::{HttpClient, Protocol, Suite, Technique, WireClient, WireControl};
//!
//! # async fn run() {
//! let http = HttpClient::new("http://127.0.0.1:8080", Protocol::Http1);
//! let control = WireControl::new(http.clone());
//! let sse = WireClient::new(Technique::Sse, http.clone());
//! let ndjson = WireClient::new(Technique::Ndjson, http);
//! let report = Suite::new(&control).transport(&sse).transport(&ndjson).run().await.unwrap();
//! println!("{}", report.table());
//! assert_eq!(report.failures(), 0);
//! # }
//! ```
//!
//! The guide below (the crate's `README.md`) shows how to put a custom
//! transport under test, step by step.
//!
#![doc = include_str!("../README.md")]

pub mod clients;
pub mod control;
mod gate;
pub mod http;
pub mod received;
pub mod runner;
pub mod scenario;
pub mod scenarios;
pub mod transport;

pub use clients::WireClient;
pub use control::{ChannelState, Control, ControlError, ServerLimits, WireControl};
pub use http::{HttpClient, Protocol};
pub use push_core::{Shape, Technique};
pub use received::{Received, ReceivedEvent, ReceivedSignal, SignalKind};
pub use runner::{Report, Row, Suite};
pub use scenario::{Capability, Context, Outcome, Scenario};
pub use transport::{OpenError, Session, SessionError, StartAt, Transport};
