//! # conclave-mls
//!
//! Messaging Layer Security (RFC 9420) as a sans-IO library: bytes in, bytes and events out.
//! No I/O, no async, no clock and no randomness except through the [`crypto::CryptoProvider`].
#![forbid(unsafe_code)]

pub mod codec;
pub mod crypto;
pub mod error;
pub mod group;
pub mod identity;
pub mod key_package;
pub mod key_schedule;
pub mod messages;
pub mod protection;
pub mod psk;
pub mod secret_tree;
pub mod transcript;
pub mod tree;
pub mod welcome;

pub use crypto::{CipherSuite, CryptoProvider, RustCrypto};
pub use error::Error;
