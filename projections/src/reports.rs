//! Reports (§B7, issue 7): the five generators of §B7.3 as pure functions of the read models,
//! and `reports_v1`, the fold of `ats.report.generated` / `ats.report.deleted`.
//!
//! A report's content is computed once, at generation, and carried by its
//! `ats.report.generated` event (with the projector positions it was computed at), so a
//! download is the same before and after a replay. `team_performance` also answers
//! `GET /api/analytics/team/performance` (§B11 row 11). Unknown operator ids are listed in
//! `unknown_operator_ids` and left out of every mean (§A2.10: the seed counted them in the
//! denominators).

use std::collections::BTreeMap;

use ats_events::{Envelope, Payload, ReportType, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::ToSchema;

use crate::activity;
use crate::costs::{self, optimizer, Dim};
use crate::dashboard::{self, round_to, ReadModels};
use crate::profiles::{self, decode};
use crate::progress;
use crate::runtime::{ApplyError, Projector};
use crate::view::View;

pub mod render;
pub mod templates;

/// The projector's name (with its version).
pub const NAME: &str = "reports_v1";

/// Why a report cannot be generated (each a 400 naming the parameter).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ReportError {
    /// The type has no generator (§B7.1: only five do).
    #[error("report_type: No generator for report type: {0}")]
    NoGenerator(String),
    /// A parameter is missing or malformed.
    #[error("parameters.{field}: {reason}")]
    Parameter {
        /// The parameter.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// `operator_id` names no operator.
    #[error("parameters.operator_id: Operator not found: {0}")]
    UnknownOperator(String),
}

/// The parameters a generator reads (unknown keys are refused by the API).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportParameters {
    /// `operator_progress` (required), `trend_analysis` (optional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator_id: Option<String>,
    /// `team_performance`, `compliance` (default: every operator).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator_ids: Option<Vec<String>>,
    /// Window in whole UTC days: `cost_summary` (default all time), `trend_analysis`
    /// (default 30).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_range_days: Option<u32>,
    /// `cost_summary`: one session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// `compliance`: `{min_hours, required_certifications}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requirements: Option<Requirements>,
}

/// Compliance requirements.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Requirements {
    /// Hours each operator must have trained (default 0); kept as sent, so that an issue
    /// reads `…/4` for `4` and `…/4.5` for `4.5`, as the seed's did.
    #[serde(default = "zero")]
    #[schema(value_type = f64)]
    pub min_hours: serde_json::Number,
    /// Certifications each operator must hold.
    #[serde(default)]
    pub required_certifications: Vec<String>,
}

fn zero() -> serde_json::Number {
    serde_json::Number::from(0)
}

/// A generated report before it is stored: what goes into `ats.report.generated`.
#[derive(Debug, Clone, PartialEq)]
pub struct Generated {
    /// Title (seed wording).
    pub title: String,
    /// Description (seed wording).
    pub description: String,
    /// The content.
    pub data: Value,
}

fn to_value(value: impl Serialize) -> Value {
    // Our report types serialize to JSON by construction (string keys, finite numbers are
    // written as numbers and non-finite ones as null).
    serde_json::to_value(value).unwrap_or(Value::Null)
}

