//! Properties of the `costs_v5` fold over generated histories: how the log is cut into
//! batches never shows in the tree (byte-identical entries, equal digests).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking

use ats_events::cloudevents::event_id;
use ats_events::{
    BudgetPeriod, BudgetScope, BudgetSet, Envelope, LlmUsage, ModelPriced, Payload,
    SessionCompleted, Timestamp,
};
use ats_ingest::StoredEvent;
use ats_projections::costs::{CostsProjector, UsageRecord, USAGE_PAGE_RECORDS};
use ats_projections::runtime::{self, fold_batch};
use proptest::prelude::*;

const MODELS: [&str; 5] = [
    "openai/gpt-4o",
    "openai/gpt-4o-mini",
    "openrouter/openai/gpt-4o",
    "acme/unknown-1",
    "anthropic/claude-3-opus",
];

/// One step of a generated history.
#[derive(Debug, Clone)]
enum Step {
    Usage {
        model: usize,
        profile: u8,
        session: u8,
        hour: i64,
        input: u64,
        output: u64,
        cost: Option<u16>,
        success: bool,
        scenario: bool,
    },
    Price {
        model: usize,
        input: u16,
        hour: i64,
        from_hour: i64,
    },
    Budget {
        scope: u8,
        entity: u8,
        amount: u16,
        period: u8,
        hour: i64,
    },
    Completed {
        session: u8,
        scenario: u8,
        hour: i64,
    },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => (0..MODELS.len(), 0..3u8, 0..4u8, 0..24 * 40i64, 0..5000u64, 0..3000u64,
              proptest::option::of(0..500u16), any::<bool>(), any::<bool>())
            .prop_map(|(model, profile, session, hour, input, output, cost, success, scenario)| Step::Usage {
                model, profile, session, hour, input, output, cost, success, scenario,
            }),
        1 => (0..MODELS.len(), 0..100u16, 0..24 * 40i64, 0..24 * 40i64)
            .prop_map(|(model, input, hour, from_hour)| Step::Price { model, input, hour, from_hour }),
        1 => (0..3u8, 0..3u8, 1..200u16, 0..4u8, 0..24 * 40i64)
            .prop_map(|(scope, entity, amount, period, hour)| Step::Budget { scope, entity, amount, period, hour }),
        1 => (0..4u8, 0..2u8, 0..24 * 40i64)
            .prop_map(|(session, scenario, hour)| Step::Completed { session, scenario, hour }),
    ]
}

fn at(hour: i64) -> Timestamp {
    Timestamp::parse_rfc3339("2026-10-20T00:00:00Z")
        .unwrap()
        .plus_seconds(hour * 3600)
}

