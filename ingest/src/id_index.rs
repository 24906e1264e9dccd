//! A local index of event ids for the JetStream log: id → (first position, content digest),
//! and the positions that repeat an earlier id.
//!
//! JetStream deduplicates whole messages for two minutes only; this index lets a node answer
//! "duplicate" or "conflict" at append time for every id it has seen — its own appends, and
//! everything else it has read from the stream. Between nodes it can lag for a moment, so a
//! racing retry can still land twice; the tail then marks the later copy as a [`Repeat`], in
//! stream order, so every node (and every replay) skips the same copies and the folds keep no
//! per-projector record of the ids they applied.
//!
//! It is derived data, rebuilt by tailing the stream from its checkpoint: most commits are not
//! fsynced (an index that lost its last commits re-reads them), but every [`DURABLE_EVERY`]-th
//! is, because redb frees pages only at a durable commit and persists nothing before one.

use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};
use tokio::sync::watch;
use uuid::Uuid;

use crate::log::{LogError, Position, Repeat};

/// id → (first position, content digest).
const IDS: TableDefinition<u128, (u64, u64)> = TableDefinition::new("event_ids");
/// position → (position of the id's first copy, same content).
const REPEATS: TableDefinition<u64, (u64, bool)> = TableDefinition::new("repeats");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const CHECKPOINT: &str = "checkpoint";

/// redb page cache for this file.
const CACHE_BYTES: usize = 32 * 1024 * 1024;

/// One commit in this many is durable (see the module comment).
const DURABLE_EVERY: u32 = 64;

fn storage(err: impl std::fmt::Display) -> LogError {
    LogError::Storage(format!("event id index: {err}"))
}

/// The index file.
pub struct IdIndex {
    db: Database,
    /// Commits since the last durable one.
    commits: AtomicU32,
    /// The checkpoint, for readers waiting on the tail.
    checkpoint: watch::Sender<Position>,
}

