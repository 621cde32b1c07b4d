//! The Delivery Service client: mailboxes, KeyPackage pools, group logs (RFC 9750 §5–6).
//!
//! Mailbox requests are signed with the mailbox key; group requests with the group auth key
//! of an epoch, which every member derives from that epoch's exporter secret
//! ([`crate::group`]). Nothing sent here carries a byte the AS issued.

use crate::error::{Error, Service};
use crate::net::{Answer, Http, now, random};
use conclave_api::delivery::*;
use conclave_privacy_pass::Token;
use ed25519_dalek::{Signer as _, SigningKey};
use sha2::{Digest, Sha256};

/// A client of one DS node: every request of the DS API, signed as the DS expects.
#[derive(Clone, Debug)]
pub struct DeliveryClient {
    http: Http,
}

/// What signs a request.
#[derive(Clone, Copy)]
pub enum Sign<'a> {
    /// Nobody (anonymous calls).
    No,
    /// A mailbox key.
    Mailbox(&'a SigningKey),
    /// A group auth key, with its epoch.
    Group(&'a SigningKey, u64),
}

/// The outcome of a commit submission.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommitOutcome {
    /// The commit won its epoch: its sequence number in the log.
    Accepted(u64),
    /// Another commit won; the group is now at this epoch.
    Lost(u64),
}

impl DeliveryClient {
    /// A client of the DS node at `base` (`http://host:port`).
    pub fn new(base: &str) -> Result<Self, Error> {
        Ok(Self {
            http: Http::new(Service::Delivery, base)?,
        })
    }

    async fn request(
        &self,
        method: &str,
        path: &str,
        body: Vec<u8>,
        content_type: &str,
        sign: Sign<'_>,
    ) -> Result<Answer, Error> {
        self.request_paid(method, path, body, content_type, sign, None)
            .await
    }

    /// [`Self::request`] with a Privacy Pass token in `Authorization` (RFC 9577 §2.2).
    async fn request_paid(
        &self,
        method: &str,
        path: &str,
        body: Vec<u8>,
        content_type: &str,
        sign: Sign<'_>,
        token: Option<&Token>,
    ) -> Result<Answer, Error> {
        let mut headers = Vec::new();
        if let Some(token) = token {
            headers.push((
                "authorization",
                conclave_privacy_pass::header::authorization(token),
            ));
        }
        let key = match sign {
            Sign::No => None,
            Sign::Mailbox(key) => Some(key),
            Sign::Group(key, epoch) => {
                headers.push((headers::EPOCH, epoch.to_string()));
                Some(key)
            }
        };
        if let Some(key) = key {
            let timestamp = now();
            let nonce = random::<16>()?;
            let hash: [u8; 32] = Sha256::digest(&body).into();
            let input = signing_input(method, path, &hash, timestamp, &nonce);
            headers.push((headers::TIMESTAMP, timestamp.to_string()));
            headers.push((headers::NONCE, Bytes(nonce.to_vec()).to_base64()));
            headers.push((
                headers::SIGNATURE,
                Bytes(key.sign(&input).to_bytes().to_vec()).to_base64(),
            ));
        }
        self.http
            .send(method, path, body, content_type, &headers)
            .await
    }

