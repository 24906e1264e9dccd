//! `analytics budget set|show`: cost budgets and their alerts.

use ats_events::Timestamp;
use ats_projections::costs::{self, budgets::BudgetStatus};
use comfy_table::Table;
use serde::{Deserialize, Serialize};

use super::{print_json, Read};
use crate::config::Config;

/// Budget commands.
#[derive(clap::Subcommand)]
pub enum Command {
    /// Set a budget (appends `ats.budget.set` through a running server).
    Set {
        /// `global`, `profile` or `session`.
        #[arg(long, default_value = "global")]
        scope: String,
        /// Profile or session id (not for global).
        #[arg(long)]
        entity_id: Option<String>,
        /// USD per period.
        #[arg(long)]
        amount: f64,
        /// `none`, `daily`, `weekly` or `monthly`.
        #[arg(long, default_value = "none")]
        period: String,
        /// Alert thresholds (fractions); default 0.75, 0.9, 1.0.
        #[arg(long = "threshold")]
        thresholds: Vec<f64>,
        #[command(flatten)]
        read: Read,
    },
    /// Every budget: spend in the current period, remaining, alerts.
    Show {
        #[command(flatten)]
        read: Read,
    },
}

#[derive(Serialize, Deserialize)]
struct List {
    budgets: Vec<BudgetStatus>,
    count: usize,
    as_of: String,
}

pub async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    match command {
        Command::Set {
            scope,
            entity_id,
            amount,
            period,
            thresholds,
            read,
        } => {
            let body = serde_json::json!({"scope": scope, "entity_id": entity_id, "amount": amount,
                                          "period": period, "thresholds": thresholds});
            let receipt = read
                .source
                .post_json("/api/analytics/cost/budgets", &body)
                .await?;
            if read.json() {
                return print_json(&receipt);
            }
            println!(
                "{scope} budget of ${amount:.2} ({period}) set at position {}",
                receipt["positions"][0]
            );
            Ok(())
        }
        Command::Show { read } => {
            let list: List = read
                .source
                .fetch(
                    &config,
                    costs::NAME,
                    "/api/analytics/cost/budgets",
                    |tree| {
                        let as_of = Timestamp::now();
                        let budgets = costs::budgets::budgets(tree, as_of);
                        Ok(List {
                            count: budgets.len(),
                            budgets,
                            as_of: as_of.to_rfc3339(),
                        })
                    },
                )
                .await?;
            if read.json() {
                return print_json(&list);
            }
            print!("{}", budget_table(&list.budgets));
            Ok(())
        }
    }
}

fn budget_table(budgets: &[BudgetStatus]) -> String {
    if budgets.is_empty() {
        return "No budgets set.\n".into();
    }
    let mut table = Table::new();
    table.set_header([
        "Scope",
        "Entity",
        "Amount",
        "Period",
        "Spent",
        "Remaining",
        "Within",
        "Alerts",
    ]);
    for b in budgets {
        let alerts: Vec<String> = b
            .alerts
            .iter()
            .map(|a| format!("{:.0}% ({})", a.threshold * 100.0, a.period))
            .collect();
        table.add_row([
            format!("{:?}", b.budget.scope).to_lowercase(),
            b.budget.entity_id.clone().unwrap_or_default(),
            format!("${:.2}", b.budget.amount),
            format!("{:?}", b.budget.period).to_lowercase(),
            format!("${:.2}", b.spent),
            format!("${:.2}", b.remaining),
            if b.within_budget { "yes" } else { "no" }.to_owned(),
            alerts.join(", "),
        ]);
    }
    format!("{table}\n")
}
