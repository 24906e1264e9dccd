//! Progress end to end: a realistic history posted through `POST /api/events` to the real
//! binary, then XP, levels, achievements, goals, certifications, paths and leaderboards read
//! over HTTP, field by field. Reads use `min_position`, never sleeps.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking, with the reason

mod common;

use common::{assert_refused, session, Server};
use serde_json::{json, Value};

fn event(id: &str, kind: &str, time: &str, subject: Option<&str>, data: Value) -> Value {
    let mut e = json!({"specversion": "1.0", "id": id, "type": kind, "source": "orchestrator",
                       "time": time, "data": data});
    if let Some(subject) = subject {
        e["subject"] = json!(subject);
    }
    e
}

fn registered(op: &str, name: &str, team: &str) -> Value {
    event(
        &format!("{op}-reg"),
        "ats.operator.registered",
        "2026-10-01T00:00:00Z",
        Some(op),
        json!({"operator_id": op, "name": name, "team": team}),
    )
}

async fn post(server: &Server, events: Vec<Value>) -> u64 {
    let (status, receipt) = server.post_events(&Value::Array(events)).await;
    assert_eq!(status, 200, "{receipt}");
    common::last_position(&receipt)
}

fn ids(entries: &Value) -> Vec<&str> {
    entries
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["operator_id"].as_str().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    server.ready().await;

    // Ada: 10 two-hour sessions (days 1..=10), then 300 XP by hand and a certification.
    // Grace: 3 sessions. Linus: registered only.
    let mut history = vec![
        registered("op_001", "Ada", "red"),
        registered("op_002", "Grace", "blue"),
        registered("op_003", "Linus", "red"),
    ];
    for n in 0..10 {
        history.push(session(
            "op_001",
            n,
            0.85,
            &["reconnaissance", "exploitation"],
        ));
    }
    for n in 0..3 {
        history.push(session("op_002", n, 0.5, &["threat_detection"]));
    }
    history.push(event(
        "xp-1",
        "ats.xp.awarded",
        "2026-11-15T00:00:00Z",
        Some("op_001"),
        json!({"operator_id": "op_001", "amount": 300, "reason": "mentoring"}),
    ));
    history.push(event(
        "cert-1",
        "ats.certification.awarded",
        "2026-11-16T09:30:00Z",
        Some("op_001"),
        json!({"operator_id": "op_001", "certification_id": "cert_red_team_foundation"}),
    ));
    history.push(event(
        "goal-1",
        "ats.goal.created",
        "2026-11-02T00:00:00Z",
        Some("op_002"),
        json!({"goal_id": "g-1", "operator_id": "op_002", "name": "Four sessions",
               "target_value": 4, "unit": "sessions", "deadline": "2026-11-20T00:00:00Z"}),
    ));
    history.push(event(
        "goal-1-p",
        "ats.goal.progressed",
        "2026-11-10T00:00:00Z",
        None,
        json!({"goal_id": "g-1", "value": 2}),
    ));
    let last = post(&server, history).await;

    let p = server.get_ok(&format!("/api/analytics/operator/op_001/progress?min_position={last}&as_of=2026-11-20T00:00:00Z"),
    )
    .await;
    assert_eq!(p["operator_id"], "op_001");
    assert_eq!(p["name"], "Ada");
    let summary = &p["summary"];
    // 100 (first) + 50 (10 hours) + 100 (10 sessions) + 300 by hand.
    assert_eq!(summary["total_xp"], 550);
    assert_eq!(summary["level"], 3);
    assert_eq!(summary["achievements_count"], 3);
    assert_eq!(
        summary["certifications"],
        json!(["cert_red_team_foundation"])
    );
    assert_eq!(summary["active_goals"], 0);
    assert_eq!(summary["total_sessions"], 10);
    assert_eq!(summary["total_hours"], 20.0);
    let achievements = p["achievements"].as_array().unwrap();
    let unlocked: Vec<(&str, &str, u64)> = achievements
        .iter()
        .map(|a| {
            (
                a["milestone_id"].as_str().unwrap(),
                a["unlocked_at"].as_str().unwrap(),
                a["xp_earned"].as_u64().unwrap(),
            )
        })
        .collect();
    // Each at the time of the session that completed it: the 1st, the 5th (10 h), the 10th.
    assert_eq!(
        unlocked,
        [
            ("milestone_first_session", "2026-11-01T10:00:00Z", 100),
            ("milestone_10_hours", "2026-11-05T10:00:00Z", 50),
            ("milestone_10_sessions", "2026-11-10T10:00:00Z", 100),
        ]
    );
    assert_eq!(achievements[0]["name"], "First Steps");
    assert_eq!(
        achievements[0]["description"],
        "Complete your first training session"
    );
    assert_eq!(achievements[0]["category"], "skill_based");
    assert_eq!(achievements[0]["operator_id"], "op_001");
    let path = &p["progress_paths"]["path_red_team"];
    assert_eq!(path["path_name"], "Red Team Operator");
    // Ten sessions at 0.85: recon and exploitation are expert; 550 XP; 20 sessions needed next.
    assert_eq!(path["current_stage"], "advanced");
    assert_eq!(path["next_stage"], "expert");
    assert_eq!(path["total_stages"], 4);
    assert_eq!(path["completion_percentage"], 75.0);
    assert_eq!(path["next_requirements"]["min_xp"], 10000);
    assert_eq!(p["certifications"][0]["earned_at"], "2026-11-16T09:30:00Z");
    assert!(p["certifications"][0].get("expires_at").is_none());

    // Eligibility with the seed's messages.
    let e = server
        .get_ok(
            "/api/analytics/operator/op_002/certifications/cert_blue_team_foundation/eligibility",
        )
        .await;
    assert_eq!(e["eligible"], false);
    assert_eq!(
        e["missing_requirements"],
        json!([
            "threat_detection level novice (need intermediate)",
            "Missing skill: incident_response",
            "Need 5 total sessions",
            "Need 500 total XP"
        ])
    );
    let e = server
        .get_ok(
            "/api/analytics/operator/op_001/certifications/cert_red_team_foundation/eligibility",
        )
        .await;
    assert_eq!(
        (e["eligible"].clone(), e["missing_requirements"].clone()),
        (json!(true), json!([]))
    );
    let e = server
        .get_ok("/api/analytics/operator/op_001/certifications/cert_nope/eligibility")
        .await;
    assert_eq!(
        e["missing_requirements"],
        json!(["Certification not found"])
    );
    let (status, _) = server
        .get("/api/analytics/operator/nobody/certifications/cert_red_team_foundation/eligibility")
        .await;
    assert_eq!(status, 404);

    let certs = server.get_ok("/api/analytics/certifications").await;
    assert_eq!(certs["count"], 4);
    assert_eq!(
        certs["certifications"][1]["id"],
        "cert_red_team_professional"
    );
    assert_eq!(certs["certifications"][1]["level"], "professional");
    assert_eq!(
        certs["certifications"][1]["requirements"]["prerequisite_certifications"],
        json!(["cert_red_team_foundation"])
    );
    let earned = server
        .get_ok("/api/analytics/operator/op_001/certifications")
        .await;
    assert_eq!(earned["count"], 1);
    assert_eq!(
        earned["certifications"][0]["certification_id"],
        "cert_red_team_foundation"
    );

    // Goals: the deadline passes at as_of, not by the clock.
    let goals = server
        .get_ok("/api/analytics/operator/op_002/goals?as_of=2026-11-19T00:00:00Z")
        .await;
    assert_eq!(goals["count"], 1);
    let g = &goals["goals"][0];
    assert_eq!(
        (
            g["id"].clone(),
            g["current_value"].clone(),
            g["unit"].clone()
        ),
        (json!("g-1"), json!(2.0), json!("sessions"))
    );
    assert_eq!(g["progress_percentage"], 50.0);
    assert_eq!(g["created_at"], "2026-11-02T00:00:00Z");
    assert_eq!(g["overdue"], false);
    let goals = server
        .get_ok("/api/analytics/operator/op_002/goals?as_of=2026-11-21T00:00:00Z")
        .await;
    assert_eq!(goals["goals"][0]["overdue"], true);

    // A goal created over HTTP: 201, readable at once; then progressed to completion.
    let (status, created) = server.post_json("/api/analytics/operator/op_001/goals",
        &json!({"name": "Level 5", "target_value": 5, "unit": "levels", "deadline": "2099-01-01T00:00:00Z"}),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["operator_id"], "op_001");
    assert_eq!(created["name"], "Level 5");
    assert_eq!(created["description"], "");
    assert_eq!(created["current_value"], 0.0);
    assert_eq!(created["completed_at"], Value::Null);
    let goal_id = created["id"].as_str().unwrap().to_owned();
    let (status, receipt) = server
        .post_json(
            &format!("/api/analytics/goals/{goal_id}/progress"),
            &json!({"value": 5}),
        )
        .await;
    assert_eq!(status, 200, "{receipt}");
    let position = receipt["positions"][0].as_u64().unwrap();
    let goals = server.get_ok(&format!("/api/analytics/operator/op_001/goals?min_position={position}&as_of=2100-01-01T00:00:00Z"),
    )
    .await;
    let g = &goals["goals"][0];
    assert_eq!(
        (g["completed"].clone(), g["overdue"].clone()),
        (json!(true), json!(false))
    );
    assert!(g["completed_at"].is_string(), "{g}");
    // With an Idempotency-Key, a retried POST is the same goal and creates nothing new.
    let mut same = Vec::new();
    for _ in 0..2 {
        let r = common::client()
            .post(server.at("/api/analytics/operator/op_003/goals"))
            .header("idempotency-key", "linus-goal-1")
            .json(&json!({"name": "Once", "target_value": 1}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 201);
        same.push(r.json::<Value>().await.unwrap()["id"].clone());
    }
    assert_eq!(same[0], same[1]);
    let linus = server.get_ok("/api/analytics/operator/op_003/goals").await;
    assert_eq!(linus["count"], 1);
    let open = server
        .get_ok("/api/analytics/operator/op_001/goals?include_completed=false")
        .await;
    assert_eq!(open["count"], 0);
    // Bad bodies name the field.
    let (status, err) = server
        .post_json(
            "/api/analytics/operator/op_001/goals",
            &json!({"target_value": 5}),
        )
        .await;
    assert_refused(status, &err, 422, "name");
    let (status, err) = server
        .post_json(
            "/api/analytics/operator/op_001/goals",
            &json!({"name": "x", "target_value": -1}),
        )
        .await;
    assert_eq!(status, 422, "{err}");
    assert!(
        err["message"].as_str().unwrap().contains("target_value"),
        "{err}"
    );

    // A custom milestone applies from its position on: Grace qualifies with her 5th session;
    // Ada, already past 5, on her next session.
    let (status, receipt) = server
        .post_json(
            "/api/analytics/milestones",
            &json!({"id": "m_five", "name": "Five", "milestone_type": "session_count",
                "requirements": {"sessions": 5}, "xp_reward": 1000}),
        )
        .await;
    assert_eq!(status, 200, "{receipt}");
    let last = post(
        &server,
        vec![
            session("op_002", 3, 0.5, &["threat_detection"]),
            session("op_002", 4, 0.5, &["threat_detection"]),
        ],
    )
    .await;
    let p = server
        .get_ok(&format!(
            "/api/analytics/operator/op_001/progress?min_position={last}"
        ))
        .await;
    assert_eq!(p["summary"]["achievements_count"], 3);
    let p = server
        .get_ok("/api/analytics/operator/op_002/progress")
        .await;
    // The 5th session also makes 10 hours: defaults are checked first, in the seed's order.
    assert_eq!(p["achievements"][1]["milestone_id"], "milestone_10_hours");
    assert_eq!(p["achievements"][2]["milestone_id"], "m_five");
    assert_eq!(p["achievements"][2]["unlocked_at"], "2026-11-05T10:00:00Z");
    assert_eq!(p["summary"]["total_xp"], 1150);
    assert_eq!(p["summary"]["level"], 4);
    let last = post(
        &server,
        vec![session("op_001", 10, 0.85, &["reconnaissance"])],
    )
    .await;
    let p = server
        .get_ok(&format!(
            "/api/analytics/operator/op_001/progress?min_position={last}"
        ))
        .await;
    assert_eq!(p["achievements"][3]["milestone_id"], "m_five");
    assert_eq!(p["achievements"][3]["unlocked_at"], "2026-11-11T10:00:00Z");
    assert_eq!(p["summary"]["total_xp"], 1550);
    let milestones = server.get_ok("/api/analytics/milestones").await;
    assert_eq!(milestones["count"], 10);
    assert_eq!(milestones["milestones"][9]["id"], "m_five");

    // Leaderboards: the seed's shape, ties by operator id, team filter, one operator's rank.
    let lb = server.get_ok("/api/analytics/leaderboard").await;
    assert_eq!(lb["type"], "xp");
    assert_eq!(
        lb["entries"],
        json!([
            {"rank": 1, "operator_id": "op_001", "name": "Ada", "team": "red", "xp": 1550, "level": 4},
            {"rank": 2, "operator_id": "op_002", "name": "Grace", "team": "blue", "xp": 1150, "level": 4},
            {"rank": 3, "operator_id": "op_003", "name": "Linus", "team": "red", "xp": 0, "level": 1},
        ])
    );
    let lb = server
        .get_ok("/api/analytics/leaderboard?type=level&limit=2")
        .await;
    assert_eq!(ids(&lb["entries"]), ["op_001", "op_002"]);
    assert_eq!(lb["entries"][1]["score"], 4.0);
    let lb = server
        .get_ok("/api/analytics/leaderboard?type=activity")
        .await;
    assert_eq!(lb["entries"][0]["total_sessions"], 11);
    assert_eq!(lb["entries"][0]["total_hours"], 22.0);
    assert_eq!(lb["entries"][1]["total_hours"], 10.0);
    let lb = server
        .get_ok("/api/analytics/leaderboard?type=average_score")
        .await;
    assert_eq!(ids(&lb["entries"]), ["op_001", "op_002"]);
    let lb = server
        .get_ok("/api/analytics/leaderboard?type=xp&team=red&operator_id=op_003")
        .await;
    assert_eq!(ids(&lb["entries"]), ["op_001", "op_003"]);
    assert_eq!(lb["operator"]["rank"], 2);
    let lb = server
        .get_ok("/api/analytics/leaderboard?type=achievements&limit=1")
        .await;
    assert_eq!(lb["entries"][0]["achievements_count"], 4);
    let lb = server
        .get_ok("/api/analytics/leaderboard?type=skill&skill_name=reconnaissance")
        .await;
    assert_eq!(lb["type"], "skill");
    assert_eq!(lb["skill_name"], "reconnaissance");
    assert_eq!(ids(&lb["entries"]), ["op_001"]);
    let row = &lb["entries"][0];
    assert_eq!(
        (row["proficiency"].clone(), row["proficiency_score"].clone()),
        (json!("expert"), json!(4))
    );
    assert!((row["average_score"].as_f64().unwrap() - 0.85).abs() < 1e-12);
    assert_eq!(row["success_rate"], 1.0);
    let (status, err) = server.get("/api/analytics/leaderboard?type=skill").await;
    assert_eq!(status, 400);
    assert_eq!(err["message"], "skill_name: required for skill leaderboard");
    let (status, err) = server.get("/api/analytics/leaderboard?type=bogus").await;
    assert_eq!(status, 400);
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .starts_with("type: Invalid leaderboard type: bogus"),
        "{err}"
    );

    let (status, err) = server.get("/api/analytics/operator/nobody/progress").await;
    assert_eq!(status, 404);
    assert!(err["message"].as_str().unwrap().contains("nobody"));
}

