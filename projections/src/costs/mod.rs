//! LLM cost analytics (DOMAIN.md §B3, §B4, §B5 with the fixes of §A1–A2): prices, usage,
//! breakdowns, budgets and the optimizer, folded from `ats.llm.usage`, `ats.model.priced`,
//! `ats.budget.set` and the session events (for the session → scenario mapping).
//!
//! Tree layout (`costs_v5`):
//! - `r/<provider/name>` → [`registry::PriceHistory`] (price points of `ats.model.priced`)
//! - `t/<dim>\0<value>` → [`Usage`] all-time totals per model and profile; `t/global\0` the
//!   grand total (a session's all-time total is its `s/` record's `total`: one key less per
//!   usage, since sessions are many and each batch touches most of its sessions' keys anew)
//! - `b/<dim>\0<YYYY-MM-DD>\0<value>` → [`Usage`] UTC day buckets per dimension (`model`,
//!   `profile`, `session`, `scenario`, `phase`, `task_type`, `time_period`); every windowed
//!   question is a range scan over days, so its cost does not grow with the number of events
//! - `s/<session>` → [`SessionCost`]; `ss/<session>` → the session's scenario id
//! - `u/<start of a ten-minute span of occurred_at, BE>` → the span's [`UsageRecord`]s in time
//!   order, ties by event id (for export and request-level anomalies): one key per usage was
//!   ~0.8 of the ~2.85 keys a rebuild wrote per event, and sled's cost is per key. A page
//!   holds at most [`USAGE_PAGE_RECORDS`]; a fuller one splits, its upper half under
//!   `u/<time, BE>\0<event id>` of its first record, listed in `ud/<span start>`
//! - `bu/…`, `ba/…` → budgets and their alerts ([`budgets`])
//!
//! Values are stored positionally ([`Encoding::Positional`]): a usage writes a record and
//! about a dozen [`Usage`] aggregates, and field names were two thirds of their bytes; no
//! type stored here skips or flattens a field.
//!
//! Money is `f64` USD, never rounded in state; sums run in key order (days, then values), so
//! the same log gives the same bits. Responses carry the raw sums; the CLI prints cents.

pub mod anomalies;
pub mod budgets;
pub mod forecast;
pub mod optimizer;
pub mod planner;
pub mod registry;
pub mod what_if;

use std::collections::{BTreeMap, BTreeSet};

use ats_events::{Envelope, LlmUsage, Payload, Timestamp};
use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::profiles::time_bytes;
use crate::runtime::{ApplyError, Projector};
use crate::view::{Encoding, View};
use registry::{price_at, price_usage, ModelInfo, PriceHistory};

/// The projector's name (with its version).
pub const NAME: &str = "costs_v5";

/// Scenario bucket values of usage whose scenario is not known yet start with this byte,
/// followed by the session id; they move to the scenario when the session names it.
const UNATTRIBUTED: char = '\u{1}';

/// What a usage is grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Dim {
    /// `provider/name`.
    Model,
    /// Operator profile.
    Profile,
    /// Session.
    Session,
    /// Scenario (from the usage, else from its session).
    Scenario,
    /// Phase (the usage's `phase`, else its task type, as the seed).
    Phase,
    /// Task type.
    TaskType,
    /// The UTC day itself.
    Day,
}

impl Dim {
    fn as_str(self) -> &'static str {
        match self {
            Self::Model => "model",
            Self::Profile => "profile",
            Self::Session => "session",
            Self::Scenario => "scenario",
            Self::Phase => "phase",
            Self::TaskType => "task_type",
            Self::Day => "time_period",
        }
    }
}

/// Seed `CostCategory` (`model` accepted as an alias of `model_usage`, §A2.8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CostCategory {
    /// By model.
    ModelUsage,
    /// By operator profile.
    Profile,
    /// By scenario.
    Scenario,
    /// By phase.
    Phase,
    /// By UTC day.
    TimePeriod,
}

impl CostCategory {
    /// Every category in the seed's order.
    pub const ALL: [CostCategory; 5] = [
        Self::ModelUsage,
        Self::Profile,
        Self::Scenario,
        Self::Phase,
        Self::TimePeriod,
    ];

    /// The wire string.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ModelUsage => "model_usage",
            Self::Profile => "profile",
            Self::Scenario => "scenario",
            Self::Phase => "phase",
            Self::TimePeriod => "time_period",
        }
    }

    /// Parses a wire string or the `model` alias.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "model" => Some(Self::ModelUsage),
            other => Self::ALL.into_iter().find(|c| c.as_str() == other),
        }
    }

    fn dim(self) -> Dim {
        match self {
            Self::ModelUsage => Dim::Model,
            Self::Profile => Dim::Profile,
            Self::Scenario => Dim::Scenario,
            Self::Phase => Dim::Phase,
            Self::TimePeriod => Dim::Day,
        }
    }
}

