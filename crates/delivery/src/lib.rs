//! # conclave-ds
//!
//! Conclave Delivery Service (RFC 9750 §6).
#![forbid(unsafe_code)]
