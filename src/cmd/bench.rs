//! `ats-mafia bench`: the engine against the raw ceiling of the same work, in the same run.
//!
//! Every scenario prints one JSON line on stdout (`scenario`, `log`, `events`, `engine`,
//! `ceiling`, `unit`, `ratio`, `target_ratio`, or `p50_ms`/`p99_ms`/`target_p99_ms` for
//! latencies, and a query's `first_ms`); a human table and progress go to stderr. No
//! threshold is asserted here: the machines are shared and noisy, so the ratio to a ceiling
//! measured in the same run is what to read.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use ats_events::{cloudevents, codec, Envelope, LlmUsage, Payload, SessionCompleted, Timestamp};
use ats_ingest::jetstream::JetStreamConfig;
use ats_ingest::EventLog;
use ats_projections::store::Store;
use comfy_table::Table;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Value};

use crate::config::Config;
use crate::engine::Paths;

/// Arguments of `bench`.
#[derive(clap::Args)]
pub struct Args {
    /// Events in the synthetic history.
    #[arg(long, default_value_t = 1_000_000)]
    pub events: usize,
    /// Events per HTTP batch.
    #[arg(long, default_value_t = 1000)]
    pub batch: usize,
    /// Concurrent ingest clients.
    #[arg(long, default_value_t = 4)]
    pub clients: usize,
    /// Queries per endpoint in the latency scenario.
    #[arg(long, default_value_t = 200)]
    pub queries: usize,
    /// Which logs to measure.
    #[arg(long, value_enum, default_value = "both")]
    pub log: Logs,
    /// A NATS server to use; without it the bench starts its own `nats-server -js`.
    #[arg(long, env = "ATS_NATS_URL")]
    pub nats: Option<String>,
    /// Write the synthetic history to this file as NDJSON CloudEvents (one per line) and
    /// exit without measuring: `import` it to profile a fold, a replay or the store alone.
    #[arg(long, value_name = "FILE")]
    pub write_history: Option<std::path::PathBuf>,
}

/// Logs to measure.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Logs {
    /// The embedded redb log.
    Embedded,
    /// NATS JetStream.
    Jetstream,
    /// Both.
    Both,
}

/// The first instant of the synthetic history.
const HISTORY_START: &str = "2026-08-01T00:00:00Z";
/// How many days the synthetic history spans, whatever its length.
const HISTORY_DAYS: i64 = 90;
/// The end of the synthetic history, and the start of "today": the day the paced ingest's
/// events are dated on while the latency scenario runs, as live events would be.
const HISTORY_END: &str = "2026-10-30T00:00:00Z";
/// The latency queries are asked `as_of` the last second of "today", so their windows
/// (30-day breakdown, 7- and 30-day trends, today's summary and anomalies) hold the history
/// and the live events, and no live event is in their future.
const QUERIES_AS_OF: &str = "2026-10-30T23:59:59Z";

/// A deterministic synthetic history of `n` events: sessions and LLM usage of `n / 400`
/// operators (at least 10) over the 90 days from [`HISTORY_START`], evenly spaced in event
/// order (so every day holds sessions and usage, and day buckets grow with the history as
/// they would in production). `tag` prefixes event and session ids, so two histories with
/// different tags are different events.
pub fn synthetic(n: usize, tag: &str) -> Vec<Envelope> {
    let start = Timestamp::parse_rfc3339(HISTORY_START).unwrap_or_default();
    let step = HISTORY_DAYS * 86_400 * Timestamp::MICROS_PER_SEC / n.max(1) as i64;
    mix(0..n, operators_of(n), tag, start, step)
}

/// How many operators an `n`-event synthetic history has: `n / 400`, at least 10.
fn operators_of(n: usize) -> usize {
    (n / 400).max(10)
}

/// Events `indices` of the synthetic mix (a completed session, then four LLM usages of it):
/// event `i` happens at `start + i × step` µs, to operator `i % operators`.
fn mix(
    indices: std::ops::Range<usize>,
    operators: usize,
    tag: &str,
    start: Timestamp,
    step: i64,
) -> Vec<Envelope> {
    let skills = [
        "reconnaissance",
        "exploitation",
        "post_exploitation",
        "stealth_operations",
    ];
    let models = [
        "openai/gpt-4o",
        "openai/gpt-4o-mini",
        "anthropic/claude-3-5-sonnet-20241022",
    ];
    indices
        .map(|i| {
            let op = format!("op_{:05}", i % operators);
            let at = Timestamp::from_micros(start.micros() + i as i64 * step);
            let payload = if i % 5 == 0 {
                let session = format!("{tag}-s{i}");
                Payload::SessionCompleted(SessionCompleted {
                    session_id: session,
                    operator_id: op.clone(),
                    scenario_id: format!("scenario_{}", i % 12),
                    start_time: at.plus_seconds(-3600),
                    end_time: at,
                    duration_seconds: 3600.0,
                    success: i % 3 != 0,
                    score: (i % 100) as f64 / 100.0,
                    cost: 1.5,
                    skills_practiced: vec![
                        skills[i % 4].to_owned(),
                        skills[(i / 4) % 4].to_owned(),
                    ],
                    objectives_completed: 3,
                    objectives_total: 5,
                    metrics: Vec::new(),
                    difficulty: Some((i % 10) as f64 / 10.0),
                })
            } else {
                Payload::LlmUsage(LlmUsage {
                    model: models[i % 3].to_owned(),
                    profile_id: op.clone(),
                    session_id: format!("{tag}-s{}", i - i % 5),
                    task_type: skills[i % 4].to_owned(),
                    input_tokens: 500 + (i % 3000) as u64,
                    output_tokens: 100 + (i % 700) as u64,
                    cached_input_tokens: 0,
                    latency_ms: Some(800.0),
                    success: i % 50 != 0,
                    error_message: None,
                    scenario_id: None,
                    phase: None,
                    cost: None,
                })
            };
            Envelope::new(
                cloudevents::event_id(&format!("{tag}-{i}")),
                at,
                "bench",
                payload,
            )
        })
        .collect()
}

