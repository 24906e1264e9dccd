//! The projector runtime: independent tasks that fold the log into read models.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

use ats_events::{Envelope, Timestamp};
use ats_ingest::{EventLog, LogError, Position, Repeat, StoredEvent};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::{watch, Notify};

use crate::store::{Store, StoreError};
use crate::view::{Changes, Encoding, View};

/// Reserved keys sort after every read-model key (`0xff` never starts a UTF-8 key).
const CHECKPOINT_KEY: &[u8] = b"\xff\x00checkpoint";
const DIGEST_KEY: &[u8] = b"\xff\x00digest";
/// Present while a fold's writes are being applied (see [`commit`]): a tree holding it was
/// cut in the middle of a batch.
const TORN_KEY: &[u8] = b"\xff\x00torn";
const DEAD_PREFIX: &[u8] = b"\xff\x02";

/// Events a projector following the log folds at most per batch (and per commit). Bigger
/// batches cut a replay's CPU (see [`REPLAY_BATCH`]), but 4,096 here halved the ingest rate
/// of `ats-mafia bench` running beside the folds (cause not pinned down yet), so following
/// keeps 1,000.
pub const BATCH: usize = 1000;

/// Events folded per batch by an offline replay ([`rebuild_all`], [`replay_into`]).
///
/// A key the fold touches many times (an operator's profile, a day bucket) is decoded,
/// encoded and written to sled once per batch, so bigger batches cut the dominant cost of a
/// replay. The bound is the memory of one batch: about 1 KiB per decoded event (8 MiB),
/// shared by every projector of a [`rebuild_all`], plus the distinct keys the batch touches.
pub const REPLAY_BATCH: usize = 8192;

/// Why a projector could not apply an event.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ApplyError {
    /// The event cannot be applied (a poison event): it goes to the dead letters.
    #[error("{0}")]
    Rejected(String),
    /// The store failed: the batch is retried, nothing is dead-lettered.
    #[error("read-model storage error: {0}")]
    Storage(String),
}

/// A read model: a pure fold of events into one sled tree.
pub trait Projector: Send + Sync + 'static {
    /// Name with version (`profiles_v3`); a new version rebuilds from position 0.
    fn name(&self) -> &'static str;

    /// Folds one event. Time comes from the event, never from the clock.
    fn apply(&self, view: &mut View<'_>, event: &Envelope) -> Result<(), ApplyError>;

    /// How the tree encodes its values; changing it needs a new [`name`](Self::name).
    fn encoding(&self) -> Encoding {
        Encoding::Named
    }
}

/// What a projector is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProjectorState {
    /// Reading history.
    CatchingUp,
    /// At the head of the log, following it.
    Live,
    /// Replaying into a fresh tree; queries read the old one.
    Rebuilding,
    /// Stopped on an error it cannot get past alone (see `last_error`).
    Failed,
}

/// A projector's progress, served on `/metrics`, `/readyz` and the admin API.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ProjectorStatus {
    /// Projector name.
    pub name: &'static str,
    /// State.
    pub state: ProjectorState,
    /// Last applied position (the checkpoint).
    pub position: Position,
    /// Last known head of the log.
    pub head: Position,
    /// Events between the checkpoint and the head (exact for the embedded log; records for JetStream).
    pub lag_events: u64,
    /// Age of the last applied event when behind, 0 when live.
    pub lag_seconds: f64,
    /// Wall-clock time of the loop's last turn: a stalled loop shows here.
    #[schema(value_type = String)]
    pub heartbeat: Timestamp,
    /// Digest of the tree at the checkpoint (equal for equal states).
    pub digest: String,
    /// Dead-lettered events.
    pub dead_letters: u64,
    /// The tree generation queries read.
    pub generation: u64,
    /// The last error, if any.
    pub last_error: Option<String>,
}

/// An event a projector could not apply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DeadLetter {
    /// Projector that refused it.
    #[serde(default)]
    pub projector: String,
    /// Log position.
    pub position: Position,
    /// Event id, when it decoded.
    pub event_id: Option<String>,
    /// Kind, when it decoded.
    pub kind: Option<String>,
    /// Why.
    pub error: String,
}

/// One projector as the runtime holds it.
pub struct ProjectorHandle {
    projector: Arc<dyn Projector>,
    /// The tree queries read; swapped whole by a rebuild.
    tree: RwLock<sled::Tree>,
    /// Progress, watched by read-your-writes queries.
    status: watch::Sender<ProjectorStatus>,
    /// Wakes the task to rebuild.
    rebuild: Notify,
}

