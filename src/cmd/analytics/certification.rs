//! `analytics certification award|check|list`: certifications, eligibility and awards.
//! Awards go through a running server.

use ats_events::Timestamp;
use ats_projections::progress::{self, Certification, EarnedCertification};
use comfy_table::Table;
use serde::{Deserialize, Serialize};

use super::{print_json, Read};
use crate::config::Config;

/// Certification commands.
#[derive(clap::Subcommand)]
pub enum Command {
    /// Award a certification (appends `ats.certification.awarded` through a running server;
    /// eligibility is not checked, as the seed).
    Award {
        /// Operator id.
        operator_id: String,
        /// Certification id.
        certification_id: String,
        #[command(flatten)]
        read: Read,
    },
    /// Whether an operator meets a certification's requirements, with what is missing.
    Check {
        /// Operator id.
        operator_id: String,
        /// Certification id.
        certification_id: String,
        #[command(flatten)]
        read: Read,
    },
    /// The certifications, or with an operator id the ones it holds.
    List {
        /// Operator id.
        operator_id: Option<String>,
        #[command(flatten)]
        read: Read,
    },
}

#[derive(Serialize, Deserialize)]
struct Eligibility {
    operator_id: String,
    certification_id: String,
    eligible: bool,
    missing_requirements: Vec<String>,
}

#[derive(Serialize, Deserialize)]
struct Earned {
    operator_id: String,
    certifications: Vec<EarnedCertification>,
    count: usize,
}

pub async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    match command {
        Command::Award {
            operator_id,
            certification_id,
            read,
        } => {
            let body = serde_json::json!({"certification_id": certification_id});
            let path = format!("/api/analytics/operator/{operator_id}/certifications");
            read.source
                .write(&path, &body, read.json(), |receipt| {
                    format!(
                        "{certification_id} awarded to {operator_id} at position {}",
                        receipt["positions"][0]
                    )
                })
                .await?;
        }
        Command::Check {
            operator_id,
            certification_id,
            read,
        } => {
            let path = format!("/api/analytics/operator/{operator_id}/certifications/{certification_id}/eligibility");
            let answer: Eligibility = read
                .source
                .fetch(&config, progress::NAME, &path, |tree| {
                    let op = progress::operator(tree, &operator_id)
                        .ok_or_else(|| anyhow::anyhow!("Operator not found: {operator_id}"))?;
                    let (eligible, missing_requirements) =
                        match progress::certification(&certification_id) {
                            Some(cert) => cert.check_eligibility(&op, Timestamp::now()),
                            None => (false, vec!["Certification not found".to_owned()]),
                        };
                    Ok(Eligibility {
                        operator_id: operator_id.clone(),
                        certification_id: certification_id.clone(),
                        eligible,
                        missing_requirements,
                    })
                })
                .await?;
            if read.json() {
                return print_json(&answer);
            }
            if answer.eligible {
                println!("{operator_id} is eligible for {certification_id}");
            } else {
                println!("{operator_id} is not eligible for {certification_id}:");
                for missing in &answer.missing_requirements {
                    println!("  - {missing}");
                }
            }
        }
        Command::List {
            operator_id: None,
            read,
        } => {
            let certifications = progress::default_certifications();
            if read.json() {
                return print_json(
                    &serde_json::json!({"certifications": certifications, "count": certifications.len()}),
                );
            }
            print!("{}", catalogue_table(&certifications));
        }
        Command::List {
            operator_id: Some(operator_id),
            read,
        } => {
            let path = format!("/api/analytics/operator/{operator_id}/certifications");
            let earned: Earned = read
                .source
                .fetch(&config, progress::NAME, &path, |tree| {
                    let now = Timestamp::now();
                    let certifications: Vec<EarnedCertification> =
                        progress::operator(tree, &operator_id)
                            .map(|op| op.earned_certifications)
                            .unwrap_or_default()
                            .into_iter()
                            .filter(|e| e.is_valid(now))
                            .collect();
                    Ok(Earned {
                        operator_id: operator_id.clone(),
                        count: certifications.len(),
                        certifications,
                    })
                })
                .await?;
            if read.json() {
                return print_json(&earned);
            }
            let mut table = Table::new();
            table.set_header(["Certification", "Earned", "Expires"]);
            for e in &earned.certifications {
                table.add_row([
                    e.certification_id.clone(),
                    e.earned_at.to_rfc3339(),
                    e.expires_at.map_or("never".into(), |t| t.to_rfc3339()),
                ]);
            }
            println!("{table}");
        }
    }
    Ok(())
}

fn catalogue_table(certifications: &[Certification]) -> String {
    let mut table = Table::new();
    table.set_header(["Certification", "Name", "Level", "Sessions", "XP", "Skills"]);
    for c in certifications {
        let level = serde_json::to_value(c.level).ok();
        table.add_row([
            c.id.clone(),
            c.name.clone(),
            level
                .as_ref()
                .and_then(|l| l.as_str())
                .unwrap_or("")
                .to_owned(),
            c.requirements.min_sessions.to_string(),
            c.requirements.min_xp.to_string(),
            c.requirements
                .required_skills
                .iter()
                .map(|s| format!("{}≥{}", s.name, progress::level_name(s.level)))
                .collect::<Vec<_>>()
                .join(", "),
        ]);
    }
    format!("{table}\n")
}
