//! Progress: XP, levels, milestones, achievements, goals, certifications, progress paths and
//! leaderboards (DOMAIN.md §B6 and §B8.5, with the fixes of §A2).
//!
//! The projector is independent of `profiles_v3`: it keeps in its own tree the operator data
//! its checks read (sessions, hours, skills, certifications, name, team), folding the same
//! events with the same pure code ([`SkillMetric::practise`]).
//!
//! Tree layout (`progress_v2`):
//! - `o/<operator>` → [`OperatorProgress`] (counters, skills, XP, achievements, certifications)
//! - `sum/operators` → [`Totals`] (operators, their levels and achievements summed: what the
//!   dashboard reads instead of every operator)
//! - `s/<session>` → operator id (completed sessions, so a second completion counts once)
//! - `reg/milestones` → `Vec<Milestone>` (registered custom milestones, in log order)
//! - `g/<goal>` → [`Goal`]; `og/<operator>\0<created_at, BE>\0<goal>` → `[]` (goals by operator)
//! - `lx/<category>\0<score, inverted BE><operator>` → `[]` (and `lxt/…` per team): custom
//!   leaderboard categories fed by `ats.leaderboard.scored`
//! - `lb/<board>\0<value, inverted BE><operator>` → `[]`: one ordered key per operator and
//!   leaderboard, so a top-k reads k keys; `lt/<board>\0<team>\0<value><operator>` → `[]` the
//!   same per team. Values are inverted so that byte order is best first, then operator id.
//! - `lk/<skill>\0<proficiency, inverted><average score, inverted BE><operator>` → `[]` and
//!   `lkt/<skill>\0<team>\0…` → `[]`: the seed's skill leaderboard, one key per practised skill.
//!
//! Rules where the seed is silent or non-deterministic:
//! - Milestones are checked after each event that changes what they read: a session completion
//!   or a certification award. A milestone registered at position *p* applies to events after
//!   *p*: an operator who already qualifies unlocks it on their next such event (no scan of
//!   all operators at registration). `unlocked_at` is the completing event's `occurred_at`.
//! - Achievement ids are UUID v5 of `achievement/<operator>/<milestone>`: stable across replays.
//! - A certification award of an unknown id is kept as a held certification (certification
//!   milestones read it, as the seed's profile strings) but earns no [`EarnedCertification`].
//!   A re-award of a certification still valid at the event's time changes nothing.
//! - A second `ats.goal.created` for a goal id is ignored; progress on an unknown goal is a
//!   poison event (dead-lettered).

mod catalogue;

pub use catalogue::*;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::LazyLock;

use ats_events::cloudevents::event_id;
use ats_events::{
    Envelope, GoalCreated, MilestoneRegistered, Payload, SessionCompleted, Timestamp,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::profiles::{decode, read, time_bytes, SkillLevel, SkillMetric};
use crate::runtime::{ApplyError, Projector};
use crate::view::View;

/// The projector's name (with its version).
pub const NAME: &str = "progress_v2";

const REGISTRY_KEY: &[u8] = b"reg/milestones";

/// An unlocked milestone (seed `Achievement`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Achievement {
    /// UUID v5 of operator and milestone (stable across replays).
    pub id: String,
    /// Operator id.
    pub operator_id: String,
    /// Milestone id.
    pub milestone_id: String,
    /// Milestone name.
    pub name: String,
    /// Milestone description.
    pub description: String,
    /// Always `skill_based`, as the seed.
    pub category: AchievementCategory,
    /// `occurred_at` of the event that completed the milestone.
    #[schema(value_type = String, format = DateTime)]
    pub unlocked_at: Timestamp,
    /// XP granted.
    pub xp_earned: u64,
}

/// An awarded certification (seed `EarnedCertification`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EarnedCertification {
    /// Operator id.
    pub operator_id: String,
    /// Certification id.
    pub certification_id: String,
    /// `occurred_at` of the award.
    #[schema(value_type = String, format = DateTime)]
    pub earned_at: Timestamp,
    /// End of validity, when the certification expires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<Timestamp>,
}

impl EarnedCertification {
    /// Seed `is_valid`, at `as_of` instead of the wall clock.
    pub fn is_valid(&self, as_of: Timestamp) -> bool {
        self.expires_at.is_none_or(|end| as_of < end)
    }
}

