//! Event ids staged in memory before they are merged into an id index's redb table, in key
//! order: the staging both id indexes (the embedded log's, the JetStream node's) share.
//!
//! Ids are random (UUIDs), so inserting each one into the on-disk B-tree as it arrives
//! dirties one random leaf page per event. Once the table outgrew redb's cache, every commit
//! read and rewrote thousands of 4 KiB pages (a profile of 1M events over HTTP on the
//! embedded log: its writer spent half its time in the kernel doing that; on JetStream the
//! node's tail fell hundreds of thousands of ids behind the stream). Staged ids are merged in
//! key order, a slice of the key space per commit: a merge dirties each leaf once for many
//! ids, and no commit dirties more than a slice's leaves.
//!
//! The owner decides what "nothing is lost" means: each index persists the position up to
//! which its table is complete (written by the commit of a merge's last slice) and reads the
//! ids after it back from its source when it opens.

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::Arc;

use crate::log::Position;

/// What an id maps to: (position, content digest).
pub(crate) type Entry = (Position, u64);

/// The entry with the lower position: the lowest position is the id's first copy.
pub(crate) fn lowest(a: Option<Entry>, b: Option<Entry>) -> Option<Entry> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Ids staged before they are merged, by default: ~4 MiB of memory; a merge of this many
/// ids into the index of 1M events rewrites each of its leaves about once.
pub const STAGED_IDS: usize = 64 * 1024;

/// A merge is spread over this many commits (slices of the key space), so that one commit
/// dirties at most this fraction of the index's leaves.
const MERGE_STEPS: usize = 8;

/// The staged ids of one index.
pub(crate) struct Staging {
    /// Ids of the events after `frozen_through`.
    active: BTreeMap<u128, Entry>,
    /// Ids of the events up to `frozen_through` not yet all in the table, sorted by id:
    /// shared, so that a slice can be written while lookups still read them here.
    frozen: Arc<[(u128, Entry)]>,
    /// How many of `frozen` the table holds.
    merged: usize,
    frozen_through: Position,
    /// Staged ids that start a merge.
    limit: usize,
}

/// The next slice of a merge: written into a transaction, then handed back to
/// [`Staging::merged`] once that transaction committed.
pub(crate) struct MergeSlice {
    frozen: Arc<[(u128, Entry)]>,
    range: Range<usize>,
    /// Set on a merge's last slice: once it is written, the table holds the id of every
    /// event up to this position.
    pub(crate) completes: Option<Position>,
}

impl MergeSlice {
    /// The ids to write, in key order.
    pub(crate) fn entries(&self) -> &[(u128, Entry)] {
        &self.frozen[self.range.clone()]
    }

    /// Writes the slice's ids into an index's table (in key order: each leaf once).
    pub(crate) fn write(
        &self,
        table: &mut redb::Table<u128, (u64, u64)>,
    ) -> Result<(), redb::StorageError> {
        for (id, entry) in self.entries() {
            table.insert(id, entry)?;
        }
        Ok(())
    }
}

impl Staging {
    /// Empty staging over a table complete up to `through`; a merge starts at `limit` ids.
    pub(crate) fn new(limit: usize, through: Position) -> Self {
        Self {
            active: BTreeMap::new(),
            frozen: Arc::new([]),
            merged: 0,
            frozen_through: through,
            limit: limit.max(1),
        }
    }

    /// Staged ids that start a merge.
    pub(crate) fn limit(&self) -> usize {
        self.limit
    }

    /// The staged entry of `id`.
    pub(crate) fn get(&self, id: u128) -> Option<Entry> {
        if let Some(entry) = self.active.get(&id) {
            return Some(*entry);
        }
        let i = self.frozen.binary_search_by_key(&id, |(k, _)| *k).ok()?;
        Some(self.frozen[i].1)
    }

    /// Stages `id` (of an event after the last freeze).
    pub(crate) fn insert(&mut self, id: u128, entry: Entry) {
        self.active.insert(id, entry);
    }

    /// Every staged id.
    pub(crate) fn ids(&self) -> impl Iterator<Item = u128> + '_ {
        (self.active.keys().copied()).chain(self.frozen.iter().map(|(id, _)| *id))
    }

    /// The next slice of the merge in progress, if one is.
    pub(crate) fn next_slice(&self) -> Option<MergeSlice> {
        if self.frozen.is_empty() {
            return None;
        }
        let end = (self.merged + self.frozen.len().div_ceil(MERGE_STEPS)).min(self.frozen.len());
        Some(MergeSlice {
            frozen: self.frozen.clone(),
            range: self.merged..end,
            completes: (end == self.frozen.len()).then_some(self.frozen_through),
        })
    }

    /// `slice` is in the table now (its transaction committed).
    pub(crate) fn merged(&mut self, slice: MergeSlice) {
        self.merged = slice.range.end;
        if slice.completes.is_some() {
            self.frozen = Arc::new([]);
            self.merged = 0;
        }
    }

    /// Starts a merge of the active ids once there are enough and no merge is running:
    /// every id up to `head` is staged or in the table.
    pub(crate) fn freeze_if_full(&mut self, head: Position) {
        if self.frozen.is_empty() && self.active.len() >= self.limit {
            self.frozen = std::mem::take(&mut self.active).into_iter().collect();
            self.frozen_through = head;
            self.merged = 0;
        }
    }
}
