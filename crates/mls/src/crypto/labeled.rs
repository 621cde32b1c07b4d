//! The labelled operations of RFC 9420 §5: every use of a primitive in MLS carries a label,
//! so that a value computed for one purpose can never stand in for another.

use super::{
    CipherSuite, CryptoError, CryptoProvider, HpkePrivateKey, HpkeSealItem, HpkeSealed, Secret,
    SignaturePrivateKey,
};
use crate::codec::write_varint;

/// The prefix RFC 9420 §5 puts before every label.
const LABEL_PREFIX: &[u8] = b"MLS 1.0 ";

/// A provider bound to one cipher suite, with the labelled operations of RFC 9420 §5.
///
/// ```
/// use conclave_mls::crypto::{CipherSuite, RustCrypto, SuiteCrypto};
/// let provider = RustCrypto::default();
/// let crypto = SuiteCrypto::new(&provider, CipherSuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_ED25519).unwrap();
/// let secret = crypto.derive_secret(&[0u8; 32], b"welcome").unwrap();
/// assert_eq!(secret.len(), 32);
/// ```
#[derive(Clone, Copy)]
pub struct SuiteCrypto<'a> {
    provider: &'a dyn CryptoProvider,
    suite: CipherSuite,
    hash_len: usize,
    key_len: usize,
    nonce_len: usize,
}

impl core::fmt::Debug for SuiteCrypto<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SuiteCrypto")
            .field("suite", &self.suite)
            .finish_non_exhaustive()
    }
}

/// Appends `opaque data<V>` (RFC 9420 §2.1.2) to `out`.
fn push_opaque(out: &mut Vec<u8>, data: &[u8]) -> Result<(), CryptoError> {
    let len = u32::try_from(data.len()).map_err(|_| CryptoError::KdfLength)?;
    write_varint(len, out).map_err(|_| CryptoError::KdfLength)?;
    out.extend_from_slice(data);
    Ok(())
}

/// Appends `opaque label<V>` with the "MLS 1.0 " prefix.
fn push_label(out: &mut Vec<u8>, label: &[u8]) -> Result<(), CryptoError> {
    let len =
        u32::try_from(LABEL_PREFIX.len() + label.len()).map_err(|_| CryptoError::KdfLength)?;
    write_varint(len, out).map_err(|_| CryptoError::KdfLength)?;
    out.extend_from_slice(LABEL_PREFIX);
    out.extend_from_slice(label);
    Ok(())
}

impl<'a> SuiteCrypto<'a> {
    /// Binds `provider` to `suite`; fails if the provider does not implement the suite.
    pub fn new(provider: &'a dyn CryptoProvider, suite: CipherSuite) -> Result<Self, CryptoError> {
        let unsupported = CryptoError::UnsupportedCipherSuite(suite.0);
        if !provider.supports(suite) {
            return Err(unsupported);
        }
        let hash = suite.hash().ok_or(unsupported.clone())?;
        let aead = suite.aead().ok_or(unsupported)?;
        Ok(Self {
            provider,
            suite,
            hash_len: hash.output_len(),
            key_len: aead.key_len(),
            nonce_len: aead.nonce_len(),
        })
    }

