//! The event catalogue of DOMAIN.md §A1: one payload type per kind.
//!
//! Serde names equal the wire strings. Optional fields default, so a producer sends only
//! what it knows; unknown fields are rejected so a typo is an error, not silently lost data.

use std::collections::BTreeMap;

use serde::{de::DeserializeOwned, Deserialize, Serialize};
use utoipa::ToSchema;

use crate::time::Timestamp;
use crate::validate::{
    finite, id, ids, non_negative, opt_text, positive, text, unit_interval, FieldError, Validate,
};

/// Free-form JSON object attached to some events (`metadata`, `context`, `requirements`).
/// A `BTreeMap` so that encoding is deterministic.
pub type Attributes = BTreeMap<String, serde_json::Value>;

fn yes() -> bool {
    true
}

/// A kind of performance metric (seed `MetricType`); declaration order is the seed's.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum MetricType {
    /// Objectives per unit of time.
    TimeEfficiency,
    /// Score per dollar.
    CostEfficiency,
    /// Share of successful sessions.
    SuccessRate,
    /// Skill growth.
    SkillProgression,
    /// How unnoticed the operator stayed.
    StealthRating,
    /// Tool handling.
    ToolProficiency,
    /// Reporting and team communication.
    CommunicationEffectiveness,
    /// Quality of decisions.
    DecisionQuality,
}

impl MetricType {
    /// Every metric type, in the seed's order.
    pub const ALL: [MetricType; 8] = [
        Self::TimeEfficiency,
        Self::CostEfficiency,
        Self::SuccessRate,
        Self::SkillProgression,
        Self::StealthRating,
        Self::ToolProficiency,
        Self::CommunicationEffectiveness,
        Self::DecisionQuality,
    ];

    /// The wire string.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TimeEfficiency => "time_efficiency",
            Self::CostEfficiency => "cost_efficiency",
            Self::SuccessRate => "success_rate",
            Self::SkillProgression => "skill_progression",
            Self::StealthRating => "stealth_rating",
            Self::ToolProficiency => "tool_proficiency",
            Self::CommunicationEffectiveness => "communication_effectiveness",
            Self::DecisionQuality => "decision_quality",
        }
    }
}

/// Who a budget applies to.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum BudgetScope {
    /// All spend.
    Global,
    /// One operator profile (`entity_id` = operator id).
    Profile,
    /// One training session (`entity_id` = session id).
    Session,
}

/// How often a budget resets.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Default,
    Serialize,
    Deserialize,
    ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum BudgetPeriod {
    /// Never resets.
    #[default]
    None,
    /// Resets at 00:00 UTC.
    Daily,
    /// Resets on Monday 00:00 UTC.
    Weekly,
    /// Resets on the first of the month, 00:00 UTC.
    Monthly,
}

/// Kind of milestone (seed `MilestoneType`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum MilestoneType {
    /// The first completed session.
    FirstSession,
    /// A skill reaching a level.
    SkillMilestone,
    /// A number of sessions.
    SessionCount,
    /// A number of training hours.
    HoursTrained,
    /// A certification earned.
    Certification,
    /// Several skills at mastery.
    Mastery,
    /// Anything else, granted explicitly.
    SpecialEvent,
}

/// Kind of report (seed `ReportType`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ReportType {
    /// One operator's progress.
    OperatorProgress,
    /// One session.
    SessionAnalysis,
    /// Costs.
    CostSummary,
    /// Training effectiveness.
    TrainingEffectiveness,
    /// System health.
    SystemHealth,
    /// A team.
    TeamPerformance,
    /// Trends.
    TrendAnalysis,
    /// Certification compliance.
    Compliance,
}

/// `ats.operator.registered`: names an operator (profiles exist without it, named by id).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OperatorRegistered {
    /// Operator id.
    pub operator_id: String,
    /// Display name.
    pub name: String,
    /// Team, used by team filters.
    #[serde(default)]
    pub team: Option<String>,
    /// Declared specializations.
    #[serde(default)]
    pub specializations: Vec<String>,
    /// Free-form metadata.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub metadata: Attributes,
}

/// `ats.session.started`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionStarted {
    /// Session id.
    pub session_id: String,
    /// Operator id.
    pub operator_id: String,
    /// Scenario id.
    pub scenario_id: String,
    /// Start of the session.
    #[schema(value_type = String, format = DateTime)]
    pub start_time: Timestamp,
    /// Scenario difficulty in 0..=1.
    #[serde(default)]
    pub difficulty: Option<f64>,
}

