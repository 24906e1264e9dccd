//! `analytics forecast`: spend to the end of the budget period, with an 80 % interval.

use ats_events::{BudgetPeriod, BudgetScope, Timestamp};
use ats_projections::costs::{self, forecast::Forecast};

use super::{banner, print_json, Source};
use crate::config::Config;

/// Arguments of `forecast`.
#[derive(clap::Args)]
pub struct Args {
    /// `global`, `profile` or `session`.
    #[arg(long, default_value = "global")]
    scope: String,
    /// Profile or session id.
    #[arg(long)]
    entity_id: Option<String>,
    /// `daily`, `weekly` or `monthly` (default: the budget's, else monthly).
    #[arg(long)]
    period: Option<String>,
    /// JSON instead of text.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    source: Source,
}

fn parse<T: serde::de::DeserializeOwned>(name: &str, text: &str) -> anyhow::Result<T> {
    serde_json::from_value(serde_json::Value::String(text.to_owned()))
        .map_err(|_| anyhow::anyhow!("--{name}: unknown value {text:?}"))
}

pub async fn run(args: Args, config: Config) -> anyhow::Result<()> {
    let scope: BudgetScope = parse("scope", &args.scope)?;
    let period: Option<BudgetPeriod> = args
        .period
        .as_deref()
        .map(|p| parse("period", p))
        .transpose()?;
    let mut path = format!("/api/analytics/cost/forecast?scope={}", args.scope);
    if let Some(entity) = &args.entity_id {
        path.push_str(&format!("&entity_id={entity}"));
    }
    if let Some(p) = &args.period {
        path.push_str(&format!("&period={p}"));
    }
    let entity = args.entity_id.clone();
    let f: Forecast = args
        .source
        .fetch(&config, costs::NAME, &path, |tree| {
            Ok(costs::forecast::forecast(
                tree,
                scope,
                entity.as_deref(),
                period,
                Timestamp::now(),
            ))
        })
        .await?;
    if args.json {
        return print_json(&f);
    }
    let mut out = banner(&format!(
        "Cost Forecast {} to {}",
        f.period_start, f.period_end
    ));
    out.push_str(&format!("Spent to date: ${:.2}\n", f.spent_to_date));
    out.push_str(&format!(
        "Predicted total: ${:.2} (80 %: ${:.2} - ${:.2})\n",
        f.predicted_total, f.lower_80, f.upper_80
    ));
    if let Some(budget) = f.budget {
        out.push_str(&format!("Budget: ${budget:.2}\n"));
        out.push_str(&format!(
            "Exhaustion date: {}\n",
            f.exhaustion_date
                .as_deref()
                .unwrap_or("not within the period")
        ));
    }
    out.push_str(&format!(
        "History: {} days, ${:.2}/day\n",
        f.history_days, f.daily_level
    ));
    print!("{out}");
    Ok(())
}