fn progress(len: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} [{bar:30}] {pos}/{len} ({per_sec})")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message(what.to_owned());
    bar
}

/// The HTTP/NATS request bodies of `events`: CloudEvents batches of `batch`.
fn request_bodies(events: &[Envelope], batch: usize) -> anyhow::Result<Vec<Vec<u8>>> {
    Ok(events
        .chunks(batch.max(1))
        .map(|chunk| {
            serde_json::to_vec(
                &chunk
                    .iter()
                    .map(cloudevents::to_cloud_event)
                    .collect::<Vec<_>>(),
            )
        })
        .collect::<Result<_, _>>()?)
}

/// Writes `events` to `path` as NDJSON CloudEvents, the format `ats-mafia import` reads.
fn write_history(path: &std::path::Path, events: &[Envelope]) -> anyhow::Result<()> {
    use std::io::Write;
    let file =
        std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut out = std::io::BufWriter::new(file);
    for event in events {
        serde_json::to_writer(&mut out, &cloudevents::to_cloud_event(event))?;
        out.write_all(b"\n")?;
    }
    out.flush()
        .with_context(|| format!("cannot write {}", path.display()))?;
    eprintln!("wrote {} events to {}", events.len(), path.display());
    Ok(())
}

/// Results, printed as JSON lines as they come and as a table at the end.
#[derive(Default)]
struct Report {
    rows: Vec<Value>,
}

impl Report {
    fn throughput(
        &mut self,
        scenario: &str,
        log: &str,
        events: usize,
        (engine, ceiling): (f64, f64),
        target: f64,
        extra: Value,
    ) {
        let mut row = json!({
            "scenario": scenario, "log": log, "events": events,
            "engine": round(engine), "ceiling": round(ceiling), "unit": "events/s",
            "ratio": round3(engine / ceiling.max(f64::MIN_POSITIVE)), "target_ratio": target,
        });
        extend(&mut row, extra);
        self.emit(row);
    }

    fn latency(
        &mut self,
        scenario: &str,
        log: &str,
        events: usize,
        samples: &mut [f64],
        target_p99: Option<f64>,
        extra: Value,
    ) {
        samples.sort_by(f64::total_cmp);
        let pick = |q: f64| {
            samples
                .get(((samples.len() as f64 - 1.0) * q).round() as usize)
                .copied()
                .unwrap_or(0.0)
        };
        let mut row = json!({
            "scenario": scenario, "log": log, "events": events,
            "p50_ms": round3(pick(0.5)), "p99_ms": round3(pick(0.99)), "samples": samples.len(),
            "target_p99_ms": target_p99,
        });
        extend(&mut row, extra);
        self.emit(row);
    }

    fn emit(&mut self, row: Value) {
        println!("{row}");
        self.rows.push(row);
    }

    fn table(&self) -> Table {
        let mut table = Table::new();
        table.set_header([
            "scenario",
            "log",
            "events",
            "engine",
            "ceiling",
            "ratio / p99",
            "target",
        ]);
        for r in &self.rows {
            let cell = |k: &str| {
                r.get(k)
                    .filter(|v| !v.is_null())
                    .map(|v| v.to_string().trim_matches('"').to_owned())
                    .unwrap_or_default()
            };
            let scenario = match r.get("query") {
                Some(q) => format!("{} {}", cell("scenario"), q.as_str().unwrap_or_default()),
                None => cell("scenario"),
            };
            if r.get("ratio").is_some() {
                table.add_row([
                    scenario,
                    cell("log"),
                    cell("events"),
                    cell("engine"),
                    cell("ceiling"),
                    cell("ratio"),
                    format!("≥ {}", cell("target_ratio")),
                ]);
            } else if r.get("p99_ms").is_some() {
                let target = cell("target_p99_ms");
                table.add_row([
                    scenario,
                    cell("log"),
                    cell("events"),
                    format!("p50 {} ms", cell("p50_ms")),
                    cell("ceiling_p99_ms"),
                    format!("{} ms", cell("p99_ms")),
                    if target.is_empty() {
                        String::new()
                    } else {
                        format!("≤ {target} ms")
                    },
                ]);
            } else {
                table.add_row([
                    scenario,
                    cell("log"),
                    cell("events"),
                    cell("value"),
                    String::new(),
                    cell("unit"),
                    cell("target"),
                ]);
            }
        }
        table
    }
}