/// One operator's progress data: the seed's `operator_data` plus XP and achievements.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct OperatorProgress {
    /// Operator id.
    pub operator_id: String,
    /// Name (the id until `ats.operator.registered` names it).
    pub name: String,
    /// Team, for team leaderboards.
    pub team: Option<String>,
    /// Completed sessions.
    pub total_sessions: u64,
    /// Hours of completed sessions.
    pub total_hours: f64,
    /// Sum of session scores (for the average-score leaderboard).
    pub score_sum: f64,
    /// Skills practised in sessions, by name.
    pub skills: BTreeMap<String, SkillMetric>,
    /// Every certification id awarded, in award order (what certification milestones read).
    pub certifications: Vec<String>,
    /// Awards of known certifications.
    pub earned_certifications: Vec<EarnedCertification>,
    /// Total XP (milestones and manual grants).
    pub xp: u64,
    /// Unlocked milestones, in unlock order.
    pub achievements: Vec<Achievement>,
    /// Scores on custom leaderboard categories (`ats.leaderboard.scored`; the last one stands).
    #[serde(default)]
    pub custom_scores: BTreeMap<String, f64>,
}

impl OperatorProgress {
    fn new(operator_id: &str) -> Self {
        Self {
            operator_id: operator_id.to_owned(),
            name: operator_id.to_owned(),
            team: None,
            total_sessions: 0,
            total_hours: 0.0,
            score_sum: 0.0,
            skills: BTreeMap::new(),
            certifications: Vec::new(),
            earned_certifications: Vec::new(),
            xp: 0,
            achievements: Vec::new(),
            custom_scores: BTreeMap::new(),
        }
    }

    /// Level from XP (§B6.5).
    pub fn level(&self) -> u64 {
        level(self.xp)
    }

    /// Mean session score (`None` before the first session).
    pub fn average_score(&self) -> Option<f64> {
        mean_score(self.score_sum, self.total_sessions)
    }

    /// Whether the operator holds `certification` at `as_of`: an award of a known
    /// certification valid then, or an award of an id we know nothing about (never expires).
    pub fn holds(&self, certification: &str, as_of: Timestamp) -> bool {
        if catalogue::certification(certification).is_some() {
            self.earned_certifications
                .iter()
                .any(|e| e.certification_id == certification && e.is_valid(as_of))
        } else {
            self.certifications.iter().any(|c| c == certification)
        }
    }

    /// Ids of the known certifications valid at `as_of`, in award order (the summary's list).
    pub fn valid_certifications(&self, as_of: Timestamp) -> Vec<String> {
        self.earned_certifications
            .iter()
            .filter(|e| e.is_valid(as_of))
            .map(|e| e.certification_id.clone())
            .collect()
    }

    /// Seed `check_and_award_milestones` at the time `at` of the event that changed the data:
    /// every milestone not yet unlocked whose check passes, in order; XP added.
    pub fn award_milestones(&mut self, milestones: &[Milestone], at: Timestamp) {
        for m in milestones {
            if self.achievements.iter().any(|a| a.milestone_id == m.id) || !m.check_completion(self)
            {
                continue;
            }
            let id = event_id(&format!("achievement/{}/{}", self.operator_id, m.id));
            self.achievements.push(Achievement {
                id: id.to_string(),
                operator_id: self.operator_id.clone(),
                milestone_id: m.id.clone(),
                name: m.name.clone(),
                description: m.description.clone(),
                category: AchievementCategory::SkillBased,
                unlocked_at: at,
                xp_earned: m.xp_reward,
            });
            self.xp = self.xp.saturating_add(m.xp_reward);
        }
    }

    /// Folds a completed session's counters and skills (as `profiles_v3` does).
    fn complete(&mut self, session: &SessionCompleted) {
        self.total_sessions += 1;
        self.total_hours += session.duration_seconds / 3600.0;
        self.score_sum += session.score;
        for skill in &session.skills_practiced {
            self.skills
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
    }

    /// Records an award at `at`; see the module's rules.
    fn award_certification(&mut self, certification_id: &str, at: Timestamp) {
        if !self.certifications.iter().any(|c| c == certification_id) {
            self.certifications.push(certification_id.to_owned());
        }
        let Some(cert) = catalogue::certification(certification_id) else {
            return;
        };
        if self.holds(certification_id, at) {
            return;
        }
        self.earned_certifications.push(EarnedCertification {
            operator_id: self.operator_id.clone(),
            certification_id: certification_id.to_owned(),
            earned_at: at,
            expires_at: cert
                .valid_for_days
                .map(|days| at.plus_seconds(i64::from(days) * 86_400)),
        });
    }
}

/// A goal (seed `Goal`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Goal {
    /// Goal id.
    pub id: String,
    /// Operator id.
    pub operator_id: String,
    /// Name.
    pub name: String,
    /// Description (`""` when absent, as the seed).
    pub description: String,
    /// Target value.
    pub target_value: f64,
    /// Current value (set, not added, by each progress event).
    pub current_value: f64,
    /// Unit (`units` when absent).
    pub unit: String,
    /// Deadline.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub deadline: Option<Timestamp>,
    /// `occurred_at` of the creation event.
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    /// `occurred_at` of the progress event that first reached the target.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub completed_at: Option<Timestamp>,
}

