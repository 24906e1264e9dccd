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
    let total = count_lines(&args.file).unwrap_or(0);
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

/// Lines in a file, for the progress bar, counted in fixed-size chunks: an import file can be
/// far larger than memory.
fn count_lines(path: &std::path::Path) -> std::io::Result<u64> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut buf = vec![0u8; 1 << 16];
    let (mut lines, mut last) = (0u64, b'\n');
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            // A last line without a newline is a line too.
            return Ok(lines + u64::from(last != b'\n'));
        }
        lines += buf[..n].iter().filter(|b| **b == b'\n').count() as u64;
        last = buf[n - 1];
    }
}

#[cfg(test)]
mod tests {
    use super::count_lines;

    #[test]
    fn counts_lines_with_and_without_a_final_newline() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.ndjson");
        for (text, lines) in [("", 0), ("a\n", 1), ("a\nb", 2), ("a\n\nb\n", 3)] {
            std::fs::write(&path, text).unwrap();
            assert_eq!(count_lines(&path).unwrap(), lines, "{text:?}");
        }
        let big = "x\n".repeat(100_000);
        std::fs::write(&path, big).unwrap();
        assert_eq!(count_lines(&path).unwrap(), 100_000);
    }
}
