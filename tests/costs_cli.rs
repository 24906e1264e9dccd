//! The cost commands of the CLI over a local data directory: cost-report (table and JSON),
//! budget show, forecast, anomalies and what-if.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking, with the reason

mod common;

use common::run_cli as run;
use serde_json::{json, Value};

fn usage(id: &str, model: &str, profile: &str, input: u64, output: u64) -> Value {
    json!({"specversion": "1.0", "id": id, "type": "ats.llm.usage", "source": "orchestrator",
           "time": "2020-03-02T10:00:00Z", "subject": profile,
           "data": {"model": model, "profile_id": profile, "session_id": "s1",
                    "task_type": "reconnaissance", "input_tokens": input, "output_tokens": output}})
}

fn json_of(out: &str) -> Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

#[test]
fn cost_commands_over_local_data() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("usage.ndjson");
    let lines = [
        // 1,000 in / 500 out on gpt-4o = $0.0075; 10,000 / 5,000 = $0.075.
        usage("c1", "openai/gpt-4o", "op_a", 1000, 500),
        usage("c2", "openai/gpt-4o", "op_b", 10_000, 5_000),
        json!({"specversion": "1.0", "id": "b1", "type": "ats.budget.set", "source": "ops",
               "time": "2020-03-01T00:00:00Z",
               "data": {"scope": "profile", "entity_id": "op_b", "amount": 0.1}}),
    ];
    let text: Vec<String> = lines.iter().map(Value::to_string).collect();
    std::fs::write(&file, text.join("\n") + "\n").unwrap();
    let data = dir.path().join("data");
    let (ok, _, err) = run(&["import", file.to_str().unwrap()], &data);
    assert!(ok, "{err}");

    // Every day up to today covers 2020.
    let (ok, out, err) = run(
        &[
            "analytics",
            "cost-report",
            "--timeframe",
            "36500",
            "--category",
            "profile",
            "--json",
        ],
        &data,
    );
    assert!(ok, "{err}");
    let report = json_of(&out);
    assert_eq!(report["category"], "profile");
    assert!((report["items"]["op_b"].as_f64().unwrap() - 0.075).abs() < 1e-12);
    assert!((report["total_cost"].as_f64().unwrap() - 0.0825).abs() < 1e-12);
    let (ok, table, err) = run(&["analytics", "cost-report", "-t", "36500"], &data);
    assert!(ok, "{err}");
    assert!(table.contains("Cost Report - Last 36500 Days"), "{table}");
    assert!(table.contains("Category: model"), "{table}");
    assert!(table.contains("Total Cost: $0.08"), "{table}");
    assert!(table.contains("Percentage of Total: 100.0%"), "{table}");
    assert!(table.contains("openai/gpt-4o"), "{table}");
    // The seed's week has no 2020 usage in it.
    let (_, out, _) = run(&["analytics", "cost-report", "--json"], &data);
    assert_eq!(json_of(&out)["total_cost"], 0.0);

    let (ok, out, err) = run(&["analytics", "budget", "show", "--json"], &data);
    assert!(ok, "{err}");
    let budgets = json_of(&out);
    assert_eq!(budgets["count"], 1);
    assert_eq!(budgets["budgets"][0]["entity_id"], "op_b");
    // $0.075 of $0.10: the 75 % alert.
    assert_eq!(budgets["budgets"][0]["alerts"][0]["threshold"], 0.75);
    let (ok, table, _) = run(&["analytics", "budget", "show"], &data);
    assert!(ok);
    assert!(table.contains("75% (all)"), "{table}");
    let (ok, _, err) = run(&["analytics", "budget", "set", "--amount", "5"], &data);
    assert!(!ok);
    assert!(err.contains("--url"), "{err}");

    let (ok, out, err) = run(
        &[
            "analytics",
            "forecast",
            "--scope",
            "profile",
            "--entity-id",
            "op_b",
            "--json",
        ],
        &data,
    );
    assert!(ok, "{err}");
    let forecast = json_of(&out);
    assert_eq!(forecast["period"], "none");
    assert_eq!(forecast["budget"], 0.1);
    let (ok, _, err) = run(&["analytics", "forecast", "--scope", "team"], &data);
    assert!(!ok);
    assert!(err.contains("--scope"), "{err}");

    let (ok, out, err) = run(&["analytics", "anomalies", "--json"], &data);
    assert!(ok, "{err}");
    assert_eq!(json_of(&out)["count"], 0);

    let (ok, out, err) = run(
        &[
            "analytics",
            "what-if",
            "--substitute",
            "openai/gpt-4o=openai/gpt-4o-mini",
            "--json",
        ],
        &data,
    );
    assert!(ok, "{err}");
    let what_if = json_of(&out);
    // gpt-4o-mini: 11,000 × 0.00015/1K + 5,500 × 0.0006/1K = 0.00165 + 0.0033.
    assert!((what_if["what_if"]["total_cost"].as_f64().unwrap() - 0.00495).abs() < 1e-12);
    assert!((what_if["actual"]["total_cost"].as_f64().unwrap() - 0.0825).abs() < 1e-12);
}
