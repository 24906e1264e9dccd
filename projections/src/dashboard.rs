//! The analytics aggregator of §B8: the dashboard summary, the trend calculator and the
//! dashboard data, computed at query time from the read models with an explicit `as_of`.
//!
//! Nothing here is cached, so nothing is stale: every figure is a range scan over day buckets
//! (`activity_v1` for sessions, `costs_v5` for spend) or a top-k read of an ordered
//! leaderboard (`progress_v2`); the operator count, the achievements total and the mean level
//! come from sums the folds keep (`profiles::counts`, `progress::totals`). Windows are whole UTC days, as every cost window: `n` days means the `n` days
//! ending with the day of `as_of` (the seed's `start_time >= now - n days` also took part of
//! the day before).

use std::collections::BTreeMap;

use ats_events::Timestamp;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::activity::{self, DayStats};
use crate::alerts::{ActiveAlerts, Alert};
use crate::costs::{self, Dim};
use crate::profiles;
use crate::progress::{self, Board, LeaderboardEntry};

/// The trees the aggregator reads (each a projector's current tree).
#[derive(Clone)]
pub struct ReadModels {
    /// `profiles_v3`.
    pub profiles: sled::Tree,
    /// `progress_v2`.
    pub progress: sled::Tree,
    /// `costs_v5`.
    pub costs: sled::Tree,
    /// `activity_v1`.
    pub activity: sled::Tree,
}

/// Python's `round(x, digits)`: the exact decimal expansion of the double, rounded half to
/// even (what Rust's fixed-precision formatting does).
pub fn round_to(x: f64, digits: usize) -> f64 {
    format!("{x:.digits$}").parse().unwrap_or(x)
}

/// One day of the performance trend.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ScorePoint {
    /// UTC day (`YYYY-MM-DD`) the sessions started.
    pub date: String,
    /// Mean score that day, rounded to 3 decimals (the seed's rounding).
    pub average_score: f64,
    /// Sessions that started that day.
    pub session_count: u64,
}

/// Seed `calculate_performance_trend`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PerformanceTrend {
    /// `improving`, `declining`, `stable` or `insufficient_data`.
    pub trend: String,
    /// Days with sessions, in order (days without sessions are absent, as in the seed).
    pub data_points: Vec<ScorePoint>,
    /// The window (always present; the seed left it out without data, §B14.28).
    pub period_days: u32,
}

/// One day of the cost trend.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CostPoint {
    /// UTC day.
    pub date: String,
    /// Spend that day in USD, rounded to cents.
    pub cost: f64,
}

/// Seed `calculate_cost_trend`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CostTrend {
    /// `increasing`, `decreasing`, `stable` or `insufficient_data`.
    pub trend: String,
    /// Days with spend, in order.
    pub data_points: Vec<CostPoint>,
    /// Spend over the window (the unrounded daily sums, rounded once).
    pub total_cost: f64,
    /// The window.
    pub period_days: u32,
}

/// The seed's halves: the mean of the first `n / 2` values against the mean of the rest
/// (`None` with fewer than 2 values).
fn halves(values: &[f64]) -> Option<(f64, f64)> {
    if values.len() < 2 {
        return None;
    }
    let mid = values.len() / 2;
    Some((
        crate::analytics::mean(&values[..mid]),
        crate::analytics::mean(&values[mid..]),
    ))
}

/// Seed `calculate_performance_trend(operator_id, period_days)` over sessions that started in
/// the `period_days` days ending with `as_of`'s day. The halves compare the rounded daily
/// means, unweighted by sessions, as the seed does.
pub fn performance_trend(
    activity: &sled::Tree,
    operator: Option<&str>,
    period_days: u32,
    as_of: Timestamp,
) -> PerformanceTrend {
    let days = activity::days(activity, operator, &activity::window(period_days, as_of));
    let data_points: Vec<ScorePoint> = days
        .iter()
        .map(|(date, stats)| ScorePoint {
            date: date.clone(),
            average_score: round_to(stats.average_score(), 3),
            session_count: stats.sessions,
        })
        .collect();
    let values: Vec<f64> = data_points.iter().map(|p| p.average_score).collect();
    let trend = match halves(&values) {
        None => "insufficient_data",
        Some((first, second)) if second > first * 1.1 => "improving",
        Some((first, second)) if second < first * 0.9 => "declining",
        Some(_) => "stable",
    };
    PerformanceTrend {
        trend: trend.into(),
        data_points,
        period_days,
    }
}

