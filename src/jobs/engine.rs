//! The engine: one loop that reads due work from the catalogue and runs it as tasks.
//!
//! The catalogue is the truth; the engine keeps only timing hints in memory (when to poll a task
//! next, when to retry a download). Each step writes its state change before its side effect: a
//! job becomes `submitting` (with a pending ledger row) *before* its POST task is spawned, so the
//! in-flight count read from the catalogue can never be below what the platform holds, and a
//! crash mid-POST is found as `submitting` and made `uncertain` rather than sent again.
//!
//! Errors from the platform or the network go to the job; an error writing the catalogue stops
//! the engine, because nothing may happen that cannot be recorded.

use crate::telemetry::Escaped;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;
use tokio::time::{Instant, sleep_until};
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use super::download::fetch;
use super::schedule::{self, List};
use super::task::{poll, submit};
use super::{Change, JobError, JobState, Limiter, LiveSettings};
use crate::api::ApiClient;
use crate::archive::Archiver;
use crate::catalog::{AccountSignal, BudgetCheck, CatalogError, Db, InFlight, JobRecord};
use crate::config::UncertainPolicy;
use crate::domain::Inbox;
use crate::money::{Budget, Prices};
use crate::ops::Ops;
use crate::report;
use crate::time::now_ms;

/// Polls running at once.
const MAX_POLLS: usize = 16;

/// Timing and concurrency settings.
#[derive(Debug, Clone)]
pub struct EngineSettings {
    /// How often a task in flight is polled.
    pub poll_interval: Duration,
    /// Downloads at once.
    pub download_concurrency: usize,
    /// First retry delay.
    pub retry_base: Duration,
    /// Longest retry delay.
    pub retry_max: Duration,
    /// Submission pause after a balance or auth error.
    pub account_pause: Duration,
    /// How long running steps may take to finish after a stop is asked for.
    pub shutdown_grace: Duration,
    /// What to do with `uncertain` jobs without a person.
    pub uncertain: UncertainPolicy,
    /// A task still unfinished this long after it was accepted goes to `uncertain`.
    pub task_deadline: Duration,
    /// Price of one submission per model.
    pub prices: Prices,
    /// Spending limits, checked in the transaction that starts each submission.
    pub budget: Budget,
}

/// Errors that stop the engine.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The catalogue could not be written or read.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
}

/// What a finished step tells the loop.
#[derive(Debug)]
pub(super) enum Next {
    /// Nothing to remember.
    Idle,
    /// Poll this task again at the given time.
    PollAt(Instant),
    /// Retry this download at the given time.
    DownloadAt(Instant, bool),
    /// The platform's concurrency limit was hit for a model.
    RateLimited(String),
    /// Stop submitting for the account for a while.
    /// Pause submissions: the error code and the reason in words.
    Pause(String, String),
}

/// Which kind of step finished.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Submit,
    Poll,
    Download,
}

struct Done {
    job_id: String,
    kind: Kind,
    next: Result<Next, EngineError>,
}

/// Shared parts every step needs.
#[derive(Clone)]
pub(super) struct Ctx {
    pub(super) db: Db,
    pub(super) api: ApiClient,
    pub(super) archiver: Archiver,
    pub(super) settings: Arc<EngineSettings>,
    pub(super) ops: Ops,
}

/// The engine and its in-memory timing state.
pub struct Engine {
    ctx: Ctx,
    inbox: Inbox,
    limiter: Limiter,
    wake: Arc<Notify>,
    next_poll: HashMap<String, Instant>,
    download_retry: HashMap<String, (Instant, u32, u32)>,
    busy: HashSet<String>,
    polls: usize,
    downloads: usize,
    paused_until: Option<Instant>,
    tasks: JoinSet<Done>,
    live: Option<watch::Receiver<LiveSettings>>,
    /// Inboxes used before a reload changed `watch.dir`: specs taken from them settle there.
    past_inboxes: Vec<Inbox>,
    /// Jobs whose spec could not be settled, so the failure is logged once.
    settle_warned: HashSet<String>,
    /// The reason in each waiting job's report in the inbox, as last written.
    waiting_reported: HashMap<String, String>,
    /// Whether the submitted jobs must be read again (see [`schedule`]).
    to_poll: List,
    /// Whether the downloading jobs must be read again.
    to_download: List,
}

