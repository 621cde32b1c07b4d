//! Key transparency with `akd` (the auditable key directory WhatsApp deploys; RFC 9750
//! §8.4.3.1: "run key transparency so anyone can check the credentials the AS has issued").
//!
//! One directory label per user (`user@domain`); its value is
//! [`api::directory_value`] of the user's current devices (device id, signature key,
//! certificate notAfter), so every registration, renewal and revocation publishes a new
//! version. Every look-up answer carries an akd lookup proof for the current epoch's root;
//! the client checks it with [`verify_lookup`] against a root it obtained (and can compare
//! with others'), and that the proven value is exactly the devices it was served. Auditors
//! fetch epoch roots and append-only proofs between epochs and check them with
//! [`verify_audit`].
//!
//! **Storage:** the akd tree lives in akd's in-memory storage; what makes it durable is the
//! AS's own database, which logs every published epoch (`kt_log`: epoch, label, value) and
//! its root (`kt_roots`). At start the directory is rebuilt by replaying the log (the VRF key
//! is kept in the keys directory, so labels, commitments and roots come out identical) and
//! every recomputed root is compared with the stored one.
//!
//! **What is guaranteed** (RFC 9750 §8.4.3.1 asks that the AS's issued credentials be
//! checkable; a directory that silently misses a device, or two forked histories, would
//! defeat that):
//!
//! - *No change is lost.* Every device change (registration, renewal, revocation) writes a
//!   `kt_pending` row for its user in the change's own transaction (a transactional outbox).
//!   A publish reads the outbox, publishes those users' current device sets as one epoch,
//!   and deletes the rows it published in the same transaction that appends `kt_log` and
//!   `kt_roots`. The request path publishes at once, so a look-up proof covers a new device
//!   when its registration returns; if that fails or the process dies first, the outbox is
//!   drained at the next start and every few hundred milliseconds
//!   ([`Service::kt_drain`](crate::service::Service::kt_drain)), so the directory value is
//!   never left stale.
//! - *One history, whatever the number of nodes.* Only the holder of the publisher lease
//!   (`kt_lease`: holder, expiry; taken and renewed by compare-and-set) publishes, and its
//!   commit fails unless it still holds the lease (whose row it locks until commit) and its
//!   epoch directly follows the logged one — so epochs are logged once each, in order, even
//!   if clocks disagree about expiry. A node whose commit fails rebuilds its in-memory
//!   directory from the log. A dead holder's lease expires and another node takes it.
//! - *Every node serves the logged directory.* A node that is not the holder (or is behind
//!   for any reason) replays the epochs it has not applied before it serves a look-up, the
//!   head or an audit, checking each root; a change made on such a node waits (bounded) for
//!   the holder to publish it before the request returns.
//!
//! Not guaranteed: a look-up of a user whose change is committed but not yet published
//! (milliseconds normally; up to the lease lifetime after a holder dies) serves the last
//! published devices, and fails if a served device's row has already changed (a renewal).

use crate::api;
use crate::store::{KtEpoch, Store, StoreError};
use akd::directory::Directory;
use akd::ecvrf::{VRFKeyStorage, VrfError};
use akd::storage::StorageManager;
use akd::storage::memory::AsyncInMemoryDatabase;
use akd::{AkdLabel, AkdValue, AzksParallelismConfig, EpochHash};
use protobuf::Message;
use std::sync::Arc;
use tokio::sync::RwLock;

/// Domain separation of Conclave's directory hashes.
#[derive(Clone, Copy, Debug)]
pub struct ConclaveDomain;

impl akd::DomainLabel for ConclaveDomain {
    fn domain_label() -> &'static [u8] {
        api::KT_DOMAIN_LABEL
    }
}

/// The akd configuration the AS and its clients use.
pub type KtConfig = akd::ExperimentalConfiguration<ConclaveDomain>;

/// A transparency failure.
#[derive(Debug, thiserror::Error)]
pub enum KtError {
    /// akd failed.
    #[error("akd: {0}")]
    Akd(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A proof does not verify, or does not prove what was served.
    #[error("verification failed: {0}")]
    Verify(String),
    /// Replaying the log gave a root different from the stored one.
    #[error("the directory log does not reproduce the stored root of epoch {0}")]
    Replay(u64),
}

fn akd_err(e: impl std::fmt::Display) -> KtError {
    KtError::Akd(e.to_string())
}

/// The VRF private key (an Ed25519 seed), kept by the AS like its CA keys.
#[derive(Clone)]
pub struct VrfKey(Arc<[u8; 32]>);

impl VrfKey {
    /// A VRF key from its 32-byte seed.
    pub fn new(seed: [u8; 32]) -> Self {
        Self(Arc::new(seed))
    }

