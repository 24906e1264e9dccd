//! The `EventLog` trait and the types at its seam.

use std::sync::Arc;
use std::time::Duration;

use ats_events::{codec, Envelope, EventId};
use futures_util::stream::BoxStream;

/// Where an event sits in the log. Positions increase in log order and are never reused;
/// they need not be dense (JetStream packs the record sequence and the index in it).
/// Position 0 is "before the first event".
pub type Position = u64;

/// One event read back from the log.
#[derive(Debug, Clone)]
pub struct StoredEvent {
    /// Its position.
    pub position: Position,
    /// The event, or why its bytes could not be decoded (a poison event for projectors).
    pub event: Result<Arc<Envelope>, String>,
    /// Set when an earlier position holds the same event id: only JetStream can hold one
    /// (a retry racing between nodes, or one older than the server's duplicate window); the
    /// embedded log refuses it at append.
    pub repeat: Option<Repeat>,
}

/// A later copy of an event id, decided once for the whole log by the first-position rule,
/// so every node and every replay skips the same copies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repeat {
    /// The same content as the copy at `first`: a retry, which changes nothing.
    Retry {
        /// Position of the first copy.
        first: Position,
    },
    /// Other content than the copy at `first`: refused by every projector (a dead letter).
    Conflict {
        /// Position of the first copy.
        first: Position,
    },
}

impl StoredEvent {
    /// A decoded event at `position` that repeats nothing.
    pub fn new(position: Position, event: Envelope) -> Self {
        Self {
            position,
            event: Ok(Arc::new(event)),
            repeat: None,
        }
    }

    /// The event at `position` decoded from its bytes (undecodable bytes are kept as a
    /// poison event for the projectors to dead-letter).
    pub fn decode(position: Position, bytes: &[u8]) -> Self {
        Self {
            position,
            event: codec::decode(bytes)
                .map(Arc::new)
                .map_err(|e| e.to_string()),
            repeat: None,
        }
    }

    /// The decoded event, if it decoded.
    pub fn envelope(&self) -> Option<&Envelope> {
        self.event.as_ref().ok().map(|e| e.as_ref())
    }
}

/// What an append did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AppendOutcome {
    /// The position of each submitted event, in submission order; for a duplicate, the
    /// position of the copy already in the log.
    pub positions: Vec<Position>,
    /// Ids of submitted events the log already held (retries): they changed nothing.
    pub duplicates: Vec<EventId>,
}

impl AppendOutcome {
    /// The highest position of the batch (0 for an empty one).
    pub fn last_position(&self) -> Position {
        self.positions.iter().copied().max().unwrap_or(0)
    }
}

/// Log failures. `Conflict` and `TooLarge` are the caller's fault; the rest are the log's.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// An event id is already in the log with different content. Nothing was appended.
    #[error("event id {id} is already in the log with different content")]
    Conflict {
        /// The id.
        id: EventId,
    },
    /// The batch is larger than the backend can store atomically.
    #[error("batch of {bytes} bytes exceeds the log's limit of {limit} bytes")]
    TooLarge {
        /// Encoded size.
        bytes: usize,
        /// Limit.
        limit: usize,
    },
    /// The backend cannot be reached now; nothing was acknowledged. Retry later.
    #[error("event log unavailable: {0}")]
    Unavailable(String),
    /// The backend failed (disk, corruption, protocol).
    #[error("event log storage error: {0}")]
    Storage(String),
    /// The log is configured wrongly (a credentials or certificate file that cannot be read):
    /// retrying cannot help, so callers stop instead of waiting.
    #[error("event log configuration error: {0}")]
    Config(String),
    /// A reader is ahead of the log (the log was recreated): it must not go on silently.
    #[error("position {position} is beyond the end of the log ({head}); was the log recreated?")]
    BeyondHead {
        /// The requested position.
        position: Position,
        /// The log's head.
        head: Position,
    },
}

/// A batch stream of events in log order, as a projector consumes it.
pub type EventStream = BoxStream<'static, Result<Vec<StoredEvent>, LogError>>;

