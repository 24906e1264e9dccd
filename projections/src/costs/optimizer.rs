//! The seed's cost optimizer and ROI calculator (DOMAIN.md §B3.4–3.6, §B4.3), over the
//! costs read model with an explicit `as_of`.

use std::collections::BTreeMap;

use ats_events::Timestamp;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::registry::{list_models, ModelFilter, ModelInfo};
use super::{models, scan, session_cost, Dim, Usage, Window};
use crate::analytics::mean;

/// Seed `OptimizationType` values the rules emit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OptimizationType {
    /// Use a cheaper model.
    ModelSubstitution,
    /// Shorter prompts.
    PromptOptimization,
    /// Cache repeated tasks.
    Caching,
}

/// Seed `OptimizationOpportunity.to_dict()`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Opportunity {
    /// `opt_model_{model}_{as_of seconds}`, `opt_prompt_{…}`, `opt_cache_{…}`.
    pub id: String,
    /// Type.
    pub optimization_type: OptimizationType,
    /// 1–5.
    pub priority: u8,
    /// Title.
    pub title: String,
    /// Description.
    pub description: String,
    /// USD the opportunity is about.
    pub current_cost: f64,
    /// USD it could save (the seed's fixed factors).
    pub potential_savings: f64,
    /// 1–5.
    pub implementation_difficulty: u8,
    /// What to do.
    pub recommendations: Vec<String>,
    /// potential_savings / implementation_difficulty.
    pub roi_score: f64,
}

impl Opportunity {
    fn roi(savings: f64, difficulty: u8) -> f64 {
        if difficulty == 0 {
            0.0
        } else {
            savings / f64::from(difficulty)
        }
    }
}

/// Models whose input price is at most `factor` × the input price of `model` (the seed's
/// `list_models(max_cost_per_1k=…)`, registry order); none when `model` is not priced.
fn cheaper_than<'m>(registry: &'m [ModelInfo], model: &str, factor: f64) -> Vec<&'m ModelInfo> {
    registry
        .iter()
        .find(|m| m.full_name() == model)
        .map(|current| {
            let filter = ModelFilter {
                max_cost_per_1k: Some(current.cost_per_1k_input_tokens * factor),
                ..ModelFilter::default()
            };
            list_models(registry, &filter)
        })
        .unwrap_or_default()
}

/// What the rules look at: usage per model and per task type, and the totals.
struct Scope {
    by_model: BTreeMap<String, Usage>,
    by_task_type: BTreeMap<String, Usage>,
}

/// Seed `identify_opportunities(session_id, time_range)`: a session's whole usage, or the
/// window of `time_range_days` days ending with `as_of` (all time without it); the registry
/// (and so the cheaper models) as of `as_of`. Sorted by ROI score, descending, stable.
pub fn identify_opportunities(
    tree: &sled::Tree,
    session_id: Option<&str>,
    time_range_days: Option<u32>,
    as_of: Timestamp,
) -> Vec<Opportunity> {
    let scope = match session_id {
        Some(id) => match session_cost(tree, id) {
            Some(s) => Scope {
                by_model: s.by_model,
                by_task_type: s.by_task_type,
            },
            None => return Vec::new(),
        },
        None => {
            let window = Window::new(time_range_days, as_of);
            Scope {
                by_model: scan(tree, Dim::Model, &window),
                by_task_type: scan(tree, Dim::TaskType, &window),
            }
        }
    };
    opportunities(&scope, &models(tree, as_of), as_of)
}

