//! `Group::process` of arbitrary MlsMessage bytes by a member of a live three-member group
//! (see `conclave_mls_fuzz::Fixture`). Never panics; a rejected message leaves the state
//! byte-for-byte as it was; an accepted commit merges and the state still exports.
#![no_main]

use conclave_mls::codec::Decode;
use conclave_mls::group::{Group, Received};
use conclave_mls::messages::MlsMessage;
use conclave_mls_fuzz::{Fixture, provider, validator};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn baseline() -> &'static Vec<u8> {
    static BASELINE: OnceLock<Vec<u8>> = OnceLock::new();
    BASELINE.get_or_init(|| {
        let state = &Fixture::get().receiver_state;
        let exported = Group::import_state(state, validator())
            .unwrap()
            .export_state()
            .unwrap();
        assert_eq!(&exported, state, "export(import(state)) differs from state");
        exported
    })
}

fuzz_target!(|data: &[u8]| {
    let before = baseline();
    let Ok(message) = MlsMessage::decode(data) else {
        return;
    };
    let mut group = Group::import_state(before, validator()).unwrap();
    let p = provider(7);
    match group.process(&p, &message) {
        Err(_) => {
            let after = group.export_state().expect("state exports");
            assert!(
                &after == before,
                "a rejected message changed the group state"
            );
        }
        Ok(Received::Commit(staged)) => {
            let _ = group.merge(*staged);
            group.export_state().expect("state exports after merge");
        }
        Ok(_) => {
            group.export_state().expect("state exports");
        }
    }
});