fn cli(args: &[&str]) -> Value {
    let output = common::command().args(args).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{args:?}: {}{stdout}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(&stdout).unwrap_or_else(|_| Value::String(stdout.into_owned()))
}

/// The write commands go through the server; the read commands give the same answer from the
/// server and, once it is stopped, from the local data directory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_writes_through_the_server_and_reads_locally() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), &[]);
    server.ready().await;
    let url = server.url.clone();
    let mut history = vec![
        registered("op_a", "Ada", "red"),
        registered("op_b", "Bo", "blue"),
    ];
    for n in 0..5 {
        history.push(session("op_a", n, 0.9, &["reconnaissance", "exploitation"]));
    }
    history.push(session("op_b", 0, 0.5, &[]));
    post(&server, history).await;

    let receipt = cli(&[
        "analytics",
        "milestone",
        "register",
        "m_two",
        "--name",
        "Two",
        "--type",
        "session_count",
        "--requirements",
        r#"{"sessions": 2}"#,
        "--xp",
        "400",
        "--json",
        "--url",
        &url,
    ]);
    assert!(receipt["positions"][0].is_u64(), "{receipt}");
    let list = cli(&["analytics", "milestone", "list", "--json", "--url", &url]);
    assert_eq!(list["count"], 10);
    let goal = cli(&[
        "analytics",
        "goal",
        "create",
        "op_a",
        "--name",
        "Ten sessions",
        "--target",
        "10",
        "--unit",
        "sessions",
        "--json",
        "--url",
        &url,
    ]);
    assert_eq!(goal["target_value"], 10.0);
    let goal_id = goal["id"].as_str().unwrap().to_owned();
    cli(&[
        "analytics",
        "goal",
        "progress",
        &goal_id,
        "--value",
        "6",
        "--json",
        "--url",
        &url,
    ]);
    let receipt = cli(&[
        "analytics",
        "certification",
        "award",
        "op_a",
        "cert_red_team_foundation",
        "--json",
        "--url",
        &url,
    ]);
    let position = receipt["positions"][0].as_u64().unwrap();
    let check = cli(&[
        "analytics",
        "certification",
        "check",
        "op_b",
        "cert_red_team_foundation",
        "--json",
        "--url",
        &url,
    ]);
    assert_eq!(
        check["missing_requirements"][0],
        "Missing skill: reconnaissance"
    );
    // Read through the server after the last write.
    let (status, _) = server
        .get(&format!(
            "/api/analytics/leaderboard?min_position={position}"
        ))
        .await;
    assert_eq!(status, 200);
    let remote = cli(&["analytics", "leaderboard", "--json", "--url", &url]);
    assert_eq!(ids(&remote["entries"]), ["op_a", "op_b"]);
    // Ada: first session (100) + 10 hours (50) + m_two (400), unlocked by her certification
    // award (her next qualifying event after the registration); Bo: first session only.
    assert_eq!(remote["entries"][0]["xp"], 550);
    assert_eq!(remote["entries"][1]["xp"], 100);
    let progress = cli(&["analytics", "progress", "op_a", "--json", "--url", &url]);
    assert_eq!(
        progress["summary"]["certifications"],
        json!(["cert_red_team_foundation"])
    );
    assert_eq!(progress["goals"][0]["current_value"], 6.0);
    let goals = cli(&["analytics", "goal", "list", "op_a", "--json", "--url", &url]);
    assert_eq!(goals["goals"][0]["progress_percentage"], 60.0);

    let (_, status) = server.get("/api/admin/projectors").await;
    let served = status["projectors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "progress_v2")
        .cloned()
        .unwrap();
    server.stop();
    let data = dir.path().to_str().unwrap();
    // Replaying the log from position 0 gives the same tree: the same digest.
    let replayed = cli(&["replay", "--json", "--data", data]);
    let replayed = replayed["projectors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["projector"] == "progress_v2")
        .cloned()
        .unwrap();
    assert_eq!(replayed["digest"], served["digest"]);
    assert_eq!(replayed["position"], served["position"]);
    let local = cli(&["analytics", "leaderboard", "--json", "--data", data]);
    assert_eq!(local, remote);
    let table = cli(&["analytics", "leaderboard", "-c", "activity", "--data", data]);
    let table = table.as_str().unwrap();
    assert!(table.contains("Leaderboard - ACTIVITY"), "{table}");
    assert!(
        table.contains("| 1    | Ada      | 5        | 10.0  |"),
        "{table}"
    );
    let skill = cli(&[
        "analytics",
        "leaderboard",
        "-c",
        "skill",
        "-s",
        "reconnaissance",
        "--data",
        data,
    ]);
    let skill = skill.as_str().unwrap();
    assert!(skill.contains("Skill: reconnaissance"), "{skill}");
    assert!(
        skill.contains("| 1    | Ada      | novice      | 0.90      | 100.0%       |"),
        "{skill}"
    );
    let mine = cli(&[
        "analytics",
        "certification",
        "list",
        "op_a",
        "--json",
        "--data",
        data,
    ]);
    assert_eq!(mine["count"], 1);
}

/// A custom leaderboard category fed by `ats.leaderboard.scored`: the last score stands,
/// ties break by operator id, a team filter applies, and the category is required.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_leaderboard_categories_are_fed_by_events() {
    let dir = tempfile::tempdir().unwrap();
    let server = common::Server::start(dir.path(), &[]);
    server.ready().await;
    let scored = |id: &str, op: &str, score: f64| {
        serde_json::json!({"specversion": "1.0", "id": id, "type": "ats.leaderboard.scored",
            "source": "ctf", "time": "2026-11-01T00:00:00Z", "subject": op,
            "data": {"category": "ctf_points", "operator_id": op, "score": score}})
    };
    let mut events = vec![
        common::registered("op_a", "Ann"),
        common::registered("op_b", "Ben"),
        scored("s1", "op_a", 50.0),
        scored("s2", "op_b", 80.0),
        scored("s3", "op_c", 80.0),
        scored("s4", "op_a", 120.0),
    ];
    events.push(
        serde_json::json!({"specversion": "1.0", "id": "s5", "type": "ats.leaderboard.scored",
        "source": "ctf", "time": "2026-11-01T00:00:00Z",
        "data": {"category": "other", "operator_id": "op_b", "score": 1.0}}),
    );
    let (status, receipt) = server.post_events(&serde_json::Value::Array(events)).await;
    assert_eq!(status, 200, "{receipt}");
    let head = receipt["positions"][6].as_u64().unwrap();
    let (status, board) = server
        .get(&format!(
            "/api/analytics/leaderboard?type=custom&category=ctf_points&min_position={head}"
        ))
        .await;
    assert_eq!(status, 200, "{board}");
    let rows: Vec<(u64, &str, f64)> = board["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["rank"].as_u64().unwrap(),
                e["operator_id"].as_str().unwrap(),
                e["score"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [(1, "op_a", 120.0), (2, "op_b", 80.0), (3, "op_c", 80.0)]
    );
    assert_eq!(board["entries"][0]["name"], "Ann");
    let (_, red) = server
        .get("/api/analytics/leaderboard?type=custom&category=ctf_points&team=red")
        .await;
    assert_eq!(
        red["entries"].as_array().unwrap().len(),
        2,
        "op_a and op_b are red: {red}"
    );
    let out = common::stdout_of(common::command().args([
        "analytics",
        "leaderboard",
        "--custom",
        "ctf_points",
        "--json",
        "--url",
        &server.url,
    ]));
    let cli: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(cli["entries"][0]["operator_id"], "op_a");
    let (status, err) = server.get("/api/analytics/leaderboard?type=custom").await;
    assert_refused(status, &err, 400, "category:");
    let (status, bad) = server.post_events(&scored("s6", "op_a", -1.0)).await;
    assert_refused(status, &bad, 422, "data.score:");
}
