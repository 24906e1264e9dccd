//! The read-model store at open: a damaged or foreign store is moved aside and a working,
//! empty one takes its place, to be rebuilt from the log.

#![allow(clippy::unwrap_used)] // a test fails by panicking: `unwrap` is its assertion

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ats_ingest::embedded::EmbeddedLog;
use ats_ingest::EventLog;
use ats_projections::profiles;
use ats_projections::runtime::{self, Runtime};
use ats_projections::store::{Store, StoreError};
use common::*;

fn aside(path: &Path, n: u32) -> PathBuf {
    PathBuf::from(format!("{}.damaged-{n}", path.display()))
}

/// Writes `format` as the store's format marker, with sled directly.
fn write_marker(path: &Path, format: &[u8]) {
    // A dropped sled::Db releases its file lock only when its background flusher thread has
    // exited, a moment later: retry the open (bounded) instead of failing on that race.
    let mut attempts = 0;
    let db = loop {
        match sled::open(path) {
            Ok(db) => break db,
            Err(err) if attempts < 250 && err.to_string().contains("could not acquire lock") => {
                attempts += 1;
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(err) => panic!("cannot open {}: {err}", path.display()),
        }
    };
    db.open_tree("meta")
        .unwrap()
        .insert("format", format)
        .unwrap();
    db.flush().unwrap();
}

/// A store at `path` whose profiles hold operator `op_9`.
fn store_with_op_9(path: &Path) {
    let store = Store::open(path).unwrap();
    let tree = store.tree(profiles::NAME, 0).unwrap();
    fold(
        &tree,
        &stored(1, &[completed("old", session("s-old", "op_9", 0, 30))]),
    );
    store.flush().unwrap();
}

/// Asserts `store` is empty and takes a fold.
fn assert_fresh_and_working(store: &Store) {
    assert_eq!(store.active_generation(profiles::NAME).unwrap(), 0);
    let tree = store.tree(profiles::NAME, 0).unwrap();
    assert!(tree.is_empty());
    let folded = fold(
        &tree,
        &stored(1, &[completed("e1", session("s1", "op_1", 0, 30))]),
    );
    assert_eq!(folded.position, 1);
    assert_eq!(profiles::profile(&tree, "op_1").unwrap().total_sessions, 1);
    store.set_active_generation(profiles::NAME, 0).unwrap();
    store.flush().unwrap();
}

#[test]
fn foreign_format_marker_is_moved_aside() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("read-models");
    store_with_op_9(&path);
    write_marker(&path, b"someone-else/7");

    let store = Store::open(&path).unwrap();
    assert!(aside(&path, 1).is_dir(), "the damaged store is kept aside");
    assert!(path.is_dir());
    assert_fresh_and_working(&store);
    assert!(profiles::profile(&store.tree(profiles::NAME, 0).unwrap(), "op_9").is_none());
    drop(store);

    // What was moved aside is intact, for inspection.
    let old = sled::open(aside(&path, 1)).unwrap();
    assert_eq!(
        old.open_tree("meta")
            .unwrap()
            .get("format")
            .unwrap()
            .unwrap(),
        b"someone-else/7"
    );
    let old_tree = old.open_tree(format!("rm/{}/0", profiles::NAME)).unwrap();
    assert_eq!(
        profiles::profile(&old_tree, "op_9").unwrap().total_sessions,
        1
    );
    drop(old);

    // The new store verifies at the next open: it stays where it is, with its data.
    let store = Store::open(&path).unwrap();
    assert!(!aside(&path, 2).exists());
    assert_eq!(
        profiles::profile(&store.tree(profiles::NAME, 0).unwrap(), "op_1")
            .unwrap()
            .total_sessions,
        1
    );
}

#[test]
fn an_older_layout_is_dropped_and_rebuilt_not_called_damaged() {
    // `/1`: SHA-256 digests; `/2`: JetStream trees held seen-id keys.
    for older in ["ats-read-models/1", "ats-read-models/2"] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("read-models");
        store_with_op_9(&path);
        write_marker(&path, older.as_bytes());
        let store = Store::open(&path).unwrap();
        assert!(
            !aside(&path, 1).exists(),
            "{older}: derived data of an older layout is not kept"
        );
        assert_fresh_and_working(&store);
        assert!(profiles::profile(&store.tree(profiles::NAME, 0).unwrap(), "op_9").is_none());
    }
}

#[test]
fn trees_without_a_format_marker_are_moved_aside() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("read-models");
    {
        let db = sled::open(&path).unwrap();
        db.open_tree("meta").unwrap();
        db.open_tree("rm/profiles_v3/3")
            .unwrap()
            .insert("p/op_1", "not msgpack")
            .unwrap();
        db.flush().unwrap();
    }
    let store = Store::open(&path).unwrap();
    assert!(aside(&path, 1).is_dir());
    assert_fresh_and_working(&store);
}

