//! `analytics training-plan OPERATOR_ID [--target-role R]`: the top recommendations.

use ats_events::Timestamp;
use ats_projections::{profiles, training};
use serde::{Deserialize, Serialize};

use super::{banner, print_json};
use crate::config::Config;

/// Arguments of `training-plan`.
pub type Args = super::OperatorRole;

#[derive(Serialize, Deserialize)]
struct Plan {
    operator_id: String,
    recommendations: Vec<training::Recommendation>,
}

pub async fn run(args: Args, config: Config) -> anyhow::Result<()> {
    let op = &args.operator_id;
    let role = args.role()?;
    let query = args.query();
    let plan: Plan = args
        .read
        .source
        .fetch(
            &config,
            profiles::NAME,
            &format!("/api/analytics/operator/{op}/recommendations{query}"),
            |tree| {
                let recommendations =
                    training::recommendations_for(tree, op, role, Timestamp::now())
                        .ok_or_else(|| anyhow::anyhow!("Operator not found: {op}"))?;
                Ok(Plan {
                    operator_id: op.clone(),
                    recommendations,
                })
            },
        )
        .await?;
    if args.read.json() {
        return print_json(&plan);
    }
    print!("{}", render(op, &plan.recommendations));
    Ok(())
}

/// The seed's plan layout: the first five recommendations.
fn render(operator: &str, recommendations: &[training::Recommendation]) -> String {
    let mut out = banner(&format!("Training Plan: {operator}"));
    if recommendations.is_empty() {
        out.push_str("\nNo recommendations at this time.\n");
        return out;
    }
    for (i, r) in recommendations.iter().take(5).enumerate() {
        let kind = serde_json::to_value(r.recommendation_type)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        out.push_str(&format!(
            "\n{}. {} (Priority: {})\n   Type: {kind}\n   {}\n   Estimated Time: {:.1} hours\n",
            i + 1,
            r.title,
            r.priority,
            r.description,
            r.estimated_time_hours
        ));
        if !r.suggested_scenarios.is_empty() {
            out.push_str(&format!(
                "   Scenarios: {}\n",
                r.suggested_scenarios.join(", ")
            ));
        }
    }
    out
}
