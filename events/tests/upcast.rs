//! The upcaster mechanism of `codec::decode_with`, exercised with a test-only chain.
//!
//! The released build has no upcaster yet (schema 1 is the first version), so these tests
//! pretend that schema 2 renamed `skill_name` to `skill` in `ats.skill.assessed`, and write
//! schema-1 bytes by hand with a struct mirroring `Envelope`.

// A test fails by panicking: `unwrap` is its assertion.
#![allow(clippy::unwrap_used)]

use ats_events::codec::{self, CodecError, Upcaster};
use ats_events::{Envelope, Payload, SkillAssessed, Timestamp, CURRENT_SCHEMA};
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

const ID: Uuid = Uuid::from_u128(0x0b4f_3c9e_8d2a_4f6b_9c1e_3a5d_7f9b_2c40);
const OCCURRED: Timestamp = Timestamp::from_micros(1_793_527_200_000_000);
const RECORDED: Timestamp = Timestamp::from_micros(1_793_527_201_500_000);

/// `Envelope` as schema 1 wrote it, with a payload of another shape.
#[derive(Serialize)]
struct OldEnvelope<P> {
    id: Uuid,
    schema: u16,
    occurred_at: Timestamp,
    recorded_at: Timestamp,
    source: String,
    operator_id: Option<String>,
    payload: P,
}

#[derive(Serialize)]
enum OldPayload {
    #[serde(rename = "ats.skill.assessed")]
    SkillAssessed(OldSkillAssessed),
}

#[derive(Serialize)]
struct OldSkillAssessed {
    operator_id: String,
    skill_name: String,
    score: f64,
}

fn bytes_with<P: Serialize>(schema: u16, payload: P) -> Vec<u8> {
    let old = OldEnvelope {
        id: ID,
        schema,
        occurred_at: OCCURRED,
        recorded_at: RECORDED,
        source: "orchestrator".into(),
        operator_id: Some("op_001".into()),
        payload,
    };
    rmp_serde::to_vec_named(&old).unwrap()
}

/// A schema-1 `ats.skill.assessed` of the old shape.
fn old_bytes(schema: u16) -> Vec<u8> {
    let payload = OldPayload::SkillAssessed(OldSkillAssessed {
        operator_id: "op_001".into(),
        skill_name: "reconnaissance".into(),
        score: 0.8,
    });
    bytes_with(schema, payload)
}

/// Schema 1 → 2: `ats.skill.assessed` renames `skill_name` to `skill`; other kinds are unchanged.
fn rename_skill_name(kind: &str, data: &mut Value) -> Result<(), String> {
    if kind != "ats.skill.assessed" {
        return Ok(());
    }
    let Value::Object(fields) = data else {
        return Err(format!("data is not an object: {data}"));
    };
    if let Some(skill) = fields.remove("skill_name") {
        fields.insert("skill".into(), skill);
    }
    Ok(())
}

fn refuse(_kind: &str, _data: &mut Value) -> Result<(), String> {
    Err("cannot guess the skill".into())
}

const CHAIN: &[Upcaster] = &[rename_skill_name];

fn assessed(skill: &str) -> Payload {
    Payload::SkillAssessed(SkillAssessed {
        operator_id: "op_001".into(),
        skill: skill.into(),
        score: 0.8,
    })
}

#[test]
fn an_old_payload_is_upcast_to_the_chain_s_schema() {
    let event = codec::decode_with(&old_bytes(1), CHAIN).unwrap();
    assert_eq!(
        event,
        Envelope {
            id: ID,
            schema: 2,
            occurred_at: OCCURRED,
            recorded_at: RECORDED,
            source: "orchestrator".into(),
            operator_id: Some("op_001".into()),
            payload: assessed("reconnaissance"),
        }
    );
}

#[test]
fn without_the_upcaster_the_old_shape_does_not_decode() {
    let err = codec::decode(&old_bytes(1)).unwrap_err();
    assert!(
        matches!(&err, CodecError::Decode(reason) if reason.contains("skill_name")),
        "{err:?}"
    );
}

