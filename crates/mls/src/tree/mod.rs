//! The ratchet tree (RFC 9420 §7) and the arithmetic of its array representation.

mod chunked;
pub mod hash;
pub mod join;
mod key_index;
pub mod math;
mod ops;
mod ratchet;
pub mod treekem;
pub mod validate;

#[cfg(test)]
mod tests;

pub use math::{LeafIndex, NodeIndex, TreeSize};
pub use ratchet::RatchetTree;
