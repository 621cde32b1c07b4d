//! The key schedule (RFC 9420 §8): from the previous epoch's init secret, the commit secret
//! and the PSK secret to every secret of the new epoch.
//!
//! The types follow the derivation: a [`JoinerSecret`] is all a joiner receives in a Welcome;
//! with the PSK secret it yields the [`WelcomeSecret`] and the [`EpochSecrets`].

use crate::crypto::{CryptoError, HpkeKeyPair, Secret, SuiteCrypto};

/// `joiner_secret` (RFC 9420 §8): what a Welcome hands to new members.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinerSecret(Secret);

/// `welcome_secret` (RFC 9420 §8): keys the encrypted GroupInfo of a Welcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WelcomeSecret(Secret);

/// The secrets of one epoch, derived from `epoch_secret` (RFC 9420 §8, Table 4).
///
/// `epoch_secret` itself is not kept: everything is derived from it at once, and the
/// next epoch starts from [`EpochSecrets::init_secret`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EpochSecrets {
    /// "sender data": keys the sender data of PrivateMessages (§6.3.2).
    pub sender_data_secret: Secret,
    /// "encryption": the root of the secret tree (§9).
    pub encryption_secret: Secret,
    /// "exporter": the root of MLS-Exporter (§8.5).
    pub exporter_secret: Secret,
    /// "external": seeds the external init key pair (§8.3).
    pub external_secret: Secret,
    /// "confirm": the key of the confirmation tag (§8.1).
    pub confirmation_key: Secret,
    /// "membership": the key of PublicMessage membership tags (§6.2).
    pub membership_key: Secret,
    /// "resumption": this epoch's resumption PSK (§8.6).
    pub resumption_psk: Secret,
    /// "authentication": the epoch authenticator (§8.7).
    pub epoch_authenticator: Secret,
    /// "init": the init secret of the next epoch.
    pub init_secret: Secret,
}

/// The HPKE exporter label of an external init secret (RFC 9420 §8.3).
const EXTERNAL_INIT_LABEL: &[u8] = b"MLS 1.0 external init secret";

/// A new member's side of an external init (RFC 9420 §8.3): `SetupBaseS(external_pub, "")`
/// and `Export("MLS 1.0 external init secret", Nh)`; returns the ExternalInit `kem_output`
/// and the init secret.
pub fn external_init(
    crypto: &SuiteCrypto<'_>,
    external_pub: &[u8],
) -> Result<(Vec<u8>, Secret), CryptoError> {
    crypto.provider().hpke_export_sender(
        crypto.suite(),
        external_pub,
        &[],
        EXTERNAL_INIT_LABEL,
        crypto.hash_len(),
    )
}

impl JoinerSecret {
    /// `ExpandWithLabel(Extract(init_secret, commit_secret), "joiner", GroupContext, Nh)`.
    ///
    /// `group_context` is the encoded GroupContext of the new epoch; a commit without a
    /// path uses an all-zero `commit_secret` of length Nh.
    pub fn derive(
        crypto: &SuiteCrypto<'_>,
        init_secret: &[u8],
        commit_secret: &[u8],
        group_context: &[u8],
    ) -> Result<Self, CryptoError> {
        let prk = crypto.extract(init_secret, commit_secret)?;
        Ok(Self(crypto.expand_with_label(
            prk.as_bytes(),
            b"joiner",
            group_context,
            crypto.hash_len(),
        )?))
    }

    /// Wraps a joiner secret received in GroupSecrets.
    pub fn from_secret(secret: Secret) -> Self {
        Self(secret)
    }

