//! [`Db`], the daemon's handle on the catalogue: a small interface of named operations, each one
//! call (and where it writes, one transaction) on the blocking pool. The engine, intake, the
//! downloader, the alarms and the operations code use only these; none of them is handed the
//! connection, so what they do between two operations (parse a spec, read an image, move a file,
//! call the platform) never runs under the catalogue lock. A second backend implements the same
//! operations.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use super::{
    AccountSignal, Asset, BudgetCheck, Catalog, CatalogError, CheckResult, CheckSelection, Expiring, Heartbeat,
    InFlight, Input, JobRecord, Money, OpsSnapshot, OutboxCounts, OutboxRow, Recorded, Rejection, Restorable, Restored,
    SpecJobs,
};
use crate::domain::{Change, JobError, JobState, SpecPlace};
use crate::money::{Budget, Prices, Spent};

/// A job whose spec file is ready to settle in `done/` or `failed/`, with what its report needs.
pub type Settlement = (JobRecord, Vec<Asset>, Money);

/// A shareable handle that runs catalogue operations on the blocking pool, one at a time.
/// With a reader ([`Db::with_reader`]), the reads the engine makes on every turn of its loop go
/// to a second, read-only connection: SQLite's WAL lets it read the last commit while a write
/// waits for its fsync, so deciding what to poll, download or submit next never queues behind
/// another job's commit.
#[derive(Debug, Clone)]
pub struct Db {
    inner: Arc<Mutex<Catalog>>,
    reader: Option<Arc<Mutex<Catalog>>>,
    shared: bool,
}

impl Db {
    /// Wraps an open catalogue.
    pub fn new(catalog: Catalog) -> Db {
        let shared = catalog.is_postgres();
        Db { inner: Arc::new(Mutex::new(catalog)), reader: None, shared }
    }

    /// The same handle, reading the engine's lists through `reader`, a read-only connection to
    /// the same catalogue ([`Catalog::open_read_only`]). Each read sees every commit made before
    /// it began, so a step that ended (and committed) is seen by the next turn.
    pub fn with_reader(mut self, reader: Catalog) -> Db {
        self.reader = Some(Arc::new(Mutex::new(reader)));
        self
    }

    /// Runs the read `f` on the reader if there is one, else like [`Db::call`].
    async fn read<R, F>(&self, f: F) -> Result<R, CatalogError>
    where
        R: Send + 'static,
        F: FnOnce(&Catalog) -> Result<R, CatalogError> + Send + 'static,
    {
        let Some(reader) = self.reader.as_ref().map(Arc::clone) else { return self.call(move |c| f(c)).await };
        tokio::task::spawn_blocking(move || {
            let guard = reader.lock().unwrap_or_else(|e| e.into_inner());
            f(&guard)
        })
        .await
        .map_err(|e| CatalogError::Join(e.to_string()))?
    }

