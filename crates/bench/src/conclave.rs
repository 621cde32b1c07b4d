//! The harness's [`Client`] on `conclave-mls`.

use crate::client::{Client, Commit, Result};
use crate::fixture::{decode, encode, key_package_options};
use conclave_mls::crypto::{CipherSuite, RustCrypto};
use conclave_mls::group::{ExternalJoinRequest, Group, GroupConfig, JoinRequest, Received};
use conclave_mls::identity::{BasicCredentialsOnly, Identity};
use conclave_mls::key_package::{KeyPackageSecrets, create_key_package};
use conclave_mls::messages::{Credential, KeyPackage, MlsMessage, MlsMessageBody, ProtocolVersion};
use conclave_mls::internal::tree::LeafIndex;
use std::collections::HashMap;
use std::sync::Arc;

/// A Conclave client with a basic credential.
pub struct Conclave {
    provider: RustCrypto,
    identity: Identity,
    pending: Option<(KeyPackage, KeyPackageSecrets)>,
    group: Option<Group>,
}

impl Conclave {
    /// A client named `name` in `suite`.
    pub fn new(name: &str, suite: u16) -> Result<Self> {
        let provider = RustCrypto::default();
        let identity = Identity::generate(
            &provider,
            CipherSuite(suite),
            Credential::Basic {
                identity: name.as_bytes().to_vec().into(),
            },
        )?;
        Ok(Self {
            provider,
            identity,
            pending: None,
            group: None,
        })
    }

    fn group(&mut self) -> Result<&mut Group> {
        self.group.as_mut().ok_or_else(|| "not in a group".into())
    }

    fn merge_own(&mut self, commit: &MlsMessage) -> Result<Vec<u8>> {
        self.group()?.merge_pending_commit()?;
        encode(commit)
    }
}

impl Client for Conclave {
    fn key_package(&mut self) -> Result<Vec<u8>> {
        let (kp, secrets) =
            create_key_package(&self.provider, &self.identity, key_package_options())?;
        let bytes = encode(&MlsMessage {
            version: ProtocolVersion::MLS10,
            body: MlsMessageBody::KeyPackage(kp.clone()),
        })?;
        self.pending = Some((kp, secrets));
        Ok(bytes)
    }

    fn create_group(&mut self, group_id: &[u8]) -> Result<()> {
        self.group = Some(Group::create(
            &self.provider,
            &self.identity,
            group_id.to_vec(),
            vec![],
            GroupConfig::default(),
            Arc::new(BasicCredentialsOnly),
        )?);
        Ok(())
    }

    fn add(&mut self, key_packages: &[Vec<u8>]) -> Result<Commit> {
        let mut builder = self.group.as_mut().ok_or("not in a group")?.commit();
        for bytes in key_packages {
            let MlsMessageBody::KeyPackage(kp) = decode(bytes)?.body else {
                return Err("not a KeyPackage".into());
            };
            builder = builder.add_member(kp);
        }
        let out = builder.build(&self.provider)?;
        let welcome = out.welcome.as_ref().map(encode).transpose()?;
        Ok(Commit {
            commit: self.merge_own(&out.commit)?,
            welcome,
        })
    }

    fn join(&mut self, welcome: &[u8]) -> Result<()> {
        let MlsMessageBody::Welcome(welcome) = decode(welcome)?.body else {
            return Err("not a Welcome".into());
        };
        let (kp, secrets) = self.pending.as_ref().ok_or("no KeyPackage made")?;
        self.group = Some(Group::join(
            &self.provider,
            JoinRequest {
                identity: &self.identity,
                key_package: kp,
                secrets,
                welcome: &welcome,
                ratchet_tree: None,
                external_psks: HashMap::new(),
                resumption_psks: HashMap::new(),
                config: GroupConfig::default(),
                validator: Arc::new(BasicCredentialsOnly),
            },
        )?);
        Ok(())
    }

    fn join_external(&mut self, group_info: &[u8]) -> Result<Vec<u8>> {
        let MlsMessageBody::GroupInfo(info) = decode(group_info)?.body else {
            return Err("not a GroupInfo".into());
        };
        let (group, commit) = Group::join_external(
            &self.provider,
            ExternalJoinRequest {
                identity: &self.identity,
                group_info: &info,
                ratchet_tree: None,
                resync: None,
                authenticated_data: vec![],
                config: GroupConfig::default(),
                validator: Arc::new(BasicCredentialsOnly),
            },
        )?;
        self.group = Some(group);
        encode(&commit)
    }

    fn commit_update(&mut self) -> Result<Vec<u8>> {
        let group = self.group.as_mut().ok_or("not in a group")?;
        let out = group.commit().force_path().build(&self.provider)?;
        self.merge_own(&out.commit)
    }

    fn remove(&mut self, leaf: u32) -> Result<Vec<u8>> {
        let group = self.group.as_mut().ok_or("not in a group")?;
        let out = group
            .commit()
            .remove_member(LeafIndex(leaf))
            .build(&self.provider)?;
        self.merge_own(&out.commit)
    }

    fn process_commit(&mut self, message: &[u8]) -> Result<()> {
        let message = decode(message)?;
        let group = self.group.as_mut().ok_or("not in a group")?;
        match group.process(&self.provider, &message)? {
            Received::Commit(staged) => Ok(group.merge(*staged)?),
            _ => Err("expected a commit".into()),
        }
    }

    fn encrypt(&mut self, data: &[u8]) -> Result<Vec<u8>> {
        let message = self
            .group
            .as_mut()
            .ok_or("not in a group")?
            .encrypt_application(&self.provider, data, b"")?;
        encode(&message)
    }

    fn decrypt(&mut self, message: &[u8]) -> Result<Vec<u8>> {
        let message = decode(message)?;
        let group = self.group.as_mut().ok_or("not in a group")?;
        match group.process(&self.provider, &message)? {
            Received::Application { data, .. } => Ok(data),
            _ => Err("expected application data".into()),
        }
    }

    fn own_leaf(&self) -> u32 {
        self.group.as_ref().map_or(0, |g| g.own_leaf().0)
    }

    fn epoch_authenticator(&self) -> Vec<u8> {
        self.group
            .as_ref()
            .map(|g| g.epoch_authenticator().to_vec())
            .unwrap_or_default()
    }
}
