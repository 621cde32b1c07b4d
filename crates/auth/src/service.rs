//! What the AS does, independent of HTTP: the HTTP handlers ([`crate::http`]) and the
//! operator's subcommands both call [`Service`].

use crate::api::{self, ErrorCode};
use crate::ca::Ca;
use crate::config::Config;
use crate::error::Error;
use crate::oidc::Oidc;
use crate::store::{
    DeviceRecord, RegisterOutcome, RelayRecord, RevocationRecord, RevokeOutcome, Store,
};
use crate::transparency::{Published, Transparency};
use ed25519_dalek::{Signature, VerifyingKey};
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// Where the AS reads "now" (Unix seconds); tests substitute their own.
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// The system clock.
pub fn system_clock() -> Clock {
    Arc::new(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    })
}

/// Lower-case hex.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn random<const N: usize>() -> Result<[u8; N], Error> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(Error::internal)?;
    Ok(bytes)
}

/// Verifies an Ed25519 signature (strict: no malleable or small-order forms).
pub(crate) fn verify_ed25519(key: &[u8], message: &[u8], signature: &[u8]) -> bool {
    let (Ok(key), Ok(signature)) = (
        <[u8; 32]>::try_from(key)
            .map_err(drop)
            .and_then(|k| VerifyingKey::from_bytes(&k).map_err(drop)),
        Signature::from_slice(signature),
    ) else {
        return false;
    };
    key.verify_strict(message, &signature).is_ok()
}

/// The authentication headers of a signed request, as received (`None` when absent).
#[derive(Clone, Copy, Debug, Default)]
pub struct SignedHeaders<'a> {
    /// [`api::HEADER_DEVICE`].
    pub device: Option<&'a str>,
    /// [`api::HEADER_TIMESTAMP`].
    pub timestamp: Option<&'a str>,
    /// [`api::HEADER_NONCE`].
    pub nonce: Option<&'a str>,
    /// [`api::HEADER_SIGNATURE`].
    pub signature: Option<&'a str>,
}

/// The AS.
pub struct Service {
    store: Arc<dyn Store>,
    /// The root certificate: the same across issuing-CA rotations.
    root_der: Vec<u8>,
    /// The CA issuing now; replaced when its issuing CA nears expiry ([`Service::ca`]).
    ca: std::sync::RwLock<Arc<Ca>>,
    /// Held while a rotation runs; the time of the last failed one, to retry at most hourly.
    rotation: std::sync::Mutex<Option<u64>>,
    oidc: Oidc,
    config: Config,
    clock: Clock,
    kt: Transparency,
    /// The Privacy Pass issuer key; `None`: this AS issues no tokens.
    issuer: Option<Arc<crate::tokens::Issuer>>,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Who asks to revoke.
#[derive(Clone, Debug)]
pub enum Actor {
    /// The operator (command line): may revoke anything.
    Operator,
    /// A registered device: may revoke its own user's devices, or its user.
    Device(DeviceRecord),
}

impl Service {
    /// An AS over `store`, issuing with `ca`, trusting `oidc`'s issuers, publishing to the
    /// key directory `kt` (opened on the same store).
    pub fn new(
        store: Arc<dyn Store>,
        ca: Ca,
        oidc: Oidc,
        config: Config,
        clock: Clock,
        kt: Transparency,
    ) -> Self {
        Self {
            store,
            root_der: ca.root_der().to_vec(),
            ca: std::sync::RwLock::new(Arc::new(ca)),
            rotation: std::sync::Mutex::new(None),
            oidc,
            config,
            clock,
            kt,
            issuer: None,
        }
    }

    /// The same AS, issuing Privacy Pass tokens under `issuer`'s key.
    pub fn with_token_issuer(mut self, issuer: crate::tokens::Issuer) -> Self {
        self.issuer = Some(Arc::new(issuer));
        self
    }

    /// The Privacy Pass issuer, if this AS issues tokens.
    pub fn token_issuer(&self) -> Option<&crate::tokens::Issuer> {
        self.issuer.as_deref()
    }