/// Aggregated usage (seed `model_usage` entries and `stats`, with unpriced counts).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Usage {
    /// Requests.
    pub requests: u64,
    /// USD.
    pub cost: f64,
    /// Σ cost², for the spread of request costs.
    pub cost_squares: f64,
    /// Input tokens (cached ones included).
    pub input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
    /// Cached input tokens.
    pub cached_input_tokens: u64,
    /// Successful requests.
    pub successful: u64,
    /// Failed requests (still charged, as the seed).
    pub failed: u64,
    /// Requests with no producer cost and no price (§A2.7), stored at cost 0.
    pub unpriced_requests: u64,
    /// Input + output tokens of unpriced requests.
    pub unpriced_tokens: u64,
    /// Σ latency of requests that reported one.
    pub latency_ms_total: f64,
    /// Requests that reported a latency.
    pub latency_samples: u64,
    /// Earliest `occurred_at`.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub first_at: Option<Timestamp>,
    /// Latest `occurred_at`.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_at: Option<Timestamp>,
}

impl Usage {
    fn record(&mut self, sample: &UsageRecord) {
        self.requests += 1;
        self.cost += sample.cost;
        self.cost_squares += sample.cost * sample.cost;
        self.input_tokens += sample.input_tokens;
        self.output_tokens += sample.output_tokens;
        self.cached_input_tokens += sample.cached_input_tokens;
        if sample.success {
            self.successful += 1;
        } else {
            self.failed += 1;
        }
        if sample.unpriced {
            self.unpriced_requests += 1;
            self.unpriced_tokens += sample.input_tokens + sample.output_tokens;
        }
        if let Some(latency) = sample.latency_ms {
            self.latency_ms_total += latency;
            self.latency_samples += 1;
        }
        self.first_at = Some(
            self.first_at
                .map_or(sample.timestamp, |t| t.min(sample.timestamp)),
        );
        self.last_at = Some(
            self.last_at
                .map_or(sample.timestamp, |t| t.max(sample.timestamp)),
        );
    }

    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: &Usage) {
        self.requests += other.requests;
        self.cost += other.cost;
        self.cost_squares += other.cost_squares;
        self.input_tokens += other.input_tokens;
        self.output_tokens += other.output_tokens;
        self.cached_input_tokens += other.cached_input_tokens;
        self.successful += other.successful;
        self.failed += other.failed;
        self.unpriced_requests += other.unpriced_requests;
        self.unpriced_tokens += other.unpriced_tokens;
        self.latency_ms_total += other.latency_ms_total;
        self.latency_samples += other.latency_samples;
        self.first_at = match (self.first_at, other.first_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.last_at = match (self.last_at, other.last_at) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
    }

    /// Input + output tokens (the seed's `total_tokens`).
    pub fn tokens(&self) -> u64 {
        self.input_tokens + self.output_tokens
    }

    /// Mean latency of the requests that reported one (0 without any).
    pub fn average_latency_ms(&self) -> f64 {
        if self.latency_samples == 0 {
            0.0
        } else {
            self.latency_ms_total / self.latency_samples as f64
        }
    }
}

/// One usage as priced at fold time (seed `UsageMetrics`, plus the fields of §A1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct UsageRecord {
    /// Event id.
    pub id: String,
    /// `occurred_at`.
    #[schema(value_type = String, format = DateTime)]
    pub timestamp: Timestamp,
    /// `provider/name`.
    pub model: String,
    /// Operator profile.
    pub profile_id: String,
    /// Session.
    pub session_id: String,
    /// Task type.
    pub task_type: String,
    /// Scenario, from the usage or from its session when known at fold time.
    pub scenario_id: Option<String>,
    /// Phase.
    pub phase: Option<String>,
    /// Input tokens.
    pub input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
    /// Cached input tokens.
    pub cached_input_tokens: u64,
    /// USD: the producer's cost, else the price in force at `timestamp`, else 0.
    pub cost: f64,
    /// True when no cost could be given (§A2.7).
    pub unpriced: bool,
    /// Latency in milliseconds.
    pub latency_ms: Option<f64>,
    /// Whether the request succeeded.
    pub success: bool,
    /// Error message of a failed request.
    pub error_message: Option<String>,
}

/// The cost of one session.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SessionCost {
    /// Session id.
    pub session_id: String,
    /// Profile of its first usage.
    pub profile_id: String,
    /// Scenario, once known.
    pub scenario_id: Option<String>,
    /// All of its usage.
    pub total: Usage,
    /// By model.
    pub by_model: BTreeMap<String, Usage>,
    /// By task type.
    pub by_task_type: BTreeMap<String, Usage>,
    /// Days holding usage not yet attributed to a scenario.
    pub unattributed_days: BTreeSet<String>,
}

fn dim_prefix(tag: &[u8], dim: Dim) -> Vec<u8> {
    [tag, dim.as_str().as_bytes(), b"\0"].concat()
}

