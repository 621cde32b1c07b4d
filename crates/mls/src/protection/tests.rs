use super::EpochKeys;
use super::private::guarded_nonce;
use super::public::membership_tag;
use super::*;
use crate::codec::Encode;
use crate::crypto::{CipherSuite, CryptoProvider, RustCrypto};
use crate::messages::PrivateMessageContent;
use crate::messages::{FramedContentBody, Proposal, Remove};
use crate::messages::{PrivateContentAad, SenderData, SenderDataAad};
use crate::messages::{PrivateMessage, PublicMessage};
use crate::secret_tree::RatchetPolicy;
use crate::secret_tree::SecretTree;
use crate::secret_tree::{RatchetKind, sender_data_key_nonce};
use crate::tree::LeafIndex;
use crate::tree::TreeSize;

const SUITE: CipherSuite = CipherSuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_ED25519;

struct Fixture {
    provider: RustCrypto,
    signer: SignaturePrivateKey,
    public: SignaturePublicKey,
    context: GroupContext,
    membership_key: Secret,
    sender_data_secret: Secret,
    tree: SecretTree,
}

fn fixture() -> Fixture {
    let provider = RustCrypto::default();
    let keys = provider.signature_generate_key_pair(SUITE).unwrap();
    let tree = SecretTree::new(
        TreeSize::from_leaf_count(4).unwrap(),
        Secret::new(vec![3; 32]),
        RatchetPolicy::default(),
    );
    Fixture {
        provider,
        signer: keys.private_key,
        public: SignaturePublicKey::from(keys.public_key),
        context: GroupContext {
            version: ProtocolVersion::MLS10,
            cipher_suite: SUITE,
            group_id: VarBytes::new(b"group".to_vec()),
            epoch: 9,
            tree_hash: VarBytes::new(vec![4; 32]),
            confirmed_transcript_hash: VarBytes::new(vec![5; 32]),
            extensions: vec![],
        },
        membership_key: Secret::new(vec![6; 32]),
        sender_data_secret: Secret::new(vec![7; 32]),
        tree,
    }
}

impl Fixture {
    fn crypto(&self) -> SuiteCrypto<'_> {
        SuiteCrypto::new(&self.provider, SUITE).unwrap()
    }

    fn content(&self, body: FramedContentBody) -> FramedContent {
        FramedContent {
            group_id: self.context.group_id.clone(),
            epoch: self.context.epoch,
            sender: Sender::Member(1),
            authenticated_data: VarBytes::new(vec![1, 2, 3]),
            body,
        }
    }

    fn proposal(&self) -> FramedContent {
        self.content(FramedContentBody::Proposal(Proposal::Remove(Remove {
            removed: 2,
        })))
    }

    fn application(&self) -> FramedContent {
        self.content(FramedContentBody::Application(VarBytes::new(vec![
            0xaa;
            100
        ])))
    }

    /// Leaves 0, 1 and 2 are members, all with the same key; leaf 3 is blank.
    fn lookup(&self) -> impl Fn(LeafIndex) -> Option<SignaturePublicKey> + '_ {
        |leaf| (leaf.0 < 3).then(|| self.public.clone())
    }

    fn public(&self) -> PublicMessage {
        let c = self.crypto();
        protect_public(
            &c,
            &self.signer,
            &EpochKeys {
                context: &self.context,
                sender_data_secret: &self.sender_data_secret,
                membership_key: Some(&self.membership_key),
            },
            self.proposal(),
            no_confirmation,
        )
        .unwrap()
    }

    fn open_public(&self, m: &PublicMessage) -> Result<VerifiedContent, Error> {
        let lookup = self.lookup();
        unprotect_public(
            &self.crypto(),
            m,
            &EpochKeys {
                context: &self.context,
                sender_data_secret: &self.sender_data_secret,
                membership_key: Some(&self.membership_key),
            },
            |s| match s {
                Sender::Member(l) => lookup(LeafIndex(*l)),
                _ => None,
            },
        )
    }

    fn private(&self, content: FramedContent) -> PrivateMessage {
        let mut sender = self.tree.clone();
        protect_private(
            &self.crypto(),
            &self.signer,
            &EpochKeys {
                context: &self.context,
                sender_data_secret: &self.sender_data_secret,
                membership_key: Some(&self.membership_key),
            },
            &mut sender,
            PaddingPolicy::MultipleOf(64),
            content,
            no_confirmation,
        )
        .unwrap()
    }

    /// Unprotects with the fixture's tree and checks the tree is unchanged on failure.
    fn open_private(&mut self, m: &PrivateMessage) -> Result<VerifiedContent, Error> {
        let before = self.tree.clone();
        let c = SuiteCrypto::new(&self.provider, SUITE).unwrap();
        let public = self.public.clone();
        let result = unprotect_private(
            &c,
            m,
            &EpochKeys {
                context: &self.context,
                sender_data_secret: &self.sender_data_secret,
                membership_key: Some(&self.membership_key),
            },
            &mut self.tree,
            |leaf| (leaf.0 < 3).then(|| public.clone()),
        );
        if result.is_err() {
            assert_eq!(
                self.tree, before,
                "a failed unprotect changed the secret tree"
            );
        } else {
            assert_ne!(self.tree, before, "a successful unprotect consumes a key");
        }
        result
    }
}

