//! The projector runtime end to end on the embedded (redb) log and a real sled store: live
//! folding, offline rebuilds, rebuilds while serving, restarts from the checkpoint.

#![allow(clippy::unwrap_used)] // a test fails by panicking: `unwrap` is its assertion

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use ats_events::{Envelope, Payload};
use ats_ingest::embedded::EmbeddedLog;
use ats_ingest::{EventLog, Position};
use ats_projections::profiles;
use ats_projections::runtime::{self, ProjectorState, Runtime};
use ats_projections::store::Store;
use common::*;

/// An embedded log in a temporary directory.
struct Log {
    dir: tempfile::TempDir,
    log: Arc<EmbeddedLog>,
}

impl Log {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let log = Arc::new(EmbeddedLog::open(dir.path().join("log.redb")).unwrap());
        Self { dir, log }
    }

    /// Appends in batches of 500 (as producers would); returns the head.
    async fn append(&self, events: &[Envelope]) -> Position {
        for chunk in events.chunks(500) {
            self.log.append(chunk.to_vec()).await.unwrap();
        }
        self.log.head().await.unwrap()
    }

    fn dyn_log(&self) -> Arc<dyn EventLog> {
        self.log.clone()
    }
}

/// Metric points a history yields: one per session metric and per `ats.metric.recorded`.
fn metric_points(events: &[Envelope]) -> usize {
    events
        .iter()
        .map(|e| match &e.payload {
            Payload::SessionCompleted(s) => s.metrics.len(),
            Payload::MetricRecorded(_) => 1,
            _ => 0,
        })
        .sum()
}

const ZERO_DIGEST: &str = "0000000000000000";

