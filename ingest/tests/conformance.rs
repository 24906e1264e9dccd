//! One conformance suite, run against both backends: the embedded redb log and a real
//! `nats-server -js` started on a free loopback port.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking, with the reason

use std::sync::Arc;
use std::time::Duration;

use ats_events::cloudevents::event_id;
use ats_events::{codec, Envelope, Payload, SkillAssessed, Timestamp};
use ats_ingest::embedded::EmbeddedLog;
use ats_ingest::jetstream::{position, JetStreamConfig, JetStreamLog, COUNT_HEADER};
use ats_ingest::testkit::NatsServer;
use ats_ingest::{EventLog, LogError, Repeat, StoredEvent};
use futures_util::StreamExt;

fn event(name: &str, score: f64) -> Envelope {
    Envelope::new(
        event_id(name),
        Timestamp::parse_rfc3339("2026-11-01T10:00:00Z").unwrap(),
        "conformance",
        Payload::SkillAssessed(SkillAssessed {
            operator_id: "op_1".into(),
            skill: "reconnaissance".into(),
            score,
        }),
    )
}

fn batch(prefix: &str, n: usize) -> Vec<Envelope> {
    (0..n)
        .map(|i| event(&format!("{prefix}-{i}"), 0.5))
        .collect()
}

fn ids(events: &[StoredEvent]) -> Vec<uuid::Uuid> {
    events.iter().map(|e| e.envelope().unwrap().id).collect()
}

async fn read_all(log: &dyn EventLog) -> Vec<StoredEvent> {
    let mut out: Vec<StoredEvent> = Vec::new();
    loop {
        let after = out.last().map_or(0, |e| e.position);
        let next = log.read(after, 7).await.unwrap();
        if next.is_empty() {
            return out;
        }
        out.extend(next);
    }
}

/// Takes batches from `stream` into `seen` until it holds `n` events (each batch within
/// 10 s).
async fn follow(stream: &mut ats_ingest::EventStream, seen: &mut Vec<StoredEvent>, n: usize) {
    while seen.len() < n {
        let next = tokio::time::timeout(Duration::from_secs(10), stream.next()).await;
        seen.extend(next.expect("a batch within 10 s").unwrap().unwrap());
    }
}

/// A backend under test: the log, and a way to restart what holds it.
#[async_trait::async_trait]
trait Harness: Send {
    fn log(&self) -> Arc<dyn EventLog>;
    async fn restart(&mut self);
}

struct Embedded {
    dir: tempfile::TempDir,
    log: Option<Arc<EmbeddedLog>>,
}

impl Embedded {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let log = Arc::new(EmbeddedLog::open(dir.path().join("log.redb")).unwrap());
        Self {
            dir,
            log: Some(log),
        }
    }
}

#[async_trait::async_trait]
impl Harness for Embedded {
    fn log(&self) -> Arc<dyn EventLog> {
        self.log.clone().unwrap()
    }
    async fn restart(&mut self) {
        // Drop every handle first: redb allows one open database per file.
        self.log = None;
        self.log = Some(Arc::new(
            EmbeddedLog::open(self.dir.path().join("log.redb")).unwrap(),
        ));
    }
}

struct Jet {
    server: NatsServer,
    /// The node's local id index lives here, as `serve` keeps it in its data directory.
    dir: tempfile::TempDir,
    log: Option<Arc<JetStreamLog>>,
}

impl Jet {
    async fn new() -> Self {
        let server = NatsServer::start();
        let dir = tempfile::tempdir().unwrap();
        let log = Some(Arc::new(connect(&server, &dir).await));
        Self { server, dir, log }
    }
}

async fn connect(server: &NatsServer, dir: &tempfile::TempDir) -> JetStreamLog {
    server.log(JetStreamConfig::default(), dir.path()).await
}

#[async_trait::async_trait]
impl Harness for Jet {
    fn log(&self) -> Arc<dyn EventLog> {
        self.log.clone().unwrap()
    }
    async fn restart(&mut self) {
        // Drop the old handles (and the index file's lock) before the node comes back.
        self.log = None;
        self.server.restart();
        self.log = Some(Arc::new(connect(&self.server, &self.dir).await));
    }
}

