//! Rotation of the AS's issuing CA: by the running server when it nears expiry (over real
//! HTTP, SQLite and PostgreSQL), by `Ca::rotate_issuing`, and after a crash at each point of
//! the file replacement.

mod support;

use conclave_as::api::{self, Authorization};
use conclave_as::ca::Ca;
use conclave_as::config::Config;
use support::{Engine, TestServer, random32, unix_now};
use x509_cert::der::Decode;

const DAY: u64 = 86_400;

/// The notAfter of a DER certificate.
fn not_after(der: &[u8]) -> u64 {
    x509_cert::Certificate::from_der(der)
        .expect("a certificate")
        .tbs_certificate()
        .validity()
        .not_after
        .to_unix_duration()
        .as_secs()
}

async fn register(server: &TestServer, user: &str) -> api::CertificateChain {
    let code = server.invite(user).await;
    server
        .register(Authorization::Invitation { code })
        .await
        .expect("register")
        .certificate
}

fn issuing_of(chain: &api::CertificateChain) -> Vec<u8> {
    chain.certificates[1].0.clone()
}

/// Ten days before the issuing CA expires (when a 30-day certificate would be cut to ten),
/// a registration is issued by a new issuing CA, under the same root, for the full lifetime;
/// the chain issued before stays valid; a restart keeps the new issuing CA.
async fn the_server_rotates_its_issuing_ca_before_it_cuts_certificates_short(engine: Engine) {
    let server = TestServer::start(engine).await;
    let lifetime = Config::default().certificate_lifetime;
    let first = register(&server, "alice@example.org").await;
    let old_issuing = issuing_of(&first);
    let old_not_after = not_after(&old_issuing);
    server.advance(old_not_after - 10 * DAY - server.now());
    let second = register(&server, "bob@example.org").await;
    let new_issuing = issuing_of(&second);
    assert_ne!(
        new_issuing, old_issuing,
        "a new issuing CA signed the chain"
    );
    assert!(not_after(&new_issuing) > old_not_after + 4 * 365 * DAY);
    assert_eq!(
        second.not_after,
        server.now() + lifetime,
        "the full lifetime"
    );
    assert_eq!(
        server.service.root_der(),
        &server.root_der[..],
        "the same root"
    );
    support::mls::validate(
        &server.root_der,
        &ders(&second),
        &chain_key(&second),
        server.now(),
    )
    .expect("the new chain validates under the same root");
    support::mls::validate(
        &server.root_der,
        &ders(&first),
        &chain_key(&first),
        first.not_after - DAY,
    )
    .expect("the chain issued before is still valid");
    let server = server.restart().await;
    let third = register(&server, "carol@example.org").await;
    assert_eq!(
        issuing_of(&third),
        new_issuing,
        "loaded from the files, not rotated again"
    );
    server.finish().await;
}

#[tokio::test]
async fn sqlite_server_rotates_its_issuing_ca() {
    the_server_rotates_its_issuing_ca_before_it_cuts_certificates_short(Engine::Sqlite).await;
}

#[tokio::test]
async fn postgres_server_rotates_its_issuing_ca() {
    the_server_rotates_its_issuing_ca_before_it_cuts_certificates_short(Engine::Postgres).await;
}

fn ders(chain: &api::CertificateChain) -> Vec<Vec<u8>> {
    chain.certificates.iter().map(|c| c.0.clone()).collect()
}

/// The leaf's key, read back from the leaf certificate.
fn chain_key(chain: &api::CertificateChain) -> Vec<u8> {
    x509_cert::Certificate::from_der(&chain.certificates[0].0)
        .expect("leaf")
        .tbs_certificate()
        .subject_public_key_info()
        .subject_public_key
        .raw_bytes()
        .to_vec()
}

/// Copies every file of `from` into `to`.
fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).expect("dir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy");
    }
}

/// A CA directory, and the issuing key and certificate a rotation of it would write (made in
/// a copy of the directory).
fn ca_and_next() -> (tempfile::TempDir, Ca, Vec<u8>, Vec<u8>) {
    let dir = tempfile::tempdir().expect("dir");
    let ca = Ca::load_or_create(dir.path(), unix_now()).expect("ca");
    let copy = tempfile::tempdir().expect("dir");
    copy_dir(dir.path(), copy.path());
    let rotated = Ca::load_or_create(copy.path(), unix_now())
        .expect("ca")
        .rotate_issuing(unix_now())
        .expect("rotate");
    let next_key = std::fs::read(copy.path().join("issuing.key")).expect("key");
    (dir, ca, next_key, rotated.issuing_der().to_vec())
}

fn issue(ca: &Ca) -> Vec<Vec<u8>> {
    ca.issue(
        "alice@example.org",
        "phone",
        &random32(),
        unix_now(),
        30 * DAY,
    )
    .expect("issue")
    .0
}

