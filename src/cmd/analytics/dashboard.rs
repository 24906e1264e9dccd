//! `analytics dashboard`: the seed's terminal overview (§B12) from `GET /api/analytics/dashboard`,
//! or from the local read models.

use ats_events::Timestamp;
use ats_projections::dashboard::{self, DashboardData, ReadModels};
use ats_projections::{activity, alerts, costs, profiles, progress};

use super::{banner, print_json, Source};
use crate::config::Config;

/// Arguments of `dashboard`.
#[derive(clap::Args)]
pub struct Args {
    /// Evaluate as of this instant (RFC 3339; default now).
    #[arg(long)]
    as_of: Option<String>,
    /// JSON instead of the summary.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    source: Source,
}

async fn fetch(args: &Args, config: &Config) -> anyhow::Result<DashboardData> {
    let as_of = match &args.as_of {
        Some(text) => Timestamp::parse_rfc3339(text)
            .map_err(|e| anyhow::anyhow!("--as-of: invalid RFC 3339 date-time {text:?}: {e}"))?,
        None => Timestamp::now(),
    };
    if args.source.url.is_some() {
        let path = format!("/api/analytics/dashboard?as_of={}", as_of.to_rfc3339());
        let body = args.source.get_json(&path).await?;
        return Ok(serde_json::from_value(body)?);
    }
    // Every projector: dead letters of any of them are alerts too.
    let names: Vec<&'static str> = ats_projections::all_projectors()
        .iter()
        .map(|p| p.name())
        .collect();
    let trees = args.source.local_trees(config, &names).await?;
    let mut by_name: std::collections::BTreeMap<&str, sled::Tree> =
        names.iter().copied().zip(trees).collect();
    let dead_letters: Vec<_> = by_name
        .iter()
        .flat_map(|(name, tree)| ats_projections::runtime::dead_letters(tree, name))
        .collect();
    let mut take = |name: &str| {
        by_name
            .remove(name)
            .ok_or_else(|| anyhow::anyhow!("no read model {name}"))
    };
    let models = ReadModels {
        profiles: take(profiles::NAME)?,
        progress: take(progress::NAME)?,
        costs: take(costs::NAME)?,
        activity: take(activity::NAME)?,
    };
    let acks = take(alerts::NAME)?;
    let threshold = config.analytics.alerts.performance_threshold;
    let active = alerts::active_summary(
        &models,
        &acks,
        &dead_letters,
        threshold,
        as_of,
        dashboard::DASHBOARD_ALERTS,
    );
    Ok(dashboard::dashboard(&models, active, as_of))
}

/// The seed's layout, plus the running sessions it always showed as 0 and daily trends.
fn render(d: &DashboardData) -> String {
    let s = &d.summary;
    let mut out = banner("ATS MAFIA Analytics Dashboard");
    out.push_str("\nSystem Overview:\n");
    out.push_str(&format!("  Active Sessions: {}\n", s.active_sessions));
    out.push_str(&format!(
        "  Today's Training Hours: {}\n",
        s.today_training_hours
    ));
    out.push_str(&format!("  This Week's Cost: ${:.2}\n", s.week_cost));
    out.push_str(&format!("  Total Operators: {}\n", s.total_operators));
    out.push_str(&format!("  Total Achievements: {}\n", s.total_achievements));
    out.push_str(&format!(
        "  Average Operator Level: {}\n",
        s.average_operator_level
    ));
    out.push_str("\nPerformance:\n");
    out.push_str(&format!("  7-Day Success Rate: {}%\n", s.success_rate_7d));
    out.push_str(&format!(
        "  Cost Efficiency Trend: {}\n",
        s.cost_efficiency_trend
    ));
    out.push_str(&format!(
        "  Score Trend (7 days): {}\n",
        d.performance_trend_7d.trend
    ));
    out.push_str(&format!(
        "  Cost Trend (7 days): {}\n",
        d.cost_trend_7d.trend
    ));
    out.push_str("\nLast 7 Days:\n");
    let costs: std::collections::BTreeMap<&str, f64> = d
        .cost_trend_7d
        .data_points
        .iter()
        .map(|p| (p.date.as_str(), p.cost))
        .collect();
    let mut days: Vec<&str> = costs.keys().copied().collect();
    days.extend(
        d.performance_trend_7d
            .data_points
            .iter()
            .map(|p| p.date.as_str()),
    );
    days.sort_unstable();
    days.dedup();
    if days.is_empty() {
        out.push_str("  No sessions or spend.\n");
    }
    for day in days {
        let point = d
            .performance_trend_7d
            .data_points
            .iter()
            .find(|p| p.date == day);
        out.push_str(&format!(
            "  {day}  sessions {:>3}  avg score {:>5}  cost ${:.2}\n",
            point.map_or(0, |p| p.session_count),
            point.map_or_else(|| "-".to_owned(), |p| format!("{:.3}", p.average_score)),
            costs.get(day).copied().unwrap_or(0.0),
        ));
    }
    out.push_str("\nTop Performers:\n");
    if d.xp_leaderboard.is_empty() {
        out.push_str("  No operators yet.\n");
    }
    for e in d.xp_leaderboard.iter().take(5) {
        out.push_str(&format!(
            "  {}. {} - {} XP (Level {})\n",
            e.rank,
            e.name,
            e.xp.unwrap_or(0),
            e.level.unwrap_or(1)
        ));
    }
    out.push_str(&format!("\nActive Alerts: {}\n", d.active_alerts_total));
    if d.critical_alerts_total > 0 {
        out.push_str(&format!("⚠ Critical Alerts: {}\n", d.critical_alerts_total));
        for a in d.critical_alerts.iter().take(3) {
            out.push_str(&format!("  - {}\n", a.title));
        }
    }
    out
}

pub async fn run(args: Args, config: Config) -> anyhow::Result<()> {
    let data = fetch(&args, &config).await?;
    if args.json {
        return print_json(&data);
    }
    print!("{}", render(&data));
    Ok(())
}
