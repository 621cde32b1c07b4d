//! The mls-rs 0.57 side of the scenarios (`mls-rs-crypto-rustcrypto`): basic credentials, or
//! X.509 chains checked by mls-rs's own RustCrypto validator ([`mls_rs_x509`]).

use crate::{CUSTOM_EXTENSION, EXPORTER_LABEL, Member, Peer, PeerOptions};
use mls_rs::client_builder::MlsConfig;
use mls_rs::extension::ExtensionType;
use mls_rs::group::{CommitBuilder, CommitEffect, ExportedTree, ReceivedMessage, ReinitClient};
use mls_rs::identity::SigningIdentity;
use mls_rs::identity::basic::{BasicCredential, BasicIdentityProvider};
use mls_rs::identity::x509::{CertificateChain, SubjectIdentityExtractor, X509IdentityProvider};
use mls_rs::mls_rs_codec::{MlsDecode, MlsEncode};
use mls_rs::mls_rules::{CommitOptions, DefaultMlsRules, EncryptionOptions};
use mls_rs::psk::{ExternalPskId, PreSharedKey};
use mls_rs::storage_provider::in_memory::InMemoryPreSharedKeyStorage;
use mls_rs::{
    CipherSuite, CipherSuiteProvider, Client, CryptoProvider, ExtensionList, Group, MlsMessage,
    ProtocolVersion,
};
use mls_rs_crypto_rustcrypto::RustCryptoProvider;
use mls_rs_crypto_rustcrypto::x509::{X509Reader, X509Validator};

/// An mls-rs client and at most one group; also the ReInit client between a ReInit commit
/// and the new group (§11.2).
pub struct MlsRs<C: MlsConfig> {
    /// The client.
    pub client: Client<C>,
    /// The group, once created or joined.
    pub group: Option<Group<C>>,
    /// After a ReInit commit: the client that creates or joins the new group.
    pub reinit: Option<ReinitClient<C>>,
    /// The client's external PSKs (§8.4); clones share the map with the client's store.
    pub psks: InMemoryPreSharedKeyStorage,
    name: String,
    removed: bool,
}

/// An mls-rs client with a basic credential `name` in `suite`, default options.
pub fn mls_rs(name: &str, suite: u16) -> MlsRs<impl MlsConfig + use<>> {
    mls_rs_with(name, suite, PeerOptions::default())
}

/// A new signing identity (key pair and basic credential `name`) in `suite`.
fn signing_identity(
    name: &str,
    suite: u16,
) -> (SigningIdentity, mls_rs::crypto::SignatureSecretKey) {
    let provider = RustCryptoProvider::default()
        .cipher_suite_provider(CipherSuite::new(suite))
        .expect("mls-rs supports the suite");
    let (secret, public) = provider.signature_key_generate().expect("signature key");
    let credential = BasicCredential::new(name.as_bytes().to_vec()).into_credential();
    (SigningIdentity::new(credential, public), secret)
}

/// An mls-rs client with a basic credential `name` in `suite`, configured by `options`
/// (private handshakes set `encrypt_control_messages`); a [`crate::scenarios::NewPeer`]. The
/// config type does not depend on `name`'s lifetime (`use<>`), so one type serves every peer.
pub fn mls_rs_with(name: &str, suite: u16, options: PeerOptions) -> MlsRs<impl MlsConfig + use<>> {
    let (identity, secret) = signing_identity(name, suite);
    let mut encryption = EncryptionOptions::default();
    encryption.encrypt_control_messages = options.private_handshake;
    let rules = DefaultMlsRules::new()
        .with_encryption_options(encryption)
        .with_commit_options(
            CommitOptions::new().with_ratchet_tree_extension(!options.out_of_band_tree),
        );
    let extensions = if options.custom_extension {
        vec![ExtensionType::new(CUSTOM_EXTENSION)]
    } else {
        vec![]
    };
    let psks = InMemoryPreSharedKeyStorage::default();
    let client = Client::builder()
        .psk_store(psks.clone())
        .identity_provider(BasicIdentityProvider)
        .mls_rules(rules)
        .extension_types(extensions)
        .crypto_provider(RustCryptoProvider::default())
        .signing_identity(identity, secret, CipherSuite::new(suite))
        .build();
    MlsRs {
        client,
        group: None,
        reinit: None,
        psks,
        name: name.to_owned(),
        removed: false,
    }
}