/// Adds the fields of `extra` (an object; anything else adds nothing) to `row`.
fn extend(row: &mut Value, extra: Value) {
    if let (Value::Object(row), Value::Object(extra)) = (row, extra) {
        row.extend(extra);
    }
}

fn round(v: f64) -> f64 {
    v.round()
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

/// One engine under test: `ats-mafia serve` in its own process (so its memory is its own),
/// on a loopback port, over a fresh data directory.
struct Engine {
    child: std::process::Child,
    url: String,
    dir: tempfile::TempDir,
    nats: Option<String>,
    stream: String,
}

/// The key the bench's servers hold in memory and its requests send: the figures include
/// authentication, as a client's requests would.
fn bench_key() -> &'static str {
    static KEY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    KEY.get_or_init(|| {
        ats_commands::keys::generate("bench", &ats_events::Scope::ALL, None)
            .map(|key| key.token)
            // A v7 UUID is still 74 random bits, plenty for a loopback server of a few minutes.
            .unwrap_or_else(|_| format!("bench-{}", uuid::Uuid::now_v7().simple()))
    })
}

/// An HTTP client sending [`bench_key`].
fn api_client() -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    if let Ok(value) = format!("Bearer {}", bench_key()).parse() {
        headers.insert(reqwest::header::AUTHORIZATION, value);
    }
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .unwrap_or_default()
}

impl Engine {
    async fn start(nats: Option<String>) -> anyhow::Result<Self> {
        use std::io::BufRead;
        let dir = tempfile::tempdir()?;
        // Unique per engine: a stream name allows letters, digits, `-` and `_`.
        let unique: String = dir
            .path()
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default()
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .collect();
        let stream = format!("ATS_BENCH_{}_{unique}", std::process::id());
        let mut command = std::process::Command::new(std::env::current_exe()?);
        command
            .args(["serve", "--bind", "127.0.0.1:0", "--data"])
            .arg(dir.path())
            .env("RUST_LOG", "warn")
            .env("ATS_ROOT_KEY", bench_key())
            .stdout(std::process::Stdio::piped());
        if let Some(url) = &nats {
            command.args(["--nats", url, "--stream", &stream]);
        }
        let mut child = command.spawn().context("cannot start the engine")?;
        let stdout = child.stdout.take().context("engine stdout")?;
        let (url, rest) = tokio::task::spawn_blocking(move || {
            let mut lines = std::io::BufReader::new(stdout).lines();
            for line in lines.by_ref() {
                let line = line.ok()?;
                if let Some(rest) = line.split("listening on ").nth(1) {
                    let url = rest
                        .split_whitespace()
                        .next()?
                        .trim_end_matches('/')
                        .to_owned();
                    return Some((url, lines));
                }
            }
            None
        })
        .await?
        .context("the engine exited before listening")?;
        std::thread::spawn(move || for _ in rest {});
        Ok(Self {
            child,
            url,
            dir,
            nats,
            stream,
        })
    }

    fn peak_rss_mib(&self) -> f64 {
        peak_rss_mib_of(&format!("/proc/{}/status", self.child.id()))
    }

    /// Stops the server (SIGTERM, then wait) so its data can be opened in this process.
    fn stop(&mut self) -> anyhow::Result<()> {
        let _ = std::process::Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        self.child.wait()?;
        Ok(())
    }

    /// The engine's data directory and log, as `serve` resolved them.
    fn paths(&self) -> Paths {
        Paths {
            data: self.dir.path().to_path_buf(),
            jetstream: self.nats.as_ref().map(|url| JetStreamConfig {
                url: url.clone(),
                stream: self.stream.clone(),
                ..JetStreamConfig::default()
            }),
            cache_mib: ats_projections::store::DEFAULT_CACHE_MIB,
        }
    }

    /// The log the engine wrote, opened here as `serve` opens it (after `stop`, which frees
    /// the embedded log and the JetStream node's id index, the index a node replays with).
    async fn open_log(&self) -> anyhow::Result<Arc<dyn EventLog>> {
        self.paths().open_log(Duration::from_secs(10)).await
    }

    /// Deletes the engine's JetStream stream, so that a server given with `--nats` is not
    /// left holding the bench's events (a failure only leaves the stream behind).
    async fn remove_stream(&self) {
        if let Some(url) = &self.nats {
            if let Ok(client) = async_nats::connect(url.as_str()).await {
                let _ = async_nats::jetstream::new(client)
                    .delete_stream(&self.stream)
                    .await;
            }
        }
    }

