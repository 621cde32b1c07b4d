//! tree-operations.json: Add, Update and Remove applied to a tree, with the serialized result
//! and tree hashes before and after (RFC 9420 §7.7, §7.8, §12.1.1–§12.1.3, §12.4.3.3).

use crate::common::{Outcome, expect_eq, hex_field, run_cases, suite, u64_field};
use conclave_mls::codec::{Decode, Encode};
use conclave_mls::crypto::{RustCrypto, SuiteCrypto};
use conclave_mls::internal::tree::{LeafIndex, RatchetTree};
use conclave_mls::messages::{self, Proposal};
use serde_json::Value;

pub fn run(cases: &[Value]) -> Outcome {
    let provider = RustCrypto::default();
    run_cases(cases, |case| {
        let crypto = SuiteCrypto::new(&provider, suite(case)?).map_err(|e| e.to_string())?;
        let wire = messages::RatchetTree::decode(&hex_field(case, "tree_before")?)
            .map_err(|e| format!("decode tree_before: {e}"))?;
        let mut tree = RatchetTree::from_wire(wire).map_err(|e| format!("import: {e}"))?;
        let before = tree.root_hash(&crypto).map_err(|e| e.to_string())?;
        expect_eq(
            "tree_hash_before",
            &before,
            &hex_field(case, "tree_hash_before")?,
        )?;
        let proposal = Proposal::decode(&hex_field(case, "proposal")?)
            .map_err(|e| format!("decode proposal: {e}"))?;
        let sender = u32::try_from(u64_field(case, "proposal_sender")?)
            .map_err(|_| "proposal_sender out of range")?;
        tree.apply_proposal(LeafIndex(sender), &proposal)
            .map_err(|e| format!("apply: {e}"))?;
        let after = tree.to_wire().encode().map_err(|e| e.to_string())?;
        expect_eq("tree_after", &after, &hex_field(case, "tree_after")?)?;
        let hash = tree.root_hash(&crypto).map_err(|e| e.to_string())?;
        expect_eq(
            "tree_hash_after",
            &hash,
            &hex_field(case, "tree_hash_after")?,
        )?;
        if hash
            != tree
                .tree_hash_uncached(&crypto, tree.root())
                .map_err(|e| e.to_string())?
        {
            return Err("cached root hash differs from a recomputation".into());
        }
        Ok(())
    })
}