impl ProjectorHandle {
    /// The projector's name.
    pub fn name(&self) -> &'static str {
        self.projector.name()
    }

    /// The tree queries read now.
    pub fn tree(&self) -> sled::Tree {
        match self.tree.read() {
            Ok(tree) => tree.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Current status.
    pub fn status(&self) -> ProjectorStatus {
        self.status.borrow().clone()
    }

    /// Waits until the checkpoint reaches `position`; false on timeout.
    pub async fn wait_for(&self, position: Position, timeout: Duration) -> bool {
        let mut rx = self.status.subscribe();
        tokio::time::timeout(timeout, rx.wait_for(|s| s.position >= position))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Dead letters in position order.
    pub fn dead_letters(&self) -> Vec<DeadLetter> {
        dead_letters(&self.tree(), self.name())
    }

    fn update(&self, change: impl FnOnce(&mut ProjectorStatus)) {
        self.status.send_modify(|s| {
            change(s);
            s.heartbeat = Timestamp::now();
        });
    }
}

/// The dead letters stored in `tree` of `projector`, in position order (also for offline
/// readers, such as the CLI over a local data directory).
pub fn dead_letters(tree: &sled::Tree, projector: &str) -> Vec<DeadLetter> {
    // `map_while`: a sled iterator that fails keeps failing, it never ends.
    tree.scan_prefix(DEAD_PREFIX)
        .map_while(Result::ok)
        .filter_map(|(_, v)| rmp_serde::from_slice::<DeadLetter>(&v).ok())
        .map(|mut d| {
            d.projector = projector.to_owned();
            d
        })
        .collect()
}

/// The checkpoint stored in a tree (0 = nothing applied).
pub fn checkpoint(tree: &sled::Tree) -> Position {
    read_u64(tree, CHECKPOINT_KEY)
}

/// The digest stored in a tree, as 16 hex digits.
pub fn digest(tree: &sled::Tree) -> String {
    format!("{:016x}", read_u64(tree, DIGEST_KEY))
}

fn read_u64(tree: &sled::Tree, key: &[u8]) -> u64 {
    tree.get(key)
        .ok()
        .flatten()
        .and_then(|v| v.as_ref().try_into().ok().map(u64::from_be_bytes))
        .unwrap_or(0)
}

/// What folding one batch did.
#[derive(Debug, Default)]
pub struct Folded {
    /// Position of the last event of the batch (the new checkpoint).
    pub position: Position,
    /// Events dead-lettered in the batch.
    pub dead_letters: u64,
    /// `recorded_at` of the last applied event.
    pub recorded_at: Option<Timestamp>,
}

/// Folds a batch into `tree`: read-model changes, dead letters, checkpoint and digest, written
/// as one commit (see [`commit_writes`]: a crash leaves all of it, none of it, or a tree
/// marked as cut). A [`Repeat`] of an earlier event is skipped when it is a retry and
/// dead-lettered when it is a conflict (the log decides which, once for every projector).
pub fn fold_batch(
    projector: &dyn Projector,
    tree: &sled::Tree,
    events: &[StoredEvent],
) -> Result<Folded, ApplyError> {
    let (writes, folded) = fold_writes(projector, tree, events)?;
    commit(tree, writes).map_err(|e| ApplyError::Storage(e.to_string()))?;
    Ok(folded)
}

/// Folds a batch: the writes of its commit ([`commit_writes`]), not made yet.
pub(crate) fn fold_writes(
    projector: &dyn Projector,
    tree: &sled::Tree,
    events: &[StoredEvent],
) -> Result<(Writes, Folded), ApplyError> {
    let Some(last) = events.last() else {
        return Ok((Vec::new(), Folded::default()));
    };
    // Events refused so far in this batch, by index. A refused event may have changed the
    // view before failing, so the batch is folded again from scratch without it.
    let mut refused: BTreeMap<usize, String> = BTreeMap::new();
    'attempt: loop {
        let mut view = View::new(tree, projector.encoding());
        let mut recorded_at = None;
        // Ids applied before with other content, dead-lettered in this attempt.
        let mut conflicts = 0u64;
        for (index, stored) in events.iter().enumerate() {
            if let Some(reason) = refused.get(&index) {
                dead_letter(&mut view, stored, reason)?;
                continue;
            }
            let event = match &stored.event {
                Ok(event) => event,
                Err(reason) => {
                    dead_letter(&mut view, stored, &format!("undecodable: {reason}"))?;
                    continue;
                }
            };
            match stored.repeat {
                Some(Repeat::Retry { .. }) => continue,
                Some(Repeat::Conflict { first }) => {
                    let reason = format!(
                        "conflict: event id {} was first written at position {first} with other content",
                        event.id
                    );
                    dead_letter(&mut view, stored, &reason)?;
                    conflicts += 1;
                    continue;
                }
                None => {}
            }
            match projector.apply(&mut view, event) {
                Ok(()) => {}
                Err(ApplyError::Rejected(reason)) => {
                    refused.insert(index, reason);
                    continue 'attempt;
                }
                Err(err @ ApplyError::Storage(_)) => return Err(err),
            }
            recorded_at = Some(event.recorded_at);
        }
        let writes = commit_writes(
            read_u64(tree, DIGEST_KEY),
            view.into_changes()?,
            last.position,
        );
        let folded = Folded {
            position: last.position,
            dead_letters: refused.len() as u64
                + conflicts
                + events.iter().filter(|e| e.event.is_err()).count() as u64,
            recorded_at,
        };
        return Ok((writes, folded));
    }
}

/// Keys in the order they are written, each with its new bytes (`None` = removed).
pub(crate) type Writes = Vec<(Vec<u8>, Option<Vec<u8>>)>;

/// Makes a batch's writes: its changes, its digest and its checkpoint ([`commit_writes`]).
///
/// One sled write per key instead of one sled batch: a batch (or transaction) anywhere in
/// the process turns on sled's process-wide lock, after which every read of every tree
/// waits while any batch is applied (a fold's batch of thousands of keys held the queries
/// for milliseconds), and a large batch keeps the io buffers and node versions it touched
/// in memory until it ends.
///
/// The keys are then noted for the caches watching them ([`crate::watch`]), even after a
/// failed write: one noted but unchanged costs a cache a second look, one missed a stale
/// answer.
pub(crate) fn commit(tree: &sled::Tree, writes: Writes) -> sled::Result<()> {
    let result = writes.iter().try_for_each(|(key, value)| {
        match value {
            Some(value) => tree.insert(key, value.as_slice())?,
            None => tree.remove(key)?,
        };
        Ok(())
    });
    crate::watch::written(tree, writes.iter().map(|(key, _)| key.as_slice()));
    result
}

/// The writes of one commit, in the order they are made: [`TORN_KEY`], the changes, the
/// digest (`digest` is the tree's before the batch), the checkpoint, and the marker's removal.
///
/// sled recovers a prefix of a thread's writes in the order they were made, so after a
/// crash a tree holds the marker exactly when it holds part of a batch: [`Runtime::start`]
/// then folds that projector again from position 0. A batch that changed nothing but the
/// checkpoint is that one atomic write.
fn commit_writes(digest: u64, changes: Changes, position: Position) -> Writes {
    let checkpoint = Some(position.to_be_bytes().to_vec());
    if changes.writes.is_empty() {
        return vec![(CHECKPOINT_KEY.to_vec(), checkpoint)];
    }
    let digest = digest
        .wrapping_add(changes.added)
        .wrapping_sub(changes.removed);
    let mut writes = Vec::with_capacity(changes.writes.len() + 4);
    writes.push((TORN_KEY.to_vec(), checkpoint.clone()));
    writes.extend(changes.writes);
    writes.push((DIGEST_KEY.to_vec(), Some(digest.to_be_bytes().to_vec())));
    writes.push((CHECKPOINT_KEY.to_vec(), checkpoint));
    writes.push((TORN_KEY.to_vec(), None));
    writes
}

/// The active generation and tree of `projector`, or, if a crash cut that tree in the middle
/// of a batch, an empty tree of the next generation in its place (to fold again from 0).
/// Whatever folds into an active tree opens it through here.
pub fn active_tree(store: &Store, projector: &str) -> Result<(u64, sled::Tree), StoreError> {
    let generation = store.active_generation(projector)?;
    let tree = store.tree(projector, generation)?;
    if !tree.contains_key(TORN_KEY).unwrap_or(false) {
        return Ok((generation, tree));
    }
    tracing::warn!(
        projector,
        "read model cut in the middle of a batch by a crash: folding the log again from position 0"
    );
    let fresh = generation + 1;
    let empty = store.tree(projector, fresh)?;
    empty.clear().map_err(|e| store.sled_err(e))?;
    store.set_active_generation(projector, fresh)?;
    store.drop_tree(projector, generation)?;
    Ok((fresh, empty))
}

fn dead_letter(view: &mut View<'_>, stored: &StoredEvent, reason: &str) -> Result<(), ApplyError> {
    let event = stored.envelope();
    let letter = DeadLetter {
        projector: String::new(),
        position: stored.position,
        event_id: event.map(|e| e.id.to_string()),
        kind: event.map(|e| e.kind().as_str().to_owned()),
        error: reason.to_owned(),
    };
    let key = [DEAD_PREFIX, stored.position.to_be_bytes().as_slice()].concat();
    view.put(&key, letter)
}

/// Runs every projector as an independent task.
pub struct Runtime {
    store: Store,
    log: Arc<dyn EventLog>,
    handles: Vec<Arc<ProjectorHandle>>,
    shutdown: watch::Sender<bool>,
    tasks: std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl Runtime {
    /// Opens each projector's active tree and starts its task.
    pub fn start(
        store: Store,
        log: Arc<dyn EventLog>,
        projectors: Vec<Arc<dyn Projector>>,
    ) -> Result<Arc<Self>, StoreError> {
        let mut handles = Vec::with_capacity(projectors.len());
        for projector in projectors {
            let (generation, tree) = active_tree(&store, projector.name())?;
            let status = ProjectorStatus {
                name: projector.name(),
                state: ProjectorState::CatchingUp,
                position: checkpoint(&tree),
                head: 0,
                lag_events: 0,
                lag_seconds: 0.0,
                heartbeat: Timestamp::now(),
                digest: digest(&tree),
                dead_letters: tree.scan_prefix(DEAD_PREFIX).count() as u64,
                generation,
                last_error: None,
            };
            handles.push(Arc::new(ProjectorHandle {
                projector,
                tree: RwLock::new(tree),
                status: watch::channel(status).0,
                rebuild: Notify::new(),
            }));
        }
        let runtime = Arc::new(Self {
            store,
            log,
            handles,
            shutdown: watch::channel(false).0,
            tasks: std::sync::Mutex::new(Vec::new()),
        });
        let tasks = runtime
            .handles
            .iter()
            .map(|handle| {
                let task = ProjectorTask {
                    handle: handle.clone(),
                    store: runtime.store.clone(),
                    log: runtime.log.clone(),
                    shutdown: runtime.shutdown.subscribe(),
                };
                tokio::spawn(task.run())
            })
            .collect();
        if let Ok(mut slot) = runtime.tasks.lock() {
            *slot = tasks;
        }
        Ok(runtime)
    }

    /// Every projector.
    pub fn handles(&self) -> &[Arc<ProjectorHandle>] {
        &self.handles
    }

    /// One projector by name.
    pub fn handle(&self, name: &str) -> Option<&Arc<ProjectorHandle>> {
        self.handles.iter().find(|h| h.name() == name)
    }

    /// The log the projectors read.
    pub fn log(&self) -> &Arc<dyn EventLog> {
        &self.log
    }

    /// True when every projector has applied the log up to `head` and is neither failed nor
    /// rebuilding. (A projector's own view of the head can be a moment old; readiness is
    /// judged against the head the caller just read.)
    pub fn caught_up(&self, head: Position) -> bool {
        self.handles.iter().all(|h| {
            let status = h.status();
            status.position >= head
                && !matches!(
                    status.state,
                    ProjectorState::Failed | ProjectorState::Rebuilding
                )
        })
    }

    /// Waits until every projector has applied `position`; false on timeout.
    pub async fn wait_for(&self, position: Position, timeout: Duration) -> bool {
        for handle in &self.handles {
            if !handle.wait_for(position, timeout).await {
                return false;
            }
        }
        true
    }

    /// Rebuilds every projector from position 0 into fresh trees while queries keep reading
    /// the old ones; each swaps when its new tree has caught up.
    pub fn request_rebuild(&self) {
        for handle in &self.handles {
            handle.rebuild.notify_one();
        }
    }

    /// Stops every task after its current batch and flushes the store.
    pub async fn shutdown(&self) {
        let _ = self.shutdown.send(true);
        let tasks = self
            .tasks
            .lock()
            .map(|mut t| std::mem::take(&mut *t))
            .unwrap_or_default();
        for task in tasks {
            let _ = task.await;
        }
        if let Err(err) = self.store.flush() {
            tracing::error!(%err, "cannot flush the read-model store");
        }
    }
}

struct ProjectorTask {
    handle: Arc<ProjectorHandle>,
    store: Store,
    log: Arc<dyn EventLog>,
    shutdown: watch::Receiver<bool>,
}

impl ProjectorTask {
    #[tracing::instrument(skip(self), fields(projector = %self.handle.name()))]
    async fn run(mut self) {
        let handle = self.handle.clone();
        let mut backoff = Duration::from_millis(100);
        while !*self.shutdown.borrow() {
            match self.follow().await {
                Ok(()) => return,
                Err(TaskError::Rebuild) => {
                    if let Err(err) = self.rebuild().await {
                        tracing::error!(%err, "rebuild failed");
                        handle.update(|s| {
                            s.state = ProjectorState::Failed;
                            s.last_error = Some(format!("rebuild failed: {err}"));
                        });
                    }
                }
                Err(TaskError::Fatal(err)) => {
                    tracing::error!(message = "Projector stopped.", %err);
                    handle.update(|s| {
                        s.state = ProjectorState::Failed;
                        s.last_error = Some(err);
                    });
                    // Stay stopped until a rebuild is requested or the process ends.
                    tokio::select! {
                        _ = handle.rebuild.notified() => {
                            if let Err(err) = self.rebuild().await {
                                handle.update(|s| s.last_error = Some(format!("rebuild failed: {err}")));
                            }
                        }
                        _ = self.shutdown.changed() => return,
                    }
                }
                Err(TaskError::Retry(err)) => {
                    tracing::warn!(message = "Projector paused.", %err);
                    handle.update(|s| {
                        s.state = ProjectorState::CatchingUp;
                        s.last_error = Some(err);
                    });
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = self.shutdown.changed() => return,
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    continue;
                }
            }
            backoff = Duration::from_millis(100);
        }
    }

    /// Folds from the checkpoint on, forever; returns on shutdown or rebuild request.
    async fn follow(&mut self) -> Result<(), TaskError> {
        let handle = self.handle.clone();
        let tree = handle.tree();
        let mut stream = self.log.clone().subscribe(checkpoint(&tree), BATCH);
        self.refresh_head(&tree).await;
        loop {
            let batch = tokio::select! {
                _ = self.shutdown.changed() => return Ok(()),
                _ = handle.rebuild.notified() => return Err(TaskError::Rebuild),
                _ = tokio::time::sleep(Duration::from_secs(1)) => {
                    self.refresh_head(&tree).await;
                    continue;
                }
                batch = stream.next() => batch,
            };
            let events = match batch {
                None => return Err(TaskError::Retry("the log subscription ended".into())),
                Some(Err(err @ LogError::BeyondHead { .. })) => {
                    return Err(TaskError::Fatal(err.to_string()))
                }
                Some(Err(err)) => return Err(TaskError::Retry(err.to_string())),
                Some(Ok(events)) => events,
            };
            let folded = fold_blocking(handle.projector.clone(), tree.clone(), events).await?;
            handle.update(|s| {
                s.position = folded.position;
                s.dead_letters += folded.dead_letters;
                s.digest = digest(&tree);
                s.last_error = None;
                if let Some(recorded) = folded.recorded_at {
                    s.lag_seconds =
                        (Timestamp::now().micros() - recorded.micros()).max(0) as f64 / 1e6;
                }
            });
            self.refresh_head(&tree).await;
        }
    }

    async fn refresh_head(&self, tree: &sled::Tree) {
        let position = checkpoint(tree);
        match self.log.head().await {
            Ok(head) => self.handle.update(|s| {
                s.head = head.max(position);
                s.lag_events = lag(self.log.backend(), s.head, position);
                if position >= head {
                    s.state = ProjectorState::Live;
                    s.lag_seconds = 0.0;
                } else {
                    s.state = ProjectorState::CatchingUp;
                }
            }),
            Err(err) => self.handle.update(|s| s.last_error = Some(err.to_string())),
        }
    }

    /// Replays the log from 0 into the next generation's tree, then swaps it in.
    async fn rebuild(&mut self) -> Result<(), String> {
        let handle = self.handle.clone();
        let name = handle.name();
        handle.update(|s| s.state = ProjectorState::Rebuilding);
        let old = self
            .store
            .active_generation(name)
            .map_err(|e| e.to_string())?;
        drop_superseded(&self.store, name, old)?;
        let fresh = old + 1;
        let tree = self.store.tree(name, fresh).map_err(|e| e.to_string())?;
        tree.clear().map_err(|e| e.to_string())?;
        let target = self.log.head().await.map_err(|e| e.to_string())?;
        replay_into(
            handle.projector.clone(),
            &tree,
            self.log.clone(),
            target,
            |_| {},
        )
        .await?;
        // The swap: queries move to the new tree at once. The old one stays until the next
        // rebuild: a query that took it just before the swap may still be reading it, and
        // sled fails every read of a dropped tree.
        self.store
            .set_active_generation(name, fresh)
            .map_err(|e| e.to_string())?;
        match handle.tree.write() {
            Ok(mut slot) => *slot = tree.clone(),
            Err(poisoned) => *poisoned.into_inner() = tree.clone(),
        }
        handle.update(|s| {
            s.generation = fresh;
            s.position = checkpoint(&tree);
            s.digest = digest(&tree);
            s.dead_letters = tree.scan_prefix(DEAD_PREFIX).count() as u64;
            s.state = ProjectorState::CatchingUp;
        });
        tracing::info!(projector = name, generation = fresh, "rebuild swapped in");
        Ok(())
    }
}

fn lag(backend: &str, head: Position, position: Position) -> u64 {
    let behind = head.saturating_sub(position);
    if backend == "jetstream" {
        // Positions pack (record, index): count records.
        behind >> ats_ingest::jetstream::INDEX_BITS
    } else {
        behind
    }
}

enum TaskError {
    Rebuild,
    Retry(String),
    Fatal(String),
}

impl From<ApplyError> for TaskError {
    fn from(err: ApplyError) -> Self {
        TaskError::Retry(err.to_string())
    }
}

async fn fold_blocking(
    projector: Arc<dyn Projector>,
    tree: sled::Tree,
    events: Vec<StoredEvent>,
) -> Result<Folded, ApplyError> {
    spawn_fold(move || fold_batch(projector.as_ref(), &tree, &events))
        .await
        .map_err(|e| ApplyError::Storage(format!("fold task failed: {e}")))?
}

/// Nice value of the fold threads (the request handlers keep the process's, normally 0).
const FOLD_NICE: i32 = 19;

/// Runs a fold on the fold threads (one per core), at a lower CPU priority than the request
/// handlers.
///
/// Folds and requests share the cores (two, on the machines we measure on): a fold is
/// background work that may finish a few milliseconds later, a request is someone waiting.
/// Under CFS a nice of 19 gives a fold thread about 1.5 % of a contended core (nice 10: a
/// tenth) and all of an idle one, so queries and appends run first and the folds use what is
/// left: at 1M events nice 19 raised the embedded HTTP ingest from 98–107k to 135–142k
/// events/s and the NATS intake by a quarter, with query p99 and freshness within the runs'
/// spread (BENCHMARKS.md).
///
/// The weight is per thread, so the threads are bounded: seven projectors folding at once on
/// seven threads weighed as much as one request handler (and held seven batches in memory);
/// one thread per core still uses every idle core. If the pool cannot start, folds run on the
/// caller's blocking pool at normal priority.
fn spawn_fold<R: Send + 'static>(
    job: impl FnOnce() -> R + Send + 'static,
) -> tokio::task::JoinHandle<R> {
    static POOL: OnceLock<Option<tokio::runtime::Runtime>> = OnceLock::new();
    let pool = POOL.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .max_blocking_threads(fold_threads())
            .thread_name("ats-fold")
            .on_thread_start(lower_priority)
            .build()
            .inspect_err(|err| tracing::warn!(%err, "cannot start the fold threads"))
            .ok()
    });
    match pool {
        Some(pool) => pool.spawn_blocking(job),
        None => tokio::task::spawn_blocking(job),
    }
}

