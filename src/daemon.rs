//! The supervisor: opens everything, repairs what a crash left, runs the workers, and stops them
//! all when asked or when one fails.
//!
//! Shutdown is a value ([`CancellationToken`]) that flows in from the caller, never a
//! `process::exit`: the engine lets running steps finish within `jobs.shutdown_grace`, and every
//! catalogue write is a committed transaction, so the next start resumes where this one stopped.
//!
//! The supervisor's loop is also where operations happen: it tells systemd `READY=1` once the
//! catalogue is open, migrated and reconciled, sends `WATCHDOG=1` and a `STATUS=` line after each
//! successful look at the catalogue, applies reload requests ([`crate::ops::reload`]) and says
//! `STOPPING=1` when the stop begins.

mod lease;

use crate::telemetry::Escaped;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, mpsc, watch as channel};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::api::{ApiClient, ApiError};
use crate::archive::scrub::scrub;
use crate::archive::{ArchiveError, Archiver};
use crate::catalog::{Catalog, CatalogError, CheckSelection, Db};
use crate::config::Config;
use crate::jobs::{Engine, EngineError, EngineSettings, Limiter, LiveSettings, reconcile};
use crate::ops::notify::Notifier;
use crate::ops::{self, Ops, reload};
use crate::secret::Secret;
use crate::store::{Store, StoreError};
use crate::watch::{self, Intake, WatchError};
use crate::web::ui::UiState;
use crate::web::{self, WebError};

/// How often the status line is refreshed when systemd's watchdog does not ask for more.
const STATUS_EVERY: Duration = Duration::from_secs(5);
/// The platform is probed when it has not answered for this long (no jobs, no calls).
const PROBE_AFTER: Duration = Duration::from_secs(60);

