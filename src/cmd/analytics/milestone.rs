//! `analytics milestone register|list`: the milestones in force. Writes go through a server.

use ats_projections::progress::{self, Milestone};
use comfy_table::Table;
use serde::{Deserialize, Serialize};

use super::{print_json, Read};
use crate::config::Config;

/// Milestone commands.
#[derive(clap::Subcommand)]
pub enum Command {
    /// Register a custom milestone (appends `ats.milestone.registered` through a running
    /// server); it applies from its position on.
    Register {
        /// Milestone id.
        id: String,
        /// Name.
        #[arg(long)]
        name: String,
        /// first_session, session_count, hours_trained, skill_milestone, certification, mastery
        /// or special_event.
        #[arg(long = "type")]
        milestone_type: String,
        /// Requirements as a JSON object (`{"sessions": 5}`).
        #[arg(long, default_value = "{}")]
        requirements: String,
        /// XP granted on unlock.
        #[arg(long)]
        xp: u64,
        /// Description.
        #[arg(long)]
        description: Option<String>,
        /// Badge icon.
        #[arg(long)]
        badge: Option<String>,
        #[command(flatten)]
        read: Read,
    },
    /// The milestones in force, in evaluation order.
    List {
        #[command(flatten)]
        read: Read,
    },
}

#[derive(Serialize, Deserialize)]
struct MilestoneList {
    milestones: Vec<Milestone>,
    count: usize,
}

pub async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    match command {
        Command::Register {
            id,
            name,
            milestone_type,
            requirements,
            xp,
            description,
            badge,
            read,
        } => {
            let requirements: serde_json::Value = serde_json::from_str(&requirements)
                .map_err(|e| anyhow::anyhow!("--requirements: not a JSON object: {e}"))?;
            let mut body = serde_json::json!({"id": id, "name": name, "milestone_type": milestone_type,
                                              "requirements": requirements, "xp_reward": xp});
            for (key, value) in [("description", description), ("badge_icon", badge)] {
                if let Some(value) = value {
                    body[key] = value.into();
                }
            }
            read.source
                .write("/api/analytics/milestones", &body, read.json(), |receipt| {
                    format!(
                        "milestone {id} registered at position {}",
                        receipt["positions"][0]
                    )
                })
                .await?;
        }
        Command::List { read } => {
            let list: MilestoneList = read
                .source
                .fetch(
                    &config,
                    progress::NAME,
                    "/api/analytics/milestones",
                    |tree| {
                        let milestones = progress::milestones(tree);
                        Ok(MilestoneList {
                            count: milestones.len(),
                            milestones,
                        })
                    },
                )
                .await?;
            if read.json() {
                return print_json(&list);
            }
            let mut table = Table::new();
            table.set_header(["Milestone", "Name", "Type", "Requirements", "XP"]);
            for m in &list.milestones {
                let kind = serde_json::to_value(m.milestone_type)?;
                table.add_row([
                    m.id.clone(),
                    m.name.clone(),
                    kind.as_str().unwrap_or("").to_owned(),
                    serde_json::to_string(&m.requirements)?,
                    m.xp_reward.to_string(),
                ]);
            }
            println!("{table}");
        }
    }
    Ok(())
}
