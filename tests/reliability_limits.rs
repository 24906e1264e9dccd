//! Limits over real HTTP: body size, batch size, string length, JSON nesting, request
//! timeout and concurrency; every refusal in our JSON error format, nothing appended.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking, with the reason

mod common;

use std::time::{Duration, Instant};

use common::{session, Server};
use serde_json::{json, Value};

/// A position no projector will reach: a read waiting for it holds its request open.
const UNREACHABLE: &str = "/api/analytics/operator/op_1/performance?min_position=999999999";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_input_is_refused_in_json_and_appends_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    server.ready().await;

    // Body larger than MAX_BODY_BYTES: 413 in our format, not axum's text.
    let huge = vec![b' '; ats_query_api::MAX_BODY_BYTES + 1];
    let (status, answer) = server.post_raw(huge, "application/json").await;
    assert_eq!(status, 413, "{answer}");
    assert_eq!(answer["error"], "too_large");
    assert_eq!(
        answer["message"],
        format!(
            "request body: exceeds the limit of {} bytes",
            ats_query_api::MAX_BODY_BYTES
        )
    );

    // More events than a batch may hold.
    let batch: Vec<Value> = (0..1001)
        .map(|n| session("op_1", n, 0.5, &["recon"]))
        .collect();
    let (status, answer) = server.post_events(&Value::Array(batch)).await;
    assert_eq!(status, 413, "{answer}");
    assert_eq!(
        answer["message"],
        "the batch has 1001 events, the limit is 1000"
    );

    // A string longer than the limit, named by its field.
    let mut long = session("op_1", 1, 0.5, &["recon"]);
    long["data"]["scenario_id"] = json!("s".repeat(5000));
    let (status, answer) = server.post_events(&json!([long])).await;
    assert_eq!(status, 422, "{answer}");
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .starts_with("events[0].data.scenario_id: "),
        "{answer}"
    );

    // Nesting deeper than 32 levels, named by where it is.
    let mut deep = json!(1);
    for _ in 0..40 {
        deep = json!([deep]);
    }
    let mut nested = session("op_1", 2, 0.5, &["recon"]);
    nested["data"]["extra"] = deep;
    let (status, answer) = server.post_events(&json!([nested])).await;
    assert_eq!(status, 422, "{answer}");
    let message = answer["message"].as_str().unwrap();
    assert!(
        message.starts_with("events[0].data.extra[0]")
            && message.ends_with("JSON nesting depth exceeds the limit of 32"),
        "{answer}"
    );

    // Deeper than the JSON parser itself goes: malformed, still JSON.
    let body = format!("{}{}", "[".repeat(500), "]".repeat(500));
    let (status, answer) = server.post_raw(body.into_bytes(), "application/json").await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["error"], "malformed_json");

    // A method the route does not have: JSON too.
    let r = common::client()
        .delete(server.at("/api/events"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    let answer: Value = r.json().await.unwrap();
    assert_eq!(answer["error"], "method_not_allowed");

    assert_eq!(server.head().await, 0, "nothing was appended");
    println!("limits: 8 MiB + 1 body → 413, 1001 events → 413, 5000-byte string → 422, depth 41 → 422, depth 500 → 400, DELETE → 405; all JSON; head 0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_request_times_out_in_json() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--request-timeout-ms", "300"]);
    server.ready().await;
    let started = Instant::now();
    let (status, answer) = server.get(UNREACHABLE).await;
    let took = started.elapsed();
    assert_eq!(status, 503, "{answer}");
    assert_eq!(answer["error"], "timeout");
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .starts_with("the request did not complete within 300 ms"),
        "{answer}"
    );
    // The read would have waited 5 s for its position; the layer cut it at 300 ms.
    assert!(took < Duration::from_secs(3), "took {took:?}");
    let (status, _) = server.get("/api/analytics/operators").await;
    assert_eq!(status, 200, "fast requests are untouched");
    println!("timeout: a 5 s wait cut after {took:?} with 503 timeout");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_beyond_the_concurrency_limit_are_shed_in_json() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--max-concurrent-requests", "1"]);
    server.ready().await;
    // One request holds the only permit (it waits 5 s for an unreachable position).
    // (It may itself be shed if a probe below holds the permit when it arrives: it retries.)
    let slow = tokio::spawn({
        let url = server.at(UNREACHABLE);
        async move {
            for _ in 0..500 {
                let status = common::client()
                    .get(&url)
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16();
                if status != 503 {
                    return status;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            panic!("the slow request was never admitted");
        }
    });
    // While it is in flight, another request is refused at once; probes still answer.
    let deadline = Instant::now() + Duration::from_secs(4);
    let shed = loop {
        let (status, answer) = server.get("/api/analytics/operators").await;
        if status == 503 {
            break answer;
        }
        assert_eq!(status, 200, "{answer}");
        assert!(
            Instant::now() < deadline && !slow.is_finished(),
            "never shed while the slow request held the permit"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(shed["error"], "overloaded", "{shed}");
    let (status, _) = server.get("/healthz").await;
    assert_eq!(status, 200, "probes bypass the limit");
    assert_eq!(
        slow.await.unwrap(),
        504,
        "the slow read ends on its own wait"
    );
    let (status, _) = server.get("/api/analytics/operators").await;
    assert_eq!(status, 200, "the permit came back");
    println!(
        "concurrency: limit 1, second request 503 overloaded ({}), healthz 200",
        shed["message"]
    );
}