impl Engine {
    /// An engine over `db`, talking to `api`, archiving with `archiver`.
    pub fn new(
        db: Db,
        api: ApiClient,
        archiver: Archiver,
        inbox: Inbox,
        limiter: Limiter,
        settings: EngineSettings,
        wake: Arc<Notify>,
    ) -> Engine {
        Engine {
            ctx: Ctx { db, api, archiver, settings: Arc::new(settings), ops: Ops::default() },
            inbox,
            limiter,
            wake,
            next_poll: HashMap::new(),
            download_retry: HashMap::new(),
            busy: HashSet::new(),
            polls: 0,
            downloads: 0,
            paused_until: None,
            tasks: JoinSet::new(),
            live: None,
            past_inboxes: Vec::new(),
            settle_warned: HashSet::new(),
            waiting_reported: HashMap::new(),
            to_poll: List::new(),
            to_download: List::new(),
        }
    }

    /// Counts events into `ops` and follows reloaded settings from `live`.
    pub fn with_ops(mut self, ops: Ops, live: watch::Receiver<LiveSettings>) -> Engine {
        self.ctx.ops = ops;
        self.live = Some(live);
        self
    }

    /// Applies reloaded settings, if any arrived; steps already running keep the old ones.
    fn follow_reload(&mut self) {
        let Some(live) = self.live.as_mut().filter(|rx| rx.has_changed().unwrap_or(false)) else { return };
        let new = live.borrow_and_update().clone();
        self.limiter.set_limits(new.max_in_flight, new.max_in_flight_per_model);
        self.ctx.settings = Arc::new(new.settings);
        if new.inbox != self.inbox {
            let old = std::mem::replace(&mut self.inbox, new.inbox);
            self.past_inboxes.push(old);
        }
        tracing::info!("engine: reloaded settings in effect");
    }

    /// Runs until `cancel`, then lets running steps finish within the grace period.
    pub async fn run(mut self, cancel: CancellationToken) -> Result<(), EngineError> {
        // A pause for the whole account (a wrong key, no balance) is what a person restarts the
        // daemon to fix: the jobs that wait it out are tried again at once. A refused submission
        // is not charged, and if nothing changed the first refusal pauses the account again.
        let released = self.ctx.db.release_account_waits(now_ms(), crate::api::is_account_wait).await?;
        if released > 0 {
            tracing::info!(jobs = released, "jobs waiting out an account pause are tried again after the start");
        }
        while !cancel.is_cancelled() {
            self.follow_reload();
            // What waits on the platform's clock first: a ready result (its link expires) and a
            // due poll are started before this turn's own commits and file moves (a submission's
            // `submitting`, a settled spec's report and rename, each fsynced), which came first
            // and held every download behind them (issue 14: ready to download, p50).
            self.start_downloads().await?;
            self.start_polls().await?;
            self.start_submissions().await?;
            self.settle_specs().await?;
            self.apply_uncertain_policy().await?;
            let wake_at = self.next_wake(Instant::now());
            tokio::select! {
                () = cancel.cancelled() => break,
                () = self.wake.notified() => {}
                Some(done) = self.tasks.join_next(), if !self.tasks.is_empty() => {
                    self.finish(done).await?;
                    // Every step that ended meanwhile is taken in before the next turn.
                    while let Some(done) = self.tasks.try_join_next() {
                        self.finish(done).await?;
                    }
                }
                () = sleep_until(wake_at) => {}
            }
        }
        self.drain().await
    }

