//! # conclave-api
//!
//! The wire types of Conclave's two servers, shared by the servers and the client SDK. No I/O.
//!
//! - [`delivery`]: the Delivery Service (RFC 9750 §6): mailboxes, KeyPackage pools, group logs;
//! - [`auth`]: the Authentication Service (RFC 9750 §4): registration, devices, key
//!   transparency, the contact relay.
#![forbid(unsafe_code)]

pub mod auth;
mod bytes;
pub mod delivery;

pub use bytes::{Bytes, decode_b64, encode_b64};
