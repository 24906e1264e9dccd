//! Operator profiles and sessions: `/api/analytics/operator/...`, `/api/analytics/session/...`.

use ats_projections::profiles::{self, Performance, SessionRecord};
use axum::extract::{Path, State};
use axum::Json;
use serde::{Deserialize, Serialize};

use crate::auth::Access;
use crate::error::ApiError;
use crate::params::{Params, ReadParams};
use crate::routes::Routes;
use crate::state::AppState;

pub fn routes() -> Routes {
    Routes::new()
        .get("/api/analytics/operators", Access::READ, list)
        .get(
            "/api/analytics/operator/{id}/performance",
            Access::READ,
            performance,
        )
        .get(
            "/api/analytics/operator/{id}/sessions",
            Access::READ,
            sessions,
        )
        .get(
            "/api/analytics/session/{id}/analysis",
            Access::READ,
            session_analysis,
        )
}

pub(crate) fn profiles_tree(state: &AppState) -> Result<sled::Tree, ApiError> {
    state
        .runtime
        .handle(profiles::NAME)
        .map(|h| h.tree())
        .ok_or_else(|| ApiError::Internal("profiles projector missing".into()))
}

/// One row of the operator list.
#[derive(Serialize, utoipa::ToSchema)]
pub struct OperatorRow {
    /// Operator id.
    pub operator_id: String,
    /// Name.
    pub name: String,
    /// Team.
    pub team: Option<String>,
    /// Completed sessions.
    pub total_sessions: u64,
    /// Hours trained.
    pub total_hours: f64,
    /// Derived level.
    pub skill_level: profiles::SkillLevel,
    /// Skills practised.
    pub skills: usize,
}

/// The operator list.
#[derive(Serialize, utoipa::ToSchema)]
pub struct OperatorList {
    /// Operators in id order.
    pub operators: Vec<OperatorRow>,
    /// How many.
    pub count: usize,
}

/// Every operator, in id order.
#[utoipa::path(get, path = "/api/analytics/operators", tag = "operators",
    params(ReadParams), responses((status = 200, body = OperatorList)))]
pub async fn list(
    State(state): State<AppState>,
    Params(read): Params<ReadParams>,
) -> Result<Json<OperatorList>, ApiError> {
    read.settle(&state).await?;
    let tree = profiles_tree(&state)?;
    let operators: Vec<OperatorRow> = profiles::operator_ids(&tree)
        .iter()
        .filter_map(|id| profiles::profile(&tree, id))
        .map(|p| OperatorRow {
            skill_level: p.skill_level(),
            skills: p.skills.len(),
            operator_id: p.operator_id,
            name: p.name,
            team: p.team,
            total_sessions: p.total_sessions,
            total_hours: p.total_hours,
        })
        .collect();
    Ok(Json(OperatorList {
        count: operators.len(),
        operators,
    }))
}

/// `time_range_days` (accepted as in the seed; windows use `as_of`).
#[derive(Deserialize, utoipa::IntoParams)]
pub struct PerformanceParams {
    /// Evaluate time windows as of this instant (RFC 3339; default now).
    pub as_of: Option<String>,
    /// Wait (up to 5 s) until the projectors have applied this log position.
    pub min_position: Option<u64>,
    /// Window of the metric trends in days (default 7). The seed parsed and ignored it.
    pub time_range_days: Option<u32>,
}

/// Seed endpoint 1: the profile and its analysis (strengths, weaknesses, learning velocity,
/// plateau, 7-day metric trends as of `as_of`).
#[utoipa::path(get, path = "/api/analytics/operator/{id}/performance", tag = "operators",
    params(("id" = String, Path, description = "Operator id"), PerformanceParams),
    responses((status = 200, body = Performance), (status = 404, body = crate::error::ErrorBody)))]
