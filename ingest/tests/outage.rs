//! The JetStream log while its nats-server is away: appends fail fast with
//! `LogError::Unavailable` (never a hang, never a false success), `health()` says so, and
//! both recover by themselves when the server is back on the same port and store. Also what
//! the server's state can do under the log: a consumer deleted, a stream created again.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking, with the reason

use std::time::{Duration, Instant};

use ats_events::cloudevents::event_id;
use ats_events::{Envelope, Payload, SkillAssessed, Timestamp};
use ats_ingest::jetstream::JetStreamConfig;
use ats_ingest::testkit::NatsServer;
use ats_ingest::{EventLog, LogError};

fn assessed(n: u32) -> Envelope {
    Envelope::new(
        event_id(&format!("outage-{n}")),
        Timestamp::from_micros(1_700_000_000_000_000),
        "tests",
        Payload::SkillAssessed(SkillAssessed {
            operator_id: "op_1".into(),
            skill: "recon".into(),
            score: 0.5,
        }),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_fail_fast_while_nats_is_down_and_recover_after() {
    let mut nats = NatsServer::start();
    let config = JetStreamConfig {
        request_timeout: Duration::from_secs(1),
        ..JetStreamConfig::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let log = nats.log(config, dir.path()).await;
    log.append(vec![assessed(0)]).await.unwrap();
    assert!(log.health().is_ok());

    nats.kill();
    // Every append while the server is away fails, within the request timeout.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut attempts = 0;
    while log.health().is_ok() {
        assert!(
            Instant::now() < deadline,
            "the client never noticed the outage"
        );
        let started = Instant::now();
        let result = log.append(vec![assessed(1)]).await;
        assert!(
            matches!(result, Err(LogError::Unavailable(_))),
            "{result:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(3));
        attempts += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let started = Instant::now();
    let refused = log.append(vec![assessed(1)]).await;
    let took = started.elapsed();
    assert!(
        matches!(&refused, Err(LogError::Unavailable(m)) if m.starts_with("not connected to NATS")),
        "{refused:?}"
    );
    assert!(took < Duration::from_millis(100), "took {took:?}");
    assert!(log.head().await.is_err(), "reads fail fast too");

    nats.restart();
    let deadline = Instant::now() + Duration::from_secs(30);
    while log.health().is_err() {
        assert!(Instant::now() < deadline, "the client never reconnected");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    log.append(vec![assessed(1)]).await.unwrap();
    // A retry of the event acknowledged before the outage is a duplicate (answered by the
    // node's id index; single-event records also carry the event id as `Nats-Msg-Id`).
    let outcome = log.append(vec![assessed(0)]).await.unwrap();
    assert_eq!(
        outcome.duplicates.len(),
        1,
        "the event from before the outage"
    );
    let events = log.read(0, 10).await.unwrap();
    assert_eq!(events.len(), 2, "each event once");
    println!(
        "outage at the log: {attempts} appends refused while the client still thought it was connected, then refused in {took:?}; reconnected; 2 events, each once"
    );
}

/// A reader catching up through its own ordered consumer (further behind than the node's
/// shared tail keeps) reads every event once, in order, across a restart of the server in
/// the middle of its catch-up, subscribing again after an error as a projector does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_catching_up_survives_a_server_restart() {
    use futures_util::StreamExt;
    use std::sync::Arc;
    let mut nats = NatsServer::start();
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(nats.log(JetStreamConfig::default(), dir.path()).await);
    const BATCHES: u32 = 30;
    let mut last = 0;
    for batch in 0..BATCHES {
        let events = (0..1000)
            .map(|i| assessed(10_000 + batch * 1000 + i))
            .collect();
        last = log.append(events).await.unwrap().last_position();
    }
    let total = (BATCHES * 1000) as usize;
    // Positions are (record sequence, index in the record): wait for the last one itself.
    assert!(log.wait_indexed(last, Duration::from_secs(30)).await);

    let mut stream = log.clone().subscribe(0, 1000);
    let mut seen = Vec::new();
    while seen.len() < 2000 {
        let next = tokio::time::timeout(Duration::from_secs(10), stream.next()).await;
        seen.extend(next.expect("a batch within 10 s").unwrap().unwrap());
    }
    nats.restart();
    let mut errors = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    while seen.len() < total {
        assert!(
            Instant::now() < deadline,
            "stuck at {} of {total} events after the restart",
            seen.len()
        );
        match tokio::time::timeout(Duration::from_secs(5), stream.next()).await {
            Ok(Some(Ok(batch))) => seen.extend(batch),
            // As a projector does: after an error, subscribe again from what it has.
            Ok(Some(Err(_))) | Ok(None) => {
                errors += 1;
                let after = seen.last().map_or(0, |e| e.position);
                stream = log.clone().subscribe(after, 1000);
            }
            Err(_) => {}
        }
    }
    let positions: Vec<u64> = seen.iter().map(|e| e.position).collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "in order, each once"
    );
    assert_eq!(seen.len(), total);
    println!(
        "caught up across a server restart ({errors} errors, each followed by a new subscription)"
    );
}

/// The id index's tail loses its consumer on the server (deleted by an operator, or lost
/// with the server's state): the events appended after it are still indexed, so readers
/// waiting on the index see them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_index_keeps_up_after_its_consumer_is_deleted() {
    use futures_util::StreamExt;
    let nats = NatsServer::start();
    let dir = tempfile::tempdir().unwrap();
    let config = JetStreamConfig::default();
    let log = nats.log(config.clone(), dir.path()).await;
    let first = log.append(vec![assessed(20_000)]).await.unwrap();
    assert!(
        log.wait_indexed(first.positions[0], Duration::from_secs(10))
            .await
    );

    let (_, stream) = administer(&nats, &config).await;
    let names: Vec<String> = stream
        .consumer_names()
        .map(|name| name.unwrap())
        .collect()
        .await;
    assert!(!names.is_empty(), "the tail reads through a consumer");
    for name in &names {
        stream.delete_consumer(name).await.unwrap();
    }

    let later = log
        .append((0..1000).map(|i| assessed(21_000 + i)).collect())
        .await
        .unwrap();
    let last = later.last_position();
    assert!(
        log.wait_indexed(last, Duration::from_secs(30)).await,
        "the index stopped at its deleted consumer"
    );
}

/// A reader waiting at the tail of a stream that is deleted and created again, shorter,
/// is told its position is beyond the end of the log (rather than waiting forever for
/// positions the new stream will give to other events).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_at_the_tail_learns_the_stream_was_recreated_shorter() {
    use futures_util::StreamExt;
    use std::sync::Arc;
    let nats = NatsServer::start();
    let dir = tempfile::tempdir().unwrap();
    let config = JetStreamConfig::default();
    let log = Arc::new(nats.log(config.clone(), dir.path()).await);
    let mut last = 0;
    for batch in 0..3 {
        let outcome = log
            .append((0..10).map(|i| assessed(30_000 + batch * 10 + i)).collect())
            .await
            .unwrap();
        last = outcome.last_position();
    }
    assert!(log.wait_indexed(last, Duration::from_secs(10)).await);
    let mut reader = log.clone().subscribe(last, 1000);
    // The reader is waiting at the tail: nothing beyond `last` yet.
    assert!(
        tokio::time::timeout(Duration::from_millis(1500), reader.next())
            .await
            .is_err()
    );

    let (admin, stream) = administer(&nats, &config).await;
    let subjects = stream.cached_info().config.subjects.clone();
    admin.delete_stream(&config.stream).await.unwrap();
    admin
        .create_stream(async_nats::jetstream::stream::Config {
            name: config.stream.clone(),
            subjects,
            ..Default::default()
        })
        .await
        .unwrap();
    admin
        .publish(format!("{}.other", config.subject_prefix), "x".into())
        .await
        .unwrap()
        .await
        .unwrap();

    let answer = tokio::time::timeout(Duration::from_secs(30), reader.next())
        .await
        .expect("the reader answers within 30 s")
        .expect("the reader's stream goes on");
    assert!(
        matches!(answer, Err(LogError::BeyondHead { position, .. }) if position == last),
        "{answer:?}"
    );
}

/// What an operator administering the server holds: a JetStream context on a connection of
/// its own, and the log's stream.
async fn administer(
    nats: &NatsServer,
    config: &JetStreamConfig,
) -> (
    async_nats::jetstream::Context,
    async_nats::jetstream::stream::Stream,
) {
    let admin = async_nats::jetstream::new(async_nats::connect(nats.url()).await.unwrap());
    let stream = admin.get_stream(&config.stream).await.unwrap();
    (admin, stream)
}
