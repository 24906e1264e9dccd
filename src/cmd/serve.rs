//! `ats-mafia serve`: the log, the projectors, the query API and the dashboard.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use ats_events::Timestamp;
use ats_ingest::EventLog;
use ats_projections::runtime::Runtime;
use indicatif::{ProgressBar, ProgressStyle};

use crate::config::Config;
use crate::engine::LogArgs;

/// Arguments of `serve`.
#[derive(clap::Args)]
pub struct Args {
    /// Address to listen on.
    #[arg(long, env = "ATS_BIND")]
    pub bind: Option<String>,
    /// Seed a realistic synthetic history (36 operators, 90 days) when the log is empty.
    #[arg(long)]
    pub demo: bool,
    /// How long to keep retrying an unreachable NATS server at start-up, in seconds.
    #[arg(long, default_value_t = 60)]
    pub connect_timeout: u64,
    #[command(flatten)]
    pub log: LogArgs,
}

pub async fn run(args: Args, config: Config) -> anyhow::Result<()> {
    let paths = args.log.resolve(&config);
    let bind = args.bind.clone().unwrap_or_else(|| config.api.bind.clone());
    let log = paths
        .open_log(Duration::from_secs(args.connect_timeout))
        .await?;
    let store = paths.open_store()?;
    if args.demo {
        seed_demo(log.as_ref()).await?;
    }
    let runtime = Runtime::start(store, log.clone(), ats_projections::all_projectors())
        .context("cannot start the projectors")?;
    let state = ats_query_api::AppState::new(log.clone(), runtime.clone());
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let intake = match &paths.jetstream {
        Some(_) => {
            let client = nats_client(&log)?;
            let mut stopped = stopped.clone();
            let log = log.clone();
            let limits = state.limits;
            Some(tokio::spawn(async move {
                let shutdown = async move {
                    let _ = stopped.wait_for(|s| *s).await;
                };
                if let Err(err) =
                    ats_ingest::intake::serve_nats_intake(client, log, limits, shutdown).await
                {
                    tracing::error!(%err, "NATS intake stopped");
                }
            }))
        }
        None => None,
    };
    let listener = tokio::net::TcpListener::bind(&bind)
        .await
        .with_context(|| format!("cannot listen on {bind}"))?;
    let address = listener.local_addr()?;
    let where_log = match &paths.jetstream {
        None => format!("embedded log at {}", paths.data.join("log.redb").display()),
        Some(js) => format!(
            "JetStream stream {} at {} (intake subject {})",
            js.stream,
            js.url,
            ats_ingest::intake::INTAKE_SUBJECT
        ),
    };
    println!("ats-mafia analytics listening on http://{address}/ (dashboard), API under /api, {where_log}");
    tracing::info!(%address, log = log.backend(), "serving");
    let mut stopped_http = stopped.clone();
    axum::serve(listener, ats_query_api::app(state))
        .with_graceful_shutdown(async move {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = terminate() => {}
                _ = stopped_http.wait_for(|s| *s) => {}
            }
        })
        .await
        .context("the HTTP server failed")?;
    let _ = stop.send(true);
    if let Some(intake) = intake {
        let _ = intake.await;
    }
    runtime.shutdown().await;
    println!("stopped; read models flushed");
    Ok(())
}

#[cfg(unix)]
async fn terminate() {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut signal) => {
            signal.recv().await;
        }
        Err(_) => std::future::pending().await,
    }
}

#[cfg(not(unix))]
async fn terminate() {
    std::future::pending().await
}

fn nats_client(log: &Arc<dyn EventLog>) -> anyhow::Result<async_nats::Client> {
    let any: &dyn std::any::Any = log.as_any();
    any.downcast_ref::<ats_ingest::jetstream::JetStreamLog>()
        .map(|js| js.client().clone())
        .ok_or_else(|| anyhow::anyhow!("the NATS intake needs the JetStream log"))
}

/// Appends the demo history when the log is empty.
async fn seed_demo(log: &dyn EventLog) -> anyhow::Result<()> {
    if log.head().await? > 0 {
        println!("demo: the log already holds events; not seeding again");
        return Ok(());
    }
    let today = Timestamp::now().micros() / 86_400_000_000 * 86_400_000_000;
    let events = crate::demo::history(36, 90, Timestamp::from_micros(today));
    let bar = ProgressBar::new(events.len() as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} seeding demo history [{bar:40}] {pos}/{len} events",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let total = events.len();
    let mut chunks = events.into_iter().peekable();
    while chunks.peek().is_some() {
        let batch: Vec<_> = chunks.by_ref().take(1000).collect();
        let n = batch.len() as u64;
        log.append(batch)
            .await
            .context("cannot seed the demo history")?;
        bar.inc(n);
    }
    bar.finish_and_clear();
    println!("demo: seeded {total} events (36 operators, 90 days)");
    Ok(())
}
