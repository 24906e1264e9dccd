//! Formulas and boundaries of §B6, and "given these events, this read model" over a real sled
//! tree folded by `runtime::fold_batch`.

use ats_events::{
    Attributes, CertificationAwarded, GoalCreated, GoalProgressed, MilestoneType,
    OperatorRegistered, SessionCompleted, XpAwarded,
};
use ats_ingest::StoredEvent;

use super::*;
use crate::runtime::fold_batch;

fn t(minutes: i64) -> Timestamp {
    Timestamp::parse_rfc3339("2026-11-01T00:00:00Z")
        .unwrap()
        .plus_seconds(minutes * 60)
}

struct History {
    tree: sled::Tree,
    events: Vec<Envelope>,
    position: u64,
}

impl History {
    fn new() -> Self {
        let db = sled::Config::new().temporary(true).open().unwrap();
        Self {
            tree: db.open_tree(NAME).unwrap(),
            events: Vec::new(),
            position: 0,
        }
    }

    fn push(&mut self, at: Timestamp, payload: Payload) -> &mut Self {
        let id = event_id(&format!("e-{}", self.position + self.events.len() as u64));
        self.events.push(Envelope::new(id, at, "tests", payload));
        self
    }

    /// Folds what was pushed since the last fold as one batch; returns dead letters.
    fn fold(&mut self) -> u64 {
        let stored: Vec<StoredEvent> = self
            .events
            .drain(..)
            .map(|e| {
                self.position += 1;
                StoredEvent::new(self.position, e)
            })
            .collect();
        fold_batch(&ProgressProjector, &self.tree, &stored)
            .unwrap()
            .dead_letters
    }

    fn op(&self, id: &str) -> OperatorProgress {
        operator(&self.tree, id).unwrap()
    }

    /// A session of `hours` ending at minute `n`·1000.
    fn session(&mut self, op: &str, n: u32, hours: f64, score: f64, skills: &[&str]) -> &mut Self {
        let end = t(i64::from(n) * 1000);
        let data = SessionCompleted {
            session_id: format!("{op}-s{n}"),
            operator_id: op.into(),
            scenario_id: "pentest_001".into(),
            start_time: end.plus_seconds(-((hours * 3600.0) as i64)),
            end_time: end,
            duration_seconds: hours * 3600.0,
            success: score >= 0.6,
            score,
            cost: 0.0,
            skills_practiced: skills.iter().map(|s| (*s).to_owned()).collect(),
            objectives_completed: 0,
            objectives_total: 0,
            metrics: Vec::new(),
            difficulty: None,
        };
        self.push(end, Payload::SessionCompleted(data))
    }
}

fn unlocked(op: &OperatorProgress) -> Vec<&str> {
    op.achievements
        .iter()
        .map(|a| a.milestone_id.as_str())
        .collect()
}

#[test]
fn level_curve_boundaries() {
    for (xp, expected) in [
        (0, 1),
        (99, 1),
        (100, 2),
        (399, 2),
        (400, 3),
        (899, 3),
        (900, 4),
        (1599, 4),
        (1600, 5),
        (2500, 6),
        (3600, 7),
        (4000, 7),
        (5000, 8),
    ] {
        assert_eq!(level(xp), expected, "xp {xp}");
    }
}

