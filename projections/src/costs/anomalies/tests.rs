//! The detector with its cache against the detector as it was: every series' baseline read
//! and judged on each call.

use ats_events::cloudevents::event_id;
use ats_events::{Envelope, LlmUsage, Payload};
use ats_ingest::StoredEvent;
use proptest::prelude::*;

use super::*;
use crate::costs::CostsProjector;
use crate::runtime::{commit, fold_batch, fold_writes, Writes};

/// `detect` as it was before the cache, verbatim: the whole span read and judged.
fn detect_uncached(tree: &sled::Tree, window_days: u32, as_of: Timestamp) -> Vec<SpendAnomaly> {
    let window = window_days.max(1) as usize;
    let span = window + BASELINE_DAYS;
    let days: Vec<String> = (0..span)
        .rev()
        .map(|back| crate::costs::day_of(as_of.plus_seconds(-(back as i64) * 86_400)))
        .collect();
    let weekday_of = |i: usize| i % 7;
    let mut series: Vec<(&str, BTreeMap<String, Vec<f64>>)> = vec![
        ("total", daily(tree, Dim::Day, &days)),
        ("model", daily(tree, Dim::Model, &days)),
        ("profile", daily(tree, Dim::Profile, &days)),
        ("task_type", daily(tree, Dim::TaskType, &days)),
    ];
    // The total is one series: the day buckets of `time_period` hold one value per day.
    let total: Vec<f64> = {
        let mut sum = vec![f64::NAN; span];
        for values in series[0].1.values() {
            for (i, v) in values.iter().enumerate() {
                if !v.is_nan() {
                    sum[i] = if sum[i].is_nan() { *v } else { sum[i] + v };
                }
            }
        }
        let first = sum.iter().position(|v| !v.is_nan()).unwrap_or(span);
        sum.iter()
            .enumerate()
            .map(|(i, v)| if i >= first && v.is_nan() { 0.0 } else { *v })
            .collect()
    };
    series[0].1 = BTreeMap::from([(String::new(), total)]);
    let expected_total = |index: usize| -> f64 {
        series[0].1.values().next().map_or(0.0, |s| {
            let began = s.iter().position(|v| !v.is_nan()).unwrap_or(span);
            if index < began {
                return 0.0;
            }
            bounds(&s[began..], index - began, |i| weekday_of(i + began), 0.0)
                .map_or(0.0, |(e, _)| e)
        })
    };
    let mut out = Vec::new();
    for index in (span - window)..span {
        let material = (MATERIALITY * expected_total(index)).max(0.01);
        for (dimension, values) in &series {
            let floor = if *dimension == "total" {
                0.01
            } else {
                material
            };
            for (value, s) in values {
                let began = s.iter().position(|v| !v.is_nan()).unwrap_or(span);
                if index < began {
                    continue;
                }
                let Some((expected, upper)) =
                    bounds(&s[began..], index - began, |i| weekday_of(i + began), floor)
                else {
                    continue;
                };
                let actual = s[index];
                if actual <= upper {
                    continue;
                }
                let excess_ratio = (actual - upper) / upper;
                let root_causes = if *dimension == "total" {
                    root_causes_uncached(&series[1..], index, &weekday_of)
                } else {
                    Vec::new()
                };
                out.push(SpendAnomaly {
                    dimension: (*dimension).to_owned(),
                    value: value.clone(),
                    day: days[index].clone(),
                    actual,
                    expected,
                    upper_bound: upper,
                    deviation: actual - expected,
                    excess_ratio,
                    severity: severity(excess_ratio),
                    impact_usd: actual - expected,
                    root_causes,
                });
            }
        }
    }
    out
}

fn root_causes_uncached(
    series: &[(&str, BTreeMap<String, Vec<f64>>)],
    index: usize,
    weekday_of: &dyn Fn(usize) -> usize,
) -> Vec<RootCause> {
    let mut causes: Vec<RootCause> = Vec::new();
    for (dimension, values) in series {
        for (value, s) in values {
            let began = s.iter().position(|v| !v.is_nan()).unwrap_or(s.len());
            if index < began {
                continue;
            }
            let expected = bounds(&s[began..], index - began, |i| weekday_of(i + began), 0.0)
                .map_or(0.0, |(e, _)| e);
            let actual = s[index];
            if actual > expected {
                causes.push(RootCause {
                    dimension: (*dimension).to_owned(),
                    value: value.clone(),
                    actual,
                    expected,
                    excess: actual - expected,
                });
            }
        }
    }
    causes.sort_by(|a, b| {
        b.excess
            .total_cmp(&a.excess)
            .then_with(|| a.dimension.cmp(&b.dimension))
            .then_with(|| a.value.cmp(&b.value))
    });
    causes.truncate(3);
    causes
}

