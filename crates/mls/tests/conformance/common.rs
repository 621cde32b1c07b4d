//! Shared plumbing for the conformance runners: finding and loading vector files, hex
//! fields, and counting outcomes.

use conclave_mls::codec::Decode;
use conclave_mls::messages::{KeyPackage, MlsMessage, MlsMessageBody, Welcome};
use serde_json::Value;
use std::path::PathBuf;

/// Where the official vectors are, from `MLS_TEST_VECTORS`.
pub fn vectors_dir() -> Option<PathBuf> {
    std::env::var_os("MLS_TEST_VECTORS").map(PathBuf::from)
}

/// The result of running one file's cases.
#[derive(Default)]
pub struct Outcome {
    pub passed: usize,
    pub total: usize,
    pub failures: Vec<String>,
}

/// Runs `check` on every case of a vector file; a panic inside a case counts as a failure
/// of that case, not of the whole run.
pub fn run_cases(cases: &[Value], check: impl Fn(&Value) -> Result<(), String>) -> Outcome {
    let mut outcome = Outcome {
        total: cases.len(),
        ..Default::default()
    };
    for (i, case) in cases.iter().enumerate() {
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(case)))
            .unwrap_or_else(|p| {
                Err(p
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "panic".into()))
            });
        match result {
            Ok(()) => outcome.passed += 1,
            Err(e) => outcome.failures.push(format!("case {i}: {e}")),
        }
    }
    outcome
}

/// A hex field of a case, decoded.
pub fn hex_field(case: &Value, name: &str) -> Result<Vec<u8>, String> {
    let s = case
        .get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("missing hex field `{name}`"))?;
    hex::decode(s).map_err(|e| format!("field `{name}`: {e}"))
}

/// A numeric field of a case.
pub fn u64_field(case: &Value, name: &str) -> Result<u64, String> {
    case.get(name)
        .and_then(Value::as_u64)
        .ok_or_else(|| format!("missing number `{name}`"))
}

/// A string field of a case.
pub fn str_field<'a>(case: &'a Value, name: &str) -> Result<&'a str, String> {
    case.get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("missing string `{name}`"))
}

/// Fails with a message naming `what` unless `actual == expected`.
pub fn expect_eq(what: &str, actual: &[u8], expected: &[u8]) -> Result<(), String> {
    if actual == expected {
        Ok(())
    } else {
        Err(format!(
            "{what}: got {}, want {}",
            hex::encode(actual),
            hex::encode(expected)
        ))
    }
}

/// The cipher suite of a case.
pub fn suite(case: &Value) -> Result<conclave_mls::CipherSuite, String> {
    let n = u64_field(case, "cipher_suite")?;
    u16::try_from(n)
        .map(conclave_mls::CipherSuite)
        .map_err(|_| format!("suite {n} out of range"))
}

/// The case's `key_package` and `welcome` fields, each unwrapped from its MlsMessage.
pub fn key_package_and_welcome(case: &Value) -> Result<(KeyPackage, Welcome), String> {
    let decode = |name| MlsMessage::decode(&hex_field(case, name)?).map_err(|e| e.to_string());
    let MlsMessageBody::KeyPackage(kp) = decode("key_package")?.body else {
        return Err("key_package is not a KeyPackage".into());
    };
    let MlsMessageBody::Welcome(welcome) = decode("welcome")?.body else {
        return Err("welcome is not a Welcome".into());
    };
    Ok((kp, welcome))
}
