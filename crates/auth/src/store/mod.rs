//! Persistence of the AS: one [`Store`] trait, one backend per engine ([`sqlite`],
//! [`postgres`]). Every operation that must be atomic (consume an invitation or a challenge
//! once, fetch-and-delete an inbox, revoke and append to the feed) is one statement or one
//! transaction inside a backend, never a read-then-write across calls.
//!
//! Times are Unix seconds. The AS database is its own: it shares no table, key, id or file
//! with the Delivery Service (DESIGN.md, "who knows what").

pub mod postgres;
mod sql;
pub mod sqlite;

use async_trait::async_trait;

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// A migration failed.
    #[error("migration: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    /// A unique value (the signature key) is already taken.
    #[error("duplicate {0}")]
    Duplicate(&'static str),
    /// A stored value is out of range (corrupt database).
    #[error("corrupt row: {0}")]
    Corrupt(&'static str),
}

/// A device as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceRecord {
    /// The device id (AS-chosen, printable, no `/`).
    pub device_id: String,
    /// The user, `user@domain`.
    pub user_id: String,
    /// The MLS signature public key (Ed25519).
    pub signature_key: Vec<u8>,
    /// The current certificate chain, DER, leaf first, root excluded.
    pub chain: Vec<Vec<u8>>,
    /// The leaf's notAfter.
    pub not_after: u64,
    /// The published contact key and its signature.
    pub contact_key: Option<(Vec<u8>, Vec<u8>)>,
    /// When registered.
    pub created_at: u64,
    /// When revoked, if it is.
    pub revoked_at: Option<u64>,
}

/// An entry of the revocation feed as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevocationRecord {
    /// Feed position.
    pub seq: u64,
    /// The user.
    pub user_id: String,
    /// The device.
    pub device_id: String,
    /// Its signature key.
    pub signature_key: Vec<u8>,
    /// When.
    pub revoked_at: u64,
    /// Why.
    pub reason: Option<String>,
}

/// A sealed contact request as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RelayRecord {
    /// The ciphertext.
    pub sealed: Vec<u8>,
    /// When posted.
    pub received_at: u64,
    /// When it is dropped.
    pub expires_at: u64,
}

/// Why a registration could not be stored.
#[derive(Debug, PartialEq, Eq)]
pub enum RegisterOutcome {
    /// Stored.
    Registered,
    /// The user is revoked: no new device for them.
    UserRevoked,
    /// The signature key already belongs to a device.
    KeyInUse,
    /// The invitation was used (or expired) before this registration could consume it.
    InvalidInvitation,
}

/// What revoking a user or device did.
#[derive(Debug, PartialEq, Eq)]
pub enum RevokeOutcome {
    /// Newly revoked devices (empty when all were already revoked).
    Revoked(Vec<RevocationRecord>),
    /// No such user or device.
    NotFound,
}

/// One key-transparency epoch to log: what it published and its root.
#[derive(Clone, Copy, Debug)]
pub struct KtEpoch<'a> {
    /// The epoch.
    pub epoch: u64,
    /// Its `(label, value)` entries, in label order.
    pub entries: &'a [(String, Vec<u8>)],
    /// The directory root after it.
    pub root: &'a [u8],
}

