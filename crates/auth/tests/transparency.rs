//! Key transparency: look-up answers carry akd proofs that clients verify; audits between
//! epochs verify; a cheating AS (serving a device that is not in the directory, or
//! rewriting an earlier epoch) is caught by the client or the auditor.

mod support;

use conclave_as::api;
use conclave_as::auditor::{self, AuditError, AuditState};
use conclave_as::transparency::{KtConfig, VrfKey, verify_audit, verify_lookup};
use support::{Device, TestServer, device_for};

async fn head(server: &TestServer) -> api::KtHead {
    let (status, body) = server.raw("GET", "/v1/kt/head", &[], b"").await;
    assert_eq!(status, 200);
    serde_json::from_slice(&body).unwrap()
}

async fn lookup(server: &TestServer, by: &Device, user: &str) -> api::UserDevices {
    let reply = server
        .signed(by, "GET", &format!("/v1/users/{user}/devices"), None::<&()>)
        .await;
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    reply.json()
}

fn check(vrf: &[u8], answer: &api::UserDevices) -> Result<(), String> {
    let proof = answer.transparency.as_ref().ok_or("no proof")?;
    verify_lookup(vrf, &answer.user_id, &answer.devices, proof, None).map_err(|e| e.to_string())
}

engine_tests! {
    async fn lookups_carry_proofs_that_verify_and_follow_revocation(server) {
        let phone = device_for(&server, "alice@example.org").await;
        let bob = device_for(&server, "bob@example.org").await;
        let vrf = head(&server).await.vrf_public_key.0;
        let first = lookup(&server, &bob, "alice@example.org").await;
        check(&vrf, &first).expect("one device");
        let laptop = device_for(&server, "alice@example.org").await;
        let second = lookup(&server, &bob, "alice@example.org").await;
        assert_eq!(second.devices.len(), 2);
        check(&vrf, &second).expect("two devices");
        let e2 = second.transparency.as_ref().unwrap().epoch;
        assert!(e2 > first.transparency.as_ref().unwrap().epoch);
        // Revocation is in the directory: the new proof proves the one remaining device,
        // and the old device set no longer passes against it.
        let path = format!("/v1/devices/{}/revoke", phone.device_id);
        assert_eq!(server.signed(&laptop, "POST", &path, None::<&()>).await.status, 200);
        let third = lookup(&server, &bob, "alice@example.org").await;
        assert_eq!(third.devices.len(), 1);
        check(&vrf, &third).expect("after revocation");
        let stale = api::UserDevices { devices: second.devices.clone(), ..third.clone() };
        assert!(check(&vrf, &stale).is_err(), "the revoked device must not verify");
        // A renewal publishes too.
        server.advance(3600);
        let renew = format!("/v1/devices/{}/renew", laptop.device_id);
        assert_eq!(server.signed(&laptop, "POST", &renew, None::<&()>).await.status, 200);
        let fourth = lookup(&server, &bob, "alice@example.org").await;
        check(&vrf, &fourth).expect("after renewal");
        assert!(fourth.transparency.as_ref().unwrap().epoch > third.transparency.as_ref().unwrap().epoch);
        // A proof is for its user only.
        let bobs = lookup(&server, &laptop, "bob@example.org").await;
        let swapped = api::UserDevices { transparency: bobs.transparency.clone(), ..fourth.clone() };
        assert!(check(&vrf, &swapped).is_err());
        // A tampered proof or root fails.
        let mut tampered = fourth.clone();
        let p = tampered.transparency.as_mut().unwrap();
        p.root_hash.0[0] ^= 1;
        assert!(check(&vrf, &tampered).is_err());
        // The wrong VRF key fails.
        let other = TestServer::start(support::Engine::Sqlite).await;
        let other_vrf = head(&other).await.vrf_public_key.0;
        other.finish().await;
        assert!(check(&other_vrf, &fourth).is_err());
    }

    async fn a_ghost_device_is_caught_by_the_client(server) {
        let alice = device_for(&server, "alice@example.org").await;
        let bob = device_for(&server, "bob@example.org").await;
        let vrf = head(&server).await.vrf_public_key.0;
        // The AS adds a device to Alice's answer that it never published (it wants to
        // eavesdrop as a "ghost" member, RFC 9750 §8.4.3).
        let mut answer = lookup(&server, &bob, "alice@example.org").await;
        let ghost = answer.devices[0].clone();
        answer.devices.push(api::Device { device_id: "ghost".into(), ..ghost });
        let err = check(&vrf, &answer).unwrap_err();
        assert!(err.contains("not the ones in the directory"), "{err}");
        // The same through the database: a device row written behind the AS's back (not
        // through its store, so neither published nor queued for publishing).
        let key = ed25519_dalek::SigningKey::from_bytes(&support::random32());
        let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        let blob = |b: &[u8]| match server.postgres_url() {
            Some(_) => format!("'\\x{}'::bytea", hex(b)),
            None => format!("X'{}'", hex(b)),
        };
        let mut chain = Vec::new();
        for cert in alice.chain() {
            chain.extend_from_slice(&(cert.len() as u32).to_be_bytes());
            chain.extend_from_slice(&cert);
        }
        server.sql(&format!(
            "INSERT INTO devices (device_id, user_id, signature_key, chain, not_after, created_at) \
             VALUES ('ghost-device', 'alice@example.org', {}, {}, {}, {})",
            blob(&key.verifying_key().to_bytes()),
            blob(&chain),
            alice.certificate.not_after,
            server.now(),
        )).await;
        assert_eq!(server.service.store().user_devices("alice@example.org").await.unwrap().len(), 2);
        // The AS serves what the directory proves, not the unpublished row: the answer
        // still verifies and does not carry the ghost.
        let answer = lookup(&server, &bob, "alice@example.org").await;
        assert_eq!(answer.devices.len(), 1);
        assert_eq!(answer.devices[0].device_id, alice.device_id);
        check(&vrf, &answer).expect("the served devices are the proven ones");
    }

    async fn audits_verify_and_history_survives_a_restart(server) {
        let mut devices = Vec::new();
        for user in ["a@x.org", "b@x.org", "c@x.org", "a@x.org"] {
            devices.push(device_for(&server, user).await);
        }
        let h = head(&server).await;
        assert_eq!(h.epoch, 4);
        let url = format!("http://{}", server.addr);
        let mut state = AuditState::default();
        assert_eq!(auditor::audit(&url, &mut state).await.expect("audit"), Some((1, 4)));
        assert_eq!(state.roots.len(), 4);
        assert_eq!(state.roots.last().unwrap().root_hash, h.root_hash);
        // Nothing new: still consistent.
        assert_eq!(auditor::audit(&url, &mut state).await.expect("audit"), None);
        // More epochs: audited from the last one verified.
        let path = format!("/v1/devices/{}/revoke", devices[0].device_id);
        assert_eq!(server.signed(&devices[3], "POST", &path, None::<&()>).await.status, 200);
        assert_eq!(auditor::audit(&url, &mut state).await.expect("audit"), Some((4, 5)));
        // The directory is rebuilt from the database log with the same roots.
        let vrf = VrfKey::load_or_create(&server.dir.path().join("keys/vrf.key")).unwrap();
        let reopened = conclave_as::transparency::Transparency::open(server.service.store().as_ref(), vrf).await.expect("replay");
        let (epoch, root) = reopened.head().await.unwrap();
        assert_eq!((epoch, root), (5, state.roots.last().unwrap().root_hash.0.clone()));
        // Bad ranges are refused with a JSON error.
        let (status, body) = server.raw("GET", "/v1/kt/audit?from=3&to=2", &[], b"").await;
        assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
        let (status, _) = server.raw("GET", "/v1/kt/audit?from=1", &[], b"").await;
        assert_eq!(status, 400);
    }
}

