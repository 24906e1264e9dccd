//! MessagePack codec with named fields, so fields can be added without breaking old bytes.
//!
//! Old schema versions are upcast on read: the payload is decoded into a JSON value, each
//! upcaster from its version to the next rewrites it, and the result is decoded as today's type.

use serde::Deserialize;

use crate::envelope::{Envelope, CURRENT_SCHEMA};
use crate::time::Timestamp;

/// Why bytes could not become an event (or the reverse).
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// The bytes are not a MessagePack envelope of any known schema.
    #[error("cannot decode event: {0}")]
    Decode(String),
    /// The event could not be encoded.
    #[error("cannot encode event: {0}")]
    Encode(String),
    /// The envelope names a schema version this build does not know.
    #[error("event schema {found} is newer than this build's {CURRENT_SCHEMA}")]
    FutureSchema {
        /// The version found in the envelope.
        found: u16,
    },
    /// An upcaster refused the payload.
    #[error("cannot upcast {kind} from schema {from}: {reason}")]
    Upcast {
        /// Kind of the event.
        kind: String,
        /// Version upcast from.
        from: u16,
        /// What went wrong.
        reason: String,
    },
}

/// Rewrites the JSON payload of `kind` from schema `from` to `from + 1`.
pub type Upcaster = fn(kind: &str, data: &mut serde_json::Value) -> Result<(), String>;

/// Upcasters by the version they upgrade from: entry `i` turns version `i + 1` into `i + 2`.
/// Schema 1 is the first released version, so there is nothing to upcast yet; the first
/// change to a payload's shape bumps [`CURRENT_SCHEMA`] and adds its step here.
pub const UPCASTERS: &[Upcaster] = &[];

/// Encodes an event into a fresh buffer.
pub fn encode(event: &Envelope) -> Result<Vec<u8>, CodecError> {
    let mut buf = Vec::with_capacity(256);
    encode_into(event, &mut buf)?;
    Ok(buf)
}

/// Appends the encoding of `event` to `buf` (reuse the buffer on hot paths).
pub fn encode_into(event: &Envelope, buf: &mut Vec<u8>) -> Result<(), CodecError> {
    let mut ser = rmp_serde::Serializer::new(buf).with_struct_map();
    serde::Serialize::serialize(event, &mut ser).map_err(|e| CodecError::Encode(e.to_string()))
}

/// Decodes an event, upcasting older schema versions.
pub fn decode(bytes: &[u8]) -> Result<Envelope, CodecError> {
    decode_with(bytes, UPCASTERS)
}

/// [`decode`] with an explicit upcaster chain (tests exercise the mechanism with their own).
pub fn decode_with(bytes: &[u8], upcasters: &[Upcaster]) -> Result<Envelope, CodecError> {
    let current = 1 + upcasters.len() as u16;
    if let Ok(event) = rmp_serde::from_slice::<Envelope>(bytes) {
        if event.schema == current {
            return Ok(event);
        }
    }
    // Slow path: an old (or broken) event. Decode the payload loosely and upcast it.
    let shell: Shell =
        rmp_serde::from_slice(bytes).map_err(|e| CodecError::Decode(e.to_string()))?;
    if shell.schema > current {
        return Err(CodecError::FutureSchema {
            found: shell.schema,
        });
    }
    let serde_json::Value::Object(mut tagged) = shell.payload else {
        return Err(CodecError::Decode("payload is not a map".into()));
    };
    let Some((kind, mut data)) = tagged.iter_mut().next().map(|(k, v)| (k.clone(), v.take()))
    else {
        return Err(CodecError::Decode("payload has no kind".into()));
    };
    tagged.clear();
    let start = shell.schema.max(1);
    for (step, upcast) in upcasters.iter().enumerate().skip(usize::from(start) - 1) {
        upcast(&kind, &mut data).map_err(|reason| CodecError::Upcast {
            kind: kind.clone(),
            from: step as u16 + 1,
            reason,
        })?;
    }
    tagged.insert(kind, data);
    let payload = serde_json::from_value(serde_json::Value::Object(tagged))
        .map_err(|e| CodecError::Decode(e.to_string()))?;
    Ok(Envelope {
        id: shell.id,
        schema: current,
        occurred_at: shell.occurred_at,
        recorded_at: shell.recorded_at,
        source: shell.source,
        operator_id: shell.operator_id,
        payload,
    })
}

#[derive(Deserialize)]
struct Shell {
    id: uuid::Uuid,
    schema: u16,
    occurred_at: Timestamp,
    recorded_at: Timestamp,
    source: String,
    #[serde(default)]
    operator_id: Option<String>,
    payload: serde_json::Value,
}

/// Encodes several already-encoded events as one record (a MessagePack array of binaries):
/// the unit a batch is stored as where the log has no multi-message transaction (JetStream).
pub fn encode_record<'a>(events: impl ExactSizeIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut buf = Vec::new();
    // Writing into a Vec cannot fail.
    let _ = rmp::encode::write_array_len(&mut buf, events.len() as u32);
    for event in events {
        let _ = rmp::encode::write_bin(&mut buf, event);
    }
    buf
}

/// Splits a record made by [`encode_record`] into the encoded events it holds.
pub fn decode_record(mut bytes: &[u8]) -> Result<Vec<&[u8]>, CodecError> {
    let bad = |e: &dyn std::fmt::Display| CodecError::Decode(format!("bad record: {e}"));
    let count = rmp::decode::read_array_len(&mut bytes).map_err(|e| bad(&e))?;
    let mut out = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let len = rmp::decode::read_bin_len(&mut bytes).map_err(|e| bad(&e))? as usize;
        if bytes.len() < len {
            return Err(bad(&"truncated"));
        }
        let (event, rest) = bytes.split_at(len);
        out.push(event);
        bytes = rest;
    }
    Ok(out)
}
