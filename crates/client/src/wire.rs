//! The wire level under [`crate::Device`], for tools that act as many devices at once
//! without a local store each — the load generator `conclave-load` is one.
//!
//! Everything here is what a [`crate::Device`] does on the wire: the signed requests of
//! both servers ([`AuthClient`], [`DeliveryClient`], [`ws_proof`]), the suite and group
//! configuration every Conclave group uses, the group auth key the DS checks (DESIGN "The
//! Delivery Service knows"), and the sealing of KeyPackages for a pool. A tool that builds
//! on it talks to the servers exactly as the SDK does, so what it measures is the system.
//!
//! ```no_run
//! # async fn f() -> Result<(), conclave_client::Error> {
//! use conclave_client::wire::{DeliveryClient, Sign};
//! use ed25519_dalek::SigningKey;
//! let ds = DeliveryClient::new("http://127.0.0.1:8081")?;
//! let key = SigningKey::from_bytes(&[7; 32]);
//! let mailbox = ds.create_mailbox(&key, None).await?;
//! let entries = ds.entries(&mailbox, &key, 0).await?;
//! # let _ = (entries, Sign::No);
//! # Ok(())
//! # }
//! ```

use crate::error::Error;
use conclave_mls::{CipherSuite, Group, GroupConfig, RustCrypto};
use ed25519_dalek::SigningKey;

pub use crate::auth::AuthClient;
pub use crate::delivery::{CommitOutcome, DeliveryClient, Sign, ws_proof};

/// The cipher suite of every Conclave group (RFC 9420 §17.1, the mandatory one).
pub const SUITE: CipherSuite = crate::device::SUITE;

/// The configuration of every Conclave group: handshakes as PrivateMessages, so the DS sees
/// no sender, credential or proposal (RFC 9420 §6.3, RFC 9750 §8.1).
pub fn group_config() -> GroupConfig {
    crate::group::config()
}

/// The group auth key of the group's current epoch, from its exporter secret (RFC 9420
/// §8.5): what signs the group's requests to the DS.
pub fn group_auth_key(provider: &RustCrypto, group: &Group) -> Result<SigningKey, Error> {
    crate::group::auth_key(provider, group)
}

/// The group auth key of the epoch the group's pending commit starts: what a committer
/// hands the DS with the commit.
pub fn pending_group_auth_key(provider: &RustCrypto, group: &Group) -> Result<SigningKey, Error> {
    crate::group::pending_auth_key(provider, group)
}

/// Seals an encoded KeyPackage `MLSMessage` for the pool `pool_id` under `pool_key`.
pub fn seal_key_package(
    provider: &RustCrypto,
    pool_key: &[u8],
    pool_id: &str,
    message: &[u8],
) -> Result<Vec<u8>, Error> {
    crate::device::seal_key_package(provider, pool_key, pool_id, message)
}

/// Opens a blob claimed from the pool `pool_id`; `None` if it does not open with `pool_key`.
pub fn open_key_package(
    provider: &RustCrypto,
    pool_key: &[u8],
    pool_id: &str,
    sealed: &[u8],
) -> Option<Vec<u8>> {
    crate::device::open_pool_blob(provider, pool_key, pool_id, sealed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_key_packages_open_only_with_their_key_and_pool() {
        let provider = RustCrypto::default();
        let key = [9u8; 32];
        let sealed = seal_key_package(&provider, &key, "pool-a", b"key package").unwrap();
        assert_eq!(
            open_key_package(&provider, &key, "pool-a", &sealed).as_deref(),
            Some(&b"key package"[..])
        );
        assert_eq!(open_key_package(&provider, &key, "pool-b", &sealed), None);
        assert_eq!(
            open_key_package(&provider, &[8; 32], "pool-a", &sealed),
            None
        );
        assert_eq!(
            open_key_package(&provider, &key, "pool-a", &sealed[..11]),
            None
        );
    }
}
