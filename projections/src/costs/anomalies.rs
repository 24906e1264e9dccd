//! Cost anomalies: the seed's three rules exactly (DOMAIN.md §B3.8) and the robust
//! per-dimension detector of §A3, both as queries with an explicit `as_of`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use ats_events::Timestamp;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{Dim, Window};
use crate::analytics::{mean, sample_variance};
use crate::watch::{same_tree, KeyWatch, Written};

/// One example request of the `expensive_requests` rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Example {
    /// Event id.
    pub id: String,
    /// USD.
    pub cost: f64,
    /// Model.
    pub model: String,
    /// When.
    pub timestamp: String,
}

/// An anomaly of the seed's detector (`detect_anomalies`), tagged by `type`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SeedAnomaly {
    /// Requests above mean + 2 sample standard deviations of request cost.
    ExpensiveRequests {
        /// `medium`.
        severity: String,
        /// How many.
        count: usize,
        /// `Found {n} requests exceeding ${threshold:.4f}`.
        description: String,
        /// The first 3, in time order.
        examples: Vec<Example>,
    },
    /// A UTC day costing more than twice the mean of days with usage.
    CostSpike {
        /// `high`.
        severity: String,
        /// `Daily cost spike detected: ${max:.2f} vs avg ${mean:.2f}`.
        description: String,
        /// The costliest day.
        max_daily_cost: f64,
        /// Mean over days with usage.
        average_daily_cost: f64,
    },
    /// More than 10 % failed requests.
    HighErrorRate {
        /// `high`.
        severity: String,
        /// failed / requests.
        error_rate: f64,
        /// Σ cost of failed requests.
        wasted_cost: f64,
        /// `High error rate: {rate×100:.1f}% (${wasted:.2f} wasted)`.
        description: String,
    },
}

/// The window of the anomalies endpoint and command when none is given (the seed's
/// `detect_anomalies(time_window=7)`).
pub const DEFAULT_WINDOW_DAYS: u32 = 7;

/// Seed `detect_anomalies(time_window)` over the `window_days` before `as_of` (the seed's
/// default is 7): nothing below 10 requests; then expensive requests, cost spike, high error
/// rate, in that order. Examples are the first in time order (the seed: arrival order).
///
/// Every usage record of the window is read (the threshold of "expensive" is the window's
/// mean plus two deviations), but only the fields the rules use are decoded.
pub fn seed_anomalies(tree: &sled::Tree, window_days: u32, as_of: Timestamp) -> Vec<SeedAnomaly> {
    let from = as_of.plus_seconds(-i64::from(window_days) * 86_400);
    let pages: Vec<sled::IVec> = super::usage_pages_between(tree, from, as_of).collect();
    let records = super::glimpses_between(&pages, from, as_of);
    if records.len() < 10 {
        return Vec::new();
    }
    let mut out = Vec::new();
    let costs: Vec<f64> = records.iter().map(|r| r.cost).collect();
    let threshold = mean(&costs) + 2.0 * sample_variance(&costs).sqrt();
    let expensive: Vec<_> = records.iter().filter(|r| r.cost > threshold).collect();
    if !expensive.is_empty() {
        out.push(SeedAnomaly::ExpensiveRequests {
            severity: "medium".into(),
            count: expensive.len(),
            description: format!(
                "Found {} requests exceeding ${threshold:.4}",
                expensive.len()
            ),
            examples: expensive
                .iter()
                .take(3)
                .map(|r| Example {
                    id: r.id.to_owned(),
                    cost: r.cost,
                    model: r.model.to_owned(),
                    timestamp: r.timestamp.to_rfc3339(),
                })
                .collect(),
        });
    }
    let mut daily: BTreeMap<String, f64> = BTreeMap::new();
    for r in &records {
        *daily.entry(super::day_of(r.timestamp)).or_default() += r.cost;
    }
    if daily.len() > 1 {
        let values: Vec<f64> = daily.values().copied().collect();
        let average = mean(&values);
        let max = values.iter().copied().fold(f64::MIN, f64::max);
        if max > average * 2.0 {
            out.push(SeedAnomaly::CostSpike {
                severity: "high".into(),
                description: format!("Daily cost spike detected: ${max:.2} vs avg ${average:.2}"),
                max_daily_cost: max,
                average_daily_cost: average,
            });
        }
    }
    let failed: Vec<_> = records.iter().filter(|r| !r.success).collect();
    let rate = failed.len() as f64 / records.len() as f64;
    if rate > 0.1 {
        let wasted: f64 = failed.iter().map(|r| r.cost).sum();
        out.push(SeedAnomaly::HighErrorRate {
            severity: "high".into(),
            error_rate: rate,
            wasted_cost: wasted,
            description: format!(
                "High error rate: {:.1}% (${wasted:.2} wasted)",
                rate * 100.0
            ),
        });
    }
    out
}

