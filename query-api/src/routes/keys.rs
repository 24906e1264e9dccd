//! API keys (issue 9): create (shows the key once), list, revoke — each change an event.

use std::time::Duration;

use ats_commands::intents::API_SOURCE;
use ats_events::{Envelope, Scope, Timestamp};
use ats_projections::keys::{self, KeyInfo};
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};

use crate::auth::Access;
use crate::error::{ApiError, ErrorBody};
use crate::routes::aggregator::tree;
use crate::routes::costs::invalid_body;
use crate::routes::Routes;
use crate::state::AppState;

pub fn routes() -> Routes {
    Routes::new()
        .post("/api/admin/keys", Access::ADMIN, create)
        .get("/api/admin/keys", Access::ADMIN, list)
        .delete("/api/admin/keys/{key_id}", Access::ADMIN, revoke)
}

/// What `POST /api/admin/keys` takes.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    /// A name for people.
    pub name: String,
    /// `ingest`, `read`, `admin` (any of them).
    pub scopes: Vec<String>,
    /// Requests per minute; omitted: the server's `api.auth.rate_limit_per_minute`.
    #[serde(default)]
    pub rate_limit_per_minute: Option<u32>,
}

/// A key just created: the only time its secret is shown.
#[derive(Serialize, utoipa::ToSchema)]
pub struct CreatedKey {
    /// The key to send as `Authorization: Bearer <key>`; not stored, not shown again.
    pub key: String,
    /// Public id (in lists and revocations).
    pub key_id: String,
    /// Name.
    pub name: String,
    /// Scopes.
    pub scopes: Vec<Scope>,
    /// Requests per minute (`null`: the server's default).
    pub rate_limit_per_minute: Option<u32>,
    /// Log position of the `ats.apikey.issued` event.
    pub position: u64,
}

/// Every stored key (without hashes), and the names of the keys held in memory.
#[derive(Serialize, utoipa::ToSchema)]
pub struct KeyList {
    /// Stored keys by key id, revoked ones included.
    pub keys: Vec<KeyInfo>,
    /// Keys given to this process at start (`root` from `ATS_ROOT_KEY`, `demo`).
    pub memory_keys: Vec<String>,
}

/// Why a key is revoked.
#[derive(Deserialize, utoipa::IntoParams)]
pub struct RevokeParams {
    /// Recorded in the event, for the audit trail.
    pub reason: Option<String>,
}

/// How long a write waits for the keys projector, so the answer means "usable now".
const APPLY_WAIT: Duration = Duration::from_secs(5);

async fn append_and_apply(state: &AppState, event: Envelope) -> Result<u64, ApiError> {
    let outcome = state
        .log
        .append(vec![event])
        .await
        .map_err(|e| ApiError::from(ats_ingest::intake::SubmitError::Log(e)))?;
    let position = outcome.positions.first().copied().unwrap_or_default();
    if let Some(handle) = state.runtime.handle(keys::NAME) {
        handle.wait_for(position, APPLY_WAIT).await;
    }
    Ok(position)
}

/// Creates a key (appends `ats.apikey.issued` with the SHA-256 of its secret). The answer
/// holds the key itself, shown this once.
#[utoipa::path(post, path = "/api/admin/keys", tag = "admin",
    request_body = CreateKey,
    responses((status = 201, body = CreatedKey),
        (status = 400, description = "Malformed body", body = ErrorBody),
        (status = 422, description = "The message names the field", body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<(StatusCode, Json<CreatedKey>), ApiError> {
    let request: CreateKey = serde_json::from_slice(&body).map_err(invalid_body)?;
    let scopes = ats_commands::keys::parse_scopes(&request.scopes)
        .map_err(|e| ApiError::InvalidEvent(e.to_string()))?;
    let key = ats_commands::keys::generate(&request.name, &scopes, request.rate_limit_per_minute)
        .map_err(|e| ApiError::InvalidEvent(e.to_string()))?;
    let position = append_and_apply(&state, key.event(Timestamp::now(), API_SOURCE)).await?;
    tracing::info!(key_id = %key.issued.key_id, name = %key.issued.name, "API key created");
    Ok((
        StatusCode::CREATED,
        Json(CreatedKey {
            key: key.token,
            key_id: key.issued.key_id,
            name: key.issued.name,
            scopes: key.issued.scopes,
            rate_limit_per_minute: key.issued.rate_limit_per_minute,
            position,
        }),
    ))
}

/// Every key, revoked ones included; never a secret or its hash.
#[utoipa::path(get, path = "/api/admin/keys", tag = "admin",
    responses((status = 200, body = KeyList)))]
pub async fn list(State(state): State<AppState>) -> Result<Json<KeyList>, ApiError> {
    Ok(Json(KeyList {
        keys: keys::list(&tree(&state, keys::NAME)?),
        memory_keys: state
            .auth
            .memory_keys
            .iter()
            .map(|k| k.name.clone())
            .collect(),
    }))
}

/// Revokes a key (appends `ats.apikey.revoked`); it is refused from then on, on every node
/// once its keys projector has applied the event. Revoking a revoked key changes nothing.
#[utoipa::path(delete, path = "/api/admin/keys/{key_id}", tag = "admin",
    params(("key_id" = String, Path, description = "Key id"), RevokeParams),
    responses((status = 200, body = KeyInfo), (status = 404, body = ErrorBody)))]
pub async fn revoke(
    State(state): State<AppState>,
    Path(key_id): Path<String>,
    Query(params): Query<RevokeParams>,
) -> Result<Json<KeyInfo>, ApiError> {
    let keys_tree = tree(&state, keys::NAME)?;
    let Some(stored) = keys::get(&keys_tree, &key_id) else {
        return Err(ApiError::NotFound(format!("API key {key_id}: unknown")));
    };
    if stored.revoked_at.is_none() {
        let event =
            ats_commands::keys::revocation(&key_id, params.reason, Timestamp::now(), API_SOURCE)
                .map_err(|e| ApiError::InvalidEvent(e.to_string()))?;
        append_and_apply(&state, event).await?;
        tracing::info!(%key_id, "API key revoked");
    }
    // The active tree again: a rebuild may have swapped it while the revocation was applied.
    keys::info(&tree(&state, keys::NAME)?, &key_id)
        .map(Json)
        .ok_or_else(|| ApiError::Internal(format!("API key {key_id} vanished")))
}