#[test]
fn rotation_keeps_the_root_and_old_chains() {
    let dir = tempfile::tempdir().expect("dir");
    let ca = Ca::load_or_create(dir.path(), unix_now()).expect("ca");
    let before = issue(&ca);
    let rotated = ca.rotate_issuing(unix_now()).expect("rotate");
    assert_eq!(rotated.root_der(), ca.root_der());
    assert_ne!(rotated.issuing_der(), ca.issuing_der());
    let after = issue(&rotated);
    assert_eq!(after[1], rotated.issuing_der());
    // Both chains validate under the one root (the key in the leaf is the random one issued
    // for, so validate the chain structure with that key).
    for chain in [&before, &after] {
        let key = x509_cert::Certificate::from_der(&chain[0])
            .expect("leaf")
            .tbs_certificate()
            .subject_public_key_info()
            .subject_public_key
            .raw_bytes()
            .to_vec();
        support::mls::validate(ca.root_der(), chain, &key, unix_now()).expect("valid");
    }
    // Loading the directory again gives the rotated CA; nothing is left over.
    let loaded = Ca::load_or_create(dir.path(), unix_now()).expect("load");
    assert_eq!(loaded.issuing_der(), rotated.issuing_der());
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .expect("dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["issuing.der", "issuing.key", "root.der", "root.key"]
    );
}

#[test]
fn a_rotation_interrupted_before_its_files_were_complete_is_discarded() {
    let (dir, ca, next_key, next_cert) = ca_and_next();
    // The crash came after the new key was written, before the certificate (or the marker).
    std::fs::write(dir.path().join("issuing.next.key"), &next_key).expect("write");
    let loaded = Ca::load_or_create(dir.path(), unix_now()).expect("load");
    assert_eq!(
        loaded.issuing_der(),
        ca.issuing_der(),
        "the old issuing CA stays"
    );
    assert!(!dir.path().join("issuing.next.key").exists());
    // Key and certificate written, the marker not yet.
    std::fs::write(dir.path().join("issuing.next.key"), &next_key).expect("write");
    std::fs::write(dir.path().join("issuing.next.der"), &next_cert).expect("write");
    let loaded = Ca::load_or_create(dir.path(), unix_now()).expect("load");
    assert_eq!(
        loaded.issuing_der(),
        ca.issuing_der(),
        "the old issuing CA stays"
    );
    issue(&loaded);
}

#[test]
fn a_rotation_interrupted_after_its_files_were_complete_is_finished() {
    // The crash came after the marker, before any rename.
    let (dir, _ca, next_key, next_cert) = ca_and_next();
    std::fs::write(dir.path().join("issuing.next.key"), &next_key).expect("write");
    std::fs::write(dir.path().join("issuing.next.der"), &next_cert).expect("write");
    std::fs::write(dir.path().join("issuing.next.ready"), b"").expect("write");
    let loaded = Ca::load_or_create(dir.path(), unix_now()).expect("load");
    assert_eq!(loaded.issuing_der(), next_cert);
    assert_eq!(issue(&loaded)[1], next_cert);
    // The crash came between the two renames: the certificate is in place, the key not yet.
    let (dir, _ca, next_key, next_cert) = ca_and_next();
    std::fs::write(dir.path().join("issuing.der"), &next_cert).expect("write");
    std::fs::write(dir.path().join("issuing.next.key"), &next_key).expect("write");
    std::fs::write(dir.path().join("issuing.next.ready"), b"").expect("write");
    let loaded = Ca::load_or_create(dir.path(), unix_now()).expect("load");
    assert_eq!(issue(&loaded)[1], next_cert);
    assert!(!dir.path().join("issuing.next.ready").exists());
}

#[test]
fn mismatched_issuing_files_are_refused_not_used() {
    let (dir, _ca, _next_key, next_cert) = ca_and_next();
    // A certificate for another key than issuing.key, with no rotation in progress.
    std::fs::write(dir.path().join("issuing.der"), &next_cert).expect("write");
    let err = Ca::load_or_create(dir.path(), unix_now()).expect_err("refused");
    assert!(err.to_string().contains("not for issuing.key"), "{err}");
}

#[test]
fn rotation_needs_the_root_key() {
    let dir = tempfile::tempdir().expect("dir");
    let ca = Ca::load_or_create(dir.path(), unix_now()).expect("ca");
    std::fs::remove_file(dir.path().join("root.key")).expect("remove");
    let err = ca.rotate_issuing(unix_now()).expect_err("no root key");
    assert!(err.to_string().contains("root key"), "{err}");
    // Nothing changed: the CA still loads and issues with its issuing CA.
    let loaded = Ca::load_or_create(dir.path(), unix_now()).expect("load");
    assert_eq!(loaded.issuing_der(), ca.issuing_der());
}