    /// Signs a batch of blinded Privacy Pass token requests for `device` (RFC 9578 §6.3),
    /// taking them from its user's budget ([`crate::config::RateLimits::tokens_per_user`]).
    /// All or none: a malformed request, or a batch past the budget, gets no signature
    /// and takes nothing.
    pub async fn issue_tokens(
        &self,
        device: &DeviceRecord,
        batch: &api::TokenRequests,
    ) -> Result<api::TokenResponses, Error> {
        let issuer = self.issuer.clone().ok_or_else(|| {
            Error::new(ErrorCode::NotFound, "this AS issues no Privacy Pass tokens")
        })?;
        let n = batch.requests.len();
        if n == 0 || n > api::MAX_TOKEN_REQUESTS {
            return Err(Error::new(
                ErrorCode::BadRequest,
                format!("1 to {} token requests", api::MAX_TOKEN_REQUESTS),
            ));
        }
        for request in &batch.requests {
            issuer
                .check(&request.0)
                .map_err(|e| Error::new(ErrorCode::InvalidTokenRequest, e.to_string()))?;
        }
        let limits = &self.config.rate_limits;
        if limits.tokens_per_user > 0 {
            let window = limits.token_window.max(1);
            let start = self.now() / window * window;
            let taken = self
                .store
                .rate_take(
                    &format!("tokens:{}", device.user_id),
                    start,
                    start + window,
                    n as u64,
                    limits.tokens_per_user,
                )
                .await?;
            if !taken {
                metrics::counter!("conclave_as_rate_limited_total", "kind" => "tokens")
                    .increment(1);
                return Err(Error::new(
                    ErrorCode::RateLimited,
                    format!(
                        "at most {} Privacy Pass tokens per user per {window} s",
                        limits.tokens_per_user
                    ),
                )
                .retry_after((start + window).saturating_sub(self.now())));
            }
        }
        // RSA private-key operations (about a millisecond each): off the async workers.
        let requests: Vec<Vec<u8>> = batch.requests.iter().map(|r| r.0.clone()).collect();
        let signed = tokio::task::spawn_blocking(move || {
            requests
                .iter()
                .map(|r| issuer.sign(r))
                .collect::<Result<Vec<_>, _>>()
        })
        .await
        .map_err(Error::internal)?
        .map_err(|e| Error::new(ErrorCode::InvalidTokenRequest, e.to_string()))?;
        metrics::counter!("conclave_as_tokens_issued_total").increment(n as u64);
        Ok(api::TokenResponses {
            responses: signed.into_iter().map(api::Bytes).collect(),
        })
    }

    /// The key directory.
    pub fn transparency(&self) -> &Transparency {
        &self.kt
    }

    /// Publishes the changes of `users` just committed (and queued in the outbox by the same
    /// transaction), so that their look-up proofs are current when the request returns. On
    /// the lease holder this publishes the outbox; elsewhere it waits (at most
    /// [`Config::kt_publish_wait_ms`]) for the holder to publish them, then catches up.
    /// Never an error: the change is committed and queued, and the outbox drain
    /// ([`Service::kt_drain`]) publishes it whatever happens here.
    async fn publish(&self, users: &[&str]) {
        if users.is_empty() {
            return;
        }
        if let Err(e) = self.publish_now(users).await {
            tracing::warn!(error = %e, "key-transparency publish deferred to the outbox drain");
        }
    }

