//! Creating KeyPackages and checking received ones (RFC 9420 §10).

use crate::Error;
use crate::codec::Encode;
use crate::codec::state::{StateReader, StateWriter};
use crate::crypto::{CryptoProvider, HpkePrivateKey, SuiteCrypto};
use crate::identity::Identity;
use crate::messages::{
    Capabilities, CredentialType, Extension, KeyPackage, KeyPackageTbs, LeafNode, LeafNodeContent,
    LeafNodeSource, Lifetime, MlsMessage, ProtocolVersion,
};
use crate::tree::LeafIndex;
use crate::tree::treekem::sign_leaf_node;

const KEY_PACKAGE_TBS_LABEL: &[u8] = b"KeyPackageTBS";

/// What a new KeyPackage says about its client. Made by [`KeyPackageOptions::new`]; the
/// other fields may then be set.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct KeyPackageOptions {
    /// When the KeyPackage (and the leaf it becomes) is valid (§7.2). The library has no
    /// clock: the application sets it, e.g. `Lifetime::starting_at(now, 90 days)`.
    pub lifetime: Lifetime,
    /// The leaf's capabilities; [`default_capabilities`] if `None`.
    pub capabilities: Option<Capabilities>,
    /// Extensions of the leaf node.
    pub leaf_extensions: Vec<Extension>,
    /// Extensions of the KeyPackage itself.
    pub extensions: Vec<Extension>,
}

impl KeyPackageOptions {
    /// Options with the given lifetime and everything else default.
    pub fn new(lifetime: Lifetime) -> Self {
        Self {
            lifetime,
            capabilities: None,
            leaf_extensions: vec![],
            extensions: vec![],
        }
    }
}

impl Lifetime {
    /// Valid from an hour before `now` (clock skew) for `seconds`.
    pub fn starting_at(now: u64, seconds: u64) -> Self {
        Self {
            not_before: now.saturating_sub(3600),
            not_after: now.saturating_add(seconds),
        }
    }
    /// Whether `now` lies within the lifetime.
    pub fn contains(&self, now: u64) -> bool {
        self.not_before <= now && now <= self.not_after
    }
}

/// The capabilities this library supports for an identity's suite: mls10, the identity's
/// suite, no non-default extensions or proposals beyond those it implements, basic and X.509
/// credentials.
///
/// Each list also carries a GREASE value (§13.5), so that peers which mishandle unknown
/// values are found early; which one depends on the signature key.
pub fn default_capabilities(identity: &Identity) -> Capabilities {
    use crate::codec::grease;
    use crate::messages::{ExtensionType, ProposalType};
    let seed = identity
        .signature_key
        .as_slice()
        .first()
        .copied()
        .unwrap_or(0);
    Capabilities {
        versions: vec![ProtocolVersion::MLS10],
        cipher_suites: vec![identity.suite, crate::crypto::CipherSuite(grease(seed))],
        extensions: vec![ExtensionType(grease(seed.wrapping_add(1)))],
        proposals: vec![ProposalType(grease(seed.wrapping_add(2)))],
        credentials: vec![
            CredentialType::BASIC,
            CredentialType::X509,
            CredentialType(grease(seed.wrapping_add(3))),
        ],
    }
}

/// The private keys behind a KeyPackage: the application stores them until the KeyPackage
/// is used in a Welcome, then deletes them (§10: a KeyPackage is used once).
#[derive(Clone, Debug)]
pub struct KeyPackageSecrets {
    /// The private key of `init_key`.
    pub init_private_key: HpkePrivateKey,
    /// The private key of the leaf's `encryption_key`.
    pub encryption_private_key: HpkePrivateKey,
}

