//! Ratchet tree wire form: decoding never panics and round-trips byte-exactly; importing the
//! array (`tree::RatchetTree::from_wire`) never panics, and a tree it accepts exports the
//! same wire form again.
#![no_main]

use conclave_mls::codec::{Decode, Encode};
use conclave_mls::internal::tree;
use conclave_mls::messages;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(wire) = messages::RatchetTree::decode(data) else {
        return;
    };
    assert_eq!(
        wire.encode().expect("encodes"),
        data,
        "round trip is not byte-exact"
    );
    if let Ok(tree) = tree::RatchetTree::from_wire(wire.clone()) {
        assert_eq!(tree.to_wire(), wire, "from_wire/to_wire changed the tree");
        // Whatever the tree holds, the checks a joiner runs must not panic either.
        let _ = tree.verify_unique_keys();
    }
});
