//! Operations: what lets an admin run vidkeep for months. The systemd protocol ([`notify`]:
//! READY, WATCHDOG, STATUS, STOPPING), live config reload on SIGHUP ([`reload`]), Prometheus
//! metrics ([`metrics`]), the health endpoints ([`health`]) and the signals that stop or reload
//! the daemon ([`signals`]).
//!
//! [`Ops`] is the one handle the rest of the daemon holds: the engine counts events through it,
//! the supervisor marks the watcher alive or dead, and the HTTP routes read it.

pub mod health;
pub mod metrics;
pub mod notify;
pub mod reload;
pub mod signals;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use crate::catalog::{CatalogError, Db, OpsSnapshot};
use crate::money::Budget;
use crate::time::{Clock, now_ms};

pub use metrics::Metrics;

/// The platform counts as reachable for this long after it last answered.
pub const PLATFORM_FRESH: Duration = Duration::from_secs(180);

/// Shared operational state: metrics and the facts readiness is made of.
#[derive(Debug, Clone, Default)]
pub struct Ops {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    metrics: Metrics,
    db: std::sync::OnceLock<Db>,
    watcher_alive: AtomicBool,
    platform_seen_ms: AtomicI64,
    platform_problem: std::sync::Mutex<Option<String>>,
    intake_problem: std::sync::Mutex<Option<String>>,
    budget: std::sync::Mutex<Budget>,
    clock: std::sync::OnceLock<Clock>,
    expiry_warning_ms: AtomicI64,
}

impl Ops {
    /// Operational state reading the catalogue through `db`.
    pub fn new(db: Db) -> Ops {
        let ops = Ops::default();
        let _ = ops.inner.db.set(db);
        ops
    }

    /// Reads expiry times by `clock` instead of the system's (set once, at start).
    pub fn with_clock(self, clock: Clock) -> Ops {
        let _ = self.inner.clock.set(clock);
        self
    }

    /// The wall clock expiry decisions read.
    pub fn clock(&self) -> Clock {
        self.inner.clock.get().cloned().unwrap_or_default()
    }

    /// Counts results expiring within `window` as `expiring` (the status line, `/metrics`).
    pub fn set_expiry_warning(&self, window: Duration) {
        self.inner.expiry_warning_ms.store(i64::try_from(window.as_millis()).unwrap_or(i64::MAX), Ordering::Relaxed);
    }

    /// The metrics registry.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// The platform answered (any HTTP answer, even an error: it is reachable).
    pub fn platform_answered(&self) {
        self.inner.platform_seen_ms.store(now_ms(), Ordering::Relaxed);
        *self.inner.platform_problem.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = None;
    }

    /// A try to reach the platform failed with `why` (DNS, refused, TLS, a timeout): `/readyz`
    /// shows it until the platform answers.
    pub fn platform_unreachable(&self, why: String) {
        *self.inner.platform_problem.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(why);
    }

