//! Given these events, this costs read model: exact numbers for every seed formula.

use ats_events::cloudevents::event_id;
use ats_events::{
    BudgetPeriod, BudgetScope, BudgetSet, Envelope, LlmUsage, ModelPriced, Payload,
    SessionCompleted, Timestamp,
};

use super::budgets::{self, BudgetAlert};
use super::optimizer::{
    self, calculate_training_roi, compare_training_methods, OptimizationType, TrainingMethod,
};
use super::*;

fn t(text: &str) -> Timestamp {
    Timestamp::parse_rfc3339(text).unwrap()
}

fn close(a: f64, b: f64) {
    assert!((a - b).abs() < 1e-9, "{a} != {b}");
}

fn envelope(id: &str, at: &str, payload: Payload) -> Envelope {
    Envelope::new(event_id(id), t(at), "tests", payload)
}

/// A usage of `model` by `profile` in `session` with no producer cost.
fn usage(id: &str, at: &str, model: &str, input: u64, output: u64) -> Envelope {
    usage_with(id, at, model, input, output, |_| {})
}

fn usage_with(
    id: &str,
    at: &str,
    model: &str,
    input: u64,
    output: u64,
    change: impl FnOnce(&mut LlmUsage),
) -> Envelope {
    let mut u = LlmUsage {
        model: model.into(),
        profile_id: "op_1".into(),
        session_id: "sess_1".into(),
        task_type: "reconnaissance".into(),
        input_tokens: input,
        output_tokens: output,
        cached_input_tokens: 0,
        latency_ms: Some(100.0),
        success: true,
        error_message: None,
        scenario_id: None,
        phase: None,
        cost: None,
    };
    change(&mut u);
    envelope(id, at, Payload::LlmUsage(u))
}

fn priced(id: &str, at: &str, full: &str, input: f64, output: f64, from: &str) -> Envelope {
    let (provider, name) = registry::split_model(full).unwrap();
    envelope(
        id,
        at,
        Payload::ModelPriced(ModelPriced {
            provider: provider.into(),
            name: name.into(),
            cost_per_1k_input_tokens: input,
            cost_per_1k_output_tokens: output,
            cost_per_1k_cached_input_tokens: None,
            effective_from: t(from),
            display_name: None,
            tier: None,
            capabilities: Vec::new(),
            context_window: None,
            reasoning_score: None,
            speed_score: None,
            recommended_for: Vec::new(),
        }),
    )
}

fn budget(
    id: &str,
    at: &str,
    scope: BudgetScope,
    entity: Option<&str>,
    amount: f64,
    period: BudgetPeriod,
) -> Envelope {
    envelope(
        id,
        at,
        Payload::BudgetSet(BudgetSet {
            scope,
            entity_id: entity.map(str::to_owned),
            amount,
            period,
            thresholds: Vec::new(),
        }),
    )
}

fn completed(id: &str, at: &str, session: &str, scenario: &str) -> Envelope {
    envelope(
        id,
        at,
        Payload::SessionCompleted(SessionCompleted {
            session_id: session.into(),
            operator_id: "op_1".into(),
            scenario_id: scenario.into(),
            start_time: t(at),
            end_time: t(at),
            duration_seconds: 0.0,
            success: true,
            score: 0.5,
            cost: 0.0,
            skills_practiced: Vec::new(),
            objectives_completed: 0,
            objectives_total: 0,
            metrics: Vec::new(),
            difficulty: None,
        }),
    )
}

pub(crate) fn fold(events: &[Envelope]) -> sled::Tree {
    crate::activity::tests::fold_with(&CostsProjector, events)
}

/// One gpt-4o call of 1,000 input and 500 output tokens ($0.0075 at the default price).
fn one_gpt_4o_call() -> sled::Tree {
    fold(&[usage(
        "u1",
        "2026-11-01T10:00:00Z",
        "openai/gpt-4o",
        1000,
        500,
    )])
}

/// The tree stores structs as MessagePack arrays (`Encoding::Positional`), and reads them
/// back: a session's cost, its usage record and a day bucket.
#[test]
fn costs_values_are_stored_positionally() {
    let tree = one_gpt_4o_call();
    let is_array = |b: u8| (0x90..=0x9f).contains(&b) || b == 0xdc || b == 0xdd;
    let mut structs = 0;
    for prefix in [b"s/".as_slice(), b"u/", b"b/", b"t/"] {
        for entry in tree.scan_prefix(prefix) {
            let (key, value) = entry.unwrap();
            assert!(
                is_array(value[0]),
                "{} is not an array",
                String::from_utf8_lossy(&key)
            );
            structs += 1;
        }
    }
    assert!(structs > 3, "{structs}");
    close(session_cost(&tree, "sess_1").unwrap().total.cost, 0.0075);
    close(usage_records(&tree)[0].cost, 0.0075);
}

