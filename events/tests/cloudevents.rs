//! The CloudEvents 1.0 edge: what `parse_cloud_event` accepts, and how it names what it rejects.

// A test fails by panicking: `unwrap` is its assertion.
#![allow(clippy::unwrap_used)]

use ats_events::cloudevents::{parse_cloud_event, to_cloud_event, ID_NAMESPACE, MAX_ID_LEN};
use ats_events::{
    EventKind, MetricType, Payload, SessionCompleted, SessionMetric, Timestamp, CURRENT_SCHEMA,
};
use serde_json::{json, Value};
use uuid::Uuid;

/// The example of DOMAIN.md §A1, verbatim.
const DOMAIN_EXAMPLE: &str = r#"
{"specversion":"1.0","id":"sess-0001-done","type":"ats.session.completed","source":"orchestrator",
 "time":"2026-11-01T10:00:00Z","subject":"op_001","datacontenttype":"application/json",
 "data":{"session_id":"sess-0001","operator_id":"op_001","scenario_id":"pentest_001",
         "start_time":"2026-11-01T08:00:00Z","end_time":"2026-11-01T10:00:00Z",
         "duration_seconds":7200,"success":true,"score":0.85,"cost":2.5,
         "skills_practiced":["reconnaissance","exploitation"],
         "objectives_completed":8,"objectives_total":10,
         "metrics":[{"metric_type":"stealth_rating","value":0.7}]}}
"#;

/// `Uuid::new_v5(ID_NAMESPACE, "sess-0001-done")`, computed independently (Python `uuid.uuid5`).
/// Pinned: event ids derived from producers' ids must never change, or retries stop deduplicating.
const DOMAIN_EXAMPLE_ID: &str = "179d0591-c8ec-590b-8980-8873da80fb71";

/// 2026-11-01T08:00:00Z and 10:00:00Z in microseconds since the epoch.
const EIGHT_AM: i64 = 1_793_520_000_000_000;
const TEN_AM: i64 = 1_793_527_200_000_000;

fn domain_example() -> Value {
    serde_json::from_str(DOMAIN_EXAMPLE).unwrap()
}

fn cloud_event(kind: &str, subject: Option<&str>, data: Value) -> Value {
    let mut event = json!({
        "specversion": "1.0", "id": "evt-1", "type": kind, "source": "orchestrator",
        "time": "2026-11-01T10:00:00Z", "data": data,
    });
    if let Some(subject) = subject {
        event["subject"] = json!(subject);
    }
    event
}

fn skill_assessed() -> Value {
    cloud_event(
        "ats.skill.assessed",
        Some("op_001"),
        json!({"operator_id": "op_001", "skill": "reconnaissance", "score": 0.8}),
    )
}

fn llm_usage() -> Value {
    cloud_event(
        "ats.llm.usage",
        Some("op_001"),
        json!({
            "model": "openai/gpt-4o", "profile_id": "op_001", "session_id": "sess-0001",
            "task_type": "reconnaissance", "input_tokens": 1200, "output_tokens": 300,
        }),
    )
}

fn global_budget() -> Value {
    cloud_event(
        "ats.budget.set",
        None,
        json!({"scope": "global", "amount": 100.0, "period": "monthly"}),
    )
}

/// `event` with the value at a JSON pointer (`/data/score`) set; the parent must exist.
fn set(mut event: Value, pointer: &str, value: Value) -> Value {
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    let object = event.pointer_mut(parent).unwrap().as_object_mut().unwrap();
    object.insert(key.to_owned(), value);
    event
}

/// `event` without the member at a JSON pointer; the member must exist.
fn remove(mut event: Value, pointer: &str) -> Value {
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    let object = event.pointer_mut(parent).unwrap().as_object_mut().unwrap();
    assert!(
        object.remove(key).is_some(),
        "{pointer} is not in the event"
    );
    event
}

/// Asserts `event` is rejected naming `field`, with a reason containing every fragment.
#[track_caller]
fn check_rejected(case: &str, event: Value, field: &str, fragments: &[&str]) {
    let err = match parse_cloud_event(event) {
        Ok(parsed) => panic!("{case}: accepted, as {parsed:?}"),
        Err(err) => err,
    };
    assert_eq!(
        err.field, field,
        "{case}: wrong field, reason {:?}",
        err.reason
    );
    for fragment in fragments {
        assert!(
            err.reason.contains(fragment),
            "{case}: reason {:?} lacks {fragment:?}",
            err.reason
        );
    }
    assert_eq!(
        err.to_string(),
        format!("{field}: {}", err.reason),
        "{case}"
    );
}

