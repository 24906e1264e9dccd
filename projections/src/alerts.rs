//! Alerts (§B8.6, issue 7): budget, performance, anomaly and dead-letter alerts, and their
//! acknowledgements (`alerts_v1`).
//!
//! An alert is a *condition* that holds as of an instant, so alerts are evaluated at query
//! time from the read models that already hold their inputs, and clear by themselves when the
//! condition does (auto-resolve):
//! - budget: the crossings `costs_v5` stores, while the budget's current period and arm are the
//!   ones that fired (a new period or a raised budget resolves them);
//! - performance: an operator's mean score over their last [`RECENT_SESSIONS`] sessions
//!   (started by `as_of`, from `profiles_v3`) below the configured threshold — a fold cannot
//!   read configuration, and the threshold may change without a replay;
//! - anomaly: spend anomalies of `as_of`'s day (`costs::anomalies::detect`);
//! - dead letter: each event a projector refused (from the runtime, not a tree).
//!
//! The only state of its own is the acknowledgements: `alerts_v1` folds
//! `ats.alert.acknowledged` into `ack/<alert id>`. Alert ids are UUID v5 of the condition, so
//! an acknowledgement names one crossing, one anomalous day or one dead letter for good, and
//! the same log gives the same ids.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, PoisonError};

use ats_events::cloudevents::event_id;
use ats_events::{BudgetPeriod, Envelope, Payload, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::ToSchema;

use crate::costs::anomalies::{self, Severity};
use crate::costs::budgets::{self, period_key};
use crate::dashboard::ReadModels;
use crate::profiles::{self, decode, PerformanceSummary};
use crate::runtime::{ApplyError, DeadLetter, Projector};
use crate::view::View;
use crate::watch::{same_tree, KeyWatch, Written};

/// The projector's name (with its version).
pub const NAME: &str = "alerts_v1";

/// Sessions in an operator's "recent average" for performance alerts (the ones the
/// `profiles` fold keeps at hand).
pub const RECENT_SESSIONS: usize = profiles::RECENT_SESSIONS;

/// `analytics.alerts.performance_threshold` when not configured.
pub const DEFAULT_PERFORMANCE_THRESHOLD: f64 = 0.6;

/// The spend anomalies alerted on (and so on every dashboard) are those of `as_of`'s day.
pub const ANOMALY_WINDOW_DAYS: u32 = 1;

/// Seed `AlertPriority`; sorts most urgent first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AlertPriority {
    /// Needs action now.
    Critical,
    /// Soon.
    High,
    /// Worth a look.
    Medium,
    /// Informational.
    Low,
}

impl AlertPriority {
    /// Every priority, most urgent first.
    pub const ALL: [AlertPriority; 4] = [Self::Critical, Self::High, Self::Medium, Self::Low];

    /// The wire string.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Critical => "critical",
            Self::High => "high",
            Self::Medium => "medium",
            Self::Low => "low",
        }
    }

    /// Parses a wire string.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == text)
    }
}

/// Seed `AlertType` (the kinds this engine raises).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AlertType {
    /// A budget threshold was crossed in the current period.
    BudgetWarning,
    /// An operator's recent average score is below the threshold.
    PerformanceIssue,
    /// A day's spend is above its robust upper bound.
    AnomalyDetected,
    /// A projector refused an event.
    SystemHealth,
}

/// Seed `Alert.to_dict()`; `created_at` is the time of the condition (never the clock).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Alert {
    /// UUID v5 of the condition.
    pub id: String,
    /// Kind.
    pub alert_type: AlertType,
    /// Priority.
    pub priority: AlertPriority,
    /// Title.
    pub title: String,
    /// Message.
    pub message: String,
    /// Numbers behind it.
    #[schema(value_type = Object)]
    pub details: BTreeMap<String, Value>,
    /// When the condition arose (RFC 3339; null for dead letters, which carry a position).
    pub created_at: Option<String>,
    /// Always false in lists of active alerts.
    pub acknowledged: bool,
    /// The operator concerned, if any.
    pub operator_id: Option<String>,
}

