//! Ingest → query through the real server over TCP, and every kind of bad input.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking, with the reason

mod common;

use common::{assert_refused, registered, session, Server};
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_then_query_performance_over_tcp() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    server.ready().await;

    let mut batch = vec![registered("op_001", "Ada")];
    for n in 0..10 {
        batch.push(session(
            "op_001",
            n,
            0.85,
            &["reconnaissance", "exploitation"],
        ));
    }
    let (status, receipt) = server.post_events(&Value::Array(batch)).await;
    assert_eq!(status, 200, "{receipt}");
    let positions = receipt["positions"].as_array().unwrap();
    assert_eq!(positions.len(), 11);
    assert_eq!(receipt["duplicates"], json!([]));
    let last = positions.last().unwrap().as_u64().unwrap();

    let (status, perf) = server
        .get(&format!("/api/analytics/operator/op_001/performance?min_position={last}&as_of=2026-11-12T00:00:00Z"))
        .await;
    assert_eq!(status, 200, "{perf}");
    let profile = &perf["profile"];
    assert_eq!(profile["name"], "Ada");
    assert_eq!(profile["total_sessions"], 10);
    assert_eq!(profile["total_hours"], 20.0);
    let recon = &profile["skills"]["reconnaissance"];
    assert_eq!(recon["practice_count"], 10);
    assert_eq!(recon["success_rate"], 1.0);
    // 10 practices at 0.85 with full success: expert (avg ≥ 0.8 and success ≥ 0.8).
    assert_eq!(recon["proficiency"], "expert");
    assert_eq!(recon["last_practiced"], "2026-11-10T10:00:00Z");
    assert_eq!(profile["skill_level"], "expert");
    let analysis = &perf["analysis"];
    assert_eq!(analysis["total_sessions"], 10);
    assert_eq!(analysis["total_metrics"], 10);
    // First-practice order, the seed's dict order.
    assert_eq!(
        analysis["strengths"],
        json!(["reconnaissance", "exploitation"])
    );
    assert_eq!(analysis["weaknesses"], json!([]));
    assert_eq!(analysis["learning_velocity"], 0.0);
    // Ten equal scores of 0.85: variance 0 and mean < 0.9 is the seed's plateau.
    assert_eq!(analysis["plateau_detected"], true);
    assert_eq!(analysis["trends"]["stealth_rating"]["trend"], "neutral");
    // Sessions end on days 1..=10 at 10:00; the 7-day window before 11-12T00:00 holds days 5..=10.
    assert_eq!(analysis["trends"]["stealth_rating"]["sample_size"], 6);

    // Re-sending the batch changes nothing and says so.
    let batch: Vec<Value> = (0..10)
        .map(|n| session("op_001", n, 0.85, &["reconnaissance", "exploitation"]))
        .collect();
    let (status, again) = server.post_events(&Value::Array(batch)).await;
    assert_eq!(status, 200);
    assert_eq!(again["duplicates"].as_array().unwrap().len(), 10);
    assert_eq!(server.head().await, last);

    let (status, sessions) = server
        .get("/api/analytics/operator/op_001/sessions?limit=3")
        .await;
    assert_eq!(status, 200);
    assert_eq!(sessions["count"], 3);
    assert_eq!(
        sessions["sessions"][0]["session_data"]["session_id"],
        "op_001-sess-9"
    );
    assert_eq!(sessions["sessions"][0]["metrics"]["completion_rate"], 0.8);

    let (status, analysis) = server
        .get("/api/analytics/session/op_001-sess-3/analysis")
        .await;
    assert_eq!(status, 200);
    assert_eq!(analysis["session_id"], "op_001-sess-3");
    // 10 objectives × 300 s / 7200 s.
    let time_eff = analysis["metrics"]["time_efficiency"].as_f64().unwrap();
    assert!((time_eff - 3000.0 / 7200.0).abs() < 1e-12);
    // min(1, 0.85 / max(0.01, 2.5)).
    let cost_eff = analysis["metrics"]["cost_efficiency"].as_f64().unwrap();
    assert!((cost_eff - 0.34).abs() < 1e-12, "{cost_eff}");

    let (status, missing) = server
        .get("/api/analytics/operator/nobody/performance")
        .await;
    assert_eq!(status, 404);
    assert_eq!(missing["error"], "not_found");
    assert!(missing["message"].as_str().unwrap().contains("nobody"));
    let (status, _) = server.get("/api/analytics/session/nothing/analysis").await;
    assert_eq!(status, 404);
}

