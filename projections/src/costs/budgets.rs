//! Budgets and their alerts (DOMAIN.md §B4 with the fix of §A2.9).
//!
//! A budget is global, per profile or per session, optionally reset daily, weekly (Monday
//! 00:00 UTC) or monthly. Spend in a period is read from the day buckets; all-time spend
//! (no period) from the `t/` totals, or a session's own `s/` record. An alert is stored once
//! per (scope, entity, threshold, period) when a fold finds spend at or above
//! `threshold × amount`; raising a budget re-arms every threshold (a new `arm` number in the
//! alert keys). Alerts are read-model rows: the fold fires no side effect.
//!
//! Tree layout (inside `costs_v5`):
//! - `bu/<scope>\0<entity>` → [`Budget`] (entity empty for global)
//! - `ba/<scope>\0<entity>\0<arm, BE>\0<period>\0<threshold bits, BE>` → [`BudgetAlert`]

use ats_events::{BudgetPeriod, BudgetScope, BudgetSet, Envelope, LlmUsage, Timestamp};
use chrono::{Datelike, Duration, NaiveDate};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{
    bucket_key, decode, read, session_key, total_key, Dim, SessionCost, Usage, GLOBAL_KEY,
};
use crate::runtime::ApplyError;
use crate::view::View;

/// Thresholds when a budget event names none (the configuration's documented default; the
/// fold cannot read configuration, so a producer that wants others sends them in the event).
pub const DEFAULT_THRESHOLDS: [f64; 3] = [0.75, 0.9, 1.0];

/// Spend within this many USD below a threshold counts as reaching it (float sums).
const TOLERANCE: f64 = 1e-9;

/// A budget as last set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Budget {
    /// Scope.
    pub scope: BudgetScope,
    /// Profile or session id (absent for global).
    pub entity_id: Option<String>,
    /// USD per period.
    pub amount: f64,
    /// Reset period.
    pub period: BudgetPeriod,
    /// Alert thresholds, ascending, without repeats.
    pub thresholds: Vec<f64>,
    /// `occurred_at` of the event that last set it.
    #[schema(value_type = String, format = DateTime)]
    pub set_at: Timestamp,
    /// Bumped each time the budget is raised: alerts of an older arm no longer block.
    pub arm: u32,
}

/// A threshold crossing, stored for the alerts read model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BudgetAlert {
    /// Scope.
    pub scope: BudgetScope,
    /// Profile or session id (absent for global).
    pub entity_id: Option<String>,
    /// The threshold crossed (fraction of the amount).
    pub threshold: f64,
    /// The period it was crossed in (`all`, `2026-11-05`, `week-2026-11-02`, `2026-11`).
    pub period: String,
    /// Spend in the period when it was crossed.
    pub spent: f64,
    /// The budget then.
    pub budget: f64,
    /// spent / budget × 100.
    pub percentage: f64,
    /// Time of the event that crossed it.
    #[schema(value_type = String, format = DateTime)]
    pub triggered_at: Timestamp,
    /// Id of that event.
    pub event_id: String,
    /// The budget's arm when it fired.
    pub arm: u32,
}

fn scope_str(scope: BudgetScope) -> &'static str {
    match scope {
        BudgetScope::Global => "global",
        BudgetScope::Profile => "profile",
        BudgetScope::Session => "session",
    }
}

fn budget_key(scope: BudgetScope, entity: &str) -> Vec<u8> {
    [
        b"bu/",
        scope_str(scope).as_bytes(),
        b"\0",
        entity.as_bytes(),
    ]
    .concat()
}

fn alerts_prefix(scope: BudgetScope, entity: &str) -> Vec<u8> {
    [
        b"ba/",
        scope_str(scope).as_bytes(),
        b"\0",
        entity.as_bytes(),
        b"\0",
    ]
    .concat()
}

fn alert_key(budget: &Budget, period: &str, threshold: f64) -> Vec<u8> {
    let entity = budget.entity_id.as_deref().unwrap_or("");
    [
        alerts_prefix(budget.scope, entity).as_slice(),
        &budget.arm.to_be_bytes(),
        b"\0",
        period.as_bytes(),
        b"\0",
        &threshold.to_bits().to_be_bytes(),
    ]
    .concat()
}

fn date(at: Timestamp) -> NaiveDate {
    at.to_datetime().date_naive()
}

/// The period of `at` under `period`, as stored in alerts.
pub fn period_key(period: BudgetPeriod, at: Timestamp) -> String {
    let day = date(at);
    match period {
        BudgetPeriod::None => "all".into(),
        BudgetPeriod::Daily => day.format("%Y-%m-%d").to_string(),
        BudgetPeriod::Weekly => format!("week-{}", week_start(day).format("%Y-%m-%d")),
        BudgetPeriod::Monthly => day.format("%Y-%m").to_string(),
    }
}

