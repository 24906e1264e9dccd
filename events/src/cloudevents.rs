//! CloudEvents 1.0 (structured JSON) at the HTTP edge.
//!
//! `id` → event id (a UUID, or any string ≤ 128 chars turned into a UUID v5), `type` → kind,
//! `time` → occurred_at (required), `source` → source, `subject` → operator id, `data` → payload.

use serde_json::{json, Map, Value};
use uuid::Uuid;

use crate::envelope::Envelope;
use crate::payload::{EventKind, Payload};
use crate::time::Timestamp;
use crate::validate::{FieldError, Validate};

/// Namespace of the UUID v5 ids derived from producers' string ids.
pub const ID_NAMESPACE: Uuid = Uuid::from_u128(0x6a7c_1f0e_93b4_4c61_a2d8_5e0f_b1c3_9d27);

/// Longest producer id accepted, in characters (as JSON Schema's `maxLength` counts).
pub const MAX_ID_LEN: usize = 128;

/// The event id for a producer's id: the UUID itself, or a UUID v5 of the string.
pub fn event_id(producer_id: &str) -> Uuid {
    Uuid::parse_str(producer_id)
        .unwrap_or_else(|_| Uuid::new_v5(&ID_NAMESPACE, producer_id.as_bytes()))
}

fn required_str<'a>(object: &'a Map<String, Value>, field: &str) -> Result<&'a str, FieldError> {
    match object.get(field) {
        None | Some(Value::Null) => Err(FieldError::new(field, "is required")),
        Some(Value::String(s)) => Ok(s),
        Some(other) => Err(FieldError::new(
            field,
            format!("must be a string, got {}", json_type(other)),
        )),
    }
}

fn optional_str<'a>(
    object: &'a Map<String, Value>,
    field: &str,
) -> Result<Option<&'a str>, FieldError> {
    match object.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(_) => required_str(object, field).map(Some),
    }
}

/// The JSON type name of a value, for error messages.
pub fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Parses and validates one structured-mode CloudEvent. Errors name the field (`data.score`).
pub fn parse_cloud_event(value: Value) -> Result<Envelope, FieldError> {
    let Value::Object(mut object) = value else {
        return Err(FieldError::new(
            "",
            format!("an event must be a JSON object, got {}", json_type(&value)),
        ));
    };
    let specversion = required_str(&object, "specversion")?;
    if specversion != "1.0" {
        return Err(FieldError::new(
            "specversion",
            format!("must be \"1.0\", got {specversion:?}"),
        ));
    }
    let id = required_str(&object, "id")?;
    let id_chars = id.chars().count();
    if id_chars == 0 || id_chars > MAX_ID_LEN {
        return Err(FieldError::new(
            "id",
            format!("must be 1 to {MAX_ID_LEN} characters long, got {id_chars}"),
        ));
    }
    let id = event_id(id);
    let kind_text = required_str(&object, "type")?;
    let kind = EventKind::parse(kind_text).ok_or_else(|| {
        let known: Vec<&str> = EventKind::ALL.iter().map(|k| k.as_str()).collect();
        FieldError::new(
            "type",
            format!(
                "unknown event type {kind_text:?}, expected one of {}",
                known.join(", ")
            ),
        )
    })?;
    let source = required_str(&object, "source")?.to_owned();
    if source.is_empty() || source.len() > MAX_ID_LEN {
        return Err(FieldError::new(
            "source",
            format!("must be 1 to {MAX_ID_LEN} characters long"),
        ));
    }
    let time = required_str(&object, "time")?;
    let occurred_at = Timestamp::parse_rfc3339(time).map_err(|e| {
        FieldError::new("time", format!("invalid RFC 3339 date-time {time:?}: {e}"))
    })?;
    if let Some(content_type) = optional_str(&object, "datacontenttype")? {
        if !content_type.starts_with("application/json") {
            return Err(FieldError::new(
                "datacontenttype",
                format!("must be application/json, got {content_type:?}"),
            ));
        }
    }
    let subject = optional_str(&object, "subject")?.map(str::to_owned);
    let data = match object.remove("data") {
        None | Some(Value::Null) => return Err(FieldError::new("data", "is required")),
        Some(data @ Value::Object(_)) => data,
        Some(other) => {
            return Err(FieldError::new(
                "data",
                format!("must be an object, got {}", json_type(&other)),
            ))
        }
    };
    let payload = Payload::from_json(kind, data).map_err(|e| e.within("data"))?;
    payload.validate().map_err(|e| e.within("data"))?;
    if let (Some(subject), Some(operator)) = (&subject, payload.operator_id()) {
        if subject != operator {
            return Err(FieldError::new(
                "subject",
                format!("{subject:?} does not match the operator {operator:?} in data"),
            ));
        }
    }
    Ok(Envelope::new(id, occurred_at, source, payload))
}

/// Renders an event as a structured-mode CloudEvent (the inverse of [`parse_cloud_event`],
/// with the derived UUID as `id`).
pub fn to_cloud_event(event: &Envelope) -> Value {
    let mut value = json!({
        "specversion": "1.0",
        "id": event.id.to_string(),
        "type": event.kind().as_str(),
        "source": event.source,
        "time": event.occurred_at.to_rfc3339(),
        "datacontenttype": "application/json",
        "data": event.payload.data_json(),
    });
    if let Some(op) = &event.operator_id {
        value["subject"] = Value::String(op.clone());
    }
    value
}
