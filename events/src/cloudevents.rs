//! CloudEvents 1.0 (structured JSON) at the HTTP edge.
//!
//! `id` → event id (a UUID, or any string ≤ 128 chars turned into a UUID v5), `type` → kind,
//! `time` → occurred_at (required), `source` → source, `subject` → operator id, `data` → payload.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;
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

/// The context attributes this engine reads.
#[derive(Debug, Clone, Copy)]
enum Attribute {
    SpecVersion,
    Id,
    Type,
    Source,
    Time,
    DataContentType,
    Subject,
}

impl Attribute {
    fn name(self) -> &'static str {
        match self {
            Self::SpecVersion => "specversion",
            Self::Id => "id",
            Self::Type => "type",
            Self::Source => "source",
            Self::Time => "time",
            Self::DataContentType => "datacontenttype",
            Self::Subject => "subject",
        }
    }
}

/// A CloudEvent as parsed JSON or as borrowed text: where [`envelope`] reads it from.
trait Event {
    /// An attribute's string value; `None` when absent or null.
    fn attribute(&self, attribute: Attribute) -> Result<Option<&str>, FieldError>;
    /// The `data` of `kind`; errors name fields relative to `data` (`""` for `data` itself).
    fn payload(self, kind: EventKind) -> Result<Payload, FieldError>;

    fn required(&self, attribute: Attribute) -> Result<&str, FieldError> {
        self.attribute(attribute)?
            .ok_or_else(|| FieldError::new(attribute.name(), "is required"))
    }
}

impl Event for Map<String, Value> {
    fn attribute(&self, attribute: Attribute) -> Result<Option<&str>, FieldError> {
        match self.get(attribute.name()) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(FieldError::new(
                attribute.name(),
                format!("must be a string, got {}", json_type(other)),
            )),
        }
    }

    fn payload(mut self, kind: EventKind) -> Result<Payload, FieldError> {
        match self.remove("data") {
            None | Some(Value::Null) => Err(FieldError::new("", "is required")),
            Some(data @ Value::Object(_)) => Payload::from_json(kind, data),
            Some(other) => Err(FieldError::new(
                "",
                format!("must be an object, got {}", json_type(&other)),
            )),
        }
    }
}

/// A structured-mode CloudEvent borrowed from its JSON text: the attributes as strings, `data`
/// as raw text parsed straight into its payload type. Deserializing it fails where the `Value`
/// path reports an error of its own (a missing, null or non-string attribute) and where that
/// path is lenient (a repeated key, whose last value it keeps); a caller then parses the event
/// as a `Value`: see [`parse_cloud_event_ref`].
#[derive(Debug, Deserialize)]
pub struct CloudEventRef<'a> {
    #[serde(borrow)]
    specversion: Cow<'a, str>,
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(borrow, rename = "type")]
    kind: Cow<'a, str>,
    #[serde(borrow)]
    source: Cow<'a, str>,
    #[serde(borrow)]
    time: Cow<'a, str>,
    #[serde(borrow, default)]
    datacontenttype: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    subject: Option<Cow<'a, str>>,
    #[serde(borrow)]
    data: &'a RawValue,
}

impl Event for CloudEventRef<'_> {
    fn attribute(&self, attribute: Attribute) -> Result<Option<&str>, FieldError> {
        Ok(match attribute {
            Attribute::SpecVersion => Some(&self.specversion),
            Attribute::Id => Some(&self.id),
            Attribute::Type => Some(&self.kind),
            Attribute::Source => Some(&self.source),
            Attribute::Time => Some(&self.time),
            Attribute::DataContentType => self.datacontenttype.as_deref(),
            Attribute::Subject => self.subject.as_deref(),
        })
    }

    fn payload(self, kind: EventKind) -> Result<Payload, FieldError> {
        let data = self.data.get();
        if data.starts_with('{') {
            return Payload::from_json_str(kind, data);
        }
        // Not an object: the parsed path's error (null is "required", others name the type).
        let value = serde_json::from_str(data).unwrap_or(Value::Null);
        Map::from_iter([("data".to_owned(), value)]).payload(kind)
    }
}

/// Parses and validates one structured-mode CloudEvent. Errors name the field (`data.score`).
pub fn parse_cloud_event(value: Value) -> Result<Envelope, FieldError> {
    let Value::Object(object) = value else {
        return Err(FieldError::new(
            "",
            format!("an event must be a JSON object, got {}", json_type(&value)),
        ));
    };
    envelope(object)
}

/// [`parse_cloud_event`] of an event borrowed from its JSON text: the same rules in the same
/// order, without building a `Value` of the event. It accepts what that accepts, with the
/// same envelope; its errors name the same field, but serde words some of them differently
/// for text than for a `Value`, so a caller that answers with the error may parse again.
pub fn parse_cloud_event_ref(event: CloudEventRef<'_>) -> Result<Envelope, FieldError> {
    envelope(event)
}

/// The rules of a CloudEvent, in the order their errors are reported.
fn envelope(event: impl Event) -> Result<Envelope, FieldError> {
    let specversion = event.required(Attribute::SpecVersion)?;
    if specversion != "1.0" {
        return Err(FieldError::new(
            "specversion",
            format!("must be \"1.0\", got {specversion:?}"),
        ));
    }
    let id = event.required(Attribute::Id)?;
    let id_chars = id.chars().count();
    if id_chars == 0 || id_chars > MAX_ID_LEN {
        return Err(FieldError::new(
            "id",
            format!("must be 1 to {MAX_ID_LEN} characters long, got {id_chars}"),
        ));
    }
    let id = event_id(id);
    let kind_text = event.required(Attribute::Type)?;
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
    let source = event.required(Attribute::Source)?.to_owned();
    if source.is_empty() || source.len() > MAX_ID_LEN {
        return Err(FieldError::new(
            "source",
            format!("must be 1 to {MAX_ID_LEN} characters long"),
        ));
    }
    let time = event.required(Attribute::Time)?;
    let occurred_at = Timestamp::parse_rfc3339(time).map_err(|e| {
        FieldError::new("time", format!("invalid RFC 3339 date-time {time:?}: {e}"))
    })?;
    if let Some(content_type) = event.attribute(Attribute::DataContentType)? {
        if !content_type.starts_with("application/json") {
            return Err(FieldError::new(
                "datacontenttype",
                format!("must be application/json, got {content_type:?}"),
            ));
        }
    }
    let subject = event.attribute(Attribute::Subject)?.map(str::to_owned);
    let payload = event.payload(kind).map_err(|e| e.within("data"))?;
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
