//! tree-validation.json: resolutions, tree hashes, parent hashes and leaf signatures of
//! imported trees (RFC 9420 §4.1.1, §7.3, §7.8, §7.9.2).

use crate::common::{Outcome, expect_eq, hex_field, run_cases, suite};
use conclave_mls::codec::Decode;
use conclave_mls::crypto::{RustCrypto, SuiteCrypto};
use conclave_mls::messages;
use conclave_mls::tree::{NodeIndex, RatchetTree};
use serde_json::Value;

pub fn run(cases: &[Value]) -> Outcome {
    let provider = RustCrypto::default();
    run_cases(cases, |case| {
        let crypto = SuiteCrypto::new(&provider, suite(case)?).map_err(|e| e.to_string())?;
        let wire = messages::RatchetTree::decode(&hex_field(case, "tree")?)
            .map_err(|e| format!("decode tree: {e}"))?;
        let mut tree = RatchetTree::from_wire(wire).map_err(|e| format!("import: {e}"))?;
        let resolutions = case
            .get("resolutions")
            .and_then(Value::as_array)
            .ok_or("missing resolutions")?;
        let hashes = case
            .get("tree_hashes")
            .and_then(Value::as_array)
            .ok_or("missing tree_hashes")?;
        let width = tree.size().node_count() as usize;
        if resolutions.len() != width || hashes.len() != width {
            return Err(format!(
                "{} resolutions and {} hashes for {width} nodes",
                resolutions.len(),
                hashes.len()
            ));
        }
        for (i, (want_res, want_hash)) in resolutions.iter().zip(hashes).enumerate() {
            let node = NodeIndex(i as u32);
            let want: Vec<u32> = want_res
                .as_array()
                .ok_or("resolution is not an array")?
                .iter()
                .map(|v| v.as_u64().and_then(|n| u32::try_from(n).ok()))
                .collect::<Option<_>>()
                .ok_or("resolution entry is not a u32")?;
            let got: Vec<u32> = tree.resolution(node).iter().map(|n| n.0).collect();
            if got != want {
                return Err(format!(
                    "resolution of node {i}: got {got:?}, want {want:?}"
                ));
            }
            let want_hash = hex::decode(want_hash.as_str().ok_or("tree hash is not a string")?)
                .map_err(|e| e.to_string())?;
            let got_hash = tree.tree_hash(&crypto, node).map_err(|e| e.to_string())?;
            expect_eq(&format!("tree hash of node {i}"), &got_hash, &want_hash)?;
        }
        tree.verify_parent_hashes(&crypto)
            .map_err(|e| format!("parent hashes: {e}"))?;
        tree.verify_leaf_signatures(&crypto, &hex_field(case, "group_id")?)
            .map_err(|e| format!("leaf signatures: {e}"))?;
        tree.verify_unique_keys().map_err(|e| e.to_string())?;
        tree.verify_unmerged_leaves().map_err(|e| e.to_string())?;
        Ok(())
    })
}
