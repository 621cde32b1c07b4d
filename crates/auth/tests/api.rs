//! The AS over real HTTP on 127.0.0.1, on SQLite and on PostgreSQL: invitations, proof of
//! possession, issuance and renewal, look-up, contact keys, relay, revocation.

mod support;

use conclave_as::api::{self, ErrorCode};
use support::{Device, TestServer, device_for, invitation, random32};

engine_tests! {
    async fn invitation_is_single_use(server) {
        let code = server.invite("alice@example.org").await;
        let device = server.register(invitation(&code)).await.expect("first use");
        assert_eq!(device.user_id, "alice@example.org");
        server.register(invitation(&code)).await.err().expect("second use")
            .assert_error(403, ErrorCode::InvalidInvitation);
        server.register(invitation("not-a-code")).await.err().expect("unknown code")
            .assert_error(403, ErrorCode::InvalidInvitation);
        // An expired invitation is refused.
        let late = server.invite("bob@example.org").await;
        server.advance(8 * 86_400);
        server.register(invitation(&late)).await.err().expect("expired")
            .assert_error(403, ErrorCode::InvalidInvitation);
    }

    async fn concurrent_uses_of_one_invitation_register_one_device(server) {
        let code = server.invite("alice@example.org").await;
        let (a, b, c, d) = tokio::join!(
            server.register(invitation(&code)),
            server.register(invitation(&code)),
            server.register(invitation(&code)),
            server.register(invitation(&code)),
        );
        let results = [a, b, c, d];
        assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
        for refused in results.iter().filter_map(|r| r.as_ref().err()) {
            refused.assert_error(403, ErrorCode::InvalidInvitation);
        }
    }

    async fn proof_of_possession_is_required(server) {
        use ed25519_dalek::Signer as _;
        let victim = ed25519_dalek::SigningKey::from_bytes(&random32());
        let attacker = ed25519_dalek::SigningKey::from_bytes(&random32());
        let code = server.invite("mallory@example.org").await;
        // Mallory asks for a certificate on the victim's public key, signing with her own.
        let (status, body) = server.raw("POST", "/v1/challenges", &[], b"").await;
        assert_eq!(status, 200);
        let challenge: api::Challenge = serde_json::from_slice(&body).unwrap();
        let victim_key = victim.verifying_key().to_bytes().to_vec();
        let proof = attacker.sign(&api::register_proof_message(&challenge.nonce.0, &victim_key));
        let request = api::RegisterRequest {
            authorization: invitation(&code),
            challenge_id: challenge.challenge_id.clone(),
            signature_key: victim_key.clone().into(),
            proof: proof.to_bytes().to_vec().into(),
        };
        let reply: support::Reply = server.raw("POST", "/v1/register", &[], &serde_json::to_vec(&request).unwrap()).await.into();
        reply.assert_error(400, ErrorCode::BadSignature);
        // The challenge was consumed: a correct proof on it is refused now.
        let good = victim.sign(&api::register_proof_message(&challenge.nonce.0, &victim_key));
        let retry = api::RegisterRequest { proof: good.to_bytes().to_vec().into(), ..request };
        let reply: support::Reply = server.raw("POST", "/v1/register", &[], &serde_json::to_vec(&retry).unwrap()).await.into();
        reply.assert_error(400, ErrorCode::InvalidChallenge);
        // The failed proofs did not burn the invitation; the key holder can register it.
        let device = server.register_key(victim.clone(), invitation(&code)).await.expect("register");
        assert_eq!(device.public_key(), victim_key);
        // The same key cannot be registered twice.
        let code2 = server.invite("mallory@example.org").await;
        server.register_key(victim, invitation(&code2)).await.err().expect("duplicate")
            .assert_error(409, ErrorCode::KeyInUse);
        // Expired challenge.
        let (_, body) = server.raw("POST", "/v1/challenges", &[], b"").await;
        let challenge: api::Challenge = serde_json::from_slice(&body).unwrap();
        server.advance(301);
        let key = ed25519_dalek::SigningKey::from_bytes(&random32());
        let public = key.verifying_key().to_bytes().to_vec();
        let request = api::RegisterRequest {
            authorization: invitation(&code2),
            challenge_id: challenge.challenge_id,
            proof: key.sign(&api::register_proof_message(&challenge.nonce.0, &public)).to_bytes().to_vec().into(),
            signature_key: public.into(),
        };
        let reply: support::Reply = server.raw("POST", "/v1/register", &[], &serde_json::to_vec(&request).unwrap()).await.into();
        reply.assert_error(400, ErrorCode::InvalidChallenge);
    }

    async fn issued_chains_are_mls_credentials(server) {
        let device = device_for(&server, "alice@example.org").await;
        let now = server.now();
        let chain = device.chain();
        assert_eq!(chain.len(), 2, "leaf and issuing CA");
        // The root served at /v1/root is the one the chain validates to.
        let (status, body) = server.raw("GET", "/v1/root", &[], b"").await;
        assert_eq!(status, 200);
        let root: api::Root = serde_json::from_slice(&body).unwrap();
        assert_eq!(root.certificate.0, server.root_der);
        let (user, dev) = support::mls::validate(&server.root_der, &chain, &device.public_key(), now).expect("valid");
        assert_eq!(user, "alice@example.org");
        assert_eq!(dev.as_deref(), Some(device.device_id.as_str()));
        // Expired: past notAfter (30 days by default).
        assert!(device.certificate.not_after >= now + 30 * 86_400 - 1);
        let err = support::mls::validate(&server.root_der, &chain, &device.public_key(), device.certificate.not_after + 1).unwrap_err();
        assert!(err.contains("expired"), "{err}");
        // Wrong key: the chain presented with another signature key.
        let other = ed25519_dalek::SigningKey::from_bytes(&random32()).verifying_key().to_bytes();
        assert!(support::mls::validate(&server.root_der, &chain, &other, now).is_err());
        // Wrong root: another AS's root.
        let other_server = TestServer::start(support::Engine::Sqlite).await;
        let err = support::mls::validate(&other_server.root_der, &chain, &device.public_key(), now).unwrap_err();
        assert!(err.contains("x509"), "{err}");
        other_server.finish().await;
        // Tampered leaf (the device id changed): the signature no longer verifies.
        let mut tampered = chain.clone();
        let pos = tampered[0].windows(device.device_id.len()).position(|w| w == device.device_id.as_bytes()).unwrap();
        tampered[0][pos] ^= 1;
        assert!(support::mls::validate(&server.root_der, &tampered, &device.public_key(), now).is_err());
    }

    async fn renewal_before_expiry_only(server) {
        let device = device_for(&server, "alice@example.org").await;
        let path = format!("/v1/devices/{}/renew", device.device_id);
        server.advance(10 * 86_400);
        let reply = server.signed(&device, "POST", &path, None::<&()>).await;
        assert_eq!(reply.status, 200, "{}", String::from_utf8_lossy(&reply.body));
        let renewed: api::CertificateChain = reply.json();
        assert!(renewed.not_after >= device.certificate.not_after + 10 * 86_400 - 1);
        let chain: Vec<Vec<u8>> = renewed.certificates.iter().map(|c| c.0.clone()).collect();
        support::mls::validate(&server.root_der, &chain, &device.public_key(), server.now()).expect("renewed chain valid");
        // The look-up serves the renewed chain.
        let other = device_for(&server, "bob@example.org").await;
        let lookup: api::UserDevices = server.signed(&other, "GET", "/v1/users/alice@example.org/devices", None::<&()>).await.json();
        assert_eq!(lookup.devices[0].certificate, renewed);
        // Another device cannot renew it.
        server.signed(&other, "POST", &path, None::<&()>).await.assert_error(403, ErrorCode::Forbidden);
        // Once expired, no renewal: the device must register again.
        server.advance(31 * 86_400);
        server.signed(&device, "POST", &path, None::<&()>).await.assert_error(403, ErrorCode::CertificateExpired);
    }

    async fn lookup_returns_every_current_device_with_contact_keys(server) {
        let phone = device_for(&server, "alice@example.org").await;
        let laptop = device_for(&server, "alice@example.org").await;
        let bob = device_for(&server, "bob@example.org").await;
        // Contact keys: published signed by each device.
        for (device, key) in [(&phone, [1u8; 32]), (&laptop, [2u8; 32])] {
            let path = format!("/v1/devices/{}/contact-key", device.device_id);
            let reply = server.signed(device, "PUT", &path, Some(&device.contact_key(&key))).await;
            assert_eq!(reply.status, 204, "{}", String::from_utf8_lossy(&reply.body));
        }
        // A contact key signed by another device's key is refused.
        let mut forged = bob.contact_key(&[3u8; 32]);
        forged.key = api::Bytes(vec![3u8; 32]);
        let path = format!("/v1/devices/{}/contact-key", phone.device_id);
        server.signed(&phone, "PUT", &path, Some(&forged)).await.assert_error(400, ErrorCode::BadSignature);
        // Bob cannot set Alice's phone's contact key, even with a valid signature of his own.
        server.signed(&bob, "PUT", &path, Some(&bob.contact_key(&[3u8; 32]))).await.assert_error(403, ErrorCode::Forbidden);

        let lookup: api::UserDevices = server.signed(&bob, "GET", "/v1/users/alice@example.org/devices", None::<&()>).await.json();
        assert_eq!(lookup.user_id, "alice@example.org");
        let ids: Vec<&str> = lookup.devices.iter().map(|d| d.device_id.as_str()).collect();
        assert_eq!(ids.len(), 2);
        assert!(ids.contains(&phone.device_id.as_str()) && ids.contains(&laptop.device_id.as_str()));
        for d in &lookup.devices {
            let owner = if d.device_id == phone.device_id { &phone } else { &laptop };
            assert_eq!(d.signature_key.0, owner.public_key());
            let chain: Vec<Vec<u8>> = d.certificate.certificates.iter().map(|c| c.0.clone()).collect();
            let (user, dev) = support::mls::validate(&server.root_der, &chain, &d.signature_key.0, server.now()).expect("valid");
            assert_eq!((user.as_str(), dev.as_deref()), ("alice@example.org", Some(d.device_id.as_str())));
            // The client checks the contact key's signature with the certified key.
            let ck = d.contact_key.as_ref().expect("contact key");
            let vk = ed25519_dalek::VerifyingKey::from_bytes(&d.signature_key.0.clone().try_into().unwrap()).unwrap();
            let sig = ed25519_dalek::Signature::from_slice(&ck.signature.0).unwrap();
            vk.verify_strict(&api::contact_key_message("alice@example.org", &d.device_id, &ck.key.0), &sig).expect("contact key signature");
        }
        server.signed(&bob, "GET", "/v1/users/nobody@example.org/devices", None::<&()>).await.assert_error(404, ErrorCode::NotFound);
    }

    async fn requests_must_be_signed(server) {
        let device = device_for(&server, "alice@example.org").await;
        let path = "/v1/users/alice@example.org/devices";
        let reply: support::Reply = server.raw("GET", path, &[], b"").await.into();
        reply.assert_error(401, ErrorCode::Unauthenticated);
        // Signed for another path.
        let headers = device.sign_headers("GET", "/v1/users/bob@example.org/devices", server.now(), b"");
        let reply: support::Reply = server.raw("GET", path, &headers, b"").await.into();
        reply.assert_error(401, ErrorCode::Unauthenticated);
        // Stale timestamp.
        let headers = device.sign_headers("GET", path, server.now() - 600, b"");
        let reply: support::Reply = server.raw("GET", path, &headers, b"").await.into();
        reply.assert_error(401, ErrorCode::Unauthenticated);
        // Body changed after signing.
        let inbox = format!("/v1/devices/{}/inbox", device.device_id);
        let signed_body = serde_json::to_vec(&api::RelayPost { sealed: api::Bytes(vec![1; 10]) }).unwrap();
        let sent_body = serde_json::to_vec(&api::RelayPost { sealed: api::Bytes(vec![2; 10]) }).unwrap();
        let headers = device.sign_headers("POST", &inbox, server.now(), &signed_body);
        let reply: support::Reply = server.raw("POST", &inbox, &headers, &sent_body).await.into();
        reply.assert_error(401, ErrorCode::Unauthenticated);
        // Malformed JSON gets a JSON error too.
        let reply: support::Reply = server.raw("POST", "/v1/register", &[], b"{").await.into();
        reply.assert_error(400, ErrorCode::BadRequest);
        // No nonce, or a malformed one.
        let headers = device.sign_headers("GET", path, server.now(), b"");
        let without: Vec<_> = headers.iter().filter(|(n, _)| *n != api::HEADER_NONCE).cloned().collect();
        let reply: support::Reply = server.raw("GET", path, &without, b"").await.into();
        reply.assert_error(401, ErrorCode::Unauthenticated);
        let headers = device.sign_headers_with_nonce("GET", path, server.now(), "short", b"");
        let reply: support::Reply = server.raw("GET", path, &headers, b"").await.into();
        reply.assert_error(401, ErrorCode::Unauthenticated);
    }

    async fn a_failed_registration_leaves_nothing_behind(server) {
        let code = server.invite("alice@example.org").await;
        // The database refuses the device row (a forced failure inside the transaction).
        if server.postgres_url().is_some() {
            server.sql("CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'forced'; END $$ LANGUAGE plpgsql; \
                        CREATE TRIGGER refuse_devices BEFORE INSERT ON devices FOR EACH ROW EXECUTE FUNCTION refuse();").await;
        } else {
            server.sql("CREATE TRIGGER refuse_devices BEFORE INSERT ON devices BEGIN SELECT RAISE(ABORT, 'forced'); END;").await;
        }
        server.register(invitation(&code)).await.err().expect("forced failure")
            .assert_error(500, ErrorCode::Internal);
        if server.postgres_url().is_some() {
            server.sql("DROP TRIGGER refuse_devices ON devices").await;
        } else {
            server.sql("DROP TRIGGER refuse_devices").await;
        }
        // The invitation was not consumed and no user row is left revoked or half-made:
        // the same code registers once the database works again.
        let device = server.register(invitation(&code)).await.expect("invitation still valid");
        assert_eq!(device.user_id, "alice@example.org");
        server.register(invitation(&code)).await.err().expect("now used")
            .assert_error(403, ErrorCode::InvalidInvitation);
    }

    async fn signed_requests_cannot_be_replayed(server) {
        let alice = device_for(&server, "alice@example.org").await;
        let bob = device_for(&server, "bob@example.org").await;
        // A captured relay post, replayed byte for byte within the timestamp window.
        let inbox = format!("/v1/devices/{}/inbox", bob.device_id);
        let body = serde_json::to_vec(&api::RelayPost { sealed: api::Bytes(vec![7; 10]) }).unwrap();
        let headers = alice.sign_headers_with_nonce("POST", &inbox, server.now(), "captured-nonce-0001", &body);
        let first: support::Reply = server.raw("POST", &inbox, &headers, &body).await.into();
        assert_eq!(first.status, 201, "{}", String::from_utf8_lossy(&first.body));
        server.advance(60);
        let replay: support::Reply = server.raw("POST", &inbox, &headers, &body).await.into();
        replay.assert_error(401, ErrorCode::ReplayedRequest);
        // Concurrent replays of a fresh request: exactly one is accepted.
        let path = "/v1/users/bob@example.org/devices";
        let headers = alice.sign_headers_with_nonce("GET", path, server.now(), "concurrent-nonce-01", b"");
        let (a, b, c) = tokio::join!(
            server.raw("GET", path, &headers, b""),
            server.raw("GET", path, &headers, b""),
            server.raw("GET", path, &headers, b""),
        );
        let statuses = [a.0, b.0, c.0];
        assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "{statuses:?}");
        assert_eq!(statuses.iter().filter(|s| **s == 401).count(), 2, "{statuses:?}");
        // Only one message reached Bob.
        let fetch = format!("/v1/devices/{}/inbox/fetch", bob.device_id);
        let got: api::RelayMessages = server.signed(&bob, "POST", &fetch, None::<&()>).await.json();
        assert_eq!(got.messages.len(), 1);
        // Nonces are per device: Bob may use the nonce Alice used.
        let headers = bob.sign_headers_with_nonce("GET", path, server.now(), "captured-nonce-0001", b"");
        let reply: support::Reply = server.raw("GET", path, &headers, b"").await.into();
        assert_eq!(reply.status, 200);
        // Once the window has passed, the purge drops the record and the stale request is
        // refused by its timestamp instead.
        server.advance(200);
        assert!(server.service.store().purge_expired(server.now()).await.unwrap() >= 1);
        let headers = alice.sign_headers_with_nonce("POST", &inbox, server.now() - 260, "captured-nonce-0001", &body);
        let late: support::Reply = server.raw("POST", &inbox, &headers, &body).await.into();
        late.assert_error(401, ErrorCode::Unauthenticated);
    }

    async fn relay_is_sealed_and_deleted_on_fetch(server) {
        let alice = device_for(&server, "alice@example.org").await;
        let bob = device_for(&server, "bob@example.org").await;
        let inbox = format!("/v1/devices/{}/inbox", bob.device_id);
        let fetch = format!("/v1/devices/{}/inbox/fetch", bob.device_id);
        for i in 0..3u8 {
            let reply = server.signed(&alice, "POST", &inbox, Some(&api::RelayPost { sealed: api::Bytes(vec![i; 100]) })).await;
            assert_eq!(reply.status, 201, "{}", String::from_utf8_lossy(&reply.body));
        }
        // Only the owner may fetch.
        server.signed(&alice, "POST", &fetch, None::<&()>).await.assert_error(403, ErrorCode::Forbidden);
        let got: api::RelayMessages = server.signed(&bob, "POST", &fetch, None::<&()>).await.json();
        let sealed: Vec<Vec<u8>> = got.messages.iter().map(|m| m.sealed.0.clone()).collect();
        assert_eq!(sealed, vec![vec![0; 100], vec![1; 100], vec![2; 100]]);
        // Deleted on fetch.
        let again: api::RelayMessages = server.signed(&bob, "POST", &fetch, None::<&()>).await.json();
        assert!(again.messages.is_empty());
        // Expired requests are never handed out.
        server.signed(&alice, "POST", &inbox, Some(&api::RelayPost { sealed: api::Bytes(vec![9; 10]) })).await;
        server.advance(7 * 86_400 + 1);
        let late: api::RelayMessages = server.signed(&bob, "POST", &fetch, None::<&()>).await.json();
        assert!(late.messages.is_empty());
        // Too large, empty, unknown recipient.
        server.signed(&alice, "POST", &inbox, Some(&api::RelayPost { sealed: api::Bytes(vec![0; 64 * 1024 + 1]) })).await
            .assert_error(413, ErrorCode::PayloadTooLarge);
        server.signed(&alice, "POST", "/v1/devices/nope/inbox", Some(&api::RelayPost { sealed: api::Bytes(vec![1]) })).await
            .assert_error(404, ErrorCode::NotFound);
    }

    async fn revocation_is_in_the_feed_and_ends_the_device(server) {
        let phone = device_for(&server, "alice@example.org").await;
        let laptop = device_for(&server, "alice@example.org").await;
        let bob = device_for(&server, "bob@example.org").await;
        let carol = device_for(&server, "carol@example.org").await;
        let feed: api::RevocationFeed = server.signed(&bob, "GET", "/v1/revocations?after=0", None::<&()>).await.json();
        assert!(feed.revocations.is_empty());
        // Bob may not revoke Alice's devices.
        let revoke_phone = format!("/v1/devices/{}/revoke", phone.device_id);
        server.signed(&bob, "POST", &revoke_phone, None::<&()>).await.assert_error(403, ErrorCode::Forbidden);
        // Alice's laptop revokes her lost phone.
        let reply = server.signed(&laptop, "POST", &revoke_phone, Some(&api::RevokeRequest { reason: Some("lost".into()) })).await;
        let revoked: Vec<api::Revocation> = reply.json();
        assert_eq!(revoked.len(), 1);
        let feed: api::RevocationFeed = server.signed(&bob, "GET", "/v1/revocations?after=0", None::<&()>).await.json();
        assert_eq!(feed.revocations.len(), 1);
        let entry = &feed.revocations[0];
        assert_eq!((entry.user_id.as_str(), entry.device_id.as_str()), ("alice@example.org", phone.device_id.as_str()));
        assert_eq!(entry.signature_key.0, phone.public_key());
        assert_eq!(entry.reason.as_deref(), Some("lost"));
        // The phone is gone from the look-up and can no longer act.
        let lookup: api::UserDevices = server.signed(&bob, "GET", "/v1/users/alice@example.org/devices", None::<&()>).await.json();
        assert_eq!(lookup.devices.len(), 1);
        assert_eq!(lookup.devices[0].device_id, laptop.device_id);
        server.signed(&phone, "GET", "/v1/revocations", None::<&()>).await.assert_error(403, ErrorCode::DeviceRevoked);
        server.signed(&phone, "POST", &format!("/v1/devices/{}/renew", phone.device_id), None::<&()>).await
            .assert_error(403, ErrorCode::DeviceRevoked);
        server.signed(&bob, "POST", &format!("/v1/devices/{}/inbox", phone.device_id), Some(&api::RelayPost { sealed: api::Bytes(vec![1]) })).await
            .assert_error(404, ErrorCode::NotFound);
        // Bob revokes himself as a user (all his devices); the operator revokes Carol.
        let user_revoke: Vec<api::Revocation> = server.signed(&bob, "POST", "/v1/users/bob@example.org/revoke", None::<&()>).await.json();
        assert_eq!(user_revoke.len(), 1);
        let by_operator = server.service.revoke_user(&conclave_as::service::Actor::Operator, "carol@example.org", Some("abuse")).await.expect("operator");
        assert_eq!(by_operator[0].device_id, carol.device_id);
        // The feed from the first cursor has the two later entries, in order.
        let feed: api::RevocationFeed = server.signed(&laptop, "GET", &format!("/v1/revocations?after={}", entry.seq), None::<&()>).await.json();
        let devices: Vec<&str> = feed.revocations.iter().map(|r| r.device_id.as_str()).collect();
        assert_eq!(devices, vec![bob.device_id.as_str(), carol.device_id.as_str()]);
        assert!(feed.revocations[0].seq > entry.seq && feed.revocations[1].seq > feed.revocations[0].seq);
        let tail: api::RevocationFeed = server.signed(&laptop, "GET", &format!("/v1/revocations?after={}", feed.next), None::<&()>).await.json();
        assert!(tail.revocations.is_empty());
        assert_eq!(tail.next, feed.next);
        // A revoked user registers no new device.
        let code = server.invite("bob@example.org").await;
        server.register(invitation(&code)).await.err().expect("revoked user").assert_error(403, ErrorCode::UserRevoked);
    }
}

