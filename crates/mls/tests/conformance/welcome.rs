//! welcome.json: opening a Welcome (RFC 9420 §12.4.3.1): GroupSecrets, GroupInfo, its
//! signature, and the confirmation tag from the joiner's key schedule.

use crate::common::{Outcome, expect_eq, hex_field, key_package_and_welcome, run_cases, suite};
use conclave_mls::codec::Encode;
use conclave_mls::crypto::{CryptoProvider, HpkePrivateKey, RustCrypto, Secret, SuiteCrypto};
use conclave_mls::internal::key_schedule::JoinerSecret;
use conclave_mls::internal::welcome::{open_group_info, open_group_secrets};
use serde_json::Value;

pub fn run(cases: &[Value]) -> Outcome {
    let provider = RustCrypto::default();
    run_cases(cases, |case| {
        let c = SuiteCrypto::new(&provider, suite(case)?).map_err(|e| e.to_string())?;
        let e = |e: conclave_mls::Error| e.to_string();
        let (kp, welcome) = key_package_and_welcome(case)?;
        let reference = kp.reference(&c).map_err(e)?;
        let init_priv = HpkePrivateKey::new(hex_field(case, "init_priv")?);
        let secrets = open_group_secrets(&c, &welcome, &reference, &init_priv).map_err(e)?;
        if !secrets.psks.is_empty() {
            return Err("welcome.json cases carry no PSKs".into());
        }
        let joiner =
            JoinerSecret::from_secret(Secret::from_slice(secrets.joiner_secret.as_slice()));
        let psk_secret = vec![0u8; c.hash_len()];
        let welcome_secret = joiner
            .welcome_secret(&c, &psk_secret)
            .map_err(|e| e.to_string())?;
        let group_info = open_group_info(&c, &welcome, &welcome_secret).map_err(e)?;
        group_info
            .verify(&c, &hex_field(case, "signer_pub")?)
            .map_err(e)?;
        let context = group_info.tbs.group_context.encode().map_err(e)?;
        let epoch = joiner
            .epoch_secrets(&c, &psk_secret, &context)
            .map_err(|e| e.to_string())?;
        let tag = epoch
            .confirmation_tag(
                &c,
                group_info
                    .tbs
                    .group_context
                    .confirmed_transcript_hash
                    .as_slice(),
            )
            .map_err(|e| e.to_string())?;
        expect_eq(
            "confirmation_tag",
            &tag,
            group_info.tbs.confirmation_tag.as_slice(),
        )?;
        // Someone else's init key must not open the secrets.
        let other = provider
            .hpke_generate_key_pair(c.suite())
            .map_err(|e| e.to_string())?;
        if open_group_secrets(&c, &welcome, &reference, &other.private_key).is_ok() {
            return Err("GroupSecrets opened with the wrong init key".into());
        }
        Ok(())
    })
}
