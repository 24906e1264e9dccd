//! LLM costs: `/api/analytics/cost/...` (breakdown, summary, optimization, budgets, ROI) and
//! the price registry `/api/analytics/models`, all read from the `costs_v5` read model.

use std::collections::BTreeMap;

use ats_events::EventKind;
use ats_events::{BudgetPeriod, BudgetScope};
use ats_projections::costs::anomalies::{self, SeedAnomaly, SpendAnomaly};
use ats_projections::costs::budgets::{self, BudgetStatus};
use ats_projections::costs::forecast::{self, Forecast};
use ats_projections::costs::optimizer::{
    self, Impact, MethodComparison, Opportunity, RoiMetrics, SessionRecommendation, TrainingMethod,
};
use ats_projections::costs::planner::{self, BudgetPlan, CostPrediction, ExportFilter};
use ats_projections::costs::registry::{self, ModelFilter, ModelInfo};
use ats_projections::costs::what_if::{self, AssumedPrice, Repricing, WhatIf};
use ats_projections::costs::{
    self, CostBreakdown, CostCategory, CostSummary, ModelStatistics, SessionLlmCosts, Statistics,
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
use crate::routes::Routes;
use crate::state::AppState;

pub fn routes() -> Routes {
    Routes::new()
        .get("/api/analytics/models", Access::READ, models)
        .get("/api/analytics/cost/breakdown", Access::READ, breakdown)
        .get("/api/analytics/cost/summary", Access::READ, summary)
        .get(
            "/api/analytics/cost/optimization",
            Access::READ,
            optimization,
        )
        .get("/api/analytics/cost/budgets", Access::READ, list_budgets)
        .post("/api/analytics/cost/budgets", Access::INGEST, set_budget)
        .post("/api/analytics/cost/roi", Access::READ, roi)
        .get("/api/analytics/cost/anomalies", Access::READ, anomalies)
        .get("/api/analytics/cost/forecast", Access::READ, forecast)
        .post("/api/analytics/cost/what-if", Access::READ, what_if)
        .post("/api/analytics/cost/budget-plan", Access::READ, budget_plan)
        .get("/api/analytics/cost/predict", Access::READ, predict)
        .get("/api/analytics/cost/usage", Access::READ, export_usage)
        .get("/api/analytics/cost/statistics", Access::READ, statistics)
        .get(
            "/api/analytics/cost/models/{*model}",
            Access::READ,
            model_statistics,
        )
        .get(
            "/api/analytics/cost/session/{id}",
            Access::READ,
            session_costs,
        )
}

fn costs_tree(state: &AppState) -> Result<sled::Tree, ApiError> {
    state
        .runtime
        .handle(costs::NAME)
        .map(|h| h.tree())
        .ok_or_else(|| ApiError::Internal("costs projector missing".into()))
}

/// Settles `min_position` and returns `as_of` (now when absent).
async fn read_at(
    state: &AppState,
    as_of: Option<String>,
    min_position: Option<u64>,
) -> Result<ats_events::Timestamp, ApiError> {
    let read = ReadParams {
        as_of,
        min_position,
    };
    read.settle(state).await?;
    read.as_of()
}

/// Registry filters (seed `list_models`, `get_recommended_models`).
#[derive(Deserialize, utoipa::IntoParams)]
pub struct ModelParams {
    /// Only this provider.
    pub provider: Option<String>,
    /// Only this tier (`entry`, `standard`, `advanced`, `premium`).
    pub tier: Option<String>,
    /// Only models with this capability.
    pub capability: Option<String>,
    /// Only models whose input price per 1K tokens is at most this.
    pub max_cost_per_1k: Option<f64>,
    /// Also list the models recommended for this task type, best reasoning first.
    pub task_type: Option<String>,
    /// Cost cap of a recommendation at 2,000 input + 500 output tokens.
    pub max_cost_per_request: Option<f64>,
    /// Prices in force at this instant (RFC 3339; default now).
    pub as_of: Option<String>,
    /// Wait (up to 5 s) until the projectors have applied this log position.
    pub min_position: Option<u64>,
}

/// Seed registry `get_statistics()`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct RegistryStatistics {
    /// Models in force.
    pub total_models: usize,
    /// Count per provider.
    pub models_by_provider: BTreeMap<String, usize>,
    /// Count per tier.
    pub models_by_tier: BTreeMap<String, usize>,
    /// Providers, in name order.
    pub providers: Vec<String>,
}

