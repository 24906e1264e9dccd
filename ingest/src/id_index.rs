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

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};
use tokio::sync::watch;
use uuid::Uuid;

use crate::id_filter::IdFilter;
use crate::log::{LogError, Position, Repeat};

/// id → (first position, content digest).
const IDS: TableDefinition<u128, (u64, u64)> = TableDefinition::new("event_ids");
/// position → (position of the id's first copy, same content).
const REPEATS: TableDefinition<u64, (u64, bool)> = TableDefinition::new("repeats");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const CHECKPOINT: &str = "checkpoint";

/// redb page cache for this file. 16 MiB cost appends a quarter of their rate while each
/// looked every id up in the table (BENCHMARKS.md); behind the filter, three A/B pairs at 200k
/// gave peak RSS 286 / 260 / 278 → 249 / 243 / 248 MiB at 32 → 16, ingest within noise.
const CACHE_BYTES: usize = 16 * 1024 * 1024;

/// One commit in this many is durable (see the module comment).
const DURABLE_EVERY: u32 = 64;

/// Ids of this node's appends kept in memory until the tail reads them, at most (~12 MiB).
const APPENDED_IN_MEMORY: usize = 256 * 1024;

/// The id filter's smallest capacity (2 MiB of bits); it is refilled from the table each
/// time the ids it holds double.
const MIN_FILTER_IDS: usize = 1 << 20;

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
    /// Ids this node appended beyond the checkpoint: (position, digest). Kept in memory
    /// until the tail indexes their positions, so an append waits on no write transaction
    /// (nor, one in [`DURABLE_EVERY`], an fsync); a crash loses nothing the tail does not
    /// read again from the stream.
    appended: Mutex<HashMap<u128, (Position, u64)>>,
    /// Every id in the table: most ids an append looks up are new, and the filter answers
    /// them without a random leaf read.
    filter: Mutex<IdFilter>,
    /// The filter's smallest capacity.
    min_filter_ids: usize,
    /// At most this many ids in `appended`.
    appended_limit: usize,
}