fn week_start(day: NaiveDate) -> NaiveDate {
    day - Duration::days(i64::from(day.weekday().num_days_from_monday()))
}

/// First and last day of the period holding `day` (`none` counts as the calendar month).
pub(super) fn period_range(period: BudgetPeriod, day: NaiveDate) -> (NaiveDate, NaiveDate) {
    match period {
        BudgetPeriod::Daily => (day, day),
        BudgetPeriod::Weekly => {
            let start = week_start(day);
            (start, start + Duration::days(6))
        }
        BudgetPeriod::Monthly | BudgetPeriod::None => {
            let start = day.with_day(1).unwrap_or(day);
            let next = if start.month() == 12 {
                NaiveDate::from_ymd_opt(start.year() + 1, 1, 1)
            } else {
                NaiveDate::from_ymd_opt(start.year(), start.month() + 1, 1)
            };
            (start, next.map_or(start, |n| n - Duration::days(1)))
        }
    }
}

/// The UTC days of the period holding `at` (empty for `none`).
fn period_days(period: BudgetPeriod, at: Timestamp) -> Vec<String> {
    if period == BudgetPeriod::None {
        return Vec::new();
    }
    let (first, last) = period_range(period, date(at));
    (0..=(last - first).num_days())
        .map(|i| (first + Duration::days(i)).format("%Y-%m-%d").to_string())
        .collect()
}

/// Where spend is read from: the fold's [`View`], or the tree in queries.
pub(super) trait Spend {
    /// The cost of the [`Usage`] aggregate at `key` (0 when absent).
    fn usage_cost(&mut self, key: &[u8]) -> Result<f64, ApplyError>;
    /// The all-time cost of a session (0 without usage).
    fn session_cost(&mut self, session: &str) -> Result<f64, ApplyError>;
}

impl Spend for View<'_> {
    fn usage_cost(&mut self, key: &[u8]) -> Result<f64, ApplyError> {
        Ok(self.get::<Usage>(key)?.map_or(0.0, |u| u.cost))
    }

    fn session_cost(&mut self, session: &str) -> Result<f64, ApplyError> {
        Ok(self
            .get::<SessionCost>(&session_key(session))?
            .map_or(0.0, |s| s.total.cost))
    }
}

impl Spend for &sled::Tree {
    fn usage_cost(&mut self, key: &[u8]) -> Result<f64, ApplyError> {
        Ok(read::<Usage>(self, key).map_or(0.0, |u| u.cost))
    }

    fn session_cost(&mut self, session: &str) -> Result<f64, ApplyError> {
        Ok(read::<SessionCost>(self, &session_key(session)).map_or(0.0, |s| s.total.cost))
    }
}

/// Spend of a budget's entity in the period holding `at` (all time without a period).
pub(super) fn spent(
    scope: BudgetScope,
    entity: &str,
    period: BudgetPeriod,
    at: Timestamp,
    source: &mut impl Spend,
) -> Result<f64, ApplyError> {
    let dim = match scope {
        BudgetScope::Global => Dim::Day,
        BudgetScope::Profile => Dim::Profile,
        BudgetScope::Session => Dim::Session,
    };
    if period == BudgetPeriod::None {
        // A session's all-time total is its `s/` record; profiles and the whole keep `t/`.
        return match scope {
            BudgetScope::Global => source.usage_cost(GLOBAL_KEY),
            BudgetScope::Profile => source.usage_cost(&total_key(dim, entity)),
            BudgetScope::Session => source.session_cost(entity),
        };
    }
    let mut total = 0.0;
    for day in period_days(period, at) {
        let value = if scope == BudgetScope::Global {
            day.as_str()
        } else {
            entity
        };
        total += source.usage_cost(&bucket_key(dim, &day, value))?;
    }
    Ok(total)
}

/// Stores an alert for each threshold the budget at `key` has reached in the period of
/// `at` and not yet alerted in its current arm.
fn check(view: &mut View<'_>, key: &[u8], at: Timestamp, event_id: &str) -> Result<(), ApplyError> {
    let Some(budget) = view.get::<Budget>(key)?.cloned() else {
        return Ok(());
    };
    let entity = budget.entity_id.as_deref().unwrap_or("");
    let spent = spent(budget.scope, entity, budget.period, at, view)?;
    let period = period_key(budget.period, at);
    for &threshold in &budget.thresholds {
        if spent + TOLERANCE < threshold * budget.amount {
            break;
        }
        let alert = alert_key(&budget, &period, threshold);
        if view.get::<BudgetAlert>(&alert)?.is_none() {
            view.put(
                &alert,
                BudgetAlert {
                    scope: budget.scope,
                    entity_id: budget.entity_id.clone(),
                    threshold,
                    period: period.clone(),
                    spent,
                    budget: budget.amount,
                    percentage: spent / budget.amount * 100.0,
                    triggered_at: at,
                    event_id: event_id.to_owned(),
                    arm: budget.arm,
                },
            )?;
        }
    }
    Ok(())
}