/// `GET /api/analytics/models` body.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ModelList {
    /// Models matching the filters, in registry order.
    pub models: Vec<ModelInfo>,
    /// How many.
    pub count: usize,
    /// The lowest input price among them.
    pub cheapest: Option<ModelInfo>,
    /// The highest speed score among them.
    pub fastest: Option<ModelInfo>,
    /// With `task_type`: the models recommended for it (tier and cost cap applied).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recommended: Option<Vec<ModelInfo>>,
    /// Counts over the whole registry.
    pub statistics: RegistryStatistics,
    /// The instant the prices are in force at.
    pub as_of: String,
}

/// The price registry: the 15 default models (§B5.3) with prices changed by
/// `ats.model.priced`, as of `as_of`.
#[utoipa::path(get, path = "/api/analytics/models", tag = "costs",
    params(ModelParams), responses((status = 200, body = ModelList), (status = 400, body = ErrorBody)))]
pub async fn models(
    State(state): State<AppState>,
    Params(params): Params<ModelParams>,
) -> Result<Json<ModelList>, ApiError> {
    let as_of = read_at(&state, params.as_of.clone(), params.min_position).await?;
    let all = costs::models(&costs_tree(&state)?, as_of);
    let filter = ModelFilter {
        provider: params.provider.clone(),
        tier: params.tier.clone(),
        capability: params.capability.clone(),
        max_cost_per_1k: params.max_cost_per_1k,
    };
    let listed: Vec<ModelInfo> = registry::list_models(&all, &filter)
        .into_iter()
        .cloned()
        .collect();
    let recommended = params.task_type.as_deref().map(|task| {
        registry::recommended(
            &all,
            task,
            params.tier.as_deref(),
            params.max_cost_per_request,
        )
        .into_iter()
        .cloned()
        .collect()
    });
    let mut by_provider = BTreeMap::new();
    let mut by_tier = BTreeMap::new();
    for m in &all {
        *by_provider.entry(m.provider.clone()).or_insert(0) += 1;
        *by_tier.entry(m.tier.clone()).or_insert(0) += 1;
    }
    Ok(Json(ModelList {
        count: listed.len(),
        cheapest: registry::cheapest(&listed, None).cloned(),
        fastest: registry::fastest(&listed, None).cloned(),
        models: listed,
        recommended,
        statistics: RegistryStatistics {
            total_models: all.len(),
            providers: by_provider.keys().cloned().collect(),
            models_by_provider: by_provider,
            models_by_tier: by_tier,
        },
        as_of: as_of.to_rfc3339(),
    }))
}

/// Parameters of the breakdown.
#[derive(Deserialize, utoipa::IntoParams)]
pub struct BreakdownParams {
    /// `model_usage` (default; `model` is an alias), `profile`, `scenario`, `phase`, `time_period`.
    pub category: Option<String>,
    /// Whole UTC days ending with the day of `as_of` (absent: all time).
    pub time_range_days: Option<u32>,
    /// End of the window (RFC 3339; default now).
    pub as_of: Option<String>,
    /// Wait (up to 5 s) until the projectors have applied this log position.
    pub min_position: Option<u64>,
}

fn category(text: Option<&str>) -> Result<CostCategory, ApiError> {
    let text = text.unwrap_or("model_usage");
    CostCategory::parse(text).ok_or_else(|| ApiError::BadRequest {
        code: "invalid_parameter",
        message: format!(
            "category: {text:?} is not a valid CostCategory (model_usage, model, profile, scenario, phase, time_period)"
        ),
    })
}

/// Seed endpoint 6: cost per item of a category over a window, with each item's share.
#[utoipa::path(get, path = "/api/analytics/cost/breakdown", tag = "costs",
    params(BreakdownParams),
    responses((status = 200, body = CostBreakdown), (status = 400, description = "An invalid category or parameter", body = ErrorBody)))]