#[test]
fn rejected_events_name_the_field_and_the_problem() {
    let long_id = "x".repeat(MAX_ID_LEN + 1);
    let cases: Vec<(&str, Value, &str, &[&str])> = vec![
        (
            "not an object",
            json!(["an", "array"]),
            "",
            &["must be a JSON object", "an array"],
        ),
        (
            "specversion 0.3",
            set(skill_assessed(), "/specversion", json!("0.3")),
            "specversion",
            &["must be \"1.0\"", "\"0.3\""],
        ),
        (
            "missing specversion",
            remove(skill_assessed(), "/specversion"),
            "specversion",
            &["is required"],
        ),
        (
            "missing id",
            remove(skill_assessed(), "/id"),
            "id",
            &["is required"],
        ),
        (
            "empty id",
            set(skill_assessed(), "/id", json!("")),
            "id",
            &["must be 1 to 128 characters long", "got 0"],
        ),
        (
            "id of 129 characters",
            set(skill_assessed(), "/id", json!(long_id)),
            "id",
            &["must be 1 to 128 characters long", "got 129"],
        ),
        (
            "numeric id",
            set(skill_assessed(), "/id", json!(42)),
            "id",
            &["must be a string, got a number"],
        ),
        (
            "missing source",
            remove(skill_assessed(), "/source"),
            "source",
            &["is required"],
        ),
        (
            "missing time",
            remove(skill_assessed(), "/time"),
            "time",
            &["is required"],
        ),
        (
            "null time",
            set(skill_assessed(), "/time", Value::Null),
            "time",
            &["is required"],
        ),
        (
            "time without offset",
            set(skill_assessed(), "/time", json!("2026-11-01T10:00:00")),
            "time",
            &["invalid RFC 3339 date-time", "\"2026-11-01T10:00:00\""],
        ),
        (
            "time in month 13",
            set(skill_assessed(), "/time", json!("2026-13-01T10:00:00Z")),
            "time",
            &["invalid RFC 3339 date-time", "\"2026-13-01T10:00:00Z\""],
        ),
        (
            "time as epoch seconds",
            set(skill_assessed(), "/time", json!(1_793_527_200)),
            "time",
            &["must be a string, got a number"],
        ),
        (
            "xml content type",
            set(
                skill_assessed(),
                "/datacontenttype",
                json!("application/xml"),
            ),
            "datacontenttype",
            &["must be application/json", "\"application/xml\""],
        ),
        (
            "missing data",
            remove(skill_assessed(), "/data"),
            "data",
            &["is required"],
        ),
        (
            "data is an array",
            set(skill_assessed(), "/data", json!([0.8])),
            "data",
            &["must be an object, got an array"],
        ),
        (
            "data is a string",
            set(skill_assessed(), "/data", json!("score=0.8")),
            "data",
            &["must be an object, got a string"],
        ),
        (
            "missing score",
            remove(skill_assessed(), "/data/score"),
            "data.score",
            &["is required"],
        ),
        (
            "missing operator",
            remove(skill_assessed(), "/data/operator_id"),
            "data.operator_id",
            &["is required"],
        ),
        (
            "score as a string",
            set(skill_assessed(), "/data/score", json!("high")),
            "data.score",
            &["invalid type", "string \"high\""],
        ),
        (
            "score 1.5",
            set(skill_assessed(), "/data/score", json!(1.5)),
            "data.score",
            &["must be within 0..=1", "1.5"],
        ),
        (
            "score -0.1",
            set(skill_assessed(), "/data/score", json!(-0.1)),
            "data.score",
            &["must be within 0..=1", "-0.1"],
        ),
        (
            "blank skill",
            set(skill_assessed(), "/data/skill", json!("  ")),
            "data.skill",
            &["must not be empty"],
        ),
        (
            "unknown data field",
            set(skill_assessed(), "/data/colour", json!("red")),
            "data.colour",
            &["unknown field `colour`"],
        ),
        (
            "subject of another operator",
            set(skill_assessed(), "/subject", json!("op_002")),
            "subject",
            &["\"op_002\"", "\"op_001\""],
        ),
        (
            "negative input tokens",
            set(llm_usage(), "/data/input_tokens", json!(-1)),
            "data.input_tokens",
            &["invalid value", "-1"],
        ),
        (
            "fractional output tokens",
            set(llm_usage(), "/data/output_tokens", json!(2.5)),
            "data.output_tokens",
            &["invalid type", "2.5"],
        ),
        (
            "negative usage cost",
            set(llm_usage(), "/data/cost", json!(-0.01)),
            "data.cost",
            &["must not be negative", "-0.01"],
        ),
        (
            "model without provider",
            set(llm_usage(), "/data/model", json!("gpt-4o")),
            "data.model",
            &["provider/name", "\"gpt-4o\""],
        ),
        (
            "model with empty name",
            set(llm_usage(), "/data/model", json!("openai/")),
            "data.model",
            &["provider/name"],
        ),
        (
            "negative session cost",
            set(domain_example(), "/data/cost", json!(-2.5)),
            "data.cost",
            &["must not be negative", "-2.5"],
        ),
        (
            "end before start",
            set(
                domain_example(),
                "/data/end_time",
                json!("2026-11-01T07:59:59Z"),
            ),
            "data.end_time",
            &["2026-11-01T07:59:59Z is before start_time 2026-11-01T08:00:00Z"],
        ),
        (
            "more objectives than exist",
            set(domain_example(), "/data/objectives_completed", json!(11)),
            "data.objectives_completed",
            &["11 exceeds objectives_total 10"],
        ),
        (
            "unknown metric type",
            set(
                domain_example(),
                "/data/metrics/0/metric_type",
                json!("luck"),
            ),
            "data.metrics[0].metric_type",
            &["unknown variant `luck`"],
        ),
        (
            "global budget for an operator",
            set(global_budget(), "/data/entity_id", json!("op_001")),
            "data.entity_id",
            &["must be absent for a global budget"],
        ),
        (
            "profile budget for nobody",
            set(global_budget(), "/data/scope", json!("profile")),
            "data.entity_id",
            &["is required for a profile or session budget"],
        ),
        (
            "zero budget",
            set(global_budget(), "/data/amount", json!(0)),
            "data.amount",
            &["must be greater than 0"],
        ),
        (
            "unknown budget period",
            set(global_budget(), "/data/period", json!("yearly")),
            "data.period",
            &["unknown variant `yearly`"],
        ),
    ];
    for (case, event, field, fragments) in cases {
        check_rejected(case, event, field, fragments);
    }
}

