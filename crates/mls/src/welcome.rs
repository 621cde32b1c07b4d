//! Sealing and opening Welcome messages and signing GroupInfo (RFC 9420 §12.4.3).
//!
//! These are the cryptographic steps only; checking the tree and building group state from
//! a Welcome belongs to the group layer.

use crate::Error;
use crate::codec::{Decode, Encode};
use crate::crypto::{HpkePrivateKey, SignaturePrivateKey, SuiteCrypto};
use crate::key_schedule::WelcomeSecret;
use crate::messages::{
    EncryptedGroupSecrets, GroupInfo, GroupInfoTbs, GroupSecrets, HpkeCiphertext, KeyPackageRef,
    Welcome,
};

const WELCOME_LABEL: &[u8] = b"Welcome";
const GROUP_INFO_LABEL: &[u8] = b"GroupInfoTBS";

/// Finds this client's entry in `welcome` by KeyPackageRef and decrypts its GroupSecrets
/// with the KeyPackage's init private key (RFC 9420 §12.4.3.1).
pub fn open_group_secrets(
    crypto: &SuiteCrypto<'_>,
    welcome: &Welcome,
    key_package_ref: &KeyPackageRef,
    init_private_key: &HpkePrivateKey,
) -> Result<GroupSecrets, Error> {
    if welcome.cipher_suite != crypto.suite() {
        return Err(Error::WelcomeCipherSuiteMismatch);
    }
    let entry = welcome
        .secrets
        .iter()
        .find(|s| &s.new_member == key_package_ref)
        .ok_or(Error::WelcomeNotForUs)?;
    let plaintext = crypto
        .decrypt_with_label(
            init_private_key,
            WELCOME_LABEL,
            welcome.encrypted_group_info.as_slice(),
            entry.encrypted_group_secrets.kem_output.as_slice(),
            entry.encrypted_group_secrets.ciphertext.as_slice(),
        )
        .map_err(|_| Error::GroupSecretsDecryptFailed)?;
    GroupSecrets::decode(plaintext.as_bytes())
}

/// Encrypts each new member's `GroupSecrets` to its init key (RFC 9420 §12.4.3.1), all
/// under the one `encrypted_group_info` as context, which is encoded and hashed once for all
/// of them (see [`crate::crypto::CryptoProvider::hpke_seal_to_many`]). `joiners` are
/// `(reference, init_key, secrets)`; the result is in the same order.
pub fn seal_group_secrets(
    crypto: &SuiteCrypto<'_>,
    encrypted_group_info: &[u8],
    joiners: &[(KeyPackageRef, &[u8], GroupSecrets)],
) -> Result<Vec<EncryptedGroupSecrets>, Error> {
    let plaintexts = joiners
        .iter()
        .map(|(_, _, secrets)| secrets.encode().map(zeroize::Zeroizing::new))
        .collect::<Result<Vec<_>, _>>()?;
    let items: Vec<_> = joiners
        .iter()
        .zip(&plaintexts)
        .map(|((_, init_key, _), plaintext)| (*init_key, plaintext.as_slice()))
        .collect();
    let sealed = crypto.encrypt_with_label_to_many(WELCOME_LABEL, encrypted_group_info, &items)?;
    Ok(joiners
        .iter()
        .zip(sealed)
        .map(|((new_member, _, _), sealed)| EncryptedGroupSecrets {
            new_member: new_member.clone(),
            encrypted_group_secrets: HpkeCiphertext {
                kem_output: sealed.kem_output.into(),
                ciphertext: sealed.ciphertext.into(),
            },
        })
        .collect())
}

/// Decrypts the GroupInfo of a Welcome with `welcome_key`/`welcome_nonce` (§12.4.3.1).
/// The signature is not checked here: the signer's key lives in the tree.
pub fn open_group_info(
    crypto: &SuiteCrypto<'_>,
    welcome: &Welcome,
    welcome_secret: &WelcomeSecret,
) -> Result<GroupInfo, Error> {
    let (key, nonce) = welcome_secret.key_and_nonce(crypto)?;
    let plaintext = crypto
        .aead_open(
            key.as_bytes(),
            nonce.as_bytes(),
            &[],
            welcome.encrypted_group_info.as_slice(),
        )
        .map_err(|_| Error::GroupInfoDecryptFailed)?;
    GroupInfo::decode(plaintext.as_bytes())
}

/// Encrypts a signed GroupInfo for a Welcome.
pub fn seal_group_info(
    crypto: &SuiteCrypto<'_>,
    group_info: &GroupInfo,
    welcome_secret: &WelcomeSecret,
) -> Result<Vec<u8>, Error> {
    let (key, nonce) = welcome_secret.key_and_nonce(crypto)?;
    Ok(crypto.aead_seal(key.as_bytes(), nonce.as_bytes(), &[], &group_info.encode()?)?)
}

impl GroupInfo {
    /// Signs `tbs`: `SignWithLabel(., "GroupInfoTBS", GroupInfoTBS)` (RFC 9420 §12.4.3).
    pub fn sign(
        crypto: &SuiteCrypto<'_>,
        tbs: GroupInfoTbs,
        signer: &SignaturePrivateKey,
    ) -> Result<Self, Error> {
        let signature = crypto.sign_with_label_of(signer, GROUP_INFO_LABEL, &tbs)?;
        Ok(Self {
            tbs,
            signature: signature.into(),
        })
    }

    /// Verifies the signature with the signer's leaf signature key (RFC 9420 §12.4.3).
    pub fn verify(&self, crypto: &SuiteCrypto<'_>, signer_public_key: &[u8]) -> Result<(), Error> {
        crypto
            .verify_with_label_of(
                signer_public_key,
                GROUP_INFO_LABEL,
                &self.tbs,
                self.signature.as_slice(),
            )
            .map_err(|_| Error::GroupInfoSignatureInvalid)
    }
}
