//! The stretch of the stream a node's id-index tail has just read, kept decoded, so the live
//! readers of a JetStream log share one consumer and one decode instead of each running its
//! own (seven projectors used to pull and decode every record seven times).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::log::{Position, StoredEvent};

/// Events a [`Recent`] keeps: enough for a projector a few batches behind the tail; one
/// further behind reads through its own consumer until it is back within half of this.
pub(crate) const RECENT_EVENTS: usize = 16 * 1024;

/// Consecutive events read from the stream, all of those after `after` up to the last.
struct Run {
    after: Position,
    events: Arc<Vec<StoredEvent>>,
}

impl Run {
    fn last(&self) -> Position {
        self.events.last().map_or(self.after, |e| e.position)
    }
}

/// What [`Recent::take`] found for a reader.
#[derive(Debug)]
pub(crate) enum Take {
    /// The events after the reader's position (at least one, at most what it asked for).
    Events(Vec<StoredEvent>),
    /// Nothing kept reaches back to the reader's position: it must read the stream itself.
    Behind,
    /// The reader has every event kept (or nothing is kept yet): wait for the tail.
    CaughtUp,
}

/// The last [`RECENT_EVENTS`] (or so) events the tail read, without gaps.
pub(crate) struct Recent {
    budget: usize,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    runs: VecDeque<Run>,
    events: usize,
}

impl Recent {
    /// Keeps about `budget` events (never fewer than the last run).
    pub(crate) fn new(budget: usize) -> Self {
        Self {
            budget,
            inner: Mutex::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave `Inner` inconsistent in a way that
        // matters: at worst the counts are off until the next push clears it.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Keeps `events`, every event of the stream after `after` up to the last of them. A run
    /// that does not continue the last one (the tail started again from its checkpoint)
    /// replaces everything kept, so what is kept never has a gap.
    pub(crate) fn push(&self, after: Position, events: Vec<StoredEvent>) {
        if events.is_empty() {
            return;
        }
        let mut inner = self.lock();
        if inner.runs.back().map(Run::last) != Some(after) {
            inner.runs.clear();
            inner.events = 0;
        }
        inner.events += events.len();
        inner.runs.push_back(Run {
            after,
            events: Arc::new(events),
        });
        while inner.events > self.budget && inner.runs.len() > 1 {
            if let Some(dropped) = inner.runs.pop_front() {
                inner.events -= dropped.events.len();
            }
        }
    }

    /// Up to `max` events after `after`, if they are kept.
    pub(crate) fn take(&self, after: Position, max: usize) -> Take {
        let inner = self.lock();
        let (Some(first), Some(last)) = (inner.runs.front(), inner.runs.back()) else {
            return Take::CaughtUp;
        };
        if after < first.after {
            return Take::Behind;
        }
        if after >= last.last() {
            return Take::CaughtUp;
        }
        let from = inner.runs.partition_point(|r| r.last() <= after);
        let mut out = Vec::new();
        for run in inner.runs.range(from..) {
            let skip = run.events.partition_point(|e| e.position <= after);
            out.extend(run.events[skip..].iter().take(max - out.len()).cloned());
            if out.len() >= max {
                break;
            }
        }
        Take::Events(out)
    }

    /// Whether a reader at `after` is within the newer half of what is kept: close enough
    /// to the tail to stop reading the stream itself without falling out again at once.
    pub(crate) fn close_enough(&self, after: Position) -> bool {
        let inner = self.lock();
        let Some(first) = inner.runs.front() else {
            return false;
        };
        if after < first.after {
            return false;
        }
        let from = inner.runs.partition_point(|r| r.last() <= after);
        let ahead: usize = inner
            .runs
            .range(from..)
            .map(|r| r.events.len() - r.events.partition_point(|e| e.position <= after))
            .sum();
        ahead <= self.budget / 2
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a test fails by panicking
mod tests {
    use super::*;
    use ats_events::{Envelope, Payload, SkillAssessed, Timestamp};
    use proptest::prelude::*;

    fn events(positions: std::ops::RangeInclusive<u64>) -> Vec<StoredEvent> {
        positions
            .map(|p| {
                let event = Envelope::new(
                    ats_events::cloudevents::event_id(&p.to_string()),
                    Timestamp::from_micros(0),
                    "tests",
                    Payload::SkillAssessed(SkillAssessed {
                        operator_id: "op".into(),
                        skill: "recon".into(),
                        score: 0.5,
                    }),
                );
                StoredEvent::new(p, event)
            })
            .collect()
    }

    fn positions(take: Take) -> Vec<u64> {
        match take {
            Take::Events(events) => events.iter().map(|e| e.position).collect(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn hands_out_what_follows_a_position_across_runs() {
        let recent = Recent::new(100);
        assert!(matches!(recent.take(0, 10), Take::CaughtUp));
        recent.push(0, events(1..=3));
        recent.push(3, events(4..=6));
        assert_eq!(positions(recent.take(0, 10)), [1, 2, 3, 4, 5, 6]);
        assert_eq!(positions(recent.take(2, 3)), [3, 4, 5]);
        assert_eq!(positions(recent.take(5, 10)), [6]);
        assert!(matches!(recent.take(6, 10), Take::CaughtUp));
    }

    #[test]
    fn forgets_the_oldest_runs_and_never_keeps_a_gap() {
        let recent = Recent::new(4);
        recent.push(0, events(1..=3));
        recent.push(3, events(4..=6));
        // Over budget: the first run goes.
        assert!(matches!(recent.take(0, 10), Take::Behind));
        assert_eq!(positions(recent.take(3, 10)), [4, 5, 6]);
        // The tail started again from an earlier checkpoint: only the new run is kept.
        recent.push(1, events(2..=4));
        assert!(matches!(recent.take(0, 10), Take::Behind));
        assert_eq!(positions(recent.take(1, 10)), [2, 3, 4]);
        assert!(matches!(recent.take(6, 10), Take::CaughtUp));
    }

    #[test]
    fn a_reader_is_close_enough_within_the_newer_half() {
        let recent = Recent::new(8);
        recent.push(0, events(1..=8));
        assert!(!recent.close_enough(0));
        assert!(!recent.close_enough(3));
        assert!(recent.close_enough(4));
        assert!(recent.close_enough(8));
    }

    proptest! {
        /// Reading through `take` from any kept position, in any sizes, gives the stream's
        /// events in order, each once, whatever runs the tail pushed.
        #[test]
        fn take_reads_the_stream_in_order(
            runs in proptest::collection::vec(1u64..20, 1..30),
            budget in 1usize..200,
            start_back in 0usize..200,
            max in 1usize..50,
        ) {
            let recent = Recent::new(budget);
            let mut head = 0;
            for len in runs {
                recent.push(head, events(head + 1..=head + len));
                head += len;
            }
            let mut after = head.saturating_sub(start_back as u64);
            if matches!(recent.take(after, max), Take::Behind) {
                // Whole runs are forgotten: at least the budget less one run is kept.
                prop_assert!(start_back + 20 > budget);
                return Ok(());
            }
            let mut seen = Vec::new();
            loop {
                match recent.take(after, max) {
                    Take::Events(events) => {
                        prop_assert!(!events.is_empty() && events.len() <= max);
                        seen.extend(events.iter().map(|e| e.position));
                        after = events.last().unwrap().position;
                    }
                    Take::CaughtUp => break,
                    Take::Behind => prop_assert!(false, "fell behind while reading"),
                }
            }
            let expected: Vec<u64> = (head.saturating_sub(start_back as u64) + 1..=head).collect();
            prop_assert_eq!(seen, expected);
        }
    }
}
