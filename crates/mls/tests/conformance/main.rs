//! The conformance runner: every official MLS test-vector file, one line each.
//!
//! Run it as `cargo test --release -p conclave-mls --test conformance -- --nocapture` with
//! `MLS_TEST_VECTORS` pointing at a folder holding the files of
//! <https://github.com/mlswg/mls-implementations/tree/main/test-vectors>.

// Not every shared helper has a runner using it yet.
#[allow(dead_code)]
mod common;
mod crypto_basics;
mod deserialization;
mod key_schedule;
mod message_protection;
mod messages;
mod passive_client;
mod psk_secret;
mod secret_tree;
mod transcript_hashes;
mod tree_math;
mod tree_operations;
mod tree_validation;
mod treekem;
mod welcome;

use common::Outcome;
use serde_json::Value;

type Runner = fn(&[Value]) -> Outcome;

/// Every official vector file, with its runner once the checks are written.
const FILES: &[(&str, Option<Runner>)] = &[
    ("tree-math.json", Some(tree_math::run)),
    ("crypto-basics.json", Some(crypto_basics::run)),
    ("secret-tree.json", Some(secret_tree::run)),
    ("message-protection.json", Some(message_protection::run)),
    ("key-schedule.json", Some(key_schedule::run)),
    ("psk_secret.json", Some(psk_secret::run)),
    ("transcript-hashes.json", Some(transcript_hashes::run)),
    ("welcome.json", Some(welcome::run)),
    ("tree-operations.json", Some(tree_operations::run)),
    ("tree-validation.json", Some(tree_validation::run)),
    ("treekem.json", Some(treekem::run)),
    ("messages.json", Some(messages::run)),
    ("deserialization.json", Some(deserialization::run)),
    ("passive-client-welcome.json", Some(passive_client::run)),
    (
        "passive-client-handling-commit.json",
        Some(passive_client::run),
    ),
];

#[test]
fn conformance() {
    let Some(dir) = common::vectors_dir() else {
        println!(
            "MLS_TEST_VECTORS is not set: no official vectors were checked. Point it at a folder \
             with the JSON files of mlswg/mls-implementations (test-vectors/), e.g. \
             MLS_TEST_VECTORS=../shared/mls-test-vectors."
        );
        return;
    };
    let mut failed = Vec::new();
    let mut seen = std::collections::HashSet::new();
    assert!(
        FILES.iter().all(|(f, _)| seen.insert(*f)),
        "a file is listed twice in FILES"
    );
    for (file, runner) in FILES {
        let path = dir.join(file);
        if !path.is_file() {
            println!("vectors {file}: missing");
            failed.push(format!("{file}: not found at {}", path.display()));
            continue;
        }
        let Some(runner) = runner else {
            println!("vectors {file}: not yet");
            continue;
        };
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) => {
                println!("vectors {file}: missing ({e})");
                failed.push(format!("{file}: cannot read {}: {e}", path.display()));
                continue;
            }
        };
        let cases: Vec<Value> = match serde_json::from_str(&text) {
            Ok(Value::Array(cases)) => cases,
            Ok(_) => {
                failed.push(format!("{file}: not a JSON array"));
                continue;
            }
            Err(e) => {
                failed.push(format!("{file}: invalid JSON: {e}"));
                continue;
            }
        };
        let outcome = runner(&cases);
        println!("vectors {file}: {}/{}", outcome.passed, outcome.total);
        for f in outcome.failures.iter().take(5) {
            println!("    {file} {f}");
        }
        if outcome.passed != outcome.total || outcome.total == 0 {
            failed.push(format!(
                "{file}: {}/{} passed",
                outcome.passed, outcome.total
            ));
        }
    }
    assert!(
        failed.is_empty(),
        "conformance failures:\n{}",
        failed.join("\n")
    );
}
