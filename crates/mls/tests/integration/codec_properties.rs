//! Property tests of the wire codec (RFC 9420 §2.1): random structures round-trip exactly,
//! and decoding random, truncated or lying input fails cleanly instead of panicking.

use conclave_mls::CipherSuite;
use conclave_mls::codec::{Decode, Encode, Size, VarBytes};
use conclave_mls::messages::*;
use proptest::collection::vec;
use proptest::prelude::*;
use std::fmt::Debug;

// ---------------------------------------------------------------- strategies

fn bytes(max: usize) -> impl Strategy<Value = VarBytes> {
    vec(any::<u8>(), 0..max).prop_map(VarBytes::new)
}

fn hpke_key() -> impl Strategy<Value = HpkePublicKey> {
    bytes(40).prop_map(HpkePublicKey)
}

fn sig_key() -> impl Strategy<Value = SignaturePublicKey> {
    bytes(40).prop_map(SignaturePublicKey)
}

fn mac() -> impl Strategy<Value = Mac> {
    bytes(40).prop_map(Mac)
}

fn extension() -> impl Strategy<Value = Extension> {
    (any::<u16>(), bytes(20)).prop_map(|(t, d)| Extension {
        extension_type: ExtensionType(t),
        extension_data: d,
    })
}

fn extensions() -> impl Strategy<Value = Vec<Extension>> {
    vec(extension(), 0..3)
}

fn credential() -> impl Strategy<Value = Credential> {
    prop_oneof![
        bytes(20).prop_map(|identity| Credential::Basic { identity }),
        vec(
            bytes(30).prop_map(|cert_data| Certificate { cert_data }),
            0..3
        )
        .prop_map(|certificates| Credential::X509 { certificates }),
    ]
}

fn capabilities() -> impl Strategy<Value = Capabilities> {
    (
        vec(any::<u16>().prop_map(ProtocolVersion), 0..3),
        vec(any::<u16>().prop_map(CipherSuite), 0..3),
        vec(any::<u16>().prop_map(ExtensionType), 0..3),
        vec(any::<u16>().prop_map(ProposalType), 0..3),
        vec(any::<u16>().prop_map(CredentialType), 0..3),
    )
        .prop_map(
            |(versions, cipher_suites, extensions, proposals, credentials)| Capabilities {
                versions,
                cipher_suites,
                extensions,
                proposals,
                credentials,
            },
        )
}

fn leaf_node_source() -> impl Strategy<Value = LeafNodeSource> {
    prop_oneof![
        (any::<u64>(), any::<u64>()).prop_map(|(not_before, not_after)| {
            LeafNodeSource::KeyPackage {
                lifetime: Lifetime {
                    not_before,
                    not_after,
                },
            }
        }),
        Just(LeafNodeSource::Update),
        bytes(40).prop_map(|parent_hash| LeafNodeSource::Commit { parent_hash }),
    ]
}

fn leaf_node() -> impl Strategy<Value = LeafNode> {
    (
        hpke_key(),
        sig_key(),
        credential(),
        capabilities(),
        leaf_node_source(),
        extensions(),
        bytes(70),
    )
        .prop_map(
            |(encryption_key, signature_key, credential, capabilities, source, exts, sig)| {
                LeafNode {
                    content: LeafNodeContent {
                        encryption_key,
                        signature_key,
                        credential,
                        capabilities,
                        leaf_node_source: source,
                        extensions: exts,
                    },
                    signature: sig,
                }
            },
        )
}

fn key_package() -> impl Strategy<Value = KeyPackage> {
    (
        any::<u16>(),
        any::<u16>(),
        hpke_key(),
        leaf_node(),
        extensions(),
        bytes(70),
    )
        .prop_map(
            |(v, cs, init_key, leaf_node, extensions, signature)| KeyPackage {
                tbs: KeyPackageTbs {
                    version: ProtocolVersion(v),
                    cipher_suite: CipherSuite(cs),
                    init_key,
                    leaf_node,
                    extensions,
                },
                signature,
            },
        )
}

fn node() -> impl Strategy<Value = Node> {
    prop_oneof![
        leaf_node().prop_map(Node::Leaf),
        (hpke_key(), bytes(40), vec(any::<u32>(), 0..4)).prop_map(|(k, h, u)| {
            Node::Parent(ParentNode {
                encryption_key: k,
                parent_hash: h,
                unmerged_leaves: u,
            })
        }),
    ]
}

