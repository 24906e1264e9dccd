//! The seed's fixed content (DOMAIN.md §B6.3–6.9): milestones and their checks, the XP level
//! curve, certifications and their eligibility messages, the red team progress path. Pure
//! functions of an operator's [`OperatorProgress`](super::OperatorProgress) data.

use std::collections::BTreeMap;

use ats_events::{Attributes, MilestoneType, Timestamp};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::OperatorProgress;
use crate::profiles::SkillLevel;

/// §B6.5: `int(sqrt(xp / 100)) + 1`, with an integer square root so exact squares never
/// suffer float error (level L is reached at `100·(L−1)²` XP: 100 → 2, 400 → 3).
pub fn level(xp: u64) -> u64 {
    (xp / 100).isqrt() + 1
}

/// The wire string of a level (`novice` … `master`), as the seed's messages print it.
pub fn level_name(level: SkillLevel) -> &'static str {
    match level {
        SkillLevel::Novice => "novice",
        SkillLevel::Intermediate => "intermediate",
        SkillLevel::Advanced => "advanced",
        SkillLevel::Expert => "expert",
        SkillLevel::Master => "master",
    }
}

/// Parses a level's wire string.
pub fn parse_level(text: &str) -> Option<SkillLevel> {
    Some(match text {
        "novice" => SkillLevel::Novice,
        "intermediate" => SkillLevel::Intermediate,
        "advanced" => SkillLevel::Advanced,
        "expert" => SkillLevel::Expert,
        "master" => SkillLevel::Master,
        _ => return None,
    })
}

/// Category of an unlocked achievement (seed `AchievementCategory`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AchievementCategory {
    /// Every achievement of the seed, whatever its milestone type (kept for compatibility).
    SkillBased,
    /// Performance.
    PerformanceBased,
    /// Dedication.
    Dedication,
    /// Social.
    Social,
    /// Special.
    Special,
}

/// A milestone (seed `Milestone`): the nine defaults or one registered by
/// `ats.milestone.registered`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Milestone {
    /// Milestone id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Type; decides which requirement keys are read.
    pub milestone_type: MilestoneType,
    /// Requirements (`sessions`, `hours`, `skill_name` + `level`, `certification_name`,
    /// `skill_count`).
    #[schema(value_type = Object)]
    pub requirements: Attributes,
    /// XP granted on unlock.
    pub xp_reward: u64,
    /// Badge icon.
    pub badge_icon: Option<String>,
}

fn number(requirements: &Attributes, key: &str, default: f64) -> f64 {
    requirements
        .get(key)
        .and_then(|v| v.as_f64())
        .unwrap_or(default)
}

fn text<'a>(requirements: &'a Attributes, key: &str) -> Option<&'a str> {
    requirements.get(key).and_then(|v| v.as_str())
}

impl Milestone {
    /// Seed `check_completion`. A requirement the seed would crash on (an unknown level name)
    /// never completes.
    pub fn check_completion(&self, data: &OperatorProgress) -> bool {
        let r = &self.requirements;
        match self.milestone_type {
            MilestoneType::FirstSession => data.total_sessions >= 1,
            MilestoneType::SessionCount => data.total_sessions as f64 >= number(r, "sessions", 0.0),
            MilestoneType::HoursTrained => data.total_hours >= number(r, "hours", 0.0),
            MilestoneType::SkillMilestone => {
                let Some(skill) = text(r, "skill_name").and_then(|name| data.skills.get(name))
                else {
                    return false;
                };
                parse_level(text(r, "level").unwrap_or("intermediate"))
                    .is_some_and(|needed| skill.proficiency >= needed)
            }
            MilestoneType::Certification => text(r, "certification_name")
                .is_some_and(|name| data.certifications.iter().any(|c| c == name)),
            // The seed counts *master* skills, although its README says "expert" (§B14.16).
            MilestoneType::Mastery => {
                let masters = data
                    .skills
                    .values()
                    .filter(|s| s.proficiency == SkillLevel::Master)
                    .count();
                masters as f64 >= number(r, "skill_count", 1.0)
            }
            MilestoneType::SpecialEvent => false,
        }
    }
}

