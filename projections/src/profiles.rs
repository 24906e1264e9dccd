//! Operator profiles, skills, sessions and metrics (DOMAIN.md §B1 with the fixes of §A2).
//!
//! Tree layout (`profiles_v3`):
//! - `p/<operator>` → [`OperatorProfile`]
//! - `s/<session>` → [`SessionRecord`]
//! - `os/<operator>\0<start time, BE>\0<session>` → score (f64 bits, BE) and end time
//!   (µs, BE): sessions by operator in start order
//! - `oc/<operator>\0<hour, BE>` → how many sessions started in that UTC hour (u64, BE) and
//!   the sum of their scores (f64 bits, BE): what a late session's rank reads instead of
//!   every `os/` key after it
//! - `ps/<operator>` → [`PerformanceSummary`] (what [`performance`] and the performance
//!   alerts read, so their cost does not grow with the operator's history)
//! - `m/<operator>\0<time, BE>\0<event id><index>` → [`MetricPoint`]
//! - `lc/<operator>\0<skill>\0<time, BE>\0<event id>` → [`PracticePoint`] (learning curves)
//! - `ms/<metric type>\0<operator>` → [`MetricStat`] (per-operator means, for percentile ranks)
//! - `b/<benchmark id>` → [`Benchmark`]
//! - `pr/<mean of the last 5 scores, ordered BE><operator>` → `[]`: operators by recent
//!   average, so the performance alerts read only the operators below the threshold
//! - `sum/counts` → [`Counts`] (operators, sessions, metrics, latest session start)

use std::collections::BTreeMap;

use ats_events::{Attributes, Envelope, MetricType, Payload, SessionCompleted, Timestamp};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::analytics::{calculate_trend, detect_plateau, learning_velocity_from_sums, Trend};
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

const COUNTS_KEY: &[u8] = b"sum/counts";

/// What the tree holds, counted by the fold: health and the dashboard read one key instead of
/// counting every profile, session and metric.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Operator profiles.
    pub operators: u64,
    /// Completed sessions (each once).
    pub sessions: u64,
    /// Metric points.
    pub metrics: u64,
    /// The latest start time of any completed session.
    pub latest_start: Option<Timestamp>,
}

/// A recent-average index key: byte order is the order of the averages, then operator id.
fn recent_average_key(average: f64, operator: &str) -> Vec<u8> {
    [
        b"pr/".as_slice(),
        &ordered_bytes(average),
        operator.as_bytes(),
    ]
    .concat()
}

/// Big-endian bits of `x` that order as the floats do (negatives below positives).
fn ordered_bytes(x: f64) -> [u8; 8] {
    let bits = x.to_bits();
    let ordered = if bits >> 63 == 1 {
        !bits
    } else {
        bits | 1 << 63
    };
    ordered.to_be_bytes()
}

/// The mean score of recent sessions (none without any): what the performance alerts compare
/// with the threshold, and what the `pr/` index is keyed by — one function, so the index and
/// the alerts cannot disagree on a bit.
pub fn recent_average(recent: &[ScoredSession]) -> Option<f64> {
    let scores: Vec<f64> = recent.iter().map(|s| s.score).collect();
    (!scores.is_empty()).then(|| crate::analytics::mean(&scores))
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

/// One completed session as the performance summary needs it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoredSession {
    /// Session id; breaks ties between equal start times, as in the `os/` keys.
    pub session_id: String,
    /// Start time: the order of the series.
    pub start_time: Timestamp,
    /// End time (when a performance alert's condition arose).
    pub end_time: Timestamp,
    /// Score.
    pub score: f64,
}

impl ScoredSession {
    /// The `os/` key order: start time, then session id.
    fn order(&self) -> (Timestamp, &str) {
        (self.start_time, &self.session_id)
    }
}

