//! TreeKEM (RFC 9420 §7.4–7.6, §12.4.1–12.4.2): refreshing a member's direct path with an
//! UpdatePath, and merging and decrypting one received from another member.
//!
//! Both sides work in two steps because the path secrets are encrypted under the
//! *provisional* GroupContext, whose tree hash already covers the new path:
//!
//! - the committer calls [`prepare_path`] (new keys in the tree, parent hashes, signed leaf),
//!   computes the GroupContext, then [`PreparedPath::encrypt`] to get the UpdatePath;
//! - a receiver calls [`merge_update_path`] (public keys in the tree, parent hash of the
//!   sender's leaf checked), computes the GroupContext, then [`MergedPath::decrypt`].

use super::math::{LeafIndex, NodeIndex};
use super::ratchet::RatchetTree;
use super::validate::leaf_node_tbs;
use crate::Error;
use crate::codec::Encode;
use crate::crypto::{HpkePrivateKey, Secret, SignaturePrivateKey, SuiteCrypto};
use crate::messages::{
    HpkeCiphertext, HpkePublicKey, LeafNode, LeafNodeContent, LeafNodeSource, ParentNode,
    UpdatePath, UpdatePathNode,
};
use std::collections::{BTreeMap, HashSet};

const UPDATE_PATH_NODE_LABEL: &[u8] = b"UpdatePathNode";
const LEAF_NODE_TBS_LABEL: &[u8] = b"LeafNodeTBS";

/// The private keys a member holds in the ratchet tree: its leaf's and those of the parent
/// nodes on its direct path that it knows (RFC 9420 §4.2, the tree invariant).
#[derive(Clone, PartialEq, Eq)]
pub struct TreeKemPrivate {
    leaf: LeafIndex,
    keys: BTreeMap<NodeIndex, HpkePrivateKey>,
}