/// The AS rewrites epoch 2 (gives Alice another key there) and rebuilds its directory: its
/// new roots and proofs are internally consistent, but the auditor, who verified the
/// original roots, and a client holding an original root, both refuse them.
#[tokio::test]
async fn a_rewritten_history_is_caught_by_the_auditor() {
    use akd::storage::StorageManager;
    use akd::storage::memory::AsyncInMemoryDatabase;
    use akd::{AkdLabel, AkdValue, EpochHash};

    async fn directory(
        vrf: VrfKey,
        history: &[(&str, &[u8])],
    ) -> (
        Vec<api::EpochRoot>,
        akd::directory::Directory<KtConfig, AsyncInMemoryDatabase, VrfKey>,
    ) {
        let d = akd::directory::Directory::<KtConfig, _, _>::new(
            StorageManager::new_no_cache(AsyncInMemoryDatabase::new()),
            vrf,
            akd::AzksParallelismConfig::default(),
        )
        .await
        .unwrap();
        let mut roots = Vec::new();
        for (label, value) in history {
            let EpochHash(epoch, root) = d
                .publish(vec![(
                    AkdLabel(label.as_bytes().to_vec()),
                    AkdValue(value.to_vec()),
                )])
                .await
                .unwrap();
            roots.push(api::EpochRoot {
                epoch,
                root_hash: root.to_vec().into(),
            });
        }
        (roots, d)
    }
    let vrf = VrfKey::new(support::random32());
    let honest_history: [(&str, &[u8]); 3] =
        [("alice", b"key-1"), ("bob", b"key-2"), ("carol", b"key-3")];
    let (honest_roots, honest) = directory(vrf.clone(), &honest_history).await;
    // The honest audit verifies.
    let proof = honest.audit(1, 3).await.unwrap();
    let bytes =
        protobuf::Message::write_to_bytes(&akd::proto::specs::types::AppendOnlyProof::from(&proof))
            .unwrap();
    verify_audit(&honest_roots, &bytes)
        .await
        .expect("honest audit");
    // The fork: epoch 2 gives Alice a key she never had.
    let forked_history: [(&str, &[u8]); 3] = [
        ("alice", b"key-1"),
        ("alice", b"evil-key"),
        ("carol", b"key-3"),
    ];
    let (forked_roots, forked) = directory(vrf.clone(), &forked_history).await;
    assert_eq!(forked_roots[0], honest_roots[0]);
    assert_ne!(forked_roots[1], honest_roots[1]);
    let forked_proof = forked.audit(1, 3).await.unwrap();
    let forked_bytes = protobuf::Message::write_to_bytes(
        &akd::proto::specs::types::AppendOnlyProof::from(&forked_proof),
    )
    .unwrap();
    // Consistent with itself…
    verify_audit(&forked_roots, &forked_bytes)
        .await
        .expect("self-consistent fork");
    // …but not with the roots the auditor verified before.
    assert!(verify_audit(&honest_roots, &forked_bytes).await.is_err());
    // And a client holding the honest epoch-3 root refuses the fork's lookup proof.
    let (lookup_proof, EpochHash(epoch, root)) =
        forked.lookup(AkdLabel(b"alice".to_vec())).await.unwrap();
    let served = api::LookupProof {
        epoch,
        root_hash: root.to_vec().into(),
        proof: protobuf::Message::write_to_bytes(&akd::proto::specs::types::LookupProof::from(
            &lookup_proof,
        ))
        .unwrap()
        .into(),
    };
    let vrf_public = forked.get_public_key().await.unwrap().as_bytes().to_vec();
    let honest_root = honest_roots[2].root_hash.0.clone();
    assert!(verify_lookup(&vrf_public, "alice", &[], &served, Some(&honest_root)).is_err());
}

