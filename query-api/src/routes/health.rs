//! `/healthz`, `/readyz` and Prometheus `/metrics`.

use std::fmt::Write;
use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};

use crate::auth::Access;
use crate::routes::Routes;
use crate::state::AppState;

pub fn routes() -> Routes {
    Routes::new()
        .get("/healthz", Access::Public, healthz)
        .get("/readyz", Access::Public, readyz)
        .get("/metrics", Access::READ, metrics)
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "health", responses((status = 200)))]
pub async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok"}))
}

/// Ready when the log answers, can take writes ([`ats_ingest::EventLog::health`]: NATS
/// connected, the last embedded commit succeeded) and every projector is live (caught up).
/// On JetStream `log.indexed` says how far the node's id index has read the stream: the
/// projectors wait for it, so a fresh node on a long stream shows its progress there.
#[utoipa::path(get, path = "/readyz", tag = "health",
    responses((status = 200, description = "Ready"), (status = 503, description = "Not ready")))]
pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let log = state.log.head().await;
    let projectors: Vec<serde_json::Value> = state
        .runtime
        .handles()
        .iter()
        .map(|h| {
            let s = h.status();
            serde_json::json!({"name": s.name, "state": s.state, "position": s.position, "lag_events": s.lag_events})
        })
        .collect();
    // Reads can work while writes cannot (NATS away with a cached head, a disk that refused
    // the last commit): the log's own health counts too.
    let log = state.log.health().and(log);
    let ready = log
        .as_ref()
        .is_ok_and(|head| state.runtime.caught_up(*head));
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let mut log_state = match &log {
        Ok(head) => serde_json::json!({"backend": state.log.backend(), "head": head}),
        Err(err) => serde_json::json!({"backend": state.log.backend(), "error": err.to_string()}),
    };
    if let Some(indexed) = state.log.indexed() {
        log_state["indexed"] = indexed.into();
    }
    let body = serde_json::json!({
        "ready": ready,
        "log": log_state,
        "projectors": projectors,
    });
    (status, Json(body))
}

/// A per-projector gauge: name, help text, and how to read it from a status.
type Gauge = (
    &'static str,
    &'static str,
    fn(&ats_projections::runtime::ProjectorStatus) -> f64,
);

/// Prometheus text exposition. Labels are bounded sets (projector, log backend, state).
#[utoipa::path(get, path = "/metrics", tag = "health", responses((status = 200, content_type = "text/plain")))]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let c = &state.counters;
    let backend = state.log.backend();
    let mut out = String::new();
    let mut counter = |name: &str, help: &str, value: u64| {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} counter\n{name}{{log=\"{backend}\"}} {value}"
        );
    };
    counter(
        "ats_events_appended_total",
        "Events appended through the API.",
        c.events_appended.load(Ordering::Relaxed),
    );
    counter(
        "ats_events_duplicate_total",
        "Submitted events the log already held.",
        c.events_duplicate.load(Ordering::Relaxed),
    );
    counter(
        "ats_append_batches_total",
        "Batches appended through the API.",
        c.batches_appended.load(Ordering::Relaxed),
    );
    counter(
        "ats_submissions_rejected_total",
        "Refused submissions.",
        c.submissions_rejected.load(Ordering::Relaxed),
    );
    counter(
        "ats_anomaly_baselines_computed_total",
        "Spend anomaly baselines read whole (the cold part of a dashboard; the warm-up pays it).",
        ats_projections::costs::anomalies::baselines_computed(),
    );
    if let Ok(head) = state.log.head().await {
        let _ = writeln!(out, "# HELP ats_log_head_position Position of the last event.\n# TYPE ats_log_head_position gauge\nats_log_head_position{{log=\"{backend}\"}} {head}");
    }
    let statuses: Vec<_> = state.runtime.handles().iter().map(|h| h.status()).collect();
    let gauges: [Gauge; 5] = [
        (
            "ats_projector_position",
            "Last applied log position.",
            |s| s.position as f64,
        ),
        ("ats_projector_lag_events", "Events behind the head.", |s| {
            s.lag_events as f64
        }),
        (
            "ats_projector_lag_seconds",
            "Age of the last applied event while behind.",
            |s| s.lag_seconds,
        ),
        (
            "ats_projector_dead_letters",
            "Events the projector could not apply.",
            |s| s.dead_letters as f64,
        ),
        (
            "ats_projector_heartbeat_seconds",
            "Unix time of the loop's last turn.",
            |s| s.heartbeat.micros() as f64 / 1e6,
        ),
    ];
    for (name, help, value) in gauges {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        for s in &statuses {
            let _ = writeln!(out, "{name}{{projector=\"{}\"}} {}", s.name, value(s));
        }
    }
    let _ = writeln!(
        out,
        "# HELP ats_projector_up 1 when the projector is live.\n# TYPE ats_projector_up gauge"
    );
    for s in &statuses {
        let live = u8::from(s.state == ats_projections::runtime::ProjectorState::Live);
        let _ = writeln!(out, "ats_projector_up{{projector=\"{}\"}} {live}", s.name);
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out)
}

/// The API of a process still connecting to its log (`serve --nats` before NATS answers):
/// `/healthz` is up, `/readyz` and everything else answer 503 with `why` (updated by the
/// caller on each attempt), so orchestrators see a live process that is not ready yet.
pub fn starting(why: tokio::sync::watch::Receiver<String>) -> Router {
    let not_ready = move || {
        let why = why.borrow().clone();
        async move {
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(serde_json::json!({"ready": false, "log": {"error": why}, "projectors": []})),
            )
        }
    };
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(not_ready))
        .fallback(|| async {
            crate::ApiError::Unavailable(
                "starting: the event log is not connected yet; see /readyz".into(),
            )
        })
}