impl Goal {
    /// The goal a creation event makes at `at`.
    pub fn created(p: &GoalCreated, at: Timestamp) -> Self {
        Self {
            id: p.goal_id.clone(),
            operator_id: p.operator_id.clone(),
            name: p.name.clone(),
            description: p.description.clone().unwrap_or_default(),
            target_value: p.target_value,
            current_value: 0.0,
            unit: p.unit.clone().unwrap_or_else(|| "units".into()),
            deadline: p.deadline,
            created_at: at,
            completed_at: None,
        }
    }

    /// Seed: 0 for a target of 0 (although such a goal is complete), else
    /// `min(100, current / target × 100)`.
    pub fn progress_percentage(&self) -> f64 {
        if self.target_value == 0.0 {
            0.0
        } else {
            (self.current_value / self.target_value * 100.0).min(100.0)
        }
    }

    /// `current >= target`.
    pub fn is_completed(&self) -> bool {
        self.current_value >= self.target_value
    }

    /// Not completed and past its deadline at `as_of`.
    pub fn is_overdue(&self, as_of: Timestamp) -> bool {
        !self.is_completed() && self.deadline.is_some_and(|d| as_of > d)
    }

    /// Seed `update_progress`: sets the value; stamps `completed_at` (= `at`) only on the
    /// transition to complete, and keeps it if the value later drops. True on that transition.
    pub fn update_progress(&mut self, value: f64, at: Timestamp) -> bool {
        let was_complete = self.is_completed();
        self.current_value = value;
        if self.is_completed() && !was_complete {
            self.completed_at = Some(at);
            return true;
        }
        false
    }
}

/// A leaderboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Board {
    /// Total XP (seed `get_xp_leaderboard`).
    Xp,
    /// Level.
    Level,
    /// Completed sessions.
    Sessions,
    /// Hours trained.
    Hours,
    /// Mean session score (operators with a session only).
    AverageScore,
    /// Achievements unlocked.
    Achievements,
    /// Seed `get_activity_leaderboard`: hours rounded to 0.1, as the seed sorts them.
    Activity,
}

impl Board {
    /// Every leaderboard.
    pub const ALL: [Board; 7] = [
        Self::Xp,
        Self::Level,
        Self::Sessions,
        Self::Hours,
        Self::AverageScore,
        Self::Achievements,
        Self::Activity,
    ];

    /// The wire string.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Xp => "xp",
            Self::Level => "level",
            Self::Sessions => "sessions",
            Self::Hours => "hours",
            Self::AverageScore => "average_score",
            Self::Achievements => "achievements",
            Self::Activity => "activity",
        }
    }

    /// Parses a wire string.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|b| b.as_str() == text)
    }

    /// The ordered key value of `op` on this board (`None`: not ranked). Counts are integers
    /// and reals non-negative floats, whose bit patterns order as the values do; inverted so
    /// that the best sorts first.
    fn value(self, op: &OperatorProgress) -> Option<[u8; 8]> {
        let raw = match self {
            Self::Xp => op.xp,
            Self::Level => op.level(),
            Self::Sessions => op.total_sessions,
            Self::Hours => ordered(op.total_hours),
            Self::AverageScore => ordered(op.average_score()?),
            Self::Achievements => op.achievements.len() as u64,
            Self::Activity => round_tenths(op.total_hours),
        };
        Some((!raw).to_be_bytes())
    }
}

/// Bits of a non-negative float, which order as the values do (negatives and -0 count as 0).
fn ordered(x: f64) -> u64 {
    if x > 0.0 {
        x.to_bits()
    } else {
        0
    }
}

/// Python's `round(x, 1)` × 10: the decimal expansion of the double rounded half to even
/// (Rust's `{:.1}` formatting rounds the exact value the same way).
pub fn round_tenths(x: f64) -> u64 {
    format!("{:.1}", x.max(0.0))
        .replace('.', "")
        .parse()
        .unwrap_or(u64::MAX)
}

