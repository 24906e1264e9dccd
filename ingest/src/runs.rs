//! Runs of an id index, shared by both indexes (the embedded log's, the JetStream node's).
//!
//! Each staging ([`crate::staging`]) is written into a table of its own, a *run*: appends in
//! key order at the right edge of an empty B-tree. Once [`COMPACT_RUNS`] runs are live they
//! are compacted into the base table, a slice of the id space per commit, and the commit of
//! the last slice drops them. Merging each staging straight into the base table rewrote
//! every leaf of it per staging, so the I/O per id grew with the table (~600 bytes per id at
//! 1M events, ~6 KB at 10M); a compaction rewrites them once per [`COMPACT_RUNS`] stagings.
//!
//! A lookup reads the base table and the live runs and takes the entry with the lowest
//! position ([`lowest`]): on the embedded log an id is in at most one of them or has the same
//! entry in each, and on JetStream a node may have recorded a later copy of an id in the base
//! table before its tail read the first.

use std::ops::Range;

use redb::{ReadableTable, Table, TableDefinition, WriteTransaction};

use crate::staging::{lowest, Entry};

/// Live runs that start a compaction into the base table: each compaction rewrites the base
/// table's leaves once for this many stagings' ids (and a lookup the filter cannot answer
/// reads up to this many runs more).
pub(crate) const COMPACT_RUNS: u64 = 8;
/// A compaction is spread over 2^this commits, each a slice of the key space (ids are
/// random), so that one commit dirties at most that fraction of the base table's leaves.
const COMPACT_STEPS_LOG2: u32 = 5;
/// Commits per compaction.
pub(crate) const COMPACT_STEPS: u32 = 1 << COMPACT_STEPS_LOG2;

/// The name of run number `run`.
pub(crate) fn run_name(run: u64) -> String {
    format!("event_ids_run_{run}")
}

/// The table of the run named `name` ([`run_name`]).
pub(crate) fn run_table(name: &str) -> TableDefinition<'_, u128, Entry> {
    TableDefinition::new(name)
}

/// An id table (the base table or a run) open in a write transaction.
pub(crate) type IdTable<'txn> = Table<'txn, u128, Entry>;

/// The keys of a compaction's `step`: a 1/[`COMPACT_STEPS`] slice of the id space.
fn step_keys(step: u32) -> (u128, Option<u128>) {
    let shift = 128 - COMPACT_STEPS_LOG2;
    let end = (step + 1 < COMPACT_STEPS).then(|| u128::from(step + 1) << shift);
    (u128::from(step) << shift, end)
}

/// The entry of `id` with the lowest position among `tables`.
pub(crate) fn lowest_in<'t, T>(
    tables: impl IntoIterator<Item = &'t T>,
    id: u128,
) -> Result<Option<Entry>, redb::StorageError>
where
    T: ReadableTable<u128, Entry> + 't,
{
    let mut found = None;
    for table in tables {
        if let Some(entry) = table.get(id)? {
            found = lowest(found, Some(entry.value()));
        }
    }
    Ok(found)
}

/// The base table (`base`) and the live `runs`, in that order, each opened by `open`: in a
/// write transaction ([`open_tables`]) or in a read transaction's snapshot.
pub(crate) fn open_each<T, E>(
    base: TableDefinition<u128, Entry>,
    runs: Range<u64>,
    mut open: impl FnMut(TableDefinition<'_, u128, Entry>) -> Result<T, E>,
) -> Result<Vec<T>, E> {
    let base = open(base)?;
    let runs = runs.map(|run| open(run_table(&run_name(run))));
    std::iter::once(Ok(base)).chain(runs).collect()
}

/// The base table (`base`) and the live `runs`, in that order, open in a write transaction.
pub(crate) fn open_tables<'txn>(
    tx: &'txn WriteTransaction,
    base: TableDefinition<u128, Entry>,
    runs: Range<u64>,
) -> Result<Vec<IdTable<'txn>>, redb::TableError> {
    open_each(base, runs, |table| tx.open_table(table))
}

/// Takes compaction `step` of the oldest [`COMPACT_RUNS`] runs into the base table, in
/// `tables` as [`open_tables`] opened them (at least that many runs live); with the last step
/// the compacted runs are deleted, from `tx` and from `tables`. True once the compaction is
/// complete: the caller then moves its first live run on by [`COMPACT_RUNS`].
pub(crate) fn compact(
    tx: &WriteTransaction,
    tables: &mut Vec<IdTable<'_>>,
    step: u32,
) -> Result<bool, redb::Error> {
    let compacted = 1..=COMPACT_RUNS as usize;
    {
        let (base, live) = tables.split_at_mut(1);
        let oldest: Vec<&IdTable<'_>> = live[..COMPACT_RUNS as usize].iter().collect();
        compact_step(&mut base[0], &oldest, step)?;
    }
    if step + 1 < COMPACT_STEPS {
        return Ok(false);
    }
    for run in tables.drain(compacted) {
        tx.delete_table(run)?;
    }
    Ok(true)
}

/// Copies compaction `step`'s slice of the id space from `runs` into `base`, keeping an
/// entry of `base` whose position is lower.
fn compact_step(
    base: &mut IdTable<'_>,
    runs: &[&IdTable<'_>],
    step: u32,
) -> Result<(), redb::StorageError> {
    let (from, to) = step_keys(step);
    for run in runs {
        let entries = match to {
            Some(to) => run.range(from..to),
            None => run.range(from..),
        }?;
        for entry in entries {
            let (id, entry) = entry?;
            let (id, entry) = (id.value(), entry.value());
            let held = base.insert(id, entry)?.map(|old| old.value());
            if let Some(held) = held.filter(|&held| held < entry) {
                base.insert(id, held)?;
            }
        }
    }
    Ok(())
}
