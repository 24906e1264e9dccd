//! Training effectiveness (DOMAIN.md §B2 with the fixes of §A2, plus the models of §A3):
//! learning curves, retention, time to proficiency, competency matrix, skill gaps,
//! recommendations, forgetting-curve recall, skill ratings against difficulty and a
//! statistical plateau test.
//!
//! Everything here is a pure function of read-model data (practice points, profiles,
//! sessions) and an explicit `as_of`; nothing reads the clock.

use std::collections::BTreeMap;

use ats_events::Timestamp;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::analytics::{mean, ols_slope, sample_variance};
use crate::profiles::{self, OperatorProfile, SessionRecord, SkillLevel, SkillMetric};

const DAY_SECONDS: f64 = 86_400.0;

/// One practice of a skill: a session that practised it (score = the session's score) or an
/// `ats.skill.assessed` event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PracticePoint {
    /// When (session end time, or the assessment's time).
    #[schema(value_type = String, format = DateTime)]
    pub timestamp: Timestamp,
    /// Score in 0..=1.
    pub score: f64,
    /// The session's success, for sessions.
    pub success: Option<bool>,
    /// The scenario's difficulty in 0..=1, when the session gave one.
    pub difficulty: Option<f64>,
    /// The session, for sessions.
    pub session_id: Option<String>,
}

/// Seed `LearningCurve.to_dict`, from points in time order (§A2.5).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LearningCurve {
    /// Skill.
    pub skill_name: String,
    /// `[time, score]` pairs in time order.
    #[schema(value_type = Vec<Object>)]
    pub data_points: Vec<(String, f64)>,
    /// The first score by time (a real 0.0 counts, §A2.5).
    pub initial_score: f64,
    /// The latest score by time.
    pub current_score: f64,
    /// OLS slope over the last 10 points (per practice; may be negative).
    pub learning_rate: f64,
    /// The seed's mastery score.
    pub plateau_threshold: f64,
}

/// Seed learning rate: OLS slope of the last 10 scores against their index; 0 below 2 points.
pub fn learning_rate(scores: &[f64]) -> f64 {
    let start = scores.len().saturating_sub(10);
    ols_slope(&scores[start..])
}

/// The learning curve of one skill; `points` in any order.
pub fn learning_curve(skill: &str, points: &[PracticePoint]) -> LearningCurve {
    let sorted = sorted_points(points);
    let scores: Vec<f64> = sorted.iter().map(|p| p.score).collect();
    LearningCurve {
        skill_name: skill.to_owned(),
        data_points: sorted
            .iter()
            .map(|p| (p.timestamp.to_rfc3339(), p.score))
            .collect(),
        initial_score: scores.first().copied().unwrap_or(0.0),
        current_score: scores.last().copied().unwrap_or(0.0),
        learning_rate: learning_rate(&scores),
        plateau_threshold: 0.9,
    }
}

fn sorted_points(points: &[PracticePoint]) -> Vec<&PracticePoint> {
    let mut sorted: Vec<&PracticePoint> = points.iter().collect();
    sorted.sort_by_key(|p| p.timestamp);
    sorted
}

impl LearningCurve {
    /// Seed `predict_time_to_mastery`: sessions to reach `mastery`, truncated toward zero as
    /// the seed does; `None` when not improving.
    pub fn predict_time_to_mastery(&self, mastery: f64) -> Option<u64> {
        if self.learning_rate <= 0.0 {
            return None;
        }
        if self.current_score >= mastery {
            return Some(0);
        }
        Some(((mastery - self.current_score) / self.learning_rate) as u64)
    }

    /// Seed `is_plateaued(window_size=5)`: sample variance of the last 5 scores < 0.01.
    pub fn is_plateaued(&self) -> bool {
        let n = self.data_points.len();
        if n < 5 {
            return false;
        }
        let last: Vec<f64> = self.data_points[n - 5..].iter().map(|p| p.1).collect();
        sample_variance(&last) < 0.01
    }
}

/// Seed `calculate_time_to_proficiency` result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TimeToProficiency {
    /// Skill.
    pub skill_name: String,
    /// Target level.
    pub target_level: SkillLevel,
    /// Sessions still needed (seed truncation).
    pub sessions_needed: u64,
    /// 2 hours per session.
    pub estimated_hours: f64,
    /// 8 hours per day.
    pub estimated_days: f64,
    /// Current score.
    pub current_score: f64,
    /// Learning rate.
    pub learning_rate: f64,
}

/// Seed `calculate_time_to_proficiency`: target score = level / 5.
pub fn time_to_proficiency(curve: &LearningCurve, target: SkillLevel) -> Option<TimeToProficiency> {
    let target_score = f64::from(target.numeric()) / 5.0;
    let sessions = curve.predict_time_to_mastery(target_score)?;
    let hours = sessions as f64 * 2.0;
    Some(TimeToProficiency {
        skill_name: curve.skill_name.clone(),
        target_level: target,
        sessions_needed: sessions,
        estimated_hours: hours,
        estimated_days: hours / 8.0,
        current_score: curve.current_score,
        learning_rate: curve.learning_rate,
    })
}