fn t0() -> Timestamp {
    Timestamp::parse_rfc3339("2026-10-01T12:00:00Z").unwrap()
}

fn usage(n: usize, day: i64, model: &str, profile: &str, task: &str, cost: f64) -> Envelope {
    Envelope::new(
        event_id(&format!("u{n}")),
        t0().plus_seconds(day * 86_400 + n as i64),
        "tests",
        Payload::LlmUsage(LlmUsage {
            model: model.into(),
            profile_id: profile.into(),
            session_id: format!("s{n}"),
            task_type: task.into(),
            input_tokens: 0,
            output_tokens: 0,
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

struct Folder {
    tree: sled::Tree,
    position: u64,
    /// Uses folded by [`Folder::fold_uses`] so far (each gets its own event id).
    uses: usize,
}

impl Folder {
    fn new() -> Self {
        Self {
            tree: crate::testing::tree(crate::costs::NAME),
            position: 0,
            uses: 0,
        }
    }

    fn fold(&mut self, events: &[Envelope]) {
        let stored: Vec<StoredEvent> = events
            .iter()
            .map(|e| {
                self.position += 1;
                StoredEvent::new(self.position, e.clone())
            })
            .collect();
        fold_batch(&CostsProjector, &self.tree, &stored).unwrap();
    }

    /// Folds `batch` as one batch of usage events.
    fn fold_uses(&mut self, batch: &[Use]) {
        let events: Vec<Envelope> = batch
            .iter()
            .map(|u| {
                self.uses += 1;
                let (model, profile, task) = (MODELS[u.model], PROFILES[u.profile], TASKS[u.task]);
                usage(self.uses, u.day, model, profile, task, u.cost)
            })
            .collect();
        self.fold(&events);
    }
}

fn as_of(day: i64) -> Timestamp {
    t0().plus_seconds(day * 86_400 + 6 * 3600)
}

#[test]
fn a_late_event_changes_the_answer() {
    let mut f = Folder::new();
    // $1 a day for 28 days, then $2 on day 28: above the bound of $1.25.
    steady_month(&mut f);
    f.fold(&[usage(100, 28, "openai/gpt-4o", "op_1", "recon", 2.0)]);
    let first = detect(&f.tree, 1, as_of(28));
    assert_eq!(first, detect_uncached(&f.tree, 1, as_of(28)));
    assert!(
        first.iter().any(|a| a.dimension == "total"),
        "a doubled day is an anomaly: {first:?}"
    );
    assert_eq!(
        detect(&f.tree, 1, as_of(28)),
        first,
        "the same answer again"
    );

    // Late usage doubles every day of the baseline: $2 is now the norm.
    let late: Vec<Envelope> = (0..28)
        .map(|day| {
            usage(
                200 + day as usize,
                day,
                "openai/gpt-4o",
                "op_1",
                "recon",
                1.0,
            )
        })
        .collect();
    f.fold(&late);
    let after = detect(&f.tree, 1, as_of(28));
    assert!(after.is_empty(), "the baseline moved: {after:?}");
    assert_eq!(after, detect_uncached(&f.tree, 1, as_of(28)));
}

/// $1 a day of one series for the 28 days before day 28.
fn steady_month(f: &mut Folder) {
    let steady: Vec<Envelope> = (0..28)
        .map(|day| usage(day as usize, day, "openai/gpt-4o", "op_1", "recon", 1.0))
        .collect();
    f.fold(&steady);
}

/// The uses as the next events of `f`'s log, with their commit's writes (not made).
fn commit_of(f: &mut Folder, uses: Vec<Envelope>) -> Writes {
    let events: Vec<StoredEvent> = uses
        .into_iter()
        .map(|event| {
            f.position += 1;
            StoredEvent::new(f.position, event)
        })
        .collect();
    fold_writes(&CostsProjector, &f.tree, &events).unwrap().0
}

/// For every cut of the commit `start` prepares (after folding what comes before it): day 28
/// asked about with the commit cut there, then whole; the answer must be the uncached one.
/// Returns each cut's whole answer.
fn asked_in_the_middle(start: impl Fn(&mut Folder) -> Writes) -> Vec<Vec<SpendAnomaly>> {
    let cuts = start(&mut Folder::new()).len();
    (1..cuts)
        .map(|cut| {
            let mut f = Folder::new();
            let writes = start(&mut f);
            commit(&f.tree, writes[..cut].to_vec()).unwrap();
            detect(&f.tree, 1, as_of(28));
            commit(&f.tree, writes[cut..].to_vec()).unwrap();
            let after = detect(&f.tree, 1, as_of(28));
            assert_eq!(
                after,
                detect_uncached(&f.tree, 1, as_of(28)),
                "cut after {cut}"
            );
            after
        })
        .collect()
}

/// A fold commits key by key; a dashboard asked in the middle of a commit may answer from
/// part of it, but must not keep what it read under a stamp that claims more than it read,
/// or every later answer would be wrong. Cut anywhere. (It holds because a commit writes in
/// key order, the stamp's `time_period` buckets after the other dimensions'.)
#[test]
fn a_read_in_the_middle_of_a_commit_is_not_cached() {
    let answers = asked_in_the_middle(|f| {
        steady_month(f);
        f.fold(&[usage(100, 28, "openai/gpt-4o", "op_1", "recon", 2.0)]);
        assert!(!detect(&f.tree, 1, as_of(28)).is_empty());
        // Late usage of a second model doubles every day of the baseline.
        let late = (0..28)
            .map(|day| usage(300 + day as usize, day, "openai/o1", "op_1", "recon", 1.0))
            .collect();
        commit_of(f, late)
    });
    for after in answers {
        // The day is twice the old total baseline and equal to the new one.
        assert!(
            !after.iter().any(|a| a.dimension == "total"),
            "the total's baseline moved: {after:?}"
        );
    }
}

/// The same for the last day's verdict, which is kept per count of the day's requests: a
/// commit of today's usage (three series, one of them new) cut anywhere.
#[test]
fn a_read_in_the_middle_of_a_commit_of_today_is_not_kept() {
    let answers = asked_in_the_middle(|f| {
        steady_month(f);
        assert!(detect(&f.tree, 1, as_of(28)).is_empty());
        let today = [("op_1", 2.0), ("op_2", 3.0), ("op_1", 1.0)]
            .iter()
            .enumerate()
            .map(|(n, (profile, cost))| usage(200 + n, 28, "openai/o1", profile, "exploit", *cost))
            .collect();
        commit_of(f, today)
    });
    for after in answers {
        assert!(
            after.iter().any(|a| a.dimension == "total"),
            "today's $6 is an anomaly: {after:?}"
        );
    }
}

#[test]
fn usage_of_the_last_day_needs_no_new_baseline_and_is_seen() {
    let mut f = Folder::new();
    steady_month(&mut f);
    assert!(detect(&f.tree, 1, as_of(28)).is_empty());
    // Today's spend grows after the first answer; a new profile appears today.
    f.fold(&[usage(100, 28, "openai/gpt-4o", "op_new", "recon", 3.0)]);
    let found = detect(&f.tree, 1, as_of(28));
    assert_eq!(found, detect_uncached(&f.tree, 1, as_of(28)));
    let total = found.iter().find(|a| a.dimension == "total").unwrap();
    assert_eq!(total.actual, 3.0);
    assert!(
        total
            .root_causes
            .iter()
            .any(|c| c.value == "op_new" && c.expected == 0.0),
        "{total:?}"
    );
}

#[derive(Debug, Clone)]
struct Use {
    day: i64,
    model: usize,
    profile: usize,
    task: usize,
    cost: f64,
}

fn a_use() -> impl Strategy<Value = Use> {
    // Mostly recent days, so baselines fill; a few values so that series are regular.
    let cost = prop_oneof![Just(1.0), Just(1.5), Just(0.0), 0.01..20.0f64];
    (0i64..40, 0usize..3, 0usize..4, 0usize..2, cost).prop_map(
        |(day, model, profile, task, cost)| Use {
            day,
            model,
            profile,
            task,
            cost,
        },
    )
}

const MODELS: [&str; 3] = [
    "openai/gpt-4o",
    "openai/gpt-4o-mini",
    "anthropic/claude-3-haiku",
];
const PROFILES: [&str; 4] = ["op_a", "op_b", "op_c", "op_d"];
const TASKS: [&str; 2] = ["recon", "exploit"];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Batches in any day order (late events included), or all on the first question's day
    /// (as live usage lands on "today"), each followed by questions about a few days and
    /// windows: the cached detector answers as the uncached one.
    #[test]
    fn the_cache_never_changes_an_answer(
        daily in prop::collection::vec(prop_oneof![Just(1.0), Just(1.2), 0.5..3.0f64], 40),
        batches in prop::collection::vec((prop::collection::vec(a_use(), 1..40), any::<bool>()), 1..6),
        questions in prop::collection::vec((28i64..42, 1u32..4), 1..4),
    ) {
        let mut f = Folder::new();
        // One regular series, so that baselines exist and days are judged.
        let regular: Vec<Envelope> = daily
            .iter()
            .enumerate()
            .map(|(day, cost)| usage(10_000 + day, day as i64, MODELS[0], PROFILES[0], TASKS[0], *cost))
            .collect();
        f.fold(&regular);
        for (batch, today) in &batches {
            let mut batch = batch.clone();
            if *today {
                batch.iter_mut().for_each(|u| u.day = questions[0].0);
            }
            f.fold_uses(&batch);
            for (day, window) in &questions {
                prop_assert_eq!(
                    detect(&f.tree, *window, as_of(*day)),
                    detect_uncached(&f.tree, *window, as_of(*day))
                );
            }
        }
    }
}

/// The series as bits, so that NaN (before a series began) compares equal to itself.
fn bits(series: &Series) -> Vec<(&'static str, BTreeMap<String, Vec<u64>>)> {
    series
        .iter()
        .map(|(dimension, values)| {
            let values = values
                .iter()
                .map(|(value, s)| (value.clone(), s.iter().map(|v| v.to_bits()).collect()))
                .collect();
            (*dimension, values)
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Batches in any day order, new series and series beginning earlier included: the
    /// series updated on the days whose stamp changed are the series read whole.
    #[test]
    fn reading_the_changed_days_again_gives_the_whole_read(
        batches in prop::collection::vec(prop::collection::vec(a_use(), 1..20), 2..8),
    ) {
        let days: Vec<String> = (0..40)
            .map(|day| crate::costs::day_of(t0().plus_seconds(day * 86_400)))
            .collect();
        let mut f = Folder::new();
        f.fold_uses(&batches[0]);
        let mut known = stamp(&f.tree, &days);
        let mut series = series_of(&f.tree, &days);
        for batch in &batches[1..] {
            f.fold_uses(batch);
            let now = stamp(&f.tree, &days);
            for index in changed_days(&known, &now, &days) {
                update_day(&mut series, &f.tree, &days, index);
            }
            known = now;
            prop_assert_eq!(bits(&series), bits(&series_of(&f.tree, &days)));
        }
    }
}

/// The last day's spend kept by the detector follows the commits: after each batch (a
/// series' spend grows, a new series appears, another day changes), only the buckets the
/// commit wrote are read again, and the spend is what reading the day whole gives.
#[test]
fn the_last_days_spend_follows_each_commit() {
    let mut f = Folder::new();
    steady_month(&mut f);
    let day = crate::costs::day_of(as_of(28));
    let mut kept = Spent::read(&f.tree, &day);
    let batches = [
        vec![usage(100, 28, "openai/gpt-4o", "op_1", "recon", 2.0)],
        vec![
            usage(
                101,
                28,
                "anthropic/claude-3-5-sonnet",
                "op_2",
                "exploit",
                0.5,
            ),
            usage(102, 28, "openai/gpt-4o", "op_1", "recon", 1.5),
        ],
        // Another day: nothing of day 28 changes.
        vec![usage(103, 27, "openai/gpt-4o", "op_3", "recon", 4.0)],
    ];
    for (n, batch) in batches.into_iter().enumerate() {
        f.fold(&batch);
        assert!(kept.refresh(&f.tree, &day), "batch {n}");
        assert_eq!(
            kept.by_dimension,
            Spent::read(&f.tree, &day).by_dimension,
            "batch {n}"
        );
    }
    let profiles: Vec<&[u8]> = kept.by_dimension[2].keys().map(Vec::as_slice).collect();
    assert_eq!(profiles, [b"op_1".as_slice(), b"op_2"]);
    assert_eq!(kept.by_dimension[0].get([].as_slice()), Some(&4.0));
}
