//! `ats-mafia keys create|list|revoke`: API keys (issue 9).
//!
//! With `--url` (and an admin key) the running server appends the event; without it the event
//! is appended to the local log directly — the embedded log while no server holds it, or the
//! JetStream stream with `--nats` at any time.

use std::time::Duration;

use anyhow::Context;
use ats_commands::keys;
use ats_events::Timestamp;
use ats_projections::keys::{KeyInfo, NAME};
use comfy_table::Table;
use serde_json::json;

use crate::cmd::analytics::{print_json, Read};
use crate::config::Config;

/// Source recorded on key events appended by this command.
const CLI_SOURCE: &str = "ats-mafia-cli";

/// Key commands.
#[derive(clap::Subcommand)]
pub enum Command {
    /// Create a key and print it (the only time it is shown; only its hash is stored).
    Create {
        /// Scopes, comma-separated: ingest, read, admin.
        #[arg(long, value_delimiter = ',', required = true)]
        scope: Vec<String>,
        /// A name for people (`grafana`, `orchestrator`).
        #[arg(long)]
        name: String,
        /// Requests per minute (default: the server's `api.rate_limit_per_minute`).
        #[arg(long)]
        rate_limit: Option<u32>,
        #[command(flatten)]
        read: Read,
    },
    /// Every key (never a secret): id, name, scopes, limit, issued, revoked.
    List {
        #[command(flatten)]
        read: Read,
    },
    /// Revoke a key: refused from then on.
    Revoke {
        /// Key id (the part between `atsk_` and the second `_`).
        key_id: String,
        /// Why, recorded in the event.
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        read: Read,
    },
}

pub async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    match command {
        Command::Create {
            scope,
            name,
            rate_limit,
            read,
        } => create(&scope, &name, rate_limit, &read, &config).await,
        Command::List { read } => {
            let keys = list(&read, &config).await?;
            if read.json() {
                return print_json(&json!({"keys": keys}));
            }
            let mut table = Table::new();
            table.set_header(["key id", "name", "scopes", "limit/min", "issued", "revoked"]);
            for key in &keys {
                table.add_row([
                    key.key_id.clone(),
                    key.name.clone(),
                    scope_names(&key.scopes),
                    key.rate_limit_per_minute
                        .map_or("default".into(), |n| n.to_string()),
                    key.issued_at.clone(),
                    key.revoked_at.clone().unwrap_or_else(|| "-".into()),
                ]);
            }
            println!("{table}\n{} keys", keys.len());
            Ok(())
        }
        Command::Revoke {
            key_id,
            reason,
            read,
        } => revoke(&key_id, reason, &read, &config).await,
    }
}

fn scope_names(scopes: &[ats_events::Scope]) -> String {
    scopes
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

async fn create(
    scope: &[String],
    name: &str,
    rate_limit: Option<u32>,
    read: &Read,
    config: &Config,
) -> anyhow::Result<()> {
    let answer = if read.source.url.is_some() {
        let body = json!({"name": name, "scopes": scope, "rate_limit_per_minute": rate_limit});
        read.source.post_json("/api/admin/keys", &body).await?
    } else {
        let scopes = keys::parse_scopes(scope).map_err(|e| anyhow::anyhow!("--scope: {e}"))?;
        let key = keys::generate(name, &scopes, rate_limit).map_err(|e| anyhow::anyhow!("{e}"))?;
        let position =
            append_locally(read, config, key.event(Timestamp::now(), CLI_SOURCE)).await?;
        json!({"key": key.token, "key_id": key.issued.key_id, "name": key.issued.name,
               "scopes": key.issued.scopes, "rate_limit_per_minute": key.issued.rate_limit_per_minute,
               "position": position})
    };
    if read.json() {
        return print_json(&answer);
    }
    println!(
        "created API key {} ({}) with scopes {}",
        answer["key_id"].as_str().unwrap_or_default(),
        name,
        scope.join(",")
    );
    println!(
        "key (shown once, store it now): {}",
        answer["key"].as_str().unwrap_or_default()
    );
    Ok(())
}

async fn list(read: &Read, config: &Config) -> anyhow::Result<Vec<KeyInfo>> {
    if read.source.url.is_some() {
        let answer = read.source.get_json("/api/admin/keys").await?;
        return serde_json::from_value(answer["keys"].clone())
            .context("unexpected answer from the server");
    }
    let tree = read.source.local_tree(config, NAME).await?;
    Ok(ats_projections::keys::list(&tree))
}

async fn revoke(
    key_id: &str,
    reason: Option<String>,
    read: &Read,
    config: &Config,
) -> anyhow::Result<()> {
    let answer = if read.source.url.is_some() {
        // `Url` percent-encodes the free-text reason.
        let mut url = reqwest::Url::parse("http://server/api/admin/keys/")?.join(key_id)?;
        if let Some(reason) = &reason {
            url.query_pairs_mut().append_pair("reason", reason);
        }
        let path = match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_owned(),
        };
        read.source
            .write_request(reqwest::Method::DELETE, &path, None)
            .await?
    } else {
        let tree = read.source.local_tree(config, NAME).await?;
        let key = ats_projections::keys::info(&tree, key_id)
            .ok_or_else(|| anyhow::anyhow!("API key {key_id}: unknown"))?;
        if key.revoked_at.is_none() {
            let event = keys::revocation(key_id, reason, Timestamp::now(), CLI_SOURCE)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            append_locally(read, config, event).await?;
        }
        json!({"key_id": key_id, "revoked": true})
    };
    if read.json() {
        return print_json(&answer);
    }
    println!("revoked API key {key_id}");
    Ok(())
}

async fn append_locally(
    read: &Read,
    config: &Config,
    event: ats_events::Envelope,
) -> anyhow::Result<u64> {
    let log = read
        .source
        .log
        .resolve(config)
        .open_log(Duration::from_secs(10))
        .await?;
    let outcome = log
        .append(vec![event])
        .await
        .context("cannot append the key event")?;
    Ok(outcome.positions.first().copied().unwrap_or_default())
}