/// Runs the generator of `report_type` as of `as_of`.
pub fn generate(
    models: &ReadModels,
    report_type: ReportType,
    parameters: &ReportParameters,
    as_of: Timestamp,
) -> Result<Generated, ReportError> {
    let all_ids = || profiles::operator_ids(&models.profiles);
    match report_type {
        ReportType::OperatorProgress => {
            let id = parameters
                .operator_id
                .as_deref()
                .ok_or(ReportError::Parameter {
                    field: "operator_id",
                    reason: "required for an operator_progress report".into(),
                })?;
            operator_progress(models, id, as_of)
        }
        ReportType::TeamPerformance => {
            let ids = parameters.operator_ids.clone().unwrap_or_else(all_ids);
            let team = team_performance(models, &ids);
            Ok(Generated {
                title: "Team Performance Report".into(),
                description: format!("Aggregate performance metrics for {} operators", ids.len()),
                data: to_value(team),
            })
        }
        ReportType::CostSummary => Ok(cost_summary(
            models,
            parameters.session_id.as_deref(),
            parameters.time_range_days,
            as_of,
        )),
        ReportType::TrendAnalysis => trend_analysis(
            models,
            parameters.operator_id.as_deref(),
            parameters.time_range_days.unwrap_or(30),
            as_of,
        ),
        ReportType::Compliance => {
            let ids = parameters.operator_ids.clone().unwrap_or_else(all_ids);
            let requirements = parameters.requirements.clone().unwrap_or(Requirements {
                min_hours: zero(),
                required_certifications: Vec::new(),
            });
            Ok(compliance(models, &ids, &requirements))
        }
        other => Err(ReportError::NoGenerator(
            to_value(other).as_str().unwrap_or_default().to_owned(),
        )),
    }
}

/// Seed `operator_progress` (the 10 most recent sessions by start time).
pub fn operator_progress(
    models: &ReadModels,
    operator: &str,
    as_of: Timestamp,
) -> Result<Generated, ReportError> {
    let profile = profiles::profile(&models.profiles, operator)
        .ok_or_else(|| ReportError::UnknownOperator(operator.to_owned()))?;
    let progress = progress::operator(&models.progress, operator);
    let xp = progress.as_ref().map_or(0, |p| p.xp);
    let skills: BTreeMap<&str, Value> = profile
        .skills_in_order()
        .map(|s| {
            (
                s.skill_name.as_str(),
                json!({"proficiency": s.proficiency, "practice_count": s.practice_count,
                       "success_rate": s.success_rate, "average_score": s.average_score}),
            )
        })
        .collect();
    let recent: Vec<Value> = profiles::sessions(&models.profiles, operator, 10)
        .iter()
        .map(|s| {
            json!({"session_id": s.data.session_id, "scenario_id": s.data.scenario_id,
                   "duration_hours": s.data.duration_seconds / 3600.0, "score": s.data.score,
                   "success": s.data.success, "completion_rate": s.completion_rate()})
        })
        .collect();
    let performance =
        profiles::performance(&models.profiles, operator, 7, as_of).map(|p| to_value(p.analysis));
    let achievements = progress
        .as_ref()
        .map(|p| to_value(&p.achievements))
        .unwrap_or_else(|| json!([]));
    // Seed `get_training_statistics`: curves and retention per practised skill, and the
    // competency matrix — from the practice points, as of the report's instant.
    let training_effectiveness = crate::training::learning(&models.profiles, operator, None, as_of)
        .map(|learning| {
            let curves: BTreeMap<&str, Value> = learning
                .skills
                .iter()
                .map(|s| (s.skill.as_str(), to_value(&s.learning_curve)))
                .collect();
            let retention: BTreeMap<&str, Value> = learning
                .skills
                .iter()
                .filter_map(|s| Some((s.skill.as_str(), to_value(s.retention.as_ref()?))))
                .collect();
            json!({"operator_id": operator, "learning_curves": curves,
                   "retention_data": retention,
                   "competency_matrix": to_value(&learning.competency_matrix)})
        });
    Ok(Generated {
        title: format!("Operator Progress Report: {}", profile.name),
        description: format!(
            "Comprehensive progress report for operator {}",
            profile.name
        ),
        data: json!({
            "operator_id": operator,
            "operator_name": profile.name,
            "summary": {
                "level": progress::level(xp),
                "total_xp": xp,
                "total_sessions": profile.total_sessions,
                "total_hours": profile.total_hours,
                "skill_level": profile.skill_level(),
                "achievements_count": progress.as_ref().map_or(0, |p| p.achievements.len()),
                "certifications_count": profile.certifications.len(),
            },
            "performance_analysis": performance,
            "skills": skills,
            "training_effectiveness": training_effectiveness,
            "recent_sessions": recent,
            "achievements": achievements,
            "certifications": profile.certifications,
        }),
    })
}

