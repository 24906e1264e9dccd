//! Operator profiles, skills, sessions and metrics (DOMAIN.md §B1 with the fixes of §A2).
//!
//! Tree layout (`profiles_v1`):
//! - `p/<operator>` → [`OperatorProfile`]
//! - `s/<session>` → [`SessionRecord`]
//! - `os/<operator>\0<start time, BE>\0<session>` → `[]` (sessions by operator and time)
//! - `m/<operator>\0<time, BE>\0<event id><index>` → [`MetricPoint`]
//! - `lc/<operator>\0<skill>\0<time, BE>\0<event id>` → [`PracticePoint`] (learning curves)
//! - `ms/<metric type>\0<operator>` → [`MetricStat`] (per-operator means, for percentile ranks)
//! - `b/<benchmark id>` → [`Benchmark`]

use std::collections::BTreeMap;

use ats_events::{Attributes, Envelope, MetricType, Payload, SessionCompleted, Timestamp};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::analytics::{calculate_trend, detect_plateau, learning_velocity, Trend};
use crate::runtime::{ApplyError, Projector};
use crate::training::PracticePoint;
use crate::view::View;

/// Proficiency ladder (seed `SkillLevel`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum SkillLevel {
    /// 1
    #[default]
    Novice,
    /// 2
    Intermediate,
    /// 3
    Advanced,
    /// 4
    Expert,
    /// 5
    Master,
}

impl SkillLevel {
    /// 1 (novice) to 5 (master).
    pub fn numeric(self) -> u8 {
        self as u8 + 1
    }

    /// The level of a numeric value, rounded down (§A2.4: 2.5 is intermediate, not master).
    pub fn from_numeric(value: f64) -> Self {
        match value.floor() as i64 {
            i64::MIN..=1 => Self::Novice,
            2 => Self::Intermediate,
            3 => Self::Advanced,
            4 => Self::Expert,
            _ => Self::Master,
        }
    }
}

/// One skill of an operator (seed `SkillMetric`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SkillMetric {
    /// Skill name.
    pub skill_name: String,
    /// Proficiency, re-evaluated from the 10th practice on.
    pub proficiency: SkillLevel,
    /// End time of the last session that practised it (§A2.1: not the wall clock).
    #[schema(value_type = String, format = DateTime)]
    pub last_practiced: Timestamp,
    /// Sessions that practised it.
    pub practice_count: u64,
    /// Running success rate.
    pub success_rate: f64,
    /// Running mean score.
    pub average_score: f64,
}

impl SkillMetric {
    /// Seed `update_skill`: running means, and the proficiency ladder from 10 practices on
    /// (first match wins; a level not matched leaves the proficiency as it is).
    pub fn practise(&mut self, score: f64, success: bool, at: Timestamp) {
        self.practice_count += 1;
        self.last_practiced = self.last_practiced.max(at);
        let n = self.practice_count as f64;
        let won = if success { 1.0 } else { 0.0 };
        self.success_rate = (self.success_rate * (n - 1.0) + won) / n;
        self.average_score = (self.average_score * (n - 1.0) + score) / n;
        if self.practice_count >= 10 {
            let (avg, sr) = (self.average_score, self.success_rate);
            let level = if avg >= 0.9 && sr >= 0.9 {
                Some(SkillLevel::Master)
            } else if avg >= 0.8 && sr >= 0.8 {
                Some(SkillLevel::Expert)
            } else if avg >= 0.7 && sr >= 0.7 {
                Some(SkillLevel::Advanced)
            } else if avg >= 0.5 && sr >= 0.6 {
                Some(SkillLevel::Intermediate)
            } else {
                None
            };
            if let Some(level) = level {
                self.proficiency = level;
            }
        }
    }
}

/// An operator (seed `OperatorProfile`); exists from the first event that names the operator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct OperatorProfile {
    /// Operator id.
    pub operator_id: String,
    /// Name (the id until `ats.operator.registered` names it).
    pub name: String,
    /// Time of the first event about this operator.
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    /// Completed sessions.
    pub total_sessions: u64,
    /// Hours of completed sessions.
    pub total_hours: f64,
    /// Skills by name.
    pub skills: BTreeMap<String, SkillMetric>,
    /// Certification ids.
    pub certifications: Vec<String>,
    /// Specializations.
    pub specializations: Vec<String>,
    /// Metadata.
    #[schema(value_type = Object)]
    pub metadata: Attributes,
    /// Team.
    pub team: Option<String>,
    /// Skill names in the order they were first practised (the seed's dict order, which
    /// orders strengths and breaks ties among weaknesses).
    #[serde(default)]
    pub skill_order: Vec<String>,
}