/// A fresh signature key pair of mls-rs in `suite`: `(secret, public key bytes)`, the public
/// key as MLS carries it (for Ed25519 the raw 32 bytes), for a certificate to be issued on.
pub fn mls_rs_signature_key(suite: u16) -> (mls_rs::crypto::SignatureSecretKey, Vec<u8>) {
    let provider = RustCryptoProvider::default()
        .cipher_suite_provider(CipherSuite::new(suite))
        .expect("mls-rs supports the suite");
    let (secret, public) = provider.signature_key_generate().expect("signature key");
    (secret, public.as_bytes().to_vec())
}

/// An mls-rs client in `suite` presenting the X.509 `chain` (DER, leaf first) for the key
/// pair `(secret, public)`, whose identity provider is mls-rs's own: `X509IdentityProvider`
/// with the RustCrypto `X509Validator` anchored at `root_der` alone, identities read from
/// the leaf's subject. It checks every member's chain, time included, as a deployment would.
pub fn mls_rs_x509(
    name: &str,
    suite: u16,
    chain: &[Vec<u8>],
    key: (mls_rs::crypto::SignatureSecretKey, Vec<u8>),
    root_der: &[u8],
) -> MlsRs<impl MlsConfig + use<>> {
    let (secret, public) = key;
    let credential = CertificateChain::from(chain.to_vec()).into_credential();
    let identity = SigningIdentity::new(credential, public.into());
    let validator = X509Validator::new(vec![root_der.to_vec().into()])
        .expect("mls-rs accepts the AS root as a trust anchor");
    let provider = X509IdentityProvider::new(
        SubjectIdentityExtractor::new(0, X509Reader::new()),
        validator,
    );
    let psks = InMemoryPreSharedKeyStorage::default();
    let client = Client::builder()
        .psk_store(psks.clone())
        .identity_provider(provider)
        .crypto_provider(RustCryptoProvider::default())
        .signing_identity(identity, secret, CipherSuite::new(suite))
        .build();
    MlsRs {
        client,
        group: None,
        reinit: None,
        psks,
        name: name.to_owned(),
        removed: false,
    }
}

impl<C: MlsConfig> MlsRs<C> {
    /// The group (panics if none).
    pub fn group(&mut self) -> &mut Group<C> {
        self.group.as_mut().expect("in a group")
    }

    /// A fresh KeyPackage as `MLSMessage` bytes.
    pub fn key_package(&self) -> Vec<u8> {
        self.client
            .generate_key_package_message(Default::default(), Default::default(), None)
            .expect("key package")
            .to_bytes()
            .expect("encode")
    }

    /// Joins from a Welcome (bytes), the ratchet tree in its GroupInfo.
    pub fn join(&mut self, welcome: &[u8]) {
        self.try_join(welcome, None)
            .expect("mls-rs accepts the Welcome");
    }

    /// Commits an Add of a KeyPackage (bytes) and applies it; returns (commit, welcome).
    pub fn add(&mut self, key_package: &[u8]) -> (Vec<u8>, Vec<u8>) {
        self.add_and_psk(key_package, None)
    }

    /// [`MlsRs::add`], or mls-rs's refusal as text (it does not accept the KeyPackage, say
    /// because its identity provider refuses the credential); the group is unchanged then.
    pub fn try_add(&mut self, key_package: &[u8]) -> Result<(Vec<u8>, Vec<u8>), String> {
        let kp = MlsMessage::from_bytes(key_package).map_err(|e| format!("{e:?}"))?;
        let group = self.group();
        let out = group
            .commit_builder()
            .add_member(kp)
            .and_then(|b| b.build())
            .map_err(|e| format!("{e:?}"))?;
        group.apply_pending_commit().expect("apply");
        Ok((
            out.commit_message.to_bytes().expect("encode"),
            out.welcome_messages
                .first()
                .expect("a Welcome")
                .to_bytes()
                .expect("encode"),
        ))
    }

