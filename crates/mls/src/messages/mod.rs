//! Every RFC 9420 wire structure, with its `tls_codec` encoding.
//!
//! These are plain data: decoding checks syntax only (lengths, tags). The rules that give
//! the values meaning are checked where the RFC places them, in the tree and group modules.

mod extension;
mod group_context;
mod psk;

pub use extension::{Extension, ExtensionType};
pub use group_context::{GroupContext, ProtocolVersion};
pub use psk::{PreSharedKeyId, Psk, ResumptionPskUsage};
