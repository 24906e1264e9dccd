//! Given this history, this dashboard: every number computed by hand.

use ats_events::cloudevents::event_id;
use ats_events::{
    BudgetPeriod, BudgetScope, BudgetSet, Envelope, LlmUsage, Payload, Timestamp, XpAwarded,
};

use super::*;
use crate::activity::tests::{completed, fold_with, started, t};
use crate::activity::ActivityProjector;
use crate::alerts::{AlertPriority, AlertType};
use crate::costs::CostsProjector;
use crate::profiles::ProfilesProjector;
use crate::progress::ProgressProjector;
use crate::runtime::Projector;

fn close(a: f64, b: f64) {
    assert!((a - b).abs() < 1e-9, "{a} != {b}");
}

/// Usage by `profile` at `at` with a producer cost.
pub(crate) fn usage(id: &str, at: &str, profile: &str, cost: f64) -> Envelope {
    Envelope::new(
        event_id(id),
        t(at),
        "tests",
        Payload::LlmUsage(LlmUsage {
            model: "openai/gpt-4o".into(),
            profile_id: profile.into(),
            session_id: format!("{profile}-llm"),
            task_type: "reconnaissance".into(),
            input_tokens: 100,
            output_tokens: 10,
            cached_input_tokens: 0,
            latency_ms: None,
            success: true,
            error_message: None,
            scenario_id: None,
            phase: None,
            cost: Some(cost),
        }),
    )
}

/// A monthly budget of `amount` for profile `entity` with the default thresholds.
pub(crate) fn budget(id: &str, at: &str, entity: &str, amount: f64) -> Envelope {
    Envelope::new(
        event_id(id),
        t(at),
        "tests",
        Payload::BudgetSet(BudgetSet {
            scope: BudgetScope::Profile,
            entity_id: Some(entity.into()),
            amount,
            period: BudgetPeriod::Monthly,
            thresholds: Vec::new(),
        }),
    )
}

/// Two operators over ten days of November 2026 (as of the 10th, noon):
/// op_a: s1 11-04 1 h 0.5 ok, s2 11-09 2 h 0.9 ok, s3 11-10 1.5 h 0.7 failed;
/// op_b: s4 11-10 0.5 h 0.4 failed, s5 started and running, 300 XP granted;
/// op_a's spend: $5 (11-03), $1.25 (11-05), $0.75 (11-09), $3 (11-10) against a $4
/// monthly budget set on 11-01.
pub(crate) fn history() -> Vec<Envelope> {
    vec![
        budget("b1", "2026-11-01T00:00:00Z", "op_a", 4.0),
        usage("u1", "2026-11-03T10:00:00Z", "op_a", 5.0),
        completed("s1", "op_a", "2026-11-04T10:00:00Z", 1.0, 0.5, true),
        usage("u2", "2026-11-05T10:00:00Z", "op_a", 1.25),
        completed("s2", "op_a", "2026-11-09T10:00:00Z", 2.0, 0.9, true),
        usage("u3", "2026-11-09T10:00:00Z", "op_a", 0.75),
        completed("s3", "op_a", "2026-11-10T08:00:00Z", 1.5, 0.7, false),
        completed("s4", "op_b", "2026-11-10T09:00:00Z", 0.5, 0.4, false),
        started("s5", "op_b", "2026-11-10T11:00:00Z"),
        usage("u4", "2026-11-10T11:00:00Z", "op_a", 3.0),
        Envelope::new(
            event_id("xp1"),
            t("2026-11-10T11:30:00Z"),
            "tests",
            Payload::XpAwarded(XpAwarded {
                operator_id: "op_b".into(),
                amount: 300,
                reason: "mentoring".into(),
            }),
        ),
    ]
}

/// The read models of `events`.
pub(crate) fn models(events: &[Envelope]) -> ReadModels {
    let fold = |p: &dyn Projector| fold_with(p, events);
    ReadModels {
        profiles: fold(&ProfilesProjector),
        progress: fold(&ProgressProjector),
        costs: fold(&CostsProjector),
        activity: fold(&ActivityProjector),
    }
}

pub(crate) fn as_of() -> Timestamp {
    t("2026-11-10T12:00:00Z")
}

#[test]
fn summary_of_the_history() {
    let s = summary(&models(&history()), as_of());
    assert_eq!(s.active_sessions, 1);
    close(s.today_training_hours, 2.0);
    // 11-04..11-10: 1.25 + 0.75 + 3; the $5 of 11-03 is 8 days back.
    close(s.week_cost, 5.0);
    assert_eq!(s.total_operators, 2);
    // First Steps for both; levels 2 (100 XP) and 3 (400 XP).
    assert_eq!(s.total_achievements, 2);
    close(s.average_operator_level, 2.5);
    // s1, s2 ok; s3, s4 failed.
    close(s.success_rate_7d, 50.0);
    // $5 / 4 sessions = $1.25.
    assert_eq!(s.cost_efficiency_trend, "stable");
    assert_eq!(s.last_updated, "2026-11-10T12:00:00Z");
}