/// An acknowledgement as folded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Acknowledgement {
    /// Who acknowledged.
    pub by: Option<String>,
    /// `occurred_at` of the event.
    pub at: Timestamp,
}

const ACK_PREFIX: &[u8] = b"ack/";

fn ack_key(alert_id: &str) -> Vec<u8> {
    [ACK_PREFIX, alert_id.as_bytes()].concat()
}

/// Folds `ats.alert.acknowledged`; the first acknowledgement of an id stands.
pub struct AlertsProjector;

impl Projector for AlertsProjector {
    fn name(&self) -> &'static str {
        NAME
    }

    fn apply(&self, view: &mut View<'_>, event: &Envelope) -> Result<(), ApplyError> {
        if let Payload::AlertAcknowledged(p) = &event.payload {
            let key = ack_key(&p.alert_id);
            if view.get::<Acknowledgement>(&key)?.is_none() {
                view.put(
                    &key,
                    Acknowledgement {
                        by: p.by.clone(),
                        at: event.occurred_at,
                    },
                )?;
            }
        }
        Ok(())
    }
}

/// Whether `alert_id` was acknowledged.
pub fn acknowledged(tree: &sled::Tree, alert_id: &str) -> bool {
    tree.get(ack_key(alert_id))
        .ok()
        .flatten()
        .and_then(|v| decode::<Acknowledgement>(&v))
        .is_some()
}

/// Which of `count` alerts about to be checked are acknowledged: the acknowledgements read
/// in one scan while there are no more of them than alerts (the usual case, few are ever
/// acknowledged), else one read per alert, so the cost is the smaller of the two: the
/// dashboard checks every alert condition that holds, one per operator below the
/// performance threshold at worst.
fn acknowledgements(tree: &sled::Tree, count: usize) -> impl Fn(&str) -> bool + '_ {
    let mut scanned = Some(BTreeSet::new());
    for entry in tree.scan_prefix(ACK_PREFIX) {
        let Some(set) = scanned.as_mut() else { break };
        match entry {
            Ok((key, value)) if set.len() < count => {
                if decode::<Acknowledgement>(&value).is_some() {
                    set.insert(key[ACK_PREFIX.len()..].to_vec());
                }
            }
            // More acknowledgements than alerts, or an unreadable entry: read per alert.
            _ => scanned = None,
        }
    }
    move |id: &str| match &scanned {
        Some(set) => set.contains(id.as_bytes()),
        None => acknowledged(tree, id),
    }
}

fn alert_id(condition: &str) -> String {
    event_id(&format!("alert:{condition}")).to_string()
}

fn budget_alerts(models: &ReadModels, as_of: Timestamp, out: &mut Vec<Alert>) {
    for status in budgets::budgets(&models.costs, as_of) {
        let budget = &status.budget;
        // A `none` period budget never rolls over: its alerts hold while its arm does.
        let current = match budget.period {
            BudgetPeriod::None => "all".to_owned(),
            period => period_key(period, as_of),
        };
        for alert in &status.alerts {
            if alert.arm != budget.arm || alert.period != current || alert.triggered_at > as_of {
                continue;
            }
            let scope = format!("{:?}", alert.scope).to_lowercase();
            let entity = alert.entity_id.clone().unwrap_or_default();
            let priority = if alert.threshold >= 1.0 {
                AlertPriority::Critical
            } else if alert.threshold >= 0.9 {
                AlertPriority::High
            } else {
                AlertPriority::Medium
            };
            out.push(Alert {
                id: alert_id(&format!(
                    "budget:{scope}:{entity}:{}:{}:{}",
                    alert.threshold, alert.period, alert.arm
                )),
                alert_type: AlertType::BudgetWarning,
                priority,
                title: if entity.is_empty() {
                    format!("Budget {:.0}% reached: {scope}", alert.threshold * 100.0)
                } else {
                    format!(
                        "Budget {:.0}% reached: {scope} {entity}",
                        alert.threshold * 100.0
                    )
                },
                message: format!(
                    "Budget alert for {}: ${:.2} / ${:.2} ({:.1}%)",
                    if entity.is_empty() { "global" } else { &entity },
                    alert.spent,
                    alert.budget,
                    alert.percentage
                ),
                details: BTreeMap::from([
                    ("scope".into(), json!(scope)),
                    ("entity_id".into(), json!(alert.entity_id)),
                    ("threshold".into(), json!(alert.threshold)),
                    ("period".into(), json!(alert.period)),
                    ("spent".into(), json!(alert.spent)),
                    ("budget".into(), json!(alert.budget)),
                    ("percentage".into(), json!(alert.percentage)),
                ]),
                created_at: Some(alert.triggered_at.to_rfc3339()),
                acknowledged: false,
                operator_id: (scope == "profile").then(|| entity.clone()),
            });
        }
    }
}

