//! `analytics operator-stats OPERATOR_ID`: profile, skills, strengths and weaknesses, with the
//! progress summary (level, XP, achievements) as the seed prints them.

use ats_events::Timestamp;
use ats_projections::profiles::{self, Performance};
use ats_projections::progress::{self, ProgressReport};
use comfy_table::Table;

use super::Read;
use crate::config::Config;

/// Arguments of `operator-stats`.
#[derive(clap::Args)]
pub struct Args {
    /// Operator id.
    operator_id: String,
    /// Trend window in days.
    #[arg(short = 't', long = "time-range", default_value_t = 7)]
    time_range: u32,
    #[command(flatten)]
    read: Read,
}

pub async fn run(args: Args, config: Config) -> anyhow::Result<()> {
    let (op, days) = (&args.operator_id, args.time_range);
    let source = &args.read.source;
    let performance: Performance = source
        .fetch(
            &config,
            profiles::NAME,
            &format!("/api/analytics/operator/{op}/performance?time_range_days={days}"),
            |tree| {
                profiles::performance(tree, op, i64::from(days.max(1)), Timestamp::now())
                    .ok_or_else(|| anyhow::anyhow!("Operator not found: {op}"))
            },
        )
        .await?;
    let report: ProgressReport = source
        .fetch(
            &config,
            progress::NAME,
            &format!("/api/analytics/operator/{op}/progress"),
            |tree| {
                progress::progress(tree, op, Timestamp::now())
                    .ok_or_else(|| anyhow::anyhow!("Operator not found: {op}"))
            },
        )
        .await?;
    if args.read.json() {
        return super::print_json(&serde_json::json!({
            "profile": performance.profile,
            "analysis": performance.analysis,
            "summary": report.summary,
        }));
    }
    print!("{}", operator_table(&performance, &report.summary));
    Ok(())
}

/// The seed's `operator-stats` table.
pub fn operator_table(p: &Performance, summary: &progress::Summary) -> String {
    let mut out = String::new();
    let rule = "=".repeat(60);
    out.push_str(&format!(
        "{rule}\nOperator Performance Summary: {}\n{rule}\n\n",
        p.profile.name
    ));
    let mut overview = Table::new();
    overview.set_header(["Overview", ""]);
    overview.add_row(["Level".to_owned(), summary.level.to_string()]);
    overview.add_row(["Total XP".to_owned(), summary.total_xp.to_string()]);
    overview.add_row([
        "Total Sessions".to_owned(),
        p.profile.total_sessions.to_string(),
    ]);
    overview.add_row([
        "Total Hours".to_owned(),
        format!("{:.1}", p.profile.total_hours),
    ]);
    overview.add_row([
        "Skill Level".to_owned(),
        format!("{:?}", p.profile.skill_level).to_lowercase(),
    ]);
    overview.add_row([
        "Achievements".to_owned(),
        summary.achievements_count.to_string(),
    ]);
    overview.add_row([
        "Certifications".to_owned(),
        p.profile.certifications.len().to_string(),
    ]);
    overview.add_row([
        "Learning Velocity".to_owned(),
        format!("{:.2}", p.analysis.learning_velocity),
    ]);
    overview.add_row([
        "Plateau Detected".to_owned(),
        if p.analysis.plateau_detected {
            "yes"
        } else {
            "no"
        }
        .to_owned(),
    ]);
    out.push_str(&format!("{overview}\n\nTop Skills:\n"));
    let mut skills: Vec<_> = p.profile.skills.values().collect();
    skills.sort_by(|a, b| {
        b.proficiency
            .cmp(&a.proficiency)
            .then_with(|| a.skill_name.cmp(&b.skill_name))
    });
    let mut top = Table::new();
    top.set_header(["Skill", "Proficiency", "Success Rate", "Practice Count"]);
    for s in skills.iter().take(5) {
        top.add_row([
            s.skill_name.clone(),
            format!("{:?}", s.proficiency).to_lowercase(),
            format!("{:.1}%", s.success_rate * 100.0),
            s.practice_count.to_string(),
        ]);
    }
    out.push_str(&format!("{top}\n\n"));
    let strengths: Vec<&str> = p
        .analysis
        .strengths
        .iter()
        .take(5)
        .map(String::as_str)
        .collect();
    out.push_str(&format!(
        "Strengths: {}\n",
        if strengths.is_empty() {
            "none yet".into()
        } else {
            strengths.join(", ")
        }
    ));
    out.push_str("Weaknesses:\n");
    for w in p.analysis.weaknesses.iter().take(3) {
        out.push_str(&format!(
            "  - {}: {}\n",
            w.skill,
            format!("{:?}", w.proficiency).to_lowercase()
        ));
    }
    out
}