fn milestone(
    id: String,
    name: String,
    description: String,
    milestone_type: MilestoneType,
    requirement: Option<(&str, u64)>,
    xp_reward: u64,
    badge_icon: String,
) -> Milestone {
    let mut requirements = Attributes::new();
    if let Some((key, value)) = requirement {
        requirements.insert(key.to_owned(), value.into());
    }
    Milestone {
        id,
        name,
        description,
        milestone_type,
        requirements,
        xp_reward,
        badge_icon: Some(badge_icon),
    }
}

/// The nine default milestones of §B6.4 in registration (= evaluation and award) order.
pub fn default_milestones() -> Vec<Milestone> {
    let mut out = vec![milestone(
        "milestone_first_session".into(),
        "First Steps".into(),
        "Complete your first training session".into(),
        MilestoneType::FirstSession,
        None,
        100,
        "first_session_badge".into(),
    )];
    for count in [10u64, 25, 50, 100] {
        out.push(milestone(
            format!("milestone_{count}_sessions"),
            format!("{count} Session Veteran"),
            format!("Complete {count} training sessions"),
            MilestoneType::SessionCount,
            Some(("sessions", count)),
            count * 10,
            format!("sessions_{count}_badge"),
        ));
    }
    for hours in [10u64, 50, 100, 250] {
        out.push(milestone(
            format!("milestone_{hours}_hours"),
            format!("{hours} Hour Dedication"),
            format!("Train for {hours} total hours"),
            MilestoneType::HoursTrained,
            Some(("hours", hours)),
            hours * 5,
            format!("hours_{hours}_badge"),
        ));
    }
    out
}

/// The milestones in force after `registered` (custom ones in log order): the defaults, each
/// replaced in place by a registration with its id (as the seed's dict assignment does), then
/// the other registered ones in registration order.
pub fn effective_milestones(registered: &[Milestone]) -> Vec<Milestone> {
    let mut out = default_milestones();
    for custom in registered {
        match out.iter_mut().find(|m| m.id == custom.id) {
            Some(slot) => *slot = custom.clone(),
            None => out.push(custom.clone()),
        }
    }
    out
}

/// Level of a certification (seed `CertificationLevel`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CertificationLevel {
    /// Foundation.
    Foundation,
    /// Practitioner.
    Practitioner,
    /// Professional.
    Professional,
    /// Expert.
    Expert,
    /// Master.
    Master,
}

/// A skill at a level, required by a certification or a path stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SkillRequirement {
    /// Skill name.
    pub name: String,
    /// Lowest level that passes.
    pub level: SkillLevel,
}

fn skill_requirements(skills: &[(&str, SkillLevel)]) -> Vec<SkillRequirement> {
    skills
        .iter()
        .map(|(name, level)| SkillRequirement {
            name: (*name).to_owned(),
            level: *level,
        })
        .collect()
}

/// What a certification asks for (the seed's requirement keys).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CertificationRequirements {
    /// Skills at levels.
    pub required_skills: Vec<SkillRequirement>,
    /// Completed sessions.
    pub min_sessions: u64,
    /// Total XP.
    pub min_xp: u64,
    /// Certifications that must be held (and valid) first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prerequisite_certifications: Vec<String>,
}

/// A certification (seed `Certification`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Certification {
    /// Certification id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Level.
    pub level: CertificationLevel,
    /// Requirements.
    pub requirements: CertificationRequirements,
    /// Badge icon.
    pub badge_icon: String,
    /// Days an award stays valid (`None`: forever, as all four defaults).
    pub valid_for_days: Option<u32>,
}