fn ratchet_tree() -> impl Strategy<Value = RatchetTree> {
    vec(proptest::option::of(node()), 0..6).prop_map(RatchetTree)
}

fn psk_id() -> impl Strategy<Value = PreSharedKeyId> {
    let psk = prop_oneof![
        bytes(20).prop_map(|psk_id| Psk::External { psk_id }),
        (1u8..=3, bytes(20), any::<u64>()).prop_map(|(u, psk_group_id, psk_epoch)| {
            let usage = match u {
                1 => ResumptionPskUsage::Application,
                2 => ResumptionPskUsage::Reinit,
                _ => ResumptionPskUsage::Branch,
            };
            Psk::Resumption {
                usage,
                psk_group_id,
                psk_epoch,
            }
        }),
    ];
    (psk, bytes(40)).prop_map(|(psk, psk_nonce)| PreSharedKeyId { psk, psk_nonce })
}

fn group_context() -> impl Strategy<Value = GroupContext> {
    (
        any::<u16>(),
        any::<u16>(),
        bytes(20),
        any::<u64>(),
        bytes(40),
        bytes(40),
        extensions(),
    )
        .prop_map(
            |(v, cs, group_id, epoch, th, cth, extensions)| GroupContext {
                version: ProtocolVersion(v),
                cipher_suite: CipherSuite(cs),
                group_id,
                epoch,
                tree_hash: th,
                confirmed_transcript_hash: cth,
                extensions,
            },
        )
}

fn proposal() -> impl Strategy<Value = Proposal> {
    prop_oneof![
        key_package().prop_map(|key_package| Proposal::Add(Add { key_package })),
        leaf_node().prop_map(|leaf_node| Proposal::Update(Update { leaf_node })),
        any::<u32>().prop_map(|removed| Proposal::Remove(Remove { removed })),
        psk_id().prop_map(|psk| Proposal::PreSharedKey(PreSharedKey { psk })),
        (bytes(20), any::<u16>(), any::<u16>(), extensions()).prop_map(|(g, v, cs, e)| {
            Proposal::ReInit(ReInit {
                group_id: g,
                version: ProtocolVersion(v),
                cipher_suite: CipherSuite(cs),
                extensions: e,
            })
        }),
        bytes(40).prop_map(|kem_output| Proposal::ExternalInit(ExternalInit { kem_output })),
        extensions().prop_map(|extensions| {
            Proposal::GroupContextExtensions(GroupContextExtensions { extensions })
        }),
    ]
}

fn hpke_ciphertext() -> impl Strategy<Value = HpkeCiphertext> {
    (bytes(40), bytes(60)).prop_map(|(kem_output, ciphertext)| HpkeCiphertext {
        kem_output,
        ciphertext,
    })
}

fn update_path() -> impl Strategy<Value = UpdatePath> {
    let node = (hpke_key(), vec(hpke_ciphertext(), 0..3)).prop_map(|(k, c)| UpdatePathNode {
        encryption_key: k,
        encrypted_path_secret: c,
    });
    (leaf_node(), vec(node, 0..3)).prop_map(|(leaf_node, nodes)| UpdatePath { leaf_node, nodes })
}

fn commit() -> impl Strategy<Value = Commit> {
    let por = prop_oneof![
        proposal().prop_map(ProposalOrRef::Proposal),
        bytes(40).prop_map(|r| ProposalOrRef::Reference(ProposalRef(r))),
    ];
    (vec(por, 0..3), proptest::option::of(update_path()))
        .prop_map(|(proposals, path)| Commit { proposals, path })
}

fn sender() -> impl Strategy<Value = Sender> {
    prop_oneof![
        any::<u32>().prop_map(Sender::Member),
        any::<u32>().prop_map(Sender::External),
        Just(Sender::NewMemberProposal),
        Just(Sender::NewMemberCommit),
    ]
}

fn framed_content_body() -> impl Strategy<Value = FramedContentBody> {
    prop_oneof![
        bytes(50).prop_map(FramedContentBody::Application),
        proposal().prop_map(FramedContentBody::Proposal),
        commit().prop_map(FramedContentBody::Commit),
    ]
}

