//! How long clients are told to wait before reconnecting to a server that
//! is shutting down.

use std::time::Duration;

/// The delays a draining server tells its clients to wait before they
/// reconnect: each is drawn at random, uniformly from `least` to
/// `least + spread`, so that the ten thousand clients of one server do not
/// all come back in the same millisecond.
///
/// The [`Pulse`](super::Pulse) holds one; the delivery engine draws the
/// `retry_ms` of every stream's `shutdown` signal from it, and servers
/// draw the `Retry-After` of their `503 shutting_down` answers from it.
///
/// ```
/// use std::time::Duration;
/// use push_core::engine::RetryWindow;
///
/// let window = RetryWindow::new(Duration::from_secs(1), Duration::from_secs(9));
/// for _ in 0..100 {
///     let delay = window.draw();
///     assert!(delay >= Duration::from_secs(1) && delay <= Duration::from_secs(10));
///     assert!((1..=10).contains(&window.draw_secs()));
/// }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryWindow {
    least: Duration,
    spread: Duration,
}

impl RetryWindow {
    /// Delays from `least` to `least + spread`. A zero `spread` tells every
    /// client the same delay.
    ///
    /// # Panics
    ///
    /// Panics if `least + spread` overflows a [`Duration`].
    pub fn new(least: Duration, spread: Duration) -> Self {
        assert!(
            least.checked_add(spread).is_some(),
            "least + spread must fit in a Duration"
        );
        RetryWindow { least, spread }
    }

    /// The least delay.
    pub fn least(&self) -> Duration {
        self.least
    }

    /// How far above the least delay one may fall.
    pub fn spread(&self) -> Duration {
        self.spread
    }

    /// One delay, drawn uniformly from the window, to the millisecond.
    pub fn draw(&self) -> Duration {
        let spread_ms = u64::try_from(self.spread.as_millis()).unwrap_or(u64::MAX);
        let offset = match spread_ms.checked_add(1) {
            Some(choices) => random_u64() % choices,
            None => random_u64(),
        };
        self.least.saturating_add(Duration::from_millis(offset))
    }

    /// One delay in whole seconds, rounded up, for a `Retry-After` header:
    /// never `0`, since that means "now".
    pub fn draw_secs(&self) -> u32 {
        let delay = self.draw();
        let secs = delay.as_secs() + u64::from(delay.subsec_nanos() > 0);
        u32::try_from(secs.max(1)).unwrap_or(u32::MAX)
    }
}

impl Default for RetryWindow {
    /// From 1 s to 10 s.
    fn default() -> Self {
        RetryWindow::new(Duration::from_secs(1), Duration::from_secs(9))
    }
}

/// A random number from the operating system; should it fail, the clock's
/// nanoseconds, which still spread clients that draw at different moments.
fn random_u64() -> u64 {
    getrandom::u64().unwrap_or_else(|_| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|now| u64::from(now.subsec_nanos()) ^ now.as_secs())
            .unwrap_or(0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_stay_in_the_window_and_spread_across_it() {
        let window = RetryWindow::new(Duration::from_millis(500), Duration::from_millis(1000));
        let draws: Vec<Duration> = (0..2000).map(|_| window.draw()).collect();
        let (least, most) = (draws.iter().min().unwrap(), draws.iter().max().unwrap());
        assert!(*least >= Duration::from_millis(500), "{least:?}");
        assert!(*most <= Duration::from_millis(1500), "{most:?}");
        // 2,000 uniform draws over 1,001 values: each tenth of the window
        // is missed with a chance of about 0.9^2000.
        for tenth in 0..10 {
            let from = Duration::from_millis(500 + tenth * 100);
            let to = from + Duration::from_millis(100);
            assert!(
                draws.iter().any(|draw| (from..to).contains(draw)),
                "nothing drawn in {from:?}..{to:?}"
            );
        }
    }

    #[test]
    fn a_zero_spread_draws_the_least_delay() {
        let window = RetryWindow::new(Duration::from_millis(1500), Duration::ZERO);
        assert_eq!(window.draw(), Duration::from_millis(1500));
        assert_eq!(window.draw_secs(), 2, "rounded up");
    }

    #[test]
    fn retry_after_is_never_zero() {
        let window = RetryWindow::new(Duration::ZERO, Duration::ZERO);
        assert_eq!(window.draw(), Duration::ZERO);
        assert_eq!(window.draw_secs(), 1);
    }

    #[test]
    fn the_largest_windows_do_not_overflow() {
        let window = RetryWindow::new(Duration::ZERO, Duration::MAX);
        let _ = window.draw();
        let _ = window.draw_secs();
    }
}
