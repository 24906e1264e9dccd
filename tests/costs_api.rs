//! Cost analytics end to end: usage posted through `POST /api/events` to the real binary,
//! read back over TCP from the breakdown, summary, budgets, models, optimization and ROI
//! endpoints, field by field.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking, with the reason

mod common;

use common::{last_position, Server};
use serde_json::{json, Value};

/// An `ats.llm.usage` CloudEvent; `extra` is merged into its data.
fn usage(id: &str, time: &str, model: &str, profile: &str, session: &str, extra: Value) -> Value {
    let mut data = json!({
        "model": model, "profile_id": profile, "session_id": session,
        "task_type": "reconnaissance", "input_tokens": 1000, "output_tokens": 500,
        "latency_ms": 120.0
    });
    for (k, v) in extra.as_object().unwrap() {
        data[k] = v.clone();
    }
    json!({"specversion": "1.0", "id": id, "type": "ats.llm.usage", "source": "orchestrator",
           "time": time, "subject": profile, "data": data})
}

fn completed(session: &str, scenario: &str) -> Value {
    json!({"specversion": "1.0", "id": format!("{session}-done"), "type": "ats.session.completed",
           "source": "orchestrator", "time": "2026-11-03T11:00:00Z", "subject": "op_1",
           "data": {"session_id": session, "operator_id": "op_1", "scenario_id": scenario,
                    "start_time": "2026-11-01T09:00:00Z", "end_time": "2026-11-03T11:00:00Z",
                    "duration_seconds": 3600, "success": true, "score": 0.8}})
}

fn close(value: &Value, expected: f64) {
    let got = value
        .as_f64()
        .unwrap_or_else(|| panic!("not a number: {value}"));
    assert!((got - expected).abs() < 1e-9, "{got} != {expected}");
}

