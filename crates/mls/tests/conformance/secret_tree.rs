//! secret-tree.json: sender-data keys (RFC 9420 §6.3.2) and sender ratchets (§9).

use crate::common::{Outcome, expect_eq, hex_field, run_cases, suite, u64_field};
use conclave_mls::crypto::{RustCrypto, Secret, SuiteCrypto};
use conclave_mls::internal::secret_tree::{
    RatchetKind, RatchetPolicy, SecretTree, sender_data_key_nonce,
};
use conclave_mls::internal::tree::{LeafIndex, TreeSize};
use serde_json::Value;

pub fn run(cases: &[Value]) -> Outcome {
    let provider = RustCrypto::default();
    run_cases(cases, |case| {
        let c = SuiteCrypto::new(&provider, suite(case)?).map_err(|e| e.to_string())?;
        let sd = case.get("sender_data").ok_or("missing sender_data")?;
        let (key, nonce) = sender_data_key_nonce(
            &c,
            &hex_field(sd, "sender_data_secret")?,
            &hex_field(sd, "ciphertext")?,
        )
        .map_err(|e| e.to_string())?;
        expect_eq("sender data key", key.as_bytes(), &hex_field(sd, "key")?)?;
        expect_eq(
            "sender data nonce",
            nonce.as_bytes(),
            &hex_field(sd, "nonce")?,
        )?;

        let leaves = case
            .get("leaves")
            .and_then(Value::as_array)
            .ok_or("missing leaves")?;
        let size = TreeSize::covering(leaves.len() as u32).ok_or("leaf count")?;
        let policy = RatchetPolicy::new(0, u32::MAX);
        let mut tree = SecretTree::new(
            size,
            Secret::new(hex_field(case, "encryption_secret")?),
            policy,
        );
        for (i, generations) in leaves.iter().enumerate() {
            let generations = generations.as_array().ok_or("leaf entry is not an array")?;
            for g in generations {
                let generation =
                    u32::try_from(u64_field(g, "generation")?).map_err(|e| e.to_string())?;
                for (kind, k, n) in [
                    (RatchetKind::Handshake, "handshake_key", "handshake_nonce"),
                    (
                        RatchetKind::Application,
                        "application_key",
                        "application_nonce",
                    ),
                ] {
                    let got = tree
                        .key_for_generation(&c, LeafIndex(i as u32), kind, generation)
                        .map_err(|e| format!("leaf {i} generation {generation}: {e}"))?;
                    expect_eq(
                        &format!("leaf {i} gen {generation} {k}"),
                        got.key.as_bytes(),
                        &hex_field(g, k)?,
                    )?;
                    expect_eq(
                        &format!("leaf {i} gen {generation} {n}"),
                        got.nonce.as_bytes(),
                        &hex_field(g, n)?,
                    )?;
                }
            }
        }
        Ok(())
    })
}