fn board_prefix(board: Board, team: Option<&str>) -> Vec<u8> {
    match team {
        None => [b"lb/", board.as_str().as_bytes(), b"\0"].concat(),
        Some(team) => [
            b"lt/",
            board.as_str().as_bytes(),
            b"\0",
            team.as_bytes(),
            b"\0",
        ]
        .concat(),
    }
}

fn skill_prefix(skill: &str, team: Option<&str>) -> Vec<u8> {
    match team {
        None => [b"lk/", skill.as_bytes(), b"\0"].concat(),
        Some(team) => [b"lkt/", skill.as_bytes(), b"\0", team.as_bytes(), b"\0"].concat(),
    }
}

fn custom_prefix(category: &str, team: Option<&str>) -> Vec<u8> {
    match team {
        None => [b"lx/", category.as_bytes(), b"\0"].concat(),
        Some(team) => [b"lxt/", category.as_bytes(), b"\0", team.as_bytes(), b"\0"].concat(),
    }
}

/// Length of a skill leaderboard value: proficiency (1 byte), average score (8).
const SKILL_VALUE_LEN: usize = 9;

/// Seed `get_skill_leaderboard` order: proficiency, then average score, best first.
fn skill_value(skill: &SkillMetric) -> Vec<u8> {
    let mut value = vec![!skill.proficiency.numeric()];
    value.extend((!ordered(skill.average_score)).to_be_bytes());
    value
}

/// Every ordered leaderboard key of `op`: each board and each practised skill, overall and
/// within its team.
fn board_keys(op: &OperatorProgress) -> Vec<Vec<u8>> {
    let operator = op.operator_id.as_bytes();
    let mut keys = Vec::new();
    for team in std::iter::once(None).chain(op.team.as_deref().map(Some)) {
        for board in Board::ALL {
            if let Some(value) = board.value(op) {
                keys.push([board_prefix(board, team).as_slice(), &value, operator].concat());
            }
        }
        for (category, score) in &op.custom_scores {
            keys.push(
                [
                    custom_prefix(category, team).as_slice(),
                    &(!ordered(*score)).to_be_bytes(),
                    operator,
                ]
                .concat(),
            );
        }
        for (name, skill) in &op.skills {
            keys.push(
                [
                    skill_prefix(name, team),
                    skill_value(skill),
                    operator.to_vec(),
                ]
                .concat(),
            );
        }
    }
    keys
}

fn operator_key(operator: &str) -> Vec<u8> {
    [b"o/", operator.as_bytes()].concat()
}

const TOTALS_KEY: &[u8] = b"sum/operators";

/// Every operator's progress summed, kept by the fold so that the dashboard's summary reads
/// one key instead of decoding every operator (its cost would grow with the operators).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    /// Operators with progress data.
    pub operators: u64,
    /// Their levels, summed.
    pub levels: u64,
    /// Their achievements, counted.
    pub achievements: u64,
}

fn session_key(session: &str) -> Vec<u8> {
    [b"s/", session.as_bytes()].concat()
}

fn goal_key(goal: &str) -> Vec<u8> {
    [b"g/", goal.as_bytes()].concat()
}

fn goals_prefix(operator: &str) -> Vec<u8> {
    [b"og/", operator.as_bytes(), b"\0"].concat()
}

/// Folds progress events into operator progress, goals and leaderboards.
pub struct ProgressProjector;

impl ProgressProjector {
    /// Loads (or creates) `operator`, lets `change` update it, and moves its leaderboard keys.
    fn with_operator(
        view: &mut View<'_>,
        operator: &str,
        change: impl FnOnce(&mut OperatorProgress),
    ) -> Result<(), ApplyError> {
        let key = operator_key(operator);
        let (mut op, old_keys, before) = match view.get::<OperatorProgress>(&key)? {
            Some(op) => (
                op.clone(),
                board_keys(op),
                Some((op.level(), op.achievements.len() as u64)),
            ),
            None => (OperatorProgress::new(operator), Vec::new(), None),
        };
        change(&mut op);
        let totals = view.entry(TOTALS_KEY, Totals::default)?;
        let (level, achievements) = before.unwrap_or_else(|| {
            totals.operators += 1;
            (0, 0)
        });
        // The old values are part of the sums: adding first cannot underflow.
        totals.levels = totals.levels + op.level() - level;
        totals.achievements = totals.achievements + op.achievements.len() as u64 - achievements;
        let new_keys = board_keys(&op);
        for old in &old_keys {
            if !new_keys.contains(old) {
                view.remove(old)?;
            }
        }
        for new in new_keys {
            if !old_keys.contains(&new) {
                view.put_raw(&new, Vec::new())?;
            }
        }
        view.put(&key, op)
    }

