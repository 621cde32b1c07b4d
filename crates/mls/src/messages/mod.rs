//! Every RFC 9420 wire structure, with its `tls_codec` encoding.
//!
//! These are plain data: decoding checks syntax only (lengths, tags). The rules that give
//! the values meaning are checked where the RFC places them, in the tree and group modules.
//!
//! Registries that can carry unknown or GREASE values (§13.5) — cipher suites, versions,
//! extension, proposal and credential types, wire formats — are open `u16` newtypes. Bodies
//! selected by a type whose structure the RFC does not give (custom credentials, custom
//! proposals) cannot be skipped, so they fail to decode: see [`Credential`] and [`Proposal`].

mod commit;
mod credential;
mod extension;
mod framing;
mod group_context;
mod key_package;
mod keys;
mod leaf_node;
mod proposal;
mod psk;
mod ratchet_tree;
mod welcome;

pub use commit::{Commit, HpkeCiphertext, ProposalOrRef, UpdatePath, UpdatePathNode};
pub use credential::{Certificate, Credential, CredentialType};
pub use extension::{
    ApplicationId, Extension, ExtensionType, ExternalPub, ExternalSender, ExternalSenders,
    RequiredCapabilities,
};
pub use framing::{
    AuthenticatedContent, ConfirmedTranscriptHashInput, ContentType, FramedContent,
    FramedContentAuthData, FramedContentBody, FramedContentTbs, InterimTranscriptHashInput,
    MlsMessage, MlsMessageBody, PrivateContentAad, PrivateMessage, PrivateMessageContent,
    PublicMessage, Sender, SenderData, SenderDataAad, WireFormat,
};
pub(crate) use framing::{confirmed_transcript_hash_input, write_framed_content_tbs};
pub use group_context::{GroupContext, ProtocolVersion};
pub use key_package::{KeyPackage, KeyPackageTbs};
pub use keys::{
    ConfirmationTag, HpkePublicKey, KeyPackageRef, Mac, MembershipTag, ProposalRef,
    SignaturePublicKey,
};
pub use leaf_node::{
    Capabilities, LeafNode, LeafNodeContent, LeafNodeGroupBinding, LeafNodeSource, LeafNodeTbs,
    Lifetime,
};
pub use proposal::{
    Add, ExternalInit, GroupContextExtensions, PreSharedKey, Proposal, ProposalType, ReInit,
    Remove, Update,
};
pub use psk::{PreSharedKeyId, Psk, ResumptionPskUsage};
pub use ratchet_tree::{Node, ParentNode, RatchetTree};
pub use welcome::{
    EncryptedGroupSecrets, GroupInfo, GroupInfoTbs, GroupSecrets, PathSecret, Welcome,
};