#[test]
fn unknown_type_lists_every_known_kind() {
    let event = set(skill_assessed(), "/type", json!("ats.skill.forgotten"));
    let err = parse_cloud_event(event).unwrap_err();
    assert_eq!(err.field, "type");
    assert!(
        err.reason
            .starts_with("unknown event type \"ats.skill.forgotten\", expected one of "),
        "{}",
        err.reason
    );
    for kind in EventKind::ALL {
        assert!(
            err.reason.contains(kind.as_str()),
            "{} not listed",
            kind.as_str()
        );
    }
}

#[test]
fn the_domain_example_maps_every_field() {
    let event = parse_cloud_event(domain_example()).unwrap();

    let expected_id = Uuid::parse_str(DOMAIN_EXAMPLE_ID).unwrap();
    assert_eq!(event.id, expected_id);
    assert_eq!(event.id, Uuid::new_v5(&ID_NAMESPACE, b"sess-0001-done"));
    assert_eq!(event.id.get_version_num(), 5);
    assert_eq!(event.schema, CURRENT_SCHEMA);
    assert_eq!(event.occurred_at, Timestamp::from_micros(TEN_AM));
    assert_eq!(
        event.recorded_at,
        Timestamp::from_micros(0),
        "set by the log at append"
    );
    assert_eq!(event.source, "orchestrator");
    assert_eq!(event.operator_id.as_deref(), Some("op_001"));
    assert_eq!(event.kind(), EventKind::SessionCompleted);
    assert_eq!(
        event.payload,
        Payload::SessionCompleted(SessionCompleted {
            session_id: "sess-0001".into(),
            operator_id: "op_001".into(),
            scenario_id: "pentest_001".into(),
            start_time: Timestamp::from_micros(EIGHT_AM),
            end_time: Timestamp::from_micros(TEN_AM),
            duration_seconds: 7200.0,
            success: true,
            score: 0.85,
            cost: 2.5,
            skills_practiced: vec!["reconnaissance".into(), "exploitation".into()],
            objectives_completed: 8,
            objectives_total: 10,
            metrics: vec![SessionMetric {
                metric_type: MetricType::StealthRating,
                value: 0.7,
            }],
            difficulty: None,
        })
    );

    // The same producer id always gives the same event id: a retry is a duplicate.
    assert_eq!(parse_cloud_event(domain_example()).unwrap(), event);
}

