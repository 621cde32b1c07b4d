//! The ratchet tree (RFC 9420 §7) and the arithmetic of its array representation.

pub mod math;

pub use math::{LeafIndex, NodeIndex, TreeSize};