/// Each bad request gets a clear 4xx naming what is wrong, and the log is unchanged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_and_nothing_is_appended() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    server.ready().await;
    let (status, _) = server
        .post_events(&json!([session("op_9", 1, 0.5, &["recon"])]))
        .await;
    assert_eq!(status, 200);
    let head = server.head().await;

    let good = session("op_9", 2, 0.5, &["recon"]);
    let mut cases: Vec<(&str, Vec<u8>, u16, &str, &str)> = Vec::new();
    cases.push((
        "malformed JSON",
        b"{\"specversion\": ".to_vec(),
        400,
        "malformed_json",
        "malformed JSON",
    ));
    let mut unknown = good.clone();
    unknown["type"] = json!("ats.session.exploded");
    cases.push((
        "unknown kind",
        json!([good.clone(), unknown]).to_string().into_bytes(),
        422,
        "invalid_event",
        "events[1].type: unknown event type",
    ));
    let mut missing = good.clone();
    missing["data"].as_object_mut().unwrap().remove("score");
    cases.push((
        "missing field",
        json!([missing]).to_string().into_bytes(),
        422,
        "invalid_event",
        "events[0].data.score: is required",
    ));
    let mut wrong = good.clone();
    wrong["data"]["success"] = json!("yes");
    cases.push((
        "wrong type",
        json!([good.clone(), wrong]).to_string().into_bytes(),
        422,
        "invalid_event",
        "events[1].data.success",
    ));
    let mut range = good.clone();
    range["data"]["score"] = json!(1.5);
    cases.push((
        "score out of range",
        range.to_string().into_bytes(),
        422,
        "invalid_event",
        "data.score: must be within 0..=1",
    ));
    let mut backwards = good.clone();
    backwards["data"]["end_time"] = json!("2026-10-01T00:00:00Z");
    cases.push((
        "end before start",
        json!([backwards]).to_string().into_bytes(),
        422,
        "invalid_event",
        "events[0].data.end_time",
    ));
    let mut no_time = good.clone();
    no_time.as_object_mut().unwrap().remove("time");
    cases.push((
        "missing time",
        json!([no_time]).to_string().into_bytes(),
        422,
        "invalid_event",
        "events[0].time: is required",
    ));
    let oversized: Vec<Value> = (0..1001)
        .map(|n| session("op_big", n, 0.5, &["recon"]))
        .collect();
    cases.push((
        "oversized batch",
        Value::Array(oversized).to_string().into_bytes(),
        413,
        "too_large",
        "limit is 1000",
    ));
    cases.push(("empty batch", b"[]".to_vec(), 422, "invalid_event", "empty"));
    let mut conflict = session("op_9", 1, 0.5, &["recon"]);
    conflict["data"]["score"] = json!(0.9);
    cases.push((
        "same id, other content",
        json!([good.clone(), conflict]).to_string().into_bytes(),
        409,
        "conflict",
        "already in the log with different content",
    ));

    for (name, body, status, code, message) in cases {
        let (got, answer) = server.post_raw(body, "application/json").await;
        println!(
            "{name}: {got} {}",
            answer.to_string().chars().take(300).collect::<String>()
        );
        assert_eq!(got, status, "{name}");
        assert_eq!(answer["error"], code, "{name}: {answer}");
        let text = answer["message"].as_str().unwrap_or_default();
        assert!(text.contains(message), "{name}: {text:?} lacks {message:?}");
        assert_eq!(server.head().await, head, "{name} appended something");
    }

    let (status, answer) = server
        .get("/api/analytics/operator/op_9/performance?as_of=yesterday")
        .await;
    assert_refused(status, &answer, 400, "as_of:");
    let (status, answer) = server
        .get("/api/analytics/operator/op_9/sessions?limit=-1")
        .await;
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["message"].as_str().unwrap().contains("limit"),
        "{answer}"
    );
    let (status, answer) = server.get("/api/analytics/nothing-here").await;
    assert_eq!((status, answer["error"].as_str()), (404, Some("not_found")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_documents_are_served() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    server.ready().await;
    let (status, openapi) = server.get("/api/openapi.json").await;
    assert_eq!(status, 200);
    for path in [
        "/api/events",
        "/api/analytics/operator/{id}/performance",
        "/readyz",
        "/metrics",
        "/api/admin/projectors",
    ] {
        assert!(openapi["paths"].get(path).is_some(), "OpenAPI lacks {path}");
    }
    let (status, schema) = server.get("/api/events/schema").await;
    assert_eq!(status, 200);
    assert_eq!(
        schema["properties"]["type"]["enum"]
            .as_array()
            .unwrap()
            .len(),
        ats_events::EventKind::ALL.len()
    );
    let (status, health) = server.get("/healthz").await;
    assert_eq!((status, health["status"].as_str()), (200, Some("ok")));
    let metrics = server.get_text("/metrics").await;
    assert!(
        metrics.contains("ats_projector_position{projector=\"profiles_v3\"} 0"),
        "{metrics}"
    );
    let page = server.get_text("/").await;
    assert!(page.contains("<title>ATS MAFIA analytics</title>"));
}
