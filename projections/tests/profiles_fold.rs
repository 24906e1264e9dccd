//! The profiles read model, given these events: hand-computed expectations folded with
//! `runtime::fold_batch` into a fresh sled tree.

#![allow(clippy::unwrap_used)] // a test fails by panicking: `unwrap` is its assertion

mod common;

use ats_events::MetricType;
use ats_projections::profiles::{self, SkillLevel};
use common::*;

/// One operator, three sessions, a retried completion: every counter by hand.
#[test]
fn counters_running_means_and_last_practiced() {
    let mut f = Folder::new();
    let mut s1 = session("s1", "op_1", 0, 30);
    s1.score = 0.6;
    s1.skills_practiced = skills(&["recon", "exploit"]);
    let mut s2 = session("s2", "op_1", 60, 60);
    s2.score = 0.9;
    s2.success = false;
    s2.skills_practiced = skills(&["recon"]);
    let mut s3 = session("s3", "op_1", 180, 15);
    s3.score = 0.3;
    s3.skills_practiced = skills(&["exploit", "stealth"]);
    f.fold(&[completed("e1", s1), completed("e2", s2.clone())]);
    f.fold(&[completed("e3", s3)]);

    let p = profiles::profile(&f.tree, "op_1").unwrap();
    assert_eq!(p.total_sessions, 3);
    // 30 + 60 + 15 minutes.
    assert_close(p.total_hours, 1.75);
    assert_eq!(p.name, "op_1");
    assert_eq!(
        p.created_at,
        minutes(30),
        "the first event's time, not the wall clock"
    );

    let recon = &p.skills["recon"];
    assert_eq!(recon.practice_count, 2);
    assert_close(recon.success_rate, 0.5);
    assert_close(recon.average_score, 0.75);
    assert_eq!(recon.last_practiced, minutes(120), "end of s2");
    let exploit = &p.skills["exploit"];
    assert_eq!(exploit.practice_count, 2);
    assert_close(exploit.success_rate, 1.0);
    assert_close(exploit.average_score, 0.45);
    assert_eq!(exploit.last_practiced, minutes(195), "end of s3");
    let stealth = &p.skills["stealth"];
    assert_eq!(
        (stealth.practice_count, stealth.proficiency),
        (1, SkillLevel::Novice)
    );
    assert_close(stealth.average_score, 0.3);
    assert_eq!(p.skills.len(), 3);
    assert_eq!(p.skill_level(), SkillLevel::Novice);

    // A session ending before the last practice does not move `last_practiced` back.
    let mut s0 = session("s0", "op_1", -600, 30);
    s0.skills_practiced = skills(&["recon"]);
    f.fold(&[completed("e0", s0)]);
    let recon = &profiles::profile(&f.tree, "op_1").unwrap().skills["recon"];
    assert_eq!(
        (recon.practice_count, recon.last_practiced),
        (3, minutes(120))
    );

    // Newest start first, with and without a limit; s0 started earliest.
    let ids = |limit| {
        profiles::sessions(&f.tree, "op_1", limit)
            .into_iter()
            .map(|s| s.data.session_id)
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(0), ["s3", "s2", "s1", "s0"]);
    assert_eq!(ids(2), ["s3", "s2"]);
    assert_eq!(profiles::session(&f.tree, "s2").unwrap().data, s2);
}

#[test]
fn duplicate_session_id_counts_once() {
    let mut f = Folder::new();
    let mut first = session("s1", "op_1", 0, 60);
    first.score = 0.8;
    first.skills_practiced = skills(&["recon"]);
    first.metrics = vec![session_metric(MetricType::DecisionQuality, 0.8)];
    // The producer sent the completion again under another event id, with other numbers.
    let mut again = first.clone();
    again.score = 0.1;
    again.duration_seconds = 7200.0;
    again.metrics = vec![session_metric(MetricType::DecisionQuality, 0.1)];
    // In one batch and across batches.
    f.fold(&[
        completed("e1", first.clone()),
        completed("e1-retry", again.clone()),
    ]);
    f.fold(&[completed("e1-retry-2", again)]);

    let p = profiles::profile(&f.tree, "op_1").unwrap();
    assert_eq!(p.total_sessions, 1);
    assert_close(p.total_hours, 1.0);
    assert_eq!(p.skills["recon"].practice_count, 1);
    assert_close(p.skills["recon"].average_score, 0.8);
    assert_eq!(profiles::session(&f.tree, "s1").unwrap().data, first);
    assert_eq!(profiles::sessions(&f.tree, "op_1", 0).len(), 1);
    let metrics = profiles::metrics(&f.tree, "op_1");
    assert_eq!(metrics.len(), 1);
    assert_close(metrics[0].value, 0.8);
    let counts = profiles::counts(&f.tree);
    assert_eq!(
        (counts.operators, counts.sessions, counts.metrics),
        (1, 1, 1)
    );
}

