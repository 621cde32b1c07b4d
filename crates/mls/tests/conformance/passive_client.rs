//! passive-client-welcome.json and passive-client-handling-commit.json: join from a Welcome,
//! then follow the group's commits, checking the epoch authenticator at each step
//! (RFC 9420 §12.4.2, §12.4.3.1).

use crate::common::{Outcome, expect_eq, hex_field, key_package_and_welcome, run_cases, suite};
use conclave_mls::codec::Decode;
use conclave_mls::crypto::{
    CryptoProvider, HpkePrivateKey, RustCrypto, Secret, SignaturePrivateKey,
};
use conclave_mls::group::{Group, GroupConfig, Received};
use conclave_mls::identity::{BasicCredentialsOnly, Identity};
use conclave_mls::key_package::KeyPackageBundle;
use conclave_mls::key_package::KeyPackageSecrets;
use conclave_mls::messages::{self, MlsMessage};
use conclave_mls::time::TimePolicy;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;

fn check(provider: &RustCrypto, case: &Value) -> Result<(), String> {
    let suite = suite(case)?;
    let e = |e: conclave_mls::Error| e.to_string();
    let (kp, welcome) = key_package_and_welcome(case)?;
    let signer = SignaturePrivateKey::new(hex_field(case, "signature_priv")?);
    let secrets = KeyPackageSecrets {
        init_private_key: HpkePrivateKey::new(hex_field(case, "init_priv")?),
        encryption_private_key: HpkePrivateKey::new(hex_field(case, "encryption_priv")?),
    };
    // 1. The private keys belong to the KeyPackage.
    let leaf = &kp.leaf_node().content;
    let ce = |e: conclave_mls::crypto::CryptoError| e.to_string();
    expect_eq(
        "init key",
        &provider
            .hpke_public_key(suite, &secrets.init_private_key)
            .map_err(ce)?,
        kp.tbs.init_key.as_slice(),
    )?;
    expect_eq(
        "encryption key",
        &provider
            .hpke_public_key(suite, &secrets.encryption_private_key)
            .map_err(ce)?,
        leaf.encryption_key.as_slice(),
    )?;
    expect_eq(
        "signature key",
        &provider.signature_public_key(suite, &signer).map_err(ce)?,
        leaf.signature_key.as_slice(),
    )?;
    let identity = Identity {
        suite,
        credential: leaf.credential.clone(),
        signature_key: leaf.signature_key.clone(),
        signer,
    };

    // 2. External PSKs.
    let mut external_psks = HashMap::new();
    for p in case["external_psks"].as_array().ok_or("external_psks")? {
        external_psks.insert(hex_field(p, "psk_id")?, Secret::new(hex_field(p, "psk")?));
    }
    let ratchet_tree = match case.get("ratchet_tree") {
        Some(Value::String(_)) => {
            Some(messages::RatchetTree::decode(&hex_field(case, "ratchet_tree")?).map_err(e)?)
        }
        _ => None,
    };
    // 3–4. Join and compare the epoch authenticator.
    let bundle = KeyPackageBundle::new(kp, secrets);
    // The vectors' KeyPackages have expired since they were made: no lifetime checks.
    let config = GroupConfig::default().with_time(TimePolicy::SkipChecks);
    let mut join = Group::join(
        MlsMessage::from(welcome),
        &identity,
        &bundle,
        Arc::new(BasicCredentialsOnly),
    )
    .config(config);
    if let Some(tree) = ratchet_tree {
        join = join.ratchet_tree(tree);
    }
    for (id, psk) in external_psks {
        join = join.external_psk(id, psk);
    }
    let mut group = join.join(provider).map_err(|e| format!("join: {e}"))?;
    expect_eq(
        "initial epoch_authenticator",
        group.epoch_authenticator(),
        &hex_field(case, "initial_epoch_authenticator")?,
    )?;

    // 5. Each epoch: proposals, then the commit.
    for (n, epoch) in case["epochs"]
        .as_array()
        .ok_or("epochs")?
        .iter()
        .enumerate()
    {
        for p in epoch["proposals"].as_array().ok_or("proposals")? {
            let bytes =
                hex::decode(p.as_str().ok_or("proposal hex")?).map_err(|e| e.to_string())?;
            let message = MlsMessage::decode(&bytes).map_err(e)?;
            match group
                .process(provider, &message)
                .map_err(|e| format!("epoch {n} proposal: {e}"))?
            {
                Received::Proposal { .. } => {}
                other => return Err(format!("epoch {n}: expected a proposal, got {other:?}")),
            }
        }
        let message = MlsMessage::decode(&hex_field(epoch, "commit")?).map_err(e)?;
        match group
            .process(provider, &message)
            .map_err(|e| format!("epoch {n} commit: {e}"))?
        {
            Received::Commit(staged) => group.merge(*staged).map_err(e)?,
            other => return Err(format!("epoch {n}: expected a commit, got {other:?}")),
        }
        expect_eq(
            &format!("epoch {n} epoch_authenticator"),
            group.epoch_authenticator(),
            &hex_field(epoch, "epoch_authenticator")?,
        )?;
    }
    Ok(())
}

pub fn run(cases: &[Value]) -> Outcome {
    let provider = RustCrypto::default();
    run_cases(cases, |case| check(&provider, case))
}