/// Creates a signed KeyPackage for `identity` (RFC 9420 §10) and its private keys.
pub fn create_key_package(
    provider: &dyn CryptoProvider,
    identity: &Identity,
    options: KeyPackageOptions,
) -> Result<(KeyPackage, KeyPackageSecrets), Error> {
    let crypto = SuiteCrypto::new(provider, identity.suite)?;
    let init = provider.hpke_generate_key_pair(identity.suite)?;
    let encryption = provider.hpke_generate_key_pair(identity.suite)?;
    let capabilities = options
        .capabilities
        .unwrap_or_else(|| default_capabilities(identity));
    let content = LeafNodeContent {
        encryption_key: encryption.public_key.into(),
        signature_key: identity.signature_key.clone(),
        credential: identity.credential.clone(),
        capabilities,
        leaf_node_source: LeafNodeSource::KeyPackage {
            lifetime: options.lifetime,
        },
        extensions: options.leaf_extensions,
    };
    // KeyPackage-sourced leaves carry no group binding: group id and index are unused.
    let leaf_node = sign_leaf_node(&crypto, content, &identity.signer, &[], LeafIndex(0))?;
    let tbs = KeyPackageTbs {
        version: ProtocolVersion::MLS10,
        cipher_suite: identity.suite,
        init_key: init.public_key.into(),
        leaf_node,
        extensions: options.extensions,
    };
    let signature =
        crypto.sign_with_label(&identity.signer, KEY_PACKAGE_TBS_LABEL, &tbs.encode()?)?;
    Ok((
        KeyPackage {
            tbs,
            signature: signature.into(),
        },
        KeyPackageSecrets {
            init_private_key: init.private_key,
            encryption_private_key: encryption.private_key,
        },
    ))
}

/// A KeyPackage and the private keys behind it: what a client publishes (as an
/// [`MlsMessage`]) and what it keeps until a Welcome uses the KeyPackage.
///
/// ```
/// use conclave_mls::{CipherSuite, Identity, KeyPackageBundle, KeyPackageOptions, RustCrypto};
/// use conclave_mls::messages::{Credential, Lifetime};
///
/// let provider = RustCrypto::default();
/// let suite = CipherSuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_ED25519;
/// let bob = Identity::generate(&provider, suite, Credential::basic(b"bob"))?;
/// let bundle = KeyPackageBundle::generate(
///     &provider,
///     &bob,
///     KeyPackageOptions::new(Lifetime::starting_at(1_800_000_000, 86_400)),
/// )?;
/// let published = bundle.message(); // to the Delivery Service
/// let stored = bundle.to_bytes()?; // kept, private, until the Welcome arrives
/// assert_eq!(KeyPackageBundle::from_bytes(&stored)?.key_package(), bundle.key_package());
/// # let _ = published;
/// # Ok::<(), conclave_mls::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct KeyPackageBundle {
    key_package: KeyPackage,
    secrets: KeyPackageSecrets,
}

/// Leads the bytes of [`KeyPackageBundle::to_bytes`], with its version.
const BUNDLE_MAGIC: &[u8] = b"conclave-mls key package bundle";
const BUNDLE_VERSION: u16 = 1;

impl KeyPackageBundle {
    /// Creates a signed KeyPackage for `identity` (RFC 9420 §10) with fresh init and leaf
    /// encryption keys.
    pub fn generate(
        provider: &dyn CryptoProvider,
        identity: &Identity,
        options: KeyPackageOptions,
    ) -> Result<Self, Error> {
        let (key_package, secrets) = create_key_package(provider, identity, options)?;
        Ok(Self {
            key_package,
            secrets,
        })
    }

    /// A bundle from a KeyPackage and its private keys (as stored apart by older callers).
    pub fn new(key_package: KeyPackage, secrets: KeyPackageSecrets) -> Self {
        Self {
            key_package,
            secrets,
        }
    }

    /// The public KeyPackage.
    pub fn key_package(&self) -> &KeyPackage {
        &self.key_package
    }

    /// Its private keys.
    pub fn secrets(&self) -> &KeyPackageSecrets {
        &self.secrets
    }

    /// The KeyPackage as an [`MlsMessage`], ready to publish.
    pub fn message(&self) -> MlsMessage {
        MlsMessage::from(self.key_package.clone())
    }

