//! Wire types of the Delivery Service API (RFC 9750 §6).
//!
//! JSON for control data; binary fields travel as unpadded base64url strings ([`Bytes`]);
//! MLS messages appended to a group log travel as `application/mls-message` bodies.
//!
//! Every request on a mailbox, or on a group, is signed: see [`signing_input`] for the
//! bytes that are signed and [`headers`] for where the signature goes.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The media type of an MLS message body (RFC 9420 §17.10).
pub const MLS_MESSAGE_MEDIA_TYPE: &str = "application/mls-message";

/// Names of the headers that carry a request signature.
pub mod headers {
    /// Unix time in seconds at which the client signed the request.
    pub const TIMESTAMP: &str = "x-conclave-timestamp";
    /// A fresh random value (base64url, 16 to 64 bytes) that the DS refuses to see twice.
    pub const NONCE: &str = "x-conclave-nonce";
    /// The Ed25519 signature (base64url) over [`super::signing_input`].
    pub const SIGNATURE: &str = "x-conclave-signature";
    /// On group requests: the epoch whose group auth key signed the request.
    pub const EPOCH: &str = "x-conclave-epoch";
}

/// Domain separation label of request signatures.
pub const SIGNING_LABEL: &[u8] = b"conclave-ds-request-v1";

/// The bytes a client signs for one request: a label, the method, the path with its query,
/// the SHA-256 of the body, the timestamp and the nonce, each length-prefixed so no two
/// requests share an input.
pub fn signing_input(
    method: &str,
    path_and_query: &str,
    body_sha256: &[u8; 32],
    timestamp: u64,
    nonce: &[u8],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(SIGNING_LABEL.len() + path_and_query.len() + 96);
    for part in [
        SIGNING_LABEL,
        method.as_bytes(),
        path_and_query.as_bytes(),
        body_sha256.as_slice(),
        &timestamp.to_be_bytes(),
        nonce,
    ] {
        out.extend_from_slice(&(part.len() as u32).to_be_bytes());
        out.extend_from_slice(part);
    }
    out
}

pub use crate::bytes::Bytes;

// ---------------------------------------------------------------------------------------
// Errors

/// A stable, machine-readable error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The request is malformed (400).
    BadRequest,
    /// The body is not a well-formed MLS message, or its header does not fit the request (400).
    InvalidMlsMessage,
    /// The message is a PublicMessage (400): the DS takes group messages only as
    /// PrivateMessages, whose framing shows it no sender, credential or proposal, and an
    /// external commit only inside a sealed envelope (RFC 9750 §8.1; RFC 9420 §6).
    PublicMessageRefused,
    /// Signature headers are missing or malformed (401).
    MissingSignature,
    /// The signature does not verify under the key the request names (401).
    BadSignature,
    /// The timestamp is outside the accepted window (401).
    StaleTimestamp,
    /// The nonce was already used: a replayed request (401).
    Replay,
    /// The claim secret is wrong (401).
    BadClaimSecret,
    /// The request needs a Privacy Pass token (`Authorization: PrivateToken token=…`,
    /// RFC 9577 §2.2) and carries none, or one that does not parse (401). The answer's
    /// `WWW-Authenticate` header carries the challenge to get tokens for; see
    /// [`PrivacyPass`].
    TokenRequired,
    /// The token does not verify under the issuer key the DS trusts (401).
    InvalidToken,
    /// The token answers a challenge this DS does not accept now: another origin or
    /// issuer, or a window that has passed (401). Tokens for it are useless: fetch the
    /// current [`PrivacyPass`] challenge and get new ones.
    TokenExpired,
    /// The token was already redeemed, on this node or another (401).
    TokenSpent,
    /// No such mailbox (404).
    MailboxNotFound,
    /// No such KeyPackage pool (404).
    PoolNotFound,
    /// The pool holds no KeyPackage that may be handed out (404).
    PoolEmpty,
    /// No such group (404).
    GroupNotFound,
    /// No GroupInfo is stored for this group (404).
    GroupInfoNotFound,
    /// The group id is already registered (409).
    GroupExists,
    /// The epoch named by the request is not one the group accepts now (409); the body
    /// carries the current epoch.
    WrongEpoch,
    /// No such route (404).
    RouteNotFound,
    /// The route exists, not with this method (405); the `Allow` header lists the methods.
    MethodNotAllowed,
    /// The body is too large (413).
    PayloadTooLarge,
    /// Too many requests; retry later (429).
    RateLimited,
    /// The server failed (500).
    Internal,
}

