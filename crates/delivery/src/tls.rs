//! TLS with rustls (RFC 9750 §8.1: everything between clients and the DS goes over TLS),
//! when the DS is given a PEM certificate chain and key: HTTPS for the API, WSS for push.
//!
//! [`TlsListener`] is an [`axum::serve::Listener`]: it accepts TCP connections and runs
//! each handshake as a task of its own (with a deadline), handing axum only the streams
//! whose handshake completed, so a client that connects and stays silent holds up nobody.
//! The peer address goes to axum only; the DS does not log or store it.

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::{self, ServerConfig};
use tokio_rustls::server::TlsStream;

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The certificate file could not be read or holds no certificate.
    #[error("TLS certificate {0}: {1}")]
    Certificate(String, String),
    /// The key file could not be read or holds no private key.
    #[error("TLS key {0}: {1}")]
    Key(String, String),
    /// rustls refused the certificate and key (for instance, they do not match).
    #[error("TLS: {0}")]
    Rustls(#[from] rustls::Error),
}

/// Deadline of a client's handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Handshakes in progress at once; connections beyond are closed at once.
const MAX_PENDING_HANDSHAKES: usize = 4096;

/// Loads the PEM certificate chain and private key into a rustls configuration: ring
/// provider, TLS 1.2 and 1.3, ALPN `http/1.1` (WebSocket upgrades are HTTP/1.1).
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, TlsError> {
    let name = |p: &Path| p.display().to_string();
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect())
        .map_err(|e| TlsError::Certificate(name(cert), e.to_string()))?;
    if chain.is_empty() {
        return Err(TlsError::Certificate(
            name(cert),
            "no CERTIFICATE block".into(),
        ));
    }
    let private =
        PrivateKeyDer::from_pem_file(key).map_err(|e| TlsError::Key(name(key), e.to_string()))?;
    let mut config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(chain, private)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A listener whose connections are TLS streams.
pub struct TlsListener {
    tcp: TcpListener,
    acceptor: TlsAcceptor,
    handshakes: JoinSet<Option<(TlsStream<TcpStream>, SocketAddr)>>,
}

impl std::fmt::Debug for TlsListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsListener")
            .field("tcp", &self.tcp)
            .field("pending", &self.handshakes.len())
            .finish_non_exhaustive()
    }
}

impl TlsListener {
    /// Serves TLS with `config` on a bound TCP listener.
    pub fn new(tcp: TcpListener, config: Arc<ServerConfig>) -> Self {
        TlsListener {
            tcp,
            acceptor: TlsAcceptor::from(config),
            handshakes: JoinSet::new(),
        }
    }

    fn start_handshake(&mut self, stream: TcpStream, peer: SocketAddr) {
        if self.handshakes.len() >= MAX_PENDING_HANDSHAKES {
            metrics::counter!("ds_tls_handshakes_refused_total").increment(1);
            return;
        }
        let accept = self.acceptor.accept(stream);
        self.handshakes.spawn(async move {
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, accept).await {
                Ok(Ok(tls)) => Some((tls, peer)),
                Ok(Err(e)) => {
                    // Not TLS (plain HTTP to the TLS port), or a failed handshake.
                    tracing::debug!(error = %e, "TLS handshake failed");
                    metrics::counter!("ds_tls_handshakes_failed_total").increment(1);
                    None
                }
                Err(_) => {
                    metrics::counter!("ds_tls_handshakes_failed_total").increment(1);
                    None
                }
            }
        });
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            // Both branches are cancel-safe: nothing is lost when the other one wins.
            tokio::select! {
                accepted = self.tcp.accept() => match accepted {
                    Ok((stream, peer)) => self.start_handshake(stream, peer),
                    Err(e) => {
                        // Out of file descriptors and the like: back off a little.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
                Some(done) = self.handshakes.join_next(), if !self.handshakes.is_empty() => {
                    if let Ok(Some(connection)) = done {
                        return connection;
                    }
                }
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}