/// How many folds run at once: one per core.
fn fold_threads() -> usize {
    std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get)
}

fn lower_priority() {
    // Linux only: there a thread's nice value is its own; elsewhere the call would lower
    // the whole process, request handlers included.
    #[cfg(target_os = "linux")]
    if let Err(err) =
        rustix::process::setpriority_process(Some(rustix::thread::gettid()), FOLD_NICE)
    {
        tracing::debug!(%err, "cannot lower a fold thread's priority");
    }
}

/// Drops the generation that `active` replaced, kept by the last rebuild for the queries
/// still reading it then (long finished now).
fn drop_superseded(store: &Store, projector: &str, active: u64) -> Result<(), String> {
    match active.checked_sub(1) {
        Some(superseded) => store
            .drop_tree(projector, superseded)
            .map_err(|e| e.to_string()),
        None => Ok(()),
    }
}

/// Folds the log from the tree's checkpoint up to `target` into `tree`; `progress(position)`
/// after each batch; then flushes the tree. Used by rebuilds and by `ats-mafia replay`.
pub async fn replay_into(
    projector: Arc<dyn Projector>,
    tree: &sled::Tree,
    log: Arc<dyn EventLog>,
    target: Position,
    progress: impl FnMut(Position),
) -> Result<(), String> {
    fold_into(projector, tree, log, target, progress).await?;
    flush(tree).await
}