#[tokio::test]
async fn health_and_metrics() {
    let server = TestServer::start(support::Engine::Sqlite).await;
    let (status, body) = server.raw("GET", "/health", &[], b"").await;
    assert_eq!((status, body.as_slice()), (200, b"ok".as_slice()));
    device_for(&server, "alice@example.org").await;
    let (status, body) = server.raw("GET", "/metrics", &[], b"").await;
    assert_eq!(status, 200);
    let text = String::from_utf8(body).unwrap();
    assert!(text.contains("conclave_as_registrations_total"), "{text}");
    let (status, body) = server.raw("GET", "/openapi.json", &[], b"").await;
    assert_eq!(status, 200);
    assert_eq!(
        String::from_utf8(body).unwrap(),
        conclave_as::http::openapi::document()
    );
    server.finish().await;
}

#[tokio::test]
async fn sqlite_file_survives_a_restart() {
    use conclave_as::store::Store;
    use conclave_as::store::sqlite::SqliteStore;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("as.db");
    {
        let store = SqliteStore::open(&path).await.unwrap();
        store
            .create_invitation(b"hash", "alice@example.org", u64::MAX / 4)
            .await
            .unwrap();
    }
    let store = SqliteStore::open(&path).await.unwrap();
    assert_eq!(
        store
            .consume_invitation(b"hash", 1)
            .await
            .unwrap()
            .as_deref(),
        Some("alice@example.org")
    );
    assert_eq!(store.consume_invitation(b"hash", 1).await.unwrap(), None);
}

