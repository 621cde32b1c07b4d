//! The OpenMLS 0.9 side of the scenarios (`openmls_rust_crypto`, basic credentials).

use crate::{CUSTOM_EXTENSION, EXPORTER_LABEL, Member, Peer, PeerOptions};
use openmls::prelude::tls_codec::Deserialize as _;
use openmls::prelude::*;
use openmls::schedule::psk::{ExternalPsk, PreSharedKeyId, Psk, ResumptionPsk, ResumptionPskUsage};
use openmls_basic_credential::SignatureKeyPair;
use openmls_rust_crypto::OpenMlsRustCrypto;

/// How many past epochs' resumption PSKs OpenMLS keeps (§8.6); its default keeps none.
const RESUMPTION_PSKS: usize = 8;

/// An OpenMLS client: provider, signer, credential, at most one group. By default handshake
/// messages go out as PublicMessages (Conclave's default), both wire formats are accepted and
/// the ratchet tree travels in the Welcome's GroupInfo.
pub struct OpenMls {
    /// The cipher suite.
    pub cs: Ciphersuite,
    /// The wire-format policy of the groups it creates or joins.
    pub policy: WireFormatPolicy,
    /// Whether its Welcomes and GroupInfos carry the ratchet_tree extension (§12.4.3.3).
    pub ratchet_tree_extension: bool,
    /// Capabilities of the leaves it makes (OpenMLS's defaults if `None`).
    pub capabilities: Option<Capabilities>,
    /// The OpenMLS provider (crypto, randomness, storage).
    pub provider: OpenMlsRustCrypto,
    /// The signature key pair.
    pub signer: SignatureKeyPair,
    /// The credential with its signature key.
    pub credential: CredentialWithKey,
    /// The group, once created or joined.
    pub group: Option<MlsGroup>,
}

/// Decodes an `MLSMessage` body (panics on failure: tests only).
fn body(bytes: &[u8]) -> MlsMessageBodyIn {
    MlsMessageIn::tls_deserialize_exact(bytes)
        .expect("OpenMLS decodes the MLSMessage")
        .extract()
}

/// A commit as OpenMLS's commit methods return it: (commit, Welcome, GroupInfo).
type CommitOut = (
    MlsMessageOut,
    Option<MlsMessageOut>,
    Option<openmls::messages::group_info::GroupInfo>,
);

fn serialize(value: &impl openmls::prelude::tls_codec::Serialize) -> Vec<u8> {
    value.tls_serialize_detached().expect("OpenMLS serializes")
}

impl OpenMls {
    /// A client with a basic credential `name` in cipher suite `suite`.
    pub fn new(name: &str, suite: u16) -> Self {
        let cs = Ciphersuite::try_from(suite).expect("OpenMLS supports the suite");
        let provider = OpenMlsRustCrypto::default();
        let signer = SignatureKeyPair::new(cs.signature_algorithm()).expect("signature key");
        signer.store(provider.storage()).expect("store signer");
        let credential = CredentialWithKey {
            credential: BasicCredential::new(name.as_bytes().to_vec()).into(),
            signature_key: signer.to_public_vec().into(),
        };
        Self {
            cs,
            policy: MIXED_PLAINTEXT_WIRE_FORMAT_POLICY,
            ratchet_tree_extension: true,
            capabilities: None,
            provider,
            signer,
            credential,
            group: None,
        }
    }

    /// A client like [`OpenMls::new`], set up by `options`: a private handshake takes the
    /// pure-ciphertext wire-format policy (which also refuses PublicMessages); a
    /// [`crate::scenarios::NewPeer`].
    pub fn with_options(name: &str, suite: u16, options: PeerOptions) -> Self {
        let mut client = Self::new(name, suite);
        if options.private_handshake {
            client.policy = PURE_CIPHERTEXT_WIRE_FORMAT_POLICY;
        }
        client.ratchet_tree_extension = !options.out_of_band_tree;
        if options.custom_extension {
            client.capabilities = Some(Capabilities::new(
                None,
                None,
                Some(&[ExtensionType::Unknown(CUSTOM_EXTENSION)]),
                None,
                None,
            ));
        }
        client
    }

    /// The group (panics if none).
    pub fn group(&mut self) -> &mut MlsGroup {
        self.group.as_mut().expect("in a group")
    }

    fn join_config(&self) -> MlsGroupJoinConfig {
        MlsGroupJoinConfig::builder()
            .use_ratchet_tree_extension(self.ratchet_tree_extension)
            .wire_format_policy(self.policy)
            .number_of_resumption_psks(RESUMPTION_PSKS)
            .build()
    }

