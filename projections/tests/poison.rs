//! Poison events: refused by the projector or undecodable, they go to the dead letters with
//! their position and the reason, and the rest of their batch folds as if they were absent.

#![allow(clippy::unwrap_used)] // a test fails by panicking: `unwrap` is its assertion

mod common;

use std::sync::Arc;

use ats_events::MetricType;
use ats_ingest::embedded::EmbeddedLog;
use ats_ingest::EventLog;
use ats_projections::profiles;
use ats_projections::runtime;
use common::*;

/// A tree's entries without the dead letters and the digest (which covers them).
fn without_dead_letters(tree: &sled::Tree) -> Vec<(Vec<u8>, Vec<u8>)> {
    entries(tree)
        .into_iter()
        .filter(|(k, _)| !k.starts_with(DEAD_PREFIX) && k.as_slice() != DIGEST_KEY)
        .collect()
}

/// The batch of the poison tests: `s1` belongs to op_1, and the event at index 3 (position
/// 4) completes `s1` again for op_3.
fn batch_around_poison() -> Vec<ats_ingest::StoredEvent> {
    let mut poison = session("s1", "op_3", 500, 10);
    poison.skills_practiced = skills(&["recon"]);
    poison.metrics = vec![session_metric(MetricType::DecisionQuality, 0.3)];
    let mut s2 = session("s2", "op_2", 60, 45);
    s2.skills_practiced = skills(&["recon"]);
    s2.score = 0.7;
    let mut s1 = session("s1", "op_1", 0, 30);
    s1.skills_practiced = skills(&["recon"]);
    stored(
        1,
        &[
            registered("r1", "op_1", "Ada", minutes(-10)),
            completed("e1", s1),
            metric("m1", "op_2", MetricType::StealthRating, 0.4, minutes(20)),
            completed("poison", poison),
            completed("e2", s2),
            certification("c1", "op_1", "oscp", minutes(200)),
        ],
    )
}

#[test]
fn session_of_another_operator_is_dead_lettered_and_the_batch_applies_without_it() {
    let batch = batch_around_poison();
    let with = Scratch::new();
    let folded = fold(&with.tree(0), &batch);
    assert_eq!(folded.position, 6);
    assert_eq!(folded.dead_letters, 1);

    let mut rest = batch.clone();
    rest.remove(3);
    let without = Scratch::new();
    let clean = fold(&without.tree(0), &rest);
    assert_eq!(clean.dead_letters, 0);
    assert_eq!(
        without_dead_letters(&with.tree(0)),
        entries(&without.tree(0))
            .into_iter()
            .filter(|(k, _)| k.as_slice() != DIGEST_KEY)
            .collect::<Vec<_>>(),
        "events before and after the poison apply as if it were absent"
    );

    let letters = dead_letters_in(&with.tree(0));
    assert_eq!(letters.len(), 1);
    let letter = &letters[0];
    assert_eq!(letter.position, 4);
    assert_eq!(
        letter.event_id,
        Some(ats_events::cloudevents::event_id("poison").to_string())
    );
    assert_eq!(letter.kind.as_deref(), Some("ats.session.completed"));
    assert_eq!(
        letter.error,
        "session s1 belongs to operator op_1, not op_3"
    );

    let tree = with.tree(0);
    assert!(
        profiles::profile(&tree, "op_3").is_none(),
        "the refused event left nothing"
    );
    let p1 = profiles::profile(&tree, "op_1").unwrap();
    assert_eq!((p1.name.as_str(), p1.total_sessions), ("Ada", 1));
    assert_eq!(p1.certifications, ["oscp"]);
    assert_eq!(
        profiles::session(&tree, "s1").unwrap().data.operator_id,
        "op_1"
    );
    assert_eq!(profiles::profile(&tree, "op_2").unwrap().total_sessions, 1);
    let counts = profiles::counts(&tree);
    assert_eq!(
        (counts.operators, counts.sessions, counts.metrics),
        (2, 2, 1)
    );
    assert_eq!(runtime::checkpoint(&tree), 6);
}

