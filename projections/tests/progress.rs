//! `progress_v2` over generated histories: batch boundaries never show in the tree, and the
//! leaderboards read from ordered keys equal a brute-force sort (10,000 operators).

#![allow(clippy::unwrap_used)] // a test fails by panicking: `unwrap` is its assertion

use std::cmp::Ordering;

use ats_events::cloudevents::event_id;
use ats_events::{
    Attributes, CertificationAwarded, Envelope, GoalCreated, GoalProgressed, MilestoneRegistered,
    MilestoneType, OperatorRegistered, Payload, SessionCompleted, Timestamp, XpAwarded,
};
use ats_ingest::StoredEvent;
use ats_projections::progress::{self, Board, OperatorProgress, ProgressProjector};
use ats_projections::runtime::{self, fold_batch};
use proptest::prelude::*;
use proptest::sample::Index;

const SKILLS: [&str; 3] = ["reconnaissance", "exploitation", "post_exploitation"];
const TEAMS: [&str; 3] = ["red", "blue", "purple"];
const CERTS: [&str; 3] = [
    "cert_red_team_foundation",
    "cert_blue_team_foundation",
    "oscp",
];

fn at(minutes: i64) -> Timestamp {
    Timestamp::parse_rfc3339("2026-11-01T00:00:00Z")
        .unwrap()
        .plus_seconds(minutes * 60)
}

fn op(i: usize) -> String {
    format!("op_{i}")
}

fn registered(operator: &str, team: Option<&str>) -> Payload {
    Payload::OperatorRegistered(OperatorRegistered {
        operator_id: operator.into(),
        name: operator.to_uppercase(),
        team: team.map(str::to_owned),
        specializations: Vec::new(),
        metadata: Attributes::new(),
    })
}

fn xp(operator: &str, amount: u64) -> Payload {
    Payload::XpAwarded(XpAwarded {
        operator_id: operator.into(),
        amount,
        reason: "test".into(),
    })
}

fn completed(
    session: &str,
    operator: &str,
    end: i64,
    minutes: i64,
    score: f64,
    skills: u8,
) -> Payload {
    Payload::SessionCompleted(SessionCompleted {
        session_id: session.into(),
        operator_id: operator.into(),
        scenario_id: "pentest_001".into(),
        start_time: at(end - minutes),
        end_time: at(end),
        duration_seconds: (minutes * 60) as f64,
        success: score >= 0.6,
        score,
        cost: 0.0,
        skills_practiced: SKILLS
            .iter()
            .enumerate()
            .filter(|(b, _)| skills & (1 << b) != 0)
            .map(|(_, s)| (*s).to_owned())
            .collect(),
        objectives_completed: 0,
        objectives_total: 0,
        metrics: Vec::new(),
        difficulty: None,
    })
}

/// One step of a generated history.
#[derive(Debug, Clone)]
enum Step {
    Register {
        operator: usize,
        team: Option<usize>,
    },
    Complete {
        session: usize,
        operator: usize,
        minutes: i64,
        score: u8,
        skills: u8,
    },
    Certify {
        operator: usize,
        cert: usize,
    },
    Xp {
        operator: usize,
        amount: u64,
    },
    Milestone {
        id: usize,
        sessions: u64,
        reward: u64,
    },
    Goal {
        goal: usize,
        operator: usize,
        target: u8,
    },
    Progress {
        goal: usize,
        value: u8,
    },
    /// An exact copy (same id, same content) of an earlier event.
    Resend(Index),
}

fn step() -> impl Strategy<Value = Step> {
    let operator = 0..5usize;
    prop_oneof![
        1 => (operator.clone(), prop::option::of(0..TEAMS.len()))
            .prop_map(|(operator, team)| Step::Register { operator, team }),
        6 => (0..40usize, operator.clone(), 0..600i64, 0..=100u8, 0..8u8)
            .prop_map(|(session, operator, minutes, score, skills)| Step::Complete { session, operator, minutes, score, skills }),
        1 => (operator.clone(), 0..CERTS.len()).prop_map(|(operator, cert)| Step::Certify { operator, cert }),
        1 => (operator.clone(), 0..700u64).prop_map(|(operator, amount)| Step::Xp { operator, amount }),
        1 => (0..3usize, 0..6u64, 0..500u64).prop_map(|(id, sessions, reward)| Step::Milestone { id, sessions, reward }),
        1 => (0..4usize, operator, 0..20u8).prop_map(|(goal, operator, target)| Step::Goal { goal, operator, target }),
        1 => (0..4usize, 0..25u8).prop_map(|(goal, value)| Step::Progress { goal, value }),
        1 => any::<Index>().prop_map(Step::Resend),
    ]
}