pub async fn breakdown(
    State(state): State<AppState>,
    Params(params): Params<BreakdownParams>,
) -> Result<Json<CostBreakdown>, ApiError> {
    let category = category(params.category.as_deref())?;
    let as_of = read_at(&state, params.as_of, params.min_position).await?;
    Ok(Json(costs::breakdown(
        &costs_tree(&state)?,
        category,
        params.time_range_days,
        as_of,
    )))
}

/// Parameters of the summary and the optimizer.
#[derive(Deserialize, utoipa::IntoParams)]
pub struct SessionWindowParams {
    /// Only this session (its whole usage).
    pub session_id: Option<String>,
    /// Whole UTC days ending with the day of `as_of` (absent: all time).
    pub time_range_days: Option<u32>,
    /// End of the window (RFC 3339; default now).
    pub as_of: Option<String>,
    /// Wait (up to 5 s) until the projectors have applied this log position.
    pub min_position: Option<u64>,
}

/// Seed `CostTracker.get_statistics()`: all-time totals, sessions, profiles and models with
/// usage, average cost per request and success rate.
#[utoipa::path(get, path = "/api/analytics/cost/statistics", tag = "costs",
    params(ReadParams), responses((status = 200, body = Statistics)))]
pub async fn statistics(
    State(state): State<AppState>,
    Params(read): Params<ReadParams>,
) -> Result<Json<Statistics>, ApiError> {
    read.settle(&state).await?;
    Ok(Json(costs::statistics(&costs_tree(&state)?)))
}

/// Seed `get_model_statistics`: requests, success rate, cost, tokens, average cost and latency
/// of one model (`provider/name`, OpenRouter names included); 404 without usage.
#[utoipa::path(get, path = "/api/analytics/cost/models/{model}", tag = "costs",
    params(("model" = String, Path, description = "provider/name"), ReadParams),
    responses((status = 200, body = ModelStatistics), (status = 404, body = ErrorBody)))]
pub async fn model_statistics(
    State(state): State<AppState>,
    Path(model): Path<String>,
    Params(read): Params<ReadParams>,
) -> Result<Json<ModelStatistics>, ApiError> {
    read.settle(&state).await?;
    costs::model_statistics(&costs_tree(&state)?, &model)
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("No usage data for this model: {model}")))
}

/// Seed `get_session_llm_costs`: a session's LLM cost, tokens, cost by model and budget.
#[utoipa::path(get, path = "/api/analytics/cost/session/{id}", tag = "costs",
    params(("id" = String, Path, description = "Session id"), ReadParams),
    responses((status = 200, body = SessionLlmCosts)))]
pub async fn session_costs(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Params(read): Params<ReadParams>,
) -> Result<Json<SessionLlmCosts>, ApiError> {
    read.settle(&state).await?;
    let as_of = read.as_of()?;
    Ok(Json(costs::session_llm_costs(
        &costs_tree(&state)?,
        &id,
        as_of,
    )))
}

/// Seed endpoint 8: statistics, the five breakdowns and the optimizer's opportunities.
#[utoipa::path(get, path = "/api/analytics/cost/summary", tag = "costs",
    params(SessionWindowParams), responses((status = 200, body = CostSummary), (status = 400, body = ErrorBody)))]
pub async fn summary(
    State(state): State<AppState>,
    Params(params): Params<SessionWindowParams>,
) -> Result<Json<CostSummary>, ApiError> {
    let as_of = read_at(&state, params.as_of, params.min_position).await?;
    Ok(Json(costs::summary(
        &costs_tree(&state)?,
        params.session_id.as_deref(),
        params.time_range_days,
        as_of,
    )))
}

/// Seed endpoint 7 body (plus the basic per-session recommendations of §B4.3).
#[derive(Serialize, utoipa::ToSchema)]
pub struct Optimization {
    /// Opportunities by ROI score.
    pub opportunities: Vec<Opportunity>,
    /// Their impact.
    pub impact_analysis: Impact,
    /// With `session_id`: the seed's basic recommendations for the session.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_recommendations: Option<Vec<SessionRecommendation>>,
}

/// Seed endpoint 7: optimization opportunities and their impact.
#[utoipa::path(get, path = "/api/analytics/cost/optimization", tag = "costs",
    params(SessionWindowParams), responses((status = 200, body = Optimization), (status = 400, body = ErrorBody)))]