#[test]
fn public_round_trip_and_membership_tag() {
    let f = fixture();
    let m = f.public();
    let v = f.open_public(&m).unwrap();
    assert_eq!(v.content(), &f.proposal());
    assert_eq!(v.wire_format(), WireFormat::PUBLIC_MESSAGE);

    let mut bad = m.clone();
    bad.membership_tag = Some(Mac::from(vec![0; 32]));
    assert_eq!(f.open_public(&bad), Err(Error::MembershipTagMismatch));
    // A changed authenticated_data breaks the tag before the signature is looked at.
    let mut bad = m.clone();
    bad.content.authenticated_data = VarBytes::new(vec![9]);
    assert_eq!(f.open_public(&bad), Err(Error::MembershipTagMismatch));
    // Without the membership key nothing can be checked.
    let c = f.crypto();
    assert_eq!(
        unprotect_public(
            &c,
            &m,
            &EpochKeys {
                context: &f.context,
                sender_data_secret: &f.sender_data_secret,
                membership_key: None
            },
            |_| Some(f.public.clone())
        ),
        Err(Error::MissingMembershipKey)
    );
}

#[test]
fn public_wrong_signature() {
    let f = fixture();
    let other = f.provider.signature_generate_key_pair(SUITE).unwrap();
    let c = f.crypto();
    // Signed by another key, with a valid membership tag.
    let m = protect_public(
        &c,
        &other.private_key,
        &EpochKeys {
            context: &f.context,
            sender_data_secret: &f.sender_data_secret,
            membership_key: Some(&f.membership_key),
        },
        f.proposal(),
        no_confirmation,
    )
    .unwrap();
    assert_eq!(f.open_public(&m), Err(Error::InvalidContentSignature));
    // An unknown member.
    let mut m = f.public();
    m.content.sender = Sender::Member(3);
    let tag = membership_tag(&c, &f.membership_key, &m.content, &m.auth, &f.context).unwrap();
    m.membership_tag = Some(Mac::from(tag));
    assert_eq!(f.open_public(&m), Err(Error::SenderNotMember(LeafIndex(3))));
}

#[test]
fn public_wrong_group_or_epoch() {
    let f = fixture();
    let mut m = f.public();
    m.content.epoch = 8;
    assert_eq!(
        f.open_public(&m),
        Err(Error::WrongEpoch {
            expected: 9,
            got: 8
        })
    );
    let mut m = f.public();
    m.content.group_id = VarBytes::new(b"other".to_vec());
    assert_eq!(f.open_public(&m), Err(Error::WrongGroupId));
    // Protecting content of another epoch is refused too.
    let mut content = f.proposal();
    content.epoch = 10;
    let c = f.crypto();
    assert!(matches!(
        protect_public(
            &c,
            &f.signer,
            &EpochKeys {
                context: &f.context,
                sender_data_secret: &f.sender_data_secret,
                membership_key: Some(&f.membership_key)
            },
            content,
            no_confirmation
        ),
        Err(Error::WrongEpoch { .. })
    ));
}