/// Seed `cost_summary`: the cost summary of the window (or one session) with the optimizer's
/// opportunities and their impact.
pub fn cost_summary(
    models: &ReadModels,
    session_id: Option<&str>,
    days: Option<u32>,
    as_of: Timestamp,
) -> Generated {
    let summary = costs::summary(&models.costs, session_id, days, as_of);
    let impact = optimizer::impact(&summary.optimization_opportunities);
    let mut title = "Cost Analysis Report".to_owned();
    if let Some(session) = session_id {
        title.push_str(&format!(" - Session {session}"));
    }
    if let Some(days) = days {
        title.push_str(&format!(" - Last {days} days"));
    }
    Generated {
        title,
        description: "Detailed cost breakdown and optimization recommendations".into(),
        data: json!({
            "cost_summary": summary.global_stats.as_ref().map_or_else(|| json!({}), to_value),
            "breakdowns": summary.breakdowns,
            "optimization_opportunities": summary.optimization_opportunities,
            "optimization_impact": impact,
            "anomalies": summary.anomalies.unwrap_or_default(),
        }),
    }
}

/// One day of a trend report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TrendDay {
    /// UTC day.
    pub date: String,
    /// Sessions that started that day.
    pub sessions: u64,
    /// Their mean score (0 without sessions), rounded to 3 decimals.
    pub average_score: f64,
    /// % of them that succeeded, rounded to 0.1.
    pub success_rate: f64,
    /// Their hours, rounded to 0.01.
    pub hours: f64,
    /// Spend that day (of the operator, or in total), rounded to cents.
    pub cost: f64,
}

/// `trend_analysis`, system-wide (the seed's was an empty stub) or for one operator: the
/// performance and cost trends of §B8.4 over `days`, and one row per day with sessions or
/// spend.
pub fn trend_analysis(
    models: &ReadModels,
    operator: Option<&str>,
    days: u32,
    as_of: Timestamp,
) -> Result<Generated, ReportError> {
    if let Some(id) = operator {
        if profiles::profile(&models.profiles, id).is_none() {
            return Err(ReportError::UnknownOperator(id.to_owned()));
        }
    }
    let window = activity::window(days, as_of);
    let sessions = activity::days(&models.activity, operator, &window);
    let mut spend: BTreeMap<String, f64> = BTreeMap::new();
    match operator {
        None => {
            for (day, usage) in costs::scan(&models.costs, Dim::Day, &window) {
                spend.insert(day, usage.cost);
            }
        }
        Some(id) => {
            for (day, profile, usage) in costs::buckets(&models.costs, Dim::Profile, &window) {
                if profile == id {
                    *spend.entry(day).or_default() += usage.cost;
                }
            }
        }
    }
    let mut dates: Vec<&String> = sessions.keys().chain(spend.keys()).collect();
    dates.sort_unstable();
    dates.dedup();
    let daily: Vec<TrendDay> = dates
        .into_iter()
        .map(|date| {
            let stats = sessions.get(date).cloned().unwrap_or_default();
            let success_rate = if stats.sessions == 0 {
                0.0
            } else {
                round_to(stats.successes as f64 / stats.sessions as f64 * 100.0, 1)
            };
            TrendDay {
                date: date.clone(),
                sessions: stats.sessions,
                average_score: round_to(stats.average_score(), 3),
                success_rate,
                hours: round_to(stats.hours, 2),
                cost: round_to(spend.get(date).copied().unwrap_or(0.0), 2),
            }
        })
        .collect();
    let performance = dashboard::performance_trend(&models.activity, operator, days, as_of);
    let cost = match operator {
        None => to_value(dashboard::cost_trend(&models.costs, days, as_of)),
        Some(_) => Value::Null,
    };
    let (title, mut data) = match operator {
        Some(id) => (
            format!("Trend Analysis - Operator {id}"),
            json!({"operator_id": id}),
        ),
        None => ("System-Wide Trend Analysis".to_owned(), json!({})),
    };
    data["time_range_days"] = json!(days);
    data["performance_trend"] = to_value(performance);
    data["cost_trend"] = cost;
    data["daily"] = to_value(daily);
    Ok(Generated {
        title,
        description: format!("Performance trends over the last {days} days"),
        data,
    })
}