#[test]
fn an_event_at_the_chain_s_schema_is_not_upcast() {
    // Schema 2 already has `skill`: decoded as is, the upcaster is not asked.
    let mut event = Envelope::new(ID, OCCURRED, "orchestrator", assessed("exploitation"));
    event.schema = 2;
    let refusing: &[Upcaster] = &[refuse];
    let decoded = codec::decode_with(&codec::encode(&event).unwrap(), refusing).unwrap();
    assert_eq!(decoded, event);
}

#[test]
fn a_schema_1_event_of_todays_shape_passes_through_the_chain() {
    let event = Envelope::new(ID, OCCURRED, "orchestrator", assessed("exploitation"));
    assert_eq!(event.schema, 1);
    let decoded = codec::decode_with(&codec::encode(&event).unwrap(), CHAIN).unwrap();
    assert_eq!(decoded, Envelope { schema: 2, ..event });
}

#[test]
fn only_the_steps_after_the_event_s_schema_run() {
    // Schema 1 → 2 refuses, 2 → 3 renames: bytes written at schema 2 take only the second step.
    let chain: &[Upcaster] = &[refuse, rename_skill_name];
    let event = codec::decode_with(&old_bytes(2), chain).unwrap();
    assert_eq!(event.schema, 3);
    assert_eq!(event.payload, assessed("reconnaissance"));
    assert!(matches!(
        codec::decode_with(&old_bytes(1), chain),
        Err(CodecError::Upcast { from: 1, .. })
    ));
}

#[test]
fn a_refusing_upcaster_names_the_kind_and_version() {
    let chain: &[Upcaster] = &[refuse];
    match codec::decode_with(&old_bytes(1), chain) {
        Err(CodecError::Upcast { kind, from, reason }) => {
            assert_eq!(kind, "ats.skill.assessed");
            assert_eq!(from, 1);
            assert_eq!(reason, "cannot guess the skill");
        }
        other => panic!("expected an upcast error, got {other:?}"),
    }
}

#[test]
fn a_future_schema_is_refused() {
    let mut event = Envelope::new(ID, OCCURRED, "orchestrator", assessed("exploitation"));
    event.schema = 99;
    let bytes = codec::encode(&event).unwrap();
    assert!(matches!(
        codec::decode(&bytes),
        Err(CodecError::FutureSchema { found: 99 })
    ));
    assert!(matches!(
        codec::decode_with(&bytes, CHAIN),
        Err(CodecError::FutureSchema { found: 99 })
    ));
    let err = codec::decode(&bytes).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("event schema 99 is newer than this build's {CURRENT_SCHEMA}")
    );
}

#[test]
fn garbage_is_a_decode_error() {
    let valid = codec::encode(&Envelope::new(ID, OCCURRED, "orchestrator", assessed("x"))).unwrap();
    let garbage: [&[u8]; 5] = [
        b"",
        b"\xc1",                   // a byte MessagePack never uses
        b"not msgpack at all",     // a fixstr length byte, then too little text
        &[0x92, 0x01, 0x02],       // an array, not a map
        &valid[..valid.len() / 2], // truncated
    ];
    for bytes in garbage {
        let err = codec::decode(bytes).unwrap_err();
        assert!(matches!(err, CodecError::Decode(_)), "{bytes:?}: {err:?}");
        assert!(
            err.to_string().starts_with("cannot decode event: "),
            "{err}"
        );
    }
}

#[test]
fn a_payload_of_an_unknown_kind_is_a_decode_error() {
    let payload = serde_json::json!({"ats.skill.forgotten": {"operator_id": "op_001"}});
    let bytes = bytes_with(1, payload);
    assert!(matches!(
        codec::decode(&bytes),
        Err(CodecError::Decode(reason)) if reason.contains("ats.skill.forgotten")
    ));
}