    /// When the loop must turn next if no step ends and nothing wakes it: when the first
    /// scheduled poll or download retry comes due (with a slot free for it), when a list is due
    /// to be read again, and at least every tick (half the poll interval, 50 ms to 1 s), which
    /// picks up queued jobs, retries and settled specs.
    fn next_wake(&self, now: Instant) -> Instant {
        let tick = (self.ctx.settings.poll_interval / 2).clamp(Duration::from_millis(50), Duration::from_secs(1));
        let mut at = now + tick;
        if self.polls < MAX_POLLS {
            at = at.min(self.to_poll.next_read(now));
            if let Some(t) = schedule::earliest(self.next_poll.iter(), |t| *t, &self.busy) {
                at = at.min(t);
            }
        }
        if self.downloads < self.ctx.settings.download_concurrency {
            at = at.min(self.to_download.next_read(now));
            if let Some(t) = schedule::earliest(self.download_retry.iter(), |r| r.0, &self.busy) {
                at = at.min(t);
            }
        }
        at.max(now)
    }

    async fn drain(mut self) -> Result<(), EngineError> {
        let grace = self.ctx.settings.shutdown_grace;
        tracing::info!(running = self.tasks.len(), grace = ?grace, "stopping: letting running steps finish");
        let deadline = Instant::now() + grace;
        while !self.tasks.is_empty() {
            match tokio::time::timeout_at(deadline, self.tasks.join_next()).await {
                Ok(Some(done)) => self.finish(done).await?,
                Ok(None) => break,
                Err(_) => {
                    tracing::warn!(
                        running = self.tasks.len(),
                        "grace period over: interrupting; the next start resumes them"
                    );
                    self.tasks.abort_all();
                    break;
                }
            }
        }
        self.settle_specs().await
    }

    async fn finish(&mut self, joined: Result<Done, tokio::task::JoinError>) -> Result<(), EngineError> {
        let done = match joined {
            Ok(done) => done,
            Err(e) => {
                // A panicked step leaves its job busy: it is retried after a restart, never twice at once.
                tracing::error!(error = %Escaped(&e), "a job step panicked or was cancelled");
                return Ok(());
            }
        };
        self.busy.remove(&done.job_id);
        match done.kind {
            // An accepted submission is a new job to poll.
            Kind::Submit => self.to_poll.touch(),
            Kind::Poll => {
                self.polls = self.polls.saturating_sub(1);
                // A poll that ended the task may have made a job to download.
                if matches!(done.next, Ok(Next::Idle)) {
                    self.to_download.touch();
                }
            }
            Kind::Download => self.downloads = self.downloads.saturating_sub(1),
        }
        match done.next? {
            Next::Idle => {
                self.next_poll.remove(&done.job_id);
                self.download_retry.remove(&done.job_id);
            }
            Next::PollAt(at) => {
                self.next_poll.insert(done.job_id, at);
            }
            Next::DownloadAt(at, gone) => {
                let entry = self.download_retry.entry(done.job_id).or_insert((at, 0, 0));
                *entry = (at, entry.1 + 1, if gone { entry.2 + 1 } else { 0 });
            }
            Next::RateLimited(model) => {
                let in_flight = self.ctx.db.in_flight_by_model().await?;
                let cap = in_flight.get(&model).copied().unwrap_or(0);
                self.limiter.rate_limited(&model, cap, Instant::now());
                if self.ctx.db.is_shared() {
                    // Every daemon on the account holds the model there too.
                    let until = now_ms().saturating_add(millis(super::limiter::PROBE_AFTER));
                    self.ctx.db.raise_signal(AccountSignal::ModelCap { model, cap: cap.max(1), until }).await?;
                }
            }
            Next::Pause(code, reason) => {
                let pause = self.ctx.settings.account_pause;
                self.ctx.ops.metrics().set_account_paused(Some(&code));
                tracing::error!(reason = %Escaped(&reason), pause = ?pause, "submissions paused for the whole account; polling and archiving go on");
                self.paused_until = Some(Instant::now() + pause);
                if self.ctx.db.is_shared() {
                    let until = now_ms().saturating_add(millis(pause));
                    self.ctx.db.raise_signal(AccountSignal::Pause { code, reason, until }).await?;
                }
            }
        }
        Ok(())
    }

