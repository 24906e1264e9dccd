//! `ats-mafia analytics …`: the seed's commands (DOMAIN.md §B12), one module each. Each reads a
//! running server with `--url`, or else the local data directory, and prints a table or JSON.

mod operator_stats;

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
    #[command(flatten)]
    pub log: LogArgs,
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
}

pub async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    match command {
        Command::OperatorStats(args) => operator_stats::run(args, config).await,
    }
}

impl Source {
    /// Opens the local log and store and brings the projector `name` up to the head of the
    /// log, as a server would, then returns its tree.
    pub async fn local_tree(&self, config: &Config, name: &str) -> anyhow::Result<sled::Tree> {
        let paths = self.log.resolve(config);
        let log = paths.open_log(Duration::from_secs(10)).await?;
        let store = paths.open_store()?;
        catch_up(&store, log, name).await
    }

    /// GETs `path` from the server at `url` as JSON; a 404 becomes `not_found`'s message.
    pub async fn get_json(url: &str, path: &str) -> anyhow::Result<serde_json::Value> {
        use anyhow::Context;
        let endpoint = format!("{}{path}", url.trim_end_matches('/'));
        let response = reqwest::get(&endpoint)
            .await
            .with_context(|| format!("cannot reach {url}"))?;
        let status = response.status();
        let body: serde_json::Value = response
            .json()
            .await
            .context("the server's answer is not JSON")?;
        if !status.is_success() {
            anyhow::bail!("{}", body["message"].as_str().unwrap_or("request failed"));
        }
        Ok(body)
    }
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
    let tree = store.tree(name, store.active_generation(name)?)?;
    let head = log.head().await?;
    ats_projections::runtime::replay_into(projector, &tree, log, head, |_| {})
        .await
        .map_err(|e| anyhow::anyhow!("cannot update the read models: {e}"))?;
    Ok(tree)
}