    /// A fresh KeyPackage as `MLSMessage` bytes.
    pub fn key_package(&self) -> Vec<u8> {
        let mut builder = KeyPackage::builder();
        if let Some(capabilities) = &self.capabilities {
            builder = builder.leaf_node_capabilities(capabilities.clone());
        }
        let bundle = builder
            .build(
                self.cs,
                &self.provider,
                &self.signer,
                self.credential.clone(),
            )
            .expect("key package");
        serialize(&MlsMessageOut::from(bundle.key_package().clone()))
    }

    /// Joins from a Welcome (bytes), the ratchet tree in its GroupInfo.
    pub fn join(&mut self, welcome: &[u8]) {
        self.try_join(welcome, None)
            .expect("OpenMLS accepts the Welcome");
    }

    /// Commits an Add of a KeyPackage (bytes) and merges; returns (commit, welcome).
    pub fn add(&mut self, key_package: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let kp = self.validated_key_package(key_package);
        let (commit, welcome) = self.commit_merged(|group, provider, signer| {
            let (commit, welcome, _) = group
                .add_members(provider, signer, &[kp])
                .expect("add member");
            (commit, Some(welcome), None)
        });
        (commit, welcome.expect("a Welcome"))
    }

    /// Lets `f` create a commit in the group (with the provider and signer), merges the
    /// pending commit; returns the commit and the Welcome, if any, serialized. The one place
    /// the commit-merge-serialize chain is written.
    fn commit_merged(
        &mut self,
        f: impl FnOnce(&mut MlsGroup, &OpenMlsRustCrypto, &SignatureKeyPair) -> CommitOut,
    ) -> (Vec<u8>, Option<Vec<u8>>) {
        let (provider, signer) = (&self.provider, &self.signer);
        let group = self.group.as_mut().expect("in a group");
        let (commit, welcome, _) = f(group, provider, signer);
        group.merge_pending_commit(provider).expect("merge");
        (serialize(&commit), welcome.as_ref().map(serialize))
    }

    fn validated_key_package(&self, key_package: &[u8]) -> KeyPackage {
        let MlsMessageBodyIn::KeyPackage(kp) = body(key_package) else {
            panic!("not a KeyPackage")
        };
        kp.validate(self.provider.crypto(), ProtocolVersion::Mls10)
            .expect("OpenMLS accepts the KeyPackage")
    }

    /// Commits the stored proposals, the Adds of `key_packages` and `proposals` by value
    /// (with the PSKs they name loaded from storage) and merges; returns (commit, Welcome).
    pub fn commit_with(
        &mut self,
        key_packages: &[Vec<u8>],
        proposals: Vec<Proposal>,
    ) -> (Vec<u8>, Option<Vec<u8>>) {
        let kps: Vec<KeyPackage> = key_packages
            .iter()
            .map(|k| self.validated_key_package(k))
            .collect();
        self.commit_merged(|group, provider, signer| {
            let (commit, welcome, _) = group
                .commit_builder()
                .propose_adds(kps)
                .add_proposals(proposals)
                .load_psks(provider.storage())
                .expect("load PSKs")
                .build(provider.rand(), provider.crypto(), signer, |_| true)
                .expect("build commit")
                .stage_commit(provider)
                .expect("stage commit")
                .into_contents();
            let welcome = welcome.map(|w| MlsMessageOut::from_welcome(w, ProtocolVersion::Mls10));
            (commit, welcome, None)
        })
    }

    /// A PreSharedKeyID for `psk` with a fresh nonce of length Nh (§8.4).
    fn psk_id(&self, psk: Psk) -> PreSharedKeyId {
        PreSharedKeyId::new(self.cs, self.provider.rand(), psk).expect("PSK id")
    }

    /// Commits a PreSharedKey proposal for `psk` by value and merges; returns the commit.
    fn commit_psk(&mut self, psk: PreSharedKeyId) -> Vec<u8> {
        let proposal = Proposal::PreSharedKey(Box::new(PreSharedKeyProposal::new(psk)));
        self.commit_with(&[], vec![proposal]).0
    }

    /// Commits with a path (a self-update) and merges; returns the commit.
    pub fn commit_update(&mut self) -> Vec<u8> {
        self.commit_merged(|group, provider, signer| {
            let (commit, _, _) = group
                .self_update(provider, signer, LeafNodeParameters::default())
                .expect("self update")
                .into_contents();
            (commit, None, None)
        })
        .0
    }

    /// Commits a Remove of `leaf` and merges it.
    pub fn remove(&mut self, leaf: u32) -> Vec<u8> {
        self.commit_merged(|group, provider, signer| {
            group
                .remove_members(provider, signer, &[LeafNodeIndex::new(leaf)])
                .expect("remove member")
        })
        .0
    }

