//! `analytics session-analysis SESSION_ID`: one session and its derived metrics.

use ats_projections::profiles;
use comfy_table::Table;
use serde::{Deserialize, Serialize};

use super::{banner, print_json, Read};
use crate::config::Config;

/// Arguments of `session-analysis`.
#[derive(clap::Args)]
pub struct Args {
    /// Session id.
    session_id: String,
    #[command(flatten)]
    read: Read,
}

#[derive(Serialize, Deserialize)]
struct Metrics {
    completion_rate: f64,
    time_efficiency: f64,
    cost_efficiency: f64,
}

#[derive(Serialize, Deserialize)]
struct Analysis {
    session_id: String,
    session_data: ats_events::SessionCompleted,
    metrics: Metrics,
}

pub async fn run(args: Args, config: Config) -> anyhow::Result<()> {
    let id = &args.session_id;
    let analysis: Analysis = args
        .read
        .source
        .fetch(
            &config,
            profiles::NAME,
            &format!("/api/analytics/session/{id}/analysis"),
            |tree| {
                let record = profiles::session(tree, id)
                    .ok_or_else(|| anyhow::anyhow!("Session not found: {id}"))?;
                Ok(Analysis {
                    session_id: id.clone(),
                    metrics: Metrics {
                        completion_rate: record.completion_rate(),
                        time_efficiency: record.time_efficiency(),
                        cost_efficiency: record.cost_efficiency(),
                    },
                    session_data: record.data,
                })
            },
        )
        .await?;
    if args.read.json() {
        return print_json(&analysis);
    }
    let s = &analysis.session_data;
    let m = &analysis.metrics;
    let mut table = Table::new();
    table.set_header(["Session", id.as_str()]);
    for (k, v) in [
        ("Operator", s.operator_id.clone()),
        ("Scenario", s.scenario_id.clone()),
        (
            "Duration",
            format!("{:.2} hours", s.duration_seconds / 3600.0),
        ),
        ("Score", format!("{:.2}", s.score)),
        ("Success", if s.success { "Yes" } else { "No" }.to_owned()),
        ("Cost", format!("${:.2}", s.cost)),
        (
            "Completion Rate",
            format!("{:.1}%", m.completion_rate * 100.0),
        ),
        ("Time Efficiency", format!("{:.2}", m.time_efficiency)),
        ("Cost Efficiency", format!("{:.2}", m.cost_efficiency)),
        ("Skills Practiced", s.skills_practiced.join(", ")),
    ] {
        table.add_row([k.to_owned(), v]);
    }
    print!("{}\n{table}\n", banner(&format!("Session Analysis: {id}")));
    Ok(())
}