#[test]
fn poison_against_a_session_of_an_earlier_batch() {
    let mut f = Folder::new();
    f.fold(&[completed("e1", session("s1", "op_1", 0, 30))]);
    let before = entries(&f.tree);
    let folded = f.fold(&[completed("poison", session("s1", "op_2", 40, 30))]);
    assert_eq!((folded.position, folded.dead_letters), (2, 1));
    let letters = dead_letters_in(&f.tree);
    assert_eq!(letters.len(), 1);
    assert_eq!(
        (letters[0].position, letters[0].error.as_str()),
        (2, "session s1 belongs to operator op_1, not op_2")
    );
    // Only the dead letter, the checkpoint and the digest changed.
    let changed: Vec<_> = entries(&f.tree)
        .into_iter()
        .filter(|e| !before.contains(e))
        .map(|(k, _)| k)
        .collect();
    assert_eq!(changed.len(), 3, "{changed:?}");
    assert!(profiles::profile(&f.tree, "op_2").is_none());
    assert_eq!(
        profiles::profile(&f.tree, "op_1").unwrap().total_sessions,
        1
    );
    // The folds go on past it.
    f.fold(&[completed("e2", session("s2", "op_2", 40, 30))]);
    assert_eq!(
        profiles::profile(&f.tree, "op_2").unwrap().total_sessions,
        1
    );
}

#[test]
fn undecodable_event_is_dead_lettered() {
    let events = [
        completed("e1", session("s1", "op_1", 0, 30)),
        completed("e2", session("s2", "op_1", 60, 30)),
    ];
    let mut batch = stored(1, &events[..1]);
    batch.push(undecodable(
        2,
        "invalid MessagePack: unexpected end of input",
    ));
    batch.extend(stored(3, &events[1..]));
    let with = Scratch::new();
    let folded = fold(&with.tree(0), &batch);
    assert_eq!((folded.position, folded.dead_letters), (3, 1));
    let letters = dead_letters_in(&with.tree(0));
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].position, 2);
    assert_eq!(
        (letters[0].event_id.clone(), letters[0].kind.clone()),
        (None, None)
    );
    assert_eq!(
        letters[0].error,
        "undecodable: invalid MessagePack: unexpected end of input"
    );

    batch.remove(1);
    let without = Scratch::new();
    fold(&without.tree(0), &batch);
    assert_eq!(
        without_dead_letters(&with.tree(0)),
        without_dead_letters(&without.tree(0))
    );
    assert_eq!(
        profiles::profile(&with.tree(0), "op_1")
            .unwrap()
            .total_sessions,
        2
    );
}

#[test]
fn batch_of_only_poison_moves_the_checkpoint() {
    let mut f = Folder::new();
    f.fold(&[completed("e1", session("s1", "op_1", 0, 30))]);
    let mut batch = stored(2, &[completed("p1", session("s1", "op_9", 0, 30))]);
    batch.push(undecodable(3, "truncated"));
    let folded = fold(&f.tree, &batch);
    assert_eq!(
        (folded.position, folded.dead_letters, folded.recorded_at),
        (3, 2, None)
    );
    assert_eq!(
        runtime::checkpoint(&f.tree),
        3,
        "a poison event is never read again"
    );
    let positions: Vec<_> = dead_letters_in(&f.tree)
        .iter()
        .map(|d| d.position)
        .collect();
    assert_eq!(positions, [2, 3]);
}

/// The same through the runtime on the embedded log: the handle lists the dead letters.
/// (An undecodable record through the runtime: `runtime_jetstream.rs`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runtime_lists_dead_letters_and_moves_on() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(EmbeddedLog::open(dir.path().join("log.redb")).unwrap());
    log.append(vec![
        completed("e1", session("s1", "op_1", 0, 30)),
        completed("poison", session("s1", "op_2", 0, 30)),
    ])
    .await
    .unwrap();
    let head = log
        .append(vec![completed("e2", session("s2", "op_2", 60, 30))])
        .await
        .unwrap()
        .last_position();
    assert_eq!(head, 3);

    let scratch = Scratch::new();
    let runtime = scratch.run(log.clone());
    let handle = runtime.handle(profiles::NAME).unwrap().clone();
    assert!(handle.wait_for(head, WAIT).await);
    let letters = handle.dead_letters();
    assert_eq!(letters.len(), 1);
    assert_eq!(
        (
            letters[0].projector.as_str(),
            letters[0].position,
            letters[0].error.as_str()
        ),
        (
            profiles::NAME,
            2,
            "session s1 belongs to operator op_1, not op_2"
        )
    );
    assert_eq!(handle.status().dead_letters, 1);
    assert_eq!(handle.status().last_error, None);
    let tree = handle.tree();
    assert_eq!(profiles::profile(&tree, "op_1").unwrap().total_sessions, 1);
    assert_eq!(profiles::profile(&tree, "op_2").unwrap().total_sessions, 1);
    runtime.shutdown().await;
}
