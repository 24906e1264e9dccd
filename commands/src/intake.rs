//! CloudEvents request bodies → validated envelopes, all or nothing.

use std::collections::HashMap;

use ats_events::cloudevents::{json_type, parse_cloud_event, parse_cloud_event_ref, CloudEventRef};
use ats_events::{Envelope, EventKind, FieldError};
use serde_json::Value;

/// Bounds on what one request may carry.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Most events in one batch.
    pub max_batch: usize,
    /// Deepest JSON nesting accepted (guards the parser's stack and the log's size).
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_batch: 1_000,
            max_depth: 32,
        }
    }
}

/// Why a request body was rejected. Nothing of a rejected body is appended.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum IntakeError {
    /// The body is not JSON.
    #[error("malformed JSON: {0}")]
    Malformed(String),
    /// An event breaks a rule; `field` is its full path (`events[3].data.score`).
    #[error("{0}")]
    Invalid(FieldError),
    /// The batch holds no event.
    #[error("the batch is empty")]
    Empty,
    /// The batch holds more events than allowed.
    #[error("the batch has {count} events, the limit is {limit}")]
    TooLarge {
        /// Events sent.
        count: usize,
        /// The limit.
        limit: usize,
    },
    /// One id twice in the batch, with different content.
    #[error("event id {id} appears twice in the batch with different content (events[{first}] and events[{second}])")]
    ConflictInBatch {
        /// The event id.
        id: String,
        /// Index of its first occurrence.
        first: usize,
        /// Index of the conflicting one.
        second: usize,
    },
}

impl IntakeError {
    /// The field the error is about, when there is one.
    pub fn field(&self) -> Option<&str> {
        match self {
            Self::Invalid(e) => Some(&e.field),
            _ => None,
        }
    }
}

/// Parses a body holding one CloudEvent (an object) or a batch (an array).
///
/// Errors in a single event name fields from the event (`data.score`); in a batch they are
/// prefixed with the index (`events[3].data.score`). A retry of the same event inside one batch
/// is kept once; the same id with different content is rejected.
pub fn parse_body(body: &[u8], limits: &Limits) -> Result<Vec<Envelope>, IntakeError> {
    // Most bodies are valid: parse them straight into the payload types. A body that path
    // does not accept is parsed again through a `Value`, whose errors are the ones clients
    // get (and whose leniencies, a repeated key, stay as they were).
    match parse_borrowed(body, limits) {
        Some(events) => Ok(events),
        None => parse_through_value(body, limits),
    }
}

/// [`parse_body`] through a `serde_json::Value`: the path whose answers clients get.
fn parse_through_value(body: &[u8], limits: &Limits) -> Result<Vec<Envelope>, IntakeError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| IntakeError::Malformed(e.to_string()))?;
    parse_value(value, limits)
}

/// [`parse_body`] without a `Value`: the events borrowed from the body's text. `None` for
/// anything it does not accept, including every body [`parse_value`] refuses.
fn parse_borrowed(body: &[u8], limits: &Limits) -> Option<Vec<Envelope>> {
    let text = std::str::from_utf8(body).ok()?;
    if nesting_exceeds(text, limits.max_depth) {
        return None;
    }
    let borrowed = |event| parse_cloud_event_ref(event).and_then(ingestible);
    match text.trim_start().as_bytes().first()? {
        b'[' => {
            let items: Vec<CloudEventRef<'_>> = serde_json::from_str(text).ok()?;
            parse_batch(items, limits, borrowed).ok()
        }
        b'{' => Some(vec![borrowed(serde_json::from_str(text).ok()?).ok()?]),
        _ => None,
    }
}

