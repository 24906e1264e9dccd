//! The embedded log's id index keeps the newest ids in memory, writes them as runs a slice per
//! commit, and compacts runs into its table a slice per commit. Whatever the point at which
//! it writes, compacts or the log is reopened, every append answers as a plain map of every
//! id ever appended would.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking, with the reason

use std::collections::{BTreeMap, HashMap};

use ats_events::cloudevents::event_id;
use ats_events::{Envelope, Payload, SkillAssessed, Timestamp};
use ats_ingest::embedded::EmbeddedLog;
use ats_ingest::{EventLog, LogError};
use proptest::prelude::*;

/// Event `name` saying `content` (two contents of one name are a conflict).
fn event(name: u8, content: u8) -> Envelope {
    Envelope::new(
        event_id(&format!("e{name}")),
        Timestamp::parse_rfc3339("2026-11-01T10:00:00Z").unwrap(),
        "embedded-ids",
        Payload::SkillAssessed(SkillAssessed {
            operator_id: "op_1".into(),
            skill: "reconnaissance".into(),
            score: f64::from(content) / 4.0,
        }),
    )
}

#[derive(Debug, Clone)]
enum Op {
    Append(Vec<(u8, u8)>),
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => prop::collection::vec((0u8..40, 0u8..2), 1..6).prop_map(Op::Append),
        1 => Just(Op::Reopen),
    ]
}

/// What the log must answer: positions of each submitted event and the duplicates, or the
/// conflicting id. (The log's answer, by the rules of `EventLog::append`.)
#[derive(Debug, PartialEq)]
enum Answer {
    Appended(Vec<u64>, Vec<uuid::Uuid>),
    Conflict(uuid::Uuid),
}

/// Every id ever appended → (position, content).
#[derive(Default)]
struct Model {
    held: HashMap<u8, (u64, u8)>,
    head: u64,
}

impl Model {
    fn append(&mut self, batch: &[(u8, u8)]) -> Answer {
        // In-batch repeats first (a repeat with other content refuses the batch), then each
        // distinct id against the log, in first-submission order.
        let mut unique: Vec<(u8, u8)> = Vec::new();
        for &(name, content) in batch {
            match unique.iter().find(|(n, _)| *n == name) {
                Some(&(_, c)) if c != content => return Answer::Conflict(event(name, 0).id),
                Some(_) => {}
                None => unique.push((name, content)),
            }
        }
        for &(name, content) in &unique {
            if matches!(self.held.get(&name), Some(&(_, c)) if c != content) {
                return Answer::Conflict(event(name, 0).id);
            }
        }
        let mut duplicates = Vec::new();
        let mut at = BTreeMap::new();
        for &(name, content) in &unique {
            match self.held.get(&name) {
                Some(&(position, _)) => {
                    duplicates.push(event(name, 0).id);
                    at.insert(name, position);
                }
                None => {
                    self.head += 1;
                    self.held.insert(name, (self.head, content));
                    at.insert(name, self.head);
                }
            }
        }
        let positions = batch.iter().map(|(name, _)| at[name]).collect();
        Answer::Appended(positions, duplicates)
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn appends_answer_as_a_map_of_every_id_whatever_the_merges_and_reopens(
        staged in 1usize..10,
        // Long enough, with stagings of a few ids, for eight runs and a compaction (32
        // commits) to complete, and for reopens to land in the middle of both.
        ops in prop::collection::vec(op(), 1..160),
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("log.redb");
            let mut log = Some(EmbeddedLog::open_staging(&path, staged).unwrap());
            let mut model = Model::default();
            for op in ops {
                match op {
                    Op::Reopen => {
                        drop(log.take());
                        log = Some(EmbeddedLog::open_staging(&path, staged).unwrap());
                    }
                    Op::Append(batch) => {
                        let expected = model.append(&batch);
                        let events = batch.iter().map(|&(n, c)| event(n, c)).collect();
                        let answer = match log.as_ref().unwrap().append(events).await {
                            Ok(outcome) => Answer::Appended(outcome.positions, outcome.duplicates),
                            Err(LogError::Conflict { id }) => Answer::Conflict(id),
                            Err(other) => panic!("append failed: {other}"),
                        };
                        prop_assert_eq!(answer, expected);
                    }
                }
            }
            // A log opened with the default staging (nothing merged since) answers the same.
            drop(log);
            let log = EmbeddedLog::open(&path).unwrap();
            for (name, (position, content)) in model.held.clone() {
                let outcome = log.append(vec![event(name, content)]).await.unwrap();
                prop_assert_eq!(outcome.positions, vec![position]);
                let other = log.append(vec![event(name, 1 - content)]).await;
                prop_assert!(matches!(other, Err(LogError::Conflict { .. })), "{other:?}");
            }
            prop_assert_eq!(log.head().await.unwrap(), model.head);
            Ok(())
        })?;
    }
}

/// A log written before ids were staged has no `merged_through`: its table holds every id.
#[tokio::test]
async fn a_log_indexed_before_staging_keeps_its_ids() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.redb");
    {
        // The layout of that version: events by position, and every id in `event_ids`.
        let events: redb::TableDefinition<u64, &[u8]> = redb::TableDefinition::new("events");
        let ids: redb::TableDefinition<u128, (u64, u64)> = redb::TableDefinition::new("event_ids");
        let db = redb::Database::create(&path).unwrap();
        let tx = db.begin_write().unwrap();
        {
            let mut events = tx.open_table(events).unwrap();
            let mut ids = tx.open_table(ids).unwrap();
            for (position, name) in [(1, 7), (2, 8)] {
                let event = event(name, 0);
                events
                    .insert(
                        position,
                        ats_events::codec::encode(&event).unwrap().as_slice(),
                    )
                    .unwrap();
                ids.insert(event.id.as_u128(), (position, event.content_digest()))
                    .unwrap();
            }
        }
        tx.commit().unwrap();
    }
    let log = EmbeddedLog::open_staging(&path, 1).unwrap();
    let outcome = log.append(vec![event(8, 0), event(9, 0)]).await.unwrap();
    assert_eq!(outcome.positions, vec![2, 3]);
    assert!(matches!(
        log.append(vec![event(7, 1)]).await,
        Err(LogError::Conflict { .. })
    ));
    drop(log);
    let log = EmbeddedLog::open_staging(&path, 1).unwrap();
    let outcome = log.append(vec![event(9, 0), event(7, 0)]).await.unwrap();
    assert_eq!(outcome.positions, vec![3, 1]);
}