impl core::fmt::Debug for TreeKemPrivate {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("TreeKemPrivate")
            .field("leaf", &self.leaf)
            .field("nodes", &self.keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl TreeKemPrivate {
    /// The private state of a member at `leaf` that knows only its leaf key.
    pub fn new(leaf: LeafIndex, leaf_private_key: HpkePrivateKey) -> Self {
        let mut keys = BTreeMap::new();
        keys.insert(leaf.node(), leaf_private_key);
        Self { leaf, keys }
    }
    /// The member's leaf.
    pub fn leaf(&self) -> LeafIndex {
        self.leaf
    }
    /// The private key of `node`, if the member holds it.
    pub fn key(&self, node: NodeIndex) -> Option<&HpkePrivateKey> {
        self.keys.get(&node)
    }
    /// The nodes whose private keys the member holds.
    pub fn nodes(&self) -> impl Iterator<Item = NodeIndex> + '_ {
        self.keys.keys().copied()
    }
    /// Moves the member to another leaf (an external commit that resyncs, §12.4.3.2).
    pub fn set_leaf(&mut self, leaf: LeafIndex, leaf_private_key: HpkePrivateKey) {
        self.keys.clear();
        self.leaf = leaf;
        self.keys.insert(leaf.node(), leaf_private_key);
    }

    /// Installs `path_secret` at `node` and derives the keys of every node above it on the
    /// member's filtered direct path (RFC 9420 §12.4.3.1: a Welcome's path secret is for the
    /// lowest common ancestor with the committer). Each derived public key must match the tree.
    /// Returns the path secret one past the last node (the commit secret of that path).
    pub fn install_path_secret(
        &mut self,
        crypto: &SuiteCrypto<'_>,
        tree: &RatchetTree,
        node: NodeIndex,
        path_secret: Secret,
    ) -> Result<Secret, Error> {
        let path = tree.filtered_direct_path(self.leaf)?;
        let start = path
            .iter()
            .position(|n| *n == node)
            .ok_or(Error::PathSecretNodeNotOnPath(node))?;
        let mut secret = path_secret;
        let mut derived = Vec::new();
        for &n in &path[start..] {
            let (private, public) = node_key_pair(crypto, &secret)?;
            let expected = tree.parent(n).ok_or(Error::PathKeyMismatch(n))?;
            if expected.encryption_key.as_slice() != public.as_slice() {
                return Err(Error::PathKeyMismatch(n));
            }
            derived.push((n, private));
            secret = crypto.derive_secret(secret.as_bytes(), b"path")?;
        }
        self.keys.extend(derived);
        Ok(secret)
    }

    /// Stores the key pair derived from `path_secret` at `node`, checking that its public
    /// key is the tree's (RFC 9420 §7.4: `node_secret = DeriveSecret(path_secret, "node")`).
    pub fn install_node_secret(
        &mut self,
        crypto: &SuiteCrypto<'_>,
        tree: &RatchetTree,
        node: NodeIndex,
        path_secret: &Secret,
    ) -> Result<(), Error> {
        let (private, public) = node_key_pair(crypto, path_secret)?;
        if node_public_key(tree, node)? != &public {
            return Err(Error::PathKeyMismatch(node));
        }
        self.keys.insert(node, private);
        Ok(())
    }

    /// Forgets the keys of the nodes on `leaf`'s direct path (they were replaced).
    fn forget_direct_path(&mut self, tree: &RatchetTree, leaf: LeafIndex) {
        for n in tree.size().direct_path(leaf.node()) {
            self.keys.remove(&n);
        }
    }
}

/// `node_secret = DeriveSecret(path_secret, "node")`, then `KEM.DeriveKeyPair` (RFC 9420 §7.4).
fn node_key_pair(
    crypto: &SuiteCrypto<'_>,
    path_secret: &Secret,
) -> Result<(HpkePrivateKey, HpkePublicKey), Error> {
    let node_secret = crypto.derive_secret(path_secret.as_bytes(), b"node")?;
    let pair = crypto
        .provider()
        .hpke_derive_key_pair(crypto.suite(), node_secret.as_bytes())?;
    Ok((pair.private_key, pair.public_key.into()))
}

/// Signs a LeafNode at `leaf` (RFC 9420 §7.2: `SignWithLabel(., "LeafNodeTBS", LeafNodeTBS)`).
pub fn sign_leaf_node(
    crypto: &SuiteCrypto<'_>,
    content: LeafNodeContent,
    signer: &SignaturePrivateKey,
    group_id: &[u8],
    leaf: LeafIndex,
) -> Result<LeafNode, Error> {
    let mut node = LeafNode {
        content,
        signature: Vec::new().into(),
    };
    let tbs = leaf_node_tbs(&node, group_id, leaf).encode()?;
    node.signature = crypto
        .sign_with_label(signer, LEAF_NODE_TBS_LABEL, &tbs)?
        .into();
    Ok(node)
}

/// The child of `parent` that is not an ancestor of `leaf`: its copath child.
fn copath_child(parent: NodeIndex, leaf: LeafIndex) -> Result<NodeIndex, Error> {
    let (Some(left), Some(right)) = (parent.left(), parent.right()) else {
        return Err(Error::TreeNodeTypeMismatch { node: parent });
    };
    Ok(if left.is_ancestor_of(leaf.node()) {
        right
    } else {
        left
    })
}

/// Sets the parent hashes of `path` (a filtered direct path, lowest first, whose nodes hold
/// their new keys and no unmerged leaves) from the root down, and returns the parent hash
/// the sender's leaf must carry (RFC 9420 §7.9).
fn set_parent_hashes(
    crypto: &SuiteCrypto<'_>,
    tree: &mut RatchetTree,
    sender: LeafIndex,
    path: &[NodeIndex],
) -> Result<Vec<u8>, Error> {
    let mut above: Vec<u8> = Vec::new(); // the root's parent_hash is empty
    for &node in path.iter().rev() {
        let mut parent = tree
            .parent(node)
            .cloned()
            .ok_or(Error::PathKeyMismatch(node))?;
        parent.parent_hash = above.clone().into();
        tree.set_parent(node, parent)?;
        above = tree.parent_hash(crypto, node, copath_child(node, sender)?)?;
    }
    Ok(above)
}

/// A new direct path for the committer, in the tree but not yet encrypted to the group.
pub struct PreparedPath {
    sender: LeafIndex,
    path: Vec<NodeIndex>,
    /// `path_secret[i]` for `path[i]`.
    path_secrets: Vec<Secret>,
    commit_secret: Secret,
}

impl core::fmt::Debug for PreparedPath {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PreparedPath")
            .field("sender", &self.sender)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// The committer's side, step one (RFC 9420 §7.5): blanks `private.leaf()`'s direct path,
/// derives fresh path secrets and keys for its filtered direct path, sets them (with parent
/// hashes) in `tree`, and replaces the leaf with `leaf_content` re-keyed, marked as coming from
/// a commit and signed. `private` then holds the new keys.
///
/// `leaf_content` is the sender's new leaf content (credential, capabilities, extensions…);
/// its encryption key and source are overwritten.
pub fn prepare_path(
    crypto: &SuiteCrypto<'_>,
    tree: &mut RatchetTree,
    private: &mut TreeKemPrivate,
    mut leaf_content: LeafNodeContent,
    signer: &SignaturePrivateKey,
    group_id: &[u8],
) -> Result<PreparedPath, Error> {
    let sender = private.leaf;
    tree.leaf(sender).ok_or(Error::BlankLeaf(sender))?;
    tree.blank_direct_path(sender.node())?;
    let path = tree.filtered_direct_path(sender)?;

    let leaf_keys = crypto.provider().hpke_generate_key_pair(crypto.suite())?;
    let mut first = vec![0u8; crypto.hash_len()];
    crypto.provider().random_bytes(&mut first)?;
    let mut secret = Secret::new(first);
    let mut path_secrets = Vec::with_capacity(path.len());
    let mut keys = BTreeMap::new();
    keys.insert(sender.node(), leaf_keys.private_key);
    for &node in &path {
        let (private_key, public_key) = node_key_pair(crypto, &secret)?;
        tree.set_parent(
            node,
            ParentNode {
                encryption_key: public_key,
                parent_hash: Vec::new().into(),
                unmerged_leaves: vec![],
            },
        )?;
        keys.insert(node, private_key);
        let next = crypto.derive_secret(secret.as_bytes(), b"path")?;
        path_secrets.push(secret);
        secret = next;
    }
    // §12.4.2: commit_secret is path_secret[n+1], one past the root.
    let commit_secret = secret;

    let parent_hash = set_parent_hashes(crypto, tree, sender, &path)?;
    leaf_content.encryption_key = leaf_keys.public_key.into();
    leaf_content.leaf_node_source = LeafNodeSource::Commit {
        parent_hash: parent_hash.into(),
    };
    let leaf = sign_leaf_node(crypto, leaf_content, signer, group_id, sender)?;
    tree.set_leaf(sender, leaf)?;

    private.keys = keys;
    Ok(PreparedPath {
        sender,
        path,
        path_secrets,
        commit_secret,
    })
}

impl PreparedPath {
    /// The commit secret this path yields (RFC 9420 §8).
    pub fn commit_secret(&self) -> &Secret {
        &self.commit_secret
    }

