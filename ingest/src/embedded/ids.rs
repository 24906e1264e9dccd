//! The embedded log's id index: event id → (position, content digest).
//!
//! The newest ids are kept in memory ("staged"); each time enough are staged they are written
//! into a run, which is compacted into the base table with others ([`crate::runs`]). A lookup
//! the filter cannot answer reads the live runs (about [`COMPACT_RUNS`]) and the base table;
//! an id in two of them has the same entry in both.
//!
//! Most appended ids are new, and a new id looked up in the table costs a random leaf read
//! once the table outgrew the cache (37 % of the writer's time at 1M events after staging),
//! so a Bloom filter of every id held answers most of them without a read.
//!
//! Nothing is lost with the memory: the base table and the live runs (`runs_from..runs_to`)
//! hold the id of every event up to `merged_through` (keys written in the transaction that
//! completes a run), and at open the ids of the events after it are read back from the log's
//! own `events` table. A run being written is not live until that transaction; what a crash
//! left of one is correct entries of events after `merged_through`, which the next run,
//! written under the same number, writes again. A compaction only copies entries the live
//! runs hold, and the transaction of its last slice drops those runs, so a crash during one
//! repeats it. Every change here is part of the group's transaction, and the in-memory state
//! changes only after that transaction committed, so a crash at any point reopens to the
//! same answers.

use std::collections::HashMap;
use std::ops::Range;

use ats_events::codec;
use redb::{ReadableTable, TableDefinition};

use super::{storage, EVENTS};
use crate::id_filter::IdFilter;
use crate::log::{LogError, Position};
use crate::runs::{
    compact, lowest_in, open_tables, run_name, run_table, IdTable, COMPACT_RUNS, COMPACT_STEPS,
};
use crate::staging::{Entry, MergeSlice, Staging};

/// Event id → (position, content digest), for idempotent appends and conflict detection: the
/// base table, into which runs are compacted.
pub(super) const IDS: TableDefinition<u128, (u64, u64)> = TableDefinition::new("event_ids");
/// `merged_through`, `runs_from`, `runs_to`.
pub(super) const META: TableDefinition<&str, u64> = TableDefinition::new("event_ids_meta");
/// Every event up to this position has its id in [`IDS`] or a live run.
const MERGED_THROUGH: &str = "merged_through";
/// The live runs are numbers `runs_from..runs_to`.
const RUNS_FROM: &str = "runs_from";
const RUNS_TO: &str = "runs_to";

/// The filter's smallest capacity, in staging rounds (by default 1M ids, 2 MiB of bits): a
/// log grows, and each growth scans the tables.
const MIN_FILTER_ROUNDS: usize = 16;

/// The index's tables open in one write transaction: the base table, then the live runs
/// ([`open_tables`]).
pub(super) type IdTables<'txn> = Vec<IdTable<'txn>>;

/// What a commit wrote into the index, applied to [`StagedIds`] once it committed.
pub(super) struct Step {
    /// The staging's slice written into the run being built.
    slice: Option<MergeSlice>,
    /// The compaction step written.
    compacted: Option<u32>,
}

/// The index's in-memory part, owned by the writer thread.
pub(super) struct StagedIds {
    /// Ids of the events after `merged_through`.
    staging: Staging,
    /// Every id held, staged or in a table (its smallest size scales with the staging).
    filter: IdFilter,
    /// The live runs' numbers; the staging's next run is `runs.end`.
    runs: Range<u64>,
    /// The next step of the compaction of the oldest [`COMPACT_RUNS`] runs.
    compact_step: u32,
}

impl StagedIds {
    /// Reads `merged_through` (written as the head for a file indexed before staging
    /// existed) and the live runs, and stages the ids of the events after `merged_through`.
    pub(super) fn load(tx: &redb::WriteTransaction, limit: usize) -> Result<Self, LogError> {
        let events = tx.open_table(EVENTS).map_err(storage)?;
        let head = events
            .last()
            .map_err(storage)?
            .map_or(0, |(k, _)| k.value());
        let mut meta = tx.open_table(META).map_err(storage)?;
        let stored = |key: &str| -> Result<Option<u64>, LogError> {
            Ok(meta.get(key).map_err(storage)?.map(|v| v.value()))
        };
        let (stored_through, from, to) = (
            stored(MERGED_THROUGH)?,
            stored(RUNS_FROM)?,
            stored(RUNS_TO)?,
        );
        let runs = from.unwrap_or(0)..to.unwrap_or(0);
        let merged_through = match stored_through {
            Some(position) => position,
            None => {
                meta.insert(MERGED_THROUGH, head).map_err(storage)?;
                head
            }
        };
        let mut staging = Staging::new(limit, merged_through);
        for entry in events
            .range(merged_through.saturating_add(1)..)
            .map_err(storage)?
        {
            let (key, value) = entry.map_err(storage)?;
            // The log encoded these bytes itself, so they decode; if a codec bug ever said
            // otherwise, refusing to open would lose nothing and hide nothing.
            let event = codec::decode(value.value()).map_err(|e| {
                LogError::Storage(format!("event {} does not decode: {e}", key.value()))
            })?;
            staging.insert(event.id.as_u128(), (key.value(), event.content_digest()));
        }
        let mut staged = Self {
            staging,
            filter: IdFilter::with_capacity(0),
            runs,
            compact_step: 0,
        };
        staged.refill_filter(&staged.tables(tx)?)?;
        staged.staging.freeze_if_full(head);
        Ok(staged)
    }