impl IdIndex {
    /// Opens (or creates) the index at `path`.
    pub fn open(path: &Path) -> Result<Self, LogError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(storage)?;
        }
        let db = redb::Builder::new()
            // redb caches up to 1 GiB by default; the OS page cache does the rest.
            .set_cache_size(CACHE_BYTES)
            .create(path)
            .map_err(storage)?;
        let tx = db.begin_write().map_err(storage)?;
        tx.open_table(IDS).map_err(storage)?;
        tx.open_table(REPEATS).map_err(storage)?;
        let checkpoint = {
            let meta = tx.open_table(META).map_err(storage)?;
            let checkpoint = meta.get(CHECKPOINT).map_err(storage)?;
            checkpoint.map_or(0, |v| v.value())
        };
        tx.commit().map_err(storage)?;
        Ok(Self {
            db,
            commits: AtomicU32::new(0),
            checkpoint: watch::Sender::new(checkpoint),
        })
    }

    /// The position up to which the stream has been indexed.
    pub fn checkpoint(&self) -> Position {
        *self.checkpoint.borrow()
    }

    /// Waits until the stream is indexed up to `position`; false on timeout.
    pub async fn wait_indexed(&self, position: Position, timeout: Duration) -> bool {
        let mut rx = self.checkpoint.subscribe();
        tokio::time::timeout(timeout, rx.wait_for(|done| *done >= position))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Waits until the stream is indexed up to `position` for as long as the index keeps
    /// moving: a node catching up on a long stream may take minutes, but an index that has not
    /// moved for `stall` is reported (with where it stands) rather than waited on forever.
    pub async fn wait_progressing(
        &self,
        position: Position,
        stall: Duration,
    ) -> Result<(), Position> {
        let mut before = self.checkpoint();
        while !self.wait_indexed(position, stall).await {
            let now = self.checkpoint();
            if now == before {
                return Err(now);
            }
            before = now;
        }
        Ok(())
    }

    /// (first position, digest) of each id, where known.
    pub fn lookup(&self, ids: &[Uuid]) -> Result<Vec<Option<(Position, u64)>>, LogError> {
        let tx = self.db.begin_read().map_err(storage)?;
        let table = tx.open_table(IDS).map_err(storage)?;
        ids.iter()
            .map(|id| Ok(table.get(id.as_u128()).map_err(storage)?.map(|v| v.value())))
            .collect()
    }

    /// Records ids this node has just appended, ahead of the tail, so a retry is answered
    /// before the tail reaches them.
    pub fn record_appended(&self, entries: &[(Uuid, Position, u64)]) -> Result<(), LogError> {
        self.write(|ids, _| {
            for &(id, position, digest) in entries {
                keep_first(ids, id, position, digest)?;
            }
            Ok(None)
        })
    }

    /// Indexes the stream's events in stream order up to `checkpoint`: each id's first
    /// position, and every later copy as a repeat.
    pub fn index_tail(
        &self,
        entries: &[(Uuid, Position, u64)],
        checkpoint: Position,
    ) -> Result<(), LogError> {
        self.write(|ids, repeats| {
            for &(id, position, digest) in entries {
                if let Some((first, same)) = keep_first(ids, id, position, digest)? {
                    repeats.insert(position, (first, same)).map_err(storage)?;
                }
            }
            Ok(Some(checkpoint))
        })?;
        self.checkpoint.send_if_modified(|done| {
            let moved = checkpoint > *done;
            *done = (*done).max(checkpoint);
            moved
        });
        Ok(())
    }

    /// The repeats among positions `from..=to`, in position order.
    pub fn repeats(
        &self,
        from: Position,
        to: Position,
    ) -> Result<Vec<(Position, Repeat)>, LogError> {
        let tx = self.db.begin_read().map_err(storage)?;
        let table = tx.open_table(REPEATS).map_err(storage)?;
        let mut out = Vec::new();
        for entry in table.range(from..=to).map_err(storage)? {
            let (position, value) = entry.map_err(storage)?;
            let (first, same) = value.value();
            let repeat = if same {
                Repeat::Retry { first }
            } else {
                Repeat::Conflict { first }
            };
            out.push((position.value(), repeat));
        }
        Ok(out)
    }

    /// One write transaction: `change` edits the ids and repeats and may move the checkpoint.
    fn write(
        &self,
        change: impl FnOnce(
            &mut redb::Table<u128, (u64, u64)>,
            &mut redb::Table<u64, (u64, bool)>,
        ) -> Result<Option<Position>, LogError>,
    ) -> Result<(), LogError> {
        let mut tx = self.db.begin_write().map_err(storage)?;
        let durable = self.commits.fetch_add(1, Ordering::Relaxed) + 1 >= DURABLE_EVERY;
        if durable {
            self.commits.store(0, Ordering::Relaxed);
        } else {
            tx.set_durability(Durability::None).map_err(storage)?;
        }
        {
            let mut ids = tx.open_table(IDS).map_err(storage)?;
            let mut repeats = tx.open_table(REPEATS).map_err(storage)?;
            if let Some(checkpoint) = change(&mut ids, &mut repeats)? {
                let mut meta = tx.open_table(META).map_err(storage)?;
                let current = meta
                    .get(CHECKPOINT)
                    .map_err(storage)?
                    .map_or(0, |v| v.value());
                meta.insert(CHECKPOINT, current.max(checkpoint))
                    .map_err(storage)?;
            }
        }
        tx.commit().map_err(storage)
    }
}

