//! Benchmark of the AS on SQLite, in process (no HTTP): registrations per second (invitation,
//! challenge, proof of possession, issuance, validation, store, key-transparency publish),
//! look-ups with a transparency proof per second, and proof sizes.
//!
//! `cargo run -p conclave-as --release --example bench -- 50000 1000`
//! (devices to register, look-ups to make; defaults 2,000 and 500).

use conclave_as::api::{self, Authorization, RegisterRequest};
use conclave_as::ca::Ca;
use conclave_as::config::Config;
use conclave_as::oidc::Oidc;
use conclave_as::service::{Service, system_clock};
use conclave_as::store::sqlite::SqliteStore;
use conclave_as::transparency::{Transparency, VrfKey, verify_lookup};
use ed25519_dalek::Signer as _;
use std::sync::Arc;
use std::time::Instant;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let devices: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(2_000);
    let lookups: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(500);
    let dir = tempfile::tempdir()?;
    let store = Arc::new(SqliteStore::open(&dir.path().join("as.db")).await?);
    let clock = system_clock();
    let ca = Ca::load_or_create(&dir.path().join("keys"), clock())?;
    let kt = Transparency::open(
        store.as_ref(),
        VrfKey::load_or_create(&dir.path().join("keys/vrf.key"))?,
    )
    .await?;
    let service = Service::new(store, ca, Oidc::default(), Config::default(), clock, kt);

    // One device per user (the worst case for the directory: one label each).
    let users: Vec<String> = (0..devices)
        .map(|i| format!("user{i}@example.org"))
        .collect();
    let mut codes = Vec::with_capacity(devices);
    for user in &users {
        codes.push(service.create_invitation(user, None).await?);
    }
    let start = Instant::now();
    for (i, code) in codes.into_iter().enumerate() {
        let mut seed = [0u8; 32];
        seed[..8].copy_from_slice(&(i as u64 + 1).to_be_bytes());
        let key = ed25519_dalek::SigningKey::from_bytes(&seed);
        let public = key.verifying_key().to_bytes().to_vec();
        let challenge = service.challenge().await?;
        let proof = key.sign(&api::register_proof_message(&challenge.nonce.0, &public));
        service
            .register(&RegisterRequest {
                authorization: Authorization::Invitation { code },
                challenge_id: challenge.challenge_id,
                signature_key: public.into(),
                proof: proof.to_bytes().to_vec().into(),
            })
            .await?;
        if (i + 1) % 10_000 == 0 {
            eprintln!(
                "{} registered, {:.0}/s",
                i + 1,
                (i + 1) as f64 / start.elapsed().as_secs_f64()
            );
        }
    }
    let registration = start.elapsed();

    let vrf = service.transparency().vrf_public_key().to_vec();
    let mut proof_bytes = 0usize;
    let start = Instant::now();
    for i in 0..lookups {
        let user = &users[(i * 7919) % users.len()];
        let answer = service.user_devices(user).await?;
        let proof = answer.transparency.as_ref().ok_or("no proof")?;
        proof_bytes += proof.proof.0.len();
        verify_lookup(&vrf, user, &answer.devices, proof, None)?;
    }
    let lookup = start.elapsed();
    let head = service.kt_head().await?;
    let audit = service.kt_audit(head.epoch - 1, head.epoch).await?;

    println!("devices registered:            {devices}");
    println!(
        "registrations/s:               {:.0}",
        devices as f64 / registration.as_secs_f64()
    );
    println!(
        "look-ups with proof, verified: {:.0}/s ({lookups} look-ups)",
        lookups as f64 / lookup.as_secs_f64()
    );
    println!(
        "lookup proof size (protobuf):  {} bytes on average",
        proof_bytes / lookups.max(1)
    );
    println!(
        "audit proof, one epoch:        {} bytes",
        audit.proof.0.len()
    );
    println!("directory epoch:               {}", head.epoch);
    Ok(())
}