#[test]
fn default_milestones_are_the_seeds() {
    let all = default_milestones();
    let rows: Vec<(&str, &str, u64, Option<&str>)> = all
        .iter()
        .map(|m| {
            (
                m.id.as_str(),
                m.name.as_str(),
                m.xp_reward,
                m.badge_icon.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            (
                "milestone_first_session",
                "First Steps",
                100,
                Some("first_session_badge")
            ),
            (
                "milestone_10_sessions",
                "10 Session Veteran",
                100,
                Some("sessions_10_badge")
            ),
            (
                "milestone_25_sessions",
                "25 Session Veteran",
                250,
                Some("sessions_25_badge")
            ),
            (
                "milestone_50_sessions",
                "50 Session Veteran",
                500,
                Some("sessions_50_badge")
            ),
            (
                "milestone_100_sessions",
                "100 Session Veteran",
                1000,
                Some("sessions_100_badge")
            ),
            (
                "milestone_10_hours",
                "10 Hour Dedication",
                50,
                Some("hours_10_badge")
            ),
            (
                "milestone_50_hours",
                "50 Hour Dedication",
                250,
                Some("hours_50_badge")
            ),
            (
                "milestone_100_hours",
                "100 Hour Dedication",
                500,
                Some("hours_100_badge")
            ),
            (
                "milestone_250_hours",
                "250 Hour Dedication",
                1250,
                Some("hours_250_badge")
            ),
        ]
    );
    assert_eq!(all[0].description, "Complete your first training session");
    assert_eq!(all[4].description, "Complete 100 training sessions");
    assert_eq!(all[8].description, "Train for 250 total hours");
    assert_eq!(all[1].requirements["sessions"], 10);
    assert_eq!(all[5].requirements["hours"], 10);
    assert_eq!(all.iter().map(|m| m.xp_reward).sum::<u64>(), 4000);
}

#[test]
fn nine_sessions_are_not_ten() {
    let mut h = History::new();
    for n in 0..9 {
        h.session("op", n, 0.5, 0.8, &[]);
    }
    h.fold();
    assert_eq!(unlocked(&h.op("op")), ["milestone_first_session"]);
    assert_eq!(h.op("op").xp, 100);
    h.session("op", 9, 0.5, 0.8, &[]).fold();
    let op = h.op("op");
    assert_eq!(
        unlocked(&op),
        ["milestone_first_session", "milestone_10_sessions"]
    );
    assert_eq!(op.xp, 200);
    assert_eq!(op.level(), 2);
    // Unlocked at the time of the 10th session's event.
    assert_eq!(op.achievements[1].unlocked_at, t(9000));
    assert_eq!(op.achievements[1].category, AchievementCategory::SkillBased);
    assert_eq!(op.achievements[1].xp_earned, 100);
    assert_eq!(op.achievements[0].unlocked_at, t(0));
}

#[test]
fn hours_boundary_is_inclusive_and_exact() {
    let mut h = History::new();
    h.session("op", 0, 9.99, 0.8, &[]).fold();
    assert_eq!(unlocked(&h.op("op")), ["milestone_first_session"]);
    h.session("op", 1, 0.01, 0.8, &[]).fold();
    // 35,964 s + 36 s: the same float sum as the seed's, exactly 10 hours.
    let op = h.op("op");
    assert_eq!(op.total_hours, 10.0);
    assert_eq!(
        unlocked(&op),
        ["milestone_first_session", "milestone_10_hours"]
    );
    assert_eq!(op.achievements[1].unlocked_at, t(1000));
    assert_eq!(op.xp, 150);
    let ten = default_milestones()[5].clone();
    let mut exact = OperatorProgress::new("x");
    exact.total_hours = 10.0;
    assert!(ten.check_completion(&exact));
    exact.total_hours = 9.99;
    assert!(!ten.check_completion(&exact));
}

#[test]
fn each_milestone_unlocks_once_and_all_defaults_give_4000_xp() {
    let mut h = History::new();
    for n in 0..120 {
        h.session("op", n, 2.5, 0.8, &[]);
        if n % 40 == 39 {
            h.fold();
        }
    }
    h.fold();
    let op = h.op("op");
    assert_eq!(op.total_sessions, 120);
    assert_eq!(op.achievements.len(), 9);
    let mut ids = unlocked(&op);
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 9);
    assert_eq!(op.xp, 4000);
    assert_eq!(op.level(), 7);
    // Re-sending a completion of a known session is ignored.
    h.session("op", 3, 2.5, 0.8, &[]).fold();
    assert_eq!(h.op("op"), op);
}

#[test]
fn a_session_of_another_operator_is_dead_lettered() {
    let mut h = History::new();
    h.session("a", 1, 1.0, 0.8, &[]).fold();
    h.session("a", 1, 1.0, 0.8, &[]);
    if let Some(Payload::SessionCompleted(s)) = h.events.last_mut().map(|e| &mut e.payload) {
        s.operator_id = "b".into();
    }
    assert_eq!(h.fold(), 1);
    assert!(operator(&h.tree, "b").is_none());
}

