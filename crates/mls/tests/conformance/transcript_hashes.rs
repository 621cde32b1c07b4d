//! transcript-hashes.json: confirmed and interim transcript hashes and the confirmation tag
//! (RFC 9420 §8.2).

use crate::common::{Outcome, expect_eq, hex_field, run_cases, suite};
use conclave_mls::codec::Decode;
use conclave_mls::crypto::{RustCrypto, SuiteCrypto};
use conclave_mls::internal::transcript::TranscriptHashes;
use conclave_mls::messages::AuthenticatedContent;
use serde_json::Value;

pub fn run(cases: &[Value]) -> Outcome {
    let provider = RustCrypto::default();
    run_cases(cases, |case| {
        let c = SuiteCrypto::new(&provider, suite(case)?).map_err(|e| e.to_string())?;
        let content = AuthenticatedContent::decode(&hex_field(case, "authenticated_content")?)
            .map_err(|e| format!("authenticated_content: {e}"))?;
        let hashes = TranscriptHashes::after_commit(
            &c,
            &hex_field(case, "interim_transcript_hash_before")?,
            &content,
        )
        .map_err(|e| e.to_string())?;
        expect_eq(
            "confirmed_transcript_hash_after",
            &hashes.confirmed,
            &hex_field(case, "confirmed_transcript_hash_after")?,
        )?;
        expect_eq(
            "interim_transcript_hash_after",
            &hashes.interim,
            &hex_field(case, "interim_transcript_hash_after")?,
        )?;
        let tag = c
            .mac(&hex_field(case, "confirmation_key")?, &hashes.confirmed)
            .map_err(|e| e.to_string())?;
        let given = content
            .auth
            .confirmation_tag
            .as_ref()
            .ok_or("no confirmation tag")?;
        expect_eq("confirmation_tag", &tag, given.0.as_slice())
    })
}
