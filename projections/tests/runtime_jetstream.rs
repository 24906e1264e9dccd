//! The runtime against a real `nats-server -js`: JetStream drops a retried record only
//! inside its duplicate window and a node's id index can lag another node's appends, so the
//! stream may hold an event twice. Every node marks the later copy the same way; the folds
//! apply the event once, and dead-letter an id that comes back with other content.

#![allow(clippy::unwrap_used)] // a test fails by panicking: `unwrap` is its assertion

mod common;

use std::sync::Arc;

use ats_events::cloudevents::event_id;
use ats_events::{codec, Envelope, Payload};
use ats_ingest::jetstream::{JetStreamConfig, JetStreamLog, COUNT_HEADER};
use ats_ingest::testkit::NatsServer;
use ats_ingest::{EventLog, StoredEvent};
use ats_projections::profiles;
use ats_projections::runtime::{self, ProjectorState, Runtime};
use common::*;

/// A node on the server's stream with its own id index in `dir`.
async fn node(server: &NatsServer, dir: &tempfile::TempDir) -> Arc<JetStreamLog> {
    Arc::new(server.log(JetStreamConfig::default(), dir.path()).await)
}

/// Publishes `events` as one record, as a node whose id index has not read them yet does
/// (its append would have answered from its index instead). Returns the record's sequence.
async fn publish_as_another_node(log: &JetStreamLog, events: &[Envelope]) -> u64 {
    let encoded: Vec<Vec<u8>> = events.iter().map(|e| codec::encode(e).unwrap()).collect();
    let record = codec::encode_record(encoded.iter().map(Vec::as_slice));
    let mut headers = async_nats::HeaderMap::new();
    headers.insert(COUNT_HEADER, events.len().to_string().as_str());
    log.context()
        .publish_with_headers("ats.events.batch._", headers, record.into())
        .await
        .unwrap()
        .await
        .unwrap()
        .sequence
}