/// The auditor remembers the roots it verified: an AS that serves a different root for an
/// already-audited epoch is reported as having rewritten it.
#[tokio::test]
async fn the_auditor_detects_a_changed_root() {
    let server = TestServer::start(support::Engine::Sqlite).await;
    device_for(&server, "alice@example.org").await;
    device_for(&server, "bob@example.org").await;
    let url = format!("http://{}", server.addr);
    let mut state = AuditState::default();
    auditor::audit(&url, &mut state).await.expect("audit");
    // The auditor's memory says epoch 2 had another root than what the AS now serves.
    state.roots.last_mut().unwrap().root_hash.0[0] ^= 1;
    match auditor::audit(&url, &mut state).await {
        Err(AuditError::Rewritten(2)) => {}
        other => panic!("expected a rewrite of epoch 2, got {other:?}"),
    }
    server.finish().await;
}

/// Audits longer than the AS's window are refused with a typed error, and the auditor
/// covers them in windows that chain (SQLite; the window is made small to keep the test
/// short — the default is 10,000 epochs).
#[tokio::test]
async fn long_audits_are_windowed() {
    let config = conclave_as::config::Config {
        kt_audit_max_epochs: 3,
        ..Default::default()
    };
    let server = TestServer::start_with(
        support::Engine::Sqlite,
        conclave_as::oidc::Oidc::default(),
        config,
    )
    .await;
    for i in 0..8 {
        device_for(&server, &format!("user{i}@x.org")).await;
    }
    assert_eq!(head(&server).await.epoch, 8);
    let (status, body) = server
        .raw("GET", "/v1/kt/audit?from=1&to=8", &[], b"")
        .await;
    let error: api::ErrorBody = serde_json::from_slice(&body).unwrap();
    assert_eq!((status, error.code), (400, api::ErrorCode::BadRequest));
    let url = format!("http://{}", server.addr);
    // One proof over the whole range is refused by this AS...
    assert!(
        auditor::audit(&url, &mut AuditState::default())
            .await
            .is_err()
    );
    // ...the windowed audit verifies it.
    let mut state = AuditState::default();
    assert_eq!(
        auditor::audit_windowed(&url, &mut state, 3)
            .await
            .expect("windowed audit"),
        Some((1, 8))
    );
    assert_eq!(state.roots.len(), 8);
    server.finish().await;
}
