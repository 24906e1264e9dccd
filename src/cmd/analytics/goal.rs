//! `analytics goal create|progress|list`: operator goals. Writes go through a running server.

use ats_projections::progress::{self, GoalDto};
use comfy_table::Table;
use serde::{Deserialize, Serialize};

use super::{print_json, Read};
use crate::config::Config;

/// Goal commands.
#[derive(clap::Subcommand)]
pub enum Command {
    /// Create a goal (appends `ats.goal.created` through a running server).
    Create {
        /// Operator id.
        operator_id: String,
        /// Name.
        #[arg(long)]
        name: String,
        /// Target value.
        #[arg(long)]
        target: f64,
        /// Unit (default `units`).
        #[arg(long)]
        unit: Option<String>,
        /// Description.
        #[arg(long)]
        description: Option<String>,
        /// Deadline (RFC 3339).
        #[arg(long)]
        deadline: Option<String>,
        #[command(flatten)]
        read: Read,
    },
    /// Set a goal's current value (appends `ats.goal.progressed` through a running server).
    Progress {
        /// Goal id.
        goal_id: String,
        /// The new current value.
        #[arg(long)]
        value: f64,
        #[command(flatten)]
        read: Read,
    },
    /// An operator's goals.
    List {
        /// Operator id.
        operator_id: String,
        /// Hide completed goals.
        #[arg(long)]
        active: bool,
        /// Judge deadlines at this instant (RFC 3339; default now).
        #[arg(long)]
        as_of: Option<String>,
        #[command(flatten)]
        read: Read,
    },
}

/// The goal list as the API serves it.
#[derive(Serialize, Deserialize)]
struct GoalList {
    operator_id: String,
    goals: Vec<GoalDto>,
    count: usize,
}

pub async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    match command {
        Command::Create {
            operator_id,
            name,
            target,
            unit,
            description,
            deadline,
            read,
        } => {
            let mut body = serde_json::json!({"name": name, "target_value": target});
            for (key, value) in [
                ("unit", unit),
                ("description", description),
                ("deadline", deadline),
            ] {
                if let Some(value) = value {
                    body[key] = value.into();
                }
            }
            let path = format!("/api/analytics/operator/{operator_id}/goals");
            read.source
                .write(&path, &body, read.json(), |goal| {
                    format!(
                        "goal {} created for {operator_id} at position {}",
                        goal["id"], goal["position"]
                    )
                })
                .await?;
        }
        Command::Progress {
            goal_id,
            value,
            read,
        } => {
            let body = serde_json::json!({"value": value});
            let path = format!("/api/analytics/goals/{goal_id}/progress");
            read.source
                .write(&path, &body, read.json(), |receipt| {
                    format!(
                        "goal {goal_id} set to {value} at position {}",
                        receipt["positions"][0]
                    )
                })
                .await?;
        }
        Command::List {
            operator_id,
            active,
            as_of,
            read,
        } => {
            let as_of = super::progress::as_of(as_of.as_deref())?;
            let path = format!(
                "/api/analytics/operator/{operator_id}/goals?include_completed={}&as_of={}",
                !active,
                as_of.to_rfc3339()
            );
            let list: GoalList = read
                .source
                .fetch(&config, progress::NAME, &path, |tree| {
                    let goals = progress::goals(tree, &operator_id, !active, as_of);
                    Ok(GoalList {
                        operator_id: operator_id.clone(),
                        count: goals.len(),
                        goals,
                    })
                })
                .await?;
            if read.json() {
                return print_json(&list);
            }
            let mut table = Table::new();
            table.set_header([
                "Goal",
                "Name",
                "Progress",
                "Deadline",
                "Completed",
                "Overdue",
            ]);
            for g in &list.goals {
                table.add_row([
                    g.goal.id.clone(),
                    g.goal.name.clone(),
                    format!(
                        "{}/{} {} ({:.1}%)",
                        g.goal.current_value,
                        g.goal.target_value,
                        g.goal.unit,
                        g.progress_percentage
                    ),
                    g.goal.deadline.map_or("-".into(), |d| d.to_rfc3339()),
                    g.goal.completed_at.map_or(
                        if g.completed {
                            "yes".into()
                        } else {
                            "no".into()
                        },
                        |t| t.to_rfc3339(),
                    ),
                    if g.overdue { "yes" } else { "no" }.to_owned(),
                ]);
            }
            println!("{table}");
        }
    }
    Ok(())
}