#[test]
fn summary_of_nothing_is_neutral() {
    let s = summary(&models(&[]), as_of());
    assert_eq!(s.total_operators, 0);
    close(s.average_operator_level, 0.0);
    close(s.success_rate_7d, 0.0);
    assert_eq!(s.cost_efficiency_trend, "neutral");
}

#[test]
fn performance_trend_compares_halves_of_daily_means() {
    let m = models(&history());
    let week = performance_trend(&m.activity, None, 7, as_of());
    let points: Vec<(&str, f64, u64)> = week
        .data_points
        .iter()
        .map(|p| (p.date.as_str(), p.average_score, p.session_count))
        .collect();
    assert_eq!(
        points,
        [
            ("2026-11-04", 0.5, 1),
            ("2026-11-09", 0.9, 1),
            ("2026-11-10", 0.55, 2)
        ]
    );
    // first half [0.5], second (0.9 + 0.55) / 2 = 0.725 > 0.55.
    assert_eq!(week.trend, "improving");
    assert_eq!(week.period_days, 7);
    // Two days: 11-09 and 11-10 only; 0.55 < 0.9 × 0.9.
    assert_eq!(
        performance_trend(&m.activity, None, 2, as_of()).trend,
        "declining"
    );
    let b = performance_trend(&m.activity, Some("op_b"), 30, as_of());
    assert_eq!(b.trend, "insufficient_data");
    assert_eq!(b.data_points.len(), 1);
    let none = performance_trend(&m.activity, Some("op_x"), 30, as_of());
    assert_eq!(none.trend, "insufficient_data");
    assert!(none.data_points.is_empty());
    assert_eq!(none.period_days, 30);
}

#[test]
fn cost_trend_honours_period_days() {
    let m = models(&history());
    let week = cost_trend(&m.costs, 7, as_of());
    let costs: Vec<f64> = week.data_points.iter().map(|p| p.cost).collect();
    assert_eq!(costs, [1.25, 0.75, 3.0]);
    // 1.25 against (0.75 + 3) / 2 = 1.875 > 1.25 × 1.2.
    assert_eq!(week.trend, "increasing");
    close(week.total_cost, 5.0);
    let month = cost_trend(&m.costs, 30, as_of());
    // (5 + 1.25) / 2 = 3.125 against 1.875 < 3.125 × 0.8.
    assert_eq!(month.trend, "decreasing");
    close(month.total_cost, 10.0);
    assert_eq!(cost_trend(&m.costs, 1, as_of()).trend, "insufficient_data");
}

#[test]
fn dashboard_holds_leaderboards_trends_and_alerts() {
    let m = models(&history());
    let d = dashboard(&m, ActiveAlerts::of_sorted([], DASHBOARD_ALERTS), as_of());
    let xp: Vec<(&str, Option<u64>, Option<u64>)> = d
        .xp_leaderboard
        .iter()
        .map(|e| (e.operator_id.as_str(), e.xp, e.level))
        .collect();
    assert_eq!(
        xp,
        [("op_b", Some(400), Some(3)), ("op_a", Some(100), Some(2))]
    );
    assert_eq!(d.activity_leaderboard[0].operator_id, "op_a");
    assert_eq!(d.cost_trend_30d.data_points.len(), 4);
    assert_eq!(d.performance_trend_30d.data_points.len(), 3);
    assert!(d.active_alerts.is_empty() && d.critical_alerts.is_empty());
    assert_eq!((d.active_alerts_total, d.critical_alerts_total), (0, 0));
}

/// The dashboard carries the most urgent [`DASHBOARD_ALERTS`] of each list and counts them
/// all: its size does not grow with the alerts.
#[test]
fn dashboard_carries_the_most_urgent_alerts_and_counts_them_all() {
    let alert = |i: usize| Alert {
        id: format!("a{i:03}"),
        alert_type: AlertType::PerformanceIssue,
        priority: if i < 25 {
            AlertPriority::Critical
        } else {
            AlertPriority::Medium
        },
        title: format!("alert {i}"),
        message: String::new(),
        details: Default::default(),
        created_at: None,
        acknowledged: false,
        operator_id: None,
    };
    let active: Vec<Alert> = (0..60).map(alert).collect();
    let d = dashboard(
        &models(&history()),
        ActiveAlerts::of_sorted(&active, DASHBOARD_ALERTS),
        as_of(),
    );
    assert_eq!(d.active_alerts, active[..DASHBOARD_ALERTS]);
    assert_eq!(d.active_alerts_total, 60);
    assert_eq!(d.critical_alerts, active[..DASHBOARD_ALERTS]);
    assert_eq!(d.critical_alerts_total, 25);
}

#[test]
fn round_to_is_pythons_round() {
    close(round_to(0.125, 2), 0.12);
    close(round_to(2.675, 2), 2.67);
    close(round_to(0.55, 3), 0.55);
    close(round_to(1.25, 1), 1.2);
}
