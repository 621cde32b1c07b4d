//! Groups that continue another group: ReInit (RFC 9420 §11.2) and subgroup branching
//! (§11.3), both linked to the old group by a resumption PSK.

use super::{CommitOutput, Group, GroupConfig};
use crate::Error;
use crate::crypto::CryptoProvider;
use crate::identity::Identity;
use crate::messages::{
    Extension, KeyPackage, PreSharedKeyId, ProtocolVersion, Psk, ResumptionPskUsage,
};

impl Group {
    /// Subgroup branching (§11.3): a new group `group_id`, created by this member, whose
    /// first commit adds `key_packages` (members of this group) and injects this epoch's
    /// resumption PSK with usage `branch`. The new members join from the Welcome with
    /// that PSK (see [`Group::resumption_psk`]).
    pub fn branch(
        &self,
        provider: &dyn CryptoProvider,
        identity: &Identity,
        group_id: Vec<u8>,
        extensions: Vec<Extension>,
        key_packages: Vec<KeyPackage>,
        config: GroupConfig,
    ) -> Result<(Group, CommitOutput), Error> {
        self.check_open()?;
        if identity.suite != self.suite {
            return Err(Error::ResumptionMismatch);
        }
        self.resume(
            provider,
            identity,
            group_id,
            extensions,
            ResumptionPskUsage::Branch,
            key_packages,
            config,
        )
    }

    /// The third step of a ReInit (§11.2): after a commit with a ReInit closed this group,
    /// creates the new group the ReInit describes, adds `key_packages` (in the new suite)
    /// and injects the closing epoch's resumption PSK with usage `reinit`.
    pub fn reinit_group(
        &self,
        provider: &dyn CryptoProvider,
        identity: &Identity,
        key_packages: Vec<KeyPackage>,
        config: GroupConfig,
    ) -> Result<(Group, CommitOutput), Error> {
        let reinit = self.epoch.reinit.clone().ok_or(Error::ResumptionMismatch)?;
        if reinit.version != ProtocolVersion::MLS10 || identity.suite != reinit.cipher_suite {
            return Err(Error::ResumptionMismatch);
        }
        self.resume(
            provider,
            identity,
            reinit.group_id.as_slice().to_vec(),
            reinit.extensions,
            ResumptionPskUsage::Reinit,
            key_packages,
            config,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn resume(
        &self,
        provider: &dyn CryptoProvider,
        identity: &Identity,
        group_id: Vec<u8>,
        extensions: Vec<Extension>,
        usage: ResumptionPskUsage,
        key_packages: Vec<KeyPackage>,
        config: GroupConfig,
    ) -> Result<(Group, CommitOutput), Error> {
        if group_id == self.group_id() {
            return Err(Error::ResumptionMismatch);
        }
        let psk = self
            .resumption_psk(self.epoch())
            .cloned()
            .ok_or(Error::MissingPsk)?;
        let mut group = Group::create(
            provider,
            identity,
            group_id,
            extensions,
            config,
            self.validator.clone(),
        )?;
        group.add_resumption_psk(self.group_id().to_vec(), self.epoch(), psk);
        group.special_psk = Some(usage);
        let mut nonce = vec![0u8; group.crypto(provider)?.hash_len()];
        provider.random_bytes(&mut nonce)?;
        let psk_id = PreSharedKeyId {
            psk: Psk::Resumption {
                usage,
                psk_group_id: self.group_id().to_vec().into(),
                psk_epoch: self.epoch(),
            },
            psk_nonce: nonce.into(),
        };
        let mut builder = group.commit().psk(psk_id);
        for kp in key_packages {
            builder = builder.add_member(kp);
        }
        let output = builder.build(provider)?;
        Ok((group, output))
    }
}