/// One metric measured during a session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionMetric {
    /// Metric type.
    pub metric_type: MetricType,
    /// Measured value.
    pub value: f64,
}

/// `ats.session.completed`: the result of one training session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionCompleted {
    /// Session id; a second completion of the same id is ignored by folds.
    pub session_id: String,
    /// Operator id.
    pub operator_id: String,
    /// Scenario id.
    pub scenario_id: String,
    /// Start of the session.
    #[schema(value_type = String, format = DateTime)]
    pub start_time: Timestamp,
    /// End of the session; not before `start_time`.
    #[schema(value_type = String, format = DateTime)]
    pub end_time: Timestamp,
    /// Duration in seconds.
    pub duration_seconds: f64,
    /// Whether the scenario succeeded.
    pub success: bool,
    /// Score in 0..=1.
    pub score: f64,
    /// Cost in USD.
    #[serde(default)]
    pub cost: f64,
    /// Skills practised.
    #[serde(default)]
    pub skills_practiced: Vec<String>,
    /// Objectives completed.
    #[serde(default)]
    pub objectives_completed: u32,
    /// Objectives in the scenario.
    #[serde(default)]
    pub objectives_total: u32,
    /// Metrics measured in the session.
    #[serde(default)]
    pub metrics: Vec<SessionMetric>,
    /// Scenario difficulty in 0..=1.
    #[serde(default)]
    pub difficulty: Option<f64>,
}

/// `ats.metric.recorded`: one performance metric outside a session summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MetricRecorded {
    /// Operator id.
    pub operator_id: String,
    /// Session id.
    pub session_id: String,
    /// Metric type.
    pub metric_type: MetricType,
    /// Value.
    pub value: f64,
    /// Scenario id.
    #[serde(default)]
    pub scenario_id: Option<String>,
    /// Free-form context.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub context: Attributes,
}

/// `ats.skill.assessed`: a learning-curve data point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SkillAssessed {
    /// Operator id.
    pub operator_id: String,
    /// Skill name.
    pub skill: String,
    /// Score in 0..=1.
    pub score: f64,
}

/// `ats.llm.usage`: one LLM request made during training.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LlmUsage {
    /// `provider/name`; split on the first `/` only.
    pub model: String,
    /// Operator profile id.
    pub profile_id: String,
    /// Session id.
    pub session_id: String,
    /// Task type (reconnaissance, exploitation, …).
    pub task_type: String,
    /// Input tokens.
    pub input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
    /// Cached input tokens.
    #[serde(default)]
    pub cached_input_tokens: u64,
    /// Latency in milliseconds.
    #[serde(default)]
    pub latency_ms: Option<f64>,
    /// Whether the request succeeded.
    #[serde(default = "yes")]
    pub success: bool,
    /// Error message of a failed request.
    #[serde(default)]
    pub error_message: Option<String>,
    /// Scenario id.
    #[serde(default)]
    pub scenario_id: Option<String>,
    /// Training phase.
    #[serde(default)]
    pub phase: Option<String>,
    /// Cost in USD when the producer knows it; it wins over the price table.
    #[serde(default)]
    pub cost: Option<f64>,
}

/// `ats.model.priced`: a model's price from `effective_from` on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ModelPriced {
    /// Provider (`openai`, `openrouter`, …).
    pub provider: String,
    /// Model name within the provider (may contain `/`).
    pub name: String,
    /// USD per 1,000 input tokens.
    pub cost_per_1k_input_tokens: f64,
    /// USD per 1,000 output tokens.
    pub cost_per_1k_output_tokens: f64,
    /// USD per 1,000 cached input tokens.
    #[serde(default)]
    pub cost_per_1k_cached_input_tokens: Option<f64>,
    /// When the price starts to apply.
    #[schema(value_type = String, format = DateTime)]
    pub effective_from: Timestamp,
    /// Display name.
    #[serde(default)]
    pub display_name: Option<String>,
    /// Tier (entry, standard, advanced, premium).
    #[serde(default)]
    pub tier: Option<String>,
    /// Capabilities.
    #[serde(default)]
    pub capabilities: Vec<String>,
    /// Context window in tokens.
    #[serde(default)]
    pub context_window: Option<u64>,
    /// Reasoning score.
    #[serde(default)]
    pub reasoning_score: Option<f64>,
    /// Speed score.
    #[serde(default)]
    pub speed_score: Option<f64>,
    /// Task types this model is recommended for.
    #[serde(default)]
    pub recommended_for: Vec<String>,
}

