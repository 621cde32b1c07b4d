//! Per-pool claim rate limit (RFC 9420 §16.8: draining a client's KeyPackages keeps it out
//! of new groups). A token bucket per pool, kept in this node's memory: with several nodes
//! the limit applies per node.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

/// Token buckets by key.
#[derive(Debug)]
pub struct RateLimiter {
    per_minute: f64,
    buckets: Mutex<HashMap<Vec<u8>, (f64, Instant)>>,
}

impl RateLimiter {
    /// `per_minute` events per key per minute, with a burst of as many.
    pub fn new(per_minute: u32) -> Self {
        RateLimiter {
            per_minute: f64::from(per_minute.max(1)),
            buckets: Mutex::default(),
        }
    }

    /// Takes one token for `key`; false if none is left.
    pub fn allow(&self, key: &[u8]) -> bool {
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() > 100_000 {
            // Forget buckets that have refilled completely: they hold no information.
            let full = 60.0;
            buckets.retain(|_, (_, t)| now.duration_since(*t).as_secs_f64() < full);
        }
        let (tokens, last) = buckets
            .entry(key.to_vec())
            .or_insert((self.per_minute, now));
        let refill = now.duration_since(*last).as_secs_f64() * self.per_minute / 60.0;
        *tokens = (*tokens + refill).min(self.per_minute);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_past_the_burst_per_key() {
        let l = RateLimiter::new(3);
        assert!(l.allow(b"a") && l.allow(b"a") && l.allow(b"a"));
        assert!(!l.allow(b"a"));
        assert!(l.allow(b"b"));
    }
}
