//! Storage: one [`Store`] trait, two engines ([`sqlite`], [`postgres`]) sharing their SQL
//! ([`sql`]). Every method is one transaction; a method returns only once its transaction
//! is durable, so a 2xx answer always means the write survives a crash.
//!
//! Schema (migrations under `crates/delivery/migrations/{sqlite,postgres}`): mailboxes
//! (random id, public key, entry counter), mailbox entries (blob or reference to a Welcome
//! stored once, deleted with its last entry), pools (with their claim budget),
//! sealed KeyPackages, groups (opaque id, epoch, sequence counter), epoch keys,
//! the group log, and used nonces. Nothing in it names a person, a device or an address.

pub mod postgres;
pub mod sql;
pub mod sqlite;

use crate::error::StoreError;
use async_trait::async_trait;

/// The granularity, in seconds, of every time the DS keeps beyond the moment a mechanism
/// needs it (issue 19; RFC 9750 §8.4.2: the DS should keep as little metadata as it can).
/// An operator who also holds the AS's database could otherwise match a mailbox or pool
/// created in the same second as a device registered, a KeyPackage expiring in the same
/// second as a certificate, or a removal commit with a revocation; at this granularity an
/// event is only "in the same hour" as any other of that hour.
pub const RECORD_GRANULARITY: i64 = 3_600;

/// `t` floored to [`RECORD_GRANULARITY`]: how the DS stores when something happened, and
/// the expiry of what must never outlive its own (KeyPackages).
pub fn record_time(t: i64) -> i64 {
    t - t.rem_euclid(RECORD_GRANULARITY)
}

/// `t` rounded up to [`RECORD_GRANULARITY`]: how the DS stores the expiry of what it must
/// keep at least that long (mailbox entries).
pub fn record_expiry(t: i64) -> i64 {
    match t.rem_euclid(RECORD_GRANULARITY) {
        0 => t,
        r => t.saturating_add(RECORD_GRANULARITY - r),
    }
}

/// What a mailbox entry holds (stored as an integer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// A Welcome (stored once, referred to).
    Welcome = 1,
    /// A sealed blob.
    Blob = 2,
}

/// A mailbox entry as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxEntryRow {
    /// Its number in the mailbox, the fetch cursor. Numbers come from the mailbox's own
    /// counter, taken in the inserting transaction, so a mailbox's entries become visible in
    /// the order of their numbers: a reader whose cursor is past `id` never misses an entry
    /// committed later.
    pub id: i64,
    /// Kind.
    pub kind: EntryKind,
    /// The bytes (a Welcome's are stored once and shared by its entries). Nothing else is
    /// kept: no group id or epoch links a joiner's mailbox to a group.
    pub data: Vec<u8>,
}

/// Kind of a group log entry (stored as an integer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogKind {
    /// Application message.
    Application = 1,
    /// Proposal.
    Proposal = 2,
    /// Commit (a PrivateMessage).
    Commit = 3,
    /// External commit, sealed by its joiner: ends an epoch like a commit.
    ExternalCommit = 4,
}

impl LogKind {
    /// From the stored integer.
    pub fn from_i64(v: i64) -> Result<Self, StoreError> {
        match v {
            1 => Ok(LogKind::Application),
            2 => Ok(LogKind::Proposal),
            3 => Ok(LogKind::Commit),
            4 => Ok(LogKind::ExternalCommit),
            _ => Err(StoreError::Corrupt("log kind")),
        }
    }
}

/// A group log entry as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRow {
    /// Sequence number.
    pub seq: u64,
    /// Epoch it was sent in.
    pub epoch: u64,
    /// Kind.
    pub kind: LogKind,
    /// The MLSMessage.
    pub message: Vec<u8>,
}

/// The public key of one epoch of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EpochKey {
    /// The group auth key (Ed25519 public key).
    pub auth_key: Vec<u8>,
    /// The key authorising an external commit against this epoch's GroupInfo, if one was
    /// published.
    pub external_commit_key: Option<Vec<u8>>,
    /// Sequence number of the commit that started the epoch (0 for epoch 0).
    pub start_seq: u64,
}

/// A group's current state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupState {
    /// Current epoch.
    pub epoch: u64,
    /// Last sequence number used.
    pub last_seq: u64,
}

/// The nonce of a signed request, recorded in the transaction of the write the request
/// asks for (an append or a commit), so that accepting the write and spending the nonce
/// are one atomic step on every node sharing the database: a replayed request finds the
/// nonce and is refused ([`AppendOutcome::Replay`]) without writing anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsedNonce {
    /// The scope (the key's kind and id: [`crate::auth::scope`]).
    pub scope: Vec<u8>,
    /// The nonce.
    pub nonce: Vec<u8>,
    /// Until when it is kept (Unix seconds): past the request's timestamp window.
    pub expires_at: i64,
}

