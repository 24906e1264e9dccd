//! The embedded log: a redb file on local disk.
//!
//! redb, not sled, because the log is the only copy of the truth: a redb commit is ACID and
//! fsynced when it returns, and its file format is stable. One write transaction per batch
//! makes a batch all or nothing; an id index makes appends idempotent.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use ats_events::{codec, Envelope, EventId, Timestamp};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use tokio::sync::watch;

use crate::log::{dedup_batch, AppendOutcome, EventLog, LogError, Position, StoredEvent};

/// Events by position (big-endian u64 keys keep log order).
const EVENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("events");
/// Event id → (position, content digest), for idempotent appends and conflict detection.
const IDS: TableDefinition<u128, (u64, u64)> = TableDefinition::new("event_ids");

/// The embedded, crash-safe event log.
pub struct EmbeddedLog {
    /// The redb database; redb serializes write transactions itself.
    db: Arc<Database>,
    /// The head position, so tailing readers wake on append instead of polling.
    head: watch::Sender<Position>,
    /// The last append's storage failure (disk full, I/O error), cleared by the next append
    /// that commits: reads may still work then, and readiness must not hide it.
    write_error: std::sync::Mutex<Option<String>>,
}

/// redb page cache for this file.
const CACHE_BYTES: usize = 32 * 1024 * 1024;

fn storage(err: impl std::fmt::Display) -> LogError {
    LogError::Storage(err.to_string())
}

impl EmbeddedLog {
    /// Opens (or creates) the log file at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, LogError> {
        let path = path.as_ref();
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| LogError::Storage(format!("cannot create {}: {e}", dir.display())))?;
        }
        let db = redb::Builder::new()
            // redb caches up to 1 GiB by default; the OS page cache does the rest.
            .set_cache_size(CACHE_BYTES)
            .create(path)
            .map_err(|e| LogError::Storage(format!("cannot open {}: {e}", path.display())))?;
        // Create the tables so that readers never see them missing.
        let tx = db.begin_write().map_err(storage)?;
        tx.open_table(EVENTS).map_err(storage)?;
        tx.open_table(IDS).map_err(storage)?;
        tx.commit().map_err(storage)?;
        let head = {
            let tx = db.begin_read().map_err(storage)?;
            let table = tx.open_table(EVENTS).map_err(storage)?;
            let last = table.last().map_err(storage)?;
            last.map_or(0, |(k, _)| k.value())
        };
        Ok(Self {
            db: Arc::new(db),
            head: watch::channel(head).0,
            write_error: std::sync::Mutex::new(None),
        })
    }

    fn append_blocking(db: &Database, events: Vec<Envelope>) -> Result<AppendOutcome, LogError> {
        let batch = dedup_batch(events)?;
        let recorded_at = Timestamp::now();
        let tx = db.begin_write().map_err(storage)?;
        let mut positions = Vec::with_capacity(batch.unique.len());
        let mut duplicates = Vec::new();
        {
            let mut ids = tx.open_table(IDS).map_err(storage)?;
            let mut table = tx.open_table(EVENTS).map_err(storage)?;
            let mut next = table.last().map_err(storage)?.map_or(0, |(k, _)| k.value()) + 1;
            let mut buf = Vec::with_capacity(512);
            for (mut event, digest) in batch.unique {
                let key = event.id.as_u128();
                let existing = ids.get(key).map_err(storage)?.map(|v| v.value());
                if let Some((position, stored_digest)) = existing {
                    if stored_digest != digest {
                        // Dropping the transaction aborts it: nothing of the batch lands.
                        return Err(LogError::Conflict { id: event.id });
                    }
                    positions.push(position);
                    duplicates.push(event.id);
                    continue;
                }
                event.recorded_at = recorded_at;
                buf.clear();
                codec::encode_into(&event, &mut buf).map_err(storage)?;
                table.insert(next, buf.as_slice()).map_err(storage)?;
                ids.insert(key, (next, digest)).map_err(storage)?;
                positions.push(next);
                next += 1;
            }
        }
        tx.commit().map_err(storage)?;
        let positions = batch.slot.iter().map(|&i| positions[i]).collect();
        Ok(AppendOutcome {
            positions,
            duplicates,
        })
    }

    fn read_blocking(
        db: &Database,
        after: Position,
        max: usize,
    ) -> Result<Vec<StoredEvent>, LogError> {
        let tx = db.begin_read().map_err(storage)?;
        let table = tx.open_table(EVENTS).map_err(storage)?;
        let mut out = Vec::with_capacity(max.min(4096));
        for entry in table
            .range(after.saturating_add(1)..)
            .map_err(storage)?
            .take(max)
        {
            let (key, value) = entry.map_err(storage)?;
            out.push(StoredEvent {
                position: key.value(),
                event: codec::decode(value.value())
                    .map(Arc::new)
                    .map_err(|e| e.to_string()),
            });
        }
        Ok(out)
    }

    /// The position of an event id, if the log holds it.
    pub fn position_of(&self, id: EventId) -> Result<Option<Position>, LogError> {
        let tx = self.db.begin_read().map_err(storage)?;
        let ids = tx.open_table(IDS).map_err(storage)?;
        let found = ids.get(id.as_u128()).map_err(storage)?;
        Ok(found.map(|v| v.value().0))
    }
}

