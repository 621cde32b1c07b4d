//! Inputs found by the cargo-fuzz targets of `fuzz/`, kept as regression tests: each must be
//! rejected with an error, never a panic.

use conclave_mls::group::Group;
use conclave_mls::identity::BasicCredentialsOnly;
use std::sync::Arc;

/// `import_state` target: a state whose own leaf index is 2^31 or more overflowed
/// `LeafIndex::node` (`2 * leaf`) while checking the private keys.
#[test]
fn import_state_huge_own_leaf() {
    let bytes = include_bytes!("fuzz_regressions/import_state_leaf_overflow.bin");
    assert!(Group::import_state(bytes, Arc::new(BasicCredentialsOnly)).is_err());
}