/// Folds `n` practices of `skill` for op_1 (sessions `<skill>-<from>`…), each its own batch.
fn practise(f: &mut Folder, skill: &str, from: usize, n: usize, score: f64, success: bool) {
    for i in from..from + n {
        let mut s = session(&format!("{skill}-{i}"), "op_1", i as i64 * 60, 30);
        s.score = score;
        s.success = success;
        s.skills_practiced = skills(&[skill]);
        f.fold(&[completed(&format!("e-{skill}-{i}"), s)]);
    }
}

fn skill(f: &Folder, name: &str) -> ats_projections::profiles::SkillMetric {
    profiles::profile(&f.tree, "op_1").unwrap().skills[name].clone()
}

#[test]
fn proficiency_ladder_from_the_tenth_practice() {
    let mut f = Folder::new();
    practise(&mut f, "recon", 0, 9, 0.85, true);
    let recon = skill(&f, "recon");
    assert_eq!(recon.practice_count, 9);
    assert_eq!(
        recon.proficiency,
        SkillLevel::Novice,
        "expert numbers, but only 9 practices"
    );

    practise(&mut f, "recon", 9, 1, 0.85, true);
    let recon = skill(&f, "recon");
    // avg 0.85 ≥ 0.8 and sr 1.0 ≥ 0.8, but avg < 0.9: expert, not master.
    assert_eq!(
        (recon.practice_count, recon.proficiency),
        (10, SkillLevel::Expert)
    );

    // A second skill at master: (4 + 5) / 2 = 4.5 rounds down to expert.
    practise(&mut f, "stealth", 100, 10, 0.95, true);
    assert_eq!(skill(&f, "stealth").proficiency, SkillLevel::Master);
    let p = profiles::profile(&f.tree, "op_1").unwrap();
    assert_eq!(p.skill_level(), SkillLevel::Expert);

    // 11th: avg 8.7/11 = 0.79, sr 10/11 = 0.91 → advanced.
    practise(&mut f, "recon", 10, 1, 0.2, false);
    let recon = skill(&f, "recon");
    assert_close(recon.average_score, 8.7 / 11.0);
    assert_close(recon.success_rate, 10.0 / 11.0);
    assert_eq!(recon.proficiency, SkillLevel::Advanced);
    // 12th: avg 0.725, sr 0.83 → still advanced.
    practise(&mut f, "recon", 11, 1, 0.0, false);
    assert_eq!(skill(&f, "recon").proficiency, SkillLevel::Advanced);
    // 13th: avg 0.67, sr 0.77 → intermediate; (2 + 5) / 2 = 3.5 → advanced overall.
    practise(&mut f, "recon", 12, 1, 0.0, false);
    assert_eq!(skill(&f, "recon").proficiency, SkillLevel::Intermediate);
    let p = profiles::profile(&f.tree, "op_1").unwrap();
    assert_eq!(p.skill_level(), SkillLevel::Advanced);
    // Far below every rung (avg 0.29, sr 0.33 after 30): the level stays, never novice.
    practise(&mut f, "recon", 13, 17, 0.0, false);
    let recon = skill(&f, "recon");
    assert_eq!(recon.practice_count, 30);
    assert_close(recon.success_rate, 10.0 / 30.0);
    assert_eq!(recon.proficiency, SkillLevel::Intermediate);
    assert_eq!(recon.last_practiced, minutes(29 * 60 + 30));
    assert_eq!(
        profiles::profile(&f.tree, "op_1").unwrap().total_sessions,
        40
    );
}