#[async_trait::async_trait]
impl EventLog for EmbeddedLog {
    fn backend(&self) -> &'static str {
        "embedded"
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    async fn append(&self, events: Vec<Envelope>) -> Result<AppendOutcome, LogError> {
        if events.is_empty() {
            return Ok(AppendOutcome::default());
        }
        let db = self.db.clone();
        let result = tokio::task::spawn_blocking(move || Self::append_blocking(&db, events))
            .await
            .map_err(|e| LogError::Storage(format!("append task failed: {e}")))
            .and_then(|r| r);
        // A conflict is the caller's fault and says nothing about the store.
        if let Ok(_) | Err(LogError::Storage(_)) = &result {
            let failure = match &result {
                Err(LogError::Storage(text)) => Some(text.clone()),
                _ => None,
            };
            match self.write_error.lock() {
                Ok(mut slot) => *slot = failure,
                Err(poisoned) => *poisoned.into_inner() = failure,
            }
        }
        let outcome = result?;
        let last = outcome.last_position();
        self.head.send_if_modified(|head| {
            let moved = last > *head;
            *head = (*head).max(last);
            moved
        });
        Ok(outcome)
    }

    async fn read(&self, after: Position, max: usize) -> Result<Vec<StoredEvent>, LogError> {
        let head = *self.head.borrow();
        if after > head {
            // The in-memory head may lag a concurrent commit by a moment; ask the file.
            let head = self.head().await?;
            if after > head {
                return Err(LogError::BeyondHead {
                    position: after,
                    head,
                });
            }
        }
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || Self::read_blocking(&db, after, max))
            .await
            .map_err(|e| LogError::Storage(format!("read task failed: {e}")))?
    }

    async fn head(&self) -> Result<Position, LogError> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || {
            let tx = db.begin_read().map_err(storage)?;
            let table = tx.open_table(EVENTS).map_err(storage)?;
            let last = table.last().map_err(storage)?;
            Ok(last.map_or(0, |(k, _)| k.value()))
        })
        .await
        .map_err(|e| LogError::Storage(format!("head task failed: {e}")))?
    }

    async fn wait_beyond(&self, after: Position, timeout: Duration) {
        let mut rx = self.head.subscribe();
        let _ = tokio::time::timeout(timeout, rx.wait_for(|head| *head > after)).await;
    }

    fn health(&self) -> Result<(), LogError> {
        let failure = match self.write_error.lock() {
            Ok(slot) => slot.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        match failure {
            Some(err) => Err(LogError::Storage(format!("the last append failed: {err}"))),
            None => Ok(()),
        }
    }

    fn may_hold_duplicates(&self) -> bool {
        false
    }
}