/// `ats.budget.set`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BudgetSet {
    /// Scope.
    pub scope: BudgetScope,
    /// Operator or session id; absent for `global`.
    #[serde(default)]
    pub entity_id: Option<String>,
    /// Amount in USD.
    pub amount: f64,
    /// Reset period.
    #[serde(default)]
    pub period: BudgetPeriod,
    /// Alert thresholds as fractions of the amount; empty = the configured default.
    #[serde(default)]
    pub thresholds: Vec<f64>,
}

/// `ats.benchmark.set`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BenchmarkSet {
    /// Benchmark id.
    pub benchmark_id: String,
    /// Metric type.
    pub metric_type: MetricType,
    /// Benchmark value.
    pub value: f64,
    /// Free-form context.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub context: Attributes,
}

/// `ats.milestone.registered`: a custom milestone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MilestoneRegistered {
    /// Milestone id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Description.
    #[serde(default)]
    pub description: Option<String>,
    /// Type.
    pub milestone_type: MilestoneType,
    /// Requirements (seed keys such as `session_count`, `hours`, `skill_count`).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub requirements: Attributes,
    /// XP granted on unlock.
    pub xp_reward: u64,
    /// Badge icon.
    #[serde(default)]
    pub badge_icon: Option<String>,
}

/// `ats.goal.created`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GoalCreated {
    /// Goal id.
    pub goal_id: String,
    /// Operator id.
    pub operator_id: String,
    /// Name.
    pub name: String,
    /// Description.
    #[serde(default)]
    pub description: Option<String>,
    /// Target value.
    pub target_value: f64,
    /// Unit.
    #[serde(default)]
    pub unit: Option<String>,
    /// Deadline.
    #[serde(default)]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub deadline: Option<Timestamp>,
}

/// `ats.goal.progressed`: sets the goal's current value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GoalProgressed {
    /// Goal id.
    pub goal_id: String,
    /// New current value.
    pub value: f64,
}

/// `ats.certification.awarded`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CertificationAwarded {
    /// Operator id.
    pub operator_id: String,
    /// Certification id.
    pub certification_id: String,
}

/// `ats.xp.awarded`: a manual XP grant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct XpAwarded {
    /// Operator id.
    pub operator_id: String,
    /// XP granted.
    pub amount: u64,
    /// Why.
    pub reason: String,
}

/// `ats.leaderboard.scored`: sets an operator's score on a custom leaderboard category (seed
/// `update_leaderboard(category, operator, score)`; a later score replaces it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LeaderboardScored {
    /// Category (e.g. `ctf_points`); not one of the built-in boards.
    pub category: String,
    /// Operator id.
    pub operator_id: String,
    /// Score (higher ranks first).
    pub score: f64,
}

/// `ats.report.generated`: a report's content, fixed at generation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportGenerated {
    /// Report id (a UUID).
    pub report_id: String,
    /// Report type.
    pub report_type: ReportType,
    /// Parameters the report was generated with.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub parameters: Attributes,
    /// Title.
    pub title: String,
    /// Description.
    #[serde(default)]
    pub description: Option<String>,
    /// Structured content.
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
    /// Read-model positions the data was computed at.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub as_of: Attributes,
}

/// `ats.report.deleted`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportDeleted {
    /// Report id.
    pub report_id: String,
}

/// `ats.alert.acknowledged`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertAcknowledged {
    /// Alert id.
    pub alert_id: String,
    /// Who acknowledged it.
    #[serde(default)]
    pub by: Option<String>,
}

/// `ats.report.template.registered`: a custom report template (minijinja), registered by name;
/// `GET …/reports/{id}/download?template=<name>` renders a stored report through it. A later
/// registration of the same name replaces it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportTemplateRegistered {
    /// Template name (`?template=`).
    pub name: String,
    /// Media type of what it renders: one of [`TEMPLATE_MEDIA_TYPES`]; `text/html` escapes
    /// every value it inserts.
    pub media_type: String,
    /// The minijinja source; the context is the report (`title`, `data`, …).
    pub template: String,
    /// What it is for.
    #[serde(default)]
    pub description: Option<String>,
}

