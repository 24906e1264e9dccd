//! Spend forecast to the end of a budget period (DOMAIN.md §A3): a level × weekday-factor
//! model of daily spend over the last 28 full days, with an 80 % prediction interval, and the
//! day the budget runs out at the predicted pace.
//!
//! Model: `level` = mean daily spend over the history, `factor[w]` = mean spend on weekday
//! `w` / level (1 when a weekday has no history), prediction for a day = level × factor;
//! `sigma` = residual standard deviation (one degree of freedom per fitted weekday). A sum
//! over `h` days has the interval `± z₀.₉ × sigma × √(h (1 + 7⌈h/7⌉/n))` (independent daily
//! errors plus the error of weekday means fitted on `n` days); the lower end never falls
//! below what is already spent.

use ats_events::{BudgetPeriod, BudgetScope, Timestamp};
use chrono::{Datelike, Duration, NaiveDate};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::budgets;
use super::{bucket_key, read, Dim, Usage};
use crate::analytics::mean;

/// The 90th percentile of the standard normal: the two-sided 80 % interval.
const Z80: f64 = 1.281_551_565_545;
/// Full days of history the model is fitted on.
pub const HISTORY_DAYS: usize = 28;
/// Fewer full days of history than this: no forecast.
pub const MIN_HISTORY_DAYS: usize = 7;

/// A fitted daily spend model.
#[derive(Debug, Clone, PartialEq)]
pub struct DailyModel {
    /// Mean daily spend.
    pub level: f64,
    /// Spend on each weekday (Monday = 0) relative to the level.
    pub factors: [f64; 7],
    /// Standard deviation of the daily residuals.
    pub sigma: f64,
    /// Days fitted.
    pub days: usize,
}

impl DailyModel {
    /// Fits `history` (daily spend, oldest first; `weekday(i)` is day `i`'s weekday, Monday
    /// = 0); `None` below [`MIN_HISTORY_DAYS`].
    pub fn fit(history: &[f64], weekday: impl Fn(usize) -> usize) -> Option<Self> {
        if history.len() < MIN_HISTORY_DAYS {
            return None;
        }
        let level = mean(history);
        let mut factors = [1.0; 7];
        if level > 0.0 {
            for (w, factor) in factors.iter_mut().enumerate() {
                let on: Vec<f64> = (0..history.len())
                    .filter(|&i| weekday(i) % 7 == w)
                    .map(|i| history[i])
                    .collect();
                if !on.is_empty() {
                    *factor = mean(&on) / level;
                }
            }
        }
        let residuals: Vec<f64> = history
            .iter()
            .enumerate()
            .map(|(i, v)| v - level * factors[weekday(i) % 7])
            .collect();
        // Each weekday with history is a fitted mean: the residual variance loses one degree
        // of freedom per such weekday (in-sample residuals understate the error otherwise).
        let fitted = (0..7)
            .filter(|w| (0..history.len()).any(|i| weekday(i) % 7 == *w))
            .count();
        let squares: f64 = residuals.iter().map(|r| r * r).sum();
        let freedom = history.len().saturating_sub(fitted).max(1);
        Some(Self {
            level,
            factors,
            sigma: (squares / freedom as f64).sqrt(),
            days: history.len(),
        })
    }

    /// Predicted spend on a day of weekday `w`.
    pub fn point(&self, w: usize) -> f64 {
        self.level * self.factors[w % 7]
    }

    /// Half-width of the 80 % interval of a sum over `h` days: independent daily errors plus
    /// the error of the weekday means (each from about `days / 7` days).
    pub fn half_width(&self, h: f64) -> f64 {
        let weeks = (h / 7.0).ceil().max(1.0);
        Z80 * self.sigma * (h * (1.0 + 7.0 * weeks / self.days as f64)).sqrt()
    }
}

