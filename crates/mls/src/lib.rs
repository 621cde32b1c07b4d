//! # conclave-mls
//!
//! Messaging Layer Security (RFC 9420) as a sans-IO library: bytes in, bytes and events out.
//! No I/O, no async, no clock and no randomness except through the [`crypto::CryptoProvider`].
//!
//! ## A conversation
//!
//! Alice creates a group, adds Bob from his KeyPackage, Bob joins from the Welcome, they
//! exchange messages, and Alice removes Bob. Every message travels as bytes, the way a
//! Delivery Service would carry it.
//!
//! ```
//! use conclave_mls::codec::{Decode, Encode};
//! use conclave_mls::crypto::{CipherSuite, RustCrypto};
//! use conclave_mls::group::{Group, GroupConfig, JoinRequest, Received};
//! use conclave_mls::identity::{BasicCredentialsOnly, Identity};
//! use conclave_mls::key_package::{create_key_package, KeyPackageOptions};
//! use conclave_mls::messages::{Credential, Lifetime, MlsMessage, MlsMessageBody};
//! use std::{collections::HashMap, sync::Arc};
//!
//! # fn main() -> Result<(), conclave_mls::Error> {
//! let provider = RustCrypto::default();
//! let suite = CipherSuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_ED25519;
//! let policy = Arc::new(BasicCredentialsOnly); // accepts any basic credential: tests only
//! let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
//!
//! // Each client has a credential and a signature key.
//! let alice = Identity::generate(&provider, suite, Credential::Basic { identity: b"alice".to_vec().into() })?;
//! let bob = Identity::generate(&provider, suite, Credential::Basic { identity: b"bob".to_vec().into() })?;
//!
//! // Bob publishes a KeyPackage and keeps its private keys.
//! let (bob_kp, bob_secrets) =
//!     create_key_package(&provider, &bob, KeyPackageOptions::new(Lifetime::starting_at(now, 86_400)))?;
//!
//! // Alice creates the group and commits an Add of Bob.
//! let mut alice_group = Group::create(&provider, &alice, b"team".to_vec(), vec![], GroupConfig::default(), policy.clone())?;
//! let out = alice_group.commit().add_member(bob_kp.clone()).build(&provider)?;
//! // The Delivery Service accepted the commit: Alice moves to the new epoch.
//! alice_group.merge_pending_commit()?;
//!
//! // Bob joins from the Welcome (received as bytes).
//! let welcome = MlsMessage::decode(&out.welcome.expect("Bob was added").encode()?)?;
//! let MlsMessageBody::Welcome(welcome) = welcome.body else { unreachable!() };
//! let mut bob_group = Group::join(&provider, JoinRequest {
//!     identity: &bob,
//!     key_package: &bob_kp,
//!     secrets: &bob_secrets,
//!     welcome: &welcome,
//!     ratchet_tree: None, // the Welcome carries it
//!     external_psks: HashMap::new(),
//!     resumption_psks: HashMap::new(),
//!     config: GroupConfig::default(),
//!     validator: policy.clone(),
//! })?;
//! assert_eq!(alice_group.epoch_authenticator(), bob_group.epoch_authenticator());
//!
//! // Application messages, both ways.
//! let ct = alice_group.encrypt_application(&provider, b"hi Bob", b"")?;
//! match bob_group.process(&provider, &MlsMessage::decode(&ct.encode()?)?)? {
//!     Received::Application { data, .. } => assert_eq!(data, b"hi Bob"),
//!     _ => unreachable!(),
//! }
//! let ct = bob_group.encrypt_application(&provider, b"hi Alice", b"")?;
//! assert!(matches!(alice_group.process(&provider, &ct)?, Received::Application { .. }));
//!
//! // Alice removes Bob; Bob sees a staged commit that removes him.
//! let out = alice_group.commit().remove_member(bob_group.own_leaf()).build(&provider)?;
//! assert!(matches!(alice_group.process(&provider, &out.commit)?, Received::OwnCommit));
//! let Received::Commit(staged) = bob_group.process(&provider, &out.commit)? else { unreachable!() };
//! assert!(staged.removes_us());
//! bob_group.merge(*staged)?;
//! assert!(bob_group.is_removed());
//! assert_eq!(alice_group.members().count(), 1);
//! # Ok(())
//! # }
//! ```
//!
//! ## Layout
//!
//! - [`codec`], [`messages`]: the wire format (§2.1) and every RFC 9420 structure;
//! - [`crypto`]: cipher suites, the provider trait and its RustCrypto backend, labelled
//!   operations (§5);
//! - [`tree`]: array tree math, the ratchet tree with cached hashes, TreeKEM (§4, §7);
//! - [`key_schedule`], [`psk`], [`secret_tree`], [`transcript`]: the secrets of an epoch
//!   (§8, §9);
//! - [`protection`]: PublicMessage and PrivateMessage (§6);
//! - [`key_package`], [`welcome`], [`identity`]: KeyPackages (§10), Welcome (§12.4.3),
//!   credentials (§5.3);
//! - [`group`]: the state machine (§11, §12).
#![forbid(unsafe_code)]
#![warn(unreachable_pub)]

pub mod codec;
pub mod crypto;
mod error;
pub mod group;
pub mod identity;
pub mod key_package;
pub mod messages;
pub mod time;

mod key_schedule;
mod protection;
mod psk;
mod secret_tree;
mod transcript;
mod tree;
mod welcome;

pub use crypto::{CipherSuite, CryptoProvider};
#[cfg(feature = "rust-crypto")]
pub use crypto::RustCrypto;
pub use error::{Error, ErrorKind};
pub use group::{CommitOutput, Group, GroupConfig, Member, Received, StagedCommit};
pub use identity::{Identity, IdentityValidator};
pub use key_package::{KeyPackageBundle, KeyPackageOptions};
pub use messages::{KeyPackage, MlsMessage, RatchetTree};
pub use tree::LeafIndex;

/// The library's internals: key schedule, secret tree, ratchet tree, message protection.
///
/// **Not a stable API.** These modules are public only so that the conformance tests, the
/// fuzz targets, the benchmarks and the interop suite can reach the pieces the official test
/// vectors check one by one. They change without notice between any two versions; an
/// application never needs them.
#[doc(hidden)]
pub mod internal {
    /// The epoch key schedule (RFC 9420 §8).
    pub mod key_schedule {
        pub use crate::key_schedule::*;
    }
    /// PublicMessage and PrivateMessage protection (RFC 9420 §6).
    pub mod protection {
        pub use crate::protection::*;
    }
    /// Pre-shared keys (RFC 9420 §8.4).
    pub mod psk {
        pub use crate::psk::*;
    }
    /// The secret tree (RFC 9420 §9).
    pub mod secret_tree {
        pub use crate::secret_tree::*;
    }
    /// Transcript hashes (RFC 9420 §8.2).
    pub mod transcript {
        pub use crate::transcript::*;
    }
    /// The ratchet tree with cached hashes, TreeKEM (RFC 9420 §4, §7).
    pub mod tree {
        pub use crate::tree::*;
    }
    /// Welcome sealing and opening (RFC 9420 §12.4.3.1).
    pub mod welcome {
        pub use crate::welcome::*;
    }
}
