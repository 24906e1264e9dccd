//! Micro-benchmarks of the heaviest queries (`cargo bench -p ats-projections --bench queries`):
//! each computed in-process from read models folded from a synthetic history of 250
//! operators (100,000 events, and a day of spend spiking after them), without HTTP — what a
//! query costs the CPU by itself. `QUERIES_OPERATORS` and `QUERIES_EVENTS` change the history
//! (e.g. 25,000 and 1,000,000: the bench's 10M history has 25,000 operators).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use ats_events::cloudevents::parse_cloud_event;
use ats_events::Timestamp;
use ats_ingest::StoredEvent;
use ats_projections::dashboard::{self, ReadModels};
use ats_projections::runtime::fold_batch;
use ats_projections::{activity, alerts, costs, profiles, progress, Projector};
use divan::Bencher;
use serde_json::json;

fn main() {
    divan::main();
    // The models live in a static, which is never dropped: their directory is removed here.
    if let Some(dir) = SCRATCH.get() {
        let _ = std::fs::remove_dir_all(dir.path());
    }
}

/// Where the models are folded. On disk rather than a `temporary` database: sled deletes
/// that (in /dev/shm, i.e. memory) only when the database is dropped, so every run left
/// its models behind, gigabytes at 1M events.
static SCRATCH: OnceLock<tempfile::TempDir> = OnceLock::new();

/// The history's operators: `QUERIES_OPERATORS`, 250 unless set. A query whose cost grows
/// with the operators shows it at 25,000 (what the bench's 10M history has).
fn ops() -> usize {
    static OPERATORS: OnceLock<usize> = OnceLock::new();
    *OPERATORS.get_or_init(|| from_env("QUERIES_OPERATORS", 250))
}

/// The history's events: `QUERIES_EVENTS`, 100,000 unless set.
fn evs() -> usize {
    static EVENTS: OnceLock<usize> = OnceLock::new();
    *EVENTS.get_or_init(|| from_env("QUERIES_EVENTS", 100_000))
}

fn from_env(name: &str, default: usize) -> usize {
    std::env::var(name).map_or(default, |v| {
        v.parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a count"))
    })
}

fn history() -> Vec<StoredEvent> {
    (0..evs())
        .map(|n| {
            let op = format!("op_{:05}", n % ops());
            let day = 1 + (n / ops()) % 28;
            let cloud = if n % 5 == 0 {
                json!({"specversion": "1.0", "id": format!("s-{n}"), "type": "ats.session.completed",
                    "source": "bench", "time": format!("2026-11-{day:02}T10:00:00Z"), "subject": op,
                    "data": {"session_id": format!("s-{n}"), "operator_id": op, "scenario_id": "pentest_001",
                             "start_time": format!("2026-11-{day:02}T08:00:00Z"),
                             "end_time": format!("2026-11-{day:02}T10:00:00Z"), "duration_seconds": 7200,
                             "success": n % 3 != 0, "score": (n % 100) as f64 / 100.0, "cost": 1.5,
                             "skills_practiced": ["reconnaissance", "exploitation"],
                             "objectives_completed": 3, "objectives_total": 5}})
            } else {
                let time = format!("2026-11-{day:02}T09:00:00Z");
                usage(n, &op, &time, &format!("s-{}", n - n % 5))
            };
            StoredEvent::new(n as u64 + 1, parse_cloud_event(cloud).expect("a valid event"))
        })
        .chain(spike())
        .collect()
}

/// Usage on [`SPIKE_DAY`], the day after the history: every operator spends three times its
/// usual day, so the day's total is an anomaly and its root causes are read.
fn spike() -> impl Iterator<Item = StoredEvent> {
    (0..spike_events()).map(|k| {
        let (n, op) = (evs() + k, format!("op_{:05}", k % ops()));
        let cloud = usage(
            n,
            &op,
            &format!("{SPIKE_DAY}T09:00:00Z"),
            &format!("spike-{op}"),
        );
        StoredEvent::new(
            n as u64 + 1,
            parse_cloud_event(cloud).expect("a valid event"),
        )
    })
}

/// Event `n`, a gpt-4o call of `op` in `session` at `time` (RFC 3339), as a CloudEvent.
fn usage(n: usize, op: &str, time: &str, session: &str) -> serde_json::Value {
    json!({"specversion": "1.0", "id": format!("u-{n}"), "type": "ats.llm.usage",
        "source": "bench", "time": time, "subject": op,
        "data": {"model": "openai/gpt-4o", "profile_id": op, "session_id": session,
                 "task_type": "reconnaissance", "input_tokens": 1000, "output_tokens": 500}})
}

