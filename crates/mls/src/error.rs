//! The library's error type.

use crate::crypto::CryptoError;

/// Who caused an [`Error`], and so what the application can do about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The caller used the API wrongly (no pending commit to merge, sending after being
    /// removed, a Welcome where a KeyPackage is taken): fix the calling code.
    Misuse,
    /// A message, KeyPackage, Welcome, GroupInfo or tree from a peer is invalid: drop it (and
    /// perhaps report the peer). The group is unchanged.
    InvalidInput,
    /// Local state: a stored state that does not import, a secret already used or deleted,
    /// a message for an epoch whose keys are gone.
    State,
    /// The crypto provider failed or does not support the suite.
    Crypto,
}

/// Everything that can go wrong in the library. Each variant names the rule that failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A cryptographic primitive failed.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// Bytes did not decode as the expected structure (RFC 9420 §2.1).
    #[error("decoding failed: {0}")]
    Decode(DecodeError),
    /// More PSKs than a PSKLabel can count (RFC 9420 §8.4: `uint16 count`).
    #[error("{0} PSKs exceed the 65535 a PSKLabel can count")]
    TooManyPsks(usize),
    /// A leaf index beyond the tree.
    #[error("{0:?} is outside the tree")]
    LeafOutOfRange(crate::tree::LeafIndex),
    /// The secret-tree leaf was already consumed (RFC 9420 §9: secrets are deleted after use).
    #[error("the secret of {0:?} has already been consumed")]
    SecretTreeLeafConsumed(crate::tree::LeafIndex),
    /// The key of this generation was already used or deleted: a replay, or a message later
    /// than the out-of-order window (RFC 9420 §9.2).
    #[error("the key of generation {generation} was already used or has been deleted")]
    RatchetKeyUsed {
        /// The generation asked for.
        generation: u32,
    },
    /// A generation further ahead of the ratchet than the configured maximum.
    #[error("generation {generation} is too far ahead of the ratchet at {current}")]
    RatchetTooFarAhead {
        /// The generation asked for.
        generation: u32,
        /// The ratchet's current generation.
        current: u32,
    },
    /// A sender ratchet reached generation 2^32 − 1 (RFC 9420 §9.1: the generation is a uint32).
    #[error("the sender ratchet is exhausted")]
    RatchetExhausted,
    /// Content that must be a commit is not one.
    #[error("the content is not a commit")]
    NotACommit,
    /// Content that must be a proposal is not one.
    #[error("the content is not a proposal")]
    NotAProposal,
    /// A confirmation tag on content that is not a commit (RFC 9420 §6.1).
    #[error("a confirmation tag on content that is not a commit")]
    UnexpectedConfirmationTag,
    /// A PublicMessage from a member without a membership tag (RFC 9420 §6.2).
    #[error("a member's PublicMessage must carry a membership tag")]
    MissingMembershipTag,
    /// A membership tag on a PublicMessage from a sender that is not a member (RFC 9420 §6.2).
    #[error("a membership tag from a sender that is not a member")]
    UnexpectedMembershipTag,
    /// A commit without its confirmation tag (RFC 9420 §6.1: present exactly for commits).
    #[error("a commit must carry a confirmation tag")]
    MissingConfirmationTag,
    /// The Welcome's cipher suite differs from the KeyPackage's (RFC 9420 §12.4.3.1).
    #[error("the Welcome's cipher suite does not match the KeyPackage's")]
    WelcomeCipherSuiteMismatch,
    /// No entry of the Welcome is for one of our KeyPackages (RFC 9420 §12.4.3.1).
    #[error("the Welcome holds no secrets for this KeyPackage")]
    WelcomeNotForUs,
    /// The GroupSecrets did not decrypt with the KeyPackage's init key.
    #[error("the Welcome's group secrets did not decrypt")]
    GroupSecretsDecryptFailed,
    /// The GroupInfo of a Welcome did not decrypt with the welcome key.
    #[error("the Welcome's GroupInfo did not decrypt")]
    GroupInfoDecryptFailed,
    /// The GroupInfo signature does not verify with the signer's key (RFC 9420 §12.4.3).
    #[error("the GroupInfo signature is invalid")]
    GroupInfoSignatureInvalid,
    /// A confirmation tag differs from MAC(confirmation_key, confirmed_transcript_hash)
    /// (RFC 9420 §8.2, §12.4.3.1).
    #[error("the confirmation tag does not match")]
    ConfirmationTagMismatch,
    /// A serialized ratchet tree with no nodes (RFC 9420 §12.4.3.3: the last node must be
    /// non-blank).
    #[error("the ratchet tree has no nodes")]
    TreeEmpty,
    /// A serialized ratchet tree ending in a blank node (RFC 9420 §12.4.3.3).
    #[error("the last node of the serialized ratchet tree is blank")]
    TreeTrailingBlank,
    /// A serialized ratchet tree whose node count is even or too large: its last node would
    /// be a parent (RFC 9420 §12.4.3.3, Appendix C).
    #[error("a ratchet tree cannot have {0} nodes")]
    TreeNodeCount(usize),
    /// A parent node at a leaf position (even index) or a leaf at a parent position
    /// (RFC 9420 §12.4.3.3, Appendix C).
    #[error("{node:?} holds the wrong kind of node for its position")]
    TreeNodeTypeMismatch {
        /// The misplaced node.
        node: crate::tree::NodeIndex,
    },
    /// A node index beyond the tree.
    #[error("{0:?} is outside the tree")]
    NodeOutOfRange(crate::tree::NodeIndex),
    /// The tree cannot grow beyond 2^30 leaves (RFC 9420 §7.7 extension, u32 node indices).
    #[error("the ratchet tree cannot be extended further")]
    TreeFull,
    /// A proposal names a blank leaf (RFC 9420 §12.1.2, §12.1.3: the leaf must be a member).
    #[error("{0:?} is blank")]
    BlankLeaf(crate::tree::LeafIndex),
    /// A parent hash was asked of a blank parent node (RFC 9420 §7.9).
    #[error("{node:?} is a blank parent")]
    BlankParent {
        /// The blank node.
        node: crate::tree::NodeIndex,
    },
    /// The root tree hash differs from the expected one (RFC 9420 §7.8, §12.4.3.1).
    #[error("the tree hash does not match")]
    TreeHashMismatch,
    /// A non-blank parent node is not parent-hash valid: it is not covered by exactly one
    /// parent-hash chain from a leaf (RFC 9420 §7.9.2).
    #[error("{node:?} is not parent-hash valid")]
    ParentHashMismatch {
        /// The first such parent node.
        node: crate::tree::NodeIndex,
    },
    /// A LeafNode signature does not verify (RFC 9420 §7.3).
    #[error("the signature of {leaf:?} does not verify")]
    LeafSignatureInvalid {
        /// The leaf.
        leaf: crate::tree::LeafIndex,
    },
    /// Two nodes share an encryption key (RFC 9420 §7.3).
    #[error("the encryption key of {node:?} is already in the tree")]
    DuplicateEncryptionKey {
        /// The later of the two nodes.
        node: crate::tree::NodeIndex,
    },
    /// Two leaves share a signature key (RFC 9420 §7.3).
    #[error("the signature key of {leaf:?} is already in the tree")]
    DuplicateSignatureKey {
        /// The later of the two leaves.
        leaf: crate::tree::LeafIndex,
    },
    /// An unmerged leaf that is blank, not under the parent, or missing from the unmerged
    /// leaves of a parent in between (RFC 9420 §7.1, §12.4.3.1).
    #[error("{node:?} lists {leaf:?} as unmerged, which it cannot be")]
    UnmergedLeafInvalid {
        /// The parent node.
        node: crate::tree::NodeIndex,
        /// The unmerged leaf.
        leaf: crate::tree::LeafIndex,
    },
    /// A leaf whose lifetime does not contain the current time (RFC 9420 §7.3).
    #[error("{leaf:?} is outside its lifetime")]
    LeafLifetimeInvalid {
        /// The leaf.
        leaf: crate::tree::LeafIndex,
    },
    /// A leaf that does not list a capability it must support (RFC 9420 §7.3, §11.1).
    #[error("{leaf:?} lacks a required capability")]
    LeafCapabilitiesMissing {
        /// The leaf.
        leaf: crate::tree::LeafIndex,
    },
    /// A leaf whose `leaf_node_source` is wrong for where it appears (RFC 9420 §7.3).
    #[error("{leaf:?} has the wrong leaf_node_source")]
    LeafSourceMismatch {
        /// The leaf.
        leaf: crate::tree::LeafIndex,
    },
    /// An Update whose leaf keeps the replaced leaf's encryption key (RFC 9420 §7.3).
    #[error("the Update of {leaf:?} keeps its encryption key")]
    UpdateEncryptionKeyUnchanged {
        /// The leaf.
        leaf: crate::tree::LeafIndex,
    },
    /// A [`crate::secret_tree::PendingRatchet`] applied to a secret tree that changed after
    /// it was computed.
    #[error("the secret tree changed since this ratchet update was computed")]
    StaleRatchetUpdate,
    /// Application data sent or received as a PublicMessage (RFC 9420 §6.2: MUST NOT).
    #[error("application data must not be sent as a PublicMessage")]
    ApplicationDataInPublicMessage,
    /// A message for another group (RFC 9420 §6: group_id must match the group context).
    #[error("the message belongs to another group")]
    WrongGroupId,
    /// A message for another epoch (RFC 9420 §6: epoch must match the group context).
    #[error("the message is for epoch {got}, the group is at epoch {expected}")]
    WrongEpoch {
        /// The group's epoch.
        expected: u64,
        /// The message's epoch.
        got: u64,
    },
    /// A member's PublicMessage without the membership key to tag or check it (§6.2).
    #[error("a membership key is needed for a member's PublicMessage")]
    MissingMembershipKey,
    /// The membership tag is not `MAC(membership_key, AuthenticatedContentTBM)` (§6.2).
    #[error("the membership tag does not match")]
    MembershipTagMismatch,
    /// The signature over FramedContentTBS does not verify with the sender's key (§6.1).
    #[error("the content signature does not verify")]
    InvalidContentSignature,
    /// No signature key is known for the message's sender (§6.1).
    #[error("no signature key is known for the sender {0:?}")]
    UnknownSender(crate::messages::Sender),
    /// A PrivateMessage can only be sent by a member (§6.3.2).
    #[error("only members can send PrivateMessages")]
    PrivateMessageFromNonMember,
    /// The sender data did not decrypt (§6.3.2).
    #[error("the sender data did not decrypt")]
    SenderDataDecryptFailed,
    /// The sender data names a leaf that is not a member (§6.3.2: it must be non-blank).
    #[error("{0:?} is not a member of the group")]
    SenderNotMember(crate::tree::LeafIndex),
    /// The PrivateMessage content did not decrypt (§6.3.1).
    #[error("the message content did not decrypt")]
    ContentDecryptFailed,
    /// The padding of a PrivateMessageContent has a non-zero byte (§6.3.1: malformed).
    #[error("the padding of the message has a non-zero byte")]
    NonZeroPadding,
    /// A message's wire format is not the one expected for it (§6).
    #[error("unexpected wire format")]
    WrongWireFormat,
    /// A path secret was given for a node that is not on the member's filtered direct path.
    #[error("{0:?} is not on the member's filtered direct path")]
    PathSecretNodeNotOnPath(crate::tree::NodeIndex),
    /// A public key derived from a path secret differs from the tree's or the UpdatePath's
    /// (RFC 9420 §12.4.2).
    #[error("the public key derived for {0:?} does not match")]
    PathKeyMismatch(crate::tree::NodeIndex),
    /// The LeafNode of an UpdatePath must have source commit (RFC 9420 §12.4.2).
    #[error("the UpdatePath's leaf node does not have source commit")]
    UpdatePathLeafSource,
    /// An UpdatePath's node count differs from the sender's filtered direct path (§12.4.2).
    #[error("the UpdatePath has {got} nodes, the filtered direct path {expected}")]
    UpdatePathLength {
        /// The filtered direct path's length.
        expected: usize,
        /// The UpdatePath's node count.
        got: usize,
    },
    /// An UpdatePathNode's ciphertext count differs from its copath resolution (§7.6).
    #[error("{node:?}: {got} encrypted path secrets for a resolution of {expected}")]
    UpdatePathCiphertextCount {
        /// The path node.
        node: crate::tree::NodeIndex,
        /// The resolution size (new members excluded).
        expected: usize,
        /// The number of ciphertexts.
        got: usize,
    },
    /// A member was asked to decrypt its own UpdatePath.
    #[error("an UpdatePath cannot be decrypted by its own sender")]
    UpdatePathFromSelf,
    /// No node of the UpdatePath is encrypted to a key this member holds.
    #[error("no path secret of the UpdatePath is encrypted to this member")]
    NoPathSecretForUs,
    /// A path secret did not decrypt (RFC 9420 §7.6).
    #[error("the path secret for {0:?} did not decrypt")]
    PathSecretDecryptFailed(crate::tree::NodeIndex),
    /// The application's identity policy refused a credential (RFC 9420 §5.3.1).
    #[error("credential rejected: {0}")]
    CredentialRejected(String),
    /// A KeyPackage breaks a rule of RFC 9420 §10.1; the text names it.
    #[error("invalid KeyPackage: {0}")]
    KeyPackageInvalid(&'static str),
    /// A proposal is invalid on its own (RFC 9420 §12.1); the text names the rule.
    #[error("invalid proposal: {0}")]
    ProposalInvalid(&'static str),
    /// A committed proposal list breaks a rule of RFC 9420 §12.2; the text names it.
    #[error("invalid proposal list: {0}")]
    ProposalListInvalid(&'static str),
    /// A commit references a proposal this member has not received (§12.4.2).
    #[error("the commit references an unknown proposal")]
    UnknownProposalRef,
    /// A commit lacks the path its proposals require (§12.4).
    #[error("the commit must carry an UpdatePath")]
    PathRequired,
    /// A PSK named by a commit or Welcome is not available (§12.4.2).
    #[error("a pre-shared key is not available")]
    MissingPsk,
    /// No commit of ours is pending.
    #[error("no commit is pending")]
    NoPendingCommit,
    /// A commit of ours is pending: merge or clear it first.
    #[error("a commit is pending; merge or clear it first")]
    PendingCommit,
    /// A staged commit no longer matches the group's epoch.
    #[error("the staged commit is for another epoch or group")]
    StaleStagedCommit,
    /// This member has been removed from the group.
    #[error("this member has been removed from the group")]
    RemovedFromGroup,
    /// A message of a kind that cannot be processed here.
    #[error("unexpected message")]
    UnexpectedMessage,
    /// An `MlsMessage` of another kind than the call takes (a KeyPackage where a Welcome is
    /// expected, …).
    #[error("expected a message of wire format {expected:?}, got {got:?}")]
    WrongMessageKind {
        /// The wire format the call takes.
        expected: crate::messages::WireFormat,
        /// The wire format of the message given.
        got: crate::messages::WireFormat,
    },
    /// An external commit's GroupInfo is of another cipher suite than the joiner's identity.
    #[error("the GroupInfo's cipher suite does not match the joiner's")]
    GroupInfoCipherSuiteMismatch,
    /// A message with a protocol version other than mls10.
    #[error("unsupported protocol version")]
    WrongProtocolVersion,
    /// A feature this build does not support yet; the text names it.
    #[error("not supported: {0}")]
    Unsupported(&'static str),
    /// A Welcome without the ratchet_tree extension, and no tree was supplied (§12.4.3.3).
    #[error("the ratchet tree is neither in the Welcome nor supplied")]
    MissingRatchetTree,
    /// A GroupInfo without external_pub cannot be joined externally (§12.4.3.2).
    #[error("the GroupInfo has no external_pub extension")]
    MissingExternalPub,
    /// Persisted state did not decode; the text says where.
    #[error("corrupt stored state: {0}")]
    StateCorrupt(&'static str),
    /// Persisted group state of a format version this build does not read.
    #[error("group state format version {0} is not supported")]
    StateVersion(u16),
    /// The group was closed by a ReInit commit (§11.2): it sends nothing more.
    #[error("the group was closed by a ReInit")]
    GroupClosedByReInit,
    /// A commit applied our Update, but its private key is gone.
    #[error("the private key of our committed Update is not available")]
    MissingUpdateKey,
    /// A ReInit/branch group's parameters differ from what was asked (§11.2, §11.3).
    #[error("the new group does not match the ReInit or branch")]
    ResumptionMismatch,
    /// A Welcome whose GroupSecrets name more than one resumption PSK with usage `reinit`
    /// or `branch` (RFC 9420 §12.4.3.1: it must be the only such PSK).
    #[error("the Welcome names more than one reinit/branch resumption PSK")]
    WelcomeMultipleResumptionPsks,
    /// A Welcome carrying a resumption PSK of usage `reinit` or `branch` outside the join
    /// that continues the old group (RFC 9420 §11.2, §11.3: such PSKs "MUST NOT be used in
    /// other contexts"); join it with [`JoinBuilder::reinit_of`](crate::group::JoinBuilder::reinit_of) or
    /// [`JoinBuilder::branch_of`](crate::group::JoinBuilder::branch_of).
    #[error("a {usage:?} resumption PSK is only valid when joining a ReInit or branch")]
    ResumptionPskOutOfContext {
        /// The PSK's usage.
        usage: crate::messages::ResumptionPskUsage,
    },
    /// A ReInit or branch Welcome without the resumption PSK that links it to the old group
    /// (RFC 9420 §11.2: "MUST specify a PreSharedKeyID of type `resumption` with usage
    /// `reinit`"; §11.3: usage `branch`).
    #[error("the Welcome carries no {expected:?} resumption PSK")]
    ResumptionPskAbsent {
        /// The usage the join expects.
        expected: crate::messages::ResumptionPskUsage,
    },
    /// A ReInit Welcome with a branch PSK or the reverse (RFC 9420 §11.2, §11.3).
    #[error("the Welcome's resumption PSK has usage {got:?}, {expected:?} was expected")]
    ResumptionPskUsageMismatch {
        /// The usage the join expects.
        expected: crate::messages::ResumptionPskUsage,
        /// The usage in the Welcome.
        got: crate::messages::ResumptionPskUsage,
    },
    /// The reinit/branch resumption PSK names another group than the old one (RFC 9420
    /// §11.2: "the `group_id` field matches the old group"; §11.3: the referenced group).
    #[error("the Welcome's resumption PSK names another group than the old one")]
    ResumptionPskWrongGroup,
    /// The reinit resumption PSK names an epoch other than the one the ReInit commit
    /// started (RFC 9420 §11.2: "the `epoch` field indicates the epoch after the Commit
    /// covering the ReInit").
    #[error("the reinit PSK names epoch {got}, the ReInit commit started epoch {expected}")]
    ReInitPskWrongEpoch {
        /// The old group's closing epoch.
        expected: u64,
        /// The epoch the PSK names.
        got: u64,
    },
    /// A ReInit or branch Welcome for a group not at epoch 1 (RFC 9420 §11.2, §11.3: "The
    /// `epoch` in the Welcome message MUST be 1").
    #[error("a ReInit or branch Welcome must be for epoch 1, not {epoch}")]
    ResumptionEpochNotOne {
        /// The new group's epoch.
        epoch: u64,
    },
    /// `join_reinit` with an old group that no ReInit commit closed (RFC 9420 §11.2).
    #[error("the old group was not closed by a ReInit")]
    OldGroupNotReInitialized,
    /// The new group's protocol version differs from the ReInit proposal's (RFC 9420 §11.2).
    #[error("the new group's version differs from the ReInit's")]
    ReInitVersionMismatch,
    /// The new group's cipher suite differs from the ReInit proposal's (RFC 9420 §11.2).
    #[error("the new group's cipher suite differs from the ReInit's")]
    ReInitCipherSuiteMismatch,
    /// The new group's id differs from the ReInit proposal's (RFC 9420 §11.2).
    #[error("the new group's id differs from the ReInit's")]
    ReInitGroupIdMismatch,
    /// The new group's GroupContext extensions differ from the ReInit proposal's (RFC 9420
    /// §11.2).
    #[error("the new group's extensions differ from the ReInit's")]
    ReInitExtensionsMismatch,
    /// A branch whose protocol version differs from the old group's (RFC 9420 §11.3).
    #[error("the branch's version differs from the old group's")]
    BranchVersionMismatch,
    /// A branch whose cipher suite differs from the old group's (RFC 9420 §11.3).
    #[error("the branch's cipher suite differs from the old group's")]
    BranchCipherSuiteMismatch,
    /// A branch that reuses the old group's id, which the joiner still participates in
    /// (RFC 9420 §12.4.3.1: the group_id must be unique among the client's groups).
    #[error("the branch reuses the old group's id")]
    BranchGroupIdReused,
    /// A leaf of the branch matches no leaf of the old group (RFC 9420 §11.3: "Each
    /// LeafNode in a new subgroup MUST match some LeafNode in the original group").
    #[error("{leaf:?} of the branch is not a member of the old group")]
    BranchLeafNotInOldGroup {
        /// The leaf of the new group.
        leaf: crate::tree::LeafIndex,
    },
    /// A structure could not be encoded (a length beyond 2^30 − 1, §2.1.2).
    #[error("encoding failed: {0}")]
    Encode(&'static str),
}

/// Why bytes did not decode (RFC 9420 §2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input ended inside a structure.
    #[error("the input ends early")]
    EndOfInput,
    /// Bytes remained after a complete structure.
    #[error("{0} trailing bytes")]
    TrailingBytes(usize),
    /// A varint length with the reserved prefix 0b11 (§2.1.2).
    #[error("a varint with the reserved prefix 0b11")]
    VarintReservedPrefix,
    /// A varint length not in its shortest encoding (§2.1.2).
    #[error("a varint not in its minimal encoding")]
    NonMinimalVarint,
    /// A vector length that does not fit the input or the structure.
    #[error("an invalid vector length")]
    InvalidLength,
    /// A tag (enum discriminant) that the structure does not define.
    #[error("the unknown value {0:#x}")]
    UnknownValue(u64),
    /// Any other violation of the structure's syntax.
    #[error("malformed structure")]
    Malformed,
}

impl From<tls_codec::Error> for Error {
    fn from(e: tls_codec::Error) -> Self {
        Error::Decode(match e {
            tls_codec::Error::EndOfStream => DecodeError::EndOfInput,
            tls_codec::Error::TrailingData => DecodeError::TrailingBytes(0),
            tls_codec::Error::InvalidVectorLength => DecodeError::InvalidLength,
            tls_codec::Error::UnknownValue(v) => DecodeError::UnknownValue(v),
            _ => DecodeError::Malformed,
        })
    }
}

impl Error {
    /// Who caused this error: the caller, a peer's input, local state, or the crypto provider.
    ///
    /// ```
    /// use conclave_mls::{Error, ErrorKind};
    /// assert_eq!(Error::NoPendingCommit.kind(), ErrorKind::Misuse);
    /// assert_eq!(Error::MembershipTagMismatch.kind(), ErrorKind::InvalidInput);
    /// ```
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Crypto(crate::crypto::CryptoError::UnsupportedCipherSuite(_))
            | Self::Crypto(crate::crypto::CryptoError::Rng)
            | Self::Crypto(crate::crypto::CryptoError::AeadSeal)
            | Self::Crypto(crate::crypto::CryptoError::HpkeSeal)
            | Self::Crypto(crate::crypto::CryptoError::KdfLength) => ErrorKind::Crypto,
            Self::NoPendingCommit
            | Self::PendingCommit
            | Self::StaleStagedCommit
            | Self::RemovedFromGroup
            | Self::GroupClosedByReInit
            | Self::WrongMessageKind { .. }
            | Self::Unsupported(_)
            | Self::TooManyPsks(_)
            | Self::Encode(_)
            | Self::MissingRatchetTree
            | Self::OldGroupNotReInitialized
            | Self::ResumptionMismatch
            | Self::MissingUpdateKey
            | Self::TreeFull => ErrorKind::Misuse,
            Self::StateCorrupt(_)
            | Self::StateVersion(_)
            | Self::SecretTreeLeafConsumed(_)
            | Self::RatchetKeyUsed { .. }
            | Self::RatchetExhausted
            | Self::MissingPsk => ErrorKind::State,
            _ => ErrorKind::InvalidInput,
        }
    }
}
