//! The configuration file: one serde tree with defaults in code, loaded from TOML, then
//! validated once into values the rest of the daemon can trust.
//!
//! Unknown keys are an error naming the key and its line (`deny_unknown_fields`). Relative paths
//! are resolved against the config file's folder, so a config and its folders can move together.
//! The API key is not in this file: it is read from the environment variable named by
//! `api.api_key_env`, from `api.key_file`, or from a systemd credential (see [`key`]). The one secret a config may hold, `http.token`, is redacted from `Debug`
//! and from [`Config::to_toml`]. Nor is the PostgreSQL catalogue's password: `[catalog] url` may
//! not hold one, and `password_file`, `PGPASSWORD` or a pgpass file provide it when connecting.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::money::{Budget, MoneyError, Prices, Rmb};
use crate::secret::Secret;
use crate::spec::models;

pub mod key;
pub mod pg;
mod storage;

use pg::{ConnectError, PgTarget};
pub use storage::{DEFAULT_MAX_BYTES_IN_FLIGHT, MAX_PART_SIZE, MIN_PART_SIZE, S3Settings, StorageConfig};

/// The whole configuration.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The platform API.
    pub api: ApiConfig,
    /// The inbox.
    pub watch: WatchConfig,
    /// Where results are archived.
    pub storage: StorageConfig,
    /// Which result URLs are fetched, and how much and how slowly.
    pub archive: ArchiveConfig,
    /// The catalogue: a SQLite file, or a PostgreSQL database.
    pub catalog: CatalogConfig,
    /// Retry and download behaviour.
    pub jobs: JobsConfig,
    /// Scheduled re-reading of stored assets.
    pub verify: VerifyConfig,
    /// The media probe: is each video what the model promised?
    pub probe: ProbeConfig,
    /// The HTTP server: health, readiness and metrics endpoints.
    pub http: HttpConfig,
    /// Logging.
    pub log: LogConfig,
    /// Request fields applied to specs that do not set them (e.g. `model`, `style`).
    pub defaults: Map<String, Value>,
    /// Price of one submission per model in RMB, overriding the list prices.
    pub prices: BTreeMap<String, Rmb>,
    /// Spending limits.
    pub budget: BudgetConfig,
    /// Warnings about paid results close to expiring unarchived.
    pub alerts: AlertsConfig,
    /// Where events (archived, failed, expiry warnings, ...) are sent.
    pub notify: NotifyConfig,
}

/// `[alerts]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlertsConfig {
    /// Warn while a paid, unarchived result expires within this span.
    #[serde(with = "humantime_serde")]
    pub expiry_warning: Duration,
    /// How often the expiry check runs (and logs its ERROR line per result).
    #[serde(with = "humantime_serde")]
    pub check_interval: Duration,
}

impl Default for AlertsConfig {
    fn default() -> AlertsConfig {
        AlertsConfig { expiry_warning: Duration::from_secs(6 * 3600), check_interval: Duration::from_secs(60) }
    }
}

/// `[notify]`: event delivery to a webhook and/or a program, from the catalogue's outbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NotifyConfig {
    /// POST each event as JSON to this http(s) URL; off when unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook: Option<String>,
    /// Run this program (no shell: `["prog", "arg", ...]`) with each event's JSON on stdin;
    /// exit status 0 is success. Off when empty.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    /// How long one delivery may take (the POST's answer, or the program's run).
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// First retry delay after a failed delivery; doubles per attempt, with jitter.
    #[serde(with = "humantime_serde")]
    pub retry_base: Duration,
    /// Longest retry delay.
    #[serde(with = "humantime_serde")]
    pub retry_max: Duration,
    /// Deliveries tried per event before it is given up (marked dead, logged once).
    pub max_attempts: u32,
}

impl Default for NotifyConfig {
    fn default() -> NotifyConfig {
        NotifyConfig {
            webhook: None,
            command: Vec::new(),
            timeout: Duration::from_secs(10),
            retry_base: Duration::from_secs(5),
            retry_max: Duration::from_secs(1800),
            max_attempts: 12,
        }
    }
}

impl NotifyConfig {
    /// The sinks set: `webhook`, `command`.
    pub fn sinks(&self) -> Vec<&'static str> {
        let mut sinks = Vec::new();
        if self.webhook.is_some() {
            sinks.push("webhook");
        }
        if !self.command.is_empty() {
            sinks.push("command");
        }
        sinks
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key: &str, message: String| ConfigError::Invalid { key: format!("notify.{key}"), message };
        if let Some(hook) = &self.webhook {
            let url = url::Url::parse(hook).map_err(|e| bad("webhook", format!("is not a URL: {e}")))?;
            if !matches!(url.scheme(), "http" | "https") {
                return Err(bad("webhook", "must be an http(s) URL".to_owned()));
            }
            if !url.username().is_empty() || url.password().is_some() {
                return Err(bad(
                    "webhook",
                    "must not hold credentials (user:pass@): events and logs would carry them".to_owned(),
                ));
            }
        }
        if self.command.first().is_some_and(|p| p.trim().is_empty()) {
            return Err(bad("command", "names no program: its first item must be the program to run".to_owned()));
        }
        if self.timeout.is_zero() {
            return Err(bad("timeout", "must be more than 0s".to_owned()));
        }
        if self.retry_base.is_zero() || self.retry_max < self.retry_base {
            return Err(bad("retry_base", "must be more than 0s and at most retry_max".to_owned()));
        }
        if self.max_attempts == 0 {
            return Err(bad("max_attempts", "must be at least 1".to_owned()));
        }
        Ok(())
    }
}

