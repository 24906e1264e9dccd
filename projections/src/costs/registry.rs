//! The LLM price registry (DOMAIN.md §B5 with the fixes of §A1 and §A2.7).
//!
//! The 15 default models of §B5.3 are the registry at position 0. An `ats.model.priced` event
//! adds a price point to one model's history from its `effective_from` on; usage is priced
//! with the point in force at the usage's own `occurred_at`. Model names split on the first
//! `/` only, so `openrouter/openai/gpt-4o` is provider `openrouter`, name `openai/gpt-4o`.
//!
//! A price point is folded when its event is folded: usage already folded keeps the cost it
//! was given ("changing a price never rewrites history"); see ARCHITECTURE.md, Decisions.

use ats_events::{LlmUsage, ModelPriced, Timestamp};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One model with the price in force (seed `LLMModel`, plus the cached-input price).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ModelInfo {
    /// Provider (`openai`, `openrouter`, …).
    pub provider: String,
    /// Name within the provider (may contain `/`).
    pub name: String,
    /// Display name.
    pub display_name: String,
    /// `entry`, `standard`, `advanced` or `premium`.
    pub tier: String,
    /// Capabilities in the seed's order.
    pub capabilities: Vec<String>,
    /// USD per 1,000 input tokens.
    pub cost_per_1k_input_tokens: f64,
    /// USD per 1,000 output tokens.
    pub cost_per_1k_output_tokens: f64,
    /// USD per 1,000 cached input tokens, when the provider prices them separately.
    pub cost_per_1k_cached_input_tokens: Option<f64>,
    /// Context window in tokens.
    pub context_window: u64,
    /// Reasoning score in 0..=1.
    pub reasoning_score: f64,
    /// Speed score in 0..=1.
    pub speed_score: f64,
    /// Task types the model is recommended for.
    pub recommended_for: Vec<String>,
    /// Rate limit, when known.
    pub max_requests_per_minute: Option<u32>,
    /// When this price started to apply (absent: the default table, in force since position 0).
    #[schema(value_type = Option<String>, format = DateTime)]
    pub effective_from: Option<Timestamp>,
}

impl ModelInfo {
    /// `provider/name`, the registry key.
    pub fn full_name(&self) -> String {
        format!("{}/{}", self.provider, self.name)
    }

    /// Seed `calculate_cost(in, out)`: `in/1000 × price_in + out/1000 × price_out` (no rounding).
    pub fn calculate_cost(&self, input_tokens: u64, output_tokens: u64) -> f64 {
        input_tokens as f64 / 1000.0 * self.cost_per_1k_input_tokens
            + output_tokens as f64 / 1000.0 * self.cost_per_1k_output_tokens
    }

    /// The cost of one usage: cached input tokens (a part of `input_tokens`) at the cached
    /// price when the model has one, the rest at the input price.
    pub fn usage_cost(&self, input: u64, cached: u64, output: u64) -> f64 {
        token_cost(
            [
                self.cost_per_1k_input_tokens,
                self.cost_per_1k_output_tokens,
            ],
            self.cost_per_1k_cached_input_tokens,
            [input, cached, output],
        )
    }

    /// The model as a price event describes it; fields the event leaves out come from
    /// `previous` (the price in force before), else neutral defaults.
    pub fn from_event(priced: &ModelPriced, previous: Option<&ModelInfo>) -> Self {
        let keep = |list: &Vec<String>, old: Option<&Vec<String>>| {
            if list.is_empty() {
                old.cloned().unwrap_or_default()
            } else {
                list.clone()
            }
        };
        Self {
            provider: priced.provider.clone(),
            name: priced.name.clone(),
            display_name: priced
                .display_name
                .clone()
                .or_else(|| previous.map(|p| p.display_name.clone()))
                .unwrap_or_else(|| format!("{}/{}", priced.provider, priced.name)),
            tier: priced
                .tier
                .clone()
                .or_else(|| previous.map(|p| p.tier.clone()))
                .unwrap_or_else(|| "standard".into()),
            capabilities: keep(&priced.capabilities, previous.map(|p| &p.capabilities)),
            cost_per_1k_input_tokens: priced.cost_per_1k_input_tokens,
            cost_per_1k_output_tokens: priced.cost_per_1k_output_tokens,
            cost_per_1k_cached_input_tokens: priced.cost_per_1k_cached_input_tokens,
            context_window: priced
                .context_window
                .or_else(|| previous.map(|p| p.context_window))
                .unwrap_or(0),
            reasoning_score: priced
                .reasoning_score
                .or_else(|| previous.map(|p| p.reasoning_score))
                .unwrap_or(0.0),
            speed_score: priced
                .speed_score
                .or_else(|| previous.map(|p| p.speed_score))
                .unwrap_or(0.0),
            recommended_for: keep(
                &priced.recommended_for,
                previous.map(|p| &p.recommended_for),
            ),
            max_requests_per_minute: previous.and_then(|p| p.max_requests_per_minute),
            effective_from: Some(priced.effective_from),
        }
    }
}

