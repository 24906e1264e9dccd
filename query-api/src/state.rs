//! Shared state of every handler.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use ats_commands::intake::Limits;
use ats_ingest::EventLog;
use ats_projections::runtime::Runtime;

/// Counters for `/metrics`, incremented per request (never per event on a hot path).
#[derive(Debug, Default)]
pub struct Counters {
    /// Events appended through the API.
    pub events_appended: AtomicU64,
    /// Events that were duplicates.
    pub events_duplicate: AtomicU64,
    /// Batches appended.
    pub batches_appended: AtomicU64,
    /// Refused submissions.
    pub submissions_rejected: AtomicU64,
}

impl Counters {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// Everything a handler needs; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The log (writes go through `ats-commands` intake into it).
    pub log: Arc<dyn EventLog>,
    /// The projectors and their read models.
    pub runtime: Arc<Runtime>,
    /// Intake limits.
    pub limits: Limits,
    /// Request counters.
    pub counters: Arc<Counters>,
    /// `analytics.alerts.budget_thresholds`: filled into budgets set through the API without
    /// thresholds (a fold cannot read configuration).
    pub budget_thresholds: Vec<f64>,
    /// Request timeout and concurrency limit, read when [`crate::app`] builds the router.
    pub http: crate::HttpLimits,
    /// `analytics.alerts.performance_threshold`: a recent average score below it raises a
    /// performance alert (evaluated at query time, so changing it needs no replay).
    pub performance_threshold: f64,
    /// API keys and rate limits (issue 9).
    pub auth: Arc<crate::auth::Auth>,
    /// `analytics.reporting.formats`: the formats reports may be downloaded in.
    pub report_formats: Vec<ats_projections::reports::render::Format>,
    /// A directory on disk for scratch stores (the what-if replays), each removed when its
    /// answer is ready; `serve` uses `<data>/scratch`.
    pub scratch: std::path::PathBuf,
}

impl AppState {
    /// State over a log and a running projector runtime.
    pub fn new(log: Arc<dyn EventLog>, runtime: Arc<Runtime>) -> Self {
        Self {
            log,
            runtime,
            limits: Limits::default(),
            counters: Arc::default(),
            budget_thresholds: vec![0.75, 0.9, 1.0],
            http: crate::HttpLimits::default(),
            performance_threshold: ats_projections::alerts::DEFAULT_PERFORMANCE_THRESHOLD,
            // Secure by default: no key in memory, so only stored keys get in.
            auth: Arc::new(crate::auth::Auth::new(
                Vec::new(),
                crate::auth::DEFAULT_RATE_LIMIT_PER_MINUTE,
            )),
            report_formats: ats_projections::reports::render::Format::ALL.to_vec(),
            scratch: std::env::temp_dir(),
        }
    }
}