/// Performance alerts, at most one per operator, in [`urgency`] order: all of them are
/// `High` and dated, so that order is their `(created_at, id)`.
#[derive(Debug, Clone, Default)]
pub(crate) struct PerformanceAlerts {
    by_urgency: BTreeMap<(String, String), Alert>,
    /// Each alerting operator's key in `by_urgency`.
    places: BTreeMap<String, (String, String)>,
}

impl PerformanceAlerts {
    /// Adds `alert`, in place of its operator's previous one.
    fn insert(&mut self, alert: Alert) {
        debug_assert!(
            alert.priority == AlertPriority::High && alert.created_at.is_some(),
            "kept in (created_at, id) order, which is urgency's only for dated High alerts"
        );
        let operator = alert.operator_id.clone().unwrap_or_default();
        let place = (
            alert.created_at.clone().unwrap_or_default(),
            alert.id.clone(),
        );
        if let Some(old) = self.places.insert(operator, place.clone()) {
            self.by_urgency.remove(&old);
        }
        self.by_urgency.insert(place, alert);
    }

    fn remove(&mut self, operator: &str) {
        if let Some(place) = self.places.remove(operator) {
            self.by_urgency.remove(&place);
        }
    }

    /// Most urgent first.
    fn iter(&self) -> impl Iterator<Item = &Alert> {
        self.by_urgency.values()
    }

    fn len(&self) -> usize {
        self.by_urgency.len()
    }
}

/// The performance alerts of the usual question (no session started after `as_of`) for one
/// profiles tree and threshold. They depend on nothing else then: an operator's alert is a
/// function of its summary (`ps/<operator>`), so after a fold commits only the operators
/// whose summaries it wrote are evaluated again ([`KeyWatch`]), instead of one alert per
/// operator below the threshold (15,000 of the 25,000 of the bench's 10M history) whenever a
/// batch holds a session. The tree handle is held so a freed tree's address cannot be
/// mistaken for it; a rebuilt generation replaces the entry.
struct PerformanceCache {
    tree: sled::Tree,
    threshold_bits: u64,
    /// The `ps/` keys written since the alerts were brought up to date.
    watch: Arc<KeyWatch>,
    alerts: Arc<PerformanceAlerts>,
}

impl PerformanceCache {
    /// Evaluates every operator the fold indexes below `threshold` (the others cannot alert:
    /// the cost is theirs, not every operator's), watching the summaries from before the
    /// reads: a commit under way while they run is noted when it ends, so the next
    /// [`refresh`](Self::refresh) evaluates its operators again, whatever was read of them.
    fn new(models: &ReadModels, threshold: f64, as_of: Timestamp) -> Self {
        let tree = &models.profiles;
        let watch = KeyWatch::start(tree, profiles::SUMMARY_PREFIX);
        let mut below = PerformanceAlerts::default();
        let candidates = profiles::below_recent_average(tree, threshold).into_iter();
        evaluate_performance(candidates, models, threshold, as_of, &mut below);
        Self {
            tree: tree.clone(),
            threshold_bits: threshold.to_bits(),
            watch,
            alerts: Arc::new(below),
        }
    }