/// The AS's storage. Implementations: [`sqlite::SqliteStore`], [`postgres::PostgresStore`].
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Stores an invitation for `user_id` under the SHA-256 `code_hash` of its code.
    async fn create_invitation(
        &self,
        code_hash: &[u8],
        user_id: &str,
        expires_at: u64,
    ) -> Result<(), StoreError>;

    /// Marks the invitation used, once: the user it was for, or `None` if it is unknown,
    /// used or expired at `now`.
    async fn consume_invitation(
        &self,
        code_hash: &[u8],
        now: u64,
    ) -> Result<Option<String>, StoreError>;

    /// Stores a registration challenge.
    async fn create_challenge(
        &self,
        challenge_id: &str,
        nonce: &[u8],
        expires_at: u64,
    ) -> Result<(), StoreError>;

    /// Deletes the challenge and returns its nonce, if it exists and is unexpired at `now`.
    async fn consume_challenge(
        &self,
        challenge_id: &str,
        now: u64,
    ) -> Result<Option<Vec<u8>>, StoreError>;

    /// The user of an invitation that is unused and unexpired at `now` (it is not consumed:
    /// [`Store::register_device`] consumes it in the registration's transaction).
    async fn invitation_user(
        &self,
        code_hash: &[u8],
        now: u64,
    ) -> Result<Option<String>, StoreError>;

    /// Stores a new device (creating its user if needed) unless the user is revoked or the
    /// key is taken, consuming the invitation `(code_hash, now)` if given and queuing the
    /// user in the key-transparency outbox — all in one transaction, so a failure leaves
    /// neither a device nor a used invitation, and a stored device is always either
    /// published or queued for publishing. The user's
    /// row is locked first (a conditional `UPDATE`), so a concurrent [`Store::revoke_user`]
    /// either comes first (and the registration is refused) or waits for the device and
    /// revokes it too.
    async fn register_device(
        &self,
        device: &DeviceRecord,
        invitation: Option<(&[u8], u64)>,
    ) -> Result<RegisterOutcome, StoreError>;

    /// A device by id, revoked or not.
    async fn device(&self, device_id: &str) -> Result<Option<DeviceRecord>, StoreError>;

    /// The unrevoked devices of a user, oldest first.
    async fn user_devices(&self, user_id: &str) -> Result<Vec<DeviceRecord>, StoreError>;

    /// Replaces an unrevoked device's certificate chain (and queues its user in the
    /// key-transparency outbox, in the same transaction); `false` if there is none.
    async fn update_certificate(
        &self,
        device_id: &str,
        chain: &[Vec<u8>],
        not_after: u64,
    ) -> Result<bool, StoreError>;

    /// Sets an unrevoked device's contact key; `false` if there is none.
    async fn set_contact_key(
        &self,
        device_id: &str,
        key: &[u8],
        signature: &[u8],
    ) -> Result<bool, StoreError>;

    /// Revokes one device and appends it to the feed (queuing its user in the
    /// key-transparency outbox, in the same transaction).
    async fn revoke_device(
        &self,
        device_id: &str,
        reason: Option<&str>,
        now: u64,
    ) -> Result<RevokeOutcome, StoreError>;

    /// Revokes a user (no new devices) and all their devices, appending each to the feed
    /// (queuing the user in the key-transparency outbox if a device was revoked, in the same
    /// transaction).
    async fn revoke_user(
        &self,
        user_id: &str,
        reason: Option<&str>,
        now: u64,
    ) -> Result<RevokeOutcome, StoreError>;

    /// Feed entries with `seq > after`, at most `limit`, in order.
    async fn revocations_after(
        &self,
        after: u64,
        limit: u32,
    ) -> Result<Vec<RevocationRecord>, StoreError>;

    /// Queues a sealed request for a device, unless its inbox already holds `max` unexpired
    /// ones at `received_at`; `false` when full.
    async fn relay_post(
        &self,
        device_id: &str,
        record: &RelayRecord,
        max: u32,
    ) -> Result<bool, StoreError>;

    /// Deletes and returns every request in a device's inbox that is unexpired at `now`
    /// (expired ones are deleted too), oldest first.
    async fn relay_fetch(&self, device_id: &str, now: u64) -> Result<Vec<RelayRecord>, StoreError>;

    /// Logs the root of the empty directory as epoch 0 unless an epoch 0 is logged already,
    /// and returns the logged epoch-0 root.
    async fn kt_init(&self, root: &[u8]) -> Result<Vec<u8>, StoreError>;

    /// The latest logged key-transparency epoch (`None` before [`Store::kt_init`]).
    async fn kt_head(&self) -> Result<Option<u64>, StoreError>;

    /// The key-transparency log of epochs `from..=to`, `(epoch, label, value)` in epoch
    /// then label order.
    async fn kt_log_range(
        &self,
        from: u64,
        to: u64,
    ) -> Result<Vec<(u64, String, Vec<u8>)>, StoreError>;

    /// The logged roots of epochs `from..=to`, in order.
    async fn kt_roots(&self, from: u64, to: u64) -> Result<Vec<(u64, Vec<u8>)>, StoreError>;

    /// At most `limit` users of the key-transparency outbox (users whose device set changed
    /// since it was last published), with the version of their pending change. Every
    /// operation that changes a user's published devices ([`Store::register_device`],
    /// [`Store::update_certificate`], [`Store::revoke_device`], [`Store::revoke_user`])
    /// queues the user in its own transaction.
    async fn kt_pending(&self, limit: u32) -> Result<Vec<(String, u64)>, StoreError>;

    /// Whether `user_id` has a change waiting in the key-transparency outbox.
    async fn kt_is_pending(&self, user_id: &str) -> Result<bool, StoreError>;

    /// The publisher lease: its holder and when it expires (Unix seconds).
    async fn kt_lease(&self) -> Result<(String, u64), StoreError>;

    /// Takes or renews the publisher lease for `node` until `expires_at`: one
    /// compare-and-set that succeeds only if `node` holds it or it expired at `now`.
    async fn kt_acquire_lease(
        &self,
        node: &str,
        now: u64,
        expires_at: u64,
    ) -> Result<bool, StoreError>;

    /// Gives the publisher lease up (lets it expire now) if `node` holds it.
    async fn kt_release_lease(&self, node: &str) -> Result<(), StoreError>;

    /// Commits one publish in one transaction, only if `node` still holds the lease (whose
    /// row stays locked until commit, so publishers are serialised) and, when `epoch` is
    /// given, only if it directly follows the latest logged epoch: renews the lease until
    /// `lease_expires_at`, logs `epoch` (its entries and root) and deletes the outbox rows
    /// `published` (user, version) that are still at that version. `false` (and nothing
    /// written) when the lease or the epoch check fails.
    async fn kt_commit(
        &self,
        node: &str,
        lease_expires_at: u64,
        epoch: Option<KtEpoch<'_>>,
        published: &[(String, u64)],
    ) -> Result<bool, StoreError>;

    /// Records that `device_id` used the request nonce `nonce`, kept until `expires_at`;
    /// `false` if that device already used it (a replay). One insert: two concurrent uses
    /// cannot both succeed.
    async fn use_request_nonce(
        &self,
        device_id: &str,
        nonce: &str,
        expires_at: u64,
    ) -> Result<bool, StoreError>;

    /// Counts one request against `key` (`kind:subject`) in the rate window starting at
    /// `window_start` (kept until `expires_at`) and returns the window's count including it.
    /// One upsert: concurrent requests on any node are all counted.
    async fn rate_hit(
        &self,
        key: &str,
        window_start: u64,
        expires_at: u64,
    ) -> Result<u64, StoreError>;

    /// Adds `n` to the count of `key` in the window starting at `window_start` (kept until
    /// `expires_at`) if the count stays within `limit`; whether it did. One conditional
    /// upsert, so concurrent requests on any node never take more than `limit` together.
    async fn rate_take(
        &self,
        key: &str,
        window_start: u64,
        expires_at: u64,
        n: u64,
        limit: u64,
    ) -> Result<bool, StoreError>;

    /// Deletes expired challenges, invitations, relayed requests, request nonces and rate
    /// windows; how many rows went.
    async fn purge_expired(&self, now: u64) -> Result<u64, StoreError>;
}

