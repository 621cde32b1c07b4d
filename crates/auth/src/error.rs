//! Errors of the AS: every refusal carries a stable [`ErrorCode`] (the HTTP status follows
//! from it) and a human-readable message; internal failures are logged and answered with
//! `internal` without their details.

use crate::api::{ErrorBody, ErrorCode};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// A refusal or failure, as answered to a client.
#[derive(Debug, thiserror::Error)]
#[error("{code:?}: {message}")]
pub struct Error {
    /// The stable code.
    pub code: ErrorCode,
    /// What happened.
    pub message: String,
    /// With a 429: the seconds until the limit's window ends, sent as `Retry-After`.
    pub retry_after: Option<u64>,
}

impl Error {
    /// An error with `code`.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// The same refusal, telling the client when to retry (`Retry-After`, RFC 9110
    /// §10.2.3; RFC 6585 §4 suggests it with 429).
    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds.max(1));
        self
    }

    /// An internal failure; the details are logged, not sent.
    pub fn internal(what: impl std::fmt::Display) -> Self {
        tracing::error!(error = %what, "internal error");
        Self::new(ErrorCode::Internal, "internal error")
    }

    /// The HTTP status of [`Self::code`].
    pub fn status(&self) -> StatusCode {
        status_of(self.code)
    }
}

/// The HTTP status that goes with each code.
pub fn status_of(code: ErrorCode) -> StatusCode {
    match code {
        // RFC 9578 §6.3: a token request the issuer cannot take is answered 422.
        ErrorCode::InvalidTokenRequest => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorCode::BadRequest | ErrorCode::InvalidChallenge | ErrorCode::BadSignature => {
            StatusCode::BAD_REQUEST
        }
        ErrorCode::Unauthenticated | ErrorCode::ReplayedRequest | ErrorCode::InvalidIdToken => {
            StatusCode::UNAUTHORIZED
        }
        ErrorCode::Forbidden
        | ErrorCode::InvalidInvitation
        | ErrorCode::DeviceRevoked
        | ErrorCode::UserRevoked
        | ErrorCode::CertificateExpired => StatusCode::FORBIDDEN,
        ErrorCode::NotFound => StatusCode::NOT_FOUND,
        ErrorCode::KeyInUse => StatusCode::CONFLICT,
        ErrorCode::InboxFull | ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<crate::store::StoreError> for Error {
    fn from(e: crate::store::StoreError) -> Self {
        Self::internal(e)
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        metrics::counter!("conclave_as_errors_total", "code" => format!("{:?}", self.code))
            .increment(1);
        let body = ErrorBody {
            code: self.code,
            message: self.message,
        };
        let mut response = (status_of(body.code), axum::Json(body)).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, seconds.into());
        }
        response
    }
}