/// [`replay_into`] without the flush: for trees nobody reopens (a what-if's scratch store,
/// deleted once it answered), whose flush would write the whole replay out for nothing.
pub async fn fold_into(
    projector: Arc<dyn Projector>,
    tree: &sled::Tree,
    log: Arc<dyn EventLog>,
    target: Position,
    mut progress: impl FnMut(Position),
) -> Result<(), String> {
    let mut position = checkpoint(tree);
    if position >= target {
        return Ok(());
    }
    // A subscription, not repeated reads: JetStream streams it through one ordered consumer
    // instead of fetching record by record.
    let mut batches = log.clone().subscribe(position, REPLAY_BATCH);
    while position < target {
        let Some(batch) = batches.next().await else {
            break;
        };
        let mut events = batch.map_err(|e| e.to_string())?;
        // Stop exactly at the target, even if more has been appended meanwhile.
        events.retain(|e| e.position <= target);
        if events.is_empty() {
            break;
        }
        let folded = fold_blocking(projector.clone(), tree.clone(), events)
            .await
            .map_err(|e| e.to_string())?;
        position = folded.position;
        progress(position);
    }
    Ok(())
}

/// Flushes `tree` on tokio's blocking pool. Not `sled::Tree::flush_async`: that runs the
/// flush on sled's own pool, whose seven resident threads, once seven rebuilds flush at the
/// same time, all wait there for an io buffer whose write is queued behind them — and that
/// pool adds a thread only when eight tasks are queued, so the process hung for good
/// (`recreated_log_fails_the_projector_until_a_rebuild`, about once in 30 runs).
async fn flush(tree: &sled::Tree) -> Result<(), String> {
    let tree = tree.clone();
    tokio::task::spawn_blocking(move || tree.flush())
        .await
        .map_err(|e| format!("flush task failed: {e}"))?
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Rebuilds every projector offline from position 0 (the `replay` command): each into a
/// fresh generation, swapped in when complete. Returns each projector's final status.
///
/// The log is read and decoded once: each batch of [`REPLAY_BATCH`] events is shared by
/// every projector. Each projector folds its batches in order on a blocking thread, side by
/// side with the others and with the next read, so one slow fold does not idle the cores.
pub async fn rebuild_all(
    store: &Store,
    log: Arc<dyn EventLog>,
    projectors: Vec<Arc<dyn Projector>>,
    mut progress: impl FnMut(&str, Position, Position),
) -> Result<Vec<(String, Position, String)>, String> {
    let target = log.head().await.map_err(|e| e.to_string())?;
    let mut jobs = Vec::with_capacity(projectors.len());
    for projector in projectors {
        let name = projector.name();
        let old = store.active_generation(name).map_err(|e| e.to_string())?;
        drop_superseded(store, name, old)?;
        let tree = store.tree(name, old + 1).map_err(|e| e.to_string())?;
        tree.clear().map_err(|e| e.to_string())?;
        jobs.push((projector, tree, old));
    }
    if target > 0 {
        // Batches queued per projector: a fast projector runs up to this far ahead of the
        // slowest, and memory holds at most this many batches more than are being folded.
        const AHEAD: usize = 2;
        let progress = std::cell::RefCell::new(&mut progress);
        let (senders, receivers): (Vec<_>, Vec<_>) = jobs
            .iter()
            .map(|_| tokio::sync::mpsc::channel::<Arc<Vec<StoredEvent>>>(AHEAD))
            .unzip();
        let read = async move {
            let mut batches = log.clone().subscribe(0, REPLAY_BATCH);
            while let Some(batch) = batches.next().await {
                let mut events = batch.map_err(|e| e.to_string())?;
                // Stop exactly at the target, even if more has been appended meanwhile.
                events.retain(|e| e.position <= target);
                let Some(last) = events.last().map(|e| e.position) else {
                    break;
                };
                let events = Arc::new(events);
                for sender in &senders {
                    // A closed channel is a fold that failed: its error is the one to report.
                    if sender.send(events.clone()).await.is_err() {
                        return Ok(());
                    }
                }
                if last >= target {
                    break;
                }
            }
            Ok::<_, String>(())
        };
        let folds = jobs
            .iter()
            .zip(receivers)
            .map(|((projector, tree, _), mut rx)| {
                let progress = &progress;
                async move {
                    while let Some(events) = rx.recv().await {
                        let position = events.last().map_or(0, |e| e.position);
                        let (folder, tree) = (projector.clone(), tree.clone());
                        spawn_fold(move || fold_batch(folder.as_ref(), &tree, &events))
                            .await
                            .map_err(|e| format!("fold task failed: {e}"))?
                            .map_err(|e| e.to_string())?;
                        (progress.borrow_mut())(projector.name(), position, target);
                    }
                    Ok::<_, String>(())
                }
            });
        futures_util::future::try_join(read, futures_util::future::try_join_all(folds)).await?;
    }
    // Every rebuilt tree durable before any is swapped in: one flush, since sled flushes
    // the whole database whichever tree it is asked through.
    if let Some((_, tree, _)) = jobs.first() {
        flush(tree).await?;
    }
    let mut out = Vec::with_capacity(jobs.len());
    for (projector, tree, old) in jobs {
        let name = projector.name();
        store
            .set_active_generation(name, old + 1)
            .map_err(|e| e.to_string())?;
        store.drop_tree(name, old).map_err(|e| e.to_string())?;
        out.push((name.to_owned(), checkpoint(&tree), digest(&tree)));
    }
    store.flush().map_err(|e| e.to_string())?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ats_events::cloudevents::event_id;
    use ats_events::{Payload, SkillAssessed};

    /// Keeps the last score of each skill under `k/<skill>` and the last skill under `last`;
    /// a score of 0 deletes the skill's key; a score of 1 writes, then refuses the event (a
    /// projector failing half-way through an event).
    struct Scores;

    impl Projector for Scores {
        fn name(&self) -> &'static str {
            "scores_v1"
        }

        fn apply(&self, view: &mut View<'_>, event: &Envelope) -> Result<(), ApplyError> {
            let Payload::SkillAssessed(p) = &event.payload else {
                return Ok(());
            };
            let key = format!("k/{}", p.skill);
            view.put(b"last", p.skill.clone())?;
            if p.score == 0.0 {
                return view.remove(key.as_bytes());
            }
            view.put(key.as_bytes(), p.score)?;
            if p.score == 1.0 {
                return Err(ApplyError::Rejected("perfect scores are refused".into()));
            }
            Ok(())
        }
    }

    fn assessed(position: Position, skill: &str, score: f64) -> StoredEvent {
        let payload = Payload::SkillAssessed(SkillAssessed {
            operator_id: "op_1".into(),
            skill: skill.into(),
            score,
        });
        let id = event_id(&format!("{skill}-{position}"));
        StoredEvent::new(
            position,
            Envelope::new(id, Timestamp::from_micros(0), "tests", payload),
        )
    }

    /// `event` again at `position`, marked as the log marks a later copy of its id.
    fn repeated(event: &StoredEvent, position: Position, repeat: Repeat) -> StoredEvent {
        StoredEvent {
            position,
            repeat: Some(repeat),
            ..event.clone()
        }
    }

    fn tree() -> sled::Tree {
        let db = sled::Config::new().temporary(true).open().unwrap();
        db.open_tree("t").unwrap()
    }

    /// The digest recomputed from every entry but the checkpoint and the digest itself.
    fn recomputed(tree: &sled::Tree) -> String {
        let sum = tree
            .iter()
            .map(Result::unwrap)
            .filter(|(k, _)| k.as_ref() != CHECKPOINT_KEY && k.as_ref() != DIGEST_KEY)
            .fold(0u64, |sum, (k, v)| {
                sum.wrapping_add(crate::view::entry_hash(&k, &v))
            });
        format!("{sum:016x}")
    }

    fn entries(tree: &sled::Tree) -> Vec<(Vec<u8>, Vec<u8>)> {
        tree.iter()
            .map(Result::unwrap)
            .map(|(k, v)| (k.to_vec(), v.to_vec()))
            .collect()
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn folds_run_at_a_lower_priority_than_their_caller() {
        let own = || rustix::process::getpriority_process(None).unwrap();
        let caller = own();
        let fold = spawn_fold(own).await.unwrap();
        assert_eq!(fold, FOLD_NICE);
        assert_eq!(own(), caller, "the caller's thread keeps its priority");
    }

    /// However many projectors fold at once, no more folds run together than there are cores.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn folds_run_on_at_most_one_thread_per_core() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        // Counted here, not through `fold_threads`: the test checks that bound.
        let cores = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let folds: Vec<_> = (0..cores + 6)
            .map(|_| {
                let (running, most) = (running.clone(), most.clone());
                spawn_fold(move || {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(50));
                    running.fetch_sub(1, Ordering::SeqCst);
                })
            })
            .collect();
        for fold in folds {
            fold.await.unwrap();
        }
        let most = most.load(Ordering::SeqCst);
        assert!(
            (1..=cores).contains(&most),
            "{most} folds ran at once on {cores} cores"
        );
    }

    /// A crash can stop a commit after any of its writes (sled recovers a prefix of them):
    /// the tree is then the tree before the batch, the tree after it, or marked as cut.
    #[test]
    fn a_commit_cut_after_any_write_is_before_after_or_marked() {
        let first = [assessed(1, "recon", 0.5), assessed(2, "exploit", 0.25)];
        // Overwrites, a removal, a new key and a refused event in one batch.
        let second = [
            assessed(3, "recon", 0.75),
            assessed(4, "exploit", 0.0),
            assessed(5, "stealth", 1.0),
            assessed(6, "reporting", 0.5),
        ];
        let before = tree();
        fold_batch(&Scores, &before, &first).unwrap();
        let after = tree();
        fold_batch(&Scores, &after, &first).unwrap();
        fold_batch(&Scores, &after, &second).unwrap();
        let (before, after) = (entries(&before), entries(&after));

        // The writes `fold_batch` makes for `second`, in its order.
        let writes = {
            let t = tree();
            fold_batch(&Scores, &t, &first).unwrap();
            fold_writes(&Scores, &t, &second).unwrap().0
        };
        for cut in 0..=writes.len() {
            let t = tree();
            fold_batch(&Scores, &t, &first).unwrap();
            commit(&t, writes[..cut].to_vec()).unwrap();
            let now = entries(&t);
            match cut {
                0 => assert_eq!(now, before),
                n if n == writes.len() => assert_eq!(now, after, "all the writes are the batch"),
                _ => assert!(t.contains_key(TORN_KEY).unwrap(), "cut after {cut} writes"),
            }
        }
        // A batch that only moves the checkpoint is one write, and no marker.
        let quiet = commit_writes(0, Changes::default(), 9);
        assert_eq!(
            quiet,
            vec![(CHECKPOINT_KEY.to_vec(), Some(9u64.to_be_bytes().to_vec()))]
        );
    }

    /// A projector whose tree a crash left marked as cut folds the log again from 0 into a
    /// fresh generation when the runtime starts: what it ends with is a clean rebuild's tree.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_tree_cut_by_a_crash_is_folded_again_from_zero() {
        let dir = tempfile::tempdir().unwrap();
        let log: Arc<dyn EventLog> =
            Arc::new(ats_ingest::embedded::EmbeddedLog::open(dir.path().join("log.redb")).unwrap());
        let events: Vec<Envelope> = (1..=40)
            .map(|i| {
                let skill = ["recon", "exploit", "stealth"][i % 3];
                assessed(i as Position, skill, (i % 7) as f64 / 10.0)
                    .envelope()
                    .unwrap()
                    .clone()
            })
            .collect();
        log.append(events).await.unwrap();
        let projectors = || vec![Arc::new(Scores) as Arc<dyn Projector>];
        let wait = Duration::from_secs(30);

        let store = Store::open(dir.path().join("rm")).unwrap();
        let runtime = Runtime::start(store.clone(), log.clone(), projectors()).unwrap();
        assert!(runtime.wait_for(40, wait).await);
        runtime.shutdown().await;
        // Half of a later batch: its marker and one of its keys, nothing after.
        let cut = store.tree("scores_v1", 0).unwrap();
        cut.insert(TORN_KEY, &41u64.to_be_bytes()).unwrap();
        cut.insert(b"k/half", b"written".as_slice()).unwrap();
        drop(runtime);

        let runtime = Runtime::start(store.clone(), log.clone(), projectors()).unwrap();
        assert!(runtime.wait_for(40, wait).await);
        let handle = runtime.handle("scores_v1").unwrap();
        assert_eq!(handle.status().generation, 1);
        assert_eq!(store.active_generation("scores_v1").unwrap(), 1);

        let clean = tempfile::tempdir().unwrap();
        let clean = Store::open(clean.path().join("rm")).unwrap();
        rebuild_all(&clean, log.clone(), projectors(), |_, _, _| {})
            .await
            .unwrap();
        let rebuilt = clean.tree("scores_v1", 1).unwrap();
        assert_eq!(entries(&handle.tree()), entries(&rebuilt));
        assert_eq!(handle.status().digest, digest(&rebuilt));
        runtime.shutdown().await;
    }

    #[test]
    fn running_digest_equals_a_full_recomputation() {
        let t = tree();
        let first = assessed(1, "recon", 0.5);
        let batches = [
            vec![first.clone(), assessed(2, "exploit", 0.25)],
            // Overwrite, delete, refuse, and add in one batch.
            vec![
                assessed(3, "recon", 0.75),
                assessed(4, "exploit", 0.0),
                assessed(5, "stealth", 1.0),
                assessed(6, "reporting", 0.5),
            ],
            // A deleted key comes back; an undecodable event; a retry and a conflict.
            vec![
                assessed(7, "exploit", 0.5),
                StoredEvent {
                    position: 8,
                    event: Err("truncated".into()),
                    repeat: None,
                },
                repeated(&first, 9, Repeat::Retry { first: 1 }),
                repeated(&first, 10, Repeat::Conflict { first: 1 }),
            ],
            // Deleting a key that was never there.
            vec![assessed(11, "forensics", 0.0)],
        ];
        for batch in &batches {
            fold_batch(&Scores, &t, batch).unwrap();
            assert_eq!(digest(&t), recomputed(&t));
        }
        assert_ne!(digest(&t), format!("{:016x}", 0));
        assert_eq!(checkpoint(&t), 11);
        assert_eq!(dead_letters(&t, "scores_v1").len(), 3);
        assert!(t.get(b"k/forensics").unwrap().is_none());
    }

    #[test]
    fn refused_event_leaves_nothing_it_wrote() {
        let batch = vec![
            assessed(1, "recon", 0.5),
            assessed(2, "exploit", 1.0),
            assessed(3, "stealth", 0.25),
        ];
        let with = tree();
        let folded = fold_batch(&Scores, &with, &batch).unwrap();
        assert_eq!((folded.position, folded.dead_letters), (3, 1));
        assert!(with.get(b"k/exploit").unwrap().is_none());
        let last: String = rmp_serde::from_slice(&with.get(b"last").unwrap().unwrap()).unwrap();
        assert_eq!(last, "stealth");
        let letters = dead_letters(&with, "scores_v1");
        assert_eq!(letters.len(), 1);
        assert_eq!(
            (
                letters[0].position,
                letters[0].error.as_str(),
                letters[0].projector.as_str()
            ),
            (2, "perfect scores are refused", "scores_v1")
        );

        let without = tree();
        fold_batch(&Scores, &without, &[batch[0].clone(), batch[2].clone()]).unwrap();
        let kept = |t: &sled::Tree| {
            entries(t)
                .into_iter()
                .filter(|(k, _)| !k.starts_with(DEAD_PREFIX) && k.as_slice() != DIGEST_KEY)
                .collect::<Vec<_>>()
        };
        assert_eq!(kept(&with), kept(&without));
    }

    #[test]
    fn a_retry_is_skipped_and_a_conflict_dead_lettered() {
        let t = tree();
        let first = assessed(1, "recon", 0.5);
        // Content the log found under the same id later: the marks, not the content, decide.
        let other = assessed(1, "recon", 0.25);
        let folded = fold_batch(
            &Scores,
            &t,
            &[first, repeated(&other, 2, Repeat::Retry { first: 1 })],
        )
        .unwrap();
        assert_eq!((folded.position, folded.dead_letters), (2, 0));
        let folded = fold_batch(
            &Scores,
            &t,
            &[repeated(&other, 3, Repeat::Conflict { first: 1 })],
        )
        .unwrap();
        assert_eq!(folded.dead_letters, 1, "a conflict counts as a dead letter");
        let score: f64 = rmp_serde::from_slice(&t.get(b"k/recon").unwrap().unwrap()).unwrap();
        assert_eq!(score, 0.5, "only the first copy was applied");
        let letters = dead_letters(&t, "scores_v1");
        assert_eq!(letters.len(), 1);
        assert_eq!(letters[0].position, 3);
        assert_eq!(
            letters[0].error,
            format!(
                "conflict: event id {} was first written at position 1 with other content",
                event_id("recon-1")
            )
        );
        assert_eq!(
            checkpoint(&t),
            3,
            "a batch ending on repeats still moves the checkpoint"
        );
    }
}
