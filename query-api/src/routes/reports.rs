//! Reports (§B11 rows 12–15, §A4): generate (an `ats.report.generated` event carrying the
//! content), list, show, download in four formats, delete (an `ats.report.deleted` event).

use ats_events::cloudevents::event_id;
use ats_events::{EventKind, ReportType, Timestamp};
use ats_projections::reports::render::{self, Format};
use ats_projections::reports::templates::{self, TemplateInfo};
use ats_projections::reports::{self, Report, ReportListItem, ReportParameters};
use ats_projections::{activity, costs, profiles, progress};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::auth::Access;
use crate::error::{ApiError, ErrorBody};
use crate::params::{Params, ReadParams, MIN_POSITION_WAIT};
use crate::routes::aggregator::{read_models, tree};
use crate::routes::costs::invalid_body;
use crate::routes::events::{append_intent, ReceiptBody};
use crate::routes::Routes;
use crate::state::AppState;

pub fn routes() -> Routes {
    Routes::new()
        .get("/api/analytics/reports", Access::READ, list)
        .post("/api/analytics/reports/generate", Access::INGEST, generate)
        .get("/api/analytics/reports/{id}", Access::READ, show)
        .delete("/api/analytics/reports/{id}", Access::INGEST, delete)
        .get(
            "/api/analytics/reports/{id}/download",
            Access::READ,
            download,
        )
        .post(
            "/api/analytics/reports/templates",
            Access::INGEST,
            register_template,
        )
        .get(
            "/api/analytics/reports/templates",
            Access::READ,
            list_templates,
        )
        .get(
            "/api/analytics/reports/templates/{name}",
            Access::READ,
            show_template,
        )
}

fn reports_tree(state: &AppState) -> Result<sled::Tree, ApiError> {
    tree(state, reports::NAME)
}

fn bad(message: String) -> ApiError {
    ApiError::BadRequest {
        code: "invalid_parameter",
        message,
    }
}

fn report_type_names() -> String {
    [
        ReportType::OperatorProgress,
        ReportType::SessionAnalysis,
        ReportType::CostSummary,
        ReportType::TrainingEffectiveness,
        ReportType::SystemHealth,
        ReportType::TeamPerformance,
        ReportType::TrendAnalysis,
        ReportType::Compliance,
    ]
    .map(|t| json!(t).as_str().unwrap_or_default().to_owned())
    .join(", ")
}

fn parse_type(field: &str, text: &str) -> Result<ReportType, ApiError> {
    serde_json::from_value(json!(text)).map_err(|_| {
        bad(format!(
            "{field}: '{text}' is not a valid ReportType (expected one of {})",
            report_type_names()
        ))
    })
}

fn not_found(id: &str) -> ApiError {
    ApiError::NotFound(format!("Report not found: {id}"))
}

/// `POST /api/analytics/reports/generate` body.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GenerateRequest {
    /// `operator_progress`, `team_performance`, `cost_summary`, `trend_analysis` or
    /// `compliance`.
    pub report_type: Option<String>,
    /// What the generator reads.
    #[serde(default)]
    pub parameters: Option<Value>,
}

/// Seed endpoint 12's answer, with the log position of the event.
#[derive(Serialize, utoipa::ToSchema)]
pub struct GenerateResponse {
    /// UUID.
    pub report_id: String,
    /// Type.
    pub report_type: ReportType,
    /// Title.
    pub title: String,
    /// Generation time.
    pub generated_at: String,
    /// Position of the `ats.report.generated` event.
    pub position: u64,
}

/// Seed endpoint 12: runs the generator on the read models as they are now and appends an
/// `ats.report.generated` event with the content and the projector positions it was computed
/// at, so every later download is the same. An `Idempotency-Key` fixes the report id.
#[utoipa::path(post, path = "/api/analytics/reports/generate", tag = "reports",
    params(ReadParams),
    request_body = GenerateRequest,
    responses((status = 200, body = GenerateResponse), (status = 400, body = ErrorBody)))]