    async fn publish_now(&self, users: &[&str]) -> Result<(), Error> {
        let deadline = tokio::time::Instant::now()
            + std::time::Duration::from_millis(self.config.kt_publish_wait_ms);
        loop {
            // The holder publishes the outbox (these users' rows were committed before);
            // another node catches up with what the holder published.
            self.publish_once().await?;
            let mut pending = false;
            for user in users {
                pending |= self.store.kt_is_pending(user).await?;
            }
            if !pending {
                return self
                    .kt
                    .catch_up(self.store.as_ref())
                    .await
                    .map_err(Error::internal);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(Error::internal(
                    "the lease holder has not published the change yet",
                ));
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    async fn publish_once(&self) -> Result<Published, Error> {
        self.kt
            .publish_pending(self.store.as_ref(), self.now(), self.config.kt_lease_ttl)
            .await
            .map_err(Error::internal)
    }

    /// Drains the key-transparency outbox if this node holds (or can take) the publisher
    /// lease, else catches this node's directory up with the log: what the AS does at start
    /// and every [`Config::kt_publish_interval_ms`], so that a change committed but not
    /// published (a crash or a failure between the two) is published, and a dead holder's
    /// lease is taken over once it expires. Returns whether this node holds the lease.
    pub async fn kt_drain(&self) -> Result<bool, Error> {
        loop {
            match self.publish_once().await? {
                Published::Epoch(_) | Published::Unchanged => {}
                Published::Nothing => return Ok(true),
                Published::NotHolder => return Ok(false),
            }
        }
    }

    /// Drains the outbox once now ([`Service::kt_drain`]), then spawns the task that does it
    /// every [`Config::kt_publish_interval_ms`]; the task ends when the service is dropped.
    pub async fn start_kt_publisher(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        if let Err(e) = self.kt_drain().await {
            tracing::warn!(error = %e, "key-transparency outbox drain failed at start");
        }
        let weak = Arc::downgrade(self);
        let period = std::time::Duration::from_millis(self.config.kt_publish_interval_ms.max(1));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(service) = weak.upgrade() else {
                    return;
                };
                if let Err(e) = service.kt_drain().await {
                    tracing::warn!(error = %e, "key-transparency outbox drain failed");
                }
            }
        })
    }

    /// Gives this node's publisher lease up (at shutdown), so another node publishes at once.
    pub async fn release_kt_lease(&self) -> Result<(), Error> {
        self.kt
            .release(self.store.as_ref())
            .await
            .map_err(Error::internal)
    }

    /// Now, Unix seconds.
    pub fn now(&self) -> u64 {
        (self.clock)()
    }

    /// The parameters.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The root certificate (DER).
    pub fn root_der(&self) -> &[u8] {
        &self.root_der
    }

    /// The CA to issue with at `now`. When its issuing CA has less than twice the device
    /// certificate lifetime left, it is rotated first ([`Ca::rotate_issuing`]), so that no
    /// certificate is cut short by its issuer's expiry (RFC 9750 §7: credentials with a
    /// defined lifetime). A rotation that fails (no root key here, a full disk) is logged and
    /// retried at most hourly; the current issuing CA serves meanwhile.
    fn ca(&self, now: u64) -> Arc<Ca> {
        let margin = self.config.certificate_lifetime.saturating_mul(2);
        let current = Arc::clone(&self.ca.read().unwrap_or_else(|e| e.into_inner()));
        if !current.rotation_due(now, margin) {
            return current;
        }
        let mut last_failure = self.rotation.lock().unwrap_or_else(|e| e.into_inner());
        let current = Arc::clone(&self.ca.read().unwrap_or_else(|e| e.into_inner()));
        let retry = last_failure.is_none_or(|at| now >= at + 3_600);
        if !current.rotation_due(now, margin) || !retry {
            return current;
        }
        match current.rotate_issuing(now) {
            Ok(rotated) => {
                tracing::info!(
                    not_after = rotated.issuing_not_after(),
                    "issuing CA rotated"
                );
                metrics::counter!("conclave_as_ca_rotations_total").increment(1);
                let rotated = Arc::new(rotated);
                *self.ca.write().unwrap_or_else(|e| e.into_inner()) = Arc::clone(&rotated);
                *last_failure = None;
                rotated
            }
            Err(e) => {
                tracing::warn!(
                    error = %e,
                    not_after = current.issuing_not_after(),
                    "the issuing CA is due for rotation and could not be rotated"
                );
                *last_failure = Some(now);
                current
            }
        }
    }