async fn append_then_read_in_order(h: &mut dyn Harness) {
    let log = h.log();
    assert_eq!(log.head().await.unwrap(), 0);
    let first = log.append(batch("a", 3)).await.unwrap();
    let second = log.append(batch("b", 2)).await.unwrap();
    assert!(first.duplicates.is_empty() && second.duplicates.is_empty());
    let positions: Vec<_> = first
        .positions
        .iter()
        .chain(&second.positions)
        .copied()
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
    let all = read_all(log.as_ref()).await;
    assert_eq!(
        all.iter().map(|e| e.position).collect::<Vec<_>>(),
        positions
    );
    let expected: Vec<_> = batch("a", 3)
        .iter()
        .chain(&batch("b", 2))
        .map(|e| e.id)
        .collect();
    assert_eq!(ids(&all), expected);
    assert_eq!(log.head().await.unwrap(), *positions.last().unwrap());
    assert!(all
        .iter()
        .all(|e| e.envelope().unwrap().recorded_at > Timestamp::default()));
    // Reading from the middle starts after the given position.
    let tail = log.read(positions[2], 10).await.unwrap();
    assert_eq!(
        tail.iter().map(|e| e.position).collect::<Vec<_>>(),
        positions[3..]
    );
}

async fn resent_batch_is_deduplicated(h: &mut dyn Harness) {
    let log = h.log();
    let first = log.append(batch("r", 4)).await.unwrap();
    let again = log.append(batch("r", 4)).await.unwrap();
    assert_eq!(again.positions, first.positions);
    assert_eq!(again.duplicates.len(), 4);
    assert_eq!(read_all(log.as_ref()).await.len(), 4);
    let single = log.append(vec![event("r-single", 0.5)]).await.unwrap();
    let single_again = log.append(vec![event("r-single", 0.5)]).await.unwrap();
    assert_eq!(single_again.positions, single.positions);
    assert_eq!(read_all(log.as_ref()).await.len(), 5);
    // A retry of one member of an earlier batch is found too.
    let one = log.append(vec![event("r-2", 0.5)]).await.unwrap();
    assert_eq!(one.positions, vec![first.positions[2]]);
    assert_eq!(one.duplicates, vec![event_id("r-2")]);
    assert_eq!(read_all(log.as_ref()).await.len(), 5);
}

async fn same_id_other_content_is_a_conflict(h: &mut dyn Harness) {
    let log = h.log();
    log.append(vec![event("c-1", 0.5)]).await.unwrap();
    let head = log.head().await.unwrap();
    let err = log.append(vec![event("c-1", 0.9)]).await.unwrap_err();
    assert!(
        matches!(err, LogError::Conflict { id } if id == event_id("c-1")),
        "{err}"
    );
    assert_eq!(log.head().await.unwrap(), head);
    let err = log
        .append(vec![event("c-new", 0.1), event("c-1", 0.9)])
        .await
        .unwrap_err();
    assert!(
        matches!(err, LogError::Conflict { id } if id == event_id("c-1")),
        "{err}"
    );
    // Nothing of the refused batch landed, not even its new event.
    assert_eq!(log.head().await.unwrap(), head);
    assert_eq!(read_all(log.as_ref()).await.len(), 1);
}

/// Appends arriving together (the embedded log commits them as one group): each caller gets
/// exactly its own positions, duplicates or conflict, and a refused batch lands nowhere.
async fn concurrent_appends_each_get_their_own_answer(h: &mut dyn Harness) {
    let log = h.log();
    let seed = log.append(vec![event("g-seed", 0.5)]).await.unwrap();
    let appends = (0..12).map(|i| {
        let log = log.clone();
        async move {
            let events = match i {
                // A retry of the seed among new events, and a conflict with it.
                3 => vec![event("g-3-new", 0.5), event("g-seed", 0.5)],
                7 => vec![event("g-7-new", 0.5), event("g-seed", 0.9)],
                _ => batch(&format!("g-{i}"), 5),
            };
            (i, log.append(events).await)
        }
    });
    let answers = futures_util::future::join_all(appends).await;
    let mut positions = Vec::new();
    for (i, answer) in answers {
        match i {
            3 => {
                let outcome = answer.unwrap();
                assert_eq!(outcome.duplicates, vec![event_id("g-seed")]);
                assert_eq!(outcome.positions[1], seed.positions[0]);
                positions.push(outcome.positions[0]);
            }
            7 => assert!(
                matches!(answer, Err(LogError::Conflict { id }) if id == event_id("g-seed")),
                "{answer:?}"
            ),
            _ => {
                let outcome = answer.unwrap();
                assert!(outcome.duplicates.is_empty());
                assert_eq!(outcome.positions.len(), 5);
                positions.extend(outcome.positions);
            }
        }
    }
    positions.sort_unstable();
    positions.dedup();
    assert_eq!(
        positions.len(),
        11 * 5 - 4,
        "every new event has its own position"
    );
    let stored = ids(&read_all(log.as_ref()).await);
    assert_eq!(stored.len(), 1 + 10 * 5 + 1);
    assert!(stored.contains(&event_id("g-3-new")));
    assert!(
        !stored.contains(&event_id("g-7-new")),
        "the refused batch landed"
    );
}

