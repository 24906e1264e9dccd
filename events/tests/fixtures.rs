//! Golden MessagePack bytes: one checked-in fixture per event kind.
//!
//! Each kind has a realistic sample with every optional field set (built by [`payload`]).
//! The tests check that today's encoder writes exactly the checked-in bytes, and that the
//! checked-in bytes still decode to the sample, so an accidental change to the wire format
//! is caught before it reaches a log.
//!
//! `UPDATE_FIXTURES=1 cargo test -p ats-events --test fixtures` rewrites the files. Do that for
//! a new kind or a new sample; changing the bytes of an existing kind means old logs no longer
//! read the same, which needs a schema version and an upcaster (see `codec`), not a rewrite.

// A test fails by panicking: `unwrap` is its assertion.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::OnceLock;

use ats_events::cloudevents::event_id;
use ats_events::{
    codec, AlertAcknowledged, ApiKeyIssued, ApiKeyRevoked, Attributes, BenchmarkSet, BudgetPeriod,
    BudgetScope, BudgetSet, CertificationAwarded, Envelope, EventKind, GoalCreated, GoalProgressed,
    LeaderboardScored, LlmUsage, MetricRecorded, MetricType, MilestoneRegistered, MilestoneType,
    ModelPriced, OperatorRegistered, Payload, ReportDeleted, ReportGenerated,
    ReportTemplateRegistered, ReportType, Scope, SessionCompleted, SessionMetric, SessionStarted,
    SkillAssessed, Timestamp, Validate, XpAwarded,
};
use serde_json::{json, Value};

