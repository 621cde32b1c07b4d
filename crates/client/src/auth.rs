//! The Authentication Service client: registration, look-ups, the contact-request relay,
//! the revocation feed (RFC 9750 §4, §7). Requests after registration are signed with the
//! device's MLS signature key ([`conclave_api::auth::request_message`]).

use crate::error::{Error, Service};
use crate::net::{Http, random};
use conclave_api::auth as api;
use ed25519_dalek::{Signer as _, SigningKey};

/// A client of one AS (the calls a device makes; the SDK's [`crate::Device`] drives it).
#[derive(Clone, Debug)]
pub struct AuthClient {
    http: Http,
}

/// Who signs: a registered device.
pub(crate) struct DeviceSigner<'a> {
    pub(crate) device_id: &'a str,
    pub(crate) key: &'a SigningKey,
}

impl AuthClient {
    /// A client of the AS at `base` (`http://host:port`).
    pub fn new(base: &str) -> Result<Self, Error> {
        Ok(Self {
            http: Http::new(Service::Auth, base)?,
        })
    }

    async fn unsigned<T: serde::de::DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        body: Vec<u8>,
    ) -> Result<T, Error> {
        let answer = self
            .http
            .send(method, path, body, "application/json", &[])
            .await?;
        self.http.json(answer)
    }

    async fn signed(
        &self,
        signer: &DeviceSigner<'_>,
        method: &str,
        path: &str,
        body: Vec<u8>,
    ) -> Result<crate::net::Answer, Error> {
        let timestamp = crate::net::now().to_string();
        let nonce = api::encode_b64(&random::<16>()?);
        let message =
            api::request_message(method, path, &timestamp, &nonce, signer.device_id, &body);
        let signature = api::encode_b64(&signer.key.sign(&message).to_bytes());
        let headers = [
            (api::HEADER_DEVICE, signer.device_id.to_owned()),
            (api::HEADER_TIMESTAMP, timestamp),
            (api::HEADER_NONCE, nonce),
            (api::HEADER_SIGNATURE, signature),
        ];
        let answer = self
            .http
            .send(method, path, body, "application/json", &headers)
            .await?;
        self.http.ok(answer)
    }

    /// The AS trust anchor.
    pub async fn root(&self) -> Result<Vec<u8>, Error> {
        let root: api::Root = self.unsigned("GET", "/v1/root", Vec::new()).await?;
        Ok(root.certificate.0)
    }

    /// The key-transparency head (VRF key, epoch, root).
    pub async fn kt_head(&self) -> Result<api::KtHead, Error> {
        self.unsigned("GET", "/v1/kt/head", Vec::new()).await
    }

    /// Registers `key` as a new device of the user `authorization` names, over a fresh
    /// challenge. An OpenID Connect ID token must carry the nonce of the challenge it
    /// answers: use [`AuthClient::challenge`] and [`AuthClient::register_answering`].
    pub async fn register(
        &self,
        key: &SigningKey,
        authorization: api::Authorization,
    ) -> Result<api::Registered, Error> {
        let challenge = self.challenge().await?;
        self.register_answering(key, &challenge, authorization)
            .await
    }

    /// A fresh registration challenge (single use, short-lived).
    pub async fn challenge(&self) -> Result<api::Challenge, Error> {
        self.unsigned("POST", "/v1/challenges", Vec::new()).await
    }

    /// Registers `key` as a new device of the user `authorization` names, answering
    /// `challenge` with the proof of possession of `key`.
    pub async fn register_answering(
        &self,
        key: &SigningKey,
        challenge: &api::Challenge,
        authorization: api::Authorization,
    ) -> Result<api::Registered, Error> {
        let public = key.verifying_key().to_bytes().to_vec();
        let proof = key.sign(&api::register_proof_message(&challenge.nonce.0, &public));
        let request = api::RegisterRequest {
            authorization,
            challenge_id: challenge.challenge_id.clone(),
            signature_key: public.into(),
            proof: proof.to_bytes().to_vec().into(),
        };
        self.unsigned("POST", "/v1/register", json(&request)?).await
    }

    /// Blind Privacy Pass token requests signed by the AS (RFC 9578 §6), one response per
    /// request, in order.
    pub(crate) async fn issue_tokens(
        &self,
        signer: &DeviceSigner<'_>,
        requests: Vec<Vec<u8>>,
    ) -> Result<Vec<Vec<u8>>, Error> {
        let body = json(&api::TokenRequests {
            requests: requests.into_iter().map(Into::into).collect(),
        })?;
        let answer = self.signed(signer, "POST", "/v1/tokens", body).await?;
        let responses: api::TokenResponses = self.http.json(answer)?;
        Ok(responses.responses.into_iter().map(|r| r.0).collect())
    }

    /// Publishes the device's contact key.
    pub(crate) async fn put_contact_key(
        &self,
        signer: &DeviceSigner<'_>,
        contact_key: &api::ContactKey,
    ) -> Result<(), Error> {
        let path = format!("/v1/devices/{}/contact-key", signer.device_id);
        self.signed(signer, "PUT", &path, json(contact_key)?)
            .await
            .map(|_| ())
    }

    /// A user's current devices with the transparency proof (unverified: see
    /// [`crate::directory`]).
    pub(crate) async fn user_devices(
        &self,
        signer: &DeviceSigner<'_>,
        user: &str,
    ) -> Result<api::UserDevices, Error> {
        let path = format!("/v1/users/{}/devices", percent_encode(user));
        let answer = self.signed(signer, "GET", &path, Vec::new()).await?;
        self.http.json(answer)
    }

    /// Posts a sealed contact message to a device's inbox.
    pub(crate) async fn relay_post(
        &self,
        signer: &DeviceSigner<'_>,
        device: &str,
        sealed: Vec<u8>,
    ) -> Result<(), Error> {
        let path = format!("/v1/devices/{}/inbox", percent_encode(device));
        let body = json(&api::RelayPost {
            sealed: sealed.into(),
        })?;
        self.signed(signer, "POST", &path, body).await.map(|_| ())
    }

    /// Takes the device's waiting contact messages (the AS deletes them).
    pub(crate) async fn relay_fetch(
        &self,
        signer: &DeviceSigner<'_>,
    ) -> Result<Vec<api::RelayMessage>, Error> {
        let path = format!("/v1/devices/{}/inbox/fetch", signer.device_id);
        let answer = self.signed(signer, "POST", &path, Vec::new()).await?;
        let messages: api::RelayMessages = self.http.json(answer)?;
        Ok(messages.messages)
    }

    /// Revocations after the cursor `after`.
    pub(crate) async fn revocations(
        &self,
        signer: &DeviceSigner<'_>,
        after: u64,
    ) -> Result<api::RevocationFeed, Error> {
        let path = format!("/v1/revocations?after={after}&limit=500");
        let answer = self.signed(signer, "GET", &path, Vec::new()).await?;
        self.http.json(answer)
    }

    /// Revokes one of the user's own devices (or this one).
    pub(crate) async fn revoke_device(
        &self,
        signer: &DeviceSigner<'_>,
        device: &str,
        reason: Option<String>,
    ) -> Result<(), Error> {
        let path = format!("/v1/devices/{}/revoke", percent_encode(device));
        let body = json(&api::RevokeRequest { reason })?;
        self.signed(signer, "POST", &path, body).await.map(|_| ())
    }
}

fn json<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, Error> {
    serde_json::to_vec(value).map_err(|e| Error::Corrupt(e.to_string()))
}

/// Percent-encodes a path segment (user ids hold `@`; device ids are URL-safe already).
fn percent_encode(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn user_ids_are_percent_encoded() {
        assert_eq!(super::percent_encode("a.b@x-y.org"), "a.b%40x-y.org");
    }
}
