//! tree-validation.json: resolutions, tree hashes, parent hashes and leaf signatures of
//! imported trees (RFC 9420 §4.1.1, §7.3, §7.8, §7.9.2).

use crate::common::{Outcome, expect_eq, hex_field, run_cases, suite};
use conclave_mls::codec::Decode;
use conclave_mls::crypto::{RustCrypto, SuiteCrypto};
use conclave_mls::internal::tree::{NodeIndex, RatchetTree};
use conclave_mls::messages;
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

/// Corrupting one leaf signature or one parent hash anywhere in a valid vector tree is caught,
/// and the error names that leaf or node. Needs `MLS_TEST_VECTORS`; skipped without it.
#[test]
fn corruption_is_detected_and_named() {
    use conclave_mls::Error;
    use conclave_mls::codec::VarBytes;
    use conclave_mls::internal::tree::LeafIndex;

    let Some(dir) = crate::common::vectors_dir() else {
        println!("MLS_TEST_VECTORS is not set: corruption test skipped");
        return;
    };
    let text = std::fs::read_to_string(dir.join("tree-validation.json")).unwrap();
    let cases: Vec<Value> = serde_json::from_str(&text).unwrap();
    let provider = RustCrypto::default();
    let flip = |bytes: &VarBytes| {
        let mut v = bytes.as_slice().to_vec();
        match v.first_mut() {
            Some(b) => *b ^= 1,
            None => v.push(1),
        }
        VarBytes::new(v)
    };
    let (mut leaves_checked, mut parents_checked) = (0, 0);
    for case in &cases {
        let crypto = SuiteCrypto::new(&provider, suite(case).unwrap()).unwrap();
        let group_id = hex_field(case, "group_id").unwrap();
        let wire = messages::RatchetTree::decode(&hex_field(case, "tree").unwrap()).unwrap();
        let tree = RatchetTree::from_wire(wire).unwrap();
        for leaf in (0..tree.leaf_count()).map(LeafIndex) {
            let Some(node) = tree.leaf(leaf) else {
                continue;
            };
            let mut bad = node.clone();
            bad.signature = flip(&bad.signature);
            let mut t = tree.clone();
            t.set_leaf(leaf, bad).unwrap();
            assert_eq!(
                t.verify_leaf_signatures(&crypto, &group_id),
                Err(Error::LeafSignatureInvalid { leaf })
            );
            leaves_checked += 1;
        }
        for i in (1..tree.size().node_count()).step_by(2) {
            let node = NodeIndex(i);
            let Some(parent) = tree.parent(node) else {
                continue;
            };
            let mut bad = parent.clone();
            bad.parent_hash = flip(&bad.parent_hash);
            let mut t = tree.clone();
            t.set_parent(node, bad).unwrap();
            assert_eq!(
                t.verify_parent_hashes(&crypto),
                Err(Error::ParentHashMismatch { node }),
                "suite {:?}, corrupted {node:?}",
                crypto.suite()
            );
            parents_checked += 1;
        }
    }
    assert!(leaves_checked > 1000 && parents_checked > 100);
    println!("corrupted {leaves_checked} leaf signatures and {parents_checked} parent hashes");
}
