//! Fixtures built with Conclave before any measurement starts, shared by all three
//! implementations: the other members' KeyPackages, and the populated tree.
//!
//! **adds_only**: the measured implementation's creator adds the fixture KeyPackages itself
//! (that is the `build` measurement), so every parent node stays blank except the creator's
//! own direct path.
//!
//! **populated**: a real group in which every parent node is non-blank cannot be grown by
//! real members in reasonable time (every odd leaf must commit, and every member must process
//! every commit: O(n²)). So the public state of such a group is *synthesized*: the fixture
//! members' leaves are placed in a tree, then every odd leaf in turn runs the committer's
//! side of TreeKEM on the public tree (`tree::treekem::prepare_path`: fresh path keys, parent
//! hashes, the leaf re-signed with its owner's signature key) without encrypting anything,
//! exactly the public tree that those n/2 commits would leave. A GroupInfo for it is signed
//! by leaf 0 with an `external_pub` from a random epoch secret. The measured implementation
//! then joins by external commit, validating the whole tree like any joiner, and from there
//! on everything is real MLS between its own clients.

use crate::client::Result;
use crate::measure::Progress;
use conclave_mls::codec::{Decode, Encode};
use conclave_mls::crypto::{Secret, SuiteCrypto};
// Synthesizing a populated tree and signing its GroupInfo takes the internals: no client
// builds such a group through the public API.
use conclave_mls::internal::key_schedule::EpochSecrets;
use conclave_mls::internal::tree::RatchetTree;
use conclave_mls::internal::tree::treekem::{TreeKemPrivate, prepare_path};
use conclave_mls::messages::{
    Credential, Extension, ExtensionType, ExternalPub, GroupContext, GroupInfo, GroupInfoTbs,
    Lifetime, ProtocolVersion,
};
use conclave_mls::{
    CipherSuite, CryptoProvider, Identity, KeyPackage, KeyPackageBundle, KeyPackageOptions,
    LeafIndex, MlsMessage, RustCrypto,
};
use rayon::prelude::*;

/// Decodes an `MLSMessage`.
pub fn decode(bytes: &[u8]) -> Result<MlsMessage> {
    Ok(MlsMessage::decode(bytes)?)
}

/// Encodes an `MLSMessage`.
pub fn encode(message: &MlsMessage) -> Result<Vec<u8>> {
    Ok(message.encode()?)
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// KeyPackages valid from a minute ago for a day.
pub fn key_package_options() -> KeyPackageOptions {
    KeyPackageOptions::new(Lifetime::starting_at(now() - 60, 86_400))
}

/// A fixture member: identity and its KeyPackage.
pub struct Member {
    /// The member's identity (with its signature private key).
    pub identity: Identity,
    /// Its KeyPackage.
    pub key_package: KeyPackage,
}

/// `count` members with fresh identities and KeyPackages, made on all cores.
pub fn members(suite: u16, count: usize) -> Result<Vec<Member>> {
    let progress = Progress::new("key packages", count);
    let made: std::result::Result<Vec<Member>, String> = (0..count)
        .into_par_iter()
        .map(|i| {
            let provider = RustCrypto::default();
            let identity = Identity::generate(
                &provider,
                CipherSuite(suite),
                Credential::Basic {
                    identity: format!("member-{i}").into_bytes().into(),
                },
            )
            .map_err(|e| e.to_string())?;
            let key_package =
                KeyPackageBundle::generate(&provider, &identity, key_package_options())
                    .map_err(|e| e.to_string())?
                    .key_package()
                    .clone();
            progress.tick();
            Ok(Member {
                identity,
                key_package,
            })
        })
        .collect();
    progress.finish();
    Ok(made?)
}

/// The members' KeyPackages as `MLSMessage` bytes.
pub fn key_package_messages(members: &[Member]) -> Result<Vec<Vec<u8>>> {
    members
        .iter()
        .map(|m| encode(&MlsMessage::from(m.key_package.clone())))
        .collect()
}

/// A signed GroupInfo (`MLSMessage` bytes, ratchet tree and external_pub included) of a
/// group of `members` whose every parent node is populated; see the module documentation.
pub fn populated_group_info(suite: u16, members: &[Member], group_id: &[u8]) -> Result<Vec<u8>> {
    let provider = RustCrypto::default();
    let crypto = SuiteCrypto::new(&provider, CipherSuite(suite))?;
    let first = members.first().ok_or("no members")?;
    let mut tree = RatchetTree::new(first.key_package.tbs.leaf_node.clone());
    for m in &members[1..] {
        tree.add_leaf(m.key_package.tbs.leaf_node.clone())?;
    }
    // The committers' leaf private keys are not needed: nothing is encrypted.
    let unused = provider
        .hpke_generate_key_pair(CipherSuite(suite))?
        .private_key;
    let committers: Vec<usize> = (1..members.len()).step_by(2).collect();
    let progress = Progress::new("populating parents", committers.len());
    for &i in &committers {
        let leaf = LeafIndex(i as u32);
        let content = tree.leaf(leaf).ok_or("blank leaf")?.content.clone();
        let mut private = TreeKemPrivate::new(leaf, unused.clone());
        prepare_path(
            &crypto,
            &mut tree,
            &mut private,
            content,
            &members[i].identity.signer,
            group_id,
        )?;
        progress.tick();
    }
    progress.finish();

    let random = |len: usize| -> Result<Vec<u8>> {
        let mut bytes = vec![0u8; len];
        provider.random_bytes(&mut bytes)?;
        Ok(bytes)
    };
    let confirmed_transcript_hash = random(crypto.hash_len())?;
    let secrets =
        EpochSecrets::from_epoch_secret(&crypto, &Secret::new(random(crypto.hash_len())?))?;
    let external = secrets.external_key_pair(&crypto)?;
    let tbs = GroupInfoTbs {
        group_context: GroupContext {
            version: ProtocolVersion::MLS10,
            cipher_suite: CipherSuite(suite),
            group_id: group_id.to_vec().into(),
            epoch: 1,
            tree_hash: tree.root_hash(&crypto)?.into(),
            confirmed_transcript_hash: confirmed_transcript_hash.clone().into(),
            extensions: vec![],
        },
        extensions: vec![
            Extension {
                extension_type: ExtensionType::RATCHET_TREE,
                extension_data: tree.to_wire().encode()?.into(),
            },
            Extension {
                extension_type: ExtensionType::EXTERNAL_PUB,
                extension_data: ExternalPub {
                    external_pub: external.public_key.into(),
                }
                .encode()?
                .into(),
            },
        ],
        confirmation_tag: secrets
            .confirmation_tag(&crypto, &confirmed_transcript_hash)?
            .into(),
        signer: 0,
    };
    let info = GroupInfo::sign(&crypto, tbs, &first.identity.signer)?;
    encode(&MlsMessage::from(info))
}