/// The body of every error answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong, for programs.
    pub code: ErrorCode,
    /// What went wrong, for people.
    pub message: String,
    /// With [`ErrorCode::WrongEpoch`]: the group's current epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_epoch: Option<u64>,
}

// ---------------------------------------------------------------------------------------
// Privacy Pass

/// `GET /v1/privacy-pass`: what a client needs to get tokens for this DS.
///
/// Mailbox, pool and group creation, and KeyPackage claims past a pool's free rate, are
/// paid with a publicly verifiable Privacy Pass token (RFC 9578 §6, token type 0x0002:
/// blind RSA) that the Authentication Service issues to registered devices without
/// seeing it: the DS learns that some registered user pays, not which. The token goes in
/// an `Authorization: PrivateToken token=<base64url>` header (RFC 9577 §2.2.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PrivacyPass {
    /// Whether this DS asks for tokens at all (a deployment without an issuer is open).
    pub required: bool,
    /// The `TokenChallenge` (RFC 9577 §2.1) that tokens must answer now, TLS-encoded. The
    /// same for every client during a window, so a token names nobody.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub challenge: Option<Bytes>,
    /// The issuer public key the DS verifies with (RFC 9578 §6.5: the
    /// SubjectPublicKeyInfo of an RSASSA-PSS key): ask the issuer for tokens under this
    /// key and no other, so an issuer cannot single a client out with a key of its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_key: Option<Bytes>,
    /// Unix time in seconds until which tokens answering `challenge` are accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_until: Option<u64>,
}

// ---------------------------------------------------------------------------------------
// Mailboxes

/// `POST /v1/mailboxes`: open an anonymous mailbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CreateMailboxRequest {
    /// The Ed25519 public key (32 bytes) that will sign every request on the mailbox.
    pub public_key: Bytes,
}

/// The answer to [`CreateMailboxRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CreateMailboxResponse {
    /// The random id the DS chose (base64url of 16 bytes).
    pub mailbox_id: String,
}

/// What a mailbox entry holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MailboxEntryKind {
    /// An MLS Welcome queued by an accepted commit.
    Welcome,
    /// A small sealed blob posted by someone else (e.g. sealed contact data).
    Blob,
}

/// One mailbox entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MailboxEntry {
    /// Its number in the mailbox, the fetch cursor: numbers increase in the order entries
    /// are committed, whichever DS node accepted them, so a reader that has seen `id` has
    /// seen every entry with a smaller one.
    pub id: i64,
    /// What it holds.
    pub kind: MailboxEntryKind,
    /// The bytes (for a Welcome, the `MLSMessage`). Nothing else: the DS keeps no link from
    /// a joiner's mailbox to the group that sent the Welcome (the joiner learns the group
    /// from the Welcome itself, RFC 9420 §12.4.3.1).
    pub data: Bytes,
}

/// `GET /v1/mailboxes/{id}/entries?after=&limit=`: entries not yet acknowledged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MailboxEntries {
    /// The entries, by increasing id.
    pub entries: Vec<MailboxEntry>,
}

/// `POST /v1/mailboxes/{id}/ack`: acknowledge (delete) entries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AckRequest {
    /// The ids of the entries to delete. Explicit ids, not "up to", so an entry committed late
    /// with a smaller id is never deleted unread.
    pub ids: Vec<i64>,
}

/// The answer to [`AckRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AckResponse {
    /// How many entries were deleted.
    pub deleted: u64,
}

/// The answer to `POST /v1/mailboxes/{id}/entries` (a sealed blob posted to a mailbox).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PostedEntry {
    /// The new entry's id.
    pub id: i64,
}

// ---------------------------------------------------------------------------------------
// KeyPackage pools

/// `POST /v1/mailboxes/{id}/pools`: create a KeyPackage pool owned by the mailbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CreatePoolRequest {
    /// The secret a claimer must present (16 to 64 bytes); the DS stores only its SHA-256.
    pub claim_secret: Bytes,
}

/// The answer to [`CreatePoolRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CreatePoolResponse {
    /// The random id the DS chose (base64url of 16 bytes).
    pub pool_id: String,
}

/// One sealed KeyPackage in an upload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SealedKeyPackage {
    /// The KeyPackage sealed under the pool key: opaque to the DS.
    pub sealed: Bytes,
    /// Marks the last-resort KeyPackage: handed out only when the others are gone, and never
    /// deleted by a claim (RFC 9750 §5.1). At most one per upload.
    #[serde(default)]
    pub last_resort: bool,
}