pub async fn performance(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Params(params): Params<PerformanceParams>,
) -> Result<Json<Performance>, ApiError> {
    let read = ReadParams {
        as_of: params.as_of,
        min_position: params.min_position,
    };
    read.settle(&state).await?;
    let as_of = read.as_of()?;
    let tree = profiles_tree(&state)?;
    let window = i64::from(params.time_range_days.unwrap_or(7).max(1));
    profiles::performance(&tree, &id, window, as_of)
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("Operator not found: {id}")))
}

/// `limit` of the session list.
#[derive(Deserialize, utoipa::IntoParams)]
pub struct SessionsParams {
    /// Most sessions returned (0 or absent: all).
    pub limit: Option<usize>,
    /// Wait (up to 5 s) until the projectors have applied this log position.
    pub min_position: Option<u64>,
}

/// An operator's sessions.
#[derive(Serialize, utoipa::ToSchema)]
pub struct SessionList {
    /// Operator id.
    pub operator_id: String,
    /// Sessions, most recent start first.
    pub sessions: Vec<SessionDto>,
    /// How many are listed.
    pub count: usize,
}

/// A session as the seed serializes it, with its derived metrics.
#[derive(Serialize, utoipa::ToSchema)]
pub struct SessionDto {
    /// The session.
    #[schema(value_type = Object)]
    pub session_data: serde_json::Value,
    /// Derived metrics.
    pub metrics: SessionMetrics,
}

/// Seed endpoint 5's metrics.
#[derive(Serialize, utoipa::ToSchema)]
pub struct SessionMetrics {
    /// completed / total objectives.
    pub completion_rate: f64,
    /// min(1, objectives × 300 s / duration).
    pub time_efficiency: f64,
    /// min(1, score / max(0.01, cost)).
    pub cost_efficiency: f64,
}

fn session_dto(record: &SessionRecord) -> SessionDto {
    SessionDto {
        session_data: serde_json::to_value(&record.data).unwrap_or_default(),
        metrics: SessionMetrics {
            completion_rate: record.completion_rate(),
            time_efficiency: record.time_efficiency(),
            cost_efficiency: record.cost_efficiency(),
        },
    }
}

/// An operator's sessions, most recent first.
#[utoipa::path(get, path = "/api/analytics/operator/{id}/sessions", tag = "operators",
    params(("id" = String, Path, description = "Operator id"), SessionsParams),
    responses((status = 200, body = SessionList), (status = 404, body = crate::error::ErrorBody)))]
pub async fn sessions(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Params(params): Params<SessionsParams>,
) -> Result<Json<SessionList>, ApiError> {
    ReadParams {
        as_of: None,
        min_position: params.min_position,
    }
    .settle(&state)
    .await?;
    let tree = profiles_tree(&state)?;
    if profiles::profile(&tree, &id).is_none() {
        return Err(ApiError::NotFound(format!("Operator not found: {id}")));
    }
    let sessions: Vec<SessionDto> = profiles::sessions(&tree, &id, params.limit.unwrap_or(0))
        .iter()
        .map(session_dto)
        .collect();
    Ok(Json(SessionList {
        operator_id: id,
        count: sessions.len(),
        sessions,
    }))
}

/// Seed endpoint 5 body.
#[derive(Serialize, utoipa::ToSchema)]
pub struct SessionAnalysis {
    /// Session id.
    pub session_id: String,
    /// The session and its metrics.
    #[serde(flatten)]
    pub session: SessionDto,
}

/// Seed endpoint 5: one session with completion rate, time and cost efficiency.
#[utoipa::path(get, path = "/api/analytics/session/{id}/analysis", tag = "operators",
    params(("id" = String, Path, description = "Session id"), ReadParams),
    responses((status = 200, body = SessionAnalysis), (status = 404, body = crate::error::ErrorBody)))]
pub async fn session_analysis(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Params(read): Params<ReadParams>,
) -> Result<Json<SessionAnalysis>, ApiError> {
    read.settle(&state).await?;
    let tree = profiles_tree(&state)?;
    let record = profiles::session(&tree, &id)
        .ok_or_else(|| ApiError::NotFound(format!("Session not found: {id}")))?;
    Ok(Json(SessionAnalysis {
        session_id: id,
        session: session_dto(&record),
    }))
}