/// A registration that has passed its user check when the user is revoked cannot leave a
/// live device behind. Made deterministic on PostgreSQL: a transaction of the test's own
/// holds the invitation's row, so the registration stops inside its transaction (after its
/// user check, before inserting the device) while the revocation runs.
#[tokio::test]
async fn postgres_registration_racing_a_user_revocation_cannot_survive_it() {
    use sqlx::Connection as _;
    let server = TestServer::start(support::Engine::Postgres).await;
    let first = device_for(&server, "alice@example.org").await;
    let code = server.invite("alice@example.org").await;
    let url = server.postgres_url().expect("postgres");
    let mut blocker = sqlx::PgConnection::connect(&url).await.expect("connect");
    sqlx::raw_sql("BEGIN; UPDATE invitations SET expires_at = expires_at")
        .execute(&mut blocker)
        .await
        .expect("lock the invitations");
    let revoke_path = "/v1/users/alice@example.org/revoke";
    let (registered, revoked, ()) = tokio::join!(
        server.register(invitation(&code)),
        async {
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            server
                .signed(&first, "POST", revoke_path, None::<&()>)
                .await
        },
        async {
            tokio::time::sleep(std::time::Duration::from_millis(900)).await;
            sqlx::raw_sql("COMMIT")
                .execute(&mut blocker)
                .await
                .expect("commit");
        },
    );
    assert_eq!(
        revoked.status,
        200,
        "{}",
        String::from_utf8_lossy(&revoked.body)
    );
    match registered {
        Ok(device) => {
            // Registered first: the revocation waited for it and revoked it too.
            let stored = server
                .service
                .store()
                .device(&device.device_id)
                .await
                .unwrap()
                .unwrap();
            assert!(
                stored.revoked_at.is_some(),
                "a device registered during the revocation survived it"
            );
        }
        Err(reply) => reply.assert_error(403, ErrorCode::UserRevoked),
    }
    assert!(
        server
            .service
            .store()
            .user_devices("alice@example.org")
            .await
            .unwrap()
            .is_empty()
    );
    server.finish().await;
}