    async fn start_submissions(&mut self) -> Result<(), EngineError> {
        let now = Instant::now();
        if self.ctx.db.is_shared() {
            self.heed_signals(now).await?;
        }
        match self.paused_until {
            Some(t) if t > now => return Ok(()),
            Some(_) => {
                self.paused_until = None;
                self.ctx.ops.metrics().set_account_paused(None);
            }
            None => {}
        }
        let mut in_flight: BTreeMap<String, usize> = self.ctx.db.in_flight_by_model().await?;
        let mut total: usize = in_flight.values().sum();
        let global = self.limiter.global();
        for model in crate::spec::models::MODELS {
            let limit = self.limiter.model_cap(model.name, now).map_or(global, |cap| cap.min(global));
            let running = in_flight.get(model.name).copied().unwrap_or(0);
            self.ctx.ops.metrics().set_model_load(model.name, running, limit);
        }
        if total >= global {
            return Ok(());
        }
        let due = self.ctx.db.due_queued(now_ms(), 256).await?;
        for job in due {
            if total >= global {
                break;
            }
            let current = in_flight.get(&job.model).copied().unwrap_or(0);
            if self.busy.contains(&job.id) || self.limiter.model_cap(&job.model, now).is_some_and(|cap| current >= cap)
            {
                continue;
            }
            let request_id = format!("vk-{}-{}", job.id, job.attempts + 1);
            let limits = InFlight { total: global, model: self.limiter.model_cap(&job.model, now) };
            let Some(body) = self.begin_submission(&job, &request_id, limits).await? else { continue };
            *in_flight.entry(job.model.clone()).or_default() += 1;
            total += 1;
            self.busy.insert(job.id.clone());
            let ctx = self.ctx.clone();
            let span = tracing::info_span!("submit", job_id = %job.id);
            self.tasks.spawn(
                async move {
                    let next = submit(&ctx, &job, &body, &request_id).await;
                    Done { job_id: job.id, kind: Kind::Submit, next }
                }
                .instrument(span),
            );
        }
        Ok(())
    }

    /// Heeds what other daemons on the account learnt from the platform: a pause of all
    /// submissions, a model's lowered cap after 1302.
    async fn heed_signals(&mut self, now: Instant) -> Result<(), EngineError> {
        let wall = now_ms();
        for signal in self.ctx.db.signals(wall).await? {
            match signal {
                AccountSignal::Pause { code, until, .. } => {
                    let left = Duration::from_millis(u64::try_from(until.saturating_sub(wall)).unwrap_or(0));
                    if self.paused_until.is_none_or(|t| t < now + left) {
                        self.ctx.ops.metrics().set_account_paused(Some(&code));
                        self.paused_until = Some(now + left);
                    }
                }
                AccountSignal::ModelCap { model, cap, .. } => self.limiter.heed_cap(&model, cap, now),
            }
        }
        Ok(())
    }