async fn readers_never_see_half_a_batch(h: &mut dyn Harness) {
    let log = h.log();
    let writer = {
        let log = log.clone();
        tokio::spawn(async move {
            for b in 0..20 {
                log.append(batch(&format!("w{b}"), 25)).await.unwrap();
            }
        })
    };
    let mut checks = 0;
    while !writer.is_finished() || checks == 0 {
        let all = read_all(log.as_ref()).await;
        assert_eq!(all.len() % 25, 0, "a reader saw {} events", all.len());
        checks += 1;
    }
    writer.await.unwrap();
    assert_eq!(read_all(log.as_ref()).await.len(), 500);
}

async fn subscribe_catches_up_then_tails(h: &mut dyn Harness) {
    let log = h.log();
    log.append(batch("s", 5)).await.unwrap();
    let mut stream = log.clone().subscribe(0, 3);
    let mut seen = Vec::new();
    follow(&mut stream, &mut seen, 5).await;
    log.append(batch("t", 2)).await.unwrap();
    follow(&mut stream, &mut seen, 7).await;
    let expected: Vec<_> = batch("s", 5)
        .iter()
        .chain(&batch("t", 2))
        .map(|e| e.id)
        .collect();
    assert_eq!(ids(&seen), expected);
    // A subscription from the middle starts after that position.
    let mut from_mid = log.clone().subscribe(seen[4].position, 100);
    let next = tokio::time::timeout(Duration::from_secs(10), from_mid.next()).await;
    assert_eq!(ids(&next.unwrap().unwrap().unwrap()), expected[5..]);
}

async fn restart_keeps_every_acknowledged_event(h: &mut dyn Harness) {
    let log = h.log();
    let outcome = log.append(batch("k", 10)).await.unwrap();
    drop(log);
    h.restart().await;
    let log = h.log();
    let all = read_all(log.as_ref()).await;
    assert_eq!(
        all.iter().map(|e| e.position).collect::<Vec<_>>(),
        outcome.positions
    );
    // Dedup survives the restart.
    let again = log.append(batch("k", 10)).await.unwrap();
    assert_eq!(again.duplicates.len(), 10);
    assert_eq!(log.head().await.unwrap(), outcome.last_position());
}

async fn reading_beyond_the_head_is_an_error(h: &mut dyn Harness) {
    let log = h.log();
    let outcome = log.append(batch("h", 1)).await.unwrap();
    let far = outcome.last_position() + (1 << 20);
    assert!(matches!(
        log.read(far, 10).await,
        Err(LogError::BeyondHead { .. })
    ));
    // So is following from there: a projector ahead of its log learns it at once.
    let first = tokio::time::timeout(Duration::from_secs(10), log.subscribe(far, 10).next())
        .await
        .unwrap();
    assert!(
        matches!(first, Some(Err(LogError::BeyondHead { .. }))),
        "{first:?}"
    );
}

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(&mut super::Embedded::new()).await;
                }
            )*
        }
        mod jetstream {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(&mut super::Jet::new().await).await;
                }
            )*
        }
    };
}

conformance!(
    append_then_read_in_order,
    resent_batch_is_deduplicated,
    same_id_other_content_is_a_conflict,
    concurrent_appends_each_get_their_own_answer,
    readers_never_see_half_a_batch,
    subscribe_catches_up_then_tails,
    restart_keeps_every_acknowledged_event,
    reading_beyond_the_head_is_an_error,
);

/// A node's id index also learns the ids other nodes append, from the stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jetstream_index_learns_ids_appended_by_other_nodes() {
    let server = NatsServer::start();
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = connect(&server, &dir_a).await;
    let b = connect(&server, &dir_b).await;
    let outcome = a.append(batch("n", 3)).await.unwrap();
    assert!(
        b.wait_indexed(outcome.last_position(), Duration::from_secs(10))
            .await
    );
    let again = b.append(vec![event("n-1", 0.5)]).await.unwrap();
    assert_eq!(again.positions, vec![outcome.positions[1]]);
    assert_eq!(again.duplicates, vec![event_id("n-1")]);
    let err = b
        .append(vec![event("n-new", 0.5), event("n-2", 0.9)])
        .await
        .unwrap_err();
    assert!(
        matches!(err, LogError::Conflict { id } if id == event_id("n-2")),
        "{err}"
    );
    assert_eq!(b.head().await.unwrap(), outcome.last_position());
}