#[test]
fn application_data_never_in_public_message() {
    let f = fixture();
    let c = f.crypto();
    assert_eq!(
        protect_public(
            &c,
            &f.signer,
            &EpochKeys {
                context: &f.context,
                sender_data_secret: &f.sender_data_secret,
                membership_key: Some(&f.membership_key)
            },
            f.application(),
            no_confirmation
        ),
        Err(Error::ApplicationDataInPublicMessage)
    );
    // Received: refused even when tag and signature are valid.
    let mut m = f.public();
    m.content.body = FramedContentBody::Application(VarBytes::new(vec![1]));
    let tbs_bytes = tbs(WireFormat::PUBLIC_MESSAGE, &m.content, &f.context).unwrap();
    m.auth.signature = VarBytes::new(
        c.sign_with_label(&f.signer, FRAMED_CONTENT_TBS, &tbs_bytes)
            .unwrap(),
    );
    let tag = membership_tag(&c, &f.membership_key, &m.content, &m.auth, &f.context).unwrap();
    m.membership_tag = Some(Mac::from(tag));
    assert_eq!(
        f.open_public(&m),
        Err(Error::ApplicationDataInPublicMessage)
    );
}

#[test]
fn private_round_trip_then_replay() {
    let mut f = fixture();
    for content in [f.application(), f.proposal()] {
        let m = f.private(content.clone());
        assert_eq!(
            m.ciphertext.as_slice().len() % 64,
            16,
            "padded, plus the tag"
        );
        let v = f.open_private(&m).unwrap();
        assert_eq!(v.content(), &content);
        assert_eq!(v.wire_format(), WireFormat::PRIVATE_MESSAGE);
        assert_eq!(
            f.open_private(&m).err(),
            Some(Error::RatchetKeyUsed { generation: 0 })
        );
    }
}

/// The staged form leaves the tree alone; its key is spent when the caller applies it,
/// and a second message opened against the same tree state cannot be applied after it.
#[test]
fn private_staged_spends_only_when_applied() {
    let f = fixture();
    let first = f.private(f.application());
    let c = SuiteCrypto::new(&f.provider, SUITE).unwrap();
    let before = f.tree.clone();
    let lookup = |leaf: LeafIndex| (leaf.0 < 3).then(|| f.public.clone());
    let open = |tree: &SecretTree| {
        unprotect_private_staged(
            &c,
            &first,
            &EpochKeys {
                context: &f.context,
                sender_data_secret: &f.sender_data_secret,
                membership_key: Some(&f.membership_key),
            },
            tree,
            lookup,
        )
    };
    let (verified, consumed) = open(&f.tree).unwrap();
    assert_eq!(verified.content(), &f.application());
    assert_eq!(f.tree, before, "staging changed the tree");
    let (_, stale) = open(&f.tree).unwrap();
    let mut tree = f.tree.clone();
    tree.apply(consumed).unwrap();
    assert_ne!(tree, before);
    assert_eq!(tree.apply(stale), Err(Error::StaleRatchetUpdate));
    assert_eq!(
        open(&tree).err(),
        Some(Error::RatchetKeyUsed { generation: 0 })
    );
}

#[test]
fn private_tampering_burns_nothing() {
    let mut f = fixture();
    let m = f.private(f.application());

    let mut bad = m.clone();
    let mut ct = bad.ciphertext.as_slice().to_vec();
    let last = ct.len() - 1; // beyond the sender-data sample
    ct[last] ^= 1;
    bad.ciphertext = VarBytes::new(ct);
    assert_eq!(
        f.open_private(&bad).err(),
        Some(Error::ContentDecryptFailed)
    );

    let mut bad = m.clone();
    bad.authenticated_data = VarBytes::new(vec![]);
    assert_eq!(
        f.open_private(&bad).err(),
        Some(Error::ContentDecryptFailed)
    );

    let mut bad = m.clone();
    let mut sd = bad.encrypted_sender_data.as_slice().to_vec();
    sd[0] ^= 1;
    bad.encrypted_sender_data = VarBytes::new(sd);
    assert_eq!(
        f.open_private(&bad).err(),
        Some(Error::SenderDataDecryptFailed)
    );

    let mut bad = m.clone();
    bad.epoch = 10;
    assert_eq!(
        f.open_private(&bad).err(),
        Some(Error::WrongEpoch {
            expected: 9,
            got: 10
        })
    );
    let mut bad = m.clone();
    bad.group_id = VarBytes::new(b"other".to_vec());
    assert_eq!(f.open_private(&bad).err(), Some(Error::WrongGroupId));

    // After all that, the genuine message still opens.
    assert!(f.open_private(&m).is_ok());
}

