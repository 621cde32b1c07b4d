//! The harness's [`Client`] on mls-rs 0.57 (`mls-rs-crypto-rustcrypto`, basic credentials).

use crate::client::{Client, Commit, Result, dbg_err};
use mls_rs::client_builder::MlsConfig;
use mls_rs::group::ReceivedMessage;
use mls_rs::identity::SigningIdentity;
use mls_rs::identity::basic::{BasicCredential, BasicIdentityProvider};
use mls_rs::mls_rules::DefaultMlsRules;
use mls_rs::{CipherSuite, CipherSuiteProvider, CryptoProvider, Group, MlsMessage};
use mls_rs_crypto_rustcrypto::RustCryptoProvider;

/// An mls-rs client with its default rules: handshake messages as PublicMessages, the
/// ratchet tree in Welcomes.
struct MlsRs<C: MlsConfig> {
    client: mls_rs::Client<C>,
    group: Option<Group<C>>,
}

/// A client named `name` in `suite`.
pub fn new(name: &str, suite: u16) -> Result<Box<dyn Client>> {
    let cs = CipherSuite::new(suite);
    let provider = RustCryptoProvider::default();
    let suite_provider = provider
        .cipher_suite_provider(cs)
        .ok_or("mls-rs's RustCrypto provider lacks this cipher suite")?;
    let (secret, public) = suite_provider.signature_key_generate().map_err(dbg_err)?;
    let credential = BasicCredential::new(name.as_bytes().to_vec()).into_credential();
    let client = mls_rs::Client::builder()
        .identity_provider(BasicIdentityProvider)
        .mls_rules(DefaultMlsRules::new())
        .crypto_provider(provider)
        .signing_identity(SigningIdentity::new(credential, public), secret, cs)
        .build();
    Ok(Box::new(MlsRs {
        client,
        group: None,
    }))
}

impl<C: MlsConfig> MlsRs<C> {
    fn group(&mut self) -> Result<&mut Group<C>> {
        self.group.as_mut().ok_or_else(|| "not in a group".into())
    }
}

fn read(bytes: &[u8]) -> Result<MlsMessage> {
    MlsMessage::from_bytes(bytes).map_err(dbg_err)
}

impl<C: MlsConfig> Client for MlsRs<C> {
    fn key_package(&mut self) -> Result<Vec<u8>> {
        self.client
            .generate_key_package_message(Default::default(), Default::default(), None)
            .map_err(dbg_err)?
            .to_bytes()
            .map_err(dbg_err)
    }

    fn create_group(&mut self, _group_id: &[u8]) -> Result<()> {
        let group = self
            .client
            .group_builder()
            .map_err(dbg_err)?
            .build()
            .map_err(dbg_err)?;
        self.group = Some(group);
        Ok(())
    }

    fn add(&mut self, key_packages: &[Vec<u8>]) -> Result<Commit> {
        let group = self.group()?;
        let mut builder = group.commit_builder();
        for bytes in key_packages {
            builder = builder.add_member(read(bytes)?).map_err(dbg_err)?;
        }
        let out = builder.build().map_err(dbg_err)?;
        group.apply_pending_commit().map_err(dbg_err)?;
        let welcome = match out.welcome_messages.first() {
            Some(w) => Some(w.to_bytes().map_err(dbg_err)?),
            None => None,
        };
        Ok(Commit {
            commit: out.commit_message.to_bytes().map_err(dbg_err)?,
            welcome,
        })
    }

    fn join(&mut self, welcome: &[u8]) -> Result<()> {
        let (group, _) = self
            .client
            .join_group(None, &read(welcome)?, None)
            .map_err(dbg_err)?;
        self.group = Some(group);
        Ok(())
    }

    fn join_external(&mut self, group_info: &[u8]) -> Result<Vec<u8>> {
        let (group, commit) = self
            .client
            .commit_external(read(group_info)?)
            .map_err(dbg_err)?;
        self.group = Some(group);
        commit.to_bytes().map_err(dbg_err)
    }

    fn commit_update(&mut self) -> Result<Vec<u8>> {
        let group = self.group()?;
        // An empty commit carries a path (RFC 9420 §12.4).
        let out = group.commit(vec![]).map_err(dbg_err)?;
        group.apply_pending_commit().map_err(dbg_err)?;
        out.commit_message.to_bytes().map_err(dbg_err)
    }

    fn remove(&mut self, leaf: u32) -> Result<Vec<u8>> {
        let group = self.group()?;
        let out = group
            .commit_builder()
            .remove_member(leaf)
            .map_err(dbg_err)?
            .build()
            .map_err(dbg_err)?;
        group.apply_pending_commit().map_err(dbg_err)?;
        out.commit_message.to_bytes().map_err(dbg_err)
    }

    fn process_commit(&mut self, message: &[u8]) -> Result<()> {
        let message = read(message)?;
        match self
            .group()?
            .process_incoming_message(message)
            .map_err(dbg_err)?
        {
            ReceivedMessage::Commit(_) => Ok(()),
            _ => Err("expected a commit".into()),
        }
    }

    fn encrypt(&mut self, data: &[u8]) -> Result<Vec<u8>> {
        self.group()?
            .encrypt_application_message(data, vec![])
            .map_err(dbg_err)?
            .to_bytes()
            .map_err(dbg_err)
    }

    fn decrypt(&mut self, message: &[u8]) -> Result<Vec<u8>> {
        let message = read(message)?;
        match self
            .group()?
            .process_incoming_message(message)
            .map_err(dbg_err)?
        {
            ReceivedMessage::ApplicationMessage(m) => Ok(m.data().to_vec()),
            _ => Err("expected application data".into()),
        }
    }

    fn own_leaf(&self) -> u32 {
        self.group.as_ref().map_or(0, |g| g.current_member_index())
    }

    fn epoch_authenticator(&self) -> Vec<u8> {
        self.group
            .as_ref()
            .and_then(|g| g.epoch_authenticator().ok())
            .map(|a| a.as_bytes().to_vec())
            .unwrap_or_default()
    }
}