    /// The engine's read models (after `stop`).
    fn read_models(&self) -> std::path::PathBuf {
        self.paths().read_models()
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub async fn run(args: Args, _config: Config) -> anyhow::Result<()> {
    let started = Instant::now();
    if args.write_history.is_none() {
        check_disk(args.events)?;
    }
    eprintln!("generating {} synthetic events…", args.events);
    let events = synthetic(args.events, "bench");
    if let Some(path) = &args.write_history {
        return write_history(path, &events);
    }
    let bodies = request_bodies(&events, args.batch)?;
    let encoded: Vec<Vec<u8>> = events.iter().map(codec::encode).collect::<Result<_, _>>()?;
    let mut report = Report::default();

    if args.log != Logs::Jetstream {
        let dir = tempfile::tempdir()?;
        let ceiling = raw_redb_write(&dir.path().join("raw.redb"), &encoded, args.batch)?;
        scenarios(
            &mut report,
            "embedded",
            Engine::start(None).await?,
            &args,
            &bodies,
            ceiling,
            &[],
        )
        .await?;
    }
    if args.log != Logs::Embedded {
        let own = match &args.nats {
            Some(_) => None,
            None => Some(ats_ingest::testkit::NatsServer::start()),
        };
        let url = args
            .nats
            .clone()
            .or_else(|| own.as_ref().map(|s| s.url()))
            .context("no NATS server")?;
        let ceiling = raw_jetstream_publish(&url, &encoded).await?;
        // The same work over the NATS intake subject, against the same pipelined-publish
        // ceiling, on an engine and stream of its own: every JetStream figure is then of a
        // log of `--events` events, as the embedded ones are.
        let mut intake = Engine::start(Some(url.clone())).await?;
        let rate = nats_intake(&url, &bodies, args.clients, args.events).await?;
        report.throughput(
            "ingest_nats",
            "jetstream",
            args.events,
            (rate, ceiling),
            0.5,
            Value::Null,
        );
        wait_live(&api_client(), &intake.url).await?;
        let intake_peak = intake.peak_rss_mib();
        intake.stop()?;
        intake.remove_stream().await;
        drop(intake);
        scenarios(
            &mut report,
            "jetstream",
            Engine::start(Some(url)).await?,
            &args,
            &bodies,
            ceiling,
            &[intake_peak],
        )
        .await?;
    }
    eprintln!(
        "\n{}\nbench finished in {:.1} s",
        report.table(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Disk a run takes in the temporary directory per event of its history, at most: the live
/// log and read models, the raw ceiling's copy of the log, the rebuilt read models and the
/// storage floor's copy of them, side by side. Measured: ~5.5 KB an event at 1M, ~5.7 KB at
/// 10M (57 GB at the peak; a 10M run with 56 GB free filled the disk half an hour in).
const DISK_PER_EVENT: u64 = 6_000;

/// Refuses, before generating anything, a run the temporary directory cannot hold.
fn check_disk(events: usize) -> anyhow::Result<()> {
    let dir = std::env::temp_dir();
    let stat = rustix::fs::statvfs(&dir)
        .with_context(|| format!("cannot read the free space of {}", dir.display()))?;
    enough_disk(&dir, events, stat.f_bavail.saturating_mul(stat.f_frsize))
}

fn enough_disk(dir: &std::path::Path, events: usize, free: u64) -> anyhow::Result<()> {
    let needed = (events as u64).saturating_mul(DISK_PER_EVENT);
    let gb = |bytes: u64| bytes as f64 / 1e9;
    anyhow::ensure!(
        needed <= free,
        "--events {events} needs about {:.1} GB free in {} ({} KB an event: the logs and read \
         models the run writes side by side), which has {:.1} GB: set TMPDIR to a larger \
         disk or ask for fewer events",
        gb(needed),
        dir.display(),
        DISK_PER_EVENT / 1000,
        gb(free)
    );
    Ok(())
}

async fn scenarios(
    report: &mut Report,
    log_name: &str,
    mut engine: Engine,
    args: &Args,
    bodies: &[Vec<u8>],
    ceiling: f64,
    other_peaks: &[f64],
) -> anyhow::Result<()> {
    let n = args.events;
    let client = api_client();
    // Durable ingest over HTTP.
    let rate = http_ingest(&engine.url, bodies, args.clients, n).await?;
    report.throughput(
        "ingest_http",
        log_name,
        n,
        (rate, ceiling),
        0.5,
        Value::Null,
    );

    // Query latency (and read-your-writes) while ingest runs at half its measured rate.
    let head = wait_live(&client, &engine.url).await?;
    let stop = tokio::sync::watch::channel(false);
    // On a thread and runtime of its own: building a batch's body is CPU work, and on the
    // runtime that times the queries it would hold up a query's completion, so that the
    // load generator's delays would count as the engine's latency.
    let background = {
        let (url, stop) = (engine.url.clone(), stop.1);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let operators = operators_of(n);
        std::thread::spawn(move || runtime.block_on(paced_ingest(url, rate / 2.0, operators, stop)))
    };
    let operator = "op_00000";
    // The four queries issue 8 names: one operator's analysis, a top-10, a 30-day cost
    // breakdown, and the dashboard (everything at once).
    let queries = [
        (
            "performance",
            format!("/api/analytics/operator/{operator}/performance?as_of={QUERIES_AS_OF}"),
        ),
        (
            "leaderboard",
            format!("/api/analytics/leaderboard?type=xp&limit=10&as_of={QUERIES_AS_OF}"),
        ),
        (
            "cost_breakdown",
            format!("/api/analytics/cost/breakdown?category=model_usage&time_range_days=30&as_of={QUERIES_AS_OF}"),
        ),
        (
            "dashboard",
            format!("/api/analytics/dashboard?as_of={QUERIES_AS_OF}"),
        ),
    ];
    let mut latencies = Vec::new();
    for (name, path) in &queries {
        // The first request of each query is timed on its own (`first_ms`) and the
        // percentiles are of the requests after it: the first dashboard after a start judges
        // every spend series' recent days (117 ms in the handler at 1M against 0.4–1 ms
        // warm), so counted in, the p99 of 200 samples was the slowest of the other 199.
        let mut samples = Vec::with_capacity(args.queries + 1);
        for _ in 0..=args.queries {
            let t = Instant::now();
            let response = client.get(format!("{}{path}", engine.url)).send().await?;
            let status = response.status();
            let body = response.bytes().await?;
            anyhow::ensure!(
                status.is_success(),
                "{path} failed during the bench: {status} {}",
                String::from_utf8_lossy(&body)
            );
            samples.push(t.elapsed().as_secs_f64() * 1e3);
        }
        let first = samples.remove(0);
        latencies.push((name, first, samples));
    }
    let _ = stop.0.send(true);
    let _ = tokio::task::spawn_blocking(move || background.join()).await;

    // Freshness: from an append's acknowledgement to the event being visible in a query,
    // measured once the projectors have caught up with the paced ingest. A query that waits
    // past the server's read-your-writes bound (5 s) counts as a miss, not a sample.
    wait_live(&client, &engine.url).await?;
    let mut fresh = Vec::with_capacity(args.queries);
    let mut missed = 0usize;
    for i in 0..args.queries.min(200) {
        let event = json!({"specversion": "1.0", "id": format!("fresh-{log_name}-{i}"), "type": "ats.skill.assessed",
            "source": "bench", "time": "2026-11-01T00:00:00Z",
            "data": {"operator_id": operator, "skill": "freshness", "score": 0.5}});
        let receipt: Value = client
            .post(format!("{}/api/events", engine.url))
            .json(&event)
            .send()
            .await?
            .json()
            .await?;
        let acked = Instant::now();
        let position = receipt["positions"][0].as_u64().context("no position")?;
        let status = client
            .get(format!(
                "{}/api/analytics/operator/{operator}/performance?min_position={position}",
                engine.url
            ))
            .send()
            .await?
            .status();
        if status == reqwest::StatusCode::GATEWAY_TIMEOUT {
            missed += 1;
            continue;
        }
        anyhow::ensure!(status.is_success(), "freshness query failed: {status}");
        fresh.push(acked.elapsed().as_secs_f64() * 1e3);
    }
    let engine_rss = engine.peak_rss_mib();
    engine.stop()?;
    let store_mib = dir_mib(&engine.read_models());

    // Rebuild: replay every projector from 0 into a fresh store, against reading the log,
    // decoding and folding into a HashMap.
    let log = engine.open_log().await?;
    let head = log.head().await?.max(head);
    // The log holds more than the history by now (paced ingest, freshness probes, the NATS
    // intake set): both sides are measured over all of it.
    let (ceiling, in_log) = raw_fold(log.clone(), head).await?;
    let rebuild_dir = tempfile::tempdir()?;
    let store = Store::open(rebuild_dir.path().join("rm"))?;
    let bar = progress(head, "rebuild");
    let t = Instant::now();
    ats_projections::runtime::rebuild_all(
        &store,
        log.clone(),
        ats_projections::all_projectors(),
        |_, p, _| bar.set_position(p),
    )
    .await
    .map_err(|e| anyhow::anyhow!("rebuild failed: {e}"))?;
    bar.finish_and_clear();
    // Every projector replays the whole log: events/s of one pass over all projectors.
    let rebuild = in_log as f64 / t.elapsed().as_secs_f64();
    let floor = storage_floor(&store)?;
    report.throughput(
        "rebuild",
        log_name,
        in_log,
        (rebuild, ceiling),
        0.3,
        json!({"storage_floor": {
            "keys": floor.keys, "bytes": floor.bytes,
            "events_per_s": round(in_log as f64 / floor.seconds),
        }}),
    );

    let ceiling_p99 = sled_point_read_p99(&engine.read_models(), operator, args.queries)?;
    for (name, first, mut samples) in latencies {
        report.latency(
            "query_latency",
            log_name,
            n,
            &mut samples,
            Some(5.0),
            json!({"query": name, "first_ms": round3(first), "ceiling_p99_ms": round3(ceiling_p99)}),
        );
    }
    report.latency(
        "freshness",
        log_name,
        n,
        &mut fresh,
        Some(100.0),
        json!({"missed_over_5s": missed}),
    );
    // The highest peak of every `serve` of this log's scenarios (each held `n` events).
    let peak = other_peaks.iter().copied().fold(engine_rss, f64::max);
    report.emit(
        json!({"scenario": "memory", "log": log_name, "events": n, "value": peak,
        "unit": "MiB peak RSS of serve", "target": "≤ 256", "peaks": std::iter::once(engine_rss).chain(other_peaks.iter().copied()).collect::<Vec<f64>>(),
        // Not a target: the disk the live read models took (sled is log-structured, so
        // this is more than the entries hold).
        "read_models_disk_mib": store_mib}),
    );
    engine.remove_stream().await;
    Ok(())
}

/// Waits until every projector is live; returns the log head.
async fn wait_live(client: &reqwest::Client, url: &str) -> anyhow::Result<u64> {
    let deadline = Instant::now() + Duration::from_secs(3600);
    loop {
        let response = client.get(format!("{url}/readyz")).send().await?;
        let ready = response.status().is_success();
        let body: Value = response.json().await?;
        if ready {
            return Ok(body["log"]["head"].as_u64().unwrap_or(0));
        }
        anyhow::ensure!(Instant::now() < deadline, "the engine never caught up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Sends every body once through `send`, from `clients` concurrent senders taking the next
/// body in turn; events/s of the whole run (`events` in all the bodies).
async fn drive<F, Fut>(
    bodies: &[Vec<u8>],
    clients: usize,
    events: usize,
    what: &str,
    send: F,
) -> anyhow::Result<f64>
where
    F: Fn(Vec<u8>) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send,
{
    let bar = progress(bodies.len() as u64, what);
    let t = Instant::now();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let bodies: Arc<Vec<Vec<u8>>> = Arc::new(bodies.to_vec());
    let mut tasks = Vec::new();
    for _ in 0..clients.max(1) {
        let (next, bodies, bar, send) = (next.clone(), bodies.clone(), bar.clone(), send.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(body) = bodies.get(i) else {
                    return Ok::<_, anyhow::Error>(());
                };
                send(body.clone()).await?;
                bar.inc(1);
            }
        }));
    }
    for task in tasks {
        task.await??;
    }
    bar.finish_and_clear();
    Ok(events as f64 / t.elapsed().as_secs_f64())
}

/// POSTs `bodies` to `/api/events` from `clients` concurrent clients; events/s acknowledged.
async fn http_ingest(
    url: &str,
    bodies: &[Vec<u8>],
    clients: usize,
    events: usize,
) -> anyhow::Result<f64> {
    let (client, endpoint) = (api_client(), format!("{url}/api/events"));
    drive(
        bodies,
        clients,
        events,
        "ingest over HTTP (batches)",
        move |body| {
            let request = client
                .post(&endpoint)
                .header("content-type", "application/cloudevents-batch+json")
                .body(body);
            async move {
                let response = request.send().await?;
                anyhow::ensure!(
                    response.status().is_success(),
                    "ingest failed: {}",
                    response.text().await?
                );
                Ok(())
            }
        },
    )
    .await
}

/// Requests `bodies` on the NATS intake subject from `clients` concurrent requesters, each
/// waiting for its receipt; events/s acknowledged.
async fn nats_intake(
    url: &str,
    bodies: &[Vec<u8>],
    clients: usize,
    events: usize,
) -> anyhow::Result<f64> {
    let nats = async_nats::ConnectOptions::new()
        .request_timeout(Some(Duration::from_secs(30)))
        .connect(url)
        .await?;
    drive(
        bodies,
        clients,
        events,
        "ingest over the NATS intake (batches)",
        move |body| {
            let nats = nats.clone();
            async move {
                let reply = nats.request("ats.intake.bench", body.into()).await?;
                let receipt: Value = serde_json::from_slice(&reply.payload)?;
                anyhow::ensure!(
                    receipt["positions"].is_array(),
                    "intake refused a batch: {receipt}"
                );
                Ok(())
            }
        },
    )
    .await
}

/// Posts batches of [`PACED_BATCH`] events at `rate` events/s until told to stop: the
/// history's mix among its `operators`, as live events arrive, in time order from the start of
/// the day after the history ("today" for the queries), [`PACED_STEP_MS`] apart.
async fn paced_ingest(
    url: String,
    rate: f64,
    operators: usize,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let client = api_client();
    let every = Duration::from_secs_f64(PACED_BATCH as f64 / rate.max(1.0));
    let mut tick = tokio::time::interval(every);
    let mut sent = 0usize;
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            _ = tick.tick() => {}
        }
        let events: Vec<Value> = paced_batch(sent, operators)
            .iter()
            .map(cloudevents::to_cloud_event)
            .collect();
        sent += PACED_BATCH;
        let _ = client
            .post(format!("{url}/api/events"))
            .json(&events)
            .send()
            .await;
    }
}

/// Events per batch of the paced ingest.
const PACED_BATCH: usize = 100;
/// Time between two paced events (a day holds 86.4M of them: far more than a bench sends).
const PACED_STEP_MS: i64 = 1;

/// The paced batch after `sent` events.
fn paced_batch(sent: usize, operators: usize) -> Vec<Envelope> {
    let today = Timestamp::parse_rfc3339(HISTORY_END).unwrap_or_default();
    let step = PACED_STEP_MS * 1000;
    mix(sent..sent + PACED_BATCH, operators, "paced", today, step)
}

/// The raw ceiling of the embedded log: one fsynced redb transaction per batch writing the
/// same encoded bytes, without validation, dedup or index.
fn raw_redb_write(
    path: &std::path::Path,
    encoded: &[Vec<u8>],
    batch: usize,
) -> anyhow::Result<f64> {
    const TABLE: redb::TableDefinition<u64, &[u8]> = redb::TableDefinition::new("raw");
    let db = redb::Database::create(path)?;
    let bar = progress(encoded.len() as u64, "raw redb writes");
    let t = Instant::now();
    let mut position = 0u64;
    for chunk in encoded.chunks(batch.max(1)) {
        let tx = db.begin_write()?;
        {
            let mut table = tx.open_table(TABLE)?;
            for bytes in chunk {
                position += 1;
                table.insert(position, bytes.as_slice())?;
            }
        }
        tx.commit()?;
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    Ok(encoded.len() as f64 / t.elapsed().as_secs_f64())
}

/// The raw ceiling of JetStream: async-nats publishing the same encoded bytes, one message
/// per event with `Nats-Msg-Id`, acks pipelined in a window of 2,048.
async fn raw_jetstream_publish(url: &str, encoded: &[Vec<u8>]) -> anyhow::Result<f64> {
    let client = async_nats::connect(url).await?;
    let js = async_nats::jetstream::new(client);
    let name = format!("RAW_BENCH_{}", std::process::id());
    js.get_or_create_stream(async_nats::jetstream::stream::Config {
        name: name.clone(),
        subjects: vec![format!("raw.{name}.>")],
        ..Default::default()
    })
    .await?;
    let bar = progress(encoded.len() as u64, "raw JetStream publish");
    let t = Instant::now();
    let mut window = std::collections::VecDeque::with_capacity(2048);
    for (i, bytes) in encoded.iter().enumerate() {
        let message = async_nats::jetstream::message::PublishMessage::build()
            .payload(bytes.clone().into())
            .message_id(format!("raw-{i}"));
        window.push_back(js.send_publish(format!("raw.{name}.e"), message).await?);
        if window.len() >= 2048 {
            if let Some(ack) = window.pop_front() {
                ack.await?;
            }
            bar.set_position(i as u64);
        }
    }
    for ack in window {
        ack.await?;
    }
    bar.finish_and_clear();
    let rate = encoded.len() as f64 / t.elapsed().as_secs_f64();
    let _ = js.delete_stream(&name).await;
    Ok(rate)
}

/// The raw ceiling of a rebuild: read the log, decode, fold a count and a score sum per
/// operator into a HashMap.
async fn raw_fold(log: Arc<dyn EventLog>, head: u64) -> anyhow::Result<(f64, usize)> {
    let t = Instant::now();
    let mut folded: HashMap<String, (u64, f64)> = HashMap::new();
    let mut after = 0;
    let mut events = 0usize;
    while after < head {
        let batch = log.read(after, 1000).await?;
        let Some(last) = batch.last() else { break };
        after = last.position;
        for stored in &batch {
            if let Some(event) = stored.envelope() {
                let entry = folded
                    .entry(event.operator_id.clone().unwrap_or_default())
                    .or_default();
                entry.0 += 1;
                if let Payload::SessionCompleted(s) = &event.payload {
                    entry.1 += s.score;
                }
            }
            events += 1;
        }
    }
    anyhow::ensure!(!folded.is_empty() || events == 0, "nothing folded");
    Ok((events as f64 / t.elapsed().as_secs_f64(), events))
}

/// What the rebuild's output alone costs to write.
struct StorageFloor {
    keys: u64,
    bytes: u64,
    seconds: f64,
}

/// Writes every entry the rebuild produced (same keys, same bytes) into a fresh sled
/// database, in key order, one write per key as the folds write: no decode, no fold, no
/// digest, and the cheapest insertion order. A rebuild cannot be faster than this, whatever the folds
/// cost; it says how much of the gap to the `HashMap` ceiling is the read models' size.
fn storage_floor(rebuilt: &Store) -> anyhow::Result<StorageFloor> {
    // A store opened as the engine opens one: the same sled settings, no second copy of them.
    let dir = tempfile::tempdir()?;
    let floor = Store::open(dir.path().join("rm"))?;
    let (mut keys, mut bytes, mut seconds) = (0u64, 0u64, 0.0);
    for projector in ats_projections::all_projectors() {
        let name = projector.name();
        let source = rebuilt.tree(name, rebuilt.active_generation(name)?)?;
        let target = floor.tree(name, 1)?;
        // Read a chunk, then time its write: only the writes are counted, and memory holds
        // one chunk (a 10M-event store is larger than the machine's memory).
        let mut entries = source.iter();
        loop {
            let chunk: Vec<(sled::IVec, sled::IVec)> =
                entries.by_ref().take(8192).collect::<Result<_, _>>()?;
            if chunk.is_empty() {
                break;
            }
            // One write per key, as the folds write (a sled batch would turn on its
            // process-wide lock for the rest of this process, the rebuild's included).
            let t = Instant::now();
            for (key, value) in chunk {
                keys += 1;
                bytes += (key.len() + value.len()) as u64;
                target.insert(key, value)?;
            }
            seconds += t.elapsed().as_secs_f64();
        }
        let t = Instant::now();
        target.flush()?;
        seconds += t.elapsed().as_secs_f64();
    }
    Ok(StorageFloor {
        keys,
        bytes,
        seconds: seconds.max(f64::MIN_POSITIVE),
    })
}

/// p99 of a sled point read of one profile in the engine's store: the floor under every query.
fn sled_point_read_p99(
    read_models: &std::path::Path,
    operator: &str,
    n: usize,
) -> anyhow::Result<f64> {
    let store = Store::open(read_models)?;
    let name = ats_projections::profiles::NAME;
    let tree = store.tree(name, store.active_generation(name)?)?;
    let key = [b"p/".as_slice(), operator.as_bytes()].concat();
    let mut samples: Vec<f64> = (0..n.max(1))
        .map(|_| {
            let t = Instant::now();
            let _ = tree.get(&key);
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    Ok(samples[((samples.len() - 1) as f64 * 0.99).round() as usize])
}

/// Size in MiB of the files under `dir` (0 if it cannot be read).
fn dir_mib(dir: &std::path::Path) -> f64 {
    fn bytes(path: &std::path::Path) -> u64 {
        match std::fs::symlink_metadata(path) {
            Ok(meta) if meta.is_dir() => std::fs::read_dir(path)
                .map(|entries| entries.flatten().map(|e| bytes(&e.path())).sum())
                .unwrap_or(0),
            Ok(meta) => meta.len(),
            Err(_) => 0,
        }
    }
    (bytes(dir) as f64 / (1024.0 * 1024.0) * 10.0).round() / 10.0
}

/// Peak resident set size in MiB (Linux `VmHWM`) from a `/proc/<pid>/status` file.
fn peak_rss_mib_of(status: &str) -> f64 {
    std::fs::read_to_string(status)
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| (kb / 1024.0 * 10.0).round() / 10.0)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a test fails by panicking
mod tests {
    use super::*;

    /// A run is refused when its estimate exceeds the free space, and the message says how
    /// much it needs, where, and what to do; one that fits runs.
    #[test]
    fn a_run_the_disk_cannot_hold_is_refused_naming_need_and_room() {
        let dir = std::path::Path::new("/some/tmp");
        assert!(enough_disk(dir, 1_000_000, 6_000_000_000).is_ok());
        let err = enough_disk(dir, 10_000_000, 56_000_000_000).unwrap_err();
        let message = err.to_string();
        for part in [
            "--events 10000000",
            "60.0 GB",
            "/some/tmp",
            "56.0 GB",
            "TMPDIR",
        ] {
            assert!(message.contains(part), "{part:?} in {message}");
        }
        assert!(enough_disk(dir, usize::MAX, u64::MAX - 1).is_err());
    }

    /// The latency queries' windows end at `HISTORY_END`: the history must fill the 90 days
    /// before it, every day of them, whatever its length.
    #[test]
    fn the_synthetic_history_fills_its_90_days() {
        let start = Timestamp::parse_rfc3339(HISTORY_START).unwrap();
        let end = Timestamp::parse_rfc3339(HISTORY_END).unwrap();
        assert_eq!(start.plus_seconds(HISTORY_DAYS * 86_400), end);
        for n in [1_000, 9_001] {
            let events = synthetic(n, "t");
            assert_eq!(events.len(), n);
            assert!(events
                .iter()
                .all(|e| start <= e.occurred_at && e.occurred_at < end));
            let days: std::collections::BTreeSet<String> = events
                .iter()
                .map(|e| e.occurred_at.to_rfc3339()[..10].to_owned())
                .collect();
            assert_eq!(days.len(), HISTORY_DAYS as usize, "{n} events");
        }
    }

    /// The paced ingest's batches: the history's mix among its operators, on the day after
    /// the history, before the queries' `as_of`, in time order from one batch to the next;
    /// ids unique across batches.
    #[test]
    fn paced_batches_are_the_history_mix_on_the_queries_day_in_time_order() {
        let day = Timestamp::parse_rfc3339(HISTORY_END).unwrap();
        let end = Timestamp::parse_rfc3339(QUERIES_AS_OF).unwrap();
        assert_eq!(
            day.to_rfc3339()[..10],
            end.to_rfc3339()[..10],
            "the same day"
        );
        let operators = operators_of(1_000_000);
        let (first, second) = (
            paced_batch(0, operators),
            paced_batch(PACED_BATCH, operators),
        );
        let both: Vec<&Envelope> = first.iter().chain(&second).collect();
        assert!(both
            .iter()
            .all(|e| day <= e.occurred_at && e.occurred_at <= end));
        assert!(both.windows(2).all(|w| w[0].occurred_at < w[1].occurred_at));
        let sessions = first
            .iter()
            .filter(|e| matches!(e.payload, Payload::SessionCompleted(_)))
            .count();
        let usage = first
            .iter()
            .filter(|e| matches!(e.payload, Payload::LlmUsage(_)))
            .count();
        assert_eq!((sessions, usage), (20, 80));
        assert!(first.iter().zip(&second).all(|(a, b)| a.id != b.id));
        // The second batch goes on with the history's operators, not back to the first.
        let operator = |e: &Envelope| match &e.payload {
            Payload::SessionCompleted(s) => s.operator_id.clone(),
            Payload::LlmUsage(u) => u.profile_id.clone(),
            _ => String::new(),
        };
        assert_eq!(operator(&second[0]), format!("op_{:05}", PACED_BATCH));
    }
}
