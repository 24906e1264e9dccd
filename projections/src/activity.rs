//! Training activity by UTC day (`activity_v1`): what the dashboard and the trend calculator
//! of §B8.3–8.4 read, so that "sessions per day" and "average score per day" over a window are
//! range scans over day buckets instead of a walk over every session.
//!
//! Keys:
//! - `d/<YYYY-MM-DD>` → [`DayStats`] of every session that *started* that day (the seed groups
//!   by `start_time.date()`),
//! - `od/<operator>\0<YYYY-MM-DD>` → the same per operator,
//! - `c/<session>` → the operator of a completed session (a second completion is ignored,
//!   §A2.2; this tree cannot read `profiles_v3`, so it keeps its own set),
//! - `a/<session>` → the operator of a session started and not completed yet (the seed's
//!   `active_sessions` was a hard-coded 0, §B14.27).

use std::collections::BTreeMap;

use ats_events::{Envelope, Payload, SessionCompleted, SessionStarted, Timestamp};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::costs::{day_of, Window};
use crate::profiles::decode;
use crate::runtime::{ApplyError, Projector};
use crate::view::View;

/// The projector's name (with its version).
pub const NAME: &str = "activity_v1";

/// Sessions that started on one UTC day.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DayStats {
    /// Completed sessions.
    pub sessions: u64,
    /// Of which succeeded.
    pub successes: u64,
    /// Sum of their scores (summed in log order; the mean is `score_sum / sessions`).
    pub score_sum: f64,
    /// Sum of their durations in hours.
    pub hours: f64,
}

impl DayStats {
    fn add(&mut self, session: &SessionCompleted) {
        self.sessions += 1;
        self.successes += u64::from(session.success);
        self.score_sum += session.score;
        self.hours += session.duration_seconds / 3600.0;
    }

    /// Adds another day's numbers (window totals).
    pub fn merge(&mut self, other: &DayStats) {
        self.sessions += other.sessions;
        self.successes += other.successes;
        self.score_sum += other.score_sum;
        self.hours += other.hours;
    }

    /// Mean score (0 without sessions).
    pub fn average_score(&self) -> f64 {
        if self.sessions == 0 {
            0.0
        } else {
            self.score_sum / self.sessions as f64
        }
    }
}

fn completed_key(session: &str) -> Vec<u8> {
    [b"c/", session.as_bytes()].concat()
}

fn active_key(session: &str) -> Vec<u8> {
    [b"a/", session.as_bytes()].concat()
}

fn day_key(day: &str) -> Vec<u8> {
    [b"d/", day.as_bytes()].concat()
}

fn operator_prefix(operator: &str) -> Vec<u8> {
    [b"od/", operator.as_bytes(), b"\0"].concat()
}

/// Folds session starts and completions into day buckets and the set of running sessions.
pub struct ActivityProjector;

impl ActivityProjector {
    fn started(view: &mut View<'_>, session: &SessionStarted) -> Result<(), ApplyError> {
        // A start arriving after its completion (out-of-order producers) is not running.
        if view.get_raw(&completed_key(&session.session_id))?.is_none() {
            view.put_raw(
                &active_key(&session.session_id),
                session.operator_id.as_bytes().to_vec(),
            )?;
        }
        Ok(())
    }

    fn completed(view: &mut View<'_>, session: &SessionCompleted) -> Result<(), ApplyError> {
        let key = completed_key(&session.session_id);
        if view.get_raw(&key)?.is_some() {
            // §A2.2: counted once. A completion by another operator is dead-lettered by
            // `profiles_v3`; here it is simply not counted again.
            return Ok(());
        }
        view.put_raw(&key, session.operator_id.as_bytes().to_vec())?;
        view.remove(&active_key(&session.session_id))?;
        let day = day_of(session.start_time);
        view.entry(&day_key(&day), DayStats::default)?.add(session);
        let per_operator = [operator_prefix(&session.operator_id), day.into_bytes()].concat();
        view.entry(&per_operator, DayStats::default)?.add(session);
        Ok(())
    }
}

impl Projector for ActivityProjector {
    fn name(&self) -> &'static str {
        NAME
    }

    fn apply(&self, view: &mut View<'_>, event: &Envelope) -> Result<(), ApplyError> {
        match &event.payload {
            Payload::SessionStarted(p) => Self::started(view, p),
            Payload::SessionCompleted(p) => Self::completed(view, p),
            _ => Ok(()),
        }
    }
}

/// Sessions started and not completed.
pub fn active_sessions(tree: &sled::Tree) -> usize {
    tree.scan_prefix(b"a/").map_while(Result::ok).count()
}

/// Completed sessions (each counted once).
pub fn completed_sessions(tree: &sled::Tree) -> usize {
    tree.scan_prefix(b"c/").map_while(Result::ok).count()
}