/// A reader following the revocation feed's cursor never skips a revocation that commits
/// after a later one was read. Made deterministic on PostgreSQL: a trigger of the test's own
/// holds the first revocation's transaction open for 1.5 s after its feed row is written,
/// while a second revocation runs and the reader reads.
#[tokio::test]
async fn postgres_feed_cursor_never_skips_a_late_commit() {
    use std::time::Duration;
    let server = TestServer::start(support::Engine::Postgres).await;
    let slow = device_for(&server, "slow@example.org").await;
    let fast = device_for(&server, "fast@example.org").await;
    let reader = device_for(&server, "reader@example.org").await;
    server
        .sql(&format!(
            "CREATE FUNCTION slow() RETURNS trigger AS $$ BEGIN \
             IF NEW.device_id = '{}' THEN PERFORM pg_sleep(1.5); END IF; RETURN NEW; END \
             $$ LANGUAGE plpgsql; \
             CREATE TRIGGER slow AFTER INSERT ON revocations FOR EACH ROW EXECUTE FUNCTION slow();",
            slow.device_id
        ))
        .await;
    let revoke = |d: &Device| format!("/v1/devices/{}/revoke", d.device_id);
    let (slow_path, fast_path) = (revoke(&slow), revoke(&fast));
    let (a, b, mid) = tokio::join!(
        server.signed(&slow, "POST", &slow_path, None::<&()>),
        async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            server.signed(&fast, "POST", &fast_path, None::<&()>).await
        },
        async {
            tokio::time::sleep(Duration::from_millis(800)).await;
            server
                .signed(&reader, "GET", "/v1/revocations?after=0", None::<&()>)
                .await
        },
    );
    assert_eq!((a.status, b.status), (200, 200));
    let mid: api::RevocationFeed = mid.json();
    let rest: api::RevocationFeed = server
        .signed(
            &reader,
            "GET",
            &format!("/v1/revocations?after={}", mid.next),
            None::<&()>,
        )
        .await
        .json();
    let seen: Vec<&str> = mid
        .revocations
        .iter()
        .chain(&rest.revocations)
        .map(|r| r.device_id.as_str())
        .collect();
    assert!(
        seen.contains(&slow.device_id.as_str()),
        "the cursor skipped the late commit: {seen:?}"
    );
    assert!(seen.contains(&fast.device_id.as_str()), "{seen:?}");
    server.finish().await;
}