/// Later copies of an id that slipped past the append checks (published by a node whose index
/// had not read the first yet) are marked on read, the same on every node and in both reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jetstream_marks_later_copies_of_an_id_the_same_on_every_node() {
    let server = NatsServer::start();
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = connect(&server, &dir_a).await;
    let first = a.append(batch("r", 2)).await.unwrap();
    // What a lagging node publishes: `r-0` again, `r-1` with other content.
    let copies = [event("r-0", 0.5), event("r-1", 0.9)];
    let encoded: Vec<Vec<u8>> = copies.iter().map(|e| codec::encode(e).unwrap()).collect();
    let mut headers = async_nats::HeaderMap::new();
    headers.insert(COUNT_HEADER, "2");
    let sequence = a
        .context()
        .publish_with_headers(
            "ats.events.batch._",
            headers,
            codec::encode_record(encoded.iter().map(Vec::as_slice)).into(),
        )
        .await
        .unwrap()
        .await
        .unwrap()
        .sequence;
    let expected = vec![
        (first.positions[0], None),
        (first.positions[1], None),
        (
            position(sequence, 0),
            Some(Repeat::Retry {
                first: first.positions[0],
            }),
        ),
        (
            position(sequence, 1),
            Some(Repeat::Conflict {
                first: first.positions[1],
            }),
        ),
    ];
    let marks = |events: Vec<StoredEvent>| -> Vec<_> {
        events.iter().map(|e| (e.position, e.repeat)).collect()
    };
    // A node that appended the first copies, and one that learns everything from the stream.
    let b = Arc::new(connect(&server, &dir_b).await);
    for log in [Arc::new(a), b] {
        assert_eq!(marks(read_all(log.as_ref()).await), expected);
        let mut streamed = Vec::new();
        let mut batches = log.clone().subscribe(0, 1000);
        follow(&mut batches, &mut streamed, expected.len()).await;
        assert_eq!(marks(streamed), expected);
    }
}

/// Live readers share what the node's id-index tail reads: however many follow the stream,
/// the server serves one consumer. A reader too far behind for what the node keeps reads
/// through a consumer of its own, and still gets every event once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jetstream_live_readers_share_the_tails_consumer() {
    let server = NatsServer::start();
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(connect(&server, &dir).await);
    let consumers = || {
        let log = log.clone();
        async move {
            let mut stream = log.context().get_stream("ATS_EVENTS").await.unwrap();
            stream.info().await.unwrap().state.consumer_count
        }
    };
    let mut readers: Vec<_> = (0..3).map(|_| log.clone().subscribe(0, 1000)).collect();
    let mut expected = Vec::new();
    for round in 0..3 {
        let events = batch(&format!("live-{round}"), 10);
        expected.extend(events.iter().map(|e| e.id));
        log.append(events).await.unwrap();
        for reader in &mut readers {
            let mut seen = Vec::new();
            follow(reader, &mut seen, 10).await;
            assert_eq!(ids(&seen), expected[round * 10..]);
        }
    }
    assert_eq!(
        consumers().await,
        1,
        "only the index's tail reads the stream"
    );

    // More than a node keeps decoded: a reader from 0 starts on its own consumer.
    for round in 0..20 {
        let events = batch(&format!("bulk-{round}"), 1000);
        expected.extend(events.iter().map(|e| e.id));
        log.append(events).await.unwrap();
    }
    // Once the tail has read them all (a read waits for the index), the first events are
    // no longer kept.
    let head = log.head().await.unwrap();
    log.read(head - 1, 1).await.unwrap();
    let mut late = log.clone().subscribe(0, 1000);
    let mut seen = Vec::new();
    follow(&mut late, &mut seen, expected.len()).await;
    assert_eq!(ids(&seen), expected);
    assert!(
        consumers().await >= 2,
        "the late reader read the stream itself"
    );
    // Caught up, it follows the tail like the others.
    let events = batch("after", 3);
    expected.extend(events.iter().map(|e| e.id));
    log.append(events).await.unwrap();
    follow(&mut late, &mut seen, expected.len()).await;
    assert_eq!(ids(&seen), expected);
}
