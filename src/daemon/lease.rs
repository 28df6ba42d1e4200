//! The daemon's place among others on a shared catalogue (issue 12): at start it claims its jobs
//! (SQLite: every unfinished one, the catalogue is its alone; PostgreSQL: its lease, and the work of
//! daemons whose lease ran out), then keeps its lease alive by heartbeat. A daemon that cannot
//! renew its lease before it runs out stops: another may be taking its jobs over, and two
//! daemons working one job would download it twice.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::DaemonError;
use crate::catalog::Db;
use crate::domain::DaemonId;
use crate::telemetry::Escaped;

/// How often a lease of `lease` (`[catalog] lease`) is renewed: four tries before it runs out.
pub(super) fn heartbeat_every(lease: Duration) -> Duration {
    lease / 4
}

/// A lapsed daemon's staging area is cleaned once its lease has been gone this long: nothing of
/// it can still be uploading.
pub(super) const STAGING_GRACE: Duration = Duration::from_secs(3600);

/// Claims this daemon's work at start; returns the daemons whose staging areas may be cleaned.
pub(super) async fn claim(db: &Db, id: &DaemonId, lease: Duration) -> Result<Vec<DaemonId>, DaemonError> {
    db.set_daemon(id.clone()).await?;
    if !db.is_shared() {
        let adopted = db.adopt_all().await?;
        if adopted > 0 {
            tracing::info!(jobs = adopted, daemon = %id, "took on the unfinished jobs recorded under another daemon id");
        }
        return Ok(Vec::new());
    }
    beat(db, lease).await?;
    let before = crate::time::now_ms().saturating_sub(millis(STAGING_GRACE));
    Ok(db.lapsed_daemons(before).await?.into_iter().filter(|d| d != id).collect())
}

/// Renews the lease until `cancel`; fails (stopping the daemon) when it could not be renewed
/// before it ran out.
pub(super) async fn keep(
    db: Db,
    lease: Duration,
    every: Duration,
    cancel: CancellationToken,
) -> Result<(), DaemonError> {
    let mut held_until = crate::time::now_ms().saturating_add(millis(lease));
    loop {
        tokio::select! {
            () = cancel.cancelled() => return Ok(()),
            () = tokio::time::sleep(every) => {}
        }
        match beat(&db, lease).await {
            Ok(until) => held_until = until,
            Err(e) if crate::time::now_ms() < held_until => {
                tracing::warn!(error = %Escaped(&e), "could not renew this daemon's lease on the catalogue; trying again");
            }
            Err(e) => {
                tracing::error!(error = %Escaped(&e), "this daemon's lease on the catalogue ran out: stopping, so that no job is worked twice");
                return Err(e);
            }
        }
    }
}

/// One heartbeat; returns the new end of the lease.
async fn beat(db: &Db, lease: Duration) -> Result<i64, DaemonError> {
    let host = rustix::system::uname().nodename().to_string_lossy().into_owned();
    let beat = db.heartbeat(host, std::process::id(), crate::time::now_ms(), millis(lease)).await?;
    if !beat.took_over_from.is_empty() {
        tracing::warn!(
            from = %beat.took_over_from.join(", "),
            taken = beat.taken.len(),
            uncertain = beat.made_uncertain.len(),
            "took over the paid jobs of daemons whose lease ran out"
        );
    }
    for id in &beat.made_uncertain {
        tracing::warn!(job_id = %id, "a lapsed daemon left this job mid-submission: uncertain, never resubmitted by itself");
    }
    Ok(beat.lease_until)
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}