impl OperatorProfile {
    fn new(operator_id: &str, at: Timestamp) -> Self {
        Self {
            operator_id: operator_id.to_owned(),
            name: operator_id.to_owned(),
            created_at: at,
            total_sessions: 0,
            total_hours: 0.0,
            skills: BTreeMap::new(),
            certifications: Vec::new(),
            specializations: Vec::new(),
            metadata: Attributes::new(),
            team: None,
            skill_order: Vec::new(),
        }
    }

    /// Skills in first-practice order.
    pub fn skills_in_order(&self) -> impl Iterator<Item = &SkillMetric> {
        self.skill_order
            .iter()
            .filter_map(|name| self.skills.get(name))
    }

    /// §A2.4: the mean numeric proficiency of practised skills, rounded down; novice if none.
    pub fn skill_level(&self) -> SkillLevel {
        if self.skills.is_empty() {
            return SkillLevel::Novice;
        }
        let total: f64 = self
            .skills
            .values()
            .map(|s| f64::from(s.proficiency.numeric()))
            .sum();
        SkillLevel::from_numeric(total / self.skills.len() as f64)
    }
}

/// One measured metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MetricPoint {
    /// Metric type.
    pub metric_type: MetricType,
    /// Value.
    pub value: f64,
    /// When it was measured (event time).
    #[schema(value_type = String, format = DateTime)]
    pub timestamp: Timestamp,
    /// Session.
    pub session_id: String,
    /// Scenario.
    pub scenario_id: Option<String>,
}

/// A completed session (seed `SessionPerformance`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SessionRecord {
    /// The completion event's data.
    pub data: SessionCompleted,
}

impl SessionRecord {
    /// completed / total, 0 when there are no objectives.
    pub fn completion_rate(&self) -> f64 {
        if self.data.objectives_total == 0 {
            0.0
        } else {
            f64::from(self.data.objectives_completed) / f64::from(self.data.objectives_total)
        }
    }

    /// `min(1, total × 300 s / duration)`; 0 without objectives or duration.
    pub fn time_efficiency(&self) -> f64 {
        if self.data.objectives_total == 0 || self.data.duration_seconds == 0.0 {
            0.0
        } else {
            (f64::from(self.data.objectives_total) * 300.0 / self.data.duration_seconds).min(1.0)
        }
    }

    /// 1 when free, else `min(1, score / max(0.01, cost))`.
    pub fn cost_efficiency(&self) -> f64 {
        if self.data.cost == 0.0 {
            1.0
        } else {
            (self.data.score / self.data.cost.max(0.01)).min(1.0)
        }
    }
}

fn profile_key(operator: &str) -> Vec<u8> {
    [b"p/", operator.as_bytes()].concat()
}

fn session_key(session: &str) -> Vec<u8> {
    [b"s/", session.as_bytes()].concat()
}

/// Timestamps as order-preserving big-endian bytes (sign bit flipped).
pub(crate) fn time_bytes(t: Timestamp) -> [u8; 8] {
    ((t.micros() as u64) ^ (1 << 63)).to_be_bytes()
}

fn by_operator(prefix: &[u8], operator: &str) -> Vec<u8> {
    [prefix, operator.as_bytes(), b"\0"].concat()
}

fn metric_stat_key(metric_type: MetricType, operator: &str) -> Vec<u8> {
    [
        b"ms/",
        metric_type.as_str().as_bytes(),
        b"\0",
        operator.as_bytes(),
    ]
    .concat()
}

/// Running sum and count of one operator's metrics of one type.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MetricStat {
    /// Sum of values.
    pub sum: f64,
    /// Number of values.
    pub count: u64,
}

impl MetricStat {
    /// The mean (0 when empty).
    pub fn mean(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.sum / self.count as f64
        }
    }
}

