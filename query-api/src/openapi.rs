//! The OpenAPI document, generated from the handlers' annotations.

use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::OpenApi;

use crate::auth::Access;
use crate::routes::{
    admin, aggregator, costs, events, health, keys, operators, progress, reports, training,
    RouteSpec, Routes,
};

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
        reports::register_template, reports::list_templates, reports::show_template,
        admin::projectors, admin::dead_letters, admin::rebuild,
        keys::create, keys::list, keys::revoke,
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
        (name = "admin", description = "Projectors, digests, dead letters, rebuild, API keys"),
        (name = "health", description = "Liveness, readiness, metrics"),
    )
)]
pub struct ApiDoc;

/// Name of the API-key security scheme in the document.
const SCHEME: &str = "api_key";

/// The document with each operation's access taken from the route table: the bearer scheme
/// on every operation that needs a key, and the scope it needs in its description.
pub fn document(table: &[RouteSpec]) -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.components
        .get_or_insert_with(Default::default)
        .add_security_scheme(
        SCHEME,
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some(
                    "An API key (`atsk_…`) as `Authorization: Bearer <key>` or `X-API-Key: <key>`",
                ))
                .build(),
        ),
    );
    for route in table {
        let Some(item) = doc.paths.paths.get_mut(&openapi_path(route.path)) else {
            continue;
        };
        let operation = match route.method.as_str() {
            "GET" => item.get.as_mut(),
            "POST" => item.post.as_mut(),
            "DELETE" => item.delete.as_mut(),
            _ => None,
        };
        let Some(operation) = operation else {
            continue;
        };
        match route.access {
            Access::Public => operation.security = Some(vec![SecurityRequirement::default()]),
            Access::Scope(scope) => {
                operation.security = Some(vec![SecurityRequirement::new::<_, _, &str>(SCHEME, [])]);
                let note = format!("Needs an API key with the `{}` scope.", scope.as_str());
                operation.description = Some(match operation.description.take() {
                    Some(text) => format!("{text}\n\n{note}"),
                    None => note,
                });
            }
        }
    }
    doc
}

/// The OpenAPI spelling of an axum path: a wildcard `{*model}` is the parameter `{model}`.
fn openapi_path(path: &str) -> String {
    path.replace("{*", "{")
}

pub fn routes() -> Routes {
    // Built once: the route table and the document do not change while the process runs.
    static DOCUMENT: std::sync::OnceLock<utoipa::openapi::OpenApi> = std::sync::OnceLock::new();
    Routes::new().get("/api/openapi.json", Access::Public, || async {
        Json(
            DOCUMENT
                .get_or_init(|| document(&crate::route_table()))
                .clone(),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every route is documented with the access it really has (the page and the document
    /// itself excepted), and the document has no operation the router lacks.
    #[test]
    fn the_document_matches_the_route_table() {
        let table = crate::route_table();
        let doc = document(&table);
        let mut documented = 0;
        for route in &table {
            if ["/", "/api/openapi.json"].contains(&route.path) {
                continue;
            }
            let item = doc
                .paths
                .paths
                .get(&openapi_path(route.path))
                .unwrap_or_else(|| panic!("{} is not documented", route.path));
            let operation = match route.method.as_str() {
                "GET" => item.get.as_ref(),
                "POST" => item.post.as_ref(),
                "DELETE" => item.delete.as_ref(),
                _ => None,
            }
            .unwrap_or_else(|| panic!("{} {} is not documented", route.method, route.path));
            let security = serde_json::to_value(&operation.security).unwrap_or_default();
            match route.access {
                Access::Public => assert_eq!(security, serde_json::json!([{}]), "{}", route.path),
                Access::Scope(scope) => {
                    assert_eq!(
                        security,
                        serde_json::json!([{SCHEME: []}]),
                        "{}",
                        route.path
                    );
                    let description = operation.description.as_deref().unwrap_or_default();
                    assert!(description.contains(&format!("`{}` scope", scope.as_str())));
                }
            }
            documented += 1;
        }
        let operations: usize = doc
            .paths
            .paths
            .values()
            .map(|item| {
                [
                    item.get.is_some(),
                    item.post.is_some(),
                    item.delete.is_some(),
                ]
                .iter()
                .filter(|&&x| x)
                .count()
            })
            .sum();
        assert_eq!(operations, documented);
    }
}
