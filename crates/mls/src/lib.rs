//! # conclave-mls
//!
//! Messaging Layer Security (RFC 9420) as a sans-IO library: bytes in, bytes and events out.
//! No I/O, no async, no storage engine; randomness only through the [`CryptoProvider`], time
//! only through the [`time::TimePolicy`] the application configures.
//!
//! ## A conversation
//!
//! Alice creates a group, adds Bob from his KeyPackage, Bob inspects and accepts the Welcome,
//! they exchange messages, and Alice removes Bob. Everything that travels is an
//! [`MlsMessage`], carried as bytes the way a Delivery Service would carry it.
//!
//! ```
//! use conclave_mls::codec::{Decode, Encode};
//! use conclave_mls::identity::BasicCredentialsOnly;
//! use conclave_mls::messages::{Credential, Lifetime};
//! use conclave_mls::{
//!     CipherSuite, Group, GroupState, Identity, KeyPackageBundle, KeyPackageOptions,
//!     MlsMessage, Received, RustCrypto,
//! };
//! use std::sync::Arc;
//!
//! # fn main() -> Result<(), conclave_mls::Error> {
//! let provider = RustCrypto::default();
//! let suite = CipherSuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_ED25519;
//! let policy = Arc::new(BasicCredentialsOnly); // accepts any basic credential: tests only
//! let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
//! let wire = |m: &MlsMessage| MlsMessage::decode(&m.encode()?); // what the DS does
//!
//! // Each client has a credential and a signature key.
//! let alice = Identity::generate(&provider, suite, Credential::basic("alice"))?;
//! let bob = Identity::generate(&provider, suite, Credential::basic("bob"))?;
//!
//! // Bob publishes a KeyPackage and keeps the bundle with its private keys.
//! let bob_kp = KeyPackageBundle::generate(
//!     &provider,
//!     &bob,
//!     KeyPackageOptions::new(Lifetime::starting_at(now, 86_400)),
//! )?;
//! let published = wire(&bob_kp.message())?;
//!
//! // Alice creates the group and commits an Add of Bob.
//! let mut alice_group = Group::builder(&alice, policy.clone()).build(&provider)?;
//! let out = alice_group.commit().add_member(published.into_key_package()?).build(&provider)?;
//! // The Delivery Service accepted the commit: Alice moves to the new epoch.
//! alice_group.merge_pending_commit()?;
//!
//! // Bob stages the Welcome, sees who invited him, and accepts.
//! let welcome = wire(&out.welcome.expect("Bob was added"))?;
//! let staged = Group::join(welcome, &bob, &bob_kp, policy.clone()).stage(&provider)?;
//! assert_eq!(staged.added_by().unwrap().credential, &Credential::basic("alice"));
//! let mut bob_group = staged.accept();
//! assert_eq!(alice_group.epoch_authenticator(), bob_group.epoch_authenticator());
//!
//! // Application messages, both ways; a sender reading its own message back is told so.
//! let ct = wire(&alice_group.encrypt_application(&provider, b"hi Bob", b"")?)?;
//! match bob_group.process(&provider, &ct)? {
//!     Received::Application { data, .. } => assert_eq!(data, b"hi Bob"),
//!     other => panic!("{other:?}"),
//! }
//! assert!(matches!(alice_group.process(&provider, &ct)?, Received::OwnMessage { .. }));
//! let ct = bob_group.encrypt_application(&provider, b"hi Alice", b"")?;
//! assert!(matches!(alice_group.process(&provider, &ct)?, Received::Application { .. }));
//!
//! // Alice removes Bob; Bob sees a staged commit that removes him.
//! let out = alice_group.commit().remove_member(bob_group.own_leaf()).build(&provider)?;
//! assert!(matches!(alice_group.process(&provider, &out.commit)?, Received::OwnCommit));
//! let Received::Commit(staged) = bob_group.process(&provider, &out.commit)? else { unreachable!() };
//! assert!(staged.removes_us());
//! bob_group.merge(*staged)?;
//! assert_eq!(bob_group.state(), GroupState::Removed);
//! assert_eq!(alice_group.member_count(), 1);
//! # Ok(())
//! # }
//! ```
//!
//! ## Layout
//!
//! - [`group`]: the state machine (§11, §12): [`Group`], its builders, commits, Welcomes;
//! - [`messages`], [`codec`]: every RFC 9420 wire structure and its encoding (§2.1);
//! - [`crypto`]: cipher suites, the [`CryptoProvider`] trait and its RustCrypto backend
//!   (feature `rust-crypto`, on by default);
//! - [`identity`]: credentials and the application's [`IdentityValidator`] (§5.3), with X.509
//!   chains in [`identity::x509`] (feature `x509`, on by default);
//! - [`key_package`]: KeyPackages (§10); [`time`]: the clock lifetimes are checked against;
//! - [`guide`]: persistence, and choosing a cipher suite.
//!
//! Internals (key schedule, secret tree, ratchet tree, message protection) are private; the
//! conformance tests reach them through a hidden, unstable `internal` module.
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

pub mod guide;

mod key_schedule;
mod protection;
mod psk;
mod secret_tree;
mod transcript;
mod tree;
mod welcome;

#[cfg(feature = "rust-crypto")]
pub use crypto::RustCrypto;
pub use crypto::{CipherSuite, CryptoProvider};
pub use error::{DecodeError, Error, ErrorKind};
pub use group::{CommitOutput, Group, GroupConfig, GroupState, Member, Received, StagedCommit};
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