/// Rate limits, counted in the shared database: look-ups and relay posts per device,
/// registrations per user; 429 `rate_limited`, and a new window admits again.
#[tokio::test]
async fn rate_limits_answer_429_and_reset_with_the_window() {
    use conclave_as::config::{Config, RateLimits};
    for engine in [support::Engine::Sqlite, support::Engine::Postgres] {
        let config = Config {
            rate_limits: RateLimits {
                window: 60,
                registrations_per_user: 2,
                lookups_per_device: 3,
                relay_posts_per_device: 2,
                ..RateLimits::default()
            },
            ..Config::default()
        };
        let server =
            TestServer::start_with(engine, conclave_as::oidc::Oidc::default(), config).await;
        // The window is aligned to the clock; start at its beginning so the test does not
        // straddle two windows.
        server.advance(60 - server.now() % 60);
        let alice = device_for(&server, "alice@example.org").await;
        let bob = device_for(&server, "bob@example.org").await;
        let path = "/v1/users/bob@example.org/devices";
        for _ in 0..3 {
            assert_eq!(
                server.signed(&alice, "GET", path, None::<&()>).await.status,
                200
            );
        }
        server
            .signed(&alice, "GET", path, None::<&()>)
            .await
            .assert_error(429, ErrorCode::RateLimited);
        // Per device: Bob is not limited by Alice's count.
        assert_eq!(
            server.signed(&bob, "GET", path, None::<&()>).await.status,
            200
        );
        let inbox = format!("/v1/devices/{}/inbox", bob.device_id);
        let post = api::RelayPost {
            sealed: api::Bytes(vec![1; 8]),
        };
        for _ in 0..2 {
            assert_eq!(
                server
                    .signed(&alice, "POST", &inbox, Some(&post))
                    .await
                    .status,
                201
            );
        }
        server
            .signed(&alice, "POST", &inbox, Some(&post))
            .await
            .assert_error(429, ErrorCode::RateLimited);
        // Registrations per user: Alice registered once; one more, then refused.
        device_for(&server, "alice@example.org").await;
        let code = server.invite("alice@example.org").await;
        server
            .register(invitation(&code))
            .await
            .err()
            .expect("limited")
            .assert_error(429, ErrorCode::RateLimited);
        // The next window admits again.
        server.advance(60);
        assert_eq!(
            server.signed(&alice, "GET", path, None::<&()>).await.status,
            200
        );
        assert_eq!(
            server
                .signed(&alice, "POST", &inbox, Some(&post))
                .await
                .status,
            201
        );
        server
            .register(invitation(&code))
            .await
            .expect("new window");
        server.finish().await;
    }
}