fn at(text: &str) -> Timestamp {
    Timestamp::parse_rfc3339(text).unwrap()
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// A JSON object literal as [`Attributes`]; keys are written sorted, as a `BTreeMap` keeps them.
fn attributes(value: Value) -> Attributes {
    let Value::Object(map) = value else {
        panic!("attributes must be a JSON object, got {value}")
    };
    map.into_iter().collect()
}

const REPORT_ID: &str = "5b0f7d1e-2c4a-4e8b-9f31-7a6c2d9e0b14";

/// The sample payload of `kind`: realistic values, every optional field set.
///
/// An exhaustive `match`, so a new kind does not compile until it has a sample.
fn payload(kind: EventKind) -> Payload {
    match kind {
        EventKind::OperatorRegistered => Payload::OperatorRegistered(OperatorRegistered {
            operator_id: "op_001".into(),
            name: "Ada Ortiz".into(),
            team: Some("red-team-alpha".into()),
            specializations: strings(&["reconnaissance", "exploitation"]),
            metadata: attributes(json!({"clearance": "secret", "hired": "2024-03-01", "shift": 2})),
        }),
        EventKind::SessionStarted => Payload::SessionStarted(SessionStarted {
            session_id: "sess-0001".into(),
            operator_id: "op_001".into(),
            scenario_id: "pentest_001".into(),
            start_time: at("2026-11-01T08:00:00Z"),
            difficulty: Some(0.6),
        }),
        EventKind::SessionCompleted => Payload::SessionCompleted(SessionCompleted {
            session_id: "sess-0001".into(),
            operator_id: "op_001".into(),
            scenario_id: "pentest_001".into(),
            start_time: at("2026-11-01T08:00:00Z"),
            end_time: at("2026-11-01T10:00:00Z"),
            duration_seconds: 7200.0,
            success: true,
            score: 0.85,
            cost: 2.5,
            skills_practiced: strings(&["reconnaissance", "exploitation"]),
            objectives_completed: 8,
            objectives_total: 10,
            metrics: vec![
                SessionMetric {
                    metric_type: MetricType::StealthRating,
                    value: 0.7,
                },
                SessionMetric {
                    metric_type: MetricType::DecisionQuality,
                    value: 0.9,
                },
            ],
            difficulty: Some(0.6),
        }),
        EventKind::MetricRecorded => Payload::MetricRecorded(MetricRecorded {
            operator_id: "op_001".into(),
            session_id: "sess-0001".into(),
            metric_type: MetricType::StealthRating,
            value: 0.72,
            scenario_id: Some("pentest_001".into()),
            context: attributes(json!({"alerts_triggered": 3, "detector": "ids-suricata"})),
        }),
        EventKind::SkillAssessed => Payload::SkillAssessed(SkillAssessed {
            operator_id: "op_001".into(),
            skill: "exploitation".into(),
            score: 0.64,
        }),
        EventKind::LlmUsage => Payload::LlmUsage(LlmUsage {
            model: "openrouter/openai/gpt-4o".into(),
            profile_id: "op_001".into(),
            session_id: "sess-0001".into(),
            task_type: "exploitation".into(),
            input_tokens: 1520,
            output_tokens: 430,
            cached_input_tokens: 512,
            latency_ms: Some(1834.5),
            success: false,
            error_message: Some("rate limited by provider".into()),
            scenario_id: Some("pentest_001".into()),
            phase: Some("exploitation".into()),
            cost: Some(0.0123),
        }),
        EventKind::ModelPriced => Payload::ModelPriced(ModelPriced {
            provider: "openai".into(),
            name: "gpt-4o-mini".into(),
            cost_per_1k_input_tokens: 0.00015,
            cost_per_1k_output_tokens: 0.0006,
            cost_per_1k_cached_input_tokens: Some(0.000075),
            effective_from: at("2026-10-01T00:00:00Z"),
            display_name: Some("GPT-4o mini".into()),
            tier: Some("standard".into()),
            capabilities: strings(&["chat", "tools", "vision"]),
            context_window: Some(128_000),
            reasoning_score: Some(0.72),
            speed_score: Some(0.91),
            recommended_for: strings(&["reconnaissance", "reporting"]),
        }),
        EventKind::BudgetSet => Payload::BudgetSet(BudgetSet {
            scope: BudgetScope::Profile,
            entity_id: Some("op_001".into()),
            amount: 50.0,
            period: BudgetPeriod::Monthly,
            thresholds: vec![0.5, 0.75, 0.9, 1.0],
        }),
        EventKind::BenchmarkSet => Payload::BenchmarkSet(BenchmarkSet {
            benchmark_id: "bm-stealth-senior".into(),
            metric_type: MetricType::StealthRating,
            value: 0.8,
            context: attributes(json!({"cohort": "senior", "source": "2025 assessment"})),
        }),
        EventKind::MilestoneRegistered => Payload::MilestoneRegistered(MilestoneRegistered {
            id: "ms-hours-100".into(),
            name: "Centurion".into(),
            description: Some("Train for 100 hours".into()),
            milestone_type: MilestoneType::HoursTrained,
            requirements: attributes(json!({"hours": 100})),
            xp_reward: 500,
            badge_icon: Some("🏅".into()),
        }),
        EventKind::GoalCreated => Payload::GoalCreated(GoalCreated {
            goal_id: "goal-007".into(),
            operator_id: "op_001".into(),
            name: "Stealth 0.9".into(),
            description: Some("Reach a stealth rating of 0.9 before the audit".into()),
            target_value: 0.9,
            unit: Some("score".into()),
            deadline: Some(at("2026-12-31T23:59:59Z")),
        }),
        EventKind::GoalProgressed => Payload::GoalProgressed(GoalProgressed {
            goal_id: "goal-007".into(),
            value: 0.78,
        }),
        EventKind::CertificationAwarded => Payload::CertificationAwarded(CertificationAwarded {
            operator_id: "op_001".into(),
            certification_id: "oscp".into(),
        }),
        EventKind::XpAwarded => Payload::XpAwarded(XpAwarded {
            operator_id: "op_001".into(),
            amount: 250,
            reason: "mentored two junior operators".into(),
        }),
        EventKind::LeaderboardScored => Payload::LeaderboardScored(LeaderboardScored {
            category: "ctf_points".into(),
            operator_id: "op_001".into(),
            score: 1337.5,
        }),
        EventKind::ReportGenerated => Payload::ReportGenerated(ReportGenerated {
            report_id: REPORT_ID.into(),
            report_type: ReportType::OperatorProgress,
            parameters: attributes(json!({"operator_id": "op_001", "time_range": "30d"})),
            title: "Progress of Ada Ortiz".into(),
            description: Some("Last 30 days".into()),
            data: json!({
                "operator_id": "op_001",
                "sessions": 12,
                "skills": [{"level": "advanced", "name": "reconnaissance"}],
                "success_rate": 0.75,
            }),
            as_of: attributes(json!({"operators": 1042, "sessions": 1040})),
        }),
        EventKind::ReportDeleted => Payload::ReportDeleted(ReportDeleted {
            report_id: REPORT_ID.into(),
        }),
        EventKind::AlertAcknowledged => Payload::AlertAcknowledged(AlertAcknowledged {
            alert_id: "alert-budget-op_001-0.9".into(),
            by: Some("lead_007".into()),
        }),
        EventKind::ReportTemplateRegistered => {
            Payload::ReportTemplateRegistered(ReportTemplateRegistered {
                name: "team-brief".into(),
                media_type: "text/markdown".into(),
                template: "# {{ title }}\n{% for op in data.operators %}- {{ op.name }}: {{ op.xp }} XP\n{% endfor %}".into(),
                description: Some("One line per operator".into()),
            })
        }
        EventKind::ApiKeyIssued => Payload::ApiKeyIssued(ApiKeyIssued {
            key_id: "3f2a9c41d07be815".into(),
            name: "grafana".into(),
            scopes: vec![Scope::Read],
            secret_sha256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
                .into(),
            rate_limit_per_minute: Some(600),
        }),
        EventKind::ApiKeyRevoked => Payload::ApiKeyRevoked(ApiKeyRevoked {
            key_id: "3f2a9c41d07be815".into(),
            reason: Some("rotated".into()),
        }),
    }
}

/// The sample envelope of `kind`, as the log stores it (recorded, with a sub-second time).
fn sample(kind: EventKind) -> Envelope {
    let id = event_id(&format!("fixture-{}", kind.as_str()));
    let mut event = Envelope::new(
        id,
        at("2026-11-01T10:00:00.250Z"),
        "orchestrator",
        payload(kind),
    );
    event.recorded_at = at("2026-11-01T10:00:01.500017Z");
    event
}

fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn file_name(kind: EventKind) -> String {
    format!("{}.msgpack", kind.as_str())
}

fn updating() -> bool {
    std::env::var("UPDATE_FIXTURES").is_ok_and(|v| v == "1")
}

/// The checked-in bytes of `kind`. With `UPDATE_FIXTURES=1`, every fixture is (re)written
/// once, before any test reads one.
fn fixture(kind: EventKind) -> Vec<u8> {
    static WRITTEN: OnceLock<()> = OnceLock::new();
    if updating() {
        WRITTEN.get_or_init(|| {
            std::fs::create_dir_all(fixture_dir()).unwrap();
            for &kind in EventKind::ALL {
                let bytes = codec::encode(&sample(kind)).unwrap();
                std::fs::write(fixture_dir().join(file_name(kind)), bytes).unwrap();
            }
        });
    }
    let path = fixture_dir().join(file_name(kind));
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read {}: {e} (UPDATE_FIXTURES=1 writes it)",
            path.display()
        )
    })
}