/// Day buckets in `window`, system-wide or of one operator, in day order (days without a
/// session are absent, as in the seed).
pub fn days(
    tree: &sled::Tree,
    operator: Option<&str>,
    window: &Window,
) -> BTreeMap<String, DayStats> {
    let prefix = operator.map_or_else(|| b"d/".to_vec(), operator_prefix);
    let start = [
        prefix.as_slice(),
        window.first_day.as_deref().unwrap_or("").as_bytes(),
    ]
    .concat();
    let end = [prefix.as_slice(), window.last_day.as_bytes(), b"\x01"].concat();
    tree.range(start..end)
        .map_while(Result::ok)
        .filter_map(|(key, value)| {
            let day = String::from_utf8_lossy(key.get(prefix.len()..)?).into_owned();
            Some((day, decode::<DayStats>(&value)?))
        })
        .collect()
}

/// The sum of the day buckets in `window`.
pub fn total(tree: &sled::Tree, operator: Option<&str>, window: &Window) -> DayStats {
    let mut out = DayStats::default();
    for stats in days(tree, operator, window).values() {
        out.merge(stats);
    }
    out
}

/// The window of `days` whole UTC days ending with the day of `as_of`.
pub fn window(days: u32, as_of: Timestamp) -> Window {
    Window::new(Some(days), as_of)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a test fails by panicking
pub(crate) mod tests {

    use ats_events::cloudevents::event_id;
    use ats_ingest::StoredEvent;

    use super::*;
    use crate::runtime::fold_batch;

    pub(crate) fn t(text: &str) -> Timestamp {
        Timestamp::parse_rfc3339(text).unwrap()
    }

    /// A completion of `session` by `operator` starting at `start` lasting `hours`.
    pub(crate) fn completed(
        session: &str,
        operator: &str,
        start: &str,
        hours: f64,
        score: f64,
        success: bool,
    ) -> Envelope {
        let start = t(start);
        let end = start.plus_seconds((hours * 3600.0) as i64);
        Envelope::new(
            event_id(&format!("{session}-done")),
            end,
            "tests",
            Payload::SessionCompleted(SessionCompleted {
                session_id: session.into(),
                operator_id: operator.into(),
                scenario_id: "scn".into(),
                start_time: start,
                end_time: end,
                duration_seconds: hours * 3600.0,
                success,
                score,
                cost: 0.0,
                skills_practiced: vec!["reconnaissance".into()],
                objectives_completed: 1,
                objectives_total: 2,
                metrics: Vec::new(),
                difficulty: None,
            }),
        )
    }

    pub(crate) fn started(session: &str, operator: &str, start: &str) -> Envelope {
        Envelope::new(
            event_id(&format!("{session}-start")),
            t(start),
            "tests",
            Payload::SessionStarted(SessionStarted {
                session_id: session.into(),
                operator_id: operator.into(),
                scenario_id: "scn".into(),
                start_time: t(start),
                difficulty: None,
            }),
        )
    }

    /// Folds `events` with `projector` into a fresh test tree ([`crate::testing::tree`]).
    pub(crate) fn fold_with(projector: &dyn Projector, events: &[Envelope]) -> sled::Tree {
        let tree = crate::testing::tree(projector.name());
        let stored: Vec<StoredEvent> = events
            .iter()
            .zip(1..)
            .map(|(e, position)| StoredEvent::new(position, e.clone()))
            .collect();
        fold_batch(projector, &tree, &stored).unwrap();
        tree
    }

    #[test]
    fn days_bucket_by_start_time_and_count_a_session_once() {
        let tree = fold_with(
            &ActivityProjector,
            &[
                completed("s1", "op_a", "2026-11-01T23:00:00Z", 2.0, 0.5, true),
                completed("s2", "op_b", "2026-11-02T10:00:00Z", 1.0, 0.9, false),
                completed("s2", "op_b", "2026-11-02T10:00:00Z", 1.0, 0.9, false),
                completed("s3", "op_a", "2026-11-02T11:00:00Z", 0.5, 0.7, true),
            ],
        );
        let all = days(&tree, None, &window(30, t("2026-11-02T12:00:00Z")));
        assert_eq!(all.keys().collect::<Vec<_>>(), ["2026-11-01", "2026-11-02"]);
        // s1 ends on the 2nd but started on the 1st.
        assert_eq!(all["2026-11-01"].sessions, 1);
        assert_eq!(all["2026-11-02"].sessions, 2);
        assert_eq!(all["2026-11-02"].successes, 1);
        assert!((all["2026-11-02"].average_score() - 0.8).abs() < 1e-12);
        assert!((all["2026-11-02"].hours - 1.5).abs() < 1e-12);
        let a = days(&tree, Some("op_a"), &window(1, t("2026-11-02T12:00:00Z")));
        assert_eq!(a.len(), 1);
        assert_eq!(a["2026-11-02"].sessions, 1);
        assert_eq!(completed_sessions(&tree), 3);
    }

    #[test]
    fn a_started_session_is_active_until_it_completes() {
        let tree = fold_with(
            &ActivityProjector,
            &[
                started("s1", "op_a", "2026-11-01T10:00:00Z"),
                started("s2", "op_a", "2026-11-01T10:00:00Z"),
                completed("s1", "op_a", "2026-11-01T10:00:00Z", 1.0, 0.5, true),
                // A late start of a completed session does not make it run again.
                completed("s3", "op_a", "2026-11-01T10:00:00Z", 1.0, 0.5, true),
                started("s3", "op_a", "2026-11-01T10:00:00Z"),
            ],
        );
        assert_eq!(active_sessions(&tree), 1);
    }
}