/// Several nodes migrating one fresh PostgreSQL database at once all succeed and apply
/// each migration once (no advisory lock: the version row is the lock).
#[tokio::test]
async fn postgres_concurrent_migrations_apply_once() {
    use conclave_as::store::postgres::PostgresStore;
    use sqlx::Connection as _;
    let admin = support::postgres_admin_url();
    let name = format!(
        "conclave_as_migrate_{}",
        api::encode_b64(&random32()[..6])
            .to_lowercase()
            .replace(['-', '_'], "x")
    );
    let mut conn = sqlx::PgConnection::connect(&admin).await.expect("postgres");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .expect("create database");
    let url = format!("{}/{name}", admin.rsplit_once('/').expect("url").0);
    let (a, b, c) = tokio::join!(
        PostgresStore::connect(&url),
        PostgresStore::connect(&url),
        PostgresStore::connect(&url),
    );
    let stores = [a.expect("node a"), b.expect("node b"), c.expect("node c")];
    let again = PostgresStore::connect(&url).await.expect("restart");
    let mut check = sqlx::PgConnection::connect(&url).await.expect("connect");
    let (versions, distinct): (i64, i64) =
        sqlx::query_as("SELECT COUNT(*), COUNT(DISTINCT version) FROM as_migrations")
            .fetch_one(&mut check)
            .await
            .expect("versions");
    assert_eq!(versions, distinct);
    assert!(versions >= 5, "{versions}");
    // sqlx's own migrator (which takes an advisory lock) was not used.
    let sqlx_table: Option<String> =
        sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations')::TEXT")
            .fetch_one(&mut check)
            .await
            .expect("catalogue");
    assert_eq!(sqlx_table, None);
    drop((stores, again, check));
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )))
    .execute(&mut conn)
    .await
    .expect("drop database");
}