#[test]
fn any_event_about_an_unknown_operator_creates_its_profile() {
    let mut f = Folder::new();
    f.fold(&[
        llm_usage("u1", "op_llm", minutes(1)),
        skill_assessed("a1", "op_assessed", "recon", 0.7, minutes(2)),
        goal_created("g1", "op_goal", minutes(3)),
        budget("b1", Some("op_budget"), minutes(4)),
        // Neither names an operator.
        budget("b2", None, minutes(5)),
        metric(
            "m1",
            "op_metric",
            MetricType::StealthRating,
            0.4,
            minutes(6),
        ),
    ]);
    f.fold(&[certification("c1", "op_cert", "oscp", minutes(7))]);
    assert_eq!(
        profiles::operator_ids(&f.tree),
        [
            "op_assessed",
            "op_budget",
            "op_cert",
            "op_goal",
            "op_llm",
            "op_metric"
        ]
    );
    let p = profiles::profile(&f.tree, "op_llm").unwrap();
    assert_eq!((p.name.as_str(), p.created_at), ("op_llm", minutes(1)));
    assert_eq!((p.total_sessions, p.total_hours), (0, 0.0));
    assert!(p.skills.is_empty() && p.certifications.is_empty() && p.team.is_none());
    assert_eq!(
        profiles::profile(&f.tree, "op_assessed")
            .unwrap()
            .created_at,
        minutes(2)
    );
    assert_eq!(
        profiles::profile(&f.tree, "op_cert")
            .unwrap()
            .certifications,
        ["oscp"]
    );
    // A later event about the operator does not move `created_at`.
    f.fold(&[llm_usage("u2", "op_llm", minutes(50))]);
    assert_eq!(
        profiles::profile(&f.tree, "op_llm").unwrap().created_at,
        minutes(1)
    );
}

#[test]
fn registration_after_sessions_names_and_keeps_counters() {
    let mut f = Folder::new();
    let mut s = session("s1", "op_1", 0, 90);
    s.skills_practiced = skills(&["recon"]);
    f.fold(&[llm_usage("u1", "op_1", minutes(-5)), completed("e1", s)]);
    f.fold(&[completed("e2", session("s2", "op_1", 100, 30))]);
    assert_eq!(profiles::profile(&f.tree, "op_1").unwrap().name, "op_1");

    f.fold(&[registered("r1", "op_1", "Ada", minutes(500))]);
    let p = profiles::profile(&f.tree, "op_1").unwrap();
    assert_eq!(p.name, "Ada");
    assert_eq!(p.team.as_deref(), Some("red"));
    assert_eq!(p.specializations, ["web"]);
    assert_eq!(p.total_sessions, 2);
    assert_close(p.total_hours, 2.0);
    assert_eq!(p.skills["recon"].practice_count, 1);
    assert_eq!(p.created_at, minutes(-5));
    // Sessions after the registration count on the same profile.
    f.fold(&[completed("e3", session("s3", "op_1", 700, 60))]);
    let p = profiles::profile(&f.tree, "op_1").unwrap();
    assert_eq!((p.name.as_str(), p.total_sessions), ("Ada", 3));
}

#[test]
fn certification_awarded_twice_is_listed_once() {
    let mut f = Folder::new();
    f.fold(&[
        certification("c1", "op_1", "oscp", minutes(1)),
        certification("c2", "op_1", "crto", minutes(2)),
        certification("c3", "op_1", "oscp", minutes(3)),
    ]);
    f.fold(&[certification("c4", "op_1", "crto", minutes(4))]);
    let p = profiles::profile(&f.tree, "op_1").unwrap();
    assert_eq!(p.certifications, ["oscp", "crto"], "award order, each once");
}

