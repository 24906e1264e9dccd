//! The aggregator end to end: a history posted through `POST /api/events` to the real binary,
//! then the dashboard, trends, team performance, alerts (with an acknowledgement) and the
//! analytics health read over HTTP, and the `analytics dashboard` command against it. Every
//! number is computed by hand; reads use `as_of` and `min_position`, never sleeps.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking, with the reason

mod common;

use common::{assert_refused, registered, session, Server};
use serde_json::{json, Value};

const AS_OF: &str = "2026-11-10T12:00:00Z";

fn event(id: &str, kind: &str, time: &str, subject: &str, data: Value) -> Value {
    json!({"specversion": "1.0", "id": id, "type": kind, "source": "orchestrator",
           "time": time, "subject": subject, "data": data})
}

fn usage(id: &str, time: &str, cost: f64) -> Value {
    event(
        id,
        "ats.llm.usage",
        time,
        "op_001",
        json!({"model": "openai/gpt-4o", "profile_id": "op_001", "session_id": "op_001-llm",
               "task_type": "reconnaissance", "input_tokens": 1000, "output_tokens": 100,
               "cost": cost}),
    )
}

/// Ada (op_001): sessions starting 11-01..11-04, 2 h, 0.85; $3 on 11-09 and $1 on 11-10
/// against a $3.50 monthly budget. Grace (op_002): one 2 h session starting 11-10 scoring 0.4,
/// and one started and still running.
fn history() -> Vec<Value> {
    let mut events = vec![
        registered("op_001", "Ada"),
        registered("op_002", "Grace"),
        event(
            "budget-1",
            "ats.budget.set",
            "2026-11-01T00:00:00Z",
            "op_001",
            json!({"scope": "profile", "entity_id": "op_001", "amount": 3.5, "period": "monthly"}),
        ),
    ];
    for n in 0..4 {
        events.push(session("op_001", n, 0.85, &["reconnaissance"]));
    }
    events.push(session("op_002", 9, 0.4, &["threat_detection"]));
    events.push(event(
        "op_002-live-start",
        "ats.session.started",
        "2026-11-10T11:00:00Z",
        "op_002",
        json!({"session_id": "op_002-live", "operator_id": "op_002",
               "scenario_id": "pentest_001", "start_time": "2026-11-10T11:00:00Z"}),
    ));
    events.push(usage("u-1", "2026-11-09T10:00:00Z", 3.0));
    events.push(usage("u-2", "2026-11-10T10:30:00Z", 1.0));
    events
}