fn bucket_key(dim: Dim, day: &str, value: &str) -> Vec<u8> {
    [
        dim_prefix(b"b/", dim).as_slice(),
        day.as_bytes(),
        b"\0",
        value.as_bytes(),
    ]
    .concat()
}

fn total_key(dim: Dim, value: &str) -> Vec<u8> {
    [dim_prefix(b"t/", dim).as_slice(), value.as_bytes()].concat()
}

const GLOBAL_KEY: &[u8] = b"t/global\0";

fn price_key(model: &str) -> Vec<u8> {
    [b"r/", model.as_bytes()].concat()
}

fn session_key(session: &str) -> Vec<u8> {
    [b"s/", session.as_bytes()].concat()
}

fn scenario_of_key(session: &str) -> Vec<u8> {
    [b"ss/", session.as_bytes()].concat()
}

/// Usage records are kept in pages of this span of `occurred_at`: at 1M events over 90
/// days a span holds ~60 records under one key instead of sixty.
const USAGE_SPAN_MICROS: i64 = 600 * Timestamp::MICROS_PER_SEC;

/// The most records one page holds (~15–40 KB): a span that receives more (a busy ten
/// minutes, or a replay of a log whose usage shares a few instants) is split like a B-tree
/// leaf, so a live batch rewrites a bounded page, never the whole span, and no page grows
/// past sled's blob threshold (128 KiB), above which it writes a file per version.
pub const USAGE_PAGE_RECORDS: usize = 256;

/// The key of the first page of the span holding `at`: `u/<span start>`.
fn usage_span_key(at: Timestamp) -> Vec<u8> {
    // Saturating: the open bounds of an export are the extreme instants.
    let start = at
        .micros()
        .saturating_sub(at.micros().rem_euclid(USAGE_SPAN_MICROS));
    [b"u/".as_slice(), &time_bytes(Timestamp::from_micros(start))].concat()
}

/// The key of a page split off a span, named by the (time, event id) of its first record:
/// `u/<time>\0<id>`, after its span's first page and in the records' order.
fn usage_page_key(timestamp: Timestamp, id: &str) -> Vec<u8> {
    [
        b"u/".as_slice(),
        &time_bytes(timestamp),
        b"\0",
        id.as_bytes(),
    ]
    .concat()
}

/// `ud/<span start>` → the (time, id) of the first record of each page split off the span,
/// in order; absent while the span is one page. A record goes to the last page starting at
/// or before it.
fn usage_directory_key(span_key: &[u8]) -> Vec<u8> {
    [b"ud/".as_slice(), &span_key[2..]].concat()
}

/// Inserts `record` in time order (ties by event id) into the page of its span that holds
/// its place, splitting the page in two when it outgrows [`USAGE_PAGE_RECORDS`].
fn insert_usage_record(view: &mut View<'_>, record: UsageRecord) -> Result<(), ApplyError> {
    let span = usage_span_key(record.timestamp);
    let directory_key = usage_directory_key(&span);
    let place = (record.timestamp, record.id.as_str());
    let page_key = match view.get::<Vec<(Timestamp, String)>>(&directory_key)? {
        Some(starts) => match starts.partition_point(|(t, id)| (*t, id.as_str()) <= place) {
            0 => span,
            after => usage_page_key(starts[after - 1].0, &starts[after - 1].1),
        },
        None => span,
    };
    let page = view.entry::<Vec<UsageRecord>>(&page_key, Vec::new)?;
    let slot = page.partition_point(|r| (r.timestamp, r.id.as_str()) <= place);
    page.insert(slot, record);
    if page.len() <= USAGE_PAGE_RECORDS {
        return Ok(());
    }
    let upper = page.split_off(page.len() / 2);
    let first = (upper[0].timestamp, upper[0].id.clone());
    view.put(&usage_page_key(first.0, &first.1), upper)?;
    let starts = view.entry::<Vec<(Timestamp, String)>>(&directory_key, Vec::new)?;
    let at = starts.partition_point(|start| *start < first);
    starts.insert(at, first);
    Ok(())
}

/// The pages that may hold usage records with `from ≤ occurred_at ≤ to`, in time order.
fn usage_pages_between(
    tree: &sled::Tree,
    from: Timestamp,
    to: Timestamp,
) -> impl Iterator<Item = sled::IVec> {
    // Every page holding a record at or before `to` has a key below `u/<to>\x01`; the pages
    // of `from`'s span start at or after its first page.
    let end = [b"u/".as_slice(), &time_bytes(to), b"\x01"].concat();
    tree.range(usage_span_key(from)..end)
        .values()
        .filter_map(Result::ok)
}

