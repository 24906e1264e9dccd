//! # ats-query-api: the thin HTTP face of the engine
//!
//! [`app`] builds the whole axum [`Router`] from an [`AppState`]: event intake
//! (`POST /api/events`, which appends only through `ats-commands` and the log), the
//! `/api/analytics/...` read-model queries, admin (projector status, digests, dead letters,
//! rebuild), health (`/healthz`, `/readyz`), Prometheus `/metrics`, the OpenAPI document at
//! `/api/openapi.json` and the dashboard page at `/`.
//!
//! Errors are JSON `{"error": code, "message": text}` with the status set in one place
//! ([`ApiError`]). Queries accept `as_of` (RFC 3339) where time matters and `min_position`
//! (read-your-writes: wait, bounded, until the projectors have applied that position).
//!
//! ```no_run
//! # async fn demo(state: ats_query_api::AppState) {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await.unwrap();
//! axum::serve(listener, ats_query_api::app(state)).await.unwrap();
//! # }
//! ```

pub mod auth;
pub mod auto_reports;
mod error;
mod guard;
mod openapi;
mod params;
mod routes;
mod state;
pub mod warm_up;

pub use error::ApiError;
pub use guard::HttpLimits;
pub use openapi::ApiDoc;
pub use routes::health::starting;
pub use routes::RouteSpec;
pub use state::{AppState, Counters};

use axum::Router;

/// Largest request body accepted (a full batch of large events fits easily).
pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

/// Every route with the access it needs, as the router of [`app`] is built from it.
pub fn route_table() -> Vec<RouteSpec> {
    routes::all().into_parts().1
}

/// The whole API.
pub fn app(state: AppState) -> Router {
    let (routes, _) = routes::all().into_parts();
    let routes = routes
        .fallback(|| async { ApiError::NotFound("no such endpoint".into()) })
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES));
    // Request timeout, concurrency limit, API keys and rate limits, and JSON for refusals made
    // by layers (see `guard` and `auth`).
    guard::apply(routes, &state)
        .layer(
            // Failures are answered and, when internal, logged by `ApiError`; a 503 from /readyz is
            // not an error worth a log line.
            tower_http::trace::TraceLayer::new_for_http().on_failure(
                tower_http::trace::DefaultOnFailure::new().level(tracing::Level::DEBUG),
            ),
        )
        .with_state(state)
}
