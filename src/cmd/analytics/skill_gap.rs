//! `analytics skill-gap OPERATOR_ID [--target-role R]`: gaps against a role's requirements.

use ats_projections::{profiles, training};
use comfy_table::Table;
use serde::{Deserialize, Serialize};

use super::{banner, level, print_json};
use crate::config::Config;

/// Arguments of `skill-gap`.
pub type Args = super::OperatorRole;

#[derive(Serialize, Deserialize)]
struct Gaps {
    operator_id: String,
    target_role: Option<String>,
    skill_gaps: Vec<training::SkillGap>,
}

pub async fn run(args: Args, config: Config) -> anyhow::Result<()> {
    let op = &args.operator_id;
    let role = args.role()?.map(str::to_owned);
    let query = args.query();
    let gaps: Gaps = args
        .read
        .source
        .fetch(
            &config,
            profiles::NAME,
            &format!("/api/analytics/operator/{op}/skill-gaps{query}"),
            |tree| {
                let profile = profiles::profile(tree, op)
                    .ok_or_else(|| anyhow::anyhow!("Operator not found: {op}"))?;
                Ok(Gaps {
                    operator_id: op.clone(),
                    skill_gaps: training::skill_gaps(&profile, role.as_deref()),
                    target_role: role.clone(),
                })
            },
        )
        .await?;
    if args.read.json() {
        return print_json(&gaps);
    }
    let mut out = banner(&format!("Skill Gap Analysis: {op}"));
    if let Some(role) = &gaps.target_role {
        out.push_str(&format!("Target Role: {role}\n"));
    }
    match gaps.skill_gaps.first() {
        None => out.push_str("\nNo skill gaps identified!\n"),
        Some(top) => {
            let mut table = Table::new();
            table.set_header(["Skill", "Current", "Target", "Gap", "Priority"]);
            for g in &gaps.skill_gaps {
                table.add_row([
                    g.skill_name.clone(),
                    level(g.current_level),
                    level(g.target_level),
                    g.gap_size.to_string(),
                    g.priority.to_string(),
                ]);
            }
            out.push_str(&format!(
                "\n{table}\n\nTop Priority: {}\nRecommendations:\n",
                top.skill_name
            ));
            for action in &top.recommended_actions {
                out.push_str(&format!("  - {action}\n"));
            }
        }
    }
    print!("{out}");
    Ok(())
}
