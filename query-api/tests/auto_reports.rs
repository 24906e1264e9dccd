//! Scheduled reports are generated once per period: not twice by a second check, not by a
//! restart, not even when late events would change the content.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking, with the reason

use std::sync::Arc;
use std::time::Duration;

use ats_events::Timestamp;
use ats_ingest::embedded::EmbeddedLog;
use ats_ingest::EventLog;
use ats_projections::reports;
use ats_projections::runtime::Runtime;
use ats_projections::store::Store;
use ats_query_api::auto_reports::{ensure, AutoReport};
use ats_query_api::AppState;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(10);

fn session(id: &str, start: &str, score: f64) -> serde_json::Value {
    json!({"specversion": "1.0", "id": id, "type": "ats.session.completed", "source": "test",
           "time": start, "subject": "op_1",
           "data": {"session_id": id, "operator_id": "op_1", "scenario_id": "s",
                    "start_time": start, "end_time": start, "duration_seconds": 3600,
                    "success": true, "score": score}})
}

async fn post(state: &AppState, event: serde_json::Value) {
    let receipt = ats_ingest::intake::submit(
        state.log.as_ref(),
        event.to_string().as_bytes(),
        &state.limits,
    )
    .await
    .unwrap();
    let head = receipt.positions.into_iter().max().unwrap();
    assert!(state.runtime.wait_for(head, WAIT).await);
}

async fn start(dir: &std::path::Path) -> AppState {
    let log: Arc<dyn EventLog> = Arc::new(EmbeddedLog::open(dir.join("log.redb")).unwrap());
    let store = Store::open(dir.join("read-models")).unwrap();
    let runtime = Runtime::start(store, log.clone(), ats_projections::all_projectors()).unwrap();
    let head = log.head().await.unwrap();
    assert!(runtime.wait_for(head, WAIT).await);
    AppState::new(log, runtime)
}

async fn stored(state: &AppState) -> Vec<reports::Report> {
    let head = state.log.head().await.unwrap();
    assert!(state.runtime.wait_for(head, WAIT).await);
    let tree = state.runtime.handle(reports::NAME).unwrap().tree();
    reports::list(&tree, None)
        .into_iter()
        .map(|r| reports::report(&tree, &r.id).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_period_gets_one_report_across_checks_and_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let now = Timestamp::parse_rfc3339("2026-11-11T09:00:00Z").unwrap();
    let state = start(dir.path()).await;
    post(&state, session("a", "2026-11-10T08:00:00Z", 0.8)).await;

    let id = ensure(&state, AutoReport::DailySummary, now).await.unwrap();
    assert!(id.is_some());
    let first = stored(&state).await;
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].title, "Daily Summary: 2026-11-10");
    assert_eq!(first[0].data["daily"][0]["sessions"], 1);
    // A second check finds it.
    assert_eq!(
        ensure(&state, AutoReport::DailySummary, now).await.unwrap(),
        None
    );

    // A late event for that day, then a restart: the stored report stands, no second one.
    post(&state, session("b", "2026-11-10T09:00:00Z", 0.4)).await;
    state.runtime.shutdown().await;
    drop(state);
    let state = start(dir.path()).await;
    assert_eq!(
        ensure(&state, AutoReport::DailySummary, now).await.unwrap(),
        None
    );
    assert_eq!(stored(&state).await, first);

    // With the report gone from the read model (deleted), a new attempt computes other
    // content (the late session) under the same event id: the log refuses it, so the
    // period never gets a second report.
    let id = AutoReport::DailySummary.report_id("2026-11-10");
    assert_eq!(first[0].id, id);
    post(
        &state,
        json!({"specversion": "1.0", "id": "del", "type": "ats.report.deleted", "source": "test",
               "time": "2026-11-11T10:00:00Z", "data": {"report_id": id}}),
    )
    .await;
    assert_eq!(
        ensure(&state, AutoReport::DailySummary, now).await.unwrap(),
        None
    );
    assert!(stored(&state).await.is_empty());

    let weekly = ensure(&state, AutoReport::WeeklyCost, now).await.unwrap();
    assert!(weekly.is_some());
    let all = stored(&state).await;
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].title, "Weekly Cost: 2026-11-02");
    // Checking again right away, before or after the tree has it, appends nothing new.
    assert_eq!(
        ensure(&state, AutoReport::WeeklyCost, now).await.unwrap(),
        None
    );
    assert_eq!(stored(&state).await.len(), 1);
    state.runtime.shutdown().await;
}