const SPIKE_DAY: &str = "2026-11-29";
/// Usage events on [`SPIKE_DAY`]: each operator makes three times the history's daily mean
/// (`evs() / 28` events a day, four in five of them usage, over `ops()`), at least one.
fn spike_events() -> usize {
    ops() * (3 * (evs() / 28 * 4 / 5) / ops()).max(1)
}

/// The read models, folded once for every benchmark.
fn models() -> &'static (ReadModels, sled::Tree) {
    static MODELS: OnceLock<(ReadModels, sled::Tree)> = OnceLock::new();
    MODELS.get_or_init(|| {
        let events = history();
        let dir = SCRATCH.get_or_init(|| tempfile::tempdir().expect("a scratch directory"));
        let db = sled::Config::new()
            .path(dir.path().join("models"))
            .open()
            .expect("a sled database");
        let fold = |name: &str| {
            let projector = projector(name);
            let tree = db.open_tree(name).expect("a tree");
            for batch in events.chunks(1000) {
                fold_batch(projector.as_ref(), &tree, batch).expect("the batch applies");
            }
            tree
        };
        (
            ReadModels {
                profiles: fold(profiles::NAME),
                progress: fold(progress::NAME),
                costs: fold(costs::NAME),
                activity: fold(activity::NAME),
            },
            fold(alerts::NAME),
        )
    })
}

fn projector(name: &str) -> Arc<dyn Projector> {
    ats_projections::all_projectors()
        .into_iter()
        .find(|p| p.name() == name)
        .expect("a projector")
}

/// The whole dashboard as its endpoint builds it: the alert summary, then the rest.
fn whole_dashboard(
    models: &ReadModels,
    acks: &sled::Tree,
    as_of: Timestamp,
) -> dashboard::DashboardData {
    let active = alerts::active_summary(models, acks, &[], 0.6, as_of, dashboard::DASHBOARD_ALERTS);
    dashboard::dashboard(models, active, as_of)
}

fn as_of() -> Timestamp {
    Timestamp::parse_rfc3339("2026-11-30T00:00:00Z").expect("a time")
}

/// The evening of the history's last day: "today" holds usage, as it does under load.
fn busy_as_of() -> Timestamp {
    Timestamp::parse_rfc3339("2026-11-28T23:00:00Z").expect("a time")
}

/// The evening of [`SPIKE_DAY`]: every operator has spend, and the total is anomalous.
fn spike_as_of() -> Timestamp {
    Timestamp::parse_rfc3339(&format!("{SPIKE_DAY}T23:00:00Z")).expect("a time")
}

/// One operator's analysis (`op_00005` has 80 sessions in the default history).
#[divan::bench]
fn performance(bencher: Bencher) {
    let (models, _) = models();
    bencher.bench(|| {
        profiles::performance(&models.profiles, "op_00005", 7, as_of())
            .expect("op_00005 has a profile")
    });
}

#[divan::bench]
fn dashboard_summary(bencher: Bencher) {
    let (models, _) = models();
    bencher.bench(|| dashboard::summary(models, as_of()));
}

#[divan::bench]
fn current_alerts(bencher: Bencher) {
    let (models, _) = models();
    bencher.bench(|| alerts::current_alerts(models, &[], 0.6, as_of()));
}

#[divan::bench]
fn dashboard_whole(bencher: Bencher) {
    let (models, acks) = models();
    bencher.bench(|| whole_dashboard(models, acks, as_of()));
}

#[divan::bench]
fn dashboard_whole_busy_day(bencher: Bencher) {
    let (models, acks) = models();
    bencher.bench(|| whole_dashboard(models, acks, busy_as_of()));
}

#[divan::bench]
fn dashboard_whole_spike_day(bencher: Bencher) {
    let (models, acks) = models();
    bencher.bench(|| whole_dashboard(models, acks, spike_as_of()));
}

/// The dashboard of "today" right after 100 more events of today (20 sessions, 80 usages of
/// ten operators) are folded, as under live ingest: what a query costs when the fold has just
/// changed what the caches were kept for. (Each sample folds its own batch first, outside
/// the timing; the models grow by 100 events a sample.)
#[divan::bench(sample_size = 1, sample_count = 200)]
fn dashboard_whole_after_a_batch(bencher: Bencher) {
    dashboard_after_batches(bencher, "2026-11-28");
}

