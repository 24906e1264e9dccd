//! # ats-events: the vocabulary of the log
//!
//! Everything the engine knows is an [`Envelope`] on the log. This crate owns:
//! - [`Envelope`], [`Payload`] and the payload types of the whole event catalogue
//!   (DOMAIN.md §A1), with serde names equal to the wire strings;
//! - the MessagePack codec with named fields ([`codec`]), schema versions and upcasters;
//! - the CloudEvents 1.0 JSON mapping used at the HTTP edge ([`cloudevents`]);
//! - validation with field-named errors ([`FieldError`]);
//! - a JSON Schema of every event kind ([`schema::event_json_schema`]).
//!
//! It does no I/O.
//!
//! ```
//! use ats_events::{codec, cloudevents::parse_cloud_event};
//! let json = serde_json::json!({
//!     "specversion": "1.0", "id": "s1-done", "type": "ats.skill.assessed",
//!     "source": "orchestrator", "time": "2026-11-01T10:00:00Z", "subject": "op_001",
//!     "data": {"operator_id": "op_001", "skill": "reconnaissance", "score": 0.8}
//! });
//! let event = parse_cloud_event(json).unwrap();
//! let bytes = codec::encode(&event).unwrap();
//! assert_eq!(codec::decode(&bytes).unwrap(), event);
//! ```

pub mod cloudevents;
pub mod codec;
mod envelope;
mod payload;
pub mod schema;
mod time;
mod validate;

pub use envelope::{Envelope, EventId, CURRENT_SCHEMA};
pub use payload::*;
pub use time::Timestamp;
pub use validate::{FieldError, Validate};