pub async fn optimization(
    State(state): State<AppState>,
    Params(params): Params<SessionWindowParams>,
) -> Result<Json<Optimization>, ApiError> {
    let as_of = read_at(&state, params.as_of, params.min_position).await?;
    let tree = costs_tree(&state)?;
    let session = params.session_id.as_deref();
    let opportunities =
        optimizer::identify_opportunities(&tree, session, params.time_range_days, as_of);
    Ok(Json(Optimization {
        impact_analysis: optimizer::impact(&opportunities),
        opportunities,
        session_recommendations: session
            .map(|s| optimizer::session_recommendations(&tree, s, as_of)),
    }))
}

/// `GET /api/analytics/cost/budgets` body.
#[derive(Serialize, utoipa::ToSchema)]
pub struct BudgetList {
    /// Budgets by scope, then entity.
    pub budgets: Vec<BudgetStatus>,
    /// How many.
    pub count: usize,
    /// The instant spend is measured at.
    pub as_of: String,
}

/// Every budget with its spend in the period holding `as_of`, remaining amount and alerts.
#[utoipa::path(get, path = "/api/analytics/cost/budgets", tag = "costs",
    params(ReadParams), responses((status = 200, body = BudgetList), (status = 400, body = ErrorBody)))]
pub async fn list_budgets(
    State(state): State<AppState>,
    Params(read): Params<ReadParams>,
) -> Result<Json<BudgetList>, ApiError> {
    let as_of = read_at(&state, read.as_of, read.min_position).await?;
    let budgets = budgets::budgets(&costs_tree(&state)?, as_of);
    Ok(Json(BudgetList {
        count: budgets.len(),
        budgets,
        as_of: as_of.to_rfc3339(),
    }))
}

/// Sets a budget: appends an `ats.budget.set` event (the body is its data) through the log,
/// like `POST /api/events`. An `Idempotency-Key` header makes retries safe.
#[utoipa::path(post, path = "/api/analytics/cost/budgets", tag = "costs",
    request_body(content = ats_events::BudgetSet, description = "The data of an ats.budget.set event"),
    responses((status = 200, body = ReceiptBody),
        (status = 422, description = "The message names the field", body = ErrorBody)))]
pub async fn set_budget(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<ReceiptBody>, ApiError> {
    // Budgets without thresholds get the configured ones, recorded in the event.
    let body = match serde_json::from_slice::<serde_json::Value>(&body) {
        Ok(serde_json::Value::Object(mut data)) => {
            let missing = data
                .get("thresholds")
                .is_none_or(|t| t.as_array().is_some_and(Vec::is_empty));
            if missing {
                data.insert(
                    "thresholds".into(),
                    serde_json::json!(state.budget_thresholds),
                );
            }
            Bytes::from(serde_json::Value::Object(data).to_string())
        }
        _ => body,
    };
    append_intent(&state, EventKind::BudgetSet, &headers, &body)
        .await
        .map(Json)
}

/// `POST /api/analytics/cost/roi` body for one training (seed `calculate_training_roi`).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoiRequest {
    /// USD spent.
    pub total_cost: f64,
    /// Level before (1–5).
    pub initial_skill_level: f64,
    /// Level after.
    pub final_skill_level: f64,
    /// Hours trained.
    pub training_hours: f64,
    /// Certifications earned.
    #[serde(default)]
    pub certifications: u32,
}

/// `POST /api/analytics/cost/roi` body comparing methods (seed `compare_training_methods`).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompareRequest {
    /// Methods (keys `name`, `cost`, `initial_level`, `final_level`, `hours`, `certifications`).
    pub methods: Vec<TrainingMethod>,
}

/// A body that does not deserialize: 400 with serde's message, without its position.
pub(crate) fn invalid_body(err: serde_json::Error) -> ApiError {
    let text = err.to_string();
    ApiError::BadRequest {
        code: "invalid_body",
        message: text.split(" at line ").next().unwrap_or(&text).to_owned(),
    }
}

/// ROI of one training (`RoiRequest` → `RoiMetrics`) or a comparison of methods
/// (`CompareRequest` → `MethodComparison`; 400 `no_methods_provided` for an empty list).
#[utoipa::path(post, path = "/api/analytics/cost/roi", tag = "costs",
    request_body(content = RoiRequest, description = "One training, or {\"methods\": [...]} to compare"),
    responses((status = 200, description = "RoiMetrics, or MethodComparison for methods", body = RoiMetrics),
        (status = 400, description = "The message names the field", body = ErrorBody)))]