    /// The cipher suite.
    pub fn suite(&self) -> CipherSuite {
        self.suite
    }
    /// The underlying provider.
    pub fn provider(&self) -> &'a dyn CryptoProvider {
        self.provider
    }
    /// `KDF.Nh`: the hash (and secret) length.
    pub fn hash_len(&self) -> usize {
        self.hash_len
    }
    /// `AEAD.Nk`: the AEAD key length.
    pub fn aead_key_len(&self) -> usize {
        self.key_len
    }
    /// `AEAD.Nn`: the AEAD nonce length.
    pub fn aead_nonce_len(&self) -> usize {
        self.nonce_len
    }

    /// `Hash(data)`.
    pub fn hash(&self, data: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.provider.hash(self.suite, data)
    }
    /// `MAC(key, data)`.
    pub fn mac(&self, key: &[u8], data: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.provider.mac(self.suite, key, data)
    }
    /// `KDF.Extract(salt, ikm)`.
    pub fn extract(&self, salt: &[u8], ikm: &[u8]) -> Result<Secret, CryptoError> {
        self.provider.kdf_extract(self.suite, salt, ikm)
    }

    /// `ExpandWithLabel(Secret, Label, Context, Length)` (RFC 9420 §5.1.3).
    pub fn expand_with_label(
        &self,
        secret: &[u8],
        label: &[u8],
        context: &[u8],
        length: usize,
    ) -> Result<Secret, CryptoError> {
        let length16 = u16::try_from(length).map_err(|_| CryptoError::KdfLength)?;
        let mut info = Vec::with_capacity(2 + 10 + label.len() + 5 + context.len());
        info.extend_from_slice(&length16.to_be_bytes());
        push_label(&mut info, label)?;
        push_opaque(&mut info, context)?;
        self.provider.kdf_expand(self.suite, secret, &info, length)
    }

    /// `DeriveSecret(Secret, Label)` = `ExpandWithLabel(Secret, Label, "", Nh)` (§5.1.3).
    pub fn derive_secret(&self, secret: &[u8], label: &[u8]) -> Result<Secret, CryptoError> {
        self.expand_with_label(secret, label, &[], self.hash_len)
    }

    /// `DeriveTreeSecret(Secret, Label, Generation, Length)` (RFC 9420 §9.1).
    pub fn derive_tree_secret(
        &self,
        secret: &[u8],
        label: &[u8],
        generation: u32,
        length: usize,
    ) -> Result<Secret, CryptoError> {
        self.expand_with_label(secret, label, &generation.to_be_bytes(), length)
    }

    /// `RefHash(Label, Value)` (RFC 9420 §5.2): the label is used exactly as given.
    pub fn ref_hash(&self, label: &[u8], value: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let mut input = Vec::with_capacity(label.len() + value.len() + 8);
        push_opaque(&mut input, label)?;
        push_opaque(&mut input, value)?;
        self.hash(&input)
    }

    fn sign_content(label: &[u8], content: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let mut tbs = Vec::with_capacity(label.len() + content.len() + 16);
        push_label(&mut tbs, label)?;
        push_opaque(&mut tbs, content)?;
        Ok(tbs)
    }

    /// `SignContent` (RFC 9420 §5.1.2) of a structure, encoded in place after the label:
    /// one buffer of the exact size, and no separate copy of the structure's encoding (a
    /// GroupInfo carrying the ratchet tree is megabytes).
    fn sign_content_of(
        label: &[u8],
        content: &impl tls_codec::Serialize,
    ) -> Result<Vec<u8>, CryptoError> {
        let len = content.tls_serialized_len();
        let mut tbs = Vec::with_capacity(LABEL_PREFIX.len() + label.len() + len + 8);
        push_label(&mut tbs, label)?;
        write_varint(
            u32::try_from(len).map_err(|_| CryptoError::Encoding)?,
            &mut tbs,
        )
        .map_err(|_| CryptoError::Encoding)?;
        content
            .tls_serialize(&mut tbs)
            .map_err(|_| CryptoError::Encoding)?;
        Ok(tbs)
    }

    /// [`Self::sign_with_label`] of the encoding of `content`, without encoding it apart.
    pub fn sign_with_label_of(
        &self,
        private_key: &SignaturePrivateKey,
        label: &[u8],
        content: &impl tls_codec::Serialize,
    ) -> Result<Vec<u8>, CryptoError> {
        self.provider.sign(
            self.suite,
            private_key,
            &Self::sign_content_of(label, content)?,
        )
    }

    /// [`Self::verify_with_label`] of the encoding of `content`, without encoding it apart.
    pub fn verify_with_label_of(
        &self,
        public_key: &[u8],
        label: &[u8],
        content: &impl tls_codec::Serialize,
        signature: &[u8],
    ) -> Result<(), CryptoError> {
        self.provider.verify(
            self.suite,
            public_key,
            &Self::sign_content_of(label, content)?,
            signature,
        )
    }

    /// `SignWithLabel(SignatureKey, Label, Content)` (RFC 9420 §5.1.2).
    pub fn sign_with_label(
        &self,
        private_key: &SignaturePrivateKey,
        label: &[u8],
        content: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        self.provider.sign(
            self.suite,
            private_key,
            &Self::sign_content(label, content)?,
        )
    }

    /// `VerifyWithLabel(VerificationKey, Label, Content, SignatureValue)` (RFC 9420 §5.1.2).
    pub fn verify_with_label(
        &self,
        public_key: &[u8],
        label: &[u8],
        content: &[u8],
        signature: &[u8],
    ) -> Result<(), CryptoError> {
        self.provider.verify(
            self.suite,
            public_key,
            &Self::sign_content(label, content)?,
            signature,
        )
    }

    /// `VerifyWithLabel` for many `(public_key, content, signature)` items at once through
    /// [`CryptoProvider::verify_batch`]: `Ok` exactly when [`Self::verify_with_label`]
    /// accepts every item. The error does not name the failing item.
    pub fn verify_batch_with_label(
        &self,
        label: &[u8],
        items: &[super::SignatureItem<'_>],
    ) -> Result<(), CryptoError> {
        let contents = items
            .iter()
            .map(|(_, content, _)| Self::sign_content(label, content))
            .collect::<Result<Vec<_>, _>>()?;
        let labeled: Vec<super::SignatureItem<'_>> = items
            .iter()
            .zip(&contents)
            .map(|(&(key, _, signature), content)| (key, content.as_slice(), signature))
            .collect();
        self.provider.verify_batch(self.suite, &labeled)
    }

    fn encrypt_context(label: &[u8], context: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let mut info = Vec::with_capacity(label.len() + context.len() + 16);
        push_label(&mut info, label)?;
        push_opaque(&mut info, context)?;
        Ok(info)
    }

    /// `EncryptWithLabel(PublicKey, Label, Context, Plaintext)` (RFC 9420 §5.1.3).
    pub fn encrypt_with_label(
        &self,
        public_key: &[u8],
        label: &[u8],
        context: &[u8],
        plaintext: &[u8],
    ) -> Result<HpkeSealed, CryptoError> {
        let info = Self::encrypt_context(label, context)?;
        self.provider
            .hpke_seal(self.suite, public_key, &info, &[], plaintext)
    }

    /// `EncryptWithLabel` of each `(public_key, plaintext)` item under one `label` and
    /// `context` (RFC 9420 §5.1.3), through [`CryptoProvider::hpke_seal_to_many`]: the
    /// context is encoded once, and hashed once by providers that can.
    pub fn encrypt_with_label_to_many(
        &self,
        label: &[u8],
        context: &[u8],
        items: &[HpkeSealItem<'_>],
    ) -> Result<Vec<HpkeSealed>, CryptoError> {
        let info = Self::encrypt_context(label, context)?;
        self.provider
            .hpke_seal_to_many(self.suite, &info, &[], items)
    }

    /// `DecryptWithLabel(PrivateKey, Label, Context, KEMOutput, Ciphertext)` (RFC 9420 §5.1.3).
    pub fn decrypt_with_label(
        &self,
        private_key: &HpkePrivateKey,
        label: &[u8],
        context: &[u8],
        kem_output: &[u8],
        ciphertext: &[u8],
    ) -> Result<Secret, CryptoError> {
        let info = Self::encrypt_context(label, context)?;
        self.provider
            .hpke_open(self.suite, private_key, kem_output, &info, &[], ciphertext)
    }

    /// AEAD encryption with the suite's AEAD.
    pub fn aead_seal(
        &self,
        key: &[u8],
        nonce: &[u8],
        aad: &[u8],
        pt: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        self.provider.aead_seal(self.suite, key, nonce, aad, pt)
    }
    /// AEAD decryption with the suite's AEAD.
    pub fn aead_open(
        &self,
        key: &[u8],
        nonce: &[u8],
        aad: &[u8],
        ct: &[u8],
    ) -> Result<Secret, CryptoError> {
        self.provider.aead_open(self.suite, key, nonce, aad, ct)
    }
}