#[test]
fn custom_milestone_applies_from_its_position_on() {
    let mut h = History::new();
    for n in 0..5 {
        h.session("early", n, 1.0, 0.8, &[]);
    }
    let mut requirements = Attributes::new();
    requirements.insert("sessions".into(), 3.into());
    h.push(
        t(100_000),
        Payload::MilestoneRegistered(MilestoneRegistered {
            id: "three".into(),
            name: "Three".into(),
            description: None,
            milestone_type: MilestoneType::SessionCount,
            requirements,
            xp_reward: 5000,
            badge_icon: None,
        }),
    );
    for n in 200..203 {
        h.session("late", n, 1.0, 0.8, &[]);
    }
    h.fold();
    // Qualified before the registration: nothing until the next qualifying event.
    assert_eq!(unlocked(&h.op("early")), ["milestone_first_session"]);
    // Registered before qualifying: unlocked by the third session, at its time.
    let late = h.op("late");
    assert_eq!(unlocked(&late), ["milestone_first_session", "three"]);
    assert_eq!(late.achievements[1].unlocked_at, t(202_000));
    assert_eq!(late.xp, 5100);
    assert_eq!(late.level(), 8);
    h.session("early", 300, 1.0, 0.8, &[]).fold();
    let early = h.op("early");
    assert_eq!(unlocked(&early), ["milestone_first_session", "three"]);
    assert_eq!(early.achievements[1].unlocked_at, t(300_000));
    assert_eq!(milestones(&h.tree).last().unwrap().id, "three");
}

/// Requirements with string values.
fn strs(pairs: &[(&str, &str)]) -> Attributes {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).into()))
        .collect()
}

#[test]
fn milestone_types_check_their_requirements() {
    let mut op = OperatorProgress::new("x");
    let check = |t: MilestoneType, requirements: Attributes, op: &OperatorProgress| {
        Milestone {
            id: "m".into(),
            name: "m".into(),
            description: String::new(),
            milestone_type: t,
            requirements,
            xp_reward: 1,
            badge_icon: None,
        }
        .check_completion(op)
    };
    let recon = || strs(&[("skill_name", "recon")]);
    assert!(!check(MilestoneType::FirstSession, strs(&[]), &op));
    assert!(!check(MilestoneType::SkillMilestone, recon(), &op));
    op.skills
        .insert("recon".into(), skill(SkillLevel::Intermediate));
    assert!(check(MilestoneType::SkillMilestone, recon(), &op));
    let advanced = strs(&[("skill_name", "recon"), ("level", "advanced")]);
    assert!(!check(MilestoneType::SkillMilestone, advanced, &op));
    let wizard = strs(&[("skill_name", "recon"), ("level", "wizard")]);
    assert!(!check(MilestoneType::SkillMilestone, wizard, &op));
    assert!(!check(MilestoneType::SkillMilestone, strs(&[]), &op));
    // Mastery counts master skills (default 1).
    assert!(!check(MilestoneType::Mastery, strs(&[]), &op));
    op.skills.insert("recon".into(), skill(SkillLevel::Master));
    assert!(check(MilestoneType::Mastery, strs(&[]), &op));
    let mut two = Attributes::new();
    two.insert("skill_count".into(), 2.into());
    assert!(!check(MilestoneType::Mastery, two, &op));
    let oscp = || strs(&[("certification_name", "oscp")]);
    assert!(!check(MilestoneType::Certification, oscp(), &op));
    op.certifications.push("oscp".into());
    assert!(check(MilestoneType::Certification, oscp(), &op));
    assert!(!check(MilestoneType::SpecialEvent, strs(&[]), &op));
    // Session count without `sessions` asks for 0.
    assert!(check(MilestoneType::SessionCount, strs(&[]), &op));
}