/// Seed `RetentionAnalysis.to_dict`, measured between practice events (§A2.5).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Retention {
    /// Skill.
    pub skill_name: String,
    /// The latest practice.
    pub last_practice_date: String,
    /// Seed retention score after the latest practice that came a day or more after the one
    /// before it (1.0 until then).
    pub retention_score: f64,
    /// Seed decay rate.
    pub decay_rate: f64,
    /// The seed's review interval.
    pub optimal_practice_interval_days: u32,
    /// More than 7 days since the last practice, as of `as_of`.
    pub needs_review: bool,
    /// Whole days since the last practice, as of `as_of`.
    pub days_since_practice: i64,
}

/// Whole days from `earlier` to `later`, floored (Python's `timedelta.days`).
pub fn whole_days(later: Timestamp, earlier: Timestamp) -> i64 {
    (later.micros() - earlier.micros()).div_euclid(86_400 * Timestamp::MICROS_PER_SEC)
}

/// Seed `calculate_retention`, applied to each practice after the first with the previous
/// practice's score and time. Days are whole days (floor); a same-day practice changes nothing.
pub fn retention(skill: &str, points: &[PracticePoint], as_of: Timestamp) -> Option<Retention> {
    let sorted = sorted_points(points);
    let first = sorted.first()?;
    let (mut retention_score, mut decay_rate) = (1.0, 0.0);
    let mut last = first.timestamp;
    for pair in sorted.windows(2) {
        let (previous, current) = (pair[0], pair[1]);
        let days = whole_days(current.timestamp, last);
        if days > 0 {
            let score_retention = if previous.score > 0.0 {
                current.score / previous.score
            } else {
                0.5
            };
            let time_factor = (1.0 - days as f64 / 30.0).max(0.0);
            retention_score = score_retention * (0.5 + 0.5 * time_factor);
            decay_rate = (1.0 - score_retention) / (days.max(1) as f64);
        }
        last = current.timestamp;
    }
    let days_since = whole_days(as_of, last);
    Some(Retention {
        skill_name: skill.to_owned(),
        last_practice_date: last.to_rfc3339(),
        retention_score,
        decay_rate,
        optimal_practice_interval_days: 7,
        // Seed: `now - last_practice_date > 7 days` (strict, on the exact duration).
        needs_review: as_of.micros() - last.micros() > 7 * 86_400 * Timestamp::MICROS_PER_SEC,
        days_since_practice: days_since,
    })
}

/// A forgetting curve (half-life regression, §A3): recall after `t` days is `2^(-t / h)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ForgettingCurve {
    /// Estimated half-life of the skill in days.
    pub half_life_days: f64,
    /// Predicted recall at `as_of`.
    pub predicted_recall: f64,
    /// When predicted recall drops below 0.9 (the next review date).
    pub next_review: String,
    /// Practices (after the first) the estimate rests on.
    pub observations: usize,
}

/// Longest half-life reported: a skill never seen to decay is "stable for a year".
pub const MAX_HALF_LIFE_DAYS: f64 = 365.0;

/// Half-life regression: the score at a practice is the learner's level decayed over the gap
/// since the previous practice, `s = L · 2^(-gap / h)`, so `log2 s` is linear in the gap with
/// slope `-1/h`. An OLS fit over the practices gives `h`; a non-negative slope (no decay
/// seen) gives [`MAX_HALF_LIFE_DAYS`]. Needs two different gaps.
pub fn forgetting_curve(points: &[PracticePoint], as_of: Timestamp) -> Option<ForgettingCurve> {
    let sorted = sorted_points(points);
    let last = sorted.last()?.timestamp;
    let observations: Vec<(f64, f64)> = sorted
        .windows(2)
        .filter_map(|pair| {
            let gap = pair[1].timestamp.seconds_since(pair[0].timestamp) / DAY_SECONDS;
            (gap > 0.0).then(|| (gap, pair[1].score.max(1e-6).log2()))
        })
        .collect();
    let gaps: Vec<f64> = observations.iter().map(|o| o.0).collect();
    let gap_mean = mean(&gaps);
    let log_mean = mean(&observations.iter().map(|o| o.1).collect::<Vec<_>>());
    let sxx: f64 = gaps.iter().map(|g| (g - gap_mean).powi(2)).sum();
    if observations.len() < 2 || sxx == 0.0 {
        return None;
    }
    let sxy: f64 = observations
        .iter()
        .map(|(g, l)| (g - gap_mean) * (l - log_mean))
        .sum();
    let slope = sxy / sxx;
    let half_life = if -slope > 1.0 / MAX_HALF_LIFE_DAYS {
        -1.0 / slope
    } else {
        MAX_HALF_LIFE_DAYS
    };
    let elapsed = (as_of.seconds_since(last) / DAY_SECONDS).max(0.0);
    // Recall falls to 0.9 after h·log2(1/0.9) days.
    let review_after = half_life * (1.0 / 0.9f64).log2();
    Some(ForgettingCurve {
        half_life_days: half_life,
        predicted_recall: 2f64.powf(-elapsed / half_life),
        next_review: last
            .plus_seconds((review_after * DAY_SECONDS) as i64)
            .to_rfc3339(),
        observations: observations.len(),
    })
}

/// A Glicko-1 rating of an operator in one skill, against scenario difficulty (§A3).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SkillRating {
    /// Rating (1500 = average).
    pub rating: f64,
    /// Rating deviation: the uncertainty (350 = nothing known).
    pub deviation: f64,
    /// Rated practices.
    pub games: usize,
}

/// Glicko's q = ln(10) / 400.
const GLICKO_Q: f64 = std::f64::consts::LN_10 / 400.0;

