//! The harness's [`Client`] on OpenMLS 0.9 (`openmls_rust_crypto`, basic credentials).

use crate::client::{Client, Commit, Result, dbg_err};
use openmls::prelude::tls_codec::{Deserialize as _, Serialize as _};
use openmls::prelude::*;
use openmls_basic_credential::SignatureKeyPair;
use openmls_rust_crypto::OpenMlsRustCrypto;

/// An OpenMLS client. Handshake messages go out as PublicMessages, as Conclave's and
/// mls-rs's do by default; Welcomes and GroupInfos carry the ratchet tree.
pub struct OpenMls {
    suite: Ciphersuite,
    provider: OpenMlsRustCrypto,
    signer: SignatureKeyPair,
    credential: CredentialWithKey,
    group: Option<MlsGroup>,
}

fn read(bytes: &[u8]) -> Result<MlsMessageBodyIn> {
    Ok(MlsMessageIn::tls_deserialize_exact(bytes)
        .map_err(dbg_err)?
        .extract())
}

fn join_config() -> MlsGroupJoinConfig {
    MlsGroupJoinConfig::builder()
        .use_ratchet_tree_extension(true)
        .wire_format_policy(MIXED_PLAINTEXT_WIRE_FORMAT_POLICY)
        .build()
}

impl OpenMls {
    /// A client named `name` in `suite`.
    pub fn new(name: &str, suite: u16) -> Result<Self> {
        let suite = Ciphersuite::try_from(suite).map_err(dbg_err)?;
        let provider = OpenMlsRustCrypto::default();
        let signer = SignatureKeyPair::new(suite.signature_algorithm()).map_err(dbg_err)?;
        signer.store(provider.storage()).map_err(dbg_err)?;
        let credential = CredentialWithKey {
            credential: BasicCredential::new(name.as_bytes().to_vec()).into(),
            signature_key: signer.to_public_vec().into(),
        };
        Ok(Self {
            suite,
            provider,
            signer,
            credential,
            group: None,
        })
    }
}

impl Client for OpenMls {
    fn key_package(&mut self) -> Result<Vec<u8>> {
        let bundle = KeyPackage::builder()
            .build(
                self.suite,
                &self.provider,
                &self.signer,
                self.credential.clone(),
            )
            .map_err(dbg_err)?;
        MlsMessageOut::from(bundle.key_package().clone())
            .tls_serialize_detached()
            .map_err(dbg_err)
    }

    fn create_group(&mut self, _group_id: &[u8]) -> Result<()> {
        let group = MlsGroup::builder()
            .ciphersuite(self.suite)
            .use_ratchet_tree_extension(true)
            .with_wire_format_policy(MIXED_PLAINTEXT_WIRE_FORMAT_POLICY)
            .build(&self.provider, &self.signer, self.credential.clone())
            .map_err(dbg_err)?;
        self.group = Some(group);
        Ok(())
    }

    fn add(&mut self, key_packages: &[Vec<u8>]) -> Result<Commit> {
        let mut valid = Vec::with_capacity(key_packages.len());
        for bytes in key_packages {
            let MlsMessageBodyIn::KeyPackage(kp) = read(bytes)? else {
                return Err("not a KeyPackage".into());
            };
            valid.push(
                kp.validate(self.provider.crypto(), ProtocolVersion::Mls10)
                    .map_err(dbg_err)?,
            );
        }
        let (provider, signer) = (&self.provider, &self.signer);
        let group = self.group.as_mut().ok_or("not in a group")?;
        let (commit, welcome, _) = group
            .add_members(provider, signer, &valid)
            .map_err(dbg_err)?;
        group.merge_pending_commit(provider).map_err(dbg_err)?;
        Ok(Commit {
            commit: commit.tls_serialize_detached().map_err(dbg_err)?,
            welcome: Some(welcome.tls_serialize_detached().map_err(dbg_err)?),
        })
    }

