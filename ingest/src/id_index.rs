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
//! It is derived data, rebuilt by tailing the stream from its checkpoint. The ids the tail
//! reads are staged in memory and written in key order into a run ([`crate::staging`]), and
//! runs are compacted into the base table ([`crate::runs`]); the persisted checkpoint is the
//! position up to which the base table and the live runs hold every id (and the repeats
//! table every repeat), written by the commit that completes a run, so a node that restarts
//! re-reads what was only staged. A reader takes the live runs its snapshot names. A tail
//! batch without repeats and without a run slice to write commits nothing. Most commits are
//! not fsynced (an index that lost its last commits re-reads them), but a run's last one is,
//! and every [`DURABLE_EVERY`]-th: redb frees pages only at a durable commit and persists
//! nothing before one.

use std::collections::HashMap;
use std::ops::Range;
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use redb::{
    Database, Durability, ReadOnlyTable, ReadTransaction, ReadableDatabase, ReadableTable,
    TableDefinition, WriteTransaction,
};
use tokio::sync::watch;
use uuid::Uuid;

use crate::id_filter::IdFilter;
use crate::log::{LogError, Position, Repeat};
use crate::runs::{compact, lowest_in, open_each, open_tables, run_name, run_table, COMPACT_RUNS};
use crate::staging::{lowest, Entry, Staging, STAGED_IDS};

/// id → (first position, content digest): the base table, into which runs are compacted.
const IDS: TableDefinition<u128, (u64, u64)> = TableDefinition::new("event_ids");
/// position → (position of the id's first copy, same content).
const REPEATS: TableDefinition<u64, (u64, bool)> = TableDefinition::new("repeats");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// The tables hold every id and repeat of the stream up to this position.
const CHECKPOINT: &str = "checkpoint";
/// The live runs are numbers `runs_from..runs_to`.
const RUNS_FROM: &str = "runs_from";
const RUNS_TO: &str = "runs_to";
/// The next step of the compaction of the oldest [`COMPACT_RUNS`] runs.
const COMPACT_STEP: &str = "compact_step";

/// redb page cache for this file. 16 MiB cost appends a quarter of their rate while each
/// looked every id up in the table (BENCHMARKS.md); behind the filter, three A/B pairs at 200k
/// gave peak RSS 286 / 260 / 278 → 249 / 243 / 248 MiB at 32 → 16, ingest within noise, and
/// two pairs at 1M 269 / 260 → 253 / 240 MiB at 16 → 8 (the memory target), for a rebuild
/// about a quarter slower: a replay asks the index about every event it reads.
const CACHE_BYTES: usize = 8 * 1024 * 1024;

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
    /// How far the tail has indexed (staged or in the table), for readers waiting on it.
    checkpoint: watch::Sender<Position>,
    /// What the index holds in memory; one lock, so that an id moving from one part to
    /// another is never seen in neither.
    memory: Mutex<Memory>,
    /// The filter's smallest capacity.
    min_filter_ids: usize,
    /// At most this many ids in [`Memory::appended`].
    appended_limit: usize,
}