    /// Creates a single-use invitation for `user` (operator only), valid `lifetime` seconds
    /// (the configured default when `None`); returns the code. Only its hash is stored.
    pub async fn create_invitation(
        &self,
        user: &str,
        lifetime: Option<u64>,
    ) -> Result<String, Error> {
        if !crate::valid_user_id(user) {
            return Err(Error::new(
                ErrorCode::BadRequest,
                "the user id must be user@domain",
            ));
        }
        // Hex: a code is pasted into command lines and URLs, where base64url's leading `-`
        // reads as an option. 160 random bits either way.
        let code = hex(&random::<20>()?);
        let expires = self.now() + lifetime.unwrap_or(self.config.invitation_lifetime);
        self.store
            .create_invitation(&Sha256::digest(code.as_bytes()), user, expires)
            .await?;
        Ok(code)
    }

    /// A fresh registration challenge.
    pub async fn challenge(&self) -> Result<api::Challenge, Error> {
        // Anonymous (nobody is registered yet), so one budget for everybody, across nodes:
        // each challenge is a row until it expires, and this bounds how many there are.
        self.rate_limit("challenge", "*", self.config.rate_limits.challenges)
            .await?;
        let id = hex(&random::<16>()?);
        let nonce = random::<32>()?;
        let expires_at = self.now() + self.config.challenge_lifetime;
        self.store.create_challenge(&id, &nonce, expires_at).await?;
        Ok(api::Challenge {
            challenge_id: id,
            nonce: nonce.to_vec().into(),
            expires_at,
        })
    }

    /// Registers a device: authorisation (invitation or ID token), proof of possession of
    /// the signature key over a fresh challenge, then issuance (RFC 9750 §4: the AS binds
    /// an identity to a key the client holds; it never sees the private key, §8.4.3).
    pub async fn register(&self, request: &api::RegisterRequest) -> Result<api::Registered, Error> {
        let now = self.now();
        let key: [u8; 32] = request.signature_key.0.as_slice().try_into().map_err(|_| {
            Error::new(
                ErrorCode::BadRequest,
                "the signature key must be a 32-byte Ed25519 key",
            )
        })?;
        if VerifyingKey::from_bytes(&key)
            .map(|k| k.is_weak())
            .unwrap_or(true)
        {
            return Err(Error::new(
                ErrorCode::BadRequest,
                "not a usable Ed25519 public key",
            ));
        }
        // The challenge is consumed first: whatever follows, it cannot be used again.
        let nonce = self
            .store
            .consume_challenge(&request.challenge_id, now)
            .await?
            .ok_or_else(|| {
                Error::new(
                    ErrorCode::InvalidChallenge,
                    "unknown, used or expired challenge",
                )
            })?;
        if !verify_ed25519(
            &key,
            &api::register_proof_message(&nonce, &key),
            &request.proof.0,
        ) {
            return Err(Error::new(
                ErrorCode::BadSignature,
                "the proof of possession does not verify with the signature key",
            ));
        }
        // Authorisation last, so that a failed proof does not burn an invitation. The
        // invitation is only read here; the registration's transaction consumes it.
        let code_hash = match &request.authorization {
            api::Authorization::Invitation { code } => Some(Sha256::digest(code.as_bytes())),
            api::Authorization::Oidc { .. } => None,
        };
        let user = match &request.authorization {
            api::Authorization::Invitation { .. } => self
                .store
                .invitation_user(code_hash.as_deref().unwrap_or_default(), now)
                .await?
                .ok_or_else(|| {
                    Error::new(
                        ErrorCode::InvalidInvitation,
                        "unknown, used or expired invitation",
                    )
                })?,
            api::Authorization::Oidc { id_token } => self
                .oidc
                .verify_fresh(id_token, &nonce)
                .await
                .map_err(|e| Error::new(ErrorCode::InvalidIdToken, e.to_string()))?,
        };
        self.rate_limit(
            "register",
            &user,
            self.config.rate_limits.registrations_per_user,
        )
        .await?;
        let device_id = hex(&random::<16>()?);
        let (chain, not_after) = self.issue(&user, &device_id, &key, now)?;
        let record = DeviceRecord {
            device_id: device_id.clone(),
            user_id: user.clone(),
            signature_key: key.to_vec(),
            chain: chain.clone(),
            not_after,
            contact_key: None,
            created_at: now,
            revoked_at: None,
        };
        let invitation = code_hash.as_ref().map(|h| (h.as_slice(), now));
        match self.store.register_device(&record, invitation).await? {
            RegisterOutcome::Registered => {}
            RegisterOutcome::InvalidInvitation => {
                return Err(Error::new(
                    ErrorCode::InvalidInvitation,
                    "unknown, used or expired invitation",
                ));
            }
            RegisterOutcome::UserRevoked => {
                return Err(Error::new(ErrorCode::UserRevoked, "the user is revoked"));
            }
            RegisterOutcome::KeyInUse => {
                return Err(Error::new(
                    ErrorCode::KeyInUse,
                    "this signature key is already registered",
                ));
            }
        }
        self.publish(&[&user]).await;
        metrics::counter!("conclave_as_registrations_total").increment(1);
        tracing::info!(user = %user, device = %device_id, "device registered");
        Ok(api::Registered {
            user_id: user,
            device_id,
            certificate: chain_of(chain, not_after),
        })
    }