/// Usage records with `from ≤ occurred_at ≤ to`, in time order (ties by event id).
fn usage_between(
    tree: &sled::Tree,
    from: Timestamp,
    to: Timestamp,
) -> impl Iterator<Item = UsageRecord> {
    usage_pages_between(tree, from, to)
        .filter_map(|page| decode::<Vec<UsageRecord>>(&page))
        .flatten()
        .filter(move |r| from <= r.timestamp && r.timestamp <= to)
}

/// What a scan of many usage records needs of each: its time, cost and outcome, and its id
/// and model borrowed from the page's bytes. Decoding only these (the other fields skipped
/// without allocating) took the seed's anomaly rules over a week from 22.7 to 9.4 ms in
/// process (`seed_anomalies_week`) against decoding whole [`UsageRecord`]s.
///
/// The fields are [`UsageRecord`]'s, in its order: the costs tree stores records by position
/// (`usage_glimpses_are_the_records_fields` keeps the two in step).
#[derive(Debug, Deserialize)]
pub(crate) struct UsageGlimpse<'a> {
    pub id: &'a str,
    pub timestamp: Timestamp,
    pub model: &'a str,
    _profile_id: IgnoredAny,
    _session_id: IgnoredAny,
    _task_type: IgnoredAny,
    _scenario_id: IgnoredAny,
    _phase: IgnoredAny,
    _input_tokens: IgnoredAny,
    _output_tokens: IgnoredAny,
    _cached_input_tokens: IgnoredAny,
    pub cost: f64,
    _unpriced: IgnoredAny,
    _latency_ms: IgnoredAny,
    pub success: bool,
    _error_message: IgnoredAny,
}

/// The glimpses of the records with `from ≤ occurred_at ≤ to` in `pages` (read by
/// [`usage_pages_between`]), in time order.
pub(crate) fn glimpses_between(
    pages: &[sled::IVec],
    from: Timestamp,
    to: Timestamp,
) -> Vec<UsageGlimpse<'_>> {
    pages
        .iter()
        .filter_map(|page| decode::<Vec<UsageGlimpse<'_>>>(page))
        .flatten()
        .filter(|r| from <= r.timestamp && r.timestamp <= to)
        .collect()
}

/// The UTC day of `at` as `YYYY-MM-DD` (fixed width, so byte order is time order).
pub fn day_of(at: Timestamp) -> String {
    at.to_datetime().format("%Y-%m-%d").to_string()
}

/// Folds LLM usage, prices and budgets into costs.
pub struct CostsProjector;

impl CostsProjector {
    fn usage(view: &mut View<'_>, event: &Envelope, usage: &LlmUsage) -> Result<(), ApplyError> {
        let at = event.occurred_at;
        let history = view.get::<PriceHistory>(&price_key(&usage.model))?.cloned();
        let price = price_at(&usage.model, history.as_ref(), at);
        let priced = price_usage(usage, price.as_ref());
        let scenario = match &usage.scenario_id {
            Some(s) => Some(s.clone()),
            None => view
                .get::<String>(&scenario_of_key(&usage.session_id))?
                .cloned(),
        };
        let record = UsageRecord {
            id: event.id.to_string(),
            timestamp: at,
            model: usage.model.clone(),
            profile_id: usage.profile_id.clone(),
            session_id: usage.session_id.clone(),
            task_type: usage.task_type.clone(),
            scenario_id: scenario.clone(),
            phase: usage.phase.clone(),
            input_tokens: usage.input_tokens,
            output_tokens: usage.output_tokens,
            cached_input_tokens: usage.cached_input_tokens,
            cost: priced.cost,
            unpriced: priced.unpriced,
            latency_ms: usage.latency_ms,
            success: usage.success,
            error_message: usage.error_message.clone(),
        };
        let day = day_of(at);
        let scenario_value = scenario
            .clone()
            .unwrap_or_else(|| format!("{UNATTRIBUTED}{}", usage.session_id));
        let phase = usage.phase.as_deref().unwrap_or(&usage.task_type);
        let buckets = [
            (Dim::Model, usage.model.as_str()),
            (Dim::Profile, usage.profile_id.as_str()),
            (Dim::Session, usage.session_id.as_str()),
            (Dim::Scenario, scenario_value.as_str()),
            (Dim::Phase, phase),
            (Dim::TaskType, usage.task_type.as_str()),
            (Dim::Day, day.as_str()),
        ];
        for (dim, value) in buckets {
            view.entry(&bucket_key(dim, &day, value), Usage::default)?
                .record(&record);
        }
        for (dim, value) in &buckets[..2] {
            view.entry(&total_key(*dim, value), Usage::default)?
                .record(&record);
        }
        view.entry(GLOBAL_KEY, Usage::default)?.record(&record);
        let session = view.entry(&session_key(&usage.session_id), || SessionCost {
            session_id: usage.session_id.clone(),
            profile_id: usage.profile_id.clone(),
            ..SessionCost::default()
        })?;
        session.total.record(&record);
        session
            .by_model
            .entry(usage.model.clone())
            .or_default()
            .record(&record);
        session
            .by_task_type
            .entry(usage.task_type.clone())
            .or_default()
            .record(&record);
        match &scenario {
            Some(s) if session.scenario_id.is_none() => session.scenario_id = Some(s.clone()),
            Some(_) => {}
            None => {
                session.unattributed_days.insert(day);
            }
        }
        insert_usage_record(view, record)?;
        budgets::usage_folded(view, usage, at, &event.id.to_string())
    }

