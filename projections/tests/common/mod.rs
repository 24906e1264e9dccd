//! Event builders and tree helpers shared by the integration tests of `ats-projections`.
//!
//! Everything here is real: a sled store in a temporary directory (through `Store::open`),
//! envelopes built with the catalogue types, and `runtime::fold_batch` as the runtime calls it.

// Each test binary uses its own subset of these helpers.
#![allow(dead_code)]

use std::future::Future;
use std::time::Duration;

use ats_events::cloudevents::event_id;
use ats_events::{
    BudgetPeriod, BudgetScope, BudgetSet, CertificationAwarded, Envelope, GoalCreated, LlmUsage,
    MetricRecorded, MetricType, OperatorRegistered, Payload, SessionCompleted, SessionMetric,
    SkillAssessed, Timestamp,
};
use ats_ingest::{Position, StoredEvent};
use ats_projections::profiles::{self, ProfilesProjector};
use ats_projections::runtime::{self, DeadLetter, Folded};
use ats_projections::store::Store;

/// The dead-letter range of a projector tree. Mirrors `DEAD_PREFIX` in `runtime.rs`: the
/// runtime keeps its reserved keys after `0xff`, which never starts a UTF-8 read-model key.
pub const DEAD_PREFIX: &[u8] = b"\xff\x02";
/// The running digest of a tree (mirrors `DIGEST_KEY` in `runtime.rs`).
pub const DIGEST_KEY: &[u8] = b"\xff\x00digest";

/// Generous bound for anything a test waits for; a healthy run takes milliseconds.
pub const WAIT: Duration = Duration::from_secs(30);

/// 2026-11-01T10:00:00Z, the start of every test history.
pub fn t0() -> Timestamp {
    Timestamp::parse_rfc3339("2026-11-01T10:00:00Z").expect("a valid RFC 3339 literal")
}

/// `t0` plus `m` minutes.
pub fn minutes(m: i64) -> Timestamp {
    t0().plus_seconds(m * 60)
}

/// An envelope with the id derived from `id` (as the CloudEvents intake derives it).
pub fn event(id: &str, at: Timestamp, payload: Payload) -> Envelope {
    Envelope::new(event_id(id), at, "tests", payload)
}

/// A successful session of `operator` starting `start_min` minutes after `t0` and lasting
/// `duration_min` minutes, with score 0.5 and no skills or metrics.
pub fn session(
    session_id: &str,
    operator: &str,
    start_min: i64,
    duration_min: i64,
) -> SessionCompleted {
    SessionCompleted {
        session_id: session_id.into(),
        operator_id: operator.into(),
        scenario_id: "scn_web".into(),
        start_time: minutes(start_min),
        end_time: minutes(start_min + duration_min),
        duration_seconds: (duration_min * 60) as f64,
        success: true,
        score: 0.5,
        cost: 0.0,
        skills_practiced: Vec::new(),
        objectives_completed: 0,
        objectives_total: 0,
        metrics: Vec::new(),
        difficulty: None,
    }
}

/// Owned skill names.
pub fn skills(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| (*s).to_owned()).collect()
}

/// `ats.session.completed`, occurring at the session's end.
pub fn completed(id: &str, data: SessionCompleted) -> Envelope {
    let at = data.end_time;
    event(id, at, Payload::SessionCompleted(data))
}

/// `ats.operator.registered`.
pub fn registered(id: &str, operator: &str, name: &str, at: Timestamp) -> Envelope {
    event(
        id,
        at,
        Payload::OperatorRegistered(OperatorRegistered {
            operator_id: operator.into(),
            name: name.into(),
            team: Some("red".into()),
            specializations: skills(&["web"]),
            metadata: Default::default(),
        }),
    )
}

/// `ats.metric.recorded`.
pub fn metric(
    id: &str,
    operator: &str,
    metric_type: MetricType,
    value: f64,
    at: Timestamp,
) -> Envelope {
    event(
        id,
        at,
        Payload::MetricRecorded(MetricRecorded {
            operator_id: operator.into(),
            session_id: format!("{id}-session"),
            metric_type,
            value,
            scenario_id: None,
            context: Default::default(),
        }),
    )
}

/// A metric measured during a session.
pub fn session_metric(metric_type: MetricType, value: f64) -> SessionMetric {
    SessionMetric { metric_type, value }
}

/// `ats.certification.awarded`.
pub fn certification(id: &str, operator: &str, certification: &str, at: Timestamp) -> Envelope {
    event(
        id,
        at,
        Payload::CertificationAwarded(CertificationAwarded {
            operator_id: operator.into(),
            certification_id: certification.into(),
        }),
    )
}