    /// The path secret the committer gives a new member at `joiner` in its Welcome: the one
    /// of the lowest node of the path above both (RFC 9420 §12.4.3.1). `None` if no node of
    /// the filtered direct path covers the joiner.
    pub fn path_secret_for(&self, joiner: LeafIndex) -> Option<(NodeIndex, &Secret)> {
        self.path
            .iter()
            .zip(&self.path_secrets)
            .find(|(n, _)| n.is_ancestor_of(joiner.node()))
            .map(|(n, s)| (*n, s))
    }

    /// The committer's side, step two (RFC 9420 §7.6): encrypts each path secret to the
    /// resolution of the copath child, without the leaves in `new_members` (added by this
    /// commit), under the provisional GroupContext `group_context` (encoded).
    pub fn encrypt(
        &self,
        crypto: &SuiteCrypto<'_>,
        tree: &RatchetTree,
        group_context: &[u8],
        new_members: &[LeafIndex],
    ) -> Result<UpdatePath, Error> {
        let excluded: HashSet<NodeIndex> = new_members.iter().map(|l| l.node()).collect();
        // Every (path secret, recipient key) pair first: an adds-only tree has one per
        // member.
        let mut jobs: Vec<(usize, &Secret, &HpkePublicKey)> = Vec::new();
        let mut nodes = Vec::with_capacity(self.path.len());
        for (i, (&node, secret)) in self.path.iter().zip(&self.path_secrets).enumerate() {
            let encryption_key = tree
                .parent(node)
                .ok_or(Error::PathKeyMismatch(node))?
                .encryption_key
                .clone();
            for r in tree.resolution(copath_child(node, self.sender)?) {
                if !excluded.contains(&r) {
                    jobs.push((i, secret, node_public_key(tree, r)?));
                }
            }
            nodes.push(UpdatePathNode {
                encryption_key,
                encrypted_path_secret: Vec::new(),
            });
        }
        // All under one info (the provisional GroupContext): the provider hashes it once and
        // seals on all cores; results come back in job order, the resolution order the
        // receiver expects.
        let items: Vec<_> = jobs
            .iter()
            .map(|(_, secret, public)| (public.as_slice(), secret.as_bytes()))
            .collect();
        let sealed =
            crypto.encrypt_with_label_to_many(UPDATE_PATH_NODE_LABEL, group_context, &items)?;
        for ((i, _, _), sealed) in jobs.iter().zip(sealed) {
            nodes[*i].encrypted_path_secret.push(HpkeCiphertext {
                kem_output: sealed.kem_output.into(),
                ciphertext: sealed.ciphertext.into(),
            });
        }
        let leaf_node = tree
            .leaf(self.sender)
            .cloned()
            .ok_or(Error::BlankLeaf(self.sender))?;
        Ok(UpdatePath { leaf_node, nodes })
    }
}

fn node_public_key(tree: &RatchetTree, node: NodeIndex) -> Result<&HpkePublicKey, Error> {
    match (node.leaf(), tree.parent(node)) {
        (Some(leaf), _) => Ok(&tree
            .leaf(leaf)
            .ok_or(Error::BlankLeaf(leaf))?
            .content
            .encryption_key),
        (None, Some(parent)) => Ok(&parent.encryption_key),
        (None, None) => Err(Error::PathKeyMismatch(node)),
    }
}

/// An UpdatePath merged into the tree, waiting for the provisional GroupContext to decrypt.
/// It borrows the UpdatePath's nodes: in an adds-only tree they hold one ciphertext per
/// member, too many to copy.
#[derive(Debug)]
pub struct MergedPath<'a> {
    sender: LeafIndex,
    path: Vec<NodeIndex>,
    nodes: &'a [UpdatePathNode],
}

/// The receiver's side, step one (RFC 9420 §7.5, §12.4.2): checks that `update_path` has one
/// node per node of the sender's filtered direct path, blanks the sender's direct path, sets
/// the new public keys with their parent hashes and the sender's new leaf, and checks the
/// leaf's parent hash. The leaf's signature and other LeafNode rules (§7.3) are the caller's.
pub fn merge_update_path<'a>(
    crypto: &SuiteCrypto<'_>,
    tree: &mut RatchetTree,
    sender: LeafIndex,
    update_path: &'a UpdatePath,
) -> Result<MergedPath<'a>, Error> {
    tree.leaf(sender).ok_or(Error::BlankLeaf(sender))?;
    let LeafNodeSource::Commit { parent_hash } = &update_path.leaf_node.content.leaf_node_source
    else {
        return Err(Error::UpdatePathLeafSource);
    };
    tree.blank_direct_path(sender.node())?;
    let path = tree.filtered_direct_path(sender)?;
    if path.len() != update_path.nodes.len() {
        return Err(Error::UpdatePathLength {
            expected: path.len(),
            got: update_path.nodes.len(),
        });
    }
    for (&node, update) in path.iter().zip(&update_path.nodes) {
        tree.set_parent(
            node,
            ParentNode {
                encryption_key: update.encryption_key.clone(),
                parent_hash: Vec::new().into(),
                unmerged_leaves: vec![],
            },
        )?;
    }
    let expected = set_parent_hashes(crypto, tree, sender, &path)?;
    if parent_hash.as_slice() != expected.as_slice() {
        return Err(Error::ParentHashMismatch {
            node: sender.node(),
        });
    }
    tree.set_leaf(sender, update_path.leaf_node.clone())?;
    Ok(MergedPath {
        sender,
        path,
        nodes: &update_path.nodes,
    })
}