    /// The VRF key kept in `path`, created there if absent.
    pub fn load_or_create(path: &std::path::Path) -> Result<Self, crate::signer::SignerError> {
        crate::signer::load_or_create_seed(path).map(Self::new)
    }
}

#[async_trait::async_trait]
impl VRFKeyStorage for VrfKey {
    async fn retrieve(&self) -> Result<Vec<u8>, VrfError> {
        Ok(self.0.to_vec())
    }
}

type Akd = Directory<KtConfig, AsyncInMemoryDatabase, VrfKey>;

/// Most users one epoch publishes from the outbox (more wait for the next epoch).
const BATCH: u32 = 1_000;

/// What [`Transparency::publish_pending`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Published {
    /// Published the outbox's changes as this new epoch.
    Epoch(u64),
    /// This node holds the lease and the outbox was empty.
    Nothing,
    /// This node holds the lease and published outbox rows whose values the directory
    /// already held (no new epoch).
    Unchanged,
    /// Another node holds the publisher lease: it publishes the outbox.
    NotHolder,
}

/// The in-memory directory and how far into the stored log it is.
struct State {
    directory: Akd,
    /// The last logged epoch applied to `directory`.
    epoch: u64,
    /// `directory` went past the log (an epoch published in memory whose commit failed):
    /// it is rebuilt from the log before it is used again.
    diverged: bool,
    /// Until when this node last renewed the publisher lease (0: it does not hold it).
    lease_until: u64,
}

/// The AS's key directory.
pub struct Transparency {
    /// Taken for writing by a publish or a catch-up, for reading by a look-up, so that the
    /// devices read from the store and the proof come from the same epoch.
    state: RwLock<State>,
    vrf: VrfKey,
    vrf_public_key: Vec<u8>,
    /// This node's name in the publisher lease.
    node: String,
}

impl std::fmt::Debug for Transparency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transparency")
            .field("node", &self.node)
            .finish_non_exhaustive()
    }
}

/// A fresh, empty in-memory directory.
async fn empty_directory(vrf: VrfKey) -> Result<Akd, KtError> {
    Akd::new(
        StorageManager::new_no_cache(AsyncInMemoryDatabase::new()),
        vrf,
        AzksParallelismConfig::default(),
    )
    .await
    .map_err(akd_err)
}

/// Publishes the logged epochs `after + 1 ..= to` into `directory` (which is at `after`) and
/// checks that each comes out with its logged number and root.
async fn replay(directory: &Akd, store: &dyn Store, after: u64, to: u64) -> Result<(), KtError> {
    if to <= after {
        return Ok(());
    }
    // Roots first, then the log bounded by them: an epoch committed in between is not read
    // half (its entries and root commit in one transaction anyway).
    let roots = store.kt_roots(after + 1, to).await?;
    let log = store.kt_log_range(after + 1, to).await?;
    let mut expected = after + 1;
    let mut i = 0;
    for (epoch, stored) in roots {
        if epoch != expected {
            return Err(KtError::Replay(expected));
        }
        let mut batch = Vec::new();
        while i < log.len() && log[i].0 == epoch {
            batch.push((
                AkdLabel(log[i].1.clone().into_bytes()),
                AkdValue(log[i].2.clone()),
            ));
            i += 1;
        }
        let EpochHash(got, root) = directory.publish(batch).await.map_err(akd_err)?;
        if got != epoch || stored.as_slice() != root.as_slice() {
            return Err(KtError::Replay(epoch));
        }
        expected += 1;
    }
    match log.get(i) {
        Some((epoch, _, _)) => Err(KtError::Replay(*epoch)),
        None if expected != to + 1 => Err(KtError::Replay(expected)),
        None => Ok(()),
    }
}

fn random_node() -> String {
    let mut bytes = [0u8; 8];
    // Without entropy the name is still unique enough per process for a lease holder.
    let _ = getrandom::fill(&mut bytes);
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("as-{}-{hex}", std::process::id())
}

