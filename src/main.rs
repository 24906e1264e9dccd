//! `ats-mafia`: the analytics engine's binary — glue only: arguments, configuration, wiring.

mod cmd;
mod config;
mod demo;
mod engine;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// sled and the folds allocate and free small blocks per key; mimalloc's thread-local free
/// lists cost a fraction of glibc malloc's (a quarter of a replay's CPU time went to malloc).
/// Built with `no_thp`: mimalloc asks for transparent huge pages on its arenas, and a 2 MiB
/// page is resident as soon as one byte of it is touched (peak RSS 380–416 → ~300 MiB at
/// 100k events in the bench, no slower).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Event-sourced analytics for the ATS MAFIA training platform.
#[derive(Parser)]
#[command(name = "ats-mafia", version, about)]
struct Cli {
    /// YAML configuration file (see README); flags and ATS_* variables override it.
    #[arg(long, global = true, env = "ATS_CONFIG")]
    config: Option<PathBuf>,
    /// Log format of the process's own logs.
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "text",
        env = "ATS_LOG_FORMAT"
    )]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the engine: log, projectors, query API and dashboard.
    Serve(cmd::serve::Args),
    /// Append events from an NDJSON file of CloudEvents (one per line).
    Import(cmd::import::Args),
    /// Rebuild every read model from position 0 and print each projector's digest.
    Replay(cmd::replay::Args),
    /// Measure the engine against the raw ceilings of the same work (JSON lines on stdout).
    Bench(cmd::bench::Args),
    /// API keys: create (shown once), list, revoke.
    #[command(subcommand)]
    Keys(cmd::keys::Command),
    /// Query the analytics (seed commands).
    #[command(subcommand)]
    Analytics(cmd::analytics::Command),
}

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sled=warn,async_nats=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        let config = config::Config::load(cli.config.as_deref())?;
        match cli.command {
            Command::Serve(args) => cmd::serve::run(args, config).await,
            Command::Import(args) => cmd::import::run(args, config).await,
            Command::Replay(args) => cmd::replay::run(args, config).await,
            Command::Keys(command) => cmd::keys::run(command, config).await,
            Command::Analytics(command) => cmd::analytics::run(command, config).await,
            Command::Bench(args) => cmd::bench::run(args, config).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
