//! # ats-ingest: where events live
//!
//! - [`EventLog`]: the append-only log seam. Appends are durable when they return, idempotent
//!   on event id, all-or-nothing per batch; reads go by [`Position`].
//! - [`embedded::EmbeddedLog`]: the default backend, a redb file on local disk (ACID, fsynced
//!   commits), no server needed.
//! - [`jetstream::JetStreamLog`]: NATS JetStream, for many machines.
//! - [`intake`]: adapters that bring events in — the NATS intake subject and NDJSON import.
//!   (The HTTP handler lives in the query API and calls the same [`intake::submit`].)
//!
//! It knows nothing of read models.
//!
//! ```no_run
//! # async fn demo() -> Result<(), ats_ingest::LogError> {
//! use ats_ingest::{embedded::EmbeddedLog, EventLog};
//! let log = EmbeddedLog::open("data/log.redb")?;
//! let head = log.head().await?;
//! let events = log.read(0, 100).await?;
//! # Ok(()) }
//! ```

pub mod embedded;
mod id_filter;
pub mod id_index;
pub mod intake;
pub mod jetstream;
mod log;
mod recent;
mod runs;
mod staging;
#[cfg(feature = "testkit")]
pub mod testkit;

pub use log::*;