    /// The first session event naming a scenario fixes the session's scenario; usage folded
    /// before it moves from "unattributed" to that scenario.
    fn session_scenario(
        view: &mut View<'_>,
        session_id: &str,
        scenario_id: &str,
    ) -> Result<(), ApplyError> {
        let key = scenario_of_key(session_id);
        if view.get::<String>(&key)?.is_some() {
            return Ok(());
        }
        view.put(&key, scenario_id.to_owned())?;
        let days = match view.get_mut::<SessionCost>(&session_key(session_id))? {
            Some(session) => {
                if session.scenario_id.is_none() {
                    session.scenario_id = Some(scenario_id.to_owned());
                }
                std::mem::take(&mut session.unattributed_days)
            }
            None => return Ok(()),
        };
        let from_value = format!("{UNATTRIBUTED}{session_id}");
        for day in days {
            let from = bucket_key(Dim::Scenario, &day, &from_value);
            if let Some(moved) = view.get::<Usage>(&from)?.cloned() {
                view.remove(&from)?;
                view.entry(
                    &bucket_key(Dim::Scenario, &day, scenario_id),
                    Usage::default,
                )?
                .merge(&moved);
            }
        }
        Ok(())
    }
}

impl Projector for CostsProjector {
    fn name(&self) -> &'static str {
        NAME
    }

    fn encoding(&self) -> Encoding {
        Encoding::Positional
    }

    fn apply(&self, view: &mut View<'_>, event: &Envelope) -> Result<(), ApplyError> {
        match &event.payload {
            Payload::LlmUsage(usage) => Self::usage(view, event, usage),
            Payload::ModelPriced(priced) => {
                let full = format!("{}/{}", priced.provider, priced.name);
                let default = registry::default_model(&full);
                view.entry(&price_key(&full), PriceHistory::default)?
                    .insert(priced, default.as_ref());
                Ok(())
            }
            Payload::BudgetSet(budget) => budgets::budget_set(view, event, budget),
            Payload::SessionStarted(s) => {
                Self::session_scenario(view, &s.session_id, &s.scenario_id)
            }
            Payload::SessionCompleted(s) => {
                Self::session_scenario(view, &s.session_id, &s.scenario_id)
            }
            _ => Ok(()),
        }
    }
}

pub(crate) use crate::profiles::decode;

pub(crate) fn read<T: serde::de::DeserializeOwned>(tree: &sled::Tree, key: &[u8]) -> Option<T> {
    tree.get(key).ok().flatten().and_then(|v| decode(&v))
}

/// The registry as of `as_of`: the default models in the seed's order, each with the price
/// in force then, followed by models only `ats.model.priced` introduced (by full name).
pub fn models(tree: &sled::Tree, as_of: Timestamp) -> Vec<ModelInfo> {
    let histories: BTreeMap<String, PriceHistory> = tree
        .scan_prefix(b"r/")
        .filter_map(Result::ok)
        .filter_map(|(k, v)| Some((String::from_utf8_lossy(&k[2..]).into_owned(), decode(&v)?)))
        .collect();
    let mut out: Vec<ModelInfo> = registry::default_models()
        .into_iter()
        .map(|m| {
            let full = m.full_name();
            price_at(&full, histories.get(&full), as_of).unwrap_or(m)
        })
        .collect();
    for (full, history) in &histories {
        if registry::default_model(full).is_none() {
            if let Some(model) = history.at(as_of) {
                out.push(model.clone());
            }
        }
    }
    out
}

/// A window of whole UTC days: `time_range_days` days ending with the day of `as_of`
/// (all days up to it when `None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    /// First day included, `None` = from the beginning.
    pub first_day: Option<String>,
    /// Last day included.
    pub last_day: String,
}

impl Window {
    /// The window of `days` days ending with `as_of`'s day.
    pub fn new(days: Option<u32>, as_of: Timestamp) -> Self {
        let first_day = days.map(|d| {
            let back = i64::from(d.max(1)) - 1;
            day_of(as_of.plus_seconds(-back * 86_400))
        });
        Self {
            first_day,
            last_day: day_of(as_of),
        }
    }
}