/// Seed `compliance`, with unknown ids listed and out of the rate (§A2.10).
pub fn compliance(models: &ReadModels, ids: &[String], requirements: &Requirements) -> Generated {
    let mut status = Vec::new();
    let mut unknown = Vec::new();
    for id in ids {
        let Some(profile) = profiles::profile(&models.profiles, id) else {
            unknown.push(id.clone());
            continue;
        };
        let mut issues = Vec::new();
        if profile.total_hours < requirements.min_hours.as_f64().unwrap_or(0.0) {
            issues.push(format!(
                "Insufficient training hours: {:.1}/{}",
                profile.total_hours, requirements.min_hours
            ));
        }
        for cert in &requirements.required_certifications {
            if !profile.certifications.contains(cert) {
                issues.push(format!("Missing certification: {cert}"));
            }
        }
        status.push(json!({"operator_id": id, "name": profile.name,
            "hours": profile.total_hours, "certifications": profile.certifications,
            "compliant": issues.is_empty(), "issues": issues}));
    }
    let compliant = status
        .iter()
        .filter(|s| s["compliant"] == json!(true))
        .count();
    let known = status.len();
    Generated {
        title: "Training Compliance Report".into(),
        description: "Organizational training compliance status".into(),
        data: json!({
            "total_operators": known,
            "compliant_operators": compliant,
            "non_compliant_operators": known - compliant,
            "operator_status": status,
            "compliance_rate": if known == 0 { 0.0 } else { compliant as f64 / known as f64 * 100.0 },
            "unknown_operator_ids": unknown,
        }),
    }
}

/// A stored report (seed `Report.to_dict()`, plus the parameters and positions).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Report {
    /// UUID.
    pub id: String,
    /// Type.
    pub report_type: ReportType,
    /// Title.
    pub title: String,
    /// Description.
    pub description: String,
    /// `occurred_at` of the generating event (RFC 3339).
    pub generated_at: String,
    /// `system` (the seed's value).
    pub generated_by: String,
    /// The content.
    #[schema(value_type = Object)]
    pub data: Value,
    /// `parameters` and `as_of` (projector positions the data was computed at).
    #[schema(value_type = Object)]
    pub metadata: Value,
}

/// The stored form: JSON text, so the content comes back byte for byte.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct StoredReport {
    report_type: ReportType,
    title: String,
    description: String,
    generated_at: Timestamp,
    data_json: String,
    metadata_json: String,
}

fn report_key(id: &str) -> Vec<u8> {
    [b"r/", id.as_bytes()].concat()
}

/// Folds generated and deleted reports; a second `generated` for an id is ignored.
pub struct ReportsProjector;

impl Projector for ReportsProjector {
    fn name(&self) -> &'static str {
        NAME
    }

    fn apply(&self, view: &mut View<'_>, event: &Envelope) -> Result<(), ApplyError> {
        match &event.payload {
            Payload::ReportGenerated(p) => {
                let key = report_key(&p.report_id);
                if view.get::<StoredReport>(&key)?.is_some() {
                    return Ok(());
                }
                let metadata = json!({"parameters": p.parameters, "as_of": p.as_of});
                view.put(
                    &key,
                    StoredReport {
                        report_type: p.report_type,
                        title: p.title.clone(),
                        description: p.description.clone().unwrap_or_default(),
                        generated_at: event.occurred_at,
                        data_json: p.data.to_string(),
                        metadata_json: metadata.to_string(),
                    },
                )?;
            }
            Payload::ReportDeleted(p) => view.remove(&report_key(&p.report_id))?,
            Payload::ReportTemplateRegistered(p) => templates::fold(view, event.occurred_at, p)?,
            _ => {}
        }
        Ok(())
    }
}

