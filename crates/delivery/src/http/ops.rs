//! Operations: health, Prometheus metrics, the OpenAPI document.

use super::{AppState, group, mailbox, pool, ws};
use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use conclave_api::delivery::PrivacyPass;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;
use utoipa::OpenApi;

/// The OpenAPI document of the DS, generated from the handlers.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Conclave Delivery Service",
        description = "RFC 9750 §6 Delivery Service: pseudonymous mailboxes, sealed KeyPackage pools, group logs with one commit per epoch."
    ),
    paths(
        mailbox::create,
        mailbox::fetch,
        mailbox::ack,
        mailbox::post_blob,
        pool::create,
        pool::upload,
        pool::status,
        pool::claim,
        group::create,
        group::append,
        group::commit,
        group::read_log,
        group::put_group_info,
        group::get_group_info,
        ws::upgrade,
        privacy_pass,
        health,
        metrics,
        openapi,
    ),
    components(schemas(conclave_api::delivery::WsRequest, conclave_api::delivery::WsEvent))
)]
pub struct ApiDoc;

/// The OpenAPI document as pretty JSON (what is checked in as `openapi.json`).
pub fn openapi_json() -> String {
    ApiDoc::openapi().to_pretty_json().unwrap_or_default()
}

/// The process-wide Prometheus recorder, installed on first use.
pub fn prometheus() -> Option<&'static PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| PrometheusBuilder::new().install_recorder().ok())
        .as_ref()
}

/// What a client needs to get Privacy Pass tokens for this DS: the current challenge and
/// the issuer key (RFC 9577 §2.1), or that none are needed.
#[utoipa::path(get, path = "/v1/privacy-pass", responses((status = 200, body = PrivacyPass)))]
pub async fn privacy_pass(State(state): State<AppState>) -> Json<PrivacyPass> {
    Json(match &state.privacy_pass {
        Some(pp) => pp.info(crate::auth::now()),
        None => PrivacyPass {
            required: false,
            challenge: None,
            token_key: None,
            valid_until: None,
        },
    })
}

/// Liveness.
#[utoipa::path(get, path = "/health", responses((status = 200, description = "serving")))]
pub async fn health() -> impl IntoResponse {
    Json(serde_json::json!({ "status": "ok" }))
}

/// Prometheus metrics (text exposition format).
#[utoipa::path(get, path = "/metrics", responses((status = 200, description = "Prometheus text")))]
pub async fn metrics() -> impl IntoResponse {
    let body = prometheus().map(|h| h.render()).unwrap_or_default();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body)
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", responses((status = 200, description = "OpenAPI 3.1")))]
pub async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], openapi_json())
}