/// A commit to apply, all or nothing.
#[derive(Debug, Clone)]
pub struct NewCommit<'a> {
    /// Group id.
    pub group_id: &'a [u8],
    /// The epoch the commit ends.
    pub epoch: u64,
    /// [`LogKind::Commit`] or [`LogKind::ExternalCommit`].
    pub kind: LogKind,
    /// The commit message.
    pub message: &'a [u8],
    /// The auth key of epoch + 1.
    pub next_auth_key: &'a [u8],
    /// Welcomes and their mailboxes.
    pub welcomes: Vec<(&'a [u8], Vec<Vec<u8>>)>,
    /// The sealed GroupInfo of epoch + 1 and its external commit key.
    pub group_info: Option<(&'a [u8], &'a [u8])>,
    /// Now (Unix seconds).
    pub now: i64,
    /// When the Welcomes' mailbox entries expire.
    pub welcome_expires_at: i64,
    /// The request's nonce, recorded in the commit's transaction.
    pub nonce: &'a UsedNonce,
}

/// A [`NewCommit`] with owned data, as a write closure needs it.
#[derive(Debug, Clone)]
pub struct OwnedCommit {
    /// Group id.
    pub group_id: Vec<u8>,
    /// The epoch the commit ends.
    pub epoch: u64,
    /// [`LogKind::Commit`] or [`LogKind::ExternalCommit`].
    pub kind: LogKind,
    /// The commit message.
    pub message: Vec<u8>,
    /// The auth key of epoch + 1.
    pub next_auth_key: Vec<u8>,
    /// Welcomes and their mailboxes.
    pub welcomes: Vec<(Vec<u8>, Vec<Vec<u8>>)>,
    /// The sealed GroupInfo of epoch + 1 and its external commit key.
    pub group_info: Option<(Vec<u8>, Vec<u8>)>,
    /// Now.
    pub now: i64,
    /// When the Welcomes' mailbox entries expire.
    pub welcome_expires_at: i64,
    /// The request's nonce.
    pub nonce: UsedNonce,
}

impl From<&NewCommit<'_>> for OwnedCommit {
    fn from(c: &NewCommit<'_>) -> Self {
        OwnedCommit {
            group_id: c.group_id.to_vec(),
            epoch: c.epoch,
            kind: c.kind,
            message: c.message.to_vec(),
            next_auth_key: c.next_auth_key.to_vec(),
            welcomes: c
                .welcomes
                .iter()
                .map(|(w, m)| (w.to_vec(), m.clone()))
                .collect(),
            group_info: c.group_info.map(|(a, b)| (a.to_vec(), b.to_vec())),
            now: c.now,
            welcome_expires_at: c.welcome_expires_at,
            nonce: c.nonce.clone(),
        }
    }
}

/// Result of an append or a commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppendOutcome {
    /// Stored at this sequence number; the group is now at `epoch`.
    Appended {
        /// Sequence number.
        seq: u64,
        /// Current epoch.
        epoch: u64,
        /// The mailbox entries queued (a commit's Welcomes), for push.
        queued: Vec<(Vec<u8>, MailboxEntryRow)>,
    },
    /// Refused: the group is at this epoch (the nonce was spent).
    WrongEpoch(u64),
    /// No such group (the nonce was spent).
    NoGroup,
    /// A Welcome names a mailbox that does not exist; nothing was applied (the nonce was
    /// spent).
    NoMailbox,
    /// The request's nonce was used before: a replay; nothing was applied.
    Replay,
}

/// Status of a pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolCount {
    /// Unexpired, not last resort.
    pub available: u64,
    /// Whether an unexpired last-resort blob is held.
    pub last_resort: bool,
}

/// A KeyPackage claim (RFC 9750 §5.1) as the store runs it, in one transaction: the pool's
/// rate limit, the claim secret, then one KeyPackage.
#[derive(Debug, Clone, Copy)]
pub struct NewClaim<'a> {
    /// The pool.
    pub pool: &'a [u8],
    /// The hash of the claim secret presented (compared in constant time with the pool's).
    pub secret_hash: &'a [u8],
    /// The pool's claim budget per minute, with a burst of as many (RFC 9420 §16.8: a
    /// drained pool keeps its owner out of new groups). At least 1 is used.
    pub per_minute: u32,
    /// Now, in microseconds since the Unix epoch (the node's clock; nodes are expected to
    /// keep their clocks in step, a skew of `s` seconds lends at most `s × per_minute / 60`
    /// extra claims).
    pub now_micros: i64,
    /// Paid with a Privacy Pass token: allowed past the budget, and takes nothing from it.
    pub paid: bool,
}