fn to_report(id: String, stored: StoredReport) -> Report {
    Report {
        id,
        report_type: stored.report_type,
        title: stored.title,
        description: stored.description,
        generated_at: stored.generated_at.to_rfc3339(),
        generated_by: "system".into(),
        data: serde_json::from_str(&stored.data_json).unwrap_or(Value::Null),
        metadata: serde_json::from_str(&stored.metadata_json).unwrap_or(Value::Null),
    }
}

/// One report.
pub fn report(tree: &sled::Tree, id: &str) -> Option<Report> {
    let stored: StoredReport = decode(&tree.get(report_key(id)).ok().flatten()?)?;
    Some(to_report(id.to_owned(), stored))
}

/// A row of the report list (seed `list_reports`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ReportListItem {
    /// Id.
    pub id: String,
    /// Type.
    #[serde(rename = "type")]
    pub report_type: ReportType,
    /// Title.
    pub title: String,
    /// Generation time.
    pub generated_at: String,
}

/// Stored reports, newest first (ties by id), optionally of one type.
pub fn list(tree: &sled::Tree, report_type: Option<ReportType>) -> Vec<ReportListItem> {
    let mut rows: Vec<(Timestamp, ReportListItem)> = tree
        .scan_prefix(b"r/")
        .map_while(Result::ok)
        .filter_map(|(k, v)| {
            let stored: StoredReport = decode(&v)?;
            let id = String::from_utf8_lossy(k.get(2..)?).into_owned();
            Some((
                stored.generated_at,
                ReportListItem {
                    id,
                    report_type: stored.report_type,
                    title: stored.title,
                    generated_at: stored.generated_at.to_rfc3339(),
                },
            ))
        })
        .filter(|(_, r)| report_type.is_none_or(|t| r.report_type == t))
        .collect();
    rows.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.id.cmp(&b.1.id)));
    rows.into_iter().map(|(_, r)| r).collect()
}

/// Reports stored.
pub fn count(tree: &sled::Tree) -> usize {
    tree.scan_prefix(b"r/").map_while(Result::ok).count()
}

/// One operator row of the team report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TeamMember {
    /// Operator id.
    pub operator_id: String,
    /// Name.
    pub name: String,
    /// Level from XP.
    pub level: u64,
    /// XP.
    pub xp: u64,
    /// Completed sessions.
    pub sessions: u64,
    /// Hours trained.
    pub hours: f64,
    /// Derived skill level (§A2.4).
    pub skill_level: profiles::SkillLevel,
    /// Achievements unlocked.
    pub achievements: u64,
    /// Certifications held (the profile's list, as the seed counts).
    pub certifications: u64,
}

/// Team totals; `average_level` is over the known operators only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AggregateStats {
    /// Sessions.
    pub total_sessions: u64,
    /// Hours.
    pub total_hours: f64,
    /// XP.
    pub total_xp: u64,
    /// Σ level / known operators (0 without any).
    pub average_level: f64,
    /// Achievements.
    pub total_achievements: u64,
    /// Certifications.
    pub total_certifications: u64,
}

/// How many operators practise a skill, and at which numeric levels (1–5).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SkillDistribution {
    /// Operators practising it.
    pub count: u64,
    /// Their numeric proficiencies, in operator order.
    pub levels: Vec<u8>,
}

/// A top performer by XP.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TopPerformer {
    /// Operator id.
    pub operator_id: String,
    /// XP.
    pub xp: u64,
}

/// Seed team report `data`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TeamPerformance {
    /// Ids requested (known and unknown).
    pub team_size: u64,
    /// Known operators, in request order.
    pub operators: Vec<TeamMember>,
    /// Totals.
    pub aggregate_stats: AggregateStats,
    /// Skills by name.
    pub skill_distribution: BTreeMap<String, SkillDistribution>,
    /// Top 5 by XP, ties by operator id.
    pub top_performers: Vec<TopPerformer>,
    /// Requested ids without a profile (§A2.10).
    pub unknown_operator_ids: Vec<String>,
}