#[test]
fn gpt_4o_usage_is_priced_from_the_default_table() {
    let tree = one_gpt_4o_call();
    let records = usage_records(&tree);
    assert_eq!(records.len(), 1);
    close(records[0].cost, 0.0075);
    assert!(!records[0].unpriced);
    let stats = statistics(&tree);
    close(stats.global_stats.total_cost, 0.0075);
    assert_eq!(stats.global_stats.total_input_tokens, 1000);
    assert_eq!(stats.active_sessions, 1);
}

#[test]
fn openrouter_usage_is_priced_and_unknown_models_are_flagged() {
    let tree = fold(&[
        usage(
            "u1",
            "2026-11-01T10:00:00Z",
            "openrouter/openai/gpt-4o",
            1000,
            500,
        ),
        usage("u2", "2026-11-01T11:00:00Z", "openai/gpt-4", 2000, 100),
    ]);
    let b = breakdown(
        &tree,
        CostCategory::ModelUsage,
        None,
        t("2026-11-02T00:00:00Z"),
    );
    close(b.items["openrouter/openai/gpt-4o"], 0.0075);
    assert_eq!(b.items["openai/gpt-4"], 0.0);
    assert_eq!((b.unpriced_requests, b.unpriced_tokens), (1, 2100));
    let unknown = usage_records(&tree)
        .into_iter()
        .find(|r| r.model == "openai/gpt-4")
        .unwrap();
    assert!(unknown.unpriced);
}

#[test]
fn producer_cost_wins_and_cached_tokens_use_their_price() {
    let mut cached = priced(
        "p1",
        "2026-11-01T00:00:00Z",
        "openai/gpt-4o",
        0.0025,
        0.01,
        "2026-11-01T00:00:00Z",
    );
    if let Payload::ModelPriced(p) = &mut cached.payload {
        p.cost_per_1k_cached_input_tokens = Some(0.00125);
    }
    let tree = fold(&[
        cached,
        usage_with(
            "u1",
            "2026-11-01T10:00:00Z",
            "openai/gpt-4o",
            1000,
            500,
            |u| u.cost = Some(1.25),
        ),
        // 600 × 0.0025/1K + 400 × 0.00125/1K + 500 × 0.01/1K = 0.0015 + 0.0005 + 0.005.
        usage_with(
            "u2",
            "2026-11-01T11:00:00Z",
            "openai/gpt-4o",
            1000,
            500,
            |u| u.cached_input_tokens = 400,
        ),
    ]);
    let records = usage_records(&tree);
    close(records[0].cost, 1.25);
    close(records[1].cost, 0.007);
}

#[test]
fn a_price_change_mid_history_applies_from_effective_from_and_rewrites_nothing() {
    let tree = fold(&[
        usage("u1", "2026-11-01T10:00:00Z", "openai/gpt-4o", 1000, 500),
        // Effective before u1, but folded after it: u1 keeps its price.
        priced(
            "p1",
            "2026-11-03T00:00:00Z",
            "openai/gpt-4o",
            0.005,
            0.02,
            "2026-11-01T00:00:00Z",
        ),
        // Occurred before the new price took effect.
        usage("u0", "2026-10-31T23:00:00Z", "openai/gpt-4o", 1000, 500),
        usage("u2", "2026-11-04T10:00:00Z", "openai/gpt-4o", 1000, 500),
    ]);
    let costs: Vec<(String, f64)> = usage_records(&tree)
        .into_iter()
        .map(|r| (r.timestamp.to_rfc3339(), r.cost))
        .collect();
    assert_eq!(costs.len(), 3);
    close(costs[0].1, 0.0075);
    close(costs[1].1, 0.0075);
    close(costs[2].1, 0.015);
    let registry = models(&tree, t("2026-11-05T00:00:00Z"));
    assert_eq!(registry.len(), 15);
    assert_eq!(registry[0].cost_per_1k_input_tokens, 0.005);
    let before = models(&tree, t("2026-10-30T00:00:00Z"));
    assert_eq!(before[0].cost_per_1k_input_tokens, 0.0025);
}