/// How a claim ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimOutcome {
    /// One sealed KeyPackage, handed out once (a last-resort one is kept for later claims).
    Claimed {
        /// The sealed blob.
        sealed: Vec<u8>,
        /// Whether it is the last-resort one.
        last_resort: bool,
    },
    /// No unexpired KeyPackage is left (a claim token was spent).
    Empty,
    /// The pool's claim budget is spent; nothing else was looked at.
    RateLimited,
    /// Wrong claim secret (a claim token was spent: guessing is limited too).
    WrongSecret,
    /// No such pool.
    NoPool,
}

/// What the pruner removes; every age is a cut-off in Unix seconds.
#[derive(Debug, Clone, Copy)]
pub struct PruneCutoffs {
    /// Application messages and proposals created before this are deleted.
    pub messages_before: i64,
    /// Commits created before this are deleted.
    pub commits_before: i64,
    /// Now: expired mailbox entries, KeyPackages and nonces go.
    pub now: i64,
    /// Epochs that started before this are past their predecessor's grace period: their
    /// start time is blurred to [`RECORD_GRANULARITY`].
    pub grace_before: i64,
    /// Spent Privacy Pass tokens of windows before this are deleted (their tokens are
    /// refused anyway: [`crate::privacy_pass`]).
    pub spent_tokens_before: i64,
    /// At most this many rows per table per call.
    pub batch: i64,
}

/// How many rows one pruning pass deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Log entries.
    pub log_entries: u64,
    /// Epoch keys.
    pub epoch_keys: u64,
    /// Mailbox entries.
    pub mailbox_entries: u64,
    /// Welcomes whose last entry expired.
    pub welcomes: u64,
    /// Expired KeyPackages.
    pub key_packages: u64,
    /// Expired nonces.
    pub nonces: u64,
    /// Rows whose mechanism times were blurred (not deleted).
    pub blurred: u64,
    /// Spent Privacy Pass tokens of windows no longer accepted.
    pub spent_tokens: u64,
}

impl Pruned {
    /// Total rows.
    pub fn total(&self) -> u64 {
        self.log_entries
            + self.epoch_keys
            + self.mailbox_entries
            + self.welcomes
            + self.key_packages
            + self.nonces
            + self.blurred
            + self.spent_tokens
    }
}

impl std::ops::AddAssign for Pruned {
    fn add_assign(&mut self, other: Pruned) {
        // Destructured, so a new counter cannot be left out of the sum.
        let Pruned {
            log_entries,
            epoch_keys,
            mailbox_entries,
            welcomes,
            key_packages,
            nonces,
            blurred,
            spent_tokens,
        } = other;
        self.log_entries += log_entries;
        self.epoch_keys += epoch_keys;
        self.mailbox_entries += mailbox_entries;
        self.welcomes += welcomes;
        self.key_packages += key_packages;
        self.nonces += nonces;
        self.blurred += blurred;
        self.spent_tokens += spent_tokens;
    }
}

