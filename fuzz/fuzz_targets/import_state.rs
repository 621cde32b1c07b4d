//! `Group::import_state` of arbitrary bytes: never panics, and a state it accepts exports
//! again.
#![no_main]

use conclave_mls::group::Group;
use conclave_mls_fuzz::validator;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(group) = Group::import_state(data, validator()) {
        let _ = group.export_state();
    }
});