/// USD of `[input, cached, output]` tokens at `[input, output]` prices per 1,000: cached
/// input tokens (a part of `input`) at `cached_price` when there is one, else as input.
pub fn token_cost(prices: [f64; 2], cached_price: Option<f64>, tokens: [u64; 3]) -> f64 {
    let [input_price, output_price] = prices;
    let [input, cached, output] = tokens;
    let per_1k = |n: u64, price: f64| n as f64 / 1000.0 * price;
    match cached_price {
        Some(cached_price) => {
            let cached = cached.min(input);
            per_1k(input - cached, input_price)
                + per_1k(output, output_price)
                + per_1k(cached, cached_price)
        }
        None => per_1k(input, input_price) + per_1k(output, output_price),
    }
}

/// `provider/name` split on the first `/` only (§A2.7); `None` without a `/`.
pub fn split_model(full: &str) -> Option<(&str, &str)> {
    full.split_once('/')
        .filter(|(provider, name)| !provider.is_empty() && !name.is_empty())
}

/// A model's price points from `ats.model.priced` events, in `effective_from` order (a later
/// event with the same `effective_from` replaces the earlier one).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PriceHistory {
    /// Points, ascending `effective_from`.
    pub points: Vec<ModelInfo>,
}

impl PriceHistory {
    /// Adds the point of `priced`, inheriting descriptive fields from the price in force
    /// just before it (or the default model).
    pub fn insert(&mut self, priced: &ModelPriced, default: Option<&ModelInfo>) {
        let at = priced.effective_from;
        let previous = self
            .points
            .iter()
            .rev()
            .find(|p| p.effective_from.is_some_and(|t| t <= at))
            .or(default);
        let point = ModelInfo::from_event(priced, previous);
        self.points.retain(|p| p.effective_from != Some(at));
        let index = self.points.partition_point(|p| p.effective_from < Some(at));
        self.points.insert(index, point);
    }

    /// The point in force at `at`, if one started by then.
    pub fn at(&self, at: Timestamp) -> Option<&ModelInfo> {
        self.points
            .iter()
            .rev()
            .find(|p| p.effective_from.is_some_and(|t| t <= at))
    }
}

/// The price in force at `at` for `full` name: the latest event point by then, else the
/// default table.
pub fn price_at(full: &str, history: Option<&PriceHistory>, at: Timestamp) -> Option<ModelInfo> {
    history
        .and_then(|h| h.at(at))
        .cloned()
        .or_else(|| default_model(full))
}

/// How a usage was priced.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Priced {
    /// USD.
    pub cost: f64,
    /// No producer cost and no price in force: stored at cost 0 and flagged (§A2.7).
    pub unpriced: bool,
}

/// Prices one usage: the producer's `cost` wins; else the price in force (`price`), else 0
/// and flagged unpriced.
pub fn price_usage(usage: &LlmUsage, price: Option<&ModelInfo>) -> Priced {
    if let Some(cost) = usage.cost {
        return Priced {
            cost,
            unpriced: false,
        };
    }
    match price {
        Some(model) => Priced {
            cost: model.usage_cost(
                usage.input_tokens,
                usage.cached_input_tokens,
                usage.output_tokens,
            ),
            unpriced: false,
        },
        None => Priced {
            cost: 0.0,
            unpriced: true,
        },
    }
}

/// One row of the default table.
struct Default15 {
    provider: &'static str,
    name: &'static str,
    display: &'static str,
    tier: &'static str,
    input: f64,
    output: f64,
    context: u64,
    reasoning: f64,
    speed: f64,
    capabilities: &'static [&'static str],
    recommended: &'static [&'static str],
    rpm: Option<u32>,
}