/// `POST /v1/mailboxes/{id}/pools/{pool}/key-packages`: upload a batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UploadKeyPackagesRequest {
    /// The blobs.
    pub key_packages: Vec<SealedKeyPackage>,
    /// Unix time in seconds after which none of them is handed out.
    pub expires_at: u64,
}

/// `GET /v1/mailboxes/{id}/pools/{pool}`: what is left.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PoolStatus {
    /// Unexpired KeyPackages that are not last resort.
    pub available: u64,
    /// Whether an unexpired last-resort KeyPackage is held.
    pub last_resort: bool,
}

/// `POST /v1/pools/{pool}/claim`: take one KeyPackage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ClaimRequest {
    /// The pool's claim secret.
    pub claim_secret: Bytes,
}

/// The answer to [`ClaimRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ClaimResponse {
    /// The sealed KeyPackage.
    pub sealed: Bytes,
    /// Whether it is the last-resort one (which stays in the pool).
    pub last_resort: bool,
}

// ---------------------------------------------------------------------------------------
// Groups

/// `POST /v1/groups`: register a group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CreateGroupRequest {
    /// The opaque MLS group id.
    pub group_id: Bytes,
    /// Epoch 0's group auth key (Ed25519 public key, 32 bytes).
    pub auth_key: Bytes,
}

/// The Welcome of a commit and the mailboxes it goes to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct WelcomeDelivery {
    /// The `MLSMessage` carrying the Welcome: stored once.
    pub welcome: Bytes,
    /// The mailboxes of the joiners; each gets an entry that refers to the one copy.
    pub mailboxes: Vec<String>,
}

/// `POST /v1/groups/{group}/commits`: submit the commit for the epoch named in the
/// signature headers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CommitRequest {
    /// Signed with the epoch's group auth key: the `MLSMessage` carrying the commit as a
    /// PrivateMessage. Signed with the epoch's external commit key: the joiner's external
    /// commit (a PublicMessage, RFC 9420 §12.4.3.2) sealed for the members under the key the
    /// sealed GroupInfo carries — opaque to the DS, which refuses an `MLSMessage` in the
    /// clear here, since it would show the DS the joiner's credential.
    pub commit: Bytes,
    /// The group auth key of the epoch the commit starts.
    pub next_auth_key: Bytes,
    /// Welcomes for new members, queued only if the commit wins the epoch.
    #[serde(default)]
    pub welcomes: Vec<WelcomeDelivery>,
    /// Optionally, a sealed GroupInfo of the new epoch for external joins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_info: Option<SealedGroupInfo>,
}

/// The answer to an accepted commit or appended message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Appended {
    /// The entry's sequence number in the group log.
    pub seq: u64,
    /// The group's epoch after the append.
    pub epoch: u64,
}

/// What a group log entry holds (from the MLS framing header).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LogEntryKind {
    /// An application message.
    Application,
    /// A proposal.
    Proposal,
    /// The commit that ended its epoch, as a PrivateMessage.
    Commit,
    /// The external commit that ended its epoch, in the sealed envelope its joiner made
    /// (see [`CommitRequest::commit`]).
    ExternalCommit,
}

/// One entry of a group log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LogEntry {
    /// Its sequence number (1, 2, …, gap-free per group).
    pub seq: u64,
    /// The epoch it was sent in.
    pub epoch: u64,
    /// What it is.
    pub kind: LogEntryKind,
    /// The `MLSMessage`.
    pub message: Bytes,
}

/// `GET /v1/groups/{group}/log?from=&limit=`: entries the signing epoch key may read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LogPage {
    /// The entries, by increasing sequence number.
    pub entries: Vec<LogEntry>,
    /// The group's current epoch.
    pub current_epoch: u64,
}

/// A GroupInfo sealed by members for external joiners (RFC 9750 §6.4), with the key that
/// authorises an external commit against it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SealedGroupInfo {
    /// The sealed GroupInfo: opaque to the DS.
    pub sealed: Bytes,
    /// An Ed25519 public key whose private half is inside the sealed bundle: whoever can open
    /// the bundle may sign an external commit for this epoch.
    pub external_commit_key: Bytes,
}

/// `GET /v1/groups/{group}/group-info`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct GroupInfoResponse {
    /// The epoch the GroupInfo belongs to.
    pub epoch: u64,
    /// The sealed GroupInfo.
    pub sealed: Bytes,
}