    /// Checks the budget, reads the request and records `submitting` in one catalogue
    /// transaction; `None` if the job moved on or must wait for budget.
    async fn begin_submission(
        &mut self,
        job: &JobRecord,
        request_id: &str,
        limits: InFlight,
    ) -> Result<Option<serde_json::Map<String, serde_json::Value>>, EngineError> {
        let settings = &self.ctx.settings;
        let was_waiting = job.state == JobState::WaitingBudget;
        let result = self
            .ctx
            .db
            .begin_submission(
                job.id.clone(),
                request_id.to_owned(),
                settings.prices.clone(),
                settings.budget.clone(),
                limits,
                now_ms(),
            )
            .await;
        match result {
            Ok(BudgetCheck::Submit(body)) => {
                if was_waiting || self.waiting_reported.contains_key(&job.id) {
                    self.waiting_reported.remove(&job.id);
                    let (inbox, submitted) = (self.inbox_of(job), job.clone());
                    let cleared = tokio::task::spawn_blocking(move || report::clear_waiting(&inbox, &submitted)).await;
                    if let Ok(Err(e)) = cleared {
                        tracing::warn!(job_id = %job.id, error = %e, "cannot remove the waiting report");
                    }
                }
                Ok(Some(body))
            }
            Ok(BudgetCheck::Wait(reason)) => {
                if !was_waiting {
                    tracing::warn!(job_id = %job.id, reason = %Escaped(&reason), "not submitted: over budget; waiting");
                }
                if self.waiting_reported.get(&job.id) != Some(&reason) {
                    let price = self.ctx.settings.prices.fen(&job.model);
                    let (inbox, waiting, why) = (self.inbox_of(job), job.clone(), reason.clone());
                    let written =
                        tokio::task::spawn_blocking(move || report::waiting(&inbox, &waiting, &why, price)).await;
                    match written {
                        Ok(Ok(_)) => {
                            self.waiting_reported.insert(job.id.clone(), reason);
                        }
                        Ok(Err(e)) => {
                            tracing::warn!(job_id = %job.id, error = %e, "cannot write the waiting report; will retry");
                        }
                        Err(e) => {
                            tracing::warn!(job_id = %job.id, error = %e, "cannot write the waiting report; will retry");
                        }
                    }
                }
                Ok(None)
            }
            // Another daemon on the account took the last slot since this turn counted.
            Ok(BudgetCheck::Full) => Ok(None),
            Err(CatalogError::Conflict { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The inbox `job`'s spec is in (after a reload moved the inbox, the one it was taken from).
    fn inbox_of(&self, job: &JobRecord) -> Inbox {
        let has_spec = |i: &Inbox| i.folder(job.spec_place).join(&job.spec_file).exists();
        if has_spec(&self.inbox) {
            return self.inbox.clone();
        }
        self.past_inboxes.iter().rev().find(|i| has_spec(i)).unwrap_or(&self.inbox).clone()
    }

    async fn start_polls(&mut self) -> Result<(), EngineError> {
        let now = Instant::now();
        if self.polls >= MAX_POLLS || !self.to_poll.must_read(now, self.next_poll.values()) {
            return Ok(());
        }
        let submitted = self.ctx.db.jobs_in(JobState::Submitted).await?;
        self.ctx.ops.metrics().engine_read("submitted");
        let present: HashSet<&str> = submitted.iter().map(|j| j.id.as_str()).collect();
        schedule::keep_only(&mut self.next_poll, &present);
        drop(present);
        let mut at_cap = false;
        for job in submitted {
            if self.polls >= MAX_POLLS {
                at_cap = true;
                break;
            }
            // Polls due within a quarter of the interval go with this pass: a little early, so
            // tasks submitted together stay polled together instead of one read each.
            let early = now + self.ctx.settings.poll_interval / 4;
            if self.busy.contains(&job.id) || self.next_poll.get(&job.id).is_some_and(|t| *t > early) {
                continue;
            }
            self.busy.insert(job.id.clone());
            self.next_poll.remove(&job.id);
            self.polls += 1;
            let ctx = self.ctx.clone();
            let span = tracing::info_span!("poll", job_id = %job.id, task_id = job.task_id.as_deref().unwrap_or(""));
            self.tasks.spawn(
                async move {
                    let next = poll(&ctx, &job).await;
                    Done { job_id: job.id, kind: Kind::Poll, next }
                }
                .instrument(span),
            );
        }
        self.to_poll.read(now, at_cap);
        Ok(())
    }

    async fn start_downloads(&mut self) -> Result<(), EngineError> {
        let now = Instant::now();
        let slots = self.ctx.settings.download_concurrency;
        if self.downloads >= slots || !self.to_download.must_read(now, self.download_retry.values().map(|r| &r.0)) {
            return Ok(());
        }
        // Soonest expiry first: with the slots full, the result about to be lost goes next. Of
        // the first `want`, at most the busy and the retry-waiting ones are passed over, so the
        // free slots are filled from them whenever enough jobs are waiting.
        let want = slots.saturating_add(self.busy.len()).saturating_add(self.download_retry.len());
        let downloading = self.ctx.db.downloads_by_expiry(want).await?;
        self.ctx.ops.metrics().engine_read("downloading");
        if downloading.len() < want {
            // The whole list: forget the retry times of jobs no longer downloading.
            let present: HashSet<&str> = downloading.iter().map(|j| j.id.as_str()).collect();
            schedule::keep_only(&mut self.download_retry, &present);
        }
        let mut at_cap = false;
        for job in downloading {
            if self.downloads >= slots {
                at_cap = true;
                break;
            }
            let retry = self.download_retry.get(&job.id).copied();
            if self.busy.contains(&job.id) || retry.is_some_and(|(t, _, _)| t > now) {
                continue;
            }
            let (attempts, gone) = retry.map_or((0, 0), |(_, a, g)| (a, g));
            self.busy.insert(job.id.clone());
            self.downloads += 1;
            let ctx = self.ctx.clone();
            let span = tracing::info_span!("archive", job_id = %job.id, task_id = job.task_id.as_deref().unwrap_or(""));
            self.tasks.spawn(
                async move {
                    let next = fetch(&ctx, &job, attempts, gone).await;
                    Done { job_id: job.id, kind: Kind::Download, next }
                }
                .instrument(span),
            );
        }
        self.to_download.read(now, at_cap);
        Ok(())
    }

    /// Resolves `uncertain` jobs by the configured policy; `ask` leaves them to a person.
    async fn apply_uncertain_policy(&mut self) -> Result<(), EngineError> {
        let policy = self.ctx.settings.uncertain;
        if policy == UncertainPolicy::Ask {
            return Ok(());
        }
        for job in self.ctx.db.jobs_in(JobState::Uncertain).await? {
            let change = match policy {
                // Only a submission whose answer was lost: a job with a task id was
                // accepted (and charged), so sending it again would pay twice.
                UncertainPolicy::Resubmit if job.attempts <= 1 && job.task_id.is_none() => Change::Resubmit,
                UncertainPolicy::Abandon => Change::Failed(JobError::new(
                    "abandoned",
                    "abandoned by the `uncertain = \"abandon\"` policy after an uncertain submission",
                )),
                UncertainPolicy::Resubmit | UncertainPolicy::Ask => continue,
            };
            tracing::warn!(job_id = %job.id, policy = ?policy, "uncertain job resolved by policy; a resubmission may be charged twice");
            // Guarded: a person who resolved the job meanwhile wins.
            match self.ctx.db.transition(&job.id, JobState::Uncertain, change).await {
                Ok(()) | Err(CatalogError::Conflict { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Moves the spec files of finished jobs to `done/` or `failed/` with their reports. The
    /// catalogue is read, then the files are moved off the async workers with no catalogue call
    /// held, then the new places are recorded. A spec that cannot be settled is retried on the
    /// next pass but logged once.
    async fn settle_specs(&mut self) -> Result<(), EngineError> {
        let pending = self.ctx.db.settlements().await?;
        if pending.is_empty() {
            return Ok(());
        }
        let (inbox, past) = (self.inbox.clone(), self.past_inboxes.clone());
        let settled = tokio::task::spawn_blocking(move || {
            pending
                .into_iter()
                .map(|(job, assets, money)| {
                    // After a reload moved the inbox, a spec settles in the inbox it was taken from.
                    let has_spec = |i: &Inbox| i.folder(job.spec_place).join(&job.spec_file).exists();
                    let inbox = if has_spec(&inbox) {
                        &inbox
                    } else {
                        past.iter().rev().find(|i| has_spec(i)).unwrap_or(&inbox)
                    };
                    let result = report::settle(inbox, &job, &assets, &money);
                    (job.id, result)
                })
                .collect::<Vec<_>>()
        })
        .await
        .map_err(|e| CatalogError::Join(e.to_string()))?;
        let mut places = Vec::new();
        for (job_id, result) in settled {
            match result {
                Ok((place, file)) => {
                    self.settle_warned.remove(&job_id);
                    places.push((job_id, place, file));
                }
                Err(e) => {
                    if self.settle_warned.insert(job_id.clone()) {
                        tracing::warn!(job_id = %job_id, error = %Escaped(&e), "cannot write the report or move the spec; will retry");
                    }
                }
            }
        }
        if !places.is_empty() {
            self.ctx.db.set_spec_places(places).await?;
        }
        Ok(())
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.tasks.abort_all();
    }
}

/// `d` in whole milliseconds, for wall-clock times.
fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}
