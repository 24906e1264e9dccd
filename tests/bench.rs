//! `ats-mafia bench` in its tiny mode: it runs every scenario on both logs and prints one
//! well-formed JSON line per result. Nothing here asserts a time: the bench is read, not
//! judged, by the test suite.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking, with the reason

mod common;

use serde_json::Value;

/// Samples per latency figure in the tiny run.
const QUERIES: u64 = 20;

#[test]
fn tiny_bench_prints_a_json_line_per_result() {
    let output = common::command()
        .args([
            "bench",
            "--events",
            "2000",
            "--queries",
            &QUERIES.to_string(),
            "--log",
            "both",
        ])
        .env_remove("ATS_NATS_URL")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let rows: Vec<Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON: {line}: {e}")))
        .collect();
    for log in ["embedded", "jetstream"] {
        let throughputs: &[&str] = match log {
            // The NATS intake exists only where the log is JetStream.
            "jetstream" => &["ingest_http", "ingest_nats", "rebuild"],
            _ => &["ingest_http", "rebuild"],
        };
        for &scenario in throughputs {
            let row = rows
                .iter()
                .find(|r| r["scenario"] == scenario && r["log"] == log)
                .unwrap_or_else(|| panic!("no {scenario} on {log}"));
            // The rebuild replays all the log holds by then (paced ingest, probes, …).
            let events = row["events"].as_u64().unwrap();
            assert!(events >= 2000, "{row}");
            assert_eq!(row["unit"], "events/s");
            for field in ["engine", "ceiling", "ratio", "target_ratio"] {
                assert!(
                    row[field].as_f64().is_some_and(|v| v > 0.0),
                    "{scenario}/{log}: {field} in {row}"
                );
            }
            if scenario == "rebuild" {
                // The cost of writing the rebuilt read models alone: every key, every byte.
                let floor = &row["storage_floor"];
                for field in ["keys", "bytes", "events_per_s"] {
                    assert!(
                        floor[field].as_f64().is_some_and(|v| v > 0.0),
                        "{log}: storage_floor.{field} in {row}"
                    );
                }
            }
        }
        assert!(
            !rows
                .iter()
                .any(|r| r["scenario"] == "ingest_nats" && r["log"] == "embedded"),
            "no NATS intake without JetStream"
        );
        // The four queries of issue 8, each with p50/p99 and the point-read ceiling.
        let latencies: Vec<&str> = rows
            .iter()
            .filter(|r| r["scenario"] == "query_latency" && r["log"] == log)
            .inspect(|r| {
                assert!(r["p99_ms"].as_f64().is_some(), "{r}");
                // The first request is reported on its own, the percentiles are of the rest.
                assert!(r["first_ms"].as_f64().is_some_and(|v| v > 0.0), "{r}");
                assert_eq!(r["samples"], QUERIES, "{r}");
            })
            .filter_map(|r| r["query"].as_str())
            .collect();
        assert_eq!(
            latencies,
            ["performance", "leaderboard", "cost_breakdown", "dashboard"],
            "{log}"
        );
        let fresh = rows
            .iter()
            .find(|r| r["scenario"] == "freshness" && r["log"] == log)
            .unwrap();
        assert!(fresh["p99_ms"].as_f64().is_some() && fresh["target_p99_ms"] == 100.0);
        let memory = rows
            .iter()
            .find(|r| r["scenario"] == "memory" && r["log"] == log)
            .unwrap();
        // The highest peak of the log's `serve` processes: on JetStream the NATS intake
        // has an engine of its own, so that each holds the history once.
        let peaks: Vec<f64> = memory["peaks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_f64().unwrap())
            .collect();
        assert_eq!(
            peaks.len(),
            if log == "jetstream" { 2 } else { 1 },
            "{memory}"
        );
        assert!(peaks.iter().all(|&p| p > 0.0), "{memory}");
        assert_eq!(
            memory["value"].as_f64().unwrap(),
            peaks.iter().copied().fold(0.0, f64::max),
            "{memory}"
        );
        assert!(
            memory["read_models_disk_mib"].as_f64().unwrap() > 0.0,
            "{memory}"
        );
    }
    let table = String::from_utf8_lossy(&output.stderr);
    assert!(
        table.contains("ingest_http") && table.contains("bench finished"),
        "{table}"
    );
}

/// Given a server (`--nats`), the bench measures JetStream on it and leaves it as it found
/// it: every stream it created (the raw ceiling's, each engine's) is deleted.
#[test]
fn a_bench_on_a_given_server_leaves_no_stream_behind() {
    let nats = ats_ingest::testkit::NatsServer::start();
    let rows = common::stdout_of(
        common::command()
            .args([
                "bench",
                "--events",
                "500",
                "--queries",
                "5",
                "--log",
                "jetstream",
            ])
            .args(["--nats", &nats.url()]),
    );
    assert!(rows.contains("\"ingest_nats\""), "{rows}");
    // The JetStream API's own answer (the typed account query of this client does not
    // parse this server version's reply).
    let names: Value = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let client = async_nats::connect(nats.url()).await.unwrap();
        let reply = client
            .request("$JS.API.STREAM.NAMES", "".into())
            .await
            .unwrap();
        serde_json::from_slice(&reply.payload).unwrap()
    });
    assert_eq!(names["total"], 0, "{names}");
}

/// `--write-history` writes the bench's synthetic history as NDJSON and measures nothing:
/// every line imports, a second import is all repeats, and a replay folds the whole log
/// (what profiling a fold or the store alone starts from).
#[test]
fn the_synthetic_history_written_out_imports_and_replays() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("history.ndjson");
    let data = dir.path().join("data");
    common::stdout_of(common::command().args([
        "bench",
        "--events",
        "600",
        "--write-history",
        file.to_str().unwrap(),
    ]));
    let text = std::fs::read_to_string(&file).unwrap();
    assert_eq!(text.lines().count(), 600);
    let first: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(first["type"], "ats.session.completed", "{first}");
    assert!(!data.exists(), "a history written out measures nothing");

    let (ok, out, err) = common::run_cli(&["import", file.to_str().unwrap(), "--json"], &data);
    assert!(ok, "{err}");
    let imported: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(imported["appended"], 600, "{imported}");
    let (ok, out, err) = common::run_cli(&["import", file.to_str().unwrap(), "--json"], &data);
    assert!(ok, "{err}");
    let again: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (again["appended"].as_u64(), again["duplicates"].as_u64()),
        (Some(0), Some(600))
    );

    let (ok, out, err) = common::run_cli(&["replay", "--json"], &data);
    assert!(ok, "{err}");
    let replay: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(replay["head"], 600, "{replay}");
}

/// A run no disk can hold is refused at once, before generating its history, with a message
/// that says what it needs (the estimate's arithmetic is `bench`'s unit test).
#[test]
fn a_run_too_large_for_the_disk_is_refused_before_it_starts() {
    let output = common::command()
        .args(["bench", "--events", "1000000000000", "--log", "embedded"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--events 1000000000000 needs about") && stderr.contains("TMPDIR"),
        "{stderr}"
    );
    assert!(!stderr.contains("generating"), "{stderr}");
    assert!(output.stdout.is_empty(), "nothing measured");
}

/// A history file that cannot be created is an error naming it, and nothing is measured.
#[test]
fn a_history_file_that_cannot_be_written_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("no-such-dir").join("history.ndjson");
    let output = common::command()
        .args(["bench", "--events", "50", "--write-history"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("cannot create {}", file.display())),
        "{stderr}"
    );
    assert!(output.stdout.is_empty(), "nothing measured");
}