#[test]
fn a_new_model_joins_the_registry_from_its_effective_from() {
    let tree = fold(&[priced(
        "p1",
        "2026-11-01T00:00:00Z",
        "acme/fast-1",
        0.0001,
        0.0002,
        "2026-11-10T00:00:00Z",
    )]);
    assert_eq!(models(&tree, t("2026-11-09T00:00:00Z")).len(), 15);
    let after = models(&tree, t("2026-11-10T00:00:00Z"));
    assert_eq!(after.len(), 16);
    assert_eq!(after[15].full_name(), "acme/fast-1");
}

#[test]
fn breakdowns_use_day_buckets_and_carry_shares() {
    let tree = fold(&[
        usage("u1", "2026-11-01T10:00:00Z", "openai/gpt-4o", 1000, 500),
        usage_with("u2", "2026-11-03T10:00:00Z", "openai/gpt-4o", 0, 0, |u| {
            u.cost = Some(0.0225);
            u.profile_id = "op_2".into();
            u.session_id = "sess_2".into();
            u.phase = Some("exploit".into());
        }),
        usage_with("u3", "2026-11-05T10:00:00Z", "openai/gpt-4o", 0, 0, |u| {
            u.cost = Some(1.0);
        }),
    ]);
    let as_of = t("2026-11-03T12:00:00Z");
    let all = breakdown(&tree, CostCategory::Profile, None, as_of);
    close(all.total_cost, 0.03);
    close(all.items["op_1"], 0.0075);
    close(all.items["op_2"], 0.0225);
    assert_eq!(all.ranked_items[0].item, "op_2");
    close(all.ranked_items[0].share, 0.75);
    close(all.ranked_items[1].share, 0.25);
    assert_eq!(all.percentage_of_total, 100.0);
    let range = all.time_range.unwrap();
    assert_eq!(
        (range.start.as_str(), range.end.as_str()),
        ("2026-11-01T10:00:00Z", "2026-11-03T10:00:00Z")
    );
    // One day: only 11-03.
    let one = breakdown(&tree, CostCategory::TimePeriod, Some(1), as_of);
    assert_eq!(one.items.keys().collect::<Vec<_>>(), ["2026-11-03"]);
    // Three days: 11-01 ..= 11-03.
    let three = breakdown(&tree, CostCategory::TimePeriod, Some(3), as_of);
    assert_eq!(three.items.len(), 2);
    // Phase: the usage's phase, else its task type (the seed's grouping).
    let phase = breakdown(&tree, CostCategory::Phase, None, as_of);
    assert_eq!(
        phase.items.keys().collect::<Vec<_>>(),
        ["exploit", "reconnaissance"]
    );
    let empty = breakdown(
        &tree,
        CostCategory::Profile,
        None,
        t("2026-10-01T00:00:00Z"),
    );
    assert_eq!((empty.total_cost, empty.percentage_of_total), (0.0, 0.0));
    assert!(empty.time_range.is_none());
    assert_eq!(CostCategory::parse("model"), Some(CostCategory::ModelUsage));
    assert_eq!(CostCategory::parse("models"), None);
}

#[test]
fn scenario_comes_from_the_usage_or_later_from_its_session() {
    let tree = fold(&[
        usage("u1", "2026-11-01T10:00:00Z", "openai/gpt-4o", 1000, 500),
        usage_with(
            "u2",
            "2026-11-01T10:00:00Z",
            "openai/gpt-4o",
            1000,
            500,
            |u| {
                u.scenario_id = Some("phish_002".into());
                u.session_id = "sess_2".into();
            },
        ),
        usage_with(
            "u3",
            "2026-11-02T10:00:00Z",
            "openai/gpt-4o",
            1000,
            500,
            |u| {
                u.session_id = "sess_3".into();
            },
        ),
    ]);
    let as_of = t("2026-11-05T00:00:00Z");
    let before = breakdown(&tree, CostCategory::Scenario, None, as_of);
    assert_eq!(
        before.items.keys().collect::<Vec<_>>(),
        ["phish_002", "unattributed"]
    );
    close(before.items["unattributed"], 0.015);

    let tree = fold(&[
        usage("u1", "2026-11-01T10:00:00Z", "openai/gpt-4o", 1000, 500),
        usage_with(
            "u3",
            "2026-11-02T10:00:00Z",
            "openai/gpt-4o",
            1000,
            500,
            |u| {
                u.session_id = "sess_3".into();
            },
        ),
        completed("c1", "2026-11-02T12:00:00Z", "sess_1", "pentest_001"),
        usage("u4", "2026-11-02T13:00:00Z", "openai/gpt-4o", 1000, 500),
    ]);
    let after = breakdown(&tree, CostCategory::Scenario, None, as_of);
    close(after.items["pentest_001"], 0.015);
    close(after.items["unattributed"], 0.0075);
    assert_eq!(
        session_cost(&tree, "sess_1")
            .unwrap()
            .scenario_id
            .as_deref(),
        Some("pentest_001")
    );
}