/// Each operator's mean of `metric_type`, in operator id order.
pub fn metric_means(tree: &sled::Tree, metric_type: MetricType) -> Vec<(String, f64)> {
    let prefix = [b"ms/", metric_type.as_str().as_bytes(), b"\0"].concat();
    tree.scan_prefix(&prefix)
        .map_while(Result::ok)
        .filter_map(|(k, v)| {
            let stat: MetricStat = decode(&v)?;
            Some((
                String::from_utf8_lossy(&k[prefix.len()..]).into_owned(),
                stat.mean(),
            ))
        })
        .collect()
}

fn practice_prefix(operator: &str, skill: &str) -> Vec<u8> {
    [
        by_operator(b"lc/", operator).as_slice(),
        skill.as_bytes(),
        b"\0",
    ]
    .concat()
}

/// A benchmark value for a metric type (seed `BenchmarkEngine`); setting it again replaces it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Benchmark {
    /// Benchmark id.
    pub benchmark_id: String,
    /// Metric type it applies to.
    pub metric_type: MetricType,
    /// Benchmark value.
    pub value: f64,
    /// Free-form context.
    #[schema(value_type = Object)]
    pub context: Attributes,
    /// Time of the event that set it.
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
}

/// Folds operator, session and metric events into profiles.
pub struct ProfilesProjector;

/// The projector's name (with its version).
pub const NAME: &str = "profiles_v1";

impl ProfilesProjector {
    fn profile<'v>(
        view: &'v mut View<'_>,
        operator: &str,
        at: Timestamp,
    ) -> Result<&'v mut OperatorProfile, ApplyError> {
        view.entry(&profile_key(operator), || {
            OperatorProfile::new(operator, at)
        })
    }

    fn record_metric(
        view: &mut View<'_>,
        operator: &str,
        point: MetricPoint,
        event: &Envelope,
        index: usize,
    ) -> Result<(), ApplyError> {
        let key = [
            by_operator(b"m/", operator).as_slice(),
            &time_bytes(point.timestamp),
            b"\0",
            event.id.as_bytes(),
            &(index as u32).to_be_bytes(),
        ]
        .concat();
        let stat = view.entry(
            &metric_stat_key(point.metric_type, operator),
            MetricStat::default,
        )?;
        stat.sum += point.value;
        stat.count += 1;
        view.put(&key, point)
    }

    fn record_practice(
        view: &mut View<'_>,
        operator: &str,
        skill: &str,
        point: PracticePoint,
        event: &Envelope,
    ) -> Result<(), ApplyError> {
        let key = [
            practice_prefix(operator, skill).as_slice(),
            &time_bytes(point.timestamp),
            b"\0",
            event.id.as_bytes(),
        ]
        .concat();
        view.put(&key, point)
    }

    fn session_completed(
        view: &mut View<'_>,
        event: &Envelope,
        session: &SessionCompleted,
    ) -> Result<(), ApplyError> {
        let key = session_key(&session.session_id);
        if let Some(existing) = view.get::<SessionRecord>(&key)? {
            if existing.data.operator_id != session.operator_id {
                return Err(ApplyError::Rejected(format!(
                    "session {} belongs to operator {}, not {}",
                    session.session_id, existing.data.operator_id, session.operator_id
                )));
            }
            // §A2.2: a second completion of a session is ignored.
            return Ok(());
        }
        let profile = Self::profile(view, &session.operator_id, event.occurred_at)?;
        profile.total_sessions += 1;
        profile.total_hours += session.duration_seconds / 3600.0;
        for skill in &session.skills_practiced {
            if !profile.skills.contains_key(skill) {
                profile.skill_order.push(skill.clone());
            }
            profile
                .skills
                .entry(skill.clone())
                .or_insert_with(|| SkillMetric {
                    skill_name: skill.clone(),
                    proficiency: SkillLevel::Novice,
                    last_practiced: session.end_time,
                    practice_count: 0,
                    success_rate: 0.0,
                    average_score: 0.0,
                })
                .practise(session.score, session.success, session.end_time);
        }
        for (index, metric) in session.metrics.iter().enumerate() {
            let point = MetricPoint {
                metric_type: metric.metric_type,
                value: metric.value,
                timestamp: session.end_time,
                session_id: session.session_id.clone(),
                scenario_id: Some(session.scenario_id.clone()),
            };
            Self::record_metric(view, &session.operator_id, point, event, index)?;
        }
        for skill in &session.skills_practiced {
            let point = PracticePoint {
                timestamp: session.end_time,
                score: session.score,
                success: Some(session.success),
                difficulty: session.difficulty,
                session_id: Some(session.session_id.clone()),
            };
            Self::record_practice(view, &session.operator_id, skill, point, event)?;
        }
        let index_key = [
            by_operator(b"os/", &session.operator_id).as_slice(),
            &time_bytes(session.start_time),
            b"\0",
            session.session_id.as_bytes(),
        ]
        .concat();
        view.put_raw(&index_key, Vec::new())?;
        view.put(
            &key,
            SessionRecord {
                data: session.clone(),
            },
        )
    }
}

