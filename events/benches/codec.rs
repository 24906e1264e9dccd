//! Micro-benchmarks of the codec and the JSON edge (`cargo bench -p ats-events`): what one
//! event costs to parse from a CloudEvent, encode, decode, and to read back from a record.

use ats_events::cloudevents::{parse_cloud_event, parse_cloud_event_ref, CloudEventRef};
use ats_events::{codec, Envelope};
use divan::counter::ItemsCount;
use divan::{black_box, Bencher};
use serde_json::{json, Value};

fn main() {
    divan::main();
}

/// A completed session as a CloudEvent, the most common and the largest kind.
fn cloud_event(n: usize) -> Value {
    json!({"specversion": "1.0", "id": format!("s-{n}"), "type": "ats.session.completed",
           "source": "bench", "time": "2026-11-01T10:00:00Z", "subject": format!("op_{}", n % 50),
           "data": {"session_id": format!("s-{n}"), "operator_id": format!("op_{}", n % 50),
                    "scenario_id": "pentest_001", "start_time": "2026-11-01T08:00:00Z",
                    "end_time": "2026-11-01T10:00:00Z", "duration_seconds": 7200,
                    "success": true, "score": 0.8, "cost": 2.5,
                    "skills_practiced": ["reconnaissance", "exploitation"],
                    "objectives_completed": 8, "objectives_total": 10,
                    "metrics": [{"metric_type": "stealth_rating", "value": 0.7}]}})
}

fn event(n: usize) -> Envelope {
    parse_cloud_event(cloud_event(n)).expect("a valid event")
}

#[divan::bench]
fn parse_json(bencher: Bencher) {
    let text = cloud_event(1).to_string();
    bencher.bench(|| {
        let value: Value = serde_json::from_str(black_box(&text)).expect("JSON");
        parse_cloud_event(value).expect("a valid event")
    });
}

/// The intake's path for valid bodies: attributes borrowed, `data` parsed straight into the
/// payload type.
#[divan::bench]
fn parse_json_borrowed(bencher: Bencher) {
    let text = cloud_event(1).to_string();
    bencher.bench(|| {
        let event: CloudEventRef<'_> = serde_json::from_str(black_box(&text)).expect("JSON");
        parse_cloud_event_ref(event).expect("a valid event")
    });
}

#[divan::bench]
fn encode(bencher: Bencher) {
    let e = event(1);
    bencher.bench(|| codec::encode(black_box(&e)).expect("encodes"));
}

#[divan::bench]
fn decode(bencher: Bencher) {
    let bytes = codec::encode(&event(1)).expect("encodes");
    bencher.bench(|| codec::decode(black_box(&bytes)).expect("decodes"));
}

#[divan::bench]
fn content_digest(bencher: Bencher) {
    let e = event(1);
    bencher.bench(|| black_box(&e).content_digest());
}

/// A record of 1,000 events (one JetStream message, one redb batch) split and decoded.
#[divan::bench]
fn decode_record_of_1000(bencher: Bencher) {
    let encoded: Vec<Vec<u8>> = (0..1000)
        .map(|n| codec::encode(&event(n)).expect("encodes"))
        .collect();
    let record = codec::encode_record(encoded.iter().map(Vec::as_slice));
    bencher.counter(ItemsCount::new(1000usize)).bench(|| {
        codec::decode_record(black_box(&record))
            .expect("a record")
            .into_iter()
            .map(|bytes| codec::decode(bytes).expect("decodes"))
            .collect::<Vec<_>>()
    });
}