    /// The milestones in force: the defaults, built once per process, until one is
    /// registered (every session completion evaluates them; building the list each time was
    /// 1–3 % of the fold).
    fn milestones(view: &mut View<'_>) -> Result<Cow<'static, [Milestone]>, ApplyError> {
        static DEFAULTS: LazyLock<Vec<Milestone>> = LazyLock::new(default_milestones);
        Ok(match view.get::<Vec<Milestone>>(REGISTRY_KEY)? {
            Some(registered) if !registered.is_empty() => {
                Cow::Owned(effective_milestones(registered))
            }
            _ => Cow::Borrowed(DEFAULTS.as_slice()),
        })
    }

    fn register(view: &mut View<'_>, p: &MilestoneRegistered) -> Result<(), ApplyError> {
        let milestone = Milestone {
            id: p.id.clone(),
            name: p.name.clone(),
            description: p.description.clone().unwrap_or_default(),
            milestone_type: p.milestone_type,
            requirements: p.requirements.clone(),
            xp_reward: p.xp_reward,
            badge_icon: p.badge_icon.clone(),
        };
        let registered = view.entry(REGISTRY_KEY, Vec::<Milestone>::new)?;
        match registered.iter_mut().find(|m| m.id == milestone.id) {
            Some(slot) => *slot = milestone,
            None => registered.push(milestone),
        }
        Ok(())
    }

    fn session_completed(
        view: &mut View<'_>,
        session: &SessionCompleted,
        at: Timestamp,
    ) -> Result<(), ApplyError> {
        let key = session_key(&session.session_id);
        if let Some(owner) = view.get::<String>(&key)? {
            if *owner != session.operator_id {
                return Err(ApplyError::Rejected(format!(
                    "session {} belongs to operator {owner}, not {}",
                    session.session_id, session.operator_id
                )));
            }
            // §A2.2: a second completion of a session is ignored.
            return Ok(());
        }
        view.put(&key, session.operator_id.clone())?;
        let milestones = Self::milestones(view)?;
        Self::with_operator(view, &session.operator_id, |op| {
            op.complete(session);
            op.award_milestones(&milestones, at);
        })
    }

    fn goal_created(view: &mut View<'_>, p: &GoalCreated, at: Timestamp) -> Result<(), ApplyError> {
        Self::with_operator(view, &p.operator_id, |_| {})?;
        let key = goal_key(&p.goal_id);
        if view.get::<Goal>(&key)?.is_some() {
            return Ok(());
        }
        let index = [
            goals_prefix(&p.operator_id).as_slice(),
            &time_bytes(at),
            b"\0",
            p.goal_id.as_bytes(),
        ]
        .concat();
        view.put_raw(&index, Vec::new())?;
        view.put(&key, Goal::created(p, at))
    }
}

impl Projector for ProgressProjector {
    fn name(&self) -> &'static str {
        NAME
    }

    fn apply(&self, view: &mut View<'_>, event: &Envelope) -> Result<(), ApplyError> {
        let at = event.occurred_at;
        match &event.payload {
            Payload::OperatorRegistered(p) => Self::with_operator(view, &p.operator_id, |op| {
                op.name = p.name.clone();
                op.team = p.team.clone();
            }),
            Payload::SessionCompleted(p) => Self::session_completed(view, p, at),
            Payload::CertificationAwarded(p) => {
                let milestones = Self::milestones(view)?;
                Self::with_operator(view, &p.operator_id, |op| {
                    op.award_certification(&p.certification_id, at);
                    op.award_milestones(&milestones, at);
                })
            }
            Payload::XpAwarded(p) => Self::with_operator(view, &p.operator_id, |op| {
                op.xp = op.xp.saturating_add(p.amount);
            }),
            Payload::LeaderboardScored(p) => Self::with_operator(view, &p.operator_id, |op| {
                op.custom_scores.insert(p.category.clone(), p.score);
            }),
            Payload::MilestoneRegistered(p) => Self::register(view, p),
            Payload::GoalCreated(p) => Self::goal_created(view, p, at),
            Payload::GoalProgressed(p) => {
                let goal = view
                    .get_mut::<Goal>(&goal_key(&p.goal_id))?
                    .ok_or_else(|| {
                        ApplyError::Rejected(format!("goal {} does not exist", p.goal_id))
                    })?;
                goal.update_progress(p.value, at);
                Ok(())
            }
            // §A2.3: any event about an operator makes it exist.
            other => match other.operator_id() {
                Some(operator) => Self::with_operator(view, operator, |_| {}),
                None => Ok(()),
            },
        }
    }
}