#[test]
fn the_domain_example_renders_back_with_its_derived_id() {
    let event = parse_cloud_event(domain_example()).unwrap();
    let rendered = to_cloud_event(&event);
    assert_eq!(rendered["specversion"], "1.0");
    assert_eq!(rendered["id"], DOMAIN_EXAMPLE_ID);
    assert_eq!(rendered["type"], "ats.session.completed");
    assert_eq!(rendered["source"], "orchestrator");
    assert_eq!(rendered["time"], "2026-11-01T10:00:00Z");
    assert_eq!(rendered["subject"], "op_001");
    assert_eq!(rendered["datacontenttype"], "application/json");
    assert_eq!(rendered["data"]["start_time"], "2026-11-01T08:00:00Z");
    assert_eq!(
        rendered["data"]["metrics"],
        json!([{"metric_type": "stealth_rating", "value": 0.7}])
    );
    assert_eq!(parse_cloud_event(rendered).unwrap(), event);
}

#[test]
fn a_uuid_id_is_kept_as_is() {
    let id = "0b4f3c9e-8d2a-4f6b-9c1e-3a5d7f9b2c40";
    let event = parse_cloud_event(set(skill_assessed(), "/id", json!(id))).unwrap();
    assert_eq!(event.id, Uuid::parse_str(id).unwrap());
    assert_eq!(event.id.to_string(), id);
}

#[test]
fn other_string_ids_become_distinct_v5_uuids() {
    let first = parse_cloud_event(set(skill_assessed(), "/id", json!("evt-1"))).unwrap();
    let second = parse_cloud_event(set(skill_assessed(), "/id", json!("evt-2"))).unwrap();
    assert_eq!(first.id, Uuid::new_v5(&ID_NAMESPACE, b"evt-1"));
    assert_ne!(first.id, second.id);
}

#[test]
fn an_id_of_exactly_128_characters_is_accepted() {
    let id = "x".repeat(MAX_ID_LEN);
    let event = parse_cloud_event(set(skill_assessed(), "/id", json!(id))).unwrap();
    assert_eq!(event.id, Uuid::new_v5(&ID_NAMESPACE, id.as_bytes()));
}

#[test]
fn an_id_limit_counts_characters_not_bytes() {
    // DOMAIN.md §A1 and the JSON Schema (`maxLength`) count characters; `é` is two bytes.
    let id = "é".repeat(MAX_ID_LEN);
    let event = parse_cloud_event(set(skill_assessed(), "/id", json!(id))).unwrap();
    assert_eq!(event.id, Uuid::new_v5(&ID_NAMESPACE, id.as_bytes()));

    let too_long = "é".repeat(MAX_ID_LEN + 1);
    check_rejected(
        "129 two-byte characters",
        set(skill_assessed(), "/id", json!(too_long)),
        "id",
        &["must be 1 to 128 characters long, got 129"],
    );
}

#[test]
fn time_with_an_offset_is_stored_in_utc() {
    let event = set(
        skill_assessed(),
        "/time",
        json!("2026-11-01T12:00:00+02:00"),
    );
    assert_eq!(
        parse_cloud_event(event).unwrap().occurred_at,
        Timestamp::from_micros(TEN_AM)
    );
}

#[test]
fn optional_fields_take_their_defaults() {
    let event = parse_cloud_event(llm_usage()).unwrap();
    let Payload::LlmUsage(usage) = event.payload else {
        panic!("not llm.usage: {:?}", event.payload)
    };
    assert!(usage.success, "success defaults to true");
    assert_eq!(usage.cached_input_tokens, 0);
    assert_eq!((usage.latency_ms, usage.cost), (None, None));
    assert_eq!(
        (usage.error_message, usage.scenario_id, usage.phase),
        (None, None, None)
    );
}

#[test]
fn subject_is_optional_and_ignored_by_kinds_without_an_operator() {
    let without = parse_cloud_event(remove(skill_assessed(), "/subject")).unwrap();
    assert_eq!(
        without.operator_id.as_deref(),
        Some("op_001"),
        "taken from data"
    );

    let budget = parse_cloud_event(set(global_budget(), "/subject", json!("anyone"))).unwrap();
    assert_eq!(budget.operator_id, None);
}

#[test]
fn a_profile_budget_is_about_its_operator() {
    let event = set(global_budget(), "/data/scope", json!("profile"));
    let event = set(event, "/data/entity_id", json!("op_001"));
    let event = set(event, "/subject", json!("op_001"));
    assert_eq!(
        parse_cloud_event(event).unwrap().operator_id.as_deref(),
        Some("op_001")
    );

    let session = set(global_budget(), "/data/scope", json!("session"));
    let session = set(session, "/data/entity_id", json!("op_001"));
    assert_eq!(parse_cloud_event(session).unwrap().operator_id, None);
}
