//! Time, for the checks RFC 9420 ties to it: KeyPackage and leaf lifetimes (§7.2, §7.3,
//! §10.1) and, with X.509 credentials, certificate validity periods.
//!
//! The library reads no clock behind the application's back and has no default that turns a
//! check off: every [`GroupConfig`](crate::GroupConfig) and every
//! [`X509Validator`](crate::identity::x509::X509Validator) holds a [`TimePolicy`], which is
//! either a [`Clock`] (by default the system's) or the explicit, greppable
//! [`TimePolicy::SkipChecks`] that replaying recorded traffic needs.
//!
//! ```
//! use conclave_mls::GroupConfig;
//! use conclave_mls::time::{FixedClock, TimePolicy};
//!
//! // Lifetimes checked against the system clock: the default.
//! let config = GroupConfig::default();
//! assert!(config.time().now().is_some());
//! // A fixed instant, for reproducible tests.
//! let config = GroupConfig::default().with_time(TimePolicy::clock(FixedClock(1_800_000_000)));
//! assert_eq!(config.time().now(), Some(1_800_000_000));
//! ```

use std::fmt;
use std::sync::Arc;

/// A source of the current time, in seconds since the Unix epoch.
pub trait Clock: Send + Sync + fmt::Debug {
    /// Seconds since the Unix epoch, now.
    fn now(&self) -> u64;
}

/// The operating system's clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> u64 {
        // A clock set before 1970 reads as 1970: every lifetime then lies in the future and
        // is refused, which fails closed.
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    }
}

/// A clock that always reads the same instant (seconds since the Unix epoch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FixedClock(pub u64);

impl Clock for FixedClock {
    fn now(&self) -> u64 {
        self.0
    }
}

/// Whether, and against which clock, time-bound checks run.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum TimePolicy {
    /// Check lifetimes and validity periods against this clock.
    Clock(Arc<dyn Clock>),
    /// Check no lifetime or validity period. Only for replaying recorded messages (test
    /// vectors, audits) whose KeyPackages and certificates have since expired: a live client
    /// that skips these checks accepts expired keys.
    SkipChecks,
}

impl Default for TimePolicy {
    /// The system clock.
    fn default() -> Self {
        Self::system()
    }
}

impl TimePolicy {
    /// Checks against the operating system's clock.
    pub fn system() -> Self {
        Self::Clock(Arc::new(SystemClock))
    }

    /// Checks against `clock`.
    pub fn clock(clock: impl Clock + 'static) -> Self {
        Self::Clock(Arc::new(clock))
    }

    /// Checks at the fixed instant `now` (seconds since the Unix epoch).
    pub fn at(now: u64) -> Self {
        Self::clock(FixedClock(now))
    }

    /// The instant to check at, or `None` under [`TimePolicy::SkipChecks`].
    pub fn now(&self) -> Option<u64> {
        match self {
            Self::Clock(clock) => Some(clock.now()),
            Self::SkipChecks => None,
        }
    }
}
