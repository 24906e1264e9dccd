//! `analytics leaderboard`: the top operators by XP (seed), activity (seed), level, sessions,
//! hours, average score or achievements, optionally within a team.

use ats_projections::progress::{self, Board, LeaderboardEntry, SkillLeaderboardEntry};
use comfy_table::Table;
use serde::{Deserialize, Serialize};

use super::{banner, print_json, Read};
use crate::config::Config;

/// Arguments of `leaderboard`.
#[derive(clap::Args)]
pub struct Args {
    /// xp, activity, skill (with --skill), level, sessions, hours, average_score or achievements.
    #[arg(short = 'c', long, default_value = "xp")]
    category: String,
    /// The skill of `--category skill`.
    #[arg(short = 's', long)]
    skill: Option<String>,
    /// A custom category fed by `ats.leaderboard.scored` (instead of `--category`).
    #[arg(long, conflicts_with_all = ["category", "skill"])]
    custom: Option<String>,
    /// Rows shown.
    #[arg(short = 'l', long, default_value_t = 10)]
    limit: usize,
    /// Only members of this team.
    #[arg(long)]
    team: Option<String>,
    #[command(flatten)]
    read: Read,
}

/// The leaderboard as the API serves it.
#[derive(Serialize, Deserialize)]
pub struct Leaderboard {
    /// Leaderboard type.
    #[serde(rename = "type")]
    pub board: Board,
    /// Rows, best first.
    pub entries: Vec<LeaderboardEntry>,
}

/// A skill leaderboard as the API serves it.
#[derive(Serialize, Deserialize)]
pub struct SkillLeaderboard {
    /// Always `skill`.
    #[serde(rename = "type")]
    pub board: String,
    /// The skill.
    pub skill_name: String,
    /// Rows, best first.
    pub entries: Vec<SkillLeaderboardEntry>,
}

/// A custom leaderboard as the API serves it.
#[derive(Serialize, Deserialize)]
pub struct CustomLeaderboard {
    /// The category.
    pub category: String,
    /// Rows, best first.
    pub entries: Vec<progress::CustomLeaderboardEntry>,
}

pub async fn run(args: Args, config: Config) -> anyhow::Result<()> {
    if let Some(category) = args.custom.clone() {
        return run_custom(args, category, config).await;
    }
    if args.category == "skill" {
        return run_skill(args, config).await;
    }
    let board = Board::parse(&args.category).ok_or_else(|| {
        anyhow::anyhow!(
            "--category: invalid leaderboard type {:?} (expected one of {})",
            args.category,
            Board::ALL.map(Board::as_str).join(", ")
        )
    })?;
    let mut path = format!(
        "/api/analytics/leaderboard?type={}&limit={}",
        board.as_str(),
        args.limit
    );
    if let Some(team) = &args.team {
        path.push_str(&format!("&team={team}"));
    }
    let team = args.team.clone();
    let leaderboard: Leaderboard = args
        .read
        .source
        .fetch(&config, progress::NAME, &path, |tree| {
            Ok(Leaderboard {
                board,
                entries: progress::leaderboard(tree, board, team.as_deref(), args.limit),
            })
        })
        .await?;
    if args.read.json() {
        return print_json(&leaderboard);
    }
    print!("{}", table(&leaderboard, args.team.as_deref()));
    Ok(())
}

