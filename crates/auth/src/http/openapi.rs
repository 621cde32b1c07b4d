//! The OpenAPI document of the AS API, generated from the handlers (utoipa) and checked in
//! as `crates/auth/openapi.json` (a test fails when it is stale).

use super::handlers;
use utoipa::OpenApi;

/// The AS API description.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Conclave Authentication Service",
        description = "RFC 9750 §4 AS. Requests marked 'signed' carry the headers conclave-device, \
                       conclave-timestamp, conclave-nonce (single use per device) and \
                       conclave-signature (Ed25519 by the device's MLS signature key over \
                       conclave_api::auth::request_message); a replayed nonce is refused with \
                       401 replayed_request."
    ),
    paths(
        handlers::health,
        handlers::metrics,
        handlers::root,
        handlers::challenge,
        handlers::register,
        handlers::issue_tokens,
        handlers::issuer_directory,
        handlers::renew,
        handlers::contact_key,
        handlers::user_devices,
        handlers::relay_post,
        handlers::relay_fetch,
        handlers::revoke_device,
        handlers::revoke_user,
        handlers::revocations,
        handlers::kt_head,
        handlers::kt_roots,
        handlers::kt_audit,
    )
)]
pub struct ApiDoc;

/// The document as pretty JSON.
pub fn document() -> String {
    ApiDoc::openapi()
        .to_pretty_json()
        .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}
