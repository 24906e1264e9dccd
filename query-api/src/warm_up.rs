//! Keeps the spend-anomaly baselines of today warm, so that no user pays for them.
//!
//! Every dashboard judges the spend anomalies of `as_of`'s day against the 28 days before it,
//! and the anomalies endpoint those of its window's days ([`anomalies::detect`]). The days
//! before today are cached per span once read, but the first request of a span reads every
//! series' buckets of every one of its days: 0.1–0.6 s at 1M–3M events, paid by whoever asks
//! first after a start, after a rebuild, or after midnight UTC. This task pays it instead,
//! for the dashboard's window and the endpoint's default one: once the costs projector is
//! live, and again every [`WARM_EVERY`] (a warm span costs one bucket read per day of it, so
//! checking often is cheap; a new day or a rebuilt tree is then warm within that delay).

use std::future::Future;
use std::time::Duration;

use ats_events::Timestamp;
use ats_projections::alerts::ANOMALY_WINDOW_DAYS;
use ats_projections::costs::{self, anomalies};
use ats_projections::runtime::ProjectorState;

use crate::state::AppState;

/// How often a live costs projector's baselines are judged again as of now.
pub const WARM_EVERY: Duration = Duration::from_secs(60);

/// How often the task looks again while the costs projector is not live yet.
const WAIT_STEP: Duration = Duration::from_secs(1);

/// Warms today's anomaly baselines until `shutdown` resolves: at once when the costs
/// projector is live, then every [`WARM_EVERY`].
pub async fn run(state: AppState, shutdown: impl Future<Output = ()>) {
    tokio::pin!(shutdown);
    loop {
        let pause = if warm(&state).await {
            WARM_EVERY
        } else {
            WAIT_STEP
        };
        tokio::select! {
            () = &mut shutdown => return,
            () = tokio::time::sleep(pause) => {}
        }
    }
}

/// Judges today's spend anomalies as the dashboard and the anomalies endpoint (its default
/// window) do, if the costs projector is live (judging a tree that is still replaying would
/// read its days again at every turn); returns whether it did.
async fn warm(state: &AppState) -> bool {
    let Some(handle) = state.runtime.handle(costs::NAME) else {
        return false;
    };
    if handle.status().state != ProjectorState::Live {
        return false;
    }
    let tree = handle.tree();
    let judged = tokio::task::spawn_blocking(move || {
        let now = Timestamp::now();
        for window in [ANOMALY_WINDOW_DAYS, anomalies::DEFAULT_WINDOW_DAYS] {
            anomalies::detect(&tree, window, now);
        }
    })
    .await;
    if let Err(error) = judged {
        tracing::warn!(message = "Anomaly warm-up failed.", %error);
    }
    true
}