#[test]
fn metrics_come_back_in_time_order() {
    let mut f = Folder::new();
    let mut s = session("s1", "op_1", 100, 20);
    s.metrics = vec![
        session_metric(MetricType::TimeEfficiency, 0.7),
        session_metric(MetricType::CostEfficiency, 0.2),
    ];
    // Appended out of time order, over two batches.
    f.fold(&[
        metric(
            "m-late",
            "op_1",
            MetricType::StealthRating,
            0.9,
            minutes(300),
        ),
        completed("e1", s),
    ]);
    f.fold(&[
        metric(
            "m-early",
            "op_1",
            MetricType::StealthRating,
            0.1,
            minutes(10),
        ),
        metric(
            "m-other",
            "op_2",
            MetricType::StealthRating,
            0.5,
            minutes(50),
        ),
    ]);
    let got: Vec<_> = profiles::metrics(&f.tree, "op_1")
        .into_iter()
        .map(|m| {
            (
                m.timestamp,
                m.metric_type,
                m.value,
                m.session_id,
                m.scenario_id,
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                minutes(10),
                MetricType::StealthRating,
                0.1,
                "m-early-session".to_owned(),
                None
            ),
            // Session metrics take the session's end time and scenario, in their order.
            (
                minutes(120),
                MetricType::TimeEfficiency,
                0.7,
                "s1".to_owned(),
                Some("scn_web".to_owned())
            ),
            (
                minutes(120),
                MetricType::CostEfficiency,
                0.2,
                "s1".to_owned(),
                Some("scn_web".to_owned())
            ),
            (
                minutes(300),
                MetricType::StealthRating,
                0.9,
                "m-late-session".to_owned(),
                None
            ),
        ]
    );
    assert_eq!(profiles::metrics(&f.tree, "op_2").len(), 1);
    let counts = profiles::counts(&f.tree);
    assert_eq!(
        (counts.operators, counts.sessions, counts.metrics),
        (2, 1, 5)
    );
}

#[test]
fn performance_reads_the_folded_sessions() {
    let mut f = Folder::new();
    // 12 practices of recon at avg 7.4 / 12 = 0.62, sr 1.0 → intermediate (a weakness);
    // exploit practised once stays novice.
    let scores = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 0.9, 1.0];
    for (i, score) in scores.iter().enumerate() {
        let mut s = session(&format!("s{i}"), "op_1", i as i64 * 60, 30);
        s.score = *score;
        s.skills_practiced = if i == 0 {
            skills(&["recon", "exploit"])
        } else {
            skills(&["recon"])
        };
        f.fold(&[completed(&format!("e{i}"), s)]);
    }
    f.fold(&[metric(
        "m1",
        "op_1",
        MetricType::StealthRating,
        0.5,
        minutes(700),
    )]);
    let perf = profiles::performance(&f.tree, "op_1", 7, minutes(800)).unwrap();
    let a = &perf.analysis;
    assert_eq!((a.total_sessions, a.total_metrics), (12, 1));
    assert_close(a.profile.skills["recon"].average_score, 7.4 / 12.0);
    assert_eq!(
        a.profile.skills["recon"].proficiency,
        SkillLevel::Intermediate
    );
    assert!(a.strengths.is_empty());
    let weak: Vec<_> = a
        .weaknesses
        .iter()
        .map(|w| (w.skill.as_str(), w.proficiency))
        .collect();
    assert_eq!(
        weak,
        [
            ("exploit", SkillLevel::Novice),
            ("recon", SkillLevel::Intermediate)
        ]
    );
    // OLS slope of the scores against 0..12: Σ(x − 5.5)·y / Σ(x − 5.5)² = 12.3 / 143;
    // velocity = slope / 0.1.
    assert_close(a.learning_velocity, 123.0 / 143.0);
    assert!(!a.plateau_detected);
    // One stealth point in the window: not enough for a trend.
    assert_eq!(a.trends["stealth_rating"].trend, "insufficient_data");
    assert_eq!(
        perf.profile.skill_level,
        SkillLevel::Novice,
        "(2 + 1) / 2 = 1.5 → novice"
    );
}

#[test]
fn skill_level_of_a_mean_rounds_down() {
    let cases = [
        (0.0, SkillLevel::Novice),
        (1.99, SkillLevel::Novice),
        (2.0, SkillLevel::Intermediate),
        (2.5, SkillLevel::Intermediate),
        (3.5, SkillLevel::Advanced),
        (4.99, SkillLevel::Expert),
        (5.0, SkillLevel::Master),
    ];
    for (mean, level) in cases {
        assert_eq!(SkillLevel::from_numeric(mean), level, "{mean}");
    }
    let numeric: Vec<u8> = [SkillLevel::Novice, SkillLevel::Master]
        .iter()
        .map(|l| l.numeric())
        .collect();
    assert_eq!(numeric, [1, 5]);
}
