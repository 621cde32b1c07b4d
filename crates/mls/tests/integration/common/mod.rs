//! Setup shared by the group-level integration tests: basic identities, KeyPackages valid
//! for a day, and Welcome joins without PSKs or an out-of-band tree.

// Every test crate includes this module but uses only some of it.
#![allow(dead_code)]

use conclave_mls::codec::Encode;
use conclave_mls::crypto::{CipherSuite, RustCrypto};
use conclave_mls::group::{GroupConfig, JoinRequest};
use conclave_mls::identity::{BasicCredentialsOnly, Identity, IdentityValidator};
use conclave_mls::key_package::{KeyPackageOptions, KeyPackageSecrets, create_key_package};
use conclave_mls::messages::{
    Credential, Extension, ExtensionType, KeyPackage, Lifetime, MlsMessage, MlsMessageBody,
    RequiredCapabilities, Welcome,
};
use std::collections::HashMap;
use std::sync::Arc;

/// Seconds since the Unix epoch: KeyPackage lifetimes are checked against the system clock.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A fresh signature key in `suite` with a basic credential naming `name`.
pub fn basic_identity(p: &RustCrypto, suite: CipherSuite, name: &str) -> Identity {
    Identity::generate(
        p,
        suite,
        Credential::Basic {
            identity: name.as_bytes().to_vec().into(),
        },
    )
    .unwrap()
}

/// KeyPackage options with a lifetime of one day starting now.
pub fn one_day() -> KeyPackageOptions {
    KeyPackageOptions::new(Lifetime::starting_at(now(), 86_400))
}

/// A KeyPackage of `id`, valid for one day from now, with its private keys.
pub fn key_package(p: &RustCrypto, id: &Identity) -> (KeyPackage, KeyPackageSecrets) {
    create_key_package(p, id, one_day()).unwrap()
}

/// The validator that accepts any basic credential.
pub fn basic() -> Arc<dyn IdentityValidator> {
    Arc::new(BasicCredentialsOnly)
}

/// The Welcome inside `message`; panics on any other message.
pub fn welcome_of(message: &MlsMessage) -> &Welcome {
    let MlsMessageBody::Welcome(welcome) = &message.body else {
        panic!("not a Welcome")
    };
    welcome
}

/// A request to join from `welcome` with the tree taken from its GroupInfo extension and no
/// PSKs; override fields with struct update syntax where a test needs more.
pub fn join_request<'a>(
    identity: &'a Identity,
    key_package: &'a KeyPackage,
    secrets: &'a KeyPackageSecrets,
    welcome: &'a Welcome,
    config: GroupConfig,
    validator: Arc<dyn IdentityValidator>,
) -> JoinRequest<'a> {
    JoinRequest {
        identity,
        key_package,
        secrets,
        welcome,
        ratchet_tree: None,
        external_psks: HashMap::new(),
        resumption_psks: HashMap::new(),
        config,
        validator,
    }
}

/// A required_capabilities extension that requires nothing beyond the defaults.
pub fn required_capabilities() -> Extension {
    let requirements = RequiredCapabilities {
        extension_types: vec![],
        proposal_types: vec![],
        credential_types: vec![],
    };
    Extension {
        extension_type: ExtensionType::REQUIRED_CAPABILITIES,
        extension_data: requirements.encode().unwrap().into(),
    }
}