/// A lock whose holder panicked still guards consistent data here (every change is one
/// insert or removal), so poisoning is ignored.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl IdIndex {
    /// Opens (or creates) the index at `path`.
    pub fn open(path: &Path) -> Result<Self, LogError> {
        Self::open_sized(path, MIN_FILTER_IDS, APPENDED_IN_MEMORY)
    }

    /// Opens the index with an id filter sized for at least `min_filter_ids` and up to
    /// `appended_limit` ids of its appends in memory (tests make them small, to refill the
    /// filter and fall back to the table often).
    fn open_sized(
        path: &Path,
        min_filter_ids: usize,
        appended_limit: usize,
    ) -> Result<Self, LogError> {
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
        let filter = IdFilter::of_table(&tx.open_table(IDS).map_err(storage)?, &[], min_filter_ids)
            .map_err(storage)?;
        tx.commit().map_err(storage)?;
        Ok(Self {
            db,
            commits: AtomicU32::new(0),
            checkpoint: watch::Sender::new(checkpoint),
            appended: Mutex::default(),
            filter: Mutex::new(filter),
            min_filter_ids,
            appended_limit,
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
        // This node's appends first, then the filter, then the table. The tail puts an id
        // in the filter before it commits it to the table, and forgets it as appended only
        // after: whichever of the three a lookup sees it in, it sees it.
        let mut found: Vec<Option<(Position, u64)>> = {
            let appended = lock(&self.appended);
            ids.iter()
                .map(|id| appended.get(&id.as_u128()).copied())
                .collect()
        };
        let ask: Vec<usize> = {
            let filter = lock(&self.filter);
            (0..ids.len())
                .filter(|&i| filter.may_hold(ids[i].as_u128()))
                .collect()
        };
        if ask.is_empty() {
            return Ok(found);
        }
        let tx = self.db.begin_read().map_err(storage)?;
        let table = tx.open_table(IDS).map_err(storage)?;
        for i in ask {
            if let Some(held) = table.get(ids[i].as_u128()).map_err(storage)? {
                let held = held.value();
                // The lowest position is the id's first copy.
                found[i] = Some(found[i].map_or(held, |mine| mine.min(held)));
            }
        }
        Ok(found)
    }

    /// Records ids this node has just appended, ahead of the tail, so a retry is answered
    /// before the tail reaches them: in memory, or, while the tail lags by more than
    /// [`APPENDED_IN_MEMORY`] ids, in the table (so a slow tail costs appends time, not the
    /// node memory).
    pub fn record_appended(&self, entries: &[(Uuid, Position, u64)]) -> Result<(), LogError> {
        let checkpoint = self.checkpoint();
        let mut appended = lock(&self.appended);
        if appended.len() + entries.len() > self.appended_limit {
            drop(appended);
            return self.write(|ids, _| {
                self.filter_ids(entries);
                for &(id, position, digest) in entries {
                    keep_first(ids, id, position, digest)?;
                }
                Ok(None)
            });
        }
        for &(id, position, digest) in entries {
            // At or before the checkpoint, the tail has indexed the position already (a
            // copy the server deduplicated answers with the first one's position).
            if position > checkpoint {
                let slot = appended.entry(id.as_u128()).or_insert((position, digest));
                *slot = (*slot).min((position, digest));
            }
        }
        Ok(())
    }

    /// Indexes the stream's events in stream order up to `checkpoint`: each id's first
    /// position, and every later copy as a repeat.
    pub fn index_tail(
        &self,
        entries: &[(Uuid, Position, u64)],
        checkpoint: Position,
    ) -> Result<(), LogError> {
        self.write(|ids, repeats| {
            self.filter_ids(entries);
            for &(id, position, digest) in entries {
                if let Some((first, same)) = keep_first(ids, id, position, digest)? {
                    repeats.insert(position, (first, same)).map_err(storage)?;
                }
            }
            // Grown from the table as this transaction sees it (this batch's ids included):
            // write transactions take turns, and each puts its ids in the filter inside its
            // own, so none is missed.
            if lock(&self.filter).is_full() {
                let grown = IdFilter::of_table(ids, &[], self.min_filter_ids).map_err(storage)?;
                *lock(&self.filter) = grown;
            }
            Ok(Some(checkpoint))
        })?;
        {
            // Indexed now: the table answers for these.
            let mut appended = lock(&self.appended);
            for &(id, position, _) in entries {
                if appended
                    .get(&id.as_u128())
                    .is_some_and(|&(mine, _)| mine <= position)
                {
                    appended.remove(&id.as_u128());
                }
            }
        }
        self.checkpoint.send_if_modified(|done| {
            let moved = checkpoint > *done;
            *done = (*done).max(checkpoint);
            moved
        });
        Ok(())
    }

    /// Puts ids in the filter, from inside the write transaction that will put them in the
    /// table: before it commits (a lookup in between reads the table for nothing, rather
    /// than missing them), and never while another transaction refills the filter. The lock
    /// is held only for the inserts, not across the write, which lookups would wait on.
    fn filter_ids(&self, entries: &[(Uuid, Position, u64)]) {
        let mut filter = lock(&self.filter);
        for &(id, _, _) in entries {
            filter.insert(id.as_u128());
        }
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
            in_memory in 0usize..4,
            appended in prop::collection::vec(any::<prop::sample::Index>(), 0..20),
            cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..5),
        ) {
            let stream: Vec<(Uuid, Position, u64)> = picks
                .iter()
                .enumerate()
                .map(|(i, &(id, digest))| (Uuid::from_u128(id as u128 + 1), i as u64 + 1, digest))
                .collect();
            let dir = tempfile::tempdir().unwrap();
            // A filter for 4 ids: it fills and is refilled from the table along the way; and
            // few appended ids kept in memory, the rest recorded in the table.
            let index = IdIndex::open_sized(&dir.path().join("ids.redb"), 4, in_memory).unwrap();
            let mut cuts: Vec<usize> = cuts.iter().map(|c| c.index(stream.len() + 1)).collect();
            cuts.extend([0, stream.len()]);
            cuts.sort_unstable();
            // The node's own appends, recorded ahead of the tail, in any order: each before
            // the tail commit that reads its position.
            let mut recorded: Vec<(Uuid, Position, u64)> = Vec::new();
            for w in cuts.windows(2) {
                for pick in &appended {
                    let entry = *pick.get(&stream);
                    if (entry.1 as usize) > w[0] && (entry.1 as usize) <= w[1] {
                        index.record_appended(&[entry]).unwrap();
                        recorded.push(entry);
                    }
                }
                // Every id is answered with its lowest position known to the node, before the
                // tail reads the part and after.
                let known = |indexed: usize| -> (Vec<Uuid>, Vec<Option<(Position, u64)>>) {
                    let known: Vec<_> = stream[..indexed].iter().chain(&recorded).collect();
                    let ids: Vec<Uuid> = known.iter().map(|e| e.0).collect();
                    let first = ids
                        .iter()
                        .map(|id| known.iter().filter(|e| e.0 == *id).map(|e| (e.1, e.2)).min())
                        .collect();
                    (ids, first)
                };
                let (ids, expected) = known(w[0]);
                prop_assert_eq!(index.lookup(&ids).unwrap(), expected);
                let part = &stream[w[0]..w[1]];
                let checkpoint = part.last().map_or(0, |e| e.1);
                index.index_tail(part, checkpoint).unwrap();
                let (ids, expected) = known(w[1]);
                prop_assert_eq!(index.lookup(&ids).unwrap(), expected);
            }
            prop_assert_eq!(index.repeats(0, u64::MAX).unwrap(), oracle(&stream));
            prop_assert_eq!(index.checkpoint(), stream.len() as u64);
            // The tail has read every appended position: the node holds none in memory.
            prop_assert!(lock(&index.appended).is_empty());
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
