//! # ats-projections: read models folded from the log
//!
//! - [`Projector`]: a pure fold of events into one sled tree, via a [`View`] that caches what
//!   a batch touches and writes each changed key once per batch.
//! - [`runtime`]: runs each projector as an independent task — catch up, then tail; the
//!   checkpoint and a running digest of the tree are written after the read-model changes,
//!   between the setting and the removal of a marker, so a crash never applies an event twice
//!   or skips one (a tree found marked is folded again from 0). Poison events go to a dead-letter range of the tree. Rebuilds replay into a
//!   fresh tree and swap it in atomically.
//! - [`store::Store`]: the sled database, verified at open and rebuilt when it is damaged.
//! - Read models: [`profiles`] (operators, skills, sessions, metrics), [`progress`] (XP,
//!   levels, milestones, goals, certifications, paths, leaderboards), [`costs`] (LLM prices,
//!   usage, breakdowns, budgets, optimizer), [`activity`] (sessions by UTC day, running
//!   sessions), [`alerts`] (acknowledgements; alerts are evaluated at query time), [`keys`]
//!   (API keys: scopes, secret hashes, revocations).
//! - [`dashboard`]: the aggregator of §B8 (summary, trends, dashboard) over those trees;
//!   [`reports`]: the report generators of §B7 and the stored reports (`reports_v1`).
//! - [`analytics`]: pure functions over read-model data with an explicit `as_of`.
//!
//! No fold reads the clock: time comes from events.
//!
//! ```no_run
//! # async fn demo(log: std::sync::Arc<dyn ats_ingest::EventLog>) {
//! use ats_projections::{runtime::Runtime, store::Store};
//! let store = Store::open("data/read-models").unwrap();
//! let runtime = Runtime::start(store, log, ats_projections::all_projectors());
//! # }
//! ```

pub mod activity;
pub mod alerts;
pub mod analytics;
pub mod costs;
pub mod dashboard;
pub mod keys;
pub mod profiles;
pub mod progress;
pub mod reports;
pub mod runtime;
pub mod store;
pub mod training;
mod view;
mod watch;

use std::sync::Arc;

pub use runtime::{ApplyError, Projector};
pub use view::{Encoding, View};

/// Every projector of the engine, in a fixed order.
pub fn all_projectors() -> Vec<Arc<dyn Projector>> {
    vec![
        Arc::new(profiles::ProfilesProjector),
        Arc::new(progress::ProgressProjector),
        Arc::new(costs::CostsProjector),
        Arc::new(activity::ActivityProjector),
        Arc::new(alerts::AlertsProjector),
        Arc::new(reports::ReportsProjector),
        Arc::new(keys::KeysProjector),
    ]
}

#[cfg(test)]
pub(crate) mod testing {
    use std::cell::RefCell;

    thread_local! {
        /// The directories of this test thread's trees, removed when the thread ends.
        static DIRS: RefCell<Vec<tempfile::TempDir>> = const { RefCell::new(Vec::new()) };
    }

    /// A fresh tree named `name` for a test, in a directory removed when the test's thread
    /// ends rather than when the database is dropped: the anomaly detector's cache holds the
    /// last tree it read for the rest of the process, and a `temporary` sled store (in
    /// `/dev/shm`) held there was never removed.
    pub(crate) fn tree(name: &str) -> sled::Tree {
        let dir = tempfile::tempdir().expect("a test directory");
        let db = sled::Config::new()
            .path(dir.path().join("db"))
            .open()
            .expect("a test store");
        DIRS.with(|dirs| dirs.borrow_mut().push(dir));
        db.open_tree(name).expect("a test tree")
    }
}
