//! `analytics progress OPERATOR_ID`: level, XP, achievements, path, goals, certifications.

use ats_events::Timestamp;
use ats_projections::progress::{self, ProgressReport};
use comfy_table::Table;

use super::{banner, print_json, Read};
use crate::config::Config;

/// Arguments of `progress`.
#[derive(clap::Args)]
pub struct Args {
    /// Operator id.
    operator_id: String,
    /// Judge deadlines and expiry at this instant (RFC 3339; default now).
    #[arg(long)]
    as_of: Option<String>,
    #[command(flatten)]
    read: Read,
}

pub async fn run(args: Args, config: Config) -> anyhow::Result<()> {
    let as_of = as_of(args.as_of.as_deref())?;
    let op = &args.operator_id;
    let path = format!(
        "/api/analytics/operator/{op}/progress?as_of={}",
        as_of.to_rfc3339()
    );
    let report: ProgressReport = args
        .read
        .source
        .fetch(&config, progress::NAME, &path, |tree| {
            progress::progress(tree, op, as_of)
                .ok_or_else(|| anyhow::anyhow!("Operator not found: {op}"))
        })
        .await?;
    if args.read.json() {
        return print_json(&report);
    }
    print!("{}", table(&report));
    Ok(())
}

/// `--as-of` (RFC 3339), now when absent.
pub fn as_of(text: Option<&str>) -> anyhow::Result<Timestamp> {
    match text {
        Some(text) => Timestamp::parse_rfc3339(text)
            .map_err(|e| anyhow::anyhow!("--as-of: invalid RFC 3339 date-time {text:?}: {e}")),
        None => Ok(Timestamp::now()),
    }
}

/// The progress report as tables.
pub fn table(r: &ProgressReport) -> String {
    let s = &r.summary;
    let mut out = banner(&format!("Operator Progress: {}", r.name));
    let mut overview = Table::new();
    overview.set_header(["Overview", ""]);
    for (k, v) in [
        ("Level", s.level.to_string()),
        ("Total XP", s.total_xp.to_string()),
        ("Achievements", s.achievements_count.to_string()),
        ("Certifications", s.certifications.join(", ")),
        ("Active Goals", s.active_goals.to_string()),
        ("Total Sessions", s.total_sessions.to_string()),
        ("Total Hours", format!("{:.1}", s.total_hours)),
    ] {
        overview.add_row([k.to_owned(), v]);
    }
    out.push_str(&format!("{overview}\n\nAchievements:\n"));
    let mut achievements = Table::new();
    achievements.set_header(["Achievement", "XP", "Unlocked"]);
    for a in &r.achievements {
        achievements.add_row([
            a.name.clone(),
            a.xp_earned.to_string(),
            a.unlocked_at.to_rfc3339(),
        ]);
    }
    out.push_str(&format!("{achievements}\n\nProgress Paths:\n"));
    for p in r.progress_paths.values() {
        out.push_str(&format!(
            "  {}: {} ({:.1}%), next: {}\n",
            p.path_name,
            p.current_stage,
            p.completion_percentage,
            p.next_stage.as_deref().unwrap_or("none")
        ));
    }
    if !r.goals.is_empty() {
        let mut goals = Table::new();
        goals.set_header(["Goal", "Progress", "Deadline", "Status"]);
        for g in &r.goals {
            let status = if g.completed {
                "completed"
            } else if g.overdue {
                "overdue"
            } else {
                "active"
            };
            goals.add_row([
                g.goal.name.clone(),
                format!(
                    "{}/{} {} ({:.1}%)",
                    g.goal.current_value, g.goal.target_value, g.goal.unit, g.progress_percentage
                ),
                g.goal.deadline.map_or("-".into(), |d| d.to_rfc3339()),
                status.to_owned(),
            ]);
        }
        out.push_str(&format!("\nGoals:\n{goals}\n"));
    }
    out
}