pub async fn generate(
    State(state): State<AppState>,
    Params(read): Params<ReadParams>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<GenerateResponse>, ApiError> {
    let request: GenerateRequest = serde_json::from_slice(&body).map_err(invalid_body)?;
    let report_type = match request.report_type.as_deref() {
        None => return Err(bad("report_type: required".into())),
        Some(text) => parse_type("report_type", text)?,
    };
    let raw = request.parameters.unwrap_or_else(|| json!({}));
    let parameters: ReportParameters =
        serde_json::from_value(raw.clone()).map_err(|e| bad(format!("parameters: {e}")))?;
    read.settle(&state).await?;
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let report_id = match &key {
        Some(key) => event_id(&format!("report:{key}")).to_string(),
        None => uuid::Uuid::now_v7().to_string(),
    };
    let as_of = Timestamp::now();
    let generated = reports::generate(&read_models(&state)?, report_type, &parameters, as_of)
        .map_err(|e| bad(e.to_string()))?;
    let receipt = append_report(
        &state,
        &headers,
        &report_id,
        report_type,
        raw,
        generated,
        as_of,
    )
    .await?;
    let position = receipt.positions.first().copied().unwrap_or_default();
    // Answer with the report as stored (its `generated_at` is the event's time).
    let handle = state
        .runtime
        .handle(reports::NAME)
        .ok_or_else(|| ApiError::Internal("reports projector missing".into()))?;
    if !handle.wait_for(position, MIN_POSITION_WAIT).await {
        return Err(ApiError::Timeout(format!(
            "report_id: {report_id} was appended at position {position} but is not readable yet"
        )));
    }
    let stored =
        reports::report(&handle.tree(), &report_id).ok_or_else(|| not_found(&report_id))?;
    Ok(Json(GenerateResponse {
        report_id,
        report_type,
        title: stored.title,
        generated_at: stored.generated_at,
        position,
    }))
}

/// Appends the `ats.report.generated` event of a generated report, with the positions of the
/// projectors it read (`as_of` holds them and the generation time); returns the receipt.
pub(crate) async fn append_report(
    state: &AppState,
    headers: &HeaderMap,
    report_id: &str,
    report_type: ReportType,
    parameters: Value,
    generated: reports::Generated,
    as_of: Timestamp,
) -> Result<ReceiptBody, ApiError> {
    let mut positions = serde_json::Map::new();
    for name in [profiles::NAME, progress::NAME, costs::NAME, activity::NAME] {
        if let Some(handle) = state.runtime.handle(name) {
            positions.insert(name.into(), json!(handle.status().position));
        }
    }
    positions.insert("time".into(), json!(as_of.to_rfc3339()));
    let event = json!({
        "report_id": report_id, "report_type": report_type, "parameters": parameters,
        "title": generated.title, "description": generated.description,
        "data": generated.data, "as_of": positions,
    });
    append_intent(
        state,
        EventKind::ReportGenerated,
        headers,
        event.to_string().as_bytes(),
    )
    .await
}

/// Parameters of the report list.
#[derive(Deserialize, utoipa::IntoParams)]
pub struct ListParams {
    /// Only reports of this type.
    pub report_type: Option<String>,
    /// Wait (up to 5 s) until the projectors have applied this log position.
    pub min_position: Option<u64>,
}

/// Seed endpoint 15's body.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ReportList {
    /// Newest first, ties by id.
    pub reports: Vec<ReportListItem>,
    /// How many.
    pub count: usize,
}

/// Seed endpoint 15: stored reports, newest first.
#[utoipa::path(get, path = "/api/analytics/reports", tag = "reports",
    params(ListParams),
    responses((status = 200, body = ReportList), (status = 400, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    Params(params): Params<ListParams>,
) -> Result<Json<ReportList>, ApiError> {
    let report_type = params
        .report_type
        .as_deref()
        .map(|t| parse_type("report_type", t))
        .transpose()?;
    ReadParams {
        as_of: None,
        min_position: params.min_position,
    }
    .settle(&state)
    .await?;
    let reports = reports::list(&reports_tree(&state)?, report_type);
    Ok(Json(ReportList {
        count: reports.len(),
        reports,
    }))
}

/// Seed endpoint 13: one report (404 `Report not found`).
#[utoipa::path(get, path = "/api/analytics/reports/{id}", tag = "reports",
    params(("id" = String, Path, description = "Report id"), ReadParams),
    responses((status = 200, body = Report), (status = 404, body = ErrorBody)))]
pub async fn show(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Params(read): Params<ReadParams>,
) -> Result<Json<Report>, ApiError> {
    read.settle(&state).await?;
    reports::report(&reports_tree(&state)?, &id)
        .map(Json)
        .ok_or_else(|| not_found(&id))
}

/// Parameters of a download.
#[derive(Deserialize, utoipa::IntoParams)]
pub struct DownloadParams {
    /// `json` (default), `csv`, `html` or `markdown` (those of `analytics.reporting.formats`).
    pub format: Option<String>,
    /// A registered template to render the report through, instead of a format.
    pub template: Option<String>,
    /// Wait (up to 5 s) until the projectors have applied this log position.
    pub min_position: Option<u64>,
}

