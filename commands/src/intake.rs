//! CloudEvents request bodies → validated envelopes, all or nothing.

use std::collections::HashMap;

use ats_events::cloudevents::{json_type, parse_cloud_event};
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
    let value: Value =
        serde_json::from_slice(body).map_err(|e| IntakeError::Malformed(e.to_string()))?;
    parse_value(value, limits)
}

/// [`parse_body`] for an already parsed JSON value.
pub fn parse_value(value: Value, limits: &Limits) -> Result<Vec<Envelope>, IntakeError> {
    check_depth(&value, limits.max_depth)?;
    match value {
        Value::Array(items) => parse_batch(items, limits),
        Value::Object(_) => Ok(vec![parse_ingestible(value).map_err(IntakeError::Invalid)?]),
        other => Err(IntakeError::Invalid(FieldError::new(
            "",
            format!(
                "the body must be a CloudEvent object or an array of them, got {}",
                json_type(&other)
            ),
        ))),
    }
}

/// One CloudEvent a client may append. API keys are issued and revoked only through the admin
/// API (which needs the `admin` scope): accepting their events here would let an `ingest` key
/// mint itself an `admin` key.
fn parse_ingestible(value: Value) -> Result<Envelope, FieldError> {
    let event = parse_cloud_event(value)?;
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

fn parse_batch(items: Vec<Value>, limits: &Limits) -> Result<Vec<Envelope>, IntakeError> {
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
    let mut seen: HashMap<uuid::Uuid, (usize, u64)> = HashMap::with_capacity(items.len());
    for (index, item) in items.into_iter().enumerate() {
        let event = parse_ingestible(item)
            .map_err(|e| IntakeError::Invalid(e.within(&format!("events[{index}]"))))?;
        let digest = event.content_digest();
        match seen.get(&event.id) {
            Some(&(_, first_digest)) if first_digest == digest => continue,
            Some(&(first, _)) => {
                return Err(IntakeError::ConflictInBatch {
                    id: event.id.to_string(),
                    first,
                    second: index,
                })
            }
            None => {
                seen.insert(event.id, (index, digest));
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
        let same = json!([event("a", json!(0.5)), event("a", json!(0.5))]);
        assert_eq!(parse_value(same, &Limits::default()).unwrap().len(), 1);
        let conflict = json!([event("a", json!(0.5)), event("a", json!(0.6))]);
        assert!(matches!(
            parse_value(conflict, &Limits::default()),
            Err(IntakeError::ConflictInBatch {
                first: 0,
                second: 1,
                ..
            })
        ));
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