/// Errors that stop the daemon.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The catalogue failed.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// The store could not be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The inbox could not be watched.
    #[error(transparent)]
    Watch(#[from] WatchError),
    /// The HTTP clients could not be built.
    #[error(transparent)]
    Api(#[from] ApiError),
    /// The archiver could not be built.
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    /// The engine stopped on an error.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The HTTP server could not start or failed.
    #[error(transparent)]
    Web(#[from] WebError),
    /// The expiry watch or the notification delivery failed.
    #[error(transparent)]
    Alarm(#[from] crate::alarms::AlarmError),
    /// A worker panicked.
    #[error("worker {0} panicked: {1}")]
    Panic(&'static str, String),
}

/// What a caller can hand the daemon besides its config.
#[derive(Debug, Default)]
pub struct Options {
    /// The config file, re-read on each reload request. Without it reload requests are refused.
    pub config_path: Option<PathBuf>,
    /// Reload requests: the CLI turns SIGHUP into one; tests send them directly.
    pub reload: Option<mpsc::UnboundedReceiver<()>>,
    /// A bound listener for the HTTP server, used instead of binding `[http] listen`.
    pub http_listener: Option<tokio::net::TcpListener>,
    /// How the local store flushes writes, instead of `fsync` (tests record the calls).
    pub durability: Option<Arc<dyn crate::store::Durability>>,
    /// The wall clock result expiry is judged by, instead of the system's (tests move it by hours).
    pub clock: Option<crate::time::Clock>,
}

/// Runs the daemon until `cancel` is cancelled or a worker fails.
pub async fn run(config: Config, key: Secret, cancel: CancellationToken) -> Result<(), DaemonError> {
    run_with(config, key, cancel, Options::default()).await
}

/// [`run`], with a config file to reload, reload requests and a listener for the HTTP server.
pub async fn run_with(
    config: Config,
    key: Secret,
    cancel: CancellationToken,
    options: Options,
) -> Result<(), DaemonError> {
    // First of all: a second daemon on a SQLite catalogue must not touch its jobs or staging
    // area. A PostgreSQL catalogue is shared: each daemon works its own jobs, by lease.
    let shared = config.catalog.url.is_some();
    let _lock = if shared { None } else { Some(crate::catalog::DaemonLock::acquire(&config.catalog.path)?) };
    let open_files = web::raise_open_file_limit();
    let inbox = config.inbox();
    inbox.ensure().map_err(|source| WatchError::Inbox { path: inbox.root().to_owned(), source })?;
    let new_catalogue = !shared && !config.catalog.path.exists();
    let place = config.catalog.clone();
    let mut catalog = tokio::task::spawn_blocking(move || Catalog::open_config(&place))
        .await
        .map_err(|e| DaemonError::Panic("catalogue open", e.to_string()))??;
    if new_catalogue {
        // Right on a first start; after a typo in [catalog] path it forgets every job, and with
        // them what was already paid for.
        // INFO, not WARN: every first start has it (the demo's too), and the words carry the caution.
        tracing::info!(
            path = %Escaped(&config.catalog.path.display().to_string()),
            "created a new, empty catalogue: right on a first start; otherwise [catalog] path does not name the \
             existing one, so stop now and fix it before specs are taken (they would be paid for again)"
        );
    }
    // Before reconcile: a job it makes uncertain tells people too.
    catalog.set_notify(crate::catalog::NotifySetup {
        sinks: config.notify.sinks(),
        ui_base: config.http.public_url.clone(),
    });
    // The engine's per-turn reads go through a second, read-only connection (see `Db`).
    let place = config.catalog.clone();
    let reader = tokio::task::spawn_blocking(move || Catalog::open_config_read_only(&place))
        .await
        .map_err(|e| DaemonError::Panic("catalogue open", e.to_string()))??;
    let db = Db::new(catalog).with_reader(reader);
    let clock = options.clock.clone().unwrap_or_default();
    // Stable across restarts, one per inbox: this daemon's own staging area is `.staging/<id>/`.
    let daemon_id = crate::domain::DaemonId::for_inbox(inbox.root());
    let mut store = Store::open(&config.storage)?.with_staging_owner(daemon_id.clone());
    if let Some(durability) = options.durability.clone() {
        store = store.with_durability(durability);
    }
    // Nothing else uploads into this daemon's staging area: what is there was left by its last
    // stop. Other daemons sharing the storage root keep theirs. Leftovers only cost space, so a
    // store that is down now does not stop the daemon (downloads retry).
    // Its jobs: on SQLite every unfinished one; on a shared catalogue its own, by lease.
    let lapsed = lease::claim(&db, &daemon_id, config.catalog.lease).await?;
    match store.clean_staging(&lapsed).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(leftovers = n, "removed staging objects and uploads left by an earlier stop"),
        Err(e) => tracing::warn!(error = %Escaped(&e), "could not clean the staging area; the next start tries again"),
    }
    let ui = {
        let (place, store, budget) = (config.catalog.clone(), store.clone(), config.budget_limits());
        tokio::task::spawn_blocking(move || {
            let first = Catalog::open_config_read_only(&place)?;
            let more = move || Catalog::open_config_read_only(&place);
            Ok::<_, crate::catalog::CatalogError>(
                UiState::new(first, store).with_budget(budget).with_readers(crate::web::ui::UI_READERS, more),
            )
        })
        .await
        .map_err(|e| DaemonError::Panic("catalogue open", e.to_string()))??
        .with_alerts(config.alerts.expiry_warning, clock.clone())
    };
    let secrets: Vec<Secret> = std::iter::once(key.clone()).chain(config.http.token()).collect();
    let scrubber = (db.clone(), store.clone());
    let cleanup_store = store.clone();
    let archiver =
        Archiver::with_config(store, config.api.request_timeout.max(Duration::from_secs(30)), &config.archive)?
            .with_probe(config.probe);
    let api = ApiClient::new(&config.api.base_url, key, config.api.request_timeout)?;
    let listener = match (options.http_listener, config.http.listen_addr()) {
        (Some(listener), _) => Some(listener),
        (None, Some(addr)) => Some(web::bind(addr).await?),
        (None, None) => None,
    };
    let repaired = reconcile(&db, &inbox).await?;
    abort_unfinished_uploads(&db, &cleanup_store).await?;
    tracing::info!(
        inbox = %Escaped(inbox.root().display()),
        storage = %Escaped(&config.storage.url),
        daemon = %daemon_id,
        catalog = %Escaped(Catalog::config_place(&config.catalog)),
        uncertain = repaired.uncertain.len(),
        resumed_polls = repaired.resumed_polls,
        resumed_downloads = repaired.resumed_downloads,
        "vidkeep running"
    );
    let ops = Ops::new(db.clone()).with_clock(clock);
    ops.set_budget(config.budget_limits());
    ops.set_expiry_warning(config.alerts.expiry_warning);
    let wake = Arc::new(Notify::new());
    let limiter = Limiter::new(config.api.max_in_flight, config.api.max_in_flight_per_model.clone());
    let live = live_settings(&config);
    let (live_tx, live_rx) = channel::channel(live.clone());
    // The spend page shows the budget in effect, which a reload may change.
    let ui = ui.with_live_budget(live_rx.clone());
    let engine = Engine::new(db.clone(), api, archiver, inbox, limiter, live.settings, Arc::clone(&wake))
        .with_ops(ops.clone(), live_rx);
    let mut sup = Supervisor {
        config,
        config_path: options.config_path,
        db,
        wake,
        ops,
        notifier: Notifier::from_env(),
        live_tx,
        cancel,
        intake_stop: CancellationToken::new(),
        intake_next: None,
        workers: JoinSet::new(),
        open_files,
    };
    sup.spawn_intake();
    let token = sup.cancel.clone();
    sup.workers.spawn(async move { ("engine", engine.run(token).await.map_err(Into::into)) });
    if sup.db.is_shared() {
        let (db, token, lease) = (sup.db.clone(), sup.cancel.clone(), sup.config.catalog.lease);
        let every = lease::heartbeat_every(lease);
        sup.workers.spawn(async move { ("lease", lease::keep(db, lease, every, token).await) });
    }
    if let Some(every) = sup.config.verify.every {
        let (token, sample) = (sup.cancel.clone(), sup.config.verify.sample);
        let ops = sup.ops.clone();
        sup.workers.spawn(async move { ("scrubber", scrub_every(scrubber, every, sample, token, ops).await) });
    }
    if let Some(listener) = listener {
        sup.spawn_http(listener, ui);
    }
    sup.spawn_alarms(secrets)?;
    sup.spawn_probe()?;
    sup.notifier.ready();
    sup.run(options.reload).await
}

/// On S3 a stop mid-upload leaves an unfinished multipart upload under a `downloading` job's
/// folder (uploads go straight to their final keys); the job is downloaded again, so the
/// leftover only costs storage: abort it. A store that is down now does not stop the start.
async fn abort_unfinished_uploads(db: &Db, store: &Store) -> Result<(), DaemonError> {
    if !store.is_s3() {
        return Ok(());
    }
    let downloading = db.jobs_in(crate::domain::JobState::Downloading).await?;
    for job in downloading {
        let folder = object_store::path::Path::from(format!("{}/{}", crate::time::date_path(job.created_at), job.id));
        match store.abort_unfinished(&folder).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(job_id = %job.id, aborted = n, "aborted uploads cut short by the last stop"),
            Err(e) => {
                tracing::warn!(job_id = %job.id, error = %Escaped(&e), "could not abort the uploads cut short by the last stop; the next start tries again")
            }
        }
    }
    Ok(())
}

/// Re-reads a `sample` percent of the stored assets every `every` until `cancel`. A scrub that
/// cannot read the catalogue stops the daemon, like any catalogue failure; problems with stored
/// objects are logged and recorded, and the daemon goes on.
async fn scrub_every(
    (db, store): (Db, Store),
    every: Duration,
    sample: f64,
    cancel: CancellationToken,
    ops: Ops,
) -> Result<(), DaemonError> {
    loop {
        tokio::select! {
            () = cancel.cancelled() => return Ok(()),
            () = tokio::time::sleep(every) => {}
        }
        let selection = CheckSelection { stored_since: None, sample_percent: Some(sample) };
        let report = tokio::select! {
            () = cancel.cancelled() => return Ok(()),
            report = scrub(&db, &store, selection) => report?,
        };
        for problem in &report.problems {
            ops.metrics().verify_problem(problem.result.as_str());
        }
        tracing::info!(checked = report.checked, problems = report.problems.len(), "scheduled verification done");
    }
}

/// The engine settings a config describes.
fn live_settings(config: &Config) -> LiveSettings {
    LiveSettings {
        settings: EngineSettings {
            poll_interval: config.api.poll_interval,
            download_concurrency: config.jobs.download_concurrency,
            retry_base: config.jobs.retry_base,
            retry_max: config.jobs.retry_max,
            account_pause: config.jobs.account_pause,
            shutdown_grace: config.jobs.shutdown_grace,
            uncertain: config.jobs.uncertain,
            task_deadline: config.jobs.task_deadline,
            prices: config.price_table(),
            budget: config.budget_limits(),
        },
        max_in_flight: config.api.max_in_flight,
        max_in_flight_per_model: config.api.max_in_flight_per_model.clone(),
        inbox: config.inbox(),
    }
}

type Worker = (&'static str, Result<(), DaemonError>);

struct Supervisor {
    /// The config in effect (keys that need a restart keep their running values).
    config: Config,
    config_path: Option<PathBuf>,
    db: Db,
    wake: Arc<Notify>,
    ops: Ops,
    notifier: Notifier,
    live_tx: channel::Sender<LiveSettings>,
    cancel: CancellationToken,
    /// Stops the current intake worker only (a reload replaces it).
    intake_stop: CancellationToken,
    /// The config for the intake worker to start once the current one has stopped.
    intake_next: Option<Config>,
    workers: JoinSet<Worker>,
    /// The open-file limit in force (raised to the hard limit at start).
    open_files: Option<u64>,
}

impl Supervisor {
    fn spawn_intake(&mut self) {
        let c = &self.config;
        let intake =
            Intake::new(self.db.clone(), c.inbox(), c.defaults.clone(), Arc::clone(&self.wake), self.ops.clone());
        let (quiet, rescan) = (c.watch.quiet_period, c.watch.rescan_interval);
        self.intake_stop = self.cancel.child_token();
        let token = self.intake_stop.clone();
        self.ops.set_watcher_alive(true);
        self.workers
            .spawn(async move { ("intake", watch::run(intake, quiet, rescan, token).await.map_err(Into::into)) });
    }

    fn spawn_http(&mut self, listener: tokio::net::TcpListener, ui: UiState) {
        match listener.local_addr() {
            Ok(addr) => {
                if !addr.ip().is_loopback() && self.config.http.token().is_none() {
                    tracing::warn!(%addr, "the HTTP server listens beyond loopback without [http] token");
                }
                tracing::info!(%addr, "HTTP server listening: catalogue UI at /, /healthz /readyz /metrics");
            }
            Err(e) => tracing::warn!(error = %Escaped(&e), "HTTP server: cannot read its address"),
        }
        let routes = ops::health::routes(self.ops.clone()).merge(web::ui::routes(ui));
        let app = web::app(routes, &self.config.http);
        let token = self.cancel.clone();
        let mut settings = web::ServeSettings::new(&self.config.http, self.config.jobs.shutdown_grace);
        settings.max_connections = web::connection_cap(settings.max_connections, self.open_files);
        if settings.max_connections < self.config.http.max_connections {
            tracing::warn!(
                max_connections = settings.max_connections,
                open_files = self.open_files,
                "[http] max_connections lowered to keep file descriptors for the engine"
            );
        }
        self.workers
            .spawn(async move { ("http", web::serve(listener, app, token, settings).await.map_err(Into::into)) });
    }

    /// The expiry watch, and the notification delivery when `[notify]` has a sink.
    fn spawn_alarms(&mut self, secrets: Vec<Secret>) -> Result<(), DaemonError> {
        let (db, ops, token) = (self.db.clone(), self.ops.clone(), self.cancel.clone());
        let alerts = self.config.alerts.clone();
        self.workers.spawn(async move {
            let result =
                crate::alarms::watch_expiry(db, ops, alerts.expiry_warning, alerts.check_interval, token).await;
            ("expiry watch", result.map_err(Into::into))
        });
        let notify = &self.config.notify;
        if notify.sinks().is_empty() {
            return Ok(());
        }
        let hidden = vec![self.config.api.api_key_env.clone()];
        let deliverer =
            crate::alarms::Deliverer::new(self.db.clone(), self.ops.clone(), notify.clone(), secrets, hidden)?;
        let token = self.cancel.clone();
        self.workers.spawn(async move { ("notifier", deliverer.run(token).await.map_err(Into::into)) });
        tracing::info!(sinks = ?notify.sinks(), "notifications on: events go out from the catalogue's outbox");
        Ok(())
    }

    /// Asks the platform for anything when it has been quiet, so `/readyz` knows it is reachable
    /// while no job is running. The probe carries no key: any HTTP answer proves reachability.
    fn spawn_probe(&mut self) -> Result<(), DaemonError> {
        let client = reqwest::Client::builder()
            .timeout(self.config.api.request_timeout)
            .build()
            .map_err(|e| ApiError::NotSent(e.to_string()))?;
        let url = self.config.api.base_url.clone();
        let (ops, cancel) = (self.ops.clone(), self.cancel.clone());
        self.workers.spawn(async move {
            loop {
                let quiet = ops.platform_seen_ms().is_none_or(|t| {
                    crate::time::now_ms().saturating_sub(t) >= i64::try_from(PROBE_AFTER.as_millis()).unwrap_or(0)
                });
                if quiet {
                    match client.get(&url).send().await {
                        Ok(_) => ops.platform_answered(),
                        Err(e) => {
                            // reqwest's own words ("error sending request") name no cause.
                            let why = crate::api::with_causes(&e);
                            tracing::warn!(error = %Escaped(&why), "the platform did not answer a reachability probe");
                            ops.platform_unreachable(why);
                        }
                    }
                }
                tokio::select! {
                    () = cancel.cancelled() => return ("platform probe", Ok(())),
                    () = tokio::time::sleep(PROBE_AFTER / 4) => {}
                }
            }
        });
        Ok(())
    }

    async fn run(mut self, mut reload: Option<mpsc::UnboundedReceiver<()>>) -> Result<(), DaemonError> {
        let beat = self.notifier.watchdog_interval().map_or(STATUS_EVERY, |w| w.min(STATUS_EVERY));
        let mut ticker = tokio::time::interval(beat);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut first_error = None;
        let mut stopping = false;
        loop {
            tokio::select! {
                joined = self.workers.join_next() => {
                    let Some(joined) = joined else { break };
                    let (name, result) =
                        joined.unwrap_or_else(|e| ("worker", Err(DaemonError::Panic("worker", e.to_string()))));
                    if name == "intake" {
                        self.ops.set_watcher_alive(false);
                    }
                    match result {
                        Ok(()) if name == "intake" && !self.cancel.is_cancelled() => match self.intake_next.take() {
                            Some(next) => {
                                self.config.watch = next.watch;
                                self.config.defaults = next.defaults;
                                self.spawn_intake();
                                tracing::info!(inbox = %Escaped(self.config.watch.dir.display()), "inbox watcher restarted with the reloaded settings");
                            }
                            None => tracing::warn!("the inbox watcher stopped by itself"),
                        },
                        Ok(()) => tracing::debug!(worker = name, "stopped"),
                        Err(e) => {
                            tracing::error!(worker = name, error = %Escaped(&e), "worker failed; stopping vidkeep");
                            self.cancel.cancel();
                            first_error.get_or_insert(e);
                        }
                    }
                }
                _ = ticker.tick() => self.heartbeat().await,
                Some(()) = recv(&mut reload), if !stopping => self.reload(),
                () = self.cancel.cancelled(), if !stopping => {
                    stopping = true;
                    self.notifier.stopping();
                    self.notifier.status("stopping: letting running steps finish");
                }
            }
        }
        tracing::info!("vidkeep stopped");
        let notifier = self.notifier.clone();
        let _ = tokio::task::spawn_blocking(move || notifier.flush(Duration::from_secs(2))).await;
        first_error.map_or(Ok(()), Err)
    }

    /// `WATCHDOG=1` and a fresh `STATUS=` line, after the catalogue answered.
    async fn heartbeat(&self) {
        match self.ops.snapshot().await {
            Ok(snapshot) => {
                self.notifier.watchdog();
                if !self.cancel.is_cancelled() {
                    let line = ops::status_line(&snapshot, self.config.api.max_in_flight, crate::time::now_ms());
                    self.notifier.status(&line);
                }
            }
            Err(e) => tracing::warn!(error = %Escaped(&e), "cannot read the catalogue for the status line"),
        }
    }

    /// Re-reads the config file and applies what can change live; refuses an invalid file.
    fn reload(&mut self) {
        self.notifier.reloading();
        self.apply_reload();
        self.notifier.ready();
    }

    fn apply_reload(&mut self) {
        let Some(path) = self.config_path.clone() else {
            tracing::warn!("reload requested, but this daemon was not started from a config file");
            return;
        };
        let new = match Config::load(&path) {
            Ok(new) => new,
            Err(e) => {
                tracing::error!(config = %Escaped(path.display()), error = %Escaped(&e), "config reload refused; the running config stays");
                return;
            }
        };
        if new.watch.dir != self.config.watch.dir {
            let inbox = new.inbox();
            if let Err(e) = inbox.ensure() {
                tracing::error!(inbox = %Escaped(inbox.root().display()), error = %Escaped(&e), "config reload refused: cannot create the new inbox; the running config stays");
                return;
            }
        }
        let plan = reload::plan(&self.config, &new);
        if !plan.needs_restart.is_empty() {
            tracing::warn!(keys = ?plan.needs_restart, "changed in the config file, but needs a restart; the running values stay until then");
        }
        if plan.live.is_empty() {
            tracing::info!(config = %Escaped(path.display()), "config reloaded: nothing to change");
            return;
        }
        let effective = reload::effective(&self.config, &new);
        if plan.live.contains(&"log.level") {
            match crate::telemetry::set_filter(&effective.log.level) {
                Ok(crate::telemetry::FilterChange::EnvironmentWins) => {
                    tracing::warn!("log.level changed, but VIDKEEP_LOG or RUST_LOG is set and wins");
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %Escaped(&e), "cannot change the log level"),
            }
        }
        if plan.touches_engine() {
            let _ = self.live_tx.send(live_settings(&effective));
        }
        if plan.restarts_intake() {
            // The intake restarts with the new settings once the current one has stopped.
            self.intake_next = Some(effective.clone());
            self.intake_stop.cancel();
        }
        let mut kept = effective;
        if plan.restarts_intake() {
            // Until the new watcher runs, the running config still describes the old one.
            kept.watch = self.config.watch.clone();
            kept.defaults = self.config.defaults.clone();
        }
        self.ops.set_budget(kept.budget_limits());
        self.config = kept;
        tracing::info!(config = %Escaped(path.display()), changed = ?plan.live, "config reloaded; jobs in flight go on");
    }
}

async fn recv(rx: &mut Option<mpsc::UnboundedReceiver<()>>) -> Option<()> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}