impl Projector for ProfilesProjector {
    fn name(&self) -> &'static str {
        NAME
    }

    fn apply(&self, view: &mut View<'_>, event: &Envelope) -> Result<(), ApplyError> {
        let at = event.occurred_at;
        match &event.payload {
            Payload::OperatorRegistered(p) => {
                let profile = Self::profile(view, &p.operator_id, at)?;
                profile.name = p.name.clone();
                profile.team = p.team.clone();
                profile.specializations = p.specializations.clone();
                profile.metadata = p.metadata.clone();
            }
            Payload::SessionCompleted(p) => Self::session_completed(view, event, p)?,
            Payload::MetricRecorded(p) => {
                Self::profile(view, &p.operator_id, at)?;
                let point = MetricPoint {
                    metric_type: p.metric_type,
                    value: p.value,
                    timestamp: at,
                    session_id: p.session_id.clone(),
                    scenario_id: p.scenario_id.clone(),
                };
                Self::record_metric(view, &p.operator_id, point, event, 0)?;
            }
            Payload::SkillAssessed(p) => {
                Self::profile(view, &p.operator_id, at)?;
                let point = PracticePoint {
                    timestamp: at,
                    score: p.score,
                    success: None,
                    difficulty: None,
                    session_id: None,
                };
                Self::record_practice(view, &p.operator_id, &p.skill, point, event)?;
            }
            Payload::BenchmarkSet(p) => {
                let benchmark = Benchmark {
                    benchmark_id: p.benchmark_id.clone(),
                    metric_type: p.metric_type,
                    value: p.value,
                    context: p.context.clone(),
                    created_at: at,
                };
                view.put(&[b"b/", p.benchmark_id.as_bytes()].concat(), benchmark)?;
            }
            Payload::CertificationAwarded(p) => {
                let profile = Self::profile(view, &p.operator_id, at)?;
                if !profile.certifications.contains(&p.certification_id) {
                    profile.certifications.push(p.certification_id.clone());
                }
            }
            // §A2.3: any event about an operator makes its profile exist.
            other => {
                if let Some(operator) = other.operator_id() {
                    Self::profile(view, operator, at)?;
                }
            }
        }
        Ok(())
    }
}

pub(crate) fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Option<T> {
    rmp_serde::from_slice(bytes).ok()
}

/// The profile of `operator`.
pub fn profile(tree: &sled::Tree, operator: &str) -> Option<OperatorProfile> {
    tree.get(profile_key(operator))
        .ok()
        .flatten()
        .and_then(|v| decode(&v))
}

/// Every operator id, in order.
pub fn operator_ids(tree: &sled::Tree) -> Vec<String> {
    tree.scan_prefix(b"p/")
        .keys()
        .map_while(Result::ok)
        .map(|k| String::from_utf8_lossy(&k[2..]).into_owned())
        .collect()
}

/// Counts of operators, sessions and metrics.
///
/// Iterators over sled stop at the first error (`map_while`): a failing tree must end a scan,
/// never spin on it.
pub fn counts(tree: &sled::Tree) -> (usize, usize, usize) {
    (
        tree.scan_prefix(b"p/").map_while(Result::ok).count(),
        tree.scan_prefix(b"s/").map_while(Result::ok).count(),
        tree.scan_prefix(b"m/").map_while(Result::ok).count(),
    )
}

/// One session.
pub fn session(tree: &sled::Tree, session_id: &str) -> Option<SessionRecord> {
    tree.get(session_key(session_id))
        .ok()
        .flatten()
        .and_then(|v| decode(&v))
}

