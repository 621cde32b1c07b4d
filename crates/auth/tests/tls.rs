//! The AS over TLS (rustls): a client that trusts the server certificate gets an answer;
//! the PEM loader refuses a missing key.

use base64::Engine as _;
use conclave_as::ca::Ca;
use conclave_as::config::Config;
use conclave_as::oidc::Oidc;
use conclave_as::service::{Service, system_clock};
use conclave_as::store::sqlite::SqliteStore;
use conclave_as::transparency::{Transparency, VrfKey};
use ed25519_dalek::Signer as _;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::rustls;

struct Key(ed25519_dalek::SigningKey, [u8; 32]);

impl rcgen::PublicKeyData for Key {
    fn der_bytes(&self) -> &[u8] {
        &self.1
    }
    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        &rcgen::PKCS_ED25519
    }
}

impl rcgen::SigningKey for Key {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        Ok(self.0.sign(msg).to_bytes().to_vec())
    }
}

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}

#[tokio::test]
async fn serves_https_with_rustls() {
    let dir = tempfile::tempdir().unwrap();
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).unwrap();
    let signing = ed25519_dalek::SigningKey::from_bytes(&seed);
    let key = Key(signing.clone(), signing.verifying_key().to_bytes());
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    params.key_identifier_method = rcgen::KeyIdMethod::PreSpecified(vec![1; 20]);
    params.serial_number = Some(rcgen::SerialNumber::from(vec![1u8, 2, 3]));
    let cert_der = params.self_signed(&key).unwrap().der().to_vec();
    let cert_path = dir.path().join("cert.pem");
    let key_path = dir.path().join("key.pem");
    std::fs::write(&cert_path, pem("CERTIFICATE", &cert_der)).unwrap();
    assert!(
        conclave_as::tls::server_config(&cert_path, &key_path).is_err(),
        "missing key"
    );
    std::fs::write(
        &key_path,
        pem("PRIVATE KEY", signing.to_pkcs8_der().unwrap().as_bytes()),
    )
    .unwrap();
    let config = conclave_as::tls::server_config(&cert_path, &key_path).expect("tls config");

    let store = Arc::new(SqliteStore::open(&dir.path().join("as.db")).await.unwrap());
    let clock = system_clock();
    let ca = Ca::load_or_create(&dir.path().join("keys"), clock()).unwrap();
    let kt = Transparency::open(
        store.as_ref(),
        VrfKey::load_or_create(&dir.path().join("vrf.key")).unwrap(),
    )
    .await
    .unwrap();
    let service = Arc::new(Service::new(
        store,
        ca,
        Oidc::default(),
        Config::default(),
        clock,
        kt,
    ));
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = tcp.local_addr().unwrap();
    let listener = conclave_as::tls::TlsListener::new(tcp, config).unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(conclave_as::serve(listener, service, async {
        let _ = rx.await;
    }));

    // A plain-TCP client that never handshakes does not block the TLS client below.
    let _idle = tokio::net::TcpStream::connect(addr).await.unwrap();

    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from(cert_der))
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let client = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut tls = connector.connect(name, tcp).await.expect("handshake");
    tls.write_all(b"GET /health HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = Vec::new();
    let _ = tls.read_to_end(&mut response).await;
    let text = String::from_utf8_lossy(&response);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.ends_with("ok"), "{text}");

    // A client that does not trust the certificate fails the handshake.
    let untrusting = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(rustls::RootCertStore::empty())
    .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    assert!(
        tokio_rustls::TlsConnector::from(Arc::new(untrusting))
            .connect(name, tcp)
            .await
            .is_err()
    );

    let _ = tx.send(());
    server.await.unwrap().unwrap();
}