    /// Commits an Add of a KeyPackage (bytes), with a PreSharedKey proposal for the external
    /// PSK `psk` if given, and applies it; returns (commit, welcome).
    fn add_and_psk(&mut self, key_package: &[u8], psk: Option<&[u8]>) -> (Vec<u8>, Vec<u8>) {
        let kp = MlsMessage::from_bytes(key_package).expect("decode KeyPackage");
        let (commit, welcome) = self.commit_with(|builder| {
            let builder = builder
                .add_member(kp)
                .expect("mls-rs accepts the KeyPackage");
            match psk {
                Some(id) => builder
                    .add_external_psk(ExternalPskId::new(id.to_vec()))
                    .expect("PSK"),
                None => builder,
            }
        });
        (commit, welcome.expect("a Welcome"))
    }

    /// Starts a commit, lets `f` add to it, builds it and applies it; returns the commit and
    /// the first Welcome, if any. The one place the builder-to-bytes chain is written.
    fn commit_with(
        &mut self,
        f: impl FnOnce(CommitBuilder<'_, C>) -> CommitBuilder<'_, C>,
    ) -> (Vec<u8>, Option<Vec<u8>>) {
        let group = self.group();
        let out = f(group.commit_builder()).build().expect("commit");
        group.apply_pending_commit().expect("apply");
        (
            out.commit_message.to_bytes().expect("encode"),
            out.welcome_messages
                .first()
                .map(|w| w.to_bytes().expect("encode")),
        )
    }

    /// Commits the received proposals by reference and applies it; with none, an empty
    /// commit, which carries a path (RFC 9420 §12.4).
    pub fn commit_update(&mut self) -> Vec<u8> {
        self.commit_with(|builder| builder).0
    }

    /// Commits a Remove of `leaf` and applies it.
    pub fn remove(&mut self, leaf: u32) -> Vec<u8> {
        self.commit_with(|builder| builder.remove_member(leaf).expect("remove"))
            .0
    }

    /// Commits a ReInit (§12.1.5) to a group `group_id` in `suite` and applies it; returns
    /// the commit. The group is then closed: see [`MlsRs::start_reinit`].
    pub fn commit_reinit(&mut self, group_id: &[u8], suite: u16) -> Vec<u8> {
        self.commit_with(|builder| {
            builder
                .reinit(
                    Some(group_id.to_vec()),
                    ProtocolVersion::MLS_10,
                    CipherSuite::new(suite),
                    ExtensionList::new(),
                )
                .expect("ReInit")
        })
        .0
    }

    /// After a ReInit commit: trades the closed group for the client of the new group, with
    /// a new signature key in `suite` (same credential).
    pub fn start_reinit(&mut self, suite: u16) {
        let (identity, secret) = signing_identity(&self.name, suite);
        let group = self.group.take().expect("in the closed group");
        self.reinit = Some(
            group
                .get_reinit_client(Some(secret), Some(identity))
                .expect("ReInit client"),
        );
    }

    /// A KeyPackage for the ReInit's new group.
    pub fn reinit_key_package(&self) -> Vec<u8> {
        self.reinit
            .as_ref()
            .expect("after a ReInit")
            .generate_key_package(None)
            .expect("key package")
            .to_bytes()
            .expect("encode")
    }

    /// Creates the ReInit's new group with `key_packages`; returns the Welcome.
    pub fn create_reinit_group(&mut self, key_packages: &[Vec<u8>]) -> Vec<u8> {
        let kps = key_packages
            .iter()
            .map(|k| MlsMessage::from_bytes(k).expect("decode KeyPackage"))
            .collect();
        let (group, welcomes) = self
            .reinit
            .take()
            .expect("after a ReInit")
            .commit(kps, ExtensionList::new(), None)
            .expect("create the ReInit group");
        self.group = Some(group);
        welcomes[0].to_bytes().expect("encode")
    }

    /// Joins the ReInit's new group from its Welcome.
    pub fn join_reinit_group(&mut self, welcome: &[u8]) {
        let welcome = MlsMessage::from_bytes(welcome).expect("decode Welcome");
        let (group, _) = self
            .reinit
            .take()
            .expect("after a ReInit")
            .join(&welcome, None, None)
            .expect("mls-rs joins the ReInit group");
        self.group = Some(group);
    }

    /// Branches the group into a subgroup `group_id` with `key_packages` (§11.3); the
    /// subgroup replaces the group. Returns the Welcome.
    pub fn branch(&mut self, group_id: &[u8], key_packages: &[Vec<u8>]) -> Vec<u8> {
        let kps = key_packages
            .iter()
            .map(|k| MlsMessage::from_bytes(k).expect("decode KeyPackage"))
            .collect();
        let (group, welcomes) = self
            .group()
            .branch(group_id.to_vec(), kps, None)
            .expect("branch");
        self.group = Some(group);
        welcomes[0].to_bytes().expect("encode")
    }

    /// Joins a subgroup of the group from its Welcome; the subgroup replaces the group.
    pub fn join_branch(&mut self, welcome: &[u8]) {
        let welcome = MlsMessage::from_bytes(welcome).expect("decode Welcome");
        let (group, _) = self
            .group()
            .join_subgroup(&welcome, None, None)
            .expect("mls-rs joins the subgroup");
        self.group = Some(group);
    }

    /// Encrypts application data; returns the message.
    pub fn send(&mut self, data: &[u8]) -> Vec<u8> {
        self.group()
            .encrypt_application_message(data, vec![])
            .expect("encrypt")
            .to_bytes()
            .expect("encode")
    }

    /// Processes a message (bytes); commits are applied. Returns application data, or
    /// mls-rs's error as text.
    pub fn try_receive(&mut self, bytes: &[u8]) -> Result<Option<Vec<u8>>, String> {
        let message = MlsMessage::from_bytes(bytes).expect("decode");
        match self
            .group()
            .process_incoming_message(message)
            .map_err(|e| format!("{e:?}"))?
        {
            ReceivedMessage::ApplicationMessage(m) => Ok(Some(m.data().to_vec())),
            ReceivedMessage::Commit(c) => {
                self.removed |= matches!(c.effect, CommitEffect::Removed { .. });
                Ok(None)
            }
            _ => Ok(None),
        }
    }

    /// Processes a message (bytes), panicking if mls-rs rejects it.
    pub fn receive(&mut self, bytes: &[u8]) -> Option<Vec<u8>> {
        self.try_receive(bytes)
            .expect("mls-rs processes the message")
    }

    /// The epoch authenticator.
    pub fn epoch_authenticator(&mut self) -> Vec<u8> {
        self.group()
            .epoch_authenticator()
            .expect("epoch authenticator")
            .as_bytes()
            .to_vec()
    }

    /// `MLS-Exporter(EXPORTER_LABEL, context, 32)`.
    pub fn export(&mut self, context: &[u8]) -> Vec<u8> {
        self.group()
            .export_secret(EXPORTER_LABEL.as_bytes(), context, 32)
            .expect("export")
            .as_bytes()
            .to_vec()
    }
}

impl<C: MlsConfig> Member for MlsRs<C> {
    fn implementation(&self) -> &'static str {
        "mls-rs"
    }
    fn fresh_key_package(&mut self) -> Vec<u8> {
        self.key_package()
    }
    fn join_welcome(&mut self, welcome: &[u8]) {
        self.join(welcome);
    }
    fn commit_add(&mut self, key_package: &[u8]) -> (Vec<u8>, Vec<u8>) {
        self.add(key_package)
    }
    fn commit_remove(&mut self, leaf: u32) -> Vec<u8> {
        self.remove(leaf)
    }
    fn commit_path(&mut self) -> Vec<u8> {
        self.commit_update()
    }
    fn leaf_index(&mut self) -> u32 {
        self.group().current_member_index()
    }
    fn is_member(&mut self) -> bool {
        self.group.is_some() && !self.removed
    }
    fn send_application(&mut self, data: &[u8]) -> Vec<u8> {
        self.send(data)
    }
    fn deliver(&mut self, message: &[u8]) -> Option<Vec<u8>> {
        self.receive(message)
    }
    fn current_epoch(&mut self) -> u64 {
        self.group().current_epoch()
    }
    fn authenticator(&mut self) -> Vec<u8> {
        self.epoch_authenticator()
    }
    fn exporter(&mut self, context: &[u8]) -> Vec<u8> {
        self.export(context)
    }
    fn context_extensions(&mut self) -> Vec<u8> {
        self.group()
            .context()
            .extensions
            .mls_encode_to_vec()
            .expect("encode extensions")
    }
}