/// The rating a scenario of `difficulty` (0..=1) plays at: 1100 (trivial) to 1900 (hardest).
pub fn scenario_rating(difficulty: f64) -> f64 {
    1500.0 + 800.0 * (difficulty.clamp(0.0, 1.0) - 0.5)
}

/// Rates an operator's practices in time order with Glicko-1, each session a game against
/// its scenario (difficulty 0.5 when unknown) whose outcome is the session's score: a high
/// score on a hard scenario raises the rating more than on an easy one. Assessments without
/// a session are not games.
pub fn skill_rating(points: &[PracticePoint]) -> SkillRating {
    const OPPONENT_RD: f64 = 50.0;
    let (mut rating, mut rd, mut games) = (1500.0f64, 350.0f64, 0);
    for point in sorted_points(points) {
        if point.session_id.is_none() {
            continue;
        }
        let opponent = scenario_rating(point.difficulty.unwrap_or(0.5));
        let g = 1.0
            / (1.0 + 3.0 * GLICKO_Q.powi(2) * OPPONENT_RD.powi(2) / std::f64::consts::PI.powi(2))
                .sqrt();
        let expected = 1.0 / (1.0 + 10f64.powf(-g * (rating - opponent) / 400.0));
        let d2 = 1.0 / (GLICKO_Q.powi(2) * g.powi(2) * expected * (1.0 - expected));
        let denominator = 1.0 / rd.powi(2) + 1.0 / d2;
        rating += GLICKO_Q / denominator * g * (point.score - expected);
        rd = (1.0 / denominator).sqrt().max(30.0);
        games += 1;
    }
    SkillRating {
        rating,
        deviation: rd,
        games,
    }
}

/// A statistical plateau test (§A3): is the recent slope significantly above zero?
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PlateauTest {
    /// Practices in the window.
    pub window: usize,
    /// OLS slope per practice.
    pub slope: f64,
    /// One-sided p-value of "slope > 0" (Student t, n − 2 degrees of freedom).
    pub p_value: f64,
    /// True when the slope is not significantly positive at 5 % and the mean is below mastery.
    pub plateaued: bool,
}

/// The recent window the plateau test looks at.
pub const PLATEAU_WINDOW: usize = 10;

/// Tests the last [`PLATEAU_WINDOW`] scores; `None` below 4 points.
pub fn plateau_test(scores: &[f64]) -> Option<PlateauTest> {
    let window = &scores[scores.len().saturating_sub(PLATEAU_WINDOW)..];
    let n = window.len();
    if n < 4 {
        return None;
    }
    let slope = ols_slope(window);
    let x_mean = (n - 1) as f64 / 2.0;
    let y_mean = mean(window);
    let sxx: f64 = (0..n).map(|i| (i as f64 - x_mean).powi(2)).sum();
    let residual: f64 = window
        .iter()
        .enumerate()
        .map(|(i, y)| (y - (y_mean + slope * (i as f64 - x_mean))).powi(2))
        .sum();
    let df = (n - 2) as f64;
    let se = (residual / df / sxx).sqrt();
    let p_value = if se == 0.0 {
        if slope > 0.0 {
            0.0
        } else {
            1.0
        }
    } else {
        student_t_upper(slope / se, df)
    };
    Some(PlateauTest {
        window: n,
        slope,
        p_value,
        plateaued: p_value >= 0.05 && y_mean < 0.9,
    })
}

/// P(T > t) for Student's t with `df` degrees of freedom.
fn student_t_upper(t: f64, df: f64) -> f64 {
    let tail = 0.5 * puruspe::betai(df / 2.0, 0.5, df / (df + t * t));
    if t >= 0.0 {
        tail
    } else {
        1.0 - tail
    }
}

/// Seed competency domains, by substring of the lower-cased skill name (first match wins).
pub fn skill_domain(skill: &str) -> &'static str {
    let lower = skill.to_lowercase();
    let any = |words: &[&str]| words.iter().any(|w| lower.contains(w));
    if any(&["reconnaissance", "exploitation", "post_exploitation"]) {
        "red_team"
    } else if any(&["detection", "response", "forensics"]) {
        "blue_team"
    } else if any(&["social", "phishing", "pretexting"]) {
        "social_engineering"
    } else {
        "general"
    }
}

/// Seed `CompetencyMatrix.to_dict` plus each domain's proficiency (mean level / 5).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CompetencyMatrix {
    /// Operator.
    pub operator_id: String,
    /// Domain → skill → level.
    pub domains: BTreeMap<String, BTreeMap<String, SkillLevel>>,
    /// Domain → mean numeric level / 5.
    pub domain_proficiency: BTreeMap<String, f64>,
}

/// The competency matrix of a profile.
pub fn competency_matrix(profile: &OperatorProfile) -> CompetencyMatrix {
    let mut domains: BTreeMap<String, BTreeMap<String, SkillLevel>> = BTreeMap::new();
    for skill in profile.skills.values() {
        domains
            .entry(skill_domain(&skill.skill_name).to_owned())
            .or_default()
            .insert(skill.skill_name.clone(), skill.proficiency);
    }
    let domain_proficiency = domains
        .iter()
        .map(|(domain, skills)| {
            let levels: Vec<f64> = skills.values().map(|l| f64::from(l.numeric())).collect();
            (domain.clone(), mean(&levels) / 5.0)
        })
        .collect();
    CompetencyMatrix {
        operator_id: profile.operator_id.clone(),
        domains,
        domain_proficiency,
    }
}