/// `[budget]`: limits in RMB; charged and possibly-charged submissions count.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BudgetConfig {
    /// Per day (in `timezone`); none if absent.
    pub daily: Option<Rmb>,
    /// Per calendar month; none if absent.
    pub monthly: Option<Rmb>,
    /// The zone whose midnight starts a budget day (the platform bills in Asia/Shanghai).
    pub timezone: String,
    /// Per project per month: `name = amount`.
    pub projects: BTreeMap<String, Rmb>,
}

impl Default for BudgetConfig {
    fn default() -> BudgetConfig {
        BudgetConfig {
            daily: None,
            monthly: None,
            timezone: crate::money::DEFAULT_TIMEZONE.to_owned(),
            projects: BTreeMap::new(),
        }
    }
}

/// `[verify]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VerifyConfig {
    /// Re-read and re-hash stored assets this often while the daemon runs; off when unset.
    #[serde(with = "humantime_serde::option", skip_serializing_if = "Option::is_none")]
    pub every: Option<Duration>,
    /// Percentage of the assets each scheduled run reads, least recently checked first.
    pub sample: f64,
}

impl Default for VerifyConfig {
    fn default() -> VerifyConfig {
        VerifyConfig { every: None, sample: 100.0 }
    }
}

/// `[probe]`
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProbeConfig {
    /// Probe each video before its job is archived.
    pub enabled: bool,
    /// Allowed difference between the video's duration and the promised one, in seconds.
    pub duration_tolerance: f64,
    /// Allowed difference between the video's frame rate and the promised one, in fps.
    pub fps_tolerance: f64,
}

impl Default for ProbeConfig {
    fn default() -> ProbeConfig {
        ProbeConfig { enabled: true, duration_tolerance: 0.25, fps_tolerance: 0.5 }
    }
}

/// `[http]`. `Debug` shows the token as `[redacted]`.
#[derive(Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Address of the HTTP server (`/healthz`, `/readyz`, `/metrics`); empty turns it off.
    pub listen: String,
    /// A bearer token every request must carry (`Authorization: Bearer ...`); none if unset.
    /// It is a secret: `vidkeep config check` prints it redacted and no log shows it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// Host names (without port) the UI answers to besides loopback names and IP addresses; any
    /// other `Host` is refused, so a DNS-rebinding page cannot read the catalogue.
    pub hosts: Vec<String>,
    /// Mark the token cookie `Secure` (set it when a TLS proxy serves the UI).
    pub cookie_secure: bool,
    /// The UI's address as people reach it (e.g. `https://vidkeep.example.net`), for links in
    /// notifications; none if unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_url: Option<String>,
    /// A client must send a request's headers within this long (also the longest a kept-alive
    /// connection may wait for its next request), or its connection is closed.
    #[serde(with = "humantime_serde")]
    pub header_timeout: Duration,
    /// A connection on which nothing moves either way for this long is closed.
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// Most connections served at once; more wait in the kernel's queue without using a file
    /// descriptor. Kept well below the open-file limit, so the engine always has descriptors.
    pub max_connections: usize,
}

impl Default for HttpConfig {
    fn default() -> HttpConfig {
        HttpConfig {
            listen: "127.0.0.1:8780".to_owned(),
            token: None,
            hosts: Vec::new(),
            cookie_secure: false,
            public_url: None,
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: 256,
        }
    }
}

impl std::fmt::Debug for HttpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpConfig")
            .field("listen", &self.listen)
            .field("token", &self.token.as_ref().map(|_| "[redacted]"))
            .field("hosts", &self.hosts)
            .field("cookie_secure", &self.cookie_secure)
            .field("public_url", &self.public_url)
            .field("header_timeout", &self.header_timeout)
            .field("idle_timeout", &self.idle_timeout)
            .field("max_connections", &self.max_connections)
            .finish()
    }
}

impl HttpConfig {
    /// The address to listen on, or `None` when the server is turned off.
    pub fn listen_addr(&self) -> Option<std::net::SocketAddr> {
        self.listen.trim().parse().ok()
    }

    /// The bearer token, if one is set.
    pub fn token(&self) -> Option<Secret> {
        self.token.as_deref().map(str::trim).filter(|t| !t.is_empty()).map(Secret::new)
    }
}

/// `[log]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// The log filter: a level (`info`) or `tracing` directives (`info,vidkeep=debug`).
    /// `VIDKEEP_LOG` or `RUST_LOG` in the environment override it.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> LogConfig {
        LogConfig { level: "info".to_owned() }
    }
}

/// `[api]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiConfig {
    /// Base URL of the platform API, without a trailing slash.
    pub base_url: String,
    /// Name of the environment variable holding the API key.
    pub api_key_env: String,
    /// A file holding only the API key (mode 0600 or 0400), instead of the variable; relative
    /// to the config's folder.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_file: Option<PathBuf>,
    /// Most tasks submitted and not yet finished, across all models.
    pub max_in_flight: usize,
    /// Per-model limits on tasks in flight (e.g. `viduq1-text = 5`).
    pub max_in_flight_per_model: BTreeMap<String, usize>,
    /// How often a task in flight is polled.
    #[serde(with = "humantime_serde")]
    pub poll_interval: Duration,
    /// Timeout of one API call (submit or poll), including connecting.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
}