fn event(index: usize, step: &Step) -> Envelope {
    let (hour, payload) = match step.clone() {
        Step::Usage {
            model,
            profile,
            session,
            hour,
            input,
            output,
            cost,
            success,
            scenario,
        } => (
            hour,
            Payload::LlmUsage(LlmUsage {
                model: MODELS[model].into(),
                profile_id: format!("op_{profile}"),
                session_id: format!("s_{session}"),
                task_type: ["recon", "exploit"][(input % 2) as usize].into(),
                input_tokens: input,
                output_tokens: output,
                cached_input_tokens: input / 3,
                latency_ms: Some(output as f64),
                success,
                error_message: None,
                scenario_id: scenario.then(|| "direct".to_owned()),
                phase: None,
                cost: cost.map(|c| f64::from(c) / 100.0),
            }),
        ),
        Step::Price {
            model,
            input,
            hour,
            from_hour,
        } => {
            let (provider, name) = MODELS[model].split_once('/').unwrap();
            (
                hour,
                Payload::ModelPriced(ModelPriced {
                    provider: provider.into(),
                    name: name.into(),
                    cost_per_1k_input_tokens: f64::from(input) / 1000.0,
                    cost_per_1k_output_tokens: f64::from(input) / 500.0,
                    cost_per_1k_cached_input_tokens: (input % 2 == 0)
                        .then(|| f64::from(input) / 4000.0),
                    effective_from: at(from_hour),
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
        Step::Budget {
            scope,
            entity,
            amount,
            period,
            hour,
        } => {
            let (scope, entity_id) = match scope {
                0 => (BudgetScope::Global, None),
                1 => (BudgetScope::Profile, Some(format!("op_{entity}"))),
                _ => (BudgetScope::Session, Some(format!("s_{entity}"))),
            };
            let period = [
                BudgetPeriod::None,
                BudgetPeriod::Daily,
                BudgetPeriod::Weekly,
                BudgetPeriod::Monthly,
            ][usize::from(period)];
            (
                hour,
                Payload::BudgetSet(BudgetSet {
                    scope,
                    entity_id,
                    amount: f64::from(amount) / 10.0,
                    period,
                    thresholds: Vec::new(),
                }),
            )
        }
        Step::Completed {
            session,
            scenario,
            hour,
        } => (
            hour,
            Payload::SessionCompleted(SessionCompleted {
                session_id: format!("s_{session}"),
                operator_id: "op_0".into(),
                scenario_id: format!("scenario_{scenario}"),
                start_time: at(hour),
                end_time: at(hour),
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
        ),
    };
    Envelope::new(event_id(&format!("e{index}")), at(hour), "tests", payload)
}

fn tree() -> sled::Tree {
    let db = sled::Config::new().temporary(true).open().unwrap();
    db.open_tree("costs_v5").unwrap()
}

fn entries(tree: &sled::Tree) -> Vec<(Vec<u8>, Vec<u8>)> {
    tree.iter()
        .map(Result::unwrap)
        .map(|(k, v)| (k.to_vec(), v.to_vec()))
        .collect()
}

fn fold_in(tree: &sled::Tree, events: &[StoredEvent], cuts: &[usize]) {
    let mut start = 0;
    for &cut in cuts.iter().chain(std::iter::once(&events.len())) {
        let cut = cut.clamp(start, events.len());
        if cut > start {
            fold_batch(&CostsProjector, tree, &events[start..cut]).unwrap();
        }
        start = cut;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn batching_never_shows_in_the_tree(
        steps in prop::collection::vec(step(), 1..80),
        mut cuts in prop::collection::vec(0..80usize, 0..8),
    ) {
        cuts.sort_unstable();
        let events: Vec<StoredEvent> = steps
            .iter()
            .enumerate()
            .map(|(i, s)| StoredEvent::new(i as u64 + 1, event(i, s)))
            .collect();
        let whole = tree();
        fold_in(&whole, &events, &[]);
        let split = tree();
        fold_in(&split, &events, &cuts);
        let one_by_one = tree();
        fold_in(&one_by_one, &events, &(1..events.len()).collect::<Vec<_>>());
        prop_assert_eq!(entries(&whole), entries(&split));
        prop_assert_eq!(entries(&whole), entries(&one_by_one));
        prop_assert_eq!(runtime::digest(&whole), runtime::digest(&split));
        prop_assert_eq!(runtime::checkpoint(&whole), events.len() as u64);
    }
}

/// Replaying the same log twice gives the same digest (no hidden state, no clock).
#[test]
fn replay_is_identical() {
    let steps: Vec<Step> = (0..200)
        .map(|i| Step::Usage {
            model: i % MODELS.len(),
            profile: (i % 3) as u8,
            session: (i % 4) as u8,
            hour: (i as i64 * 7) % (24 * 40),
            input: 1000 + i as u64,
            output: 500,
            cost: None,
            success: i % 5 != 0,
            scenario: i % 2 == 0,
        })
        .collect();
    let events: Vec<StoredEvent> = steps
        .iter()
        .enumerate()
        .map(|(i, s)| StoredEvent::new(i as u64 + 1, event(i, s)))
        .collect();
    let (a, b) = (tree(), tree());
    fold_in(&a, &events, &[50, 120]);
    fold_in(&b, &events, &[]);
    assert_eq!(runtime::digest(&a), runtime::digest(&b));
    assert_ne!(runtime::digest(&a), format!("{:016x}", 0));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Usage records are paged by time, and a page may be written by several batches and
    /// receive late events: an export of any span returns exactly the usage inside it
    /// (bounds included), in time order with ties by event id, however the log was cut.
    #[test]
    fn the_usage_export_is_every_record_in_its_span_in_time_order(
        minutes in prop::collection::vec(0..90i64, 1..60),
        mut cuts in prop::collection::vec(0..60usize, 0..6),
        bounds in (0..90i64, 0..90i64),
    ) {
        cuts.sort_unstable();
        // Minutes in any order: pages of ten minutes get records before and after theirs.
        let seconds: Vec<i64> = minutes.iter().map(|m| m * 60).collect();
        let events = usage_at(&seconds);
        let t = tree();
        fold_in(&t, &events, &cuts);
        let (from, to) = (at(0).plus_seconds(bounds.0.min(bounds.1) * 60), at(0).plus_seconds(bounds.0.max(bounds.1) * 60));
        prop_assert_eq!(exported(&t, Some(from), Some(to)), usage_between(&events, from, to));
        let all = ats_projections::costs::usage_records(&t);
        prop_assert_eq!(all.len(), events.len());
    }
}

/// The (time, id) of the usage the tree exports between `start` and `end` (open without).
fn exported(
    tree: &sled::Tree,
    start: Option<Timestamp>,
    end: Option<Timestamp>,
) -> Vec<(Timestamp, String)> {
    let filter = ats_projections::costs::planner::ExportFilter {
        start,
        end,
        ..Default::default()
    };
    ats_projections::costs::planner::export_usage(tree, &filter)
        .into_iter()
        .map(|r| (r.timestamp, r.id))
        .collect()
}

/// The oracle: the (time, id) of the events with `from ≤ occurred_at ≤ to`, sorted.
fn usage_between(
    events: &[StoredEvent],
    from: Timestamp,
    to: Timestamp,
) -> Vec<(Timestamp, String)> {
    let mut found: Vec<(Timestamp, String)> = events
        .iter()
        .map(|e| e.envelope().unwrap())
        .filter(|e| from <= e.occurred_at && e.occurred_at <= to)
        .map(|e| (e.occurred_at, e.id.to_string()))
        .collect();
    found.sort();
    found
}

/// One usage event per entry of `seconds`, at that many seconds after [`at`]`(0)`.
fn usage_at(seconds: &[i64]) -> Vec<StoredEvent> {
    let usage = Step::Usage {
        model: 0,
        profile: 0,
        session: 0,
        hour: 0,
        input: 10,
        output: 10,
        cost: None,
        success: true,
        scenario: false,
    };
    seconds
        .iter()
        .enumerate()
        .map(|(i, &second)| {
            let mut envelope = event(i, &usage);
            envelope.occurred_at = at(0).plus_seconds(second);
            StoredEvent::new(i as u64 + 1, envelope)
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    /// Spans busier than a page (up to ~900 records in three ten-minute spans, at any
    /// second, in any order, in any batches) split into pages of at most
    /// `USAGE_PAGE_RECORDS`: the batching never shows in the tree, and the export is still
    /// every record in (time, id) order.
    #[test]
    fn a_busy_span_splits_into_bounded_pages(
        seconds in prop::collection::vec(0..1800i64, 1..900),
        mut cuts in prop::collection::vec(0..900usize, 0..6),
    ) {
        cuts.sort_unstable();
        let events = usage_at(&seconds);
        let (whole, split) = (tree(), tree());
        fold_in(&whole, &events, &[]);
        fold_in(&split, &events, &cuts);
        prop_assert_eq!(entries(&whole), entries(&split));
        for (key, value) in entries(&whole).iter().filter(|(k, _)| k.starts_with(b"u/")) {
            let page: Vec<UsageRecord> = rmp_serde::from_slice(value).unwrap();
            prop_assert!(
                !page.is_empty() && page.len() <= USAGE_PAGE_RECORDS,
                "page {:?} holds {} records", key, page.len()
            );
        }
        prop_assert_eq!(
            exported(&split, None, None),
            usage_between(&events, Timestamp::from_micros(i64::MIN), Timestamp::from_micros(i64::MAX))
        );
    }
}