/// Day buckets of `dim` in `window` as `(day, value, usage)`, in key order (days, then
/// values).
pub(crate) fn buckets<'t>(
    tree: &'t sled::Tree,
    dim: Dim,
    window: &Window,
) -> impl Iterator<Item = (String, String, Usage)> + 't {
    let prefix = dim_prefix(b"b/", dim);
    let start = [
        prefix.as_slice(),
        window.first_day.as_deref().unwrap_or("").as_bytes(),
    ]
    .concat();
    let end = [prefix.as_slice(), window.last_day.as_bytes(), b"\x01"].concat();
    tree.range(start..end)
        .filter_map(Result::ok)
        .filter_map(move |(key, value)| {
            let rest = &key[prefix.len()..];
            let split = rest.iter().position(|b| *b == 0)?;
            Some((
                String::from_utf8_lossy(&rest[..split]).into_owned(),
                String::from_utf8_lossy(&rest[split + 1..]).into_owned(),
                decode::<Usage>(&value)?,
            ))
        })
}

/// The prefix of the buckets of `dim` on `day`: `b/<dim>\0<day>\0`, followed by the value.
pub(crate) fn day_prefix(dim: Dim, day: &str) -> Vec<u8> {
    [dim_prefix(b"b/", dim).as_slice(), day.as_bytes(), b"\0"].concat()
}

/// The cost of the bucket under `key`, if there is one.
pub(crate) fn bucket_cost(tree: &sled::Tree, key: &[u8]) -> Option<f64> {
    Some(decode::<Usage>(&tree.get(key).ok()??)?.cost)
}

/// The cost of each bucket of `dim` on `day`, in value order: the bucket's key, where the
/// value's name starts in it, and the cost (names are not decoded into strings).
pub(crate) fn day_costs<'t>(
    tree: &'t sled::Tree,
    dim: Dim,
    day: &str,
) -> impl Iterator<Item = (sled::IVec, usize, f64)> + 't {
    let prefix = day_prefix(dim, day);
    let at = prefix.len();
    tree.scan_prefix(prefix)
        .filter_map(Result::ok)
        .filter_map(move |(key, value)| Some((key, at, decode::<Usage>(&value)?.cost)))
}

/// Day buckets of `dim` in `window`, merged per value (days in order, then values); usage
/// not yet attributed to a scenario is one `unattributed` item.
pub fn scan(tree: &sled::Tree, dim: Dim, window: &Window) -> BTreeMap<String, Usage> {
    let mut out: BTreeMap<String, Usage> = BTreeMap::new();
    for (_, mut name, usage) in buckets(tree, dim, window) {
        if name.starts_with(UNATTRIBUTED) {
            name = "unattributed".into();
        }
        out.entry(name).or_default().merge(&usage);
    }
    out
}

/// Seed `CostBreakdown.time_range`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TimeRange {
    /// Earliest usage in the window.
    pub start: String,
    /// Latest usage in the window.
    pub end: String,
}

/// One item of a breakdown with its share of the total (§A2.8).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BreakdownItem {
    /// Model, profile, scenario, phase or day (`unattributed`: scenario not known).
    pub item: String,
    /// USD.
    pub cost: f64,
    /// cost / total (0 when the total is 0).
    pub share: f64,
    /// Requests.
    pub requests: u64,
    /// Input + output tokens.
    pub tokens: u64,
    /// Requests stored at cost 0 for want of a price.
    pub unpriced_requests: u64,
}

/// Seed `CostBreakdown.to_dict()` plus shares, unpriced usage and the window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CostBreakdown {
    /// The category (`model_usage` also for `model`).
    pub category: CostCategory,
    /// Cost per item (seed shape).
    pub items: BTreeMap<String, f64>,
    /// Σ items.
    pub total_cost: f64,
    /// The seed's field: 100 when there is any cost, else 0.
    pub percentage_of_total: f64,
    /// Earliest and latest usage in the window (absent when there is none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_range: Option<TimeRange>,
    /// Items by cost (descending; ties by item) with their shares.
    pub ranked_items: Vec<BreakdownItem>,
    /// Requests in the window.
    pub total_requests: u64,
    /// Requests without a price (stored at cost 0).
    pub unpriced_requests: u64,
    /// Tokens of those requests.
    pub unpriced_tokens: u64,
    /// The window in days (absent: all time up to `as_of`).
    pub time_range_days: Option<u32>,
    /// The instant the window ends with.
    pub as_of: String,
}