impl Transparency {
    /// Opens the directory as a node with a random name (see [`Transparency::open_as`]).
    pub async fn open(store: &dyn Store, vrf: VrfKey) -> Result<Self, KtError> {
        Self::open_as(store, vrf, random_node()).await
    }

    /// Opens the directory as node `node` (its name in the publisher lease: a restarted
    /// process with the same name holds the lease it held before at once; with another name
    /// it waits for that lease to expire). Replays `store`'s log into a fresh in-memory akd
    /// and checks every root.
    pub async fn open_as(store: &dyn Store, vrf: VrfKey, node: String) -> Result<Self, KtError> {
        let directory = empty_directory(vrf.clone()).await?;
        let vrf_public_key = directory
            .get_public_key()
            .await
            .map_err(akd_err)?
            .as_bytes()
            .to_vec();
        let EpochHash(zero, zero_root) = directory.get_epoch_hash().await.map_err(akd_err)?;
        // A new directory logs the empty tree's root as epoch 0 (once, whichever node is
        // first); an existing one must have the same.
        if store.kt_init(&zero_root).await?.as_slice() != zero_root.as_slice() {
            return Err(KtError::Replay(zero));
        }
        let this = Self {
            state: RwLock::new(State {
                directory,
                epoch: zero,
                diverged: false,
                lease_until: 0,
            }),
            vrf,
            vrf_public_key,
            node,
        };
        {
            let mut state = this.state.write().await;
            this.catch_up_locked(store, &mut state).await?;
        }
        Ok(this)
    }

    /// This node's name in the publisher lease.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// The VRF public key clients verify lookup proofs with.
    pub fn vrf_public_key(&self) -> &[u8] {
        &self.vrf_public_key
    }

    /// The current epoch and root of this node's directory.
    pub async fn head(&self) -> Result<(u64, Vec<u8>), KtError> {
        let state = self.state.read().await;
        let EpochHash(epoch, root) = state.directory.get_epoch_hash().await.map_err(akd_err)?;
        Ok((epoch, root.to_vec()))
    }

    /// Brings this node's directory up to the latest logged epoch (epochs another node
    /// published, or a rebuild after a failed commit); a no-op when it is there.
    pub async fn catch_up(&self, store: &dyn Store) -> Result<(), KtError> {
        let head = store.kt_head().await?.unwrap_or(0);
        {
            let state = self.state.read().await;
            if !state.diverged && state.epoch >= head {
                return Ok(());
            }
        }
        let mut state = self.state.write().await;
        self.catch_up_locked(store, &mut state).await
    }

    async fn catch_up_locked(&self, store: &dyn Store, state: &mut State) -> Result<(), KtError> {
        if state.diverged {
            let directory = empty_directory(self.vrf.clone()).await?;
            let head = store.kt_head().await?.unwrap_or(0);
            replay(&directory, store, 0, head).await?;
            state.directory = directory;
            state.epoch = head;
            state.diverged = false;
            return Ok(());
        }
        let head = store.kt_head().await?.unwrap_or(0);
        if head > state.epoch {
            if let Err(e) = replay(&state.directory, store, state.epoch, head).await {
                // Part of the range may be applied: start over from the log next time.
                state.diverged = true;
                return Err(e);
            }
            state.epoch = head;
        }
        Ok(())
    }

