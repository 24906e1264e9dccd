//! Intake adapters: every way events come in ends in [`submit`].

use std::sync::Arc;

use ats_commands::intake::{parse_body, IntakeError, Limits};
use ats_events::EventId;
use serde::Serialize;

use crate::log::{AppendOutcome, EventLog, LogError, Position};

/// Why a submission was refused.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// The body was invalid; nothing was appended.
    #[error(transparent)]
    Invalid(#[from] IntakeError),
    /// The log refused or failed; nothing was acknowledged.
    #[error(transparent)]
    Log(#[from] LogError),
}

/// The answer to a submission, as the HTTP and NATS intakes return it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Receipt {
    /// Log position of each submitted event, in order.
    pub positions: Vec<Position>,
    /// Ids (UUIDs) of events the log already held.
    pub duplicates: Vec<EventId>,
}

impl From<AppendOutcome> for Receipt {
    fn from(outcome: AppendOutcome) -> Self {
        Self {
            positions: outcome.positions,
            duplicates: outcome.duplicates,
        }
    }
}

/// Parses a CloudEvents body (one event or a batch) and appends it, all or nothing.
pub async fn submit(
    log: &dyn EventLog,
    body: &[u8],
    limits: &Limits,
) -> Result<Receipt, SubmitError> {
    let events = parse_body(body, limits)?;
    Ok(log.append(events).await?.into())
}

/// Subject the orchestrator publishes CloudEvents to (`ats.intake.<anything>`).
pub const INTAKE_SUBJECT: &str = "ats.intake.>";
/// Queue group, so several ingest nodes share the intake without double appends.
pub const INTAKE_QUEUE: &str = "ats-intake";

/// Serves the NATS intake subject until `shutdown` resolves: each message is a CloudEvent or
/// a batch; when the publisher asked for a reply it gets the [`Receipt`] or
/// `{"error": …, "message": …}` as JSON.
pub async fn serve_nats_intake(
    client: async_nats::Client,
    log: Arc<dyn EventLog>,
    limits: Limits,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), LogError> {
    use futures_util::StreamExt;
    let subscription = client
        .queue_subscribe(INTAKE_SUBJECT, INTAKE_QUEUE.into())
        .await
        .map_err(|e| LogError::Unavailable(format!("cannot subscribe to {INTAKE_SUBJECT}: {e}")))?;
    // Messages are submitted concurrently, as HTTP requests are: one slow append does not
    // hold the others back, and the embedded log's group commit can only group appends that
    // are in flight together. Publishers that need an order wait for each reply.
    subscription
        .take_until(shutdown)
        .for_each_concurrent(INTAKE_CONCURRENCY, |message| {
            let (client, log) = (client.clone(), log.clone());
            async move {
                let answer = match submit(log.as_ref(), &message.payload, &limits).await {
                    Ok(receipt) => serde_json::to_vec(&receipt),
                    Err(err) => {
                        tracing::debug!(subject = %message.subject, %err, "intake message refused");
                        serde_json::to_vec(&serde_json::json!({
                            "error": error_code(&err),
                            "message": err.to_string(),
                        }))
                    }
                };
                if let (Some(reply), Ok(answer)) = (message.reply, answer) {
                    if let Err(err) = client.publish(reply, answer.into()).await {
                        tracing::warn!(%err, "cannot answer an intake message");
                    }
                }
            }
        })
        .await;
    Ok(())
}

/// Intake messages submitted at once by one node.
const INTAKE_CONCURRENCY: usize = 32;

/// The stable error code of a refused submission (`invalid_event`, `conflict`, …).
pub fn error_code(err: &SubmitError) -> &'static str {
    match err {
        SubmitError::Invalid(IntakeError::Malformed(_)) => "malformed_json",
        SubmitError::Invalid(IntakeError::TooLarge { .. }) => "batch_too_large",
        SubmitError::Invalid(IntakeError::ConflictInBatch { .. }) => "conflict",
        SubmitError::Invalid(_) => "invalid_event",
        SubmitError::Log(LogError::Conflict { .. }) => "conflict",
        SubmitError::Log(LogError::TooLarge { .. }) => "batch_too_large",
        SubmitError::Log(LogError::Unavailable(_)) => "log_unavailable",
        SubmitError::Log(_) => "log_error",
    }
}

/// Reads NDJSON (one CloudEvent per line; blank lines skipped) and appends it in batches of
/// `batch_size`. `progress(lines_done)` is called after each batch. A line that does not parse
/// stops the import with an error naming the line; batches before it stay appended (each is
/// atomic and a re-run skips them as duplicates).
pub async fn import_ndjson(
    log: &dyn EventLog,
    reader: impl std::io::BufRead,
    batch_size: usize,
    mut progress: impl FnMut(u64),
) -> Result<ImportSummary, ImportError> {
    let limits = Limits {
        max_batch: batch_size.max(1),
        ..Limits::default()
    };
    let mut summary = ImportSummary::default();
    let mut batch = Vec::with_capacity(batch_size);
    let mut line_no = 0u64;
    for line in reader.lines() {
        line_no += 1;
        let line = line.map_err(|e| ImportError::Io(e.to_string()))?;
        if line.trim().is_empty() {
            continue;
        }
        let mut events =
            ats_commands::intake::parse_body(line.as_bytes(), &limits).map_err(|error| {
                ImportError::Line {
                    line: line_no,
                    error,
                }
            })?;
        batch.append(&mut events);
        if batch.len() >= batch_size {
            summary.add(log.append(std::mem::take(&mut batch)).await?);
            progress(line_no);
        }
    }
    if !batch.is_empty() {
        summary.add(log.append(batch).await?);
    }
    progress(line_no);
    summary.lines = line_no;
    Ok(summary)
}

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ImportSummary {
    /// Lines read.
    pub lines: u64,
    /// Events appended.
    pub appended: u64,
    /// Events already in the log.
    pub duplicates: u64,
    /// Highest position written or found.
    pub last_position: Position,
}

impl ImportSummary {
    fn add(&mut self, outcome: AppendOutcome) {
        self.duplicates += outcome.duplicates.len() as u64;
        self.appended += (outcome.positions.len() - outcome.duplicates.len()) as u64;
        self.last_position = self.last_position.max(outcome.last_position());
    }
}

/// Why an import stopped.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// A line is not a valid event.
    #[error("line {line}: {error}")]
    Line {
        /// 1-based line number.
        line: u64,
        /// What is wrong.
        error: IntakeError,
    },
    /// Reading the file failed.
    #[error("cannot read input: {0}")]
    Io(String),
    /// The log refused or failed.
    #[error(transparent)]
    Log(#[from] LogError),
}