    /// Issues a chain and checks it with the MLS library's validator before handing it out.
    fn issue(
        &self,
        user: &str,
        device: &str,
        key: &[u8; 32],
        now: u64,
    ) -> Result<(Vec<Vec<u8>>, u64), Error> {
        let (chain, not_after) = self
            .ca(now)
            .issue(user, device, key, now, self.config.certificate_lifetime)
            .map_err(Error::internal)?;
        crate::mls::check_credential(&self.root_der, &chain, key, user, device, now)
            .map_err(Error::internal)?;
        Ok((chain, not_after))
    }

    /// Counts one request of `kind` by `subject` (a user or device id) and refuses it with
    /// `rate_limited` when the window's count exceeds `limit` (0: no limit).
    async fn rate_limit(&self, kind: &str, subject: &str, limit: u64) -> Result<(), Error> {
        let window = self.config.rate_limits.window.max(1);
        if limit == 0 {
            return Ok(());
        }
        let start = self.now() / window * window;
        let hits = self
            .store
            .rate_hit(&format!("{kind}:{subject}"), start, start + window)
            .await?;
        if hits > limit {
            metrics::counter!("conclave_as_rate_limited_total", "kind" => kind.to_owned())
                .increment(1);
            // The count starts again with the next window.
            return Err(Error::new(
                ErrorCode::RateLimited,
                format!("at most {limit} {kind} requests per {window} s; retry later"),
            )
            .retry_after((start + window).saturating_sub(self.now())));
        }
        Ok(())
    }

    /// Counts a look-up by `device` against its rate limit.
    pub async fn limit_lookup(&self, device: &DeviceRecord) -> Result<(), Error> {
        self.rate_limit(
            "lookup",
            &device.device_id,
            self.config.rate_limits.lookups_per_device,
        )
        .await
    }

    /// Counts a relay post by `device` against its rate limit.
    pub async fn limit_relay_post(&self, device: &DeviceRecord) -> Result<(), Error> {
        self.rate_limit(
            "relay",
            &device.device_id,
            self.config.rate_limits.relay_posts_per_device,
        )
        .await
    }

