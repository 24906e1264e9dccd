//! `analytics what-if`: a window re-priced with model substitutions, by replay.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context;
use ats_events::Timestamp;
use ats_projections::costs::what_if::{self, Repricing, WhatIf};

use super::{banner, print_json, Source};
use crate::config::Config;

/// Arguments of `what-if`.
#[derive(clap::Args)]
pub struct Args {
    /// `FROM=TO`: count usage of model FROM as usage of model TO (repeatable).
    #[arg(long = "substitute", required = true)]
    substitutions: Vec<String>,
    /// Days ending today (absent: all time).
    #[arg(short = 't', long)]
    days: Option<u32>,
    /// JSON instead of text.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    source: Source,
}

pub async fn run(args: Args, config: Config) -> anyhow::Result<()> {
    let mut substitutions = BTreeMap::new();
    for pair in &args.substitutions {
        let (from, to) = pair
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("--substitute: expected FROM=TO, got {pair:?}"))?;
        substitutions.insert(from.to_owned(), to.to_owned());
    }
    let result: WhatIf = match &args.source.url {
        Some(_) => {
            let body =
                serde_json::json!({"substitutions": substitutions, "time_range_days": args.days});
            let answer = args
                .source
                .post_json("/api/analytics/cost/what-if", &body)
                .await?;
            serde_json::from_value(answer).context("unexpected answer from the server")?
        }
        None => {
            let paths = args.source.log.resolve(&config);
            let log = paths.open_log(Duration::from_secs(10)).await?;
            let repricing = Repricing {
                substitutions,
                prices: Vec::new(),
            };
            what_if::what_if(
                log,
                repricing,
                args.days,
                Timestamp::now(),
                &paths.scratch(),
            )
            .await
            .map_err(|e| anyhow::anyhow!("cannot replay the log: {e}"))?
        }
    };
    if args.json {
        return print_json(&result);
    }
    let mut out = banner("What-if Repricing");
    out.push_str(&format!("Actual cost: ${:.2}\n", result.actual.total_cost));
    out.push_str(&format!(
        "What-if cost: ${:.2}\n",
        result.what_if.total_cost
    ));
    out.push_str(&format!(
        "Savings: ${:.2} ({:.1}%)\n",
        result.savings, result.savings_percentage
    ));
    print!("{out}");
    Ok(())
}
