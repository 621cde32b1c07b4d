//! `GroupInfo` decoding: never panics, and whatever decodes re-encodes to the very same bytes.
#![no_main]

use conclave_mls::codec::{Decode, Encode};
use conclave_mls::messages::GroupInfo;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(value) = GroupInfo::decode(data) {
        let encoded = value.encode().expect("a decoded value encodes");
        assert_eq!(encoded, data, "round trip is not byte-exact");
    }
});