#[test]
fn private_forged_signature_burns_nothing() {
    let mut f = fixture();
    let other = f.provider.signature_generate_key_pair(SUITE).unwrap();
    let c = f.crypto();
    // A member who knows the group secrets but signs with the wrong key, at the same
    // generation as the genuine message.
    let forged = protect_private(
        &c,
        &other.private_key,
        &EpochKeys {
            context: &f.context,
            sender_data_secret: &f.sender_data_secret,
            membership_key: Some(&f.membership_key),
        },
        &mut f.tree.clone(),
        PaddingPolicy::None,
        f.application(),
        no_confirmation,
    )
    .unwrap();
    let genuine = f.private(f.application());
    assert_eq!(
        f.open_private(&forged).err(),
        Some(Error::InvalidContentSignature)
    );
    assert!(f.open_private(&genuine).is_ok());
}

#[test]
fn private_sender_not_member() {
    let mut f = fixture();
    let mut content = f.application();
    content.sender = Sender::Member(3);
    let m = f.private(content);
    assert_eq!(
        f.open_private(&m).err(),
        Some(Error::SenderNotMember(LeafIndex(3)))
    );
    // Only members send PrivateMessages.
    let mut content = f.proposal();
    content.sender = Sender::External(0);
    let c = f.crypto();
    assert_eq!(
        protect_private(
            &c,
            &f.signer,
            &EpochKeys {
                context: &f.context,
                sender_data_secret: &f.sender_data_secret,
                membership_key: Some(&f.membership_key)
            },
            &mut f.tree.clone(),
            PaddingPolicy::None,
            content,
            no_confirmation
        ),
        Err(Error::PrivateMessageFromNonMember)
    );
}

/// Encrypts `plaintext` as leaf 1's next application message, as [`protect_private`]
/// would, but without building the plaintext from content.
fn seal_raw(f: &Fixture, plaintext: &[u8]) -> PrivateMessage {
    let c = f.crypto();
    let mut sender = f.tree.clone();
    let key = sender
        .next_key(&c, LeafIndex(1), RatchetKind::Application)
        .unwrap();
    let ct = ContentType::Application;
    let aad = PrivateContentAad {
        group_id: f.context.group_id.clone(),
        epoch: f.context.epoch,
        content_type: ct,
        authenticated_data: VarBytes::new(vec![]),
    }
    .encode()
    .unwrap();
    let guard = [1, 2, 3, 4];
    let ciphertext = c
        .aead_seal(
            key.key.as_bytes(),
            guarded_nonce(&key.nonce, guard).as_bytes(),
            &aad,
            plaintext,
        )
        .unwrap();
    let sd = SenderData {
        leaf_index: 1,
        generation: key.generation,
        reuse_guard: guard,
    }
    .encode()
    .unwrap();
    let sd_aad = SenderDataAad {
        group_id: f.context.group_id.clone(),
        epoch: f.context.epoch,
        content_type: ct,
    }
    .encode()
    .unwrap();
    let (k, n) = sender_data_key_nonce(&c, f.sender_data_secret.as_bytes(), &ciphertext).unwrap();
    PrivateMessage {
        group_id: f.context.group_id.clone(),
        epoch: f.context.epoch,
        content_type: ct,
        authenticated_data: VarBytes::new(vec![]),
        encrypted_sender_data: VarBytes::new(
            c.aead_seal(k.as_bytes(), n.as_bytes(), &sd_aad, &sd)
                .unwrap(),
        ),
        ciphertext: VarBytes::new(ciphertext),
    }
}

#[test]
fn private_non_zero_padding() {
    let mut f = fixture();
    let mut content = f.application();
    content.authenticated_data = VarBytes::new(vec![]);
    let to_sign = tbs(WireFormat::PRIVATE_MESSAGE, &content, &f.context).unwrap();
    let signature = f
        .crypto()
        .sign_with_label(&f.signer, FRAMED_CONTENT_TBS, &to_sign)
        .unwrap();
    let pmc = PrivateMessageContent {
        body: content.body.clone(),
        auth: FramedContentAuthData {
            signature: VarBytes::new(signature),
            confirmation_tag: None,
        },
        padding_len: 8,
    };
    let good = pmc.encode().unwrap();
    let mut bad = good.clone();
    let last = bad.len() - 1;
    bad[last] = 1;
    assert_eq!(
        f.open_private(&seal_raw(&f, &bad)).err(),
        Some(Error::NonZeroPadding)
    );
    // The same plaintext with zero padding is fine: only the padding was wrong.
    assert_eq!(
        f.open_private(&seal_raw(&f, &good)).unwrap().content(),
        &content
    );
}
