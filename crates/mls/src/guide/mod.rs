//! Guides: how to use the library well, beyond what one function's documentation says.
//!
//! - [`persistence`]: what to store, when, and how a crash between two steps is survived;
//! - [`cipher_suites`]: which cipher suite to choose.

#[doc = include_str!("persistence.md")]
pub mod persistence {}

#[doc = include_str!("cipher_suites.md")]
pub mod cipher_suites {}
