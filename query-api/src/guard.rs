//! Request guards: a timeout and a concurrency limit per request, and our JSON error format
//! for every refusal that a layer (not a handler) produced.
//!
//! They are tower layers built with `axum::middleware::from_fn`, not `tower`'s own `limit`
//! and `timeout` services: those fail with a `BoxError` that needs a `HandleErrorLayer` to be
//! turned into a response, while these answer with [`ApiError`] directly. The concurrency
//! limit sheds load (503 at once) instead of queueing, so a client sees backpressure rather
//! than a growing latency. Probes (`/healthz`, `/readyz`, `/metrics`) bypass both: a
//! liveness check must answer under overload.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use tokio::sync::Semaphore;

use crate::error::ApiError;
use crate::state::AppState;

/// Bounds on HTTP requests, set by `serve --request-timeout-ms / --max-concurrent-requests`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// Longest a request may take; then it is cancelled and answered 503 `timeout`.
    pub request_timeout: Duration,
    /// Most requests in flight; more are answered 503 `overloaded` at once.
    pub max_concurrent: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            // Above the 5 s a read-your-writes query may wait, so that wait answers itself.
            request_timeout: Duration::from_secs(30),
            max_concurrent: 512,
        }
    }
}

/// Largest text body of a layer's refusal carried over into the JSON message.
const MAX_REFUSAL_TEXT: usize = 4096;

fn is_probe(request: &Request) -> bool {
    matches!(request.uri().path(), "/healthz" | "/readyz" | "/metrics")
}

/// Wraps `routes` in the guards (outermost first: JSON errors, API key and rate limit,
/// concurrency, timeout). A key over its rate limit is refused before it takes a slot.
pub(crate) fn apply(routes: Router<AppState>, state: &AppState) -> Router<AppState> {
    let limits = &state.http;
    let timeout = limits.request_timeout;
    let permits = Arc::new(Semaphore::new(limits.max_concurrent.max(1)));
    let max_concurrent = limits.max_concurrent.max(1);
    routes
        .layer(middleware::from_fn(move |request: Request, next: Next| {
            deadline(request, next, timeout)
        }))
        .layer(middleware::from_fn(move |request: Request, next: Next| {
            admit(request, next, permits.clone(), max_concurrent)
        }))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::auth::authenticate,
        ))
        .layer(middleware::from_fn(json_errors))
}

async fn deadline(request: Request, next: Next, timeout: Duration) -> Response {
    if is_probe(&request) {
        return next.run(request).await;
    }
    match tokio::time::timeout(timeout, next.run(request)).await {
        Ok(response) => response,
        // Dropping the handler cancels it; an append already handed to the log may still
        // commit, so the message tells the client to retry with the same event ids.
        Err(_) => timed_out(timeout),
    }
}

fn timed_out(timeout: Duration) -> Response {
    let body = crate::error::ErrorBody {
        error: "timeout".into(),
        message: format!(
            "the request did not complete within {} ms and was cancelled; a retry with the same event ids is safe",
            timeout.as_millis()
        ),
    };
    (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response()
}

async fn admit(
    request: Request,
    next: Next,
    permits: Arc<Semaphore>,
    max_concurrent: usize,
) -> Response {
    if is_probe(&request) {
        return next.run(request).await;
    }
    match permits.try_acquire_owned() {
        Ok(_permit) => next.run(request).await,
        Err(_) => {
            let mut response = ApiError::Overloaded(format!(
                "the server is handling its limit of {max_concurrent} concurrent requests; retry shortly"
            ))
            .into_response();
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            response
        }
    }
}

/// Answers a refusal that is not JSON (axum's body-limit and extractor rejections, a 405)
/// in our `{"error", "message"}` format, keeping its status.
async fn json_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if status.as_u16() < 400 || is_json {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, MAX_REFUSAL_TEXT)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .unwrap_or_default();
    let (code, message) = match status {
        StatusCode::PAYLOAD_TOO_LARGE => (
            "too_large",
            format!(
                "request body: exceeds the limit of {} bytes",
                crate::MAX_BODY_BYTES
            ),
        ),
        StatusCode::METHOD_NOT_ALLOWED => ("method_not_allowed", "method not allowed".into()),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ("unsupported_media_type", text),
        s if s.is_client_error() => ("bad_request", text),
        _ => ("internal", "internal error; see the server log".into()),
    };
    let message = if message.is_empty() {
        status
            .canonical_reason()
            .unwrap_or("request refused")
            .to_lowercase()
    } else {
        message
    };
    let mut response = (
        status,
        axum::Json(crate::error::ErrorBody {
            error: code.into(),
            message,
        }),
    )
        .into_response();
    // Keep headers such as `Allow` of a 405; the body and its type are ours now.
    for (name, value) in parts.headers.iter() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            response.headers_mut().insert(name.clone(), value.clone());
        }
    }
    response
}
