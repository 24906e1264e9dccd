//! The seed's budget planner (DOMAIN.md §B3.7) and usage export (§B4.3, with proper CSV
//! quoting).

use std::collections::BTreeMap;

use ats_events::Timestamp;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::UsageRecord;

/// `confidence_range` of a prediction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Range {
    /// predicted − 20 %.
    pub low: f64,
    /// predicted + 20 %.
    pub high: f64,
}

/// What a prediction assumed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Assumptions {
    /// Mean cost of a request so far (0 without history, as the seed).
    pub avg_cost_per_request: f64,
    /// Always 10.
    pub requests_per_hour: u32,
    /// economy 0.5, standard 1, premium 2 (others 1).
    pub tier_multiplier: f64,
}

/// Seed `predict_training_cost` result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CostPrediction {
    /// requests × mean cost × tier multiplier.
    pub predicted_cost: f64,
    /// ± 20 %.
    pub confidence_range: Range,
    /// `int(hours × 10)`.
    pub estimated_requests: u64,
    /// The tier asked for.
    pub model_tier: String,
    /// Inputs of the estimate.
    pub assumptions: Assumptions,
}

/// Seed `predict_training_cost(target_skill_gains, training_hours, model_tier)` (the skill
/// gains are unused, as in the seed) from the mean cost per request so far.
pub fn predict_training_cost(
    avg_cost_per_request: f64,
    training_hours: f64,
    model_tier: &str,
) -> CostPrediction {
    // Python's int() truncates toward zero; negative hours give no requests.
    let requests = (training_hours * 10.0).max(0.0) as u64;
    let multiplier = match model_tier {
        "economy" => 0.5,
        "premium" => 2.0,
        _ => 1.0,
    };
    let predicted = requests as f64 * avg_cost_per_request * multiplier;
    let variance = predicted * 0.2;
    CostPrediction {
        predicted_cost: predicted,
        confidence_range: Range {
            low: predicted - variance,
            high: predicted + variance,
        },
        estimated_requests: requests,
        model_tier: model_tier.to_owned(),
        assumptions: Assumptions {
            avg_cost_per_request,
            requests_per_hour: 10,
            tier_multiplier: multiplier,
        },
    }
}

/// Seed `create_budget_plan` result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BudgetPlan {
    /// The budget.
    pub total_budget: f64,
    /// Days it covers.
    pub time_period_days: u32,
    /// total / days.
    pub daily_budget: f64,
    /// Share per area, summing to 1.
    pub allocation_percentages: BTreeMap<String, f64>,
    /// USD per area.
    pub budget_breakdown: BTreeMap<String, f64>,
    /// daily × 7.
    pub weekly_budget: f64,
    /// The seed's three recommendations.
    pub recommendations: Vec<String>,
}

/// The seed's base allocation, in its order (the order of the normalising sum).
const AREAS: [(&str, f64); 4] = [
    ("core_training", 0.5),
    ("advanced_scenarios", 0.3),
    ("certification_prep", 0.15),
    ("contingency", 0.05),
];

/// Seed `create_budget_plan(total_budget, time_period_days, priority_areas)`: each listed
/// area ×1.2 (per mention, as the seed), renormalised. `None` for 0 days (the seed divided
/// by zero).
pub fn create_budget_plan(
    total_budget: f64,
    time_period_days: u32,
    priority_areas: &[String],
) -> Option<BudgetPlan> {
    if time_period_days == 0 {
        return None;
    }
    let daily = total_budget / f64::from(time_period_days);
    let mut shares = AREAS.map(|(name, share)| (name, share));
    for area in priority_areas {
        for (name, share) in shares.iter_mut() {
            if name == area {
                *share *= 1.2;
            }
        }
    }
    let sum: f64 = shares.iter().map(|(_, s)| s).sum();
    let percentages: BTreeMap<String, f64> = shares
        .iter()
        .map(|(name, share)| ((*name).to_owned(), share / sum))
        .collect();
    let breakdown: BTreeMap<String, f64> = percentages
        .iter()
        .map(|(name, share)| (name.clone(), total_budget * share))
        .collect();
    let at = |name: &str| breakdown.get(name).copied().unwrap_or(0.0);
    Some(BudgetPlan {
        total_budget,
        time_period_days,
        daily_budget: daily,
        recommendations: vec![
            format!("Allocate ${:.2} to core training", at("core_training")),
            format!("Reserve ${:.2} for contingency", at("contingency")),
            "Monitor spending weekly to stay on track".into(),
        ],
        allocation_percentages: percentages,
        budget_breakdown: breakdown,
        weekly_budget: daily * 7.0,
    })
}

/// Filters of the usage export (inclusive bounds).
#[derive(Debug, Clone, Default)]
pub struct ExportFilter {
    /// Only this session.
    pub session_id: Option<String>,
    /// Only this profile.
    pub profile_id: Option<String>,
    /// From this instant.
    pub start: Option<Timestamp>,
    /// Up to this instant.
    pub end: Option<Timestamp>,
}