    /// Publishes the outbox (users whose device set changed, written in the change's own
    /// transaction) as one new epoch, if this node holds the publisher lease (taking it if
    /// it is free or expired at `now`; it lasts `lease_ttl` seconds and is renewed by every
    /// publish). Catches up with the log first, and logs the epoch, renews the lease and
    /// deletes the published outbox rows in one transaction that fails unless this node
    /// still holds the lease and the epoch directly follows the logged head — so there is
    /// one append-only history whatever the number of nodes (RFC 9750 §8.4.3.1).
    pub async fn publish_pending(
        &self,
        store: &dyn Store,
        now: u64,
        lease_ttl: u64,
    ) -> Result<Published, KtError> {
        let mut state = self.state.write().await;
        let lease_until = now.saturating_add(lease_ttl);
        // Renewed when half of it is left; the commit below checks it anyway.
        if state.lease_until <= now.saturating_add(lease_ttl / 2) {
            state.lease_until = 0;
            let (holder, expires_at) = store.kt_lease().await?;
            let free = holder == self.node || expires_at <= now;
            if !free || !store.kt_acquire_lease(&self.node, now, lease_until).await? {
                drop(state);
                self.catch_up(store).await?;
                return Ok(Published::NotHolder);
            }
            state.lease_until = lease_until;
        }
        self.catch_up_locked(store, &mut state).await?;
        let pending = store.kt_pending(BATCH).await?;
        if pending.is_empty() {
            return Ok(Published::Nothing);
        }
        // Each user's devices are read after the outbox row: they include that change.
        let mut entries = Vec::with_capacity(pending.len());
        for (user, _) in &pending {
            let devices = store.user_devices(user).await?;
            let value = api::directory_value(devices.iter().map(|d| {
                (
                    d.device_id.as_str(),
                    d.signature_key.as_slice(),
                    d.not_after,
                )
            }));
            entries.push((user.clone(), value));
        }
        let updates = entries
            .iter()
            .map(|(l, v)| (AkdLabel(l.clone().into_bytes()), AkdValue(v.clone())))
            .collect();
        let before = state.epoch;
        let published = match state.directory.publish(updates).await {
            Ok(EpochHash(epoch, root)) => (epoch, root),
            Err(e) => {
                state.diverged = true;
                return Err(akd_err(e));
            }
        };
        let (epoch, root) = published;
        // akd skips values it already holds: no change, no epoch (the rows still go).
        let logged = (epoch != before).then_some(KtEpoch {
            epoch,
            entries: &entries,
            root: root.as_slice(),
        });
        match store
            .kt_commit(&self.node, lease_until, logged, &pending)
            .await
        {
            Ok(true) => {
                state.epoch = epoch;
                state.lease_until = lease_until;
                metrics::gauge!("conclave_as_kt_epoch").set(epoch as f64);
                Ok(if epoch == before {
                    Published::Unchanged
                } else {
                    Published::Epoch(epoch)
                })
            }
            outcome => {
                // The lease was lost (or the log moved): the in-memory epoch is not the
                // logged one; rebuild from the log.
                state.lease_until = 0;
                if epoch != before {
                    state.diverged = true;
                }
                let _ = self.catch_up_locked(store, &mut state).await;
                outcome.map(|_| Published::NotHolder).map_err(KtError::from)
            }
        }
    }

    /// Gives the publisher lease up (at shutdown), so another node takes it at once.
    pub async fn release(&self, store: &dyn Store) -> Result<(), KtError> {
        let mut state = self.state.write().await;
        state.lease_until = 0;
        store.kt_release_lease(&self.node).await?;
        Ok(())
    }

    /// The user's devices as proven at the current epoch, with the lookup proof.
    ///
    /// The devices served are the ones in the proven directory value (id, signature key,
    /// notAfter), completed from the store (certificate chain, contact key) — never the
    /// store's current rows as such, so an answer never carries a device the proof does not
    /// cover (one whose row is written but not yet published). A proven device whose row no
    /// longer matches (renewed or gone without a publish) is an error, not a silent change.
    pub async fn lookup(
        &self,
        store: &dyn Store,
        user: &str,
    ) -> Result<Option<(Vec<crate::store::DeviceRecord>, api::LookupProof)>, KtError> {
        self.catch_up(store).await?;
        let state = self.state.read().await;
        let (proof, EpochHash(epoch, root)) = match state
            .directory
            .lookup(AkdLabel(user.as_bytes().to_vec()))
            .await
        {
            Ok(found) => found,
            Err(_) if store.user_devices(user).await?.is_empty() => return Ok(None),
            Err(e) => return Err(akd_err(e)),
        };
        let proven = api::parse_directory_value(&proof.value.0)
            .ok_or_else(|| KtError::Akd("a directory value does not parse".into()))?;
        let mut devices = Vec::with_capacity(proven.len());
        for (id, key, not_after) in proven {
            match store.device(&id).await? {
                Some(d)
                    if d.user_id == user && d.signature_key == key && d.not_after == not_after =>
                {
                    devices.push(d)
                }
                _ => {
                    return Err(KtError::Akd(format!(
                        "the store's row of device {id} differs from the published one"
                    )));
                }
            }
        }
        devices.sort_by(|a, b| (a.created_at, &a.device_id).cmp(&(b.created_at, &b.device_id)));
        let proof = akd::proto::specs::types::LookupProof::from(&proof)
            .write_to_bytes()
            .map_err(akd_err)?;
        Ok(Some((
            devices,
            api::LookupProof {
                epoch,
                root_hash: root.to_vec().into(),
                proof: proof.into(),
            },
        )))
    }