/// Whether arrays and objects nest deeper than `max` anywhere in `text` (brackets inside
/// strings do not count); the same bound [`check_depth`] puts on a parsed value.
///
/// Strings are most of a body's bytes: they are skipped with `memchr` to the next quote or
/// backslash instead of walked byte by byte (the walk was ~5 % of the request handlers' CPU
/// during the bench's ingest; this halves it).
fn nesting_exceeds(text: &str, max: usize) -> bool {
    let bytes = text.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while let Some(&byte) = bytes.get(i) {
        i += 1;
        match byte {
            b'"' => loop {
                // An unterminated string: nothing after it counts (the parser refuses it).
                let Some(at) = bytes
                    .get(i..)
                    .and_then(|rest| memchr::memchr2(b'"', b'\\', rest))
                else {
                    return false;
                };
                if bytes[i + at] == b'"' {
                    i += at + 1;
                    break;
                }
                // A backslash: past it and the character it escapes.
                i += at + 2;
            },
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// [`parse_body`] for an already parsed JSON value.
pub fn parse_value(value: Value, limits: &Limits) -> Result<Vec<Envelope>, IntakeError> {
    check_depth(&value, limits.max_depth)?;
    let parse = |event| parse_cloud_event(event).and_then(ingestible);
    match value {
        Value::Array(items) => parse_batch(items, limits, parse),
        Value::Object(_) => Ok(vec![parse(value).map_err(IntakeError::Invalid)?]),
        other => Err(IntakeError::Invalid(FieldError::new(
            "",
            format!(
                "the body must be a CloudEvent object or an array of them, got {}",
                json_type(&other)
            ),
        ))),
    }
}

/// Refuses events a client may not append. API keys are issued and revoked only through the
/// admin API (which needs the `admin` scope): accepting their events here would let an
/// `ingest` key mint itself an `admin` key.
fn ingestible(event: Envelope) -> Result<Envelope, FieldError> {
    if matches!(
        event.kind(),
        EventKind::ApiKeyIssued | EventKind::ApiKeyRevoked
    ) {
        return Err(FieldError::new(
            "type",
            format!(
                "{} events are written by the admin API (POST /api/admin/keys, DELETE /api/admin/keys/{{key_id}}), not ingested",
                event.kind().as_str()
            ),
        ));
    }
    Ok(event)
}

/// A batch's events through `parse`, all or nothing.
fn parse_batch<T>(
    items: Vec<T>,
    limits: &Limits,
    parse: impl Fn(T) -> Result<Envelope, FieldError>,
) -> Result<Vec<Envelope>, IntakeError> {
    if items.is_empty() {
        return Err(IntakeError::Empty);
    }
    if items.len() > limits.max_batch {
        return Err(IntakeError::TooLarge {
            count: items.len(),
            limit: limits.max_batch,
        });
    }
    let mut events: Vec<Envelope> = Vec::with_capacity(items.len());
    // Each id's submitted index and its event's place in `events`. Content is compared only
    // when an id comes again: a digest per event would be a tenth of an append's CPU.
    let mut seen: HashMap<uuid::Uuid, (usize, usize)> = HashMap::with_capacity(items.len());
    for (index, item) in items.into_iter().enumerate() {
        let event =
            parse(item).map_err(|e| IntakeError::Invalid(e.within(&format!("events[{index}]"))))?;
        match seen.get(&event.id) {
            Some(&(_, kept)) if events[kept].content_digest() == event.content_digest() => continue,
            Some(&(first, _)) => {
                return Err(IntakeError::ConflictInBatch {
                    id: event.id.to_string(),
                    first,
                    second: index,
                })
            }
            None => {
                seen.insert(event.id, (index, events.len()));
                events.push(event);
            }
        }
    }
    Ok(events)
}

fn check_depth(value: &Value, max_depth: usize) -> Result<(), IntakeError> {
    /// Walks to the first array or object nested deeper than `max`, leaving its path in
    /// `path`, so the error names where the nesting is, not only that it exists. serde_json
    /// already bounded the depth (128) while parsing, so this recursion is bounded too.
    fn too_deep(value: &Value, level: usize, max: usize, path: &mut String) -> bool {
        use std::fmt::Write;
        let descend = |path: &mut String, child: &Value| too_deep(child, level + 1, max, path);
        match value {
            Value::Array(items) => {
                if level >= max {
                    return true;
                }
                for (i, child) in items.iter().enumerate() {
                    let len = path.len();
                    let _ = write!(path, "[{i}]");
                    if descend(path, child) {
                        return true;
                    }
                    path.truncate(len);
                }
                false
            }
            Value::Object(map) => {
                if level >= max {
                    return true;
                }
                for (key, child) in map {
                    let len = path.len();
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(key);
                    if descend(path, child) {
                        return true;
                    }
                    path.truncate(len);
                }
                false
            }
            _ => false,
        }
    }
    let mut path = if value.is_array() {
        "events".to_owned()
    } else {
        String::new()
    };
    if too_deep(value, 0, max_depth, &mut path) {
        if path.is_empty() {
            path.push_str("body");
        }
        return Err(IntakeError::Invalid(FieldError::new(
            path,
            format!("JSON nesting depth exceeds the limit of {max_depth}"),
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(id: &str, score: Value) -> Value {
        json!({"specversion":"1.0","id":id,"type":"ats.skill.assessed","source":"test",
               "time":"2026-11-01T10:00:00Z","subject":"op",
               "data":{"operator_id":"op","skill":"recon","score":score}})
    }

    #[test]
    fn batch_errors_name_the_index_and_field() {
        let body = json!([event("a", json!(0.5)), event("b", json!(2.0))]);
        let err = parse_value(body, &Limits::default()).unwrap_err();
        assert_eq!(err.field(), Some("events[1].data.score"));
        assert!(err.to_string().contains("must be within 0..=1"), "{err}");
    }

    #[test]
    fn api_key_events_are_refused_at_the_edge() {
        let key = json!({"specversion":"1.0","id":"k","type":"ats.apikey.issued","source":"test",
            "time":"2026-11-01T10:00:00Z",
            "data":{"key_id":"abc","name":"mine","scopes":["admin"],
                    "secret_sha256":"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}});
        let err =
            parse_value(json!([event("a", json!(0.5)), key]), &Limits::default()).unwrap_err();
        assert_eq!(err.field(), Some("events[1].type"));
        assert!(err.to_string().contains("admin API"), "{err}");
    }

    #[test]
    fn integer_times_are_refused_with_the_field() {
        let mut goal = json!({"specversion":"1.0","id":"g","type":"ats.goal.created","source":"t",
            "time":"2026-11-01T10:00:00Z",
            "data":{"goal_id":"g1","operator_id":"op","name":"Ten","target_value":10.0,
                    "unit":"sessions","deadline":"2026-12-01T00:00:00Z"}});
        assert!(parse_value(goal.clone(), &Limits::default()).is_ok());
        goal["data"]["deadline"] = json!(1_796_083_200);
        let err = parse_value(goal.clone(), &Limits::default()).unwrap_err();
        assert_eq!(err.field(), Some("data.deadline"), "{err}");
        goal["data"]["deadline"] = json!("2026-12-01T00:00:00Z");
        goal["time"] = json!(1_796_083_200);
        let err = parse_value(goal, &Limits::default()).unwrap_err();
        assert_eq!(err.field(), Some("time"), "{err}");
    }

    #[test]
    fn single_event_errors_name_the_field() {
        let err = parse_value(event("a", json!("high")), &Limits::default()).unwrap_err();
        assert_eq!(err.field(), Some("data.score"));
    }

    #[test]
    fn retry_inside_a_batch_is_kept_once_and_conflict_rejected() {
        let kept = |body: Value| parse_value(body, &Limits::default()).map(|e| e.len());
        // The submitted indices of a conflict's two copies.
        let conflict = |body: Value| match parse_value(body, &Limits::default()) {
            Err(IntakeError::ConflictInBatch { first, second, .. }) => Some((first, second)),
            _ => None,
        };
        let a = |score: f64| event("a", json!(score));
        assert_eq!(kept(json!([a(0.5), a(0.5)])).unwrap(), 1);
        assert_eq!(conflict(json!([a(0.5), a(0.6)])), Some((0, 1)));
        // Indices count submitted events; the content compared is the first copy's.
        let b = event("b", json!(1));
        assert_eq!(
            conflict(json!([a(0.5), b.clone(), a(0.5), a(0.6)])),
            Some((0, 3))
        );
        assert_eq!(kept(json!([b, a(0.5), a(0.5)])).unwrap(), 2);
    }

    #[test]
    fn valid_bodies_take_the_borrowed_path() {
        let limits = Limits::default();
        let batch = json!([event("a", json!(0.5)), event("b", json!(1))]).to_string();
        let single = event("c", json!(0.25)).to_string();
        for body in [batch, single.clone()] {
            let borrowed = parse_borrowed(body.as_bytes(), &limits);
            assert!(borrowed.is_some(), "{body}");
            assert_eq!(
                borrowed.map(Ok),
                Some(parse_through_value(body.as_bytes(), &limits))
            );
        }
        // A repeated key: the `Value` path keeps the last value, so the borrowed path leaves
        // the body to it.
        let repeated = single.replacen(
            "\"source\":\"test\"",
            "\"source\":\"x\",\"source\":\"test\"",
            1,
        );
        assert!(parse_borrowed(repeated.as_bytes(), &limits).is_none());
        assert_eq!(parse_body(repeated.as_bytes(), &limits).unwrap().len(), 1);
    }

    /// Any JSON value, its strings holding brackets, quotes and backslashes.
    fn any_json() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<i32>().prop_map(Value::from),
            "[\\[\\]{}\"\\\\a]{0,6}".prop_map(Value::from),
        ];
        leaf.prop_recursive(12, 64, 3, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
                proptest::collection::btree_map("[\\[{\"\\\\k]{0,3}", inner, 0..3)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest::proptest! {
        /// The byte scan bounds nesting exactly where the check of a parsed value does.
        #[test]
        fn nesting_scan_agrees_with_the_value_check(value in any_json(), max in 0usize..10) {
            let text = value.to_string();
            proptest::prop_assert_eq!(
                nesting_exceeds(&text, max),
                check_depth(&value, max).is_err(),
                "{}", text
            );
        }

        /// Whatever the body (valid events, a field replaced by any JSON, a repeated key,
        /// nesting past the limit, cut short), `parse_body` answers what the `Value` path
        /// alone answers: the same events or the same error.
        #[test]
        fn the_borrowed_path_never_changes_an_answer(
            scores in proptest::collection::vec(0.0..=1.0f64, 1..4),
            field in 0usize..9,
            replacement in any_json(),
            damage in 0usize..5,
            max_depth in 2usize..8,
        ) {
            let limits = Limits { max_batch: 3, max_depth };
            let mut events: Vec<Value> = scores
                .iter()
                .enumerate()
                .map(|(i, s)| event(&format!("e{i}"), json!(s)))
                .collect();
            let keys = ["specversion", "id", "type", "source", "time", "subject", "data"];
            match damage {
                0 => {}
                1 if field < keys.len() => { events[0][keys[field]] = replacement; }
                1 => { events[0]["data"]["score"] = replacement; }
                _ => {}
            }
            let mut body = if events.len() == 1 && field % 2 == 0 {
                events[0].to_string()
            } else {
                Value::Array(events).to_string()
            };
            match damage {
                2 => body = body.replacen("\"skill\":", "\"skill\":\"x\",\"skill\":", 1),
                3 => body.truncate(body.len() * field / 9),
                4 => body = body.replacen("\"data\":", &format!("\"extra\":{},\"data\":", "[".repeat(field) + &"]".repeat(field)), 1),
                _ => {}
            }
            proptest::prop_assert_eq!(
                parse_body(body.as_bytes(), &limits),
                parse_through_value(body.as_bytes(), &limits),
                "{}", body
            );
        }
    }

    proptest::proptest! {
        /// A number the producer held lands with the same bits, whether written in Rust's
        /// shortest form or with all 17 significant digits, on both parse paths.
        #[test]
        fn numbers_land_exactly_as_the_producer_held_them(score in 0.0..=1.0f64) {
            for text in [format!("{score:?}"), format!("{score:.16e}")] {
                let body = event("e", json!(0.5))
                    .to_string()
                    .replace("\"score\":0.5", &format!("\"score\":{text}"));
                for parsed in [
                    parse_body(body.as_bytes(), &Limits::default()),
                    parse_through_value(body.as_bytes(), &Limits::default()),
                ] {
                    let events = parsed.map_err(|e| proptest::test_runner::TestCaseError::fail(e.to_string()))?;
                    let ats_events::Payload::SkillAssessed(assessed) = &events[0].payload else {
                        return Err(proptest::test_runner::TestCaseError::fail("not a skill assessment"));
                    };
                    proptest::prop_assert_eq!(assessed.score.to_bits(), score.to_bits(), "{}", text);
                }
            }
        }
    }

    #[test]
    fn limits_are_enforced() {
        let limits = Limits {
            max_batch: 2,
            max_depth: 8,
        };
        let three = json!([
            event("a", json!(0.1)),
            event("b", json!(0.1)),
            event("c", json!(0.1))
        ]);
        assert_eq!(
            parse_value(three, &limits),
            Err(IntakeError::TooLarge { count: 3, limit: 2 })
        );
        assert_eq!(parse_value(json!([]), &limits), Err(IntakeError::Empty));
        let mut deep = json!(1);
        for _ in 0..10 {
            deep = json!([deep]);
        }
        assert!(parse_value(deep, &limits)
            .unwrap_err()
            .to_string()
            .contains("nesting depth"));
        assert!(matches!(
            parse_body(b"{not json", &limits),
            Err(IntakeError::Malformed(_))
        ));
        assert!(parse_body(b"42", &limits)
            .unwrap_err()
            .to_string()
            .contains("got a number"));
    }
}
