//! `ats-mafia serve`: the log, the projectors, the query API and the dashboard.

use std::future::IntoFuture;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::Context;
use ats_events::Timestamp;
use ats_ingest::EventLog;
use ats_projections::runtime::Runtime;
use axum::extract::Request;
use axum::Router;
use indicatif::{ProgressBar, ProgressStyle};
use tower::ServiceExt;

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
    /// Longest an HTTP request may run before it is cancelled (503 `timeout`), in ms.
    #[arg(long, env = "ATS_REQUEST_TIMEOUT_MS", default_value_t = 30_000)]
    pub request_timeout_ms: u64,
    /// Most HTTP requests in flight; more are refused at once (503 `overloaded`).
    #[arg(long, env = "ATS_MAX_CONCURRENT_REQUESTS", default_value_t = 512)]
    pub max_concurrent_requests: usize,
    /// Serve without API keys: every request may do everything. Refused unless the address
    /// is a loopback one — for local play only.
    #[arg(long)]
    pub insecure_no_auth: bool,
    /// A key with every scope, held in memory for the life of the process (at least 32
    /// characters; pass it through the environment, not the command line).
    #[arg(long, env = "ATS_ROOT_KEY", hide_env_values = true)]
    pub root_key: Option<String>,
    #[command(flatten)]
    pub log: LogArgs,
}

/// Shortest root key accepted: a guessable root key would open everything.
const MIN_ROOT_KEY_LEN: usize = 32;

/// The authentication of this process, and the demo key to print (`--demo`).
fn auth(
    args: &Args,
    config: &Config,
    address: std::net::SocketAddr,
) -> anyhow::Result<(ats_query_api::auth::Auth, Option<String>)> {
    use ats_query_api::auth::{Auth, MemoryKey};
    if args.insecure_no_auth {
        anyhow::ensure!(
            address.ip().is_loopback(),
            "--insecure-no-auth: refused on {address}, which is not a loopback address; bind 127.0.0.1 or use API keys"
        );
        return Ok((Auth::disabled(), None));
    }
    let mut memory = Vec::new();
    if let Some(root) = &args.root_key {
        anyhow::ensure!(
            root.trim().len() >= MIN_ROOT_KEY_LEN,
            "ATS_ROOT_KEY: must be at least {MIN_ROOT_KEY_LEN} characters long"
        );
        memory.push(MemoryKey::new("root", root.trim()));
    }
    let demo = if args.demo {
        let key = ats_commands::keys::generate("demo", &ats_events::Scope::ALL, None)
            .context("cannot make the demo key")?;
        memory.push(MemoryKey::new("demo", &key.token));
        Some(key.token)
    } else {
        None
    };
    Ok((Auth::new(memory, config.api.rate_limit_per_minute), demo))
}

