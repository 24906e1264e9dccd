//! The command line: import, analytics operator-stats (table and JSON), replay.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking, with the reason

mod common;

use common::{registered, session};

fn run(args: &[&str], data: &std::path::Path) -> (bool, String, String) {
    common::run_cli(args, data)
}

/// `dir/events.ndjson`: `op_cli` registered, then `sessions` sessions scored `score`
/// practising `skill`, one CloudEvent per line.
fn operator_history(
    dir: &std::path::Path,
    sessions: u32,
    score: f64,
    skill: &str,
) -> std::path::PathBuf {
    let file = dir.join("events.ndjson");
    let mut lines = vec![registered("op_cli", "Cli Operator").to_string()];
    for n in 0..sessions {
        lines.push(session("op_cli", n, score, &[skill]).to_string());
    }
    lines.push(String::new());
    std::fs::write(&file, lines.join("\n")).unwrap();
    file
}

#[test]
fn import_then_operator_stats_and_replay() {
    let dir = tempfile::tempdir().unwrap();
    let file = operator_history(dir.path(), 12, 0.9, "reconnaissance");
    let data = dir.path().join("data");

    let (ok, out, err) = run(
        &["import", file.to_str().unwrap(), "--json", "--batch", "5"],
        &data,
    );
    assert!(ok, "{err}");
    let summary: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(summary["appended"], 13);
    assert_eq!(summary["duplicates"], 0);
    // A second import of the same file appends nothing.
    let (ok, out, _) = run(&["import", file.to_str().unwrap(), "--json"], &data);
    assert!(ok);
    let summary: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (summary["appended"].as_u64(), summary["duplicates"].as_u64()),
        (Some(0), Some(13))
    );

    let (ok, out, err) = run(&["analytics", "operator-stats", "op_cli", "--json"], &data);
    assert!(ok, "{err}");
    let stats: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(stats["profile"]["total_sessions"], 12);
    assert_eq!(
        stats["profile"]["skills"]["reconnaissance"]["proficiency"],
        "master"
    );
    assert_eq!(
        stats["analysis"]["strengths"],
        serde_json::json!(["reconnaissance"])
    );

    let (ok, table, _) = run(&["analytics", "operator-stats", "op_cli"], &data);
    assert!(ok);
    assert!(
        table.contains("Operator Performance Summary: Cli Operator"),
        "{table}"
    );
    assert!(table.contains("| reconnaissance | master"), "{table}");
    assert!(table.contains("Strengths: reconnaissance"), "{table}");
    // The seed's overview rows from the progress read model: first session (100 XP), ten
    // sessions (100 XP) and ten hours (50 XP; 12 sessions × 2 h) → 250 XP, level ⌊√2.5⌋ + 1 = 2.
    assert!(table.contains("| Level             | 2"), "{table}");
    assert!(table.contains("| Total XP          | 250"), "{table}");
    assert!(table.contains("| Achievements      | 3"), "{table}");

    let (ok, _, err) = run(&["analytics", "operator-stats", "ghost"], &data);
    assert!(!ok, "an unknown operator must fail");
    assert!(err.contains("Operator not found: ghost"), "{err}");

    let (ok, out, err) = run(&["replay", "--json"], &data);
    assert!(ok, "{err}");
    let replay: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(replay["head"], 13);
    assert_eq!(replay["projectors"][0]["position"], 13);
    // Another sled cache size rebuilds the same read models; none is refused, by name.
    let (ok, out, err) = run(&["replay", "--json", "--read-model-cache-mib", "64"], &data);
    assert!(ok, "{err}");
    let cached: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(cached["projectors"], replay["projectors"]);
    let (ok, _, err) = run(&["replay", "--read-model-cache-mib", "0"], &data);
    assert!(!ok);
    assert!(err.contains("--read-model-cache-mib"), "{err}");

    // A bad line stops the import, naming the line and the field.
    let bad = dir.path().join("bad.ndjson");
    let mut broken = session("op_cli", 99, 0.9, &["reconnaissance"]);
    broken["data"]["score"] = serde_json::json!("high");
    std::fs::write(&bad, format!("\n{broken}\n")).unwrap();
    let (ok, _, err) = run(&["import", bad.to_str().unwrap()], &data);
    assert!(!ok);
    assert!(
        err.contains("line 2") && err.contains("data.score"),
        "{err}"
    );

    // --log-format json: the process's own logs are JSON lines.
    let output = common::command()
        .args(["--log-format", "json", "replay", "--data"])
        .arg(&data)
        .env("RUST_LOG", "info")
        .output()
        .unwrap();
    assert!(output.status.success());
    let logs = String::from_utf8_lossy(&output.stderr);
    let line = logs
        .lines()
        .find(|l| l.contains("replaying"))
        .expect("a log line");
    let entry: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!(entry["level"], "INFO");
    assert_eq!(entry["fields"]["head"], 13);

    let config = dir.path().join("bad.yaml");
    std::fs::write(&config, "analytics:\n  cache_ttl: 5\n").unwrap();
    let (ok, _, err) = run(&["--config", config.to_str().unwrap(), "replay"], &data);
    assert!(!ok);
    assert!(err.contains("cache_ttl"), "{err}");
    std::fs::write(&config, "read_models:\n  cache_mib: 0\n").unwrap();
    let (ok, _, err) = run(&["--config", config.to_str().unwrap(), "replay"], &data);
    assert!(!ok);
    assert!(err.contains("read_models.cache_mib"), "{err}");
}

/// A read model a crash left cut in the middle of a batch (its marker set, part of a batch
/// written) is folded again from position 0 when a CLI command next catches the local read
/// models up: the answer is the one from before, not the half batch.
#[test]
fn a_read_model_cut_by_a_crash_is_folded_again_by_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let file = operator_history(dir.path(), 5, 0.8, "exploitation");
    let data = dir.path().join("data");
    let (ok, _, err) = run(&["import", file.to_str().unwrap()], &data);
    assert!(ok, "{err}");
    let stats = ["analytics", "operator-stats", "op_cli", "--json"];
    let (ok, before, err) = run(&stats, &data);
    assert!(ok, "{err}");

    {
        use ats_projections::{profiles, store::Store};
        let store = Store::open(data.join("read-models")).unwrap();
        let generation = store.active_generation(profiles::NAME).unwrap();
        let tree = store.tree(profiles::NAME, generation).unwrap();
        // The marker a commit sets first (ARCHITECTURE.md, invariants), then a write of a
        // batch that never finished.
        tree.insert(b"\xff\x00torn", &99u64.to_be_bytes()).unwrap();
        tree.insert(b"p/op_cli", b"half a batch".as_slice())
            .unwrap();
        store.flush().unwrap();
    }
    let (ok, after, err) = run(&stats, &data);
    assert!(ok, "{err}");
    assert_eq!(after, before);
}
