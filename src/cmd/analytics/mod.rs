//! `ats-mafia analytics …`: the seed's commands (DOMAIN.md §B12), one module each. Each reads a
//! running server with `--url`, or else the local data directory, and prints a table or JSON.

mod anomalies;
mod benchmark;
mod budget;
mod certification;
mod cost_report;
mod dashboard;
mod export_report;
mod forecast;
mod goal;
mod leaderboard;
mod milestone;
mod operator_stats;
mod progress;
mod report;
mod session_analysis;
mod skill_gap;
mod training_plan;
mod what_if;

use std::time::Duration;

use ats_projections::store::Store;

use crate::config::Config;
use crate::engine::LogArgs;

/// Where to read from.
#[derive(clap::Args, Clone)]
pub struct Source {
    /// A running server (`http://127.0.0.1:8080`); without it the local data directory is read.
    #[arg(long, env = "ATS_URL")]
    pub url: Option<String>,
    /// API key for `--url` (sent as `Authorization: Bearer`).
    #[arg(long, env = "ATS_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    #[command(flatten)]
    pub log: LogArgs,
}

/// Flags every read command shares: where to read from and how to print.
#[derive(clap::Args, Clone)]
pub struct Read {
    /// Output format.
    #[arg(short = 'f', long, value_enum, default_value = "table")]
    pub format: Format,
    /// Same as `--format json`.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub source: Source,
}

impl Read {
    /// Whether to print JSON.
    pub fn json(&self) -> bool {
        self.json || self.format == Format::Json
    }
}

/// An operator and a target role (`training-plan`, `skill-gap`).
#[derive(clap::Args)]
pub struct OperatorRole {
    /// Operator id.
    pub operator_id: String,
    /// default, red_team_expert, blue_team_expert or social_engineer_expert.
    #[arg(short = 'r', long)]
    pub target_role: Option<String>,
    #[command(flatten)]
    pub read: Read,
}

impl OperatorRole {
    /// The role, checked against the known ones (the server answers 400 for others).
    pub fn role(&self) -> anyhow::Result<Option<&str>> {
        let roles = ats_projections::training::ROLES;
        match self.target_role.as_deref() {
            Some(role) if !roles.contains(&role) => {
                anyhow::bail!(
                    "unknown role {role:?}, expected one of {}",
                    roles.join(", ")
                )
            }
            role => Ok(role),
        }
    }

    /// `?target_role=…` for the server, or nothing.
    pub fn query(&self) -> String {
        self.target_role
            .as_deref()
            .map(|r| format!("?target_role={r}"))
            .unwrap_or_default()
    }
}

/// Output format.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// A readable table.
    Table,
    /// JSON.
    Json,
}

/// The seed's analytics commands.
#[derive(clap::Subcommand)]
pub enum Command {
    /// An operator's profile, skills, strengths and weaknesses.
    OperatorStats(operator_stats::Args),
    /// Cost breakdown of a category over the last days.
    CostReport(cost_report::Args),
    /// Cost budgets: set one, show spend, remaining and alerts.
    #[command(subcommand)]
    Budget(budget::Command),
    /// Cost anomalies: the seed's rules and the robust detector.
    Anomalies(anomalies::Args),
    /// Spend to the end of the budget period with an 80 % interval.
    Forecast(forecast::Args),
    /// A window re-priced with model substitutions.
    WhatIf(what_if::Args),
    /// Prioritised training recommendations for an operator.
    TrainingPlan(training_plan::Args),
    /// An operator's skill gaps against a role.
    SkillGap(skill_gap::Args),
    /// One session: score, cost, completion rate, time and cost efficiency.
    SessionAnalysis(session_analysis::Args),
    /// The top operators by XP, activity, level, sessions, hours, average score or achievements.
    Leaderboard(leaderboard::Args),
    /// An operator's level, XP, achievements, path, goals and certifications.
    Progress(progress::Args),
    /// Goals: create, progress, list.
    #[command(subcommand)]
    Goal(goal::Command),
    /// Milestones: register a custom one, list those in force.
    #[command(subcommand)]
    Milestone(milestone::Command),
    /// Certifications: award, check eligibility, list.
    #[command(subcommand)]
    Certification(certification::Command),
    /// Benchmarks: set, list, compare an operator.
    #[command(subcommand)]
    Benchmark(benchmark::Command),
    /// System overview: running sessions, week cost, trends, top performers, alerts.
    Dashboard(dashboard::Args),
    /// Generate a report through a running server and write it to a file.
    ExportReport(export_report::Args),
    /// Stored reports: list, show, delete.
    #[command(subcommand)]
    Report(report::Command),
}