    /// Whether this is the cache of `tree` and `threshold`.
    fn is_for(&self, tree: &sled::Tree, threshold: f64) -> bool {
        same_tree(&self.tree, tree) && self.threshold_bits == threshold.to_bits()
    }

    /// Evaluates again the operators whose summaries were written since the last call: how
    /// many, or `None` when too many were written to list (then start over with [`new`](Self::new)).
    fn refresh(&mut self, models: &ReadModels, threshold: f64, as_of: Timestamp) -> Option<usize> {
        let Written::Keys(keys) = self.watch.take() else {
            return None;
        };
        if keys.is_empty() {
            return Some(0);
        }
        let alerts = Arc::make_mut(&mut self.alerts);
        let operators: Vec<String> = keys
            .iter()
            .filter_map(|k| profiles::summary_operator(k))
            .collect();
        operators
            .iter()
            .for_each(|operator| alerts.remove(operator));
        let candidates = operators.into_iter().filter_map(|operator| {
            let summary = profiles::performance_summary(&models.profiles, &operator)?;
            Some((operator, summary))
        });
        evaluate_performance(candidates, models, threshold, as_of, alerts);
        Some(keys.len())
    }
}

static PERFORMANCE_CACHE: Mutex<Option<PerformanceCache>> = Mutex::new(None);

/// The performance alerts as of `as_of`.
fn performance_alerts(
    models: &ReadModels,
    threshold: f64,
    as_of: Timestamp,
) -> Arc<PerformanceAlerts> {
    let tree = &models.profiles;
    if profiles::counts(tree)
        .latest_start
        .is_some_and(|latest| latest > as_of)
    {
        // A question about the past: sessions started since are set aside per operator.
        let mut all = PerformanceAlerts::default();
        let candidates = profiles::performance_summaries(tree);
        evaluate_performance(candidates, models, threshold, as_of, &mut all);
        return Arc::new(all);
    }
    let mut cache = PERFORMANCE_CACHE
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    if let Some(cached) = cache.as_mut().filter(|c| c.is_for(tree, threshold)) {
        if cached.refresh(models, threshold, as_of).is_some() {
            return cached.alerts.clone();
        }
    }
    let fresh = PerformanceCache::new(models, threshold, as_of);
    let alerts = fresh.alerts.clone();
    *cache = Some(fresh);
    alerts
}

/// Adds one alert for each of `candidates` whose mean over its last sessions started by
/// `as_of` is below `threshold`.
fn evaluate_performance(
    candidates: impl Iterator<Item = (String, PerformanceSummary)>,
    models: &ReadModels,
    threshold: f64,
    as_of: Timestamp,
    out: &mut PerformanceAlerts,
) {
    for (operator, summary) in candidates {
        // The fold keeps the latest sessions; the whole series is read only when some of
        // them started after `as_of` (a question about the past).
        let mut recent = summary.recent;
        if recent.iter().any(|s| s.start_time > as_of) {
            recent = profiles::scored_sessions(&models.profiles, &operator)
                .into_iter()
                .rev()
                .filter(|s| s.start_time <= as_of)
                .take(RECENT_SESSIONS)
                .collect();
        }
        let (Some(latest), Some(average)) = (recent.first(), profiles::recent_average(&recent))
        else {
            continue;
        };
        if average >= threshold {
            continue;
        }
        out.insert(Alert {
            // Keyed by the latest session: a new low session is a new alert to acknowledge.
            id: alert_id(&format!("performance:{operator}:{}", latest.session_id)),
            alert_type: AlertType::PerformanceIssue,
            priority: AlertPriority::High,
            title: format!("Low recent performance: {operator}"),
            message: format!(
                "Average score {average:.2} over the last {} sessions is below {threshold:.2}",
                recent.len()
            ),
            details: BTreeMap::from([
                ("average_score".into(), json!(average)),
                ("sessions".into(), json!(recent.len())),
                ("threshold".into(), json!(threshold)),
                ("latest_session_id".into(), json!(latest.session_id)),
            ]),
            created_at: Some(latest.end_time.to_rfc3339()),
            acknowledged: false,
            operator_id: Some(operator),
        });
    }
}