/// How far above its upper bound a day's spend is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Less than 20 % above the upper bound.
    Low,
    /// 20–50 % above.
    Medium,
    /// 50 % or more above.
    High,
}

/// A dimension value contributing to an anomalous day.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RootCause {
    /// `model`, `profile` or `task_type`.
    pub dimension: String,
    /// The value.
    pub value: String,
    /// Its spend that day.
    pub actual: f64,
    /// Its expected spend that day.
    pub expected: f64,
    /// actual − expected.
    pub excess: f64,
}

/// A day whose spend on one series is above its robust upper bound (§A3).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SpendAnomaly {
    /// `total`, `model`, `profile` or `task_type`.
    pub dimension: String,
    /// The series (empty for `total`).
    pub value: String,
    /// UTC day.
    pub day: String,
    /// Spend that day.
    pub actual: f64,
    /// Expected spend: the median of the same weekday over the baseline.
    pub expected: f64,
    /// expected + max(3 × 1.4826 × MAD of deseasonalised residuals, 25 % of expected, $0.01
    /// or, for a dimension, [`MATERIALITY`] of the day's expected total).
    pub upper_bound: f64,
    /// actual − expected.
    pub deviation: f64,
    /// (actual − upper_bound) / upper_bound.
    pub excess_ratio: f64,
    /// From `excess_ratio`.
    pub severity: Severity,
    /// USD above expectation (= deviation).
    pub impact_usd: f64,
    /// For `total`: the 3 series of the other dimensions with the largest excess that day.
    pub root_causes: Vec<RootCause>,
}

/// Days of history before a day that form its baseline.
pub const BASELINE_DAYS: usize = 28;
/// Baseline days (since the series began) needed before a day can be judged; at least half
/// of them must have spend.
pub const MIN_BASELINE_DAYS: usize = 14;

