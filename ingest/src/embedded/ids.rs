//! The embedded log's id index: event id → (position, content digest).
//!
//! The newest ids are kept in memory ("staged") and merged into the table in key order, a
//! slice of the key space per commit ([`crate::staging`]).
//!
//! Most appended ids are new, and a new id looked up in the table costs a random leaf read
//! once the table outgrew the cache (37 % of the writer's time at 1M events after staging),
//! so a Bloom filter of every id held answers most of them without a read.
//!
//! Nothing is lost with the memory: the table holds the id of every event up to
//! `merged_through` (a key written in the transaction that completes a merge), and at open
//! the ids of the events after it are read back from the log's own `events` table. Every
//! change here is part of the group's transaction, and the in-memory state changes only
//! after that transaction committed, so a crash at any point reopens to the same answers.

use std::collections::HashMap;

use ats_events::codec;
use redb::{ReadableTable, Table, TableDefinition};

use super::{storage, EVENTS};
use crate::id_filter::IdFilter;
use crate::log::{LogError, Position};
use crate::staging::{Entry, MergeSlice, Staging};

/// Event id → (position, content digest), for idempotent appends and conflict detection.
pub(super) const IDS: TableDefinition<u128, (u64, u64)> = TableDefinition::new("event_ids");
/// `merged_through`: every event up to this position has its id in [`IDS`].
pub(super) const META: TableDefinition<&str, u64> = TableDefinition::new("event_ids_meta");
const MERGED_THROUGH: &str = "merged_through";

/// The filter's smallest capacity, in staging rounds (by default 1M ids, 2 MiB of bits): a
/// log grows, and each growth scans the table.
const MIN_FILTER_ROUNDS: usize = 16;

/// The index's in-memory part, owned by the writer thread.
pub(super) struct StagedIds {
    /// Ids of the events after `merged_through`.
    staging: Staging,
    /// Every id held, staged or in the table (its smallest size scales with the staging).
    filter: IdFilter,
}

impl StagedIds {
    /// Reads `merged_through` (written as the head for a file indexed before staging
    /// existed) and stages the ids of the events after it.
    pub(super) fn load(tx: &redb::WriteTransaction, limit: usize) -> Result<Self, LogError> {
        let events = tx.open_table(EVENTS).map_err(storage)?;
        let head = events
            .last()
            .map_err(storage)?
            .map_or(0, |(k, _)| k.value());
        let mut meta = tx.open_table(META).map_err(storage)?;
        let stored = meta
            .get(MERGED_THROUGH)
            .map_err(storage)?
            .map(|v| v.value());
        let merged_through = match stored {
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
        };
        staged.refill_filter(&tx.open_table(IDS).map_err(storage)?)?;
        staged.staging.freeze_if_full(head);
        Ok(staged)
    }

    /// Sizes the filter for twice the ids held (at least [`MIN_FILTER_ROUNDS`]) and fills it
    /// from the table and the staged ids: at open, and each time it fills up.
    fn refill_filter(&mut self, table: &Table<u128, (u64, u64)>) -> Result<(), LogError> {
        let staged: Vec<u128> = self.staging.ids().collect();
        self.filter = IdFilter::of_table(table, &staged, MIN_FILTER_ROUNDS * self.staging.limit())
            .map_err(storage)?;
        Ok(())
    }

    /// Grows the filter once it holds more ids than it was sized for (a table scan, each
    /// time the ids held double).
    pub(super) fn grow_filter(&mut self, table: &Table<u128, (u64, u64)>) -> Result<(), LogError> {
        if self.filter.is_full() {
            self.refill_filter(table)?;
        }
        Ok(())
    }

    /// The id's entry: staged, else in the table.
    pub(super) fn get(
        &self,
        table: &Table<u128, (u64, u64)>,
        id: u128,
    ) -> Result<Option<Entry>, LogError> {
        if let Some(entry) = self.staging.get(id) {
            return Ok(Some(entry));
        }
        if !self.filter.may_hold(id) {
            return Ok(None);
        }
        Ok(table.get(id).map_err(storage)?.map(|v| v.value()))
    }

    /// Writes the next slice of the merge in progress into `tx`'s tables (and
    /// `merged_through` with the last one).
    pub(super) fn merge_step(
        &self,
        table: &mut Table<u128, (u64, u64)>,
        tx: &redb::WriteTransaction,
    ) -> Result<Option<MergeSlice>, LogError> {
        let Some(slice) = self.staging.next_slice() else {
            return Ok(None);
        };
        slice.write(table).map_err(storage)?;
        if let Some(through) = slice.completes {
            let mut meta = tx.open_table(META).map_err(storage)?;
            meta.insert(MERGED_THROUGH, through).map_err(storage)?;
        }
        Ok(Some(slice))
    }

    /// After the transaction committed: its new ids (`added`, of events up to `head`) and
    /// merge step take effect.
    pub(super) fn committed(
        &mut self,
        added: HashMap<u128, Entry>,
        step: Option<MergeSlice>,
        head: Position,
    ) {
        for (id, entry) in added {
            self.filter.insert(id);
            self.staging.insert(id, entry);
        }
        if let Some(step) = step {
            self.staging.merged(step);
        }
        self.staging.freeze_if_full(head);
    }
}
