//! The SDK's errors.

use std::fmt;

/// Which server answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Service {
    /// The Authentication Service.
    Auth,
    /// The Delivery Service.
    Delivery,
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Service::Auth => "Authentication Service",
            Service::Delivery => "Delivery Service",
        })
    }
}

/// Everything that can go wrong in the SDK.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The local store (SQLite) failed.
    #[error("local store: {0}")]
    Store(#[from] sqlx::Error),
    /// The store key (passphrase) is not the one the store was created with.
    #[error("wrong passphrase for this device's store")]
    WrongKey,
    /// A sealed value does not open: the file was changed or moved between slots.
    #[error("a value in the local store does not decrypt (tampered or corrupt)")]
    Unseal,
    /// A stored value does not parse.
    #[error("corrupt local state: {0}")]
    Corrupt(String),
    /// A setting is wrong.
    #[error("configuration: {0}")]
    Config(String),
    /// A server could not be reached, or answered something that is not its API.
    #[error("{service}: {reason}")]
    Network {
        /// Which server.
        service: Service,
        /// What failed.
        reason: String,
    },
    /// A server refused the request.
    #[error("{service} refused the request ({status} {code}): {message}")]
    Refused {
        /// Which server.
        service: Service,
        /// The HTTP status.
        status: u16,
        /// The API's stable error code (`snake_case`).
        code: String,
        /// Its explanation.
        message: String,
    },
    /// The MLS library refused an operation or a message.
    #[error("MLS: {0}")]
    Mls(#[from] conclave_mls::Error),
    /// A cryptographic primitive failed.
    #[error("crypto: {0}")]
    Crypto(#[from] conclave_mls::crypto::CryptoError),
    /// What a server or a peer served does not verify (certificate chain, transparency
    /// proof, signature): the data is refused.
    #[error("verification of {subject} failed: {reason}")]
    Verification {
        /// Who or what was being verified.
        subject: String,
        /// Why it failed.
        reason: String,
    },
    /// This device is not registered yet.
    #[error("the device is not registered")]
    NotRegistered,
    /// The AS knows no such user, or none of the user's devices is current.
    #[error("{0} is not a user of this Authentication Service (or has no current device)")]
    UnknownUser(String),
    /// No contact by that user id.
    #[error("{0} is not a contact")]
    NotAContact(String),
    /// No group by that id on this device.
    #[error("no such group")]
    UnknownGroup,
    /// The device is no longer a member of the group.
    #[error("this device is no longer a member of the group")]
    NotAMember,
    /// None of the user's devices had a KeyPackage to claim.
    #[error("no device of {0} can be added: no KeyPackage could be claimed")]
    NoKeyPackage(String),
    /// A commit kept losing the race for its epoch.
    #[error("the commit lost the race for its epoch {0} times in a row")]
    Contention(u32),
}

impl Error {
    /// The API error code when a server refused the request.
    pub fn code(&self) -> Option<&str> {
        match self {
            Error::Refused { code, .. } => Some(code),
            _ => None,
        }
    }
}

/// The SDK's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