/// The stored events of a history (progress on a goal not yet created is a poison event).
fn build(steps: &[Step]) -> Vec<StoredEvent> {
    let mut events: Vec<Envelope> = Vec::new();
    for (i, s) in steps.iter().enumerate() {
        let t = at(i as i64 * 10);
        let payload = match s {
            Step::Register { operator, team } => registered(&op(*operator), team.map(|t| TEAMS[t])),
            Step::Complete {
                session,
                operator,
                minutes,
                score,
                skills,
            } => completed(
                &format!("s{session}"),
                &op(*operator),
                i as i64 * 10,
                *minutes,
                f64::from(*score) / 100.0,
                *skills,
            ),
            Step::Certify { operator, cert } => {
                Payload::CertificationAwarded(CertificationAwarded {
                    operator_id: op(*operator),
                    certification_id: CERTS[*cert].into(),
                })
            }
            Step::Xp { operator, amount } => xp(&op(*operator), *amount),
            Step::Milestone {
                id,
                sessions,
                reward,
            } => {
                let mut requirements = Attributes::new();
                requirements.insert("sessions".into(), (*sessions).into());
                Payload::MilestoneRegistered(MilestoneRegistered {
                    id: format!("custom_{id}"),
                    name: format!("Custom {id}"),
                    description: None,
                    milestone_type: MilestoneType::SessionCount,
                    requirements,
                    xp_reward: *reward,
                    badge_icon: None,
                })
            }
            Step::Goal {
                goal,
                operator,
                target,
            } => Payload::GoalCreated(GoalCreated {
                goal_id: format!("g{goal}"),
                operator_id: op(*operator),
                name: format!("goal {goal}"),
                description: None,
                target_value: f64::from(*target),
                unit: None,
                deadline: Some(at(500)),
            }),
            Step::Progress { goal, value } => Payload::GoalProgressed(GoalProgressed {
                goal_id: format!("g{goal}"),
                value: f64::from(*value),
            }),
            Step::Resend(index) if !events.is_empty() => {
                let copy = events[index.index(events.len())].clone();
                events.push(copy);
                continue;
            }
            Step::Resend(_) => xp(&op(0), 1),
        };
        events.push(Envelope::new(
            event_id(&format!("h-{i}")),
            t,
            "tests",
            payload,
        ));
    }
    events
        .into_iter()
        .enumerate()
        .map(|(i, e)| StoredEvent::new(2 * i as u64 + 1, e))
        .collect()
}

fn tree() -> sled::Tree {
    let db = sled::Config::new().temporary(true).open().unwrap();
    db.open_tree(progress::NAME).unwrap()
}

fn entries(tree: &sled::Tree) -> Vec<(Vec<u8>, Vec<u8>)> {
    tree.iter()
        .map(Result::unwrap)
        .map(|(k, v)| (k.to_vec(), v.to_vec()))
        .collect()
}