/// What [`performance`] and the performance alerts read of an operator's history, kept by
/// the fold so that neither decodes the operator's session records.
///
/// The learning velocity comes from running sums of the scores in start order (O(1) per
/// session in order; a late session adds the scores of the sessions after it, read from the
/// `oc/` hour buckets and its own hour's `os/` keys); the plateau from the last five scores,
/// as a pass over every session gives.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PerformanceSummary {
    /// Completed sessions.
    pub sessions: u64,
    /// Σ score over the sessions.
    pub score_sum: f64,
    /// Σ rank × score, rank = 0, 1, … in start order.
    pub rank_score_sum: f64,
    /// Metrics recorded, by type (a type is present once it has a metric).
    pub metrics: BTreeMap<MetricType, u64>,
    /// [`learning_velocity_from_sums`] of every session's score in start order.
    pub learning_velocity: f64,
    /// [`detect_plateau`] of the same scores.
    pub plateau_detected: bool,
    /// The last [`RECENT_SESSIONS`] sessions by start time, the latest first.
    pub recent: Vec<ScoredSession>,
}

impl PerformanceSummary {
    /// Metrics recorded, all types together.
    pub fn total_metrics(&self) -> u64 {
        self.metrics.values().sum()
    }
}

/// Sessions kept in [`PerformanceSummary::recent`]: the performance alerts' window.
/// Changing it changes what the fold stores: bump [`NAME`].
pub const RECENT_SESSIONS: usize = 5;

/// Where the performance summaries are: `ps/<operator>`.
pub(crate) const SUMMARY_PREFIX: &[u8] = b"ps/";

fn summary_key(operator: &str) -> Vec<u8> {
    [SUMMARY_PREFIX, operator.as_bytes()].concat()
}

/// The operator of a performance summary's key.
pub(crate) fn summary_operator(key: &[u8]) -> Option<String> {
    let operator = key.strip_prefix(SUMMARY_PREFIX)?;
    Some(String::from_utf8_lossy(operator).into_owned())
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
pub const NAME: &str = "profiles_v3";

impl ProfilesProjector {
    fn profile<'v>(
        view: &'v mut View<'_>,
        operator: &str,
        at: Timestamp,
    ) -> Result<&'v mut OperatorProfile, ApplyError> {
        let key = profile_key(operator);
        if view.get::<OperatorProfile>(&key)?.is_none() {
            view.put(&key, OperatorProfile::new(operator, at))?;
            view.entry(COUNTS_KEY, Counts::default)?.operators += 1;
        }
        view.get_mut::<OperatorProfile>(&key)?
            .ok_or_else(|| ApplyError::Storage(format!("profile {operator} vanished")))
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
        view.entry(COUNTS_KEY, Counts::default)?.metrics += 1;
        *view
            .entry(&summary_key(operator), PerformanceSummary::default)?
            .metrics
            .entry(point.metric_type)
            .or_default() += 1;
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
        let counts = view.entry(COUNTS_KEY, Counts::default)?;
        counts.sessions += 1;
        counts.latest_start = counts.latest_start.max(Some(session.start_time));
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
        view.put_ordered(&index_key, index_value(session.score, session.end_time))?;
        Self::record_score(view, session, &index_key)?;
        view.put(
            &key,
            SessionRecord {
                data: session.clone(),
            },
        )
    }

    /// Adds a new session (already in the `os/` index under `index_key`) to its operator's
    /// performance summary.
    fn record_score(
        view: &mut View<'_>,
        session: &SessionCompleted,
        index_key: &[u8],
    ) -> Result<(), ApplyError> {
        let scored = ScoredSession {
            session_id: session.session_id.clone(),
            start_time: session.start_time,
            end_time: session.end_time,
            score: session.score,
        };
        let key = summary_key(&session.operator_id);
        let in_order = view
            .get::<PerformanceSummary>(&key)?
            .and_then(|s| s.recent.first())
            .is_none_or(|latest| latest.order() < scored.order());
        // Sessions that started after this one (a late event): they move one rank up.
        let (later, later_sum) = if in_order {
            (0, 0.0)
        } else {
            Self::started_after(view, session, index_key)?
        };
        Self::add_to_hour(view, session)?;
        let summary = view.entry(&key, PerformanceSummary::default)?;
        let before = recent_average(&summary.recent);
        let rank = summary.sessions - later;
        summary.rank_score_sum += later_sum + rank as f64 * scored.score;
        summary.score_sum += scored.score;
        summary.sessions += 1;
        summary.learning_velocity = learning_velocity_from_sums(
            summary.sessions,
            summary.score_sum,
            summary.rank_score_sum,
        );
        // The latest first: exactly `later` sessions of the list come before this one.
        if (later as usize) < RECENT_SESSIONS {
            summary.recent.insert(later as usize, scored);
            summary.recent.truncate(RECENT_SESSIONS);
        }
        let in_start_order: Vec<f64> = summary.recent.iter().rev().map(|s| s.score).collect();
        summary.plateau_detected = detect_plateau(&in_start_order);
        let after = recent_average(&summary.recent);
        if before.map(f64::to_bits) != after.map(f64::to_bits) {
            if let Some(before) = before {
                view.remove(&recent_average_key(before, &session.operator_id))?;
            }
            if let Some(after) = after {
                view.put_raw(&recent_average_key(after, &session.operator_id), Vec::new())?;
            }
        }
        Ok(())
    }

    /// The operator's sessions that started after `session` (whose `os/` key is `index_key`):
    /// how many, and the sum of their scores. Those of later hours come from the hour
    /// buckets, those of its own hour from the `os/` index: the reads grow with the hours
    /// the operator was active since and its sessions of that one hour, not with its
    /// history, so that late sessions (a backfill, a batch spread over a day) cost no scan
    /// of the operator's history.
    fn started_after(
        view: &mut View<'_>,
        session: &SessionCompleted,
        index_key: &[u8],
    ) -> Result<(u64, f64), ApplyError> {
        use std::ops::Bound::Excluded;
        let hour = hour_of(session.start_time);
        let buckets = by_operator(b"oc/", &session.operator_id);
        let in_later_hours = view.range((
            Excluded(hour_key(&session.operator_id, hour).as_slice()),
            Excluded(prefix_end(&buckets).as_slice()),
        ))?;
        let hour_end = [
            by_operator(b"os/", &session.operator_id).as_slice(),
            &time_bytes(hour.plus_seconds(3600)),
        ]
        .concat();
        let in_its_hour = view.range((Excluded(index_key), Excluded(hour_end.as_slice())))?;
        let mut later = (0u64, 0.0);
        for (_, bucket) in &in_later_hours {
            let (count, sum) = bucket_entry(bucket).unwrap_or_default();
            later = (later.0 + count, later.1 + sum);
        }
        for (_, entry) in &in_its_hour {
            let score = index_entry(entry).map_or(0.0, |(score, _)| score);
            later = (later.0 + 1, later.1 + score);
        }
        Ok(later)
    }

    /// Counts a new session in its operator's bucket of its start hour.
    fn add_to_hour(view: &mut View<'_>, session: &SessionCompleted) -> Result<(), ApplyError> {
        let key = hour_key(&session.operator_id, hour_of(session.start_time));
        let (count, sum) = view
            .get_raw(&key)?
            .and_then(|bucket| bucket_entry(&bucket))
            .unwrap_or_default();
        let bucket = [
            (count + 1).to_be_bytes(),
            (sum + session.score).to_bits().to_be_bytes(),
        ]
        .concat();
        view.put_ordered(&key, bucket)
    }
}

