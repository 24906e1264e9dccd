//! The analytics aggregator (§B8, §B11 rows 9, 11, 16–19, 25): dashboard, trends, team
//! performance, alerts and the health summary, computed from the read models at query time.

use ats_events::{EventKind, Timestamp};
use ats_projections::alerts::{self, ActiveAlerts, Alert, AlertPriority};
use ats_projections::dashboard::{self, DashboardData, HealthStats, ReadModels, Trends};
use ats_projections::reports::{self, TeamPerformance};
use ats_projections::runtime::{DeadLetter, ProjectorState};
use ats_projections::{activity, costs, profiles, progress};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::Json;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::auth::Access;
use crate::error::{ApiError, ErrorBody};
use crate::params::{Params, ReadParams};
use crate::routes::events::append_intent;
use crate::routes::Routes;
use crate::state::AppState;

pub fn routes() -> Routes {
    Routes::new()
        .get("/api/analytics/dashboard", Access::READ, dashboard_data)
        .post("/api/analytics/dashboard/refresh", Access::READ, refresh)
        .get("/api/analytics/trends", Access::READ, trends)
        .get(
            "/api/analytics/team/performance",
            Access::READ,
            team_performance,
        )
        .get("/api/analytics/alerts", Access::READ, list_alerts)
        .post(
            "/api/analytics/alerts/{alert_id}/acknowledge",
            Access::INGEST,
            acknowledge,
        )
        .get("/api/analytics/health", Access::READ, health)
}

/// The current tree of the projector `name`.
pub(crate) fn tree(state: &AppState, name: &str) -> Result<sled::Tree, ApiError> {
    state
        .runtime
        .handle(name)
        .map(|h| h.tree())
        .ok_or_else(|| ApiError::Internal(format!("{name} projector missing")))
}

/// The current trees of the projectors the aggregator reads.
pub(crate) fn read_models(state: &AppState) -> Result<ReadModels, ApiError> {
    Ok(ReadModels {
        profiles: tree(state, profiles::NAME)?,
        progress: tree(state, progress::NAME)?,
        costs: tree(state, costs::NAME)?,
        activity: tree(state, activity::NAME)?,
    })
}

/// Every alert whose condition holds as of `as_of` (acknowledged or not).
fn current_alerts(state: &AppState, models: &ReadModels, as_of: Timestamp) -> Vec<Alert> {
    alerts::current_alerts(
        models,
        &dead_letters(state),
        state.performance_threshold,
        as_of,
    )
}

/// Every projector's dead letters.
fn dead_letters(state: &AppState) -> Vec<DeadLetter> {
    state
        .runtime
        .handles()
        .iter()
        .flat_map(|h| h.dead_letters())
        .collect()
}

/// The active alerts as of `as_of`, summarized with `limit` of each list.
fn alert_summary(
    state: &AppState,
    models: &ReadModels,
    as_of: Timestamp,
    limit: usize,
) -> Result<ActiveAlerts, ApiError> {
    Ok(alerts::active_summary(
        models,
        &tree(state, alerts::NAME)?,
        &dead_letters(state),
        state.performance_threshold,
        as_of,
        limit,
    ))
}

/// The unacknowledged alerts as of `as_of`, filtered.
fn active_alerts(
    state: &AppState,
    models: &ReadModels,
    as_of: Timestamp,
    priority: Option<AlertPriority>,
    operator: Option<&str>,
) -> Result<Vec<Alert>, ApiError> {
    let all = current_alerts(state, models, as_of);
    Ok(alerts::active(
        &tree(state, alerts::NAME)?,
        all,
        priority,
        operator,
    ))
}

/// Seed endpoint 16 (§B8.7): summary (with running sessions and the week's cost), trends of
/// scores and spend over 7 and 30 days, XP and activity leaderboards, active and critical
/// alerts. Computed from the read models on each call: never stale.
#[utoipa::path(get, path = "/api/analytics/dashboard", tag = "aggregator",
    params(ReadParams),
    responses((status = 200, body = DashboardData), (status = 400, body = ErrorBody)))]
pub async fn dashboard_data(
    State(state): State<AppState>,
    Params(read): Params<ReadParams>,
) -> Result<Json<DashboardData>, ApiError> {
    read.settle(&state).await?;
    let as_of = read.as_of()?;
    let models = read_models(&state)?;
    let alerts = alert_summary(&state, &models, as_of, dashboard::DASHBOARD_ALERTS)?;
    Ok(Json(dashboard::dashboard(&models, alerts, as_of)))
}

/// Seed endpoint 17's answer.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Refreshed {
    /// `success`.
    pub status: &'static str,
    /// `Dashboard cache refreshed`.
    pub message: &'static str,
}