fn skill(level: SkillLevel) -> SkillMetric {
    SkillMetric {
        skill_name: String::new(),
        proficiency: level,
        last_practiced: t(0),
        practice_count: 10,
        success_rate: 1.0,
        average_score: 1.0,
    }
}

#[test]
fn eligibility_messages_are_the_seeds() {
    let certs = default_certifications();
    let ids: Vec<&str> = certs.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "cert_red_team_foundation",
            "cert_red_team_professional",
            "cert_blue_team_foundation",
            "cert_social_engineering"
        ]
    );
    let mut op = OperatorProgress::new("x");
    let (eligible, missing) = certs[0].check_eligibility(&op, t(0));
    assert!(!eligible);
    assert_eq!(
        missing,
        [
            "Missing skill: reconnaissance",
            "Missing skill: exploitation",
            "Need 5 total sessions",
            "Need 500 total XP"
        ]
    );
    op.skills
        .insert("reconnaissance".into(), skill(SkillLevel::Novice));
    op.skills
        .insert("exploitation".into(), skill(SkillLevel::Advanced));
    op.total_sessions = 5;
    op.xp = 499;
    let (_, missing) = certs[0].check_eligibility(&op, t(0));
    assert_eq!(
        missing,
        [
            "reconnaissance level novice (need intermediate)",
            "Need 500 total XP"
        ]
    );
    op.xp = 500;
    op.skills
        .insert("reconnaissance".into(), skill(SkillLevel::Intermediate));
    assert_eq!(certs[0].check_eligibility(&op, t(0)), (true, vec![]));
    let (_, missing) = certs[1].check_eligibility(&op, t(0));
    assert_eq!(
        missing,
        [
            "reconnaissance level intermediate (need advanced)",
            "Missing skill: post_exploitation",
            "Need 20 total sessions",
            "Need 5000 total XP",
            "Missing prerequisite certification: cert_red_team_foundation"
        ]
    );
    op.award_certification("cert_red_team_foundation", t(10));
    let (_, missing) = certs[1].check_eligibility(&op, t(20));
    assert!(
        !missing.iter().any(|m| m.contains("prerequisite")),
        "{missing:?}"
    );
}

#[test]
fn certification_awards_are_idempotent_and_expire_at_as_of() {
    let mut op = OperatorProgress::new("x");
    op.award_certification("cert_blue_team_foundation", t(1));
    op.award_certification("cert_blue_team_foundation", t(2));
    op.award_certification("oscp", t(3));
    assert_eq!(op.earned_certifications.len(), 1);
    assert_eq!(op.earned_certifications[0].earned_at, t(1));
    assert_eq!(op.earned_certifications[0].expires_at, None);
    assert_eq!(op.certifications, ["cert_blue_team_foundation", "oscp"]);
    assert_eq!(
        op.valid_certifications(t(10)),
        ["cert_blue_team_foundation"]
    );
    assert!(op.holds("oscp", t(10)));
    // Expiry, with a validity the defaults do not have.
    let earned = EarnedCertification {
        operator_id: "x".into(),
        certification_id: "c".into(),
        earned_at: t(0),
        expires_at: Some(t(60)),
    };
    assert!(earned.is_valid(t(59)));
    assert!(!earned.is_valid(t(60)));
}

#[test]
fn fresh_operator_is_at_intermediate_half_way() {
    let path = &default_paths()[0];
    let op = OperatorProgress::new("x");
    let status = path.status(&op);
    assert_eq!(status.path_id, "path_red_team");
    assert_eq!(status.path_name, "Red Team Operator");
    assert_eq!(status.current_stage, "intermediate");
    assert_eq!(status.total_stages, 4);
    assert_eq!(status.next_stage.as_deref(), Some("advanced"));
    assert_eq!(status.next_requirements.min_sessions, Some(20));
    assert_eq!(status.next_requirements.min_xp, Some(2500));
    assert_eq!(status.completion_percentage, 50.0);

    let mut op = OperatorProgress::new("y");
    op.total_sessions = 5;
    op.xp = 500;
    op.skills
        .insert("reconnaissance".into(), skill(SkillLevel::Intermediate));
    let status = path.status(&op);
    assert_eq!(status.current_stage, "advanced");
    assert_eq!(status.next_stage.as_deref(), Some("expert"));
    assert_eq!(status.completion_percentage, 75.0);
    for name in ["reconnaissance", "exploitation", "post_exploitation"] {
        op.skills.insert(name.into(), skill(SkillLevel::Master));
    }
    op.total_sessions = 50;
    op.xp = 10_000;
    let status = path.status(&op);
    assert_eq!(status.current_stage, "expert");
    assert_eq!(status.next_stage, None);
    assert_eq!(status.next_requirements, StageRequirements::default());
    assert_eq!(status.completion_percentage, 100.0);
}