/// Seed `SkillGap.to_dict`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SkillGap {
    /// Skill.
    pub skill_name: String,
    /// Current level.
    pub current_level: SkillLevel,
    /// Required level.
    pub target_level: SkillLevel,
    /// Levels missing.
    pub gap_size: u8,
    /// 1 (low) to 5 (high).
    pub priority: u8,
    /// Seed actions.
    pub recommended_actions: Vec<String>,
}

/// The four seed role profiles; `None` or an unknown role is `default`.
pub fn role_requirements(role: Option<&str>) -> &'static [(&'static str, SkillLevel)] {
    use SkillLevel::*;
    match role {
        Some("red_team_expert") => &[
            ("reconnaissance", Expert),
            ("exploitation", Expert),
            ("post_exploitation", Expert),
            ("lateral_movement", Advanced),
            ("privilege_escalation", Advanced),
            ("stealth_operations", Expert),
        ],
        Some("blue_team_expert") => &[
            ("threat_detection", Expert),
            ("incident_response", Expert),
            ("log_analysis", Expert),
            ("threat_hunting", Advanced),
            ("forensics", Advanced),
        ],
        Some("social_engineer_expert") => &[
            ("social_engineering", Expert),
            ("pretexting", Expert),
            ("phishing", Expert),
            ("vishing", Advanced),
            ("elicitation", Advanced),
        ],
        _ => &[
            ("reconnaissance", Intermediate),
            ("exploitation", Intermediate),
            ("post_exploitation", Intermediate),
            ("social_engineering", Novice),
            ("stealth_operations", Intermediate),
        ],
    }
}

/// The roles [`role_requirements`] knows.
pub const ROLES: [&str; 4] = [
    "default",
    "red_team_expert",
    "blue_team_expert",
    "social_engineer_expert",
];

fn gap_actions(skill: &str, current: &SkillMetric, target: SkillLevel) -> Vec<String> {
    let gap = i32::from(target.numeric()) - i32::from(current.proficiency.numeric());
    let mut actions = if gap >= 3 {
        vec![
            format!("Complete advanced {skill} certification"),
            format!("Practice {skill} in complex scenarios"),
        ]
    } else if gap >= 2 {
        vec![
            format!("Take intermediate {skill} course"),
            format!("Apply {skill} in real-world simulations"),
        ]
    } else {
        vec![
            format!("Refine {skill} through repeated practice"),
            format!("Mentor others in {skill}"),
        ]
    };
    if current.success_rate < 0.7 {
        actions.push(format!("Focus on success rate improvement for {skill}"));
    }
    if current.practice_count < 10 {
        actions.push(format!("Increase practice frequency for {skill}"));
    }
    actions
}

/// Seed `analyze_gaps`, with §A2.6: a required level of novice is never a gap. Sorted by
/// priority, highest first; ties keep the role's requirement order.
pub fn skill_gaps(profile: &OperatorProfile, role: Option<&str>) -> Vec<SkillGap> {
    let mut gaps = Vec::new();
    for &(skill, target) in role_requirements(role) {
        if target == SkillLevel::Novice {
            continue;
        }
        match profile.skills.get(skill) {
            None => gaps.push(SkillGap {
                skill_name: skill.to_owned(),
                current_level: SkillLevel::Novice,
                target_level: target,
                gap_size: target.numeric() - 1,
                priority: 5,
                recommended_actions: vec![
                    format!("Complete introductory training for {skill}"),
                    format!("Practice {skill} in guided scenarios"),
                ],
            }),
            Some(current) if current.proficiency < target => {
                let gap = target.numeric() - current.proficiency.numeric();
                gaps.push(SkillGap {
                    skill_name: skill.to_owned(),
                    current_level: current.proficiency,
                    target_level: target,
                    gap_size: gap,
                    priority: (gap + 1).min(5),
                    recommended_actions: gap_actions(skill, current, target),
                });
            }
            Some(_) => {}
        }
    }
    gaps.sort_by_key(|g| std::cmp::Reverse(g.priority));
    gaps
}

/// Seed `RecommendationType` values emitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RecommendationType {
    /// Close a skill gap.
    SkillDevelopment,
    /// Review a skill not practised for a while.
    KnowledgeRetention,
    /// Break a plateau.
    AdvancedChallenge,
    /// Rest.
    BreakRecommended,
    /// Get certified.
    CertificationReady,
}

/// Seed `TrainingRecommendation.to_dict`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Recommendation {
    /// `rec_{operator}_…_{as_of seconds}` (deterministic for one `as_of`).
    pub id: String,
    /// Operator.
    pub operator_id: String,
    /// Type.
    pub recommendation_type: RecommendationType,
    /// 1 (low) to 5 (high).
    pub priority: u8,
    /// Title.
    pub title: String,
    /// Description.
    pub description: String,
    /// Scenarios to run.
    pub suggested_scenarios: Vec<String>,
    /// Hours.
    pub estimated_time_hours: f64,
    /// Expected outcome.
    pub expected_outcome: String,
    /// `as_of`.
    pub created_at: String,
}