/// `ats.llm.usage` of profile `profile`.
pub fn llm_usage(id: &str, profile: &str, at: Timestamp) -> Envelope {
    event(
        id,
        at,
        Payload::LlmUsage(LlmUsage {
            model: "openai/gpt-4o".into(),
            profile_id: profile.into(),
            session_id: format!("{id}-session"),
            task_type: "reconnaissance".into(),
            input_tokens: 1200,
            output_tokens: 300,
            cached_input_tokens: 0,
            latency_ms: Some(850.0),
            success: true,
            error_message: None,
            scenario_id: None,
            phase: None,
            cost: None,
        }),
    )
}

/// `ats.skill.assessed`.
pub fn skill_assessed(
    id: &str,
    operator: &str,
    skill: &str,
    score: f64,
    at: Timestamp,
) -> Envelope {
    event(
        id,
        at,
        Payload::SkillAssessed(SkillAssessed {
            operator_id: operator.into(),
            skill: skill.into(),
            score,
        }),
    )
}

/// `ats.goal.created` for `operator`.
pub fn goal_created(id: &str, operator: &str, at: Timestamp) -> Envelope {
    event(
        id,
        at,
        Payload::GoalCreated(GoalCreated {
            goal_id: format!("{id}-goal"),
            operator_id: operator.into(),
            name: "ten sessions".into(),
            description: None,
            target_value: 10.0,
            unit: Some("sessions".into()),
            deadline: None,
        }),
    )
}

/// `ats.budget.set`: for `Some(operator)` a profile budget, else a global one.
pub fn budget(id: &str, operator: Option<&str>, at: Timestamp) -> Envelope {
    event(
        id,
        at,
        Payload::BudgetSet(BudgetSet {
            scope: if operator.is_some() {
                BudgetScope::Profile
            } else {
                BudgetScope::Global
            },
            entity_id: operator.map(str::to_owned),
            amount: 100.0,
            period: BudgetPeriod::Monthly,
            thresholds: Vec::new(),
        }),
    )
}

/// Stored events at positions `first, first + 1, …`.
pub fn stored(first: Position, events: &[Envelope]) -> Vec<StoredEvent> {
    events
        .iter()
        .zip(first..)
        .map(|(event, position)| StoredEvent::new(position, event.clone()))
        .collect()
}

/// An event whose bytes did not decode, as a log hands it to the projectors.
pub fn undecodable(position: Position, reason: &str) -> StoredEvent {
    StoredEvent {
        position,
        event: Err(reason.to_owned()),
        repeat: None,
    }
}

/// A sled store in a temporary directory, opened with `Store::open`.
pub struct Scratch {
    /// Kept so the directory lives as long as the store.
    pub dir: tempfile::TempDir,
    /// The store.
    pub store: Store,
}

impl Scratch {
    /// A new, empty store.
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let store = Store::open(dir.path().join("read-models")).expect("a fresh store opens");
        Self { dir, store }
    }

    /// Every projector of the engine running over `log` into this store.
    pub fn run(
        &self,
        log: std::sync::Arc<dyn ats_ingest::EventLog>,
    ) -> std::sync::Arc<runtime::Runtime> {
        runtime::Runtime::start(self.store.clone(), log, ats_projections::all_projectors())
            .expect("the runtime starts")
    }

    /// The profiles tree of generation `generation` (fresh and empty for an unused one).
    pub fn tree(&self, generation: u64) -> sled::Tree {
        self.store
            .tree(profiles::NAME, generation)
            .expect("a tree of the store")
    }
}

/// Folds batches into a fresh profiles tree at consecutive positions, like the runtime.
pub struct Folder {
    /// Keeps the store open.
    pub scratch: Scratch,
    /// The tree folded into.
    pub tree: sled::Tree,
    /// Position of the next event.
    pub next: Position,
}

impl Folder {
    /// An empty profiles tree.
    pub fn new() -> Self {
        let scratch = Scratch::new();
        let tree = scratch.tree(0);
        Self {
            scratch,
            tree,
            next: 1,
        }
    }

    /// Folds `events` as one batch.
    pub fn fold(&mut self, events: &[Envelope]) -> Folded {
        let batch = stored(self.next, events);
        self.next += events.len() as Position;
        fold(&self.tree, &batch)
    }

    /// Folds each event as its own batch.
    pub fn fold_each(&mut self, events: &[Envelope]) {
        for event in events {
            self.fold(std::slice::from_ref(event));
        }
    }
}

/// `runtime::fold_batch` with the profiles projector; a storage error fails the test.
pub fn fold(tree: &sled::Tree, batch: &[StoredEvent]) -> Folded {
    runtime::fold_batch(&ProfilesProjector, tree, batch).expect("no storage error")
}

/// Every key/value pair of a tree, in key order.
pub fn entries(tree: &sled::Tree) -> Vec<(Vec<u8>, Vec<u8>)> {
    tree.iter()
        .map(|entry| {
            let (k, v) = entry.expect("a readable entry");
            (k.to_vec(), v.to_vec())
        })
        .collect()
}

