//! Wiring shared by the commands: where the data lives and which log to open.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use ats_ingest::embedded::EmbeddedLog;
use ats_ingest::id_index::IdIndex;
use ats_ingest::jetstream::{JetStreamConfig, JetStreamLog};
use ats_ingest::{EventLog, LogError};
use ats_projections::store::Store;

use crate::config::{Backend, Config};

/// Where the log and the read models are (flags common to every local command).
#[derive(clap::Args, Debug, Clone)]
pub struct LogArgs {
    /// Data directory: `log.redb` (embedded log) and `read-models/` (sled).
    #[arg(long, env = "ATS_DATA_DIR")]
    pub data: Option<PathBuf>,
    /// Use NATS JetStream at this URL instead of the embedded log.
    #[arg(long, env = "ATS_NATS_URL")]
    pub nats: Option<String>,
    /// JetStream stream name.
    #[arg(long, env = "ATS_NATS_STREAM")]
    pub stream: Option<String>,
    /// JetStream stream replicas (3 in a cluster).
    #[arg(long, env = "ATS_NATS_REPLICAS")]
    pub replicas: Option<usize>,
    /// The read models' sled cache in MiB (`read_models.cache_mib`, default 16): more makes a
    /// long history replay faster and costs about twice as much resident memory.
    #[arg(long, env = "ATS_READ_MODEL_CACHE_MIB", value_parser = clap::value_parser!(u64).range(1..))]
    pub read_model_cache_mib: Option<u64>,
}

/// The resolved choice.
pub struct Paths {
    /// Data directory.
    pub data: PathBuf,
    /// JetStream settings, when the log is JetStream.
    pub jetstream: Option<JetStreamConfig>,
    /// The read models' sled cache, MiB.
    pub cache_mib: u64,
}

impl LogArgs {
    /// Flags over environment over file over defaults.
    pub fn resolve(&self, config: &Config) -> Paths {
        let data = self
            .data
            .clone()
            .unwrap_or_else(|| config.analytics.storage_path.clone());
        let url = self.nats.clone().or_else(|| {
            (config.log.backend == Backend::Nats).then(|| {
                config
                    .log
                    .url
                    .clone()
                    .unwrap_or_else(|| "nats://127.0.0.1:4222".into())
            })
        });
        let jetstream = url.map(|url| JetStreamConfig {
            url,
            stream: self
                .stream
                .clone()
                .unwrap_or_else(|| config.log.stream.clone()),
            replicas: self.replicas.unwrap_or(config.log.replicas),
            credentials: config.log.credentials.clone(),
            tls_ca: config.log.tls_ca.clone(),
            tls_cert: config.log.tls_cert.clone(),
            tls_key: config.log.tls_key.clone(),
            ..JetStreamConfig::default()
        });
        Paths {
            data,
            jetstream,
            cache_mib: self
                .read_model_cache_mib
                .unwrap_or(config.read_models.cache_mib),
        }
    }
}

impl Paths {
    /// The read-model directory (per stream when the log is JetStream, so one data dir can
    /// hold read models of several logs without mixing them).
    pub fn read_models(&self) -> PathBuf {
        match &self.jetstream {
            None => self.data.join("read-models"),
            Some(js) => self.data.join(format!("read-models-{}", js.stream)),
        }
    }

    /// Where scratch stores are written (the what-if replays), each removed when its answer
    /// is ready: on disk, beside the read models.
    pub fn scratch(&self) -> PathBuf {
        self.data.join("scratch")
    }

    /// Opens the log. JetStream is retried with backoff until `patience` runs out.
    pub async fn open_log(&self, patience: Duration) -> anyhow::Result<Arc<dyn EventLog>> {
        self.open_log_reporting(patience, |_| {}).await
    }

    /// [`Paths::open_log`], telling `waiting` why each failed JetStream attempt is retried
    /// (`serve` shows it on `/readyz` while it connects). A configuration error (an
    /// unreadable credentials or certificate file) is not retried.
    pub async fn open_log_reporting(
        &self,
        patience: Duration,
        waiting: impl Fn(&str),
    ) -> anyhow::Result<Arc<dyn EventLog>> {
        match &self.jetstream {
            None => {
                let path = self.data.join("log.redb");
                let log = EmbeddedLog::open(&path).map_err(|err| in_use(err, &path))?;
                Ok(Arc::new(log))
            }
            Some(config) => {
                let deadline = tokio::time::Instant::now() + patience;
                let mut backoff = Duration::from_millis(200);
                let path = self
                    .data
                    .join(format!("jetstream-ids-{}.redb", config.stream));
                let index = Arc::new(IdIndex::open(&path).map_err(|err| in_use(err, &path))?);
                loop {
                    match JetStreamLog::connect(config.clone(), index.clone()).await {
                        Ok(log) => return Ok(Arc::new(log)),
                        Err(err)
                            if tokio::time::Instant::now() < deadline
                                && !matches!(err, LogError::Config(_)) =>
                        {
                            tracing::warn!(message = "NATS not reachable yet; retrying.", url = %config.redacted_url(), %err, retry_in_ms = backoff.as_millis() as u64);
                            waiting(&format!(
                                "connecting to NATS at {}: {err}; retrying in {} ms",
                                config.redacted_url(),
                                backoff.as_millis()
                            ));
                            tokio::time::sleep(backoff).await;
                            backoff = (backoff * 2).min(Duration::from_secs(5));
                        }
                        Err(err) => {
                            return Err(err).with_context(|| {
                                format!(
                                    "cannot open the JetStream log at {}",
                                    config.redacted_url()
                                )
                            })
                        }
                    }
                }
            }
        }
    }

    /// Opens the read-model store.
    pub fn open_store(&self) -> anyhow::Result<Store> {
        let path = self.read_models();
        Store::open_with_cache(&path, self.cache_mib).map_err(|err| {
            let text = err.to_string();
            if text.contains("lock") || text.contains("WouldBlock") || text.contains("temporarily unavailable") {
                anyhow::anyhow!("the data directory {} is in use by a running server; query it with --url http://<bind address> instead", self.data.display())
            } else {
                anyhow::Error::new(err)
            }
        })
    }
}

fn in_use(err: LogError, path: &std::path::Path) -> anyhow::Error {
    let text = err.to_string();
    if text.contains("already open")
        || text.contains("lock")
        || text.contains("temporarily unavailable")
    {
        anyhow::anyhow!(
            "the log {} is in use by a running server; query it with --url http://<bind address> instead",
            path.display()
        )
    } else {
        anyhow::Error::new(err).context(format!("cannot open the log {}", path.display()))
    }
}