fn fold_split(tree: &sled::Tree, events: &[StoredEvent], cuts: &[usize]) {
    let mut bounds = cuts.to_vec();
    bounds.extend([0, events.len()]);
    bounds.sort_unstable();
    bounds.dedup();
    for w in bounds.windows(2) {
        fold_batch(&ProgressProjector, tree, &events[w[0]..w[1]]).unwrap();
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// One batch or any split: byte-identical trees and equal digests.
    #[test]
    fn batch_boundaries_do_not_show(
        steps in prop::collection::vec(step(), 1..150),
        cuts in prop::collection::vec(any::<Index>(), 0..8),
    ) {
        let events = build(&steps);
        let cuts: Vec<usize> = cuts.iter().map(|c| c.index(events.len() + 1)).collect();
        let (whole, split) = (tree(), tree());
        fold_batch(&ProgressProjector, &whole, &events).unwrap();
        fold_split(&split, &events, &cuts);
        prop_assert_eq!(entries(&split), entries(&whole));
        prop_assert_eq!(runtime::digest(&split), runtime::digest(&whole));
        // Every operator is on each board exactly once, overall and in its team.
        let operators = progress::operators(&whole);
        // The sums the dashboard reads are the operators' own.
        prop_assert_eq!(
            progress::totals(&whole),
            progress::Totals {
                operators: operators.len() as u64,
                levels: operators.iter().map(OperatorProgress::level).sum(),
                achievements: operators.iter().map(|o| o.achievements.len() as u64).sum(),
            }
        );
        for board in Board::ALL {
            let all = progress::leaderboard(&whole, board, None, usize::MAX);
            let expected = operators.iter().filter(|o| board != Board::AverageScore || o.total_sessions > 0).count();
            prop_assert_eq!(all.len(), expected, "{:?}", board);
            for team in TEAMS {
                let members = progress::leaderboard(&whole, board, Some(team), usize::MAX);
                prop_assert!(members.iter().all(|e| e.team.as_deref() == Some(team)));
            }
        }
        // Each milestone at most once per operator.
        for o in &operators {
            let mut ids: Vec<&str> = o.achievements.iter().map(|a| a.milestone_id.as_str()).collect();
            let n = ids.len();
            ids.sort_unstable();
            ids.dedup();
            prop_assert_eq!(ids.len(), n);
            prop_assert_eq!(o.xp >= o.achievements.iter().map(|a| a.xp_earned).sum::<u64>(), true);
        }
    }
}

/// The value a board ranks by, computed independently of the ordered keys.
fn value(board: Board, o: &OperatorProgress) -> Option<f64> {
    Some(match board {
        Board::Xp => o.xp as f64,
        Board::Level => progress::level(o.xp) as f64,
        Board::Sessions => o.total_sessions as f64,
        Board::Hours => o.total_hours,
        Board::AverageScore => o.average_score()?,
        Board::Achievements => o.achievements.len() as f64,
        Board::Activity => (o.total_hours * 10.0).round() / 10.0,
    })
}

fn brute_force(operators: &[OperatorProgress], board: Board, team: Option<&str>) -> Vec<String> {
    let mut rows: Vec<(f64, &str)> = operators
        .iter()
        .filter(|o| team.is_none() || o.team.as_deref() == team)
        .filter_map(|o| Some((value(board, o)?, o.operator_id.as_str())))
        .collect();
    rows.sort_by(|a, b| {
        b.0.partial_cmp(&a.0)
            .unwrap_or(Ordering::Equal)
            .then_with(|| a.1.cmp(b.1))
    });
    rows.into_iter().map(|(_, id)| id.to_owned()).collect()
}

#[test]
fn ten_thousand_operators_top_k_equals_a_brute_force_sort() {
    const N: usize = 10_000;
    // A fixed linear congruential generator: reproducible, no clock.
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move |bound: u64| {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (seed >> 33) % bound
    };
    let mut events = Vec::new();
    for i in 0..N {
        let id = format!("op_{i:05}");
        let team = TEAMS[next(3) as usize];
        events.push(registered(&id, Some(team)));
        // Coarse XP values so that ties are common.
        events.push(xp(&id, next(40) * 50));
        for s in 0..next(4) {
            events.push(completed(
                &format!("{id}-s{s}"),
                &id,
                (i * 10) as i64,
                (next(12) * 30) as i64,
                next(101) as f64 / 100.0,
                next(8) as u8,
            ));
        }
    }
    let stored: Vec<StoredEvent> = events
        .into_iter()
        .enumerate()
        .map(|(i, payload)| {
            StoredEvent::new(
                i as u64 + 1,
                Envelope::new(event_id(&format!("lb-{i}")), at(i as i64), "tests", payload),
            )
        })
        .collect();
    let tree = tree();
    for chunk in stored.chunks(runtime::BATCH) {
        fold_batch(&ProgressProjector, &tree, chunk).unwrap();
    }
    let operators = progress::operators(&tree);
    assert_eq!(operators.len(), N);
    for board in Board::ALL {
        for team in [None, Some("red"), Some("purple")] {
            let expected = brute_force(&operators, board, team);
            for k in [1, 10, 250] {
                let top: Vec<String> = progress::leaderboard(&tree, board, team, k)
                    .into_iter()
                    .enumerate()
                    .map(|(i, e)| {
                        assert_eq!(e.rank, i as u64 + 1);
                        e.operator_id
                    })
                    .collect();
                assert_eq!(top, expected[..k], "{board:?} {team:?} top {k}");
            }
            for position in [0, 17, 4_321 % expected.len(), expected.len() - 1] {
                let row = progress::rank(&tree, board, team, &expected[position]).unwrap();
                assert_eq!(row.rank, position as u64 + 1, "{board:?} {team:?}");
            }
        }
    }
    for skill in SKILLS {
        for team in [None, Some("blue")] {
            let mut expected: Vec<(u8, f64, &str)> = operators
                .iter()
                .filter(|o| team.is_none() || o.team.as_deref() == team)
                .filter_map(|o| {
                    let s = o.skills.get(skill)?;
                    Some((
                        s.proficiency.numeric(),
                        s.average_score,
                        o.operator_id.as_str(),
                    ))
                })
                .collect();
            expected.sort_by(|a, b| {
                (b.0, b.1)
                    .partial_cmp(&(a.0, a.1))
                    .unwrap_or(Ordering::Equal)
                    .then_with(|| a.2.cmp(b.2))
            });
            let top: Vec<&str> = expected.iter().take(50).map(|e| e.2).collect();
            let served = progress::skill_leaderboard(&tree, skill, team, 50);
            assert_eq!(
                served
                    .iter()
                    .map(|e| e.operator_id.as_str())
                    .collect::<Vec<_>>(),
                top
            );
        }
    }
}