/// What recommendations are computed from.
pub struct TrainingInput<'a> {
    /// The profile.
    pub profile: &'a OperatorProfile,
    /// The most recent sessions (the seed passes 20), most recent first.
    pub recent_sessions: &'a [SessionRecord],
    /// Practice points by skill.
    pub practice: &'a BTreeMap<String, Vec<PracticePoint>>,
    /// Target role.
    pub role: Option<&'a str>,
    /// The instant "now" stands for.
    pub as_of: Timestamp,
}

fn level_name(level: SkillLevel) -> String {
    format!("{level:?}").to_lowercase()
}

/// Seed `generate_recommendations`: top 3 gaps, skills needing review, plateaued curves,
/// burnout, certification readiness; stably sorted by priority, highest first.
pub fn recommendations(input: &TrainingInput<'_>) -> Vec<Recommendation> {
    let op = &input.profile.operator_id;
    let stamp = input.as_of.micros().div_euclid(Timestamp::MICROS_PER_SEC);
    let created_at = input.as_of.to_rfc3339();
    let rec = |id: String,
               kind,
               priority,
               title: String,
               description: String,
               scenarios: Vec<String>,
               hours: f64,
               outcome: &str| Recommendation {
        id,
        operator_id: op.clone(),
        recommendation_type: kind,
        priority,
        title,
        description,
        suggested_scenarios: scenarios,
        estimated_time_hours: hours,
        expected_outcome: outcome.to_owned(),
        created_at: created_at.clone(),
    };
    let mut out = Vec::new();
    for gap in skill_gaps(input.profile, input.role).into_iter().take(3) {
        let (skill, current, target) = (
            &gap.skill_name,
            level_name(gap.current_level),
            level_name(gap.target_level),
        );
        out.push(rec(
            format!("rec_{op}_{skill}_{stamp}"),
            RecommendationType::SkillDevelopment,
            gap.priority,
            format!("Improve {skill}"),
            format!("Current level: {current}. Target: {target}"),
            vec![format!("{skill}_training_scenario")],
            f64::from(gap.gap_size) * 2.0,
            &format!("Advance from {current} to {target}"),
        ));
    }
    for (skill, points) in input.practice {
        if let Some(retention) = retention(skill, points, input.as_of) {
            if retention.needs_review {
                out.push(rec(
                    format!("rec_{op}_retention_{skill}_{stamp}"),
                    RecommendationType::KnowledgeRetention,
                    3,
                    format!("Review {skill}"),
                    format!("Last practiced {} days ago", retention.days_since_practice),
                    vec![format!("{skill}_review_scenario")],
                    1.0,
                    "Maintain proficiency and prevent skill decay",
                ));
            }
        }
    }
    for (skill, points) in input.practice {
        let curve = learning_curve(skill, points);
        if curve.is_plateaued() && curve.current_score < 0.9 {
            out.push(rec(
                format!("rec_{op}_plateau_{skill}_{stamp}"),
                RecommendationType::AdvancedChallenge,
                4,
                format!("Break through {skill} plateau"),
                format!("Performance has plateaued at {:.2}", curve.current_score),
                vec![format!("{skill}_advanced_scenario")],
                3.0,
                "Overcome learning plateau and advance to next level",
            ));
        }
    }
    let this_week = input
        .recent_sessions
        .iter()
        .filter(|s| whole_days(input.as_of, s.data.start_time) <= 7)
        .count();
    if input.recent_sessions.len() > 10 && this_week > 7 {
        out.push(rec(
            format!("rec_{op}_break_{stamp}"),
            RecommendationType::BreakRecommended,
            5,
            "Take a break".into(),
            "High training frequency detected. Rest is important for retention.".into(),
            vec![],
            48.0,
            "Improved focus and knowledge consolidation",
        ));
    }
    let experts = input
        .profile
        .skills
        .values()
        .filter(|s| s.proficiency.numeric() >= 4)
        .count();
    if experts >= 5 {
        out.push(rec(
            format!("rec_{op}_cert_{stamp}"),
            RecommendationType::CertificationReady,
            4,
            "Consider certification".into(),
            format!("You have achieved expert level in {experts} skills"),
            vec!["certification_preparation_scenario".into()],
            8.0,
            "Obtain professional certification",
        ));
    }
    out.sort_by_key(|r| std::cmp::Reverse(r.priority));
    out
}

/// Everything known about one skill's learning (`GET …/learning`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SkillLearning {
    /// Skill.
    pub skill: String,
    /// Seed learning curve.
    pub learning_curve: LearningCurve,
    /// Seed retention, between practices.
    pub retention: Option<Retention>,
    /// Seed time to reach each level above novice (absent where not improving).
    pub time_to_proficiency: BTreeMap<String, TimeToProficiency>,
    /// §A3 forgetting curve (absent until two different gaps are seen).
    pub forgetting_curve: Option<ForgettingCurve>,
    /// §A3 rating against scenario difficulty.
    pub rating: SkillRating,
    /// §A3 plateau test over the recent window (absent below 4 practices).
    pub plateau_test: Option<PlateauTest>,
}

/// `GET /api/analytics/operator/{id}/learning` body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Learning {
    /// Operator.
    pub operator_id: String,
    /// `as_of` used.
    pub as_of: String,
    /// Per skill, in name order.
    pub skills: Vec<SkillLearning>,
    /// Competency matrix.
    pub competency_matrix: CompetencyMatrix,
}