fn alerts_of(tree: &sled::Tree) -> Vec<(f64, String)> {
    budgets::alerts(tree)
        .into_iter()
        .map(|a: BudgetAlert| (a.threshold, a.period))
        .collect()
}

#[test]
fn budget_thresholds_fire_once_each_at_75_90_100_percent_and_rearm_next_period() {
    // Profile budget of $1 per day; usage with producer costs.
    let spend = |id: &str, at: &str, cost: f64| {
        usage_with(id, at, "openai/gpt-4o", 0, 0, |u| u.cost = Some(cost))
    };
    let mut events = vec![budget(
        "b1",
        "2026-11-01T00:00:00Z",
        BudgetScope::Profile,
        Some("op_1"),
        1.0,
        BudgetPeriod::Daily,
    )];
    events.push(spend("u1", "2026-11-01T01:00:00Z", 0.5));
    let tree = fold(&events);
    assert!(alerts_of(&tree).is_empty());
    events.push(spend("u2", "2026-11-01T02:00:00Z", 0.25)); // exactly 75 %
    let tree = fold(&events);
    assert_eq!(alerts_of(&tree), [(0.75, "2026-11-01".to_owned())]);
    events.push(spend("u3", "2026-11-01T03:00:00Z", 0.125)); // 87.5 %: nothing new
    events.push(spend("u4", "2026-11-01T04:00:00Z", 0.025)); // exactly 90 %
    events.push(spend("u5", "2026-11-01T05:00:00Z", 0.1)); // exactly 100 %
    events.push(spend("u6", "2026-11-01T06:00:00Z", 0.5)); // 150 %: nothing new
    let tree = fold(&events);
    assert_eq!(
        alerts_of(&tree),
        [
            (0.75, "2026-11-01".to_owned()),
            (0.9, "2026-11-01".to_owned()),
            (1.0, "2026-11-01".to_owned())
        ]
    );
    let status = &budgets::budgets(&tree, t("2026-11-01T23:00:00Z"))[0];
    close(status.spent, 1.5);
    assert_eq!((status.remaining, status.within_budget), (0.0, false));
    // Next day: a new period, the thresholds fire again.
    events.push(spend("u7", "2026-11-02T01:00:00Z", 0.8));
    let tree = fold(&events);
    assert_eq!(alerts_of(&tree).len(), 4);
    assert_eq!(alerts_of(&tree)[3], (0.75, "2026-11-02".to_owned()));
    let status = &budgets::budgets(&tree, t("2026-11-02T12:00:00Z"))[0];
    close(status.spent, 0.8);
    close(status.remaining, 0.2);
    assert!(status.within_budget);
    // Raising the budget to $1.05 re-arms it: the day's $0.8 is 76 % of it, so 75 % fires
    // again in the same period, under the new arm.
    events.push(budget(
        "b2",
        "2026-11-02T02:00:00Z",
        BudgetScope::Profile,
        Some("op_1"),
        1.05,
        BudgetPeriod::Daily,
    ));
    let tree = fold(&events);
    let alerts = budgets::alerts(&tree);
    assert_eq!(alerts.len(), 5);
    assert_eq!((alerts[4].arm, alerts[4].threshold), (1, 0.75));
}

#[test]
fn session_and_profile_budgets_with_one_id_alert_separately() {
    let tree = fold(&[
        budget(
            "b1",
            "2026-11-01T00:00:00Z",
            BudgetScope::Profile,
            Some("x"),
            1.0,
            BudgetPeriod::None,
        ),
        budget(
            "b2",
            "2026-11-01T00:00:00Z",
            BudgetScope::Session,
            Some("x"),
            1.0,
            BudgetPeriod::None,
        ),
        usage_with("u1", "2026-11-01T01:00:00Z", "openai/gpt-4o", 0, 0, |u| {
            u.profile_id = "x".into();
            u.cost = Some(0.8);
        }),
        usage_with("u2", "2026-11-01T02:00:00Z", "openai/gpt-4o", 0, 0, |u| {
            u.session_id = "x".into();
            u.cost = Some(0.8);
        }),
    ]);
    let alerts = budgets::alerts(&tree);
    assert_eq!(alerts.len(), 2);
    assert_eq!(alerts[0].scope, BudgetScope::Profile);
    assert_eq!(alerts[1].scope, BudgetScope::Session);
    assert_eq!(alerts[0].period, "all");
}

