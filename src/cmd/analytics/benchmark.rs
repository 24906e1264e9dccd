//! `analytics benchmark set|list|compare`: benchmark values per metric type.

use ats_projections::{profiles, training};
use comfy_table::Table;
use serde::{Deserialize, Serialize};

use super::{print_json, Read};
use crate::config::Config;

/// Benchmark commands.
#[derive(clap::Subcommand)]
pub enum Command {
    /// Set a benchmark (appends `ats.benchmark.set` through a running server).
    Set {
        /// Benchmark id.
        benchmark_id: String,
        /// Metric type (stealth_rating, decision_quality, …).
        #[arg(long)]
        metric_type: String,
        /// Benchmark value.
        #[arg(long)]
        value: f64,
        #[command(flatten)]
        read: Read,
    },
    /// List the benchmarks.
    List {
        #[command(flatten)]
        read: Read,
    },
    /// Compare an operator's mean of the benchmark's metric with it.
    Compare {
        /// Operator id.
        operator_id: String,
        /// Benchmark id.
        benchmark_id: String,
        #[command(flatten)]
        read: Read,
    },
}

#[derive(Serialize, Deserialize)]
struct List {
    benchmarks: Vec<profiles::Benchmark>,
    count: usize,
}

pub async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    match command {
        Command::Set {
            benchmark_id,
            metric_type,
            value,
            read,
        } => {
            let body = serde_json::json!({"benchmark_id": benchmark_id, "metric_type": metric_type, "value": value});
            let receipt = read
                .source
                .post_json("/api/analytics/benchmarks", &body)
                .await?;
            if read.json() {
                return print_json(&receipt);
            }
            println!(
                "benchmark {benchmark_id} set ({metric_type} = {value}) at position {}",
                receipt["positions"][0]
            );
        }
        Command::List { read } => {
            let list: List = read
                .source
                .fetch(
                    &config,
                    profiles::NAME,
                    "/api/analytics/benchmarks",
                    |tree| {
                        let benchmarks = profiles::benchmarks(tree);
                        Ok(List {
                            count: benchmarks.len(),
                            benchmarks,
                        })
                    },
                )
                .await?;
            if read.json() {
                return print_json(&list);
            }
            let mut table = Table::new();
            table.set_header(["Benchmark", "Metric", "Value", "Set at"]);
            for b in &list.benchmarks {
                table.add_row([
                    b.benchmark_id.clone(),
                    b.metric_type.as_str().to_owned(),
                    format!("{:.3}", b.value),
                    b.created_at.to_rfc3339(),
                ]);
            }
            println!("{table}");
        }
        Command::Compare {
            operator_id,
            benchmark_id,
            read,
        } => {
            let cmp: training::BenchmarkComparison = read
                .source
                .fetch(
                    &config,
                    profiles::NAME,
                    &format!("/api/analytics/operator/{operator_id}/benchmarks/{benchmark_id}"),
                    |tree| {
                        profiles::profile(tree, &operator_id)
                            .ok_or_else(|| anyhow::anyhow!("Operator not found: {operator_id}"))?;
                        Ok(training::compare_to_benchmark(
                            tree,
                            &operator_id,
                            &benchmark_id,
                        ))
                    },
                )
                .await?;
            if read.json() {
                return print_json(&cmp);
            }
            let mut table = Table::new();
            table.set_header(["Comparison", &cmp.comparison]);
            let fmt = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.3}"));
            table.add_row(["Operator mean".to_owned(), fmt(cmp.metric_value)]);
            table.add_row(["Benchmark".to_owned(), fmt(cmp.benchmark_value)]);
            table.add_row([
                "Difference".to_owned(),
                format!("{:+.3} ({:+.1}%)", cmp.difference, cmp.percentage),
            ]);
            table.add_row([
                "Percentile rank".to_owned(),
                format!("{:.1} of {} operators", cmp.percentile_rank, cmp.population),
            ]);
            println!("{table}");
        }
    }
    Ok(())
}