fn framed_content() -> impl Strategy<Value = FramedContent> {
    (
        bytes(20),
        any::<u64>(),
        sender(),
        bytes(20),
        framed_content_body(),
    )
        .prop_map(
            |(group_id, epoch, sender, authenticated_data, body)| FramedContent {
                group_id,
                epoch,
                sender,
                authenticated_data,
                body,
            },
        )
}

/// Auth data consistent with `ct`: a confirmation tag exactly for commits.
fn auth_for(ct: ContentType, signature: VarBytes, tag: Mac) -> FramedContentAuthData {
    FramedContentAuthData {
        signature,
        confirmation_tag: (ct == ContentType::Commit).then_some(tag),
    }
}

fn public_message() -> impl Strategy<Value = PublicMessage> {
    (framed_content(), bytes(70), mac(), mac()).prop_map(|(content, sig, tag, mtag)| {
        let auth = auth_for(content.body.content_type(), sig, tag);
        let membership_tag = matches!(content.sender, Sender::Member(_)).then_some(mtag);
        PublicMessage {
            content,
            auth,
            membership_tag,
        }
    })
}

fn content_type() -> impl Strategy<Value = ContentType> {
    prop_oneof![
        Just(ContentType::Application),
        Just(ContentType::Proposal),
        Just(ContentType::Commit),
    ]
}

fn private_message() -> impl Strategy<Value = PrivateMessage> {
    (
        bytes(20),
        any::<u64>(),
        content_type(),
        bytes(20),
        bytes(30),
        bytes(100),
    )
        .prop_map(|(g, e, ct, ad, esd, c)| PrivateMessage {
            group_id: g,
            epoch: e,
            content_type: ct,
            authenticated_data: ad,
            encrypted_sender_data: esd,
            ciphertext: c,
        })
}

fn private_message_content() -> impl Strategy<Value = PrivateMessageContent> {
    (framed_content_body(), bytes(70), mac(), 0usize..300).prop_map(|(body, sig, tag, pad)| {
        let auth = auth_for(body.content_type(), sig, tag);
        PrivateMessageContent {
            body,
            auth,
            padding_len: pad,
        }
    })
}

fn group_info() -> impl Strategy<Value = GroupInfo> {
    (
        group_context(),
        extensions(),
        mac(),
        any::<u32>(),
        bytes(70),
    )
        .prop_map(
            |(group_context, extensions, confirmation_tag, signer, signature)| GroupInfo {
                tbs: GroupInfoTbs {
                    group_context,
                    extensions,
                    confirmation_tag,
                    signer,
                },
                signature,
            },
        )
}

fn welcome() -> impl Strategy<Value = Welcome> {
    let egs = (bytes(40), hpke_ciphertext()).prop_map(|(r, c)| EncryptedGroupSecrets {
        new_member: KeyPackageRef(r),
        encrypted_group_secrets: c,
    });
    (any::<u16>(), vec(egs, 0..4), bytes(100)).prop_map(|(cs, secrets, egi)| Welcome {
        cipher_suite: CipherSuite(cs),
        secrets,
        encrypted_group_info: egi,
    })
}

fn group_secrets() -> impl Strategy<Value = GroupSecrets> {
    (
        bytes(40),
        proptest::option::of(bytes(40).prop_map(|path_secret| PathSecret { path_secret })),
        vec(psk_id(), 0..3),
    )
        .prop_map(|(joiner_secret, path_secret, psks)| GroupSecrets {
            joiner_secret,
            path_secret,
            psks,
        })
}

fn mls_message() -> impl Strategy<Value = MlsMessage> {
    let body = prop_oneof![
        public_message().prop_map(MlsMessageBody::PublicMessage),
        private_message().prop_map(MlsMessageBody::PrivateMessage),
        welcome().prop_map(MlsMessageBody::Welcome),
        group_info().prop_map(MlsMessageBody::GroupInfo),
        key_package().prop_map(MlsMessageBody::KeyPackage),
    ];
    (any::<u16>(), body).prop_map(|(v, body)| MlsMessage {
        version: ProtocolVersion(v),
        body,
    })
}

fn framed_content_tbs() -> impl Strategy<Value = FramedContentTbs> {
    (any::<u16>(), framed_content(), group_context()).prop_map(|(wf, content, ctx)| {
        let context =
            matches!(content.sender, Sender::Member(_) | Sender::NewMemberCommit).then_some(ctx);
        FramedContentTbs {
            version: ProtocolVersion::MLS10,
            wire_format: WireFormat(wf),
            content,
            context,
        }
    })
}