/// The learning analysis of `operator` (one skill or all), from the profiles read model.
pub fn learning(
    tree: &sled::Tree,
    operator: &str,
    skill: Option<&str>,
    as_of: Timestamp,
) -> Option<Learning> {
    let profile = profiles::profile(tree, operator)?;
    let practice = profiles::practice(tree, operator);
    let skills = practice
        .iter()
        .filter(|(name, _)| skill.is_none_or(|s| s == name.as_str()))
        .map(|(name, points)| {
            let curve = learning_curve(name, points);
            let scores: Vec<f64> = curve.data_points.iter().map(|p| p.1).collect();
            let targets = [
                SkillLevel::Intermediate,
                SkillLevel::Advanced,
                SkillLevel::Expert,
                SkillLevel::Master,
            ];
            SkillLearning {
                skill: name.clone(),
                retention: retention(name, points, as_of),
                time_to_proficiency: targets
                    .into_iter()
                    .filter_map(|level| {
                        Some((level_name(level), time_to_proficiency(&curve, level)?))
                    })
                    .collect(),
                forgetting_curve: forgetting_curve(points, as_of),
                rating: skill_rating(points),
                plateau_test: plateau_test(&scores),
                learning_curve: curve,
            }
        })
        .collect();
    Some(Learning {
        operator_id: operator.to_owned(),
        as_of: as_of.to_rfc3339(),
        skills,
        competency_matrix: competency_matrix(&profile),
    })
}

/// Seed recommendations for `operator` (its 20 most recent sessions), as of `as_of`.
pub fn recommendations_for(
    tree: &sled::Tree,
    operator: &str,
    role: Option<&str>,
    as_of: Timestamp,
) -> Option<Vec<Recommendation>> {
    let profile = profiles::profile(tree, operator)?;
    let recent = profiles::sessions(tree, operator, 20);
    let practice = profiles::practice(tree, operator);
    Some(recommendations(&TrainingInput {
        profile: &profile,
        recent_sessions: &recent,
        practice: &practice,
        role,
        as_of,
    }))
}

/// Seed `compare_to_benchmark` for an operator's mean of the benchmark's metric type, with
/// the seed's `calculate_percentile_rank` of that mean among all operators' means.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BenchmarkComparison {
    /// Operator.
    pub operator_id: String,
    /// Benchmark.
    pub benchmark_id: String,
    /// Metric type compared.
    pub metric_type: Option<ats_events::MetricType>,
    /// `above_benchmark`, `below_benchmark`, `at_benchmark`, `no_benchmark` or `no_data`.
    pub comparison: String,
    /// metric − benchmark.
    pub difference: f64,
    /// difference / benchmark × 100 (0 when the benchmark is 0).
    pub percentage: f64,
    /// The operator's mean of the metric type.
    pub metric_value: Option<f64>,
    /// The benchmark's value.
    pub benchmark_value: Option<f64>,
    /// Share of operators whose mean is ≤ this one's, in percent (50 with no population).
    pub percentile_rank: f64,
    /// Operators with a mean of this metric type.
    pub population: usize,
}

/// Seed `calculate_percentile_rank`: `count(v <= value) / len × 100`; 50 when empty.
pub fn percentile_rank(value: f64, population: &[f64]) -> f64 {
    if population.is_empty() {
        return 50.0;
    }
    population.iter().filter(|v| **v <= value).count() as f64 / population.len() as f64 * 100.0
}

