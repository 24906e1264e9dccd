//! Alerts hold while their condition does, and an acknowledgement hides one for good.

use ats_events::cloudevents::event_id;
use ats_events::{AlertAcknowledged, Envelope, Payload};

use super::*;
use crate::activity::tests::{completed, fold_with, t};
use crate::dashboard::tests::{as_of, budget, history, models};

fn kinds(alerts: &[Alert]) -> Vec<(AlertType, AlertPriority, Option<&str>)> {
    alerts
        .iter()
        .map(|a| (a.alert_type, a.priority, a.operator_id.as_deref()))
        .collect()
}

#[test]
fn history_raises_budget_and_performance_alerts() {
    let m = models(&history());
    let alerts = current_alerts(&m, &[], DEFAULT_PERFORMANCE_THRESHOLD, as_of());
    // op_a's $5 on 11-03 crosses 75 %, 90 % and 100 % of $4 at once; op_b's only session
    // scored 0.4 < 0.6; op_a's last sessions average (0.7 + 0.9 + 0.5) / 3 = 0.7.
    assert_eq!(
        kinds(&alerts),
        [
            (
                AlertType::BudgetWarning,
                AlertPriority::Critical,
                Some("op_a")
            ),
            (AlertType::BudgetWarning, AlertPriority::High, Some("op_a")),
            (
                AlertType::PerformanceIssue,
                AlertPriority::High,
                Some("op_b")
            ),
            (
                AlertType::BudgetWarning,
                AlertPriority::Medium,
                Some("op_a")
            ),
        ]
    );
    assert_eq!(
        alerts[0].message,
        "Budget alert for op_a: $5.00 / $4.00 (125.0%)"
    );
    assert_eq!(
        alerts[0].created_at.as_deref(),
        Some("2026-11-03T10:00:00Z")
    );
    assert_eq!(alerts[2].details["average_score"], json!(0.4));
    // Ids are the condition's: the same history gives the same ids.
    let again = current_alerts(&models(&history()), &[], 0.6, as_of());
    assert_eq!(alerts, again);
    // A higher threshold makes op_a's 0.7 an alert too.
    let strict = current_alerts(&m, &[], 0.75, as_of());
    assert_eq!(
        strict
            .iter()
            .filter(|a| a.alert_type == AlertType::PerformanceIssue)
            .count(),
        2
    );
}

#[test]
fn budget_alerts_resolve_in_a_new_period_and_when_raised() {
    let m = models(&history());
    let december = current_alerts(&m, &[], 0.0, t("2026-12-01T00:00:00Z"));
    assert!(december.is_empty(), "{december:?}");
    let mut raised = history();
    raised.push(budget("b2", "2026-11-10T11:45:00Z", "op_a", 100.0));
    let alerts = current_alerts(&models(&raised), &[], 0.0, as_of());
    assert!(alerts.is_empty(), "{alerts:?}");
}

#[test]
fn performance_alert_clears_when_recent_scores_recover() {
    let mut events = history();
    events.push(completed(
        "s6",
        "op_b",
        "2026-11-10T11:50:00Z",
        0.5,
        1.0,
        true,
    ));
    // op_b: (1.0 + 0.4) / 2 = 0.7.
    let alerts = current_alerts(&models(&events), &[], 0.6, as_of());
    assert!(alerts
        .iter()
        .all(|a| a.alert_type != AlertType::PerformanceIssue));
}

/// The operators with a performance alert (threshold 0.6).
fn performance(m: &ReadModels) -> Vec<Option<String>> {
    current_alerts(m, &[], 0.6, as_of())
        .into_iter()
        .filter(|a| a.alert_type == AlertType::PerformanceIssue)
        .map(|a| a.operator_id)
        .collect()
}