/// Seed `calculate_cost_trend(period_days)` over the day buckets of `costs_v5`.
pub fn cost_trend(costs_tree: &sled::Tree, period_days: u32, as_of: Timestamp) -> CostTrend {
    let window = costs::Window::new(Some(period_days), as_of);
    let days = costs::scan(costs_tree, Dim::Day, &window);
    let total: f64 = days.values().map(|u| u.cost).sum();
    let data_points: Vec<CostPoint> = days
        .iter()
        .map(|(date, usage)| CostPoint {
            date: date.clone(),
            cost: round_to(usage.cost, 2),
        })
        .collect();
    let values: Vec<f64> = data_points.iter().map(|p| p.cost).collect();
    let trend = match halves(&values) {
        None => "insufficient_data",
        Some((first, second)) if second > first * 1.2 => "increasing",
        Some((first, second)) if second < first * 0.8 => "decreasing",
        Some(_) => "stable",
    };
    CostTrend {
        trend: trend.into(),
        data_points,
        total_cost: round_to(total, 2),
        period_days,
    }
}

/// Seed `get_dashboard_summary()`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DashboardSummary {
    /// Sessions started (`ats.session.started`) and not completed.
    pub active_sessions: u64,
    /// Hours of sessions that started on `as_of`'s UTC day, rounded to 0.01.
    pub today_training_hours: f64,
    /// Spend over the 7 days ending with `as_of`'s day, rounded to cents.
    pub week_cost: f64,
    /// Operators with a profile.
    pub total_operators: u64,
    /// Achievements unlocked, all operators.
    pub total_achievements: u64,
    /// Mean level over the operators, rounded to 0.1 (0 without operators).
    pub average_operator_level: f64,
    /// % of the sessions of those 7 days that succeeded, rounded to 0.1 (0 without sessions).
    pub success_rate_7d: f64,
    /// `week_cost` per session of those 7 days: `neutral` (no session), `improving` (< $1),
    /// `declining` (> $2), else `stable`.
    pub cost_efficiency_trend: String,
    /// The `as_of` instant.
    pub last_updated: String,
}

/// The summary as of `as_of`.
pub fn summary(models: &ReadModels, as_of: Timestamp) -> DashboardSummary {
    let today = activity::total(&models.activity, None, &activity::window(1, as_of));
    let week = activity::total(&models.activity, None, &activity::window(7, as_of));
    let week_cost = round_to(
        costs::scan(&models.costs, Dim::Day, &costs::Window::new(Some(7), as_of))
            .values()
            .map(|u| u.cost)
            .sum(),
        2,
    );
    // Sums the folds keep, not a pass over every operator. Every event about an operator
    // makes both its profile and its progress exist, so an operator with a profile but no
    // progress (one whose only event progress refused) counts at level 1, without XP.
    let operators = profiles::counts(&models.profiles).operators;
    let totals = progress::totals(&models.progress);
    let without_progress = operators.saturating_sub(totals.operators);
    let levels = totals.levels + without_progress * progress::level(0);
    let average_operator_level = if operators == 0 {
        0.0
    } else {
        round_to(levels as f64 / operators as f64, 1)
    };
    DashboardSummary {
        active_sessions: activity::active_sessions(&models.activity) as u64,
        today_training_hours: round_to(today.hours, 2),
        week_cost,
        total_operators: operators,
        total_achievements: totals.achievements,
        average_operator_level,
        success_rate_7d: success_rate(&week),
        cost_efficiency_trend: cost_efficiency(week_cost, week.sessions).into(),
        last_updated: as_of.to_rfc3339(),
    }
}

fn success_rate(stats: &DayStats) -> f64 {
    if stats.sessions == 0 {
        0.0
    } else {
        round_to(stats.successes as f64 / stats.sessions as f64 * 100.0, 1)
    }
}

fn cost_efficiency(week_cost: f64, sessions: u64) -> &'static str {
    if sessions == 0 {
        return "neutral";
    }
    let per_session = week_cost / sessions as f64;
    if per_session < 1.0 {
        "improving"
    } else if per_session > 2.0 {
        "declining"
    } else {
        "stable"
    }
}