fn authenticated_content() -> impl Strategy<Value = AuthenticatedContent> {
    (any::<u16>(), framed_content(), bytes(70), mac()).prop_map(|(wf, content, sig, tag)| {
        let auth = auth_for(content.body.content_type(), sig, tag);
        AuthenticatedContent {
            wire_format: WireFormat(wf),
            content,
            auth,
        }
    })
}

fn extension_bodies() -> impl Strategy<Value = (RequiredCapabilities, ExternalPub, ExternalSenders)>
{
    (
        vec(any::<u16>().prop_map(ExtensionType), 0..3),
        vec(any::<u16>().prop_map(ProposalType), 0..3),
        vec(any::<u16>().prop_map(CredentialType), 0..3),
        hpke_key(),
        vec(
            (sig_key(), credential()).prop_map(|(signature_key, credential)| ExternalSender {
                signature_key,
                credential,
            }),
            0..3,
        ),
    )
        .prop_map(|(e, p, c, k, s)| {
            (
                RequiredCapabilities {
                    extension_types: e,
                    proposal_types: p,
                    credential_types: c,
                },
                ExternalPub { external_pub: k },
                ExternalSenders(s),
            )
        })
}

// ---------------------------------------------------------------- checks

/// decode(encode(x)) == x, encode(decode(encode(x))) == encode(x), the advertised size is
/// the encoded size, and every proper prefix of the encoding fails to decode.
fn check_round_trip<T>(value: &T) -> Result<(), TestCaseError>
where
    T: Decode + Encode + Size + PartialEq + Debug,
{
    let bytes = value
        .encode()
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(bytes.len(), value.tls_serialized_len());
    let back = T::decode(&bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(&back, value);
    let again = back
        .encode()
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(&again, &bytes);
    for cut in 0..bytes.len() {
        prop_assert!(
            T::decode(&bytes[..cut]).is_err(),
            "prefix of {} / {} bytes decoded",
            cut,
            bytes.len()
        );
    }
    // A trailing byte is refused by `decode` and left over by `decode_prefix`.
    let mut longer = bytes.clone();
    longer.push(0);
    prop_assert!(T::decode(&longer).is_err());
    let (_, rest) = T::decode_prefix(&longer).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(rest, &[0u8][..]);
    Ok(())
}

/// Decoding arbitrary bytes as every top-level structure must return, never panic.
fn decode_all(data: &[u8]) {
    let _ = MlsMessage::decode(data);
    let _ = RatchetTree::decode(data);
    let _ = KeyPackage::decode(data);
    let _ = LeafNode::decode(data);
    let _ = LeafNodeTbs::decode(data);
    let _ = Proposal::decode(data);
    let _ = Commit::decode(data);
    let _ = GroupInfo::decode(data);
    let _ = GroupSecrets::decode(data);
    let _ = Welcome::decode(data);
    let _ = PublicMessage::decode(data);
    let _ = AuthenticatedContent::decode(data);
    let _ = FramedContentTbs::decode(data);
    let _ = SenderData::decode(data);
    let _ = ExternalSenders::decode(data);
    let _ = RequiredCapabilities::decode(data);
    for ct in [
        ContentType::Application,
        ContentType::Proposal,
        ContentType::Commit,
    ] {
        let _ = PrivateMessageContent::deserialize_for(ct, data);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn key_package_round_trips(v in key_package()) { check_round_trip(&v)?; }

    #[test]
    fn leaf_node_round_trips(v in leaf_node()) { check_round_trip(&v)?; }

    #[test]
    fn leaf_node_tbs_round_trips(v in leaf_node(), g in bytes(20), i in any::<u32>()) {
        let binding = match v.content.leaf_node_source {
            LeafNodeSource::KeyPackage { .. } => None,
            _ => Some(LeafNodeGroupBinding { group_id: g, leaf_index: i }),
        };
        check_round_trip(&LeafNodeTbs { content: v.content, binding })?;
    }

    #[test]
    fn proposal_round_trips(v in proposal()) { check_round_trip(&v)?; }

    #[test]
    fn commit_round_trips(v in commit()) { check_round_trip(&v)?; }

    #[test]
    fn mls_message_round_trips(v in mls_message()) { check_round_trip(&v)?; }

    #[test]
    fn public_message_round_trips(v in public_message()) { check_round_trip(&v)?; }

    #[test]
    fn framed_content_tbs_round_trips(v in framed_content_tbs()) { check_round_trip(&v)?; }

    #[test]
    fn authenticated_content_round_trips(v in authenticated_content()) { check_round_trip(&v)?; }

    #[test]
    fn group_info_round_trips(v in group_info()) { check_round_trip(&v)?; }

    #[test]
    fn welcome_round_trips(v in welcome()) { check_round_trip(&v)?; }

    #[test]
    fn group_secrets_round_trips(v in group_secrets()) { check_round_trip(&v)?; }

    #[test]
    fn ratchet_tree_round_trips(v in ratchet_tree()) { check_round_trip(&v)?; }

    #[test]
    fn extension_bodies_round_trip(v in extension_bodies()) {
        check_round_trip(&v.0)?;
        check_round_trip(&v.1)?;
        check_round_trip(&v.2)?;
    }

    #[test]
    fn private_message_content_round_trips(v in private_message_content()) {
        let ct = v.body.content_type();
        let bytes = v.encode().map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(bytes.len(), v.tls_serialized_len());
        let back = PrivateMessageContent::deserialize_for(ct, &bytes)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&back, &v);
        prop_assert_eq!(back.encode().unwrap(), bytes.clone());
        // Truncations: either an error or a shorter padding, never a panic. Cuts inside the
        // content or auth data must fail.
        let unpadded = bytes.len() - v.padding_len;
        for cut in 0..bytes.len() {
            let r = PrivateMessageContent::deserialize_for(ct, &bytes[..cut]);
            if cut < unpadded {
                prop_assert!(r.is_err());
            } else {
                prop_assert_eq!(r.unwrap().padding_len, cut - unpadded);
            }
        }
        // Any non-zero byte in the padding is refused.
        if v.padding_len > 0 {
            let mut bad = bytes.clone();
            let last = bad.len() - 1;
            bad[last] = 0x80;
            prop_assert!(PrivateMessageContent::deserialize_for(ct, &bad).is_err());
        }
    }

    #[test]
    fn random_bytes_never_panic(data in vec(any::<u8>(), 0..512)) {
        decode_all(&data);
    }

    #[test]
    fn mutated_messages_never_panic(v in mls_message(), pos in any::<usize>(), byte in any::<u8>()) {
        let mut bytes = v.encode().unwrap();
        if !bytes.is_empty() {
            let i = pos % bytes.len();
            bytes[i] = byte;
        }
        decode_all(&bytes);
    }
}

/// A length prefix claiming up to 2^30 − 1 bytes that are not there must fail at once:
/// the decoders check the claim against the input before copying, and vector decoders
/// grow only as elements actually decode (never reserving from the claimed length).
#[test]
fn huge_length_claims_fail_fast() {
    let start = std::time::Instant::now();
    let huge = [0xbf, 0xff, 0xff, 0xff]; // varint 2^30 - 1
    let inputs: Vec<Vec<u8>> = vec![
        // Bare vectors and opaque strings.
        [&huge[..], &[1, 2, 3]].concat(),
        // A ratchet tree whose outer vector lies, and one whose first leaf's key lies.
        [&huge[..], &[1, 1]].concat(),
        [&[0x10, 1, 1][..], &huge[..], &[0; 8]].concat(),
        // An MLSMessage(Welcome) whose secrets vector lies.
        [&[0, 1, 0, 3, 0, 1][..], &huge[..], &[0; 16]].concat(),
        // A PublicMessage whose group_id lies.
        [&[0, 1, 0, 1][..], &huge[..], &[0; 16]].concat(),
    ];
    for data in &inputs {
        assert!(RatchetTree::decode(data).is_err());
        assert!(MlsMessage::decode(data).is_err());
        assert!(Commit::decode(data).is_err());
        assert!(VarBytes::decode(data).is_err());
        assert!(Welcome::decode(data).is_err());
        decode_all(data);
    }
    assert!(
        start.elapsed() < std::time::Duration::from_secs(1),
        "lying length prefixes took {:?}",
        start.elapsed()
    );
}
