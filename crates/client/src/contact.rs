//! Contact messages: sealed to a device's contact key (HPKE, RFC 9180 base mode), signed by
//! the sender's certified key, carried by the AS relay, which sees neither what they say
//! nor the mailboxes and pools they carry (DESIGN "Flows" 3).

use crate::error::Error;
use crate::state::Card;
use conclave_mls::{CipherSuite, CryptoProvider};
use serde::{Deserialize, Serialize};

/// The HPKE suite of contact keys: X25519, HKDF-SHA256, AES-128-GCM (as MLS suite 1).
pub(crate) const CONTACT_SUITE: CipherSuite =
    CipherSuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_ED25519;
const SEAL_INFO: &[u8] = b"conclave contact message v1";
const SIGN_LABEL: &[u8] = b"conclave contact message signature v1";

/// What a contact message says.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) enum ContactKind {
    /// Please become my contact; here are my devices.
    Request,
    /// I accept; here are my devices.
    Accept,
    /// I decline.
    Decline,
    /// I (a contact) have a new device.
    DeviceAdded,
    /// I am a new device of your own user: add me to our self group.
    Sibling,
}

/// The signed content.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct ContactBody {
    pub(crate) kind: ContactKind,
    pub(crate) from_user: String,
    pub(crate) from_device: String,
    pub(crate) to_user: String,
    pub(crate) to_device: String,
    pub(crate) cards: Vec<Card>,
    pub(crate) sent_at: u64,
}

#[derive(Serialize, Deserialize)]
struct Signed {
    body: conclave_api::delivery::Bytes,
    signature: conclave_api::delivery::Bytes,
}

#[derive(Serialize, Deserialize)]
struct Sealed {
    kem_output: conclave_api::delivery::Bytes,
    ciphertext: conclave_api::delivery::Bytes,
}

fn to_be_signed(body: &[u8]) -> Vec<u8> {
    let mut m = SIGN_LABEL.to_vec();
    m.extend_from_slice(body);
    m
}

/// Signs `body` with `key` and seals it to `contact_key` for `to_device`.
pub(crate) fn seal(
    provider: &dyn CryptoProvider,
    key: &ed25519_dalek::SigningKey,
    body: &ContactBody,
    contact_key: &[u8],
) -> Result<Vec<u8>, Error> {
    use ed25519_dalek::Signer as _;
    let body_bytes = serde_json::to_vec(body).map_err(|e| Error::Corrupt(e.to_string()))?;
    let signature = key.sign(&to_be_signed(&body_bytes)).to_bytes().to_vec();
    let plaintext = serde_json::to_vec(&Signed {
        body: body_bytes.into(),
        signature: signature.into(),
    })
    .map_err(|e| Error::Corrupt(e.to_string()))?;
    let sealed = provider.hpke_seal(
        CONTACT_SUITE,
        contact_key,
        SEAL_INFO,
        body.to_device.as_bytes(),
        &plaintext,
    )?;
    serde_json::to_vec(&Sealed {
        kem_output: sealed.kem_output.into(),
        ciphertext: sealed.ciphertext.into(),
    })
    .map_err(|e| Error::Corrupt(e.to_string()))
}

/// Opens a sealed contact message addressed to `own_device`; the body and its signature,
/// which the caller checks against the sender's certified key ([`verify`]).
pub(crate) fn open(
    provider: &dyn CryptoProvider,
    contact_private: &[u8],
    own_device: &str,
    sealed: &[u8],
) -> Result<(ContactBody, Vec<u8>, Vec<u8>), Error> {
    let malformed = |what: &str| Error::Verification {
        subject: "a contact message".into(),
        reason: what.to_owned(),
    };
    let sealed: Sealed = serde_json::from_slice(sealed).map_err(|_| malformed("not sealed"))?;
    let private = conclave_mls::crypto::HpkePrivateKey::from_slice(contact_private);
    let plaintext = provider
        .hpke_open(
            CONTACT_SUITE,
            &private,
            &sealed.kem_output.0,
            SEAL_INFO,
            own_device.as_bytes(),
            &sealed.ciphertext.0,
        )
        .map_err(|_| malformed("does not open with this device's contact key"))?;
    let signed: Signed =
        serde_json::from_slice(plaintext.as_bytes()).map_err(|_| malformed("bad content"))?;
    let body: ContactBody =
        serde_json::from_slice(&signed.body.0).map_err(|_| malformed("bad body"))?;
    if body.to_device != own_device {
        return Err(malformed("addressed to another device"));
    }
    Ok((body, signed.body.0, signed.signature.0))
}

/// Whether `signature` over `body_bytes` verifies under the sender's certified key.
pub(crate) fn verify(signature_key: &[u8], body_bytes: &[u8], signature: &[u8]) -> bool {
    crate::directory::verify_ed25519(signature_key, &to_be_signed(body_bytes), signature)
}
