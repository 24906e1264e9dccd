//! The embedded log: a redb file on local disk.
//!
//! redb, not sled, because the log is the only copy of the truth: a redb commit is ACID and
//! fsynced when it returns, and its file format is stable. A batch lands whole in one write
//! transaction (all or nothing); an id index makes appends idempotent.
//!
//! **Group commit**: appends go to one writer thread, which takes every append waiting at
//! that moment into one transaction and one fsync, and answers each caller with its own
//! positions, duplicates or conflict. A conflicting append is refused before it writes
//! anything, so it never takes the others down with it.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use ats_events::{codec, Envelope, Timestamp};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use tokio::sync::watch;

use crate::log::{
    dedup_batch, AppendOutcome, EventLog, LogError, Position, StoredEvent, UniqueBatch,
};

mod ids;
pub use crate::staging::STAGED_IDS;
use ids::{StagedIds, IDS, META};

/// Events by position (big-endian u64 keys keep log order).
const EVENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("events");

/// The embedded, crash-safe event log.
pub struct EmbeddedLog {
    /// The redb database: read here, written only by the writer thread.
    db: Arc<Database>,
    /// Appends waiting for the writer thread (`None` once dropped, which stops the thread).
    writer: Option<tokio::sync::mpsc::Sender<AppendRequest>>,
    /// The writer thread, joined on drop so that the file is closed when the log is.
    writer_thread: Option<std::thread::JoinHandle<()>>,
    /// The head position, so tailing readers wake on append instead of polling.
    head: watch::Sender<Position>,
    /// The last append's storage failure (disk full, I/O error), cleared by the next append
    /// that commits: reads may still work then, and readiness must not hide it.
    write_error: std::sync::Mutex<Option<String>>,
    /// The last few full batches read, decoded: every projector follows the log on its own
    /// and, catching up, reads the same ranges, so all but the first find them here instead
    /// of reading and decoding them again. Only full batches (`max` events) are kept: on an
    /// append-only log with dense positions they can never change.
    recent: std::sync::Mutex<std::collections::VecDeque<RecentBatch>>,
}

/// One caller's append, waiting for the writer thread.
struct AppendRequest {
    /// The caller's events, in-batch retries folded and digests computed by the caller (the
    /// writer thread is the one thing every append waits on).
    batch: UniqueBatch,
    reply: tokio::sync::oneshot::Sender<Result<AppendOutcome, LogError>>,
}

/// Appends queued for the writer before callers wait to enqueue (backpressure).
const QUEUED_APPENDS: usize = 64;
/// Events one group commit takes at most (more wait for the next transaction), so that a
/// transaction's dirty pages stay bounded.
const GROUP_EVENTS: usize = 16 * 1024;

/// A full batch as read: `max` events after `after`.
struct RecentBatch {
    after: Position,
    max: usize,
    events: Vec<StoredEvent>,
}

/// Full batches kept decoded (see `EmbeddedLog::recent`): bounded, as each is up to a
/// catch-up batch of decoded events.
const RECENT_BATCHES: usize = 4;

/// redb page cache for this file. Readers follow the tail, whose pages the writer has just
/// touched, or scan in order, where the OS page cache serves as well: 32 MiB cost 45–55 MiB
/// of peak RSS (with allocator overhead) and bought no ingest or rebuild ratio over 8 (two
/// A/B runs of the bench at 1M events: 0.091/0.090 and 0.093/0.092; 0.046/0.033 and
/// 0.039/0.042).
const CACHE_BYTES: usize = 8 * 1024 * 1024;

fn storage(err: impl std::fmt::Display) -> LogError {
    LogError::Storage(err.to_string())
}

