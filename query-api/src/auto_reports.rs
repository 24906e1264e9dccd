//! Scheduled reports of `analytics.reporting.auto_generate` (`daily_summary`, `weekly_cost`),
//! generated exactly once per period, also across restarts and nodes.
//!
//! Each period's report has a fixed id and a fixed event id (UUID v5 of the kind and the
//! period), so a second attempt — after a restart, or on another node — is a duplicate the log
//! drops (or, when late events changed the content, a conflict the log refuses): the first
//! stored report stands. The periods are the last complete ones: `daily_summary` is the
//! system-wide trend report of yesterday (UTC), `weekly_cost` the cost summary of last
//! Monday–Sunday, each computed as of the period's end.

use std::future::Future;
use std::time::Duration;

use ats_events::cloudevents::event_id;
use ats_events::{ReportType, Timestamp};
use ats_projections::costs::day_of;
use ats_projections::reports::{self, ReportParameters};
use axum::http::{HeaderMap, HeaderValue};
use chrono::Datelike;
use serde_json::json;

use crate::error::ApiError;
use crate::routes::aggregator::{read_models, tree};
use crate::routes::reports::append_report;
use crate::state::AppState;

/// How often the scheduler looks for a period without its report.
pub const CHECK_EVERY: Duration = Duration::from_secs(60);

/// A scheduled report kind (the values of `analytics.reporting.auto_generate`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AutoReport {
    /// Yesterday's system-wide trend report.
    DailySummary,
    /// Last week's cost summary.
    WeeklyCost,
}

impl AutoReport {
    /// Parses a configuration value.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "daily_summary" => Some(Self::DailySummary),
            "weekly_cost" => Some(Self::WeeklyCost),
            _ => None,
        }
    }

    /// The configuration value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::DailySummary => "daily_summary",
            Self::WeeklyCost => "weekly_cost",
        }
    }

    /// The last complete period before `now`: its name and its last instant.
    pub fn period(self, now: Timestamp) -> (String, Timestamp) {
        let today = now.to_datetime().date_naive();
        let back_days = match self {
            Self::DailySummary => 0,
            Self::WeeklyCost => i64::from(today.weekday().num_days_from_monday()),
        };
        let start_of_current = today
            .and_hms_opt(0, 0, 0)
            .map(|t| Timestamp::from(t.and_utc()))
            .unwrap_or(now)
            .plus_seconds(-back_days * 86_400);
        let end = Timestamp::from_micros(start_of_current.micros() - 1);
        let name = match self {
            Self::DailySummary => day_of(end),
            Self::WeeklyCost => format!("week-{}", day_of(end.plus_seconds(-6 * 86_400))),
        };
        (name, end)
    }

    /// The report id of a period.
    pub fn report_id(self, period: &str) -> String {
        event_id(&format!("auto-report:{}:{period}", self.as_str())).to_string()
    }
}

/// Generates the report of `kind`'s last complete period before `now` unless it exists;
/// returns its id when this call appended it.
pub async fn ensure(
    state: &AppState,
    kind: AutoReport,
    now: Timestamp,
) -> Result<Option<String>, ApiError> {
    let (period, end) = kind.period(now);
    let report_id = kind.report_id(&period);
    if reports::report(&tree(state, reports::NAME)?, &report_id).is_some() {
        return Ok(None);
    }
    let (report_type, raw) = match kind {
        AutoReport::DailySummary => (ReportType::TrendAnalysis, json!({"time_range_days": 1})),
        AutoReport::WeeklyCost => (ReportType::CostSummary, json!({"time_range_days": 7})),
    };
    let parameters: ReportParameters = serde_json::from_value(raw.clone())
        .map_err(|e| ApiError::Internal(format!("auto report parameters: {e}")))?;
    let mut generated = reports::generate(&read_models(state)?, report_type, &parameters, end)
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    generated.title = match kind {
        AutoReport::DailySummary => format!("Daily Summary: {period}"),
        AutoReport::WeeklyCost => format!("Weekly Cost: {}", &period["week-".len()..]),
    };
    let mut headers = HeaderMap::new();
    let key = HeaderValue::from_str(&format!("auto-{}-{period}", kind.as_str()))
        .map_err(|e| ApiError::Internal(format!("idempotency key: {e}")))?;
    headers.insert("idempotency-key", key);
    let mut raw = raw;
    raw["auto_generate"] = json!(kind.as_str());
    raw["period"] = json!(period);
    match append_report(
        state,
        &headers,
        &report_id,
        report_type,
        raw,
        generated,
        end,
    )
    .await
    {
        // A duplicate: an earlier run appended the same report (its tree is behind).
        Ok(receipt) if !receipt.duplicates.is_empty() => Ok(None),
        Ok(_) => Ok(Some(report_id)),
        // Another node or an earlier run stored this period's report with other content.
        Err(ApiError::Conflict(_)) => Ok(None),
        Err(other) => Err(other),
    }
}

/// Checks every [`CHECK_EVERY`] (and at once) until `shutdown` resolves, generating the
/// missing period reports of `kinds`; failures are logged and retried at the next check.
pub async fn run(state: AppState, kinds: Vec<AutoReport>, shutdown: impl Future<Output = ()>) {
    tokio::pin!(shutdown);
    loop {
        for kind in &kinds {
            if let Err(error) = ensure(&state, *kind, Timestamp::now()).await {
                tracing::warn!(message = "Scheduled report not generated.", kind = kind.as_str(), %error);
            }
        }
        tokio::select! {
            () = &mut shutdown => return,
            () = tokio::time::sleep(CHECK_EVERY) => {}
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a test fails by panicking
mod tests {
    use super::*;

    fn t(text: &str) -> Timestamp {
        Timestamp::parse_rfc3339(text).unwrap()
    }

    #[test]
    fn periods_are_the_last_complete_day_and_week() {
        // Wednesday 2026-11-11.
        let now = t("2026-11-11T09:00:00Z");
        let (day, end) = AutoReport::DailySummary.period(now);
        assert_eq!(day, "2026-11-10");
        assert_eq!(end.to_rfc3339(), "2026-11-10T23:59:59.999999Z");
        let (week, end) = AutoReport::WeeklyCost.period(now);
        assert_eq!(week, "week-2026-11-02");
        assert_eq!(end.to_rfc3339(), "2026-11-08T23:59:59.999999Z");
        // On a Monday the week just ended is the last complete one.
        let (week, _) = AutoReport::WeeklyCost.period(t("2026-11-09T00:00:00Z"));
        assert_eq!(week, "week-2026-11-02");
        assert_eq!(
            AutoReport::parse("weekly_cost"),
            Some(AutoReport::WeeklyCost)
        );
        assert_eq!(AutoReport::parse("monthly"), None);
    }
}
