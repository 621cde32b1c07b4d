//! Applying the tree-changing proposals to a ratchet tree (RFC 9420 §12.1.1–§12.1.3).

use super::math::LeafIndex;
use super::ratchet::RatchetTree;
use crate::Error;
use crate::messages::{LeafNode, LeafNodeSource, Node, Proposal};

impl RatchetTree {
    /// Adds a member — RFC 9420 §12.1.1: the leftmost blank leaf, or else the leftmost new
    /// leaf after extending the tree (§7.7); the new leaf index is appended to the
    /// `unmerged_leaves` of every non-blank parent on its direct path. Returns the leaf.
    pub fn add_leaf(&mut self, leaf_node: LeafNode) -> Result<LeafIndex, Error> {
        self.add_leaf_after(LeafIndex(0), leaf_node)
    }

    /// [`Self::add_leaf`] for a caller that knows every leaf left of `first` is occupied,
    /// such as one adding several members in a row: the search for a blank leaf starts at
    /// `first`, so k Adds into n leaves cost O(n + k), not O(n·k).
    pub(crate) fn add_leaf_after(
        &mut self,
        first: LeafIndex,
        leaf_node: LeafNode,
    ) -> Result<LeafIndex, Error> {
        let skip = first.0 as usize;
        let len = self.nodes.len();
        let free = self
            .nodes
            .range(2 * skip, len)
            .step_by(2)
            .position(Option::is_none)
            .map(|i| LeafIndex((i + skip) as u32));
        let leaf = match free {
            Some(l) => l,
            None => {
                let first_new = LeafIndex(self.leaf_count());
                self.extend()?;
                first_new
            }
        };
        for p in self.size.direct_path(leaf.node()) {
            if let Some(Some(node)) = self.nodes.get_mut(p.0 as usize)
                && let Node::Parent(parent) = std::sync::Arc::make_mut(node)
            {
                parent.unmerged_leaves.push(leaf.0);
            }
        }
        // Setting the leaf clears the cached hashes of the whole path, parents included.
        self.set_leaf(leaf, leaf_node)?;
        Ok(leaf)
    }

    /// Applies an Update from `sender` — RFC 9420 §12.1.2: replaces the sender's leaf and
    /// blanks its direct path. The sender's leaf must be non-blank, and (§7.3) the new leaf
    /// must have source update and a different encryption key.
    pub fn update_leaf(&mut self, sender: LeafIndex, leaf_node: LeafNode) -> Result<(), Error> {
        let old = self.leaf(sender).ok_or(Error::BlankLeaf(sender))?;
        if !matches!(leaf_node.content.leaf_node_source, LeafNodeSource::Update) {
            return Err(Error::LeafSourceMismatch { leaf: sender });
        }
        if old.content.encryption_key == leaf_node.content.encryption_key {
            return Err(Error::UpdateEncryptionKeyUnchanged { leaf: sender });
        }
        self.set_leaf(sender, leaf_node)?;
        self.blank_direct_path(sender.node())
    }

    /// Applies a Remove — RFC 9420 §12.1.3: blanks the leaf `removed` (which must be
    /// non-blank) and its direct path, then truncates the tree while its right subtree has no
    /// non-blank leaf.
    pub fn remove_leaf(&mut self, removed: LeafIndex) -> Result<(), Error> {
        if self.leaf(removed).is_none() {
            return Err(Error::BlankLeaf(removed));
        }
        self.blank(removed.node())?;
        self.blank_direct_path(removed.node())?;
        self.truncate();
        Ok(())
    }

    /// Applies one proposal sent by `sender` to the tree (RFC 9420 §12.1): Add, Update and
    /// Remove change it, the other types leave it alone. Returns the new member's leaf for
    /// an Add.
    pub fn apply_proposal(
        &mut self,
        sender: LeafIndex,
        proposal: &Proposal,
    ) -> Result<Option<LeafIndex>, Error> {
        match proposal {
            Proposal::Add(add) => self
                .add_leaf(add.key_package.tbs.leaf_node.clone())
                .map(Some),
            Proposal::Update(update) => self
                .update_leaf(sender, update.leaf_node.clone())
                .map(|()| None),
            Proposal::Remove(remove) => self.remove_leaf(LeafIndex(remove.removed)).map(|()| None),
            _ => Ok(None),
        }
    }
}
