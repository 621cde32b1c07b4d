//! Checking what the AS serves about a user before trusting it (RFC 9750 §7, §8.4.3.1):
//! every device's certificate chain must lead to the pinned AS root and name that user and
//! device, its contact key must be signed by its certified key, and the key-transparency
//! proof must show that these are exactly the user's devices in the directory — so an AS
//! that hides a device, or slips one in for a single client, is caught.

use crate::error::Error;
use conclave_api::auth as api;
use conclave_mls::IdentityValidator as _;
use conclave_mls::identity::x509::X509Validator;
use conclave_mls::messages::{Certificate, Credential};
use conclave_mls::time::TimePolicy;
use protobuf::Message as _;

/// Domain separation of the directory's hashes; the AS uses the same label.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ConclaveDomain;

impl akd::DomainLabel for ConclaveDomain {
    fn domain_label() -> &'static [u8] {
        api::KT_DOMAIN_LABEL
    }
}

type KtConfig = akd::ExperimentalConfiguration<ConclaveDomain>;

/// What a device trusts the AS with: its root certificate and its directory's VRF key,
/// pinned at registration.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub(crate) struct Anchors {
    /// The AS root certificate, DER.
    pub(crate) root: Vec<u8>,
    /// The key-transparency VRF public key.
    pub(crate) vrf_public_key: Vec<u8>,
}

/// One device of a user, verified.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct VerifiedDevice {
    /// The user.
    pub user_id: String,
    /// The device.
    pub device_id: String,
    /// Its MLS signature key (Ed25519).
    pub signature_key: Vec<u8>,
    /// Its certificate chain, leaf first (its MLS credential).
    pub certificates: Vec<Vec<u8>>,
    /// Its contact key (HPKE), if published.
    pub contact_key: Option<Vec<u8>>,
}

/// The X.509 credential of a chain.
pub(crate) fn credential(certificates: &[Vec<u8>]) -> Credential {
    Credential::X509 {
        certificates: certificates
            .iter()
            .map(|c| Certificate {
                cert_data: c.clone().into(),
            })
            .collect(),
    }
}

/// The identity policy of every group: chains to the AS root, checked at the current time.
pub(crate) fn validator(anchors: &Anchors) -> Result<X509Validator, Error> {
    Ok(X509Validator::new(
        [anchors.root.as_slice()],
        TimePolicy::system(),
    )?)
}

/// The `(user, device)` a member's credential names.
pub(crate) fn identity_of(credential: &Credential) -> Option<(String, String)> {
    let id = X509Validator::identity(credential).ok()?;
    Some((id.user, id.device?))
}

/// Checks a look-up answer for `user`; returns its devices, verified.
pub(crate) fn verify_user(
    anchors: &Anchors,
    user: &str,
    answer: &api::UserDevices,
) -> Result<Vec<VerifiedDevice>, Error> {
    let fail = |reason: String| Error::Verification {
        subject: user.to_owned(),
        reason,
    };
    if answer.user_id != user {
        return Err(fail(format!("the AS answered for {}", answer.user_id)));
    }
    let proof = answer
        .transparency
        .as_ref()
        .ok_or_else(|| fail("no transparency proof".into()))?;
    verify_lookup(anchors, user, &answer.devices, proof).map_err(fail)?;
    let validator = validator(anchors)?;
    let mut out = Vec::with_capacity(answer.devices.len());
    for device in &answer.devices {
        let certificates: Vec<Vec<u8>> = device
            .certificate
            .certificates
            .iter()
            .map(|c| c.0.clone())
            .collect();
        let credential = credential(&certificates);
        validator
            .validate(&credential, &device.signature_key.0.clone().into())
            .map_err(|e| fail(format!("device {}: {e}", device.device_id)))?;
        match identity_of(&credential) {
            Some((u, d)) if u == user && d == device.device_id => {}
            _ => {
                return Err(fail(format!(
                    "the certificate of device {} names someone else",
                    device.device_id
                )));
            }
        }
        let contact_key = match &device.contact_key {
            None => None,
            Some(ck) => {
                let message = api::contact_key_message(user, &device.device_id, &ck.key.0);
                if !verify_ed25519(&device.signature_key.0, &message, &ck.signature.0) {
                    return Err(fail(format!(
                        "the contact key of device {} is not signed by it",
                        device.device_id
                    )));
                }
                Some(ck.key.0.clone())
            }
        };
        out.push(VerifiedDevice {
            user_id: user.to_owned(),
            device_id: device.device_id.clone(),
            signature_key: device.signature_key.0.clone(),
            certificates,
            contact_key,
        });
    }
    Ok(out)
}

fn verify_lookup(
    anchors: &Anchors,
    user: &str,
    devices: &[api::Device],
    proof: &api::LookupProof,
) -> Result<(), String> {
    let root: akd::Digest = proof
        .root_hash
        .0
        .as_slice()
        .try_into()
        .map_err(|_| "the directory root is not 32 bytes".to_owned())?;
    let decoded = akd::proto::specs::types::LookupProof::parse_from_bytes(&proof.proof.0)
        .map_err(|e| format!("transparency proof: {e}"))?;
    let decoded =
        akd::LookupProof::try_from(&decoded).map_err(|e| format!("transparency proof: {e}"))?;
    let result = akd::client::lookup_verify::<KtConfig>(
        &anchors.vrf_public_key,
        root,
        proof.epoch,
        akd::AkdLabel(user.as_bytes().to_vec()),
        decoded,
    )
    .map_err(|e| format!("transparency proof does not verify: {e}"))?;
    let served = api::directory_value(devices.iter().map(|d| {
        (
            d.device_id.as_str(),
            d.signature_key.0.as_slice(),
            d.certificate.not_after,
        )
    }));
    if result.value.0 != served {
        return Err("the devices served are not the ones in the directory".into());
    }
    Ok(())
}

/// Verifies an Ed25519 signature (strict: no malleable encodings).
pub(crate) fn verify_ed25519(key: &[u8], message: &[u8], signature: &[u8]) -> bool {
    let Ok(key) = <[u8; 32]>::try_from(key) else {
        return false;
    };
    let Ok(signature) = <[u8; 64]>::try_from(signature) else {
        return false;
    };
    let Ok(key) = ed25519_dalek::VerifyingKey::from_bytes(&key) else {
        return false;
    };
    key.verify_strict(message, &ed25519_dalek::Signature::from_bytes(&signature))
        .is_ok()
}
