//! Admin: projector status and digests, dead letters, rebuild.

use ats_projections::runtime::{DeadLetter, ProjectorStatus};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;

use crate::auth::Access;
use crate::routes::Routes;
use crate::state::AppState;

pub fn routes() -> Routes {
    Routes::new()
        .get("/api/admin/projectors", Access::ADMIN, projectors)
        .get("/api/admin/dead-letters", Access::ADMIN, dead_letters)
        .post("/api/admin/rebuild", Access::ADMIN, rebuild)
}

/// Every projector's progress and state digest.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Projectors {
    /// Log backend (`embedded` or `jetstream`).
    pub log: &'static str,
    /// Projectors in a fixed order.
    pub projectors: Vec<ProjectorStatus>,
}

/// Position, lag, state, heartbeat and digest of each projector. Equal digests at equal
/// positions mean equal read models (compare with `ats-mafia replay`).
#[utoipa::path(get, path = "/api/admin/projectors", tag = "admin",
    responses((status = 200, body = Projectors)))]
pub async fn projectors(State(state): State<AppState>) -> Json<Projectors> {
    Json(Projectors {
        log: state.log.backend(),
        projectors: state.runtime.handles().iter().map(|h| h.status()).collect(),
    })
}

/// Dead letters of every projector.
#[derive(Serialize, utoipa::ToSchema)]
pub struct DeadLetters {
    /// Events projectors could not apply, by projector then position.
    pub dead_letters: Vec<DeadLetter>,
    /// How many.
    pub count: usize,
}

/// Events that decoded but could not be applied (or did not decode), with the error.
#[utoipa::path(get, path = "/api/admin/dead-letters", tag = "admin",
    responses((status = 200, body = DeadLetters)))]
pub async fn dead_letters(State(state): State<AppState>) -> Json<DeadLetters> {
    let dead_letters: Vec<DeadLetter> = state
        .runtime
        .handles()
        .iter()
        .flat_map(|h| h.dead_letters())
        .collect();
    Json(DeadLetters {
        count: dead_letters.len(),
        dead_letters,
    })
}

/// Rebuilds every read model from position 0 in the background; queries keep reading the
/// old trees until each new one has caught up and is swapped in.
#[utoipa::path(post, path = "/api/admin/rebuild", tag = "admin",
    responses((status = 202, description = "Rebuild started")))]
pub async fn rebuild(State(state): State<AppState>) -> (StatusCode, Json<serde_json::Value>) {
    state.runtime.request_rebuild();
    (
        StatusCode::ACCEPTED,
        Json(serde_json::json!({"status": "rebuilding"})),
    )
}
