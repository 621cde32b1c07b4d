//! The harness's [`Client`] on `conclave-mls`.

use crate::client::{Client, Commit, Result};
use crate::fixture::{decode, encode, key_package_options};
use conclave_mls::identity::BasicCredentialsOnly;
use conclave_mls::messages::Credential;
use conclave_mls::{
    CipherSuite, Group, Identity, KeyPackageBundle, LeafIndex, MlsMessage, Received, RustCrypto,
};
use std::sync::Arc;

/// A Conclave client with a basic credential.
pub struct Conclave {
    provider: RustCrypto,
    identity: Identity,
    pending: Option<KeyPackageBundle>,
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
        let bundle =
            KeyPackageBundle::generate(&self.provider, &self.identity, key_package_options())?;
        let bytes = encode(&bundle.message())?;
        self.pending = Some(bundle);
        Ok(bytes)
    }

    fn create_group(&mut self, group_id: &[u8]) -> Result<()> {
        self.group = Some(
            Group::builder(&self.identity, Arc::new(BasicCredentialsOnly))
                .group_id(group_id.to_vec())
                .build(&self.provider)?,
        );
        Ok(())
    }

    fn add(&mut self, key_packages: &[Vec<u8>]) -> Result<Commit> {
        let mut builder = self.group.as_mut().ok_or("not in a group")?.commit();
        for bytes in key_packages {
            builder = builder.add_member(decode(bytes)?.into_key_package()?);
        }
        let out = builder.build(&self.provider)?;
        let welcome = out.welcome.as_ref().map(encode).transpose()?;
        Ok(Commit {
            commit: self.merge_own(&out.commit)?,
            welcome,
        })
    }

    fn join(&mut self, welcome: &[u8]) -> Result<()> {
        let bundle = self.pending.as_ref().ok_or("no KeyPackage made")?;
        self.group = Some(
            Group::join(
                decode(welcome)?,
                &self.identity,
                bundle,
                Arc::new(BasicCredentialsOnly),
            )
            .join(&self.provider)?,
        );
        Ok(())
    }

    fn join_external(&mut self, group_info: &[u8]) -> Result<Vec<u8>> {
        let (group, commit) = Group::join_external(
            decode(group_info)?,
            &self.identity,
            Arc::new(BasicCredentialsOnly),
        )
        .build(&self.provider)?;
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