fn anomaly_alerts(models: &ReadModels, as_of: Timestamp, out: &mut Vec<Alert>) {
    for anomaly in anomalies::detect(&models.costs, ANOMALY_WINDOW_DAYS, as_of) {
        let priority = match anomaly.severity {
            Severity::High => AlertPriority::High,
            Severity::Medium => AlertPriority::Medium,
            Severity::Low => AlertPriority::Low,
        };
        let series = if anomaly.value.is_empty() {
            anomaly.dimension.clone()
        } else {
            format!("{} {}", anomaly.dimension, anomaly.value)
        };
        out.push(Alert {
            id: alert_id(&format!(
                "anomaly:{}:{}:{}",
                anomaly.dimension, anomaly.value, anomaly.day
            )),
            alert_type: AlertType::AnomalyDetected,
            priority,
            title: format!("Cost anomaly on {}: {series}", anomaly.day),
            message: format!(
                "Spend ${:.2} against ${:.2} expected (upper bound ${:.2})",
                anomaly.actual, anomaly.expected, anomaly.upper_bound
            ),
            details: BTreeMap::from([
                ("dimension".into(), json!(anomaly.dimension)),
                ("value".into(), json!(anomaly.value)),
                ("day".into(), json!(anomaly.day)),
                ("actual".into(), json!(anomaly.actual)),
                ("expected".into(), json!(anomaly.expected)),
                ("upper_bound".into(), json!(anomaly.upper_bound)),
            ]),
            created_at: Some(format!("{}T00:00:00Z", anomaly.day)),
            acknowledged: false,
            operator_id: (anomaly.dimension == "profile").then(|| anomaly.value.clone()),
        });
    }
}

fn dead_letter_alerts(dead_letters: &[DeadLetter], out: &mut Vec<Alert>) {
    for dead in dead_letters {
        out.push(Alert {
            id: alert_id(&format!("dead_letter:{}:{}", dead.projector, dead.position)),
            alert_type: AlertType::SystemHealth,
            priority: AlertPriority::High,
            title: format!("Event refused by {}", dead.projector),
            message: dead.error.clone(),
            details: BTreeMap::from([
                ("projector".into(), json!(dead.projector)),
                ("position".into(), json!(dead.position)),
                ("event_id".into(), json!(dead.event_id)),
                ("kind".into(), json!(dead.kind)),
            ]),
            created_at: None,
            acknowledged: false,
            operator_id: None,
        });
    }
}

/// Every alert whose condition holds as of `as_of`, acknowledged or not, sorted by priority,
/// then `created_at` (dead letters last within a priority), then id.
pub fn current_alerts(
    models: &ReadModels,
    dead_letters: &[DeadLetter],
    performance_threshold: f64,
    as_of: Timestamp,
) -> Vec<Alert> {
    let mut out = other_alerts(models, dead_letters, as_of);
    out.extend(
        performance_alerts(models, performance_threshold, as_of)
            .iter()
            .cloned(),
    );
    out.sort_by(urgency);
    out
}

/// Every alert but the performance ones.
fn other_alerts(models: &ReadModels, dead_letters: &[DeadLetter], as_of: Timestamp) -> Vec<Alert> {
    let mut out = Vec::new();
    budget_alerts(models, as_of, &mut out);
    anomaly_alerts(models, as_of, &mut out);
    dead_letter_alerts(dead_letters, &mut out);
    out
}