impl MergedPath<'_> {
    /// The nodes the path set: the sender's leaf and its filtered direct path.
    pub fn changed_nodes(&self) -> Vec<NodeIndex> {
        std::iter::once(self.sender.node())
            .chain(self.path.iter().copied())
            .collect()
    }

    /// The receiver's side, step two (RFC 9420 §12.4.2): finds the path node whose copath
    /// child covers `private`'s leaf, decrypts its path secret with a key `private` holds
    /// (the ciphertexts follow the resolution without `new_members`), derives the rest of the
    /// path checking each public key, stores the new private keys, and returns the commit
    /// secret with the decrypted path secret.
    pub fn decrypt(
        &self,
        crypto: &SuiteCrypto<'_>,
        tree: &RatchetTree,
        private: &mut TreeKemPrivate,
        group_context: &[u8],
        new_members: &[LeafIndex],
    ) -> Result<(Secret, Secret), Error> {
        let me = private.leaf;
        if me == self.sender {
            return Err(Error::UpdatePathFromSelf);
        }
        let start = self
            .path
            .iter()
            .position(|n| n.is_ancestor_of(me.node()))
            .ok_or(Error::NoPathSecretForUs)?;
        let node = self.path[start];
        let excluded: HashSet<NodeIndex> = new_members.iter().map(|l| l.node()).collect();
        let resolution: Vec<NodeIndex> = tree
            .resolution(copath_child(node, self.sender)?)
            .into_iter()
            .filter(|r| !excluded.contains(r))
            .collect();
        let update = &self.nodes[start];
        if update.encrypted_path_secret.len() != resolution.len() {
            return Err(Error::UpdatePathCiphertextCount {
                node,
                expected: resolution.len(),
                got: update.encrypted_path_secret.len(),
            });
        }
        let (index, key) = resolution
            .iter()
            .enumerate()
            .find_map(|(i, r)| private.key(*r).map(|k| (i, k)))
            .ok_or(Error::NoPathSecretForUs)?;
        let ct = &update.encrypted_path_secret[index];
        let path_secret = crypto
            .decrypt_with_label(
                key,
                UPDATE_PATH_NODE_LABEL,
                group_context,
                ct.kem_output.as_slice(),
                ct.ciphertext.as_slice(),
            )
            .map_err(|_| Error::PathSecretDecryptFailed(node))?;
        if path_secret.len() != crypto.hash_len() {
            return Err(Error::PathSecretDecryptFailed(node));
        }

        // Derive and check everything before touching the private state.
        let mut derived = Vec::with_capacity(self.path.len() - start);
        let mut secret = path_secret.clone();
        for (&n, update) in self.path[start..].iter().zip(&self.nodes[start..]) {
            let (private_key, public_key) = node_key_pair(crypto, &secret)?;
            if public_key != update.encryption_key {
                return Err(Error::PathKeyMismatch(n));
            }
            derived.push((n, private_key));
            secret = crypto.derive_secret(secret.as_bytes(), b"path")?;
        }
        private.forget_direct_path(tree, self.sender);
        private.keys.extend(derived);
        Ok((secret, path_secret))
    }
}

impl TreeKemPrivate {
    pub(crate) fn write_state(
        &self,
        w: &mut crate::codec::state::StateWriter,
    ) -> Result<(), Error> {
        w.u32(self.leaf.0);
        w.count(self.keys.len())?;
        for (node, key) in &self.keys {
            w.u32(node.0);
            w.bytes(key.as_bytes())?;
        }
        Ok(())
    }

    pub(crate) fn read_state(r: &mut crate::codec::state::StateReader<'_>) -> Result<Self, Error> {
        let leaf = LeafIndex(r.u32()?);
        let mut keys = BTreeMap::new();
        for _ in 0..r.count(8)? {
            let node = NodeIndex(r.u32()?);
            keys.insert(node, HpkePrivateKey::from_slice(r.bytes()?));
        }
        if !keys.contains_key(&leaf.node()) {
            return Err(Error::StateCorrupt("no private key for the own leaf"));
        }
        Ok(Self { leaf, keys })
    }
}