async fn read_all(log: &dyn EventLog) -> Vec<StoredEvent> {
    let mut out: Vec<StoredEvent> = Vec::new();
    loop {
        let after = out.last().map_or(0, |e| e.position);
        let next = log.read(after, 100).await.unwrap();
        if next.is_empty() {
            return out;
        }
        out.extend(next);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_stored_twice_applies_once_and_a_changed_copy_is_a_conflict() {
    let server = NatsServer::start();
    let dir = tempfile::tempdir().unwrap();
    let log = node(&server, &dir).await;

    let mut sa = session("sa", "op_1", 0, 60);
    sa.skills_practiced = skills(&["recon"]);
    sa.score = 0.8;
    let a = completed("a", sa);
    let b = completed("b", session("sb", "op_1", 100, 30));
    let c = completed("c", session("sc", "op_2", 200, 30));
    let first = log.append(vec![a.clone(), b]).await.unwrap();
    // Another record (another message id): the server stores it, `a` included.
    let second = publish_as_another_node(&log, &[a.clone(), c]).await;
    let second_head = ats_ingest::jetstream::position(second, 1);
    assert!(second_head > first.last_position());
    let stored = read_all(log.as_ref()).await;
    let copies = stored
        .iter()
        .filter(|e| e.envelope().is_some_and(|e| e.id == a.id))
        .count();
    assert_eq!((stored.len(), copies), (4, 2), "the log holds `a` twice");

    let scratch = Scratch::new();
    let runtime = Runtime::start(
        scratch.store.clone(),
        log.clone(),
        projectors_with_applications(),
    )
    .unwrap();
    let head = log.head().await.unwrap();
    assert_eq!(head, second_head);
    assert!(runtime.wait_for(head, WAIT).await);

    let applications = runtime.handle(APPLICATIONS).unwrap().clone();
    let counts = application_counts(&applications.tree());
    let once: std::collections::BTreeMap<String, u64> = ["a", "b", "c"]
        .iter()
        .map(|id| (event_id(id).to_string(), 1))
        .collect();
    assert_eq!(counts, once, "each event applied once");

    let handle = runtime.handle(profiles::NAME).unwrap().clone();
    let tree = handle.tree();
    let op1 = profiles::profile(&tree, "op_1").unwrap();
    assert_eq!(op1.total_sessions, 2);
    assert_close(op1.total_hours, 1.5);
    assert_eq!(op1.skills["recon"].practice_count, 1);
    assert_eq!(profiles::profile(&tree, "op_2").unwrap().total_sessions, 1);
    assert!(handle.dead_letters().is_empty());

    // `a` again in a later record, with other content.
    let mut changed = a.clone();
    if let Payload::SessionCompleted(s) = &mut changed.payload {
        s.score = 0.1;
    }
    let d = completed("d", session("sd", "op_2", 300, 30));
    // This node's own append refuses it, having indexed `a`…
    let refused = log
        .append(vec![d.clone(), changed.clone()])
        .await
        .unwrap_err();
    assert!(matches!(refused, ats_ingest::LogError::Conflict { id } if id == a.id));
    // … but a node that has not read `a` yet publishes it.
    let third = publish_as_another_node(&log, &[d, changed]).await;
    let conflict_at = ats_ingest::jetstream::position(third, 1);
    assert!(runtime.wait_for(conflict_at, WAIT).await);
    for h in runtime.handles() {
        let letters = h.dead_letters();
        assert_eq!(letters.len(), 1, "{}", h.name());
        let letter = &letters[0];
        assert_eq!(letter.position, conflict_at);
        assert_eq!(letter.event_id, Some(a.id.to_string()));
        assert_eq!(letter.kind.as_deref(), Some("ats.session.completed"));
        assert_eq!(
            letter.error,
            format!(
                "conflict: event id {} was first written at position {} with other content",
                a.id, first.positions[0]
            )
        );
        assert_eq!(
            h.status().dead_letters,
            1,
            "{}: the status counts the conflict",
            h.name()
        );
    }
    let counts = application_counts(&applications.tree());
    assert_eq!(counts.len(), 4);
    assert!(counts.values().all(|&n| n == 1), "{counts:?}");
    let tree = handle.tree();
    assert_eq!(profiles::session(&tree, "sa").unwrap().data.score, 0.8);
    assert_eq!(profiles::profile(&tree, "op_2").unwrap().total_sessions, 2);

    assert!(eventually(|| handle.status().state == ProjectorState::Live).await);
    let status = handle.status();
    assert_eq!((status.position, status.lag_events), (conflict_at, 0));

    // An offline replay of the same stream ends in the same trees, dead letters included.
    let offline = Scratch::new();
    runtime::rebuild_all(
        &offline.store,
        log.clone(),
        projectors_with_applications(),
        |_, _, _| {},
    )
    .await
    .unwrap();
    for h in runtime.handles() {
        let rebuilt = offline.store.tree(h.name(), 1).unwrap();
        assert_eq!(entries(&rebuilt), entries(&h.tree()), "{}", h.name());
    }

    // Another node, with an index of its own built from the stream, marks the same copies.
    let other_dir = tempfile::tempdir().unwrap();
    let other = node(&server, &other_dir).await;
    let other_scratch = Scratch::new();
    let other_runtime = Runtime::start(
        other_scratch.store.clone(),
        other.clone(),
        projectors_with_applications(),
    )
    .unwrap();
    assert!(other_runtime.wait_for(conflict_at, WAIT).await);
    for h in runtime.handles() {
        let theirs = other_runtime.handle(h.name()).unwrap().tree();
        assert_eq!(entries(&theirs), entries(&h.tree()), "{}", h.name());
    }
    other_runtime.shutdown().await;
    runtime.shutdown().await;
}

/// A record another writer published on the stream's subjects, which is no event record:
/// one dead letter, and the events around it apply.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undecodable_record_is_dead_lettered() {
    let server = NatsServer::start();
    let dir = tempfile::tempdir().unwrap();
    let log = node(&server, &dir).await;
    log.append(vec![completed("e1", session("s1", "op_1", 0, 30))])
        .await
        .unwrap();
    let ack = log
        .context()
        .publish("ats.events.foreign._", b"\xc1 not a record".to_vec().into())
        .await
        .unwrap()
        .await
        .unwrap();
    let poison_at = ats_ingest::jetstream::position(ack.sequence, 0);
    let head = log
        .append(vec![completed("e2", session("s2", "op_1", 60, 30))])
        .await
        .unwrap()
        .last_position();

    let scratch = Scratch::new();
    let runtime = scratch.run(log.clone());
    let handle = runtime.handle(profiles::NAME).unwrap().clone();
    assert!(handle.wait_for(head, WAIT).await);
    let letters = handle.dead_letters();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].position, poison_at);
    assert_eq!(
        (letters[0].event_id.clone(), letters[0].kind.clone()),
        (None, None)
    );
    assert!(
        letters[0].error.starts_with("undecodable: "),
        "{}",
        letters[0].error
    );
    assert_eq!(handle.status().dead_letters, 1);
    assert_eq!(
        profiles::profile(&handle.tree(), "op_1")
            .unwrap()
            .total_sessions,
        2
    );
    runtime.shutdown().await;
}
