//! KeyPackageRef and ProposalRef (RFC 9420 §5.2) against the official vectors: a Welcome
//! names its new member by KeyPackageRef, and a commit names proposals by ProposalRef.

use conclave_mls::CipherSuite;
use conclave_mls::codec::Decode;
use conclave_mls::crypto::{RustCrypto, SuiteCrypto};
use conclave_mls::messages::{
    AuthenticatedContent, FramedContentBody, MlsMessage, MlsMessageBody, ProposalOrRef, WireFormat,
};
use serde_json::Value;

fn load(file: &str) -> Option<Vec<Value>> {
    let Some(dir) = std::env::var_os("MLS_TEST_VECTORS") else {
        println!("MLS_TEST_VECTORS is not set: set it to the official test-vectors folder");
        return None;
    };
    let path = std::path::Path::new(&dir).join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    Some(serde_json::from_str(&text).expect("vector file is JSON"))
}

fn message(case: &Value, field: &str) -> MlsMessage {
    let bytes = hex::decode(case[field].as_str().expect("hex field")).expect("hex");
    MlsMessage::decode(&bytes).expect("MLSMessage decodes")
}

#[test]
fn welcome_names_the_key_package_by_its_reference() {
    let Some(cases) = load("welcome.json") else {
        return;
    };
    let provider = RustCrypto::default();
    assert!(!cases.is_empty());
    for case in &cases {
        let suite = CipherSuite(case["cipher_suite"].as_u64().expect("suite") as u16);
        let crypto = SuiteCrypto::new(&provider, suite).expect("suite supported");
        let MlsMessageBody::KeyPackage(kp) = message(case, "key_package").body else {
            panic!("not a KeyPackage")
        };
        let MlsMessageBody::Welcome(welcome) = message(case, "welcome").body else {
            panic!("not a Welcome")
        };
        let reference = kp.reference(&crypto).expect("reference");
        assert_eq!(reference.as_slice().len(), crypto.hash_len());
        assert!(
            welcome.secrets.iter().any(|s| s.new_member == reference),
            "suite {suite:?}: no Welcome entry for the KeyPackage's reference"
        );
    }
}

#[test]
fn commits_reference_proposals_by_their_proposal_ref() {
    let Some(cases) = load("passive-client-handling-commit.json") else {
        return;
    };
    let provider = RustCrypto::default();
    let mut matched = 0;
    for case in &cases {
        let suite = CipherSuite(case["cipher_suite"].as_u64().expect("suite") as u16);
        let crypto = SuiteCrypto::new(&provider, suite).expect("suite supported");
        for epoch in case["epochs"].as_array().expect("epochs") {
            let mut refs = Vec::new();
            for p in epoch["proposals"].as_array().expect("proposals") {
                let bytes = hex::decode(p.as_str().expect("hex")).expect("hex");
                let MlsMessageBody::PublicMessage(pm) =
                    MlsMessage::decode(&bytes).expect("decodes").body
                else {
                    continue; // PrivateMessage proposals need the group's keys
                };
                let content = AuthenticatedContent {
                    wire_format: WireFormat::PUBLIC_MESSAGE,
                    content: pm.content,
                    auth: pm.auth,
                };
                refs.push(content.proposal_reference(&crypto).expect("proposal ref"));
            }
            let MlsMessageBody::PublicMessage(commit) = message(epoch, "commit").body else {
                continue;
            };
            let FramedContentBody::Commit(commit) = commit.content.body else {
                panic!("not a commit")
            };
            for p in &commit.proposals {
                if let ProposalOrRef::Reference(r) = p {
                    assert!(
                        refs.contains(r),
                        "suite {suite:?}: commit references an unknown proposal"
                    );
                    matched += 1;
                }
            }
        }
    }
    assert!(
        matched > 0,
        "the vectors hold commits with proposals by reference"
    );
    println!("{matched} proposal references matched");
}