#[test]
fn encoding_matches_the_golden_bytes() {
    let changed: Vec<&str> = EventKind::ALL
        .iter()
        .filter(|&&kind| codec::encode(&sample(kind)).unwrap() != fixture(kind))
        .map(|kind| kind.as_str())
        .collect();
    assert!(
        changed.is_empty(),
        "the encoding of {changed:?} differs from tests/fixtures; old logs would not read the same \
         (bump the schema and add an upcaster), or rerun with UPDATE_FIXTURES=1 for a new sample"
    );
}

#[test]
fn golden_bytes_decode_to_the_samples() {
    for &kind in EventKind::ALL {
        let decoded = codec::decode(&fixture(kind))
            .unwrap_or_else(|e| panic!("fixture of {} does not decode: {e}", kind.as_str()));
        assert_eq!(decoded, sample(kind), "fixture of {}", kind.as_str());
    }
}

#[test]
fn every_kind_has_a_fixture_and_every_fixture_a_kind() {
    for &kind in EventKind::ALL {
        assert!(
            !fixture(kind).is_empty(),
            "empty fixture for {}",
            kind.as_str()
        );
    }
    let on_disk: BTreeSet<String> = std::fs::read_dir(fixture_dir())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let expected: BTreeSet<String> = EventKind::ALL.iter().map(|&k| file_name(k)).collect();
    assert_eq!(on_disk, expected);
    // The 17 kinds of DOMAIN.md §A1, ats.leaderboard.scored (custom leaderboards, issue 6),
    // ats.report.template.registered (custom report templates, issue 7) and
    // ats.apikey.issued/revoked (API keys, issue 9).
    assert_eq!(expected.len(), 21);
}

#[test]
fn samples_are_valid_of_their_kind_and_fully_populated() {
    for &kind in EventKind::ALL {
        let event = sample(kind);
        assert_eq!(event.kind(), kind);
        event
            .payload
            .validate()
            .unwrap_or_else(|e| panic!("sample of {} is invalid: {e}", kind.as_str()));
        let Value::Object(data) = event.payload.data_json() else {
            panic!("data of {} is not an object", kind.as_str())
        };
        for (field, value) in &data {
            let empty = match value {
                Value::Null => true,
                Value::Array(items) => items.is_empty(),
                Value::Object(map) => map.is_empty(),
                _ => false,
            };
            assert!(!empty, "sample of {} leaves {field} unset", kind.as_str());
        }
    }
}

#[test]
fn samples_of_kinds_with_an_operator_carry_it() {
    let with_operator: Vec<&str> = EventKind::ALL
        .iter()
        .filter(|&&kind| sample(kind).operator_id.as_deref() == Some("op_001"))
        .map(|kind| kind.as_str())
        .collect();
    assert_eq!(
        with_operator,
        [
            "ats.operator.registered",
            "ats.session.started",
            "ats.session.completed",
            "ats.metric.recorded",
            "ats.skill.assessed",
            "ats.llm.usage",
            "ats.budget.set",
            "ats.goal.created",
            "ats.certification.awarded",
            "ats.xp.awarded",
            "ats.leaderboard.scored",
        ]
    );
}