/// The DS's storage. Each method is one durable transaction.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Records a nonce in a scope until `expires_at`; false if it was there (a replay).
    async fn use_nonce(
        &self,
        scope: &[u8],
        nonce: &[u8],
        expires_at: i64,
    ) -> Result<bool, StoreError>;

    /// Creates a mailbox.
    async fn create_mailbox(
        &self,
        id: &[u8],
        public_key: &[u8],
        now: i64,
    ) -> Result<(), StoreError>;
    /// A mailbox's public key.
    async fn mailbox_key(&self, id: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;
    /// Queues a blob; `None` if there is no such mailbox.
    async fn post_blob(
        &self,
        mailbox: &[u8],
        data: &[u8],
        now: i64,
        expires_at: i64,
    ) -> Result<Option<MailboxEntryRow>, StoreError>;
    /// Entries with id > `after`, by id.
    async fn fetch_entries(
        &self,
        mailbox: &[u8],
        after: i64,
        limit: i64,
    ) -> Result<Vec<MailboxEntryRow>, StoreError>;
    /// Deletes the listed entries of the mailbox, and each Welcome whose last entry this was.
    async fn ack_entries(&self, mailbox: &[u8], ids: &[i64]) -> Result<u64, StoreError>;

    /// Creates a pool owned by a mailbox.
    async fn create_pool(
        &self,
        pool: &[u8],
        mailbox: &[u8],
        secret_hash: &[u8],
        now: i64,
    ) -> Result<(), StoreError>;
    /// The owner mailbox and claim-secret hash of a pool.
    async fn pool(&self, pool: &[u8]) -> Result<Option<(Vec<u8>, Vec<u8>)>, StoreError>;
    /// Adds sealed KeyPackages; a new last-resort blob replaces the old one.
    async fn upload_key_packages(
        &self,
        pool: &[u8],
        items: &[(Vec<u8>, bool)],
        expires_at: i64,
    ) -> Result<(), StoreError>;
    /// What is left.
    async fn pool_count(&self, pool: &[u8], now: i64) -> Result<PoolCount, StoreError>;
    /// In one transaction: takes a token from the pool's claim budget (kept in the pool's
    /// row, so it holds across nodes), checks the claim secret, then takes one unexpired
    /// blob, atomically and once; the last-resort one only when no other is left, and
    /// without deleting it.
    async fn claim(&self, claim: NewClaim<'_>) -> Result<ClaimOutcome, StoreError>;

    /// Registers a group at epoch 0; false if the id is taken.
    async fn create_group(
        &self,
        group_id: &[u8],
        auth_key: &[u8],
        now: i64,
    ) -> Result<bool, StoreError>;
    /// A group's state.
    async fn group_state(&self, group_id: &[u8]) -> Result<Option<GroupState>, StoreError>;
    /// The key of one epoch.
    async fn epoch_key(&self, group_id: &[u8], epoch: u64) -> Result<Option<EpochKey>, StoreError>;
    /// Appends a message of `epoch`, accepted if the group is at `epoch`, or at `epoch + 1`
    /// since no earlier than `previous_since` (the grace for messages in flight). The
    /// request's nonce is recorded in the same transaction: a nonce used before makes it
    /// [`AppendOutcome::Replay`] and nothing is written; a refusal for the epoch or the
    /// group still spends the nonce.
    #[allow(clippy::too_many_arguments)]
    async fn append(
        &self,
        group_id: &[u8],
        epoch: u64,
        kind: LogKind,
        message: &[u8],
        now: i64,
        previous_since: i64,
        nonce: &UsedNonce,
    ) -> Result<AppendOutcome, StoreError>;
    /// Applies a commit: the request's nonce, epoch compare-and-set, log append, next key,
    /// Welcomes, GroupInfo, in one transaction (RFC 9420 §14, RFC 9750 §5.2). Each Welcome
    /// is stored once and each of its mailboxes gets an entry referring to it. A nonce used
    /// before makes it [`AppendOutcome::Replay`] and nothing is applied; any other refusal
    /// applies nothing but still spends the nonce.
    async fn commit(&self, commit: NewCommit<'_>) -> Result<AppendOutcome, StoreError>;
    /// The log entries readable with `epoch`'s key from `from`: that epoch's entries, and
    /// the previous epoch's that were appended after the commit starting `epoch`.
    async fn read_log(
        &self,
        group_id: &[u8],
        epoch: u64,
        start_seq: u64,
        from: u64,
        limit: i64,
    ) -> Result<Vec<LogRow>, StoreError>;
    /// Stores the sealed GroupInfo of the group's current epoch `epoch`; false if the group
    /// is not at `epoch`.
    async fn put_group_info(
        &self,
        group_id: &[u8],
        epoch: u64,
        sealed: &[u8],
        external_key: &[u8],
    ) -> Result<bool, StoreError>;
    /// The stored GroupInfo and its epoch.
    async fn group_info(&self, group_id: &[u8]) -> Result<Option<(u64, Vec<u8>)>, StoreError>;

    /// One pruning pass.
    async fn prune(&self, cutoffs: PruneCutoffs) -> Result<Pruned, StoreError>;

    /// Records a Privacy Pass token's nonce as spent, for the challenge window it answered;
    /// `false` if it was spent already (by this node or another sharing the database).
    async fn spend_token(&self, nonce: &[u8], window: i64) -> Result<bool, StoreError>;

    /// Gives a spent token back when what it paid for failed (the client may use it again).
    async fn unspend_token(&self, nonce: &[u8]) -> Result<(), StoreError>;

    /// The secret named `name`; the first caller's `fresh` value becomes it, for every
    /// node sharing the database.
    async fn secret(&self, name: &str, fresh: &[u8]) -> Result<Vec<u8>, StoreError>;
}

/// An epoch or sequence number as stored (SQL integers are signed).
pub(crate) fn to_i64(v: u64) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| StoreError::Corrupt("integer out of range"))
}

/// Back from a stored integer.
pub(crate) fn to_u64(v: i64) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt("negative integer"))
}