const RECON_SOCIAL: &[&str] = &["reconnaissance", "social_engineering"];
const EXPLOIT_ANALYSIS_DEFENSE: &[&str] = &["exploitation", "analysis", "defense"];
const ANALYSIS_DEFENSE_EXPLOIT: &[&str] = &["analysis", "defense", "exploitation"];
const RECON_ANALYSIS_EXPLOIT: &[&str] = &["reconnaissance", "analysis", "exploitation"];

/// DOMAIN.md §B5.3, in the seed's insertion order (the order of "first 3 cheaper alternatives").
#[rustfmt::skip] // one model per line, like the table it copies
const DEFAULTS: [Default15; 15] = [
    Default15 { provider: "openai", name: "gpt-4o", display: "GPT-4o", tier: "advanced", input: 0.0025, output: 0.01, context: 128_000, reasoning: 0.92, speed: 0.88, capabilities: &["reasoning", "vision", "function_calling", "speed"], recommended: RECON_ANALYSIS_EXPLOIT, rpm: None },
    Default15 { provider: "openai", name: "gpt-4o-mini", display: "GPT-4o Mini", tier: "standard", input: 0.00015, output: 0.0006, context: 128_000, reasoning: 0.82, speed: 0.95, capabilities: &["speed", "cost_efficient", "vision", "function_calling"], recommended: RECON_SOCIAL, rpm: None },
    Default15 { provider: "openai", name: "gpt-4-turbo", display: "GPT-4 Turbo", tier: "premium", input: 0.01, output: 0.03, context: 128_000, reasoning: 0.94, speed: 0.75, capabilities: &["reasoning", "vision", "function_calling", "json_mode"], recommended: ANALYSIS_DEFENSE_EXPLOIT, rpm: None },
    Default15 { provider: "anthropic", name: "claude-3.5-sonnet", display: "Claude 3.5 Sonnet", tier: "premium", input: 0.003, output: 0.015, context: 200_000, reasoning: 0.96, speed: 0.85, capabilities: &["reasoning", "analytical", "vision", "function_calling"], recommended: EXPLOIT_ANALYSIS_DEFENSE, rpm: None },
    Default15 { provider: "anthropic", name: "claude-3.5-haiku", display: "Claude 3.5 Haiku", tier: "standard", input: 0.00025, output: 0.00125, context: 200_000, reasoning: 0.84, speed: 0.96, capabilities: &["speed", "cost_efficient", "vision"], recommended: RECON_SOCIAL, rpm: None },
    Default15 { provider: "anthropic", name: "claude-3-opus", display: "Claude 3 Opus", tier: "premium", input: 0.015, output: 0.075, context: 200_000, reasoning: 0.98, speed: 0.65, capabilities: &["reasoning", "analytical", "vision", "creative"], recommended: ANALYSIS_DEFENSE_EXPLOIT, rpm: None },
    Default15 { provider: "google", name: "gemini-1.5-pro", display: "Gemini 1.5 Pro", tier: "advanced", input: 0.00125, output: 0.005, context: 2_000_000, reasoning: 0.9, speed: 0.82, capabilities: &["reasoning", "vision", "function_calling"], recommended: &["analysis", "reconnaissance"], rpm: None },
    Default15 { provider: "google", name: "gemini-1.5-flash", display: "Gemini 1.5 Flash", tier: "standard", input: 7.5e-05, output: 0.0003, context: 1_000_000, reasoning: 0.8, speed: 0.98, capabilities: &["speed", "cost_efficient", "vision"], recommended: RECON_SOCIAL, rpm: None },
    Default15 { provider: "deepseek", name: "deepseek-chat", display: "DeepSeek Chat", tier: "standard", input: 0.00027, output: 0.0011, context: 64_000, reasoning: 0.86, speed: 0.85, capabilities: &["cost_efficient", "reasoning"], recommended: &["reconnaissance", "exploitation"], rpm: None },
    Default15 { provider: "groq", name: "llama-3.1-70b", display: "Llama 3.1 70B (Groq)", tier: "entry", input: 0.00059, output: 0.00079, context: 8_000, reasoning: 0.78, speed: 0.99, capabilities: &["speed", "cost_efficient"], recommended: RECON_SOCIAL, rpm: Some(30) },
    Default15 { provider: "openrouter", name: "openai/gpt-4o", display: "GPT-4o (OpenRouter)", tier: "advanced", input: 0.0025, output: 0.01, context: 128_000, reasoning: 0.92, speed: 0.88, capabilities: &["reasoning", "vision", "function_calling"], recommended: RECON_ANALYSIS_EXPLOIT, rpm: None },
    Default15 { provider: "openrouter", name: "anthropic/claude-3.5-sonnet", display: "Claude 3.5 Sonnet (OpenRouter)", tier: "premium", input: 0.003, output: 0.015, context: 200_000, reasoning: 0.96, speed: 0.85, capabilities: &["reasoning", "analytical", "vision"], recommended: EXPLOIT_ANALYSIS_DEFENSE, rpm: None },
    Default15 { provider: "openrouter", name: "google/gemini-1.5-flash", display: "Gemini 1.5 Flash (OpenRouter)", tier: "standard", input: 7.5e-05, output: 0.0003, context: 1_000_000, reasoning: 0.8, speed: 0.98, capabilities: &["speed", "cost_efficient"], recommended: RECON_SOCIAL, rpm: None },
    Default15 { provider: "mistral", name: "mistral-large", display: "Mistral Large", tier: "advanced", input: 0.002, output: 0.006, context: 128_000, reasoning: 0.88, speed: 0.87, capabilities: &["reasoning", "function_calling"], recommended: &["analysis", "exploitation"], rpm: None },
    Default15 { provider: "ollama", name: "llama3.1:8b", display: "Llama 3.1 8B (Local)", tier: "entry", input: 0.0, output: 0.0, context: 8_000, reasoning: 0.7, speed: 0.85, capabilities: &["cost_efficient", "speed"], recommended: RECON_SOCIAL, rpm: None },
];

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