/// A forecast of spend to the end of a period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Forecast {
    /// `global`, `profile` or `session`.
    pub scope: BudgetScope,
    /// Profile or session id.
    pub entity_id: Option<String>,
    /// The period forecast (`none` counts as the calendar month).
    pub period: BudgetPeriod,
    /// First day of the period.
    pub period_start: String,
    /// Last day of the period.
    pub period_end: String,
    /// Spend in the period up to `as_of` (the day of `as_of` included).
    pub spent_to_date: f64,
    /// Predicted spend from `as_of` to the end of the period.
    pub predicted_remaining: f64,
    /// spent_to_date + predicted_remaining.
    pub predicted_total: f64,
    /// 80 % prediction interval of the total.
    pub lower_80: f64,
    /// 80 % prediction interval of the total.
    pub upper_80: f64,
    /// The budget amount, when the entity has one.
    pub budget: Option<f64>,
    /// First day the predicted spend reaches the budget (within the period), if it does.
    pub exhaustion_date: Option<String>,
    /// Full days of history the model used (0: not enough history, the prediction is 0).
    pub history_days: usize,
    /// Fitted mean daily spend.
    pub daily_level: f64,
}

fn text(day: NaiveDate) -> String {
    day.format("%Y-%m-%d").to_string()
}

/// Forecasts the spend of a scope (`entity` for profile and session) to the end of `period`
/// (or the period of the entity's budget, when it has one) as of `as_of`.
pub fn forecast(
    tree: &sled::Tree,
    scope: BudgetScope,
    entity: Option<&str>,
    period: Option<BudgetPeriod>,
    as_of: Timestamp,
) -> Forecast {
    let entity_str = entity.unwrap_or("");
    let budget = budgets::budget(tree, scope, entity_str);
    let period = period
        .or(budget.as_ref().map(|b| b.period))
        .unwrap_or(BudgetPeriod::Monthly);
    let (dim, fixed) = match scope {
        BudgetScope::Global => (Dim::Day, None),
        BudgetScope::Profile => (Dim::Profile, Some(entity_str)),
        BudgetScope::Session => (Dim::Session, Some(entity_str)),
    };
    let day_cost = |day: NaiveDate| -> f64 {
        let d = text(day);
        read::<Usage>(tree, &bucket_key(dim, &d, fixed.unwrap_or(&d))).map_or(0.0, |u| u.cost)
    };
    let today = as_of.to_datetime().date_naive();
    let (start, end) = budgets::period_range(period, today);
    let spent_to_date = if period == BudgetPeriod::None {
        budgets::spent(scope, entity_str, period, as_of, &mut { tree }).unwrap_or(0.0)
    } else {
        let days = (today - start).num_days();
        (0..=days)
            .map(|i| day_cost(start + Duration::days(i)))
            .sum()
    };
    // History: full days before today, from the first day with spend, at most 28.
    let mut history: Vec<(NaiveDate, f64)> = (1..=HISTORY_DAYS as i64)
        .rev()
        .map(|back| {
            let day = today - Duration::days(back);
            (day, day_cost(day))
        })
        .collect();
    let first = history
        .iter()
        .position(|(_, c)| *c > 0.0)
        .unwrap_or(history.len());
    history.drain(..first);
    let values: Vec<f64> = history.iter().map(|(_, c)| *c).collect();
    let weekday = |i: usize| history[i].0.weekday().num_days_from_monday() as usize;
    let model = DailyModel::fit(&values, weekday);
    // Today counts by the fraction of it still ahead of `as_of`.
    let midnight = today
        .and_hms_opt(0, 0, 0)
        .map_or(0, |m| m.and_utc().timestamp_micros());
    let ahead_today = 1.0 - ((as_of.micros() - midnight) as f64 / 86_400e6).clamp(0.0, 1.0);
    let mut remaining = 0.0;
    let mut horizon = 0.0;
    let mut exhaustion = None;
    let amount = budget.as_ref().map(|b| b.amount);
    if amount.is_some_and(|a| spent_to_date >= a) {
        exhaustion = Some(text(today));
    }
    if let Some(model) = &model {
        let mut day = today;
        while day <= end {
            let share = if day == today { ahead_today } else { 1.0 };
            remaining += share * model.point(day.weekday().num_days_from_monday() as usize);
            horizon += share;
            if exhaustion.is_none() && amount.is_some_and(|a| spent_to_date + remaining >= a) {
                exhaustion = Some(text(day));
            }
            day += Duration::days(1);
        }
    }
    let half = model.as_ref().map_or(0.0, |m| m.half_width(horizon));
    let total = spent_to_date + remaining;
    Forecast {
        scope,
        entity_id: entity.map(str::to_owned),
        period,
        period_start: text(start),
        period_end: text(end),
        spent_to_date,
        predicted_remaining: remaining,
        predicted_total: total,
        lower_80: (total - half).max(spent_to_date),
        upper_80: total + half,
        budget: amount,
        exhaustion_date: exhaustion,
        history_days: model.as_ref().map_or(0, |m| m.days),
        daily_level: model.as_ref().map_or(0.0, |m| m.level),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a test fails by panicking
mod tests {
    use super::*;

    /// A seasonal series (weekdays 10, weekends 4) with ±20 % deterministic noise.
    fn series(days: usize) -> Vec<f64> {
        let mut seed = 7u64;
        (0..days)
            .map(|i| {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let noise = 0.8 + 0.4 * ((seed >> 33) as f64 / (1u64 << 31) as f64);
                let base = if i % 7 >= 5 { 4.0 } else { 10.0 };
                base * noise
            })
            .collect()
    }

    #[test]
    fn back_test_on_a_seasonal_series() {
        let data = series(400);
        let (mut errors, mut covered, mut total) = (Vec::new(), 0, 0);
        let (mut sums_covered, mut sums) = (0, 0);
        for origin in (28..393).step_by(2) {
            let model =
                DailyModel::fit(&data[origin - 28..origin], |i| (origin - 28 + i) % 7).unwrap();
            let mut sum_actual = 0.0;
            let mut sum_point = 0.0;
            for h in 0..7 {
                let day = origin + h;
                let point = model.point(day % 7);
                let half = model.half_width(1.0);
                errors.push(((data[day] - point) / data[day]).abs());
                covered += usize::from((data[day] - point).abs() <= half);
                total += 1;
                sum_actual += data[day];
                sum_point += point;
            }
            sums += 1;
            sums_covered += usize::from((sum_actual - sum_point).abs() <= model.half_width(7.0));
        }
        let mape = mean(&errors);
        let coverage = covered as f64 / total as f64;
        let sum_coverage = sums_covered as f64 / sums as f64;
        println!(
            "forecast back-test: MAPE {:.1} %, daily 80 % coverage {:.1} %, 7-day sum coverage {:.1} % ({total} days)",
            mape * 100.0,
            coverage * 100.0,
            sum_coverage * 100.0
        );
        assert!(mape < 0.15, "MAPE {mape}");
        assert!((0.7..=0.9).contains(&coverage), "coverage {coverage}");
        assert!(
            (0.65..=0.95).contains(&sum_coverage),
            "sum coverage {sum_coverage}"
        );
    }

    #[test]
    fn weekday_factors_and_too_little_history() {
        assert!(DailyModel::fit(&[1.0; 6], |i| i).is_none());
        // Two weeks: weekdays 10, weekends 4 → level 58/7, factors 70/58 and 28/58.
        let two_weeks: Vec<f64> = (0..14)
            .map(|i| if i % 7 >= 5 { 4.0 } else { 10.0 })
            .collect();
        let model = DailyModel::fit(&two_weeks, |i| i % 7).unwrap();
        assert!((model.level - 58.0 / 7.0).abs() < 1e-12);
        assert!((model.point(0) - 10.0).abs() < 1e-12);
        assert!((model.point(6) - 4.0).abs() < 1e-12);
        assert!(model.sigma < 1e-12);
    }
}