/// Compares `operator` with benchmark `benchmark_id`.
pub fn compare_to_benchmark(
    tree: &sled::Tree,
    operator: &str,
    benchmark_id: &str,
) -> BenchmarkComparison {
    let mut out = BenchmarkComparison {
        operator_id: operator.to_owned(),
        benchmark_id: benchmark_id.to_owned(),
        metric_type: None,
        comparison: "no_benchmark".into(),
        difference: 0.0,
        percentage: 0.0,
        metric_value: None,
        benchmark_value: None,
        percentile_rank: 50.0,
        population: 0,
    };
    let Some(benchmark) = profiles::benchmark(tree, benchmark_id) else {
        return out;
    };
    out.metric_type = Some(benchmark.metric_type);
    out.benchmark_value = Some(benchmark.value);
    let means = profiles::metric_means(tree, benchmark.metric_type);
    out.population = means.len();
    let Some(value) = means.iter().find(|(op, _)| op == operator).map(|(_, v)| *v) else {
        out.comparison = "no_data".into();
        return out;
    };
    let population: Vec<f64> = means.iter().map(|(_, v)| *v).collect();
    out.metric_value = Some(value);
    out.difference = value - benchmark.value;
    out.percentage = if benchmark.value == 0.0 {
        0.0
    } else {
        out.difference / benchmark.value * 100.0
    };
    out.comparison = if out.difference > 0.0 {
        "above_benchmark"
    } else if out.difference < 0.0 {
        "below_benchmark"
    } else {
        "at_benchmark"
    }
    .into();
    out.percentile_rank = percentile_rank(value, &population);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(d: i64) -> Timestamp {
        Timestamp::parse_rfc3339("2026-11-01T12:00:00Z")
            .unwrap()
            .plus_seconds(d * 86_400)
    }

    fn point(d: i64, score: f64) -> PracticePoint {
        PracticePoint {
            timestamp: day(d),
            score,
            success: Some(score >= 0.6),
            difficulty: None,
            session_id: Some(format!("s{d}")),
        }
    }

    #[test]
    fn curve_is_in_time_order_and_a_first_zero_counts() {
        // Arrival order differs from time order (§A2.5).
        let points = [point(2, 0.6), point(0, 0.0), point(1, 0.3)];
        let curve = learning_curve("recon", &points);
        assert_eq!(curve.initial_score, 0.0);
        assert_eq!(curve.current_score, 0.6);
        assert!((curve.learning_rate - 0.3).abs() < 1e-12);
        // (0.9 - 0.6) / 0.3 = 1 session (floating point may land just under: truncation as the seed).
        assert!(matches!(curve.predict_time_to_mastery(0.9), Some(0 | 1)));
        assert_eq!(curve.predict_time_to_mastery(0.5), Some(0));
        let flat = learning_curve("recon", &[point(0, 0.5), point(1, 0.5)]);
        assert_eq!(flat.predict_time_to_mastery(0.9), None);
    }

    #[test]
    fn time_to_proficiency_uses_level_over_five_and_truncates() {
        let points: Vec<_> = (0..5).map(|d| point(d, 0.1 + 0.05 * d as f64)).collect();
        let curve = learning_curve("recon", &points);
        // current 0.3, rate 0.05; expert target 0.8 → (0.8-0.3)/0.05 = 10 sessions.
        let t = time_to_proficiency(&curve, SkillLevel::Expert).unwrap();
        assert!(t.sessions_needed == 10 || t.sessions_needed == 9, "{t:?}");
        assert_eq!(t.estimated_hours, t.sessions_needed as f64 * 2.0);
        assert_eq!(t.estimated_days, t.estimated_hours / 8.0);
    }

    #[test]
    fn retention_between_practices_hand_computed() {
        // 0.8 on day 0, 0.6 on day 10: ratio 0.75, time factor 1 - 10/30.
        let r = retention("recon", &[point(0, 0.8), point(10, 0.6)], day(20)).unwrap();
        let expected = 0.75 * (0.5 + 0.5 * (1.0 - 10.0 / 30.0));
        assert!((r.retention_score - expected).abs() < 1e-12);
        assert!((r.decay_rate - 0.025).abs() < 1e-12);
        assert!(r.needs_review);
        assert_eq!(r.days_since_practice, 10);
        // A same-day practice leaves the score as it was; a single practice is 1.0.
        let same_day = retention("recon", &[point(0, 0.8), point(0, 0.4)], day(1)).unwrap();
        assert_eq!(same_day.retention_score, 1.0);
        assert!(!same_day.needs_review);
        // Exactly 7 days is not "more than 7 days".
        assert!(
            !retention("recon", &[point(0, 0.8)], day(7))
                .unwrap()
                .needs_review
        );
    }

    #[test]
    fn gaps_follow_the_seed_and_novice_is_never_a_gap() {
        let mut profile = crate::profiles::tests_support::profile("op");
        crate::profiles::tests_support::practise(&mut profile, "reconnaissance", 12, 0.85, true);
        let gaps = skill_gaps(&profile, None);
        // Default role: recon is expert already; exploitation, post_exploitation and
        // stealth_operations are missing (priority 5); social_engineering (novice) is not a gap.
        let names: Vec<&str> = gaps.iter().map(|g| g.skill_name.as_str()).collect();
        assert_eq!(
            names,
            ["exploitation", "post_exploitation", "stealth_operations"]
        );
        assert!(gaps.iter().all(|g| g.priority == 5 && g.gap_size == 1));
        let red = skill_gaps(&profile, Some("red_team_expert"));
        assert_eq!(red[0].skill_name, "exploitation");
        assert_eq!(red[0].gap_size, 3);
        // recon: expert required, expert held → no gap.
        assert!(red.iter().all(|g| g.skill_name != "reconnaissance"));
        // Unknown roles use the default set.
        assert_eq!(skill_gaps(&profile, Some("astronaut")), gaps);
    }

    #[test]
    fn gap_actions_by_size() {
        let mut profile = crate::profiles::tests_support::profile("op");
        crate::profiles::tests_support::practise(&mut profile, "reconnaissance", 3, 0.9, true);
        let gaps = skill_gaps(&profile, Some("red_team_expert"));
        let recon = gaps
            .iter()
            .find(|g| g.skill_name == "reconnaissance")
            .unwrap();
        assert_eq!(recon.gap_size, 3);
        assert_eq!(recon.priority, 4);
        assert_eq!(
            recon.recommended_actions,
            [
                "Complete advanced reconnaissance certification",
                "Practice reconnaissance in complex scenarios",
                "Increase practice frequency for reconnaissance"
            ]
        );
    }

    #[test]
    fn percentile_rank_is_the_seeds() {
        assert_eq!(percentile_rank(0.5, &[]), 50.0);
        assert_eq!(percentile_rank(0.5, &[0.2, 0.5, 0.7, 0.9]), 50.0);
        assert_eq!(percentile_rank(1.0, &[0.2, 0.5]), 100.0);
    }

    #[test]
    fn domains_by_substring() {
        assert_eq!(skill_domain("Post_Exploitation"), "red_team");
        assert_eq!(skill_domain("threat_detection"), "blue_team");
        assert_eq!(skill_domain("spear_phishing"), "social_engineering");
        assert_eq!(skill_domain("cryptography"), "general");
    }

    #[test]
    fn forgetting_curve_recovers_known_half_lives() {
        // Simulated learners whose score halves every h days between practices.
        let mut estimates = Vec::new();
        for truth in [3.0, 10.0, 30.0] {
            let mut points = vec![point(0, 0.9)];
            let mut t = 0.0;
            for i in 0..12 {
                let gap = [2.0, 5.0, 3.0, 7.0][i % 4];
                t += gap;
                // Each practice restores the level (0.9 ± a little); the score measured at
                // it is that level decayed over the gap since the previous practice.
                let level = 0.9 + 0.02 * ((i * 7 % 5) as f64 - 2.0) / 2.0;
                points.push(PracticePoint {
                    timestamp: day(0).plus_seconds((t * DAY_SECONDS) as i64),
                    score: level * 2f64.powf(-gap / truth),
                    ..point(0, 0.0)
                });
            }
            let curve = forgetting_curve(&points, day(60)).unwrap();
            let error = (curve.half_life_days - truth).abs() / truth;
            println!(
                "half-life truth {truth} d: estimate {:.2} d ({:.1} % off)",
                curve.half_life_days,
                error * 100.0
            );
            assert!(error < 0.15, "{truth}: {curve:?}");
            estimates.push(curve.half_life_days);
        }
        assert!(estimates[0] < estimates[1] && estimates[1] < estimates[2]);
    }

    #[test]
    fn recall_and_next_review() {
        // Level 0.8, half-life 4 days: after a 2-day gap 0.8·2^-0.5, after a 4-day gap 0.4.
        let points = [
            point(0, 0.8),
            point(2, 0.8 * 2f64.powf(-0.5)),
            point(6, 0.4),
        ];
        let curve = forgetting_curve(&points, day(10)).unwrap();
        assert!((curve.half_life_days - 4.0).abs() < 1e-9, "{curve:?}");
        assert!((curve.predicted_recall - 0.5).abs() < 1e-9);
        let expected = day(6).plus_seconds((4.0 * (1.0f64 / 0.9).log2() * DAY_SECONDS) as i64);
        assert_eq!(curve.next_review, expected.to_rfc3339());
        assert_eq!(curve.observations, 2);
        // Longer gaps with higher scores: no decay seen, the cap.
        let steady =
            forgetting_curve(&[point(0, 0.5), point(1, 0.6), point(4, 0.7)], day(4)).unwrap();
        assert_eq!(steady.half_life_days, MAX_HALF_LIFE_DAYS);
        // One gap (or equal gaps) cannot separate level from decay.
        assert!(forgetting_curve(&[point(0, 0.5), point(3, 0.4)], day(4)).is_none());
    }

    #[test]
    fn ratings_rank_operators_by_true_skill_and_difficulty_counts() {
        // Simulated operators with a true rating play scenarios of varied difficulty; the
        // score is the expected outcome of the matchup.
        let mut ratings = Vec::new();
        for truth in [1300.0, 1500.0, 1700.0] {
            let points: Vec<PracticePoint> = (0..30)
                .map(|i| {
                    let difficulty = (i % 10) as f64 / 9.0;
                    let opponent = scenario_rating(difficulty);
                    let score = 1.0 / (1.0 + 10f64.powf(-(truth - opponent) / 400.0));
                    PracticePoint {
                        difficulty: Some(difficulty),
                        ..point(i, score)
                    }
                })
                .collect();
            let rating = skill_rating(&points);
            assert!(
                (rating.rating - truth).abs() < 100.0,
                "truth {truth}: {rating:?}"
            );
            assert!(rating.deviation < 100.0);
            ratings.push(rating.rating);
        }
        assert!(ratings[0] < ratings[1] && ratings[1] < ratings[2]);
        // The same score on a harder scenario earns more.
        let easy = skill_rating(&[PracticePoint {
            difficulty: Some(0.1),
            ..point(0, 0.8)
        }]);
        let hard = skill_rating(&[PracticePoint {
            difficulty: Some(0.9),
            ..point(0, 0.8)
        }]);
        assert!(hard.rating > easy.rating);
    }

    #[test]
    fn plateau_test_separates_learners_from_plateaus() {
        let improving: Vec<f64> = (0..10)
            .map(|i| 0.4 + 0.04 * i as f64 + if i % 2 == 0 { 0.01 } else { -0.01 })
            .collect();
        let test = plateau_test(&improving).unwrap();
        assert!(test.p_value < 0.001, "{test:?}");
        assert!(!test.plateaued);
        let flat = [0.6, 0.62, 0.59, 0.61, 0.6, 0.58, 0.62, 0.6, 0.61, 0.59];
        let test = plateau_test(&flat).unwrap();
        assert!(test.p_value > 0.05, "{test:?}");
        assert!(test.plateaued);
        assert_eq!(test.window, 10);
        assert!(plateau_test(&[0.1, 0.2, 0.3]).is_none());
        // The seed's variance rule calls a steady learner plateaued; the test does not.
        let steady: Vec<f64> = (0..5).map(|i| 0.5 + 0.04 * i as f64).collect();
        assert!(crate::analytics::detect_plateau(&steady));
        assert!(!plateau_test(&steady).unwrap().plateaued);
    }

    #[test]
    fn student_t_tail_matches_tables() {
        // t = 2.306 with 8 df is the 97.5th percentile.
        assert!((student_t_upper(2.306, 8.0) - 0.025).abs() < 1e-3);
        assert!((student_t_upper(0.0, 5.0) - 0.5).abs() < 1e-12);
        assert!((student_t_upper(-2.306, 8.0) - 0.975).abs() < 1e-3);
    }
}
