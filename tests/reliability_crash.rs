//! Crash at any point, on both logs: the real binary is `kill -9`ed while a client ingests,
//! at a pseudo-random moment of each trial; after every restart the client re-sends what was
//! not acknowledged. At the end the log itself is read back (redb file, JetStream stream):
//! every event sent is in it exactly once (every acknowledged one included), and each live
//! read model equals `ats-mafia replay` of that log (equal positions and digests).
//!
//! Trials: 5 per log by default, `ATS_CRASH_TRIALS=50` for the long run (RELIABILITY.md).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking, with the reason

mod common;

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ats_events::cloudevents::event_id;
use ats_ingest::embedded::EmbeddedLog;
use ats_ingest::jetstream::JetStreamConfig;
use ats_ingest::testkit::NatsServer;
use ats_ingest::EventLog;
use common::{session, Server};
use serde_json::Value;

/// Events per request.
const BATCH: u32 = 20;

/// Trials per log; `ATS_CRASH_TRIALS` raises it for the long run.
fn trials() -> u32 {
    std::env::var("ATS_CRASH_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5)
}

/// The session events of the batch starting at `base`.
fn batch(base: u32) -> Vec<Value> {
    (base..base + BATCH)
        .map(|n| {
            session(
                &format!("op_{}", n % 7),
                n,
                0.5 + f64::from(n % 5) / 10.0,
                &["recon", "exploitation"],
            )
        })
        .collect()
}

fn id_of(n: u32) -> uuid::Uuid {
    event_id(&format!("op_{}-sess-{n}-done", n % 7))
}

/// A tiny deterministic generator (xorshift), so a failing trial can be re-run exactly.
fn pseudo_random(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// Posts batches as fast as the server takes them until a request fails; returns the bases
/// of the acknowledged batches. `acked` counts them for the test to watch.
async fn ingest(url: String, next: Arc<AtomicU32>, acked: Arc<AtomicU32>) -> Vec<u32> {
    let http = common::authorized()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let mut done = Vec::new();
    loop {
        let base = next.fetch_add(BATCH, Ordering::SeqCst);
        let sent = http
            .post(format!("{url}/api/events"))
            .json(&batch(base))
            .send()
            .await;
        match sent {
            Ok(r) if r.status() == 200 => {
                done.push(base);
                acked.fetch_add(1, Ordering::SeqCst);
            }
            // The kill: the outcome of this batch is unknown; it is re-sent after restart.
            _ => return done,
        }
    }
}

/// Every event id in the log with how many times it is there.
async fn ids_in(log: &dyn EventLog) -> HashMap<uuid::Uuid, u32> {
    let mut counts = HashMap::new();
    let mut after = 0;
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        assert!(
            Instant::now() < deadline,
            "reading the log back took too long"
        );
        let events = log.read(after, 1000).await.unwrap();
        let Some(last) = events.last() else { break };
        after = last.position;
        for stored in &events {
            let envelope = stored.envelope().expect("every stored event decodes");
            *counts.entry(envelope.id).or_insert(0) += 1;
        }
    }
    counts
}

async fn crash_trials(nats: Option<&NatsServer>) {
    let label = if nats.is_some() {
        "jetstream"
    } else {
        "embedded"
    };
    let dir = tempfile::tempdir().unwrap();
    let nats_args: Vec<String> = match nats {
        Some(n) => vec![
            "--nats".into(),
            n.url(),
            "--stream".into(),
            "ATS_EVENTS".into(),
        ],
        None => vec![],
    };
    let extra: Vec<&str> = nats_args.iter().map(String::as_str).collect();
    let mut server = Server::start(dir.path(), &extra);
    let next = Arc::new(AtomicU32::new(0));
    let mut acknowledged: BTreeSet<u32> = BTreeSet::new();
    let mut random = 0x9e37_79b9_7f4a_7c15_u64;
    let trials = trials();
    for trial in 0..trials {
        server.ready().await;
        let acked = Arc::new(AtomicU32::new(0));
        let client = tokio::spawn(ingest(server.url.clone(), next.clone(), acked.clone()));
        // Kill after a pseudo-random number of acknowledged batches (0..12), then a random
        // 0..25 ms more, so the kill lands anywhere in a request: parsing, the log's commit,
        // the answer, or a projector's batch.
        let batches = (pseudo_random(&mut random) % 12) as u32;
        let jitter = pseudo_random(&mut random) % 25;
        let deadline = Instant::now() + Duration::from_secs(60);
        while acked.load(Ordering::SeqCst) < batches {
            assert!(Instant::now() < deadline, "trial {trial}: ingest stalled");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        // The sleep picks the kill moment; it orders nothing the test then relies on.
        tokio::time::sleep(Duration::from_millis(jitter)).await;
        server.kill();
        let done = tokio::time::timeout(Duration::from_secs(60), client)
            .await
            .expect("the client notices the kill")
            .unwrap();
        println!(
            "[{label}] trial {trial}: killed after {batches} batches + {jitter} ms; {} batches acknowledged",
            done.len()
        );
        acknowledged.extend(done);
        server.restart();
    }
    server.ready().await;

    // The client's retry: every batch without an answer is sent again, and is accepted.
    let sent_events = next.load(Ordering::SeqCst);
    let unanswered: Vec<u32> = (0..sent_events)
        .step_by(BATCH as usize)
        .filter(|base| !acknowledged.contains(base))
        .collect();
    // A batch that committed before the kill comes back as duplicates: counted, to show the
    // kills landed both before and after the log's commit.
    let mut committed_unanswered = 0;
    for base in &unanswered {
        let (status, body) = server.post_events(&Value::Array(batch(*base))).await;
        assert_eq!(status, 200, "re-sending batch {base}: {body}");
        let duplicates = body["duplicates"].as_array().map_or(0, Vec::len);
        assert!(
            duplicates == 0 || duplicates == BATCH as usize,
            "half a batch: {body}"
        );
        committed_unanswered += usize::from(duplicates > 0);
    }
    server.ready().await;
    let (_, live) = server.get("/api/admin/projectors").await;
    server.stop();

    // The log itself: every event exactly once.
    let counts = match nats {
        None => ids_in(&EmbeddedLog::open(dir.path().join("log.redb")).unwrap()).await,
        Some(n) => {
            let reader = tempfile::tempdir().unwrap();
            ids_in(&n.log(JetStreamConfig::default(), reader.path()).await).await
        }
    };
    let mut losses = 0;
    let mut doubles = 0;
    for n in 0..sent_events {
        match counts.get(&id_of(n)).copied().unwrap_or(0) {
            0 => losses += 1,
            1 => {}
            _ => doubles += 1,
        }
    }
    assert_eq!(counts.len() as u32, sent_events, "events in the log");
    assert_eq!(
        (losses, doubles),
        (0, 0),
        "[{label}] events lost, events twice"
    );

    // Every live read model equals an offline rebuild of the same log.
    let mut args: Vec<String> = vec!["replay".into(), "--json".into(), "--data".into()];
    args.push(dir.path().display().to_string());
    args.extend(nats_args.iter().cloned());
    let replayed: Value =
        serde_json::from_str(&common::stdout_of(common::command().args(&args))).unwrap();
    let live = live["projectors"].as_array().unwrap();
    let rebuilt = replayed["projectors"].as_array().unwrap();
    assert_eq!(live.len(), rebuilt.len());
    for (live, rebuilt) in live.iter().zip(rebuilt) {
        assert_eq!(live["name"], rebuilt["projector"]);
        assert_eq!(live["position"], rebuilt["position"], "{}", live["name"]);
        assert_eq!(
            live["digest"], rebuilt["digest"],
            "[{label}] {} differs from its rebuild",
            live["name"]
        );
    }
    println!(
        "[{label}] {trials} kill -9 trials: {sent_events} events sent, {} acknowledged, {} re-sent after a kill ({committed_unanswered} of {} batches had committed unanswered); in the log exactly once: {}; losses = {losses}, duplicates = {doubles}; {} read models equal replay",
        acknowledged.len() as u32 * BATCH,
        unanswered.len() as u32 * BATCH,
        unanswered.len(),
        counts.len(),
        live.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_at_any_point_embedded_log() {
    crash_trials(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_at_any_point_jetstream_log() {
    let nats = NatsServer::start();
    crash_trials(Some(&nats)).await;
}
