//! The device's Privacy Pass wallet: tokens the AS signed blind (RFC 9578 §6), spent at
//! the DS to pay for a mailbox, a pool, a group, or a KeyPackage claim past a pool's free
//! rate — so the DS serves only registered users without learning which one.
//!
//! Tokens answer the DS's challenge of one time window and are accepted during that window
//! and the next ([`conclave_api::delivery::PrivacyPass::valid_until`]). The wallet is a
//! sealed record of the local store, so tokens survive restarts; it is refilled a batch at
//! a time when it is empty, which separates most redemptions in time from the issuance
//! they come from (RFC 9577 §2.1.2, token caching). The issuer key is taken from the DS,
//! the party that verifies: an AS that signed under a key of its own for one user would
//! produce tokens the DS refuses, not a way to recognise them.

use crate::auth::DeviceSigner;
use crate::device::Inner;
use crate::error::Error;
use crate::net::now;
use crate::store::{Batch, Kind};
use conclave_api::delivery::Bytes;
use conclave_privacy_pass::{IssuerPublicKey, Token};
use serde::{Deserialize, Serialize};

/// Tokens asked for at once.
const BATCH: usize = 8;
/// A wallet whose challenge expires sooner than this (seconds) is refilled first.
const MARGIN: u64 = 60;
/// The store record of the wallet.
const WALLET_ID: &[u8] = b"privacy-pass-wallet";

/// Tokens for one DS challenge.
#[derive(Default, Serialize, Deserialize)]
struct Wallet {
    /// The encoded challenge they answer.
    challenge: Bytes,
    /// Until when the DS accepts them.
    valid_until: u64,
    /// Encoded tokens, unspent.
    tokens: Vec<Bytes>,
}

/// Why a DS refusal may be cured by another token.
fn token_refusal(e: &Error) -> bool {
    matches!(
        e.code(),
        Some("token_required" | "invalid_token" | "token_expired" | "token_spent")
    )
}

impl Inner {
    async fn wallet(&self) -> Result<Wallet, Error> {
        Ok(self
            .store
            .get(Kind::Meta, WALLET_ID)
            .await?
            .unwrap_or_default())
    }

    async fn save_wallet(&self, wallet: &Wallet) -> Result<(), Error> {
        let mut batch = Batch::default();
        batch.put(Kind::Meta, WALLET_ID, wallet)?;
        self.store.apply(batch).await
    }

    /// Asks the AS for a batch of tokens for the DS's current challenge; the new wallet, or
    /// `None` when the DS asks for no tokens.
    async fn refill(&self) -> Result<Option<Wallet>, Error> {
        let terms = self.ds.privacy_pass().await?;
        let (true, Some(challenge), Some(key), Some(valid_until)) = (
            terms.required,
            terms.challenge,
            terms.token_key,
            terms.valid_until,
        ) else {
            return Ok(None);
        };
        let key = IssuerPublicKey::from_spki(&key.0).map_err(|e| Error::Verification {
            subject: "the DS's Privacy Pass issuer key".into(),
            reason: e.to_string(),
        })?;
        let mut pending = Vec::with_capacity(BATCH);
        let mut requests = Vec::with_capacity(BATCH);
        for _ in 0..BATCH {
            let (request, state) =
                conclave_privacy_pass::request(&key, &challenge.0).map_err(|e| {
                    Error::Verification {
                        subject: "the DS's Privacy Pass challenge".into(),
                        reason: e.to_string(),
                    }
                })?;
            requests.push(request);
            pending.push(state);
        }
        let signing_key = self.signing_key();
        let signer = DeviceSigner {
            device_id: &self.record.device_id,
            key: &signing_key,
        };
        let responses = self.auth.issue_tokens(&signer, requests).await?;
        if responses.len() != pending.len() {
            return Err(Error::Verification {
                subject: "the AS's token responses".into(),
                reason: format!("{} answers to {} requests", responses.len(), pending.len()),
            });
        }
        let mut wallet = self.wallet().await?;
        if wallet.challenge != challenge {
            // Tokens of another window (or another DS configuration) are of no use.
            wallet = Wallet {
                challenge,
                valid_until,
                tokens: Vec::new(),
            };
        }
        for (state, response) in pending.into_iter().zip(responses) {
            // Finish verifies the AS's signature: a cheating issuer is caught here.
            let token = state
                .finish(&key, &response)
                .map_err(|e| Error::Verification {
                    subject: "a Privacy Pass token from the AS".into(),
                    reason: e.to_string(),
                })?;
            wallet.tokens.push(Bytes(token.encode()));
        }
        self.save_wallet(&wallet).await?;
        Ok(Some(wallet))
    }

    /// One token to pay the DS with, taken out of the wallet (refilled when empty or about
    /// to expire); `None` when the DS asks for none.
    pub(crate) async fn take_token(&self) -> Result<Option<Token>, Error> {
        let mut wallet = self.wallet().await?;
        if wallet.tokens.is_empty() || wallet.valid_until <= now().saturating_add(MARGIN) {
            match self.refill().await? {
                Some(fresh) => wallet = fresh,
                None => return Ok(None),
            }
        }
        let Some(token) = wallet.tokens.pop() else {
            return Ok(None);
        };
        // Out of the wallet before it is used: a token is never presented twice, even if the
        // device stops between the two.
        self.save_wallet(&wallet).await?;
        Token::decode(&token.0)
            .map(Some)
            .map_err(|e| Error::Corrupt(format!("a stored token: {e}")))
    }

    /// Throws the wallet away (its tokens answer a challenge the DS no longer takes).
    async fn drop_wallet(&self) -> Result<(), Error> {
        self.save_wallet(&Wallet::default()).await
    }

    /// Runs a DS call that costs a token: with one from the wallet, and once more with a
    /// fresh one if the DS refuses the first (spent, from a past window, or asked for
    /// when none was thought needed).
    pub(crate) async fn paid<T, F, Fut>(&self, call: F) -> Result<T, Error>
    where
        F: Fn(Option<Token>) -> Fut,
        Fut: std::future::Future<Output = Result<T, Error>>,
    {
        let token = self.take_token().await?;
        match call(token).await {
            Err(e) if token_refusal(&e) => {
                tracing::info!(code = ?e.code(), "the DS refused a token; trying another");
                // A spent token is one token; any other refusal condemns the whole wallet
                // (another window, another key, or a DS that now asks for tokens).
                if e.code() != Some("token_spent") {
                    self.drop_wallet().await?;
                }
                let token = self.take_token().await?;
                call(token).await
            }
            other => other,
        }
    }
}