impl From<&Default15> for ModelInfo {
    fn from(d: &Default15) -> Self {
        Self {
            provider: d.provider.into(),
            name: d.name.into(),
            display_name: d.display.into(),
            tier: d.tier.into(),
            capabilities: strings(d.capabilities),
            cost_per_1k_input_tokens: d.input,
            cost_per_1k_output_tokens: d.output,
            cost_per_1k_cached_input_tokens: None,
            context_window: d.context,
            reasoning_score: d.reasoning,
            speed_score: d.speed,
            recommended_for: strings(d.recommended),
            max_requests_per_minute: d.rpm,
            effective_from: None,
        }
    }
}

/// The default registry (§B5.3), in the seed's order.
pub fn default_models() -> Vec<ModelInfo> {
    DEFAULTS.iter().map(ModelInfo::from).collect()
}

/// One default model by full name.
pub fn default_model(full: &str) -> Option<ModelInfo> {
    let (provider, name) = split_model(full)?;
    DEFAULTS
        .iter()
        .find(|d| d.provider == provider && d.name == name)
        .map(ModelInfo::from)
}

/// Seed `list_models` filters, applied in the seed's order.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
pub struct ModelFilter {
    /// Only this provider.
    pub provider: Option<String>,
    /// Only this tier.
    pub tier: Option<String>,
    /// Only models with this capability.
    pub capability: Option<String>,
    /// Only models whose **input** price per 1K is at most this (the seed compares input only).
    pub max_cost_per_1k: Option<f64>,
}

/// Seed `list_models(provider, tier, capability, max_cost_per_1k)` over `models` (kept in order).
pub fn list_models<'m>(models: &'m [ModelInfo], filter: &ModelFilter) -> Vec<&'m ModelInfo> {
    models
        .iter()
        .filter(|m| filter.provider.as_ref().is_none_or(|p| &m.provider == p))
        .filter(|m| filter.tier.as_ref().is_none_or(|t| &m.tier == t))
        .filter(|m| {
            filter
                .capability
                .as_ref()
                .is_none_or(|c| m.capabilities.contains(c))
        })
        .filter(|m| {
            filter
                .max_cost_per_1k
                .is_none_or(|max| m.cost_per_1k_input_tokens <= max)
        })
        .collect()
}

