//! treekem.json: loading private path state, merging and decrypting UpdatePaths, and
//! creating fresh ones (RFC 9420 §7.4–7.6, §12.4.2).

use crate::common::{Outcome, expect_eq, hex_field, run_cases, suite, u64_field};
use conclave_mls::codec::{Decode, Encode};
use conclave_mls::crypto::{HpkePrivateKey, RustCrypto, Secret, SignaturePrivateKey, SuiteCrypto};
use conclave_mls::internal::tree::treekem::{TreeKemPrivate, merge_update_path, prepare_path};
use conclave_mls::internal::tree::validate::verify_leaf_signature;
use conclave_mls::internal::tree::{LeafIndex, NodeIndex, RatchetTree};
use conclave_mls::messages::{self, GroupContext, ProtocolVersion, UpdatePath};
use serde_json::Value;

struct Member {
    private: TreeKemPrivate,
    signer: SignaturePrivateKey,
}

fn context(case: &Value, tree: &mut RatchetTree, c: &SuiteCrypto<'_>) -> Result<Vec<u8>, String> {
    let ctx = GroupContext {
        version: ProtocolVersion::MLS10,
        cipher_suite: c.suite(),
        group_id: hex_field(case, "group_id")?.into(),
        epoch: u64_field(case, "epoch")?,
        tree_hash: tree.root_hash(c).map_err(|e| e.to_string())?.into(),
        confirmed_transcript_hash: hex_field(case, "confirmed_transcript_hash")?.into(),
        extensions: vec![],
    };
    ctx.encode().map_err(|e| e.to_string())
}

pub fn run(cases: &[Value]) -> Outcome {
    let provider = RustCrypto::default();
    run_cases(cases, |case| {
        let c = SuiteCrypto::new(&provider, suite(case)?).map_err(|e| e.to_string())?;
        let e = |e: conclave_mls::Error| e.to_string();
        let group_id = hex_field(case, "group_id")?;
        let wire = messages::RatchetTree::decode(&hex_field(case, "ratchet_tree")?).map_err(e)?;
        let tree = RatchetTree::from_wire(wire).map_err(e)?;

        // 1. Load each member's private keys, checking them against the tree.
        let mut members = std::collections::BTreeMap::new();
        for lp in case["leaves_private"].as_array().ok_or("leaves_private")? {
            let leaf = LeafIndex(u64_field(lp, "index")? as u32);
            let mut private =
                TreeKemPrivate::new(leaf, HpkePrivateKey::new(hex_field(lp, "encryption_priv")?));
            for ps in lp["path_secrets"].as_array().ok_or("path_secrets")? {
                let node = NodeIndex(u64_field(ps, "node")? as u32);
                let secret = Secret::new(hex_field(ps, "path_secret")?);
                private
                    .install_node_secret(&c, &tree, node, &secret)
                    .map_err(|err| format!("leaf {leaf:?}: {err}"))?;
            }
            members.insert(
                leaf,
                Member {
                    private,
                    signer: SignaturePrivateKey::new(hex_field(lp, "signature_priv")?),
                },
            );
        }

        for (k, up) in case["update_paths"]
            .as_array()
            .ok_or("update_paths")?
            .iter()
            .enumerate()
        {
            let sender = LeafIndex(u64_field(up, "sender")? as u32);
            let path = UpdatePath::decode(&hex_field(up, "update_path")?).map_err(e)?;
            // 2–3. Merge, check parent hashes and the tree hash, then every other member decrypts.
            let mut merged_tree = tree.clone();
            let merged = merge_update_path(&c, &mut merged_tree, sender, &path)
                .map_err(|err| format!("path {k}: {err}"))?;
            verify_leaf_signature(&c, &path.leaf_node, &group_id, sender).map_err(e)?;
            merged_tree
                .verify_parent_hashes(&c)
                .map_err(|err| format!("path {k}: {err}"))?;
            expect_eq(
                &format!("path {k} tree_hash_after"),
                &merged_tree.root_hash(&c).map_err(e)?,
                &hex_field(up, "tree_hash_after")?,
            )?;
            let ctx = context(case, &mut merged_tree, &c)?;
            let commit_secret = hex_field(up, "commit_secret")?;
            let expected = up["path_secrets"].as_array().ok_or("path_secrets")?;
            for (leaf, member) in &members {
                if *leaf == sender {
                    continue;
                }
                let want = expected
                    .get(leaf.0 as usize)
                    .and_then(Value::as_str)
                    .ok_or(format!("no path secret for {leaf:?}"))?;
                let mut private = member.private.clone();
                let (commit, path_secret) = merged
                    .decrypt(&c, &merged_tree, &mut private, &ctx, &[])
                    .map_err(|err| format!("path {k} {leaf:?}: {err}"))?;
                expect_eq(
                    &format!("path {k} {leaf:?} path secret"),
                    path_secret.as_bytes(),
                    &hex::decode(want).map_err(|e| e.to_string())?,
                )?;
                expect_eq(
                    &format!("path {k} {leaf:?} commit secret"),
                    commit.as_bytes(),
                    &commit_secret,
                )?;
            }

            // 4. A fresh UpdatePath from the same sender: every other member gets its secret.
            let sender_member = members.get(&sender).ok_or("sender has no private keys")?;
            let mut our_tree = tree.clone();
            let mut our_private = sender_member.private.clone();
            let content = our_tree
                .leaf(sender)
                .ok_or("sender leaf blank")?
                .content
                .clone();
            let prepared = prepare_path(
                &c,
                &mut our_tree,
                &mut our_private,
                content,
                &sender_member.signer,
                &group_id,
            )
            .map_err(e)?;
            let ctx = context(case, &mut our_tree, &c)?;
            let fresh = prepared.encrypt(&c, &our_tree, &ctx, &[]).map_err(e)?;
            our_tree
                .verify_parent_hashes(&c)
                .map_err(|err| format!("fresh path {k}: {err}"))?;
            for (leaf, member) in &members {
                if *leaf == sender {
                    continue;
                }
                let mut their_tree = tree.clone();
                let merged = merge_update_path(&c, &mut their_tree, sender, &fresh)
                    .map_err(|err| format!("fresh path {k}: {err}"))?;
                verify_leaf_signature(&c, &fresh.leaf_node, &group_id, sender).map_err(e)?;
                let ctx = context(case, &mut their_tree, &c)?;
                let mut private = member.private.clone();
                let (commit, _) = merged
                    .decrypt(&c, &their_tree, &mut private, &ctx, &[])
                    .map_err(|err| format!("fresh path {k} {leaf:?}: {err}"))?;
                expect_eq(
                    &format!("fresh path {k} {leaf:?} commit secret"),
                    commit.as_bytes(),
                    prepared.commit_secret().as_bytes(),
                )?;
            }
        }
        Ok(())
    })
}