fn goal_created(id: &str, op: &str, target: f64, deadline: Option<Timestamp>) -> Payload {
    Payload::GoalCreated(GoalCreated {
        goal_id: id.into(),
        operator_id: op.into(),
        name: format!("goal {id}"),
        description: None,
        target_value: target,
        unit: None,
        deadline,
    })
}

fn progressed(id: &str, value: f64) -> Payload {
    Payload::GoalProgressed(GoalProgressed {
        goal_id: id.into(),
        value,
    })
}

#[test]
fn goals_complete_on_the_progress_event_and_are_overdue_at_as_of() {
    let mut h = History::new();
    h.push(t(0), goal_created("g1", "op", 10.0, Some(t(100))))
        .push(t(1), goal_created("g0", "op", 0.0, None))
        .push(t(5), progressed("g1", 4.0))
        .fold();
    let g = &goals(&h.tree, "op", true, t(50));
    assert_eq!(g.len(), 2);
    assert_eq!(g[0].goal.id, "g1");
    assert_eq!(g[0].goal.unit, "units");
    assert_eq!(g[0].goal.description, "");
    assert_eq!(g[0].goal.created_at, t(0));
    assert_eq!(g[0].progress_percentage, 40.0);
    assert!(!g[0].overdue);
    assert!(goals(&h.tree, "op", true, t(101))[0].overdue);
    // Target 0 is complete at once and shows 0 % (the seed's numbers).
    assert!(g[1].completed);
    assert_eq!(g[1].progress_percentage, 0.0);
    assert_eq!(goals(&h.tree, "op", false, t(50)).len(), 1);

    h.push(t(200), progressed("g1", 12.0))
        .push(t(300), progressed("g1", 3.0))
        .push(t(301), goal_created("g1", "op", 99.0, None))
        .fold();
    let g1 = goal(&h.tree, "g1").unwrap();
    assert_eq!(g1.completed_at, Some(t(200)));
    assert_eq!(g1.current_value, 3.0);
    assert_eq!(g1.target_value, 10.0, "a second creation is ignored");
    assert_eq!(
        progress(&h.tree, "op", t(400))
            .unwrap()
            .summary
            .active_goals,
        1
    );

    h.push(t(400), progressed("nope", 1.0));
    assert_eq!(h.fold(), 1, "progress on an unknown goal is dead-lettered");
}

#[test]
fn round_tenths_is_pythons_round() {
    // round(0.25, 1) == 0.2, round(0.35, 1) == 0.3 (0.35 is below in binary), round(0.75, 1) == 0.8
    assert_eq!(round_tenths(0.25), 2);
    assert_eq!(round_tenths(0.35), 3);
    assert_eq!(round_tenths(0.75), 8);
    assert_eq!(round_tenths(20.0), 200);
    assert_eq!(round_tenths(12.3456), 123);
}

