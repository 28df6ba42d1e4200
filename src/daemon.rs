//! The supervisor: opens everything, repairs what a crash left, runs the workers, and stops them
//! all when asked or when one fails.
//!
//! Shutdown is a value ([`CancellationToken`]) that flows in from the caller, never a
//! `process::exit`: the engine lets running steps finish within `jobs.shutdown_grace`, and every
//! catalogue write is a committed transaction, so the next start resumes where this one stopped.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::api::{ApiClient, ApiError};
use crate::archive::{ArchiveError, Archiver};
use crate::catalog::{Catalog, CatalogError, Db};
use crate::config::Config;
use crate::jobs::{Engine, EngineError, EngineSettings, Limiter, reconcile};
use crate::secret::Secret;
use crate::store::{Store, StoreError};
use crate::watch::{self, Intake, WatchError};

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
    /// A worker panicked.
    #[error("worker {0} panicked: {1}")]
    Panic(&'static str, String),
}

/// Runs the daemon until `cancel` is cancelled or a worker fails.
pub async fn run(config: Config, key: Secret, cancel: CancellationToken) -> Result<(), DaemonError> {
    let inbox = config.inbox();
    inbox.ensure().map_err(|source| WatchError::Inbox { path: inbox.root().to_owned(), source })?;
    let path = config.catalog.path.clone();
    let catalog = tokio::task::spawn_blocking(move || Catalog::open(&path))
        .await
        .map_err(|e| DaemonError::Panic("catalogue open", e.to_string()))??;
    let db = Db::new(catalog);
    let store = Store::open(&config.storage)?;
    // One daemon per storage root: nothing else is uploading into its staging area now. Leftovers
    // only cost space, so a store that is down now does not stop the daemon (downloads retry).
    match store.clean_staging().await {
        Ok(0) => {}
        Ok(n) => tracing::info!(leftovers = n, "removed staging objects and uploads left by an earlier stop"),
        Err(e) => tracing::warn!(error = %e, "could not clean the staging area; the next start tries again"),
    }
    let archiver = Archiver::new(store, config.api.request_timeout.max(Duration::from_secs(30)))?;
    let api = ApiClient::new(&config.api.base_url, key, config.api.request_timeout)?;
    let repaired = reconcile(&db, &inbox).await?;
    tracing::info!(
        inbox = %inbox.root().display(),
        storage = %config.storage.url,
        catalog = %config.catalog.path.display(),
        uncertain = repaired.uncertain.len(),
        resumed_polls = repaired.resumed_polls,
        resumed_downloads = repaired.resumed_downloads,
        "vidkeep running"
    );
    let wake = Arc::new(Notify::new());
    let intake = Intake::new(db.clone(), inbox.clone(), config.defaults.clone(), Arc::clone(&wake));
    let limiter = Limiter::new(config.api.max_in_flight, config.api.max_in_flight_per_model.clone());
    let settings = EngineSettings {
        poll_interval: config.api.poll_interval,
        download_concurrency: config.jobs.download_concurrency,
        retry_base: config.jobs.retry_base,
        retry_max: config.jobs.retry_max,
        account_pause: config.jobs.account_pause,
        shutdown_grace: config.jobs.shutdown_grace,
    };
    let engine = Engine::new(db, api, archiver, inbox, limiter, settings, wake);
    supervise(engine, intake, &config, cancel).await
}

async fn supervise(
    engine: Engine,
    intake: Intake,
    config: &Config,
    cancel: CancellationToken,
) -> Result<(), DaemonError> {
    let mut workers: JoinSet<(&'static str, Result<(), DaemonError>)> = JoinSet::new();
    let (quiet, rescan) = (config.watch.quiet_period, config.watch.rescan_interval);
    let token = cancel.clone();
    workers.spawn(async move { ("intake", watch::run(intake, quiet, rescan, token).await.map_err(Into::into)) });
    let token = cancel.clone();
    workers.spawn(async move { ("engine", engine.run(token).await.map_err(Into::into)) });
    let mut first_error = None;
    while let Some(joined) = workers.join_next().await {
        let (name, result) = joined.unwrap_or_else(|e| ("worker", Err(DaemonError::Panic("worker", e.to_string()))));
        match result {
            Ok(()) => tracing::debug!(worker = name, "stopped"),
            Err(e) => {
                tracing::error!(worker = name, error = %e, "worker failed; stopping vidkeep");
                cancel.cancel();
                first_error.get_or_insert(e);
            }
        }
    }
    tracing::info!("vidkeep stopped");
    first_error.map_or(Ok(()), Err)
}
