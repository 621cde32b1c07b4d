//! The simulated devices: each is registered at the AS with its own invitation (a real
//! X.509 chain), opens its own anonymous mailbox and KeyPackage pool at one DS node, and
//! uploads real KeyPackages sealed with its pool key — what `Device::register` does, without
//! a local store per device.

use crate::LoadError;
use conclave_api::auth::Authorization;
use conclave_api::delivery::SealedKeyPackage;
use conclave_client::wire::{self, AuthClient, DeliveryClient, SUITE};
use conclave_mls::codec::Encode as _;
use conclave_mls::crypto::SignaturePrivateKey;
use conclave_mls::messages::Lifetime;
use conclave_mls::messages::{Certificate, Credential};
use conclave_mls::{Identity, KeyPackageBundle, KeyPackageOptions, RustCrypto};
use ed25519_dalek::SigningKey;
use futures_util::StreamExt as _;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// One registered device.
pub struct SimDevice {
    /// The DS node it talks to.
    pub node: usize,
    /// Its MLS identity (X.509 credential from the AS, signature key).
    pub identity: Identity,
    /// Its mailbox.
    pub mailbox_id: String,
    /// The mailbox key.
    pub mailbox_key: SigningKey,
    /// Its KeyPackage pool.
    pub pool_id: String,
    /// The pool's sealing key (in the system, handed to contacts).
    pub pool_key: [u8; 32],
    /// The pool's claim secret (likewise).
    pub claim_secret: [u8; 32],
    /// The private halves of its KeyPackages, kept only for devices that hold real MLS
    /// state (a delivery-only device never opens a Welcome).
    pub bundles: Vec<KeyPackageBundle>,
}

fn random<const N: usize>() -> Result<[u8; N], LoadError> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).map_err(|e| LoadError::Server(format!("randomness: {e}")))?;
    Ok(b)
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Registers and sets up a device with the invitation `code`; `key_packages` are uploaded
/// (the last as the last-resort one); `keep` keeps their private halves.
async fn register_one(
    auth: &AuthClient,
    ds: &DeliveryClient,
    node: usize,
    code: String,
    key_packages: usize,
    keep: bool,
) -> Result<SimDevice, LoadError> {
    let provider = RustCrypto::default();
    let seed = random::<32>()?;
    let key = SigningKey::from_bytes(&seed);
    let registered = auth
        .register(&key, Authorization::Invitation { code })
        .await?;
    let identity = Identity {
        suite: SUITE,
        credential: Credential::X509 {
            certificates: registered
                .certificate
                .certificates
                .iter()
                .map(|c| Certificate {
                    cert_data: c.0.clone().into(),
                })
                .collect(),
        },
        signature_key: key.verifying_key().to_bytes().to_vec().into(),
        signer: SignaturePrivateKey::from_slice(&seed),
    };
    let mailbox_key = SigningKey::from_bytes(&random::<32>()?);
    // The load stack's DS runs without Privacy Pass (see servers.rs): no token.
    let mailbox_id = ds.create_mailbox(&mailbox_key, None).await?;
    let claim_secret = random::<32>()?;
    let pool_key = random::<32>()?;
    let pool_id = ds
        .create_pool(&mailbox_id, &mailbox_key, &claim_secret, None)
        .await?;
    let issued = now();
    let lifetime = 7 * 86_400;
    let mut sealed = Vec::new();
    let mut bundles = Vec::new();
    for i in 0..key_packages.max(1) {
        let bundle = KeyPackageBundle::generate(
            &provider,
            &identity,
            KeyPackageOptions::new(Lifetime::starting_at(issued.saturating_sub(300), lifetime)),
        )?;
        sealed.push(SealedKeyPackage {
            sealed: wire::seal_key_package(
                &provider,
                &pool_key,
                &pool_id,
                &bundle.message().encode()?,
            )?
            .into(),
            last_resort: i + 1 == key_packages.max(1),
        });
        if keep {
            bundles.push(bundle);
        }
    }
    ds.upload(
        &mailbox_id,
        &mailbox_key,
        &pool_id,
        sealed,
        issued + lifetime,
    )
    .await?;
    Ok(SimDevice {
        node,
        identity,
        mailbox_id,
        mailbox_key,
        pool_id,
        pool_key,
        claim_secret,
        bundles,
    })
}

/// Registers a device with each invitation code, `concurrency` at a time, spread
/// round-robin over the DS nodes; `keep(i)` says whose KeyPackage private keys to keep.
/// Returns the devices in order and the time it took.
pub async fn register_all(
    auth: &AuthClient,
    nodes: &[DeliveryClient],
    codes: Vec<String>,
    key_packages: usize,
    keep: impl Fn(usize) -> bool,
    concurrency: usize,
    progress: &indicatif::ProgressBar,
) -> Result<(Vec<SimDevice>, std::time::Duration), LoadError> {
    let started = Instant::now();
    let count = codes.len();
    let jobs = codes.into_iter().enumerate().map(|(i, code)| {
        let node = i % nodes.len();
        let ds = nodes[node].clone();
        let auth = auth.clone();
        let keep = keep(i);
        async move {
            let device = register_one(&auth, &ds, node, code, key_packages, keep).await;
            (i, device)
        }
    });
    let mut out: Vec<Option<SimDevice>> = (0..count).map(|_| None).collect();
    let mut stream = futures_util::stream::iter(jobs).buffer_unordered(concurrency.max(1));
    while let Some((i, device)) = stream.next().await {
        out[i] = Some(device?);
        progress.inc(1);
    }
    let devices = out.into_iter().flatten().collect();
    Ok((devices, started.elapsed()))
}