    /// Checks a signed request (see [`api::request_message`]) and returns the device that
    /// signed it: it must exist, be unrevoked and hold an unexpired certificate.
    pub async fn authenticate(
        &self,
        method: &str,
        path_and_query: &str,
        headers: SignedHeaders<'_>,
        body: &[u8],
    ) -> Result<DeviceRecord, Error> {
        let unauthenticated = |m: &str| Error::new(ErrorCode::Unauthenticated, m);
        let (Some(device_id), Some(timestamp), Some(nonce), Some(signature)) = (
            headers.device,
            headers.timestamp,
            headers.nonce,
            headers.signature,
        ) else {
            return Err(unauthenticated(
                "the request is not signed (device, timestamp, nonce and signature headers)",
            ));
        };
        if !api::valid_nonce(nonce) {
            return Err(unauthenticated(
                "the nonce must be 16 to 64 base64url characters",
            ));
        }
        let now = self.now();
        let ts: u64 = timestamp
            .parse()
            .map_err(|_| unauthenticated("bad timestamp"))?;
        if ts.abs_diff(now) > self.config.request_skew {
            return Err(unauthenticated(
                "the timestamp is too far from the server's clock",
            ));
        }
        let signature =
            api::decode_b64(signature).ok_or_else(|| unauthenticated("bad signature encoding"))?;
        let device = self
            .store
            .device(device_id)
            .await?
            .ok_or_else(|| unauthenticated("unknown device"))?;
        let message =
            api::request_message(method, path_and_query, timestamp, nonce, device_id, body);
        if !verify_ed25519(&device.signature_key, &message, &signature) {
            return Err(unauthenticated("the request signature does not verify"));
        }
        if device.revoked_at.is_some() {
            return Err(Error::new(
                ErrorCode::DeviceRevoked,
                "the device is revoked",
            ));
        }
        if device.not_after < now {
            return Err(Error::new(
                ErrorCode::CertificateExpired,
                "the device certificate has expired",
            ));
        }
        // Last, once the request is known to be the device's own: record the nonce until the
        // timestamp leaves the window (the request is accepted while now <= ts + skew; the
        // row goes at ts + skew + 1), so a replay inside the window finds it.
        let keep_until = ts
            .saturating_add(self.config.request_skew)
            .saturating_add(1);
        if !self
            .store
            .use_request_nonce(device_id, nonce, keep_until)
            .await?
        {
            return Err(Error::new(
                ErrorCode::ReplayedRequest,
                "this request was already received (nonce reused)",
            ));
        }
        Ok(device)
    }

    /// Renews the certificate of `device` (already authenticated, so unrevoked and before
    /// expiry): a new chain for the same key (RFC 9750 §6.5: rotate before expiry).
    pub async fn renew(&self, device: &DeviceRecord) -> Result<api::CertificateChain, Error> {
        let now = self.now();
        let key: [u8; 32] = device
            .signature_key
            .as_slice()
            .try_into()
            .map_err(|_| Error::internal("stored key is not 32 bytes"))?;
        let (chain, not_after) = self.issue(&device.user_id, &device.device_id, &key, now)?;
        if !self
            .store
            .update_certificate(&device.device_id, &chain, not_after)
            .await?
        {
            return Err(Error::new(
                ErrorCode::DeviceRevoked,
                "the device is revoked",
            ));
        }
        self.publish(&[&device.user_id]).await;
        metrics::counter!("conclave_as_renewals_total").increment(1);
        Ok(chain_of(chain, not_after))
    }

    /// Publishes `device`'s contact key after checking the device's signature on it.
    pub async fn set_contact_key(
        &self,
        device: &DeviceRecord,
        contact: &api::ContactKey,
    ) -> Result<(), Error> {
        if contact.key.0.is_empty() || contact.key.0.len() > 1024 {
            return Err(Error::new(
                ErrorCode::BadRequest,
                "the contact key must be 1 to 1024 bytes",
            ));
        }
        let message = api::contact_key_message(&device.user_id, &device.device_id, &contact.key.0);
        if !verify_ed25519(&device.signature_key, &message, &contact.signature.0) {
            return Err(Error::new(
                ErrorCode::BadSignature,
                "the contact key is not signed by the device's signature key",
            ));
        }
        if !self
            .store
            .set_contact_key(&device.device_id, &contact.key.0, &contact.signature.0)
            .await?
        {
            return Err(Error::new(
                ErrorCode::DeviceRevoked,
                "the device is revoked",
            ));
        }
        Ok(())
    }