/// A session's all-time spend is its `s/` record's total (the tree keeps no `t/` total per
/// session): the budget's status, the forecast and the fold's alert all read it.
#[test]
fn a_session_budget_without_period_reads_the_sessions_own_total() {
    use super::forecast::forecast;
    let spend = |id: &str, at: &str, cost: f64| {
        usage_with(id, at, "openai/gpt-4o", 0, 0, move |u| {
            u.session_id = "s_9".into();
            u.cost = Some(cost);
        })
    };
    let tree = fold(&[
        spend("u1", "2026-11-01T01:00:00Z", 0.5),
        spend("u2", "2026-11-03T01:00:00Z", 0.25),
        budget(
            "b1",
            "2026-11-03T02:00:00Z",
            BudgetScope::Session,
            Some("s_9"),
            1.0,
            BudgetPeriod::None,
        ),
        spend("u3", "2026-11-05T01:00:00Z", 0.2),
    ]);
    assert!(tree.scan_prefix(b"t/session").next().is_none());
    let as_of = t("2026-11-06T00:00:00Z");
    let status = &budgets::budgets(&tree, as_of)[0];
    close(status.spent, 0.95);
    let f = forecast(&tree, BudgetScope::Session, Some("s_9"), None, as_of);
    assert_eq!(f.period, BudgetPeriod::None);
    close(f.spent_to_date, 0.95);
    // 0.75 fired when the budget was set ($0.75 spent), 0.9 with the third usage.
    let alerts = budgets::alerts(&tree);
    let fired: Vec<(f64, f64)> = alerts.iter().map(|a| (a.threshold, a.spent)).collect();
    assert_eq!(fired.len(), 2, "{fired:?}");
    close(fired[0].1, 0.75);
    close(fired[1].1, 0.95);
}

#[test]
fn a_budget_set_below_current_spend_alerts_at_once() {
    let tree = fold(&[
        usage_with("u1", "2026-11-03T01:00:00Z", "openai/gpt-4o", 0, 0, |u| {
            u.cost = Some(9.5)
        }),
        budget(
            "b1",
            "2026-11-03T02:00:00Z",
            BudgetScope::Global,
            None,
            10.0,
            BudgetPeriod::Weekly,
        ),
    ]);
    let periods = alerts_of(&tree);
    assert_eq!(
        periods,
        [
            (0.75, "week-2026-11-02".to_owned()),
            (0.9, "week-2026-11-02".to_owned())
        ]
    );
    // The next Monday starts a new week with nothing spent.
    let status = &budgets::budgets(&tree, t("2026-11-09T00:00:00Z"))[0];
    assert_eq!((status.spent, status.remaining), (0.0, 10.0));
}