/// Media types a report template may render.
pub const TEMPLATE_MEDIA_TYPES: [&str; 5] = [
    "text/html",
    "text/markdown",
    "text/csv",
    "text/plain",
    "application/json",
];

/// Longest template source accepted (a template is a document, not a field).
pub const MAX_TEMPLATE_LEN: usize = 64 * 1024;

/// What an API key may do (issue 9). Scopes are independent: `admin` does not imply `read`,
/// so a key holds exactly what it was given.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Append events: `POST /api/events` and the command endpoints that append one event.
    Ingest,
    /// Every query, and the computations that append nothing.
    Read,
    /// Operate the engine: projectors, rebuild, dead letters, API keys.
    Admin,
}

impl Scope {
    /// Every scope, in a fixed order.
    pub const ALL: [Scope; 3] = [Scope::Ingest, Scope::Read, Scope::Admin];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Ingest => "ingest",
            Scope::Read => "read",
            Scope::Admin => "admin",
        }
    }

    /// Parses a wire name.
    pub fn parse(text: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// `ats.apikey.issued`: an API key came into force. Only the SHA-256 of its secret is
/// recorded; the secret itself was shown once to whoever created the key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyIssued {
    /// Public key id (the middle part of `atsk_<key_id>_<secret>`).
    pub key_id: String,
    /// A name for people (`grafana`, `orchestrator`).
    pub name: String,
    /// What the key may do.
    pub scopes: Vec<Scope>,
    /// Lowercase hex SHA-256 of the secret part.
    pub secret_sha256: String,
    /// Requests per minute (bursts up to the same number); `None` is the server's default.
    #[serde(default)]
    pub rate_limit_per_minute: Option<u32>,
}

/// `ats.apikey.revoked`: an API key stops working.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyRevoked {
    /// The key id.
    pub key_id: String,
    /// Why, for the audit trail.
    #[serde(default)]
    pub reason: Option<String>,
}

macro_rules! catalogue {
    ($( $variant:ident => $wire:literal, operator: $op:expr ;)*) => {
        /// The payload of an event; the serde tag is the kind's wire string.
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
        pub enum Payload {
            $(
                #[doc = concat!("`", $wire, "`")]
                #[serde(rename = $wire)]
                $variant($variant),
            )*
        }

        /// The kind of an event, without its data.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum EventKind {
            $(
                #[doc = concat!("`", $wire, "`")]
                #[serde(rename = $wire)]
                $variant,
            )*
        }

        impl EventKind {
            /// Every kind, in catalogue order.
            pub const ALL: &'static [EventKind] = &[$(EventKind::$variant),*];

            /// The wire string (`ats.session.completed`).
            pub fn as_str(self) -> &'static str {
                match self { $(EventKind::$variant => $wire),* }
            }

            /// Parses a wire string.
            pub fn parse(text: &str) -> Option<Self> {
                match text { $($wire => Some(EventKind::$variant),)* _ => None }
            }
        }

        impl Payload {
            /// This payload's kind.
            pub fn kind(&self) -> EventKind {
                match self { $(Payload::$variant(_) => EventKind::$variant),* }
            }

            /// Parses the JSON `data` of a kind; errors name the field relative to `data`.
            pub fn from_json(kind: EventKind, data: serde_json::Value) -> Result<Self, FieldError> {
                match kind { $(EventKind::$variant => parse_data::<$variant>(data).map(Payload::$variant)),* }
            }

            /// [`Payload::from_json`] from the JSON text of `data`, with no `Value` between.
            pub fn from_json_str(kind: EventKind, data: &str) -> Result<Self, FieldError> {
                match kind { $(EventKind::$variant => parse_data_str::<$variant>(data).map(Payload::$variant)),* }
            }

            /// The operator this event is about, if its kind has one.
            pub fn operator_id(&self) -> Option<&str> {
                #[allow(unused_variables)] // kinds without an operator ignore their payload
                match self { $(Payload::$variant(p) => { let f: fn(&$variant) -> Option<&str> = $op; f(p) }),* }
            }

            /// The payload as JSON (`data` of a CloudEvent).
            pub fn data_json(&self) -> serde_json::Value {
                let value = match self { $(Payload::$variant(p) => serde_json::to_value(p)),* };
                value.unwrap_or(serde_json::Value::Null)
            }
        }

        impl Validate for Payload {
            fn validate(&self) -> Result<(), FieldError> {
                match self { $(Payload::$variant(p) => p.validate()),* }
            }
        }

        /// Names of every payload schema, for the JSON Schema document.
        pub(crate) fn payload_schemas(
            out: &mut Vec<(String, utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>)>,
        ) {
            $(
                out.push(($wire.to_owned(), <$variant as utoipa::PartialSchema>::schema()));
                <$variant as ToSchema>::schemas(out);
            )*
        }
    };
}

