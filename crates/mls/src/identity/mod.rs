//! Who a member is: a credential bound to a signature key (RFC 9420 §5.3), and the
//! application's policy for deciding whether a credential is acceptable.

#[cfg(feature = "x509")]
pub mod x509;

use crate::Error;
use crate::crypto::{CipherSuite, CryptoProvider, SignaturePrivateKey};
use crate::messages::{Credential, SignaturePublicKey};

/// A client's signing identity in one cipher suite: its credential, its signature key pair.
#[derive(Clone, Debug)]
pub struct Identity {
    /// The cipher suite whose signature scheme the key belongs to.
    pub suite: CipherSuite,
    /// The credential presented in the client's leaves.
    pub credential: Credential,
    /// The signature public key.
    pub signature_key: SignaturePublicKey,
    /// The signature private key.
    pub signer: SignaturePrivateKey,
}

impl Identity {
    /// A fresh signature key pair for `suite`, bound to `credential`.
    ///
    /// ```
    /// use conclave_mls::crypto::{CipherSuite, RustCrypto};
    /// use conclave_mls::identity::Identity;
    /// use conclave_mls::messages::Credential;
    /// let provider = RustCrypto::default();
    /// let alice = Identity::generate(
    ///     &provider,
    ///     CipherSuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_ED25519,
    ///     Credential::Basic { identity: b"alice".to_vec().into() },
    /// )
    /// .unwrap();
    /// assert_eq!(alice.signature_key.as_slice().len(), 32);
    /// ```
    pub fn generate(
        provider: &dyn CryptoProvider,
        suite: CipherSuite,
        credential: Credential,
    ) -> Result<Self, Error> {
        let keys = provider.signature_generate_key_pair(suite)?;
        Ok(Self {
            suite,
            credential,
            signature_key: keys.public_key.into(),
            signer: keys.private_key,
        })
    }
}

/// The application's identity policy (RFC 9420 §5.3.1): the library calls it for every new or
/// changed credential it meets, and rejects what it refuses.
pub trait IdentityValidator: Send + Sync {
    /// Whether `credential` is acceptable as presented with `signature_key`
    /// (for X.509: the chain validates and its leaf certificate carries that key).
    fn validate(
        &self,
        credential: &Credential,
        signature_key: &SignaturePublicKey,
    ) -> Result<(), Error>;

    /// Whether `new` may replace `old` for the same member (an Update or a commit's new leaf,
    /// §5.3.3: the identity must not change to someone else's).
    fn valid_successor(&self, old: &Credential, new: &Credential) -> Result<(), Error>;

    /// The client `credential` names, as bytes that are equal exactly when two credentials
    /// name the same client; `None` when it names no single client. Used to refuse adding a
    /// client twice (§12.2) and to match a branch's members to the old group's (§11.3).
    /// Equal signature keys always count as the same client besides; by default (`None`)
    /// nothing else does, since one user's devices may share a credential.
    ///
    /// A key rather than a pairwise test, so that a commit adding k members to n is checked
    /// with O(n + k) calls, not O(n·k).
    fn client_id(&self, _credential: &Credential) -> Option<Vec<u8>> {
        None
    }
}

/// Accepts every basic credential and treats the identity bytes as the client's name.
/// For tests and closed deployments: it authenticates nobody.
#[derive(Debug, Default, Clone, Copy)]
pub struct BasicCredentialsOnly;

impl IdentityValidator for BasicCredentialsOnly {
    fn validate(&self, credential: &Credential, _: &SignaturePublicKey) -> Result<(), Error> {
        match credential {
            Credential::Basic { .. } => Ok(()),
            _ => Err(Error::CredentialRejected(
                "only basic credentials are accepted".into(),
            )),
        }
    }

    fn valid_successor(&self, old: &Credential, new: &Credential) -> Result<(), Error> {
        if old == new {
            Ok(())
        } else {
            Err(Error::CredentialRejected(
                "a member's identity cannot change".into(),
            ))
        }
    }
}