#[test]
fn leaderboards_rank_by_value_then_operator_id_with_team_filter() {
    let mut h = History::new();
    for (op, team) in [("c", "red"), ("a", "blue"), ("b", "red"), ("d", "red")] {
        h.push(
            t(0),
            Payload::OperatorRegistered(OperatorRegistered {
                operator_id: op.into(),
                name: op.to_uppercase(),
                team: Some(team.into()),
                specializations: Vec::new(),
                metadata: Attributes::new(),
            }),
        );
    }
    for (op, xp) in [("a", 300), ("b", 50), ("c", 300), ("d", 1000)] {
        h.push(
            t(1),
            Payload::XpAwarded(XpAwarded {
                operator_id: op.into(),
                amount: xp,
                reason: "test".into(),
            }),
        );
    }
    h.session("b", 1, 3.0, 0.9, &[])
        .session("c", 2, 1.0, 0.5, &[])
        .fold();
    let ids = |rows: Vec<LeaderboardEntry>| -> Vec<(u64, String)> {
        rows.into_iter().map(|e| (e.rank, e.operator_id)).collect()
    };
    // xp: d 1000, c 400 (300 + first session), a 300, b 150.
    let xp = leaderboard(&h.tree, Board::Xp, None, 10);
    assert_eq!(
        ids(xp.clone()),
        [
            (1, "d".into()),
            (2, "c".into()),
            (3, "a".into()),
            (4, "b".into())
        ]
    );
    assert_eq!(
        (xp[0].name.as_str(), xp[0].xp, xp[0].level),
        ("D", Some(1000), Some(4))
    );
    assert_eq!(
        ids(leaderboard(&h.tree, Board::Xp, None, 2)),
        [(1, "d".into()), (2, "c".into())]
    );
    // level: d 4, c 3, then a and b at 2 (a tie, broken by id).
    assert_eq!(
        ids(leaderboard(&h.tree, Board::Level, None, 10)),
        [
            (1, "d".into()),
            (2, "c".into()),
            (3, "a".into()),
            (4, "b".into())
        ]
    );
    // xp: a and c tie at 300 before c's session; sessions: b and c tie at 1, a and d at 0.
    assert_eq!(
        ids(leaderboard(&h.tree, Board::Sessions, None, 10)),
        [
            (1, "b".into()),
            (2, "c".into()),
            (3, "a".into()),
            (4, "d".into())
        ]
    );
    assert_eq!(
        ids(leaderboard(&h.tree, Board::Xp, Some("red"), 10)),
        [(1, "d".into()), (2, "c".into()), (3, "b".into())]
    );
    assert!(leaderboard(&h.tree, Board::Xp, Some("green"), 10).is_empty());
    // average score only ranks operators with a session.
    assert_eq!(
        ids(leaderboard(&h.tree, Board::AverageScore, None, 10)),
        [(1, "b".into()), (2, "c".into())]
    );
    let activity = leaderboard(&h.tree, Board::Activity, None, 1);
    assert_eq!(
        (activity[0].total_hours, activity[0].total_sessions),
        (Some(3.0), Some(1))
    );
    let achievements = leaderboard(&h.tree, Board::Achievements, None, 10);
    assert_eq!(
        achievements[0].achievements_count,
        Some(h.op(&achievements[0].operator_id).achievements.len() as u64)
    );
    assert!(achievements[0].achievements_count > Some(0));
    // A board's rows are read without most of each record; `rank` reads the whole record.
    for board in Board::ALL {
        for row in leaderboard(&h.tree, board, None, 10) {
            assert_eq!(rank(&h.tree, board, None, &row.operator_id), Some(row));
        }
    }
    assert_eq!(rank(&h.tree, Board::Xp, None, "a").unwrap().rank, 3);
    assert_eq!(rank(&h.tree, Board::Xp, Some("red"), "b").unwrap().rank, 3);
    assert!(rank(&h.tree, Board::Xp, Some("blue"), "b").is_none());
    assert!(rank(&h.tree, Board::AverageScore, None, "a").is_none());

    // Moving team moves its keys: no stale entry stays behind.
    h.push(
        t(5),
        Payload::OperatorRegistered(OperatorRegistered {
            operator_id: "d".into(),
            name: "D".into(),
            team: Some("blue".into()),
            specializations: Vec::new(),
            metadata: Attributes::new(),
        }),
    )
    .fold();
    assert_eq!(
        ids(leaderboard(&h.tree, Board::Xp, Some("blue"), 10)),
        [(1, "d".into()), (2, "a".into())]
    );
    let keys = |prefix: &[u8]| h.tree.scan_prefix(prefix).count();
    assert_eq!(keys(b"lb/xp\0"), 4);
    assert_eq!(keys(b"lt/xp\0"), 4);
}

