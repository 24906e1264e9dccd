//! The envelope every event travels in.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::payload::{EventKind, Payload};
use crate::time::Timestamp;

/// An event's identity and idempotency key.
pub type EventId = Uuid;

/// The schema version this build writes. Older versions are upcast on read ([`crate::codec`]).
pub const CURRENT_SCHEMA: u16 = 1;

/// One event as stored on the log.
///
/// The kind is the tag of [`Payload`]. The log assigns positions; they are not part of the
/// envelope, so the same envelope has the same bytes in every backend.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// Idempotency key: a UUID from the producer, or a UUID v5 derived from its string id.
    pub id: EventId,
    /// Schema version of the payload.
    pub schema: u16,
    /// When it happened, according to the producer. Folds take time from here.
    pub occurred_at: Timestamp,
    /// When the log accepted it (set at append; zero before).
    pub recorded_at: Timestamp,
    /// Who produced it (CloudEvents `source`).
    pub source: String,
    /// The operator the event is about, where the kind has one.
    #[serde(default)]
    pub operator_id: Option<String>,
    /// Kind and data.
    pub payload: Payload,
}

impl Envelope {
    /// A new envelope at the current schema, not yet recorded.
    pub fn new(
        id: EventId,
        occurred_at: Timestamp,
        source: impl Into<String>,
        payload: Payload,
    ) -> Self {
        Self {
            id,
            schema: CURRENT_SCHEMA,
            occurred_at,
            recorded_at: Timestamp::default(),
            source: source.into(),
            operator_id: payload.operator_id().map(str::to_owned),
            payload,
        }
    }

    /// The event's kind.
    pub fn kind(&self) -> EventKind {
        self.payload.kind()
    }

    /// A digest of what the event says: everything but `recorded_at` (set by the log) and
    /// `occurred_at` (producers often re-stamp the time when they retry).
    ///
    /// Two submissions with the same id and the same digest are the same event (a retry: the
    /// first one stands); the same id with another digest is a conflict.
    pub fn content_digest(&self) -> u64 {
        // Borrowed, not a clone with the times zeroed: the same bytes without copying the
        // payload (a digest is computed per event at every append, and again when a JetStream
        // node indexes the stream).
        let content = Content {
            id: &self.id,
            schema: self.schema,
            occurred_at: Timestamp::default(),
            recorded_at: Timestamp::default(),
            source: &self.source,
            operator_id: &self.operator_id,
            payload: &self.payload,
        };
        // Encoding a value built only of maps, strings and numbers cannot fail.
        let bytes = rmp_serde::to_vec_named(&content).unwrap_or_default();
        let hash = Sha256::digest(&bytes);
        let mut first = [0u8; 8];
        first.copy_from_slice(&hash[..8]);
        u64::from_be_bytes(first)
    }
}

/// What [`Envelope::content_digest`] covers, borrowed: the fields of [`Envelope`] with the same
/// names, order and types, so it encodes to exactly the bytes of an envelope whose two times
/// are zero (digests stored before stay valid).
#[derive(Serialize)]
struct Content<'a> {
    id: &'a EventId,
    schema: u16,
    occurred_at: Timestamp,
    recorded_at: Timestamp,
    source: &'a str,
    operator_id: &'a Option<String>,
    payload: &'a Payload,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payload::SkillAssessed;

    /// The digest of the borrowed fields equals the digest of a zeroed clone, as before.
    #[test]
    fn content_digest_is_the_digest_of_a_zeroed_clone() {
        let mut event = Envelope::new(
            Uuid::from_u128(7),
            Timestamp::from_micros(1_700_000_000_000_000),
            "tests",
            Payload::SkillAssessed(SkillAssessed {
                operator_id: "op_1".into(),
                skill: "reconnaissance".into(),
                score: 0.25,
            }),
        );
        event.recorded_at = Timestamp::from_micros(1_700_000_000_000_001);
        let mut zeroed = event.clone();
        zeroed.occurred_at = Timestamp::default();
        zeroed.recorded_at = Timestamp::default();
        let bytes = rmp_serde::to_vec_named(&zeroed).unwrap();
        let hash = Sha256::digest(&bytes);
        let expected = u64::from_be_bytes(hash[..8].try_into().unwrap());
        assert_eq!(event.content_digest(), expected);
    }
}
