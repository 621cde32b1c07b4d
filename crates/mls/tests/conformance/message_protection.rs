//! message-protection.json: PublicMessage and PrivateMessage protection (RFC 9420 §6).
//!
//! For the proposal, the commit and the application data: the given PublicMessage (not for
//! application data) and PrivateMessage must unprotect to the raw content, and protecting
//! the raw content ourselves must round-trip; application data as a PublicMessage must be
//! refused (§6.2). Commit confirmation tags cannot be recomputed from these inputs, so
//! only signatures and membership tags are checked.

use crate::common::{Outcome, hex_field, run_cases, suite, u64_field};
use conclave_mls::Error;
use conclave_mls::codec::Decode;
use conclave_mls::codec::VarBytes;
use conclave_mls::crypto::{Secret, SignaturePrivateKey, SuiteCrypto};
use conclave_mls::internal::protection::{
    self, EpochKeys, PaddingPolicy, VerifiedContent, unprotect_private, unprotect_public,
};
use conclave_mls::internal::secret_tree::{RatchetPolicy, SecretTree};
use conclave_mls::internal::tree::TreeSize;
use conclave_mls::messages::{
    Commit, FramedContent, FramedContentBody, GroupContext, Mac, MlsMessage, MlsMessageBody,
    Proposal, ProtocolVersion, Sender, SignaturePublicKey,
};
use conclave_mls::{CipherSuite, RustCrypto};
use serde_json::Value;

const SENDER: u32 = 1;

struct Case {
    context: GroupContext,
    signer: SignaturePrivateKey,
    public: SignaturePublicKey,
    encryption_secret: Secret,
    sender_data_secret: Secret,
    membership_key: Secret,
}

impl Case {
    fn tree(&self) -> SecretTree {
        // `from_leaf_count(2)` cannot fail.
        let size = TreeSize::from_leaf_count(2).unwrap_or_else(|| unreachable!());
        SecretTree::new(
            size,
            self.encryption_secret.clone(),
            RatchetPolicy::default(),
        )
    }

    fn key_of(&self, sender: &Sender) -> Option<SignaturePublicKey> {
        (*sender == Sender::Member(SENDER)).then(|| self.public.clone())
    }

    fn framed(&self, body: FramedContentBody) -> FramedContent {
        FramedContent {
            group_id: self.context.group_id.clone(),
            epoch: self.context.epoch,
            sender: Sender::Member(SENDER),
            authenticated_data: VarBytes::new(b"conclave".to_vec()),
            body,
        }
    }

    fn open_public(&self, c: &SuiteCrypto<'_>, bytes: &[u8]) -> Result<VerifiedContent, String> {
        let msg = MlsMessage::decode(bytes).map_err(|e| e.to_string())?;
        let MlsMessageBody::PublicMessage(pm) = msg.body else {
            return Err("not a PublicMessage".into());
        };
        unprotect_public(
            c,
            &pm,
            &EpochKeys {
                context: &self.context,
                sender_data_secret: &self.sender_data_secret,
                membership_key: Some(&self.membership_key),
            },
            |s| self.key_of(s),
        )
        .map_err(|e| format!("unprotect public: {e}"))
    }

    fn open_private(
        &self,
        c: &SuiteCrypto<'_>,
        tree: &mut SecretTree,
        msg: &conclave_mls::messages::PrivateMessage,
    ) -> Result<VerifiedContent, Error> {
        unprotect_private(
            c,
            msg,
            &EpochKeys {
                context: &self.context,
                sender_data_secret: &self.sender_data_secret,
                membership_key: Some(&self.membership_key),
            },
            tree,
            |l| self.key_of(&Sender::Member(l.0)),
        )
    }
}

fn check_body(what: &str, got: &VerifiedContent, want: &FramedContentBody) -> Result<(), String> {
    if &got.content().body != want {
        return Err(format!("{what}: content differs from the raw content"));
    }
    if got.sender() != Sender::Member(SENDER) {
        return Err(format!("{what}: sender {:?}", got.sender()));
    }
    Ok(())
}

