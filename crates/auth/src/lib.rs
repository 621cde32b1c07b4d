//! # conclave-as
//!
//! Conclave Authentication Service (RFC 9750 §4).
#![forbid(unsafe_code)]