    /// Every current device of `user`, with the key-transparency proof that they are the
    /// user's devices in the directory at the current epoch.
    pub async fn user_devices(&self, user: &str) -> Result<api::UserDevices, Error> {
        let Some((devices, proof)) = self
            .kt
            .lookup(self.store.as_ref(), user)
            .await
            .map_err(Error::internal)?
        else {
            return Err(Error::new(ErrorCode::NotFound, "no such user"));
        };
        metrics::counter!("conclave_as_lookups_total").increment(1);
        Ok(api::UserDevices {
            user_id: user.to_owned(),
            devices: devices.into_iter().map(device_of).collect(),
            transparency: Some(proof),
        })
    }

    /// The directory's VRF key and current epoch.
    pub async fn kt_head(&self) -> Result<api::KtHead, Error> {
        self.kt
            .catch_up(self.store.as_ref())
            .await
            .map_err(Error::internal)?;
        let (epoch, root) = self.kt.head().await.map_err(Error::internal)?;
        Ok(api::KtHead {
            vrf_public_key: self.kt.vrf_public_key().to_vec().into(),
            epoch,
            root_hash: root.into(),
        })
    }

    /// The roots of epochs `from..=to` (at most 10,000).
    pub async fn kt_roots(&self, from: u64, to: u64) -> Result<api::EpochRoots, Error> {
        if to < from || to - from >= 10_000 {
            return Err(Error::new(
                ErrorCode::BadRequest,
                "need from <= to, at most 10,000 epochs",
            ));
        }
        Ok(api::EpochRoots {
            roots: self
                .kt
                .roots(self.store.as_ref(), from, to)
                .await
                .map_err(Error::internal)?,
        })
    }

    /// The append-only proof from epoch `from` to `to`, at most
    /// [`Config::kt_audit_max_epochs`] apart (longer ranges are audited in windows).
    pub async fn kt_audit(&self, from: u64, to: u64) -> Result<api::AuditProof, Error> {
        self.kt
            .catch_up(self.store.as_ref())
            .await
            .map_err(Error::internal)?;
        let (head, _) = self.kt.head().await.map_err(Error::internal)?;
        let max = self.config.kt_audit_max_epochs;
        if from >= to || to > head || to - from > max {
            return Err(Error::new(
                ErrorCode::BadRequest,
                format!(
                    "need from < to <= {head}, at most {max} epochs apart (audit longer ranges \
                     in windows)"
                ),
            ));
        }
        let proof = self.kt.audit(from, to).await.map_err(Error::internal)?;
        Ok(api::AuditProof {
            from,
            to,
            proof: proof.into(),
        })
    }

    /// Queues a sealed contact request for device `to`.
    pub async fn relay_post(
        &self,
        to: &str,
        post: &api::RelayPost,
    ) -> Result<api::RelayPosted, Error> {
        if post.sealed.0.is_empty() || post.sealed.0.len() > self.config.relay_max_bytes {
            return Err(Error::new(
                ErrorCode::PayloadTooLarge,
                format!(
                    "a sealed request is 1 to {} bytes",
                    self.config.relay_max_bytes
                ),
            ));
        }
        let recipient = self.store.device(to).await?;
        if recipient.is_none_or(|d| d.revoked_at.is_some()) {
            return Err(Error::new(ErrorCode::NotFound, "no such current device"));
        }
        let now = self.now();
        let record = RelayRecord {
            sealed: post.sealed.0.clone(),
            received_at: now,
            expires_at: now + self.config.relay_lifetime,
        };
        if !self
            .store
            .relay_post(to, &record, self.config.relay_max_per_inbox)
            .await?
        {
            return Err(Error::new(ErrorCode::InboxFull, "the inbox is full"));
        }
        metrics::counter!("conclave_as_relay_posts_total").increment(1);
        Ok(api::RelayPosted {
            expires_at: record.expires_at,
        })
    }