fn close(value: &Value, expected: f64) {
    let v = value.as_f64().unwrap_or(f64::NAN);
    assert!((v - expected).abs() < 1e-9, "{value} != {expected}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_trends_alerts_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    server.ready().await;
    let (status, receipt) = server.post_events(&Value::Array(history())).await;
    assert_eq!(status, 200, "{receipt}");
    let head = common::last_position(&receipt);
    let at = format!("as_of={AS_OF}&min_position={head}");

    let d = server
        .get_ok(&format!("/api/analytics/dashboard?{at}"))
        .await;
    let s = &d["summary"];
    assert_eq!(s["active_sessions"], 1);
    close(&s["today_training_hours"], 2.0);
    close(&s["week_cost"], 4.0);
    assert_eq!(s["total_operators"], 2);
    assert_eq!(s["total_achievements"], 2);
    close(&s["average_operator_level"], 2.0);
    // 11-04 (Ada, success) and 11-10 (Grace, failure).
    close(&s["success_rate_7d"], 50.0);
    // $4 / 2 sessions = $2: not above $2.
    assert_eq!(s["cost_efficiency_trend"], "stable");
    assert_eq!(s["last_updated"], AS_OF);
    let xp: Vec<(&str, u64)> = d["xp_leaderboard"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["operator_id"].as_str().unwrap(),
                e["xp"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(xp, [("op_001", 100), ("op_002", 100)]);
    assert_eq!(
        d["cost_trend_7d"]["data_points"],
        json!([{"date": "2026-11-09", "cost": 3.0}, {"date": "2026-11-10", "cost": 1.0}])
    );
    assert_eq!(
        d["performance_trend_7d"]["data_points"],
        json!([{"date": "2026-11-04", "average_score": 0.85, "session_count": 1},
               {"date": "2026-11-10", "average_score": 0.4, "session_count": 1}])
    );
    assert_eq!(d["performance_trend_7d"]["trend"], "declining");
    // $3 crosses 75 % of $3.50; $4 crosses 90 % and 100 % at 10:30; Grace's 0.4 < 0.6 since
    // her session ended at 10:00 (by priority, then time).
    let kinds: Vec<(&str, &str)> = d["active_alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["alert_type"].as_str().unwrap(),
                a["priority"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("budget_warning", "critical"),
            ("performance_issue", "high"),
            ("budget_warning", "high"),
            ("budget_warning", "medium")
        ]
    );
    assert_eq!(d["critical_alerts"].as_array().unwrap().len(), 1);
    assert_eq!(
        (&d["active_alerts_total"], &d["critical_alerts_total"]),
        (&json!(4), &json!(1))
    );

    // Trends honour period_days and operator_id.
    let t = server
        .get_ok(&format!(
            "/api/analytics/trends?operator_id=op_001&period_days=30&{at}"
        ))
        .await;
    assert_eq!(t["period_days"], 30);
    assert_eq!(t["performance_trend"]["trend"], "stable");
    assert_eq!(
        t["performance_trend"]["data_points"]
            .as_array()
            .unwrap()
            .len(),
        4
    );
    assert_eq!(t["cost_trend"]["trend"], "decreasing");
    close(&t["cost_trend"]["total_cost"], 4.0);
    let one = server
        .get_ok(&format!("/api/analytics/trends?period_days=1&{at}"))
        .await;
    assert_eq!(one["cost_trend"]["trend"], "insufficient_data");
    assert_eq!(
        one["cost_trend"]["data_points"].as_array().unwrap().len(),
        1
    );
    let (status, body) = server.get("/api/analytics/trends?period_days=0").await;
    assert_eq!(status, 400);
    assert!(body["message"]
        .as_str()
        .unwrap()
        .starts_with("period_days:"));

    // Alerts: filters, a bad priority, acknowledgement.
    let critical = server
        .get_ok(&format!("/api/analytics/alerts?priority=critical&{at}"))
        .await;
    assert_eq!(critical["count"], 1);
    let grace = server
        .get_ok(&format!("/api/analytics/alerts?operator_id=op_002&{at}"))
        .await;
    assert_eq!(grace["count"], 1);
    let (status, body) = server.get("/api/analytics/alerts?priority=urgent").await;
    assert_refused(status, &body, 400, "priority:");
    let id = grace["alerts"][0]["id"].as_str().unwrap().to_owned();
    let (status, body) = server
        .post_json(
            &format!("/api/analytics/alerts/{id}/acknowledge?as_of={AS_OF}"),
            &json!({"by": "lead"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "success");
    assert_eq!(body["alert_id"], id.as_str());
    let position = body["position"].as_u64().unwrap();
    let after = server
        .get_ok(&format!(
            "/api/analytics/alerts?as_of={AS_OF}&min_position={position}"
        ))
        .await;
    assert_eq!(after["count"], 3);
    // Acknowledging again changes nothing; an unknown alert is 404.
    let (status, _) = server
        .post_json(
            &format!("/api/analytics/alerts/{id}/acknowledge?as_of={AS_OF}"),
            &json!({"by": "lead"}),
        )
        .await;
    assert_eq!(status, 200);
    let (status, body) = server
        .post_json("/api/analytics/alerts/nope/acknowledge", &json!({}))
        .await;
    assert_eq!(status, 404, "{body}");

    // Team performance, health, refresh.
    let team = server
        .get_ok(&format!(
            "/api/analytics/team/performance?min_position={head}"
        ))
        .await;
    assert_eq!(team["team_size"], 2);
    assert_eq!(team["aggregate_stats"]["total_sessions"], 5);
    close(&team["aggregate_stats"]["total_hours"], 10.0);
    assert_eq!(team["unknown_operator_ids"], json!([]));
    let health = server.get_ok("/api/analytics/health").await;
    assert_eq!(health["status"], "healthy");
    assert_eq!(health["components"]["analytics_aggregator"], "operational");
    assert_eq!(health["stats"]["total_operators"], 2);
    assert_eq!(health["stats"]["total_sessions"], 5);
    assert_eq!(health["stats"]["total_metrics"], 5);
    // Counted as the alerts list counts them (both as of now): Grace's low score holds.
    let now = server.get_ok("/api/analytics/alerts").await;
    assert_eq!(health["stats"]["active_alerts"], now["count"], "{now}");
    assert!(now["count"].as_u64().unwrap() >= 1, "{now}");
    let (status, body) = server
        .post_json("/api/analytics/dashboard/refresh", &json!({}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["message"], "Dashboard cache refreshed");
    let openapi = server.get_ok("/api/openapi.json").await;
    for path in [
        "/api/analytics/dashboard",
        "/api/analytics/dashboard/refresh",
        "/api/analytics/trends",
        "/api/analytics/team/performance",
        "/api/analytics/alerts",
        "/api/analytics/alerts/{alert_id}/acknowledge",
        "/api/analytics/health",
    ] {
        assert!(openapi["paths"][path].is_object(), "{path} not documented");
    }

    // The CLI against the server: the summary and JSON.
    let url = server.url.clone();
    let (ok, out, err) = common::run_cli(
        &["analytics", "dashboard", "--as-of", AS_OF, "--url", &url],
        dir.path(),
    );
    assert!(ok, "{err}");
    for line in [
        "ATS MAFIA Analytics Dashboard",
        "  Active Sessions: 1",
        "  This Week's Cost: $4.00",
        "  7-Day Success Rate: 50%",
        "  1. Ada - 100 XP (Level 2)",
        "  2. Grace - 100 XP (Level 2)",
        "  2026-11-10  sessions   1  avg score 0.400  cost $1.00",
        "Active Alerts: 3",
        "⚠ Critical Alerts: 1",
    ] {
        assert!(out.contains(line), "missing {line:?} in\n{out}");
    }
    let (ok, out, err) = common::run_cli(
        &[
            "analytics",
            "dashboard",
            "--as-of",
            AS_OF,
            "--json",
            "--url",
            &url,
        ],
        dir.path(),
    );
    assert!(ok, "{err}");
    let json: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["summary"]["week_cost"], 4.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn team_performance_without_operators_is_404() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    server.ready().await;
    let (status, body) = server.get("/api/analytics/team/performance").await;
    assert_eq!(status, 404);
    assert_eq!(body["message"], "No operators found");
}

#[test]
fn dashboard_cli_reads_the_local_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("history.ndjson");
    let lines: Vec<String> = history().iter().map(Value::to_string).collect();
    std::fs::write(&file, lines.join("\n")).unwrap();
    let data = dir.path().join("data");
    let (ok, _, err) = common::run_cli(&["import", file.to_str().unwrap()], &data);
    assert!(ok, "{err}");
    let (ok, out, err) = common::run_cli(
        &["analytics", "dashboard", "--as-of", AS_OF, "--json"],
        &data,
    );
    assert!(ok, "{err}");
    let d: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(d["summary"]["active_sessions"], 1);
    assert_eq!(d["summary"]["week_cost"], 4.0);
    assert_eq!(d["active_alerts"].as_array().unwrap().len(), 4);
}

/// The value of a counter on `/metrics` (its one labelled line).
async fn counter(server: &Server, name: &str) -> u64 {
    let metrics = server.get_text("/metrics").await;
    metrics
        .lines()
        .find(|line| line.starts_with(&format!("{name}{{")))
        .and_then(|line| line.rsplit(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {metrics}"))
}

/// After a start over a history with spend, the server reads today's anomaly baselines (every
/// series' buckets of the 28 days before today's window) on its own once the costs projector
/// is live, for the dashboard's window and the anomalies endpoint's default one, so the first
/// such requests of the day find them cached instead of paying for them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_dashboard_and_anomalies_after_a_start_find_their_baselines_read() {
    const BASELINES: &str = "ats_anomaly_baselines_computed_total";
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), &[]);
    server.ready().await;
    let now = chrono::Utc::now();
    let spend: Vec<Value> = (0..20)
        .map(|back| {
            let at = (now - chrono::Duration::days(back)).to_rfc3339();
            usage(&format!("u-{back}"), &at, 1.0 + back as f64 / 10.0)
        })
        .collect();
    let (status, receipt) = server.post_events(&Value::Array(spend)).await;
    assert_eq!(status, 200, "{receipt}");

    // A new process: no baseline is cached.
    server.restart();
    server.ready().await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    // Two spans: the dashboard's day and the endpoint's default week.
    while counter(&server, BASELINES).await < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "the baselines were never read before a request asked for them"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let warmed = counter(&server, BASELINES).await;
    let day = chrono::Utc::now().date_naive();
    let dashboard = server.get_ok("/api/analytics/dashboard").await;
    assert!(dashboard["summary"].is_object(), "{dashboard}");
    let anomalies = server.get_ok("/api/analytics/cost/anomalies").await;
    assert!(anomalies["spend_anomalies"].is_array(), "{anomalies}");
    // Past midnight UTC the dashboard asks about a new day, whose baseline nobody read yet.
    if chrono::Utc::now().date_naive() == day {
        assert_eq!(counter(&server, BASELINES).await, warmed);
    }
}
