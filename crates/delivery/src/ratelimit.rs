//! The node-wide rate limit of anonymous creations, as a token bucket in this node's memory
//! (claims per pool are limited in the database, across nodes: `store::sql`).
//!
//! - [`NodeLimiter`]: anonymous creations of mailboxes and groups, node-wide. The DS keeps
//!   no IP address (RFC 9750 §8: metadata minimisation), so there is no per-client limit:
//!   a flood from one source spends the same budget as everybody's creations.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One token bucket: `per_minute` tokens a minute, holding at most as many.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

impl Bucket {
    fn full(per_minute: f64, now: Instant) -> Self {
        Bucket {
            tokens: per_minute,
            last: now,
        }
    }

    /// Takes a token, or says how long until one is there.
    fn take(&mut self, per_minute: f64, now: Instant) -> Result<(), Duration> {
        let refill = now.saturating_duration_since(self.last).as_secs_f64() * per_minute / 60.0;
        self.tokens = (self.tokens + refill).min(per_minute);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64(
                (1.0 - self.tokens) * 60.0 / per_minute,
            ))
        }
    }
}

/// One token bucket for the whole node.
#[derive(Debug)]
pub struct NodeLimiter {
    per_minute: f64,
    bucket: Mutex<Bucket>,
}

impl NodeLimiter {
    /// `per_minute` events per minute on this node, with a burst of as many.
    pub fn new(per_minute: u32) -> Self {
        let per_minute = f64::from(per_minute.max(1));
        NodeLimiter {
            per_minute,
            bucket: Mutex::new(Bucket::full(per_minute, Instant::now())),
        }
    }

    /// Takes one token, or returns the whole seconds to wait for the next (at least 1).
    pub fn allow(&self) -> Result<(), u64> {
        let mut bucket = self.bucket.lock().unwrap_or_else(|p| p.into_inner());
        bucket
            .take(self.per_minute, Instant::now())
            .map_err(|wait| wait.as_secs_f64().ceil().max(1.0) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_limit_says_when_to_retry() {
        let l = NodeLimiter::new(2);
        assert!(l.allow().is_ok() && l.allow().is_ok());
        // Two a minute: the next token is about 30 s away.
        let wait = l.allow().expect_err("spent");
        assert!((29..=31).contains(&wait), "{wait}");
    }

    #[test]
    fn bucket_refills_with_time() {
        let t0 = Instant::now();
        let mut b = Bucket::full(60.0, t0);
        for _ in 0..60 {
            assert!(b.take(60.0, t0).is_ok());
        }
        assert!(b.take(60.0, t0).is_err());
        assert!(b.take(60.0, t0 + Duration::from_millis(1100)).is_ok());
        // Never more than the burst.
        let mut b = Bucket::full(60.0, t0);
        let later = t0 + Duration::from_secs(3600);
        for _ in 0..60 {
            assert!(b.take(60.0, later).is_ok());
        }
        assert!(b.take(60.0, later).is_err());
    }
}
