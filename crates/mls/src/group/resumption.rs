//! Groups that continue another group: ReInit (RFC 9420 §11.2) and subgroup branching
//! (§11.3), both linked to the old group by a resumption PSK.

use super::join::Continuation;
use super::{CommitOutput, Group, GroupConfig, JoinRequest};
use crate::Error;
use crate::crypto::CryptoProvider;
use crate::identity::Identity;
use crate::messages::{
    Extension, KeyPackage, PreSharedKeyId, ProtocolVersion, Psk, ResumptionPskUsage,
};
use crate::tree::LeafIndex;

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

    /// Joins the new group of a ReInit (§11.2) from its Welcome, `old` being this client's
    /// state of the group the ReInit commit closed.
    ///
    /// Beyond the checks of [`Group::join`] (§12.4.3.1), the joiner verifies what §11.2
    /// requires of the Welcome: it names exactly one resumption PSK of usage `reinit`, whose
    /// `psk_group_id` is the old group and whose `psk_epoch` is the epoch the ReInit commit
    /// started (the old group's last); the new group is at epoch 1; and its version, cipher
    /// suite, group id and extensions are those of the committed ReInit proposal. The reinit
    /// PSK is taken from `old`, so `request.resumption_psks` need not hold it.
    ///
    /// `old` is only read: on any error both it and the request's KeyPackage remain usable.
    pub(super) fn join_reinit(
        provider: &dyn CryptoProvider,
        old: &Group,
        mut request: JoinRequest<'_>,
    ) -> Result<(Group, LeafIndex), Error> {
        let reinit = old.reinit().ok_or(Error::OldGroupNotReInitialized)?;
        if let Some(psk) = old.resumption_psk(old.epoch()) {
            request
                .resumption_psks
                .insert((old.group_id().to_vec(), old.epoch()), psk.clone());
        }
        Group::join_continuing(provider, request, Continuation::ReInit { old, reinit })
    }

    /// Joins a subgroup branched from `old` (§11.3) from its Welcome, `old` being this
    /// client's state of the group branched from.
    ///
    /// Beyond the checks of [`Group::join`] (§12.4.3.1), the joiner verifies what §11.3
    /// requires: the Welcome names exactly one resumption PSK of usage `branch`, whose
    /// `psk_group_id` is the old group (the epoch may be any whose resumption PSK `old`
    /// still keeps, see [`GroupConfig::resumption_psk_epochs`]); the new group is at epoch
    /// 1, has the old group's version and cipher suite and a group id of its own; and each
    /// of its leaves matches a member of the old group's current epoch — an equal
    /// credential, or one whose [`crate::identity::IdentityValidator::client_id`] under
    /// `request.validator` is an old member's. The branch PSKs are taken from
    /// `old`, so `request.resumption_psks` need not hold them.
    ///
    /// `old` is only read: on any error both it and the request's KeyPackage remain usable.
    pub(super) fn join_branch(
        provider: &dyn CryptoProvider,
        old: &Group,
        mut request: JoinRequest<'_>,
    ) -> Result<(Group, LeafIndex), Error> {
        for (epoch, psk) in &old.resumption_psks {
            request
                .resumption_psks
                .insert((old.group_id().to_vec(), *epoch), psk.clone());
        }
        Group::join_continuing(provider, request, Continuation::Branch { old })
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
        let mut group = Group::create_with(
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
