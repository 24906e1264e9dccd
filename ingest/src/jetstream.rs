//! The NATS JetStream log, for deployments on many machines.
//!
//! A batch is published as **one** JetStream message (a record: an array of encoded events),
//! because JetStream 2.9 has no multi-message transaction: one message is all or nothing for
//! every reader, so a crash mid-append can never leave half a batch in the stream.
//! `Nats-Msg-Id` is the event id for a one-event batch and a digest of the ids and contents
//! for a larger one, so a retried append inside the server's duplicate window is dropped by
//! the server. With its local [`IdIndex`] a node also answers retries and conflicts for every
//! id it has seen, at any age; what slips past both (a race between nodes) is marked as a
//! [`Repeat`](crate::Repeat) when read back, the same on every node, and the folds skip it.
//!
//! Positions pack the stream sequence and the index inside the record:
//! `position = sequence << 16 | index`.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};
use async_nats::HeaderMap;
use ats_events::{codec, Envelope, Timestamp};
use futures_util::StreamExt;
use sha2::{Digest, Sha256};

use crate::id_index::IdIndex;
use crate::log::{
    dedup_batch, AppendOutcome, EventLog, EventStream, LogError, Position, StoredEvent,
};
use crate::recent::{Recent, Take, RECENT_EVENTS};

/// Bits of a position that hold the index inside a record.
pub const INDEX_BITS: u32 = 16;
/// Most events in one record.
pub const MAX_RECORD_EVENTS: usize = 1 << INDEX_BITS;
/// Records a subscription pulls (and hands on) at a time, at most.
const RECORDS_PER_PULL: i64 = 16;
/// How long the id index's tail may receive nothing before it checks that the stream holds
/// nothing beyond it.
const TAIL_IDLE: Duration = Duration::from_secs(1);
/// How long a reader waits for the id index to move at all (towards what it read) before
/// reporting the log unavailable (and retrying).
const INDEX_STALL: Duration = Duration::from_secs(10);

/// Header carrying the number of events in a record.
pub const COUNT_HEADER: &str = "Ats-Count";

/// The position of event `index` of the record at stream `sequence`.
pub fn position(sequence: u64, index: usize) -> Position {
    (sequence << INDEX_BITS) | index as u64
}

/// The stream sequence of the record holding `position`.
pub fn sequence_of(position: Position) -> u64 {
    position >> INDEX_BITS
}

/// How to reach the stream.
#[derive(Debug, Clone)]
pub struct JetStreamConfig {
    /// NATS server URL(s), comma-separated.
    pub url: String,
    /// Stream name.
    pub stream: String,
    /// Subject prefix; records go to `<prefix>.<kind>.<operator>`.
    pub subject_prefix: String,
    /// Replicas (3 in a cluster).
    pub replicas: usize,
    /// Path of a `.creds` file for a secured cluster.
    pub credentials: Option<std::path::PathBuf>,
    /// PEM file of the CA that signed the servers' certificates; setting it requires TLS.
    pub tls_ca: Option<std::path::PathBuf>,
    /// PEM client certificate (mutual TLS); needs `tls_key`.
    pub tls_cert: Option<std::path::PathBuf>,
    /// PEM private key of `tls_cert`.
    pub tls_key: Option<std::path::PathBuf>,
    /// Bound on every JetStream request and publish ack: while the server is away an append
    /// fails after this long instead of holding the caller's request open.
    pub request_timeout: Duration,
}

impl JetStreamConfig {
    /// The URL(s) with any password or token replaced by `***`, for logs and messages.
    pub fn redacted_url(&self) -> String {
        self.url
            .split(',')
            .map(|url| {
                let url = url.trim();
                let Some((scheme, rest)) = url.split_once("://") else {
                    return url.to_owned();
                };
                match rest.rsplit_once('@') {
                    Some((userinfo, host)) => {
                        let user = match userinfo.split_once(':') {
                            Some((user, _)) => format!("{user}:***"),
                            None => "***".to_owned(),
                        };
                        format!("{scheme}://{user}@{host}")
                    }
                    None => url.to_owned(),
                }
            })
            .collect::<Vec<_>>()
            .join(",")
    }
}