// ---------------------------------------------------------------------------------------
// WebSocket push

/// A signed proof, sent over the WebSocket, that the client holds a key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct WsProof {
    /// Unix seconds.
    pub timestamp: u64,
    /// Fresh random bytes.
    pub nonce: Bytes,
    /// Signature over [`signing_input`] with method `WS`, the path of the subscription
    /// (`/v1/mailboxes/{id}` or `/v1/groups/{group}/log?epoch={epoch}`) and an empty body.
    pub signature: Bytes,
}

/// A client's text frame on `GET /v1/ws`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum WsRequest {
    /// Push the group's entries that the epoch's key may read (replaces an earlier
    /// subscription to the group).
    SubscribeGroup {
        /// The group id (base64url).
        group_id: String,
        /// The epoch whose key signs the proof.
        epoch: u64,
        /// The proof.
        proof: WsProof,
    },
    /// Push the mailbox's new entries.
    SubscribeMailbox {
        /// The mailbox id.
        mailbox_id: String,
        /// The proof, signed with the mailbox key.
        proof: WsProof,
    },
}

/// A server's text frame on `GET /v1/ws`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum WsEvent {
    /// A subscription is in place.
    Subscribed {
        /// The group id or mailbox id.
        target: String,
    },
    /// A subscription was refused.
    Error {
        /// Why.
        error: ErrorBody,
    },
    /// A new group log entry, with its message (entries up to the DS's inline push limit,
    /// 256 KiB by default).
    GroupEntry {
        /// The group id (base64url).
        group_id: String,
        /// The entry.
        entry: LogEntry,
    },
    /// A new group log entry too large to push inline: read it from the log
    /// (`GET /v1/groups/{group}/log?from={seq}`).
    GroupEntryNotice {
        /// The group id (base64url).
        group_id: String,
        /// The entry's sequence number.
        seq: u64,
        /// The epoch it was sent in.
        epoch: u64,
        /// What it is.
        kind: LogEntryKind,
        /// The size of its message in bytes.
        size: u64,
    },
    /// A new mailbox entry, announced without its bytes (a Welcome may be megabytes): the
    /// owner fetches it from its cursor (`GET /v1/mailboxes/{id}/entries`).
    MailboxEntry {
        /// The mailbox id.
        mailbox_id: String,
        /// The entry's id (fetch it with `after` = any smaller id).
        entry_id: i64,
        /// What it holds.
        kind: MailboxEntryKind,
        /// The size of its data in bytes.
        size: u64,
    },
    /// The connection fell behind and pushes of a subscription were dropped: re-read the
    /// group log or the mailbox from the client's cursor. Later pushes follow as usual.
    Lagged {
        /// The group id or mailbox id of the subscription.
        target: String,
        /// How many pushes were dropped.
        missed: u64,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_round_trip_as_base64url() {
        let b = Bytes(vec![0xfb, 0xff, 0x00]);
        let json = serde_json::to_string(&b).unwrap();
        assert_eq!(json, "\"-_8A\"");
        assert_eq!(serde_json::from_str::<Bytes>(&json).unwrap(), b);
        assert!(serde_json::from_str::<Bytes>("\"+/8A\"").is_err());
    }

    #[test]
    fn signing_inputs_differ_per_field() {
        let h = [7u8; 32];
        let a = signing_input("POST", "/a", &h, 1, b"n");
        assert_ne!(a, signing_input("GET", "/a", &h, 1, b"n"));
        assert_ne!(a, signing_input("POST", "/b", &h, 1, b"n"));
        assert_ne!(a, signing_input("POST", "/a", &[8; 32], 1, b"n"));
        assert_ne!(a, signing_input("POST", "/a", &h, 2, b"n"));
        assert_ne!(a, signing_input("POST", "/a", &h, 1, b"m"));
        // Length prefixes: moving a byte between fields changes the input.
        assert_ne!(
            signing_input("POST", "/ab", &h, 1, b""),
            signing_input("POST", "/a", &h, 1, b"b")
        );
    }

    #[test]
    fn errors_serialize_with_stable_codes() {
        let e = ErrorBody {
            code: ErrorCode::WrongEpoch,
            message: "x".into(),
            current_epoch: Some(3),
        };
        let v: serde_json::Value = serde_json::to_value(&e).unwrap();
        assert_eq!(v["code"], "wrong_epoch");
        assert_eq!(v["current_epoch"], 3);
    }
}