/// The start of the UTC hour `t` falls in.
fn hour_of(t: Timestamp) -> Timestamp {
    let hour = 3600 * Timestamp::MICROS_PER_SEC;
    Timestamp::from_micros(t.micros().div_euclid(hour) * hour)
}

/// `oc/<operator>\0<hour, BE>`: the operator's sessions that started in that hour.
fn hour_key(operator: &str, hour: Timestamp) -> Vec<u8> {
    [by_operator(b"oc/", operator).as_slice(), &time_bytes(hour)].concat()
}

/// An `oc/` bucket: how many sessions, and the sum of their scores.
fn bucket_entry(value: &[u8]) -> Option<(u64, f64)> {
    let count = u64::from_be_bytes(value.get(..8)?.try_into().ok()?);
    let sum = f64::from_bits(u64::from_be_bytes(value.get(8..16)?.try_into().ok()?));
    Some((count, sum))
}

/// The first key after every key that starts with `prefix` (which ends with a NUL).
fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    if let Some(last) = end.last_mut() {
        *last += 1;
    }
    end
}

/// An `os/` index value: the session's score and end time.
fn index_value(score: f64, end: Timestamp) -> Vec<u8> {
    [score.to_bits().to_be_bytes(), end.micros().to_be_bytes()].concat()
}