impl Default for ApiConfig {
    fn default() -> ApiConfig {
        ApiConfig {
            base_url: "https://open.bigmodel.cn/api/paas/v4".to_owned(),
            api_key_env: "ZHIPUAI_API_KEY".to_owned(),
            key_file: None,
            max_in_flight: 30,
            max_in_flight_per_model: BTreeMap::new(),
            poll_interval: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
        }
    }
}

/// `[watch]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WatchConfig {
    /// The inbox folder studios drop specs into.
    pub dir: PathBuf,
    /// A file not renamed into the inbox is taken once it has not changed for this long.
    #[serde(with = "humantime_serde")]
    pub quiet_period: Duration,
    /// Full rescan interval, in case file-system events were lost.
    #[serde(with = "humantime_serde")]
    pub rescan_interval: Duration,
}

impl Default for WatchConfig {
    fn default() -> WatchConfig {
        WatchConfig {
            dir: PathBuf::from("/var/lib/vidkeep/inbox"),
            quiet_period: Duration::from_secs(3),
            rescan_interval: Duration::from_secs(30),
        }
    }
}

/// `[archive]`: what result URLs vidkeep fetches. The platform hands out the links, so they are
/// input from the network: a link may point anywhere, be endless or crawl.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ArchiveConfig {
    /// Largest result file fetched, in bytes; a larger one fails its job (`download-too-big`).
    pub max_bytes: u64,
    /// Slowest transfer accepted, in bytes per second, averaged over `stall_timeout`; a slower
    /// download is cut and retried later (`download-slow`). 0 turns the check off.
    pub min_bytes_per_second: u64,
    /// The window over which `min_bytes_per_second` is measured.
    #[serde(with = "humantime_serde")]
    pub stall_timeout: Duration,
    /// Host names (or `.example.com` for a domain and its subdomains) result URLs may name;
    /// empty allows any name.
    pub allowed_hosts: Vec<String>,
    /// Networks (CIDR, e.g. `"10.20.0.0/16"`) that result URLs may resolve into besides public
    /// addresses. Loopback, private, link-local (cloud metadata), shared, multicast and
    /// unspecified addresses are refused unless listed here; every resolved address and every
    /// redirect is checked.
    pub allowed_networks: Vec<String>,
}

impl ArchiveConfig {
    /// `allowed_networks` parsed (entries that do not parse are refused by [`Config::validate`]).
    pub fn networks(&self) -> Vec<ipnet::IpNet> {
        self.allowed_networks.iter().filter_map(|n| parse_network(n)).collect()
    }
}

/// A CIDR network, or a lone address as its own /32 or /128.
fn parse_network(text: &str) -> Option<ipnet::IpNet> {
    let text = text.trim();
    text.parse().ok().or_else(|| text.parse::<std::net::IpAddr>().ok().map(ipnet::IpNet::from))
}

/// The default `[archive] max_bytes`: 2 GiB.
pub const DEFAULT_MAX_BYTES: u64 = 2 * 1024 * 1024 * 1024;

impl Default for ArchiveConfig {
    fn default() -> ArchiveConfig {
        ArchiveConfig {
            max_bytes: DEFAULT_MAX_BYTES,
            min_bytes_per_second: 16 * 1024,
            stall_timeout: Duration::from_secs(60),
            allowed_hosts: Vec::new(),
            allowed_networks: Vec::new(),
        }
    }
}

/// `[catalog]`: a SQLite file (`path`, the default), or a PostgreSQL database (`url`).
#[derive(Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CatalogConfig {
    /// The SQLite catalogue file; relative to the config's folder. Not used when `url` is set.
    pub path: PathBuf,
    /// A PostgreSQL catalogue instead: `postgres://user@host:port/dbname` (or `postgresql://`),
    /// never with a password (see [`PgTarget`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// A file holding only the PostgreSQL password (mode 0600 or 0400); relative to the
    /// config's folder. Without it: `PGPASSWORD`, then the pgpass file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password_file: Option<PathBuf>,
    /// On a shared (PostgreSQL) catalogue: how long this daemon's claim on its jobs lasts without
    /// a heartbeat (renewed every quarter of it). Once it runs out, another daemon takes over its
    /// submitted and downloading jobs.
    #[serde(with = "humantime_serde")]
    pub lease: Duration,
}

impl Default for CatalogConfig {
    fn default() -> CatalogConfig {
        CatalogConfig {
            path: PathBuf::from("/var/lib/vidkeep/catalog.sqlite"),
            url: None,
            password_file: None,
            lease: Duration::from_secs(60),
        }
    }
}

impl std::fmt::Debug for CatalogConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A validated url holds no password; one that failed validation may, so cut it out.
        f.debug_struct("CatalogConfig")
            .field("path", &self.path)
            .field("url", &self.url.as_deref().map(pg::redact_url))
            .field("password_file", &self.password_file)
            .field("lease", &self.lease)
            .finish()
    }
}

impl CatalogConfig {
    /// The PostgreSQL catalogue when `url` is set (parsed, not connected), `None` for SQLite.
    pub fn postgres(&self) -> Option<Result<PgTarget, ConnectError>> {
        self.url.as_deref().map(|url| PgTarget::parse(url, self.password_file.as_deref()))
    }
}