    /// Roots of epochs `from..=to` as logged.
    pub async fn roots(
        &self,
        store: &dyn Store,
        from: u64,
        to: u64,
    ) -> Result<Vec<api::EpochRoot>, KtError> {
        Ok(store
            .kt_roots(from, to)
            .await?
            .into_iter()
            .map(|(epoch, root)| api::EpochRoot {
                epoch,
                root_hash: root.into(),
            })
            .collect())
    }

    /// The append-only proof from epoch `from` to epoch `to` (protobuf bytes).
    pub async fn audit(&self, from: u64, to: u64) -> Result<Vec<u8>, KtError> {
        let state = self.state.read().await;
        let proof = state.directory.audit(from, to).await.map_err(akd_err)?;
        akd::proto::specs::types::AppendOnlyProof::from(&proof)
            .write_to_bytes()
            .map_err(akd_err)
    }
}

/// Client side: checks that `proof` proves, under `vrf_public_key`, that `user`'s value at
/// the proof's epoch and root is exactly `devices`, and that the root is `expected_root`
/// when the client has one (from an auditor or another client). Refuses a served device set
/// that is not the one in the directory.
pub fn verify_lookup(
    vrf_public_key: &[u8],
    user: &str,
    devices: &[api::Device],
    proof: &api::LookupProof,
    expected_root: Option<&[u8]>,
) -> Result<(), KtError> {
    if let Some(root) = expected_root {
        if root != proof.root_hash.0.as_slice() {
            return Err(KtError::Verify(
                "the root differs from the expected one".into(),
            ));
        }
    }
    let root: akd::Digest = proof
        .root_hash
        .0
        .as_slice()
        .try_into()
        .map_err(|_| KtError::Verify("the root is not 32 bytes".into()))?;
    let decoded = akd::proto::specs::types::LookupProof::parse_from_bytes(&proof.proof.0)
        .map_err(|e| KtError::Verify(e.to_string()))?;
    let decoded =
        akd::LookupProof::try_from(&decoded).map_err(|e| KtError::Verify(e.to_string()))?;
    let result = akd::client::lookup_verify::<KtConfig>(
        vrf_public_key,
        root,
        proof.epoch,
        AkdLabel(user.as_bytes().to_vec()),
        decoded,
    )
    .map_err(|e| KtError::Verify(e.to_string()))?;
    let served = api::directory_value(devices.iter().map(|d| {
        (
            d.device_id.as_str(),
            d.signature_key.0.as_slice(),
            d.certificate.not_after,
        )
    }));
    if result.value.0 != served {
        return Err(KtError::Verify(
            "the devices served are not the ones in the directory".into(),
        ));
    }
    Ok(())
}

/// Auditor side: checks the append-only proof `proof` (protobuf bytes) against the roots of
/// every epoch from the first to the last of `roots` (consecutive epochs).
pub async fn verify_audit(roots: &[api::EpochRoot], proof: &[u8]) -> Result<(), KtError> {
    let hashes = roots
        .iter()
        .map(|r| {
            r.root_hash
                .0
                .as_slice()
                .try_into()
                .map_err(|_| KtError::Verify("a root is not 32 bytes".into()))
        })
        .collect::<Result<Vec<akd::Digest>, _>>()?;
    if roots.windows(2).any(|w| w[1].epoch != w[0].epoch + 1) {
        return Err(KtError::Verify(
            "the roots are not of consecutive epochs".into(),
        ));
    }
    let decoded = akd::proto::specs::types::AppendOnlyProof::parse_from_bytes(proof)
        .map_err(|e| KtError::Verify(e.to_string()))?;
    let decoded =
        akd::AppendOnlyProof::try_from(&decoded).map_err(|e| KtError::Verify(e.to_string()))?;
    akd::auditor::audit_verify::<KtConfig>(hashes, decoded)
        .await
        .map_err(|e| KtError::Verify(e.to_string()))
}