/// Keeps the lowest position seen for `id` (with its digest). Returns the first copy's
/// (position, same content) when an earlier position holds `id`, i.e. when this is a repeat.
///
/// The lowest position wins, not the first recorded: a node records its own appends before
/// its tail has read what another node appended earlier under the same id, and every node
/// must agree on which copy is first.
fn keep_first(
    ids: &mut redb::Table<u128, (u64, u64)>,
    id: Uuid,
    position: Position,
    digest: u64,
) -> Result<Option<(Position, bool)>, LogError> {
    let key = id.as_u128();
    let known = ids.get(key).map_err(storage)?.map(|v| v.value());
    match known {
        Some((first, first_digest)) if first < position => {
            Ok(Some((first, first_digest == digest)))
        }
        Some((first, _)) if first == position => Ok(None),
        _ => {
            ids.insert(key, (position, digest)).map_err(storage)?;
            Ok(None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The rule the index must follow, on the whole stream at once: a position repeats an id
    /// iff a lower position holds it.
    fn oracle(stream: &[(Uuid, Position, u64)]) -> Vec<(Position, Repeat)> {
        let mut first: std::collections::BTreeMap<Uuid, (Position, u64)> = Default::default();
        let mut out = Vec::new();
        for &(id, position, digest) in stream {
            match first.get(&id) {
                Some(&(at, d)) if d == digest => out.push((position, Repeat::Retry { first: at })),
                Some(&(at, _)) => out.push((position, Repeat::Conflict { first: at })),
                None => {
                    first.insert(id, (position, digest));
                }
            }
        }
        out
    }

    proptest! {
        /// Whatever a node records from its own appends ahead of the tail, and however the
        /// tail is split into commits, the repeats are the oracle's.
        #[test]
        fn repeats_follow_the_first_position_rule(
            picks in prop::collection::vec((0u8..6, 0u64..2), 1..60),
            appended in prop::collection::vec(any::<prop::sample::Index>(), 0..20),
            cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..5),
        ) {
            let stream: Vec<(Uuid, Position, u64)> = picks
                .iter()
                .enumerate()
                .map(|(i, &(id, digest))| (Uuid::from_u128(id as u128 + 1), i as u64 + 1, digest))
                .collect();
            let dir = tempfile::tempdir().unwrap();
            let index = IdIndex::open(&dir.path().join("ids.redb")).unwrap();
            // The node's own appends, recorded before the tail reads anything, in any order.
            for pick in &appended {
                index.record_appended(&[*pick.get(&stream)]).unwrap();
            }
            let mut cuts: Vec<usize> = cuts.iter().map(|c| c.index(stream.len() + 1)).collect();
            cuts.extend([0, stream.len()]);
            cuts.sort_unstable();
            for w in cuts.windows(2) {
                let part = &stream[w[0]..w[1]];
                let checkpoint = part.last().map_or(0, |e| e.1);
                index.index_tail(part, checkpoint).unwrap();
            }
            prop_assert_eq!(index.repeats(0, u64::MAX).unwrap(), oracle(&stream));
            prop_assert_eq!(index.checkpoint(), stream.len() as u64);
        }
    }

    /// A reader waits through a catch-up longer than the stall bound while the index moves,
    /// and is told where the index stands once it stops moving.
    #[test]
    fn readers_wait_while_the_index_moves_and_not_once_it_stalls() {
        let dir = tempfile::tempdir().unwrap();
        let index = std::sync::Arc::new(IdIndex::open(&dir.path().join("ids.redb")).unwrap());
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_time()
            .build()
            .unwrap();
        let feed = index.clone();
        runtime.spawn(async move {
            for position in 1..=40 {
                feed.index_tail(&[], position).unwrap();
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        // 40 steps of 50 ms: 2 s, four times the stall bound, yet never stalled. (Only a step
        // the scheduler delays tenfold would fail this.)
        assert_eq!(
            runtime.block_on(index.wait_progressing(40, Duration::from_millis(500))),
            Ok(())
        );
        assert_eq!(
            runtime.block_on(index.wait_progressing(41, Duration::from_millis(50))),
            Err(40)
        );
    }

    #[test]
    fn the_checkpoint_survives_a_reopen_and_wakes_waiters() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ids.redb");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        {
            let index = IdIndex::open(&path).unwrap();
            assert!(!runtime.block_on(index.wait_indexed(3, Duration::from_millis(20))));
            // Enough commits for a durable one: redb persists nothing before it.
            for position in 1..=u64::from(DURABLE_EVERY) {
                index
                    .index_tail(&[(Uuid::from_u128(1), position, 7)], position)
                    .unwrap();
            }
            assert!(runtime.block_on(index.wait_indexed(3, Duration::from_millis(20))));
        }
        let index = IdIndex::open(&path).unwrap();
        assert_eq!(index.checkpoint(), u64::from(DURABLE_EVERY));
        assert_eq!(
            index.repeats(2, 2).unwrap(),
            vec![(2, Repeat::Retry { first: 1 })]
        );
    }
}
