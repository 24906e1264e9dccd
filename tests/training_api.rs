//! Training effectiveness over HTTP: a realistic history posted through `POST /api/events`,
//! then recommendations, skill gaps, learning and benchmarks checked field by field against
//! numbers computed by hand from DOMAIN.md §B1–B2.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking, with the reason

mod common;

use common::{assert_refused, registered, Server};
use serde_json::{json, Value};

fn session(op: &str, day: u32, score: f64, skill: &str) -> Value {
    let start = format!("2026-11-{day:02}T08:00:00Z");
    let end = format!("2026-11-{day:02}T10:00:00Z");
    json!({
        "specversion": "1.0", "id": format!("{op}-{day}-done"), "type": "ats.session.completed",
        "source": "orchestrator", "time": end, "subject": op,
        "data": {"session_id": format!("{op}-{day}"), "operator_id": op, "scenario_id": "lab",
                 "start_time": start, "end_time": end, "duration_seconds": 7200,
                 "success": score >= 0.6, "score": score, "skills_practiced": [skill],
                 "objectives_completed": 1, "objectives_total": 2,
                 "metrics": [{"metric_type": "stealth_rating", "value": score}]}
    })
}

const AS_OF: &str = "2026-11-30T00:00:00Z";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recommendations_gaps_learning_and_benchmarks() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    server.ready().await;

    // op_t: 12 reconnaissance sessions on Nov 1–12 scoring 0.50, 0.53, … 0.83; two
    // exploitation sessions at 0.7 on Nov 13–14; a reconnaissance assessment of 0.6 on Nov 20.
    let mut events = vec![registered("op_t", "Tess"), registered("op_u", "Uma")];
    let recon: Vec<f64> = (0..12).map(|i| 0.5 + 0.03 * f64::from(i)).collect();
    for (i, score) in recon.iter().enumerate() {
        events.push(session("op_t", 1 + i as u32, *score, "reconnaissance"));
    }
    events.push(session("op_t", 13, 0.7, "exploitation"));
    events.push(session("op_t", 14, 0.7, "exploitation"));
    events.push(
        json!({"specversion": "1.0", "id": "op_t-assess", "type": "ats.skill.assessed",
        "source": "lms", "time": "2026-11-20T10:00:00Z", "subject": "op_t",
        "data": {"operator_id": "op_t", "skill": "reconnaissance", "score": 0.6}}),
    );
    events.push(session("op_u", 3, 0.9, "phishing"));
    let (status, receipt) = server.post_events(&Value::Array(events)).await;
    assert_eq!(status, 200, "{receipt}");
    let head = receipt["positions"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .as_u64()
        .unwrap();

    // Skill gaps, default role: exploitation is novice (2 practices) against intermediate;
    // post_exploitation and stealth_operations are missing; social_engineering's novice
    // requirement is never a gap (§A2.6); reconnaissance is intermediate already.
    let (status, gaps) = server
        .get(&format!(
            "/api/analytics/operator/op_t/skill-gaps?min_position={head}"
        ))
        .await;
    assert_eq!(status, 200, "{gaps}");
    assert_eq!(gaps["target_role"], Value::Null);
    let gaps = gaps["skill_gaps"].as_array().unwrap();
    let summary: Vec<(&str, &str, &str, u64, u64)> = gaps
        .iter()
        .map(|g| {
            (
                g["skill_name"].as_str().unwrap(),
                g["current_level"].as_str().unwrap(),
                g["target_level"].as_str().unwrap(),
                g["gap_size"].as_u64().unwrap(),
                g["priority"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("post_exploitation", "novice", "intermediate", 1, 5),
            ("stealth_operations", "novice", "intermediate", 1, 5),
            ("exploitation", "novice", "intermediate", 1, 2),
        ]
    );
    assert_eq!(
        gaps[2]["recommended_actions"],
        json!([
            "Refine exploitation through repeated practice",
            "Mentor others in exploitation",
            "Increase practice frequency for exploitation"
        ])
    );
    let (status, red) = server
        .get("/api/analytics/operator/op_t/skill-gaps?target_role=red_team_expert")
        .await;
    assert_eq!(status, 200);
    assert_eq!(red["skill_gaps"].as_array().unwrap().len(), 6);
    let (status, bad) = server
        .get("/api/analytics/operator/op_t/skill-gaps?target_role=astronaut")
        .await;
    assert_refused(status, &bad, 400, "target_role:");

    // Recommendations as of Nov 30, stably sorted by priority.
    let (status, recs) = server
        .get(&format!(
            "/api/analytics/operator/op_t/recommendations?as_of={AS_OF}"
        ))
        .await;
    assert_eq!(status, 200, "{recs}");
    let recs = recs["recommendations"].as_array().unwrap();
    let got: Vec<(&str, u64, &str, &str)> = recs
        .iter()
        .map(|r| {
            (
                r["recommendation_type"].as_str().unwrap(),
                r["priority"].as_u64().unwrap(),
                r["title"].as_str().unwrap(),
                r["description"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                "skill_development",
                5,
                "Improve post_exploitation",
                "Current level: novice. Target: intermediate"
            ),
            (
                "skill_development",
                5,
                "Improve stealth_operations",
                "Current level: novice. Target: intermediate"
            ),
            // The last five reconnaissance points (0.74 … 0.83, then 0.6) vary by less than 0.01.
            (
                "advanced_challenge",
                4,
                "Break through reconnaissance plateau",
                "Performance has plateaued at 0.60"
            ),
            (
                "knowledge_retention",
                3,
                "Review exploitation",
                "Last practiced 15 days ago"
            ),
            (
                "knowledge_retention",
                3,
                "Review reconnaissance",
                "Last practiced 9 days ago"
            ),
            (
                "skill_development",
                2,
                "Improve exploitation",
                "Current level: novice. Target: intermediate"
            ),
        ]
    );
    let stamp = 1_795_996_800; // 2026-11-30T00:00:00Z
    assert_eq!(recs[0]["id"], format!("rec_op_t_post_exploitation_{stamp}"));
    assert_eq!(recs[0]["estimated_time_hours"], 2.0);
    assert_eq!(
        recs[0]["suggested_scenarios"],
        json!(["post_exploitation_training_scenario"])
    );
    assert_eq!(recs[2]["estimated_time_hours"], 3.0);
    assert_eq!(recs[3]["created_at"], AS_OF);

    // Learning: the reconnaissance curve in time order, with the assessment last.
    let (status, learning) = server
        .get(&format!(
            "/api/analytics/operator/op_t/learning?skill=reconnaissance&as_of={AS_OF}"
        ))
        .await;
    assert_eq!(status, 200, "{learning}");
    let skill = &learning["skills"][0];
    let curve = &skill["learning_curve"];
    assert_eq!(curve["data_points"].as_array().unwrap().len(), 13);
    assert_eq!(curve["initial_score"], 0.5);
    assert_eq!(curve["current_score"], 0.6);
    assert_eq!(
        curve["data_points"][12],
        json!(["2026-11-20T10:00:00Z", 0.6])
    );
    // Retention at the assessment: 8 whole days after the 0.83 session.
    let retention = 0.6 / recon[11] * (0.5 + 0.5 * (1.0 - 8.0 / 30.0));
    let got = skill["retention"]["retention_score"].as_f64().unwrap();
    assert!((got - retention).abs() < 1e-12, "{got} vs {retention}");
    assert_eq!(skill["retention"]["needs_review"], true);
    assert_eq!(skill["rating"]["games"], 12);
    assert_eq!(skill["plateau_test"]["window"], 10);
    let matrix = &learning["competency_matrix"];
    assert_eq!(
        matrix["domains"]["red_team"],
        json!({"exploitation": "novice", "reconnaissance": "intermediate"})
    );
    assert_eq!(matrix["domain_proficiency"]["red_team"], 0.3);
    let (status, _) = server
        .get("/api/analytics/operator/op_t/learning?skill=cooking")
        .await;
    assert_eq!(status, 404);

    // Benchmarks: set through the API (idempotent with a key), compared with the operator's
    // mean stealth rating and ranked among operators.
    let client = common::client();
    let body =
        json!({"benchmark_id": "stealth_target", "metric_type": "stealth_rating", "value": 0.6});
    let mut receipts = Vec::new();
    for _ in 0..2 {
        let r = client
            .post(server.at("/api/analytics/benchmarks"))
            .header("idempotency-key", "bench-1")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        receipts.push(r.json::<Value>().await.unwrap());
    }
    assert_eq!(receipts[0]["positions"], receipts[1]["positions"]);
    assert_eq!(receipts[1]["duplicates"].as_array().unwrap().len(), 1);
    let position = receipts[0]["positions"][0].as_u64().unwrap();
    let (status, list) = server
        .get(&format!(
            "/api/analytics/benchmarks?min_position={position}"
        ))
        .await;
    assert_eq!(status, 200);
    assert_eq!(list["count"], 1);
    let (status, cmp) = server
        .get("/api/analytics/operator/op_t/benchmarks/stealth_target")
        .await;
    assert_eq!(status, 200, "{cmp}");
    let mean = (recon.iter().sum::<f64>() + 1.4) / 14.0;
    assert!((cmp["metric_value"].as_f64().unwrap() - mean).abs() < 1e-12);
    assert_eq!(cmp["comparison"], "above_benchmark");
    let percentage = (mean - 0.6) / 0.6 * 100.0;
    assert!((cmp["percentage"].as_f64().unwrap() - percentage).abs() < 1e-9);
    // Population: op_t ≈ 0.67 and op_u 0.9.
    assert_eq!(cmp["population"], 2);
    assert_eq!(cmp["percentile_rank"], 50.0);
    let (_, none) = server
        .get("/api/analytics/operator/op_t/benchmarks/nothing")
        .await;
    assert_eq!(none["comparison"], "no_benchmark");
    let r = client
        .post(server.at("/api/analytics/benchmarks"))
        .json(&json!({"benchmark_id": "b", "metric_type": "luck", "value": 1}))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let err: Value = r.json().await.unwrap();
    assert_refused(status, &err, 422, "metric_type:");

    // The CLI against the running server.
    let cli = |args: &[&str]| {
        common::stdout_of(common::command().args(args).args(["--url", &server.url]))
    };
    let plan = cli(&["analytics", "training-plan", "op_t"]);
    assert!(plan.contains("Training Plan: op_t"), "{plan}");
    assert!(plan.contains("1. Improve post_exploitation (Priority: 5)\n   Type: skill_development\n   Current level: novice. Target: intermediate\n   Estimated Time: 2.0 hours\n   Scenarios: post_exploitation_training_scenario"), "{plan}");
    let gaps = cli(&[
        "analytics",
        "skill-gap",
        "op_t",
        "--target-role",
        "red_team_expert",
    ]);
    assert!(
        gaps.contains("Target Role: red_team_expert")
            && gaps.contains("Top Priority: post_exploitation"),
        "{gaps}"
    );
    let session = cli(&["analytics", "session-analysis", "op_t-3"]);
    assert!(
        session.contains("| Duration         | 2.00 hours")
            && session.contains("| Completion Rate  | 50.0%"),
        "{session}"
    );
    let json: Value =
        serde_json::from_str(&cli(&["analytics", "session-analysis", "op_t-3", "--json"])).unwrap();
    assert_eq!(json["session_data"]["score"], recon[2]);
    let compare = cli(&[
        "analytics",
        "benchmark",
        "compare",
        "op_t",
        "stealth_target",
    ]);
    assert!(
        compare.contains("above_benchmark") && compare.contains("50.0 of 2 operators"),
        "{compare}"
    );
    let set = cli(&[
        "analytics",
        "benchmark",
        "set",
        "decisions",
        "--metric-type",
        "decision_quality",
        "--value",
        "0.5",
    ]);
    assert!(set.contains("benchmark decisions set"), "{set}");
    let list: Value =
        serde_json::from_str(&cli(&["analytics", "benchmark", "list", "--json"])).unwrap();
    assert!(list["count"].as_u64().unwrap() >= 1);
}
