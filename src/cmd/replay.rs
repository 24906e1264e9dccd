//! `ats-mafia replay`: rebuild every read model from position 0, offline.

use std::time::Duration;

use comfy_table::Table;
use indicatif::{ProgressBar, ProgressStyle};

use crate::config::Config;
use crate::engine::LogArgs;

/// Arguments of `replay`.
#[derive(clap::Args)]
pub struct Args {
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub log: LogArgs,
}

pub async fn run(args: Args, config: Config) -> anyhow::Result<()> {
    let paths = args.log.resolve(&config);
    let log = paths.open_log(Duration::from_secs(30)).await?;
    let store = paths.open_store()?;
    let head = log.head().await?;
    tracing::info!(
        head,
        log = log.backend(),
        "replaying every projector from position 0"
    );
    let bar = ProgressBar::new(head);
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} [{bar:40}] {pos}/{len}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let started = std::time::Instant::now();
    let mut positions: std::collections::BTreeMap<String, u64> = ats_projections::all_projectors()
        .iter()
        .map(|p| (p.name().to_owned(), 0))
        .collect();
    let results = ats_projections::runtime::rebuild_all(
        &store,
        log,
        ats_projections::all_projectors(),
        |name, position, _| {
            // The projectors replay side by side: show the one furthest behind.
            positions.insert(name.to_owned(), position);
            if let Some((slowest, at)) = positions.iter().min_by_key(|(_, p)| **p) {
                bar.set_message(slowest.clone());
                bar.set_position(*at);
            }
        },
    )
    .await
    .map_err(|e| anyhow::anyhow!("replay failed: {e}"))?;
    bar.finish_and_clear();
    if args.json {
        let rows: Vec<_> = results
            .iter()
            .map(|(name, position, digest)| serde_json::json!({"projector": name, "position": position, "digest": digest}))
            .collect();
        println!("{}", serde_json::json!({"head": head, "projectors": rows}));
        return Ok(());
    }
    let mut table = Table::new();
    table.set_header(["Projector", "Position", "Digest"]);
    for (name, position, digest) in &results {
        table.add_row([name.clone(), position.to_string(), digest.clone()]);
    }
    println!("{table}");
    println!(
        "rebuilt {} read models from {} log positions in {:.1} s; compare the digests with GET /api/admin/projectors",
        results.len(),
        head,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