impl<C: MlsConfig> Peer for MlsRs<C> {
    fn create_group(&mut self) {
        self.group = Some(
            self.client
                .group_builder()
                .expect("group builder")
                .build()
                .expect("create group"),
        );
    }
    fn try_join(&mut self, welcome: &[u8], tree: Option<&[u8]>) -> Result<(), String> {
        let welcome = MlsMessage::from_bytes(welcome).expect("decode Welcome");
        let tree = tree.map(|t| ExportedTree::from_bytes(t).expect("decode tree"));
        let (group, _) = self
            .client
            .join_group(tree, &welcome, None)
            .map_err(|e| format!("{e:?}"))?;
        self.group = Some(group);
        self.removed = false;
        Ok(())
    }
    fn ratchet_tree(&mut self) -> Vec<u8> {
        self.group().export_tree().to_bytes().expect("encode tree")
    }
    fn group_info(&mut self) -> Vec<u8> {
        self.group()
            .group_info_message_allowing_ext_commit(true)
            .expect("group info")
            .to_bytes()
            .expect("encode")
    }
    fn join_external(&mut self, group_info: &[u8]) -> Vec<u8> {
        let info = MlsMessage::from_bytes(group_info).expect("decode GroupInfo");
        let (group, commit) = self
            .client
            .commit_external(info)
            .expect("mls-rs accepts the GroupInfo");
        self.group = Some(group);
        commit.to_bytes().expect("encode")
    }
    fn member_count(&mut self) -> usize {
        self.group().roster().members_iter().count()
    }
    fn propose_update(&mut self) -> Vec<u8> {
        self.group()
            .propose_update(vec![])
            .expect("propose update")
            .to_bytes()
            .expect("encode")
    }
    fn propose_remove(&mut self, leaf: u32) -> Vec<u8> {
        self.group()
            .propose_remove(leaf, vec![])
            .expect("propose remove")
            .to_bytes()
            .expect("encode")
    }
    fn propose_extensions(&mut self, extensions: &[u8]) -> Vec<u8> {
        let extensions = ExtensionList::mls_decode(&mut &*extensions).expect("decode");
        self.group()
            .propose_group_context_extensions(extensions, vec![])
            .expect("propose GroupContextExtensions")
            .to_bytes()
            .expect("encode")
    }
    fn propose_external_psk(&mut self, id: &[u8]) -> Vec<u8> {
        self.group()
            .propose_external_psk(ExternalPskId::new(id.to_vec()), vec![])
            .expect("propose PSK")
            .to_bytes()
            .expect("encode")
    }
    fn commit_pending(&mut self) -> Vec<u8> {
        self.commit_update()
    }
    fn commit_extensions(&mut self, extensions: &[u8]) -> Vec<u8> {
        let extensions = ExtensionList::mls_decode(&mut &*extensions).expect("decode");
        self.commit_with(|builder| {
            builder
                .set_group_context_ext(extensions)
                .expect("GroupContextExtensions")
        })
        .0
    }
    fn add_external_psk(&mut self, id: &[u8], secret: &[u8]) {
        self.psks.insert(
            ExternalPskId::new(id.to_vec()),
            PreSharedKey::new(secret.to_vec()),
        );
    }
    fn commit_external_psk(&mut self, id: &[u8]) -> Vec<u8> {
        self.commit_with(|builder| {
            builder
                .add_external_psk(ExternalPskId::new(id.to_vec()))
                .expect("PSK")
        })
        .0
    }
    fn add_with_external_psk(&mut self, key_package: &[u8], id: &[u8]) -> (Vec<u8>, Vec<u8>) {
        self.add_and_psk(key_package, Some(id))
    }
    fn commit_resumption_psk(&mut self, epoch: u64) -> Vec<u8> {
        self.commit_with(|builder| builder.add_resumption_psk(epoch).expect("PSK"))
            .0
    }
}