    /// Our leaf index.
    pub fn own_leaf(&mut self) -> u32 {
        self.group().own_leaf_index().u32()
    }

    /// Encrypts application data; returns the message.
    pub fn send(&mut self, data: &[u8]) -> Vec<u8> {
        let (provider, signer) = (&self.provider, &self.signer);
        let group = self.group.as_mut().expect("in a group");
        serialize(
            &group
                .create_message(provider, signer, data)
                .expect("encrypt"),
        )
    }

    /// Processes a message (bytes); merges commits, stores proposals. Returns application
    /// data, or OpenMLS's error as text.
    pub fn try_receive(&mut self, bytes: &[u8]) -> Result<Option<Vec<u8>>, String> {
        let message = MlsMessageIn::tls_deserialize_exact(bytes)
            .expect("decode")
            .try_into_protocol_message()
            .expect("a protocol message");
        let provider = &self.provider;
        let group = self.group.as_mut().expect("in a group");
        let processed = group
            .process_message(provider, message)
            .map_err(|e| format!("{e:?}"))?;
        Ok(match processed.into_content() {
            ProcessedMessageContent::ApplicationMessage(m) => Some(m.into_bytes()),
            ProcessedMessageContent::StagedCommitMessage(c) => {
                group.merge_staged_commit(provider, *c).expect("merge");
                None
            }
            ProcessedMessageContent::ProposalMessage(p) => {
                group
                    .store_pending_proposal(provider.storage(), *p)
                    .expect("store proposal");
                None
            }
            other => panic!("unexpected {other:?}"),
        })
    }

    /// Processes a message (bytes), panicking if OpenMLS rejects it.
    pub fn receive(&mut self, bytes: &[u8]) -> Option<Vec<u8>> {
        self.try_receive(bytes)
            .expect("OpenMLS processes the message")
    }

    /// The epoch authenticator.
    pub fn epoch_authenticator(&mut self) -> Vec<u8> {
        self.group().epoch_authenticator().as_slice().to_vec()
    }

    /// `MLS-Exporter(EXPORTER_LABEL, context, 32)`.
    pub fn export(&mut self, context: &[u8]) -> Vec<u8> {
        let provider = &self.provider;
        self.group
            .as_ref()
            .expect("in a group")
            .export_secret(provider.crypto(), EXPORTER_LABEL, context, 32)
            .expect("export")
    }
}

impl Member for OpenMls {
    fn implementation(&self) -> &'static str {
        "OpenMLS"
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
        self.own_leaf()
    }
    fn is_member(&mut self) -> bool {
        self.group.as_ref().is_some_and(MlsGroup::is_active)
    }
    fn send_application(&mut self, data: &[u8]) -> Vec<u8> {
        self.send(data)
    }
    fn deliver(&mut self, message: &[u8]) -> Option<Vec<u8>> {
        self.receive(message)
    }
    fn current_epoch(&mut self) -> u64 {
        self.group().epoch().as_u64()
    }
    fn authenticator(&mut self) -> Vec<u8> {
        self.epoch_authenticator()
    }
    fn exporter(&mut self, context: &[u8]) -> Vec<u8> {
        self.export(context)
    }
    fn context_extensions(&mut self) -> Vec<u8> {
        serialize(self.group().extensions())
    }
}