/// Raises its flag when dropped.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_runtime_matches_an_offline_rebuild() {
    let log = Log::new();
    // Over three runtime batches (of 1,000 events).
    let events = history("h", 2400);
    assert!(events.len() > 2 * runtime::BATCH, "{}", events.len());
    let head = log.append(&events).await;
    assert_eq!(head, events.len() as Position);

    let live = Scratch::new();
    let runtime = live.run(log.dyn_log());
    let handle = runtime.handle(profiles::NAME).unwrap().clone();
    assert!(runtime.wait_for(head, WAIT).await);
    assert!(
        eventually(|| runtime.caught_up(head)
            && runtime
                .handles()
                .iter()
                .all(|h| h.status().state == ProjectorState::Live))
        .await,
        "not every projector is live"
    );
    for h in runtime.handles() {
        let status = h.status();
        assert_eq!(
            (status.position, status.head, status.lag_events),
            (head, head, 0),
            "{}",
            h.name()
        );
        assert_eq!(status.lag_seconds, 0.0);
        assert_eq!(
            (
                status.dead_letters,
                status.generation,
                status.last_error.clone()
            ),
            (0, 0, None)
        );
        assert_eq!(status.digest, runtime::digest(&h.tree()), "{}", h.name());
    }
    let status = handle.status();
    assert_eq!(status.state, ProjectorState::Live);
    assert_ne!(status.digest, ZERO_DIGEST);

    let tree = handle.tree();
    let counts = profiles::counts(&tree);
    assert_eq!(
        (counts.operators, counts.sessions, counts.metrics),
        (5, 2400, metric_points(&events) as u64)
    );
    for operator in OPERATORS {
        let p = profiles::profile(&tree, operator).unwrap();
        assert_eq!(
            p.total_sessions,
            history_sessions_of(operator, 2400),
            "{operator}"
        );
        assert_eq!(p.name, format!("Operator {operator}"));
    }

    // The offline replay into a second store ends byte for byte where the live fold is.
    let offline = Scratch::new();
    let mut progress = Vec::new();
    let rebuilt = runtime::rebuild_all(
        &offline.store,
        log.dyn_log(),
        ats_projections::all_projectors(),
        |name, at, target| progress.push((name.to_owned(), at, target)),
    )
    .await
    .unwrap();
    let live_statuses: Vec<_> = runtime
        .handles()
        .iter()
        .map(|h| (h.name().to_owned(), head, h.status().digest))
        .collect();
    assert_eq!(rebuilt, live_statuses);
    let profiles_progress: Vec<_> = progress.iter().filter(|p| p.0 == profiles::NAME).collect();
    assert_eq!(
        profiles_progress.len(),
        events.len().div_ceil(runtime::REPLAY_BATCH)
    );
    assert_eq!(
        profiles_progress.last().unwrap(),
        &&(profiles::NAME.to_owned(), head, head)
    );
    for h in runtime.handles() {
        assert_eq!(offline.store.active_generation(h.name()).unwrap(), 1);
        let offline_tree = offline.store.tree(h.name(), 1).unwrap();
        assert_eq!(entries(&offline_tree), entries(&h.tree()), "{}", h.name());
        assert_eq!(
            runtime::digest(&offline_tree),
            h.status().digest,
            "{}",
            h.name()
        );
    }

    // New events reach the live profile.
    let before = profiles::profile(&tree, "op_1").unwrap();
    let mut late = session("late-1", "op_1", 100_000, 90);
    late.skills_practiced = skills(&["forensics"]);
    late.score = 1.0;
    let head2 = log
        .log
        .append(vec![
            completed("late-e1", late),
            certification("late-c1", "op_1", "gpen", minutes(100_100)),
        ])
        .await
        .unwrap()
        .last_position();
    assert_eq!(head2, head + 2);
    assert!(handle.wait_for(head2, WAIT).await);
    let after = profiles::profile(&handle.tree(), "op_1").unwrap();
    assert_eq!(after.total_sessions, before.total_sessions + 1);
    assert_close(after.total_hours, before.total_hours + 1.5);
    let forensics = &after.skills["forensics"];
    assert_eq!(
        (forensics.practice_count, forensics.last_practiced),
        (1, minutes(100_090))
    );
    assert_close(forensics.average_score, 1.0);
    assert_eq!(after.skills.len(), before.skills.len() + 1);
    assert_eq!(
        after.certifications.last().map(String::as_str),
        Some("gpen")
    );
    assert_eq!(
        profiles::sessions(&handle.tree(), "op_1", 1)[0]
            .data
            .session_id,
        "late-1"
    );
    assert_ne!(handle.status().digest, status.digest);
    runtime.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebuild_while_serving_swaps_in_an_identical_tree() {
    let log = Log::new();
    let head = log.append(&history("r", 3000)).await;
    let live = Scratch::new();
    let runtime = live.run(log.dyn_log());
    let handle = runtime.handle(profiles::NAME).unwrap().clone();
    assert!(handle.wait_for(head, WAIT).await);
    assert!(eventually(|| handle.status().state == ProjectorState::Live).await);
    let old_tree = handle.tree();
    let before = entries(&old_tree);
    let status = handle.status();
    let expected = history_sessions_of("op_2", 3000);

    // A reader querying all the time, as the HTTP handlers do: each query takes the tree
    // the handle serves now. It stops when `stop` drops, also when an assertion fails
    // (the test's runtime waits for its blocking tasks).
    let stop = StopOnDrop(Arc::new(AtomicBool::new(false)));
    let reader = {
        let (handle, stop) = (handle.clone(), stop.0.clone());
        tokio::task::spawn_blocking(move || {
            let (mut queries, mut failures, mut states) = (0u64, Vec::new(), BTreeSet::new());
            while !stop.load(Ordering::Relaxed) {
                states.insert(format!("{:?}", handle.status().state));
                let tree = handle.tree();
                let total = profiles::profile(&tree, "op_2").map(|p| p.total_sessions);
                let recent = profiles::sessions(&tree, "op_2", 3).len();
                if total != Some(expected) || recent != 3 {
                    failures.push((total, recent));
                }
                queries += 1;
            }
            (queries, failures, states)
        })
    };

    runtime.request_rebuild();
    assert!(
        eventually(|| handle.status().generation > status.generation).await,
        "{:?}",
        handle.status()
    );
    assert!(handle.wait_for(head, WAIT).await);
    assert!(
        eventually(|| handle.status().state == ProjectorState::Live).await,
        "{:?}",
        handle.status()
    );
    drop(stop);
    let (queries, failures, states) = reader.await.unwrap();
    assert!(queries > 0);
    assert!(
        failures.is_empty(),
        "{} of {queries} queries failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );

    let after = handle.status();
    assert_eq!(after.generation, status.generation + 1);
    assert_eq!(
        live.store.active_generation(profiles::NAME).unwrap(),
        after.generation
    );
    assert_eq!(
        (after.position, after.digest.clone(), after.dead_letters),
        (head, status.digest.clone(), 0)
    );
    assert_eq!(
        entries(&handle.tree()),
        before,
        "the rebuilt tree is byte-identical"
    );
    assert_eq!(
        profiles::profile(&handle.tree(), "op_2")
            .unwrap()
            .total_sessions,
        expected
    );
    eprintln!("reader made {queries} queries; saw states {states:?}");
    // A query that took the tree just before the swap still reads it after
    // (`rebuild_drops_the_tree_it_replaced_while_a_query_reads_it`).
    assert_eq!(
        profiles::profile(&old_tree, "op_2").unwrap().total_sessions,
        expected
    );
    assert_eq!(
        profiles::sessions(&old_tree, "op_2", 0).len() as u64,
        expected
    );
    assert_eq!(entries(&old_tree), before);

    // The new tree keeps following the log.
    let head2 = log
        .append(&[completed("r-late", session("r-late", "op_2", 90_000, 60))])
        .await;
    assert!(handle.wait_for(head2, WAIT).await);
    assert_eq!(
        profiles::profile(&handle.tree(), "op_2")
            .unwrap()
            .total_sessions,
        expected + 1
    );

    // The next rebuild drops the generation the first one replaced, and only that one.
    runtime.request_rebuild();
    assert!(
        eventually(|| handle.status().generation == status.generation + 2).await,
        "{:?}",
        handle.status()
    );
    assert!(handle.wait_for(head2, WAIT).await);
    assert!(
        live.store
            .tree(profiles::NAME, status.generation)
            .unwrap()
            .is_empty(),
        "dropped"
    );
    let replaced = live
        .store
        .tree(profiles::NAME, status.generation + 1)
        .unwrap();
    assert_eq!(
        entries(&replaced),
        entries(&handle.tree()),
        "kept for queries in flight"
    );
    assert_eq!(
        profiles::profile(&handle.tree(), "op_2")
            .unwrap()
            .total_sessions,
        expected + 1
    );
    runtime.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_resumes_from_the_checkpoint() {
    let log = Log::new();
    let first = history("c", 2500);
    let head1 = log.append(&first).await;
    let path = log.dir.path().join("read-models");

    // Stop the runtime while it is catching up: after its first batch at the earliest.
    let stopped_at = {
        let store = Store::open(&path).unwrap();
        let runtime =
            Runtime::start(store.clone(), log.dyn_log(), projectors_with_applications()).unwrap();
        assert!(runtime.wait_for(runtime::BATCH as Position, WAIT).await);
        runtime.shutdown().await;
        let positions: Vec<_> = runtime
            .handles()
            .iter()
            .map(|h| (h.name(), h.status().position))
            .collect();
        positions
    };
    assert!(
        stopped_at
            .iter()
            .all(|(_, p)| (runtime::BATCH as Position..=head1).contains(p)),
        "{stopped_at:?}"
    );

    // Written while no runtime runs: new sessions, and retries the log answers as duplicates.
    let second = history("d", 700);
    let head2 = log.append(&second).await;
    let retried = log.log.append(first[..50].to_vec()).await.unwrap();
    assert_eq!(retried.duplicates.len(), 50);

    let store = Store::open(&path).unwrap();
    // Nothing was moved aside: the store reopened with its trees and checkpoints.
    assert!(!std::path::Path::new(&format!("{}.damaged-1", path.display())).exists());
    for (name, stopped) in &stopped_at {
        let generation = store.active_generation(name).unwrap();
        assert_eq!(
            runtime::checkpoint(&store.tree(name, generation).unwrap()),
            *stopped,
            "{name}"
        );
    }
    let runtime =
        Runtime::start(store.clone(), log.dyn_log(), projectors_with_applications()).unwrap();
    assert!(runtime.wait_for(head2, WAIT).await);

    let profiles_tree = runtime.handle(profiles::NAME).unwrap().tree();
    let total: u64 = profiles::operator_ids(&profiles_tree)
        .iter()
        .map(|op| {
            profiles::profile(&profiles_tree, op)
                .unwrap()
                .total_sessions
        })
        .sum();
    assert_eq!(total, 2500 + 700, "every distinct session once");
    for operator in OPERATORS {
        assert_eq!(
            profiles::profile(&profiles_tree, operator)
                .unwrap()
                .total_sessions,
            history_sessions_of(operator, 2500) + history_sessions_of(operator, 700)
        );
    }
    let counts = application_counts(&runtime.handle(APPLICATIONS).unwrap().tree());
    assert_eq!(counts.len(), first.len() + second.len());
    assert!(
        counts.values().all(|&n| n == 1),
        "an event was applied twice"
    );

    // And the trees are those of a fresh rebuild.
    let fresh = Scratch::new();
    runtime::rebuild_all(
        &fresh.store,
        log.dyn_log(),
        projectors_with_applications(),
        |_, _, _| {},
    )
    .await
    .unwrap();
    for handle in runtime.handles() {
        let rebuilt = fresh.store.tree(handle.name(), 1).unwrap();
        assert_eq!(
            entries(&handle.tree()),
            entries(&rebuilt),
            "{}",
            handle.name()
        );
        assert_eq!(handle.status().digest, runtime::digest(&rebuilt));
    }
    runtime.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recreated_log_fails_the_projector_until_a_rebuild() {
    let path = tempfile::tempdir().unwrap();
    let store_path = path.path().join("read-models");
    {
        let log = Log::new();
        let head = log.append(&history("old", 20)).await;
        let runtime = Runtime::start(
            Store::open(&store_path).unwrap(),
            log.dyn_log(),
            ats_projections::all_projectors(),
        )
        .unwrap();
        assert!(runtime.wait_for(head, WAIT).await);
        runtime.shutdown().await;
    }
    // A new, shorter log: the checkpoint (20+) lies beyond its head.
    let log = Log::new();
    let head = log.append(&history("new", 3)).await;
    let runtime = Runtime::start(
        Store::open(&store_path).unwrap(),
        log.dyn_log(),
        ats_projections::all_projectors(),
    )
    .unwrap();
    let handle = runtime.handle(profiles::NAME).unwrap().clone();
    assert!(
        eventually(|| handle.status().state == ProjectorState::Failed).await,
        "{:?}",
        handle.status()
    );
    let error = handle.status().last_error.unwrap_or_default();
    assert!(error.contains("beyond the end of the log"), "{error}");
    // The old fold is still served, untouched.
    assert_eq!(profiles::counts(&handle.tree()).sessions, 20);

    runtime.request_rebuild();
    assert!(
        eventually(|| handle.status().generation == 1).await,
        "{:?}",
        handle.status()
    );
    assert!(handle.wait_for(head, WAIT).await);
    let tree = handle.tree();
    assert_eq!(profiles::counts(&tree).sessions, 3);
    assert!(
        profiles::session(&tree, "new-s0").is_some()
            && profiles::session(&tree, "old-s0").is_none()
    );
    runtime.shutdown().await;
}
