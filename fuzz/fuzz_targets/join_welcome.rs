//! `Group::join` from arbitrary Welcome bytes (an MlsMessage or a bare Welcome) with a fixed
//! KeyPackage and its secrets (see `conclave_mls_fuzz::Fixture`). Never panics.
#![no_main]

use conclave_mls::codec::Decode;
use conclave_mls::group::{Group, GroupConfig, JoinRequest};
use conclave_mls::messages::{MlsMessage, MlsMessageBody, Welcome};
use conclave_mls_fuzz::{Fixture, provider, validator};
use libfuzzer_sys::fuzz_target;
use std::collections::HashMap;

fuzz_target!(|data: &[u8]| {
    let welcome = match MlsMessage::decode(data) {
        Ok(MlsMessage {
            body: MlsMessageBody::Welcome(w),
            ..
        }) => w,
        Ok(_) => return,
        Err(_) => match Welcome::decode(data) {
            Ok(w) => w,
            Err(_) => return,
        },
    };
    let fx = Fixture::get();
    let p = provider(9);
    if let Ok(group) = Group::join(
        &p,
        JoinRequest {
            identity: &fx.joiner,
            key_package: &fx.joiner_key_package,
            secrets: &fx.joiner_secrets,
            welcome: &welcome,
            ratchet_tree: None,
            external_psks: HashMap::new(),
            resumption_psks: HashMap::new(),
            config: GroupConfig::default(),
            validator: validator(),
        },
    ) {
        let state = group.export_state().expect("a joined group exports");
        Group::import_state(&state, validator()).expect("and imports again");
    }
});
