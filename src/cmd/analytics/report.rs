//! `analytics report list|show|delete|template`: stored reports and custom templates. Reads
//! work on the local data directory too; writes append events through a running server.

use anyhow::Context;
use ats_projections::reports::templates::{self, TemplateInfo};
use ats_projections::reports::{self, Report, ReportListItem};
use comfy_table::Table;
use serde::{Deserialize, Serialize};

use super::{banner, print_json, Source};
use crate::config::Config;

/// Report commands.
#[derive(clap::Subcommand)]
pub enum Command {
    /// Stored reports, newest first.
    List {
        /// Only this report type.
        #[arg(long = "type")]
        report_type: Option<String>,
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        source: Source,
    },
    /// One report's metadata and content.
    Show {
        /// Report id.
        report_id: String,
        /// JSON instead of a summary.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        source: Source,
    },
    /// Delete a report (appends `ats.report.deleted` through a running server).
    Delete {
        /// Report id.
        report_id: String,
        #[command(flatten)]
        source: Source,
    },
    /// Custom report templates (minijinja): register, list, show.
    #[command(subcommand)]
    Template(TemplateCommand),
}

/// Template commands.
#[derive(clap::Subcommand)]
pub enum TemplateCommand {
    /// Register a template from a file (appends `ats.report.template.registered` through a
    /// running server; the same name again replaces it). Use it with
    /// `export-report … --template NAME` or `…/download?template=NAME`.
    Register {
        /// Template name.
        name: String,
        /// The minijinja source; the context is the report (`title`, `data`, …).
        #[arg(long)]
        file: std::path::PathBuf,
        /// What it renders: text/html (values escaped), text/markdown, text/csv, text/plain,
        /// application/json.
        #[arg(long, default_value = "text/markdown")]
        media_type: String,
        /// What it is for.
        #[arg(long)]
        description: Option<String>,
        #[command(flatten)]
        source: Source,
    },
    /// Registered templates.
    List {
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        source: Source,
    },
    /// One template's source.
    Show {
        /// Template name.
        name: String,
        #[command(flatten)]
        source: Source,
    },
}

#[derive(Serialize, Deserialize)]
struct ReportList {
    reports: Vec<ReportListItem>,
    count: usize,
}

pub async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    match command {
        Command::List {
            report_type,
            json,
            source,
        } => {
            let path = match &report_type {
                Some(t) => format!("/api/analytics/reports?report_type={t}"),
                None => "/api/analytics/reports".to_owned(),
            };
            let list: ReportList = source
                .fetch(&config, reports::NAME, &path, |tree| {
                    let wanted = report_type
                        .as_deref()
                        .map(|t| serde_json::from_value(serde_json::json!(t)))
                        .transpose()
                        .map_err(|_| anyhow::anyhow!("--type: unknown report type"))?;
                    let reports = reports::list(tree, wanted);
                    Ok(ReportList {
                        count: reports.len(),
                        reports,
                    })
                })
                .await?;
            if json {
                return print_json(&list);
            }
            let mut out = banner("Reports");
            if list.reports.is_empty() {
                out.push_str("No reports.\n");
            } else {
                let mut table = Table::new();
                table.set_header(["Report ID", "Type", "Title", "Generated"]);
                for r in &list.reports {
                    table.add_row([
                        r.id.clone(),
                        serde_json::json!(r.report_type)
                            .as_str()
                            .unwrap_or_default()
                            .to_owned(),
                        r.title.clone(),
                        r.generated_at.clone(),
                    ]);
                }
                out.push_str(&format!("{table}\n"));
            }
            print!("{out}");
            Ok(())
        }
        Command::Show {
            report_id,
            json,
            source,
        } => {
            let path = format!("/api/analytics/reports/{report_id}");
            let report: Report = source
                .fetch(&config, reports::NAME, &path, |tree| {
                    reports::report(tree, &report_id)
                        .with_context(|| format!("Report not found: {report_id}"))
                })
                .await?;
            if json {
                return print_json(&report);
            }
            print!(
                "{}",
                reports::render::render(&report, reports::render::Format::Markdown)
            );
            Ok(())
        }
        Command::Delete { report_id, source } => {
            source
                .write_request(
                    reqwest::Method::DELETE,
                    &format!("/api/analytics/reports/{report_id}"),
                    None,
                )
                .await?;
            println!("Report {report_id} deleted.");
            Ok(())
        }
        Command::Template(command) => template(command, config).await,
    }
}

#[derive(Serialize, Deserialize)]
struct TemplateList {
    templates: Vec<TemplateInfo>,
    count: usize,
}

async fn template(command: TemplateCommand, config: Config) -> anyhow::Result<()> {
    match command {
        TemplateCommand::Register {
            name,
            file,
            media_type,
            description,
            source,
        } => {
            let template = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let body = serde_json::json!({"name": name, "media_type": media_type,
                                          "template": template, "description": description});
            let receipt = source
                .post_json("/api/analytics/reports/templates", &body)
                .await?;
            println!(
                "Template {name} ({media_type}) registered at position {}.",
                receipt["positions"][0]
            );
            Ok(())
        }
        TemplateCommand::List { json, source } => {
            let list: TemplateList = source
                .fetch(
                    &config,
                    reports::NAME,
                    "/api/analytics/reports/templates",
                    |tree| {
                        let templates = templates::list(tree);
                        Ok(TemplateList {
                            count: templates.len(),
                            templates,
                        })
                    },
                )
                .await?;
            if json {
                return print_json(&list);
            }
            let mut table = Table::new();
            table.set_header(["Name", "Media type", "Registered", "Description"]);
            for t in &list.templates {
                table.add_row([
                    t.name.clone(),
                    t.media_type.clone(),
                    t.registered_at.clone(),
                    t.description.clone().unwrap_or_default(),
                ]);
            }
            println!("{table}\n{} templates", list.count);
            Ok(())
        }
        TemplateCommand::Show { name, source } => {
            let path = format!("/api/analytics/reports/templates/{name}");
            let info: TemplateInfo = source
                .fetch(&config, reports::NAME, &path, |tree| {
                    templates::info(tree, &name)
                        .with_context(|| format!("no template named {name}"))
                })
                .await?;
            print!("{}", info.template.unwrap_or_default());
            Ok(())
        }
    }
}