fn opportunities(scope: &Scope, registry: &[ModelInfo], as_of: Timestamp) -> Vec<Opportunity> {
    let requests: u64 = scope.by_model.values().map(|u| u.requests).sum();
    if requests == 0 {
        return Vec::new();
    }
    let stamp = as_of.micros().div_euclid(Timestamp::MICROS_PER_SEC);
    let mut out = Vec::new();
    // Rule 1: model substitution, for models that cost more than $1.
    for (model, usage) in &scope.by_model {
        if usage.cost <= 1.0 {
            continue;
        }
        let cheaper = cheaper_than(registry, model, 0.6);
        if cheaper.is_empty() {
            continue;
        }
        let savings = usage.cost * 0.40;
        out.push(Opportunity {
            id: format!("opt_model_{model}_{stamp}"),
            optimization_type: OptimizationType::ModelSubstitution,
            priority: if savings > 5.0 { 4 } else { 3 },
            title: format!("Replace expensive model {model}"),
            description: format!(
                "Current cost: ${:.2}. Consider cheaper alternatives.",
                usage.cost
            ),
            current_cost: usage.cost,
            potential_savings: savings,
            implementation_difficulty: 2,
            recommendations: cheaper
                .iter()
                .take(3)
                .map(|m| format!("Test alternative: {}", m.full_name()))
                .collect(),
            roi_score: Opportunity::roi(savings, 2),
        });
    }
    let total_cost: f64 = scope.by_model.values().map(|u| u.cost).sum();
    // Rule 2: prompt optimization, above 2,000 tokens per request on average.
    let tokens: u64 = scope.by_model.values().map(Usage::tokens).sum();
    let average = tokens as f64 / requests as f64;
    if average > 2000.0 {
        let savings = total_cost * 0.20;
        out.push(Opportunity {
            id: format!("opt_prompt_{stamp}"),
            optimization_type: OptimizationType::PromptOptimization,
            priority: 4,
            title: "Optimize prompt length".into(),
            description: format!("Average {average:.0} tokens per request"),
            current_cost: total_cost,
            potential_savings: savings,
            implementation_difficulty: 3,
            recommendations: vec![
                "Review and compress prompts".into(),
                "Remove redundant context".into(),
                "Use more efficient prompt templates".into(),
            ],
            roi_score: Opportunity::roi(savings, 3),
        });
    }
    // Rule 3: caching, for task types seen more than 10 times.
    let repeated: Vec<(&String, &Usage)> = scope
        .by_task_type
        .iter()
        .filter(|(_, u)| u.requests > 10)
        .collect();
    if !repeated.is_empty() {
        let current: f64 = repeated.iter().map(|(_, u)| u.cost).sum();
        let count: u64 = repeated.iter().map(|(_, u)| u.requests).sum();
        let savings = current * 0.30;
        let names: Vec<&str> = repeated.iter().take(3).map(|(t, _)| t.as_str()).collect();
        out.push(Opportunity {
            id: format!("opt_cache_{stamp}"),
            optimization_type: OptimizationType::Caching,
            priority: 3,
            title: "Implement response caching".into(),
            description: format!("Detected {count} repeated task patterns"),
            current_cost: current,
            potential_savings: savings,
            implementation_difficulty: 4,
            recommendations: vec![
                "Cache responses for common queries".into(),
                "Implement semantic caching for similar requests".into(),
                format!("Focus on task types: {}", names.join(", ")),
            ],
            roi_score: Opportunity::roi(savings, 4),
        });
    }
    // Stable: equal scores keep rule order (models by name, then prompt, then caching).
    out.sort_by(|a, b| b.roi_score.total_cmp(&a.roi_score));
    out
}

/// Seed `calculate_optimization_impact(opps)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Impact {
    /// Opportunities.
    pub total_opportunities: usize,
    /// Σ current cost (overlapping opportunities count twice, as in the seed).
    pub total_current_cost: f64,
    /// Σ potential savings.
    pub total_potential_savings: f64,
    /// savings / current × 100 (0 when current is 0).
    pub savings_percentage: f64,
    /// Mean difficulty (0 without opportunities).
    pub avg_implementation_difficulty: f64,
    /// Opportunities with priority ≥ 4.
    pub high_priority_count: usize,
    /// Opportunities with difficulty ≤ 2 and savings > $1.
    pub quick_wins: Vec<Opportunity>,
}

/// Seed `calculate_optimization_impact`.
pub fn impact(opportunities: &[Opportunity]) -> Impact {
    let current: f64 = opportunities.iter().map(|o| o.current_cost).sum();
    let savings: f64 = opportunities.iter().map(|o| o.potential_savings).sum();
    let difficulties: Vec<f64> = opportunities
        .iter()
        .map(|o| f64::from(o.implementation_difficulty))
        .collect();
    Impact {
        total_opportunities: opportunities.len(),
        total_current_cost: current,
        total_potential_savings: savings,
        savings_percentage: if current > 0.0 {
            savings / current * 100.0
        } else {
            0.0
        },
        avg_implementation_difficulty: mean(&difficulties),
        high_priority_count: opportunities.iter().filter(|o| o.priority >= 4).count(),
        quick_wins: opportunities
            .iter()
            .filter(|o| o.implementation_difficulty <= 2 && o.potential_savings > 1.0)
            .cloned()
            .collect(),
    }
}

/// One of the seed's basic per-session recommendations (§B4.3).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SessionRecommendation {
    /// A model with alternatives at ≤ 50 % of its input price.
    CheaperModel {
        /// The model.
        current_model: String,
        /// Its cost in the session.
        current_cost: f64,
        /// First 3 cheaper models, registry order.
        alternatives: Vec<String>,
        /// cost × 0.5.
        potential_savings: f64,
        /// The seed's message.
        message: String,
    },
    /// More than 100,000 input tokens in the session.
    HighTokenUsage {
        /// Input tokens.
        input_tokens: u64,
        /// The seed's message.
        message: String,
    },
}

