//! The OpenAPI document, generated from the handlers' annotations.

use axum::routing::get;
use axum::{Json, Router};
use utoipa::OpenApi;

use crate::routes::{
    admin, aggregator, costs, events, health, operators, progress, reports, training,
};
use crate::state::AppState;

/// The API's OpenAPI 3.1 document.
#[derive(OpenApi)]
#[openapi(
    info(title = "ATS MAFIA analytics", description = "Event-sourced analytics engine: CloudEvents intake and read-model queries."),
    paths(
        events::post_events, events::schema,
        operators::list, operators::performance, operators::sessions, operators::session_analysis,
        training::recommendations, training::skill_gaps, training::learning,
        training::list_benchmarks, training::set_benchmark, training::compare,
        progress::leaderboard, progress::operator_progress, progress::list_goals,
        progress::create_goal, progress::progress_goal, progress::list_milestones,
        progress::register_milestone, progress::list_certifications,
        progress::operator_certifications, progress::award_certification, progress::eligibility,
        costs::models, costs::statistics, costs::model_statistics, costs::session_costs, costs::breakdown, costs::summary, costs::optimization,
        costs::list_budgets, costs::set_budget, costs::roi, costs::anomalies, costs::forecast,
        costs::what_if, costs::budget_plan, costs::predict, costs::export_usage,
        aggregator::dashboard_data, aggregator::refresh, aggregator::trends,
        aggregator::team_performance, aggregator::list_alerts, aggregator::acknowledge,
        aggregator::health,
        reports::generate, reports::list, reports::show, reports::download, reports::delete,
        admin::projectors, admin::dead_letters, admin::rebuild,
        health::healthz, health::readyz, health::metrics,
    ),
    tags(
        (name = "events", description = "Append events to the log"),
        (name = "operators", description = "Operator performance read models"),
        (name = "training", description = "Training effectiveness: learning, gaps, recommendations, benchmarks"),
        (name = "progress", description = "XP, levels, milestones, goals, certifications, paths, leaderboards"),
        (name = "costs", description = "LLM prices, usage breakdowns, budgets, optimizer, ROI"),
        (name = "aggregator", description = "Dashboard, trends, team performance, alerts, analytics health"),
        (name = "reports", description = "Reports: generate (an event), list, show, download, delete"),
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