#[test]
fn optimizer_rules_thresholds_and_roi_ordering() {
    let mut events = Vec::new();
    // gpt-4-turbo: 100K in, 100K out = 1.0 + 3.0 = $4.0 (> $1): substitution, savings 1.6.
    events.push(usage_with(
        "big",
        "2026-11-01T10:00:00Z",
        "openai/gpt-4-turbo",
        100_000,
        100_000,
        |u| u.task_type = "analysis".into(),
    ));
    // Eleven small recon requests: caching (count > 10).
    for i in 0..11 {
        events.push(usage(
            &format!("r{i}"),
            "2026-11-01T11:00:00Z",
            "openai/gpt-4o-mini",
            1000,
            500,
        ));
    }
    let tree = fold(&events);
    let opps = optimizer::identify_opportunities(&tree, None, None, t("2026-11-02T00:00:00Z"));
    let kinds: Vec<OptimizationType> = opps.iter().map(|o| o.optimization_type).collect();
    // Average tokens = (200,000 + 11 × 1,500) / 12 = 18,041.7 > 2,000: prompt rule too.
    assert_eq!(
        kinds,
        [
            OptimizationType::ModelSubstitution,
            OptimizationType::PromptOptimization,
            OptimizationType::Caching
        ]
    );
    let sub = &opps[0];
    close(sub.current_cost, 4.0);
    close(sub.potential_savings, 1.6);
    close(sub.roi_score, 0.8);
    assert_eq!(sub.priority, 3);
    assert_eq!(
        sub.recommendations,
        [
            "Test alternative: openai/gpt-4o",
            "Test alternative: openai/gpt-4o-mini",
            "Test alternative: anthropic/claude-3.5-sonnet"
        ]
    );
    assert_eq!(
        sub.description,
        "Current cost: $4.00. Consider cheaper alternatives."
    );
    assert_eq!(sub.id, "opt_model_openai/gpt-4-turbo_1793577600");
    let mini = 11.0 * (0.00015 + 0.0003);
    let total = 4.0 + mini;
    close(opps[1].potential_savings, total * 0.2);
    assert_eq!(opps[1].description, "Average 18042 tokens per request");
    close(opps[2].current_cost, mini);
    close(opps[2].potential_savings, mini * 0.3);
    assert_eq!(opps[2].description, "Detected 11 repeated task patterns");
    assert_eq!(
        opps[2].recommendations[2],
        "Focus on task types: reconnaissance"
    );
    let impact = optimizer::impact(&opps);
    assert_eq!(impact.total_opportunities, 3);
    close(impact.total_current_cost, 4.0 + total + mini);
    close(impact.avg_implementation_difficulty, 3.0);
    assert_eq!(impact.high_priority_count, 1);
    assert_eq!(impact.quick_wins.len(), 1);
    // Per session: the whole session; none for an unknown one.
    assert!(optimizer::identify_opportunities(
        &tree,
        Some("nope"),
        None,
        t("2026-11-02T00:00:00Z")
    )
    .is_empty());
    let basic = optimizer::session_recommendations(&tree, "sess_1", t("2026-11-02T00:00:00Z"));
    assert_eq!(basic.len(), 3, "{basic:?}");
}

#[test]
fn roi_of_the_seed_example() {
    let roi = calculate_training_roi(500.0, 1.0, 4.0, 40.0, 2);
    assert_eq!(roi.skill_gains, 3);
    close(roi.proficiency_increase, 0.6);
    close(roi.cost_per_skill_level, 500.0 / 3.0);
    close(roi.time_to_proficiency, 40.0 / 3.0);
    close(roi.overall_roi, 0.4);
    let none = calculate_training_roi(0.0, 2.0, 1.5, 0.0, 0);
    assert_eq!(
        (none.skill_gains, none.overall_roi, none.time_to_proficiency),
        (0, 0.0, 0.0)
    );
    let negative = calculate_training_roi(100.0, 3.0, 1.0, 10.0, 0);
    assert_eq!(negative.skill_gains, -2);
    close(negative.time_to_proficiency, 10.0);
    close(negative.cost_per_skill_level, -50.0);
    assert!(compare_training_methods(&[]).is_none());
    let cmp = compare_training_methods(&[
        TrainingMethod {
            name: Some("lab".into()),
            cost: 500.0,
            initial_level: 1.0,
            final_level: 4.0,
            hours: 40.0,
            certifications: 2,
        },
        TrainingMethod {
            name: None,
            cost: 100.0,
            initial_level: 1.0,
            final_level: 2.0,
            hours: 10.0,
            certifications: 0,
        },
    ])
    .unwrap();
    assert_eq!(cmp.methods[1].method_name, "Unknown");
    assert_eq!(cmp.best_roi.method_name, "lab");
    assert_eq!(cmp.most_cost_efficient.method_name, "Unknown");
    close(cmp.average_roi, 0.2);
}