/// Whether `e` is a transient conflict the whole transaction should be run again for: a
/// serialization failure (SQLSTATE 40001, which CockroachDB's SERIALIZABLE transactions
/// raise under contention) or a deadlock (40P01).
pub(crate) fn retryable(e: &StoreError) -> bool {
    match e {
        StoreError::Database(sqlx::Error::Database(d)) => {
            matches!(d.code().as_deref(), Some("40001" | "40P01"))
        }
        _ => false,
    }
}

/// Runs the transaction `op`, again (at most 4 more times, after 10 to 80 ms) while it
/// fails with a [`retryable`] conflict. `op` starts its own transaction each time, so a
/// retried attempt sees none of the failed one's writes.
pub(crate) async fn retry<T, F, Fut>(mut op: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, StoreError>>,
{
    let mut attempt = 0u32;
    loop {
        match op().await {
            Err(e) if attempt < 4 && retryable(&e) => {
                attempt += 1;
                tracing::debug!(error = %e, attempt, "store transaction retried");
                tokio::time::sleep(std::time::Duration::from_millis(5 << attempt)).await;
            }
            other => return other,
        }
    }
}

/// Encodes a chain as one blob: each certificate prefixed by its u32 big-endian length.
pub(crate) fn encode_chain(chain: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for cert in chain {
        let len = u32::try_from(cert.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(cert);
    }
    out
}

/// Inverse of [`encode_chain`].
pub(crate) fn decode_chain(mut blob: &[u8]) -> Result<Vec<Vec<u8>>, StoreError> {
    let mut chain = Vec::new();
    while !blob.is_empty() {
        let (len, rest) = blob
            .split_first_chunk::<4>()
            .ok_or(StoreError::Corrupt("chain length"))?;
        let len = u32::from_be_bytes(*len) as usize;
        if rest.len() < len {
            return Err(StoreError::Corrupt("chain"));
        }
        chain.push(rest[..len].to_vec());
        blob = &rest[len..];
    }
    Ok(chain)
}

/// Converts a stored `i64` time or counter to `u64`.
pub(crate) fn to_u64(v: i64, what: &'static str) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt(what))
}

/// Converts a `u64` time or counter to the `i64` engines store (saturating).
pub(crate) fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}
