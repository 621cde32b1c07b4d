//! # conclave-as
//!
//! The Conclave Authentication Service (RFC 9750 §4, §7): it vouches for the link between a
//! user, a device and the device's MLS signature key, by issuing X.509 chains (AS root →
//! issuing CA → device certificate) after an OpenID Connect or invitation sign-in and a
//! proof of possession of the key; it publishes devices, certificates and signed contact
//! keys for look-up, relays sealed contact requests, and keeps a revocation feed. It never
//! holds a client's private key (§8.4.3) and stores nothing the Delivery Service holds.
//!
//! Modules: [`store`] (SQLite, PostgreSQL), [`ca`] and [`signer`] (issuance), [`oidc`]
//! (ID tokens), [`service`] (what the AS does), [`http`] (the axum API), [`mls`] (every use
//! of `conclave-mls`).
#![forbid(unsafe_code)]

pub mod auditor;
pub mod ca;
pub mod config;
pub mod error;
pub mod http;
pub mod mls;
pub mod oidc;
pub mod server;
pub mod service;
pub mod signer;
pub mod store;
pub mod tls;
pub mod tokens;
pub mod transparency;

pub use conclave_api::auth as api;

use std::sync::Arc;

/// Whether `user` is a user id the AS accepts: `local@domain`, printable ASCII, no `/`
/// (it goes into the certificate's `mls:` URI), at most 254 bytes.
pub fn valid_user_id(user: &str) -> bool {
    let Some((local, domain)) = user.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.is_empty()
        && !domain.contains('@')
        && user.len() <= 254
        && user.bytes().all(|b| b.is_ascii_graphic() && b != b'/')
}

/// Installs the Prometheus recorder as the global `metrics` recorder, once per process;
/// later calls return a handle that renders the same registry.
pub fn metrics_handle() -> metrics_exporter_prometheus::PrometheusHandle {
    static HANDLE: std::sync::OnceLock<metrics_exporter_prometheus::PrometheusHandle> =
        std::sync::OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            // Fails only if another recorder was installed first; the handle still renders.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

/// Serves `service` on `listener` (plain TCP, or [`tls::TlsListener`]) until `shutdown`
/// completes.
pub async fn serve<L>(
    listener: L,
    service: Arc<service::Service>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()>
where
    L: axum::serve::Listener,
    L::Addr: std::fmt::Debug,
{
    let state = http::AppState {
        service,
        metrics: Some(metrics_handle()),
    };
    axum::serve(listener, http::router(state))
        .with_graceful_shutdown(shutdown)
        .await
}

#[cfg(test)]
mod tests {
    #[test]
    fn user_ids() {
        assert!(super::valid_user_id("alice@example.org"));
        for bad in ["alice", "@x", "a@", "a@b@c", "a b@c", "a/b@c", "é@x"] {
            assert!(!super::valid_user_id(bad), "{bad}");
        }
    }
}