/// Seed `get_cheapest_model(capability)`: the lowest input price, the first in registry order
/// on a tie.
pub fn cheapest<'m>(models: &'m [ModelInfo], capability: Option<&str>) -> Option<&'m ModelInfo> {
    models
        .iter()
        .filter(|m| capability.is_none_or(|c| m.capabilities.iter().any(|x| x == c)))
        .fold(None, |best: Option<&ModelInfo>, m| match best {
            Some(b) if b.cost_per_1k_input_tokens <= m.cost_per_1k_input_tokens => Some(b),
            _ => Some(m),
        })
}

/// Seed `get_fastest_model(tier)`: the highest speed score, the first on a tie.
pub fn fastest<'m>(models: &'m [ModelInfo], tier: Option<&str>) -> Option<&'m ModelInfo> {
    models
        .iter()
        .filter(|m| tier.is_none_or(|t| m.tier == t))
        .fold(None, |best: Option<&ModelInfo>, m| match best {
            Some(b) if b.speed_score >= m.speed_score => Some(b),
            _ => Some(m),
        })
}

/// Seed `get_recommended_models(task_type, tier, max_cost_per_request)`: models recommended
/// for the task, the cost cap checked at 2,000 input + 500 output tokens, by reasoning score
/// (descending, stable).
pub fn recommended<'m>(
    models: &'m [ModelInfo],
    task_type: &str,
    tier: Option<&str>,
    max_cost_per_request: Option<f64>,
) -> Vec<&'m ModelInfo> {
    let mut out: Vec<&ModelInfo> = models
        .iter()
        .filter(|m| m.recommended_for.iter().any(|t| t == task_type))
        .filter(|m| tier.is_none_or(|t| m.tier == t))
        .filter(|m| max_cost_per_request.is_none_or(|max| m.calculate_cost(2000, 500) <= max))
        .collect();
    out.sort_by(|a, b| b.reasoning_score.total_cmp(&a.reasoning_score));
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a test fails by panicking
mod tests {
    use super::*;

    fn t(text: &str) -> Timestamp {
        Timestamp::parse_rfc3339(text).unwrap()
    }

    fn names(models: &[&ModelInfo]) -> Vec<String> {
        models.iter().map(|m| m.full_name()).collect()
    }

    #[test]
    fn default_table_has_the_seed_counts() {
        let models = default_models();
        assert_eq!(models.len(), 15);
        let count = |f: &dyn Fn(&ModelInfo) -> bool| models.iter().filter(|m| f(m)).count();
        assert_eq!(count(&|m| m.provider == "openrouter"), 3);
        assert_eq!(count(&|m| m.tier == "advanced"), 4);
        assert_eq!(count(&|m| m.tier == "standard"), 5);
        assert_eq!(count(&|m| m.tier == "premium"), 4);
        assert_eq!(count(&|m| m.tier == "entry"), 2);
    }

    #[test]
    fn gpt_4o_thousand_in_five_hundred_out_costs_0_0075() {
        let model = default_model("openai/gpt-4o").unwrap();
        assert!((model.calculate_cost(1000, 500) - 0.0075).abs() < 1e-15);
    }

    #[test]
    fn openrouter_models_are_priced_by_the_first_slash() {
        assert_eq!(
            split_model("openrouter/openai/gpt-4o"),
            Some(("openrouter", "openai/gpt-4o"))
        );
        let model = default_model("openrouter/anthropic/claude-3.5-sonnet").unwrap();
        // 2,000 × 0.003/1K + 1,000 × 0.015/1K.
        assert!((model.calculate_cost(2000, 1000) - 0.021).abs() < 1e-15);
        assert!(default_model("openai/gpt-4").is_none());
        assert!(default_model("gpt-4o").is_none());
    }