catalogue! {
    OperatorRegistered => "ats.operator.registered", operator: |p| Some(&p.operator_id);
    SessionStarted => "ats.session.started", operator: |p| Some(&p.operator_id);
    SessionCompleted => "ats.session.completed", operator: |p| Some(&p.operator_id);
    MetricRecorded => "ats.metric.recorded", operator: |p| Some(&p.operator_id);
    SkillAssessed => "ats.skill.assessed", operator: |p| Some(&p.operator_id);
    LlmUsage => "ats.llm.usage", operator: |p| Some(&p.profile_id);
    ModelPriced => "ats.model.priced", operator: |_| None;
    BudgetSet => "ats.budget.set", operator: |p| match p.scope { BudgetScope::Profile => p.entity_id.as_deref(), _ => None };
    BenchmarkSet => "ats.benchmark.set", operator: |_| None;
    MilestoneRegistered => "ats.milestone.registered", operator: |_| None;
    GoalCreated => "ats.goal.created", operator: |p| Some(&p.operator_id);
    GoalProgressed => "ats.goal.progressed", operator: |_| None;
    CertificationAwarded => "ats.certification.awarded", operator: |p| Some(&p.operator_id);
    XpAwarded => "ats.xp.awarded", operator: |p| Some(&p.operator_id);
    LeaderboardScored => "ats.leaderboard.scored", operator: |p| Some(&p.operator_id);
    ReportGenerated => "ats.report.generated", operator: |_| None;
    ReportDeleted => "ats.report.deleted", operator: |_| None;
    AlertAcknowledged => "ats.alert.acknowledged", operator: |_| None;
    ReportTemplateRegistered => "ats.report.template.registered", operator: |_| None;
    ApiKeyIssued => "ats.apikey.issued", operator: |_| None;
    ApiKeyRevoked => "ats.apikey.revoked", operator: |_| None;
}

fn parse_data<T: DeserializeOwned>(data: serde_json::Value) -> Result<T, FieldError> {
    serde_path_to_error::deserialize(data).map_err(data_error)
}

fn parse_data_str<T: DeserializeOwned>(data: &str) -> Result<T, FieldError> {
    // Most data is valid: parsed without tracking the path (a tenth of an append's CPU),
    // which only the error message needs, so a failure is parsed again to name its field.
    if let Ok(parsed) = serde_json::from_str(data) {
        return Ok(parsed);
    }
    let mut json = serde_json::Deserializer::from_str(data);
    let parsed = serde_path_to_error::deserialize(&mut json).map_err(data_error)?;
    json.end().map_err(|e| FieldError::new("", e.to_string()))?;
    Ok(parsed)
}

fn data_error(err: serde_path_to_error::Error<serde_json::Error>) -> FieldError {
    let path = err.path().to_string();
    let inner = err.into_inner().to_string();
    // serde reports a missing field at the parent's path; name the field itself.
    if let Some(name) = inner
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next())
    {
        let field = if path == "." {
            name.to_owned()
        } else {
            format!("{path}.{name}")
        };
        return FieldError::new(field, "is required");
    }
    let path = if path == "." { String::new() } else { path };
    let reason = inner.split(" at line ").next().unwrap_or(&inner).to_owned();
    FieldError::new(path, reason)
}

impl Validate for OperatorRegistered {
    fn validate(&self) -> Result<(), FieldError> {
        id("operator_id", &self.operator_id)?;
        id("name", &self.name)?;
        opt_text("team", &self.team)?;
        ids("specializations", &self.specializations)
    }
}

fn opt_difficulty(value: Option<f64>) -> Result<(), FieldError> {
    value.map_or(Ok(()), |d| unit_interval("difficulty", d))
}

impl Validate for SessionStarted {
    fn validate(&self) -> Result<(), FieldError> {
        id("session_id", &self.session_id)?;
        id("operator_id", &self.operator_id)?;
        id("scenario_id", &self.scenario_id)?;
        opt_difficulty(self.difficulty)
    }
}