/// The append-only event log: the only source of truth.
#[async_trait::async_trait]
pub trait EventLog: Send + Sync + 'static {
    /// `embedded` or `jetstream`, for metrics and logs.
    fn backend(&self) -> &'static str;

    /// The concrete backend, for wiring that needs it (the NATS intake needs the client).
    fn as_any(&self) -> &dyn std::any::Any;

    /// Appends a batch, all or nothing as seen by readers, durable when it returns.
    /// Events whose id is already in the log with the same content are reported as
    /// duplicates and not appended again; with other content the whole batch fails with
    /// [`LogError::Conflict`]. Sets `recorded_at`.
    async fn append(&self, events: Vec<Envelope>) -> Result<AppendOutcome, LogError>;

    /// Up to `max` events after `after`, in order (fewer, or none, at the end of the log).
    async fn read(&self, after: Position, max: usize) -> Result<Vec<StoredEvent>, LogError>;

    /// The position of the last event (0 when empty).
    async fn head(&self) -> Result<Position, LogError>;

    /// Returns once the head may have moved beyond `after`, or after `timeout`.
    async fn wait_beyond(&self, after: Position, timeout: Duration);

    /// How far this node's id index has read the log, for a backend whose index follows the
    /// log rather than being written with it (JetStream): reads wait for it, so a node
    /// indexing a long stream shows here why its projectors have not started.
    fn indexed(&self) -> Option<Position> {
        None
    }

    /// Whether appends can succeed now, as far as the backend knows without a round trip:
    /// `Err` while the server is unreachable (JetStream) or after the store failed a write
    /// (embedded), so `/readyz` reports a log that would refuse writes even when reads work.
    fn health(&self) -> Result<(), LogError> {
        Ok(())
    }

    /// Batches of events after `after`, catching up and then following the tail forever.
    ///
    /// After an `Err` item the stream may deliver nothing more (a JetStream consumer lost with
    /// its server): a caller subscribes again from the last position it has, as the
    /// projectors do.
    fn subscribe(self: Arc<Self>, after: Position, max_batch: usize) -> EventStream {
        Box::pin(futures_util::stream::unfold(
            (self, after),
            move |(log, mut after)| async move {
                loop {
                    match log.read(after, max_batch).await {
                        Ok(batch) if batch.is_empty() => {
                            log.wait_beyond(after, Duration::from_secs(1)).await;
                        }
                        Ok(batch) => {
                            after = batch.last().map_or(after, |e| e.position);
                            return Some((Ok(batch), (log, after)));
                        }
                        Err(err) => {
                            // Back off so a broken backend is not spun on.
                            tokio::time::sleep(Duration::from_millis(200)).await;
                            return Some((Err(err), (log, after)));
                        }
                    }
                }
            },
        ))
    }
}

/// A batch with in-batch retries folded: `unique` holds each id once (with its content
/// digest), `slot[i]` is the index in `unique` of submitted event `i`.
pub(crate) struct UniqueBatch {
    pub unique: Vec<(Envelope, u64)>,
    pub slot: Vec<usize>,
}

/// Folds repeated ids of one batch; the same id with different content is a conflict.
pub(crate) fn dedup_batch(events: Vec<Envelope>) -> Result<UniqueBatch, LogError> {
    let mut unique: Vec<(Envelope, u64)> = Vec::with_capacity(events.len());
    let mut slot = Vec::with_capacity(events.len());
    let mut index: std::collections::HashMap<EventId, usize> =
        std::collections::HashMap::with_capacity(events.len());
    for event in events {
        let digest = event.content_digest();
        match index.get(&event.id) {
            Some(&i) => {
                if unique[i].1 != digest {
                    return Err(LogError::Conflict { id: event.id });
                }
                slot.push(i);
            }
            None => {
                index.insert(event.id, unique.len());
                slot.push(unique.len());
                unique.push((event, digest));
            }
        }
    }
    Ok(UniqueBatch { unique, slot })
}