    #[test]
    fn cheaper_alternatives_match_the_seed_table() {
        let models = default_models();
        let under = |full: &str, factor: f64| {
            let input = default_model(full).unwrap().cost_per_1k_input_tokens;
            let filter = ModelFilter {
                max_cost_per_1k: Some(input * factor),
                ..ModelFilter::default()
            };
            names(&list_models(&models, &filter))
        };
        let gpt4o = under("openai/gpt-4o", 0.6);
        assert_eq!(gpt4o.len(), 8);
        assert_eq!(
            gpt4o[..3],
            [
                "openai/gpt-4o-mini",
                "anthropic/claude-3.5-haiku",
                "google/gemini-1.5-pro"
            ]
        );
        assert_eq!(
            under("openai/gpt-4o-mini", 0.6),
            [
                "google/gemini-1.5-flash",
                "openrouter/google/gemini-1.5-flash",
                "ollama/llama3.1:8b"
            ]
        );
        assert_eq!(under("openai/gpt-4-turbo", 0.6).len(), 13);
        assert_eq!(under("anthropic/claude-3.5-haiku", 0.6).len(), 4);
        assert_eq!(under("anthropic/claude-3.5-haiku", 0.5).len(), 3);
        assert_eq!(under("deepseek/deepseek-chat", 0.6).len(), 4);
        assert_eq!(under("groq/llama-3.1-70b", 0.6).len(), 6);
        assert_eq!(under("ollama/llama3.1:8b", 0.6), ["ollama/llama3.1:8b"]);
    }

    #[test]
    fn cheapest_fastest_and_recommended() {
        let models = default_models();
        assert_eq!(
            cheapest(&models, None).unwrap().full_name(),
            "ollama/llama3.1:8b"
        );
        assert_eq!(
            cheapest(&models, Some("vision")).unwrap().full_name(),
            "google/gemini-1.5-flash"
        );
        assert_eq!(
            fastest(&models, None).unwrap().full_name(),
            "groq/llama-3.1-70b"
        );
        assert_eq!(
            fastest(&models, Some("premium")).unwrap().full_name(),
            "anthropic/claude-3.5-sonnet"
        );
        let recon = recommended(&models, "reconnaissance", None, None);
        assert_eq!(recon[0].full_name(), "openai/gpt-4o");
        // gpt-4o and its OpenRouter twin tie at 0.92: registry order is kept.
        assert_eq!(recon[1].full_name(), "openrouter/openai/gpt-4o");
        // At 2,000 in + 500 out, gpt-4o costs 0.01: a cap of 0.005 drops it.
        let cheap = recommended(&models, "reconnaissance", None, Some(0.005));
        assert!(cheap.iter().all(|m| m.calculate_cost(2000, 500) <= 0.005));
        assert_eq!(cheap[0].full_name(), "google/gemini-1.5-pro");
    }

    #[test]
    fn price_history_applies_from_effective_from() {
        let priced = |input: f64, at: &str| ModelPriced {
            provider: "openai".into(),
            name: "gpt-4o".into(),
            cost_per_1k_input_tokens: input,
            cost_per_1k_output_tokens: 0.02,
            cost_per_1k_cached_input_tokens: Some(0.001),
            effective_from: t(at),
            display_name: None,
            tier: None,
            capabilities: Vec::new(),
            context_window: None,
            reasoning_score: None,
            speed_score: None,
            recommended_for: Vec::new(),
        };
        let default = default_model("openai/gpt-4o");
        let mut history = PriceHistory::default();
        history.insert(&priced(0.005, "2026-11-10T00:00:00Z"), default.as_ref());
        history.insert(&priced(0.004, "2026-11-05T00:00:00Z"), default.as_ref());
        let before = price_at("openai/gpt-4o", Some(&history), t("2026-11-04T23:59:59Z")).unwrap();
        assert_eq!(before.cost_per_1k_input_tokens, 0.0025);
        let mid = price_at("openai/gpt-4o", Some(&history), t("2026-11-05T00:00:00Z")).unwrap();
        assert_eq!(mid.cost_per_1k_input_tokens, 0.004);
        // Descriptive fields are inherited from the default model.
        assert_eq!(mid.display_name, "GPT-4o");
        assert_eq!(mid.reasoning_score, 0.92);
        let after = price_at("openai/gpt-4o", Some(&history), t("2026-12-01T00:00:00Z")).unwrap();
        assert_eq!(after.cost_per_1k_input_tokens, 0.005);
        // 1,000 input of which 400 cached, 500 output:
        // 600 × 0.005/1K + 400 × 0.001/1K + 500 × 0.02/1K = 0.003 + 0.0004 + 0.01.
        assert!((after.usage_cost(1000, 400, 500) - 0.0134).abs() < 1e-15);
        // Without a cached price, cached tokens are input tokens.
        assert!((before.usage_cost(1000, 400, 500) - 0.0075).abs() < 1e-15);
    }
}