#[test]
fn seed_anomaly_rules_exactly() {
    use super::anomalies::{seed_anomalies, SeedAnomaly};
    let spend = |i: usize, day: u32, cost: f64, success: bool| {
        usage_with(
            &format!("a{i}"),
            &format!("2026-11-0{day}T10:00:0{}Z", i % 10),
            "openai/gpt-4o",
            0,
            0,
            |u| {
                u.cost = Some(cost);
                u.success = success;
            },
        )
    };
    let mut events: Vec<Envelope> = (0..5).map(|i| spend(i, 1, 0.01, i >= 2)).collect();
    events.extend((5..9).map(|i| spend(i, 2, 0.01, true)));
    let as_of = t("2026-11-04T00:00:00Z");
    assert!(
        seed_anomalies(&fold(&events), 7, as_of).is_empty(),
        "9 records are too few"
    );
    events.push(spend(9, 3, 1.0, true));
    let found = seed_anomalies(&fold(&events), 7, as_of);
    assert_eq!(found.len(), 3, "{found:?}");
    // mean 0.109, sample stdev √0.09801: threshold 0.109 + 2 × 0.31306… = 0.73513.
    match &found[0] {
        SeedAnomaly::ExpensiveRequests {
            count,
            description,
            examples,
            severity,
        } => {
            assert_eq!((*count, severity.as_str()), (1, "medium"));
            assert_eq!(description, "Found 1 requests exceeding $0.7351");
            close(examples[0].cost, 1.0);
            assert_eq!(examples[0].id, events[9].id.to_string());
            assert_eq!(examples[0].model, "openai/gpt-4o");
            assert_eq!(examples[0].timestamp, "2026-11-03T10:00:09Z");
        }
        other => panic!("{other:?}"),
    }
    // Days: 0.05, 0.04, 1.0 → mean 0.3633 < 1.0 / 2.
    match &found[1] {
        SeedAnomaly::CostSpike {
            description,
            max_daily_cost,
            average_daily_cost,
            ..
        } => {
            assert_eq!(description, "Daily cost spike detected: $1.00 vs avg $0.36");
            close(*max_daily_cost, 1.0);
            close(*average_daily_cost, 1.09 / 3.0);
        }
        other => panic!("{other:?}"),
    }
    match &found[2] {
        SeedAnomaly::HighErrorRate {
            error_rate,
            wasted_cost,
            description,
            ..
        } => {
            close(*error_rate, 0.2);
            close(*wasted_cost, 0.02);
            assert_eq!(description, "High error rate: 20.0% ($0.02 wasted)");
        }
        other => panic!("{other:?}"),
    }
    // A window that ends before day 3 holds 9 records again.
    assert!(seed_anomalies(&fold(&events), 7, t("2026-11-02T23:00:00Z")).is_empty());
}

#[test]
fn robust_detector_finds_injected_spikes_in_seasonal_series() {
    use super::anomalies::{detect, Severity};
    use std::collections::BTreeSet;
    let start = t("2026-08-03T12:00:00Z"); // a Monday
    let models = [
        ("openai/gpt-4o", 10.0),
        ("openai/gpt-4o-mini", 5.0),
        ("google/gemini-1.5-pro", 2.0),
    ];
    let injected: BTreeSet<(usize, i64)> = [(0, 40), (1, 45), (2, 50), (0, 58), (2, 63), (1, 66)]
        .into_iter()
        .collect();
    let mut seed = 42u64;
    let mut noise = || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        0.85 + 0.3 * ((seed >> 33) as f64 / (1u64 << 31) as f64)
    };
    let mut events = Vec::new();
    for day in 0..70i64 {
        let weekend = day % 7 >= 5;
        for (m, (model, base)) in models.iter().enumerate() {
            let mut cost = base * if weekend { 0.4 } else { 1.0 } * noise();
            if injected.contains(&(m, day)) {
                cost *= 3.0;
            }
            let at = start.plus_seconds(day * 86_400 + m as i64).to_rfc3339();
            events.push(usage_with(&format!("d{day}m{m}"), &at, model, 0, 0, |u| {
                u.cost = Some(cost)
            }));
        }
    }
    let tree = fold(&events);
    let as_of = start.plus_seconds(69 * 86_400);
    let found = detect(&tree, 35, as_of);
    let labelled: BTreeSet<(String, String)> = injected
        .iter()
        .filter(|(_, day)| *day >= 35)
        .map(|(m, day)| {
            (
                models[*m].0.to_owned(),
                day_of(start.plus_seconds(day * 86_400)),
            )
        })
        .collect();
    let flagged: BTreeSet<(String, String)> = found
        .iter()
        .filter(|a| a.dimension == "model")
        .map(|a| (a.value.clone(), a.day.clone()))
        .collect();
    let hits = flagged.intersection(&labelled).count() as f64;
    let precision = if flagged.is_empty() {
        0.0
    } else {
        hits / flagged.len() as f64
    };
    let recall = hits / labelled.len() as f64;
    println!(
        "robust detector: precision {precision:.2}, recall {recall:.2} ({} flagged, {} labelled)",
        flagged.len(),
        labelled.len()
    );
    assert!(precision >= 0.8, "precision {precision}: {flagged:?}");
    assert!(recall >= 0.8, "recall {recall}: {flagged:?}");
    // A 3× day is at least 50 % above a bound of about 1.33× normal: high, with impact.
    let spike = found
        .iter()
        .find(|a| {
            a.dimension == "model"
                && (a.value.clone(), a.day.clone()) == *labelled.iter().next().unwrap()
        })
        .unwrap();
    assert_eq!(spike.severity, Severity::High);
    assert!(spike.impact_usd > 0.0 && spike.actual > spike.upper_bound);
    // The total's anomalies name the model that caused them first.
    for total in found.iter().filter(|a| a.dimension == "total") {
        assert!(!total.root_causes.is_empty());
    }
}