    /// Why the last try to reach the platform failed, if it did and nothing answered since.
    pub fn platform_problem(&self) -> Option<String> {
        self.inner.platform_problem.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// When the platform last answered (Unix ms), if it has.
    pub fn platform_seen_ms(&self) -> Option<i64> {
        Some(self.inner.platform_seen_ms.load(Ordering::Relaxed)).filter(|t| *t > 0)
    }

    /// Whether the platform answered within [`PLATFORM_FRESH`].
    pub fn platform_fresh(&self) -> bool {
        self.platform_seen_ms().is_some_and(|t| now_ms().saturating_sub(t) <= PLATFORM_FRESH.as_millis() as i64)
    }

    /// Marks the inbox watcher as running or stopped.
    pub fn set_watcher_alive(&self, alive: bool) {
        self.inner.watcher_alive.store(alive, Ordering::Relaxed);
    }

    /// Whether the inbox watcher is running.
    pub fn watcher_alive(&self) -> bool {
        self.inner.watcher_alive.load(Ordering::Relaxed)
    }

    /// Intake is paused for `problem` (e.g. "failed/ is not a folder"), or runs again (`None`).
    pub fn set_intake_problem(&self, problem: Option<String>) {
        self.inner.metrics.set_intake_paused(problem.is_some());
        *self.inner.intake_problem.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = problem;
    }

    /// Why intake is paused, if it is.
    pub fn intake_problem(&self) -> Option<String> {
        self.inner.intake_problem.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Whether the catalogue answers a query (the readiness check; cheaper than a snapshot).
    pub async fn catalog_answers(&self) -> Result<(), CatalogError> {
        let Some(db) = self.inner.db.get() else { return Ok(()) };
        db.answers().await
    }

    /// The budget `/metrics` reports against (the daemon sets it at start and on reload).
    pub fn set_budget(&self, budget: Budget) {
        *self.inner.budget.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = budget;
    }

    /// Counts from the catalogue now, spend since midnight UTC; this month's spend by model and
    /// what is left of the budgets, in the budget's zone.
    pub async fn snapshot(&self) -> Result<OpsSnapshot, CatalogError> {
        let Some(db) = self.inner.db.get() else { return Ok(OpsSnapshot::default()) };
        let now = self.clock().now_ms();
        let window = self.inner.expiry_warning_ms.load(Ordering::Relaxed);
        let midnight = now - now.rem_euclid(24 * 60 * 60 * 1000);
        let budget = self.inner.budget.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        let (mut snapshot, spent) = db.ops_figures(now, midnight, window, budget.clone()).await?;
        if let Some(limit) = budget.daily {
            snapshot.budget_remaining.insert("daily", limit - spent.day);
        }
        if let Some(limit) = budget.monthly {
            snapshot.budget_remaining.insert("monthly", limit - spent.month);
        }
        Ok(snapshot)
    }
}

/// "21 h", "35 min", "40 s", "expired 2 h ago": a span a person reads at a glance.
pub fn human_span(ms: i64) -> String {
    let (past, ms) = (ms < 0, ms.unsigned_abs());
    let s = ms / 1000;
    let text = match s {
        0..=119 => format!("{s} s"),
        120..=7199 => format!("{} min", s / 60),
        _ => format!("{} h", s / 3600),
    };
    if past { format!("expired {text} ago") } else { format!("expires in {text}") }
}

/// The one-line status systemd shows, e.g. "12 in flight, 40 queued, 3 waiting for a slot,
/// 2 archiving, oldest unarchived result expires in 21 h".
pub fn status_line(s: &OpsSnapshot, max_in_flight: usize, now_ms: i64) -> String {
    let in_flight = s.count("submitting") + s.count("submitted");
    let free = (max_in_flight as u64).saturating_sub(in_flight);
    let waiting = s.queued_due.saturating_sub(free);
    let mut line = String::new();
    if s.expiring > 0 {
        line.push_str(&format!("ALERT: {} paid result(s) about to expire unarchived (see the log); ", s.expiring));
    }
    line.push_str(&format!(
        "{in_flight} in flight, {} queued, {waiting} waiting for a slot, {} archiving",
        s.count("queued"),
        s.count("downloading")
    ));
    if let Some(at) = s.earliest_expiry_ms {
        line.push_str(&format!(", oldest unarchived result {}", human_span(at - now_ms)));
    }
    let over_budget = s.count("waiting_budget");
    if over_budget > 0 {
        line.push_str(&format!(", {over_budget} waiting_budget"));
        if let Some(reason) = &s.budget_wait {
            line.push_str(&format!(" ({reason})"));
        }
    }
    let uncertain = s.count("uncertain");
    if uncertain > 0 {
        line.push_str(&format!(", {uncertain} uncertain (vidkeep resolve)"));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_status_line_reads_well() {
        let mut s =
            OpsSnapshot { queued_due: 40, earliest_expiry_ms: Some(21 * 3_600_000 + 5_000), ..OpsSnapshot::default() };
        s.by_state.insert("submitted".to_owned(), 27);
        s.by_state.insert("queued".to_owned(), 40);
        s.by_state.insert("downloading".to_owned(), 2);
        assert_eq!(
            status_line(&s, 30, 0),
            "27 in flight, 40 queued, 37 waiting for a slot, 2 archiving, oldest unarchived result expires in 21 h"
        );
        assert_eq!(
            status_line(&OpsSnapshot::default(), 30, 0),
            "0 in flight, 0 queued, 0 waiting for a slot, 0 archiving"
        );
        s.by_state.insert("waiting_budget".to_owned(), 3);
        s.budget_wait = Some("daily budget 5.00 RMB: 5.00 spent, next day starts 00:00 Asia/Shanghai".to_owned());
        assert!(
            status_line(&s, 30, 0).ends_with(
                ", 3 waiting_budget (daily budget 5.00 RMB: 5.00 spent, next day starts 00:00 Asia/Shanghai)"
            ),
            "{}",
            status_line(&s, 30, 0)
        );
        assert_eq!(human_span(-90_000), "expired 90 s ago");
        let alarmed = OpsSnapshot { expiring: 2, ..OpsSnapshot::default() };
        assert!(
            status_line(&alarmed, 30, 0).starts_with("ALERT: 2 paid result(s) about to expire unarchived"),
            "{}",
            status_line(&alarmed, 30, 0)
        );
        assert_eq!(human_span(35 * 60_000), "expires in 35 min");
    }
}