pub async fn roi(body: Bytes) -> Result<Json<serde_json::Value>, ApiError> {
    let value: serde_json::Value =
        serde_json::from_slice(&body).map_err(|e| ApiError::BadRequest {
            code: "malformed_json",
            message: format!("malformed JSON: {e}"),
        })?;
    let answer = if value.get("methods").is_some() {
        let request: CompareRequest = serde_json::from_value(value).map_err(invalid_body)?;
        let comparison: MethodComparison = optimizer::compare_training_methods(&request.methods)
            .ok_or_else(|| ApiError::BadRequest {
                code: "no_methods_provided",
                message: "methods: at least one method is required".into(),
            })?;
        serde_json::to_value(comparison)
    } else {
        let r: RoiRequest = serde_json::from_value(value).map_err(invalid_body)?;
        serde_json::to_value(optimizer::calculate_training_roi(
            r.total_cost,
            r.initial_skill_level,
            r.final_skill_level,
            r.training_hours,
            r.certifications,
        ))
    };
    answer
        .map(Json)
        .map_err(|e| ApiError::Internal(format!("cannot encode the ROI: {e}")))
}

/// Parameters of the anomaly detectors.
#[derive(Deserialize, utoipa::IntoParams)]
pub struct AnomalyParams {
    /// Days before `as_of` to examine (default 7, the seed's window).
    pub time_range_days: Option<u32>,
    /// End of the window (RFC 3339; default now).
    pub as_of: Option<String>,
    /// Wait (up to 5 s) until the projectors have applied this log position.
    pub min_position: Option<u64>,
}

/// `GET /api/analytics/cost/anomalies` body.
#[derive(Serialize, utoipa::ToSchema)]
pub struct AnomalyReport {
    /// The seed's three rules (expensive requests, cost spike, high error rate).
    pub anomalies: Vec<SeedAnomaly>,
    /// The robust detector: days above their upper bound, in total and per model, profile
    /// and task type.
    pub spend_anomalies: Vec<SpendAnomaly>,
    /// Both lists together.
    pub count: usize,
}

/// Cost anomalies over the window before `as_of`: the seed's rules and the §A3 detector.
#[utoipa::path(get, path = "/api/analytics/cost/anomalies", tag = "costs",
    params(AnomalyParams), responses((status = 200, body = AnomalyReport), (status = 400, body = ErrorBody)))]
pub async fn anomalies(
    State(state): State<AppState>,
    Params(params): Params<AnomalyParams>,
) -> Result<Json<AnomalyReport>, ApiError> {
    let as_of = read_at(&state, params.as_of, params.min_position).await?;
    let tree = costs_tree(&state)?;
    let days = params
        .time_range_days
        .unwrap_or(anomalies::DEFAULT_WINDOW_DAYS);
    let seed = anomalies::seed_anomalies(&tree, days, as_of);
    let spend = anomalies::detect(&tree, days, as_of);
    Ok(Json(AnomalyReport {
        count: seed.len() + spend.len(),
        anomalies: seed,
        spend_anomalies: spend,
    }))
}

/// Parameters of the forecast.
#[derive(Deserialize, utoipa::IntoParams)]
pub struct ForecastParams {
    /// `global` (default), `profile` or `session`.
    #[param(value_type = Option<String>)]
    pub scope: Option<BudgetScope>,
    /// Profile or session id (required for those scopes).
    pub entity_id: Option<String>,
    /// `daily`, `weekly` or `monthly` (default: the budget's period, else monthly).
    #[param(value_type = Option<String>)]
    pub period: Option<BudgetPeriod>,
    /// The instant to forecast from (RFC 3339; default now).
    pub as_of: Option<String>,
    /// Wait (up to 5 s) until the projectors have applied this log position.
    pub min_position: Option<u64>,
}

/// Spend to the end of the period with an 80 % prediction interval and the day the budget
/// runs out (§A3).
#[utoipa::path(get, path = "/api/analytics/cost/forecast", tag = "costs",
    params(ForecastParams), responses((status = 200, body = Forecast), (status = 400, body = ErrorBody)))]