/// Seed `get_optimization_recommendations(session)` with the registry as of `as_of`.
pub fn session_recommendations(
    tree: &sled::Tree,
    session_id: &str,
    as_of: Timestamp,
) -> Vec<SessionRecommendation> {
    let Some(session) = session_cost(tree, session_id) else {
        return Vec::new();
    };
    let registry = models(tree, as_of);
    let mut out = Vec::new();
    for (model, usage) in &session.by_model {
        let cheaper = cheaper_than(&registry, model, 0.5);
        if cheaper.is_empty() {
            continue;
        }
        let savings = usage.cost * 0.5;
        out.push(SessionRecommendation::CheaperModel {
            current_model: model.clone(),
            current_cost: usage.cost,
            alternatives: cheaper.iter().take(3).map(|m| m.full_name()).collect(),
            potential_savings: savings,
            message: format!("Consider using cheaper models. Potential savings: ${savings:.2}"),
        });
    }
    if session.total.input_tokens > 100_000 {
        out.push(SessionRecommendation::HighTokenUsage {
            input_tokens: session.total.input_tokens,
            message: "High input token usage detected. Consider optimizing prompts or using context compression.".into(),
        });
    }
    out
}

/// Seed `ROIMetrics`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RoiMetrics {
    /// The cost.
    pub total_investment: f64,
    /// `int(final − initial)` (truncated toward zero; may be negative).
    pub skill_gains: i64,
    /// Certifications.
    pub certifications_earned: u32,
    /// (final − initial) / 5.
    pub proficiency_increase: f64,
    /// hours / max(1, gains) (0 without hours).
    pub time_to_proficiency: f64,
    /// cost / gains (0 without gains).
    pub cost_per_skill_level: f64,
    /// (gains × 100 + certifications × 200) / cost − 1 (0 when cost ≤ 0).
    pub overall_roi: f64,
}

/// Seed `calculate_training_roi`.
pub fn calculate_training_roi(
    total_cost: f64,
    initial_skill_level: f64,
    final_skill_level: f64,
    training_hours: f64,
    certifications: u32,
) -> RoiMetrics {
    let difference = final_skill_level - initial_skill_level;
    // Python's int() truncates toward zero, as `as` does.
    let gains = difference as i64;
    RoiMetrics {
        total_investment: total_cost,
        skill_gains: gains,
        certifications_earned: certifications,
        proficiency_increase: difference / 5.0,
        time_to_proficiency: if training_hours == 0.0 {
            0.0
        } else {
            training_hours / gains.max(1) as f64
        },
        cost_per_skill_level: if gains == 0 {
            0.0
        } else {
            total_cost / gains as f64
        },
        overall_roi: if total_cost <= 0.0 {
            0.0
        } else {
            (gains as f64 * 100.0 + f64::from(certifications) * 200.0) / total_cost - 1.0
        },
    }
}

/// One training method to compare (seed dict keys; absent ones default to 0 / `Unknown`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct TrainingMethod {
    /// Name (`Unknown` when absent).
    pub name: Option<String>,
    /// USD.
    pub cost: f64,
    /// Level before.
    pub initial_level: f64,
    /// Level after.
    pub final_level: f64,
    /// Hours.
    pub hours: f64,
    /// Certifications.
    pub certifications: u32,
}

/// A method with its metrics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MethodRoi {
    /// The method's name.
    pub method_name: String,
    /// Its ROI.
    pub metrics: RoiMetrics,
}

/// Seed `compare_training_methods` (callers answer `no_methods_provided` for an empty list).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MethodComparison {
    /// Every method, in the given order.
    pub methods: Vec<MethodRoi>,
    /// The highest overall ROI (the first on a tie).
    pub best_roi: MethodRoi,
    /// The lowest positive cost per skill level (the first when none is positive).
    pub most_cost_efficient: MethodRoi,
    /// Mean overall ROI.
    pub average_roi: f64,
}

/// Seed `compare_training_methods`; `None` for an empty list.
pub fn compare_training_methods(methods: &[TrainingMethod]) -> Option<MethodComparison> {
    let rois: Vec<MethodRoi> = methods
        .iter()
        .map(|m| MethodRoi {
            method_name: m.name.clone().unwrap_or_else(|| "Unknown".into()),
            metrics: calculate_training_roi(
                m.cost,
                m.initial_level,
                m.final_level,
                m.hours,
                m.certifications,
            ),
        })
        .collect();
    if rois.is_empty() {
        return None;
    }
    let best = rois.iter().fold(&rois[0], |best, m| {
        if m.metrics.overall_roi > best.metrics.overall_roi {
            m
        } else {
            best
        }
    });
    let efficiency = |m: &MethodRoi| {
        if m.metrics.cost_per_skill_level > 0.0 {
            m.metrics.cost_per_skill_level
        } else {
            f64::INFINITY
        }
    };
    let efficient = rois.iter().fold(&rois[0], |best, m| {
        if efficiency(m) < efficiency(best) {
            m
        } else {
            best
        }
    });
    let average = mean(
        &rois
            .iter()
            .map(|m| m.metrics.overall_roi)
            .collect::<Vec<_>>(),
    );
    Some(MethodComparison {
        best_roi: best.clone(),
        most_cost_efficient: efficient.clone(),
        average_roi: average,
        methods: rois,
    })
}
