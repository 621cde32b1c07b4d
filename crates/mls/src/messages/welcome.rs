//! Welcome messages and GroupInfo (RFC 9420 §12.4.3).

use super::{Extension, GroupContext, HpkeCiphertext, KeyPackageRef, Mac, PreSharedKeyId};
use crate::codec::VarBytes;
use crate::crypto::CipherSuite;
use tls_codec::{TlsDeserialize, TlsDeserializeBytes, TlsSerialize, TlsSize};

/// `GroupInfoTBS` — RFC 9420 §12.4.3: everything a GroupInfo signs.
#[derive(
    Debug, Clone, PartialEq, Eq, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
pub struct GroupInfoTbs {
    /// The group's context in the new epoch.
    pub group_context: GroupContext,
    /// The GroupInfo's extensions.
    pub extensions: Vec<Extension>,
    /// The new epoch's confirmation tag.
    pub confirmation_tag: Mac,
    /// The signer's leaf index.
    pub signer: u32,
}

/// `GroupInfo` — RFC 9420 §12.4.3: a [`GroupInfoTbs`] and its signature.
#[derive(
    Debug, Clone, PartialEq, Eq, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
pub struct GroupInfo {
    /// The signed content.
    pub tbs: GroupInfoTbs,
    /// `SignWithLabel(., "GroupInfoTBS", GroupInfoTBS)`.
    pub signature: VarBytes,
}

/// `PathSecret` — RFC 9420 §12.4.3.
#[derive(
    Debug, Clone, PartialEq, Eq, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
pub struct PathSecret {
    /// The path secret of the lowest common ancestor with the committer.
    pub path_secret: VarBytes,
}

/// `GroupSecrets` — RFC 9420 §12.4.3.
#[derive(
    Debug, Clone, PartialEq, Eq, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
pub struct GroupSecrets {
    /// The joiner secret of the new epoch.
    pub joiner_secret: VarBytes,
    /// The path secret for the new member, if the commit had a path.
    pub path_secret: Option<PathSecret>,
    /// The PSKs the epoch uses.
    pub psks: Vec<PreSharedKeyId>,
}

/// `EncryptedGroupSecrets` — RFC 9420 §12.4.3.
#[derive(
    Debug, Clone, PartialEq, Eq, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
pub struct EncryptedGroupSecrets {
    /// The KeyPackage the secrets are for.
    pub new_member: KeyPackageRef,
    /// The HPKE-encrypted [`GroupSecrets`].
    pub encrypted_group_secrets: HpkeCiphertext,
}

/// `Welcome` — RFC 9420 §12.4.3.1.
#[derive(
    Debug, Clone, PartialEq, Eq, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
pub struct Welcome {
    /// The group's cipher suite.
    pub cipher_suite: CipherSuite,
    /// One entry per new member.
    pub secrets: Vec<EncryptedGroupSecrets>,
    /// The AEAD-encrypted [`GroupInfo`].
    pub encrypted_group_info: VarBytes,
}