/// Seed `get_dashboard_data()`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DashboardData {
    /// The summary.
    pub summary: DashboardSummary,
    /// Scores over 7 days (sessions and mean score per day).
    pub performance_trend_7d: PerformanceTrend,
    /// Scores over 30 days.
    pub performance_trend_30d: PerformanceTrend,
    /// Spend per day over 7 days.
    pub cost_trend_7d: CostTrend,
    /// Spend per day over 30 days.
    pub cost_trend_30d: CostTrend,
    /// Top 10 by XP (ties by operator id).
    pub xp_leaderboard: Vec<LeaderboardEntry>,
    /// Top 10 by hours rounded to 0.1.
    pub activity_leaderboard: Vec<LeaderboardEntry>,
    /// The [`DASHBOARD_ALERTS`] most urgent unacknowledged alerts, most urgent first
    /// (`GET /api/analytics/alerts` lists them all).
    pub active_alerts: Vec<Alert>,
    /// How many unacknowledged alerts there are.
    pub active_alerts_total: u64,
    /// The [`DASHBOARD_ALERTS`] most urgent critical ones among them.
    pub critical_alerts: Vec<Alert>,
    /// How many of them are critical.
    pub critical_alerts_total: u64,
}

/// How many alerts of each list the dashboard carries. The seed returned every active
/// alert; a dashboard shows the most urgent and a count, so its size (and cost) does not
/// grow with the number of operators below the threshold.
pub const DASHBOARD_ALERTS: usize = 20;

/// The dashboard as of `as_of`, around the active alerts summarized by the caller (with
/// [`DASHBOARD_ALERTS`] of each list, see [`crate::alerts::active_summary`]).
pub fn dashboard(models: &ReadModels, alerts: ActiveAlerts, as_of: Timestamp) -> DashboardData {
    DashboardData {
        summary: summary(models, as_of),
        performance_trend_7d: performance_trend(&models.activity, None, 7, as_of),
        performance_trend_30d: performance_trend(&models.activity, None, 30, as_of),
        cost_trend_7d: cost_trend(&models.costs, 7, as_of),
        cost_trend_30d: cost_trend(&models.costs, 30, as_of),
        xp_leaderboard: progress::leaderboard(&models.progress, Board::Xp, None, 10),
        activity_leaderboard: progress::leaderboard(&models.progress, Board::Activity, None, 10),
        active_alerts: alerts.most_urgent,
        active_alerts_total: alerts.total,
        critical_alerts: alerts.critical,
        critical_alerts_total: alerts.critical_total,
    }
}

/// `GET /api/analytics/trends` (§B11 row 9): the performance trend (system-wide or of one
/// operator) and the cost trend over `period_days`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Trends {
    /// Scores.
    pub performance_trend: PerformanceTrend,
    /// Spend (system-wide, as the seed: usage is not filtered by operator).
    pub cost_trend: CostTrend,
    /// The window.
    pub period_days: u32,
}

/// Both trends.
pub fn trends(
    models: &ReadModels,
    operator: Option<&str>,
    period_days: u32,
    as_of: Timestamp,
) -> Trends {
    Trends {
        performance_trend: performance_trend(&models.activity, operator, period_days, as_of),
        cost_trend: cost_trend(&models.costs, period_days, as_of),
        period_days,
    }
}

/// Totals for `GET /api/analytics/health` (§B11 row 25).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct HealthStats {
    /// Operators with a profile.
    pub total_operators: u64,
    /// Completed sessions.
    pub total_sessions: u64,
    /// Metric points.
    pub total_metrics: u64,
    /// Reports stored.
    pub cached_reports: u64,
    /// Unacknowledged alerts.
    pub active_alerts: u64,
}

/// Counts of the profiles tree and the caller's report and alert counts.
pub fn health_stats(models: &ReadModels, reports: u64, active_alerts: u64) -> HealthStats {
    let profiles::Counts {
        operators,
        sessions,
        metrics,
        ..
    } = profiles::counts(&models.profiles);
    HealthStats {
        total_operators: operators,
        total_sessions: sessions,
        total_metrics: metrics,
        cached_reports: reports,
        active_alerts,
    }
}

/// Daily sums keyed by day, exposed for reports that chart a series.
pub fn sessions_per_day(
    activity: &sled::Tree,
    period_days: u32,
    as_of: Timestamp,
) -> BTreeMap<String, DayStats> {
    activity::days(activity, None, &activity::window(period_days, as_of))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a test fails by panicking
pub(crate) mod tests;