/// The progress data of `operator`.
pub fn operator(tree: &sled::Tree, operator: &str) -> Option<OperatorProgress> {
    read(tree, &operator_key(operator))
}

/// Every operator's progress summed (zero before any).
pub fn totals(tree: &sled::Tree) -> Totals {
    read(tree, TOTALS_KEY).unwrap_or_default()
}

/// Every operator's progress, in id order.
pub fn operators(tree: &sled::Tree) -> Vec<OperatorProgress> {
    tree.scan_prefix(b"o/")
        .values()
        .filter_map(Result::ok)
        .filter_map(|v| decode(&v))
        .collect()
}

/// The milestones in force (defaults, then registered ones), in evaluation order.
pub fn milestones(tree: &sled::Tree) -> Vec<Milestone> {
    let registered: Vec<Milestone> = read(tree, REGISTRY_KEY).unwrap_or_default();
    effective_milestones(&registered)
}

/// One goal.
pub fn goal(tree: &sled::Tree, goal_id: &str) -> Option<Goal> {
    read(tree, &goal_key(goal_id))
}

/// A goal with what is derived at query time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct GoalDto {
    /// The goal (seed `Goal.to_dict`).
    #[serde(flatten)]
    pub goal: Goal,
    /// Seed `get_progress_percentage`.
    pub progress_percentage: f64,
    /// `current >= target`.
    pub completed: bool,
    /// Not completed and past the deadline at `as_of`.
    pub overdue: bool,
}

impl GoalDto {
    /// The goal as seen at `as_of`.
    pub fn new(goal: Goal, as_of: Timestamp) -> Self {
        Self {
            progress_percentage: goal.progress_percentage(),
            completed: goal.is_completed(),
            overdue: goal.is_overdue(as_of),
            goal,
        }
    }
}

/// Goals of `operator` in creation order (then id); without `include_completed`, only the
/// incomplete ones.
pub fn goals(
    tree: &sled::Tree,
    operator: &str,
    include_completed: bool,
    as_of: Timestamp,
) -> Vec<GoalDto> {
    let prefix = goals_prefix(operator);
    tree.scan_prefix(&prefix)
        .keys()
        .filter_map(Result::ok)
        .filter_map(|k| {
            let id = k.get(prefix.len() + 9..)?;
            goal(tree, &String::from_utf8_lossy(id))
        })
        .filter(|g| include_completed || !g.is_completed())
        .map(|g| GoalDto::new(g, as_of))
        .collect()
}

/// One row of a leaderboard: the seed's keys for `xp` (`xp`, `level`) and `activity`
/// (`total_sessions`, `total_hours`); the other boards add the ranked value as `score`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LeaderboardEntry {
    /// 1-based rank; ties are broken by operator id.
    pub rank: u64,
    /// Operator id.
    pub operator_id: String,
    /// Name.
    pub name: String,
    /// Team.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    /// Total XP (`xp`, `level`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xp: Option<u64>,
    /// Level (`xp`, `level`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<u64>,
    /// Completed sessions (`activity`, `sessions`, `average_score`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_sessions: Option<u64>,
    /// Hours (`activity`: rounded to 0.1 as the seed; `hours`: exact).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_hours: Option<f64>,
    /// Mean session score (`average_score`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub average_score: Option<f64>,
    /// Achievements unlocked (`achievements`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub achievements_count: Option<u64>,
    /// The ranked value, for boards the seed did not have.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
}

/// What a leaderboard row shows of an operator's progress, decoded from its stored record
/// without the skills, certifications and achievements (only counted): those are most of a
/// record's bytes and allocations, and a dashboard decodes twenty records for its two boards.
#[derive(Debug, Deserialize)]
struct Standing {
    operator_id: String,
    name: String,
    team: Option<String>,
    total_sessions: u64,
    total_hours: f64,
    score_sum: f64,
    xp: u64,
    #[serde(deserialize_with = "count")]
    achievements: usize,
}

/// The length of a sequence, its elements skipped.
fn count<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<usize, D::Error> {
    Ok(Vec::<serde::de::IgnoredAny>::deserialize(deserializer)?.len())
}

impl Standing {
    fn of(op: &OperatorProgress) -> Self {
        Self {
            operator_id: op.operator_id.clone(),
            name: op.name.clone(),
            team: op.team.clone(),
            total_sessions: op.total_sessions,
            total_hours: op.total_hours,
            score_sum: op.score_sum,
            xp: op.xp,
            achievements: op.achievements.len(),
        }
    }

