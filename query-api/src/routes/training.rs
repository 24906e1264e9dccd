//! Training effectiveness and benchmarks: learning curves, retention, skill gaps,
//! recommendations (DOMAIN.md §B2, §B1.5, §A3).

use ats_events::EventKind;
use ats_projections::profiles::{self, Benchmark};
use ats_projections::training::{
    self, BenchmarkComparison, Learning, Recommendation, SkillGap, ROLES,
};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::Json;
use serde::{Deserialize, Serialize};

use crate::auth::Access;
use crate::error::{ApiError, ErrorBody};
use crate::params::{Params, ReadParams};
use crate::routes::events::{append_intent, ReceiptBody};
use crate::routes::operators::profiles_tree;
use crate::routes::Routes;
use crate::state::AppState;

pub fn routes() -> Routes {
    Routes::new()
        .get(
            "/api/analytics/operator/{id}/recommendations",
            Access::READ,
            recommendations,
        )
        .get(
            "/api/analytics/operator/{id}/skill-gaps",
            Access::READ,
            skill_gaps,
        )
        .get(
            "/api/analytics/operator/{id}/learning",
            Access::READ,
            learning,
        )
        .get(
            "/api/analytics/operator/{id}/benchmarks/{benchmark_id}",
            Access::READ,
            compare,
        )
        .get("/api/analytics/benchmarks", Access::READ, list_benchmarks)
        .post("/api/analytics/benchmarks", Access::INGEST, set_benchmark)
}

/// `target_role`, `as_of`, `min_position`.
#[derive(Deserialize, utoipa::IntoParams)]
pub struct RoleParams {
    /// `default`, `red_team_expert`, `blue_team_expert` or `social_engineer_expert`.
    pub target_role: Option<String>,
    /// Evaluate time windows as of this instant (RFC 3339; default now).
    pub as_of: Option<String>,
    /// Wait (up to 5 s) until the projectors have applied this log position.
    pub min_position: Option<u64>,
}

impl RoleParams {
    fn role(&self) -> Result<Option<&str>, ApiError> {
        match self.target_role.as_deref() {
            None => Ok(None),
            Some(role) if ROLES.contains(&role) => Ok(Some(role)),
            Some(role) => Err(ApiError::BadRequest {
                code: "invalid_parameter",
                message: format!(
                    "target_role: unknown role {role:?}, expected one of {}",
                    ROLES.join(", ")
                ),
            }),
        }
    }

    fn read(&self) -> ReadParams {
        ReadParams {
            as_of: self.as_of.clone(),
            min_position: self.min_position,
        }
    }
}

fn not_found(id: &str) -> ApiError {
    ApiError::NotFound(format!("Operator not found: {id}"))
}

/// Seed endpoint 3 body.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Recommendations {
    /// Operator.
    pub operator_id: String,
    /// Highest priority first.
    pub recommendations: Vec<Recommendation>,
}

/// Seed endpoint 3: training recommendations (skill development, retention review,
/// plateau challenge, break, certification), from the 20 most recent sessions, as of `as_of`.
#[utoipa::path(get, path = "/api/analytics/operator/{id}/recommendations", tag = "training",
    params(("id" = String, Path, description = "Operator id"), RoleParams),
    responses((status = 200, body = Recommendations), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn recommendations(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Params(params): Params<RoleParams>,
) -> Result<Json<Recommendations>, ApiError> {
    let role = params.role()?;
    let read = params.read();
    read.settle(&state).await?;
    let tree = profiles_tree(&state)?;
    let recommendations = training::recommendations_for(&tree, &id, role, read.as_of()?)
        .ok_or_else(|| not_found(&id))?;
    Ok(Json(Recommendations {
        operator_id: id,
        recommendations,
    }))
}

/// Seed endpoint 4 body.
#[derive(Serialize, utoipa::ToSchema)]
pub struct SkillGaps {
    /// Operator.
    pub operator_id: String,
    /// The role asked for (null when absent: the default requirements).
    pub target_role: Option<String>,
    /// Gaps, highest priority first.
    pub skill_gaps: Vec<SkillGap>,
}

/// Seed endpoint 4: skill gaps against a role's requirements (a novice requirement is never a gap).
#[utoipa::path(get, path = "/api/analytics/operator/{id}/skill-gaps", tag = "training",
    params(("id" = String, Path, description = "Operator id"), RoleParams),
    responses((status = 200, body = SkillGaps), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn skill_gaps(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Params(params): Params<RoleParams>,
) -> Result<Json<SkillGaps>, ApiError> {
    let role = params.role()?;
    params.read().settle(&state).await?;
    let tree = profiles_tree(&state)?;
    let profile = profiles::profile(&tree, &id).ok_or_else(|| not_found(&id))?;
    Ok(Json(SkillGaps {
        skill_gaps: training::skill_gaps(&profile, role),
        operator_id: id,
        target_role: params.target_role.clone(),
    }))
}

/// `skill`, `as_of`, `min_position`.
#[derive(Deserialize, utoipa::IntoParams)]
pub struct LearningParams {
    /// One skill (default: all).
    pub skill: Option<String>,
    /// Evaluate time windows as of this instant (RFC 3339; default now).
    pub as_of: Option<String>,
    /// Wait (up to 5 s) until the projectors have applied this log position.
    pub min_position: Option<u64>,
}

/// Learning curves, retention, time to proficiency, forgetting curve (predicted recall and
/// next review), rating against difficulty and plateau test per skill, and the competency matrix.
#[utoipa::path(get, path = "/api/analytics/operator/{id}/learning", tag = "training",
    params(("id" = String, Path, description = "Operator id"), LearningParams),
    responses((status = 200, body = Learning), (status = 404, body = ErrorBody)))]
