//! A JSON Schema (2020-12) of every event kind, generated from the payload types.

use serde_json::{json, Map, Value};

use crate::cloudevents::MAX_ID_LEN;
use crate::payload::{payload_schemas, EventKind};

/// The schema of a CloudEvent this engine accepts: the envelope, and for each `type` the
/// schema its `data` must match. Served at `/api/events/schema`.
pub fn event_json_schema() -> Value {
    let mut parts = Vec::new();
    payload_schemas(&mut parts);
    let mut defs = Map::new();
    for (name, schema) in parts {
        let schema = serde_json::to_value(schema).unwrap_or(Value::Null);
        defs.insert(name, schema);
    }
    // utoipa emits OpenAPI component references; a standalone JSON Schema uses $defs.
    let defs = Value::Object(defs)
        .to_string()
        .replace("#/components/schemas/", "#/$defs/");
    let defs: Value = serde_json::from_str(&defs).unwrap_or(Value::Null);
    let kinds: Vec<&str> = EventKind::ALL.iter().map(|k| k.as_str()).collect();
    let by_kind: Vec<Value> = kinds
        .iter()
        .map(|kind| {
            json!({
                "if": {"properties": {"type": {"const": kind}}},
                "then": {"properties": {"data": {"$ref": format!("#/$defs/{kind}")}}}
            })
        })
        .collect();
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://ats-mafia.local/schemas/event.json",
        "title": "ATS MAFIA analytics event (CloudEvents 1.0, structured mode)",
        "description": "POST one to /api/events, or a JSON array of them with Content-Type application/cloudevents-batch+json.",
        "type": "object",
        "required": ["specversion", "id", "type", "source", "time", "data"],
        "properties": {
            "specversion": {"const": "1.0"},
            "id": {"type": "string", "minLength": 1, "maxLength": MAX_ID_LEN,
                   "description": "Idempotency key: a UUID, or any string (turned into a UUID v5)."},
            "type": {"enum": kinds},
            "source": {"type": "string", "minLength": 1},
            "time": {"type": "string", "format": "date-time", "description": "When it happened (RFC 3339)."},
            "subject": {"type": "string", "description": "The operator id, where the kind has one."},
            "datacontenttype": {"const": "application/json"},
            "data": {"type": "object"}
        },
        "allOf": by_kind,
        "$defs": defs,
    })
}