impl Default for JetStreamConfig {
    fn default() -> Self {
        Self {
            url: "nats://127.0.0.1:4222".into(),
            stream: "ATS_EVENTS".into(),
            subject_prefix: "ats.events".into(),
            replicas: 1,
            credentials: None,
            tls_ca: None,
            tls_cert: None,
            tls_key: None,
            request_timeout: Duration::from_secs(5),
        }
    }
}

/// The JetStream event log.
pub struct JetStreamLog {
    /// The JetStream context (shares the client's connection, which reconnects by itself).
    context: jetstream::Context,
    /// The stream's name and subjects, reconciled at start-up.
    config: JetStreamConfig,
    /// The raw client, for the intake subscription and health.
    client: async_nats::Client,
    /// Local id index (see [`IdIndex`]), when the node keeps one.
    index: Option<Arc<IdIndex>>,
    /// The task feeding the index from the stream; aborted with the last handle.
    tail: Option<Arc<TailTask>>,
    /// (last sequence, its record's event count), so `head` fetches each record once.
    head_cache: Arc<std::sync::Mutex<Option<(u64, usize)>>>,
    /// What the tail read last, decoded: the live readers' shared feed.
    recent: Arc<Recent>,
}

/// Aborts the index-feeding task when dropped.
struct TailTask(tokio::task::JoinHandle<()>);

impl Drop for TailTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A readable file for the option `field`, or a configuration error naming both.
fn readable(field: &str, path: &std::path::Path) -> Result<std::path::PathBuf, LogError> {
    std::fs::File::open(path)
        .map(|_| path.to_path_buf())
        .map_err(|e| LogError::Config(format!("{field}: cannot read {}: {e}", path.display())))
}

fn unavailable(err: impl std::fmt::Display) -> LogError {
    LogError::Unavailable(err.to_string())
}

/// A subject token made of safe characters (NATS tokens cannot hold `.`, `*`, `>` or spaces).
fn token(text: &str) -> String {
    let cleaned: String = text
        .chars()
        .take(64)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if cleaned.is_empty() {
        "_".into()
    } else {
        cleaned
    }
}

impl JetStreamLog {
    /// Connects, makes sure the stream exists with the configuration declared here, and
    /// feeds this node's id `index` from the stream (see [`IdIndex`]). Call from inside a
    /// tokio runtime.
    pub async fn connect(config: JetStreamConfig, index: Arc<IdIndex>) -> Result<Self, LogError> {
        let mut options = async_nats::ConnectOptions::new()
            .name("ats-mafia")
            .connection_timeout(Duration::from_secs(5));
        // Files are checked here, not at the first connection attempt, so a wrong path is a
        // configuration error at once rather than an outage retried forever.
        if let Some(path) = &config.credentials {
            options = options.credentials_file(path).await.map_err(|e| {
                LogError::Config(format!(
                    "log.credentials: cannot read {}: {e}",
                    path.display()
                ))
            })?;
        }
        if let Some(ca) = &config.tls_ca {
            options = options
                .add_root_certificates(readable("log.tls_ca", ca)?)
                .require_tls(true);
        }
        match (&config.tls_cert, &config.tls_key) {
            (Some(cert), Some(key)) => {
                options = options
                    .add_client_certificate(
                        readable("log.tls_cert", cert)?,
                        readable("log.tls_key", key)?,
                    )
                    .require_tls(true);
            }
            (None, None) => {}
            _ => {
                return Err(LogError::Config(
                    "log.tls_cert and log.tls_key must be given together".into(),
                ))
            }
        }
        // A cluster is given as a comma-separated list of URLs.
        let servers: Vec<&str> = config
            .url
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .collect();
        // async-nats ignores a user and password (or token) written in the URL: pass them on.
        let first: async_nats::ServerAddr = servers
            .first()
            .copied()
            .unwrap_or_default()
            .parse()
            .map_err(|e| LogError::Config(format!("log.url: {e}")))?;
        match (first.username(), first.password()) {
            (Some(user), Some(password)) => {
                options = options.user_and_password(user.into(), password.into());
            }
            (Some(token), None) => options = options.token(token.into()),
            _ => {}
        }
        let client = options.connect(servers).await.map_err(|e| {
            LogError::Unavailable(format!("cannot connect to {}: {e}", config.redacted_url()))
        })?;
        let mut log = Self::with_client(client, config).await?;
        log.start_tail(index);
        Ok(log)
    }

