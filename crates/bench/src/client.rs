//! What the harness asks of an MLS implementation: one client, at most one group, every
//! message in and out as serialized `MLSMessage` bytes, the way a Delivery Service carries
//! them. Each implementation (Conclave, OpenMLS, mls-rs) puts its own API behind this trait,
//! so the scenarios in `scenario.rs` are written once.

use std::error::Error;

/// Errors of any implementation, boxed.
pub type Result<T> = std::result::Result<T, Box<dyn Error + Send + Sync>>;

/// A commit as it leaves its sender.
pub struct Commit {
    /// The commit message.
    pub commit: Vec<u8>,
    /// The Welcome, if the commit adds members.
    pub welcome: Option<Vec<u8>>,
}

/// One client of one implementation, in at most one group.
pub trait Client {
    /// A fresh KeyPackage (`MLSMessage` bytes); its private keys stay with the client.
    fn key_package(&mut self) -> Result<Vec<u8>>;
    /// Creates a one-member group (Welcomes carry the ratchet tree).
    fn create_group(&mut self, group_id: &[u8]) -> Result<()>;
    /// Commits Adds of `key_packages` and merges the commit.
    fn add(&mut self, key_packages: &[Vec<u8>]) -> Result<Commit>;
    /// Joins from a Welcome carrying the ratchet tree, validating the whole tree.
    fn join(&mut self, welcome: &[u8]) -> Result<()>;
    /// Joins by external commit from a GroupInfo carrying the ratchet tree; returns the commit.
    fn join_external(&mut self, group_info: &[u8]) -> Result<Vec<u8>>;
    /// Commits with an UpdatePath and no proposals, and merges it.
    fn commit_update(&mut self) -> Result<Vec<u8>>;
    /// Commits the removal of `leaf` and merges it.
    fn remove(&mut self, leaf: u32) -> Result<Vec<u8>>;
    /// Processes another member's commit and merges it.
    fn process_commit(&mut self, message: &[u8]) -> Result<()>;
    /// Encrypts application data.
    fn encrypt(&mut self, data: &[u8]) -> Result<Vec<u8>>;
    /// Decrypts an application message.
    fn decrypt(&mut self, message: &[u8]) -> Result<Vec<u8>>;
    /// The client's leaf index.
    fn own_leaf(&self) -> u32;
    /// The current epoch authenticator, to check that members agree.
    fn epoch_authenticator(&self) -> Vec<u8>;
}

/// Boxes any error by its `Debug` text (the peers' error types are not all `Send + Sync`).
pub fn dbg_err<E: std::fmt::Debug>(e: E) -> Box<dyn Error + Send + Sync> {
    format!("{e:?}").into()
}