/// Performance alerts are kept between requests until a session is folded: one folded into
/// the same tree is seen at once.
#[test]
fn performance_alerts_follow_each_session_folded_into_the_tree() {
    let m = models(&history());
    assert_eq!(performance(&m), [Some("op_b".to_owned())]);
    assert_eq!(performance(&m), [Some("op_b".to_owned())]);
    // op_b: (1.0 + 0.4) / 2 = 0.7.
    let recovery = completed("s6", "op_b", "2026-11-10T11:50:00Z", 0.5, 1.0, true);
    crate::runtime::fold_batch(
        &crate::profiles::ProfilesProjector,
        &m.profiles,
        &[ats_ingest::StoredEvent::new(1_000, recovery)],
    )
    .unwrap();
    assert_eq!(performance(&m), []);
}

/// A session's commit cut anywhere: a dashboard asked in the middle may answer from part
/// of it, but what it keeps answers for the whole session once the commit ends.
#[test]
fn performance_alerts_read_in_the_middle_of_a_commit_are_not_kept() {
    // op_b: (1.0 + 0.4) / 2 = 0.7.
    let recovery = [ats_ingest::StoredEvent::new(
        1_000,
        completed("s6", "op_b", "2026-11-10T11:50:00Z", 0.5, 1.0, true),
    )];
    let projector = crate::profiles::ProfilesProjector;
    let cuts = {
        let m = models(&history());
        crate::runtime::fold_writes(&projector, &m.profiles, &recovery)
            .unwrap()
            .0
            .len()
    };
    for cut in 1..cuts {
        let m = models(&history());
        assert_eq!(performance(&m), [Some("op_b".to_owned())]);
        let (writes, _) = crate::runtime::fold_writes(&projector, &m.profiles, &recovery).unwrap();
        crate::runtime::commit(&m.profiles, writes[..cut].to_vec()).unwrap();
        performance(&m);
        crate::runtime::commit(&m.profiles, writes[cut..].to_vec()).unwrap();
        assert_eq!(performance(&m), [], "cut after {cut}");
    }
}

/// Whether the acknowledgements are scanned (no more of them than alerts to check) or read
/// one per alert (more of them), the same alerts are active, in the list and the summary.
#[test]
fn acknowledgements_are_found_by_scan_or_by_read() {
    let m = models(&history());
    let alerts = current_alerts(&m, &[], 0.6, as_of());
    let acked = alerts[2].id.clone();
    let ack = |n: usize, id: &str| {
        Envelope::new(
            event_id(&format!("ack{n}")),
            t("2026-11-10T11:59:00Z"),
            "tests",
            Payload::AlertAcknowledged(AlertAcknowledged {
                alert_id: id.to_owned(),
                by: None,
            }),
        )
    };
    let few = fold_with(&AlertsProjector, &[ack(0, &acked)]);
    let many: Vec<Envelope> = std::iter::once(ack(0, &acked))
        .chain((1..=2 * alerts.len()).map(|n| ack(n, &format!("elsewhere-{n}"))))
        .collect();
    let many = fold_with(&AlertsProjector, &many);
    for acks in [&few, &many] {
        let open = active(acks, alerts.clone(), None, None);
        assert_eq!(open.len(), alerts.len() - 1);
        assert!(open.iter().all(|a| a.id != acked));
        let summary = active_summary(&m, acks, &[], 0.6, as_of(), 10);
        assert_eq!(summary, ActiveAlerts::of_sorted(&open, 10));
    }
}

#[test]
fn acknowledged_alerts_are_not_active_and_filters_apply() {
    let m = models(&history());
    let alerts = current_alerts(&m, &[], 0.6, as_of());
    let performance_id = alerts[2].id.clone();
    let ack = Envelope::new(
        event_id("ack1"),
        t("2026-11-10T11:59:00Z"),
        "tests",
        Payload::AlertAcknowledged(AlertAcknowledged {
            alert_id: performance_id.clone(),
            by: Some("lead".into()),
        }),
    );
    let acks = fold_with(&AlertsProjector, &[ack]);
    assert!(acknowledged(&acks, &performance_id));
    let open = active(&acks, alerts.clone(), None, None);
    assert_eq!(open.len(), 3);
    assert!(open.iter().all(|a| a.id != performance_id));
    // The dashboard's summary is the same list, cut to its limit, with the counts.
    let summary = active_summary(&m, &acks, &[], 0.6, as_of(), 2);
    assert_eq!(summary, ActiveAlerts::of_sorted(&open, 2));
    assert_eq!((summary.total, summary.critical_total), (3, 1));
    assert_eq!(summary.most_urgent, open[..2]);
    let critical = active(&acks, alerts.clone(), Some(AlertPriority::Critical), None);
    assert_eq!(critical.len(), 1);
    assert!(active(&acks, alerts, None, Some("op_b")).is_empty());
}