/// Sessions of `operator`, most recent start first; `limit` 0 = all.
pub fn sessions(tree: &sled::Tree, operator: &str, limit: usize) -> Vec<SessionRecord> {
    let limit = if limit == 0 { usize::MAX } else { limit };
    tree.scan_prefix(by_operator(b"os/", operator))
        .keys()
        .rev()
        .map_while(Result::ok)
        .filter_map(|k| {
            let id = k
                .iter()
                .skip(3 + operator.len() + 1 + 8 + 1)
                .copied()
                .collect::<Vec<u8>>();
            session(tree, &String::from_utf8_lossy(&id))
        })
        .take(limit)
        .collect()
}

/// Metrics of `operator` in time order.
pub fn metrics(tree: &sled::Tree, operator: &str) -> Vec<MetricPoint> {
    tree.scan_prefix(by_operator(b"m/", operator))
        .values()
        .map_while(Result::ok)
        .filter_map(|v| decode(&v))
        .collect()
}

/// Practice points of `operator` by skill, each list in time order.
pub fn practice(tree: &sled::Tree, operator: &str) -> BTreeMap<String, Vec<PracticePoint>> {
    let mut out: BTreeMap<String, Vec<PracticePoint>> = BTreeMap::new();
    let prefix = by_operator(b"lc/", operator);
    for (key, value) in tree.scan_prefix(&prefix).map_while(Result::ok) {
        let rest = &key[prefix.len()..];
        let Some(end) = rest.iter().position(|b| *b == 0) else {
            continue;
        };
        if let Some(point) = decode::<PracticePoint>(&value) {
            out.entry(String::from_utf8_lossy(&rest[..end]).into_owned())
                .or_default()
                .push(point);
        }
    }
    out
}

/// Every benchmark, by id.
pub fn benchmarks(tree: &sled::Tree) -> Vec<Benchmark> {
    tree.scan_prefix(b"b/")
        .values()
        .map_while(Result::ok)
        .filter_map(|v| decode(&v))
        .collect()
}

/// One benchmark.
pub fn benchmark(tree: &sled::Tree, id: &str) -> Option<Benchmark> {
    tree.get([b"b/", id.as_bytes()].concat())
        .ok()
        .flatten()
        .and_then(|v| decode(&v))
}

/// A profile as the seed serializes it (`OperatorProfile.to_dict`), with the derived level.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ProfileDto {
    /// Operator id.
    pub operator_id: String,
    /// Name.
    pub name: String,
    /// First event time.
    pub created_at: String,
    /// Completed sessions.
    pub total_sessions: u64,
    /// Hours trained.
    pub total_hours: f64,
    /// Derived level (§A2.4).
    pub skill_level: SkillLevel,
    /// Skills by name.
    pub skills: BTreeMap<String, SkillMetric>,
    /// Certifications.
    pub certifications: Vec<String>,
    /// Specializations.
    pub specializations: Vec<String>,
    /// Metadata.
    #[schema(value_type = Object)]
    pub metadata: Attributes,
}

impl From<&OperatorProfile> for ProfileDto {
    fn from(p: &OperatorProfile) -> Self {
        Self {
            operator_id: p.operator_id.clone(),
            name: p.name.clone(),
            created_at: p.created_at.to_rfc3339(),
            total_sessions: p.total_sessions,
            total_hours: p.total_hours,
            skill_level: p.skill_level(),
            skills: p.skills.clone(),
            certifications: p.certifications.clone(),
            specializations: p.specializations.clone(),
            metadata: p.metadata.clone(),
        }
    }
}

/// A weakness: a skill at intermediate or below.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Weakness {
    /// Skill.
    pub skill: String,
    /// Its level.
    pub proficiency: SkillLevel,
}

/// Seed `analyze_operator_performance`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Analysis {
    /// Operator id.
    pub operator_id: String,
    /// The profile.
    pub profile: ProfileDto,
    /// Sessions recorded.
    pub total_sessions: usize,
    /// Metrics recorded.
    pub total_metrics: usize,
    /// Skills at advanced or above (first-practice order).
    pub strengths: Vec<String>,
    /// Up to 5 skills at intermediate or below, worst first.
    pub weaknesses: Vec<Weakness>,
    /// Learning velocity over all sessions.
    pub learning_velocity: f64,
    /// Seed plateau rule over the last 5 sessions.
    pub plateau_detected: bool,
    /// Trend over the window (7 days unless `time_range_days` says otherwise) per metric type
    /// that has metrics.
    pub trends: BTreeMap<String, Trend>,
}