#[test]
fn a_second_damage_goes_to_the_next_free_name() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("read-models");
    write_marker(&path, b"garbage");
    drop(Store::open(&path).unwrap());
    write_marker(&path, b"\xff\xfe more garbage");
    let store = Store::open(&path).unwrap();
    assert!(aside(&path, 1).is_dir() && aside(&path, 2).is_dir());
    assert!(!aside(&path, 3).exists());
    assert_fresh_and_working(&store);
}

#[test]
fn unreadable_database_files_are_moved_aside() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("read-models");
    std::fs::create_dir_all(&path).unwrap();
    std::fs::write(path.join("conf"), b"this is not a sled config").unwrap();
    std::fs::write(path.join("db"), vec![0xa5; 4096]).unwrap();
    let store = Store::open(&path).unwrap();
    assert!(aside(&path, 1).is_dir());
    assert_fresh_and_working(&store);
}

/// After a store is moved aside, the runtime rebuilds it from the log: the same trees as
/// before the damage.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moved_aside_store_is_rebuilt_from_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(EmbeddedLog::open(dir.path().join("log.redb")).unwrap());
    let head = log.append(history("d", 300)).await.unwrap().last_position();
    let path = dir.path().join("read-models");
    let before = {
        let runtime = Runtime::start(
            Store::open(&path).unwrap(),
            log.clone(),
            ats_projections::all_projectors(),
        )
        .unwrap();
        assert!(runtime.wait_for(head, WAIT).await);
        let before = entries(&runtime.handle(profiles::NAME).unwrap().tree());
        runtime.shutdown().await;
        before
    };
    write_marker(&path, b"someone-else/0");

    let store = Store::open(&path).unwrap();
    assert!(aside(&path, 1).is_dir());
    let tree = store
        .tree(
            profiles::NAME,
            store.active_generation(profiles::NAME).unwrap(),
        )
        .unwrap();
    assert_eq!(
        runtime::checkpoint(&tree),
        0,
        "nothing of the damaged store was kept"
    );
    let runtime = Runtime::start(store, log.clone(), ats_projections::all_projectors()).unwrap();
    assert!(runtime.wait_for(head, WAIT).await);
    assert_eq!(
        entries(&runtime.handle(profiles::NAME).unwrap().tree()),
        before
    );
    runtime.shutdown().await;
}

/// Another process (or a second `Store::open` in this one) holding the store's lock is no
/// damage: the open fails and nothing is moved.
#[test]
fn a_store_in_use_is_not_moved_aside() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("read-models");
    let first = Store::open(&path).unwrap();
    let tree = first.tree(profiles::NAME, 0).unwrap();
    fold(
        &tree,
        &stored(1, &[completed("e1", session("s1", "op_1", 0, 30))]),
    );
    first.flush().unwrap();

    let second = Store::open(&path).err();
    assert!(
        matches!(second, Some(StoreError::Sled { .. })),
        "{second:?}"
    );
    assert!(
        !aside(&path, 1).exists(),
        "the store in use was moved aside"
    );
    assert_eq!(profiles::profile(&tree, "op_1").unwrap().total_sessions, 1);
}

/// Trees of a projector the running version does not have (renamed when its fold changed)
/// are dropped with their active generation; every running projector's trees stay.
#[test]
fn trees_of_projectors_no_longer_running_are_retired() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("read-models");
    store_with_op_9(&path);
    let store = Store::open(&path).unwrap();
    for generation in [3, 4] {
        let old = store.tree("costs_v0", generation).unwrap();
        old.insert("k", "v").unwrap();
    }
    store.set_active_generation("costs_v0", 4).unwrap();
    store.tree("costs_v1", 0).unwrap().insert("k", "v").unwrap();

    let retired = store.retire_others(&[profiles::NAME, "costs_v1"]).unwrap();
    assert_eq!(retired, ["costs_v0"]);
    let again = store.retire_others(&[profiles::NAME, "costs_v1"]).unwrap();
    assert!(again.is_empty(), "{again:?}");
    assert_eq!(store.active_generation("costs_v0").unwrap(), 0);
    assert!(store.tree("costs_v0", 4).unwrap().is_empty());
    assert_eq!(store.tree("costs_v1", 0).unwrap().len(), 1);
    let profiles_tree = store.tree(profiles::NAME, 0).unwrap();
    assert_eq!(
        profiles::profile(&profiles_tree, "op_9")
            .unwrap()
            .total_sessions,
        1
    );
}

/// Any cache size opens the store: one whose bytes overflow a `u64` is as large as it can be,
/// and 0 is 1 MiB.
#[test]
fn any_cache_size_opens_the_store() {
    for cache_mib in [0, 1, u64::MAX] {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_with_cache(dir.path().join("read-models"), cache_mib).unwrap();
        let tree = store.tree(profiles::NAME, 0).unwrap();
        fold(
            &tree,
            &stored(1, &[completed("e1", session("s1", "op_1", 0, 30))]),
        );
        assert_eq!(profiles::profile(&tree, "op_1").unwrap().total_sessions, 1);
    }
}