    /// The bundle as bytes, private keys included, for the application's store. Versioned.
    pub fn to_bytes(&self) -> Result<Vec<u8>, Error> {
        let mut w = StateWriter::default();
        w.out.extend_from_slice(BUNDLE_MAGIC);
        w.u16(BUNDLE_VERSION);
        w.encoded(&self.key_package)?;
        w.bytes(self.secrets.init_private_key.as_bytes())?;
        w.bytes(self.secrets.encryption_private_key.as_bytes())?;
        Ok(w.out)
    }

    /// A bundle from [`KeyPackageBundle::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        let rest = bytes
            .strip_prefix(BUNDLE_MAGIC)
            .ok_or(Error::StateCorrupt("not a key package bundle"))?;
        let mut r = StateReader::new(rest);
        let version = r.u16()?;
        if version != BUNDLE_VERSION {
            return Err(Error::StateVersion(version));
        }
        let key_package = r.encoded()?;
        let init_private_key = HpkePrivateKey::from_slice(r.bytes()?);
        let encryption_private_key = HpkePrivateKey::from_slice(r.bytes()?);
        r.finish()?;
        Ok(Self {
            key_package,
            secrets: KeyPackageSecrets {
                init_private_key,
                encryption_private_key,
            },
        })
    }
}

impl KeyPackage {
    /// The KeyPackage's leaf node.
    pub fn leaf_node(&self) -> &LeafNode {
        &self.tbs.leaf_node
    }

    /// The checks of RFC 9420 §10.1 that need no group: version mls10, the group's suite, the
    /// KeyPackage and leaf signatures, a leaf of source key_package whose lifetime contains
    /// `now` (unless `now` is `None`, [`TimePolicy::SkipChecks`](crate::time::TimePolicy)),
    /// and an init key different from the leaf's encryption key. With `strict`, also that
    /// the leaf's capabilities list the KeyPackage's version and suite, which §7.2 asks of
    /// the sender but §10.1 not of the receiver.
    pub(crate) fn validate(
        &self,
        crypto: &SuiteCrypto<'_>,
        now: Option<u64>,
        strict: bool,
    ) -> Result<(), Error> {
        let tbs = &self.tbs;
        if tbs.version != ProtocolVersion::MLS10 {
            return Err(Error::KeyPackageInvalid("version is not mls10"));
        }
        if tbs.cipher_suite != crypto.suite() {
            return Err(Error::KeyPackageInvalid(
                "cipher suite differs from the group's",
            ));
        }
        let leaf = &tbs.leaf_node.content;
        crypto
            .verify_with_label(
                leaf.signature_key.as_slice(),
                KEY_PACKAGE_TBS_LABEL,
                &tbs.encode()?,
                self.signature.as_slice(),
            )
            .map_err(|_| Error::KeyPackageInvalid("KeyPackage signature does not verify"))?;
        crate::tree::validate::verify_leaf_signature(crypto, &tbs.leaf_node, &[], LeafIndex(0))
            .map_err(|_| Error::KeyPackageInvalid("leaf node signature does not verify"))?;
        let LeafNodeSource::KeyPackage { lifetime } = &leaf.leaf_node_source else {
            return Err(Error::KeyPackageInvalid(
                "leaf node source is not key_package",
            ));
        };
        if let Some(now) = now
            && !lifetime.contains(now)
        {
            return Err(Error::KeyPackageInvalid(
                "lifetime does not contain the current time",
            ));
        }
        if strict
            && (!leaf.capabilities.versions.contains(&tbs.version)
                || !leaf.capabilities.cipher_suites.contains(&tbs.cipher_suite))
        {
            return Err(Error::KeyPackageInvalid(
                "capabilities omit its own version or suite",
            ));
        }
        if tbs.init_key.as_slice() == leaf.encryption_key.as_slice() {
            return Err(Error::KeyPackageInvalid(
                "init key equals the leaf's encryption key",
            ));
        }
        Ok(())
    }
}
