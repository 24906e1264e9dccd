//! Property tests of the codecs: MessagePack, CloudEvents JSON, batch records, and the digest.
//!
//! The strategies produce valid events (those `parse_cloud_event` accepts) of nine kinds, with
//! arbitrary Unicode strings, finite floats and timestamps within the years 2000 to 2100.

// A test fails by panicking: `unwrap` is its assertion.
#![allow(clippy::unwrap_used)]

use ats_events::cloudevents::{
    parse_cloud_event, parse_cloud_event_ref, to_cloud_event, CloudEventRef,
};
use ats_events::codec::{self, decode_record, encode_record};
use ats_events::{
    Attributes, BudgetPeriod, BudgetScope, BudgetSet, Envelope, GoalCreated, LlmUsage,
    MetricRecorded, MetricType, ModelPriced, OperatorRegistered, Payload, ReportGenerated,
    ReportType, SessionCompleted, SessionMetric, SkillAssessed, Timestamp,
};
use proptest::collection::{btree_map, vec};
use proptest::num::f64::{NEGATIVE, NORMAL, POSITIVE, SUBNORMAL, ZERO};
use proptest::option;
use proptest::prelude::*;
use serde_json::Value;
use uuid::Uuid;

/// 2000-01-01T00:00:00Z and 2100-01-01T00:00:00Z in microseconds since the epoch.
const Y2000: i64 = 946_684_800_000_000;
const Y2100: i64 = 4_102_444_800_000_000;

fn timestamp() -> impl Strategy<Value = Timestamp> {
    (Y2000..Y2100).prop_map(Timestamp::from_micros)
}

/// Any Unicode text without control characters, possibly empty.
fn text() -> impl Strategy<Value = String> {
    "\\PC{0,16}"
}

/// An identifier: Unicode text that is not blank (at most 64 bytes, under every limit).
fn ident() -> BoxedStrategy<String> {
    "\\PC{1,16}"
        .prop_filter("identifiers are not blank", |s| !s.trim().is_empty())
        .boxed()
}

fn idents() -> impl Strategy<Value = Vec<String>> {
    vec(ident(), 0..4)
}

fn finite() -> impl Strategy<Value = f64> {
    POSITIVE | NEGATIVE | NORMAL | SUBNORMAL | ZERO
}

fn non_negative() -> impl Strategy<Value = f64> {
    POSITIVE | NORMAL | SUBNORMAL | ZERO
}

fn positive() -> impl Strategy<Value = f64> {
    POSITIVE | NORMAL | SUBNORMAL
}

fn unit() -> impl Strategy<Value = f64> {
    prop_oneof![Just(0.0), Just(1.0), 0.0..=1.0f64]
}

fn metric_type() -> impl Strategy<Value = MetricType> {
    proptest::sample::select(MetricType::ALL.to_vec())
}

