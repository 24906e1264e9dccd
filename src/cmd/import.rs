//! `ats-mafia import FILE`: NDJSON CloudEvents into the log, with a progress bar.

use std::io::BufReader;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};

use crate::config::Config;
use crate::engine::LogArgs;

/// Arguments of `import`.
#[derive(clap::Args)]
pub struct Args {
    /// NDJSON file: one CloudEvent (or batch array) per line.
    pub file: PathBuf,
    /// Events per appended batch.
    #[arg(long, default_value_t = 1000)]
    pub batch: usize,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub log: LogArgs,
}

pub async fn run(args: Args, config: Config) -> anyhow::Result<()> {
    let paths = args.log.resolve(&config);
    let log = paths.open_log(Duration::from_secs(30)).await?;
    let file = std::fs::File::open(&args.file)
        .with_context(|| format!("cannot open {}", args.file.display()))?;
    let total = std::fs::read_to_string(&args.file)
        .map(|t| t.lines().count() as u64)
        .unwrap_or(0);
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} importing [{bar:40}] {pos}/{len} lines ({per_sec}, eta {eta})",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let started = std::time::Instant::now();
    let summary = ats_ingest::intake::import_ndjson(
        log.as_ref(),
        BufReader::new(file),
        args.batch.max(1),
        |line| bar.set_position(line),
    )
    .await
    .with_context(|| format!("import of {} stopped", args.file.display()))?;
    bar.finish_and_clear();
    if args.json {
        println!("{}", serde_json::to_string(&summary)?);
    } else {
        println!(
            "imported {} lines in {:.1} s: {} events appended, {} already in the log, last position {}",
            summary.lines,
            started.elapsed().as_secs_f64(),
            summary.appended,
            summary.duplicates,
            summary.last_position
        );
    }
    Ok(())
}
