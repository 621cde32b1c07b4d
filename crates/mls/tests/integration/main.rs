//! The library's integration tests, in one binary (one link instead of one per file).
//!
//! Each module tests one area through the public API (and, where a test must reach a piece
//! the official vectors check alone, through the unstable `conclave_mls::internal`).

mod common;
#[path = "../../benches/common/fixture.rs"]
mod fixture;

mod codec_properties;
mod crypto_asymmetric;
mod fuzz_regressions;
mod group_lifecycle;
mod group_properties;
mod group_protocol;
mod hostile;
mod public_api;
mod references;
mod resumption_joins;
mod tree_join;
mod x509_credentials;