impl Peer for OpenMls {
    fn create_group(&mut self) {
        let mut builder = MlsGroup::builder()
            .ciphersuite(self.cs)
            .use_ratchet_tree_extension(self.ratchet_tree_extension)
            .with_wire_format_policy(self.policy)
            .number_of_resumption_psks(RESUMPTION_PSKS);
        if let Some(capabilities) = &self.capabilities {
            builder = builder.with_capabilities(capabilities.clone());
        }
        let group = builder
            .build(&self.provider, &self.signer, self.credential.clone())
            .expect("create group");
        self.group = Some(group);
    }
    fn try_join(&mut self, welcome: &[u8], tree: Option<&[u8]>) -> Result<(), String> {
        let MlsMessageBodyIn::Welcome(welcome) = body(welcome) else {
            panic!("not a Welcome")
        };
        let tree = tree.map(|t| RatchetTreeIn::tls_deserialize_exact(t).expect("decode tree"));
        let staged =
            StagedWelcome::new_from_welcome(&self.provider, &self.join_config(), welcome, tree)
                .map_err(|e| format!("{e:?}"))?;
        self.group = Some(
            staged
                .into_group(&self.provider)
                .map_err(|e| format!("{e:?}"))?,
        );
        Ok(())
    }
    fn ratchet_tree(&mut self) -> Vec<u8> {
        serialize(&self.group().export_ratchet_tree())
    }
    fn group_info(&mut self) -> Vec<u8> {
        let (provider, signer) = (&self.provider, &self.signer);
        serialize(
            &self
                .group
                .as_ref()
                .expect("in a group")
                .export_group_info(provider.crypto(), signer, true)
                .expect("group info"),
        )
    }
    fn join_external(&mut self, group_info: &[u8]) -> Vec<u8> {
        let MlsMessageBodyIn::GroupInfo(info) = body(group_info) else {
            panic!("not a GroupInfo")
        };
        let (group, bundle) = MlsGroup::external_commit_builder()
            .with_config(self.join_config())
            .build_group(&self.provider, info, self.credential.clone())
            .expect("OpenMLS accepts the GroupInfo")
            .load_psks(self.provider.storage())
            .expect("load PSKs")
            .build(
                self.provider.rand(),
                self.provider.crypto(),
                &self.signer,
                |_| true,
            )
            .expect("external commit")
            .finalize(&self.provider)
            .expect("finalize");
        self.group = Some(group);
        serialize(&bundle.into_contents().0)
    }
    fn member_count(&mut self) -> usize {
        self.group().members().count()
    }
    fn propose_update(&mut self) -> Vec<u8> {
        let (provider, signer) = (&self.provider, &self.signer);
        let group = self.group.as_mut().expect("in a group");
        let (proposal, _) = group
            .propose_self_update(provider, signer, LeafNodeParameters::default())
            .expect("propose update");
        serialize(&proposal)
    }
    fn propose_remove(&mut self, leaf: u32) -> Vec<u8> {
        let (provider, signer) = (&self.provider, &self.signer);
        let group = self.group.as_mut().expect("in a group");
        let (proposal, _) = group
            .propose_remove_member(provider, signer, LeafNodeIndex::new(leaf))
            .expect("propose remove");
        serialize(&proposal)
    }
    fn propose_extensions(&mut self, extensions: &[u8]) -> Vec<u8> {
        let extensions = Extensions::<GroupContext>::tls_deserialize_exact(extensions)
            .expect("OpenMLS decodes the extensions");
        let (provider, signer) = (&self.provider, &self.signer);
        let group = self.group.as_mut().expect("in a group");
        let (proposal, _) = group
            .propose_group_context_extensions(provider, extensions, signer)
            .expect("propose GroupContextExtensions");
        serialize(&proposal)
    }
    fn propose_external_psk(&mut self, id: &[u8]) -> Vec<u8> {
        let psk = self.psk_id(Psk::External(ExternalPsk::new(id.to_vec())));
        let (provider, signer) = (&self.provider, &self.signer);
        let group = self.group.as_mut().expect("in a group");
        let (proposal, _) = group
            .propose_pre_shared_key(provider, signer, psk)
            .expect("propose PSK");
        serialize(&proposal)
    }
    fn commit_pending(&mut self) -> Vec<u8> {
        self.commit_merged(|group, provider, signer| {
            group
                .commit_to_pending_proposals(provider, signer)
                .expect("commit pending proposals")
        })
        .0
    }
    fn commit_extensions(&mut self, extensions: &[u8]) -> Vec<u8> {
        let extensions = Extensions::<GroupContext>::tls_deserialize_exact(extensions)
            .expect("OpenMLS decodes the extensions");
        self.commit_merged(|group, provider, signer| {
            group
                .update_group_context_extensions(provider, extensions, signer)
                .expect("commit GroupContextExtensions")
        })
        .0
    }
    fn add_external_psk(&mut self, id: &[u8], secret: &[u8]) {
        PreSharedKeyId::external(id.to_vec(), vec![])
            .store(&self.provider, secret)
            .expect("store PSK");
    }
    fn commit_external_psk(&mut self, id: &[u8]) -> Vec<u8> {
        let psk = self.psk_id(Psk::External(ExternalPsk::new(id.to_vec())));
        self.commit_psk(psk)
    }
    fn add_with_external_psk(&mut self, key_package: &[u8], id: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let psk = self.psk_id(Psk::External(ExternalPsk::new(id.to_vec())));
        let psk = Proposal::PreSharedKey(Box::new(PreSharedKeyProposal::new(psk)));
        let (commit, welcome) = self.commit_with(&[key_package.to_vec()], vec![psk]);
        (commit, welcome.expect("a Welcome"))
    }
    fn commit_resumption_psk(&mut self, epoch: u64) -> Vec<u8> {
        let group_id = self.group().group_id().clone();
        let psk = self.psk_id(Psk::Resumption(ResumptionPsk::new(
            ResumptionPskUsage::Application,
            group_id,
            GroupEpoch::from(epoch),
        )));
        self.commit_psk(psk)
    }
}