/// Prints `value` as pretty JSON.
pub fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// The seed's banner: a rule, the title, a rule.
pub fn banner(title: &str) -> String {
    let rule = "=".repeat(60);
    format!("{rule}\n{title}\n{rule}\n")
}

/// A level as its wire string.
pub fn level(level: ats_projections::profiles::SkillLevel) -> String {
    format!("{level:?}").to_lowercase()
}

pub async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    match command {
        Command::OperatorStats(args) => operator_stats::run(args, config).await,
        Command::CostReport(args) => cost_report::run(args, config).await,
        Command::Budget(command) => budget::run(command, config).await,
        Command::Anomalies(args) => anomalies::run(args, config).await,
        Command::Forecast(args) => forecast::run(args, config).await,
        Command::WhatIf(args) => what_if::run(args, config).await,
        Command::TrainingPlan(args) => training_plan::run(args, config).await,
        Command::SkillGap(args) => skill_gap::run(args, config).await,
        Command::SessionAnalysis(args) => session_analysis::run(args, config).await,
        Command::Benchmark(command) => benchmark::run(command, config).await,
        Command::Leaderboard(args) => leaderboard::run(args, config).await,
        Command::Progress(args) => progress::run(args, config).await,
        Command::Goal(command) => goal::run(command, config).await,
        Command::Milestone(command) => milestone::run(command, config).await,
        Command::Certification(command) => certification::run(command, config).await,
        Command::Dashboard(args) => dashboard::run(args, config).await,
        Command::ExportReport(args) => export_report::run(args, config).await,
        Command::Report(command) => report::run(command, config).await,
    }
}

impl Source {
    /// The answer either from the server (`GET path`, decoded into `T`) or computed by `local`
    /// over the caught-up local tree of `projector`.
    pub async fn fetch<T: serde::de::DeserializeOwned>(
        &self,
        config: &Config,
        projector: &str,
        path: &str,
        local: impl FnOnce(&sled::Tree) -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        use anyhow::Context;
        match &self.url {
            Some(_) => serde_json::from_value(self.get_json(path).await?)
                .context("unexpected answer from the server"),
            None => local(&self.local_tree(config, projector).await?),
        }
    }

    /// POSTs a write to the server and prints its answer: JSON with `json`, else `done(answer)`.
    pub async fn write(
        &self,
        path: &str,
        body: &serde_json::Value,
        json: bool,
        done: impl FnOnce(&serde_json::Value) -> String,
    ) -> anyhow::Result<()> {
        let answer = self.post_json(path, body).await?;
        if json {
            return print_json(&answer);
        }
        println!("{}", done(&answer));
        Ok(())
    }