impl Validate for SessionCompleted {
    fn validate(&self) -> Result<(), FieldError> {
        id("session_id", &self.session_id)?;
        id("operator_id", &self.operator_id)?;
        id("scenario_id", &self.scenario_id)?;
        if self.end_time < self.start_time {
            return Err(FieldError::new(
                "end_time",
                format!("{} is before start_time {}", self.end_time, self.start_time),
            ));
        }
        non_negative("duration_seconds", self.duration_seconds)?;
        unit_interval("score", self.score)?;
        non_negative("cost", self.cost)?;
        ids("skills_practiced", &self.skills_practiced)?;
        if self.objectives_completed > self.objectives_total {
            return Err(FieldError::new(
                "objectives_completed",
                format!(
                    "{} exceeds objectives_total {}",
                    self.objectives_completed, self.objectives_total
                ),
            ));
        }
        for (i, m) in self.metrics.iter().enumerate() {
            finite(&format!("metrics[{i}].value"), m.value)?;
        }
        opt_difficulty(self.difficulty)
    }
}

impl Validate for MetricRecorded {
    fn validate(&self) -> Result<(), FieldError> {
        id("operator_id", &self.operator_id)?;
        id("session_id", &self.session_id)?;
        finite("value", self.value)?;
        opt_text("scenario_id", &self.scenario_id)
    }
}

impl Validate for SkillAssessed {
    fn validate(&self) -> Result<(), FieldError> {
        id("operator_id", &self.operator_id)?;
        id("skill", &self.skill)?;
        unit_interval("score", self.score)
    }
}

impl Validate for LlmUsage {
    fn validate(&self) -> Result<(), FieldError> {
        id("model", &self.model)?;
        match self.model.split_once('/') {
            Some((provider, name)) if !provider.is_empty() && !name.is_empty() => {}
            _ => {
                return Err(FieldError::new(
                    "model",
                    format!("must be \"provider/name\", got {:?}", self.model),
                ))
            }
        }
        id("profile_id", &self.profile_id)?;
        id("session_id", &self.session_id)?;
        id("task_type", &self.task_type)?;
        if let Some(latency) = self.latency_ms {
            non_negative("latency_ms", latency)?;
        }
        opt_text("error_message", &self.error_message)?;
        opt_text("scenario_id", &self.scenario_id)?;
        opt_text("phase", &self.phase)?;
        if let Some(cost) = self.cost {
            non_negative("cost", cost)?;
        }
        Ok(())
    }
}

impl Validate for ModelPriced {
    fn validate(&self) -> Result<(), FieldError> {
        id("provider", &self.provider)?;
        if self.provider.contains('/') {
            return Err(FieldError::new("provider", "must not contain '/'"));
        }
        id("name", &self.name)?;
        non_negative("cost_per_1k_input_tokens", self.cost_per_1k_input_tokens)?;
        non_negative("cost_per_1k_output_tokens", self.cost_per_1k_output_tokens)?;
        if let Some(c) = self.cost_per_1k_cached_input_tokens {
            non_negative("cost_per_1k_cached_input_tokens", c)?;
        }
        opt_text("display_name", &self.display_name)?;
        opt_text("tier", &self.tier)?;
        ids("capabilities", &self.capabilities)?;
        ids("recommended_for", &self.recommended_for)?;
        if let Some(s) = self.reasoning_score {
            finite("reasoning_score", s)?;
        }
        if let Some(s) = self.speed_score {
            finite("speed_score", s)?;
        }
        Ok(())
    }
}

impl Validate for BudgetSet {
    fn validate(&self) -> Result<(), FieldError> {
        match (self.scope, &self.entity_id) {
            (BudgetScope::Global, Some(_)) => {
                return Err(FieldError::new(
                    "entity_id",
                    "must be absent for a global budget",
                ))
            }
            (BudgetScope::Profile | BudgetScope::Session, None) => {
                return Err(FieldError::new(
                    "entity_id",
                    "is required for a profile or session budget",
                ))
            }
            (_, Some(entity)) => id("entity_id", entity)?,
            (BudgetScope::Global, None) => {}
        }
        positive("amount", self.amount)?;
        for (i, t) in self.thresholds.iter().enumerate() {
            positive(&format!("thresholds[{i}]"), *t)?;
        }
        Ok(())
    }
}