impl Certification {
    /// Seed `check_eligibility`: `(eligible, missing)` with the seed's messages, in its order
    /// (skills, sessions, XP, prerequisites). Prerequisites count when held and valid at `as_of`.
    pub fn check_eligibility(
        &self,
        data: &OperatorProgress,
        as_of: Timestamp,
    ) -> (bool, Vec<String>) {
        let r = &self.requirements;
        let mut missing = Vec::new();
        for need in &r.required_skills {
            match data.skills.get(&need.name) {
                None => missing.push(format!("Missing skill: {}", need.name)),
                Some(skill) if skill.proficiency < need.level => missing.push(format!(
                    "{} level {} (need {})",
                    need.name,
                    level_name(skill.proficiency),
                    level_name(need.level)
                )),
                Some(_) => {}
            }
        }
        if data.total_sessions < r.min_sessions {
            missing.push(format!("Need {} total sessions", r.min_sessions));
        }
        if data.xp < r.min_xp {
            missing.push(format!("Need {} total XP", r.min_xp));
        }
        for prerequisite in &r.prerequisite_certifications {
            if !data.holds(prerequisite, as_of) {
                missing.push(format!(
                    "Missing prerequisite certification: {prerequisite}"
                ));
            }
        }
        (missing.is_empty(), missing)
    }
}

/// The four default certifications of §B6.9, in registration order.
pub fn default_certifications() -> Vec<Certification> {
    use SkillLevel::{Advanced, Expert, Intermediate};
    let cert = |id: &str,
                name: &str,
                description: &str,
                level,
                skills: &[(&str, SkillLevel)],
                min_sessions,
                min_xp,
                prerequisites: &[&str],
                badge: &str| Certification {
        id: id.into(),
        name: name.into(),
        description: description.into(),
        level,
        requirements: CertificationRequirements {
            required_skills: skill_requirements(skills),
            min_sessions,
            min_xp,
            prerequisite_certifications: prerequisites.iter().map(|p| (*p).to_owned()).collect(),
        },
        badge_icon: badge.into(),
        valid_for_days: None,
    };
    vec![
        cert(
            "cert_red_team_foundation",
            "Red Team Foundation",
            "Foundation level red team operations",
            CertificationLevel::Foundation,
            &[
                ("reconnaissance", Intermediate),
                ("exploitation", Intermediate),
            ],
            5,
            500,
            &[],
            "red_team_foundation_badge",
        ),
        cert(
            "cert_red_team_professional",
            "Red Team Professional",
            "Professional level red team operations",
            CertificationLevel::Professional,
            &[
                ("reconnaissance", Advanced),
                ("exploitation", Advanced),
                ("post_exploitation", Advanced),
            ],
            20,
            5000,
            &["cert_red_team_foundation"],
            "red_team_professional_badge",
        ),
        cert(
            "cert_blue_team_foundation",
            "Blue Team Foundation",
            "Foundation level defensive operations",
            CertificationLevel::Foundation,
            &[
                ("threat_detection", Intermediate),
                ("incident_response", Intermediate),
            ],
            5,
            500,
            &[],
            "blue_team_foundation_badge",
        ),
        cert(
            "cert_social_engineering",
            "Social Engineering Specialist",
            "Advanced social engineering techniques",
            CertificationLevel::Professional,
            &[("social_engineering", Expert), ("pretexting", Advanced)],
            15,
            3000,
            &[],
            "social_engineering_badge",
        ),
    ]
}

/// One certification by id.
pub fn certification(id: &str) -> Option<Certification> {
    default_certifications().into_iter().find(|c| c.id == id)
}

/// What completes one stage of a progress path.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct StageRequirements {
    /// Completed sessions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_sessions: Option<u64>,
    /// Skills at levels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required_skills: Option<Vec<SkillRequirement>>,
    /// Total XP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_xp: Option<u64>,
}