/// Seed endpoint 17. There is no cache to refresh (every answer is computed from the read
/// models), so this only keeps the seed's answer.
#[utoipa::path(post, path = "/api/analytics/dashboard/refresh", tag = "aggregator",
    responses((status = 200, body = Refreshed)))]
pub async fn refresh() -> Json<Refreshed> {
    Json(Refreshed {
        status: "success",
        message: "Dashboard cache refreshed",
    })
}

/// Parameters of the trends.
#[derive(Deserialize, utoipa::IntoParams)]
pub struct TrendParams {
    /// One operator's scores (system-wide without it; spend is always system-wide).
    pub operator_id: Option<String>,
    /// Window in whole UTC days ending with `as_of`'s day (default 30, 1–3650).
    pub period_days: Option<u32>,
    /// Evaluate as of this instant (RFC 3339; default now).
    pub as_of: Option<String>,
    /// Wait (up to 5 s) until the projectors have applied this log position.
    pub min_position: Option<u64>,
}

/// Longest trend window.
const MAX_PERIOD_DAYS: u32 = 3650;

/// Seed endpoint 9 (§B8.4): the performance trend (mean score and sessions per day, halves
/// compared) and the cost trend (spend per day) over `period_days`.
#[utoipa::path(get, path = "/api/analytics/trends", tag = "aggregator",
    params(TrendParams),
    responses((status = 200, body = Trends), (status = 400, body = ErrorBody)))]
pub async fn trends(
    State(state): State<AppState>,
    Params(params): Params<TrendParams>,
) -> Result<Json<Trends>, ApiError> {
    let period_days = params.period_days.unwrap_or(30);
    if !(1..=MAX_PERIOD_DAYS).contains(&period_days) {
        return Err(ApiError::BadRequest {
            code: "invalid_parameter",
            message: format!(
                "period_days: must be within 1..={MAX_PERIOD_DAYS}, got {period_days}"
            ),
        });
    }
    let read = ReadParams {
        as_of: params.as_of,
        min_position: params.min_position,
    };
    read.settle(&state).await?;
    let as_of = read.as_of()?;
    let models = read_models(&state)?;
    Ok(Json(dashboard::trends(
        &models,
        params.operator_id.as_deref(),
        period_days,
        as_of,
    )))
}

/// Seed endpoint 11: the team report over every operator (404 without operators). Not stored
/// as a report: a GET appends nothing (generate one with `POST …/reports/generate`).
#[utoipa::path(get, path = "/api/analytics/team/performance", tag = "aggregator",
    params(ReadParams),
    responses((status = 200, body = TeamPerformance), (status = 404, body = ErrorBody)))]
pub async fn team_performance(
    State(state): State<AppState>,
    Params(read): Params<ReadParams>,
) -> Result<Json<TeamPerformance>, ApiError> {
    read.settle(&state).await?;
    let models = read_models(&state)?;
    let ids = profiles::operator_ids(&models.profiles);
    if ids.is_empty() {
        return Err(ApiError::NotFound("No operators found".into()));
    }
    Ok(Json(reports::team_performance(&models, &ids)))
}

/// Parameters of the alert list.
#[derive(Deserialize, utoipa::IntoParams)]
pub struct AlertParams {
    /// `critical`, `high`, `medium` or `low`.
    pub priority: Option<String>,
    /// Only alerts about this operator.
    pub operator_id: Option<String>,
    /// Evaluate as of this instant (RFC 3339; default now).
    pub as_of: Option<String>,
    /// Wait (up to 5 s) until the projectors have applied this log position.
    pub min_position: Option<u64>,
}

/// Seed endpoint 18's body.
#[derive(Serialize, utoipa::ToSchema)]
pub struct AlertList {
    /// Unacknowledged alerts, by priority, then time, then id.
    pub alerts: Vec<Alert>,
    /// How many.
    pub count: usize,
}

/// Seed endpoint 18: active alerts — budget thresholds crossed in the current period,
/// operators whose recent average score is below `analytics.alerts.performance_threshold`,
/// today's spend anomalies and dead letters. An alert disappears when its condition clears
/// or once acknowledged.
#[utoipa::path(get, path = "/api/analytics/alerts", tag = "aggregator",
    params(AlertParams),
    responses((status = 200, body = AlertList), (status = 400, body = ErrorBody)))]
pub async fn list_alerts(
    State(state): State<AppState>,
    Params(params): Params<AlertParams>,
) -> Result<Json<AlertList>, ApiError> {
    let priority = params
        .priority
        .as_deref()
        .map(|p| {
            AlertPriority::parse(p).ok_or_else(|| ApiError::BadRequest {
                code: "invalid_parameter",
                message: format!(
                    "priority: '{p}' is not a valid AlertPriority (expected one of {})",
                    AlertPriority::ALL.map(AlertPriority::as_str).join(", ")
                ),
            })
        })
        .transpose()?;
    let read = ReadParams {
        as_of: params.as_of,
        min_position: params.min_position,
    };
    read.settle(&state).await?;
    let models = read_models(&state)?;
    let alerts = active_alerts(
        &state,
        &models,
        read.as_of()?,
        priority,
        params.operator_id.as_deref(),
    )?;
    Ok(Json(AlertList {
        count: alerts.len(),
        alerts,
    }))
}