/// A store transaction that fails with a serialization failure (SQLSTATE 40001, as
/// CockroachDB raises under contention) is run again: a trigger of the test's own fails
/// the first device insert with 40001 (a sequence, which a rollback does not undo, makes
/// it fail once), and the registration still succeeds, once.
#[tokio::test]
async fn postgres_serialization_failures_are_retried() {
    let server = TestServer::start(support::Engine::Postgres).await;
    server
        .sql(
            "CREATE SEQUENCE fail_once; \
             CREATE FUNCTION conflict() RETURNS trigger AS $$ BEGIN \
             IF nextval('fail_once') = 1 THEN \
             RAISE EXCEPTION 'could not serialize access' USING ERRCODE = '40001'; END IF; \
             RETURN NEW; END $$ LANGUAGE plpgsql; \
             CREATE TRIGGER conflict BEFORE INSERT ON devices FOR EACH ROW EXECUTE FUNCTION conflict();",
        )
        .await;
    let device = device_for(&server, "alice@example.org").await;
    let devices = server
        .service
        .store()
        .user_devices("alice@example.org")
        .await
        .unwrap();
    assert_eq!(devices.len(), 1);
    assert_eq!(devices[0].device_id, device.device_id);
    server.finish().await;
}

/// Registration challenges are anonymous, so they share one budget per window across nodes;
/// past it 429 with `Retry-After`, and the next window starts afresh.
#[tokio::test]
async fn challenges_share_one_budget_per_window() {
    use conclave_as::config::{Config, RateLimits};
    let config = Config {
        rate_limits: RateLimits {
            challenges: 5,
            ..RateLimits::default()
        },
        ..Config::default()
    };
    let server = TestServer::start_with(
        support::Engine::Sqlite,
        conclave_as::oidc::Oidc::default(),
        config,
    )
    .await;
    for _ in 0..5 {
        let (status, _) = server.raw("POST", "/v1/challenges", &[], b"").await;
        assert_eq!(status, 200);
    }
    let reply: support::Reply = server.raw("POST", "/v1/challenges", &[], b"").await.into();
    reply.assert_error(429, ErrorCode::RateLimited);
    server.advance(60);
    let (status, _) = server.raw("POST", "/v1/challenges", &[], b"").await;
    assert_eq!(status, 200);
    server.finish().await;
}