#[test]
fn dead_letters_are_system_health_alerts() {
    let dead = DeadLetter {
        projector: "profiles_v3".into(),
        position: 7,
        event_id: Some("e".into()),
        kind: Some("ats.session.completed".into()),
        error: "session s1 belongs to operator a, not b".into(),
    };
    let alerts = current_alerts(&models(&[]), &[dead], 0.6, as_of());
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].alert_type, AlertType::SystemHealth);
    assert_eq!(alerts[0].message, "session s1 belongs to operator a, not b");
    assert_eq!(alerts[0].details["position"], json!(7));
}

#[test]
fn priorities_parse_their_wire_strings() {
    assert_eq!(AlertPriority::parse("high"), Some(AlertPriority::High));
    assert_eq!(AlertPriority::parse("urgent"), None);
}

#[test]
fn performance_alerts_as_of_the_past_read_only_sessions_started_by_then() {
    let m = models(&history());
    let alerts = current_alerts(&m, &[], 0.75, t("2026-11-09T12:00:00Z"));
    let performance: Vec<&Alert> = alerts
        .iter()
        .filter(|a| a.alert_type == AlertType::PerformanceIssue)
        .collect();
    // op_a: s1 (0.5) and s2 (0.9) had started; op_b's only session starts on the 10th.
    assert_eq!(performance.len(), 1);
    assert_eq!(performance[0].operator_id.as_deref(), Some("op_a"));
    assert_eq!(performance[0].details["sessions"], json!(2));
    assert_eq!(performance[0].details["latest_session_id"], json!("s2"));
}

#[test]
fn budget_alerts_do_not_exist_before_their_crossing() {
    let m = models(&history());
    let alerts = current_alerts(&m, &[], 0.0, t("2026-11-02T00:00:00Z"));
    assert!(alerts.is_empty(), "{alerts:?}");
}

#[test]
fn a_spend_spike_is_an_anomaly_alert_on_its_day_only() {
    use crate::dashboard::tests::usage;
    let mut events = Vec::new();
    for day in 0..30 {
        let at = t("2026-10-10T12:00:00Z").plus_seconds(day * 86_400);
        events.push(usage(&format!("d{day}"), &at.to_rfc3339(), "op_a", 1.0));
    }
    events.push(usage("spike", "2026-11-09T12:00:00Z", "op_a", 10.0));
    let m = models(&events);
    let spike_day = current_alerts(&m, &[], 0.0, t("2026-11-09T18:00:00Z"));
    let total = spike_day
        .iter()
        .find(|a| a.alert_type == AlertType::AnomalyDetected && a.details["dimension"] == "total")
        .expect("the total's anomaly");
    assert_eq!(total.priority, AlertPriority::High);
    assert_eq!(total.created_at.as_deref(), Some("2026-11-09T00:00:00Z"));
    assert!(current_alerts(&m, &[], 0.0, t("2026-11-10T18:00:00Z"))
        .iter()
        .all(|a| a.alert_type != AlertType::AnomalyDetected));
}