struct Memory {
    /// Ids this node appended beyond the checkpoint: (position, digest). Kept in memory
    /// until the tail indexes their positions, so an append waits on no write transaction
    /// (nor, one in [`DURABLE_EVERY`], an fsync); a crash loses nothing the tail does not
    /// read again from the stream.
    appended: HashMap<u128, Entry>,
    /// Ids the tail has read and the table does not hold yet.
    staged: Staging,
    /// Every id in the table: most ids looked up are new, and the filter answers them
    /// without a random leaf read.
    filter: IdFilter,
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
        Self::open_sized(path, MIN_FILTER_IDS, APPENDED_IN_MEMORY, STAGED_IDS)
    }

    /// Opens the index with an id filter sized for at least `min_filter_ids`, up to
    /// `appended_limit` ids of its appends in memory and merges of `staged_ids` (tests make
    /// them small, to refill the filter, fall back to the table and merge often).
    fn open_sized(
        path: &Path,
        min_filter_ids: usize,
        appended_limit: usize,
        staged_ids: usize,
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
        tx.open_table(REPEATS).map_err(storage)?;
        let (checkpoint, runs) = {
            let meta = tx.open_table(META).map_err(storage)?;
            (stored(&meta, CHECKPOINT)?, live_runs(&meta)?)
        };
        let tables = open_tables(&tx, IDS, runs).map_err(storage)?;
        let filter = IdFilter::of_tables(&tables, &[], min_filter_ids).map_err(storage)?;
        drop(tables);
        tx.commit().map_err(storage)?;
        Ok(Self {
            db,
            commits: AtomicU32::new(0),
            checkpoint: watch::Sender::new(checkpoint),
            memory: Mutex::new(Memory {
                appended: HashMap::new(),
                staged: Staging::new(staged_ids, checkpoint),
                filter,
            }),
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
    pub fn lookup(&self, ids: &[Uuid]) -> Result<Vec<Option<Entry>>, LogError> {
        // This node's appends and the staged ids, then the filter, then the table, whose
        // snapshot is taken after the lock is released: an id leaves memory only once the
        // transaction that put it in the table committed, so a lookup sees it somewhere.
        let (mut found, ask): (Vec<Option<Entry>>, Vec<usize>) = {
            let memory = lock(&self.memory);
            let found = ids
                .iter()
                .map(|id| memory.get(id.as_u128()))
                .collect::<Vec<_>>();
            let ask = (0..ids.len())
                .filter(|&i| memory.filter.may_hold(ids[i].as_u128()))
                .collect();
            (found, ask)
        };
        if ask.is_empty() {
            return Ok(found);
        }
        let tables = read_tables(&self.db.begin_read().map_err(storage)?)?;
        for i in ask {
            let held = lowest_in(&tables, ids[i].as_u128()).map_err(storage)?;
            found[i] = lowest(found[i], held);
        }
        Ok(found)
    }

    /// Records ids this node has just appended, ahead of the tail, so a retry is answered
    /// before the tail reaches them: in memory, or, while the tail lags by more than
    /// [`APPENDED_IN_MEMORY`] ids, in the table (so a slow tail costs appends time, not the
    /// node memory).
    pub fn record_appended(&self, entries: &[(Uuid, Position, u64)]) -> Result<(), LogError> {
        let checkpoint = self.checkpoint();
        let mut memory = lock(&self.memory);
        if memory.appended.len() + entries.len() > self.appended_limit {
            drop(memory);
            return self.write(false, |tx, _, _| {
                let mut ids = tx.open_table(IDS).map_err(storage)?;
                self.filter_ids(entries.iter().map(|e| e.0.as_u128()));
                for &(id, position, digest) in entries {
                    let key = id.as_u128();
                    let held = ids.get(key).map_err(storage)?.map(|v| v.value());
                    if lowest(held, Some((position, digest))) != held {
                        ids.insert(key, (position, digest)).map_err(storage)?;
                    }
                }
                Ok(None)
            });
        }
        for &(id, position, digest) in entries {
            // At or before the checkpoint, the tail has indexed the position already (a
            // copy the server deduplicated answers with the first one's position).
            if position > checkpoint {
                let slot = memory
                    .appended
                    .entry(id.as_u128())
                    .or_insert((position, digest));
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
        let mut repeats = Vec::new();
        let slice = {
            let mut memory = lock(&self.memory);
            // Opened only if an id may be in a table (most are new).
            let mut tables = None;
            for &(id, position, digest) in entries {
                let key = id.as_u128();
                let mut known = memory.staged.get(key);
                if known.is_none() && memory.filter.may_hold(key) {
                    if tables.is_none() {
                        tables = Some(read_tables(&self.db.begin_read().map_err(storage)?)?);
                    }
                    if let Some(tables) = &tables {
                        known = lowest_in(tables, key).map_err(storage)?;
                    }
                }
                match known {
                    Some((first, stored)) if first < position => {
                        repeats.push((position, (first, stored == digest)));
                    }
                    Some((first, _)) if first == position => {}
                    // New, or the table holds a later copy this node appended ahead of the
                    // tail: this position is the first.
                    _ => memory.staged.insert(key, (position, digest)),
                }
            }
            memory.staged.next_slice()
        };
        if !repeats.is_empty() || slice.is_some() {
            let completes = slice.as_ref().and_then(|s| s.completes);
            self.write(completes.is_some(), |tx, building, table| {
                for (position, repeat) in &repeats {
                    table.insert(position, repeat).map_err(storage)?;
                }
                if let Some(slice) = &slice {
                    self.filter_ids(slice.entries().iter().map(|(id, _)| *id));
                    let mut run = tx
                        .open_table(run_table(&run_name(building)))
                        .map_err(storage)?;
                    slice.write(&mut run).map_err(storage)?;
                }
                Ok(completes)
            })?;
        }
        {
            let mut memory = lock(&self.memory);
            if let Some(slice) = slice {
                memory.staged.merged(slice);
            }
            memory.staged.freeze_if_full(checkpoint);
            // Indexed now: the staged ids answer for these.
            for &(id, position, _) in entries {
                if memory
                    .appended
                    .get(&id.as_u128())
                    .is_some_and(|&(mine, _)| mine <= position)
                {
                    memory.appended.remove(&id.as_u128());
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
    fn filter_ids(&self, ids: impl Iterator<Item = u128>) {
        let mut memory = lock(&self.memory);
        for id in ids {
            memory.filter.insert(id);
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

    /// One write transaction (durable if `durable`, or if it is the [`DURABLE_EVERY`]-th):
    /// `change` edits the ids (the base table, or the run being built, whose number it is
    /// given) and the repeats, and returns the checkpoint through which the run being built is
    /// complete, if it wrote its last slice: the run is live from this commit. Then the
    /// commit takes the next step of a compaction, once [`COMPACT_RUNS`] runs are live
    /// ([`Self::maintain`]). The filter is grown inside it, from the tables as this
    /// transaction sees them: write transactions take turns, and each puts its ids in the
    /// filter inside its own, so none is missed.
    fn write(
        &self,
        durable: bool,
        change: impl FnOnce(
            &WriteTransaction,
            u64,
            &mut redb::Table<u64, (u64, bool)>,
        ) -> Result<Option<Position>, LogError>,
    ) -> Result<(), LogError> {
        let mut tx = self.db.begin_write().map_err(storage)?;
        let durable = durable || self.commits.fetch_add(1, Ordering::Relaxed) + 1 >= DURABLE_EVERY;
        if durable {
            self.commits.store(0, Ordering::Relaxed);
        } else {
            tx.set_durability(Durability::None).map_err(storage)?;
        }
        {
            let mut meta = tx.open_table(META).map_err(storage)?;
            let mut runs = live_runs(&meta)?;
            let mut repeats = tx.open_table(REPEATS).map_err(storage)?;
            if let Some(checkpoint) = change(&tx, runs.end, &mut repeats)? {
                let current = stored(&meta, CHECKPOINT)?;
                meta.insert(CHECKPOINT, current.max(checkpoint))
                    .map_err(storage)?;
                runs.end += 1;
                meta.insert(RUNS_TO, runs.end).map_err(storage)?;
            }
            self.maintain(&tx, &mut meta, runs)?;
        }
        tx.commit().map_err(storage)
    }

    /// Inside a write: the next step of the compaction of the oldest [`COMPACT_RUNS`] runs,
    /// if that many are live, and a refill of the filter, if it is full; the tables are
    /// opened only when one of them is due.
    fn maintain(
        &self,
        tx: &WriteTransaction,
        meta: &mut redb::Table<&'static str, u64>,
        runs: Range<u64>,
    ) -> Result<(), LogError> {
        let compacting = runs.end - runs.start >= COMPACT_RUNS;
        let refill = lock(&self.memory).filter.is_full();
        if !compacting && !refill {
            return Ok(());
        }
        let mut tables = open_tables(tx, IDS, runs.clone()).map_err(storage)?;
        if compacting {
            let step = stored(meta, COMPACT_STEP)?;
            if compact(tx, &mut tables, step as u32).map_err(storage)? {
                meta.insert(RUNS_FROM, runs.start + COMPACT_RUNS)
                    .map_err(storage)?;
                meta.insert(COMPACT_STEP, 0).map_err(storage)?;
            } else {
                meta.insert(COMPACT_STEP, step + 1).map_err(storage)?;
            }
        }
        if refill {
            // The run being built too: its slices' ids leave memory when it completes.
            let building = tx
                .open_table(run_table(&run_name(runs.end)))
                .map_err(storage)?;
            tables.push(building);
            let grown = IdFilter::of_tables(&tables, &[], self.min_filter_ids).map_err(storage)?;
            lock(&self.memory).filter = grown;
        }
        Ok(())
    }
}

/// A value in the meta table (0 when absent).
fn stored(meta: &impl ReadableTable<&'static str, u64>, key: &str) -> Result<u64, LogError> {
    Ok(meta.get(key).map_err(storage)?.map_or(0, |v| v.value()))
}

/// The live runs' numbers.
fn live_runs(meta: &impl ReadableTable<&'static str, u64>) -> Result<Range<u64>, LogError> {
    Ok(stored(meta, RUNS_FROM)?..stored(meta, RUNS_TO)?)
}

/// The base table and the live runs of a read transaction's snapshot.
fn read_tables(tx: &ReadTransaction) -> Result<Vec<ReadOnlyTable<u128, Entry>>, LogError> {
    let runs = live_runs(&tx.open_table(META).map_err(storage)?)?;
    open_each(IDS, runs, |table| tx.open_table(table)).map_err(storage)
}

impl Memory {
    /// The lowest position this node knows `id` at without reading the tables. The lowest
    /// wins whatever was recorded first: a node records its own appends before its tail has
    /// read what another node appended earlier under the same id, and every node must agree
    /// on which copy is first.
    fn get(&self, id: u128) -> Option<Entry> {
        lowest(self.appended.get(&id).copied(), self.staged.get(id))
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

    /// The stream of `picks` (id, digest), at positions 1, 2, …
    fn stream_of(picks: &[(u8, u64)]) -> Vec<(Uuid, Position, u64)> {
        picks
            .iter()
            .enumerate()
            .map(|(i, &(id, digest))| (Uuid::from_u128(id as u128 + 1), i as u64 + 1, digest))
            .collect()
    }

    /// Each of `ids`' lowest (position, digest) among `known`.
    fn first_of(known: &[&(Uuid, Position, u64)], ids: &[Uuid]) -> Vec<Option<(Position, u64)>> {
        ids.iter()
            .map(|id| {
                known
                    .iter()
                    .filter(|e| e.0 == *id)
                    .map(|e| (e.1, e.2))
                    .min()
            })
            .collect()
    }

    /// Tails the rest of `stream` from the index's checkpoint; then the repeats are the
    /// oracle's and every id is answered with its first position.
    fn ends_as_the_oracle(
        index: &IdIndex,
        stream: &[(Uuid, Position, u64)],
    ) -> Result<(), TestCaseError> {
        let from = index.checkpoint() as usize;
        index
            .index_tail(&stream[from..], stream.len() as u64)
            .unwrap();
        prop_assert_eq!(index.repeats(0, u64::MAX).unwrap(), oracle(stream));
        let ids: Vec<Uuid> = stream.iter().map(|e| e.0).collect();
        let known: Vec<_> = stream.iter().collect();
        prop_assert_eq!(index.lookup(&ids).unwrap(), first_of(&known, &ids));
        Ok(())
    }

    proptest! {
        /// Whatever a node records from its own appends ahead of the tail, and however the
        /// tail is split into commits, the repeats are the oracle's.
        #[test]
        fn repeats_follow_the_first_position_rule(
            picks in prop::collection::vec((0u8..6, 0u64..2), 1..60),
            in_memory in 0usize..4,
            staged in 1usize..9,
            appended in prop::collection::vec(any::<prop::sample::Index>(), 0..20),
            cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..5),
        ) {
            let stream = stream_of(&picks);
            let dir = tempfile::tempdir().unwrap();
            // A filter for 4 ids: it fills and is refilled from the table along the way; few
            // appended ids kept in memory, the rest recorded in the table; merges of a few
            // staged ids, so that the tail merges all the time.
            let index =
                IdIndex::open_sized(&dir.path().join("ids.redb"), 4, in_memory, staged).unwrap();
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
                    let first = first_of(&known, &ids);
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
            prop_assert!(lock(&index.memory).appended.is_empty());
        }

        /// However the tail's batches are cut and wherever the node stops (its staged ids
        /// and any commit not yet durable lost with it), a node that reopens the file and
        /// tails the stream again from its checkpoint ends with the oracle's repeats and
        /// every id's first position.
        #[test]
        fn a_reopened_index_ends_where_a_clean_one_does(
            picks in prop::collection::vec((0u8..12, 0u64..2), 1..80),
            staged in 1usize..9,
            cuts in prop::collection::vec((any::<prop::sample::Index>(), any::<bool>()), 0..8),
        ) {
            let stream = stream_of(&picks);
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("ids.redb");
            let open = || IdIndex::open_sized(&path, 4, 0, staged).unwrap();
            let mut index = open();
            let mut cuts: Vec<(usize, bool)> =
                cuts.iter().map(|(c, reopen)| (c.index(stream.len() + 1), *reopen)).collect();
            cuts.push((stream.len(), false));
            cuts.sort_unstable();
            for (to, reopen) in cuts {
                // The tail reads from where the index stands: after a reopen, the persisted
                // checkpoint, which is never beyond what was indexed.
                let from = index.checkpoint() as usize;
                if to > from {
                    index.index_tail(&stream[from..to], to as u64).unwrap();
                }
                if reopen {
                    let indexed = index.checkpoint();
                    drop(index);
                    index = open();
                    prop_assert!(index.checkpoint() <= indexed);
                }
            }
            ends_as_the_oracle(&index, &stream)?;
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]

        /// Over streams long enough that the tail's stagings become runs and runs are
        /// compacted into the base table (several times, at any step of it), with the node's
        /// own appends recorded ahead of the tail (some in the base table) and reopens
        /// anywhere: every id is answered with its lowest known position after every tail
        /// commit, and the repeats are the oracle's.
        #[test]
        fn runs_and_their_compactions_answer_as_one_table(
            picks in prop::collection::vec(
                (0u8..5, any::<prop::sample::Index>(), 0u64..2),
                400..500,
            ),
            staged in 1usize..4,
            parts in prop::collection::vec((1usize..3, any::<bool>(), 0u8..8), 400),
            in_memory in 0usize..3,
        ) {
            // Event i carries a new id, or one time in five an earlier event's: enough new
            // ids for dozens of runs, whatever the input shrinks to.
            let mut ids: Vec<Uuid> = Vec::with_capacity(picks.len());
            for (i, (kind, earlier, _)) in picks.iter().enumerate() {
                let id = match kind {
                    4 if i > 0 => ids[earlier.index(i)],
                    _ => Uuid::from_u128(i as u128 + 1),
                };
                ids.push(id);
            }
            let stream: Vec<(Uuid, Position, u64)> = picks
                .iter()
                .zip(&ids)
                .enumerate()
                .map(|(i, ((_, _, digest), id))| (*id, i as u64 + 1, *digest))
                .collect();
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("ids.redb");
            let open = || IdIndex::open_sized(&path, 4, in_memory, staged).unwrap();
            let mut index = open();
            let mut recorded: Vec<(Uuid, Position, u64)> = Vec::new();
            let mut parts = parts.into_iter();
            let mut to = 0;
            while to < stream.len() {
                let (len, appended, reopen) = parts.next().unwrap_or((2, false, 1));
                let from = index.checkpoint() as usize;
                to = (to + len).min(stream.len()).max(from);
                if appended {
                    // One event of the part, recorded ahead of the tail (a write into the
                    // base table once more than `in_memory` are waiting).
                    let entry = stream[to - 1];
                    index.record_appended(&[entry]).unwrap();
                    recorded.push(entry);
                }
                index.index_tail(&stream[from..to], to as u64).unwrap();
                // Every id known so far after one commit in four, the part's ids after each.
                let known: Vec<_> = stream[..to].iter().chain(&recorded).collect();
                let asked = if reopen < 2 { &known[..] } else { &known[from..to] };
                let ids: Vec<Uuid> = asked.iter().map(|e| e.0).collect();
                prop_assert_eq!(index.lookup(&ids).unwrap(), first_of(&known, &ids));
                if reopen == 0 {
                    drop(index);
                    index = open();
                }
            }
            ends_as_the_oracle(&index, &stream)?;
            // Runs were compacted: fewer live than written.
            let tx = index.db.begin_read().unwrap();
            let runs = live_runs(&tx.open_table(META).unwrap()).unwrap();
            prop_assert!(runs.start > 0, "no compaction completed: {:?}", runs);
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

    /// The persisted checkpoint is where the last merge completed (its commit is durable);
    /// what was only staged is read again after a reopen.
    #[test]
    fn the_checkpoint_survives_a_reopen_and_wakes_waiters() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ids.redb");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let id = Uuid::from_u128;
        {
            // Merges of two ids, in two slices of one id.
            let index = IdIndex::open_sized(&path, 4, 0, 2).unwrap();
            assert!(!runtime.block_on(index.wait_indexed(3, Duration::from_millis(20))));
            // 1–2: a retry; 3: the second id, which freezes (1, 3) for a merge through 3;
            // 4 and 5 each carry one slice of it, and 5's commit completes it.
            let stream = [(id(1), 1, 7), (id(1), 2, 7), (id(2), 3, 7)];
            index.index_tail(&stream[..2], 2).unwrap();
            index.index_tail(&stream[2..], 3).unwrap();
            assert!(runtime.block_on(index.wait_indexed(3, Duration::from_millis(20))));
            index.index_tail(&[(id(3), 4, 7)], 4).unwrap();
            assert!(lock(&index.memory).staged.get(2).is_some());
            index.index_tail(&[(id(4), 5, 7)], 5).unwrap();
            assert_eq!(index.checkpoint(), 5);
        }
        let index = IdIndex::open_sized(&path, 4, 0, 2).unwrap();
        assert_eq!(index.checkpoint(), 3);
        assert_eq!(
            index.repeats(2, 2).unwrap(),
            vec![(2, Repeat::Retry { first: 1 })]
        );
        assert_eq!(
            index.lookup(&[id(1), id(2), id(3)]).unwrap(),
            vec![Some((1, 7)), Some((3, 7)), None]
        );
    }
}
