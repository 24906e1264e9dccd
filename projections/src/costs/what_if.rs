//! What-if repricing (DOMAIN.md §A3): the cost of a window had some models been priced
//! otherwise, or replaced by others, computed by replaying the log into a scratch tree with
//! the usage events rewritten. The live read model is never touched.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use ats_events::{Envelope, Payload, Timestamp};
use ats_ingest::EventLog;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::registry::token_cost;
use super::{breakdown, CostBreakdown, CostCategory, CostsProjector};
use crate::runtime::{fold_into, ApplyError, Projector};
use crate::view::View;

/// A price to assume for one model, at every time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssumedPrice {
    /// `provider/name`.
    pub model: String,
    /// USD per 1,000 input tokens.
    pub cost_per_1k_input_tokens: f64,
    /// USD per 1,000 output tokens.
    pub cost_per_1k_output_tokens: f64,
    /// USD per 1,000 cached input tokens.
    #[serde(default)]
    pub cost_per_1k_cached_input_tokens: Option<f64>,
}

/// How to reprice: model substitutions (`from` → `to`), then assumed prices. Usage of a
/// substituted or re-priced model is priced from its tokens (its producer cost no longer
/// applies); other usage keeps its cost.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Repricing {
    /// Usage of the key model is counted as usage of the value model.
    #[serde(default)]
    pub substitutions: BTreeMap<String, String>,
    /// Prices that replace the registry's for these models.
    #[serde(default)]
    pub prices: Vec<AssumedPrice>,
}

/// The costs fold over usage rewritten by a [`Repricing`].
struct Repriced(Repricing);

impl Projector for Repriced {
    fn name(&self) -> &'static str {
        "costs_what_if"
    }

    fn apply(&self, view: &mut View<'_>, event: &Envelope) -> Result<(), ApplyError> {
        let Payload::LlmUsage(usage) = &event.payload else {
            return CostsProjector.apply(view, event);
        };
        let mut usage = usage.clone();
        if let Some(to) = self.0.substitutions.get(&usage.model) {
            // Priced by the fold from the substitute's price in force (unpriced if none).
            usage.model = to.clone();
            usage.cost = None;
        }
        if let Some(price) = self.0.prices.iter().find(|p| p.model == usage.model) {
            usage.cost = Some(token_cost(
                [
                    price.cost_per_1k_input_tokens,
                    price.cost_per_1k_output_tokens,
                ],
                price.cost_per_1k_cached_input_tokens,
                [
                    usage.input_tokens,
                    usage.cached_input_tokens,
                    usage.output_tokens,
                ],
            ));
        }
        let mut rewritten = event.clone();
        rewritten.payload = Payload::LlmUsage(usage);
        CostsProjector.apply(view, &rewritten)
    }
}

/// A window priced as it was and as it would have been.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct WhatIf {
    /// The window as folded (per model).
    pub actual: CostBreakdown,
    /// The window repriced (per model, after substitutions).
    pub what_if: CostBreakdown,
    /// actual − what-if total (negative: it would cost more).
    pub savings: f64,
    /// savings / actual × 100 (0 when nothing was spent).
    pub savings_percentage: f64,
}

/// Replays the log up to its head twice into scratch trees (as folded, and repriced) and
/// compares the per-model breakdowns of the window of `time_range_days` ending with `as_of`.
///
/// The trees are written in a directory of their own under `scratch`, removed when the
/// answer is ready: on disk, because a replay of a large log is as large as the live costs
/// read model, and sled's default place for a temporary store is `/dev/shm`, i.e. memory.
pub async fn what_if(
    log: Arc<dyn EventLog>,
    repricing: Repricing,
    time_range_days: Option<u32>,
    as_of: Timestamp,
    scratch: &Path,
) -> Result<WhatIf, String> {
    static RUNS: AtomicU64 = AtomicU64::new(0);
    let dir = scratch.join(format!(
        "what-if-{}-{}",
        std::process::id(),
        RUNS.fetch_add(1, Ordering::Relaxed)
    ));
    let scratch = sled::Config::new()
        .path(&dir)
        .temporary(true)
        .open()
        .map_err(|e| format!("cannot open a scratch store in {}: {e}", dir.display()))?;
    let answer = compare(&scratch, log, repricing, time_range_days, as_of).await;
    drop(scratch);
    // sled removes a temporary store when the last of its background tasks lets go of it,
    // which may be after the answer is sent: removed here, so that none outlives its request.
    if let Err(err) = std::fs::remove_dir_all(&dir) {
        if err.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!(%err, dir = %dir.display(), "cannot remove a what-if scratch store");
        }
    }
    answer
}

/// [`what_if`]'s two replays into trees of `scratch`, and their comparison.
async fn compare(
    scratch: &sled::Db,
    log: Arc<dyn EventLog>,
    repricing: Repricing,
    time_range_days: Option<u32>,
    as_of: Timestamp,
) -> Result<WhatIf, String> {
    let head = log.head().await.map_err(|e| e.to_string())?;
    let mut trees = Vec::new();
    let projectors: [Arc<dyn Projector>; 2] =
        [Arc::new(CostsProjector), Arc::new(Repriced(repricing))];
    for (i, projector) in projectors.into_iter().enumerate() {
        let tree = scratch
            .open_tree(format!("what_if_{i}"))
            .map_err(|e| e.to_string())?;
        fold_into(projector, &tree, log.clone(), head, |_| {}).await?;
        trees.push(tree);
    }
    let actual = breakdown(&trees[0], CostCategory::ModelUsage, time_range_days, as_of);
    let what_if = breakdown(&trees[1], CostCategory::ModelUsage, time_range_days, as_of);
    let savings = actual.total_cost - what_if.total_cost;
    Ok(WhatIf {
        savings_percentage: if actual.total_cost > 0.0 {
            savings / actual.total_cost * 100.0
        } else {
            0.0
        },
        savings,
        actual,
        what_if,
    })
}