/// Seed endpoint 14, fixed: the stored report rendered (byte-identical on every call and
/// after a replay); CSV is one row per record of the report's main table; HTML and Markdown
/// escape all data. 404 for an unknown report, 400 for an unknown format.
#[utoipa::path(get, path = "/api/analytics/reports/{id}/download", tag = "reports",
    params(("id" = String, Path, description = "Report id"), DownloadParams),
    responses((status = 200, description = "The report in the format", body = String),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn download(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Params(params): Params<DownloadParams>,
) -> Result<Response, ApiError> {
    /// How the report is rendered: a built-in format or a registered template.
    enum Rendering<'a> {
        Format(Format),
        Template(&'a str),
    }
    let rendering = match (params.template.as_deref(), params.format.as_deref()) {
        (Some(_), Some(_)) => {
            return Err(bad(
                "format: give either format or template, not both".into()
            ))
        }
        (Some(name), None) => Rendering::Template(name),
        (None, name) => Rendering::Format(download_format(&state, name.unwrap_or("json"))?),
    };
    ReadParams {
        as_of: None,
        min_position: params.min_position,
    }
    .settle(&state)
    .await?;
    let tree = reports_tree(&state)?;
    let report = reports::report(&tree, &id).ok_or_else(|| not_found(&id))?;
    let (body, content_type, extension) = match rendering {
        Rendering::Format(format) => (
            render::render(&report, format),
            format.content_type().to_owned(),
            // The seed's name: the format's wire string as the extension (`.markdown`).
            format.as_str(),
        ),
        Rendering::Template(name) => {
            let template = templates::get(&tree, name)
                .ok_or_else(|| ApiError::NotFound(format!("template: no template named {name}")))?;
            let body = templates::render(&report, &template).map_err(|e| {
                ApiError::InvalidEvent(format!("template: {name} cannot render this report: {e}"))
            })?;
            (
                body,
                format!("{}; charset=utf-8", template.media_type),
                templates::extension(&template.media_type),
            )
        }
    };
    let disposition = format!(
        "attachment; filename=report_{}.{extension}",
        report
            .id
            .replace(|c: char| !c.is_ascii_alphanumeric() && c != '-', "_"),
    );
    Ok((
        [
            (header::CONTENT_TYPE, content_type),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        body,
    )
        .into_response())
}

/// A download format: known, and offered by `analytics.reporting.formats`.
fn download_format(state: &AppState, name: &str) -> Result<Format, ApiError> {
    let format = Format::parse(name).ok_or_else(|| {
        bad(format!(
            "format: Invalid format: {name} (expected one of {})",
            Format::ALL.map(Format::as_str).join(", ")
        ))
    })?;
    if !state.report_formats.contains(&format) {
        let offered: Vec<&str> = state.report_formats.iter().map(|f| f.as_str()).collect();
        return Err(bad(format!(
            "format: {name} is not offered by this server (analytics.reporting.formats: {})",
            offered.join(", ")
        )));
    }
    Ok(format)
}

/// Registers a custom template (appends `ats.report.template.registered`; the same name
/// again replaces it). The source must compile: 422 naming `template` and the line otherwise.
#[utoipa::path(post, path = "/api/analytics/reports/templates", tag = "reports",
    request_body(content = ats_events::ReportTemplateRegistered, description = "ats.report.template.registered data: name, media_type (text/html escapes values), template (minijinja; the context is the report), description"),
    responses((status = 200, body = ReceiptBody), (status = 422, body = ErrorBody)))]
pub async fn register_template(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<ReceiptBody>, ApiError> {
    let request: ats_events::ReportTemplateRegistered =
        serde_json::from_slice(&body).map_err(invalid_body)?;
    templates::check(&request.template, &request.media_type)
        .map_err(|e| ApiError::InvalidEvent(format!("template: {e}")))?;
    append_intent(&state, EventKind::ReportTemplateRegistered, &headers, &body)
        .await
        .map(Json)
}

/// Registered templates.
#[derive(Serialize, utoipa::ToSchema)]
pub struct TemplateList {
    /// By name, without their sources.
    pub templates: Vec<TemplateInfo>,
    /// How many.
    pub count: usize,
}

/// Every registered template, by name.
#[utoipa::path(get, path = "/api/analytics/reports/templates", tag = "reports",
    params(ReadParams), responses((status = 200, body = TemplateList)))]
pub async fn list_templates(
    State(state): State<AppState>,
    Params(read): Params<ReadParams>,
) -> Result<Json<TemplateList>, ApiError> {
    read.settle(&state).await?;
    let templates = templates::list(&reports_tree(&state)?);
    Ok(Json(TemplateList {
        count: templates.len(),
        templates,
    }))
}

/// One template with its source.
#[utoipa::path(get, path = "/api/analytics/reports/templates/{name}", tag = "reports",
    params(("name" = String, Path, description = "Template name"), ReadParams),
    responses((status = 200, body = TemplateInfo), (status = 404, body = ErrorBody)))]
pub async fn show_template(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Params(read): Params<ReadParams>,
) -> Result<Json<TemplateInfo>, ApiError> {
    read.settle(&state).await?;
    templates::info(&reports_tree(&state)?, &name)
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("no template named {name}")))
}

/// The answer to a deletion.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Deleted {
    /// `success`.
    pub status: &'static str,
    /// The report.
    pub report_id: String,
    /// Position of the `ats.report.deleted` event.
    pub position: u64,
}

/// Deletes a report by appending `ats.report.deleted` (404 for an unknown report). The log
/// keeps the generation event; the report leaves the read model.
#[utoipa::path(delete, path = "/api/analytics/reports/{id}", tag = "reports",
    params(("id" = String, Path, description = "Report id")),
    responses((status = 200, body = Deleted), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Deleted>, ApiError> {
    if reports::report(&reports_tree(&state)?, &id).is_none() {
        return Err(not_found(&id));
    }
    let body = json!({"report_id": id}).to_string();
    let receipt =
        append_intent(&state, EventKind::ReportDeleted, &headers, body.as_bytes()).await?;
    Ok(Json(Deleted {
        status: "success",
        position: receipt.positions.first().copied().unwrap_or_default(),
        report_id: id,
    }))
}
