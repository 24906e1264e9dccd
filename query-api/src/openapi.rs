//! The OpenAPI document, generated from the handlers' annotations.

use axum::routing::get;
use axum::{Json, Router};
use utoipa::OpenApi;

use crate::routes::{admin, events, health, operators};
use crate::state::AppState;

/// The API's OpenAPI 3.1 document.
#[derive(OpenApi)]
#[openapi(
    info(title = "ATS MAFIA analytics", description = "Event-sourced analytics engine: CloudEvents intake and read-model queries."),
    paths(
        events::post_events, events::schema,
        operators::list, operators::performance, operators::sessions, operators::session_analysis,
        admin::projectors, admin::dead_letters, admin::rebuild,
        health::healthz, health::readyz, health::metrics,
    ),
    tags(
        (name = "events", description = "Append events to the log"),
        (name = "operators", description = "Operator performance read models"),
        (name = "admin", description = "Projectors, digests, dead letters, rebuild"),
        (name = "health", description = "Liveness, readiness, metrics"),
    )
)]
pub struct ApiDoc;

pub fn router() -> Router<AppState> {
    Router::new().route(
        "/api/openapi.json",
        get(|| async { Json(ApiDoc::openapi()) }),
    )
}