/// The summary merges the performance alerts (one per operator below the threshold, kept
/// sorted) with the other alerts, sorted per call: at every limit it is the sorted list of
/// active alerts, cut.
#[test]
fn the_summary_is_the_sorted_active_list_at_every_limit() {
    let mut events = history();
    // Below the threshold, their latest sessions ending in the reverse of their ids' order:
    // sorted by urgency, the alerts are not in operator order.
    for (n, start) in [
        "2026-11-08T09:00:00Z",
        "2026-11-07T09:00:00Z",
        "2026-11-06T09:00:00Z",
    ]
    .into_iter()
    .enumerate()
    {
        events.push(completed(
            &format!("low{n}"),
            &format!("op_low{n}"),
            start,
            1.0,
            0.2,
            false,
        ));
    }
    let m = models(&events);
    // High like the performance alerts, but undated: after all of them.
    let dead = [DeadLetter {
        projector: "profiles_v3".into(),
        position: 7,
        event_id: None,
        kind: None,
        error: "refused".into(),
    }];
    let alerts = current_alerts(&m, &dead, 0.6, as_of());
    let performance: Vec<Option<&str>> = alerts
        .iter()
        .filter(|a| a.alert_type == AlertType::PerformanceIssue)
        .map(|a| a.operator_id.as_deref())
        .collect();
    assert_eq!(
        performance,
        [
            Some("op_low2"),
            Some("op_low1"),
            Some("op_low0"),
            Some("op_b")
        ]
    );
    let at = |kind| alerts.iter().rposition(|a| a.alert_type == kind);
    assert!(at(AlertType::SystemHealth) > at(AlertType::PerformanceIssue));
    let acks = fold_with(&AlertsProjector, &[]);
    // Also as of an instant before op_b's session started: the alerts of the past are
    // evaluated apart from the cached ones.
    for when in [as_of(), t("2026-11-10T08:30:00Z")] {
        let alerts = current_alerts(&m, &dead, 0.6, when);
        for limit in 0..=alerts.len() {
            let summary = active_summary(&m, &acks, &dead, 0.6, when, limit);
            assert_eq!(
                summary,
                ActiveAlerts::of_sorted(&alerts, limit),
                "{when:?}, {limit}"
            );
        }
    }
}

/// The kept performance alerts follow each commit, evaluating again only the operators whose
/// summaries it wrote: after every batch they are the alerts evaluated afresh.
#[test]
fn kept_performance_alerts_follow_each_commit() {
    let m = models(&history());
    let mut kept = PerformanceCache::new(&m, 0.6, as_of());
    let start = "2026-11-10T10:30:00Z";
    let batches = [
        // op_c appears below the threshold; op_a falls to (0.5 + 0.9 + 0.7 + 0.1) / 4.
        vec![
            completed("c1", "op_c", start, 0.5, 0.3, false),
            completed("a5", "op_a", start, 0.5, 0.1, false),
        ],
        // op_b recovers to (0.4 + 1.0) / 2; op_c's new latest session is a new alert.
        vec![
            completed("b6", "op_b", start, 0.5, 1.0, true),
            completed("c2", "op_c", "2026-11-10T11:00:00Z", 0.5, 0.2, false),
        ],
        // Nothing of the profiles' summaries.
        vec![],
    ];
    let mut position = 1_000;
    for (n, batch) in batches.into_iter().enumerate() {
        let stored: Vec<_> = batch
            .into_iter()
            .map(|e| {
                position += 1;
                ats_ingest::StoredEvent::new(position, e)
            })
            .collect();
        let operators: BTreeSet<_> = stored
            .iter()
            .filter_map(|s| s.envelope()?.payload.operator_id().map(str::to_owned))
            .collect();
        crate::runtime::fold_batch(&crate::profiles::ProfilesProjector, &m.profiles, &stored)
            .unwrap();
        assert_eq!(
            kept.refresh(&m, 0.6, as_of()),
            Some(operators.len()),
            "batch {n}"
        );
        let afresh = PerformanceCache::new(&m, 0.6, as_of());
        assert_eq!(
            kept.alerts.iter().collect::<Vec<_>>(),
            afresh.alerts.iter().collect::<Vec<_>>(),
            "batch {n}"
        );
    }
    let alerting: Vec<_> = kept
        .alerts
        .iter()
        .map(|a| a.operator_id.as_deref())
        .collect();
    assert_eq!(alerting, [Some("op_a"), Some("op_c")]);
}
