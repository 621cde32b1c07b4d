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
//! every recomputed root is compared with the stored one. Publishing is serialised in one
//! process: with PostgreSQL and several AS nodes, one node must own the directory (not
//! enforced here).

use crate::api;
use crate::store::{Store, StoreError};
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

/// The AS's key directory.
pub struct Transparency {
    directory: Akd,
    /// Taken for writing by a publish, for reading by a look-up, so that the devices read
    /// from the store and the proof come from the same epoch.
    lock: RwLock<()>,
    vrf_public_key: Vec<u8>,
}

impl std::fmt::Debug for Transparency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transparency").finish_non_exhaustive()
    }
}

impl Transparency {
    /// Opens the directory: replays `store`'s log into a fresh in-memory akd and checks the
    /// roots.
    pub async fn open(store: &dyn Store, vrf: VrfKey) -> Result<Self, KtError> {
        let directory = Akd::new(
            StorageManager::new_no_cache(AsyncInMemoryDatabase::new()),
            vrf,
            AzksParallelismConfig::default(),
        )
        .await
        .map_err(akd_err)?;
        let vrf_public_key = directory
            .get_public_key()
            .await
            .map_err(akd_err)?
            .as_bytes()
            .to_vec();
        let log = store.kt_log().await?;
        let mut roots = store.kt_roots(0, u64::MAX).await?;
        let EpochHash(zero, zero_root) = directory.get_epoch_hash().await.map_err(akd_err)?;
        match roots.first() {
            Some((0, root)) if root.as_slice() != zero_root.as_slice() => {
                return Err(KtError::Replay(0));
            }
            Some((0, _)) => {}
            _ => {
                // A new directory: log the empty tree's root as epoch 0.
                store.kt_append(zero, &[], &zero_root).await?;
                roots.insert(0, (zero, zero_root.to_vec()));
            }
        }
        let mut i = 0;
        while i < log.len() {
            let epoch = log[i].0;
            let mut batch = Vec::new();
            while i < log.len() && log[i].0 == epoch {
                batch.push((
                    AkdLabel(log[i].1.clone().into_bytes()),
                    AkdValue(log[i].2.clone()),
                ));
                i += 1;
            }
            let EpochHash(got, root) = directory.publish(batch).await.map_err(akd_err)?;
            let stored = roots
                .iter()
                .find(|(e, _)| *e == epoch)
                .map(|(_, r)| r.as_slice());
            if got != epoch || stored != Some(root.as_slice()) {
                return Err(KtError::Replay(epoch));
            }
        }
        Ok(Self {
            directory,
            lock: RwLock::new(()),
            vrf_public_key,
        })
    }

    /// The VRF public key clients verify lookup proofs with.
    pub fn vrf_public_key(&self) -> &[u8] {
        &self.vrf_public_key
    }

    /// The current epoch and root.
    pub async fn head(&self) -> Result<(u64, Vec<u8>), KtError> {
        let EpochHash(epoch, root) = self.directory.get_epoch_hash().await.map_err(akd_err)?;
        Ok((epoch, root.to_vec()))
    }

    /// Publishes the current device sets of `users` as one new epoch and logs it.
    pub async fn publish(&self, store: &dyn Store, users: &[&str]) -> Result<u64, KtError> {
        let _guard = self.lock.write().await;
        let mut entries = Vec::with_capacity(users.len());
        for user in users {
            let devices = store.user_devices(user).await?;
            let value = api::directory_value(devices.iter().map(|d| {
                (
                    d.device_id.as_str(),
                    d.signature_key.as_slice(),
                    d.not_after,
                )
            }));
            entries.push((user.to_string(), value));
        }
        entries.sort();
        entries.dedup_by(|a, b| a.0 == b.0);
        let updates = entries
            .iter()
            .map(|(l, v)| (AkdLabel(l.clone().into_bytes()), AkdValue(v.clone())))
            .collect();
        let EpochHash(epoch, root) = self.directory.publish(updates).await.map_err(akd_err)?;
        store.kt_append(epoch, &entries, &root).await?;
        metrics::gauge!("conclave_as_kt_epoch").set(epoch as f64);
        Ok(epoch)
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
        let _guard = self.lock.read().await;
        let (proof, EpochHash(epoch, root)) = match self
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
        let proof = self.directory.audit(from, to).await.map_err(akd_err)?;
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