pub async fn forecast(
    State(state): State<AppState>,
    Params(params): Params<ForecastParams>,
) -> Result<Json<Forecast>, ApiError> {
    let scope = params.scope.unwrap_or(BudgetScope::Global);
    let entity = match (scope, params.entity_id.as_deref()) {
        (BudgetScope::Global, Some(_)) => {
            return Err(ApiError::BadRequest {
                code: "invalid_parameter",
                message: "entity_id: must be absent for the global scope".into(),
            })
        }
        (BudgetScope::Global, None) => None,
        (_, Some(id)) if !id.is_empty() => Some(id),
        _ => {
            return Err(ApiError::BadRequest {
                code: "invalid_parameter",
                message: "entity_id: is required for a profile or session forecast".into(),
            })
        }
    };
    let as_of = read_at(&state, params.as_of, params.min_position).await?;
    Ok(Json(forecast::forecast(
        &costs_tree(&state)?,
        scope,
        entity,
        params.period,
        as_of,
    )))
}

/// `POST /api/analytics/cost/what-if` body.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WhatIfRequest {
    /// Usage of each key model counted as usage of its value model.
    #[serde(default)]
    pub substitutions: BTreeMap<String, String>,
    /// Prices assumed for these models at every time.
    #[serde(default)]
    pub prices: Vec<AssumedPrice>,
    /// Whole UTC days ending with the day of `as_of` (absent: all time).
    pub time_range_days: Option<u32>,
    /// End of the window (RFC 3339; default now).
    pub as_of: Option<String>,
}

/// The window's cost re-priced with other prices or models, by replaying the log into a
/// scratch fold (the live read model is untouched).
#[utoipa::path(post, path = "/api/analytics/cost/what-if", tag = "costs",
    request_body = WhatIfRequest,
    responses((status = 200, body = WhatIf), (status = 400, description = "The message names the field", body = ErrorBody)))]
pub async fn what_if(State(state): State<AppState>, body: Bytes) -> Result<Json<WhatIf>, ApiError> {
    let request: WhatIfRequest = serde_json::from_slice(&body).map_err(invalid_body)?;
    for (i, price) in request.prices.iter().enumerate() {
        let prices = [
            price.cost_per_1k_input_tokens,
            price.cost_per_1k_output_tokens,
            price.cost_per_1k_cached_input_tokens.unwrap_or(0.0),
        ];
        if prices.iter().any(|p| !p.is_finite() || *p < 0.0) {
            return Err(ApiError::BadRequest {
                code: "invalid_body",
                message: format!("prices[{i}]: prices must be finite and not negative"),
            });
        }
    }
    let as_of = ReadParams {
        as_of: request.as_of,
        min_position: None,
    }
    .as_of()?;
    let repricing = Repricing {
        substitutions: request.substitutions,
        prices: request.prices,
    };
    what_if::what_if(
        state.log.clone(),
        repricing,
        request.time_range_days,
        as_of,
        &state.scratch,
    )
    .await
    .map(Json)
    .map_err(ApiError::Internal)
}

/// `POST /api/analytics/cost/budget-plan` body (seed `create_budget_plan`).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanRequest {
    /// USD.
    pub total_budget: f64,
    /// Days the budget covers (at least 1).
    pub time_period_days: u32,
    /// Areas boosted ×1.2 (`core_training`, `advanced_scenarios`, `certification_prep`,
    /// `contingency`).
    #[serde(default)]
    pub priority_areas: Vec<String>,
}

/// Seed budget planner: daily and weekly budget and the allocation per training area.
#[utoipa::path(post, path = "/api/analytics/cost/budget-plan", tag = "costs",
    request_body = PlanRequest,
    responses((status = 200, body = BudgetPlan), (status = 400, description = "The message names the field", body = ErrorBody)))]
pub async fn budget_plan(body: Bytes) -> Result<Json<BudgetPlan>, ApiError> {
    let request: PlanRequest = serde_json::from_slice(&body).map_err(invalid_body)?;
    if !request.total_budget.is_finite() || request.total_budget < 0.0 {
        return Err(ApiError::BadRequest {
            code: "invalid_body",
            message: format!(
                "total_budget: must be a finite amount not below 0, got {}",
                request.total_budget
            ),
        });
    }
    planner::create_budget_plan(
        request.total_budget,
        request.time_period_days,
        &request.priority_areas,
    )
    .map(Json)
    .ok_or_else(|| ApiError::BadRequest {
        code: "invalid_body",
        message: "time_period_days: must be at least 1".into(),
    })
}