fn index_entry(value: &[u8]) -> Option<(f64, Timestamp)> {
    let score = f64::from_bits(u64::from_be_bytes(value.get(..8)?.try_into().ok()?));
    let end = i64::from_be_bytes(value.get(8..16)?.try_into().ok()?);
    Some((score, Timestamp::from_micros(end)))
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

/// A stored record, if it decodes (it may borrow strings from `bytes`).
pub(crate) fn decode<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Option<T> {
    rmp_serde::from_slice(bytes).ok()
}

/// The record at `key`, if any (an unreadable or undecodable one reads as absent).
pub(crate) fn read<T: serde::de::DeserializeOwned>(tree: &sled::Tree, key: &[u8]) -> Option<T> {
    tree.get(key).ok().flatten().and_then(|v| decode(&v))
}

/// The profile of `operator`.
pub fn profile(tree: &sled::Tree, operator: &str) -> Option<OperatorProfile> {
    read(tree, &profile_key(operator))
}

/// Every operator id, in order.
pub fn operator_ids(tree: &sled::Tree) -> Vec<String> {
    tree.scan_prefix(b"p/")
        .keys()
        .map_while(Result::ok)
        .map(|k| String::from_utf8_lossy(&k[2..]).into_owned())
        .collect()
}

/// Counts of operators, sessions and metrics, as the fold keeps them (zero before any).
pub fn counts(tree: &sled::Tree) -> Counts {
    read(tree, COUNTS_KEY).unwrap_or_default()
}

/// The performance summaries of the operators whose recent average is below `threshold`, in
/// operator id order: a range of the `pr/` index, so the cost is the number of such
/// operators, not of all of them. The averages are the fold's, computed as the alerts do.
pub fn below_recent_average(
    tree: &sled::Tree,
    threshold: f64,
) -> Vec<(String, PerformanceSummary)> {
    let end = [b"pr/".as_slice(), &ordered_bytes(threshold)].concat();
    let mut operators: Vec<String> = tree
        .range(b"pr/".to_vec()..end)
        .keys()
        .map_while(Result::ok)
        .map(|k| String::from_utf8_lossy(&k[3 + 8..]).into_owned())
        .collect();
    operators.sort();
    operators
        .into_iter()
        .filter_map(|operator| {
            let summary = performance_summary(tree, &operator)?;
            Some((operator, summary))
        })
        .collect()
}

/// One session.
pub fn session(tree: &sled::Tree, session_id: &str) -> Option<SessionRecord> {
    read(tree, &session_key(session_id))
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

/// Metrics of `operator` with `from ≤ timestamp ≤ to`, in time order (a range of keys, so
/// the cost is the window's, not the history's).
pub fn metrics_between(
    tree: &sled::Tree,
    operator: &str,
    from: Timestamp,
    to: Timestamp,
) -> Vec<MetricPoint> {
    if from > to {
        return Vec::new();
    }
    let prefix = by_operator(b"m/", operator);
    let start = [prefix.as_slice(), &time_bytes(from)].concat();
    // Every key of time `to` continues with `\0`.
    let end = [prefix.as_slice(), &time_bytes(to), b"\x01"].concat();
    tree.range(start..end)
        .values()
        .map_while(Result::ok)
        .filter_map(|v| decode(&v))
        .collect()
}

/// The performance summary of `operator`, if it has a session or a metric.
pub fn performance_summary(tree: &sled::Tree, operator: &str) -> Option<PerformanceSummary> {
    read(tree, &summary_key(operator))
}

/// Every performance summary with its operator id, in operator id order.
pub fn performance_summaries(
    tree: &sled::Tree,
) -> impl Iterator<Item = (String, PerformanceSummary)> + '_ {
    tree.scan_prefix(SUMMARY_PREFIX)
        .map_while(Result::ok)
        .filter_map(|(k, v)| Some((summary_operator(&k)?, decode(&v)?)))
}

/// Every completed session of `operator` with its score, in start order (the `os/` index).
pub fn scored_sessions(tree: &sled::Tree, operator: &str) -> Vec<ScoredSession> {
    let prefix = by_operator(b"os/", operator);
    tree.scan_prefix(&prefix)
        .map_while(Result::ok)
        .filter_map(|(k, v)| {
            let rest = k.get(prefix.len()..)?;
            let start = u64::from_be_bytes(rest.get(..8)?.try_into().ok()?) ^ (1 << 63);
            let (score, end_time) = index_entry(&v)?;
            Some(ScoredSession {
                session_id: String::from_utf8_lossy(rest.get(9..)?).into_owned(),
                start_time: Timestamp::from_micros(start as i64),
                end_time,
                score,
            })
        })
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
    read(tree, &[b"b/", id.as_bytes()].concat())
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
///
/// Reads the profile, the [`PerformanceSummary`] and the metrics inside the window: its cost
/// does not grow with the operator's sessions or older metrics.
pub fn performance(
    tree: &sled::Tree,
    operator: &str,
    window_days: i64,
    as_of: Timestamp,
) -> Option<Performance> {
    let profile = profile(tree, operator)?;
    let summary = performance_summary(tree, operator).unwrap_or_default();
    // The cutoff of `calculate_trend`, which filters again: points outside are not read.
    let cutoff = as_of.plus_seconds(-window_days * 86_400);
    let recent = metrics_between(tree, operator, cutoff, as_of);
    let mut trends = BTreeMap::new();
    for metric_type in summary.metrics.keys() {
        let points: Vec<(Timestamp, f64)> = recent
            .iter()
            .filter(|m| m.metric_type == *metric_type)
            .map(|m| (m.timestamp, m.value))
            .collect();
        trends.insert(
            metric_type.as_str().to_owned(),
            calculate_trend(&points, window_days, as_of),
        );
    }
    Some(assemble(
        operator,
        &profile,
        Derived {
            total_sessions: summary.sessions as usize,
            total_metrics: summary.total_metrics() as usize,
            learning_velocity: summary.learning_velocity,
            plateau_detected: summary.plateau_detected,
            trends,
        },
    ))
}

/// The parts of an analysis computed from the history rather than the profile.
struct Derived {
    total_sessions: usize,
    total_metrics: usize,
    learning_velocity: f64,
    plateau_detected: bool,
    trends: BTreeMap<String, Trend>,
}

fn assemble(operator: &str, profile: &OperatorProfile, derived: Derived) -> Performance {
    let dto = ProfileDto::from(profile);
    let analysis = Analysis {
        operator_id: operator.to_owned(),
        profile: dto.clone(),
        total_sessions: derived.total_sessions,
        total_metrics: derived.total_metrics,
        strengths: strengths(profile),
        weaknesses: weaknesses(profile)
            .into_iter()
            .take(5)
            .map(|s| Weakness {
                skill: s.skill_name.clone(),
                proficiency: s.proficiency,
            })
            .collect(),
        learning_velocity: derived.learning_velocity,
        plateau_detected: derived.plateau_detected,
        trends: derived.trends,
    };
    Performance {
        operator_id: operator.to_owned(),
        profile: dto,
        analysis,
    }
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

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a test fails by panicking
mod tests {

    use ats_events::cloudevents::event_id;
    use ats_events::{MetricRecorded, SessionMetric};
    use ats_ingest::StoredEvent;
    use proptest::prelude::*;

    use super::*;
    use crate::analytics::learning_velocity;
    use crate::runtime::fold_batch;

    /// The analysis as computed before [`PerformanceSummary`]: from every session record and
    /// every metric of the operator. The reference the summary must equal.
    fn performance_from_history(
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
        Some(assemble(
            operator,
            &profile,
            Derived {
                total_sessions: sessions.len(),
                total_metrics: metrics.len(),
                learning_velocity: learning_velocity(&scores),
                plateau_detected: detect_plateau(&scores),
                trends,
            },
        ))
    }

    /// The fast analysis equals the reference: the learning velocity up to rounding (running
    /// sums against a two-pass slope), everything else byte for byte.
    fn same_analysis(fast: Option<Performance>, full: Option<Performance>) -> Result<(), String> {
        let (Some(mut fast), Some(full)) = (fast.clone(), full.clone()) else {
            return (fast.is_none() && full.is_none())
                .then_some(())
                .ok_or_else(|| format!("{fast:?} vs {full:?}"));
        };
        let (a, b) = (
            fast.analysis.learning_velocity,
            full.analysis.learning_velocity,
        );
        if (a - b).abs() > 1e-9 {
            return Err(format!("learning velocity {a} vs {b}"));
        }
        fast.analysis.learning_velocity = b;
        let (fast, full) = (
            serde_json::to_string(&fast).unwrap(),
            serde_json::to_string(&full).unwrap(),
        );
        (fast == full)
            .then_some(())
            .ok_or(format!("{fast}\nvs\n{full}"))
    }

    fn t0() -> Timestamp {
        Timestamp::parse_rfc3339("2026-11-01T00:00:00Z").unwrap()
    }

    const OPERATORS: [&str; 3] = ["op_a", "op_b", "op_c"];

    /// One event of a random history; times are hours after `t0`, few enough to collide.
    #[derive(Debug, Clone)]
    enum Step {
        Session {
            session: u8,
            operator: usize,
            start_hour: i64,
            /// Minutes past the start hour: sessions of one hour, in and out of order.
            minute: i64,
            hours: i64,
            score: f64,
            metrics: Vec<(usize, f64)>,
        },
        Metric {
            operator: usize,
            hour: i64,
            metric_type: usize,
            value: f64,
        },
    }

    fn step() -> impl Strategy<Value = Step> {
        // Scores from a few values, so that plateaus (variance < 0.01) happen.
        let score = prop_oneof![Just(0.7), Just(0.72), Just(0.95), 0.0..=1.0f64];
        let metric = (0..MetricType::ALL.len(), 0.0..=1.0f64);
        prop_oneof![
            3 => (0u8..24, 0..OPERATORS.len(), 0i64..72, prop_oneof![Just(0i64), Just(20), Just(40)],
                  0i64..4, score, prop::collection::vec(metric, 0..3))
                .prop_map(|(session, operator, start_hour, minute, hours, score, metrics)| {
                    Step::Session { session, operator, start_hour, minute, hours, score, metrics }
                }),
            1 => (0..OPERATORS.len(), 0i64..80, 0..MetricType::ALL.len(), 0.0..=1.0f64)
                .prop_map(|(operator, hour, metric_type, value)| {
                    Step::Metric { operator, hour, metric_type, value }
                }),
        ]
    }

    fn envelope(n: usize, step: &Step) -> Envelope {
        let hour = |h: i64| t0().plus_seconds(h * 3600);
        match step {
            Step::Session {
                session,
                operator,
                start_hour,
                minute,
                hours,
                score,
                metrics,
            } => Envelope::new(
                event_id(&format!("e{n}")),
                hour(start_hour + hours).plus_seconds(minute * 60),
                "tests",
                Payload::SessionCompleted(SessionCompleted {
                    session_id: format!("s{session}"),
                    operator_id: OPERATORS[*operator].into(),
                    scenario_id: "scn".into(),
                    start_time: hour(*start_hour).plus_seconds(minute * 60),
                    end_time: hour(start_hour + hours).plus_seconds(minute * 60),
                    duration_seconds: (hours * 3600) as f64,
                    success: *score > 0.5,
                    score: *score,
                    cost: 0.0,
                    skills_practiced: vec!["reconnaissance".into()],
                    objectives_completed: 1,
                    objectives_total: 2,
                    metrics: metrics
                        .iter()
                        .map(|(t, value)| SessionMetric {
                            metric_type: MetricType::ALL[*t],
                            value: *value,
                        })
                        .collect(),
                    difficulty: None,
                }),
            ),
            Step::Metric {
                operator,
                hour: h,
                metric_type,
                value,
            } => Envelope::new(
                event_id(&format!("e{n}")),
                hour(*h),
                "tests",
                Payload::MetricRecorded(MetricRecorded {
                    operator_id: OPERATORS[*operator].into(),
                    session_id: "m".into(),
                    metric_type: MetricType::ALL[*metric_type],
                    value: *value,
                    scenario_id: None,
                    context: Attributes::new(),
                }),
            ),
        }
    }

    /// Folds `steps` in batches of `batch` events, as the runtime would.
    fn fold(steps: &[Step], batch: usize) -> sled::Tree {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let tree = db.open_tree(NAME).unwrap();
        let stored: Vec<StoredEvent> = steps
            .iter()
            .enumerate()
            .map(|(n, step)| StoredEvent::new(n as u64 + 1, envelope(n, step)))
            .collect();
        for chunk in stored.chunks(batch) {
            fold_batch(&ProfilesProjector, &tree, chunk).unwrap();
        }
        tree
    }

    proptest! {
        /// Late sessions, ties of start time, repeated and conflicting session ids, metrics
        /// inside and outside the window: the summary answers as every record did.
        #[test]
        fn performance_from_the_summary_equals_the_full_history(
            steps in prop::collection::vec(step(), 0..60),
            batch in 1usize..20,
            window_days in 1i64..4,
            as_of_hour in 0i64..90,
        ) {
            let tree = fold(&steps, batch);
            let as_of = t0().plus_seconds(as_of_hour * 3600);
            for operator in OPERATORS {
                let fast = performance(&tree, operator, window_days, as_of);
                let full = performance_from_history(&tree, operator, window_days, as_of);
                prop_assert_eq!(same_analysis(fast, full), Ok(()));
                // What the performance alerts read instead of the session records.
                let by_start: Vec<ScoredSession> = sessions(&tree, operator, 0)
                    .into_iter()
                    .rev()
                    .map(|s| ScoredSession {
                        session_id: s.data.session_id,
                        start_time: s.data.start_time,
                        end_time: s.data.end_time,
                        score: s.data.score,
                    })
                    .collect();
                let summary = performance_summary(&tree, operator).unwrap_or_default();
                let latest: Vec<ScoredSession> =
                    by_start.iter().rev().take(RECENT_SESSIONS).cloned().collect();
                prop_assert_eq!(&summary.recent, &latest);
                prop_assert_eq!(scored_sessions(&tree, operator), by_start);
            }
            // The counts the fold keeps are what a scan counts.
            let scanned = |prefix: &[u8]| tree.scan_prefix(prefix).count() as u64;
            let counts = counts(&tree);
            prop_assert_eq!(
                (counts.operators, counts.sessions, counts.metrics),
                (scanned(b"p/"), scanned(b"s/"), scanned(b"m/"))
            );
            let latest_start = tree
                .scan_prefix(b"s/")
                .values()
                .filter_map(|v| decode::<SessionRecord>(&v.unwrap()))
                .map(|s| s.data.start_time)
                .max();
            prop_assert_eq!(counts.latest_start, latest_start);
            // The recent-average index holds exactly the operators below each threshold.
            for threshold in [0.0, 0.25, 0.5, 0.6, 1.0, 2.0] {
                let indexed: Vec<String> = below_recent_average(&tree, threshold)
                    .into_iter()
                    .map(|(operator, _)| operator)
                    .collect();
                let expected: Vec<String> = performance_summaries(&tree)
                    .filter(|(_, s)| recent_average(&s.recent).is_some_and(|m| m < threshold))
                    .map(|(operator, _)| operator)
                    .collect();
                prop_assert_eq!(indexed, expected, "threshold {}", threshold);
            }
            prop_assert_eq!(
                scanned(b"pr/"),
                performance_summaries(&tree).filter(|(_, s)| !s.recent.is_empty()).count() as u64
            );
        }
    }

    #[test]
    fn a_late_session_moves_the_velocity_as_a_full_recomputation_does() {
        let steps: Vec<Step> = [(0, 10, 0.5), (1, 20, 0.6), (2, 30, 0.7), (3, 5, 0.1)]
            .into_iter()
            .map(|(session, start_hour, score)| Step::Session {
                session,
                operator: 0,
                start_hour,
                minute: 0,
                hours: 1,
                score,
                metrics: Vec::new(),
            })
            .collect();
        let as_of = t0().plus_seconds(100 * 3600);
        let before = performance(&fold(&steps[..3], 1), "op_a", 7, as_of).unwrap();
        assert!((before.analysis.learning_velocity - 1.0).abs() < 1e-12);
        // The late session starts first: scores 0.1, 0.5, 0.6, 0.7 in start order.
        let tree = fold(&steps, 1);
        let after = performance(&tree, "op_a", 7, as_of).unwrap();
        let full = performance_from_history(&tree, "op_a", 7, as_of);
        assert_eq!(same_analysis(Some(after.clone()), full), Ok(()));
        assert_eq!(after.analysis.total_sessions, 4);
        assert_eq!(after.analysis.learning_velocity, 1.0);
    }
}