    async fn json<T: serde::de::DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        body: &impl serde::Serialize,
        sign: Sign<'_>,
    ) -> Result<T, Error> {
        let body = serde_json::to_vec(body).map_err(|e| Error::Corrupt(e.to_string()))?;
        let answer = self
            .request(method, path, body, "application/json", sign)
            .await?;
        self.http.json(answer)
    }

    async fn json_paid<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        body: &impl serde::Serialize,
        sign: Sign<'_>,
        token: Option<&Token>,
    ) -> Result<T, Error> {
        let body = serde_json::to_vec(body).map_err(|e| Error::Corrupt(e.to_string()))?;
        let answer = self
            .request_paid("POST", path, body, "application/json", sign, token)
            .await?;
        self.http.json(answer)
    }

    async fn get<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        sign: Sign<'_>,
    ) -> Result<T, Error> {
        let answer = self
            .request("GET", path, Vec::new(), "application/json", sign)
            .await?;
        self.http.json(answer)
    }

    // ---- Privacy Pass ----

    /// What this DS asks of clients: whether creations cost a Privacy Pass token, the
    /// challenge to get tokens for and the issuer key it verifies with.
    pub async fn privacy_pass(&self) -> Result<PrivacyPass, Error> {
        self.get("/v1/privacy-pass", Sign::No).await
    }

    // ---- mailboxes and pools ----

    /// Opens an anonymous mailbox for the Ed25519 key `key`, paid with `token` if the DS
    /// asks for one; returns its id.
    pub async fn create_mailbox(
        &self,
        key: &SigningKey,
        token: Option<&Token>,
    ) -> Result<String, Error> {
        let request = CreateMailboxRequest {
            public_key: Bytes(key.verifying_key().to_bytes().to_vec()),
        };
        let created: CreateMailboxResponse = self
            .json_paid("/v1/mailboxes", &request, Sign::No, token)
            .await?;
        Ok(created.mailbox_id)
    }

    /// The mailbox's entries after the cursor `after` (at most 100).
    pub async fn entries(
        &self,
        mailbox: &str,
        key: &SigningKey,
        after: i64,
    ) -> Result<Vec<MailboxEntry>, Error> {
        let path = format!("/v1/mailboxes/{mailbox}/entries?after={after}&limit=100");
        let page: MailboxEntries = self.get(&path, Sign::Mailbox(key)).await?;
        Ok(page.entries)
    }

    /// Acknowledges (deletes) mailbox entries.
    pub async fn ack(&self, mailbox: &str, key: &SigningKey, ids: Vec<i64>) -> Result<(), Error> {
        let path = format!("/v1/mailboxes/{mailbox}/ack");
        let _: AckResponse = self
            .json("POST", &path, &AckRequest { ids }, Sign::Mailbox(key))
            .await?;
        Ok(())
    }

    /// Creates a KeyPackage pool owned by the mailbox, claimable with `claim_secret`, paid
    /// with `token` if the DS asks for one.
    pub async fn create_pool(
        &self,
        mailbox: &str,
        key: &SigningKey,
        claim_secret: &[u8],
        token: Option<&Token>,
    ) -> Result<String, Error> {
        let path = format!("/v1/mailboxes/{mailbox}/pools");
        let request = CreatePoolRequest {
            claim_secret: Bytes(claim_secret.to_vec()),
        };
        let created: CreatePoolResponse = self
            .json_paid(&path, &request, Sign::Mailbox(key), token)
            .await?;
        Ok(created.pool_id)
    }

    /// Uploads sealed KeyPackages into a pool, all expiring at `expires_at`.
    pub async fn upload(
        &self,
        mailbox: &str,
        key: &SigningKey,
        pool: &str,
        key_packages: Vec<SealedKeyPackage>,
        expires_at: u64,
    ) -> Result<(), Error> {
        let path = format!("/v1/mailboxes/{mailbox}/pools/{pool}/key-packages");
        let body = serde_json::to_vec(&UploadKeyPackagesRequest {
            key_packages,
            expires_at,
        })
        .map_err(|e| Error::Corrupt(e.to_string()))?;
        let answer = self
            .request("POST", &path, body, "application/json", Sign::Mailbox(key))
            .await?;
        self.http.ok(answer).map(|_| ())
    }

    /// What is left in a pool.
    pub async fn pool_status(
        &self,
        mailbox: &str,
        key: &SigningKey,
        pool: &str,
    ) -> Result<PoolStatus, Error> {
        let path = format!("/v1/mailboxes/{mailbox}/pools/{pool}");
        self.get(&path, Sign::Mailbox(key)).await
    }

    /// Claims one sealed KeyPackage; `None` when the pool is empty. Past the pool's free
    /// rate the DS answers `rate_limited`, and a claim paid with `token` goes through.
    pub async fn claim(
        &self,
        pool: &str,
        claim_secret: &[u8],
        token: Option<&Token>,
    ) -> Result<Option<ClaimResponse>, Error> {
        let path = format!("/v1/pools/{pool}/claim");
        let request = ClaimRequest {
            claim_secret: Bytes(claim_secret.to_vec()),
        };
        match self.json_paid(&path, &request, Sign::No, token).await {
            Ok(claimed) => Ok(Some(claimed)),
            Err(e) if e.code() == Some("pool_empty") => Ok(None),
            Err(e) => Err(e),
        }
    }

    // ---- groups ----

    /// Registers a group at the DS with epoch 0's group auth key, paid with `token` if the
    /// DS asks for one.
    pub async fn create_group(
        &self,
        group_id: &[u8],
        key: &SigningKey,
        token: Option<&Token>,
    ) -> Result<(), Error> {
        let request = CreateGroupRequest {
            group_id: Bytes(group_id.to_vec()),
            auth_key: Bytes(key.verifying_key().to_bytes().to_vec()),
        };
        let body = serde_json::to_vec(&request).map_err(|e| Error::Corrupt(e.to_string()))?;
        let answer = self
            .request_paid(
                "POST",
                "/v1/groups",
                body,
                "application/json",
                Sign::No,
                token,
            )
            .await?;
        self.http.ok(answer).map(|_| ())
    }

    /// Appends a message of the epoch `epoch`.
    pub async fn post(
        &self,
        group_id: &[u8],
        message: Vec<u8>,
        key: &SigningKey,
        epoch: u64,
    ) -> Result<Appended, Error> {
        let path = format!(
            "/v1/groups/{}/messages",
            Bytes(group_id.to_vec()).to_base64()
        );
        let answer = self
            .request(
                "POST",
                &path,
                message,
                MLS_MESSAGE_MEDIA_TYPE,
                Sign::Group(key, epoch),
            )
            .await?;
        self.http.json(answer)
    }

    /// Submits the commit that ends `epoch`.
    pub async fn commit(
        &self,
        group_id: &[u8],
        request: &CommitRequest,
        key: &SigningKey,
        epoch: u64,
    ) -> Result<CommitOutcome, Error> {
        let path = format!(
            "/v1/groups/{}/commits",
            Bytes(group_id.to_vec()).to_base64()
        );
        let body = serde_json::to_vec(request).map_err(|e| Error::Corrupt(e.to_string()))?;
        let answer = self
            .request(
                "POST",
                &path,
                body,
                "application/json",
                Sign::Group(key, epoch),
            )
            .await?;
        if answer.status == 409 {
            if let Ok(body) = serde_json::from_slice::<ErrorBody>(&answer.body) {
                if body.code == ErrorCode::WrongEpoch {
                    return Ok(CommitOutcome::Lost(body.current_epoch.unwrap_or(epoch)));
                }
            }
        }
        let appended: Appended = self.http.json(answer)?;
        Ok(CommitOutcome::Accepted(appended.seq))
    }

    /// Reads the log from `from` with the key of `epoch`.
    pub async fn log(
        &self,
        group_id: &[u8],
        from: u64,
        key: &SigningKey,
        epoch: u64,
    ) -> Result<LogPage, Error> {
        let path = format!(
            "/v1/groups/{}/log?from={from}&limit=200",
            Bytes(group_id.to_vec()).to_base64()
        );
        self.get(&path, Sign::Group(key, epoch)).await
    }
}

/// A WebSocket subscription proof for `path`, signed with `key` (method `WS`, empty body).
pub fn ws_proof(key: &SigningKey, path: &str) -> Result<WsProof, Error> {
    let timestamp = now();
    let nonce = random::<16>()?;
    let hash: [u8; 32] = Sha256::digest(b"").into();
    let input = signing_input("WS", path, &hash, timestamp, &nonce);
    Ok(WsProof {
        timestamp,
        nonce: Bytes(nonce.to_vec()),
        signature: Bytes(key.sign(&input).to_bytes().to_vec()),
    })
}
