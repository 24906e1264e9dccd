//! Intents submitted as plain JSON bodies (set a benchmark, a budget, create a goal, …),
//! turned into validated events of one kind. The API appends what this returns.

use ats_events::cloudevents::event_id;
use ats_events::{Envelope, EventKind, FieldError, Payload, Timestamp, Validate};
use uuid::Uuid;

/// Source recorded on events created through the API.
pub const API_SOURCE: &str = "ats-mafia-api";

/// Builds the event of `kind` whose data is the JSON `body`, validated; errors name the
/// body's field (`value: must be …`). The id is derived from `idempotency_key` when the
/// client gives one (a retry then changes nothing), else a fresh UUID v7.
pub fn from_body(
    kind: EventKind,
    body: &[u8],
    idempotency_key: Option<&str>,
    now: Timestamp,
) -> Result<Envelope, FieldError> {
    let data: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| FieldError::new("", format!("malformed JSON: {e}")))?;
    if !data.is_object() {
        return Err(FieldError::new("", "the body must be a JSON object"));
    }
    let payload = Payload::from_json(kind, data)?;
    payload.validate()?;
    let id = match idempotency_key {
        Some(key) if key.is_empty() || key.len() > 128 => {
            return Err(FieldError::new(
                "Idempotency-Key",
                "must be 1 to 128 characters long",
            ))
        }
        Some(key) => event_id(&format!("{}:{key}", kind.as_str())),
        None => Uuid::now_v7(),
    };
    Ok(Envelope::new(id, now, API_SOURCE, payload))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_becomes_a_validated_event() {
        let now = Timestamp::parse_rfc3339("2026-11-01T00:00:00Z").unwrap();
        let body = br#"{"benchmark_id":"b1","metric_type":"stealth_rating","value":0.7}"#;
        let a = from_body(EventKind::BenchmarkSet, body, Some("k1"), now).unwrap();
        let b = from_body(EventKind::BenchmarkSet, body, Some("k1"), now).unwrap();
        assert_eq!(a.id, b.id, "the same key is the same event");
        assert_eq!(a.occurred_at, now);
        assert_eq!(a.kind(), EventKind::BenchmarkSet);
        let err = from_body(
            EventKind::BenchmarkSet,
            br#"{"benchmark_id":"b1","value":0.7}"#,
            None,
            now,
        )
        .unwrap_err();
        assert_eq!(err.field, "metric_type");
        let err = from_body(
            EventKind::BenchmarkSet,
            br#"{"benchmark_id":"","metric_type":"stealth_rating","value":1}"#,
            None,
            now,
        )
        .unwrap_err();
        assert_eq!(err.field, "benchmark_id");
        assert!(from_body(EventKind::BenchmarkSet, b"[]", None, now).is_err());
    }
}