    /// POSTs a JSON body to the server (writes always go through a server's API).
    pub async fn post_json(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> anyhow::Result<serde_json::Value> {
        self.write_request(reqwest::Method::POST, path, Some(body))
            .await
    }

    /// Sends a writing request (`POST`, `DELETE`) to the server; its JSON answer, or its
    /// error message as the error.
    pub async fn write_request(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> anyhow::Result<serde_json::Value> {
        if self.url.is_none() {
            anyhow::bail!("this command writes an event: pass --url of a running server");
        }
        let mut request = self.request(method, path)?;
        if let Some(body) = body {
            request = request.json(body);
        }
        let answer = json_answer(self.send(request).await?).await?;
        self.wait_visible(&answer).await;
        Ok(answer)
    }

    /// Read-your-writes for the command line: waits until the server's read models have
    /// applied the position(s) in a write's answer, so the next command sees the write. A
    /// key without the `read` scope cannot see it anyway, and a server slower than its
    /// read-your-writes bound says so on stderr; neither fails the write, which has landed.
    async fn wait_visible(&self, answer: &serde_json::Value) {
        let positions = answer["positions"].as_array().into_iter().flatten();
        let Some(position) = positions
            .chain(std::iter::once(&answer["position"]))
            .filter_map(serde_json::Value::as_u64)
            .max()
        else {
            return;
        };
        // The cheapest read: a top-1 leaderboard, once every projector is at `position`.
        let path = format!("/api/analytics/leaderboard?limit=1&min_position={position}");
        let Ok(request) = self.request(reqwest::Method::GET, &path) else {
            return;
        };
        match self.send(request).await {
            Ok(r) if r.status() == reqwest::StatusCode::GATEWAY_TIMEOUT => {
                eprintln!("note: the write is at position {position}, not yet visible in queries");
            }
            _ => {}
        }
    }

    /// A request to `path` on the server of `--url`, with the API key when one is given.
    pub fn request(
        &self,
        method: reqwest::Method,
        path: &str,
    ) -> anyhow::Result<reqwest::RequestBuilder> {
        let url = self
            .url
            .as_deref()
            .ok_or_else(|| anyhow::anyhow!("no --url given"))?;
        let endpoint = format!("{}{path}", url.trim_end_matches('/'));
        let request = reqwest::Client::new().request(method, endpoint);
        Ok(match &self.api_key {
            Some(key) => request.bearer_auth(key.trim()),
            None => request,
        })
    }

    /// Sends `request`, naming the server when it cannot be reached.
    pub async fn send(
        &self,
        request: reqwest::RequestBuilder,
    ) -> anyhow::Result<reqwest::Response> {
        use anyhow::Context;
        request
            .send()
            .await
            .with_context(|| format!("cannot reach {}", self.url.as_deref().unwrap_or_default()))
    }

    /// Opens the local log and store and brings the projector `name` up to the head of the
    /// log, as a server would, then returns its tree.
    pub async fn local_tree(&self, config: &Config, name: &str) -> anyhow::Result<sled::Tree> {
        let paths = self.log.resolve(config);
        let log = paths.open_log(Duration::from_secs(10)).await?;
        let store = paths.open_store()?;
        catch_up(&store, log, name).await
    }

    /// Like [`Self::local_tree`] for several projectors, over one open log and store (a
    /// second open of the same store would be refused by its lock).
    pub async fn local_trees(
        &self,
        config: &Config,
        names: &[&str],
    ) -> anyhow::Result<Vec<sled::Tree>> {
        let paths = self.log.resolve(config);
        let log = paths.open_log(Duration::from_secs(10)).await?;
        let store = paths.open_store()?;
        let mut trees = Vec::with_capacity(names.len());
        for name in names {
            trees.push(catch_up(&store, log.clone(), name).await?);
        }
        Ok(trees)
    }

    /// GETs `path` from the server of `--url` as JSON; an error answer becomes its message.
    pub async fn get_json(&self, path: &str) -> anyhow::Result<serde_json::Value> {
        let request = self.request(reqwest::Method::GET, path)?;
        json_answer(self.send(request).await?).await
    }
}

/// The JSON of a success, or the server's message (with a hint for 401) as the error.
async fn json_answer(response: reqwest::Response) -> anyhow::Result<serde_json::Value> {
    use anyhow::Context;
    let status = response.status();
    let body: serde_json::Value = response
        .json()
        .await
        .context("the server's answer is not JSON")?;
    if !status.is_success() {
        let message = body["message"].as_str().unwrap_or("request failed");
        if status == reqwest::StatusCode::UNAUTHORIZED {
            anyhow::bail!("{message} (pass --api-key or set ATS_API_KEY)");
        }
        anyhow::bail!("{message}");
    }
    Ok(body)
}

/// Brings one projector's active tree up to the head of the log.
async fn catch_up(
    store: &Store,
    log: std::sync::Arc<dyn ats_ingest::EventLog>,
    name: &str,
) -> anyhow::Result<sled::Tree> {
    let projector = ats_projections::all_projectors()
        .into_iter()
        .find(|p| p.name() == name)
        .ok_or_else(|| anyhow::anyhow!("no projector {name}"))?;
    let (_, tree) = ats_projections::runtime::active_tree(store, name)?;
    let head = log.head().await?;
    ats_projections::runtime::replay_into(projector, &tree, log, head, |_| {})
        .await
        .map_err(|e| anyhow::anyhow!("cannot update the read models: {e}"))?;
    Ok(tree)
}