/// Seed `get_detailed_breakdown(category, time_range)` from day buckets.
pub fn breakdown(
    tree: &sled::Tree,
    category: CostCategory,
    time_range_days: Option<u32>,
    as_of: Timestamp,
) -> CostBreakdown {
    let window = Window::new(time_range_days, as_of);
    let groups = scan(tree, category.dim(), &window);
    let total: f64 = groups.values().map(|u| u.cost).sum();
    let mut all = Usage::default();
    for usage in groups.values() {
        all.merge(usage);
    }
    let share = |cost: f64| if total > 0.0 { cost / total } else { 0.0 };
    let mut ranked: Vec<BreakdownItem> = groups
        .iter()
        .map(|(item, u)| BreakdownItem {
            item: item.clone(),
            cost: u.cost,
            share: share(u.cost),
            requests: u.requests,
            tokens: u.tokens(),
            unpriced_requests: u.unpriced_requests,
        })
        .collect();
    ranked.sort_by(|a, b| b.cost.total_cmp(&a.cost).then_with(|| a.item.cmp(&b.item)));
    CostBreakdown {
        category,
        items: groups.iter().map(|(k, u)| (k.clone(), u.cost)).collect(),
        total_cost: total,
        percentage_of_total: if total > 0.0 { 100.0 } else { 0.0 },
        time_range: match (all.first_at, all.last_at) {
            (Some(start), Some(end)) => Some(TimeRange {
                start: start.to_rfc3339(),
                end: end.to_rfc3339(),
            }),
            _ => None,
        },
        ranked_items: ranked,
        total_requests: all.requests,
        unpriced_requests: all.unpriced_requests,
        unpriced_tokens: all.unpriced_tokens,
        time_range_days,
        as_of: as_of.to_rfc3339(),
    }
}

/// Seed `stats`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct GlobalStats {
    /// Requests.
    pub total_requests: u64,
    /// USD.
    pub total_cost: f64,
    /// Input tokens.
    pub total_input_tokens: u64,
    /// Output tokens.
    pub total_output_tokens: u64,
    /// Successful requests.
    pub successful_requests: u64,
    /// Failed requests.
    pub failed_requests: u64,
    /// Requests stored at cost 0 for want of a price (§A2.7).
    pub unpriced_requests: u64,
}

/// Seed `CostTracker.get_statistics()` (all time).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Statistics {
    /// Totals.
    pub global_stats: GlobalStats,
    /// Sessions with usage.
    pub active_sessions: usize,
    /// Profiles with usage.
    pub active_profiles: usize,
    /// Models used.
    pub models_used: usize,
    /// Usage records.
    pub total_usage_records: u64,
    /// cost / requests (0 without requests).
    pub average_cost_per_request: f64,
    /// successful / requests (0 without requests).
    pub success_rate: f64,
}

/// Seed `get_statistics()`.
pub fn statistics(tree: &sled::Tree) -> Statistics {
    let all: Usage = read(tree, GLOBAL_KEY).unwrap_or_default();
    let count = |prefix: &[u8]| tree.scan_prefix(prefix).count();
    let per = |n: f64| {
        if all.requests == 0 {
            0.0
        } else {
            n / all.requests as f64
        }
    };
    Statistics {
        global_stats: GlobalStats {
            total_requests: all.requests,
            total_cost: all.cost,
            total_input_tokens: all.input_tokens,
            total_output_tokens: all.output_tokens,
            successful_requests: all.successful,
            failed_requests: all.failed,
            unpriced_requests: all.unpriced_requests,
        },
        active_sessions: count(b"s/"),
        active_profiles: count(&dim_prefix(b"t/", Dim::Profile)),
        models_used: count(&dim_prefix(b"t/", Dim::Model)),
        total_usage_records: all.requests,
        average_cost_per_request: per(all.cost),
        success_rate: per(all.successful as f64),
    }
}

/// One session's cost, if it had usage.
pub fn session_cost(tree: &sled::Tree, session_id: &str) -> Option<SessionCost> {
    read(tree, &session_key(session_id))
}

/// All-time usage of one model (seed `get_model_statistics` source).
pub fn model_usage(tree: &sled::Tree, model: &str) -> Option<Usage> {
    read(tree, &total_key(Dim::Model, model))
}

/// Seed `get_model_statistics(model)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ModelStatistics {
    /// `provider/name`.
    pub model: String,
    /// Requests.
    pub total_requests: u64,
    /// Successful requests.
    pub successful_requests: u64,
    /// Failed requests.
    pub failed_requests: u64,
    /// successful / requests.
    pub success_rate: f64,
    /// USD.
    pub total_cost: f64,
    /// Input + output tokens.
    pub total_tokens: u64,
    /// cost / requests.
    pub average_cost_per_request: f64,
    /// Mean latency of the requests that reported one (0 when none did).
    pub average_latency_ms: f64,
}

/// Seed `get_model_statistics(model)`; `None` without usage of the model.
pub fn model_statistics(tree: &sled::Tree, model: &str) -> Option<ModelStatistics> {
    let usage = model_usage(tree, model)?;
    let per = |n: f64, d: u64| if d == 0 { 0.0 } else { n / d as f64 };
    Some(ModelStatistics {
        model: model.to_owned(),
        total_requests: usage.requests,
        successful_requests: usage.successful,
        failed_requests: usage.failed,
        success_rate: per(usage.successful as f64, usage.requests),
        total_cost: usage.cost,
        total_tokens: usage.input_tokens + usage.output_tokens,
        average_cost_per_request: per(usage.cost, usage.requests),
        average_latency_ms: per(usage.latency_ms_total, usage.latency_samples),
    })
}

