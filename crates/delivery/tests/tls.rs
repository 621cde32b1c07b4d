//! The DS over TLS (rustls), given a PEM certificate and key: HTTPS requests and a WSS
//! subscription succeed for a client that trusts the certificate; plain HTTP to the TLS
//! port gets no answer; a missing key stops the start with a typed error.

mod support;

use base64::Engine as _;
use conclave_api::delivery::*;
use ed25519_dalek::Signer as _;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use futures_util::{SinkExt, StreamExt};
use std::sync::Arc;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_tungstenite::tungstenite::Message;

/// An Ed25519 key that rcgen signs with (rcgen is built without a crypto backend).
struct CertKey {
    key: ed25519_dalek::SigningKey,
    public: [u8; 32],
}

impl rcgen::PublicKeyData for CertKey {
    fn der_bytes(&self) -> &[u8] {
        &self.public
    }
    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        &rcgen::PKCS_ED25519
    }
}

impl rcgen::SigningKey for CertKey {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        Ok(self.key.sign(msg).to_bytes().to_vec())
    }
}

fn to_pem(label: &str, der: &[u8]) -> String {
    let text = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in text.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).expect("ascii"));
        out.push('\n');
    }
    out + &format!("-----END {label}-----\n")
}

/// A self-signed certificate for `localhost`: (DER, certificate PEM, key PEM).
fn self_signed() -> (Vec<u8>, String, String) {
    let key = new_key();
    let signer = CertKey {
        public: key.verifying_key().to_bytes(),
        key: key.clone(),
    };
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).expect("params");
    params.key_identifier_method = rcgen::KeyIdMethod::PreSpecified(random::<20>().to_vec());
    params.serial_number = Some(rcgen::SerialNumber::from(random::<8>().to_vec()));
    let der = params
        .self_signed(&signer)
        .expect("certificate")
        .der()
        .to_vec();
    let key_der = key.to_pkcs8_der().expect("pkcs8");
    (
        der.clone(),
        to_pem("CERTIFICATE", &der),
        to_pem("PRIVATE KEY", key_der.as_bytes()),
    )
}

/// A TLS connection to the DS that trusts only `cert`.
async fn connect(
    addr: std::net::SocketAddr,
    cert: &[u8],
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from(cert.to_vec()))
        .expect("root");
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("tcp");
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").expect("name"), tcp)
        .await
        .expect("TLS handshake")
}

/// One HTTP/1.1 request over TLS: status and body.
async fn https(
    addr: std::net::SocketAddr,
    cert: &[u8],
    method: &str,
    path: &str,
    body: &[u8],
) -> (u16, Vec<u8>) {
    let mut tls = connect(addr, cert).await;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    tls.write_all(head.as_bytes()).await.expect("write");
    tls.write_all(body).await.expect("write");
    let mut response = Vec::new();
    let _ = tls.read_to_end(&mut response).await;
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head");
    let head = String::from_utf8_lossy(&response[..split]).to_string();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status");
    (status, response[split + 4..].to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_https_and_wss_with_rustls() {
    let (cert, cert_pem, key_pem) = self_signed();
    let db = Db::new(Engine::Sqlite).await;
    let cert_path = db.dir.path().join("cert.pem");
    let key_path = db.dir.path().join("key.pem");
    std::fs::write(&cert_path, cert_pem).expect("write");

    // Without its key the DS does not start, and says why.
    let mut config = db.config();
    config.tls_cert = Some(cert_path.clone());
    config.tls_key = Some(key_path.clone());
    match conclave_ds::start(config.clone()).await {
        Err(conclave_ds::StartError::Tls(_)) => {}
        other => panic!("{other:?}"),
    }
    std::fs::write(&key_path, key_pem).expect("write");
    let server = conclave_ds::start(config).await.expect("start with TLS");
    assert!(server.tls);
    let addr = server.addr;

    // A client that connects and never handshakes holds up nobody.
    let _silent = tokio::net::TcpStream::connect(addr).await.expect("tcp");

    let (status, body) = https(addr, &cert, "GET", "/health", b"").await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));

    // Open a mailbox over HTTPS and subscribe to it over WSS.
    let key = new_key();
    let request = serde_json::to_vec(&CreateMailboxRequest {
        public_key: Bytes(key.verifying_key().to_bytes().to_vec()),
    })
    .expect("json");
    let (status, body) = https(addr, &cert, "POST", "/v1/mailboxes", &request).await;
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
    let mailbox = serde_json::from_slice::<CreateMailboxResponse>(&body)
        .expect("json")
        .mailbox_id;
    let tls = connect(addr, &cert).await;
    let (mut ws, _) = tokio_tungstenite::client_async("wss://localhost/v1/ws", tls)
        .await
        .expect("WebSocket over TLS");
    let subscribe = WsRequest::SubscribeMailbox {
        mailbox_id: mailbox.clone(),
        proof: support::ws::proof(&key, &format!("/v1/mailboxes/{mailbox}")),
    };
    ws.send(Message::Text(
        serde_json::to_string(&subscribe).expect("json").into(),
    ))
    .await
    .expect("send");
    let mut next = async || loop {
        let frame = tokio::time::timeout(std::time::Duration::from_secs(10), ws.next())
            .await
            .expect("a frame within 10 s")
            .expect("open")
            .expect("frame");
        if let Message::Text(t) = frame {
            return serde_json::from_str::<WsEvent>(t.as_str()).expect("event");
        }
    };
    assert_eq!(
        next().await,
        WsEvent::Subscribed {
            target: mailbox.clone()
        }
    );
    let (status, _) = https(
        addr,
        &cert,
        "POST",
        &format!("/v1/mailboxes/{mailbox}/entries"),
        b"sealed",
    )
    .await;
    assert_eq!(status, 201);
    match next().await {
        WsEvent::MailboxEntry {
            mailbox_id, size, ..
        } => {
            assert_eq!((mailbox_id, size), (mailbox, 6));
        }
        other => panic!("{other:?}"),
    }

    // Plain HTTP to the TLS port gets no HTTP answer.
    let plain = reqwest::Client::new()
        .get(format!("http://{addr}/health"))
        .timeout(std::time::Duration::from_secs(15))
        .send()
        .await;
    assert!(plain.is_err(), "{plain:?}");
    // And the server still serves TLS clients.
    let (status, _) = https(addr, &cert, "GET", "/health", b"").await;
    assert_eq!(status, 200);
    server.stop();
}
