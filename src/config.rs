//! Configuration: a YAML file with the seed's `analytics:` keys plus `log:`, `read_models:`
//! and `api:`.
//! Unknown keys are an error naming the key. Flags and `ATS_*` variables override the file.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Deserialize;

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The seed's analytics block.
    pub analytics: Analytics,
    /// Where the event log lives.
    pub log: Log,
    /// The read-model store.
    pub read_models: ReadModels,
    /// The HTTP API.
    pub api: Api,
}

/// `analytics:` (DOMAIN.md §B13.3).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Analytics {
    /// Whether analytics run at all.
    pub enabled: bool,
    /// Data directory (log and read models).
    pub storage_path: PathBuf,
    /// The seed's cache TTL; read models are always fresh, so it only bounds client caching.
    pub cache_ttl_seconds: u64,
    /// Seed key, accepted.
    pub auto_refresh: bool,
    /// Metric retention.
    pub retention_days: Option<u32>,
    /// Seed sub-block.
    pub performance_metrics: PerformanceMetrics,
    /// Reports.
    pub reporting: Reporting,
    /// Alerts.
    pub alerts: Alerts,
    /// The seed's database block (unused: the log is the database).
    pub database: Database,
}

impl Default for Analytics {
    fn default() -> Self {
        Self {
            enabled: true,
            storage_path: PathBuf::from("data"),
            cache_ttl_seconds: 300,
            auto_refresh: true,
            retention_days: None,
            performance_metrics: PerformanceMetrics::default(),
            reporting: Reporting::default(),
            alerts: Alerts::default(),
            database: Database::default(),
        }
    }
}

/// `analytics.performance_metrics`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PerformanceMetrics {
    /// Seed key.
    pub track_all_sessions: bool,
    /// Seed key.
    pub retention_days: u32,
}

impl Default for PerformanceMetrics {
    fn default() -> Self {
        Self {
            track_all_sessions: true,
            retention_days: 365,
        }
    }
}

/// `analytics.reporting`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Reporting {
    /// Scheduled reports: `daily_summary`, `weekly_cost` (none by default; both with `--demo`).
    pub auto_generate: Vec<String>,
    /// Formats reports may be downloaded in (`json`, `csv`, `html`, `markdown`).
    pub formats: Vec<String>,
}

impl Default for Reporting {
    fn default() -> Self {
        Self {
            // Opt-in (the seed only proposed it): a scheduled report is an event in the log.
            auto_generate: Vec::new(),
            // All four: the seed's example list (json, html, markdown) would hide CSV, which
            // reports exist to export.
            formats: ["json", "csv", "html", "markdown"]
                .map(String::from)
                .to_vec(),
        }
    }
}

/// `analytics.alerts`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Alerts {
    /// Budget alert thresholds (fractions of the budget).
    pub budget_thresholds: Vec<f64>,
    /// Performance alert threshold (recent average score).
    pub performance_threshold: f64,
}

impl Default for Alerts {
    fn default() -> Self {
        Self {
            budget_thresholds: vec![0.75, 0.9, 1.0],
            performance_threshold: 0.6,
        }
    }
}

/// `analytics.database`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Database {
    /// Seed key (unused).
    pub url: String,
}

impl Default for Database {
    fn default() -> Self {
        Self {
            url: "sqlite:///ats_mafia_analytics.db".into(),
        }
    }
}

/// `log:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Log {
    /// `embedded` (default) or `nats`.
    pub backend: Backend,
    /// NATS URL(s), for `nats`.
    pub url: Option<String>,
    /// JetStream stream name.
    pub stream: String,
    /// Stream replicas (3 in a cluster).
    pub replicas: usize,
    /// NATS credentials file.
    pub credentials: Option<PathBuf>,
    /// PEM CA certificate of the NATS servers (enables and requires TLS).
    pub tls_ca: Option<PathBuf>,
    /// PEM client certificate for mutual TLS (with `tls_key`).
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of `tls_cert`.
    pub tls_key: Option<PathBuf>,
}

impl Default for Log {
    fn default() -> Self {
        Self {
            backend: Backend::Embedded,
            url: None,
            stream: "ATS_EVENTS".into(),
            replicas: 1,
            credentials: None,
            tls_ca: None,
            tls_cert: None,
            tls_key: None,
        }
    }
}

/// Which log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Backend {
    /// The embedded redb log.
    Embedded,
    /// NATS JetStream.
    Nats,
}

/// `read_models:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReadModels {
    /// sled's cache in MiB (at least 1). The default keeps a 1M-event server under 256 MiB;
    /// a larger history replays much faster with more (BENCHMARKS.md, what limits memory).
    pub cache_mib: u64,
}

impl Default for ReadModels {
    fn default() -> Self {
        Self {
            cache_mib: ats_projections::store::DEFAULT_CACHE_MIB,
        }
    }
}

/// `api:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Api {
    /// Bind address.
    pub bind: String,
    /// Requests per minute of a stored API key issued without its own limit.
    pub rate_limit_per_minute: u32,
}

impl Default for Api {
    fn default() -> Self {
        Self {
            bind: "127.0.0.1:8080".into(),
            rate_limit_per_minute: ats_query_api::auth::DEFAULT_RATE_LIMIT_PER_MINUTE,
        }
    }
}

impl Config {
    /// Reads the file, or the defaults when there is none.
    pub fn load(path: Option<&Path>) -> anyhow::Result<Self> {
        let Some(path) = path else {
            return Ok(Self::default());
        };
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("invalid config file {}", path.display()))
    }

    /// Parses YAML text.
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        if text.trim().is_empty() {
            return Ok(Self::default());
        }
        let config: Self = serde_yaml_ng::from_str(text)?;
        anyhow::ensure!(
            config.read_models.cache_mib >= 1,
            "read_models.cache_mib: must be at least 1 (MiB), not 0"
        );
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_keys_parse_and_unknown_keys_are_named() {
        let config = Config::parse(
            "analytics:\n  enabled: true\n  storage_path: /tmp/x\n  alerts:\n    budget_thresholds: [0.5, 1.0]\nlog:\n  backend: nats\n  url: nats://h:4222\n",
        )
        .unwrap();
        assert_eq!(config.analytics.alerts.budget_thresholds, vec![0.5, 1.0]);
        assert_eq!(config.analytics.alerts.performance_threshold, 0.6);
        assert_eq!(config.log.backend, Backend::Nats);
        let tls = Config::parse(
            "log:\n  backend: nats\n  credentials: /c.creds\n  tls_ca: /ca.pem\n  tls_cert: /c.pem\n  tls_key: /k.pem\n",
        )
        .unwrap();
        assert_eq!(tls.log.tls_ca, Some(PathBuf::from("/ca.pem")));
        assert_eq!(tls.log.tls_key, Some(PathBuf::from("/k.pem")));
        let err = Config::parse("analytics:\n  cache_ttl: 3\n").unwrap_err();
        assert!(format!("{err:#}").contains("cache_ttl"), "{err:#}");
        assert_eq!(config.read_models.cache_mib, 16);
        let cache = Config::parse("read_models:\n  cache_mib: 128\n").unwrap();
        assert_eq!(cache.read_models.cache_mib, 128);
        let err = Config::parse("read_models:\n  cache_mib: 0\n").unwrap_err();
        assert!(
            format!("{err:#}").contains("read_models.cache_mib"),
            "{err:#}"
        );
    }
}