impl EmbeddedLog {
    /// Opens (or creates) the log file at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, LogError> {
        Self::open_staging(path, STAGED_IDS)
    }

    /// Opens the log keeping up to about `staged_ids` of the newest event ids in memory
    /// before they are merged into the on-disk id index ([`STAGED_IDS`] by default; tests
    /// pass small numbers to merge often).
    pub fn open_staging(path: impl AsRef<Path>, staged_ids: usize) -> Result<Self, LogError> {
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
        tx.open_table(META).map_err(storage)?;
        let staged = StagedIds::load(&tx, staged_ids)?;
        tx.commit().map_err(storage)?;
        let head = {
            let tx = db.begin_read().map_err(storage)?;
            let table = tx.open_table(EVENTS).map_err(storage)?;
            let last = table.last().map_err(storage)?;
            last.map_or(0, |(k, _)| k.value())
        };
        let db = Arc::new(db);
        let (writer, queue) = tokio::sync::mpsc::channel(QUEUED_APPENDS);
        let writer_thread = std::thread::Builder::new()
            .name("ats-log-writer".into())
            .spawn({
                let db = db.clone();
                move || Self::write_loop(&db, staged, queue)
            })
            .map_err(|e| LogError::Storage(format!("cannot start the log writer: {e}")))?;
        Ok(Self {
            db,
            writer: Some(writer),
            writer_thread: Some(writer_thread),
            head: watch::channel(head).0,
            write_error: std::sync::Mutex::new(None),
            recent: std::sync::Mutex::new(std::collections::VecDeque::new()),
        })
    }

    /// The writer thread: each turn commits every append waiting (up to [`GROUP_EVENTS`]) in
    /// one transaction, then answers each caller. Ends when the log is dropped.
    fn write_loop(
        db: &Database,
        mut staged: StagedIds,
        mut queue: tokio::sync::mpsc::Receiver<AppendRequest>,
    ) {
        while let Some(first) = queue.blocking_recv() {
            let mut events = first.batch.unique.len();
            let mut group = vec![first];
            while events < GROUP_EVENTS {
                match queue.try_recv() {
                    Ok(request) => {
                        events += request.batch.unique.len();
                        group.push(request);
                    }
                    Err(_) => break,
                }
            }
            let (batches, replies): (Vec<_>, Vec<_>) =
                group.into_iter().map(|r| (r.batch, r.reply)).unzip();
            for (reply, result) in
                replies
                    .into_iter()
                    .zip(Self::append_group(db, &mut staged, batches))
            {
                // A caller that stopped waiting still had its events committed, as before.
                let _ = reply.send(result);
            }
        }
    }

    /// Appends `batches` (one per caller) in one transaction: each gets its own outcome. A
    /// refused batch (a conflict) writes nothing; a storage failure fails them all.
    fn append_group(
        db: &Database,
        staged: &mut StagedIds,
        batches: Vec<UniqueBatch>,
    ) -> Vec<Result<AppendOutcome, LogError>> {
        let count = batches.len();
        let result = (|| {
            let recorded_at = Timestamp::now();
            let tx = db.begin_write().map_err(storage)?;
            let mut outcomes = Vec::with_capacity(count);
            // The group's new ids: staged only once the transaction committed.
            let mut added = std::collections::HashMap::new();
            let (step, head) = {
                let ids = staged.tables(&tx)?;
                staged.grow_filter(&ids)?;
                let mut table = tx.open_table(EVENTS).map_err(storage)?;
                let mut next = table.last().map_err(storage)?.map_or(0, |(k, _)| k.value()) + 1;
                let mut buf = Vec::with_capacity(512);
                for batch in batches {
                    // Look every id up first: a conflict refuses this batch before it has
                    // written anything. The transaction sees the group's earlier batches, so
                    // a retry inside one group is a duplicate, as it would be one after.
                    let mut found = Vec::with_capacity(batch.unique.len());
                    let mut conflict = None;
                    for (event, digest) in &batch.unique {
                        let id = event.id.as_u128();
                        let existing = match added.get(&id) {
                            Some(entry) => Some(*entry),
                            None => staged.get(&ids, id)?,
                        };
                        match existing {
                            Some((_, stored)) if stored != *digest => {
                                conflict = Some(event.id);
                                break;
                            }
                            existing => found.push(existing.map(|(position, _)| position)),
                        }
                    }
                    if let Some(id) = conflict {
                        outcomes.push(Err(LogError::Conflict { id }));
                        continue;
                    }
                    let mut positions = Vec::with_capacity(batch.unique.len());
                    let mut duplicates = Vec::new();
                    for ((mut event, digest), existing) in batch.unique.into_iter().zip(found) {
                        if let Some(position) = existing {
                            positions.push(position);
                            duplicates.push(event.id);
                            continue;
                        }
                        event.recorded_at = recorded_at;
                        buf.clear();
                        codec::encode_into(&event, &mut buf).map_err(storage)?;
                        table.insert(next, buf.as_slice()).map_err(storage)?;
                        added.insert(event.id.as_u128(), (next, digest));
                        positions.push(next);
                        next += 1;
                    }
                    outcomes.push(Ok(AppendOutcome {
                        positions: batch.slot.iter().map(|&i| positions[i]).collect(),
                        duplicates,
                    }));
                }
                (staged.merge_step(ids, &tx)?, next - 1)
            };
            tx.commit().map_err(storage)?;
            staged.committed(added, step, head);
            Ok::<_, LogError>(outcomes)
        })();
        match result {
            Ok(outcomes) => outcomes,
            // Dropping the transaction aborted it: nothing of the group landed.
            Err(err) => (0..count)
                .map(|_| Err(LogError::Storage(err.to_string())))
                .collect(),
        }
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
            out.push(StoredEvent::decode(key.value(), value.value()));
        }
        Ok(out)
    }

    /// A full batch read a moment ago (events are shared, not copied).
    fn recent_batch(&self, after: Position, max: usize) -> Option<Vec<StoredEvent>> {
        let recent = match self.recent.lock() {
            Ok(recent) => recent,
            Err(poisoned) => poisoned.into_inner(),
        };
        recent
            .iter()
            .find(|b| b.after == after && b.max == max)
            .map(|b| b.events.clone())
    }
}

impl Drop for EmbeddedLog {
    fn drop(&mut self) {
        // Closing the queue ends the writer after its current group; joining it releases its
        // handle on the database, so the file can be opened again at once.
        self.writer.take();
        if let Some(thread) = self.writer_thread.take() {
            let _ = thread.join();
        }
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
        let batch = dedup_batch(events)?;
        let stopped = || LogError::Storage("the log writer stopped".into());
        let (reply, answer) = tokio::sync::oneshot::channel();
        let writer = self.writer.as_ref().ok_or_else(stopped)?;
        writer
            .send(AppendRequest { batch, reply })
            .await
            .map_err(|_| stopped())?;
        let result = answer.await.map_err(|_| stopped()).and_then(|r| r);
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
        if let Some(events) = self.recent_batch(after, max) {
            return Ok(events);
        }
        let db = self.db.clone();
        let events = tokio::task::spawn_blocking(move || Self::read_blocking(&db, after, max))
            .await
            .map_err(|e| LogError::Storage(format!("read task failed: {e}")))??;
        if max > 1 && events.len() == max {
            let mut recent = match self.recent.lock() {
                Ok(recent) => recent,
                Err(poisoned) => poisoned.into_inner(),
            };
            if recent.len() >= RECENT_BATCHES {
                recent.pop_front();
            }
            recent.push_back(RecentBatch {
                after,
                max,
                events: events.clone(),
            });
        }
        Ok(events)
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
}
