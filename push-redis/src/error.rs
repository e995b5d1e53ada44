//! Redis failures as push-core errors.

use std::fmt;

/// A Redis failure, as [`push_core::Error::Backend`]: the wire contract
/// answers it `503 unavailable` with `Retry-After`.
pub(crate) fn backend(error: redis::RedisError) -> push_core::Error {
    push_core::Error::Backend(Box::new(error))
}

/// Redis held something this crate did not write.
pub(crate) fn malformed(what: &'static str) -> push_core::Error {
    push_core::Error::Backend(Box::new(Malformed(what)))
}

#[derive(Debug)]
struct Malformed(&'static str);

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Redis returned {}; is another program writing under push's key prefix?",
            self.0
        )
    }
}

impl std::error::Error for Malformed {}
