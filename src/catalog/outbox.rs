//! The notification outbox: events written in the same transaction as the state change that
//! causes them, one row per configured sink, and the queries the notifier delivers them with.
//!
//! Because the row commits with the change, a crash can neither lose an event (the change is
//! there, so is its row) nor invent one (no change, no row). Delivery is at least once: a crash
//! between a sink's acceptance and [`Catalog::outbox_delivered`] sends that event again, with the
//! same `event_id`, which a receiver may use to drop the repeat.

use serde_json::{Value, json};

use super::conn::{Begin, Row, Sql, args};
use super::jobs::{COLUMNS, read_job};
use super::{Catalog, CatalogError, JobRecord};
use crate::domain::JobState;
use crate::money::Fen;
use crate::time::rfc3339;

/// Where events go and what links they carry; set by the daemon, empty (no events) otherwise.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NotifySetup {
    /// The configured sinks: `webhook`, `command`.
    pub sinks: Vec<&'static str>,
    /// The UI's public base URL (`[http] public_url`), for links to a job's page.
    pub ui_base: Option<String>,
}

/// One event waiting for (or done with) delivery to one sink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRow {
    /// Row id; delivery follows it, so events of one job arrive in order.
    pub id: i64,
    /// `webhook` or `command`.
    pub sink: String,
    /// The event kind (`archived`, `failed`, `expiry_warning`, ...).
    pub event: String,
    /// The job, if the event is about one.
    pub job_id: Option<String>,
    /// The event as JSON text, exactly as delivered.
    pub body: String,
    /// Delivery attempts so far.
    pub attempts: i64,
}

/// Counts for `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutboxCounts {
    /// Waiting for delivery.
    pub pending: u64,
    /// Given up after the retry cap.
    pub dead: u64,
}

/// The event kind a transition into `to` causes, if any.
pub(super) fn event_for(to: JobState) -> Option<&'static str> {
    match to {
        JobState::Archived => Some("archived"),
        JobState::ArchivedWithWarnings => Some("archived_with_warnings"),
        JobState::Failed => Some("failed"),
        JobState::Uncertain => Some("uncertain"),
        JobState::WaitingBudget => Some("waiting_budget"),
        _ => None,
    }
}

/// The event body for `job` (read inside the caller's transaction, so it shows the new state).
fn body(setup: &NotifySetup, event: &str, job: &JobRecord, now: i64, extra: Value) -> Value {
    let cost = job.charged_fen + job.possibly_charged_fen;
    let mut body = json!({
        "event_id": uuid::Uuid::now_v7().to_string(),
        "event": event,
        "at": rfc3339(now),
        "job_id": job.id,
        "spec": job.spec_name,
        "name": job.name,
        "project": job.project,
        "state": job.state.as_str(),
        "model": job.model,
        "task_id": job.task_id,
        "cost_fen": cost,
        "cost": format!("{} RMB", Fen(cost)),
        "charged_fen": job.charged_fen,
        "possibly_charged_fen": job.possibly_charged_fen,
        "error_code": job.error.as_ref().map(|e| e.code.clone()),
        "error_message": job.error.as_ref().map(|e| e.message.clone()),
        "expires_at": job.expires_at.map(rfc3339),
        "url": setup.ui_base.as_ref().map(|b| format!("{}/jobs/{}", b.trim_end_matches('/'), job.id)),
    });
    if let (Value::Object(map), Value::Object(more)) = (&mut body, extra) {
        map.extend(more);
    }
    body
}

/// Writes `event` about `job_id` for every sink, inside `tx`. With `dedupe`, a sink that already
/// has an event with that key gets no second one. Returns whether anything was written.
pub(super) fn enqueue_job_event(
    tx: &impl Sql,
    setup: &NotifySetup,
    event: &str,
    job_id: &str,
    dedupe: Option<&str>,
    extra: Value,
    now: i64,
) -> Result<bool, CatalogError> {
    if setup.sinks.is_empty() {
        return Ok(false);
    }
    let job =
        tx.one("read job for event", &format!("SELECT {COLUMNS} FROM jobs WHERE id = ?1"), args![job_id], read_job)?;
    let text = body(setup, event, &job, now, extra).to_string();
    let mut wrote = false;
    for sink in &setup.sinks {
        let n = tx.execute(
            "write outbox",
            "INSERT INTO outbox (sink, event, job_id, body, dedupe, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT DO NOTHING",
            args![sink, event, job_id, text, dedupe, now],
        )?;
        wrote |= n > 0;
    }
    Ok(wrote)
}

/// A job result whose links expire within the warning window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expiring {
    /// The job.
    pub job_id: String,
    /// Its spec file as dropped.
    pub spec_name: String,
    /// When its links expire (unix ms).
    pub expires_at: i64,
}