/// `[jobs]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JobsConfig {
    /// Result downloads running at once.
    pub download_concurrency: usize,
    /// First retry delay after a retryable error; doubles per attempt, with jitter.
    #[serde(with = "humantime_serde")]
    pub retry_base: Duration,
    /// Longest retry delay.
    #[serde(with = "humantime_serde")]
    pub retry_max: Duration,
    /// How long submission pauses for the whole account after a balance (1113) or auth error.
    #[serde(with = "humantime_serde")]
    pub account_pause: Duration,
    /// On stop, how long running downloads and submissions may take to finish.
    #[serde(with = "humantime_serde")]
    pub shutdown_grace: Duration,
    /// What happens to a job whose submission may or may not have reached the platform.
    pub uncertain: UncertainPolicy,
    /// A task the platform still reports unfinished (`PROCESSING`, or a status vidkeep does
    /// not know) this long after it was accepted goes to `uncertain`: paid, outcome unknown,
    /// a person decides. It no longer holds an in-flight slot.
    #[serde(with = "humantime_serde")]
    pub task_deadline: Duration,
}

/// What vidkeep does with an `uncertain` job by itself.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UncertainPolicy {
    /// Wait for a person (`vidkeep resolve`): never pay twice without someone saying so.
    #[default]
    Ask,
    /// Submit once more by itself (a second charge is possible); a job already submitted more
    /// than once waits for a person, so lost answers cannot make it pay again and again.
    Resubmit,
    /// Give the job up as failed.
    Abandon,
}

impl Default for JobsConfig {
    fn default() -> JobsConfig {
        JobsConfig {
            download_concurrency: 4,
            retry_base: Duration::from_secs(2),
            retry_max: Duration::from_secs(300),
            account_pause: Duration::from_secs(600),
            shutdown_grace: Duration::from_secs(30),
            uncertain: UncertainPolicy::Ask,
            task_deadline: Duration::from_secs(24 * 60 * 60),
        }
    }
}

