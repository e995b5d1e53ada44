//! Every push technique as a tower `Service`.
//!
//! Placeholder: filled in by the push-tower issue.

pub use push_core;
