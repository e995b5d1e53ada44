//! The publish rate per channel: a token bucket for each channel that is
//! being published to, refilled at the configured rate.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use push_core::wire::WireError;
use push_core::ChannelName;

/// At most `per_second` publishes a second to any one channel, with bursts
/// of up to `burst`; see [`Config::publish_rate`](crate::Config::publish_rate).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PublishRate {
    /// Publishes a second, sustained.
    pub per_second: u32,
    /// Publishes at once, after a quiet spell.
    pub burst: u32,
}

/// Buckets this many channels at most before the full ones (which hold no
/// information) are dropped.
const SWEEP_AT: usize = 4096;

#[derive(Debug)]
pub(crate) struct PublishRates {
    rate: PublishRate,
    buckets: Mutex<HashMap<ChannelName, Bucket>>,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

impl PublishRates {
    pub(crate) fn new(rate: PublishRate) -> Self {
        PublishRates {
            rate,
            buckets: Mutex::default(),
        }
    }

    /// Takes one publish of `channel` from its bucket.
    ///
    /// # Errors
    ///
    /// `429 rate_limited`, with the seconds until a publish is allowed
    /// again, if the bucket is empty.
    pub(crate) fn take(&self, channel: &ChannelName, now: Instant) -> Result<(), WireError> {
        let PublishRate { per_second, burst } = self.rate;
        let per_second = f64::from(per_second);
        let burst = f64::from(burst);
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if buckets.len() >= SWEEP_AT && !buckets.contains_key(channel) {
            buckets.retain(|_, bucket| level(bucket, per_second, burst, now) < burst);
        }
        let bucket = buckets.entry(channel.clone()).or_insert(Bucket {
            tokens: burst,
            updated: now,
        });
        bucket.tokens = level(bucket, per_second, burst, now);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Ok(());
        }
        let wait = Duration::from_secs_f64((1.0 - bucket.tokens) / per_second);
        let retry_after = u32::try_from(wait.as_secs() + 1).unwrap_or(u32::MAX);
        Err(WireError::rate_limited(self.rate.per_second, retry_after))
    }
}

/// The bucket's tokens at `now`.
fn level(bucket: &Bucket, per_second: f64, burst: f64, now: Instant) -> f64 {
    let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
    (bucket.tokens + elapsed * per_second).min(burst)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn channel(name: &str) -> ChannelName {
        ChannelName::new(name).unwrap()
    }

    #[test]
    fn a_burst_then_the_sustained_rate_per_channel() {
        let rates = PublishRates::new(PublishRate {
            per_second: 2,
            burst: 3,
        });
        let start = Instant::now();
        let news = channel("news");
        for _ in 0..3 {
            rates.take(&news, start).unwrap();
        }
        let refused = rates.take(&news, start).unwrap_err();
        assert_eq!(refused.code(), push_core::wire::ErrorCode::RateLimited);
        assert_eq!(refused.retry_after(), Some(1));
        // Another channel has its own bucket.
        rates.take(&channel("sports"), start).unwrap();
        // Half a second refills one publish at 2 a second, not two.
        let later = start + Duration::from_millis(500);
        rates.take(&news, later).unwrap();
        assert!(rates.take(&news, later).is_err());
    }

    #[test]
    fn full_buckets_are_swept_so_random_names_cannot_grow_the_map() {
        let rates = PublishRates::new(PublishRate {
            per_second: 1_000,
            burst: 1_000,
        });
        let start = Instant::now();
        for i in 0..3 * SWEEP_AT {
            let now = start + Duration::from_secs(i as u64);
            rates.take(&channel(&format!("c{i}")), now).unwrap();
        }
        assert!(rates.buckets.lock().unwrap().len() <= SWEEP_AT);
    }
}