    /// The stream over an existing connection, without an index.
    async fn with_client(
        client: async_nats::Client,
        config: JetStreamConfig,
    ) -> Result<Self, LogError> {
        let mut context = jetstream::new(client.clone());
        context.set_timeout(config.request_timeout);
        let wanted = stream::Config {
            name: config.stream.clone(),
            subjects: vec![format!("{}.>", config.subject_prefix)],
            storage: stream::StorageType::File,
            num_replicas: config.replicas,
            // The log is the truth: nothing may delete from it, and nothing expires.
            deny_delete: true,
            deny_purge: true,
            max_age: Duration::ZERO,
            duplicate_window: Duration::from_secs(120),
            allow_direct: true,
            ..Default::default()
        };
        let mut stream = context
            .get_or_create_stream(wanted.clone())
            .await
            .map_err(|e| unavailable(format!("cannot create stream {}: {e}", config.stream)))?;
        let info = stream.info().await.map_err(unavailable)?.config.clone();
        if info.subjects != wanted.subjects
            || info.num_replicas != wanted.num_replicas
            || !info.deny_delete
            || !info.deny_purge
            || info.max_age != Duration::ZERO
        {
            tracing::info!(stream = %config.stream, "reconciling stream configuration");
            context
                .update_stream(stream::Config {
                    storage: info.storage,
                    ..wanted
                })
                .await
                .map_err(|e| {
                    LogError::Storage(format!("cannot update stream {}: {e}", config.stream))
                })?;
        }
        Ok(Self {
            context,
            config,
            client,
            index: None,
            tail: None,
            head_cache: Arc::default(),
            recent: Arc::new(Recent::new(RECENT_EVENTS)),
        })
    }