/// The seed's leaderboard table: "Leaderboard - XP" and its columns.
pub fn table(leaderboard: &Leaderboard, team: Option<&str>) -> String {
    let board = leaderboard.board;
    let mut out = banner(&format!("Leaderboard - {}", board.as_str().to_uppercase()));
    if let Some(team) = team {
        out.push_str(&format!("Team: {team}\n"));
    }
    let mut table = Table::new();
    match board {
        Board::Xp => table.set_header(["Rank", "Operator", "XP", "Level"]),
        Board::Activity => table.set_header(["Rank", "Operator", "Sessions", "Hours"]),
        Board::AverageScore => table.set_header(["Rank", "Operator", "Avg Score", "Sessions"]),
        other => table.set_header(["Rank", "Operator", &title(other)]),
    };
    let number = |v: Option<u64>| v.map_or("-".to_owned(), |v| v.to_string());
    for e in &leaderboard.entries {
        let mut row = vec![e.rank.to_string(), e.name.clone()];
        match board {
            Board::Xp => row.extend([number(e.xp), number(e.level)]),
            Board::Activity => row.extend([
                number(e.total_sessions),
                format!("{:.1}", e.total_hours.unwrap_or(0.0)),
            ]),
            Board::AverageScore => row.extend([
                format!("{:.2}", e.average_score.unwrap_or(0.0)),
                number(e.total_sessions),
            ]),
            Board::Level => row.push(number(e.level)),
            Board::Sessions => row.push(number(e.total_sessions)),
            Board::Hours => row.push(format!("{:.1}", e.total_hours.unwrap_or(0.0))),
            Board::Achievements => row.push(number(e.achievements_count)),
        }
        table.add_row(row);
    }
    out.push_str(&format!("{table}\n"));
    out
}

fn title(board: Board) -> String {
    let mut text = board.as_str().replace('_', " ");
    if let Some(first) = text.get_mut(..1) {
        first.make_ascii_uppercase();
    }
    text
}

async fn run_skill(args: Args, config: Config) -> anyhow::Result<()> {
    let skill = args
        .skill
        .clone()
        .ok_or_else(|| anyhow::anyhow!("--skill required for skill leaderboard"))?;
    let mut path = format!(
        "/api/analytics/leaderboard?type=skill&skill_name={skill}&limit={}",
        args.limit
    );
    if let Some(team) = &args.team {
        path.push_str(&format!("&team={team}"));
    }
    let team = args.team.clone();
    let leaderboard: SkillLeaderboard = args
        .read
        .source
        .fetch(&config, progress::NAME, &path, |tree| {
            Ok(SkillLeaderboard {
                board: "skill".into(),
                entries: progress::skill_leaderboard(tree, &skill, team.as_deref(), args.limit),
                skill_name: skill.clone(),
            })
        })
        .await?;
    if args.read.json() {
        return print_json(&leaderboard);
    }
    let mut out = banner("Leaderboard - SKILL");
    out.push_str(&format!("Skill: {skill}\n"));
    let mut table = Table::new();
    table.set_header([
        "Rank",
        "Operator",
        "Proficiency",
        "Avg Score",
        "Success Rate",
    ]);
    for e in &leaderboard.entries {
        table.add_row([
            e.rank.to_string(),
            e.name.clone(),
            progress::level_name(e.proficiency).to_owned(),
            format!("{:.2}", e.average_score),
            format!("{:.1}%", e.success_rate * 100.0),
        ]);
    }
    println!("{out}{table}");
    Ok(())
}

async fn run_custom(args: Args, category: String, config: Config) -> anyhow::Result<()> {
    let mut path = format!(
        "/api/analytics/leaderboard?type=custom&category={category}&limit={}",
        args.limit
    );
    if let Some(team) = &args.team {
        path.push_str(&format!("&team={team}"));
    }
    let team = args.team.clone();
    let board: CustomLeaderboard = args
        .read
        .source
        .fetch(&config, progress::NAME, &path, |tree| {
            Ok(CustomLeaderboard {
                entries: progress::custom_leaderboard(tree, &category, team.as_deref(), args.limit),
                category: category.clone(),
            })
        })
        .await?;
    if args.read.json() {
        return print_json(&board);
    }
    let mut table = Table::new();
    table.set_header(["Rank", "Operator", "Score"]);
    for e in &board.entries {
        table.add_row([e.rank.to_string(), e.name.clone(), format!("{}", e.score)]);
    }
    print!(
        "{}\n{table}\n",
        banner(&format!("Leaderboard - {}", board.category.to_uppercase()))
    );
    Ok(())
}