#[test]
fn forecast_to_period_end_and_exhaustion_date() {
    use super::forecast::forecast;
    let start = t("2026-10-13T12:00:00Z");
    let mut events: Vec<Envelope> = (0..28)
        .map(|day| {
            let at = start.plus_seconds(day * 86_400).to_rfc3339();
            usage_with(&format!("f{day}"), &at, "openai/gpt-4o", 0, 0, |u| {
                u.cost = Some(1.0)
            })
        })
        .collect();
    events.push(budget(
        "b1",
        "2026-11-01T00:00:00Z",
        BudgetScope::Global,
        None,
        25.0,
        BudgetPeriod::Monthly,
    ));
    let tree = fold(&events);
    let f = forecast(
        &tree,
        BudgetScope::Global,
        None,
        None,
        t("2026-11-10T00:00:00Z"),
    );
    assert_eq!(f.period, BudgetPeriod::Monthly);
    assert_eq!(
        (f.period_start.as_str(), f.period_end.as_str()),
        ("2026-11-01", "2026-11-30")
    );
    close(f.spent_to_date, 9.0);
    close(f.predicted_remaining, 21.0);
    close(f.predicted_total, 30.0);
    close(f.lower_80, 30.0);
    close(f.upper_80, 30.0);
    assert_eq!(f.history_days, 28);
    assert_eq!(f.budget, Some(25.0));
    // 9 spent + 16 days at $1 = 25 on the 16th day from the 10th.
    assert_eq!(f.exhaustion_date.as_deref(), Some("2026-11-25"));
    // A profile with no history: nothing predicted, no budget.
    let none = forecast(
        &tree,
        BudgetScope::Profile,
        Some("nobody"),
        None,
        t("2026-11-10T00:00:00Z"),
    );
    assert_eq!((none.predicted_total, none.history_days), (0.0, 0));
    assert!(none.exhaustion_date.is_none());
}

proptest::proptest! {
    /// A usage page decoded as glimpses gives each record's id, time, model, cost and
    /// outcome: [`UsageGlimpse`] names [`UsageRecord`]'s fields in its order.
    #[test]
    fn usage_glimpses_are_the_records_fields(
        records in proptest::collection::vec(usage_record(), 0..8),
    ) {
        let page = rmp_serde::to_vec(&records).unwrap();
        let glimpses: Vec<UsageGlimpse<'_>> = rmp_serde::from_slice(&page).unwrap();
        let seen: Vec<_> = glimpses
            .iter()
            .map(|g| (g.id.to_owned(), g.timestamp, g.model.to_owned(), g.cost, g.success))
            .collect();
        let expected: Vec<_> = records
            .iter()
            .map(|r| (r.id.clone(), r.timestamp, r.model.clone(), r.cost, r.success))
            .collect();
        proptest::prop_assert_eq!(seen, expected);
    }
}

/// Any usage record, every optional field present or not.
fn usage_record() -> impl proptest::strategy::Strategy<Value = UsageRecord> {
    use proptest::prelude::*;
    let text = || "[a-z0-9/_-]{0,12}";
    (
        (text(), any::<i64>(), text(), text(), text(), text()),
        (proptest::option::of(text()), proptest::option::of(text())),
        (any::<u64>(), any::<u64>(), any::<u64>(), -1e6f64..1e6),
        (
            any::<bool>(),
            proptest::option::of(0f64..1e5),
            any::<bool>(),
        ),
        proptest::option::of(text()),
    )
        .prop_map(
            |(
                (id, micros, model, profile_id, session_id, task_type),
                (scenario_id, phase),
                (input_tokens, output_tokens, cached_input_tokens, cost),
                (unpriced, latency_ms, success),
                error_message,
            )| UsageRecord {
                id,
                timestamp: Timestamp::from_micros(micros),
                model,
                profile_id,
                session_id,
                task_type,
                scenario_id,
                phase,
                input_tokens,
                output_tokens,
                cached_input_tokens,
                cost,
                unpriced,
                latency_ms,
                success,
                error_message,
            },
        )
}
