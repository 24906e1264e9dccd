//! A local index of event ids for the JetStream log: id → (position, content digest).
//!
//! JetStream deduplicates whole messages for two minutes only; this index lets a node answer
//! "duplicate" or "conflict" at append time for every id it has seen — its own appends, and
//! everything else it has read from the stream. It is derived data (rebuilt by tailing the
//! stream from its checkpoint), so its commits need not be fsynced: an index that lost its
//! last commits re-reads them. Between nodes it can lag for a moment; the folds' seen-id sets
//! remain the backstop, so a race never has a second effect.

use std::path::Path;

use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};
use uuid::Uuid;

use crate::log::{LogError, Position};

const IDS: TableDefinition<u128, (u64, u64)> = TableDefinition::new("event_ids");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const CHECKPOINT: &str = "checkpoint";

/// redb page cache for this file.
const CACHE_BYTES: usize = 32 * 1024 * 1024;

fn storage(err: impl std::fmt::Display) -> LogError {
    LogError::Storage(format!("event id index: {err}"))
}

/// The index file.
pub struct IdIndex {
    db: Database,
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
        tx.open_table(META).map_err(storage)?;
        tx.commit().map_err(storage)?;
        Ok(Self { db })
    }

    /// The position up to which the stream has been indexed.
    pub fn checkpoint(&self) -> Result<Position, LogError> {
        let tx = self.db.begin_read().map_err(storage)?;
        let meta = tx.open_table(META).map_err(storage)?;
        Ok(meta
            .get(CHECKPOINT)
            .map_err(storage)?
            .map_or(0, |v| v.value()))
    }

    /// (position, digest) of each id, where known.
    pub fn lookup(&self, ids: &[Uuid]) -> Result<Vec<Option<(Position, u64)>>, LogError> {
        let tx = self.db.begin_read().map_err(storage)?;
        let table = tx.open_table(IDS).map_err(storage)?;
        ids.iter()
            .map(|id| Ok(table.get(id.as_u128()).map_err(storage)?.map(|v| v.value())))
            .collect()
    }

    /// Records ids (the first position of an id wins) and, when given, a new checkpoint.
    pub fn insert(
        &self,
        entries: &[(Uuid, Position, u64)],
        checkpoint: Option<Position>,
    ) -> Result<(), LogError> {
        let mut tx = self.db.begin_write().map_err(storage)?;
        // Derived data: rebuilt from the stream after a crash, so no fsync per commit.
        tx.set_durability(Durability::None).map_err(storage)?;
        {
            let mut table = tx.open_table(IDS).map_err(storage)?;
            for (id, position, digest) in entries {
                let key = id.as_u128();
                if table.get(key).map_err(storage)?.is_none() {
                    table.insert(key, (*position, *digest)).map_err(storage)?;
                }
            }
            if let Some(checkpoint) = checkpoint {
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
