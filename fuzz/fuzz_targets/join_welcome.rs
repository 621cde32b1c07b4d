//! `Group::join` from arbitrary Welcome bytes (an MlsMessage or a bare Welcome) with a fixed
//! KeyPackage and its secrets (see `conclave_mls_fuzz::Fixture`). Never panics.
#![no_main]

use conclave_mls::codec::Decode;
use conclave_mls::messages::{Welcome, WireFormat};
use conclave_mls::{Group, MlsMessage};
use conclave_mls_fuzz::{Fixture, provider, validator};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let welcome = match MlsMessage::decode(data) {
        Ok(m) if m.wire_format() == WireFormat::WELCOME => m,
        Ok(_) => return,
        Err(_) => match Welcome::decode(data) {
            Ok(w) => MlsMessage::from(w),
            Err(_) => return,
        },
    };
    let fx = Fixture::get();
    let p = provider(9);
    if let Ok(group) =
        Group::join(welcome, &fx.joiner, &fx.joiner_key_package, validator()).join(&p)
    {
        let state = group.export_state().expect("a joined group exports");
        Group::import_state(&state, validator()).expect("and imports again");
    }
});