    fn average_score(&self) -> Option<f64> {
        mean_score(self.score_sum, self.total_sessions)
    }
}

/// `score_sum / sessions`, `None` without sessions.
fn mean_score(score_sum: f64, sessions: u64) -> Option<f64> {
    (sessions > 0).then(|| score_sum / sessions as f64)
}

fn entry(board: Board, rank: u64, op: &Standing) -> LeaderboardEntry {
    let mut e = LeaderboardEntry {
        rank,
        operator_id: op.operator_id.clone(),
        name: op.name.clone(),
        team: op.team.clone(),
        xp: None,
        level: None,
        total_sessions: None,
        total_hours: None,
        average_score: None,
        achievements_count: None,
        score: None,
    };
    match board {
        Board::Xp => {
            e.xp = Some(op.xp);
            e.level = Some(level(op.xp));
        }
        Board::Level => {
            e.xp = Some(op.xp);
            e.level = Some(level(op.xp));
            e.score = Some(level(op.xp) as f64);
        }
        Board::Sessions => {
            e.total_sessions = Some(op.total_sessions);
            e.score = Some(op.total_sessions as f64);
        }
        Board::Hours => {
            e.total_hours = Some(op.total_hours);
            e.score = Some(op.total_hours);
        }
        Board::AverageScore => {
            e.total_sessions = Some(op.total_sessions);
            e.average_score = op.average_score();
            e.score = op.average_score();
        }
        Board::Achievements => {
            e.achievements_count = Some(op.achievements as u64);
            e.score = Some(op.achievements as f64);
        }
        Board::Activity => {
            e.total_sessions = Some(op.total_sessions);
            e.total_hours = Some(round_tenths(op.total_hours) as f64 / 10.0);
        }
    }
    e
}

/// The top `limit` of `board` (of one team's members with `team`), read from ordered keys:
/// about `limit` key reads and `limit` operator reads, however many operators there are.
pub fn leaderboard(
    tree: &sled::Tree,
    board: Board,
    team: Option<&str>,
    limit: usize,
) -> Vec<LeaderboardEntry> {
    ranked::<Standing>(tree, board_prefix(board, team), 8, team, |s| {
        s.team.as_deref()
    })
    .take(limit)
    .zip(1..)
    .map(|(op, rank)| entry(board, rank, &op))
    .collect()
}

/// The operators listed under `prefix` (values of `value_len` bytes), best first. Operators of
/// another team whose name extends `team` past a NUL share the prefix: they are skipped.
fn ranked<'a, T: serde::de::DeserializeOwned + 'a>(
    tree: &'a sled::Tree,
    prefix: Vec<u8>,
    value_len: usize,
    team: Option<&'a str>,
    team_of: fn(&T) -> Option<&str>,
) -> impl Iterator<Item = T> + 'a {
    tree.scan_prefix(&prefix)
        .keys()
        .map_while(Result::ok)
        .filter_map(move |k| {
            let id = k.get(prefix.len() + value_len..)?;
            read::<T>(tree, &operator_key(&String::from_utf8_lossy(id)))
        })
        .filter(move |op| team.is_none() || team_of(op) == team)
}

/// The row of `operator` on `board` (within `team` when given), with its rank; `None` when
/// the operator is not on it. Counts the keys before it (cost grows with the rank).
pub fn rank(
    tree: &sled::Tree,
    board: Board,
    team: Option<&str>,
    operator_id: &str,
) -> Option<LeaderboardEntry> {
    let op = operator(tree, operator_id)?;
    if team.is_some() && op.team.as_deref() != team {
        return None;
    }
    let prefix = board_prefix(board, team);
    let key = [
        prefix.as_slice(),
        &board.value(&op)?,
        op.operator_id.as_bytes(),
    ]
    .concat();
    let before = tree.range(prefix.clone()..key).keys().count() as u64;
    Some(entry(board, before + 1, &Standing::of(&op)))
}

/// One row of a skill leaderboard (seed `get_skill_leaderboard`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SkillLeaderboardEntry {
    /// 1-based rank; ties are broken by operator id.
    pub rank: u64,
    /// Operator id.
    pub operator_id: String,
    /// Name.
    pub name: String,
    /// Team.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    /// Skill.
    pub skill_name: String,
    /// Proficiency.
    pub proficiency: SkillLevel,
    /// Proficiency as 1 (novice) to 5 (master).
    pub proficiency_score: u8,
    /// Mean score of the sessions practising the skill.
    pub average_score: f64,
    /// Success rate of those sessions.
    pub success_rate: f64,
}