impl StageRequirements {
    fn met_by(&self, data: &OperatorProgress) -> bool {
        self.min_sessions.is_none_or(|n| data.total_sessions >= n)
            && self.required_skills.iter().flatten().all(|need| {
                data.skills
                    .get(&need.name)
                    .map_or(SkillLevel::Novice, |s| s.proficiency)
                    >= need.level
            })
            && self.min_xp.is_none_or(|xp| data.xp >= xp)
    }
}

/// A structured learning path (seed `ProgressPath`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ProgressPath {
    /// Path id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Stages in order.
    pub stages: Vec<String>,
    /// Requirements of each stage.
    pub stage_requirements: BTreeMap<String, StageRequirements>,
    /// XP to complete the path.
    pub total_xp: u64,
}

/// Seed `get_progress_path_status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PathStatus {
    /// Path id.
    pub path_id: String,
    /// Path name.
    pub path_name: String,
    /// The first stage whose requirements are not met (the last one when all are).
    pub current_stage: String,
    /// Number of stages.
    pub total_stages: usize,
    /// The stage after the current one.
    pub next_stage: Option<String>,
    /// Its requirements (`{}` when there is no next stage).
    pub next_requirements: StageRequirements,
    /// `(index(current) + 1) / stages × 100`.
    pub completion_percentage: f64,
}

impl ProgressPath {
    /// Seed `get_current_stage`: the first stage not met, else the last ("unknown" if none).
    /// Because `beginner` asks for nothing, a fresh operator is at `intermediate` (§B14.15).
    pub fn current_stage(&self, data: &OperatorProgress) -> String {
        self.stages
            .iter()
            .find(|stage| {
                !self
                    .stage_requirements
                    .get(*stage)
                    .cloned()
                    .unwrap_or_default()
                    .met_by(data)
            })
            .or(self.stages.last())
            .cloned()
            .unwrap_or_else(|| "unknown".into())
    }

    /// The operator's status on this path.
    pub fn status(&self, data: &OperatorProgress) -> PathStatus {
        let current = self.current_stage(data);
        let index = self.stages.iter().position(|s| *s == current);
        let next_stage = index.and_then(|i| self.stages.get(i + 1)).cloned();
        let next_requirements = next_stage
            .as_ref()
            .and_then(|s| self.stage_requirements.get(s).cloned())
            .unwrap_or_default();
        PathStatus {
            path_id: self.id.clone(),
            path_name: self.name.clone(),
            total_stages: self.stages.len(),
            completion_percentage: index
                .map_or(0.0, |i| (i + 1) as f64 / self.stages.len() as f64 * 100.0),
            current_stage: current,
            next_stage,
            next_requirements,
        }
    }
}

/// The default paths of §B6.7: the red team path.
pub fn default_paths() -> Vec<ProgressPath> {
    use SkillLevel::{Advanced, Expert, Intermediate};
    let stage = |sessions, skills: &[(&str, SkillLevel)], xp| StageRequirements {
        min_sessions: Some(sessions),
        required_skills: Some(skill_requirements(skills)),
        min_xp: Some(xp),
    };
    let stages = [
        ("beginner", stage(0, &[], 0)),
        (
            "intermediate",
            stage(5, &[("reconnaissance", Intermediate)], 500),
        ),
        (
            "advanced",
            stage(
                20,
                &[("reconnaissance", Advanced), ("exploitation", Advanced)],
                2500,
            ),
        ),
        (
            "expert",
            stage(
                50,
                &[
                    ("reconnaissance", Expert),
                    ("exploitation", Expert),
                    ("post_exploitation", Expert),
                ],
                10_000,
            ),
        ),
    ];
    vec![ProgressPath {
        id: "path_red_team".into(),
        name: "Red Team Operator".into(),
        description: "Comprehensive red team training path".into(),
        stages: stages.iter().map(|(name, _)| (*name).to_owned()).collect(),
        stage_requirements: stages
            .into_iter()
            .map(|(name, req)| (name.to_owned(), req))
            .collect(),
        total_xp: 10_000,
    }]
}