/// Most urgent first: by priority, then `created_at` (dead letters, which have none, last
/// within a priority), then id.
fn urgency(a: &Alert, b: &Alert) -> std::cmp::Ordering {
    (a.priority, a.created_at.is_none(), &a.created_at, &a.id).cmp(&(
        b.priority,
        b.created_at.is_none(),
        &b.created_at,
        &b.id,
    ))
}

/// The unacknowledged alerts a summary shows: the `limit` most urgent of all and of the
/// critical ones, with how many there are of each.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ActiveAlerts {
    /// The `limit` most urgent.
    pub most_urgent: Vec<Alert>,
    /// How many are active.
    pub total: u64,
    /// The `limit` most urgent critical ones.
    pub critical: Vec<Alert>,
    /// How many of them are critical.
    pub critical_total: u64,
}

impl ActiveAlerts {
    /// Summarizes `active`, sorted most urgent first, copying only what it keeps.
    pub fn of_sorted<'a>(active: impl IntoIterator<Item = &'a Alert>, limit: usize) -> Self {
        let mut summary = Self::default();
        for alert in active {
            summary.total += 1;
            if summary.most_urgent.len() < limit {
                summary.most_urgent.push(alert.clone());
            }
            if alert.priority == AlertPriority::Critical {
                summary.critical_total += 1;
                if summary.critical.len() < limit {
                    summary.critical.push(alert.clone());
                }
            }
        }
        summary
    }
}

/// [`current_alerts`] less the acknowledged ones, summarized (see [`ActiveAlerts`]) without
/// copying every alert: what the dashboard shows.
pub fn active_summary(
    models: &ReadModels,
    alerts_tree: &sled::Tree,
    dead_letters: &[DeadLetter],
    performance_threshold: f64,
    as_of: Timestamp,
    limit: usize,
) -> ActiveAlerts {
    let others = other_alerts(models, dead_letters, as_of);
    let performance = performance_alerts(models, performance_threshold, as_of);
    let acknowledged = acknowledgements(alerts_tree, others.len() + performance.len());
    // Only the few other alerts are sorted here: the performance ones (one per operator
    // below the threshold) come sorted, so a summary walks them once, copying what it shows.
    let mut others: Vec<&Alert> = others.iter().collect();
    others.sort_by(|a, b| urgency(a, b));
    let active = merged(others.into_iter(), performance.iter()).filter(|a| !acknowledged(&a.id));
    ActiveAlerts::of_sorted(active, limit)
}

/// Two lists sorted by [`urgency`] as one sorted stream.
fn merged<'a>(
    first: impl Iterator<Item = &'a Alert>,
    second: impl Iterator<Item = &'a Alert>,
) -> impl Iterator<Item = &'a Alert> {
    let (mut first, mut second) = (first.peekable(), second.peekable());
    std::iter::from_fn(move || match (first.peek(), second.peek()) {
        (Some(a), Some(b)) if urgency(a, b).is_gt() => second.next(),
        (Some(_), _) => first.next(),
        (None, _) => second.next(),
    })
}

/// The unacknowledged ones of `alerts`, filtered by priority and operator (seed
/// `get_active_alerts`).
pub fn active(
    alerts_tree: &sled::Tree,
    alerts: Vec<Alert>,
    priority: Option<AlertPriority>,
    operator: Option<&str>,
) -> Vec<Alert> {
    let acknowledged = acknowledgements(alerts_tree, alerts.len());
    alerts
        .into_iter()
        .filter(|a| !acknowledged(&a.id))
        .filter(|a| priority.is_none_or(|p| a.priority == p))
        .filter(|a| operator.is_none_or(|o| a.operator_id.as_deref() == Some(o)))
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a test fails by panicking
mod tests;
