//! # conclave-privacy-pass
//!
//! Privacy Pass publicly verifiable tokens: token type 0x0002 of RFC 9578 §6 (Blind RSA,
//! 2048-bit), redeemed with the `PrivateToken` HTTP authentication scheme of RFC 9577, over
//! RSA blind signatures (RFC 9474, RSABSSA-SHA384-PSS-Deterministic).
//!
//! Conclave's Authentication Service is the issuer: it signs blinded requests of its
//! registered devices and so never sees the tokens. The Delivery Service is the origin: it
//! verifies tokens with the issuer's public key alone and refuses a nonce it has seen. The
//! two cannot link a token to the device it was issued to (RFC 9576 §3.2).
//!
//! ```
//! use conclave_privacy_pass::{IssuerKey, IssuerPublicKey, Token, TokenChallenge, request};
//! # fn main() -> Result<(), conclave_privacy_pass::Error> {
//! let issuer = IssuerKey::generate()?;
//! // The origin publishes a challenge and trusts the issuer's key.
//! let challenge = TokenChallenge::new("issuer.example", None, "origin.example")?;
//! let key = IssuerPublicKey::from_spki(issuer.public_key().spki())?;
//! // The client blinds, the issuer signs blind, the client finishes.
//! let (token_request, pending) = request(&key, &challenge.encode())?;
//! let token_response = issuer.issue(&token_request)?;
//! let token = pending.finish(&key, &token_response)?;
//! // The origin verifies.
//! let redeemed = Token::decode(&token.encode())?;
//! assert_eq!(redeemed.challenge_digest(), &challenge.digest());
//! key.verify(&redeemed)?;
//! # Ok(())
//! # }
//! ```
//!
//! ## Layout
//! - [`blind_rsa`]: RFC 9474 on RustCrypto's `rsa` (its constant-time raw operations);
//! - [`token`]: the RFC 9577/9578 messages and the client, issuer and origin steps;
//! - [`header`]: the `Authorization` and `WWW-Authenticate` values of RFC 9577.
#![forbid(unsafe_code)]

pub mod blind_rsa;
pub mod header;
pub mod token;

#[cfg(test)]
mod rfc9578;

pub use token::{
    IssuerKey, IssuerPublicKey, PendingToken, REQUEST_LEN, RESPONSE_LEN, TOKEN_LEN, TOKEN_TYPE,
    Token, TokenChallenge, request,
};

/// Why a Privacy Pass operation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A message does not parse (length, fields, trailing bytes).
    #[error("malformed Privacy Pass message")]
    Malformed,
    /// A message is of another token type than 2.
    #[error("not a token of type 2 (Blind RSA, 2048-bit)")]
    WrongType,
    /// A message names another issuer key.
    #[error("another issuer key")]
    WrongKey,
    /// A key is not a 2048-bit RSA key in the expected encoding.
    #[error("not a 2048-bit RSA issuer key in the RFC 9578 encoding")]
    Key,
    /// A signature does not verify.
    #[error("the signature does not verify")]
    BadSignature,
    /// The private-key operation failed its own check.
    #[error("the blind signature failed")]
    Signing,
    /// The operating system's random source failed.
    #[error("no randomness")]
    Rng,
}