/// Folds `ats.budget.set`: stores the budget (re-armed when raised) and checks it at once
/// against the spend of the event's period.
pub(super) fn budget_set(
    view: &mut View<'_>,
    event: &Envelope,
    set: &BudgetSet,
) -> Result<(), ApplyError> {
    let entity = set.entity_id.as_deref().unwrap_or("");
    let key = budget_key(set.scope, entity);
    let mut thresholds = if set.thresholds.is_empty() {
        DEFAULT_THRESHOLDS.to_vec()
    } else {
        set.thresholds.clone()
    };
    thresholds.sort_by(f64::total_cmp);
    thresholds.dedup();
    let arm = match view.get::<Budget>(&key)? {
        Some(old) if set.amount > old.amount => old.arm + 1,
        Some(old) => old.arm,
        None => 0,
    };
    view.put(
        &key,
        Budget {
            scope: set.scope,
            entity_id: set.entity_id.clone(),
            amount: set.amount,
            period: set.period,
            thresholds,
            set_at: event.occurred_at,
            arm,
        },
    )?;
    check(view, &key, event.occurred_at, &event.id.to_string())
}

/// Checks the global, profile and session budgets a usage (already in the buckets) counts
/// against.
pub(super) fn usage_folded(
    view: &mut View<'_>,
    usage: &LlmUsage,
    at: Timestamp,
    event_id: &str,
) -> Result<(), ApplyError> {
    for key in [
        budget_key(BudgetScope::Global, ""),
        budget_key(BudgetScope::Profile, &usage.profile_id),
        budget_key(BudgetScope::Session, &usage.session_id),
    ] {
        check(view, &key, at, event_id)?;
    }
    Ok(())
}

/// A budget's state as of an instant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BudgetStatus {
    /// The budget.
    #[serde(flatten)]
    pub budget: Budget,
    /// The period holding `as_of`.
    pub current_period: String,
    /// Spend in that period.
    pub spent: f64,
    /// `max(0, amount − spent)` (seed `get_remaining_budget`).
    pub remaining: f64,
    /// `spent < amount` (strict, seed `is_within_budget`).
    pub within_budget: bool,
    /// spent / amount × 100.
    pub percentage_used: f64,
    /// Every alert this budget fired, in key order (arm, period, threshold).
    pub alerts: Vec<BudgetAlert>,
}

/// The budget of one scope and entity (empty for global), as last set.
pub fn budget(tree: &sled::Tree, scope: BudgetScope, entity: &str) -> Option<Budget> {
    super::read(tree, &budget_key(scope, entity))
}

/// Every budget (key order: scope, entity) as of `as_of`.
pub fn budgets(tree: &sled::Tree, as_of: Timestamp) -> Vec<BudgetStatus> {
    tree.scan_prefix(b"bu/")
        .values()
        .filter_map(Result::ok)
        .filter_map(|v| decode::<Budget>(&v))
        .map(|budget| status(tree, budget, as_of))
        .collect()
}

fn status(tree: &sled::Tree, budget: Budget, as_of: Timestamp) -> BudgetStatus {
    let entity = budget.entity_id.clone().unwrap_or_default();
    let spent = spent(budget.scope, &entity, budget.period, as_of, &mut { tree }).unwrap_or(0.0);
    let alerts = tree
        .scan_prefix(alerts_prefix(budget.scope, &entity))
        .values()
        .filter_map(Result::ok)
        .filter_map(|v| decode(&v))
        .collect();
    BudgetStatus {
        current_period: period_key(budget.period, as_of),
        spent,
        remaining: (budget.amount - spent).max(0.0),
        within_budget: spent < budget.amount,
        percentage_used: spent / budget.amount * 100.0,
        alerts,
        budget,
    }
}

/// Every alert of every budget, in key order.
pub fn alerts(tree: &sled::Tree) -> Vec<BudgetAlert> {
    tree.scan_prefix(b"ba/")
        .values()
        .filter_map(Result::ok)
        .filter_map(|v| decode(&v))
        .collect()
}
