//! `POST /api/events` (CloudEvents intake) and `GET /api/events/schema`.

use ats_ingest::intake::{submit, Receipt};
use axum::body::Bytes;
use axum::extract::State;
use axum::Json;

use ats_events::{EventKind, Timestamp};
use axum::http::HeaderMap;

use crate::auth::Access;
use crate::error::{ApiError, ErrorBody};
use crate::routes::Routes;
use crate::state::{AppState, Counters};

pub fn routes() -> Routes {
    Routes::new()
        .post("/api/events", Access::INGEST, post_events)
        .get("/api/events/schema", Access::Public, schema)
}

/// The answer to an accepted submission.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ReceiptBody {
    /// Log position of each submitted event, in order.
    pub positions: Vec<u64>,
    /// UUIDs of submitted events the log already held.
    pub duplicates: Vec<String>,
}

impl From<Receipt> for ReceiptBody {
    fn from(r: Receipt) -> Self {
        Self {
            positions: r.positions,
            duplicates: r.duplicates.iter().map(ToString::to_string).collect(),
        }
    }
}

/// Appends one CloudEvent (an object) or a batch (an array; `application/cloudevents-batch+json`),
/// all or nothing. Pass the highest returned position as `min_position` to read your writes.
#[utoipa::path(post, path = "/api/events", tag = "events",
    request_body(content = Object, description = "A CloudEvent or an array of them; see /api/events/schema"),
    responses(
        (status = 200, body = ReceiptBody),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 409, description = "An event id already holds other content", body = ErrorBody),
        (status = 413, description = "Too many events or bytes", body = ErrorBody),
        (status = 422, description = "An event breaks a rule; the message names events[i].field", body = ErrorBody),
        (status = 503, description = "The log is unavailable; nothing was appended", body = ErrorBody)))]
pub async fn post_events(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Json<ReceiptBody>, ApiError> {
    match submit(state.log.as_ref(), &body, &state.limits).await {
        Ok(receipt) => {
            let counters = &state.counters;
            Counters::add(&counters.batches_appended, 1);
            Counters::add(&counters.events_duplicate, receipt.duplicates.len() as u64);
            Counters::add(
                &counters.events_appended,
                (receipt.positions.len() - receipt.duplicates.len()) as u64,
            );
            Ok(Json(receipt.into()))
        }
        Err(err) => {
            Counters::add(&state.counters.submissions_rejected, 1);
            Err(err.into())
        }
    }
}

/// The JSON Schema (2020-12) of every event kind this engine accepts.
#[utoipa::path(get, path = "/api/events/schema", tag = "events",
    responses((status = 200, description = "JSON Schema", body = Object)))]
pub async fn schema() -> Json<serde_json::Value> {
    Json(ats_events::schema::event_json_schema())
}

/// Appends the event of `kind` an intent body describes (`POST /api/analytics/benchmarks`,
/// …), through `ats-commands` and the log like `POST /api/events`. An `Idempotency-Key`
/// header makes retries safe. Errors name the body's field (422).
pub(crate) async fn append_intent(
    state: &AppState,
    kind: EventKind,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<ReceiptBody, ApiError> {
    let key = headers
        .get("idempotency-key")
        .map(|v| {
            v.to_str().map_err(|_| ApiError::BadRequest {
                code: "invalid_header",
                message: "Idempotency-Key: must be visible ASCII".into(),
            })
        })
        .transpose()?;
    let event = ats_commands::intents::from_body(kind, body, key, Timestamp::now())
        .map_err(|e| ApiError::InvalidEvent(e.to_string()))?;
    let outcome = state
        .log
        .append(vec![event])
        .await
        .map_err(|e| ApiError::from(ats_ingest::intake::SubmitError::Log(e)))?;
    Counters::add(&state.counters.batches_appended, 1);
    Counters::add(
        &state.counters.events_appended,
        (outcome.positions.len() - outcome.duplicates.len()) as u64,
    );
    Ok(Receipt::from(outcome).into())
}