pub async fn learning(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Params(params): Params<LearningParams>,
) -> Result<Json<Learning>, ApiError> {
    let read = ReadParams {
        as_of: params.as_of,
        min_position: params.min_position,
    };
    read.settle(&state).await?;
    let tree = profiles_tree(&state)?;
    let learning = training::learning(&tree, &id, params.skill.as_deref(), read.as_of()?)
        .ok_or_else(|| not_found(&id))?;
    if let Some(skill) = &params.skill {
        if learning.skills.is_empty() {
            return Err(ApiError::NotFound(format!(
                "operator {id} has not practised {skill}"
            )));
        }
    }
    Ok(Json(learning))
}

/// The benchmark list.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Benchmarks {
    /// Benchmarks by id.
    pub benchmarks: Vec<Benchmark>,
    /// How many.
    pub count: usize,
}

/// Every benchmark.
#[utoipa::path(get, path = "/api/analytics/benchmarks", tag = "training",
    params(ReadParams), responses((status = 200, body = Benchmarks)))]
pub async fn list_benchmarks(
    State(state): State<AppState>,
    Params(read): Params<ReadParams>,
) -> Result<Json<Benchmarks>, ApiError> {
    read.settle(&state).await?;
    let benchmarks = profiles::benchmarks(&profiles_tree(&state)?);
    Ok(Json(Benchmarks {
        count: benchmarks.len(),
        benchmarks,
    }))
}

/// Sets a benchmark: appends `ats.benchmark.set` (body = its data:
/// `{benchmark_id, metric_type, value, context?}`).
#[utoipa::path(post, path = "/api/analytics/benchmarks", tag = "training",
    request_body(content = Object, description = "ats.benchmark.set data"),
    responses((status = 200, body = ReceiptBody), (status = 422, body = ErrorBody)))]
pub async fn set_benchmark(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<ReceiptBody>, ApiError> {
    append_intent(&state, EventKind::BenchmarkSet, &headers, &body)
        .await
        .map(Json)
}

/// Compares an operator's mean of the benchmark's metric with it, with a percentile rank
/// among all operators.
#[utoipa::path(get, path = "/api/analytics/operator/{id}/benchmarks/{benchmark_id}", tag = "training",
    params(("id" = String, Path, description = "Operator id"), ("benchmark_id" = String, Path, description = "Benchmark id"), ReadParams),
    responses((status = 200, body = BenchmarkComparison), (status = 404, body = ErrorBody)))]
pub async fn compare(
    State(state): State<AppState>,
    Path((id, benchmark_id)): Path<(String, String)>,
    Params(read): Params<ReadParams>,
) -> Result<Json<BenchmarkComparison>, ApiError> {
    read.settle(&state).await?;
    let tree = profiles_tree(&state)?;
    profiles::profile(&tree, &id).ok_or_else(|| not_found(&id))?;
    Ok(Json(training::compare_to_benchmark(
        &tree,
        &id,
        &benchmark_id,
    )))
}
