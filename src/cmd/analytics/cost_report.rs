//! `analytics cost-report`: the cost breakdown of one category over the last days.

use ats_events::Timestamp;
use ats_projections::costs::{self, CostBreakdown, CostCategory};
use comfy_table::Table;

use super::{banner, print_json, Read};
use crate::config::Config;

/// The seed's `--category` values (`model` is `model_usage`; the seed has no `time_period`
/// here, we accept it too).
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Category {
    /// By model.
    Model,
    /// By operator profile.
    Profile,
    /// By scenario.
    Scenario,
    /// By phase.
    Phase,
    /// By UTC day.
    TimePeriod,
}

impl Category {
    fn cost_category(self) -> CostCategory {
        match self {
            Self::Model => CostCategory::ModelUsage,
            Self::Profile => CostCategory::Profile,
            Self::Scenario => CostCategory::Scenario,
            Self::Phase => CostCategory::Phase,
            Self::TimePeriod => CostCategory::TimePeriod,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Self::Model => "model",
            Self::Profile => "profile",
            Self::Scenario => "scenario",
            Self::Phase => "phase",
            Self::TimePeriod => "time_period",
        }
    }
}

/// Arguments of `cost-report`.
#[derive(clap::Args)]
pub struct Args {
    /// Days, ending today (UTC).
    #[arg(short = 't', long, default_value_t = 7)]
    timeframe: u32,
    /// What to group by.
    #[arg(short = 'c', long, value_enum, default_value = "model")]
    category: Category,
    #[command(flatten)]
    read: Read,
}

pub async fn run(args: Args, config: Config) -> anyhow::Result<()> {
    let category = args.category.cost_category();
    let days = args.timeframe.max(1);
    let path = format!(
        "/api/analytics/cost/breakdown?category={}&time_range_days={days}",
        category.as_str()
    );
    let breakdown = args
        .read
        .source
        .fetch(&config, costs::NAME, &path, |tree| {
            Ok(costs::breakdown(
                tree,
                category,
                Some(days),
                Timestamp::now(),
            ))
        })
        .await?;
    if args.read.json() {
        print_json(&breakdown)
    } else {
        print!("{}", cost_table(&breakdown, days, args.category.label()));
        Ok(())
    }
}

/// The seed's `cost-report` table: totals, then the 10 most expensive items.
pub fn cost_table(b: &CostBreakdown, days: u32, category: &str) -> String {
    let mut out = banner(&format!("Cost Report - Last {days} Days"));
    out.push_str(&format!("Category: {category}\n"));
    out.push_str(&format!("Total Cost: ${:.2}\n", b.total_cost));
    out.push_str(&format!(
        "Percentage of Total: {:.1}%\n",
        b.percentage_of_total
    ));
    if b.unpriced_requests > 0 {
        out.push_str(&format!(
            "Unpriced Requests: {} ({} tokens at $0)\n",
            b.unpriced_requests, b.unpriced_tokens
        ));
    }
    out.push_str("\nTop Cost Items:\n");
    let mut table = Table::new();
    table.set_header(["Item", "Cost", "Share"]);
    for item in b.ranked_items.iter().take(10) {
        table.add_row([
            item.item.clone(),
            format!("${:.2}", item.cost),
            format!("{:.1}%", item.share * 100.0),
        ]);
    }
    out.push_str(&format!("{table}\n"));
    out
}