/// `GET /api/analytics/operator/{id}/performance` body.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Performance {
    /// Operator id.
    pub operator_id: String,
    /// The profile.
    pub profile: ProfileDto,
    /// The analysis.
    pub analysis: Analysis,
}

/// Strengths: skills at advanced (3) or above, in first-practice order.
pub fn strengths(profile: &OperatorProfile) -> Vec<String> {
    profile
        .skills_in_order()
        .filter(|s| s.proficiency.numeric() >= 3)
        .map(|s| s.skill_name.clone())
        .collect()
}

/// Weaknesses: skills at intermediate (2) or below, worst `(average_score, success_rate)` first.
pub fn weaknesses(profile: &OperatorProfile) -> Vec<&SkillMetric> {
    let mut weak: Vec<&SkillMetric> = profile
        .skills_in_order()
        .filter(|s| s.proficiency.numeric() <= 2)
        .collect();
    // Stable: ties keep first-practice order, as the seed's sorted() over its dict.
    weak.sort_by(|a, b| {
        (a.average_score, a.success_rate)
            .partial_cmp(&(b.average_score, b.success_rate))
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    weak
}

/// The seed's performance analysis of `operator` as of `as_of`; metric trends over the last
/// `window_days` (the seed's 7 by default).
pub fn performance(
    tree: &sled::Tree,
    operator: &str,
    window_days: i64,
    as_of: Timestamp,
) -> Option<Performance> {
    let profile = profile(tree, operator)?;
    let mut sessions = sessions(tree, operator, 0);
    sessions.reverse();
    let scores: Vec<f64> = sessions.iter().map(|s| s.data.score).collect();
    let metrics = metrics(tree, operator);
    let mut trends = BTreeMap::new();
    for metric_type in MetricType::ALL {
        let points: Vec<(Timestamp, f64)> = metrics
            .iter()
            .filter(|m| m.metric_type == metric_type)
            .map(|m| (m.timestamp, m.value))
            .collect();
        if !points.is_empty() {
            trends.insert(
                metric_type.as_str().to_owned(),
                calculate_trend(&points, window_days, as_of),
            );
        }
    }
    let dto = ProfileDto::from(&profile);
    let analysis = Analysis {
        operator_id: operator.to_owned(),
        profile: dto.clone(),
        total_sessions: sessions.len(),
        total_metrics: metrics.len(),
        strengths: strengths(&profile),
        weaknesses: weaknesses(&profile)
            .into_iter()
            .take(5)
            .map(|s| Weakness {
                skill: s.skill_name.clone(),
                proficiency: s.proficiency,
            })
            .collect(),
        learning_velocity: learning_velocity(&scores),
        plateau_detected: detect_plateau(&scores),
        trends,
    };
    Some(Performance {
        operator_id: operator.to_owned(),
        profile: dto,
        analysis,
    })
}

/// Builders for unit tests of modules that compute from profiles.
#[cfg(test)]
pub(crate) mod tests_support {
    use super::*;

    /// An empty profile.
    pub(crate) fn profile(id: &str) -> OperatorProfile {
        OperatorProfile::new(id, Timestamp::default())
    }

    /// `n` practices of `skill` with the same score and outcome.
    pub(crate) fn practise(
        profile: &mut OperatorProfile,
        skill: &str,
        n: u32,
        score: f64,
        success: bool,
    ) {
        if !profile.skills.contains_key(skill) {
            profile.skill_order.push(skill.to_owned());
        }
        for _ in 0..n {
            profile
                .skills
                .entry(skill.to_owned())
                .or_insert_with(|| SkillMetric {
                    skill_name: skill.to_owned(),
                    proficiency: SkillLevel::Novice,
                    last_practiced: Timestamp::default(),
                    practice_count: 0,
                    success_rate: 0.0,
                    average_score: 0.0,
                })
                .practise(score, success, Timestamp::default());
        }
    }
}
