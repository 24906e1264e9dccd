//! # ats-commands: intents become validated events
//!
//! Nothing reaches the log without passing through here. [`intake`] turns a CloudEvents
//! request body (one event or a batch) into validated [`ats_events::Envelope`]s, all or
//! nothing, with errors that name the event index and the field. Event ids are the
//! idempotency keys: a producer's string id maps to a stable UUID v5
//! ([`ats_events::cloudevents::event_id`]).
//!
//! [`keys`] makes API keys: the secret shown once, the event that records only its hash.
//!
//! This crate neither reads the log nor writes read models.
//!
//! ```
//! let body = br#"{"specversion":"1.0","id":"a1","type":"ats.skill.assessed","source":"t",
//!   "time":"2026-11-01T10:00:00Z","data":{"operator_id":"op","skill":"recon","score":0.5}}"#;
//! let events = ats_commands::intake::parse_body(body, &ats_commands::intake::Limits::default()).unwrap();
//! assert_eq!(events.len(), 1);
//! ```

pub mod intake;
pub mod intents;
pub mod keys;
