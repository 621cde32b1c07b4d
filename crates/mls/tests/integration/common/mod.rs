//! Setup shared by the group-level integration tests: basic identities, KeyPackages valid
//! for a day, and Welcome joins without PSKs or an out-of-band tree.

// Every test crate includes this module but uses only some of it.
#![allow(dead_code)]

use conclave_mls::codec::Encode;
use conclave_mls::crypto::Secret;
use conclave_mls::crypto::{CipherSuite, RustCrypto};
use conclave_mls::group::{Group, GroupConfig};
use conclave_mls::identity::{BasicCredentialsOnly, Identity, IdentityValidator};
use conclave_mls::internal::tree::LeafIndex;
use conclave_mls::key_package::KeyPackageBundle;
use conclave_mls::key_package::{KeyPackageOptions, KeyPackageSecrets, create_key_package};
use conclave_mls::messages::{
    Credential, Extension, ExtensionType, GroupInfo, KeyPackage, Lifetime, MlsMessage,
    MlsMessageBody, RatchetTree, RequiredCapabilities, Welcome,
};
use conclave_mls::{CryptoProvider, Error};
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

/// Everything a join from a Welcome takes, as one value the tests can vary field by field;
/// [`join`] hands it to the public builder ([`Group::join`]).
pub struct JoinRequest<'a> {
    pub identity: &'a Identity,
    pub key_package: &'a KeyPackage,
    pub secrets: &'a KeyPackageSecrets,
    pub welcome: &'a Welcome,
    pub ratchet_tree: Option<RatchetTree>,
    pub external_psks: HashMap<Vec<u8>, Secret>,
    pub resumption_psks: HashMap<(Vec<u8>, u64), Secret>,
    pub config: GroupConfig,
    pub validator: Arc<dyn IdentityValidator>,
}

/// What a Welcome continues.
pub enum Resumes<'o> {
    Fresh,
    ReInit(&'o Group),
    Branch(&'o Group),
}

/// Joins through the public builder: [`Group::join`] with every option of `request`.
pub fn join(p: &dyn CryptoProvider, request: JoinRequest<'_>) -> Result<Group, Error> {
    join_resuming(p, Resumes::Fresh, request)
}

/// [`join`] of a ReInit's or branch's Welcome.
pub fn join_resuming(
    p: &dyn CryptoProvider,
    resumes: Resumes<'_>,
    request: JoinRequest<'_>,
) -> Result<Group, Error> {
    let bundle = KeyPackageBundle::new(request.key_package.clone(), request.secrets.clone());
    let mut builder = Group::join(
        MlsMessage::from(request.welcome.clone()),
        request.identity,
        &bundle,
        request.validator,
    )
    .config(request.config);
    if let Some(tree) = request.ratchet_tree {
        builder = builder.ratchet_tree(tree);
    }
    for (id, psk) in request.external_psks {
        builder = builder.external_psk(id, psk);
    }
    for ((group_id, epoch), psk) in request.resumption_psks {
        builder = builder.resumption_psk(group_id, epoch, psk);
    }
    builder = match resumes {
        Resumes::Fresh => builder,
        Resumes::ReInit(old) => builder.reinit_of(old),
        Resumes::Branch(old) => builder.branch_of(old),
    };
    builder.join(p)
}

/// Everything an external join takes; [`join_external`] hands it to the public builder.
pub struct ExternalJoinRequest<'a> {
    pub identity: &'a Identity,
    pub group_info: &'a GroupInfo,
    pub ratchet_tree: Option<RatchetTree>,
    pub resync: Option<LeafIndex>,
    pub authenticated_data: Vec<u8>,
    pub config: GroupConfig,
    pub validator: Arc<dyn IdentityValidator>,
}

/// Joins by external commit through the public builder ([`Group::join_external`]).
pub fn join_external(
    p: &dyn CryptoProvider,
    request: ExternalJoinRequest<'_>,
) -> Result<(Group, MlsMessage), Error> {
    let mut builder = Group::join_external(
        MlsMessage::from(request.group_info.clone()),
        request.identity,
        request.validator,
    )
    .config(request.config)
    .authenticated_data(request.authenticated_data);
    if let Some(tree) = request.ratchet_tree {
        builder = builder.ratchet_tree(tree);
    }
    if let Some(leaf) = request.resync {
        builder = builder.resync(leaf);
    }
    builder.build(p)
}

/// Creates a group through the public builder ([`Group::builder`]).
pub fn create(
    p: &dyn CryptoProvider,
    identity: &Identity,
    group_id: Vec<u8>,
    extensions: Vec<Extension>,
    config: GroupConfig,
    validator: Arc<dyn IdentityValidator>,
) -> Result<Group, Error> {
    Group::builder(identity, validator)
        .group_id(group_id)
        .extensions(extensions)
        .config(config)
        .build(p)
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