/// Why a config could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config {path}: {source}")]
    Read {
        /// The config path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// TOML syntax, a wrong type or an unknown key (the message names key and line).
    #[error("config {path}: {message}")]
    Parse {
        /// The config path.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// A value is out of range or inconsistent.
    #[error("config: `{key}` {message}")]
    Invalid {
        /// The dotted key.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// The API key's environment variable is not set.
    #[error(
        "the API key is missing: set the environment variable {0}, or point api.key_file at a file holding it \
         (the key itself is never read from the config file)"
    )]
    MissingKey(String),
    /// Both the key variable and `api.key_file` are set.
    #[error("the API key is set twice: both the environment variable {env} and api.key_file ({}) are set; keep one", file.display())]
    KeyConflict {
        /// The variable's name.
        env: String,
        /// The key file.
        file: PathBuf,
    },
    /// The key file cannot be used (never quotes its content).
    #[error("api.key_file {}: {message}", path.display())]
    KeyFile {
        /// The key file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// `[catalog] url` cannot be used (never quotes a password).
    #[error("config: {0}")]
    Catalog(#[from] ConnectError),
}

impl Config {
    /// Reads, parses and validates the config at `path`, resolving relative paths against its folder.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
        // `vidkeep run --config vk.toml` from the config's own folder: resolve against the
        // absolute folder, so the daemon does not depend on its working directory later.
        let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
        let base = absolute.parent().unwrap_or(Path::new("/"));
        Config::from_toml(&text, base).map_err(|e| match e {
            ConfigError::Parse { message, .. } => ConfigError::Parse { path: path.to_owned(), message },
            other => other,
        })
    }

    /// Parses and validates TOML text; relative paths are resolved against `base`.
    pub fn from_toml(text: &str, base: &Path) -> Result<Config, ConfigError> {
        let mut config: Config = toml::from_str(text)
            .map_err(|e| ConfigError::Parse { path: PathBuf::new(), message: clip_lines(e.to_string().trim(), 200) })?;
        looks_like_a_url(&config.storage.url)?;
        if config.catalog.url.is_some() && catalog_path_given(text) {
            return Err(ConfigError::Invalid {
                key: "catalog.url".to_owned(),
                message: "and `catalog.path` are both set: the catalogue is either a PostgreSQL database (url) or \
                          a SQLite file (path); remove one"
                    .to_owned(),
            });
        }
        config.resolve_paths(base);
        config.validate()?;
        Ok(config)
    }

    fn resolve_paths(&mut self, base: &Path) {
        let abs = |p: &Path| if p.is_absolute() { p.to_owned() } else { base.join(p) };
        self.watch.dir = abs(&self.watch.dir);
        self.catalog.path = abs(&self.catalog.path);
        key::resolve(&mut self.api.key_file, base);
        key::resolve(&mut self.catalog.password_file, base);
        if !self.storage.url.contains("://") {
            let dir = abs(Path::new(&self.storage.url));
            // Url::from_file_path percent-encodes spaces and the like; a plain format! would not.
            self.storage.url = url::Url::from_file_path(&dir)
                .map(String::from)
                .unwrap_or_else(|()| format!("file://{}", dir.display()));
        }
    }

    /// Checks every value once, so the daemon never meets a nonsensical one later.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key: &str, message: String| ConfigError::Invalid { key: key.to_owned(), message };
        let url = url::Url::parse(&self.api.base_url).map_err(|e| bad("api.base_url", format!("is not a URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(bad("api.base_url", "must be an http(s) URL".to_owned()));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(bad(
                "api.base_url",
                "must not hold credentials (user:pass@): the API key comes from api_key_env".to_owned(),
            ));
        }
        if self.api.request_timeout.is_zero() {
            return Err(bad(
                "api.request_timeout",
                "must be more than 0s (\"0s\" would fail every request)".to_owned(),
            ));
        }
        if self.api.max_in_flight == 0 {
            return Err(bad("api.max_in_flight", "must be at least 1".to_owned()));
        }
        for (model, limit) in &self.api.max_in_flight_per_model {
            if models::rules(model).is_none() {
                return Err(bad(&format!("api.max_in_flight_per_model.{model}"), unknown_model(model)));
            }
            if *limit == 0 {
                return Err(bad(&format!("api.max_in_flight_per_model.{model}"), "must be at least 1".to_owned()));
            }
        }
        if self.api.poll_interval < Duration::from_millis(50) {
            return Err(bad("api.poll_interval", "must be at least 50ms".to_owned()));
        }
        if self.jobs.download_concurrency == 0 {
            return Err(bad("jobs.download_concurrency", "must be at least 1".to_owned()));
        }
        if !self.http.listen.trim().is_empty() && self.http.listen_addr().is_none() {
            return Err(bad("http.listen", format!("`{}` is not an address like 127.0.0.1:8780", self.http.listen)));
        }
        if self.http.token.as_deref().is_some_and(|t| t.trim().len() < 16) {
            return Err(bad("http.token", "must be at least 16 characters".to_owned()));
        }
        if let Err(e) = tracing_subscriber::EnvFilter::builder().parse(&self.log.level) {
            return Err(bad("log.level", format!("is not a log filter: {e}")));
        }
        self.storage.validate()?;
        self.notify.validate()?;
        if self.alerts.check_interval < Duration::from_secs(1) {
            return Err(bad("alerts.check_interval", "must be at least 1s".to_owned()));
        }
        if let Some(public) = &self.http.public_url {
            let url = url::Url::parse(public).map_err(|e| bad("http.public_url", format!("is not a URL: {e}")))?;
            if !matches!(url.scheme(), "http" | "https") || !url.username().is_empty() || url.password().is_some() {
                return Err(bad("http.public_url", "must be an http(s) URL without credentials".to_owned()));
            }
        }
        if self.jobs.task_deadline < Duration::from_secs(1) {
            return Err(bad("jobs.task_deadline", "must be at least 1s".to_owned()));
        }
        if self.http.header_timeout.is_zero() || self.http.idle_timeout.is_zero() {
            return Err(bad("http.header_timeout", "and http.idle_timeout must be more than 0s".to_owned()));
        }
        if !(1..=65_536).contains(&self.http.max_connections) {
            return Err(bad("http.max_connections", "must be between 1 and 65536".to_owned()));
        }
        if self.archive.max_bytes == 0 {
            return Err(bad("archive.max_bytes", "must be more than 0".to_owned()));
        }
        if self.archive.stall_timeout < Duration::from_secs(1) {
            return Err(bad("archive.stall_timeout", "must be at least 1s".to_owned()));
        }
        if let Some(h) = self.archive.allowed_hosts.iter().find(|h| h.trim().trim_start_matches('.').is_empty()) {
            return Err(bad("archive.allowed_hosts", format!("`{h}` is not a host name")));
        }
        if let Some(n) = self.archive.allowed_networks.iter().find(|n| parse_network(n).is_none()) {
            return Err(bad("archive.allowed_networks", format!("`{n}` is not a network like 10.20.0.0/16")));
        }
        if !(self.probe.duration_tolerance >= 0.0 && self.probe.fps_tolerance >= 0.0) {
            return Err(bad("probe", "duration_tolerance and fps_tolerance must be 0 or more".to_owned()));
        }
        if !(self.verify.sample > 0.0 && self.verify.sample <= 100.0) {
            return Err(bad("verify.sample", "must be a percentage above 0 and at most 100".to_owned()));
        }
        if self.verify.every.is_some_and(|d| d < Duration::from_secs(1)) {
            return Err(bad(
                "verify.every",
                "must be at least 1s (leave it out to turn scheduled checks off)".to_owned(),
            ));
        }
        if !(Duration::from_secs(2)..=Duration::from_secs(3600)).contains(&self.catalog.lease) {
            return Err(bad("catalog.lease", "must be between 2s and 1h".to_owned()));
        }
        if let Some(target) = self.catalog.postgres() {
            target?;
        } else if self.catalog.password_file.is_some() {
            return Err(bad(
                "catalog.password_file",
                "is set but `catalog.url` is not: only a PostgreSQL catalogue has a password".to_owned(),
            ));
        }
        self.prices_and_budget()?;
        self.validate_defaults()
    }

    /// The price table: list prices with `[prices]` on top.
    pub fn price_table(&self) -> Prices {
        self.prices_and_budget().map(|(p, _)| p).unwrap_or_default()
    }

    /// `[budget]` in fen and its time zone.
    pub fn budget_limits(&self) -> Budget {
        self.prices_and_budget().map(|(_, b)| b).unwrap_or_default()
    }

    fn prices_and_budget(&self) -> Result<(Prices, Budget), ConfigError> {
        let bad = |key: String, e: MoneyError| ConfigError::Invalid { key, message: e.to_string() };
        let mut prices = BTreeMap::new();
        for (model, amount) in &self.prices {
            if models::rules(model).is_none() {
                return Err(ConfigError::Invalid { key: format!("prices.{model}"), message: unknown_model(model) });
            }
            prices.insert(model.clone(), amount.fen().map_err(|e| bad(format!("prices.{model}"), e))?);
        }
        let b = &self.budget;
        let mut budget = Budget::unlimited(&b.timezone).map_err(|e| bad("budget.timezone".to_owned(), e))?;
        budget.daily = b.daily.as_ref().map(Rmb::fen).transpose().map_err(|e| bad("budget.daily".to_owned(), e))?;
        budget.monthly =
            b.monthly.as_ref().map(Rmb::fen).transpose().map_err(|e| bad("budget.monthly".to_owned(), e))?;
        for (project, amount) in &b.projects {
            let fen = amount.fen().map_err(|e| bad(format!("budget.projects.{project}"), e))?;
            budget.projects.insert(project.clone(), fen);
        }
        Ok((Prices::new(prices), budget))
    }

    fn validate_defaults(&self) -> Result<(), ConfigError> {
        let bad = |key: &str, message: String| ConfigError::Invalid { key: format!("defaults.{key}"), message };
        if let Some(model) = self.defaults.get("model") {
            if model.as_str().and_then(models::rules).is_none() {
                return Err(bad("model", format!("{model} {}", unknown_model(model.as_str().unwrap_or_default()))));
            }
        }
        for key in self.defaults.keys() {
            if key == "request_id" {
                return Err(bad(key, "is set by vidkeep for each submission".to_owned()));
            }
            if !models::MODELS.iter().any(|m| m.accepts_field(key)) {
                return Err(bad(key, "is not a request field of any model".to_owned()));
            }
        }
        Ok(())
    }

    /// The inbox's reserved subfolders.
    pub fn inbox(&self) -> crate::domain::Inbox {
        crate::domain::Inbox::new(self.watch.dir.clone())
    }

    /// The API key: from the environment variable `api.api_key_env`, `api.key_file`, or
    /// `$CREDENTIALS_DIRECTORY/zhipuai-api-key` (exactly one of them).
    pub fn api_key(&self) -> Result<Secret, ConfigError> {
        key::find(&self.api.api_key_env, self.api.key_file.as_deref(), |name| std::env::var(name).ok())
    }

    /// The per-model in-flight limit for `model`, if one is set.
    pub fn model_limit(&self, model: &str) -> Option<usize> {
        self.api.max_in_flight_per_model.get(model).copied()
    }

    /// The resolved config as TOML, for `vidkeep config check`, with `http.token` redacted.
    /// The API key is never in it: it lives in the environment.
    pub fn to_toml(&self) -> String {
        let mut shown = self.clone();
        if shown.http.token.is_some() {
            shown.http.token = Some("[redacted]".to_owned());
        }
        toml::to_string_pretty(&shown).unwrap_or_else(|e| format!("# cannot render config: {e}\n"))
    }
}

