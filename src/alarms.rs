//! Alarms that reach people: the expiry watch and the notification outbox's delivery.
//!
//! The expiry watch looks every `[alerts] check_interval` for paid results not yet archived
//! whose links expire within `[alerts] expiry_warning`: each gets an ERROR log line per check and
//! one `expiry_warning` event. The banner, `/metrics` and the status line read the same query.
//!
//! Delivery reads the catalogue's outbox (rows written with the state changes that cause them),
//! sends each event to its sink (`[notify] webhook`, `[notify] command`) with a timeout, and
//! records the outcome: delivered, retried later with exponential backoff, or dead after
//! `max_attempts` (logged once, counted). It runs beside the engine and never holds it up: the
//! engine only writes rows. Events of one job go out in order. Bodies never carry a secret: they
//! are built from the catalogue (which holds none), and the API key and HTTP token are checked
//! out of every body before it leaves.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncWriteExt as _;
use tokio_util::sync::CancellationToken;

use crate::catalog::{CatalogError, Db, OutboxRow};
use crate::config::NotifyConfig;
use crate::ops::{Ops, human_span};
use crate::secret::Secret;
use crate::time::now_ms;

/// How often the outbox is looked at for due events.
const OUTBOX_TICK: Duration = Duration::from_millis(200);
/// The longest stretch of a delivery's error kept in the catalogue and the log.
const ERROR_CHARS: usize = 300;

/// Errors that stop an alarm worker.
#[derive(Debug, thiserror::Error)]
pub enum AlarmError {
    /// The catalogue failed.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// The HTTP client could not be built.
    #[error("cannot build the webhook client: {0}")]
    Client(String),
}

/// Why one delivery failed (kept on the outbox row, never holding a secret).
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// The webhook could not be reached or did not answer in time.
    #[error("webhook not reached: {0}")]
    Unreachable(String),
    /// The webhook answered with a status other than 2xx.
    #[error("webhook answered HTTP {0}")]
    Status(u16),
    /// The program could not be started or fed.
    #[error("notify command could not run: {0}")]
    Spawn(String),
    /// The program exited unsuccessfully.
    #[error("notify command exited with {0}")]
    Exit(String),
    /// The delivery took longer than `[notify] timeout`.
    #[error("delivery took longer than {0:?}")]
    Timeout(Duration),
}

impl DeliveryError {
    /// A stable code for logs and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            DeliveryError::Unreachable(_) => "notify-unreachable",
            DeliveryError::Status(_) => "notify-status",
            DeliveryError::Spawn(_) => "notify-spawn",
            DeliveryError::Exit(_) => "notify-exit",
            DeliveryError::Timeout(_) => "notify-timeout",
        }
    }
}

/// Runs the expiry watch every `interval` until `cancel`.
pub async fn watch_expiry(
    db: Db,
    ops: Ops,
    window: Duration,
    interval: Duration,
    cancel: CancellationToken,
) -> Result<(), AlarmError> {
    loop {
        check_expiry(&db, &ops, window).await?;
        tokio::select! {
            () = cancel.cancelled() => return Ok(()),
            () = tokio::time::sleep(interval) => {}
        }
    }
}

/// One look: logs each result about to expire and queues its warning (once per job).
/// Returns how many results are within the window.
pub async fn check_expiry(db: &Db, ops: &Ops, window: Duration) -> Result<usize, AlarmError> {
    let now = ops.clock().now_ms();
    let until = crate::time::after(now, window);
    let expiring = db.expiring_results(until).await?;
    for result in &expiring {
        let left = human_span(result.expires_at - now);
        tracing::error!(
            job_id = %result.job_id,
            spec = %result.spec_name,
            expires = %crate::time::rfc3339(result.expires_at),
            "a paid result is not archived and {left}: check storage and the network, or it is lost"
        );
        let id = result.job_id.clone();
        db.warn_expiry(&id, now).await?;
    }
    Ok(expiring.len())
}

/// Delivers outbox events to the configured sinks.
#[derive(Debug)]
pub struct Deliverer {
    db: Db,
    ops: Ops,
    config: NotifyConfig,
    client: reqwest::Client,
    /// Values no body may carry (the API key, the HTTP token), and variables the command must
    /// not inherit.
    secrets: Vec<Secret>,
    hidden_env: Vec<String>,
}