    /// Opens the base table and the live runs in `tx`.
    pub(super) fn tables<'txn>(
        &self,
        tx: &'txn redb::WriteTransaction,
    ) -> Result<IdTables<'txn>, LogError> {
        open_tables(tx, IDS, self.runs.clone()).map_err(storage)
    }

    /// Sizes the filter for twice the ids held (at least [`MIN_FILTER_ROUNDS`]) and fills it
    /// from the tables and the staged ids: at open, and each time it fills up.
    fn refill_filter(&mut self, tables: &IdTables<'_>) -> Result<(), LogError> {
        let staged: Vec<u128> = self.staging.ids().collect();
        self.filter =
            IdFilter::of_tables(tables, &staged, MIN_FILTER_ROUNDS * self.staging.limit())
                .map_err(storage)?;
        Ok(())
    }

    /// Grows the filter once it holds more ids than it was sized for (a scan of the tables,
    /// each time the ids held double).
    pub(super) fn grow_filter(&mut self, tables: &IdTables<'_>) -> Result<(), LogError> {
        if self.filter.is_full() {
            self.refill_filter(tables)?;
        }
        Ok(())
    }

    /// The id's entry: staged, else in a table.
    pub(super) fn get(&self, tables: &IdTables<'_>, id: u128) -> Result<Option<Entry>, LogError> {
        if let Some(entry) = self.staging.get(id) {
            return Ok(Some(entry));
        }
        if !self.filter.may_hold(id) {
            return Ok(None);
        }
        lowest_in(tables, id).map_err(storage)
    }

    /// Writes the next step of the compaction in progress into the base table, and the next
    /// slice of the staging's merge into the run being built (and, with its last slice,
    /// `merged_through` and the run's number in `runs_to`).
    pub(super) fn merge_step(
        &self,
        mut tables: IdTables<'_>,
        tx: &redb::WriteTransaction,
    ) -> Result<Step, LogError> {
        let mut meta = tx.open_table(META).map_err(storage)?;
        let compacting = self.runs.start + COMPACT_RUNS;
        let compacted = (self.runs.end >= compacting).then_some(self.compact_step);
        if let Some(step) = compacted {
            if compact(tx, &mut tables, step).map_err(storage)? {
                meta.insert(RUNS_FROM, compacting).map_err(storage)?;
            }
        }
        let slice = self.staging.next_slice();
        if let Some(slice) = &slice {
            let name = run_name(self.runs.end);
            let mut run = tx.open_table(run_table(&name)).map_err(storage)?;
            slice.write(&mut run).map_err(storage)?;
            if let Some(through) = slice.completes {
                meta.insert(MERGED_THROUGH, through).map_err(storage)?;
                meta.insert(RUNS_TO, self.runs.end + 1).map_err(storage)?;
            }
        }
        Ok(Step { slice, compacted })
    }

    /// After the transaction committed: its new ids (`added`, of events up to `head`) and
    /// merge step take effect.
    pub(super) fn committed(&mut self, added: HashMap<u128, Entry>, step: Step, head: Position) {
        for (id, entry) in added {
            self.filter.insert(id);
            self.staging.insert(id, entry);
        }
        if let Some(slice) = step.slice {
            if slice.completes.is_some() {
                self.runs.end += 1;
            }
            self.staging.merged(slice);
        }
        if let Some(done) = step.compacted {
            self.compact_step = done + 1;
            if self.compact_step == COMPACT_STEPS {
                self.runs.start += COMPACT_RUNS;
                self.compact_step = 0;
            }
        }
        self.staging.freeze_if_full(head);
    }
}
