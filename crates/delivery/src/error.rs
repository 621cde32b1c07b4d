//! Typed errors of the DS and their HTTP form: a JSON [`ErrorBody`] with a stable code and
//! a status that fits.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use conclave_api::delivery::{ErrorBody, ErrorCode};

/// A failure of the storage engine.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// A migration failed.
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The batch transaction this write was part of failed to commit.
    #[error("batch commit: {0}")]
    Batch(String),
    /// The writer task is gone (the store is shutting down).
    #[error("the writer task stopped")]
    WriterGone,
    /// A stored value is out of range (corrupt row).
    #[error("corrupt row: {0}")]
    Corrupt(&'static str),
}

/// An error answered to a client.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400 with a code.
    #[error("{1}")]
    BadRequest(ErrorCode, String),
    /// 401 with a code.
    #[error("{1}")]
    Unauthorized(ErrorCode, String),
    /// 401: a Privacy Pass token is missing, invalid, expired or spent; with the
    /// `WWW-Authenticate` challenge to get tokens for (RFC 9577 §2.1).
    #[error("{message}")]
    Token {
        /// `token_required`, `invalid_token`, `token_expired` or `token_spent`.
        code: ErrorCode,
        /// What went wrong.
        message: String,
        /// The `WWW-Authenticate` value.
        challenge: Option<axum::http::HeaderValue>,
    },
    /// 404 with a code.
    #[error("{0:?} not found")]
    NotFound(ErrorCode),
    /// 409: the group id is registered already.
    #[error("group exists")]
    GroupExists,
    /// 409: the group is at another epoch.
    #[error("the group is at epoch {0}")]
    WrongEpoch(u64),
    /// 413.
    #[error("payload too large")]
    TooLarge,
    /// 429.
    #[error("rate limited")]
    RateLimited,
    /// 429 with a `Retry-After` header: a node-wide limit (anonymous creations) is spent.
    #[error("too many requests on this node; retry in {0} s")]
    Busy(u64),
    /// 500: the push transport (NATS) failed.
    #[error(transparent)]
    Push(#[from] crate::push::PushError),
    /// 500.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ApiError {
    /// The HTTP status and the body.
    pub fn parts(&self) -> (StatusCode, ErrorBody) {
        let (status, code, current_epoch) = match self {
            ApiError::BadRequest(c, _) => (StatusCode::BAD_REQUEST, *c, None),
            ApiError::Unauthorized(c, _) => (StatusCode::UNAUTHORIZED, *c, None),
            ApiError::Token { code, .. } => (StatusCode::UNAUTHORIZED, *code, None),
            ApiError::NotFound(c) => (StatusCode::NOT_FOUND, *c, None),
            ApiError::GroupExists => (StatusCode::CONFLICT, ErrorCode::GroupExists, None),
            ApiError::WrongEpoch(e) => (StatusCode::CONFLICT, ErrorCode::WrongEpoch, Some(*e)),
            ApiError::TooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                ErrorCode::PayloadTooLarge,
                None,
            ),
            ApiError::RateLimited | ApiError::Busy(_) => {
                (StatusCode::TOO_MANY_REQUESTS, ErrorCode::RateLimited, None)
            }
            ApiError::Store(_) | ApiError::Push(_) => {
                (StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::Internal, None)
            }
        };
        let message = match self {
            // Never echo database details to clients.
            ApiError::Store(_) => "internal error".to_string(),
            ApiError::Push(_) => "push unavailable".to_string(),
            other => other.to_string(),
        };
        (
            status,
            ErrorBody {
                code,
                message,
                current_epoch,
            },
        )
    }

    /// A 400 `bad_request`.
    pub fn bad(message: impl Into<String>) -> Self {
        ApiError::BadRequest(ErrorCode::BadRequest, message.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match &self {
            ApiError::Store(e) => tracing::error!(error = %e, "store failure"),
            ApiError::Push(e) => tracing::error!(error = %e, "push failure"),
            _ => {}
        }
        let (status, body) = self.parts();
        let mut response = (status, axum::Json(body)).into_response();
        match self {
            ApiError::Busy(secs) => {
                response
                    .headers_mut()
                    .insert(axum::http::header::RETRY_AFTER, secs.max(1).into());
            }
            ApiError::Token {
                challenge: Some(challenge),
                ..
            } => {
                response
                    .headers_mut()
                    .insert(axum::http::header::WWW_AUTHENTICATE, challenge);
            }
            _ => {}
        }
        response
    }
}