fn median(values: &[f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    if sorted.len() % 2 == 0 {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    } else {
        sorted[mid]
    }
}

/// The smallest excess over expectation worth reporting: $0.01, and for a dimension's
/// series this share of the day's expected total spend (cents of noise on a $100 day are not
/// an anomaly).
pub const MATERIALITY: f64 = 0.1;

/// Expected value and upper bound of `series[index]` from the days before it; the bound is at
/// least `floor` above the expected value. `series` is a
/// zero-filled daily series starting the day the series began; `weekday(i)` the day's weekday.
fn bounds(
    series: &[f64],
    index: usize,
    weekday: impl Fn(usize) -> usize,
    floor: f64,
) -> Option<(f64, f64)> {
    let start = index.saturating_sub(BASELINE_DAYS);
    let baseline: Vec<usize> = (start..index).collect();
    if baseline.len() < MIN_BASELINE_DAYS {
        return None;
    }
    // An intermittent series (an operator who trains some days) has no daily norm to break;
    // it is judged through the total and the other dimensions instead.
    let active = baseline.iter().filter(|&&i| series[i] > 0.0).count();
    if active * 2 < baseline.len() {
        return None;
    }
    let mut by_weekday: BTreeMap<usize, Vec<f64>> = BTreeMap::new();
    for &i in &baseline {
        by_weekday.entry(weekday(i)).or_default().push(series[i]);
    }
    let medians: BTreeMap<usize, f64> = by_weekday
        .iter()
        .map(|(w, values)| (*w, median(values)))
        .collect();
    let all: Vec<f64> = baseline.iter().map(|&i| series[i]).collect();
    let expected = medians
        .get(&weekday(index))
        .copied()
        .unwrap_or_else(|| median(&all));
    let residuals: Vec<f64> = baseline
        .iter()
        .map(|&i| series[i] - medians.get(&weekday(i)).copied().unwrap_or(0.0))
        .collect();
    let centre = median(&residuals);
    let deviations: Vec<f64> = residuals.iter().map(|r| (r - centre).abs()).collect();
    let sigma = 1.4826 * median(&deviations);
    Some((
        expected,
        expected + (3.0 * sigma).max(0.25 * expected).max(floor),
    ))
}

/// Daily spend per value of `dim` over `days` (zero-filled from each value's first day).
fn daily(tree: &sled::Tree, dim: Dim, days: &[String]) -> BTreeMap<String, Vec<f64>> {
    let window = Window {
        first_day: days.first().cloned(),
        last_day: days.last().cloned().unwrap_or_default(),
    };
    let index: BTreeMap<&str, usize> = days
        .iter()
        .enumerate()
        .map(|(i, d)| (d.as_str(), i))
        .collect();
    let mut out: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for (day, name, usage) in super::buckets(tree, dim, &window) {
        let Some(&i) = index.get(day.as_str()) else {
            continue;
        };
        let slot = &mut out
            .entry(name)
            .or_insert_with(|| vec![f64::NAN; days.len()])[i];
        *slot = if slot.is_nan() {
            usage.cost
        } else {
            *slot + usage.cost
        };
    }
    out.values_mut().for_each(|s| zero_fill(s));
    out
}

fn severity(excess_ratio: f64) -> Severity {
    if excess_ratio < 0.2 {
        Severity::Low
    } else if excess_ratio < 0.5 {
        Severity::Medium
    } else {
        Severity::High
    }
}

/// The daily series of `days` per dimension (`total`, `model`, `profile`, `task_type`), each
/// zero-filled from the day it began; the total is one series (the day buckets of
/// `time_period` hold one value per day).
type Series = Vec<(&'static str, BTreeMap<String, Vec<f64>>)>;

/// Dimensions in the order anomalies are reported (`total` first).
const DIMENSIONS: [(&str, Dim); 4] = [
    ("total", Dim::Day),
    ("model", Dim::Model),
    ("profile", Dim::Profile),
    ("task_type", Dim::TaskType),
];

fn series_of(tree: &sled::Tree, days: &[String]) -> Series {
    let span = days.len();
    let mut series: Series = DIMENSIONS
        .iter()
        .map(|(name, dim)| (*name, daily(tree, *dim, days)))
        .collect();
    let mut total = vec![f64::NAN; span];
    for values in series[0].1.values() {
        for (i, v) in values.iter().enumerate() {
            if !v.is_nan() {
                total[i] = if total[i].is_nan() { *v } else { total[i] + v };
            }
        }
    }
    zero_fill(&mut total);
    series[0].1 = BTreeMap::from([(String::new(), total)]);
    series
}

/// The weekday class of day `i` of the span (only equality of classes matters).
fn weekday_of(i: usize) -> usize {
    i % 7
}

/// Index of the first day with spend (the series' start), `s.len()` if none.
fn began(s: &[f64]) -> usize {
    s.iter().position(|v| !v.is_nan()).unwrap_or(s.len())
}

/// [`bounds`] of day `index` of a span series that began at or before it. Reads only the
/// days before `index`, so `s` may end before it.
fn bounds_at(s: &[f64], index: usize, floor: f64) -> Option<(f64, f64)> {
    let began = began(s);
    bounds(&s[began..], index - began, |i| weekday_of(i + began), floor)
}

/// The expected total spend of day `index` (0 without a baseline).
fn expected_total(series: &Series, index: usize) -> f64 {
    series[0].1.values().next().map_or(0.0, |s| {
        if index < began(s) {
            return 0.0;
        }
        bounds_at(s, index, 0.0).map_or(0.0, |(e, _)| e)
    })
}

fn anomaly(
    dimension: &str,
    value: &str,
    day: &str,
    actual: f64,
    (expected, upper): (f64, f64),
    root_causes: Vec<RootCause>,
) -> SpendAnomaly {
    let excess_ratio = (actual - upper) / upper;
    SpendAnomaly {
        dimension: dimension.to_owned(),
        value: value.to_owned(),
        day: day.to_owned(),
        actual,
        expected,
        upper_bound: upper,
        deviation: actual - expected,
        excess_ratio,
        severity: severity(excess_ratio),
        impact_usd: actual - expected,
        root_causes,
    }
}

/// The anomalies of day `index` of `series`, every series judged against its baseline.
fn judge(series: &Series, days: &[String], index: usize, out: &mut Vec<SpendAnomaly>) {
    let material = (MATERIALITY * expected_total(series, index)).max(0.01);
    for (dimension, values) in series {
        let floor = if *dimension == "total" {
            0.01
        } else {
            material
        };
        for (value, s) in values {
            if index < began(s) {
                continue;
            }
            let Some(bounds) = bounds_at(s, index, floor) else {
                continue;
            };
            let actual = s[index];
            if actual <= bounds.1 {
                continue;
            }
            let root_causes = if *dimension == "total" {
                root_causes(&series[1..], index)
            } else {
                Vec::new()
            };
            out.push(anomaly(
                dimension,
                value,
                &days[index],
                actual,
                bounds,
                root_causes,
            ));
        }
    }
}

fn root_causes(series: &[(&str, BTreeMap<String, Vec<f64>>)], index: usize) -> Vec<RootCause> {
    let mut causes: Vec<RootCause> = Vec::new();
    for (dimension, values) in series {
        for (value, s) in values {
            if index < began(s) {
                continue;
            }
            let expected = bounds_at(s, index, 0.0).map_or(0.0, |(e, _)| e);
            push_cause(&mut causes, dimension, value, s[index], expected);
        }
    }
    top_causes(causes)
}

fn push_cause(
    causes: &mut Vec<RootCause>,
    dimension: &str,
    value: &str,
    actual: f64,
    expected: f64,
) {
    if actual > expected {
        causes.push(RootCause {
            dimension: dimension.to_owned(),
            value: value.to_owned(),
            actual,
            expected,
            excess: actual - expected,
        });
    }
}

/// How many root causes an anomaly carries.
const TOP_CAUSES: usize = 3;

fn top_causes(mut causes: Vec<RootCause>) -> Vec<RootCause> {
    causes.sort_by(|a, b| cause_order((a.excess, &a.dimension, a.value.as_bytes()), b));
    causes.truncate(TOP_CAUSES);
    causes
}

/// The order of root causes: the largest excess first, then by dimension and value. `cause`
/// is (excess, dimension, value) of a cause not made yet, compared with `other`.
fn cause_order(cause: (f64, &str, &[u8]), other: &RootCause) -> std::cmp::Ordering {
    let (excess, dimension, value) = cause;
    other
        .excess
        .total_cmp(&excess)
        .then_with(|| dimension.cmp(&other.dimension))
        .then_with(|| value.cmp(other.value.as_bytes()))
}

/// A series' (expected, upper bound) for a day, if it has a baseline.
type Bounds = Option<(f64, f64)>;

/// Everything [`detect`] needs from the days of its span before the last: the verdicts of the
/// window's earlier days, and each series' expectation for the last day. None of it reads
/// the last day, so it holds until usage lands in an earlier day (a late event); the last
/// day's own verdict is kept beside it, per count of that day's requests.
#[derive(Debug)]
struct Past {
    /// Anomalies of the window's days before the last, in [`detect`]'s order.
    anomalies: Vec<SpendAnomaly>,
    /// Per dimension (in [`DIMENSIONS`] order), each series with spend before the last day
    /// and its (expected, upper bound) for the last day, if it has a baseline.
    last_day: Vec<(&'static str, BTreeMap<String, Bounds>)>,
    /// The last day's anomalies, and the spend they were judged from.
    last: Mutex<LastDay>,
}

/// What [`Past`] keeps of the last day.
#[derive(Debug, Default)]
struct LastDay {
    /// The anomalies, with the day's requests they were judged at.
    verdict: Option<(u64, Vec<SpendAnomaly>)>,
    /// The day's spend per series, kept up to date from the buckets commits write.
    spent: Option<Spent>,
}

/// A day's spend per dimension (in [`DIMENSIONS`] order) and series, named as
/// [`bucket_name`] names them: read whole once, then only the buckets commits wrote since
/// ([`KeyWatch`]). Under live ingest a batch of today's usage lands every few dashboards and
/// touches a few series, and reading a bucket per series with spend today (25,000 operators
/// at the bench's 10M) was most of what a dashboard paid after it.
#[derive(Debug)]
pub(super) struct Spent {
    watch: Arc<KeyWatch>,
    pub(super) by_dimension: Vec<BTreeMap<Vec<u8>, f64>>,
}

impl Spent {
    /// Reads every bucket of `day`, watching the buckets from before the reads: a commit
    /// under way while they run is noted when it ends, and read again by the next refresh.
    pub(super) fn read(tree: &sled::Tree, day: &str) -> Self {
        let watch = KeyWatch::start(tree, b"b/");
        let by_dimension = DIMENSIONS
            .iter()
            .map(|(name, dim)| {
                let total = *name == "total";
                super::day_costs(tree, *dim, day)
                    .map(|bucket| (bucket_name(total, &bucket).to_vec(), bucket.2))
                    .collect()
            })
            .collect();
        Self {
            watch,
            by_dimension,
        }
    }

    /// Reads again the buckets of `day` written since the last look; `false` when too many
    /// were written to list (read the day whole instead).
    pub(super) fn refresh(&mut self, tree: &sled::Tree, day: &str) -> bool {
        let Written::Keys(keys) = self.watch.take() else {
            return false;
        };
        for ((name, dim), spent) in DIMENSIONS.iter().zip(&mut self.by_dimension) {
            let prefix = super::day_prefix(*dim, day);
            let total = *name == "total";
            for key in keys.iter().filter(|k| k.starts_with(&prefix)) {
                let series = if total { &[][..] } else { &key[prefix.len()..] };
                match super::bucket_cost(tree, key) {
                    Some(cost) => spent.insert(series.to_vec(), cost),
                    None => spent.remove(series),
                };
            }
        }
        true
    }
}

impl Past {
    /// From the series of the span's days before the last (`before`), for a window of
    /// `window` days.
    fn new(series: &Series, before: &[String], window: usize) -> Self {
        let last = before.len();
        let mut anomalies = Vec::new();
        for index in (last + 1 - window)..last {
            judge(series, before, index, &mut anomalies);
        }
        let material = (MATERIALITY * expected_total(series, last)).max(0.01);
        let last_day = series
            .iter()
            .map(|(dimension, values)| {
                let floor = if *dimension == "total" {
                    0.01
                } else {
                    material
                };
                let judged = values
                    .iter()
                    .filter(|(_, s)| began(s) < last)
                    .map(|(value, s)| (value.clone(), bounds_at(s, last, floor)))
                    .collect();
                (*dimension, judged)
            })
            .collect();
        Self {
            anomalies,
            last_day,
            last: Mutex::new(LastDay::default()),
        }
    }

    /// The last day's anomalies, judged again only when the day holds other requests than
    /// when they were last judged (`requests`, its stamp, read before its buckets: see
    /// [`detect`]). Under live ingest a batch of today's usage lands every few dashboards;
    /// each judgement reads again only the buckets written since the last ([`Spent`]).
    fn last_day_anomalies(&self, tree: &sled::Tree, day: &str, requests: u64) -> Vec<SpendAnomaly> {
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((judged_at, found)) = &last.verdict {
            if *judged_at == requests {
                return found.clone();
            }
        }
        let spent = match last.spent.take() {
            Some(mut spent) => {
                if spent.refresh(tree, day) {
                    spent
                } else {
                    Spent::read(tree, day)
                }
            }
            None => Spent::read(tree, day),
        };
        let found = self.judge_last_day(&spent, day);
        *last = LastDay {
            verdict: Some((requests, found.clone())),
            spent: Some(spent),
        };
        found
    }

    /// The last day's anomalies, and the total's root causes ([`root_causes`]: series that
    /// began that day are expected at 0), in one pass over the day's spend: a busy day has a
    /// series per operator, and the dashboard asks about it on every call. Each dimension's
    /// spend (in name order) is merged with its judged series (also in name order), names
    /// compared as bytes. The total comes first, so whether its causes are wanted is known
    /// before the series they come from are judged.
    fn judge_last_day(&self, spent: &Spent, day: &str) -> Vec<SpendAnomaly> {
        use std::cmp::Ordering;
        let mut out = Vec::new();
        let mut total_at = None;
        let mut causes = Vec::new();
        for ((dimension, judged), spent) in self.last_day.iter().zip(&spent.by_dimension) {
            let total = *dimension == "total";
            let mut spent = spent.iter().peekable();
            let mut judged = judged.iter().peekable();
            loop {
                let order = match (judged.peek(), spent.peek()) {
                    (None, None) => break,
                    (Some(_), None) => Ordering::Less,
                    (None, Some(_)) => Ordering::Greater,
                    (Some((value, _)), Some((name, _))) => value.as_bytes().cmp(name),
                };
                // A judged series without a bucket spent 0; a bucket without a judged series
                // is of a series that began that day: not judged, and expected at 0.
                let (series, bucket) = match order {
                    Ordering::Less => (judged.next(), None),
                    Ordering::Equal => (judged.next(), spent.next()),
                    Ordering::Greater => (None, spent.next()),
                };
                let actual = bucket.map_or(0.0, |(_, cost)| *cost);
                let bounds = series.and_then(|(_, bounds)| *bounds);
                if let (Some((value, _)), Some(bounds)) = (series, bounds) {
                    if actual > bounds.1 {
                        if total {
                            total_at = Some(out.len());
                        }
                        out.push(anomaly(dimension, value, day, actual, bounds, Vec::new()));
                    }
                }
                if total_at.is_some() && !total {
                    let name = match (bucket, series) {
                        (Some((name, _)), _) => name.as_slice(),
                        (None, Some((value, _))) => value.as_bytes(),
                        (None, None) => continue,
                    };
                    let expected = bounds.map_or(0.0, |(e, _)| e);
                    keep_top_cause(&mut causes, dimension, name, actual, expected);
                }
            }
        }
        if let Some(at) = total_at {
            out[at].root_causes = causes;
        }
        out
    }
}

/// Adds the cause of `value` to `top` (the [`top_causes`], at most [`TOP_CAUSES`]) if it is
/// one of them.
fn keep_top_cause(
    top: &mut Vec<RootCause>,
    dimension: &str,
    value: &[u8],
    actual: f64,
    expected: f64,
) {
    if actual <= expected {
        return;
    }
    let cause = (actual - expected, dimension, value);
    if let Some(last) = top.get(TOP_CAUSES - 1) {
        if cause_order(cause, last) != std::cmp::Ordering::Less {
            return;
        }
    }
    let mut causes = std::mem::take(top);
    push_cause(
        &mut causes,
        dimension,
        &String::from_utf8_lossy(value),
        actual,
        expected,
    );
    *top = top_causes(causes);
}

/// The series a bucket of [`super::day_costs`] belongs to: its value's name, or the one
/// series of the total, whatever the day bucket's name.
fn bucket_name(total: bool, (key, at, _): &(sled::IVec, usize, f64)) -> &[u8] {
    if total {
        &[]
    } else {
        key.get(*at..).unwrap_or_default()
    }
}

/// Spend of `day` per dimension (in [`DIMENSIONS`] order) and series.
fn spend_on(tree: &sled::Tree, day: &str) -> Vec<BTreeMap<String, f64>> {
    let window = Window {
        first_day: Some(day.to_owned()),
        last_day: day.to_owned(),
    };
    DIMENSIONS
        .iter()
        .map(|(name, dim)| {
            let mut values = BTreeMap::new();
            for (_, value, usage) in super::buckets(tree, *dim, &window) {
                // The total is one series, whatever the day bucket's name.
                let value = if *name == "total" {
                    String::new()
                } else {
                    value
                };
                values.insert(value, usage.cost);
            }
            values
        })
        .collect()
}

/// Requests per day with usage, in day order.
type Stamp = Vec<(String, u64)>;

/// Requests of each day of `days` with usage: every usage adds one to its day's
/// `time_period` bucket in the same batch as it changes that day's other buckets, and
/// nothing else writes those buckets, so equal stamps mean equal day buckets.
fn stamp(tree: &sled::Tree, days: &[String]) -> Stamp {
    let window = Window {
        first_day: days.first().cloned(),
        last_day: days.last().cloned().unwrap_or_default(),
    };
    super::buckets(tree, Dim::Day, &window)
        .map(|(day, _, usage)| (day, usage.requests))
        .collect()
}

/// Recent [`Past`]s of one costs tree, with the series they were judged from.
///
/// A request for "today" then reads the stamp (one bucket per day of the span) and today's
/// buckets, instead of every series' 28-day baseline. When usage lands in an earlier day (a
/// late event), only the days whose stamp changed are read again, and the series updated in
/// place. The tree handle is held so that the identity check (`ptr::eq`) cannot be fooled by
/// a freed tree's address being reused; only one tree's entries are kept, so a rebuilt
/// generation or another store replaces them (and releases the previous tree).
struct PastCache {
    tree: Option<sled::Tree>,
    /// The most recently used first.
    entries: Vec<Cached>,
}

/// What one span's [`Past`] was computed from, and the past.
struct Cached {
    span: Span,
    /// The stamp of the span's days when `series` was read (read before the buckets).
    stamp: Stamp,
    /// The span's series, as [`series_of`] reads them.
    series: Series,
    past: Arc<Past>,
}

/// Spans cached per tree: the dashboard's day and a few windows of the anomalies endpoint.
const CACHED_SPANS: usize = 8;

/// The first and the last day of a span's days before its last.
type Span = (String, String);

static PAST_CACHE: Mutex<PastCache> = Mutex::new(PastCache {
    tree: None,
    entries: Vec::new(),
});

/// How many spans' series [`past`] read whole (every series' buckets of every day): the cost
/// of a cold [`detect`], counted so that `/metrics` shows how often it is paid.
static BASELINES_COMPUTED: AtomicU64 = AtomicU64::new(0);

/// How many times this process read a span's baseline whole: once per span and tree (at the
/// first request of a day after a start, or after a rebuild), not per request.
pub fn baselines_computed() -> u64 {
    BASELINES_COMPUTED.load(Ordering::Relaxed)
}

/// The [`Past`] of the span `before` (its days before the last) for `window` days, from the
/// cache when no usage landed in those days since it was computed (their `stamp`, read
/// before any of their buckets); when some did, from the cached series with only those days
/// read again.
fn past(tree: &sled::Tree, before: &[String], window: usize, stamp: Stamp) -> Arc<Past> {
    let span: Span = (
        before.first().cloned().unwrap_or_default(),
        before.last().cloned().unwrap_or_default(),
    );
    let lock = || {
        PAST_CACHE
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    };
    let stale = {
        let mut cache = lock();
        if !cache.tree.as_ref().is_some_and(|t| same_tree(t, tree)) {
            cache.tree = Some(tree.clone());
            cache.entries.clear();
        }
        match cache.entries.iter().position(|c| c.span == span) {
            Some(at) if cache.entries[at].stamp == stamp => {
                let entry = cache.entries.remove(at);
                let found = entry.past.clone();
                cache.entries.insert(0, entry);
                return found;
            }
            // A span's older stamp is stale for good (stamps only grow): its series are
            // updated outside the lock and the entry put back.
            Some(at) => Some(cache.entries.remove(at)),
            None => None,
        }
    };
    let (series, spent) = match stale {
        Some(Cached {
            stamp: old,
            mut series,
            past,
            ..
        }) => {
            for index in changed_days(&old, &stamp, before) {
                update_day(&mut series, tree, before, index);
            }
            // The last day is the span's next: its kept spend carries over (a late event
            // changed the days before it), and its watch holds what was written since.
            let spent = past
                .last
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .spent
                .take();
            (series, spent)
        }
        None => {
            BASELINES_COMPUTED.fetch_add(1, Ordering::Relaxed);
            (series_of(tree, before), None)
        }
    };
    let computed = Arc::new(Past::new(&series, before, window));
    computed
        .last
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .spent = spent;
    let mut cache = lock();
    if cache.tree.as_ref().is_some_and(|t| same_tree(t, tree)) {
        cache.entries.retain(|c| c.span != span);
        cache.entries.insert(
            0,
            Cached {
                span,
                stamp,
                series,
                past: computed.clone(),
            },
        );
        cache.entries.truncate(CACHED_SPANS);
    }
    computed
}

/// Indices in `days` of the days whose requests differ between two stamps of them.
fn changed_days(old: &Stamp, new: &Stamp, days: &[String]) -> Vec<usize> {
    let old: BTreeMap<&str, u64> = old.iter().map(|(d, n)| (d.as_str(), *n)).collect();
    let new: BTreeMap<&str, u64> = new.iter().map(|(d, n)| (d.as_str(), *n)).collect();
    days.iter()
        .enumerate()
        .filter(|(_, day)| old.get(day.as_str()) != new.get(day.as_str()))
        .map(|(i, _)| i)
        .collect()
}

/// Reads day `index` of `days` again into `series` (as [`series_of`] would read it now): a
/// series without a bucket that day spent 0 if it began earlier; a series may begin, or
/// begin earlier, that day.
fn update_day(series: &mut Series, tree: &sled::Tree, days: &[String], index: usize) {
    let spend = spend_on(tree, &days[index]);
    for ((_, values), mut today) in series.iter_mut().zip(spend) {
        for (value, s) in values.iter_mut() {
            s[index] = today.remove(value).unwrap_or(f64::NAN);
            zero_fill(s);
        }
        for (value, cost) in today {
            let mut s = vec![f64::NAN; days.len()];
            s[index] = cost;
            zero_fill(&mut s);
            values.insert(value, s);
        }
    }
}

/// NaN before a series began (its first day with spend), 0 on its later days without.
fn zero_fill(s: &mut [f64]) {
    let first = began(s);
    for v in s.iter_mut().skip(first) {
        if v.is_nan() {
            *v = 0.0;
        }
    }
}

/// §A3 robust detector: for each of the `window_days` days ending with `as_of`'s day, the
/// daily spend in total and per model, profile and task type against its baseline (the 28
/// days before, same-weekday medians, MAD of residuals). Ordered by day, then dimension
/// (`total` first), then value.
///
/// Everything but the last day's spend comes from a cache of what the earlier days give,
/// valid while no usage lands in them (their `time_period` buckets count the same requests):
/// once computed, a request reads one bucket per day of the span, and one per series with
/// spend on the last day when that day holds requests it did not when last judged. A late
/// event reads again the days it landed in (their buckets of every series); a new day or
/// another window computes it whole.
pub fn detect(tree: &sled::Tree, window_days: u32, as_of: Timestamp) -> Vec<SpendAnomaly> {
    let window = window_days.max(1) as usize;
    let span = window + BASELINE_DAYS;
    let days: Vec<String> = (0..span)
        .rev()
        .map(|back| super::day_of(as_of.plus_seconds(-(back as i64) * 86_400)))
        .collect();
    let (before, last) = days.split_at(span - 1);
    // The stamp of every day of the span, read before any bucket: a batch landing in between
    // then changes the stamp, so spend holding some of its usage is never kept under a stamp
    // that claims all of it. That holds in the middle of a commit too: a fold writes its keys
    // one by one in key order, so a day's `time_period` bucket (the stamp) lands after every
    // other dimension's buckets of that batch. (Keeping only what was read while no commit
    // was under way would be stricter, and under a steady ingest of today's usage it would
    // keep nothing: every dashboard would read the whole baseline and today again.)
    let mut stamped = stamp(tree, &days);
    let requests = match stamped.last() {
        Some((day, requests)) if *day == last[0] => {
            let requests = *requests;
            stamped.pop();
            requests
        }
        _ => 0,
    };
    let before_last = past(tree, before, window, stamped);
    let mut out = before_last.anomalies.clone();
    out.extend(before_last.last_day_anomalies(tree, &last[0], requests));
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a test fails by panicking
mod tests;