    fn join(&mut self, welcome: &[u8]) -> Result<()> {
        let MlsMessageBodyIn::Welcome(welcome) = read(welcome)? else {
            return Err("not a Welcome".into());
        };
        let staged = StagedWelcome::new_from_welcome(&self.provider, &join_config(), welcome, None)
            .map_err(dbg_err)?;
        self.group = Some(staged.into_group(&self.provider).map_err(dbg_err)?);
        Ok(())
    }

    fn join_external(&mut self, group_info: &[u8]) -> Result<Vec<u8>> {
        let MlsMessageBodyIn::GroupInfo(info) = read(group_info)? else {
            return Err("not a GroupInfo".into());
        };
        let (group, bundle) = MlsGroup::external_commit_builder()
            .with_config(join_config())
            .build_group(&self.provider, info, self.credential.clone())
            .map_err(dbg_err)?
            .load_psks(self.provider.storage())
            .map_err(dbg_err)?
            .build(
                self.provider.rand(),
                self.provider.crypto(),
                &self.signer,
                |_| true,
            )
            .map_err(dbg_err)?
            .finalize(&self.provider)
            .map_err(dbg_err)?;
        self.group = Some(group);
        bundle
            .into_contents()
            .0
            .tls_serialize_detached()
            .map_err(dbg_err)
    }

    fn commit_update(&mut self) -> Result<Vec<u8>> {
        let (provider, signer) = (&self.provider, &self.signer);
        let group = self.group.as_mut().ok_or("not in a group")?;
        let (commit, _, _) = group
            .self_update(provider, signer, LeafNodeParameters::default())
            .map_err(dbg_err)?
            .into_contents();
        group.merge_pending_commit(provider).map_err(dbg_err)?;
        commit.tls_serialize_detached().map_err(dbg_err)
    }

    fn remove(&mut self, leaf: u32) -> Result<Vec<u8>> {
        let (provider, signer) = (&self.provider, &self.signer);
        let group = self.group.as_mut().ok_or("not in a group")?;
        let (commit, _, _) = group
            .remove_members(provider, signer, &[LeafNodeIndex::new(leaf)])
            .map_err(dbg_err)?;
        group.merge_pending_commit(provider).map_err(dbg_err)?;
        commit.tls_serialize_detached().map_err(dbg_err)
    }

    fn process_commit(&mut self, message: &[u8]) -> Result<()> {
        let message = MlsMessageIn::tls_deserialize_exact(message)
            .map_err(dbg_err)?
            .try_into_protocol_message()
            .map_err(dbg_err)?;
        let provider = &self.provider;
        let group = self.group.as_mut().ok_or("not in a group")?;
        let processed = group.process_message(provider, message).map_err(dbg_err)?;
        match processed.into_content() {
            ProcessedMessageContent::StagedCommitMessage(staged) => group
                .merge_staged_commit(provider, *staged)
                .map_err(dbg_err),
            _ => Err("expected a commit".into()),
        }
    }

    fn encrypt(&mut self, data: &[u8]) -> Result<Vec<u8>> {
        let (provider, signer) = (&self.provider, &self.signer);
        let group = self.group.as_mut().ok_or("not in a group")?;
        group
            .create_message(provider, signer, data)
            .map_err(dbg_err)?
            .tls_serialize_detached()
            .map_err(dbg_err)
    }

    fn decrypt(&mut self, message: &[u8]) -> Result<Vec<u8>> {
        let message = MlsMessageIn::tls_deserialize_exact(message)
            .map_err(dbg_err)?
            .try_into_protocol_message()
            .map_err(dbg_err)?;
        let provider = &self.provider;
        let group = self.group.as_mut().ok_or("not in a group")?;
        match group
            .process_message(provider, message)
            .map_err(dbg_err)?
            .into_content()
        {
            ProcessedMessageContent::ApplicationMessage(m) => Ok(m.into_bytes()),
            _ => Err("expected application data".into()),
        }
    }

    fn own_leaf(&self) -> u32 {
        self.group.as_ref().map_or(0, |g| g.own_leaf_index().u32())
    }

    fn epoch_authenticator(&self) -> Vec<u8> {
        self.group
            .as_ref()
            .map(|g| g.epoch_authenticator().as_slice().to_vec())
            .unwrap_or_default()
    }
}