/// The same, the batch dated a week before "today" (late events, inside the anomaly
/// detector's baseline days).
#[divan::bench(sample_size = 1, sample_count = 200)]
fn dashboard_whole_after_a_late_batch(bencher: Bencher) {
    dashboard_after_batches(bencher, "2026-11-21");
}

/// Each sample folds a live batch dated `day` into the models, then builds the dashboard as
/// of [`busy_as_of`] (only the dashboard is timed).
fn dashboard_after_batches(bencher: Bencher, day: &str) {
    let (models, acks) = models();
    bencher
        .with_inputs(|| {
            let events = live_batch(LIVE_BATCHES.fetch_add(1, Ordering::Relaxed), day);
            for (name, tree) in [
                (profiles::NAME, &models.profiles),
                (progress::NAME, &models.progress),
                (costs::NAME, &models.costs),
                (activity::NAME, &models.activity),
            ] {
                fold_batch(projector(name).as_ref(), tree, &events).expect("the batch applies");
            }
        })
        .bench_values(|()| whole_dashboard(models, acks, busy_as_of()));
}

/// Live batches folded so far (each has its own positions and ids).
static LIVE_BATCHES: AtomicUsize = AtomicUsize::new(0);

/// Batch `b` of live events at 20:00–21:00 of `day` (positions after the history).
fn live_batch(b: usize, day: &str) -> Vec<StoredEvent> {
    (0..100)
        .map(|k| {
            let n = evs() + spike_events() + b * 100 + k;
            let op = format!("op_{:05}", k % 10);
            let (start, end) = (format!("{day}T20:00:00Z"), format!("{day}T21:00:00Z"));
            let cloud = if k % 5 == 0 {
                json!({"specversion": "1.0", "id": format!("s-{n}"), "type": "ats.session.completed",
                    "source": "bench", "time": end, "subject": op,
                    "data": {"session_id": format!("s-{n}"), "operator_id": op, "scenario_id": "pentest_001",
                             "start_time": start, "end_time": end,
                             "duration_seconds": 3600, "success": true, "score": 0.7, "cost": 1.5,
                             "skills_practiced": ["reconnaissance"],
                             "objectives_completed": 3, "objectives_total": 5}})
            } else {
                usage(n, &op, &end, &format!("s-{}", n - n % 5))
            };
            StoredEvent::new(n as u64 + 1, parse_cloud_event(cloud).expect("a valid event"))
        })
        .collect()
}

#[divan::bench]
fn anomalies_today(bencher: Bencher) {
    let (models, _) = models();
    bencher.bench(|| costs::anomalies::detect(&models.costs, 1, as_of()));
}

#[divan::bench]
fn anomalies_busy_day(bencher: Bencher) {
    let (models, _) = models();
    bencher.bench(|| costs::anomalies::detect(&models.costs, 1, busy_as_of()));
}

/// A busy day whose total is anomalous: the total's root causes are every series' excess.
#[divan::bench]
fn anomalies_spike_day(bencher: Bencher) {
    let (models, _) = models();
    let found = costs::anomalies::detect(&models.costs, 1, spike_as_of());
    assert!(
        found
            .iter()
            .any(|a| a.dimension == "total" && !a.root_causes.is_empty()),
        "the spike day's total is an anomaly with root causes"
    );
    bencher.bench(|| costs::anomalies::detect(&models.costs, 1, spike_as_of()));
}

/// The cost anomalies endpoint's default window.
#[divan::bench]
fn anomalies_week(bencher: Bencher) {
    let (models, _) = models();
    bencher.bench(|| costs::anomalies::detect(&models.costs, 7, busy_as_of()));
}

/// The seed's rules over the anomalies endpoint's default window (the week up to the spike
/// day): every usage record of the week is read.
#[divan::bench]
fn seed_anomalies_week(bencher: Bencher) {
    let (models, _) = models();
    assert!(
        !costs::anomalies::seed_anomalies(&models.costs, 7, spike_as_of()).is_empty(),
        "the week has anomalies to describe"
    );
    bencher.bench(|| costs::anomalies::seed_anomalies(&models.costs, 7, spike_as_of()));
}

#[divan::bench]
fn last_five_sessions_of_everyone(bencher: Bencher) {
    let (models, _) = models();
    bencher.bench(|| {
        profiles::operator_ids(&models.profiles)
            .iter()
            .map(|op| profiles::sessions(&models.profiles, op, 5).len())
            .sum::<usize>()
    });
}