/// Whether the TOML text sets `[catalog] path` itself (the default does not count).
fn catalog_path_given(text: &str) -> bool {
    toml::from_str::<toml::Table>(text)
        .ok()
        .and_then(|t| t.get("catalog").and_then(toml::Value::as_table).map(|c| c.contains_key("path")))
        .unwrap_or(false)
}

/// Why a config key names no model vidkeep knows, with the one meant when it is a typo.
fn unknown_model(model: &str) -> String {
    let hint = models::did_you_mean(model, models::MODELS.iter().map(|m| m.name));
    format!("names an unknown model{hint}: one of {}", models::known_models())
}

/// A storage URL that starts like a URL (`s3:/bucket`, `s3:bucket`, `S3//x`, `gs:/x`) without
/// being `file://` or `s3://` is a typo, not a folder named `s3:`: refused with the fix. A local
/// folder whose name has a colon can still be written `./s3:x`.
fn looks_like_a_url(url: &str) -> Result<(), ConfigError> {
    let bad = |message: String| Err(ConfigError::Invalid { key: "storage.url".to_owned(), message });
    if url.starts_with("file://") || url.starts_with("s3://") || url.starts_with("./") || url.starts_with('/') {
        return Ok(());
    }
    let scheme: String = url.chars().take_while(|c| c.is_ascii_alphanumeric() || "+-.".contains(*c)).collect();
    let rest = &url[scheme.len()..];
    let schemeish = !scheme.is_empty() && scheme.starts_with(|c: char| c.is_ascii_alphabetic());
    if schemeish && (rest.starts_with(':') || rest.starts_with("//")) {
        let fix = if scheme.eq_ignore_ascii_case("s3") {
            format!("s3://{}", rest.trim_start_matches([':', '/']))
        } else if scheme.eq_ignore_ascii_case("file") {
            format!("file:///{}", rest.trim_start_matches([':', '/']))
        } else {
            "file:///absolute/path or s3://bucket/prefix".to_owned()
        };
        return bad(format!(
            "`{url}` looks like a URL but is not file:// or s3://: write {fix} (or ./{url} for a local folder of that name)"
        ));
    }
    Ok(())
}

