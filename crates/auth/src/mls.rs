//! Every use of `conclave-mls` by the AS, in one place (its API is still moving): checking
//! that a chain the AS issued is a valid MLS X.509 credential (RFC 9420 §5.3) for the key
//! and the client it names.

use conclave_mls::identity::IdentityValidator;
use conclave_mls::identity::x509::X509Validator;
use conclave_mls::messages::{Certificate, Credential};
use conclave_mls::time::TimePolicy;

/// Checks `chain` (DER, leaf first) with the library's X.509 validator, trusting only
/// `root_der`, at time `now`: it must validate for `signature_key` and name `user`/`device`.
pub fn check_credential(
    root_der: &[u8],
    chain: &[Vec<u8>],
    signature_key: &[u8],
    user: &str,
    device: &str,
    now: u64,
) -> Result<(), String> {
    let validator =
        X509Validator::new([root_der], TimePolicy::at(now)).map_err(|e| e.to_string())?;
    let credential = Credential::X509 {
        certificates: chain
            .iter()
            .map(|der| Certificate {
                cert_data: der.clone().into(),
            })
            .collect(),
    };
    validator
        .validate(&credential, &signature_key.to_vec().into())
        .map_err(|e| e.to_string())?;
    let identity = X509Validator::identity(&credential).map_err(|e| e.to_string())?;
    if identity.user != user || identity.device.as_deref() != Some(device) {
        return Err(format!(
            "the certificate names {identity}, not {user}/{device}"
        ));
    }
    Ok(())
}