/// The top `limit` operators in `skill` (those who practised it), by proficiency then average
/// score, read from ordered keys.
pub fn skill_leaderboard(
    tree: &sled::Tree,
    skill: &str,
    team: Option<&str>,
    limit: usize,
) -> Vec<SkillLeaderboardEntry> {
    ranked::<OperatorProgress>(
        tree,
        skill_prefix(skill, team),
        SKILL_VALUE_LEN,
        team,
        |op| op.team.as_deref(),
    )
    .filter_map(|op| Some((op.skills.get(skill)?.clone(), op)))
    .take(limit)
    .zip(1..)
    .map(|((metric, op), rank)| SkillLeaderboardEntry {
        rank,
        skill_name: skill.to_owned(),
        proficiency: metric.proficiency,
        proficiency_score: metric.proficiency.numeric(),
        average_score: metric.average_score,
        success_rate: metric.success_rate,
        operator_id: op.operator_id,
        name: op.name,
        team: op.team,
    })
    .collect()
}

/// One row of a custom leaderboard category.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CustomLeaderboardEntry {
    /// 1-based rank; ties are broken by operator id.
    pub rank: u64,
    /// Operator id.
    pub operator_id: String,
    /// Name.
    pub name: String,
    /// Team.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    /// The category's score.
    pub score: f64,
}

/// The top `limit` operators of a custom `category`, read from ordered keys.
pub fn custom_leaderboard(
    tree: &sled::Tree,
    category: &str,
    team: Option<&str>,
    limit: usize,
) -> Vec<CustomLeaderboardEntry> {
    ranked::<OperatorProgress>(tree, custom_prefix(category, team), 8, team, |op| {
        op.team.as_deref()
    })
    .filter_map(|op| Some((*op.custom_scores.get(category)?, op)))
    .take(limit)
    .zip(1..)
    .map(|((score, op), rank)| CustomLeaderboardEntry {
        rank,
        operator_id: op.operator_id,
        name: op.name,
        team: op.team,
        score,
    })
    .collect()
}

/// Seed `get_operator_summary` (§B6.10).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Summary {
    /// Operator id.
    pub operator_id: String,
    /// Level.
    pub level: u64,
    /// Total XP.
    pub total_xp: u64,
    /// Achievements unlocked.
    pub achievements_count: usize,
    /// Ids of certifications valid at `as_of`.
    pub certifications: Vec<String>,
    /// Goals not completed.
    pub active_goals: usize,
    /// Completed sessions.
    pub total_sessions: u64,
    /// Hours trained.
    pub total_hours: f64,
}

/// `GET /api/analytics/operator/{id}/progress`: the seed's keys plus goals and certifications.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ProgressReport {
    /// Operator id.
    pub operator_id: String,
    /// Name.
    pub name: String,
    /// The summary.
    pub summary: Summary,
    /// Unlocked milestones, in unlock order.
    pub achievements: Vec<Achievement>,
    /// Status on each path, by path id.
    pub progress_paths: BTreeMap<String, PathStatus>,
    /// Every goal, with `overdue` at `as_of`.
    pub goals: Vec<GoalDto>,
    /// Certifications valid at `as_of`.
    pub certifications: Vec<EarnedCertification>,
}

/// The progress report of `operator` at `as_of`.
pub fn progress(tree: &sled::Tree, operator_id: &str, as_of: Timestamp) -> Option<ProgressReport> {
    let op = operator(tree, operator_id)?;
    let goals = goals(tree, operator_id, true, as_of);
    Some(ProgressReport {
        operator_id: op.operator_id.clone(),
        name: op.name.clone(),
        summary: Summary {
            operator_id: op.operator_id.clone(),
            level: op.level(),
            total_xp: op.xp,
            achievements_count: op.achievements.len(),
            certifications: op.valid_certifications(as_of),
            active_goals: goals.iter().filter(|g| !g.completed).count(),
            total_sessions: op.total_sessions,
            total_hours: op.total_hours,
        },
        progress_paths: default_paths()
            .iter()
            .map(|p| (p.id.clone(), p.status(&op)))
            .collect(),
        certifications: op
            .earned_certifications
            .iter()
            .filter(|e| e.is_valid(as_of))
            .cloned()
            .collect(),
        achievements: op.achievements,
        goals,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a test fails by panicking: `unwrap` is its assertion
mod tests;