impl Catalog {
    /// Sets where events go. With no sink, transitions write no outbox row.
    pub fn set_notify(&mut self, setup: NotifySetup) {
        self.notify = setup;
    }

    /// Paid results not yet archived whose links expire at or before `until`, soonest first.
    pub fn expiring_results(&self, until: i64) -> Result<Vec<Expiring>, CatalogError> {
        self.conn.rows(
            "expiring results",
            "SELECT id, spec_name, expires_at FROM jobs WHERE state = 'downloading' AND expires_at <= ?1 \
             AND (CAST(?2 AS TEXT) IS NULL OR owner = ?2) ORDER BY expires_at, created_at",
            args![until, self.daemon],
            |r| Ok(Expiring { job_id: r.get(0)?, spec_name: r.get(1)?, expires_at: r.get(2)? }),
        )
    }

    /// Queues the expiry warning for `job_id` (once per job and sink); whether one was queued.
    pub fn warn_expiry(&mut self, job_id: &str, now: i64) -> Result<bool, CatalogError> {
        let tx = self.conn.begin("begin expiry warning", Begin::Deferred)?;
        let still: Option<String> = tx.first(
            "read state",
            "SELECT state FROM jobs WHERE id = ?1 AND state = 'downloading'",
            args![job_id],
            |r| r.get(0),
        )?;
        if still.is_none() {
            return Ok(false);
        }
        let key = format!("expiry-warning:{job_id}");
        let wrote = enqueue_job_event(&tx, &self.notify, "expiry_warning", job_id, Some(&key), json!({}), now)?;
        tx.commit("commit expiry warning")?;
        Ok(wrote)
    }

    /// Up to `limit` events due for delivery at `now`, oldest first; an event waits while an
    /// older one of the same job and sink is still pending, so each job's events arrive in order.
    pub fn outbox_due(&self, now: i64, limit: usize) -> Result<Vec<OutboxRow>, CatalogError> {
        self.conn.rows(
            "read outbox",
            "SELECT o.id, o.sink, o.event, o.job_id, o.body, o.attempts FROM outbox o \
             WHERE o.status = 'pending' AND o.next_attempt_at <= ?1 AND NOT EXISTS ( \
               SELECT 1 FROM outbox p WHERE p.status = 'pending' AND p.sink = o.sink \
               AND p.job_id IS NOT DISTINCT FROM o.job_id AND p.id < o.id) \
             ORDER BY o.id LIMIT ?2",
            args![now, limit],
            read_outbox,
        )
    }

    /// Every outbox row for `job_id`, in order (for `show` and tests).
    pub fn outbox_of(&self, job_id: &str) -> Result<Vec<(OutboxRow, String)>, CatalogError> {
        self.conn.rows(
            "read outbox",
            "SELECT id, sink, event, job_id, body, attempts, status FROM outbox WHERE job_id = ?1 ORDER BY id",
            args![job_id],
            |r| Ok((read_outbox(r)?, r.get(6)?)),
        )
    }

    /// The sink accepted event `id`.
    pub fn outbox_delivered(&mut self, id: i64, now: i64) -> Result<(), CatalogError> {
        self.conn.execute(
            "mark delivered",
            "UPDATE outbox SET status = 'delivered', attempts = attempts + 1, delivered_at = ?2, last_error = NULL \
             WHERE id = ?1",
            args![id, now],
        )?;
        Ok(())
    }

    /// A delivery of event `id` failed with `error`: try again at `retry_at`, or give it up
    /// (`None`: the row becomes `dead`).
    pub fn outbox_failed(&mut self, id: i64, error: &str, retry_at: Option<i64>) -> Result<(), CatalogError> {
        let (status, next) = match retry_at {
            Some(at) => ("pending", at),
            None => ("dead", 0),
        };
        self.conn.execute(
            "mark delivery failed",
            "UPDATE outbox SET status = ?2, attempts = attempts + 1, next_attempt_at = ?3, last_error = ?4 \
             WHERE id = ?1",
            args![id, status, next, error],
        )?;
        Ok(())
    }

    /// Pending and dead events.
    pub fn outbox_counts(&self) -> Result<OutboxCounts, CatalogError> {
        self.conn.one(
            "count outbox",
            "SELECT COUNT(*) FILTER (WHERE status = 'pending'), COUNT(*) FILTER (WHERE status = 'dead') FROM outbox",
            args![],
            |r| Ok(OutboxCounts { pending: r.get(0)?, dead: r.get(1)? }),
        )
    }
}

/// An outbox row as selected by `id, sink, event, job_id, body, attempts`.
fn read_outbox(r: &Row<'_>) -> Result<OutboxRow, CatalogError> {
    Ok(OutboxRow {
        id: r.get(0)?,
        sink: r.get(1)?,
        event: r.get(2)?,
        job_id: r.get(3)?,
        body: r.get(4)?,
        attempts: r.get(5)?,
    })
}
