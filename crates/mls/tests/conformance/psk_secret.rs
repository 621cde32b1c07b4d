//! psk_secret.json: chaining external PSKs into psk_secret (RFC 9420 §8.4).

use crate::common::{Outcome, expect_eq, hex_field, run_cases, suite};
use conclave_mls::crypto::{RustCrypto, SuiteCrypto};
use conclave_mls::messages::{PreSharedKeyId, Psk};
use serde_json::Value;

pub fn run(cases: &[Value]) -> Outcome {
    let provider = RustCrypto::default();
    run_cases(cases, |case| {
        let crypto = SuiteCrypto::new(&provider, suite(case)?).map_err(|e| e.to_string())?;
        let entries = case
            .get("psks")
            .and_then(Value::as_array)
            .ok_or("missing psks")?;
        let mut ids = Vec::new();
        let mut keys = Vec::new();
        for p in entries {
            ids.push(PreSharedKeyId {
                psk: Psk::External {
                    psk_id: hex_field(p, "psk_id")?.into(),
                },
                psk_nonce: hex_field(p, "psk_nonce")?.into(),
            });
            keys.push(hex_field(p, "psk")?);
        }
        let psks: Vec<_> = ids
            .into_iter()
            .zip(keys.iter().map(Vec::as_slice))
            .collect();
        let secret =
            conclave_mls::internal::psk::psk_secret(&crypto, &psks).map_err(|e| e.to_string())?;
        expect_eq(
            "psk_secret",
            secret.as_bytes(),
            &hex_field(case, "psk_secret")?,
        )
    })
}