pub async fn run(args: Args, config: Config) -> anyhow::Result<()> {
    let paths = args.log.resolve(&config);
    let bind = args.bind.clone().unwrap_or_else(|| config.api.bind.clone());
    // Listen first: while the log connects (NATS may come up after us) `/healthz` answers and
    // `/readyz` says why we are not ready, instead of a refused connection.
    let listener = tokio::net::TcpListener::bind(&bind)
        .await
        .with_context(|| format!("cannot listen on {bind}"))?;
    let address = listener.local_addr()?;
    let (auth, demo_key) = auth(&args, &config, address)?;
    let (why, why_rx) = tokio::sync::watch::channel("opening the event log".to_owned());
    let api: Arc<OnceLock<Router>> = Arc::new(OnceLock::new());
    let front = front(api.clone(), ats_query_api::starting(why_rx));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn({
        let stop = stop.clone();
        async move {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = terminate() => {}
            }
            let _ = stop.send(true);
        }
    });
    let mut stopped_http = stopped.clone();
    let http = tokio::spawn(
        axum::serve(listener, front)
            .with_graceful_shutdown(async move {
                let _ = stopped_http.wait_for(|s| *s).await;
            })
            .into_future(),
    );
    let where_log = match &paths.jetstream {
        None => format!("embedded log at {}", paths.data.join("log.redb").display()),
        Some(js) => format!(
            "JetStream stream {} at {} (intake subject {})",
            js.stream,
            js.redacted_url(),
            ats_ingest::intake::INTAKE_SUBJECT
        ),
    };
    if paths.jetstream.is_some() {
        // Not "listening on": scripts take that line to mean the API takes writes.
        println!("ats-mafia analytics starting on http://{address}/ (/healthz is up; /readyz answers 503 until the event log is open)");
    }

    let mut stopped_early = stopped.clone();
    let opened = tokio::select! {
        opened = paths.open_log_reporting(Duration::from_secs(args.connect_timeout), |text| {
            let _ = why.send(text.to_owned());
        }) => opened,
        _ = stopped_early.wait_for(|s| *s) => {
            let _ = http.await;
            println!("stopped before the event log was open");
            return Ok(());
        }
    };
    let log = match opened {
        Ok(log) => log,
        Err(err) => {
            let _ = stop.send(true);
            let _ = http.await;
            return Err(err);
        }
    };
    let store = paths.open_store()?;
    if args.demo {
        seed_demo(log.as_ref()).await?;
    }
    let projectors = ats_projections::all_projectors();
    let names: Vec<&str> = projectors.iter().map(|p| p.name()).collect();
    let retired = store
        .retire_others(&names)
        .context("cannot drop the read models of retired projectors")?;
    if !retired.is_empty() {
        tracing::info!(
            message = "Dropped the read models of projectors this version no longer runs.",
            retired = %retired.join(", ")
        );
    }
    let runtime =
        Runtime::start(store, log.clone(), projectors).context("cannot start the projectors")?;
    let mut state = ats_query_api::AppState::new(log.clone(), runtime.clone());
    state.budget_thresholds = config.analytics.alerts.budget_thresholds.clone();
    state.performance_threshold = config.analytics.alerts.performance_threshold;
    let scheduled = scheduled_reports(&config, args.demo)?;
    state.report_formats = report_formats(&config)?;
    // Scratch stores are removed when their answer is ready; what a crash left is removed here.
    state.scratch = paths.scratch();
    match std::fs::remove_dir_all(&state.scratch) {
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
            tracing::warn!(%err, dir = %state.scratch.display(), "cannot clear the scratch directory");
        }
        _ => {}
    }
    let auth = Arc::new(auth);
    state.auth = auth.clone();
    state.http = ats_query_api::HttpLimits {
        request_timeout: Duration::from_millis(args.request_timeout_ms.max(1)),
        max_concurrent: args.max_concurrent_requests.max(1),
    };
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
    let scheduler = (!scheduled.is_empty()).then(|| {
        let state = state.clone();
        let mut stopped = stopped.clone();
        tokio::spawn(ats_query_api::auto_reports::run(
            state,
            scheduled,
            async move {
                let _ = stopped.wait_for(|s| *s).await;
            },
        ))
    });
    let warm_up = tokio::spawn({
        let state = state.clone();
        let mut stopped = stopped.clone();
        ats_query_api::warm_up::run(state, async move {
            let _ = stopped.wait_for(|s| *s).await;
        })
    });
    // `set` fails only if it was set before, and nothing else sets it.
    let _ = api.set(ats_query_api::app(state));
    println!("ats-mafia analytics listening on http://{address}/ (dashboard), API under /api, {where_log}");
    match &demo_key {
        Some(key) => {
            println!("demo API key (every scope, valid while this process runs): {key}");
            println!("open the dashboard: http://{address}/#key={key}");
        }
        None if !auth.enabled => {
            println!("WARNING: --insecure-no-auth: no API keys are checked on {address}")
        }
        None if auth.memory_keys.is_empty() => warn_without_keys(&runtime, &log).await,
        None => {}
    }
    tracing::info!(%address, log = log.backend(), "serving");
    match http.await {
        Ok(result) => result.context("the HTTP server failed")?,
        Err(err) => anyhow::bail!("the HTTP server task failed: {err}"),
    }
    let _ = stop.send(true);
    for task in [intake, scheduler, Some(warm_up)].into_iter().flatten() {
        let _ = task.await;
    }
    runtime.shutdown().await;
    println!("stopped; read models flushed");
    Ok(())
}

/// Tells the operator when no key can get in yet (a fresh data directory without a root key).
async fn warn_without_keys(runtime: &Runtime, log: &Arc<dyn EventLog>) {
    let Some(handle) = runtime.handle(ats_projections::keys::NAME) else {
        return;
    };
    let Ok(head) = log.head().await else {
        return;
    };
    if handle.wait_for(head, Duration::from_secs(2)).await
        && !ats_projections::keys::any_active(&handle.tree())
    {
        println!(
            "no API key exists yet: every request but /healthz and /readyz is refused. Create one with \
             `ats-mafia keys create --scope admin,ingest,read --name me` (stop this server first, or \
             pass --url with an admin key), or restart with ATS_ROOT_KEY set"
        );
    }
}

/// The router that is served from the first moment: the full API once `api` is set, the
/// `starting` API (healthz up, 503 elsewhere) before.
fn front(api: Arc<OnceLock<Router>>, starting: Router) -> Router {
    Router::new().fallback(move |request: Request| {
        let router = api.get().cloned().unwrap_or_else(|| starting.clone());
        async move {
            match router.oneshot(request).await {
                Ok(response) => response,
                Err(never) => match never {},
            }
        }
    })
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

/// The scheduled reports of `analytics.reporting.auto_generate` (both with `--demo`).
fn scheduled_reports(
    config: &Config,
    demo: bool,
) -> anyhow::Result<Vec<ats_query_api::auto_reports::AutoReport>> {
    use ats_query_api::auto_reports::AutoReport;
    let mut kinds = config.analytics.reporting.auto_generate.clone();
    if demo && kinds.is_empty() {
        kinds = vec!["daily_summary".into(), "weekly_cost".into()];
    }
    kinds
        .iter()
        .map(|kind| {
            AutoReport::parse(kind).ok_or_else(|| {
                anyhow::anyhow!(
                    "analytics.reporting.auto_generate: unknown report {kind:?}, expected daily_summary or weekly_cost"
                )
            })
        })
        .collect()
}

/// The download formats of `analytics.reporting.formats`.
fn report_formats(
    config: &Config,
) -> anyhow::Result<Vec<ats_projections::reports::render::Format>> {
    use ats_projections::reports::render::Format;
    config
        .analytics
        .reporting
        .formats
        .iter()
        .map(|name| {
            Format::parse(name).ok_or_else(|| {
                anyhow::anyhow!(
                    "analytics.reporting.formats: unknown format {name:?}, expected json, csv, html or markdown"
                )
            })
        })
        .collect()
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