impl Deliverer {
    /// A deliverer for `config`; `secrets` are never sent, `hidden_env` never passed to the command.
    pub fn new(
        db: Db,
        ops: Ops,
        config: NotifyConfig,
        secrets: Vec<Secret>,
        hidden_env: Vec<String>,
    ) -> Result<Deliverer, AlarmError> {
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| AlarmError::Client(e.to_string()))?;
        Ok(Deliverer { db, ops, config, client, secrets, hidden_env })
    }

    /// Delivers due events until `cancel`; an event being sent when the stop comes is finished
    /// or, if the stop cuts it, sent again on the next start.
    pub async fn run(self, cancel: CancellationToken) -> Result<(), AlarmError> {
        loop {
            let sent = tokio::select! {
                () = cancel.cancelled() => return Ok(()),
                sent = self.deliver_due() => sent?,
            };
            if sent == 0 {
                tokio::select! {
                    () = cancel.cancelled() => return Ok(()),
                    () = tokio::time::sleep(OUTBOX_TICK) => {}
                }
            }
        }
    }

    /// Tries every due event once, oldest first; returns how many were tried.
    pub async fn deliver_due(&self) -> Result<usize, AlarmError> {
        let due = self.db.outbox_due(now_ms(), 64).await?;
        let mut tried = 0;
        // A failed event holds back the later ones of the same job and sink (order per job).
        let mut held: Vec<(String, Option<String>)> = Vec::new();
        for row in due {
            let key = (row.sink.clone(), row.job_id.clone());
            if held.contains(&key) {
                continue;
            }
            tried += 1;
            if !self.deliver(&row).await? {
                held.push(key);
            }
        }
        Ok(tried)
    }

    /// One attempt at `row`; records the outcome. Whether it was delivered.
    async fn deliver(&self, row: &OutboxRow) -> Result<bool, AlarmError> {
        let body = self.scrubbed(&row.body);
        let result = match row.sink.as_str() {
            "webhook" => self.post(&body).await,
            "command" => self.run_command(&body).await,
            other => Err(DeliveryError::Spawn(format!("sink `{other}` is not configured"))),
        };
        let id = row.id;
        match result {
            Ok(()) => {
                self.db.outbox_delivered(id, now_ms()).await?;
                self.ops.metrics().notification("delivered");
                tracing::info!(event = %row.event, job_id = row.job_id.as_deref().unwrap_or(""), sink = %row.sink, "notification delivered");
                Ok(true)
            }
            Err(e) => {
                let attempt = u32::try_from(row.attempts + 1).unwrap_or(u32::MAX);
                let text: String = self.scrubbed(&e.to_string()).chars().take(ERROR_CHARS).collect();
                let retry_at = (attempt < self.config.max_attempts).then(|| {
                    crate::time::after(
                        now_ms(),
                        crate::jobs::backoff(self.config.retry_base, self.config.retry_max, attempt),
                    )
                });
                let dead = retry_at.is_none();
                let stored = text.clone();
                self.db.outbox_failed(id, stored, retry_at).await?;
                if dead {
                    self.ops.metrics().notification("dead");
                    tracing::error!(event = %row.event, job_id = row.job_id.as_deref().unwrap_or(""), sink = %row.sink, code = e.code(), error = %text, attempts = attempt, "notification given up after the retry cap");
                } else {
                    self.ops.metrics().notification("retry");
                    tracing::warn!(event = %row.event, job_id = row.job_id.as_deref().unwrap_or(""), sink = %row.sink, code = e.code(), error = %text, attempt, "notification not delivered; will retry");
                }
                Ok(false)
            }
        }
    }

    /// `text` with every secret replaced: a body is built without them, this makes sure.
    fn scrubbed(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for s in &self.secrets {
            if !s.expose().is_empty() && out.contains(s.expose()) {
                out = out.replace(s.expose(), "[redacted]");
            }
        }
        out
    }

    async fn post(&self, body: &str) -> Result<(), DeliveryError> {
        let Some(url) = &self.config.webhook else { return Err(DeliveryError::Spawn("no webhook set".into())) };
        let sent = self
            .client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(reqwest::header::USER_AGENT, concat!("vidkeep/", env!("CARGO_PKG_VERSION")))
            .body(body.to_owned())
            .send()
            .await;
        match sent {
            Ok(answer) if answer.status().is_success() => Ok(()),
            Ok(answer) => Err(DeliveryError::Status(answer.status().as_u16())),
            // reqwest's error names the URL; keep only what went wrong (the URL is in the config).
            Err(e) if e.is_timeout() => Err(DeliveryError::Timeout(self.config.timeout)),
            Err(e) => Err(DeliveryError::Unreachable(e.without_url().to_string())),
        }
    }

    async fn run_command(&self, body: &str) -> Result<(), DeliveryError> {
        let Some((program, args)) = self.config.command.split_first() else {
            return Err(DeliveryError::Spawn("no command set".into()));
        };
        let mut command = tokio::process::Command::new(program);
        command.args(args).stdin(Stdio::piped()).stdout(Stdio::null()).stderr(Stdio::null()).kill_on_drop(true);
        for name in &self.hidden_env {
            command.env_remove(name);
        }
        let run = async {
            let mut child = command.spawn().map_err(|e| DeliveryError::Spawn(format!("{program}: {e}")))?;
            if let Some(mut stdin) = child.stdin.take() {
                // A program that exits without reading its input is judged by its exit status.
                let _ = stdin.write_all(body.as_bytes()).await;
                let _ = stdin.write_all(b"\n").await;
                drop(stdin);
            }
            let status = child.wait().await.map_err(|e| DeliveryError::Spawn(e.to_string()))?;
            if status.success() { Ok(()) } else { Err(DeliveryError::Exit(status.to_string())) }
        };
        // On timeout the future is dropped, and with it the child (killed on drop).
        tokio::time::timeout(self.config.timeout, run).await.unwrap_or(Err(DeliveryError::Timeout(self.config.timeout)))
    }
}