#[test]
fn certification_award_unlocks_a_certification_milestone() {
    let mut h = History::new();
    let mut requirements = Attributes::new();
    requirements.insert(
        "certification_name".into(),
        "cert_red_team_foundation".into(),
    );
    h.push(
        t(0),
        Payload::MilestoneRegistered(MilestoneRegistered {
            id: "certified".into(),
            name: "Certified".into(),
            description: Some("Hold the red team foundation".into()),
            milestone_type: MilestoneType::Certification,
            requirements,
            xp_reward: 300,
            badge_icon: Some("cert_badge".into()),
        }),
    )
    .push(
        t(7),
        Payload::CertificationAwarded(CertificationAwarded {
            operator_id: "op".into(),
            certification_id: "cert_red_team_foundation".into(),
        }),
    )
    .fold();
    let report = progress(&h.tree, "op", t(8)).unwrap();
    assert_eq!(report.summary.total_xp, 300);
    assert_eq!(report.summary.level, 2);
    assert_eq!(report.summary.certifications, ["cert_red_team_foundation"]);
    assert_eq!(report.achievements[0].unlocked_at, t(7));
    assert_eq!(
        report.achievements[0].description,
        "Hold the red team foundation"
    );
    assert_eq!(report.certifications[0].earned_at, t(7));
}

#[test]
fn skill_leaderboard_ranks_proficiency_then_average_score() {
    let mut h = History::new();
    for n in 0..10 {
        h.session("z", n, 1.0, 0.85, &["recon"]);
    }
    h.session("x", 20, 1.0, 0.9, &["recon"])
        .session("w", 21, 1.0, 0.9, &["recon", "stealth"])
        .session("y", 22, 1.0, 0.5, &["recon"])
        .session("v", 23, 1.0, 0.99, &["stealth"])
        .push(
            t(0),
            Payload::OperatorRegistered(OperatorRegistered {
                operator_id: "x".into(),
                name: "X".into(),
                team: Some("red".into()),
                specializations: Vec::new(),
                metadata: Attributes::new(),
            }),
        )
        .fold();
    let rows = skill_leaderboard(&h.tree, "recon", None, 10);
    let order: Vec<(u64, &str, u8)> = rows
        .iter()
        .map(|e| (e.rank, e.operator_id.as_str(), e.proficiency_score))
        .collect();
    // z is expert; w and x tie at novice 0.9 (by id); y last.
    assert_eq!(order, [(1, "z", 4), (2, "w", 1), (3, "x", 1), (4, "y", 1)]);
    assert_eq!(rows[0].proficiency, SkillLevel::Expert);
    assert_eq!(
        (rows[0].success_rate, rows[0].skill_name.as_str()),
        (1.0, "recon")
    );
    assert_eq!(
        skill_leaderboard(&h.tree, "recon", Some("red"), 10)[0].operator_id,
        "x"
    );
    assert_eq!(
        skill_leaderboard(&h.tree, "stealth", None, 1)[0].operator_id,
        "v"
    );
    assert!(skill_leaderboard(&h.tree, "forensics", None, 10).is_empty());
}

#[test]
fn a_team_named_with_a_nul_does_not_leak_into_another_team() {
    let mut h = History::new();
    for (op, team) in [("a", "red"), ("b", "red\0x"), ("c", "red")] {
        h.push(
            t(0),
            Payload::OperatorRegistered(OperatorRegistered {
                operator_id: op.into(),
                name: op.into(),
                team: Some(team.into()),
                specializations: Vec::new(),
                metadata: Attributes::new(),
            }),
        );
    }
    h.push(
        t(1),
        Payload::XpAwarded(XpAwarded {
            operator_id: "b".into(),
            amount: 900,
            reason: "x".into(),
        }),
    )
    .fold();
    let red: Vec<String> = leaderboard(&h.tree, Board::Xp, Some("red"), 2)
        .into_iter()
        .map(|e| e.operator_id)
        .collect();
    assert_eq!(red, ["a", "c"]);
}