    /// The secret bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    fn member_secret(
        &self,
        crypto: &SuiteCrypto<'_>,
        psk_secret: &[u8],
    ) -> Result<Secret, CryptoError> {
        crypto.extract(self.0.as_bytes(), psk_secret)
    }

    /// `welcome_secret = DeriveSecret(Extract(joiner_secret, psk_secret), "welcome")`.
    pub fn welcome_secret(
        &self,
        crypto: &SuiteCrypto<'_>,
        psk_secret: &[u8],
    ) -> Result<WelcomeSecret, CryptoError> {
        let member = self.member_secret(crypto, psk_secret)?;
        Ok(WelcomeSecret(
            crypto.derive_secret(member.as_bytes(), b"welcome")?,
        ))
    }

    /// Every secret of the epoch whose encoded GroupContext is `group_context`.
    pub fn epoch_secrets(
        &self,
        crypto: &SuiteCrypto<'_>,
        psk_secret: &[u8],
        group_context: &[u8],
    ) -> Result<EpochSecrets, CryptoError> {
        let member = self.member_secret(crypto, psk_secret)?;
        let epoch = crypto.expand_with_label(
            member.as_bytes(),
            b"epoch",
            group_context,
            crypto.hash_len(),
        )?;
        EpochSecrets::from_epoch_secret(crypto, &epoch)
    }
}

impl WelcomeSecret {
    /// The secret bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
    /// `welcome_key` and `welcome_nonce` (RFC 9420 §12.4.3.1).
    pub fn key_and_nonce(&self, crypto: &SuiteCrypto<'_>) -> Result<(Secret, Secret), CryptoError> {
        let key =
            crypto.expand_with_label(self.0.as_bytes(), b"key", &[], crypto.aead_key_len())?;
        let nonce =
            crypto.expand_with_label(self.0.as_bytes(), b"nonce", &[], crypto.aead_nonce_len())?;
        Ok((key, nonce))
    }
}

impl EpochSecrets {
    /// Derives every epoch secret from `epoch_secret` (RFC 9420 §8, Table 4).
    pub fn from_epoch_secret(
        crypto: &SuiteCrypto<'_>,
        epoch: &Secret,
    ) -> Result<Self, CryptoError> {
        let d = |label: &[u8]| crypto.derive_secret(epoch.as_bytes(), label);
        Ok(Self {
            sender_data_secret: d(b"sender data")?,
            encryption_secret: d(b"encryption")?,
            exporter_secret: d(b"exporter")?,
            external_secret: d(b"external")?,
            confirmation_key: d(b"confirm")?,
            membership_key: d(b"membership")?,
            resumption_psk: d(b"resumption")?,
            epoch_authenticator: d(b"authentication")?,
            init_secret: d(b"init")?,
        })
    }

    /// `MLS-Exporter(Label, Context, Length)` (RFC 9420 §8.5).
    pub fn export(
        &self,
        crypto: &SuiteCrypto<'_>,
        label: &[u8],
        context: &[u8],
        length: usize,
    ) -> Result<Secret, CryptoError> {
        let derived = crypto.derive_secret(self.exporter_secret.as_bytes(), label)?;
        let context_hash = crypto.hash(context)?;
        crypto.expand_with_label(derived.as_bytes(), b"exported", &context_hash, length)
    }

    /// `KEM.DeriveKeyPair(external_secret)`: the group's external init key pair (§8.3).
    pub fn external_key_pair(&self, crypto: &SuiteCrypto<'_>) -> Result<HpkeKeyPair, CryptoError> {
        crypto
            .provider()
            .hpke_derive_key_pair(crypto.suite(), self.external_secret.as_bytes())
    }

    /// The init secret a member derives from an external commit's ExternalInit
    /// `kem_output` (RFC 9420 §8.3): `SetupBaseR` with the external private key, then
    /// `Export("MLS 1.0 external init secret", Nh)`.
    pub fn external_init_secret(
        &self,
        crypto: &SuiteCrypto<'_>,
        kem_output: &[u8],
    ) -> Result<Secret, CryptoError> {
        let pair = self.external_key_pair(crypto)?;
        crypto.provider().hpke_export_receiver(
            crypto.suite(),
            &pair.private_key,
            kem_output,
            &[],
            EXTERNAL_INIT_LABEL,
            crypto.hash_len(),
        )
    }

    /// The confirmation tag over a confirmed transcript hash (RFC 9420 §8.2).
    pub fn confirmation_tag(
        &self,
        crypto: &SuiteCrypto<'_>,
        confirmed_transcript_hash: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        crypto.mac(self.confirmation_key.as_bytes(), confirmed_transcript_hash)
    }
}
