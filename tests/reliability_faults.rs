//! Faults around the engine, with real components: a nats-server killed and restarted
//! mid-ingest, an engine started before its nats-server, a poison event, a disk that
//! refuses writes, unreadable NATS credentials. Each test prints what it tried.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking, with the reason

mod common;

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ats_events::cloudevents::event_id;
use ats_ingest::jetstream::JetStreamConfig;
use ats_ingest::testkit::NatsServer;
use ats_ingest::EventLog;
use common::{registered, session, Server};
use serde_json::{json, Value};

/// Polls `check` every 20 ms until it holds; fails after `limit`.
async fn eventually<F, Fut>(what: &str, limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn readyz(server_url: &str) -> (u16, Value) {
    match common::client()
        .get(format!("{server_url}/readyz"))
        .send()
        .await
    {
        Ok(r) => {
            let status = r.status().as_u16();
            (status, r.json().await.unwrap_or(Value::Null))
        }
        Err(_) => (0, Value::Null),
    }
}

async fn total_sessions(server: &Server) -> u64 {
    let (_, operators) = server.get("/api/analytics/operators").await;
    operators["operators"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["total_sessions"].as_u64().unwrap())
        .sum()
}

/// What the outage client saw.
#[derive(Default)]
struct Seen {
    acked: AtomicU32,
    refused: AtomicU32,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jetstream_outage_answers_503_then_recovers_without_loss_or_doubles() {
    const BATCHES: u32 = 40;
    const SIZE: u32 = 10;
    let mut nats = NatsServer::start();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--nats", &nats.url()]);
    server.ready().await;

    // A client that sends each batch until it is acknowledged, as a producer would.
    let seen = Arc::new(Seen::default());
    let client = tokio::spawn({
        let url = server.url.clone();
        let seen = seen.clone();
        async move {
            let http = common::authorized()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap();
            let mut refusals: Vec<(u16, Value, Duration)> = Vec::new();
            for b in 0..BATCHES {
                let body: Vec<Value> = (b * SIZE..(b + 1) * SIZE)
                    .map(|n| session(&format!("op_{}", n % 5), n, 0.7, &["recon"]))
                    .collect();
                let mut attempts = 0;
                loop {
                    attempts += 1;
                    assert!(attempts < 2000, "batch {b} never accepted");
                    let started = Instant::now();
                    let r = http
                        .post(format!("{url}/api/events"))
                        .json(&body)
                        .send()
                        .await
                        .expect("the engine stays up while NATS is down");
                    let status = r.status().as_u16();
                    let answer: Value = r.json().await.unwrap_or(Value::Null);
                    if status == 200 {
                        seen.acked.fetch_add(1, Ordering::SeqCst);
                        break;
                    }
                    seen.refused.fetch_add(1, Ordering::SeqCst);
                    refusals.push((status, answer, started.elapsed()));
                    // The producer's back-off before it retries the same batch.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
            refusals
        }
    });

    eventually(
        "three acknowledged batches",
        Duration::from_secs(60),
        || {
            let seen = seen.clone();
            async move { seen.acked.load(Ordering::SeqCst) >= 3 }
        },
    )
    .await;
    nats.kill();
    let acked_before = seen.acked.load(Ordering::SeqCst);
    eventually("a refused batch", Duration::from_secs(30), || {
        let seen = seen.clone();
        async move { seen.refused.load(Ordering::SeqCst) >= 1 }
    })
    .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let down = loop {
        let (status, body) = readyz(&server.url).await;
        if status == 503 {
            break body;
        }
        assert!(
            Instant::now() < deadline,
            "/readyz stayed {status} while NATS was down"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(down["ready"], false, "{down}");
    let (health, _) = server.get("/healthz").await;
    assert_eq!(health, 200, "the process stays live");

    nats.restart();
    let refusals = tokio::time::timeout(Duration::from_secs(180), client)
        .await
        .expect("the client finishes once NATS is back")
        .unwrap();
    server.ready().await;

    // Every refusal was a clear, prompt 503; nothing was acknowledged falsely.
    assert!(!refusals.is_empty());
    for (status, answer, took) in &refusals {
        assert_eq!(*status, 503, "{answer}");
        assert_eq!(answer["error"], "unavailable", "{answer}");
        assert!(
            answer["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("event log unavailable: ")),
            "{answer}"
        );
        assert!(*took < Duration::from_secs(10), "a refusal took {took:?}");
    }

    // The projectors resumed by themselves and hold each session once.
    let total = u64::from(BATCHES * SIZE);
    let (status, receipt) = server
        .post_events(&json!([session("op_after", 9999, 0.8, &["recon"])]))
        .await;
    assert_eq!(status, 200, "{receipt}");
    let position = receipt["positions"][0].as_u64().unwrap();
    let (status, _) = server
        .get(&format!(
            "/api/analytics/operator/op_after/performance?min_position={position}"
        ))
        .await;
    assert_eq!(status, 200, "the projectors resumed");
    assert_eq!(total_sessions(&server).await, total + 1);

    // The stream itself holds every event exactly once (re-sent batches were deduplicated).
    let reader = tempfile::tempdir().unwrap();
    let log = nats.log(JetStreamConfig::default(), reader.path()).await;
    let mut counts: HashMap<uuid::Uuid, u32> = HashMap::new();
    let mut after = 0;
    loop {
        let events = log.read(after, 1000).await.unwrap();
        let Some(last) = events.last() else { break };
        after = last.position;
        for stored in &events {
            *counts.entry(stored.envelope().unwrap().id).or_insert(0) += 1;
        }
    }
    for n in 0..BATCHES * SIZE {
        let id = event_id(&format!("op_{}-sess-{n}-done", n % 5));
        assert_eq!(counts.get(&id), Some(&1), "session {n} in the stream");
    }
    let (_, letters) = server.get("/api/admin/dead-letters").await;
    assert_eq!(letters["count"], 0, "{letters}");
    println!(
        "outage: {BATCHES} batches of {SIZE}; nats-server killed after {acked_before} acknowledged; {} refusals, all 503 within 10 s; readyz 503 while down; {} events in the stream, each once; losses = 0",
        refusals.len(),
        counts.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_before_nats_is_live_not_ready_then_ready() {
    let mut nats = NatsServer::stopped();
    let dir = tempfile::tempdir().unwrap();
    let stderr = dir.path().join("stderr.log");
    // ":" is an empty prefix: only the stderr redirection is wanted here.
    let server = Server::start_wrapped(
        &dir.path().join("data"),
        &["--nats", &nats.url()],
        ":",
        &stderr,
    );

    let (status, _) = server.get("/healthz").await;
    assert_eq!(status, 200, "/healthz answers while connecting");
    let deadline = Instant::now() + Duration::from_secs(30);
    let body = loop {
        let (status, answer) = readyz(&server.url).await;
        assert_eq!(status, 503, "{answer}");
        if answer["log"]["error"]
            .as_str()
            .is_some_and(|e| e.starts_with("connecting to NATS at "))
        {
            break answer;
        }
        assert!(
            Instant::now() < deadline,
            "/readyz never named the retry: {answer}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(body["ready"], false);
    let (status, refused) = server
        .post_events(&json!([session("op_s", 1, 0.5, &["recon"])]))
        .await;
    assert_eq!(status, 503, "{refused}");
    assert_eq!(refused["error"], "unavailable");
    eventually("the retry log line", Duration::from_secs(30), || {
        let stderr = stderr.clone();
        async move {
            std::fs::read_to_string(&stderr)
                .unwrap_or_default()
                .contains("NATS not reachable yet; retrying.")
        }
    })
    .await;

    nats.restart();
    server.ready().await;
    let (status, receipt) = server
        .post_events(&json!([session("op_s", 1, 0.5, &["recon"])]))
        .await;
    assert_eq!(status, 200, "{receipt}");
    println!(
        "startup without NATS: healthz 200, readyz 503 ({}), POST 503, retry logged; nats-server started; ready, POST 200",
        body["log"]["error"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_event_is_dead_lettered_over_http_and_the_projector_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), &[]);
    server.ready().await;
    let first = session("op_a", 1, 0.8, &["recon"]);
    let mut poison = session("op_b", 2, 0.6, &["recon"]);
    // The session id of op_a's session, claimed by op_b: profiles_v3 cannot apply it.
    poison["data"]["session_id"] = first["data"]["session_id"].clone();
    let after = session("op_b", 3, 0.9, &["recon"]);
    let (status, receipt) = server
        .post_events(&json!([
            registered("op_a", "A"),
            registered("op_b", "B"),
            first,
            poison,
            after
        ]))
        .await;
    assert_eq!(status, 200, "{receipt}");
    let poison_position = receipt["positions"][3].as_u64().unwrap();
    let last = receipt["positions"][4].as_u64().unwrap();

    let (status, perf) = server
        .get(&format!(
            "/api/analytics/operator/op_b/performance?min_position={last}"
        ))
        .await;
    assert_eq!(status, 200, "{perf}");
    assert_eq!(perf["profile"]["total_sessions"], 1, "the event after it");
    let (_, letters) = server.get("/api/admin/dead-letters").await;
    let letter = letters["dead_letters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["projector"] == "profiles_v3")
        .unwrap_or_else(|| panic!("no dead letter of profiles_v3: {letters}"));
    assert_eq!(letter["position"], poison_position);
    assert_eq!(letter["kind"], "ats.session.completed");
    assert_eq!(
        letter["event_id"],
        event_id("op_b-sess-2-done").to_string(),
        "{letter}"
    );
    assert!(
        letter["error"]
            .as_str()
            .unwrap()
            .contains("belongs to operator op_a, not op_b"),
        "{letter}"
    );
    server.ready().await;
    let (_, projectors) = server.get("/api/admin/projectors").await;
    let profiles = projectors["projectors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "profiles_v3")
        .unwrap();
    assert_eq!(profiles["state"], "live");
    assert!(profiles["dead_letters"].as_u64().unwrap() >= 1);
    // … and it raises an alert, on the alert list and the dashboard.
    let alerts = server.get_ok("/api/analytics/alerts").await;
    let alert = alerts["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["alert_type"] == "system_health" && a["details"]["projector"] == "profiles_v3")
        .unwrap_or_else(|| panic!("no dead-letter alert: {alerts}"));
    assert_eq!(alert["details"]["position"], poison_position, "{alert}");
    let dashboard = server.get_ok("/api/analytics/dashboard").await;
    assert!(
        dashboard["active_alerts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["id"] == alert["id"]),
        "{dashboard}"
    );
    // The CLI's dashboard over the local data directory shows it too.
    server.stop();
    let (ok, out, err) = common::run_cli(&["analytics", "dashboard", "--json"], dir.path());
    assert!(ok, "{err}");
    let local: Value = serde_json::from_str(&out).unwrap();
    assert!(
        local["active_alerts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["id"] == alert["id"]),
        "{local}"
    );
    println!(
        "poison: dead letter at position {poison_position} ({}); profiles_v3 live past it",
        letter["error"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_disk_answers_5xx_and_not_ready_and_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let stderr = dir.path().join("stderr.log");
    // A file-size limit is a disk that fills up, even for root (who defeats chmod). The
    // signal is ignored so a write past the limit fails with EFBIG instead of killing us;
    // an ignored signal stays ignored across exec. `ulimit -f` counts 512-byte blocks: 2 MiB.
    let mut server = Server::start_wrapped(&data, &[], "trap '' XFSZ; ulimit -f 4096", &stderr);
    server.ready().await;
    let mut acked = 0u32;
    let mut failure = (0u16, Value::Null);
    for b in 0..200u32 {
        let body: Vec<Value> = (b * 100..(b + 1) * 100)
            .map(|n| {
                session(
                    &format!("op_{}", n % 50),
                    n,
                    0.7,
                    &["recon", "exploitation"],
                )
            })
            .collect();
        let (status, answer) = server.post_events(&Value::Array(body)).await;
        if status != 200 {
            failure = (status, answer);
            break;
        }
        acked += 1;
    }
    let (status, answer) = failure;
    assert!(
        (500..600).contains(&status),
        "the disk never filled or the failure was {status}: {answer}"
    );
    assert_eq!(answer["error"], "internal", "{answer}");
    let (status, ready) = readyz(&server.url).await;
    assert_eq!(status, 503, "{ready}");
    assert!(
        ready["log"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("File too large")),
        "{ready}"
    );
    // Still refused, never a silent 200.
    let (status, again) = server
        .post_events(&json!([session("op_x", 999_999, 0.5, &["recon"])]))
        .await;
    assert!((500..600).contains(&status), "{status}: {again}");
    server.kill();

    // With room again, every acknowledged event is there.
    let server = Server::start(&data, &[]);
    server.ready().await;
    let head = server.head().await;
    let acked_events = u64::from(acked) * 100;
    assert!(
        (acked_events..=acked_events + 100).contains(&head),
        "{acked_events} events acknowledged, the log holds {head}"
    );
    for b in 0..acked {
        let n = b * 100 + 99;
        let (status, _) = server
            .get(&format!(
                "/api/analytics/session/op_{}-sess-{n}/analysis",
                n % 50
            ))
            .await;
        assert_eq!(status, 200, "acknowledged session {n} is missing");
    }
    println!(
        "disk full (2 MiB file-size limit): {acked} batches of 100 acknowledged, then {status}; readyz 503 naming the error; after restart the log holds {head} events, none acknowledged lost"
    );
}

#[test]
fn unreadable_nats_credentials_or_half_a_tls_pair_stop_serve_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "log:\n  backend: nats\n  url: nats://127.0.0.1:9\n  credentials: /nonexistent/ats.creds\n",
            "log.credentials: cannot read /nonexistent/ats.creds",
        ),
        (
            "log:\n  backend: nats\n  url: nats://127.0.0.1:9\n  tls_cert: /nonexistent/cert.pem\n",
            "log.tls_cert and log.tls_key must be given together",
        ),
        (
            "log:\n  backend: nats\n  url: nats://127.0.0.1:9\n  tls_ca: /nonexistent/ca.pem\n",
            "log.tls_ca: cannot read /nonexistent/ca.pem",
        ),
    ];
    for (i, (config, expected)) in cases.iter().enumerate() {
        let path = dir.path().join(format!("ats-{i}.yaml"));
        std::fs::write(&path, config).unwrap();
        let started = Instant::now();
        let mut child = common::command()
            .args(["serve", "--bind", "127.0.0.1:0", "--connect-timeout", "60"])
            .arg("--config")
            .arg(&path)
            .arg("--data")
            .arg(dir.path().join(format!("data-{i}")))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if started.elapsed() > Duration::from_secs(20) {
                let _ = child.kill();
                panic!("serve kept retrying a configuration error: {expected}");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut stderr = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
        assert!(!status.success());
        assert!(stderr.contains(expected), "{stderr}");
        println!(
            "config error stops serve in {:?}: {expected}",
            started.elapsed()
        );
    }
}