/// The team report over `operator_ids`.
pub fn team_performance(models: &ReadModels, operator_ids: &[String]) -> TeamPerformance {
    let mut operators = Vec::new();
    let mut unknown = Vec::new();
    let mut skills: BTreeMap<String, SkillDistribution> = BTreeMap::new();
    for id in operator_ids {
        let Some(profile) = profiles::profile(&models.profiles, id) else {
            unknown.push(id.clone());
            continue;
        };
        let progress = progress::operator(&models.progress, id);
        let xp = progress.as_ref().map_or(0, |p| p.xp);
        for skill in profile.skills.values() {
            let entry = skills
                .entry(skill.skill_name.clone())
                .or_insert(SkillDistribution {
                    count: 0,
                    levels: Vec::new(),
                });
            entry.count += 1;
            entry.levels.push(skill.proficiency.numeric());
        }
        operators.push(TeamMember {
            operator_id: id.clone(),
            name: profile.name.clone(),
            level: progress::level(xp),
            xp,
            sessions: profile.total_sessions,
            hours: profile.total_hours,
            skill_level: profile.skill_level(),
            achievements: progress.map_or(0, |p| p.achievements.len() as u64),
            certifications: profile.certifications.len() as u64,
        });
    }
    let known = operators.len();
    let aggregate_stats = AggregateStats {
        total_sessions: operators.iter().map(|o| o.sessions).sum(),
        total_hours: operators.iter().map(|o| o.hours).sum(),
        total_xp: operators.iter().map(|o| o.xp).sum(),
        average_level: if known == 0 {
            0.0
        } else {
            operators.iter().map(|o| o.level).sum::<u64>() as f64 / known as f64
        },
        total_achievements: operators.iter().map(|o| o.achievements).sum(),
        total_certifications: operators.iter().map(|o| o.certifications).sum(),
    };
    let mut top: Vec<&TeamMember> = operators.iter().collect();
    top.sort_by(|a, b| {
        b.xp.cmp(&a.xp)
            .then_with(|| a.operator_id.cmp(&b.operator_id))
    });
    let top_performers = top
        .into_iter()
        .take(5)
        .map(|o| TopPerformer {
            operator_id: o.operator_id.clone(),
            xp: o.xp,
        })
        .collect();
    TeamPerformance {
        team_size: operator_ids.len() as u64,
        aggregate_stats,
        skill_distribution: skills,
        top_performers,
        unknown_operator_ids: unknown,
        operators,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a test fails by panicking
mod team_tests {
    use super::*;
    use crate::dashboard::tests::{history, models};

    #[test]
    fn unknown_operators_are_listed_not_counted() {
        let ids: Vec<String> = ["op_a", "ghost", "op_b"].map(String::from).to_vec();
        let team = team_performance(&models(&history()), &ids);
        assert_eq!(team.team_size, 3);
        assert_eq!(team.unknown_operator_ids, ["ghost"]);
        let rows: Vec<(&str, u64, u64, u64)> = team
            .operators
            .iter()
            .map(|o| (o.operator_id.as_str(), o.level, o.xp, o.sessions))
            .collect();
        assert_eq!(rows, [("op_a", 2, 100, 3), ("op_b", 3, 400, 1)]);
        // (2 + 3) / 2 known operators, not / 3.
        assert!((team.aggregate_stats.average_level - 2.5).abs() < 1e-12);
        assert_eq!(team.aggregate_stats.total_sessions, 4);
        assert!((team.aggregate_stats.total_hours - 5.0).abs() < 1e-12);
        assert_eq!(team.aggregate_stats.total_achievements, 2);
        assert_eq!(team.skill_distribution["reconnaissance"].count, 2);
        let top: Vec<&str> = team
            .top_performers
            .iter()
            .map(|t| t.operator_id.as_str())
            .collect();
        assert_eq!(top, ["op_b", "op_a"]);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a test fails by panicking
mod tests;
