//! key-schedule.json: epoch secrets, GroupContext encoding, exporter (RFC 9420 §8).

use crate::common::{Outcome, expect_eq, hex_field, run_cases, str_field, suite};
use conclave_mls::codec::Encode;
use conclave_mls::crypto::{RustCrypto, SuiteCrypto};
use conclave_mls::internal::key_schedule::JoinerSecret;
use conclave_mls::messages::{GroupContext, ProtocolVersion};
use serde_json::Value;

pub fn run(cases: &[Value]) -> Outcome {
    let provider = RustCrypto::default();
    run_cases(cases, |case| {
        let suite = suite(case)?;
        let crypto = SuiteCrypto::new(&provider, suite).map_err(|e| e.to_string())?;
        let group_id = hex_field(case, "group_id")?;
        let mut init_secret = hex_field(case, "initial_init_secret")?;
        let epochs = case
            .get("epochs")
            .and_then(Value::as_array)
            .ok_or("missing epochs")?;
        for (n, e) in epochs.iter().enumerate() {
            let ctx = GroupContext {
                version: ProtocolVersion::MLS10,
                cipher_suite: suite,
                group_id: group_id.clone().into(),
                epoch: n as u64,
                tree_hash: hex_field(e, "tree_hash")?.into(),
                confirmed_transcript_hash: hex_field(e, "confirmed_transcript_hash")?.into(),
                extensions: vec![],
            };
            let ctx_bytes = ctx.encode().map_err(|e| e.to_string())?;
            expect_eq(
                &format!("epoch {n} group_context"),
                &ctx_bytes,
                &hex_field(e, "group_context")?,
            )?;
            let err = |e: conclave_mls::crypto::CryptoError| format!("epoch {n}: {e}");
            let joiner = JoinerSecret::derive(
                &crypto,
                &init_secret,
                &hex_field(e, "commit_secret")?,
                &ctx_bytes,
            )
            .map_err(err)?;
            expect_eq(
                &format!("epoch {n} joiner_secret"),
                joiner.as_bytes(),
                &hex_field(e, "joiner_secret")?,
            )?;
            let psk = hex_field(e, "psk_secret")?;
            let welcome = joiner.welcome_secret(&crypto, &psk).map_err(err)?;
            expect_eq(
                &format!("epoch {n} welcome_secret"),
                welcome.as_bytes(),
                &hex_field(e, "welcome_secret")?,
            )?;
            let s = joiner
                .epoch_secrets(&crypto, &psk, &ctx_bytes)
                .map_err(err)?;
            for (name, value) in [
                ("init_secret", &s.init_secret),
                ("sender_data_secret", &s.sender_data_secret),
                ("encryption_secret", &s.encryption_secret),
                ("exporter_secret", &s.exporter_secret),
                ("epoch_authenticator", &s.epoch_authenticator),
                ("external_secret", &s.external_secret),
                ("confirmation_key", &s.confirmation_key),
                ("membership_key", &s.membership_key),
                ("resumption_psk", &s.resumption_psk),
            ] {
                expect_eq(
                    &format!("epoch {n} {name}"),
                    value.as_bytes(),
                    &hex_field(e, name)?,
                )?;
            }
            let external = s.external_key_pair(&crypto).map_err(err)?;
            expect_eq(
                &format!("epoch {n} external_pub"),
                &external.public_key,
                &hex_field(e, "external_pub")?,
            )?;
            let exporter = e.get("exporter").ok_or("missing exporter")?;
            // The exporter label is used as the text of the JSON string itself. (SCHEMAS.md
            // calls it hex-encoded bytes; recomputing shows the vectors use the string.)
            let length = exporter
                .get("length")
                .and_then(Value::as_u64)
                .ok_or("exporter length")?;
            let exported = s
                .export(
                    &crypto,
                    str_field(exporter, "label")?.as_bytes(),
                    &hex_field(exporter, "context")?,
                    length as usize,
                )
                .map_err(err)?;
            expect_eq(
                &format!("epoch {n} exporter"),
                exported.as_bytes(),
                &hex_field(exporter, "secret")?,
            )?;
            init_secret = s.init_secret.as_bytes().to_vec();
        }
        Ok(())
    })
}