/// Seed `get_session_llm_costs(session)` (§B13.1) with the session budget as of `as_of`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SessionLlmCosts {
    /// Session id.
    pub session_id: String,
    /// USD.
    pub total_cost: f64,
    /// `{input, output}` tokens.
    pub tokens: BTreeMap<String, u64>,
    /// Model → USD.
    pub breakdown_by_model: BTreeMap<String, f64>,
    /// The session budget (USD), if one is set.
    pub budget: Option<f64>,
    /// `max(0, budget − spent)`, if a budget is set.
    pub remaining_budget: Option<f64>,
    /// `spent < budget` (strict); true without a budget.
    pub within_budget: bool,
}

/// The LLM costs of one session (zeros for a session without usage, as the seed).
pub fn session_llm_costs(tree: &sled::Tree, session_id: &str, as_of: Timestamp) -> SessionLlmCosts {
    let cost = session_cost(tree, session_id);
    let total = cost.as_ref().map(|c| c.total.clone()).unwrap_or_default();
    let status = budgets::budgets(tree, as_of).into_iter().find(|b| {
        b.budget.scope == ats_events::BudgetScope::Session
            && b.budget.entity_id.as_deref() == Some(session_id)
    });
    SessionLlmCosts {
        session_id: session_id.to_owned(),
        total_cost: total.cost,
        tokens: BTreeMap::from([
            ("input".to_owned(), total.input_tokens),
            ("output".to_owned(), total.output_tokens),
        ]),
        breakdown_by_model: cost
            .map(|c| c.by_model.into_iter().map(|(m, u)| (m, u.cost)).collect())
            .unwrap_or_default(),
        budget: status.as_ref().map(|s| s.budget.amount),
        remaining_budget: status.as_ref().map(|s| s.remaining),
        within_budget: status.is_none_or(|s| s.within_budget),
    }
}

/// All-time usage of one profile.
pub fn profile_usage(tree: &sled::Tree, profile: &str) -> Option<Usage> {
    read(tree, &total_key(Dim::Profile, profile))
}

/// Usage records in time order (ties by event id), for export.
pub fn usage_records(tree: &sled::Tree) -> Vec<UsageRecord> {
    planner::export_usage(tree, &planner::ExportFilter::default())
}

/// Session input/output tokens (seed `get_session_tokens`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Tokens {
    /// Input tokens.
    pub input: u64,
    /// Output tokens.
    pub output: u64,
}

/// Seed `generate_comprehensive_report(session_id, time_range)` (`GET …/cost/summary`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CostSummary {
    /// The `as_of` instant the report describes.
    pub generated_at: String,
    /// The session asked about.
    pub session_id: Option<String>,
    /// The window in days.
    pub time_range_days: Option<u32>,
    /// The session's cost (with `session_id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_cost: Option<f64>,
    /// The session's tokens (with `session_id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<Tokens>,
    /// All-time statistics (without `session_id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub global_stats: Option<Statistics>,
    /// Breakdowns of all five categories over the window (the seed ignores `session_id` here).
    pub breakdowns: BTreeMap<String, CostBreakdown>,
    /// The optimizer's opportunities.
    pub optimization_opportunities: Vec<optimizer::Opportunity>,
    /// Without `session_id`: the seed's anomaly rules over `time_range_days` (default 7)
    /// before `as_of`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anomalies: Option<Vec<anomalies::SeedAnomaly>>,
}

/// The cost summary as of `as_of`.
pub fn summary(
    tree: &sled::Tree,
    session_id: Option<&str>,
    time_range_days: Option<u32>,
    as_of: Timestamp,
) -> CostSummary {
    let session = session_id.map(|s| session_cost(tree, s).unwrap_or_default());
    CostSummary {
        generated_at: as_of.to_rfc3339(),
        session_id: session_id.map(str::to_owned),
        time_range_days,
        total_cost: session.as_ref().map(|s| s.total.cost),
        tokens: session.as_ref().map(|s| Tokens {
            input: s.total.input_tokens,
            output: s.total.output_tokens,
        }),
        global_stats: session_id.is_none().then(|| statistics(tree)),
        breakdowns: CostCategory::ALL
            .into_iter()
            .map(|c| {
                (
                    c.as_str().to_owned(),
                    breakdown(tree, c, time_range_days, as_of),
                )
            })
            .collect(),
        optimization_opportunities: optimizer::identify_opportunities(
            tree,
            session_id,
            time_range_days,
            as_of,
        ),
        anomalies: session_id
            .is_none()
            .then(|| anomalies::seed_anomalies(tree, time_range_days.unwrap_or(7), as_of)),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a test fails by panicking
pub(crate) mod tests;
