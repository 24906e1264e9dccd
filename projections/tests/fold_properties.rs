//! Properties of `runtime::fold_batch` over generated histories: how the log is cut into
//! batches never shows in the tree, and folding is deterministic.

#![allow(clippy::unwrap_used)] // a test fails by panicking: `unwrap` is its assertion

mod common;

use ats_events::{Envelope, MetricType};
use ats_ingest::{Position, Repeat, StoredEvent};
use ats_projections::runtime;
use common::*;
use proptest::prelude::*;
use proptest::sample::Index;

const NAMES: [&str; 3] = ["Ada", "Grace", "Linus"];
const SKILL_POOL: [&str; 4] = ["recon", "exploit", "stealth", "reporting"];
const CERTS: [&str; 3] = ["oscp", "crto", "oswe"];

/// One step of a generated history.
#[derive(Debug, Clone)]
enum Step {
    Register {
        operator: usize,
        name: usize,
    },
    Complete {
        session: usize,
        operator: usize,
        /// Bit `i` set: practises `SKILL_POOL[i]`.
        skills: u8,
        score: u8,
        success: bool,
        start: i64,
        duration: i64,
        metrics: Vec<(usize, u8)>,
    },
    Metric {
        operator: usize,
        kind: usize,
        value: u8,
        at: i64,
    },
    Certify {
        operator: usize,
        cert: usize,
    },
    Llm {
        operator: usize,
        at: i64,
    },
    /// An exact copy (same id, same content) of an earlier event.
    Resend(Index),
    /// An earlier event's id with other content.
    Conflict(Index),
    /// Bytes that did not decode.
    Garbage,
}

fn step() -> impl Strategy<Value = Step> {
    // Few operators and session ids, so that sessions collide across operators (poison)
    // and within one (retried completions).
    let operator = 0..4usize;
    prop_oneof![
        1 => (operator.clone(), 0..NAMES.len()).prop_map(|(operator, name)| Step::Register { operator, name }),
        5 => (
            0..12usize,
            operator.clone(),
            any::<u8>(),
            0..=100u8,
            any::<bool>(),
            0..10_000i64,
            0..240i64,
            prop::collection::vec((0..MetricType::ALL.len(), 0..=100u8), 0..3),
        )
            .prop_map(|(session, operator, skills, score, success, start, duration, metrics)| Step::Complete {
                session,
                operator,
                skills,
                score,
                success,
                start,
                duration,
                metrics,
            }),
        2 => (operator.clone(), 0..MetricType::ALL.len(), 0..=100u8, 0..10_000i64)
            .prop_map(|(operator, kind, value, at)| Step::Metric { operator, kind, value, at }),
        1 => (operator.clone(), 0..CERTS.len()).prop_map(|(operator, cert)| Step::Certify { operator, cert }),
        1 => (operator, 0..10_000i64).prop_map(|(operator, at)| Step::Llm { operator, at }),
        1 => any::<Index>().prop_map(Step::Resend),
        1 => any::<Index>().prop_map(Step::Conflict),
        1 => Just(Step::Garbage),
    ]
}

fn operator(i: usize) -> String {
    format!("op_{i}")
}

/// The stored events of a history, at non-dense positions (as JetStream's packed ones).
fn build(steps: &[Step]) -> Vec<StoredEvent> {
    // Decoded events with their positions: a resend or a conflict repeats one of them, marked
    // as the log marks a later copy of an id.
    let mut decoded: Vec<(Envelope, Position)> = Vec::new();
    let mut out = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        let id = format!("h-{i}");
        let position = 3 * i as u64 + 1;
        let mut repeat = None;
        let event = match step {
            Step::Register { operator: o, name } => {
                registered(&id, &operator(*o), NAMES[*name], minutes(i as i64))
            }
            Step::Complete {
                session: s,
                operator: o,
                skills: mask,
                score,
                success,
                start,
                duration,
                metrics,
            } => {
                let mut data = session(&format!("s{s}"), &operator(*o), *start, *duration);
                data.skills_practiced = SKILL_POOL
                    .iter()
                    .enumerate()
                    .filter(|(b, _)| mask & (1 << b) != 0)
                    .map(|(_, s)| (*s).to_owned())
                    .collect();
                data.score = f64::from(*score) / 100.0;
                data.success = *success;
                data.metrics = metrics
                    .iter()
                    .map(|(k, v)| session_metric(MetricType::ALL[*k], f64::from(*v) / 100.0))
                    .collect();
                completed(&id, data)
            }
            Step::Metric {
                operator: o,
                kind,
                value,
                at,
            } => metric(
                &id,
                &operator(*o),
                MetricType::ALL[*kind],
                f64::from(*value) / 100.0,
                minutes(*at),
            ),
            Step::Certify { operator: o, cert } => {
                certification(&id, &operator(*o), CERTS[*cert], minutes(i as i64))
            }
            Step::Llm { operator: o, at } => llm_usage(&id, &operator(*o), minutes(*at)),
            Step::Resend(index) if !decoded.is_empty() => {
                let (event, first) = decoded[index.index(decoded.len())].clone();
                repeat = Some(Repeat::Retry { first });
                event
            }
            Step::Conflict(index) if !decoded.is_empty() => {
                let (mut other, first) = decoded[index.index(decoded.len())].clone();
                other.occurred_at = other.occurred_at.plus_seconds(1);
                other.source = "conflicting-producer".into();
                repeat = Some(Repeat::Conflict { first });
                other
            }
            Step::Resend(_) | Step::Conflict(_) | Step::Garbage => {
                out.push(undecodable(position, "unexpected end of input"));
                continue;
            }
        };
        if repeat.is_none() {
            decoded.push((event.clone(), position));
        }
        out.push(StoredEvent {
            repeat,
            ..StoredEvent::new(position, event)
        });
    }
    out
}

/// Folds `events` cut before each index of `cuts`; returns the dead letters counted.
fn fold_split(tree: &sled::Tree, events: &[StoredEvent], cuts: &[usize]) -> u64 {
    let mut bounds: Vec<usize> = cuts.to_vec();
    bounds.push(0);
    bounds.push(events.len());
    bounds.sort_unstable();
    bounds.dedup();
    bounds
        .windows(2)
        .map(|w| fold(tree, &events[w[0]..w[1]]).dead_letters)
        .sum()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn batch_boundaries_do_not_show(
        steps in prop::collection::vec(step(), 1..120),
        cuts in prop::collection::vec(any::<Index>(), 0..8),
    ) {
        let events = build(&steps);
        let cuts: Vec<usize> = cuts.iter().map(|c| c.index(events.len() + 1)).collect();
        let scratch = Scratch::new();
        let (whole, split, again) = (scratch.tree(0), scratch.tree(1), scratch.tree(2));

        let whole_letters = fold(&whole, &events).dead_letters;
        let split_letters = fold_split(&split, &events, &cuts);
        fold_split(&again, &events, &cuts);

        let expected = entries(&whole);
        prop_assert_eq!(&entries(&split), &expected);
        prop_assert_eq!(runtime::digest(&split), runtime::digest(&whole));
        prop_assert_eq!(runtime::checkpoint(&whole), events.last().map_or(0, |e| e.position));
        // Determinism: the same split on another fresh tree.
        prop_assert_eq!(&entries(&again), &expected);
        prop_assert_eq!(runtime::digest(&again), runtime::digest(&whole));
        // What each batch reports as dead-lettered is what the tree holds.
        let stored_letters = dead_letters_in(&whole).len() as u64;
        prop_assert_eq!(whole_letters, stored_letters);
        prop_assert_eq!(split_letters, stored_letters);
    }
}