/// `text` with each line cut to `max` characters: the parser quotes the offending line, which a
/// generated or corrupted file can make megabytes long.
fn clip_lines(text: &str, max: usize) -> String {
    text.lines()
        .map(|line| match line.char_indices().nth(max) {
            Some((cut, _)) => format!("{}…", &line[..cut]),
            None => line.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notify_and_alerts_are_checked() {
        let load = |text: &str| Config::from_toml(text, Path::new("/srv/vk"));
        let c = load("[alerts]\nexpiry_warning = \"2h 30m\"\n[notify]\nwebhook = \"https://hooks.example/vk\"\n")
            .expect("valid");
        assert_eq!(c.alerts.expiry_warning, Duration::from_secs(9000));
        assert_eq!(Config::default().alerts.expiry_warning, Duration::from_secs(6 * 3600));
        assert_eq!(c.notify.sinks(), ["webhook"]);
        for (text, key) in [
            ("[notify]\nwebhook = \"https://user:pw@hooks.example/vk\"\n", "notify.webhook"),
            ("[notify]\nwebhook = \"ftp://hooks.example/vk\"\n", "notify.webhook"),
            ("[notify]\ncommand = [\"\"]\n", "notify.command"),
            ("[notify]\nmax_attempts = 0\n", "notify.max_attempts"),
            ("[http]\npublic_url = \"https://a:b@vk.example\"\n", "http.public_url"),
        ] {
            match load(text) {
                Err(ConfigError::Invalid { key: k, message }) => {
                    assert_eq!(k, key, "{text}");
                    assert!(!message.contains("pw"), "the refusal does not repeat the password: {message}");
                }
                other => panic!("{text}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_postgres_catalogue_is_checked_at_load() {
        let load = |text: &str| Config::from_toml(text, Path::new("/srv/vk"));
        let c = load("[catalog]\nurl = \"postgres://vk@db.example/vidkeep\"\npassword_file = \"pg-password\"\n")
            .expect("valid");
        assert_eq!(c.catalog.password_file.as_deref(), Some(Path::new("/srv/vk/pg-password")));
        let target = c.catalog.postgres().expect("postgres").expect("parses");
        assert_eq!(target.display(), "postgres://vk@db.example:5432/vidkeep");
        assert_eq!(target.password_file(), Some(Path::new("/srv/vk/pg-password")));
        assert!(Config::default().catalog.postgres().is_none());
        // A password in the URL is refused, and never repeated.
        let e = load("[catalog]\nurl = \"postgres://vk:s3cr3t@db.example/vidkeep\"\n").expect_err("password");
        let text = format!("{e} {e:?}");
        assert!(text.contains("holds a password") && !text.contains("s3cr3t"), "{text}");
        let e = load("[catalog]\nurl = \"mysql://vk@db.example/vidkeep\"\n").expect_err("scheme").to_string();
        assert!(e.contains("postgres://"), "{e}");
        // Both backends at once, or a password file for SQLite, are errors naming the keys.
        let e = load("[catalog]\npath = \"c.sqlite\"\nurl = \"postgres://vk@db.example/vidkeep\"\n")
            .expect_err("both")
            .to_string();
        assert!(e.contains("catalog.url") && e.contains("catalog.path"), "{e}");
        let e = load("[catalog]\npassword_file = \"pw\"\n").expect_err("sqlite").to_string();
        assert!(e.contains("catalog.password_file") && e.contains("catalog.url"), "{e}");
        // Debug never shows a password, even of a config that was not validated.
        let mut c = Config::default();
        c.catalog.url = Some("postgres://vk:s3cr3t@db.example/vidkeep".to_owned());
        assert!(!format!("{c:?}").contains("s3cr3t"));
    }

    #[test]
    fn a_typo_in_the_default_model_names_the_model_meant() {
        let e = Config::from_toml("[defaults]\nmodel = \"viduq1_text\"\n", Path::new("/x")).expect_err("typo");
        assert!(e.to_string().contains("did you mean `viduq1-text`?"), "{e}");
    }

    #[test]
    fn a_storage_url_that_looks_like_a_url_but_is_not_one_is_refused_with_the_fix() {
        for (url, fix) in [
            ("s3:/bucket/x", "s3://bucket/x"),
            ("s3:bucket/x", "s3://bucket/x"),
            ("S3//bucket", "s3://bucket"),
            ("file:/var/archive", "file:///var/archive"),
            ("gs://bucket/x", "s3://bucket/prefix"),
            ("https://example.com/x", "file:///absolute/path"),
        ] {
            let text = format!("[storage]\nurl = \"{url}\"\n");
            let e = Config::from_toml(&text, Path::new("/x")).expect_err(url).to_string();
            assert!(e.contains("storage.url") && e.contains(fix), "{url}: {e}");
        }
        for url in ["archive", "./s3:x", "/srv/archive", "file:///srv/a", "my archive", "a-b_c"] {
            let text = format!("[storage]\nurl = \"{url}\"\n");
            assert!(Config::from_toml(&text, Path::new("/x")).is_ok(), "{url}");
        }
    }

    #[test]
    fn a_syntax_error_quotes_at_most_200_characters_of_its_line() {
        let text = format!("[api]\nbase_url = \"{}\n", "x".repeat(5000));
        let msg = Config::from_toml(&text, Path::new("/x")).expect_err("unterminated").to_string();
        assert!(msg.lines().all(|l| l.chars().count() <= 240), "{msg}");
        assert!(msg.len() < 2000, "{} bytes", msg.len());
    }

    #[test]
    fn prices_and_budgets_are_read_as_fen_and_checked() {
        let text = "[prices]\nviduq1-text = 2.4\ncogvideox-3 = \"0.80\"\n\
                    [budget]\ndaily = 5\nmonthly = \"100.5\"\ntimezone = \"UTC\"\n[budget.projects]\nads = 20\n";
        let c = Config::from_toml(text, Path::new("/x")).expect("valid");
        let (prices, budget) = (c.price_table(), c.budget_limits());
        assert_eq!((prices.fen("viduq1-text"), prices.fen("cogvideox-3"), prices.fen("vidu2-image")), (240, 80, 125));
        assert_eq!((budget.daily, budget.monthly, budget.projects.get("ads")), (Some(500), Some(10050), Some(&2000)));
        assert_eq!(budget.timezone_name, "UTC");
        assert_eq!(Config::default().budget_limits().timezone_name, "Asia/Shanghai");
        for (bad, key) in [
            ("[prices]\nviduq9 = 1\n", "prices.viduq9"),
            ("[prices]\nviduq1-text = 2.555\n", "prices.viduq1-text"),
            ("[budget]\ndaily = -1\n", "budget.daily"),
            ("[budget]\ntimezone = \"Mars/Base\"\n", "budget.timezone"),
            ("[budget.projects]\nads = \"lots\"\n", "budget.projects.ads"),
        ] {
            let e = Config::from_toml(bad, Path::new("/x")).expect_err(bad).to_string();
            assert!(e.contains(key), "{bad}: {e}");
        }
    }

    #[test]
    fn unknown_key_names_key_and_line() {
        let err = Config::from_toml("[api]\nmax_in_flight = 3\nmax_inflight = 4\n", Path::new("/x"))
            .expect_err("unknown key");
        let msg = err.to_string();
        assert!(msg.contains("max_inflight") && msg.contains("line 3"), "{msg}");
    }

    #[test]
    fn relative_paths_follow_the_config_file() {
        let c = Config::from_toml(
            "[watch]\ndir = \"inbox\"\n[storage]\nurl = \"archive\"\n[catalog]\npath = \"c.sqlite\"\n",
            Path::new("/srv/vk"),
        )
        .expect("valid");
        assert_eq!(c.watch.dir, Path::new("/srv/vk/inbox"));
        assert_eq!(c.storage.url, "file:///srv/vk/archive");
        assert_eq!(c.catalog.path, Path::new("/srv/vk/c.sqlite"));
    }

    #[test]
    fn bad_values_are_named() {
        for (text, key) in [
            ("[api]\nmax_in_flight = 0\n", "api.max_in_flight"),
            ("[api.max_in_flight_per_model]\nviduq9 = 2\n", "api.max_in_flight_per_model.viduq9"),
            ("[api]\nbase_url = \"ftp://x\"\n", "api.base_url"),
            ("[api]\nbase_url = \"https://user:pass@open.bigmodel.cn/api/paas/v4\"\n", "api.base_url"),
            ("[api]\nrequest_timeout = \"0s\"\n", "api.request_timeout"),
            ("[defaults]\nmodel = \"nope\"\n", "defaults.model"),
            ("[defaults]\nstyel = \"anime\"\n", "defaults.styel"),
            ("[storage]\nurl = \"gs://bucket\"\n", "storage.url"),
            ("[storage]\nurl = \"s3://x\"\n", "storage.url"),
            ("[storage]\npart_size = 1024\n", "storage.part_size"),
            ("[storage]\nmax_concurrent_parts = 0\n", "storage.max_concurrent_parts"),
            ("[storage]\nurl = \"s3://bucket\"\nendpoint = \"http://127.0.0.1:9000\"\n", "storage.allow_http"),
            ("[storage]\nurl = \"s3://bucket\"\nendpoint = \"ftp://h\"\n", "storage.endpoint"),
            ("[http]\nlisten = \"localhost\"\n", "http.listen"),
            ("[http]\ntoken = \"short\"\n", "http.token"),
            ("[log]\nlevel = \"info,=[\"\n", "log.level"),
            ("[jobs]\ntask_deadline = \"0s\"\n", "jobs.task_deadline"),
            ("[http]\nmax_connections = 0\n", "http.max_connections"),
            ("[archive]\nmax_bytes = 0\n", "archive.max_bytes"),
            ("[archive]\nallowed_hosts = [\"\"]\n", "archive.allowed_hosts"),
            ("[archive]\nallowed_networks = [\"10.0.0.0/33\"]\n", "archive.allowed_networks"),
        ] {
            let err = Config::from_toml(text, Path::new("/x")).expect_err(text);
            assert!(err.to_string().contains(key), "{text}: {err}");
        }
    }

    #[test]
    fn the_http_token_is_redacted() {
        let c = Config::from_toml("[http]\ntoken = \"tok-0123456789abcdef\"\n", Path::new("/x")).expect("valid");
        let shown = c.to_toml();
        assert!(!shown.contains("tok-0123456789abcdef") && shown.contains("[redacted]"), "{shown}");
        assert_eq!(c.http.token().map(|t| t.expose().to_owned()).as_deref(), Some("tok-0123456789abcdef"));
        let off = Config::from_toml("[http]\nlisten = \"\"\n", Path::new("/x")).expect("valid");
        assert_eq!(off.http.listen_addr(), None);
    }

    #[test]
    fn s3_storage_is_accepted() {
        let c = Config::from_toml(
            "[storage]\nurl = \"s3://media/studio\"\nendpoint = \"http://127.0.0.1:9000\"\nallow_http = true\n",
            Path::new("/x"),
        )
        .expect("valid");
        assert_eq!(c.storage.url, "s3://media/studio", "an s3 url is not a path");
        assert_eq!(c.storage.part_size, 16 * 1024 * 1024);
    }

    #[test]
    fn durations_are_humantime() {
        let c = Config::from_toml("[api]\npoll_interval = \"1m 30s\"\n", Path::new("/x")).expect("valid");
        assert_eq!(c.api.poll_interval, Duration::from_secs(90));
    }
}