fn check(provider: &RustCrypto, case: &Value) -> Result<(), String> {
    let suite: CipherSuite = suite(case)?;
    let c = SuiteCrypto::new(provider, suite).map_err(|e| e.to_string())?;
    let k = Case {
        context: GroupContext {
            version: ProtocolVersion::MLS10,
            cipher_suite: suite,
            group_id: VarBytes::new(hex_field(case, "group_id")?),
            epoch: u64_field(case, "epoch")?,
            tree_hash: VarBytes::new(hex_field(case, "tree_hash")?),
            confirmed_transcript_hash: VarBytes::new(hex_field(case, "confirmed_transcript_hash")?),
            extensions: vec![],
        },
        signer: SignaturePrivateKey::new(hex_field(case, "signature_priv")?),
        public: SignaturePublicKey::from(hex_field(case, "signature_pub")?),
        encryption_secret: Secret::new(hex_field(case, "encryption_secret")?),
        sender_data_secret: Secret::new(hex_field(case, "sender_data_secret")?),
        membership_key: Secret::new(hex_field(case, "membership_key")?),
    };
    let bodies = [
        (
            "proposal",
            FramedContentBody::Proposal(
                Proposal::decode(&hex_field(case, "proposal")?).map_err(|e| e.to_string())?,
            ),
        ),
        (
            "commit",
            FramedContentBody::Commit(
                Commit::decode(&hex_field(case, "commit")?).map_err(|e| e.to_string())?,
            ),
        ),
        (
            "application",
            FramedContentBody::Application(VarBytes::new(hex_field(case, "application")?)),
        ),
    ];
    // Any tag will do for our own commits: confirmation is not checked here.
    let confirm = |_: &_| Ok(Mac::from(vec![0xc0; c.hash_len()]));

    for (name, body) in bodies {
        // PublicMessage, protected by us with the case's keys.
        let protect_public = || {
            protection::protect_public(
                &c,
                &k.signer,
                &EpochKeys {
                    context: &k.context,
                    sender_data_secret: &k.sender_data_secret,
                    membership_key: Some(&k.membership_key),
                },
                k.framed(body.clone()),
                confirm,
            )
        };
        if name == "application" {
            let refused = protect_public();
            if !matches!(refused, Err(Error::ApplicationDataInPublicMessage)) {
                return Err(format!(
                    "application as PublicMessage not refused: {refused:?}"
                ));
            }
        } else {
            let given = k.open_public(&c, &hex_field(case, &format!("{name}_pub"))?)?;
            check_body(&format!("{name}_pub"), &given, &body)?;
            let ours = protect_public().map_err(|e| format!("{name}: protect public: {e}"))?;
            let bytes = wire_bytes(MlsMessageBody::PublicMessage(ours))?;
            let back = k.open_public(&c, &bytes)?;
            check_body(&format!("{name} public round trip"), &back, &body)?;
        }

        // PrivateMessage.
        let msg = MlsMessage::decode(&hex_field(case, &format!("{name}_priv"))?)
            .map_err(|e| e.to_string())?;
        let MlsMessageBody::PrivateMessage(pm) = msg.body else {
            return Err(format!("{name}_priv: not a PrivateMessage"));
        };
        let given = k
            .open_private(&c, &mut k.tree(), &pm)
            .map_err(|e| format!("{name}_priv: {e}"))?;
        check_body(&format!("{name}_priv"), &given, &body)?;

        let ours = protection::protect_private(
            &c,
            &k.signer,
            &EpochKeys {
                context: &k.context,
                sender_data_secret: &k.sender_data_secret,
                membership_key: Some(&k.membership_key),
            },
            &mut k.tree(),
            PaddingPolicy::MultipleOf(16),
            k.framed(body.clone()),
            confirm,
        )
        .map_err(|e| format!("{name}: protect private: {e}"))?;
        let bytes = wire_bytes(MlsMessageBody::PrivateMessage(ours))?;
        let MlsMessageBody::PrivateMessage(pm) =
            MlsMessage::decode(&bytes).map_err(|e| e.to_string())?.body
        else {
            return Err("round trip: not a PrivateMessage".into());
        };
        let mut receiver = k.tree();
        let back = k
            .open_private(&c, &mut receiver, &pm)
            .map_err(|e| format!("{name} private round trip: {e}"))?;
        check_body(&format!("{name} private round trip"), &back, &body)?;
        if back.content().authenticated_data.as_slice() != b"conclave" {
            return Err(format!("{name}: authenticated data lost"));
        }
        // The same message again is a replay (RFC 9420 §9.2: keys are deleted after use).
        let again = k.open_private(&c, &mut receiver, &pm);
        if !matches!(again, Err(Error::RatchetKeyUsed { .. })) {
            return Err(format!("{name}: replay not refused: {again:?}"));
        }
    }
    Ok(())
}

/// `body` in an MLS 1.0 MlsMessage, serialized as it goes on the wire.
fn wire_bytes(body: MlsMessageBody) -> Result<Vec<u8>, String> {
    let message = MlsMessage {
        version: ProtocolVersion::MLS10,
        body,
    };
    tls_codec::Serialize::tls_serialize_detached(&message).map_err(|e| e.to_string())
}

pub fn run(cases: &[Value]) -> Outcome {
    let provider = RustCrypto::default();
    run_cases(cases, |case| check(&provider, case))
}