/// Seed endpoint 19's answer, with the log position of the acknowledgement.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Acknowledged {
    /// `success`.
    pub status: &'static str,
    /// The alert.
    pub alert_id: String,
    /// Position of the `ats.alert.acknowledged` event (pass as `min_position`).
    pub position: u64,
}

/// Optional body of an acknowledgement.
#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcknowledgeRequest {
    /// Who acknowledges.
    pub by: Option<String>,
}

/// Seed endpoint 19: appends `ats.alert.acknowledged` for an alert whose condition holds as of
/// `as_of` (default now; 404 `Alert not found` otherwise). Acknowledging twice is harmless: the event id is derived
/// from the alert id unless an `Idempotency-Key` is given.
#[utoipa::path(post, path = "/api/analytics/alerts/{alert_id}/acknowledge", tag = "aggregator",
    params(("alert_id" = String, Path, description = "Alert id"), ReadParams),
    request_body(content = AcknowledgeRequest, description = "Optional: who acknowledges"),
    responses((status = 200, body = Acknowledged), (status = 404, body = ErrorBody),
        (status = 400, body = ErrorBody)))]
pub async fn acknowledge(
    State(state): State<AppState>,
    Path(alert_id): Path<String>,
    Params(read): Params<ReadParams>,
    mut headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Acknowledged>, ApiError> {
    let request: AcknowledgeRequest = if body.iter().all(u8::is_ascii_whitespace) {
        AcknowledgeRequest::default()
    } else {
        serde_json::from_slice(&body).map_err(crate::routes::costs::invalid_body)?
    };
    read.settle(&state).await?;
    let models = read_models(&state)?;
    if !current_alerts(&state, &models, read.as_of()?)
        .iter()
        .any(|a| a.id == alert_id)
    {
        return Err(ApiError::NotFound(format!("Alert not found: {alert_id}")));
    }
    if !headers.contains_key("idempotency-key") {
        let key = HeaderValue::from_str(&format!("alert-ack-{alert_id}"))
            .map_err(|_| ApiError::NotFound(format!("Alert not found: {alert_id}")))?;
        headers.insert("idempotency-key", key);
    }
    let data = serde_json::json!({"alert_id": alert_id, "by": request.by});
    let receipt = append_intent(
        &state,
        EventKind::AlertAcknowledged,
        &headers,
        data.to_string().as_bytes(),
    )
    .await?;
    Ok(Json(Acknowledged {
        status: "success",
        position: receipt.positions.first().copied().unwrap_or_default(),
        alert_id,
    }))
}

/// Seed endpoint 25's body, with real states and counts.
#[derive(Serialize, utoipa::ToSchema)]
pub struct AnalyticsHealth {
    /// `healthy`, or `degraded` when a component's projector failed.
    pub status: &'static str,
    /// `operational` or `failed`, from the state of the projector behind each component.
    pub components: BTreeMap<&'static str, &'static str>,
    /// Totals.
    pub stats: HealthStats,
}

/// Seed endpoint 25: component states from their projectors and real totals.
#[utoipa::path(get, path = "/api/analytics/health", tag = "aggregator",
    responses((status = 200, body = AnalyticsHealth)))]
pub async fn health(State(state): State<AppState>) -> Result<Json<AnalyticsHealth>, ApiError> {
    let component = |names: &[&str]| {
        let failed = names.iter().any(|name| {
            state
                .runtime
                .handle(name)
                .is_none_or(|h| h.status().state == ProjectorState::Failed)
        });
        if failed {
            "failed"
        } else {
            "operational"
        }
    };
    let components = BTreeMap::from([
        ("performance_engine", component(&[profiles::NAME])),
        ("cost_tracker", component(&[costs::NAME])),
        ("progress_tracker", component(&[progress::NAME])),
        ("reporting_engine", component(&[reports::NAME])),
        (
            "analytics_aggregator",
            component(&[activity::NAME, alerts::NAME]),
        ),
    ]);
    let status = if components.values().all(|s| *s == "operational") {
        "healthy"
    } else {
        "degraded"
    };
    let models = read_models(&state)?;
    let active = alert_summary(&state, &models, Timestamp::now(), 0)?.total;
    Ok(Json(AnalyticsHealth {
        status,
        components,
        stats: dashboard::health_stats(
            &models,
            reports::count(&tree(&state, reports::NAME)?) as u64,
            active,
        ),
    }))
}
