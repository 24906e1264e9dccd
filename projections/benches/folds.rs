//! Micro-benchmarks of the folds (`cargo bench -p ats-projections`): one batch of 1,000
//! events applied by each projector into a fresh temporary sled tree, with its checkpoint and
//! digest — the unit of work of a live projector and of a rebuild.

use std::sync::Arc;

use ats_events::cloudevents::parse_cloud_event;
use ats_events::Envelope;
use ats_ingest::StoredEvent;
use ats_projections::runtime::fold_batch;
use ats_projections::Projector;
use divan::counter::ItemsCount;
use divan::Bencher;
use serde_json::json;

fn main() {
    divan::main();
}

const BATCH: usize = 1000;

/// Sessions, LLM usage and skill assessments of 50 operators, in time order.
fn events() -> Vec<StoredEvent> {
    (0..BATCH)
        .map(|n| {
            let op = format!("op_{}", n % 50);
            let day = 1 + (n / 50) % 28;
            let cloud = match n % 3 {
                0 => json!({"specversion": "1.0", "id": format!("s-{n}"), "type": "ats.session.completed",
                    "source": "bench", "time": format!("2026-11-{day:02}T10:00:00Z"), "subject": op,
                    "data": {"session_id": format!("s-{n}"), "operator_id": op, "scenario_id": "pentest_001",
                             "start_time": format!("2026-11-{day:02}T08:00:00Z"),
                             "end_time": format!("2026-11-{day:02}T10:00:00Z"), "duration_seconds": 7200,
                             "success": true, "score": 0.5 + (n % 50) as f64 / 100.0, "cost": 2.5,
                             "skills_practiced": ["reconnaissance", "exploitation"],
                             "objectives_completed": 8, "objectives_total": 10,
                             "metrics": [{"metric_type": "stealth_rating", "value": 0.7}]}}),
                1 => json!({"specversion": "1.0", "id": format!("u-{n}"), "type": "ats.llm.usage",
                    "source": "bench", "time": format!("2026-11-{day:02}T09:00:00Z"), "subject": op,
                    "data": {"model": "openai/gpt-4o", "profile_id": op, "session_id": format!("s-{}", n - 1),
                             "task_type": "reconnaissance", "input_tokens": 1000, "output_tokens": 500}}),
                _ => json!({"specversion": "1.0", "id": format!("a-{n}"), "type": "ats.skill.assessed",
                    "source": "bench", "time": format!("2026-11-{day:02}T11:00:00Z"), "subject": op,
                    "data": {"operator_id": op, "skill": "reconnaissance", "score": 0.6}}),
            };
            let event: Envelope = parse_cloud_event(cloud).expect("a valid event");
            StoredEvent::new(n as u64 + 1, event)
        })
        .collect()
}

fn fold_one(bencher: Bencher, name: &str) {
    let projector: Arc<dyn Projector> = ats_projections::all_projectors()
        .into_iter()
        .find(|p| p.name() == name)
        .expect("a projector of that name");
    let batch = events();
    let db = sled::Config::new()
        .temporary(true)
        .open()
        .expect("a temporary sled database");
    let mut round = 0u64;
    bencher
        .counter(ItemsCount::new(BATCH))
        .with_inputs(|| {
            round += 1;
            db.open_tree(format!("{name}-{round}")).expect("a tree")
        })
        .bench_local_values(|tree| {
            fold_batch(projector.as_ref(), &tree, &batch).expect("the batch applies")
        });
}

#[divan::bench(args = ["profiles_v3", "progress_v2", "costs_v5", "activity_v1"])]
fn fold_1000(bencher: Bencher, name: &str) {
    fold_one(bencher, name);
}
