//! `analytics export-report TYPE OUTPUT`: generates a report through a running server (an
//! `ats.report.generated` event) and writes its download to a file (§B12).

use std::path::PathBuf;

use anyhow::Context;
use serde_json::json;

use super::Source;
use crate::config::Config;

/// Export formats.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// The report as JSON.
    Json,
    /// The main table, one row per record.
    Csv,
    /// A standalone HTML page.
    Html,
    /// Markdown.
    Markdown,
}

impl ExportFormat {
    fn as_str(self) -> &'static str {
        match self {
            Self::Json => "json",
            Self::Csv => "csv",
            Self::Html => "html",
            Self::Markdown => "markdown",
        }
    }
}

/// Arguments of `export-report`.
#[derive(clap::Args)]
pub struct Args {
    /// `operator`, `team`, `cost`, `trends` or `compliance` (or a full report type name).
    report_type: String,
    /// File to write (parent directories are created).
    output: PathBuf,
    /// Format of the file.
    #[arg(short = 'f', long, value_enum, default_value = "json")]
    format: ExportFormat,
    /// Render through this registered template instead of a format.
    #[arg(short = 't', long, conflicts_with = "format")]
    template: Option<String>,
    /// The operator (required for `operator`; optional for `trends`).
    #[arg(short = 'o', long)]
    operator_id: Option<String>,
    /// Window in days for `cost` and `trends`.
    #[arg(short = 'd', long, default_value_t = 30)]
    days: u32,
    #[command(flatten)]
    source: Source,
}

/// The report type and generator parameters of the CLI's short names.
fn request(args: &Args) -> anyhow::Result<serde_json::Value> {
    let (report_type, parameters) = match args.report_type.as_str() {
        "operator" | "operator_progress" => {
            let operator = args
                .operator_id
                .as_deref()
                .context("--operator-id required for operator report")?;
            ("operator_progress", json!({"operator_id": operator}))
        }
        "team" | "team_performance" => ("team_performance", json!({})),
        "cost" | "cost_summary" => ("cost_summary", json!({"time_range_days": args.days})),
        "trends" | "trend_analysis" => {
            let mut p = json!({"time_range_days": args.days});
            if let Some(operator) = &args.operator_id {
                p["operator_id"] = json!(operator);
            }
            ("trend_analysis", p)
        }
        "compliance" => ("compliance", json!({})),
        other => anyhow::bail!(
            "report type {other:?}: expected one of operator, team, cost, trends, compliance"
        ),
    };
    Ok(json!({"report_type": report_type, "parameters": parameters}))
}

pub async fn run(args: Args, _config: Config) -> anyhow::Result<()> {
    let body = request(&args)?;
    let answer = args
        .source
        .post_json("/api/analytics/reports/generate", &body)
        .await
        .context("error generating report")?;
    let id = answer["report_id"]
        .as_str()
        .context("the server's answer has no report_id")?;
    let path = match &args.template {
        Some(name) => format!("/api/analytics/reports/{id}/download?template={name}"),
        None => format!(
            "/api/analytics/reports/{id}/download?format={}",
            args.format.as_str()
        ),
    };
    let response = args
        .source
        .send(args.source.request(reqwest::Method::GET, &path)?)
        .await?;
    if !response.status().is_success() {
        let status = response.status();
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        anyhow::bail!(
            "download of report {id} failed: {status}: {}",
            body["message"].as_str().unwrap_or_default()
        );
    }
    let content = response.bytes().await.context("reading the download")?;
    if let Some(parent) = args.output.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    std::fs::write(&args.output, &content)
        .with_context(|| format!("cannot write {}", args.output.display()))?;
    println!("Report exported to: {}", args.output.display());
    println!("Report ID: {id}");
    Ok(())
}