/// The dead letters stored in a tree, in position order.
pub fn dead_letters_in(tree: &sled::Tree) -> Vec<DeadLetter> {
    tree.scan_prefix(DEAD_PREFIX)
        .values()
        .map(|v| rmp_serde::from_slice(&v.expect("a readable entry")).expect("a dead letter"))
        .collect()
}

/// Asserts `a` and `b` within 1e-9.
#[track_caller]
pub fn assert_close(a: f64, b: f64) {
    assert!((a - b).abs() < 1e-9, "{a} != {b}");
}

/// Polls `condition` every few milliseconds until it holds or `WAIT` passes. For states the
/// runtime only exposes as snapshots (`Live`, a new generation); positions are awaited with
/// `ProjectorHandle::wait_for` instead.
pub async fn eventually(mut condition: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if condition() {
            return true;
        }
        if tokio::time::Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Runs `future` with the `WAIT` bound, failing the test on timeout.
pub async fn bounded<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, future)
        .await
        .unwrap_or_else(|_| panic!("timed out: {what}"))
}

/// Operators of [`history`].
pub const OPERATORS: [&str; 5] = ["op_0", "op_1", "op_2", "op_3", "op_4"];
const SKILLS: [&str; 4] = ["reconnaissance", "exploitation", "stealth", "reporting"];

/// A deterministic history of `sessions` completed sessions (ids `<prefix>-s<i>`, operator
/// `OPERATORS[i % 5]`) with registrations (name `Operator <id>`, from 15 sessions on),
/// metrics and certifications in between.
pub fn history(prefix: &str, sessions: usize) -> Vec<Envelope> {
    let mut out = Vec::new();
    for i in 0..sessions {
        let operator = OPERATORS[i % OPERATORS.len()];
        let start = (i as i64) * 7;
        // Each operator is registered once, after its first two sessions.
        if (10..15).contains(&i) {
            out.push(registered(
                &format!("{prefix}-reg{i}"),
                operator,
                &format!("Operator {operator}"),
                minutes(start),
            ));
        }
        let mut data = session(
            &format!("{prefix}-s{i}"),
            operator,
            start,
            10 + (i as i64 * 13) % 50,
        );
        data.score = ((i * 37) % 101) as f64 / 100.0;
        data.success = i % 3 != 0;
        data.skills_practiced = skills(&[SKILLS[i % 4], SKILLS[(i / 4) % 4]]);
        data.skills_practiced.dedup();
        data.metrics = vec![session_metric(MetricType::ALL[i % 8], data.score)];
        out.push(completed(&format!("{prefix}-e{i}"), data));
        if i % 7 == 5 {
            out.push(metric(
                &format!("{prefix}-m{i}"),
                operator,
                MetricType::StealthRating,
                (i % 10) as f64 / 10.0,
                minutes(start + 3),
            ));
        }
        if i % 50 == 49 {
            out.push(certification(
                &format!("{prefix}-c{i}"),
                operator,
                "oscp",
                minutes(start + 5),
            ));
        }
    }
    out
}

/// Sessions of [`history`] that belong to `operator`.
pub fn history_sessions_of(operator: &str, sessions: usize) -> u64 {
    (0..sessions)
        .filter(|i| OPERATORS[i % OPERATORS.len()] == operator)
        .count() as u64
}

/// A projector that counts how often each event id is applied (`n/<id>` → count): a
/// second application of one event shows as a count of 2, which the profiles fold (idempotent
/// by design) would hide.
pub struct Applications;

/// Name of [`Applications`].
pub const APPLICATIONS: &str = "applications_v1";

impl ats_projections::Projector for Applications {
    fn name(&self) -> &'static str {
        APPLICATIONS
    }

    fn apply(
        &self,
        view: &mut ats_projections::View<'_>,
        event: &Envelope,
    ) -> Result<(), ats_projections::ApplyError> {
        let key = format!("n/{}", event.id);
        *view.entry::<u64>(key.as_bytes(), || 0)? += 1;
        Ok(())
    }
}

/// The profiles projector and [`Applications`].
pub fn projectors_with_applications() -> Vec<std::sync::Arc<dyn ats_projections::Projector>> {
    let mut all = ats_projections::all_projectors();
    all.push(std::sync::Arc::new(Applications));
    all
}

/// Application counts by event id, from an [`Applications`] tree.
pub fn application_counts(tree: &sled::Tree) -> std::collections::BTreeMap<String, u64> {
    tree.scan_prefix(b"n/")
        .map(|entry| {
            let (k, v) = entry.expect("a readable entry");
            let id = String::from_utf8_lossy(&k[2..]).into_owned();
            (id, rmp_serde::from_slice(&v).expect("a count"))
        })
        .collect()
}