    /// Feeds `index` by tailing the stream from its checkpoint. Call once, from inside a
    /// tokio runtime.
    fn start_tail(&mut self, index: Arc<IdIndex>) {
        // The tail reads raw records: it is what marks the repeats the others read.
        let reader = Arc::new(Self {
            index: None,
            tail: None,
            head_cache: Arc::default(),
            context: self.context.clone(),
            config: self.config.clone(),
            client: self.client.clone(),
            recent: self.recent.clone(),
        });
        let feed = index.clone();
        let task = tokio::spawn(async move {
            loop {
                let mut after = feed.checkpoint();
                let mut batches = reader.clone().subscribe(after, 1000);
                loop {
                    let batch = match tokio::time::timeout(TAIL_IDLE, batches.next()).await {
                        Ok(Some(Ok(batch))) => batch,
                        // The subscription ended or failed.
                        Ok(_) => break,
                        // Quiet. Fine while the stream holds nothing new, but an ordered
                        // consumer can stop delivering after a server restart, and every reader
                        // waits on this tail: replace it when the stream is ahead of it.
                        Err(_) => match reader.head().await {
                            Ok(head) if head > feed.checkpoint() => break,
                            _ => continue,
                        },
                    };
                    let entries: Vec<_> = batch
                        .iter()
                        .filter_map(|s| {
                            s.envelope().map(|e| (e.id, s.position, e.content_digest()))
                        })
                        .collect();
                    let Some(last) = batch.last().map(|s| s.position) else {
                        continue;
                    };
                    // Shared before it is indexed, so a reader the index wakes finds it.
                    reader.recent.push(after, batch);
                    after = last;
                    if let Err(err) = feed.index_tail(&entries, last) {
                        tracing::warn!(%err, "cannot index event ids; retrying");
                        break;
                    }
                }
                // The subscription failed (server down, …): start again from the checkpoint.
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        });
        self.index = Some(index);
        self.tail = Some(Arc::new(TailTask(task)));
    }

    /// Waits until the local id index has read the stream up to `position`; false on timeout.
    pub async fn wait_indexed(&self, position: Position, timeout: Duration) -> bool {
        match &self.index {
            Some(index) => index.wait_indexed(position, timeout).await,
            None => false,
        }
    }

    /// `events` (in position order) with their repeats marked, once the index has read that
    /// far. Unmarked for the tail itself, which has no index: it is what marks them.
    async fn marked(&self, mut events: Vec<StoredEvent>) -> Result<Vec<StoredEvent>, LogError> {
        let (Some(index), Some(first), Some(last)) = (
            &self.index,
            events.first().map(|e| e.position),
            events.last().map(|e| e.position),
        ) else {
            return Ok(events);
        };
        if let Err(at) = index.wait_progressing(last, INDEX_STALL).await {
            return Err(LogError::Unavailable(format!(
                "the event id index has not moved for {} s: it has read the stream up to position {at}, not yet {last}",
                INDEX_STALL.as_secs()
            )));
        }
        let mut repeats = index.repeats(first, last)?.into_iter().peekable();
        for event in &mut events {
            while let Some((position, repeat)) = repeats.next_if(|(p, _)| *p <= event.position) {
                if position == event.position {
                    event.repeat = Some(repeat);
                }
            }
        }
        Ok(events)
    }

    /// The underlying NATS client.
    pub fn client(&self) -> &async_nats::Client {
        &self.client
    }

    /// The JetStream context (for raw-ceiling benchmarks).
    pub fn context(&self) -> &jetstream::Context {
        &self.context
    }

    /// Fails at once while the client is not connected: async-nats would queue the request
    /// and answer only after the timeout (or, for a publish, after the reconnect).
    fn connected(&self) -> Result<(), LogError> {
        match self.client.connection_state() {
            async_nats::connection::State::Connected => Ok(()),
            _ => Err(LogError::Unavailable(format!(
                "not connected to NATS at {}; reconnecting",
                self.config.redacted_url()
            ))),
        }
    }

    async fn stream(&self) -> Result<stream::Stream, LogError> {
        self.connected()?;
        self.context
            .get_stream(&self.config.stream)
            .await
            .map_err(unavailable)
    }

    fn subject_for(&self, events: &[(Envelope, u64)]) -> String {
        let first = &events[0].0;
        let same_kind = events.iter().all(|(e, _)| e.kind() == first.kind());
        let same_op = events
            .iter()
            .all(|(e, _)| e.operator_id == first.operator_id);
        let kind = if same_kind {
            first
                .kind()
                .as_str()
                .trim_start_matches("ats.")
                .replace('.', "_")
        } else {
            "batch".into()
        };
        let op = match (&first.operator_id, same_op) {
            (Some(op), true) => token(op),
            _ => "_".into(),
        };
        format!("{}.{kind}.{op}", self.config.subject_prefix)
    }

    /// The stored events of the record at `sequence` (None when the sequence holds nothing).
    async fn fetch(
        &self,
        stream: &stream::Stream,
        sequence: u64,
    ) -> Result<Option<Vec<StoredEvent>>, LogError> {
        match stream.get_raw_message(sequence).await {
            Ok(message) => Ok(Some(record_events(sequence, &message.payload))),
            Err(err) if err.kind() == stream::RawMessageErrorKind::NoMessageFound => Ok(None),
            Err(err) => Err(unavailable(err)),
        }
    }

    async fn last_sequence(&self) -> Result<u64, LogError> {
        // Looking the stream up answers with its info: one round trip, not two.
        Ok(self.stream().await?.cached_info().state.last_sequence)
    }

    /// The stream's last sequence, or `BeyondHead` when the stream does not reach `after`.
    async fn reaching(&self, after: Position) -> Result<u64, LogError> {
        let last = self.last_sequence().await?;
        if sequence_of(after) > last {
            return Err(LogError::BeyondHead {
                position: after,
                head: position(last, 0),
            });
        }
        Ok(last)
    }

    /// Publishes `events` as one record; returns their positions and whether the server
    /// dropped the record as a duplicate of one inside its window (then the positions are the
    /// original's, after checking that it holds the same content).
    async fn publish(&self, events: &[(Envelope, u64)]) -> Result<(Vec<Position>, bool), LogError> {
        let recorded_at = Timestamp::now();
        let mut encoded = Vec::with_capacity(events.len());
        for (event, _) in events {
            let mut event = event.clone();
            event.recorded_at = recorded_at;
            encoded.push(codec::encode(&event).map_err(|e| LogError::Storage(e.to_string()))?);
        }
        let record = codec::encode_record(encoded.iter().map(Vec::as_slice));
        let limit = self.client.server_info().max_payload;
        if record.len() + 256 > limit {
            return Err(LogError::TooLarge {
                bytes: record.len(),
                limit,
            });
        }
        self.connected()?;
        let mut headers = HeaderMap::new();
        headers.insert(COUNT_HEADER, events.len().to_string().as_str());
        let message = jetstream::message::PublishMessage::build()
            .payload(record.into())
            .headers(headers)
            .message_id(message_id(events));
        let ack = self
            .context
            .send_publish(self.subject_for(events), message)
            .await
            .map_err(unavailable)?
            .await
            .map_err(unavailable)?;
        if !ack.duplicate {
            let positions = (0..events.len())
                .map(|i| position(ack.sequence, i))
                .collect();
            return Ok((positions, false));
        }
        let stream = self.stream().await?;
        let record = self.fetch(&stream, ack.sequence).await?.ok_or_else(|| {
            LogError::Storage(format!(
                "duplicate ack names missing sequence {}",
                ack.sequence
            ))
        })?;
        Ok((Self::check_duplicate(&record, events)?, true))
    }

    fn check_duplicate(
        record: &[StoredEvent],
        events: &[(Envelope, u64)],
    ) -> Result<Vec<Position>, LogError> {
        // The server dropped our record as a duplicate of the one at `record`: it must hold
        // the same events with the same content, or the ids conflict.
        let mut positions = Vec::with_capacity(events.len());
        for (event, digest) in events {
            let found = record
                .iter()
                .find(|stored| stored.envelope().is_some_and(|e| e.id == event.id));
            match found {
                Some(stored)
                    if stored.envelope().map(Envelope::content_digest) == Some(*digest) =>
                {
                    positions.push(stored.position)
                }
                _ => return Err(LogError::Conflict { id: event.id }),
            }
        }
        Ok(positions)
    }
}

/// Decodes one record into its events (a record that does not decode is one poison event).
fn record_events(sequence: u64, payload: &[u8]) -> Vec<StoredEvent> {
    match codec::decode_record(payload) {
        Ok(parts) => parts
            .into_iter()
            .enumerate()
            .map(|(index, bytes)| StoredEvent::decode(position(sequence, index), bytes))
            .collect(),
        Err(err) => vec![StoredEvent {
            position: position(sequence, 0),
            event: Err(err.to_string()),
            repeat: None,
        }],
    }
}

fn message_id(events: &[(Envelope, u64)]) -> String {
    if let [(event, _)] = events {
        return event.id.to_string();
    }
    let mut hash = Sha256::new();
    for (event, digest) in events {
        hash.update(event.id.as_bytes());
        hash.update(digest.to_be_bytes());
    }
    let digest = hash.finalize();
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("batch-{hex}")
}

#[async_trait::async_trait]
impl EventLog for JetStreamLog {
    fn backend(&self) -> &'static str {
        "jetstream"
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    async fn append(&self, events: Vec<Envelope>) -> Result<AppendOutcome, LogError> {
        if events.is_empty() {
            return Ok(AppendOutcome::default());
        }
        let batch = dedup_batch(events)?;
        if batch.unique.len() > MAX_RECORD_EVENTS {
            return Err(LogError::TooLarge {
                bytes: batch.unique.len(),
                limit: MAX_RECORD_EVENTS,
            });
        }
        // Ids this node has seen: retries are answered from the index, conflicts refused
        // before anything is published.
        let known: Vec<Option<(Position, u64)>> = match &self.index {
            Some(index) => {
                let ids: Vec<_> = batch.unique.iter().map(|(e, _)| e.id).collect();
                index.lookup(&ids)?
            }
            None => vec![None; batch.unique.len()],
        };
        let mut positions: Vec<Option<Position>> = Vec::with_capacity(batch.unique.len());
        let mut duplicates = Vec::new();
        for ((event, digest), known) in batch.unique.iter().zip(&known) {
            match known {
                Some((_, stored)) if stored != digest => {
                    return Err(LogError::Conflict { id: event.id })
                }
                Some((position, _)) => {
                    positions.push(Some(*position));
                    duplicates.push(event.id);
                }
                None => positions.push(None),
            }
        }
        let fresh: Vec<(Envelope, u64)> = batch
            .unique
            .iter()
            .zip(&positions)
            .filter(|(_, p)| p.is_none())
            .map(|(e, _)| e.clone())
            .collect();
        if !fresh.is_empty() {
            let (published, server_duplicate) = self.publish(&fresh).await?;
            if server_duplicate {
                duplicates.extend(fresh.iter().map(|(e, _)| e.id));
            }
            if let Some(index) = &self.index {
                let entries: Vec<_> = fresh
                    .iter()
                    .zip(&published)
                    .map(|((e, d), p)| (e.id, *p, *d))
                    .collect();
                index.record_appended(&entries)?;
            }
            let mut published = published.into_iter();
            for slot in positions.iter_mut().filter(|p| p.is_none()) {
                *slot = published.next();
            }
        }
        let positions: Vec<Position> = positions.into_iter().map(|p| p.unwrap_or(0)).collect();
        Ok(AppendOutcome {
            positions: batch.slot.iter().map(|&i| positions[i]).collect(),
            duplicates,
        })
    }

