//! Every use of `conclave-mls` by the tests: its X.509 validator, as a client would use it.

use conclave_mls::identity::IdentityValidator;
use conclave_mls::identity::x509::X509Validator;
use conclave_mls::messages::{Certificate, Credential};
use conclave_mls::time::TimePolicy;

/// Validates `chain` for `signature_key` with `root_der` as the only trust anchor at `now`;
/// on success, the `(user, device)` the leaf names.
pub fn validate(
    root_der: &[u8],
    chain: &[Vec<u8>],
    signature_key: &[u8],
    now: u64,
) -> Result<(String, Option<String>), String> {
    let validator =
        X509Validator::new([root_der], TimePolicy::at(now)).map_err(|e| e.to_string())?;
    let credential = Credential::X509 {
        certificates: chain
            .iter()
            .map(|d| Certificate {
                cert_data: d.clone().into(),
            })
            .collect(),
    };
    validator
        .validate(&credential, &signature_key.to_vec().into())
        .map_err(|e| e.to_string())?;
    let id = X509Validator::identity(&credential).map_err(|e| e.to_string())?;
    Ok((id.user, id.device))
}
