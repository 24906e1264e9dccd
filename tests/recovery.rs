//! Crash safety of the whole binary: `kill -9` at random moments while a client ingests;
//! after restart every acknowledged event is applied exactly once, and the live read models
//! equal an offline `ats-mafia replay` of the same log (equal digests).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking, with the reason

mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{session, Server};
use serde_json::Value;

/// Trials in the default run; `ATS_CRASH_TRIALS` raises it for the long job.
fn trials() -> u32 {
    std::env::var("ATS_CRASH_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_ingest_loses_and_doubles_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), &[]);
    let mut acknowledged: Vec<String> = Vec::new();
    let next = Arc::new(AtomicU32::new(0));
    for trial in 0..trials() {
        server.ready().await;
        let url = server.url.clone();
        let counter = next.clone();
        // A client posting batches of 20 sessions as fast as the server takes them.
        let client = tokio::spawn(async move {
            let http = common::client();
            let mut acked = Vec::new();
            loop {
                let base = counter.fetch_add(20, Ordering::SeqCst);
                let batch: Vec<Value> = (base..base + 20)
                    .map(|n| {
                        session(
                            &format!("op_{}", n % 7),
                            n,
                            0.5 + f64::from(n % 5) / 10.0,
                            &["recon", "exploitation"],
                        )
                    })
                    .collect();
                let sent = http
                    .post(format!("{url}/api/events"))
                    .json(&batch)
                    .send()
                    .await;
                match sent {
                    Ok(r) if r.status() == 200 => {
                        acked.extend((base..base + 20).map(|n| format!("op_{}-sess-{n}", n % 7)))
                    }
                    _ => return acked,
                }
            }
        });
        // Kill at a pseudo-random moment between 20 and 400 ms into the trial.
        let wait = 20 + (u64::from(trial) * 7919) % 380;
        tokio::time::sleep(Duration::from_millis(wait)).await;
        server.kill();
        let acked = client.await.unwrap();
        println!(
            "trial {trial}: killed after {wait} ms, {} events acknowledged",
            acked.len()
        );
        acknowledged.extend(acked);
        server.restart();
    }
    server.ready().await;

    // Every acknowledged session is there, once.
    let sent = next.load(Ordering::SeqCst);
    let (_, operators) = server.get("/api/analytics/operators").await;
    let total: u64 = operators["operators"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["total_sessions"].as_u64().unwrap())
        .sum();
    assert!(
        total as usize >= acknowledged.len(),
        "{total} < {}",
        acknowledged.len()
    );
    assert!(
        total <= u64::from(sent),
        "{total} sessions from {sent} sent: something counted twice"
    );
    for session_id in acknowledged.iter().step_by(7) {
        let (status, _) = server
            .get(&format!("/api/analytics/session/{session_id}/analysis"))
            .await;
        assert_eq!(status, 200, "acknowledged {session_id} is missing");
    }
    let (_, log_state) = server.get("/readyz").await;
    let head = log_state["log"]["head"].as_u64().unwrap();
    // The embedded log's id index is written with the log: nothing to wait for.
    assert!(log_state["log"].get("indexed").is_none(), "{log_state}");
    assert_eq!(
        head, total,
        "the log holds {head} events for {total} sessions"
    );

    // The live read models equal a clean rebuild of the same log.
    let (_, live) = server.get("/api/admin/projectors").await;
    server.stop();
    let replayed: Value = serde_json::from_str(&common::stdout_of(
        common::command()
            .args(["replay", "--json", "--data"])
            .arg(dir.path()),
    ))
    .unwrap();
    for (live, rebuilt) in live["projectors"]
        .as_array()
        .unwrap()
        .iter()
        .zip(replayed["projectors"].as_array().unwrap())
    {
        assert_eq!(live["name"], rebuilt["projector"]);
        assert_eq!(live["position"], rebuilt["position"]);
        assert_eq!(
            live["digest"], rebuilt["digest"],
            "{} differs from its rebuild",
            live["name"]
        );
    }
}

/// A server started over read models of a projector it no longer runs (renamed when its fold
/// changed) drops them, and keeps every running projector's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_drops_read_models_of_retired_projectors() {
    use ats_projections::store::Store;
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), &[]);
    server.ready().await;
    let (status, receipt) = server
        .post_events(&serde_json::json!([session("op_1", 1, 0.8, &["recon"])]))
        .await;
    assert_eq!(status, 200, "{receipt}");
    let at = common::last_position(&receipt);
    server
        .get_ok(&format!(
            "/api/analytics/operator/op_1/performance?min_position={at}"
        ))
        .await;
    server.stop();

    let running: Vec<&str> = ats_projections::all_projectors()
        .iter()
        .map(|p| p.name())
        .collect();
    let path = dir.path().join("read-models");
    let store = Store::open(&path).unwrap();
    store.tree("costs_v0", 7).unwrap().insert("k", "v").unwrap();
    store.set_active_generation("costs_v0", 7).unwrap();
    drop(store);

    server.restart();
    server.ready().await;
    server
        .get_ok("/api/analytics/operator/op_1/performance")
        .await;
    server.stop();
    let store = Store::open(&path).unwrap();
    let left = store.retire_others(&running).unwrap();
    assert!(left.is_empty(), "still stored: {left:?}");
    assert_eq!(store.active_generation("costs_v0").unwrap(), 0);
}
