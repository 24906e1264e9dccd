//! One error type for every handler, mapped to a status code in one place.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

/// An API failure. User errors are answered, not logged as errors; internal ones are
/// logged and answered without detail.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the request is malformed (`code` names the kind, `message` the field).
    #[error("{message}")]
    BadRequest {
        /// Stable error code.
        code: &'static str,
        /// What is wrong, naming the field.
        message: String,
    },
    /// 422: well-formed but invalid events.
    #[error("{0}")]
    InvalidEvent(String),
    /// 401: no API key, or one that is unknown, revoked or wrong.
    #[error("{0}")]
    Unauthorized(String),
    /// 403: the key lacks the scope the endpoint needs.
    #[error("{0}")]
    Forbidden(String),
    /// 429: the key spent its rate limit; retry after `retry_after_s` seconds.
    #[error("{message}")]
    RateLimited {
        /// What happened, naming the key.
        message: String,
        /// Seconds until one more request is allowed.
        retry_after_s: u64,
    },
    /// 404.
    #[error("{0}")]
    NotFound(String),
    /// 409: an event id already holds other content.
    #[error("{0}")]
    Conflict(String),
    /// 413.
    #[error("{0}")]
    TooLarge(String),
    /// 503: the log or the projectors cannot answer now.
    #[error("{0}")]
    Unavailable(String),
    /// 503: more requests in flight than `--max-concurrent-requests`; retry shortly.
    #[error("{0}")]
    Overloaded(String),
    /// 504: read-your-writes waited too long.
    #[error("{0}")]
    Timeout(String),
    /// 500: our fault; details go to the log only.
    #[error("internal error: {0}")]
    Internal(String),
}

/// The JSON error body.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// Stable code (`invalid_event`, `not_found`, …).
    pub error: String,
    /// Human-readable detail naming the field or thing.
    pub message: String,
}

impl ApiError {
    fn parts(&self) -> (StatusCode, &'static str) {
        match self {
            Self::BadRequest { code, .. } => (StatusCode::BAD_REQUEST, code),
            Self::InvalidEvent(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_event"),
            Self::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            Self::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            Self::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            Self::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            Self::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            Self::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
            Self::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            Self::Overloaded(_) => (StatusCode::SERVICE_UNAVAILABLE, "overloaded"),
            Self::Timeout(_) => (StatusCode::GATEWAY_TIMEOUT, "timeout"),
            Self::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.parts();
        let message = match &self {
            Self::Internal(detail) => {
                tracing::error!(error = %detail, "internal error");
                "internal error; see the server log".to_owned()
            }
            other => other.to_string(),
        };
        let mut response = (
            status,
            Json(ErrorBody {
                error: code.to_owned(),
                message,
            }),
        )
            .into_response();
        let headers = response.headers_mut();
        match &self {
            Self::Unauthorized(_) => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"ats-mafia\""),
                );
            }
            Self::RateLimited { retry_after_s, .. } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_s));
            }
            _ => {}
        }
        response
    }
}

impl From<ats_ingest::intake::SubmitError> for ApiError {
    fn from(err: ats_ingest::intake::SubmitError) -> Self {
        use ats_commands::intake::IntakeError;
        use ats_ingest::intake::SubmitError;
        use ats_ingest::LogError;
        let message = err.to_string();
        match err {
            SubmitError::Invalid(IntakeError::Malformed(_)) => Self::BadRequest {
                code: "malformed_json",
                message,
            },
            SubmitError::Invalid(IntakeError::TooLarge { .. }) => Self::TooLarge(message),
            SubmitError::Invalid(IntakeError::ConflictInBatch { .. }) => Self::Conflict(message),
            SubmitError::Invalid(_) => Self::InvalidEvent(message),
            SubmitError::Log(LogError::Conflict { .. }) => Self::Conflict(message),
            SubmitError::Log(LogError::TooLarge { .. }) => Self::TooLarge(message),
            SubmitError::Log(LogError::Unavailable(_)) => Self::Unavailable(message),
            SubmitError::Log(_) => Self::Internal(message),
        }
    }
}