/// Any JSON value with finite numbers, nested at most twice.
fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        finite().prop_map(Value::from),
        text().prop_map(Value::from),
    ];
    leaf.prop_recursive(2, 16, 4, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(Value::Array),
            btree_map(text(), inner, 0..4).prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

fn attributes() -> impl Strategy<Value = Attributes> {
    btree_map(text(), json(), 0..4)
}

fn operator_registered() -> impl Strategy<Value = Payload> {
    (ident(), ident(), option::of(text()), idents(), attributes()).prop_map(
        |(operator_id, name, team, specializations, metadata)| {
            Payload::OperatorRegistered(OperatorRegistered {
                operator_id,
                name,
                team,
                specializations,
                metadata,
            })
        },
    )
}

fn session_completed() -> impl Strategy<Value = Payload> {
    let ids = (ident(), ident(), ident());
    let times = (Y2000..Y2100).prop_flat_map(|start| {
        (Just(start), start..Y2100)
            .prop_map(|(start, end)| (Timestamp::from_micros(start), Timestamp::from_micros(end)))
    });
    let objectives = any::<u32>().prop_flat_map(|total| (0..=total, Just(total)));
    let metrics = vec(
        (metric_type(), finite())
            .prop_map(|(metric_type, value)| SessionMetric { metric_type, value }),
        0..4,
    );
    let results = (non_negative(), any::<bool>(), unit(), non_negative());
    (
        ids,
        times,
        results,
        idents(),
        objectives,
        metrics,
        option::of(unit()),
    )
        .prop_map(
            |(
                (session_id, operator_id, scenario_id),
                (start_time, end_time),
                (duration_seconds, success, score, cost),
                skills_practiced,
                (objectives_completed, objectives_total),
                metrics,
                difficulty,
            )| {
                Payload::SessionCompleted(SessionCompleted {
                    session_id,
                    operator_id,
                    scenario_id,
                    start_time,
                    end_time,
                    duration_seconds,
                    success,
                    score,
                    cost,
                    skills_practiced,
                    objectives_completed,
                    objectives_total,
                    metrics,
                    difficulty,
                })
            },
        )
}

fn metric_recorded() -> impl Strategy<Value = Payload> {
    let ids = (ident(), ident(), option::of(text()));
    (ids, metric_type(), finite(), attributes()).prop_map(
        |((operator_id, session_id, scenario_id), metric_type, value, context)| {
            Payload::MetricRecorded(MetricRecorded {
                operator_id,
                session_id,
                metric_type,
                value,
                scenario_id,
                context,
            })
        },
    )
}

fn skill_assessed() -> impl Strategy<Value = Payload> {
    (ident(), ident(), unit()).prop_map(|(operator_id, skill, score)| {
        Payload::SkillAssessed(SkillAssessed {
            operator_id,
            skill,
            score,
        })
    })
}

fn llm_usage() -> impl Strategy<Value = Payload> {
    // The provider has no '/'; the name may (OpenRouter: `openrouter/openai/gpt-4o`).
    let model = (ident(), ident())
        .prop_map(|(provider, name)| format!("{}/{name}", provider.replace('/', "_")));
    let ids = (model, ident(), ident(), ident());
    let tokens = (any::<u64>(), any::<u64>(), any::<u64>());
    let outcome = (
        option::of(non_negative()),
        any::<bool>(),
        option::of(text()),
    );
    let context = (
        option::of(text()),
        option::of(text()),
        option::of(non_negative()),
    );
    (ids, tokens, outcome, context).prop_map(
        |(
            (model, profile_id, session_id, task_type),
            (input_tokens, output_tokens, cached_input_tokens),
            (latency_ms, success, error_message),
            (scenario_id, phase, cost),
        )| {
            Payload::LlmUsage(LlmUsage {
                model,
                profile_id,
                session_id,
                task_type,
                input_tokens,
                output_tokens,
                cached_input_tokens,
                latency_ms,
                success,
                error_message,
                scenario_id,
                phase,
                cost,
            })
        },
    )
}

fn model_priced() -> impl Strategy<Value = Payload> {
    let names = (ident().prop_map(|p| p.replace('/', "_")), ident());
    let prices = (non_negative(), non_negative(), option::of(non_negative()));
    let labels = (option::of(text()), option::of(text()), idents(), idents());
    let scores = (
        option::of(any::<u64>()),
        option::of(finite()),
        option::of(finite()),
    );
    (names, prices, timestamp(), labels, scores).prop_map(
        |(
            (provider, name),
            (input, output, cached),
            effective_from,
            (display_name, tier, capabilities, recommended_for),
            (context_window, reasoning_score, speed_score),
        )| {
            Payload::ModelPriced(ModelPriced {
                provider,
                name,
                cost_per_1k_input_tokens: input,
                cost_per_1k_output_tokens: output,
                cost_per_1k_cached_input_tokens: cached,
                effective_from,
                display_name,
                tier,
                capabilities,
                context_window,
                reasoning_score,
                speed_score,
                recommended_for,
            })
        },
    )
}

fn budget_set() -> impl Strategy<Value = Payload> {
    let scope_and_entity = prop_oneof![
        Just((BudgetScope::Global, None)),
        ident().prop_map(|id| (BudgetScope::Profile, Some(id))),
        ident().prop_map(|id| (BudgetScope::Session, Some(id))),
    ];
    let period = proptest::sample::select(vec![
        BudgetPeriod::None,
        BudgetPeriod::Daily,
        BudgetPeriod::Weekly,
        BudgetPeriod::Monthly,
    ]);
    (scope_and_entity, positive(), period, vec(positive(), 0..4)).prop_map(
        |((scope, entity_id), amount, period, thresholds)| {
            Payload::BudgetSet(BudgetSet {
                scope,
                entity_id,
                amount,
                period,
                thresholds,
            })
        },
    )
}

fn goal_created() -> impl Strategy<Value = Payload> {
    let ids = (ident(), ident(), ident());
    let details = (option::of(text()), non_negative(), option::of(text()));
    (ids, details, option::of(timestamp())).prop_map(
        |((goal_id, operator_id, name), (description, target_value, unit), deadline)| {
            Payload::GoalCreated(GoalCreated {
                goal_id,
                operator_id,
                name,
                description,
                target_value,
                unit,
                deadline,
            })
        },
    )
}

fn report_generated() -> impl Strategy<Value = Payload> {
    let report_type = proptest::sample::select(vec![
        ReportType::OperatorProgress,
        ReportType::SessionAnalysis,
        ReportType::CostSummary,
        ReportType::TrainingEffectiveness,
        ReportType::SystemHealth,
        ReportType::TeamPerformance,
        ReportType::TrendAnalysis,
        ReportType::Compliance,
    ]);
    let texts = (ident(), option::of(text()));
    let report_id = any::<u128>().prop_map(|id| Uuid::from_u128(id).to_string());
    (
        report_id,
        report_type,
        attributes(),
        texts,
        json(),
        attributes(),
    )
        .prop_map(
            |(report_id, report_type, parameters, (title, description), data, as_of)| {
                Payload::ReportGenerated(ReportGenerated {
                    report_id,
                    report_type,
                    parameters,
                    title,
                    description,
                    data,
                    as_of,
                })
            },
        )
}

fn payload() -> impl Strategy<Value = Payload> {
    prop_oneof![
        operator_registered(),
        session_completed(),
        metric_recorded(),
        skill_assessed(),
        llm_usage(),
        model_priced(),
        budget_set(),
        goal_created(),
        report_generated(),
    ]
}

/// A recorded envelope (as read from the log) at the current schema.
fn envelope() -> impl Strategy<Value = Envelope> {
    (any::<u128>(), timestamp(), timestamp(), ident(), payload()).prop_map(
        |(id, occurred_at, recorded_at, source, payload)| {
            let mut event = Envelope::new(Uuid::from_u128(id), occurred_at, source, payload);
            event.recorded_at = recorded_at;
            event
        },
    )
}

proptest! {
    #[test]
    fn msgpack_round_trips(event in envelope()) {
        let bytes = codec::encode(&event).unwrap();
        let decoded = codec::decode(&bytes).unwrap();
        prop_assert_eq!(&decoded, &event);
        // Deterministic: decoding and re-encoding gives the same bytes.
        prop_assert_eq!(codec::encode(&decoded).unwrap(), bytes);
    }

    #[test]
    fn encode_into_appends_the_same_bytes(event in envelope(), prefix in vec(any::<u8>(), 0..8)) {
        let mut buf = prefix.clone();
        codec::encode_into(&event, &mut buf).unwrap();
        prop_assert_eq!(&buf[..prefix.len()], &prefix[..]);
        prop_assert_eq!(&buf[prefix.len()..], &codec::encode(&event).unwrap()[..]);
    }

    #[test]
    fn cloud_events_round_trip_all_but_recorded_at(event in envelope()) {
        let json = to_cloud_event(&event);
        let parsed = parse_cloud_event(json.clone())
            .map_err(|e| TestCaseError::fail(format!("{e} in {json}")))?;
        let unrecorded = Envelope { recorded_at: Timestamp::default(), ..event };
        prop_assert_eq!(parsed, unrecorded);
    }

    /// The borrowed parse (the intake's fast path) gives the envelope the `Value` parse gives.
    #[test]
    fn borrowed_parse_equals_the_value_parse(event in envelope()) {
        let text = to_cloud_event(&event).to_string();
        let borrowed: CloudEventRef<'_> = serde_json::from_str(&text)
            .map_err(|e| TestCaseError::fail(format!("{e} in {text}")))?;
        let parsed = parse_cloud_event(serde_json::from_str(&text).unwrap());
        prop_assert_eq!(parse_cloud_event_ref(borrowed), parsed);
    }

    /// With one attribute or one `data` field replaced by any JSON value, or removed: whenever
    /// the event still deserializes as a [`CloudEventRef`], both parses give the same envelope
    /// or an error naming the same field (serde words some errors differently for text).
    #[test]
    fn borrowed_parse_agrees_on_damaged_events(
        event in envelope(),
        pick in any::<prop::sample::Index>(),
        replacement in option::of(json()),
    ) {
        let mut json = to_cloud_event(&event);
        let mut slots: Vec<(bool, String)> = json.as_object().unwrap().keys()
            .map(|k| (false, k.clone())).collect();
        slots.extend(json["data"].as_object().unwrap().keys().map(|k| (true, k.clone())));
        let (in_data, key) = pick.get(&slots).clone();
        let object = if in_data { &mut json["data"] } else { &mut json };
        let object = object.as_object_mut().unwrap();
        match replacement {
            Some(value) => { object.insert(key, value); }
            None => { object.remove(&key); }
        }
        let text = json.to_string();
        if let Ok(borrowed) = serde_json::from_str::<CloudEventRef<'_>>(&text) {
            match (parse_cloud_event_ref(borrowed), parse_cloud_event(serde_json::from_str(&text).unwrap())) {
                (Ok(a), Ok(b)) => prop_assert_eq!(a, b, "{}", text),
                (Err(a), Err(b)) => prop_assert_eq!(a.field, b.field, "{}", text),
                (a, b) => prop_assert!(false, "{:?} but {:?}: {}", a, b, text),
            }
        }
    }

    /// Digests stored in id indexes stay valid: the digest is still SHA-256 of the envelope
    /// encoded with both times zeroed, whatever the kind.
    #[test]
    fn digest_is_sha256_of_the_envelope_with_times_zeroed(event in envelope()) {
        use sha2::Digest;
        let zeroed = Envelope {
            occurred_at: Timestamp::default(),
            recorded_at: Timestamp::default(),
            ..event.clone()
        };
        let hash = sha2::Sha256::digest(rmp_serde::to_vec_named(&zeroed).unwrap());
        let expected = u64::from_be_bytes(hash[..8].try_into().unwrap());
        prop_assert_eq!(event.content_digest(), expected);
    }

    #[test]
    fn digest_ignores_recorded_at(event in envelope(), recorded_at in timestamp()) {
        let mut again = event.clone();
        again.recorded_at = recorded_at;
        prop_assert_eq!(again.content_digest(), event.content_digest());
        again.recorded_at = Timestamp::default();
        prop_assert_eq!(again.content_digest(), event.content_digest());
    }

    #[test]
    fn digest_changes_with_the_payload(event in envelope(), other in payload()) {
        prop_assume!(other != event.payload);
        let mut changed = event.clone();
        changed.payload = other;
        prop_assert_ne!(changed.content_digest(), event.content_digest());
    }

    #[test]
    fn digest_changes_with_one_score(event in envelope(), a in 0.0..0.5f64, b in 0.5..=1.0f64) {
        let with_score = |score| {
            let mut event = event.clone();
            event.payload = Payload::SkillAssessed(SkillAssessed {
                operator_id: "op_001".into(),
                skill: "reconnaissance".into(),
                score,
            });
            event
        };
        prop_assert_ne!(with_score(a).content_digest(), with_score(b).content_digest());
    }

    #[test]
    fn digest_ignores_occurred_at_but_not_source(event in envelope(), at in timestamp(), source in ident()) {
        prop_assume!(at != event.occurred_at && source != event.source);
        // A producer that re-stamps `time` on a retry is still retrying the same event.
        let moved = Envelope { occurred_at: at, ..event.clone() };
        prop_assert_eq!(moved.content_digest(), event.content_digest());
        let resourced = Envelope { source, ..event.clone() };
        prop_assert_ne!(resourced.content_digest(), event.content_digest());
    }

    #[test]
    fn records_round_trip(parts in vec(vec(any::<u8>(), 0..300), 0..8)) {
        let record = encode_record(parts.iter().map(Vec::as_slice));
        let expected: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
        prop_assert_eq!(decode_record(&record).unwrap(), expected);
        // Every record needs all its bytes: any truncation is an error, never fewer parts.
        prop_assert!(decode_record(&record[..record.len() - 1]).is_err());
    }

    #[test]
    fn records_of_events_round_trip(events in vec(envelope(), 0..5)) {
        let encoded: Vec<Vec<u8>> = events.iter().map(|e| codec::encode(e).unwrap()).collect();
        let record = encode_record(encoded.iter().map(Vec::as_slice));
        let decoded: Vec<Envelope> = decode_record(&record)
            .unwrap()
            .into_iter()
            .map(|bytes| codec::decode(bytes).unwrap())
            .collect();
        prop_assert_eq!(decoded, events);
    }
}

#[test]
fn a_record_keeps_parts_longer_than_64_kib() {
    let big = vec![0xa5; 70_000];
    let parts: [&[u8]; 3] = [b"", &big, b"tail"];
    let record = encode_record(parts.iter().copied());
    assert_eq!(decode_record(&record).unwrap(), parts);
}

#[test]
fn an_empty_record_is_one_byte() {
    let record = encode_record(std::iter::empty());
    assert_eq!(record, [0x90], "a MessagePack empty array");
    assert!(decode_record(&record).unwrap().is_empty());
}
