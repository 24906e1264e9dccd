//! `analytics anomalies`: the seed's cost anomaly rules and the robust detector.

use ats_events::Timestamp;
use ats_projections::costs::{
    self,
    anomalies::{SeedAnomaly, SpendAnomaly},
};
use comfy_table::Table;
use serde::{Deserialize, Serialize};

use super::{banner, print_json, Source};
use crate::config::Config;

/// Arguments of `anomalies`.
#[derive(clap::Args)]
pub struct Args {
    /// Days before now to examine.
    #[arg(short = 't', long, default_value_t = costs::anomalies::DEFAULT_WINDOW_DAYS)]
    days: u32,
    /// JSON instead of a table.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    source: Source,
}

#[derive(Serialize, Deserialize)]
struct Report {
    anomalies: Vec<SeedAnomaly>,
    spend_anomalies: Vec<SpendAnomaly>,
    count: usize,
}

pub async fn run(args: Args, config: Config) -> anyhow::Result<()> {
    let days = args.days;
    let path = format!("/api/analytics/cost/anomalies?time_range_days={days}");
    let report: Report = args
        .source
        .fetch(&config, costs::NAME, &path, |tree| {
            let as_of = Timestamp::now();
            let seed = costs::anomalies::seed_anomalies(tree, days, as_of);
            let spend = costs::anomalies::detect(tree, days, as_of);
            Ok(Report {
                count: seed.len() + spend.len(),
                anomalies: seed,
                spend_anomalies: spend,
            })
        })
        .await?;
    if args.json {
        return print_json(&report);
    }
    let mut out = banner(&format!("Cost Anomalies - Last {days} Days"));
    if report.count == 0 {
        out.push_str("No anomalies detected.\n");
    }
    for a in &report.anomalies {
        let (kind, description) = match a {
            SeedAnomaly::ExpensiveRequests { description, .. } => {
                ("expensive_requests", description)
            }
            SeedAnomaly::CostSpike { description, .. } => ("cost_spike", description),
            SeedAnomaly::HighErrorRate { description, .. } => ("high_error_rate", description),
        };
        out.push_str(&format!("- {kind}: {description}\n"));
    }
    if !report.spend_anomalies.is_empty() {
        let mut table = Table::new();
        table.set_header([
            "Day",
            "Series",
            "Actual",
            "Expected",
            "Upper",
            "Severity",
            "Root causes",
        ]);
        for a in &report.spend_anomalies {
            let causes: Vec<String> = a
                .root_causes
                .iter()
                .map(|c| format!("{}={} (+${:.2})", c.dimension, c.value, c.excess))
                .collect();
            table.add_row([
                a.day.clone(),
                if a.value.is_empty() {
                    a.dimension.clone()
                } else {
                    format!("{}={}", a.dimension, a.value)
                },
                format!("${:.2}", a.actual),
                format!("${:.2}", a.expected),
                format!("${:.2}", a.upper_bound),
                format!("{:?}", a.severity).to_lowercase(),
                causes.join(", "),
            ]);
        }
        out.push_str(&format!("{table}\n"));
    }
    print!("{out}");
    Ok(())
}