impl Validate for BenchmarkSet {
    fn validate(&self) -> Result<(), FieldError> {
        id("benchmark_id", &self.benchmark_id)?;
        finite("value", self.value)
    }
}

impl Validate for MilestoneRegistered {
    fn validate(&self) -> Result<(), FieldError> {
        id("id", &self.id)?;
        id("name", &self.name)?;
        opt_text("description", &self.description)?;
        opt_text("badge_icon", &self.badge_icon)
    }
}

impl Validate for GoalCreated {
    fn validate(&self) -> Result<(), FieldError> {
        id("goal_id", &self.goal_id)?;
        id("operator_id", &self.operator_id)?;
        id("name", &self.name)?;
        opt_text("description", &self.description)?;
        non_negative("target_value", self.target_value)?;
        opt_text("unit", &self.unit)
    }
}

impl Validate for GoalProgressed {
    fn validate(&self) -> Result<(), FieldError> {
        id("goal_id", &self.goal_id)?;
        finite("value", self.value)
    }
}

impl Validate for CertificationAwarded {
    fn validate(&self) -> Result<(), FieldError> {
        id("operator_id", &self.operator_id)?;
        id("certification_id", &self.certification_id)
    }
}

impl Validate for XpAwarded {
    fn validate(&self) -> Result<(), FieldError> {
        id("operator_id", &self.operator_id)?;
        text("reason", &self.reason)
    }
}

impl Validate for LeaderboardScored {
    fn validate(&self) -> Result<(), FieldError> {
        id("category", &self.category)?;
        if self.category.contains('\0') {
            return Err(FieldError::new("category", "must not contain NUL"));
        }
        id("operator_id", &self.operator_id)?;
        non_negative("score", self.score)
    }
}

impl Validate for ReportGenerated {
    fn validate(&self) -> Result<(), FieldError> {
        id("report_id", &self.report_id)?;
        id("title", &self.title)?;
        opt_text("description", &self.description)
    }
}

impl Validate for ReportDeleted {
    fn validate(&self) -> Result<(), FieldError> {
        id("report_id", &self.report_id)
    }
}

impl Validate for ReportTemplateRegistered {
    fn validate(&self) -> Result<(), FieldError> {
        id("name", &self.name)?;
        if !self
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return Err(FieldError::new(
                "name",
                "may hold only letters, digits, '-', '_' and '.'",
            ));
        }
        if !TEMPLATE_MEDIA_TYPES.contains(&self.media_type.as_str()) {
            return Err(FieldError::new(
                "media_type",
                format!(
                    "unknown media type {:?}, expected one of {}",
                    self.media_type,
                    TEMPLATE_MEDIA_TYPES.join(", ")
                ),
            ));
        }
        if self.template.trim().is_empty() {
            return Err(FieldError::new("template", "must not be empty"));
        }
        if self.template.len() > MAX_TEMPLATE_LEN {
            return Err(FieldError::new(
                "template",
                format!(
                    "is {} bytes long, the limit is {MAX_TEMPLATE_LEN}",
                    self.template.len()
                ),
            ));
        }
        opt_text("description", &self.description)
    }
}

impl Validate for ApiKeyIssued {
    fn validate(&self) -> Result<(), FieldError> {
        id("key_id", &self.key_id)?;
        id("name", &self.name)?;
        if self.scopes.is_empty() {
            return Err(FieldError::new(
                "scopes",
                "must name at least one of ingest, read, admin",
            ));
        }
        let hex = self.secret_sha256.len() == 64
            && self
                .secret_sha256
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !hex {
            return Err(FieldError::new(
                "secret_sha256",
                "must be 64 lowercase hex digits",
            ));
        }
        if self.rate_limit_per_minute == Some(0) {
            return Err(FieldError::new(
                "rate_limit_per_minute",
                "must be at least 1 (omit it for the server's default)",
            ));
        }
        Ok(())
    }
}

impl Validate for ApiKeyRevoked {
    fn validate(&self) -> Result<(), FieldError> {
        id("key_id", &self.key_id)?;
        opt_text("reason", &self.reason)
    }
}

impl Validate for AlertAcknowledged {
    fn validate(&self) -> Result<(), FieldError> {
        id("alert_id", &self.alert_id)?;
        opt_text("by", &self.by)
    }
}