/// Asserts a refusal with `status` whose message names `field`.
fn assert_refused((got, body): (u16, Value), status: u16, field: &str) {
    assert_eq!(got, status, "{body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(message.contains(field), "{field} not named: {body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_breakdowns_summary_and_budgets_over_tcp() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    server.ready().await;

    let batch = json!([
        // gpt-4o, 1,000 in / 500 out = $0.0075.
        usage(
            "u1",
            "2026-11-01T10:00:00Z",
            "openai/gpt-4o",
            "op_1",
            "s1",
            json!({})
        ),
        // OpenRouter, 2,000 in / 1,000 out = $0.015, with its own scenario.
        usage(
            "u2",
            "2026-11-02T10:00:00Z",
            "openrouter/openai/gpt-4o",
            "op_2",
            "s2",
            json!({"input_tokens": 2000, "output_tokens": 1000, "scenario_id": "phish_002"})
        ),
        // Not in the registry: stored at $0 and flagged.
        usage(
            "u3",
            "2026-11-02T11:00:00Z",
            "openai/gpt-4",
            "op_2",
            "s2",
            json!({"input_tokens": 100, "output_tokens": 100, "success": false,
                     "error_message": "rate limited, retry"})
        ),
        // The producer's cost wins.
        usage(
            "u4",
            "2026-11-03T10:00:00Z",
            "openai/gpt-4o",
            "op_1",
            "s1",
            json!({"cost": 0.5, "phase": "exploitation"})
        ),
        // s1's scenario arrives after its usage.
        completed("s1", "pentest_001"),
    ]);
    let (status, receipt) = server.post_events(&batch).await;
    assert_eq!(status, 200, "{receipt}");
    let at = last_position(&receipt);
    let as_of = "2026-11-03T12:00:00Z";

    let (status, b) = server
        .get(&format!(
            "/api/analytics/cost/breakdown?category=model&min_position={at}&as_of={as_of}"
        ))
        .await;
    assert_eq!(status, 200, "{b}");
    assert_eq!(b["category"], "model_usage");
    close(&b["items"]["openai/gpt-4o"], 0.5075);
    close(&b["items"]["openrouter/openai/gpt-4o"], 0.015);
    close(&b["items"]["openai/gpt-4"], 0.0);
    close(&b["total_cost"], 0.5225);
    assert_eq!(b["percentage_of_total"], 100.0);
    assert_eq!(b["total_requests"], 4);
    assert_eq!(b["unpriced_requests"], 1);
    assert_eq!(b["unpriced_tokens"], 200);
    assert_eq!(b["time_range"]["start"], "2026-11-01T10:00:00Z");
    assert_eq!(b["time_range"]["end"], "2026-11-03T10:00:00Z");
    let top = &b["ranked_items"][0];
    assert_eq!(top["item"], "openai/gpt-4o");
    close(&top["share"], 0.5075 / 0.5225);
    assert_eq!(top["requests"], 2);

    // One day ending with as_of's day: only 11-03.
    let (_, day) = server
        .get(&format!(
            "/api/analytics/cost/breakdown?category=time_period&time_range_days=1&as_of={as_of}"
        ))
        .await;
    assert_eq!(day["items"], json!({"2026-11-03": 0.5}));
    assert_eq!(day["time_range_days"], 1);

    let (_, scenario) = server
        .get(&format!(
            "/api/analytics/cost/breakdown?category=scenario&as_of={as_of}"
        ))
        .await;
    close(&scenario["items"]["pentest_001"], 0.5075);
    close(&scenario["items"]["phish_002"], 0.015);
    // u3 names no scenario and s2 never completed.
    close(&scenario["items"]["unattributed"], 0.0);
    assert_eq!(scenario["items"].as_object().unwrap().len(), 3);

    let (_, phase) = server
        .get(&format!(
            "/api/analytics/cost/breakdown?category=phase&as_of={as_of}"
        ))
        .await;
    close(&phase["items"]["exploitation"], 0.5);
    close(&phase["items"]["reconnaissance"], 0.0225);

    let bad = server
        .get("/api/analytics/cost/breakdown?category=models")
        .await;
    assert_eq!(bad.1["error"], "invalid_parameter");
    assert_refused(bad, 400, "category:");
    assert_refused(
        server
            .get("/api/analytics/cost/breakdown?time_range_days=soon")
            .await,
        400,
        "time_range_days",
    );

    let (status, summary) = server
        .get(&format!("/api/analytics/cost/summary?as_of={as_of}"))
        .await;
    assert_eq!(status, 200, "{summary}");
    let stats = &summary["global_stats"];
    assert_eq!(stats["global_stats"]["total_requests"], 4);
    close(&stats["global_stats"]["total_cost"], 0.5225);
    assert_eq!(stats["global_stats"]["total_input_tokens"], 4100);
    assert_eq!(stats["global_stats"]["failed_requests"], 1);
    assert_eq!(stats["active_sessions"], 2);
    assert_eq!(stats["active_profiles"], 2);
    assert_eq!(stats["models_used"], 3);
    close(&stats["success_rate"], 0.75);
    let categories: Vec<&String> = summary["breakdowns"].as_object().unwrap().keys().collect();
    assert_eq!(
        categories,
        ["model_usage", "phase", "profile", "scenario", "time_period"]
    );
    close(&summary["breakdowns"]["profile"]["items"]["op_1"], 0.5075);
    assert_eq!(summary["optimization_opportunities"], json!([]));
    // The seed's anomaly rules need 10 requests in the window.
    assert_eq!(summary["anomalies"], json!([]));

    let (_, session) = server
        .get(&format!(
            "/api/analytics/cost/summary?session_id=s1&as_of={as_of}"
        ))
        .await;
    close(&session["total_cost"], 0.5075);
    assert_eq!(session["tokens"], json!({"input": 2000, "output": 1000}));
    assert!(session.get("global_stats").is_none());
    assert!(session.get("anomalies").is_none());

    let r = common::client()
        .get(server.at("/api/analytics/cost/usage?format=csv&session_id=s2"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-type"], "text/csv; charset=utf-8");
    let csv = r.text().await.unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 3, "{csv}");
    assert!(lines[0].starts_with("id,timestamp,model,profile_id"));
    assert!(
        lines[2].contains(
            ",openai/gpt-4,op_2,s2,reconnaissance,100,100,0.0,120.0,False,\"rate limited, retry\""
        ),
        "{csv}"
    );
    let (_, records) = server
        .get("/api/analytics/cost/usage?profile_id=op_1")
        .await;
    assert_eq!(records.as_array().unwrap().len(), 2);
    close(&records[1]["cost"], 0.5);
    assert_refused(
        server.get("/api/analytics/cost/usage?format=pdf").await,
        400,
        "format:",
    );

    // 2 h × 10 requests × $0.5225 / 4 requests.
    let (status, prediction) = server
        .get("/api/analytics/cost/predict?training_hours=2")
        .await;
    assert_eq!(status, 200, "{prediction}");
    assert_eq!(prediction["estimated_requests"], 20);
    close(&prediction["predicted_cost"], 20.0 * 0.5225 / 4.0);
    let (status, plan) = server
        .post_json(
            "/api/analytics/cost/budget-plan",
            &json!({"total_budget": 1000, "time_period_days": 20}),
        )
        .await;
    assert_eq!(status, 200, "{plan}");
    close(&plan["daily_budget"], 50.0);
    close(&plan["budget_breakdown"]["core_training"], 500.0);
    assert_refused(
        server
            .post_json(
                "/api/analytics/cost/budget-plan",
                &json!({"total_budget": 1000, "time_period_days": 0}),
            )
            .await,
        400,
        "time_period_days:",
    );

    // A profile budget of $0.60: $0.5075 spent is 84.6 %, so 75 % fires when it is set.
    let (status, receipt) = server
        .post_json(
            "/api/analytics/cost/budgets",
            &json!({"scope": "profile", "entity_id": "op_1", "amount": 0.6}),
        )
        .await;
    assert_eq!(status, 200, "{receipt}");
    let at = last_position(&receipt);
    let (_, budgets) = server
        .get(&format!("/api/analytics/cost/budgets?min_position={at}"))
        .await;
    assert_eq!(budgets["count"], 1);
    let budget = &budgets["budgets"][0];
    assert_eq!(budget["scope"], "profile");
    assert_eq!(budget["entity_id"], "op_1");
    assert_eq!(budget["period"], "none");
    assert_eq!(budget["thresholds"], json!([0.75, 0.9, 1.0]));
    close(&budget["spent"], 0.5075);
    close(&budget["remaining"], 0.0925);
    assert_eq!(budget["within_budget"], true);
    let alerts = budget["alerts"].as_array().unwrap();
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0]["threshold"], 0.75);
    assert_eq!(alerts[0]["period"], "all");

    // $0.10 more crosses 90 % and 100 % at once, each once.
    let (_, receipt) = server
        .post_events(&json!([usage(
            "u5",
            "2026-11-03T11:30:00Z",
            "openai/gpt-4o",
            "op_1",
            "s1",
            json!({"cost": 0.1})
        )]))
        .await;
    let at = last_position(&receipt);
    let (_, budgets) = server
        .get(&format!("/api/analytics/cost/budgets?min_position={at}"))
        .await;
    let budget = &budgets["budgets"][0];
    close(&budget["spent"], 0.6075);
    assert_eq!(budget["remaining"], 0.0);
    assert_eq!(budget["within_budget"], false);
    let thresholds: Vec<f64> = budget["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["threshold"].as_f64().unwrap())
        .collect();
    assert_eq!(thresholds, [0.75, 0.9, 1.0]);

    assert_refused(
        server
            .post_json(
                "/api/analytics/cost/budgets",
                &json!({"scope": "global", "entity_id": "op_1", "amount": 5}),
            )
            .await,
        422,
        "entity_id",
    );
    assert_refused(
        server
            .post_json(
                "/api/analytics/cost/budgets",
                &json!({"scope": "global", "amount": -5}),
            )
            .await,
        422,
        "amount",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_optimization_and_roi_over_tcp() {
    let dir = tempfile::tempdir().unwrap();
    // A what-if replay a crash left behind is removed when the server starts.
    let scratch = dir.path().join("scratch");
    std::fs::create_dir_all(scratch.join("what-if-1-0")).unwrap();
    let server = Server::start(dir.path(), &[]);
    server.ready().await;
    assert!(
        !scratch.exists(),
        "the crash's scratch store is still there"
    );

    let (status, models) = server.get("/api/analytics/models").await;
    assert_eq!(status, 200, "{models}");
    assert_eq!(models["count"], 15);
    assert_eq!(models["statistics"]["models_by_provider"]["openrouter"], 3);
    assert_eq!(models["statistics"]["models_by_tier"]["standard"], 5);
    assert_eq!(models["cheapest"]["name"], "llama3.1:8b");
    assert_eq!(models["fastest"]["name"], "llama-3.1-70b");
    let (_, openrouter) = server
        .get("/api/analytics/models?provider=openrouter&task_type=analysis")
        .await;
    assert_eq!(openrouter["count"], 3);
    assert_eq!(openrouter["models"][0]["name"], "openai/gpt-4o");
    assert_eq!(openrouter["recommended"][0]["name"], "claude-3-opus");

    // A price change, effective before the usage that follows it.
    let priced = json!({"specversion": "1.0", "id": "price-1", "type": "ats.model.priced",
        "source": "ops", "time": "2026-11-01T00:00:00Z",
        "data": {"provider": "openai", "name": "gpt-4-turbo", "cost_per_1k_input_tokens": 0.02,
                 "cost_per_1k_output_tokens": 0.04, "effective_from": "2026-11-01T00:00:00Z"}});
    let mut batch = vec![priced];
    // 100,000 in + 50,000 out at the new price = $2 + $2 = $4.
    batch.push(usage(
        "big",
        "2026-11-02T10:00:00Z",
        "openai/gpt-4-turbo",
        "op_1",
        "s1",
        json!({"input_tokens": 100_000, "output_tokens": 50_000}),
    ));
    let (status, receipt) = server.post_events(&Value::Array(batch)).await;
    assert_eq!(status, 200, "{receipt}");
    let at = last_position(&receipt);
    let (_, opt) = server
        .get(&format!(
            "/api/analytics/cost/optimization?min_position={at}&as_of=2026-11-03T00:00:00Z"
        ))
        .await;
    let opps = opt["opportunities"].as_array().unwrap();
    assert_eq!(opps[0]["optimization_type"], "model_substitution");
    close(&opps[0]["current_cost"], 4.0);
    close(&opps[0]["potential_savings"], 1.6);
    close(&opps[0]["roi_score"], 0.8);
    assert_eq!(opps[1]["optimization_type"], "prompt_optimization");
    assert_eq!(opt["impact_analysis"]["total_opportunities"], 2);
    assert_eq!(
        opt["impact_analysis"]["quick_wins"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let (_, registry) = server
        .get("/api/analytics/models?provider=openai&tier=premium&as_of=2026-11-05T00:00:00Z")
        .await;
    assert_eq!(registry["models"][0]["cost_per_1k_input_tokens"], 0.02);
    assert_eq!(
        registry["models"][0]["effective_from"],
        "2026-11-01T00:00:00Z"
    );

    let (status, forecast) = server
        .get("/api/analytics/cost/forecast?scope=profile&entity_id=op_1&as_of=2026-11-03T00:00:00Z")
        .await;
    assert_eq!(status, 200, "{forecast}");
    assert_eq!(forecast["period"], "monthly");
    assert_eq!(forecast["period_start"], "2026-11-01");
    assert_eq!(forecast["period_end"], "2026-11-30");
    close(&forecast["spent_to_date"], 4.0);
    // One day of history is too little to forecast from.
    assert_eq!(forecast["history_days"], 0);
    close(&forecast["predicted_total"], 4.0);
    assert_refused(
        server
            .get("/api/analytics/cost/forecast?scope=profile")
            .await,
        400,
        "entity_id:",
    );
    assert_refused(
        server.get("/api/analytics/cost/forecast?scope=team").await,
        400,
        "scope",
    );
    let (status, anomalies) = server
        .get("/api/analytics/cost/anomalies?as_of=2026-11-03T00:00:00Z")
        .await;
    assert_eq!(status, 200, "{anomalies}");
    assert_eq!(anomalies["anomalies"], json!([]));
    assert_eq!(anomalies["spend_anomalies"], json!([]));
    assert_eq!(anomalies["count"], 0);

    // What if gpt-4-turbo had been gpt-4o-mini: 100,000 × 0.00015 + 50,000 × 0.0006 = $0.045.
    let (status, whatif) = server
        .post_json(
            "/api/analytics/cost/what-if",
            &json!({"substitutions": {"openai/gpt-4-turbo": "openai/gpt-4o-mini"},
                "as_of": "2026-11-03T00:00:00Z", "time_range_days": 7}),
        )
        .await;
    assert_eq!(status, 200, "{whatif}");
    close(&whatif["actual"]["total_cost"], 4.0);
    close(&whatif["what_if"]["items"]["openai/gpt-4o-mini"], 0.045);
    close(&whatif["savings"], 3.955);
    close(&whatif["savings_percentage"], 98.875);
    // An assumed price for the model itself.
    let (_, assumed) = server
        .post_json(
            "/api/analytics/cost/what-if",
            &json!({"prices": [{"model": "openai/gpt-4-turbo", "cost_per_1k_input_tokens": 0.01,
                            "cost_per_1k_output_tokens": 0.03}],
                "as_of": "2026-11-03T00:00:00Z"}),
        )
        .await;
    close(&assumed["what_if"]["total_cost"], 2.5);
    // Both replays were written under the data directory, and removed once answered.
    let left: Vec<_> = std::fs::read_dir(&scratch).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
    assert_refused(
        server
            .post_json("/api/analytics/cost/what-if", &json!({"substitution": {}}))
            .await,
        400,
        "substitution",
    );
    // The live read model is untouched.
    let (_, live) = server
        .get("/api/analytics/cost/breakdown?as_of=2026-11-03T00:00:00Z")
        .await;
    close(&live["total_cost"], 4.0);

    let (status, roi) = server
        .post_json(
            "/api/analytics/cost/roi",
            &json!({"total_cost": 500, "initial_skill_level": 1.0, "final_skill_level": 4.0,
                "training_hours": 40, "certifications": 2}),
        )
        .await;
    assert_eq!(status, 200, "{roi}");
    close(&roi["overall_roi"], 0.4);
    assert_eq!(roi["skill_gains"], 3);
    close(&roi["proficiency_increase"], 0.6);
    let (status, cmp) = server
        .post_json(
            "/api/analytics/cost/roi",
            &json!({"methods": [{"name": "lab", "cost": 500, "initial_level": 1, "final_level": 4,
                             "hours": 40, "certifications": 2}]}),
        )
        .await;
    assert_eq!(status, 200, "{cmp}");
    assert_eq!(cmp["best_roi"]["method_name"], "lab");
    let (status, none) = server
        .post_json("/api/analytics/cost/roi", &json!({"methods": []}))
        .await;
    assert_eq!(status, 400);
    assert_eq!(none["error"], "no_methods_provided");
    assert_refused(
        server
            .post_json("/api/analytics/cost/roi", &json!({"total_cost": 1}))
            .await,
        400,
        "initial_skill_level",
    );
}

/// Budgets set through the API without thresholds get `analytics.alerts.budget_thresholds`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configured_budget_thresholds_apply_to_api_budgets() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("ats.yaml");
    std::fs::write(
        &config,
        "analytics:\n  alerts:\n    budget_thresholds: [0.5, 1.0]\n",
    )
    .unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data, &["--config", config.to_str().unwrap()]);
    server.ready().await;
    let (status, receipt) = server
        .post_json(
            "/api/analytics/cost/budgets",
            &json!({"scope": "global", "amount": 10}),
        )
        .await;
    assert_eq!(status, 200, "{receipt}");
    let (status, explicit) = server
        .post_json(
            "/api/analytics/cost/budgets",
            &json!({"scope": "profile", "entity_id": "op_x", "amount": 5, "thresholds": [0.8]}),
        )
        .await;
    assert_eq!(status, 200, "{explicit}");
    let at = last_position(&explicit);
    let (_, budgets) = server
        .get(&format!("/api/analytics/cost/budgets?min_position={at}"))
        .await;
    let by_scope = |scope: &str| {
        budgets["budgets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["scope"] == scope)
            .unwrap()["thresholds"]
            .clone()
    };
    assert_eq!(by_scope("global"), json!([0.5, 1.0]));
    assert_eq!(by_scope("profile"), json!([0.8]));
}

/// The seed's statistics: all time, per model (OpenRouter names in the path), per session
/// with its budget.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statistics_per_model_and_per_session() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    server.ready().await;
    let events = json!([
        usage("a", "2026-11-03T10:00:00Z", "openai/gpt-4o", "op_1", "s1", json!({})),
        usage("b", "2026-11-03T10:01:00Z", "openai/gpt-4o", "op_1", "s1",
              json!({"success": false, "error_message": "rate limited", "latency_ms": 80.0})),
        usage("c", "2026-11-03T10:02:00Z", "openrouter/openai/gpt-4o", "op_2", "s2", json!({})),
        {"specversion": "1.0", "id": "budget-s1", "type": "ats.budget.set", "source": "ops",
         "time": "2026-11-03T09:00:00Z",
         "data": {"scope": "session", "entity_id": "s1", "amount": 0.01}},
    ]);
    let (status, receipt) = server.post_events(&events).await;
    assert_eq!(status, 200, "{receipt}");
    let at = last_position(&receipt);

    // gpt-4o: 1,000 in × $0.0025/1K + 500 out × $0.01/1K = $0.0075 a request.
    let (status, model) = server
        .get(&format!(
            "/api/analytics/cost/models/openai/gpt-4o?min_position={at}"
        ))
        .await;
    assert_eq!(status, 200, "{model}");
    assert_eq!(model["model"], "openai/gpt-4o");
    assert_eq!(model["total_requests"], 2);
    assert_eq!(model["failed_requests"], 1);
    assert_eq!(model["success_rate"], 0.5);
    close(&model["total_cost"], 0.015);
    assert_eq!(model["total_tokens"], 3000);
    close(&model["average_cost_per_request"], 0.0075);
    close(&model["average_latency_ms"], 100.0);
    let (status, routed) = server
        .get("/api/analytics/cost/models/openrouter/openai/gpt-4o")
        .await;
    assert_eq!(status, 200, "{routed}");
    close(&routed["total_cost"], 0.0075);
    let (status, missing) = server.get("/api/analytics/cost/models/acme/unknown").await;
    assert_eq!(status, 404);
    assert!(
        missing["message"]
            .as_str()
            .unwrap()
            .contains("No usage data"),
        "{missing}"
    );

    let (_, stats) = server.get("/api/analytics/cost/statistics").await;
    assert_eq!(stats["global_stats"]["total_requests"], 3);
    assert_eq!(stats["active_sessions"], 2);
    assert_eq!(stats["active_profiles"], 2);
    assert_eq!(stats["models_used"], 2);
    close(&stats["average_cost_per_request"], 0.0075);

    let (_, session) = server.get("/api/analytics/cost/session/s1").await;
    close(&session["total_cost"], 0.015);
    assert_eq!(session["tokens"], json!({"input": 2000, "output": 1000}));
    close(&session["breakdown_by_model"]["openai/gpt-4o"], 0.015);
    close(&session["budget"], 0.01);
    close(&session["remaining_budget"], 0.0);
    assert_eq!(session["within_budget"], false);
    let (_, none) = server.get("/api/analytics/cost/session/nothing").await;
    assert_eq!(none["total_cost"], 0.0);
    assert_eq!(none["within_budget"], true);
    assert_eq!(none["budget"], Value::Null);
}