/// Parameters of the training cost prediction.
#[derive(Deserialize, utoipa::IntoParams)]
pub struct PredictParams {
    /// Planned training hours.
    pub training_hours: f64,
    /// `economy`, `standard` (default) or `premium`.
    pub model_tier: Option<String>,
    /// Accepted as in the seed, which does not use it.
    #[allow(dead_code)] // part of the seed's signature; the prediction ignores it there too
    pub target_skill_gains: Option<i64>,
    /// Wait (up to 5 s) until the projectors have applied this log position.
    pub min_position: Option<u64>,
}

/// Seed `predict_training_cost`: 10 requests an hour at the mean cost per request so far.
#[utoipa::path(get, path = "/api/analytics/cost/predict", tag = "costs",
    params(PredictParams),
    responses((status = 200, body = CostPrediction), (status = 400, body = ErrorBody)))]
pub async fn predict(
    State(state): State<AppState>,
    Params(params): Params<PredictParams>,
) -> Result<Json<CostPrediction>, ApiError> {
    if !params.training_hours.is_finite() || params.training_hours < 0.0 {
        return Err(ApiError::BadRequest {
            code: "invalid_parameter",
            message: format!(
                "training_hours: must be a finite number of hours not below 0, got {}",
                params.training_hours
            ),
        });
    }
    read_at(&state, None, params.min_position).await?;
    let stats = costs::statistics(&costs_tree(&state)?);
    Ok(Json(planner::predict_training_cost(
        stats.average_cost_per_request,
        params.training_hours,
        params.model_tier.as_deref().unwrap_or("standard"),
    )))
}

/// Parameters of the usage export.
#[derive(Deserialize, utoipa::IntoParams)]
pub struct ExportParams {
    /// Only this session.
    pub session_id: Option<String>,
    /// Only this profile.
    pub profile_id: Option<String>,
    /// From this instant (RFC 3339, inclusive).
    pub start_date: Option<String>,
    /// Up to this instant (RFC 3339, inclusive).
    pub end_date: Option<String>,
    /// `json` (default) or `csv`.
    pub format: Option<String>,
    /// Wait (up to 5 s) until the projectors have applied this log position.
    pub min_position: Option<u64>,
}

fn instant(name: &str, text: Option<&str>) -> Result<Option<ats_events::Timestamp>, ApiError> {
    text.map(|t| {
        ats_events::Timestamp::parse_rfc3339(t).map_err(|e| ApiError::BadRequest {
            code: "invalid_parameter",
            message: format!("{name}: invalid RFC 3339 date-time {t:?}: {e}"),
        })
    })
    .transpose()
}

/// Seed `export_usage_data`: usage records in time order as JSON, or CSV with fields quoted
/// where they must be.
#[utoipa::path(get, path = "/api/analytics/cost/usage", tag = "costs",
    params(ExportParams),
    responses((status = 200, description = "A JSON array of usage records, or text/csv"), (status = 400, body = ErrorBody)))]
pub async fn export_usage(
    State(state): State<AppState>,
    Params(params): Params<ExportParams>,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    let filter = ExportFilter {
        session_id: params.session_id,
        profile_id: params.profile_id,
        start: instant("start_date", params.start_date.as_deref())?,
        end: instant("end_date", params.end_date.as_deref())?,
    };
    let format = params.format.as_deref().unwrap_or("json");
    if format != "json" && format != "csv" {
        return Err(ApiError::BadRequest {
            code: "invalid_parameter",
            message: format!("format: unsupported format {format:?} (json, csv)"),
        });
    }
    read_at(&state, None, params.min_position).await?;
    let records = planner::export_usage(&costs_tree(&state)?, &filter);
    Ok(if format == "csv" {
        (
            [(axum::http::header::CONTENT_TYPE, "text/csv; charset=utf-8")],
            planner::usage_csv(&records),
        )
            .into_response()
    } else {
        Json(records).into_response()
    })
}