/// Seed `export_usage_data` as records, in time order (ties by event id).
pub fn export_usage(tree: &sled::Tree, filter: &ExportFilter) -> Vec<UsageRecord> {
    let from = filter.start.unwrap_or(Timestamp::from_micros(i64::MIN));
    let to = filter.end.unwrap_or(Timestamp::from_micros(i64::MAX));
    super::usage_between(tree, from, to)
        .filter(|r| {
            filter
                .session_id
                .as_ref()
                .is_none_or(|s| &r.session_id == s)
        })
        .filter(|r| {
            filter
                .profile_id
                .as_ref()
                .is_none_or(|p| &r.profile_id == p)
        })
        .collect()
}

/// One CSV field, quoted when it holds a comma, a quote or a line break (RFC 4180).
pub fn field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

/// A float as Python's `repr` writes it (`1.0`, `0.0075`).
fn python_float(value: f64) -> String {
    let text = format!("{value}");
    if value.is_finite() && !text.contains(['.', 'e', 'E']) {
        format!("{text}.0")
    } else {
        text
    }
}

/// The seed's CSV layout (`id,timestamp,model,…,success,error_message`, Python-style floats
/// and `True`/`False`, lines joined by `\n`, "" when empty), with fields quoted as RFC 4180
/// requires (the seed wrote them raw). A missing latency or error message is empty.
pub fn usage_csv(records: &[UsageRecord]) -> String {
    if records.is_empty() {
        return String::new();
    }
    let mut lines = vec![
        "id,timestamp,model,profile_id,session_id,task_type,input_tokens,output_tokens,cost,latency_ms,success,error_message"
            .to_owned(),
    ];
    for r in records {
        let row = [
            field(&r.id),
            field(&r.timestamp.to_rfc3339()),
            field(&r.model),
            field(&r.profile_id),
            field(&r.session_id),
            field(&r.task_type),
            r.input_tokens.to_string(),
            r.output_tokens.to_string(),
            python_float(r.cost),
            r.latency_ms.map(python_float).unwrap_or_default(),
            if r.success { "True" } else { "False" }.to_owned(),
            field(r.error_message.as_deref().unwrap_or("")),
        ];
        lines.push(row.join(","));
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_plan_of_the_seed() {
        let plan = create_budget_plan(1000.0, 30, &[]).expect("30 days");
        assert!((plan.daily_budget - 1000.0 / 30.0).abs() < 1e-12);
        assert!((plan.weekly_budget - 7000.0 / 30.0).abs() < 1e-9);
        assert!((plan.budget_breakdown["core_training"] - 500.0).abs() < 1e-9);
        assert_eq!(plan.recommendations[0], "Allocate $500.00 to core training");
        assert_eq!(plan.recommendations[1], "Reserve $50.00 for contingency");
        // core ×1.2: 0.6 / 1.1.
        let boosted = create_budget_plan(1100.0, 10, &["core_training".into()]).expect("10 days");
        assert!((plan_share(&boosted, "core_training") - 0.6 / 1.1).abs() < 1e-12);
        assert!((boosted.budget_breakdown["core_training"] - 600.0).abs() < 1e-9);
        assert!(create_budget_plan(10.0, 0, &[]).is_none());
    }

    fn plan_share(plan: &BudgetPlan, area: &str) -> f64 {
        plan.allocation_percentages[area]
    }

    #[test]
    fn prediction_of_the_seed() {
        let p = predict_training_cost(0.02, 2.55, "premium");
        assert_eq!(p.estimated_requests, 25);
        assert!((p.predicted_cost - 1.0).abs() < 1e-12);
        assert!((p.confidence_range.low - 0.8).abs() < 1e-12);
        assert_eq!(p.assumptions.tier_multiplier, 2.0);
        assert_eq!(
            predict_training_cost(0.0, 10.0, "standard").predicted_cost,
            0.0
        );
        assert_eq!(
            predict_training_cost(0.1, 1.0, "unknown")
                .assumptions
                .tier_multiplier,
            1.0
        );
    }

    #[test]
    fn csv_quotes_what_needs_quoting() {
        let record = UsageRecord {
            id: "u1".into(),
            timestamp: Timestamp::from_micros(0),
            model: "openai/gpt-4o".into(),
            profile_id: "op,1".into(),
            session_id: "s\"1".into(),
            task_type: "recon".into(),
            scenario_id: None,
            phase: None,
            input_tokens: 1000,
            output_tokens: 500,
            cached_input_tokens: 0,
            cost: 1.0,
            unpriced: false,
            latency_ms: Some(120.5),
            success: false,
            error_message: Some("line one\nline two".into()),
        };
        assert_eq!(
            usage_csv(&[record]),
            "id,timestamp,model,profile_id,session_id,task_type,input_tokens,output_tokens,cost,latency_ms,success,error_message\n\
             u1,1970-01-01T00:00:00Z,openai/gpt-4o,\"op,1\",\"s\"\"1\",recon,1000,500,1.0,120.5,False,\"line one\nline two\""
        );
        assert_eq!(usage_csv(&[]), "");
    }
}