    /// Runs `f` with the catalogue on the blocking pool. Private: callers name what they do.
    async fn call<R, F>(&self, f: F) -> Result<R, CatalogError>
    where
        R: Send + 'static,
        F: FnOnce(&mut Catalog) -> Result<R, CatalogError> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            let mut guard = inner.lock().unwrap_or_else(|e| e.into_inner());
            f(&mut guard)
        })
        .await
        .map_err(|e| CatalogError::Join(e.to_string()))?
    }

    /// Whether several daemons may share this catalogue (PostgreSQL): then the engine heeds the
    /// account signals others raise, and keeps a lease by heartbeat.
    pub fn is_shared(&self) -> bool {
        self.shared
    }

    /// Makes this handle the daemon `id`'s ([`Catalog::set_daemon`]), on both connections.
    pub async fn set_daemon(&self, id: crate::domain::DaemonId) -> Result<(), CatalogError> {
        let for_reader = id.clone();
        self.call(move |c| {
            c.set_daemon(&id);
            Ok(())
        })
        .await?;
        if let Some(reader) = self.reader.as_ref().map(Arc::clone) {
            tokio::task::spawn_blocking(move || {
                reader.lock().unwrap_or_else(|e| e.into_inner()).set_daemon(&for_reader)
            })
            .await
            .map_err(|e| CatalogError::Join(e.to_string()))?;
        }
        Ok(())
    }

    /// Makes every unfinished job this daemon's ([`Catalog::adopt_all`]): for SQLite, one daemon's.
    pub async fn adopt_all(&self) -> Result<usize, CatalogError> {
        self.call(|c| c.adopt_all()).await
    }

    /// Renews this daemon's lease and takes over from lapsed ones ([`Catalog::heartbeat`]).
    pub async fn heartbeat(&self, host: String, pid: u32, now: i64, lease_ms: i64) -> Result<Heartbeat, CatalogError> {
        self.call(move |c| c.heartbeat(&host, pid, now, lease_ms)).await
    }

    /// Daemons whose lease ran out before `before`.
    pub async fn lapsed_daemons(&self, before: i64) -> Result<Vec<crate::domain::DaemonId>, CatalogError> {
        self.call(move |c| c.lapsed_daemons(before)).await
    }

    /// Tells every daemon on the account what the platform said ([`Catalog::raise_signal`]).
    pub async fn raise_signal(&self, signal: AccountSignal) -> Result<(), CatalogError> {
        self.call(move |c| c.raise_signal(&signal)).await
    }

    /// The account signals in force at `now`.
    pub async fn signals(&self, now: i64) -> Result<Vec<AccountSignal>, CatalogError> {
        self.read(move |c| c.signals(now)).await
    }

    // Intake.

    /// Takes specs: records each spec's jobs in one transaction (see [`Catalog::record_specs`]);
    /// for a spec already paid for, also returns the assets of the job that paid.
    pub async fn take_specs(&self, specs: Vec<SpecJobs>) -> Result<Vec<(Recorded, Vec<Asset>)>, CatalogError> {
        self.call(move |c| {
            let recorded = c.record_specs(&specs)?;
            recorded
                .into_iter()
                .map(|r| {
                    let assets = match &r {
                        Recorded::AlreadyPaid(existing) => c.assets(&existing.id)?,
                        Recorded::New => Vec::new(),
                    };
                    Ok((r, assets))
                })
                .collect()
        })
        .await
    }

    /// Records a spec that was refused, so the catalogue can list it.
    pub async fn record_rejection(&self, rejection: Rejection) -> Result<(), CatalogError> {
        self.call(move |c| c.record_rejection(&rejection)).await
    }

    /// The file names of the specs in `processing/` that belong to a job.
    pub async fn spec_files_in_processing(&self) -> Result<HashSet<String>, CatalogError> {
        self.call(|c| c.spec_files_in_processing()).await
    }

    // Submitting.

    /// Queued jobs whose retry time has come, oldest first, at most `limit`.
    pub async fn due_queued(&self, now: i64, limit: usize) -> Result<Vec<JobRecord>, CatalogError> {
        self.read(move |c| c.due_queued(now, limit)).await
    }

    /// Jobs submitting or submitted, by model: what is in flight on the account.
    pub async fn in_flight_by_model(&self) -> Result<BTreeMap<String, usize>, CatalogError> {
        self.read(|c| c.in_flight_by_model()).await
    }

    /// Begins a submission: checks the budgets and, in the same transaction, either moves the
    /// job to `submitting` (recorded before the POST) or to `waiting_budget`.
    pub async fn begin_submission(
        &self,
        job_id: String,
        request_id: String,
        prices: Prices,
        budget: Budget,
        limits: InFlight,
        now: i64,
    ) -> Result<BudgetCheck, CatalogError> {
        self.call(move |c| c.submit_within_budget(&job_id, &request_id, &prices, &budget, limits, now)).await
    }

    /// Sends jobs that wait out an account-wide pause (`is_account` tells which error codes are
    /// account-wide) back to the queue now. Returns how many.
    pub async fn release_account_waits(
        &self,
        now: i64,
        is_account: impl Fn(&str) -> bool + Send + 'static,
    ) -> Result<usize, CatalogError> {
        self.call(move |c| c.release_account_waits(now, is_account)).await
    }

    // Any state.

    /// Applies `change` to a job still in `from`, as one compare-and-set transaction.
    pub async fn transition(&self, job_id: &str, from: JobState, change: Change) -> Result<(), CatalogError> {
        let job_id = job_id.to_owned();
        self.call(move |c| c.transition(&job_id, from, &change)).await
    }

    /// Records the latest error of a job without changing its state (a retry will follow).
    pub async fn note_error(&self, job_id: &str, error: JobError) -> Result<(), CatalogError> {
        let job_id = job_id.to_owned();
        self.call(move |c| c.note_error(&job_id, &error)).await
    }

    /// Every job in `state` (only used for states that are not final, which stay few).
    pub async fn jobs_in(&self, state: JobState) -> Result<Vec<JobRecord>, CatalogError> {
        self.read(move |c| c.jobs_in(state)).await
    }

    // Archiving.

    /// Jobs downloading, the soonest to expire first.
    pub async fn downloads_by_expiry(&self, limit: usize) -> Result<Vec<JobRecord>, CatalogError> {
        self.read(move |c| c.downloads_by_expiry(limit)).await
    }

    /// The assets recorded for a job.
    pub async fn assets(&self, job_id: &str) -> Result<Vec<Asset>, CatalogError> {
        let job_id = job_id.to_owned();
        self.call(move |c| c.assets(&job_id)).await
    }

    /// Records one stored asset (after its object is in storage).
    pub async fn record_asset(&self, asset: Asset) -> Result<(), CatalogError> {
        self.call(move |c| c.record_asset(&asset)).await
    }

    /// What a job's provenance is made of: the request body it was submitted with and the
    /// SHA-256 of its spec file.
    pub async fn provenance_of(
        &self,
        job_id: &str,
    ) -> Result<(serde_json::Map<String, serde_json::Value>, String), CatalogError> {
        let job_id = job_id.to_owned();
        self.call(move |c| Ok((c.request_body(&job_id)?, c.spec_sha256(&job_id)?))).await
    }

    /// Records the input images a job's request carried, as stored.
    pub async fn record_inputs(&self, job_id: &str, inputs: Vec<Input>) -> Result<(), CatalogError> {
        let job_id = job_id.to_owned();
        self.call(move |c| c.record_inputs(&job_id, &inputs)).await
    }

    /// Records fresh result URLs for a job still downloading. Returns whether it still was.
    pub async fn refresh_result(
        &self,
        job_id: &str,
        video_url: String,
        cover_url: Option<String>,
        result_json: String,
        expires_at: Option<i64>,
    ) -> Result<bool, CatalogError> {
        let job_id = job_id.to_owned();
        self.call(move |c| c.refresh_result(&job_id, &video_url, cover_url.as_deref(), &result_json, expires_at)).await
    }

    // Settling spec files.

    /// Jobs that ended and whose spec is not yet in `done/` or `failed/`, with their assets and
    /// money, read in one call.
    pub async fn settlements(&self) -> Result<Vec<Settlement>, CatalogError> {
        self.read(|c| {
            c.specs_to_settle()?
                .into_iter()
                .map(|job| {
                    let assets = c.assets(&job.id)?;
                    let money = c.job_money(&job.id)?;
                    Ok((job, assets, money))
                })
                .collect()
        })
        .await
    }

    /// Records where spec files now are (after they were moved), as `(job id, place, file)`.
    pub async fn set_spec_places(&self, places: Vec<(String, SpecPlace, String)>) -> Result<(), CatalogError> {
        self.call(move |c| places.iter().try_for_each(|(id, place, file)| c.set_spec_place(id, *place, file))).await
    }

    /// Running jobs whose spec is still in the inbox root (a stop came between the record and
    /// the move), as `(job id, spec file)`.
    pub async fn running_specs_in_inbox(&self) -> Result<Vec<(String, String)>, CatalogError> {
        self.call(|c| c.running_specs_in_inbox()).await
    }

    // Checking stored files.

    /// The assets a check pass picks.
    pub async fn assets_to_check(&self, selection: CheckSelection) -> Result<Vec<Asset>, CatalogError> {
        self.call(move |c| c.assets_to_check(&selection)).await
    }

    /// Records one check of an asset.
    pub async fn record_check(
        &self,
        asset: Asset,
        result: CheckResult,
        detail: Option<String>,
    ) -> Result<(), CatalogError> {
        self.call(move |c| c.record_check(&asset, result, detail.as_deref())).await
    }

    // Alarms and notifications.

    /// Results still downloading whose URLs expire before `until`.
    pub async fn expiring_results(&self, until: i64) -> Result<Vec<Expiring>, CatalogError> {
        self.call(move |c| c.expiring_results(until)).await
    }

    /// Queues the expiry warning of a job still downloading, once. Returns whether it did.
    pub async fn warn_expiry(&self, job_id: &str, now: i64) -> Result<bool, CatalogError> {
        let job_id = job_id.to_owned();
        self.call(move |c| c.warn_expiry(&job_id, now)).await
    }

    /// Notification events due for delivery, at most `limit`.
    pub async fn outbox_due(&self, now: i64, limit: usize) -> Result<Vec<OutboxRow>, CatalogError> {
        self.call(move |c| c.outbox_due(now, limit)).await
    }

    /// Marks an event delivered.
    pub async fn outbox_delivered(&self, id: i64, now: i64) -> Result<(), CatalogError> {
        self.call(move |c| c.outbox_delivered(id, now)).await
    }

    /// Records a failed delivery: to retry at `retry_at`, or dead when `None`.
    pub async fn outbox_failed(&self, id: i64, error: String, retry_at: Option<i64>) -> Result<(), CatalogError> {
        self.call(move |c| c.outbox_failed(id, &error, retry_at)).await
    }

    // Operations.

    /// Whether the catalogue answers (reads its schema version).
    pub async fn answers(&self) -> Result<(), CatalogError> {
        self.call(|c| c.schema_version().map(drop)).await
    }

    /// The operators' figures: job counts and times (since `midnight`), results expiring within
    /// `expiry_window_ms` (0: not counted), the outbox, and spend against `budget`.
    pub async fn ops_figures(
        &self,
        now: i64,
        midnight: i64,
        expiry_window_ms: i64,
        budget: Budget,
    ) -> Result<(OpsSnapshot, Spent), CatalogError> {
        self.call(move |c| {
            let mut snapshot = c.ops_snapshot(now, midnight)?;
            if expiry_window_ms > 0 {
                snapshot.expiring = c.expiring_results(now.saturating_add(expiry_window_ms))?.len() as u64;
            }
            snapshot.outbox = c.outbox_counts()?;
            let p = budget.periods(now);
            snapshot.spend_month_by_model = c.spend_by_model(p.month_start, p.next_month)?;
            let spent = c.spent(&budget, None, now)?;
            Ok((snapshot, spent))
        })
        .await
    }

    /// Pending and dead notification events.
    pub async fn outbox_counts(&self) -> Result<OutboxCounts, CatalogError> {
        self.call(|c| c.outbox_counts()).await
    }

    // Disaster recovery.

    /// Restores jobs from their sidecars, in one transaction.
    pub async fn restore(&self, sidecars: Vec<Restorable>) -> Result<Vec<Restored>, CatalogError> {
        self.call(move |c| c.restore(&sidecars)).await
    }

    /// Writes a consistent copy of the catalogue to `dest`, atomically.
    pub async fn backup_to(&self, dest: PathBuf) -> Result<(), CatalogError> {
        self.call(move |c| c.backup_to(&dest)).await
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_engines_reads_go_on_while_a_write_holds_the_catalogue_and_see_its_commit() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c.sqlite");
        let catalog = Catalog::open(&path).expect("open");
        let db = Db::new(catalog).with_reader(Catalog::open_read_only(&path).expect("reader"));
        let fox = r#"{"model":"viduq1-text","prompt":"a fox"}"#;
        db.take_specs(vec![SpecJobs::for_test("1", "fox.json", fox)]).await.expect("take");
        // The reader sees the commit made through the writer.
        let queued = db.jobs_in(JobState::Queued).await.expect("read");
        assert_eq!(queued.iter().map(|j| j.id.as_str()).collect::<Vec<_>>(), ["1"]);

        // A write in progress holds the writer (here: its lock, as a commit waiting for its
        // fsync does). The engine's reads do not wait for it.
        let writer = Arc::clone(&db.inner);
        let (locked, is_locked) = std::sync::mpsc::channel();
        let (release, released) = std::sync::mpsc::channel::<()>();
        let holder = std::thread::spawn(move || {
            let _held = writer.lock().unwrap_or_else(|e| e.into_inner());
            locked.send(()).expect("test waits");
            let _ = released.recv();
        });
        is_locked.recv().expect("the writer is held");
        let reads = async {
            let queued = db.due_queued(i64::MAX, 10).await.expect("due");
            let in_flight = db.in_flight_by_model().await.expect("in flight");
            let downloading = db.downloads_by_expiry(usize::MAX).await.expect("downloads");
            let settle = db.settlements().await.expect("settlements");
            (queued.len(), in_flight.len(), downloading.len(), settle.len())
        };
        let answered = tokio::time::timeout(Duration::from_secs(20), reads).await;
        release.send(()).expect("holder waits");
        holder.join().expect("holder");
        assert_eq!(answered.expect("the reads did not wait for the writer"), (1, 0, 0, 0));
    }
}
