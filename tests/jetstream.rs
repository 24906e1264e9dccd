//! The whole engine on NATS JetStream: a real `nats-server -js` on a free loopback port,
//! events in over HTTP and over the NATS intake subject, read models out over HTTP.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking, with the reason

mod common;

use ats_ingest::testkit::NatsServer;
use common::{intake_request, registered, session, Server};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_over_http_and_nats_intake_reach_the_read_models() {
    let nats = NatsServer::start();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--nats", &nats.url()]);
    server.ready().await;

    let (status, receipt) = server
        .post_events(&json!([
            registered("op_js", "Jet"),
            session("op_js", 1, 0.7, &["recon"])
        ]))
        .await;
    assert_eq!(status, 200, "{receipt}");

    // The orchestrator publishes straight to the intake subject and asks for a receipt.
    let client = async_nats::connect(nats.url()).await.unwrap();
    let receipt = intake_request(&client, &json!([session("op_js", 2, 0.9, &["recon"])])).await;
    let position = receipt["positions"][0].as_u64().expect("a position");
    assert_eq!(receipt["duplicates"], json!([]));

    let (status, perf) = server
        .get(&format!(
            "/api/analytics/operator/op_js/performance?min_position={position}"
        ))
        .await;
    assert_eq!(status, 200, "{perf}");
    assert_eq!(perf["profile"]["name"], "Jet");
    assert_eq!(perf["profile"]["total_sessions"], 2);
    assert_eq!(perf["profile"]["skills"]["recon"]["practice_count"], 2);

    // /readyz shows how far the node's id index has read the stream: all of it by now.
    let (status, ready) = server.get("/readyz").await;
    assert_eq!(status, 200, "{ready}");
    assert_eq!(ready["log"]["backend"], "jetstream");
    assert_eq!(ready["log"]["indexed"], ready["log"]["head"], "{ready}");
    assert!(ready["log"]["indexed"].as_u64().unwrap() >= position);

    // Bad input on the intake subject gets a field-named error and appends nothing.
    let mut bad = session("op_js", 3, 0.5, &["recon"]);
    bad["data"]["score"] = json!(-1);
    let answer = intake_request(&client, &bad).await;
    assert_eq!(answer["error"], "invalid_event");
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .starts_with("data.score:"),
        "{answer}"
    );

    // A re-sent intake message is a duplicate, not a second session.
    let again = intake_request(&client, &json!([session("op_js", 2, 0.9, &["recon"])])).await;
    assert_eq!(again["positions"][0].as_u64(), Some(position));
    assert_eq!(again["duplicates"].as_array().map(Vec::len), Some(1));
    // The same id with other content inside a new batch is a 409 naming the id, and nothing
    // of the batch is appended (the node's id index knows every id it has seen).
    let mut changed = session("op_js", 2, 0.9, &["recon"]);
    changed["data"]["score"] = json!(0.1);
    let (status, answer) = server
        .post_events(&json!([session("op_js", 7, 0.5, &["recon"]), changed]))
        .await;
    assert_eq!(status, 409, "{answer}");
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .contains("already in the log with different content"),
        "{answer}"
    );
    let (_, projectors) = server.get("/api/admin/projectors").await;
    assert_eq!(projectors["log"], "jetstream");
    let (_, perf) = server
        .get(&format!(
            "/api/analytics/operator/op_js/performance?min_position={position}"
        ))
        .await;
    assert_eq!(perf["profile"]["total_sessions"], 2);
}