    async fn read(&self, after: Position, max: usize) -> Result<Vec<StoredEvent>, LogError> {
        let last = self.reaching(after).await?;
        let mut sequence = sequence_of(after).max(1);
        let stream = self.stream().await?;
        let mut out = Vec::new();
        while out.len() < max && sequence <= last {
            if let Some(events) = self.fetch(&stream, sequence).await? {
                out.extend(events.into_iter().filter(|e| e.position > after));
            }
            sequence += 1;
        }
        out.truncate(max);
        self.marked(out).await
    }

    async fn head(&self) -> Result<Position, LogError> {
        let last = self.last_sequence().await?;
        if last == 0 {
            return Ok(0);
        }
        // The head is the last event of the last record; its count is in the record's header.
        // Fetching the record (up to a whole batch) on every call churned memory, so the count
        // of the last sequence seen is remembered.
        let known = self.head_cache.lock().ok().and_then(|c| *c);
        if let Some((sequence, count)) = known {
            if sequence == last {
                return Ok(position(last, count.saturating_sub(1)));
            }
        }
        let stream = self.stream().await?;
        let count = match stream.get_raw_message(last).await {
            Ok(message) => message
                .headers
                .get(COUNT_HEADER)
                .and_then(|v| v.as_str().parse::<usize>().ok())
                .unwrap_or(1),
            Err(_) => 1,
        };
        if let Ok(mut cache) = self.head_cache.lock() {
            *cache = Some((last, count));
        }
        Ok(position(last, count.saturating_sub(1)))
    }

