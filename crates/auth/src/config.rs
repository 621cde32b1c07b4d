//! Service parameters (RFC 9750 §7: lifetimes and limits a deployment must choose).

/// The default most epochs one append-only proof may span (`kt_audit_max_epochs`): an
/// akd audit proof grows with the number of epochs, so longer ranges are audited in windows
/// (see [`crate::auditor::audit`]).
pub const MAX_AUDIT_EPOCHS: u64 = 10_000;

/// Lifetimes and limits of the AS.
#[derive(Clone, Debug)]
pub struct Config {
    /// Lifetime of a device certificate, seconds (30 days).
    pub certificate_lifetime: u64,
    /// Lifetime of a registration challenge, seconds (5 minutes).
    pub challenge_lifetime: u64,
    /// How far a signed request's timestamp may be from the AS clock, seconds (2 minutes).
    pub request_skew: u64,
    /// How long a relayed contact request waits for its recipient, seconds (7 days).
    pub relay_lifetime: u64,
    /// At most this many requests wait in one inbox (1,000).
    pub relay_max_per_inbox: u32,
    /// Largest sealed contact request, bytes (64 KiB).
    pub relay_max_bytes: usize,
    /// Default lifetime of an invitation code, seconds (7 days).
    pub invitation_lifetime: u64,
    /// Most revocations returned by one feed request (1,000).
    pub feed_page: u32,
    /// Most epochs one `GET /v1/kt/audit` may span ([`MAX_AUDIT_EPOCHS`]); a longer range is
    /// refused with `bad_request` and must be audited in windows.
    pub kt_audit_max_epochs: u64,
    /// How often each node drains the key-transparency outbox (if it holds the publisher
    /// lease, or can take it because it expired) and catches its directory up with epochs
    /// other nodes logged, milliseconds (500).
    pub kt_publish_interval_ms: u64,
    /// Lifetime of the key-transparency publisher lease, seconds (10): a node that stops
    /// renewing it (it died) is taken over this long after its last publish or renewal.
    pub kt_lease_ttl: u64,
    /// How long a change made on a node that does not hold the lease waits for the holder to
    /// publish it before the request is answered anyway (the change stays queued),
    /// milliseconds (5,000).
    pub kt_publish_wait_ms: u64,
    /// Request rate limits.
    pub rate_limits: RateLimits,
}

/// Request rate limits, counted per fixed window of `window` seconds in the database, so
/// they hold across every AS node sharing it (cluster-wide, not per node). A limit of 0
/// disables that limit. Exceeding one is answered `429 rate_limited`.
#[derive(Clone, Debug)]
pub struct RateLimits {
    /// Window length, seconds (60).
    pub window: u64,
    /// Registrations per user per window (10).
    pub registrations_per_user: u64,
    /// Look-ups (`GET /v1/users/{user}/devices`) per device per window (600).
    pub lookups_per_device: u64,
    /// Relay posts per sending device per window (120).
    pub relay_posts_per_device: u64,
    /// Registration challenges (`POST /v1/challenges`, anonymous) per window, for everybody
    /// together (60,000): each is stored until it expires, so this bounds the table.
    pub challenges: u64,
    /// Privacy Pass tokens issued per user per `token_window` (100): what one account may
    /// create at the DS (a mailbox, a pool or a group costs one each; a claim past a
    /// pool's free rate costs one), shared by the user's devices.
    pub tokens_per_user: u64,
    /// The window of `tokens_per_user`, seconds (one day).
    pub token_window: u64,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            window: 60,
            registrations_per_user: 10,
            lookups_per_device: 600,
            relay_posts_per_device: 120,
            challenges: 60_000,
            tokens_per_user: 100,
            token_window: 86_400,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            certificate_lifetime: 30 * 86_400,
            challenge_lifetime: 300,
            request_skew: 120,
            relay_lifetime: 7 * 86_400,
            relay_max_per_inbox: 1_000,
            relay_max_bytes: 64 * 1024,
            invitation_lifetime: 7 * 86_400,
            feed_page: 1_000,
            kt_audit_max_epochs: MAX_AUDIT_EPOCHS,
            kt_publish_interval_ms: 500,
            kt_lease_ttl: 10,
            kt_publish_wait_ms: 5_000,
            rate_limits: RateLimits::default(),
        }
    }
}