    /// Hands `device` its waiting contact requests and deletes them.
    pub async fn relay_fetch(&self, device: &DeviceRecord) -> Result<api::RelayMessages, Error> {
        let records = self
            .store
            .relay_fetch(&device.device_id, self.now())
            .await?;
        Ok(api::RelayMessages {
            messages: records
                .into_iter()
                .map(|r| api::RelayMessage {
                    sealed: r.sealed.into(),
                    received_at: r.received_at,
                })
                .collect(),
        })
    }

    /// Revokes a device: the operator, or a device of the same user.
    pub async fn revoke_device(
        &self,
        actor: &Actor,
        device_id: &str,
        reason: Option<&str>,
    ) -> Result<Vec<api::Revocation>, Error> {
        if let Actor::Device(by) = actor {
            let target = self.store.device(device_id).await?;
            if target.is_none_or(|t| t.user_id != by.user_id) {
                return Err(Error::new(
                    ErrorCode::Forbidden,
                    "a device may only revoke its own user's devices",
                ));
            }
        }
        match self
            .store
            .revoke_device(device_id, reason, self.now())
            .await?
        {
            RevokeOutcome::Revoked(records) => self.revoked(records).await,
            RevokeOutcome::NotFound => Err(Error::new(ErrorCode::NotFound, "no such device")),
        }
    }

    /// Revokes a user and all their devices: the operator, or one of the user's devices.
    pub async fn revoke_user(
        &self,
        actor: &Actor,
        user: &str,
        reason: Option<&str>,
    ) -> Result<Vec<api::Revocation>, Error> {
        if let Actor::Device(by) = actor {
            if by.user_id != user {
                return Err(Error::new(
                    ErrorCode::Forbidden,
                    "a device may only revoke its own user",
                ));
            }
        }
        match self.store.revoke_user(user, reason, self.now()).await? {
            RevokeOutcome::Revoked(records) => self.revoked(records).await,
            RevokeOutcome::NotFound => Err(Error::new(ErrorCode::NotFound, "no such user")),
        }
    }

    /// Publishes the revoked devices' users and answers the revocations.
    async fn revoked(&self, records: Vec<RevocationRecord>) -> Result<Vec<api::Revocation>, Error> {
        let mut users: Vec<&str> = records.iter().map(|r| r.user_id.as_str()).collect();
        users.sort_unstable();
        users.dedup();
        self.publish(&users).await;
        metrics::counter!("conclave_as_revocations_total").increment(records.len() as u64);
        Ok(records.into_iter().map(revocation_of).collect())
    }

    /// Revocations after the cursor `after`.
    pub async fn revocations(
        &self,
        after: u64,
        limit: Option<u32>,
    ) -> Result<api::RevocationFeed, Error> {
        let limit = limit
            .unwrap_or(self.config.feed_page)
            .clamp(1, self.config.feed_page);
        let records = self.store.revocations_after(after, limit).await?;
        let next = records.last().map_or(after, |r| r.seq);
        Ok(api::RevocationFeed {
            revocations: records.into_iter().map(revocation_of).collect(),
            next,
        })
    }
}

fn chain_of(chain: Vec<Vec<u8>>, not_after: u64) -> api::CertificateChain {
    api::CertificateChain {
        certificates: chain.into_iter().map(api::Bytes).collect(),
        not_after,
    }
}

fn device_of(d: DeviceRecord) -> api::Device {
    api::Device {
        device_id: d.device_id,
        signature_key: d.signature_key.into(),
        certificate: chain_of(d.chain, d.not_after),
        contact_key: d.contact_key.map(|(key, signature)| api::ContactKey {
            key: key.into(),
            signature: signature.into(),
        }),
    }
}

fn revocation_of(r: RevocationRecord) -> api::Revocation {
    api::Revocation {
        seq: r.seq,
        user_id: r.user_id,
        device_id: r.device_id,
        signature_key: r.signature_key.into(),
        revoked_at: r.revoked_at,
        reason: r.reason,
    }
}