    async fn wait_beyond(&self, after: Position, timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        while tokio::time::Instant::now() < deadline {
            if matches!(self.last_sequence().await, Ok(last) if position(last, MAX_RECORD_EVENTS - 1) > after && sequence_of(after) < last)
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn indexed(&self) -> Option<Position> {
        self.index.as_ref().map(|index| index.checkpoint())
    }

    fn health(&self) -> Result<(), LogError> {
        self.connected()
    }

    /// A reader at the tail takes what the node's id-index tail has just read (one consumer
    /// and one decode for all of them); one further behind reads through its own ordered
    /// consumer until it is close to the tail again. The tail itself, which has no index,
    /// always reads through its consumer.
    fn subscribe(self: Arc<Self>, after: Position, max_batch: usize) -> EventStream {
        let Some(index) = self.index.clone() else {
            return self.consumer_batches(after, max_batch);
        };
        enum Mode {
            /// Check that the stream reaches `after` first (as the consumer does).
            Start,
            Recent,
            Consumer(EventStream),
        }
        Box::pin(futures_util::stream::unfold(
            (self, after, Mode::Start),
            move |(log, mut after, mut mode)| {
                let index = index.clone();
                async move {
                    let batch = loop {
                        match &mut mode {
                            Mode::Start => match log.reaching(after).await {
                                Ok(_) => mode = Mode::Recent,
                                Err(err @ LogError::BeyondHead { .. }) => break Err(err),
                                Err(err) => {
                                    tokio::time::sleep(Duration::from_millis(200)).await;
                                    break Err(err);
                                }
                            },
                            Mode::Recent => match log.recent.take(after, max_batch) {
                                Take::Events(events) => break log.marked(events).await,
                                Take::Behind => {
                                    mode = Mode::Consumer(
                                        log.clone().consumer_batches(after, max_batch),
                                    );
                                }
                                // Nothing kept yet, and the tail started beyond `after`.
                                Take::CaughtUp if index.checkpoint() > after => {
                                    mode = Mode::Consumer(
                                        log.clone().consumer_batches(after, max_batch),
                                    );
                                }
                                // The tail shares a record before indexing it, so once the
                                // index moves the record is kept. Quiet for a second: check
                                // that the stream still reaches `after` (it may have been
                                // recreated shorter), as a reader on its own consumer would
                                // find out.
                                Take::CaughtUp => {
                                    if !index.wait_indexed(after + 1, Duration::from_secs(1)).await
                                    {
                                        mode = Mode::Start;
                                    }
                                }
                            },
                            Mode::Consumer(_) if log.recent.close_enough(after) => {
                                mode = Mode::Recent;
                            }
                            Mode::Consumer(batches) => break batches.next().await?,
                        }
                    };
                    if let Ok(events) = &batch {
                        after = events.last().map_or(after, |e| e.position);
                    }
                    Some((batch, (log, after, mode)))
                }
            },
        ))
    }
}

impl JetStreamLog {
    /// Batches after `after` read through an ordered consumer of this reader's own.
    fn consumer_batches(self: Arc<Self>, after: Position, max_batch: usize) -> EventStream {
        let start = sequence_of(after).max(1);
        let log = self.clone();
        // Records, not events: at most about `max_batch` events when records are batches of
        // 1,000 (a fold holds its whole batch in memory).
        let records = (max_batch / 1000).clamp(1, RECORDS_PER_PULL as usize);
        let stream = futures_util::stream::once(async move {
            self.reaching(after).await?;
            let stream = self.stream().await?;
            let consumer = stream
                .create_consumer(consumer::pull::OrderedConfig {
                    deliver_policy: consumer::DeliverPolicy::ByStartSequence {
                        start_sequence: start,
                    },
                    // A record holds up to a whole batch (1,000 events): pull few at a time so a
                    // subscriber never buffers more than a few batches (the client's default
                    // of 500 records was gigabytes of decoded events per projector). Two
                    // batches' worth: one being handed on, the next arriving. Every record
                    // received pins the client's read buffer it arrived in, and each projector
                    // behind the shared feed has a consumer of its own: pulls of 16 records
                    // for followers handed on one at a time cost 60–90 MiB of peak RSS.
                    max_batch: (2 * records as i64).min(RECORDS_PER_PULL),
                    max_bytes: 8 * 1024 * 1024,
                    filter_subject: format!("{}.>", self.config.subject_prefix),
                    ..Default::default()
                })
                .await
                .map_err(unavailable)?;
            let messages = consumer.messages().await.map_err(unavailable)?;
            Ok::<_, LogError>(messages)
        })
        .map(move |result| match result {
            Ok(messages) => {
                let log = log.clone();
                messages
                    .ready_chunks(records)
                    .then(move |chunk| {
                        let log = log.clone();
                        async move {
                            let mut out = Vec::new();
                            for message in chunk {
                                let message = message.map_err(unavailable)?;
                                let sequence = message
                                    .info()
                                    .map_err(|e| LogError::Storage(e.to_string()))?
                                    .stream_sequence;
                                out.extend(
                                    record_events(sequence, &message.message.payload)
                                        .into_iter()
                                        .filter(|e| e.position > after),
                                );
                            }
                            log.marked(out).await
                        }
                    })
                    .boxed()
            }
            Err(err) => futures_util::stream::once(async move { Err(err) }).boxed(),
        })
        .flatten()
        .filter(|batch| std::future::ready(!matches!(batch, Ok(events) if events.is_empty())));
        Box::pin(stream)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_and_tokens_never_reach_messages() {
        let config = JetStreamConfig {
            url: "nats://ats:s3cret@n1:4222, tls://t0ken@n2:4222,nats://n3:4222".into(),
            ..JetStreamConfig::default()
        };
        assert_eq!(
            config.redacted_url(),
            "nats://ats:***@n1:4222,tls://***@n2:4222,nats://n3:4222"
        );
    }
}
