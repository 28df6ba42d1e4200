//! Job rows: insert, the one guarded transition, and the queries the engine, CLI and reports use.

use std::collections::BTreeMap;

use super::conn::{Begin, Row, Sql, args, for_update};
use super::{Catalog, CatalogError};
use crate::domain::{Change, JobError, JobState, SpecPlace};
use crate::spec::{JobSpec, SpecFormat};
use crate::time::now_ms;

/// What intake knows about a new job.
#[derive(Debug, Clone)]
pub struct NewJob {
    /// The new job's id.
    pub id: String,
    /// File name as dropped.
    pub spec_name: String,
    /// SHA-256 of the spec file.
    pub spec_sha256: String,
    /// Its format.
    pub spec_format: SpecFormat,
    /// The parsed spec.
    pub spec: JobSpec,
    /// For one of several takes of a spec: the group (the first take's id) and this take's number.
    pub take: Option<(String, i64)>,
}

/// What recording a spec's jobs found.
#[derive(Debug)]
pub enum Recorded {
    /// The jobs were recorded.
    New,
    /// The same request already made this job (archived, running or waiting; not failed):
    /// nothing was recorded, and nothing will be paid.
    AlreadyPaid(Box<JobRecord>),
}

impl NewJob {
    /// SHA-256 of the request body as sent, with keys in sorted order: equal specs, equal fingerprints.
    /// A `null` field means "not set", so it does not change the fingerprint; local images are
    /// in the request as data URIs, so their bytes are part of it.
    pub fn fingerprint(&self) -> String {
        let canonical: BTreeMap<&String, &serde_json::Value> =
            self.spec.request.iter().filter(|(_, v)| !v.is_null()).collect();
        let bytes = serde_json::to_vec(&canonical).unwrap_or_default();
        crate::domain::sha256_hex(&bytes)
    }
}

/// The jobs (one per take) of one spec whose file is already in `place` as `file`, for
/// [`Catalog::record_specs`]. The request's fingerprint and body are computed when this is made,
/// so that work (images are in the request) is never done inside the catalogue lock.
#[derive(Debug, Clone)]
pub struct SpecJobs {
    /// One per take; all with the same request.
    pub jobs: Vec<NewJob>,
    /// Where the spec file is.
    pub place: SpecPlace,
    /// Its name there.
    pub file: String,
    /// Record even if the same request already made a job.
    pub force: bool,
    sent: Sent,
}

impl SpecJobs {
    /// The jobs of one spec, with their request's fingerprint and body computed now.
    pub fn new(jobs: Vec<NewJob>, place: SpecPlace, file: String, force: bool) -> SpecJobs {
        let sent = jobs.first().map(Sent::of).unwrap_or_default();
        SpecJobs { jobs, place, file, force, sent }
    }

    /// About how many bytes of request (inline images included) this holds in memory: the body
    /// as stored, and the request of each take.
    pub fn request_bytes(&self) -> usize {
        self.sent.body.len().saturating_mul(self.jobs.len().saturating_add(1))
    }
}

/// A request's fingerprint and its body as stored.
#[derive(Debug, Clone, Default)]
struct Sent {
    fingerprint: String,
    body: String,
}

impl Sent {
    fn of(job: &NewJob) -> Sent {
        Sent { fingerprint: job.fingerprint(), body: serde_json::Value::Object(job.spec.request.clone()).to_string() }
    }
}

/// The part of a job id that tells jobs apart, for tables and file names: a UUIDv7 starts
/// with its creation time, so jobs made in one burst share their first characters; its last 8
/// are random.
pub fn short_id(id: &str) -> &str {
    id.get(id.len().saturating_sub(8)..).unwrap_or(id)
}

/// A job as the catalogue holds it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct JobRecord {
    /// Job id.
    pub id: String,
    /// File name as dropped.
    pub spec_name: String,
    /// Current file name in its folder.
    pub spec_file: String,
    /// Folder the spec file is in.
    #[serde(skip)]
    pub spec_place: SpecPlace,
    /// Model code.
    pub model: String,
    /// Prompt, if any.
    pub prompt: Option<String>,
    /// Human name from the spec's `vidkeep` table.
    pub name: Option<String>,
    /// Project.
    pub project: Option<String>,
    /// Tags.
    pub tags: Vec<String>,
    /// Request as JSON, images shown as their source.
    pub request_display: String,
    /// Hash of the request as sent.
    pub fingerprint: String,
    /// List price of one submission in fen.
    pub price_fen: i64,
    /// Current state.
    pub state: JobState,
    /// Submissions started.
    pub attempts: i64,
    /// Earliest next submission (unix ms).
    pub next_attempt_at: i64,
    /// Latest request_id sent.
    pub request_id: Option<String>,
    /// Platform task id.
    pub task_id: Option<String>,
    /// Result video URL.
    pub video_url: Option<String>,
    /// Result cover URL.
    pub cover_url: Option<String>,
    /// Platform's final answer.
    pub result_json: Option<String>,
    /// Latest error.
    pub error: Option<JobError>,
    /// Created (unix ms).
    pub created_at: i64,
    /// Accepted by the platform (unix ms).
    pub submitted_at: Option<i64>,
    /// SUCCESS seen (unix ms).
    pub result_at: Option<i64>,
    /// When the result's links expire (unix ms): a day after SUCCESS unless the platform said.
    pub expires_at: Option<i64>,
    /// Archived (unix ms).
    pub archived_at: Option<i64>,
    /// Reached a terminal state (unix ms).
    pub finished_at: Option<i64>,
    /// For takes of one spec: the group id (the first take's job id).
    pub take_group: Option<String>,
    /// Take number within the group (1 for a single job).
    pub take_no: i64,
    /// Fen charged for its submissions (the platform accepted them).
    pub charged_fen: i64,
    /// Fen possibly charged (answers lost, or a submission in flight).
    pub possibly_charged_fen: i64,
}

#[cfg(test)]
impl JobRecord {
    /// A queued viduq1-text job with nothing else set.
    pub(crate) fn for_test(id: &str) -> JobRecord {
        JobRecord {
            id: id.to_owned(),
            spec_name: "a.json".to_owned(),
            spec_file: "a.json".to_owned(),
            spec_place: SpecPlace::Processing,
            model: "viduq1-text".to_owned(),
            prompt: None,
            name: None,
            project: None,
            tags: Vec::new(),
            request_display: "{}".to_owned(),
            fingerprint: String::new(),
            price_fen: 250,
            state: JobState::Queued,
            attempts: 0,
            next_attempt_at: 0,
            request_id: None,
            task_id: None,
            video_url: None,
            cover_url: None,
            result_json: None,
            error: None,
            created_at: 0,
            submitted_at: None,
            result_at: None,
            expires_at: None,
            archived_at: None,
            finished_at: None,
            take_group: None,
            take_no: 1,
            charged_fen: 0,
            possibly_charged_fen: 0,
        }
    }
}

/// The jobs of a request (by fingerprint) that may have been paid for: intake's lookup per spec.
const PAID_TWINS: &str = "SELECT created_at, id FROM jobs WHERE fingerprint = ?1 AND state <> 'failed'";

pub(super) const COLUMNS: &str = "id, spec_name, spec_file, spec_place, model, prompt, name, project, tags, \
    request_display, fingerprint, price_fen, state, attempts, next_attempt_at, request_id, task_id, \
    video_url, cover_url, result_json, error_code, error_message, created_at, submitted_at, \
    result_at, archived_at, finished_at, take_group, take_no, \
    CAST((SELECT COALESCE(SUM(s.price_fen), 0) FROM submissions s WHERE s.job_id = jobs.id AND s.outcome = 'accepted') AS BIGINT), \
    CAST((SELECT COALESCE(SUM(s.price_fen), 0) FROM submissions s WHERE s.job_id = jobs.id \
        AND s.outcome IN ('pending', 'uncertain')) AS BIGINT), expires_at";

/// A job from a row selected as [`COLUMNS`].
pub(super) fn read_job(r: &Row<'_>) -> Result<JobRecord, CatalogError> {
    let code: Option<String> = r.get(20)?;
    let message: Option<String> = r.get(21)?;
    let place: String = r.get(3)?;
    let tags: String = r.get(8)?;
    let state: String = r.get(12)?;
    Ok(JobRecord {
        id: r.get(0)?,
        spec_name: r.get(1)?,
        spec_file: r.get(2)?,
        spec_place: SpecPlace::parse(&place).map_err(|e| CatalogError::Corrupt(e.to_string()))?,
        model: r.get(4)?,
        prompt: r.get(5)?,
        name: r.get(6)?,
        project: r.get(7)?,
        tags: serde_json::from_str(&tags).map_err(|e| CatalogError::Corrupt(format!("tags: {e}")))?,
        request_display: r.get(9)?,
        fingerprint: r.get(10)?,
        price_fen: r.get(11)?,
        state: state.parse().map_err(|e: crate::domain::UnknownState| CatalogError::Corrupt(e.to_string()))?,
        attempts: r.get(13)?,
        next_attempt_at: r.get(14)?,
        request_id: r.get(15)?,
        task_id: r.get(16)?,
        video_url: r.get(17)?,
        cover_url: r.get(18)?,
        result_json: r.get(19)?,
        error: code.map(|code| JobError::new(code, message.unwrap_or_default())),
        created_at: r.get(22)?,
        submitted_at: r.get(23)?,
        result_at: r.get(24)?,
        archived_at: r.get(25)?,
        finished_at: r.get(26)?,
        take_group: r.get(27)?,
        take_no: r.get(28)?,
        charged_fen: r.get(29)?,
        possibly_charged_fen: r.get(30)?,
        expires_at: r.get(31)?,
    })
}

fn insert_row(
    tx: &impl Sql,
    daemon: Option<&str>,
    job: &NewJob,
    sent: &Sent,
    place: SpecPlace,
    file: &str,
    now: i64,
) -> Result<(), CatalogError> {
    let price = job.spec.rules().map_or(0, |r| r.price_fen);
    let (group, take_no) = job.take.clone().map_or((None, 1), |(g, n)| (Some(g), n));
    // Statements are prepared once per connection ([`super::conn`]): intake inserts hundreds of
    // rows per transaction, and parsing each statement anew was a visible share of its CPU.
    tx.execute(
        "insert job",
        "INSERT INTO jobs (id, spec_name, spec_file, spec_place, spec_sha256, spec_format, fingerprint, \
         model, prompt, name, project, tags, request_display, price_fen, state, created_at, updated_at, \
         take_group, take_no, owner, origin) \
         VALUES (?1, ?2, ?14, ?15, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, 'queued', ?13, ?13, ?16, ?17, ?18, ?18)",
        args![
            job.id,
            job.spec_name,
            job.spec_sha256,
            format_name(job.spec_format),
            sent.fingerprint,
            job.spec.model,
            job.spec.prompt,
            job.spec.meta.name,
            job.spec.meta.project,
            serde_json::to_string(&job.spec.meta.tags).unwrap_or_else(|_| "[]".to_owned()),
            serde_json::Value::Object(job.spec.display.clone()).to_string(),
            price,
            now,
            file,
            place.as_str(),
            group,
            take_no,
            daemon,
        ],
    )?;
    tx.execute("insert request", "INSERT INTO job_requests (job_id, body) VALUES (?1, ?2)", args![job.id, sent.body])?;
    let note = match &job.take {
        Some((_, n)) => format!("accepted spec {} (take {n})", job.spec_name),
        None => format!("accepted spec {}", job.spec_name),
    };
    tx.execute(
        "insert event",
        "INSERT INTO job_events (job_id, at, from_state, to_state, note) VALUES (?1, ?2, NULL, 'queued', ?3)",
        args![job.id, now, note],
    )?;
    Ok(())
}

impl Catalog {
    /// Records a new job in state `queued`, its exact request body, and the first event, with
    /// its spec file still in the inbox.
    pub fn insert_job(&mut self, job: &NewJob) -> Result<(), CatalogError> {
        let sent = Sent::of(job);
        let tx = self.conn.begin("begin insert", Begin::Deferred)?;
        insert_row(&tx, self.daemon.as_deref(), job, &sent, SpecPlace::Inbox, &job.spec_name, now_ms())?;
        tx.commit("commit insert")
    }

    /// Records the jobs of several specs (one per take), each file already moved to its place,
    /// in one transaction and one commit (group commit: intake's cost per spec is not a disk
    /// flush). A spec that is not `force`d, whose request fingerprint already made a job that is
    /// not failed, records nothing: that job is its answer, so the same request is never paid
    /// twice. Each spec's fingerprint check
    /// sees the specs recorded before it in the same batch, so two identical specs in one batch
    /// are still paid once. One answer per spec, in order; on an error nothing is recorded.
    pub fn record_specs(&mut self, specs: &[SpecJobs]) -> Result<Vec<Recorded>, CatalogError> {
        let tx = self.conn.begin("begin record", Begin::Immediate)?;
        let now = now_ms();
        let mut answers = Vec::with_capacity(specs.len());
        for spec in specs {
            if let (false, Some(first)) = (spec.force, spec.jobs.first()) {
                // The earliest job of the same request, found in two steps: the ids, then that
                // one job. As one statement (`ORDER BY created_at LIMIT 1` over the whole row)
                // SQLite prepared it again for every new fingerprint bound to it, a third of
                // the CPU of an intake of 10,000 specs (issue 14).
                let twins: Vec<(i64, String)> =
                    tx.rows("find paid request", PAID_TWINS, args![spec.sent.fingerprint], |r| {
                        Ok((r.get(0)?, r.get(1)?))
                    })?;
                let found = match twins.into_iter().min() {
                    Some((_, id)) => tx.first(
                        "read paid job",
                        &format!("SELECT {COLUMNS} FROM jobs WHERE id = ?1"),
                        args![id],
                        read_job,
                    )?,
                    None => None,
                };
                if let Some(existing) = found {
                    tx.execute(
                        "insert event",
                        "INSERT INTO job_events (job_id, at, from_state, to_state, note) VALUES (?1, ?2, ?3, ?3, ?4)",
                        args![
                            existing.id,
                            now,
                            existing.state.as_str(),
                            format!("the same request was dropped again as {}; not submitted", first.spec_name)
                        ],
                    )?;
                    answers.push(Recorded::AlreadyPaid(Box::new(existing)));
                    continue;
                }
            }
            for job in &spec.jobs {
                insert_row(&tx, self.daemon.as_deref(), job, &spec.sent, spec.place, &spec.file, now)?;
            }
            answers.push(Recorded::New);
        }
        tx.commit("commit record")?;
        Ok(answers)
    }

    /// The other takes of the same spec as `job`, by take number.
    pub fn siblings(&self, job: &JobRecord) -> Result<Vec<JobRecord>, CatalogError> {
        let Some(group) = &job.take_group else { return Ok(Vec::new()) };
        self.select_jobs("WHERE take_group = ?1 AND id <> ?2 ORDER BY take_no", args![group, job.id])
    }

    /// `SELECT` of whole job rows with `tail` (the `WHERE`, `ORDER BY` and `LIMIT` parts).
    pub(super) fn select_jobs(
        &self,
        tail: &str,
        args: &[&dyn super::conn::Arg],
    ) -> Result<Vec<JobRecord>, CatalogError> {
        self.conn.rows("read jobs", &format!("SELECT {COLUMNS} FROM jobs {tail}"), args, read_job)
    }

    /// The names of the spec files the catalogue places in `processing/` (to find files no job
    /// names); read through a partial index, so its cost does not grow with the archive.
    pub fn spec_files_in_processing(&self) -> Result<std::collections::HashSet<String>, CatalogError> {
        let files = self.conn.rows(
            "list spec files",
            "SELECT spec_file FROM jobs WHERE spec_place = 'processing' AND (CAST(?1 AS TEXT) IS NULL OR origin = ?1)",
            args![self.daemon],
            |r| r.get(0),
        )?;
        Ok(files.into_iter().collect())
    }

    /// Records where the job's spec file now is.
    pub fn set_spec_place(&mut self, job_id: &str, place: SpecPlace, file: &str) -> Result<(), CatalogError> {
        self.conn.execute(
            "set spec place",
            "UPDATE jobs SET spec_place = ?2, spec_file = ?3, updated_at = ?4 WHERE id = ?1",
            args![job_id, place.as_str(), file, now_ms()],
        )?;
        Ok(())
    }

    /// Applies `change` if the job is in state `from`: one transaction that checks the state
    /// machine, compares and sets the state, writes the change's data and an event, and keeps the
    /// submissions ledger in step.
    pub fn transition(&mut self, job_id: &str, from: JobState, change: &Change) -> Result<(), CatalogError> {
        let to = change.target();
        if !from.can_become(to) {
            return Err(CatalogError::Forbidden { job_id: job_id.to_owned(), from, to });
        }
        let now = now_ms();
        let tx = self.conn.begin("begin transition", Begin::Deferred)?;
        let read_state = format!("SELECT state FROM jobs WHERE id = ?1{}", for_update(tx.dialect()));
        let found: Option<String> = tx.first("read state", &read_state, args![job_id], |r| r.get(0))?;
        let found: JobState = found
            .ok_or_else(|| CatalogError::NoJob(job_id.to_owned()))?
            .parse()
            .map_err(|e: crate::domain::UnknownState| CatalogError::Corrupt(e.to_string()))?;
        if found != from {
            return Err(CatalogError::Conflict { job_id: job_id.to_owned(), expected: from, found });
        }
        let note = apply_change(&tx, job_id, change, now)?;
        tx.execute(
            "set state",
            "UPDATE jobs SET state = ?2, updated_at = ?3, \
             finished_at = CASE WHEN ?2 IN ('archived', 'archived_with_warnings', 'failed') THEN ?3 ELSE finished_at END \
             WHERE id = ?1 AND state = ?4",
            args![job_id, to.as_str(), now, from.as_str()],
        )?;
        tx.execute(
            "insert event",
            "INSERT INTO job_events (job_id, at, from_state, to_state, note) VALUES (?1, ?2, ?3, ?4, ?5)",
            args![job_id, now, from.as_str(), to.as_str(), note],
        )?;
        if let Some(event) = super::outbox::event_for(to) {
            super::outbox::enqueue_job_event(&tx, &self.notify, event, job_id, None, serde_json::json!({}), now)?;
        }
        tx.commit("commit transition")
    }

    /// The job `id`.
    pub fn job(&self, id: &str) -> Result<JobRecord, CatalogError> {
        self.conn
            .first("read job", &format!("SELECT {COLUMNS} FROM jobs WHERE id = ?1"), args![id], read_job)?
            .ok_or_else(|| CatalogError::NoJob(id.to_owned()))
    }

    /// Jobs whose results wait to be archived, the one whose links expire first first (then the
    /// oldest), at most `limit`: the order the engine fills its download slots in. The engine
    /// reads only as far as it may need (with thousands of results waiting, reading them all on
    /// every turn cost a query of thousands of rows per download finished).
    pub fn downloads_by_expiry(&self, limit: usize) -> Result<Vec<JobRecord>, CatalogError> {
        self.select_jobs(
            "WHERE state = 'downloading' AND (CAST(?1 AS TEXT) IS NULL OR owner = ?1) \
             ORDER BY expires_at IS NULL, expires_at, created_at, id LIMIT ?2",
            args![self.daemon, limit],
        )
    }

    /// Jobs in `state`, oldest first. Read through the state index, named: once a catalogue has
    /// statistics (`ANALYZE`) and most jobs are archived, SQLite takes a state to match every job
    /// and walks the creation-time index instead (1.3 s a call at 1,000,000 jobs, three calls at
    /// each start).
    pub fn jobs_in(&self, state: JobState) -> Result<Vec<JobRecord>, CatalogError> {
        self.select_jobs(
            "INDEXED BY jobs_by_state WHERE state = ?1 AND (CAST(?2 AS TEXT) IS NULL OR owner = ?2) ORDER BY created_at, id",
            args![state.as_str(), self.daemon],
        )
    }

    /// Makes the queued jobs that wait out an account pause (their error is one `is_account`
    /// says paused the account) due at `now`; how many. Free to try: the platform does not
    /// charge a refused submission.
    pub fn release_account_waits(
        &mut self,
        now: i64,
        is_account: impl Fn(&str) -> bool,
    ) -> Result<usize, CatalogError> {
        let tx = self.conn.begin("begin release", Begin::Deferred)?;
        let waiting: Vec<(String, String)> = tx.rows(
            "account waits",
            "SELECT id, error_code FROM jobs WHERE state = 'queued' AND next_attempt_at > ?1 \
             AND error_code LIKE 'platform-%' AND (CAST(?2 AS TEXT) IS NULL OR owner = ?2)",
            args![now, self.daemon],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        let mut released = 0;
        for (id, code) in waiting.iter().filter(|(_, code)| is_account(code)) {
            released += tx.execute(
                "release account wait",
                "UPDATE jobs SET next_attempt_at = ?2 WHERE id = ?1 AND state = 'queued'",
                args![id, now],
            )?;
            let note = format!("the account pause ({code}) was lifted by a start or reload; trying again now");
            tx.execute(
                "insert event",
                "INSERT INTO job_events (job_id, at, from_state, to_state, note) VALUES (?1, ?2, 'queued', 'queued', ?3)",
                args![id, now, note],
            )?;
        }
        tx.commit("commit release")?;
        Ok(released)
    }

    /// Queued jobs whose retry time has come, and jobs waiting for budget, oldest first.
    pub fn due_queued(&self, now: i64, limit: usize) -> Result<Vec<JobRecord>, CatalogError> {
        self.select_jobs(
            "INDEXED BY jobs_by_state WHERE state IN ('queued', 'waiting_budget') AND next_attempt_at <= ?1 \
             AND (CAST(?3 AS TEXT) IS NULL OR owner = ?3) ORDER BY created_at, id LIMIT ?2",
            args![now, limit, self.daemon],
        )
    }

    /// Jobs counting against the platform's limit, per model.
    pub fn in_flight_by_model(&self) -> Result<BTreeMap<String, usize>, CatalogError> {
        let rows = self.conn.rows(
            "count in flight",
            "SELECT model, COUNT(*) FROM jobs INDEXED BY jobs_by_state \
             WHERE state IN ('submitting', 'submitted') GROUP BY model",
            args![],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        Ok(rows.into_iter().collect())
    }

    /// The exact request body recorded for `job_id`.
    pub fn request_body(&self, job_id: &str) -> Result<serde_json::Map<String, serde_json::Value>, CatalogError> {
        let text: String = self
            .conn
            .first("read request", "SELECT body FROM job_requests WHERE job_id = ?1", args![job_id], |r| r.get(0))?
            .ok_or_else(|| CatalogError::NoJob(job_id.to_owned()))?;
        serde_json::from_str(&text).map_err(|e| CatalogError::Corrupt(format!("request body: {e}")))
    }

    /// Records the latest retryable error on a job without changing its state.
    pub fn note_error(&mut self, job_id: &str, error: &JobError) -> Result<(), CatalogError> {
        self.conn.execute(
            "note error",
            "UPDATE jobs SET error_code = ?2, error_message = ?3, updated_at = ?4 WHERE id = ?1",
            args![job_id, error.code, error.message, now_ms()],
        )?;
        Ok(())
    }

    /// Records fresh result URLs for a job still `downloading` (its old links had expired).
    /// The result's expiry stays as it was unless the platform named a new one (`expires_at`).
    /// Returns whether the job was still downloading.
    pub fn refresh_result(
        &mut self,
        job_id: &str,
        video_url: &str,
        cover_url: Option<&str>,
        result_json: &str,
        expires_at: Option<i64>,
    ) -> Result<bool, CatalogError> {
        let tx = self.conn.begin("begin refresh", Begin::Deferred)?;
        let now = now_ms();
        let changed = tx.execute(
            "refresh result URLs",
            "UPDATE jobs SET video_url = ?2, cover_url = ?3, result_json = ?4, updated_at = ?5, \
             expires_at = COALESCE(?6, expires_at) WHERE id = ?1 AND state = 'downloading'",
            args![job_id, video_url, cover_url, result_json, now, expires_at],
        )?;
        if changed == 1 {
            tx.execute(
                "record refresh",
                "INSERT INTO job_events (job_id, at, from_state, to_state, note) \
                 VALUES (?1, ?2, 'downloading', 'downloading', 'the result links had expired; the platform gave fresh ones')",
                args![job_id, now],
            )?;
        }
        tx.commit("commit refresh")?;
        Ok(changed == 1)
    }

    /// `(id, spec file)` of the jobs not final whose spec file the catalogue still places in the
    /// inbox (recorded before its move); read through the partial index of unsettled specs.
    pub fn running_specs_in_inbox(&self) -> Result<Vec<(String, String)>, CatalogError> {
        self.conn.rows(
            "specs in the inbox",
            // The partial index's own condition, written out, is what lets SQLite use it: without
            // it every start walked all jobs (10.6 s at 1,000,000 jobs, cold cache).
            "SELECT id, spec_file FROM jobs INDEXED BY jobs_spec_unsettled \
             WHERE spec_place IN ('inbox', 'processing') AND spec_place = 'inbox' \
             AND state NOT IN ('archived', 'archived_with_warnings', 'failed') AND (CAST(?1 AS TEXT) IS NULL OR origin = ?1) \
             ORDER BY created_at",
            args![self.daemon],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
    }

    /// Jobs in a terminal state (or uncertain) whose spec file is still in `processing/` or the inbox.
    pub fn specs_to_settle(&self) -> Result<Vec<JobRecord>, CatalogError> {
        self.select_jobs(
            "WHERE state IN ('archived', 'archived_with_warnings', 'failed') \
             AND spec_place IN ('inbox', 'processing') AND (CAST(?1 AS TEXT) IS NULL OR origin = ?1) ORDER BY created_at",
            args![self.daemon],
        )
    }
}

fn format_name(f: SpecFormat) -> &'static str {
    match f {
        SpecFormat::Json => "json",
        SpecFormat::Toml => "toml",
        SpecFormat::Text => "text",
    }
}

/// Writes the data a change carries; returns the event note.
pub(super) fn apply_change(tx: &impl Sql, id: &str, change: &Change, now: i64) -> Result<String, CatalogError> {
    let exec = |about: &'static str, q: &str, p: &[&dyn super::conn::Arg]| tx.execute(about, q, p).map(|_| ());
    match change {
        Change::Submitting { request_id } => {
            exec(
                "start submission",
                "UPDATE jobs SET attempts = attempts + 1, request_id = ?2, error_code = NULL, error_message = NULL WHERE id = ?1",
                &[&id, request_id],
            )?;
            exec(
                "record submission",
                "INSERT INTO submissions (job_id, request_id, started_at, outcome, price_fen) \
                 VALUES (?1, ?2, ?3, 'pending', (SELECT price_fen FROM jobs WHERE id = ?1))",
                &[&id, request_id, &now],
            )?;
            Ok(format!("submitting with request_id {request_id}"))
        }
        Change::Submitted { task_id } => {
            exec("accept", "UPDATE jobs SET task_id = ?2, submitted_at = ?3 WHERE id = ?1", &[&id, task_id, &now])?;
            settle_submission(tx, id, "accepted", Some(task_id), None, now)?;
            Ok(format!("accepted as task {task_id}"))
        }
        Change::Requeue { next_attempt_at, error } => {
            exec(
                "requeue",
                "UPDATE jobs SET next_attempt_at = ?2, error_code = ?3, error_message = ?4 WHERE id = ?1",
                &[&id, next_attempt_at, &error.code, &error.message],
            )?;
            settle_submission(tx, id, "refused", None, Some(&error.code), now)?;
            Ok(format!("refused ({}): {}", error.code, error.message))
        }
        Change::Uncertain(error) => {
            exec(
                "mark uncertain",
                "UPDATE jobs SET error_code = ?2, error_message = ?3 WHERE id = ?1",
                &[&id, &error.code, &error.message],
            )?;
            settle_submission(tx, id, "uncertain", None, Some(&error.code), now)?;
            Ok(error.message.clone())
        }
        Change::ResultReady { video_url, cover_url, result_json, expires_at } => {
            // The expiry is set once, here; nothing later moves it but the platform's own word.
            let expires = expires_at.unwrap_or_else(|| now.saturating_add(super::RESULT_URL_LIFETIME_MS));
            exec(
                "record result",
                "UPDATE jobs SET video_url = ?2, cover_url = ?3, result_json = ?4, result_at = ?5, \
                 expires_at = ?6, error_code = NULL, error_message = NULL WHERE id = ?1",
                &[&id, video_url, cover_url, result_json, &now, &expires],
            )?;
            Ok("task succeeded; archiving results".to_owned())
        }
        Change::Archived => {
            exec(
                "archive",
                "UPDATE jobs SET archived_at = ?2, error_code = NULL, error_message = NULL WHERE id = ?1",
                &[&id, &now],
            )?;
            Ok("all assets stored".to_owned())
        }
        Change::ArchivedWithWarnings(findings) => {
            exec(
                "archive",
                "UPDATE jobs SET archived_at = ?2, error_code = 'probe-mismatch', error_message = ?3 WHERE id = ?1",
                &[&id, &now, findings],
            )?;
            Ok(format!("all assets stored, with warnings: {findings}"))
        }
        Change::WaitBudget { reason } => {
            exec(
                "wait for budget",
                "UPDATE jobs SET error_code = 'budget', error_message = ?2 WHERE id = ?1",
                &[&id, reason],
            )?;
            Ok(format!("not submitted: {reason}"))
        }
        Change::Resubmit => {
            exec("resubmit", "UPDATE jobs SET next_attempt_at = 0 WHERE id = ?1", &[&id])?;
            Ok("a person chose to submit again (a second charge is possible)".to_owned())
        }
        Change::Failed(error) => {
            exec(
                "fail",
                "UPDATE jobs SET error_code = ?2, error_message = ?3 WHERE id = ?1",
                &[&id, &error.code, &error.message],
            )?;
            settle_submission(tx, id, "refused", None, Some(&error.code), now)?;
            Ok(format!("failed ({}): {}", error.code, error.message))
        }
    }
}

/// Closes the job's pending ledger row, if there is one.
fn settle_submission(
    tx: &impl Sql,
    job_id: &str,
    outcome: &str,
    task_id: Option<&String>,
    code: Option<&String>,
    now: i64,
) -> Result<(), CatalogError> {
    tx.execute(
        "settle submission",
        "UPDATE submissions SET outcome = ?2, task_id = ?3, error_code = ?4, finished_at = ?5 \
         WHERE job_id = ?1 AND outcome = 'pending'",
        args![job_id, outcome, task_id, code, now],
    )?;
    Ok(())
}

#[cfg(test)]
impl NewJob {
    /// A job of the spec `body` (JSON, valid), named `name`.
    pub(crate) fn for_test(id: &str, name: &str, body: &str) -> NewJob {
        let dir = tempfile::tempdir().expect("tempdir");
        let defaults = serde_json::Map::new();
        let ctx = crate::spec::SpecContext { defaults: &defaults, spec_dir: dir.path(), inbox: dir.path() };
        let spec = crate::spec::parse(name, body.as_bytes(), &ctx).expect("valid spec");
        NewJob {
            id: id.into(),
            spec_name: name.into(),
            spec_sha256: String::new(),
            spec_format: SpecFormat::Json,
            spec,
            take: None,
        }
    }
}

#[cfg(test)]
impl SpecJobs {
    /// A spec file `name` in `processing/` with one job of `body`.
    pub(crate) fn for_test(id: &str, name: &str, body: &str) -> SpecJobs {
        SpecJobs::new(vec![NewJob::for_test(id, name, body)], SpecPlace::Processing, name.into(), false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(body: &str) -> NewJob {
        NewJob::for_test("j", "a.json", body)
    }

    fn spec(id: &str, name: &str, body: &str) -> SpecJobs {
        SpecJobs::for_test(id, name, body)
    }

    /// Intake's per-spec lookup is prepared once, whatever fingerprint is bound to it: as one
    /// statement reading the whole row newest-first, SQLite prepared it again for each new
    /// fingerprint (49 times for 50 specs), a third of the CPU of an intake of 10,000 specs.
    #[test]
    fn recording_specs_prepares_the_paid_lookup_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut c = Catalog::open(&dir.path().join("c.sqlite")).expect("open");
        let body = |i: usize| format!(r#"{{"model":"viduq1-text","prompt":"a fox number {i}"}}"#);
        let specs: Vec<SpecJobs> = (0..50).map(|i| spec(&i.to_string(), &format!("s{i}.json"), &body(i))).collect();
        assert!(c.record_specs(&specs).expect("record").iter().all(|r| matches!(r, Recorded::New)));
        let twin = [spec("50", "again.json", &body(7))];
        assert!(matches!(c.record_specs(&twin).expect("record")[..], [Recorded::AlreadyPaid(_)]));
        let lookup = c.lite().prepare_cached(PAID_TWINS).expect("the cached lookup");
        assert_eq!(lookup.get_status(rusqlite::StatementStatus::RePrepare), 0);
    }

    #[test]
    fn a_batch_of_specs_is_one_transaction_and_sees_its_own_requests() {
        crate::catalog::testing::each_backend(|c, _| {
            let fox = r#"{"model":"viduq1-text","prompt":"a fox"}"#;
            let hare = r#"{"model":"viduq1-text","prompt":"a hare"}"#;
            let answers = c
                .record_specs(&[spec("1", "fox.json", fox), spec("2", "hare.json", hare), spec("3", "fox-2.json", fox)])
                .expect("record");
            assert!(matches!(answers[..], [Recorded::New, Recorded::New, Recorded::AlreadyPaid(_)]), "{answers:?}");
            let Recorded::AlreadyPaid(existing) = &answers[2] else { unreachable!() };
            assert_eq!(existing.id, "1", "the twin recorded earlier in the same batch");

            // One spec of a batch cannot be recorded (its id is taken): none of the batch is.
            let owl = r#"{"model":"viduq1-text","prompt":"an owl"}"#;
            let cat = r#"{"model":"viduq1-text","prompt":"a cat"}"#;
            assert!(c.record_specs(&[spec("4", "owl.json", owl), spec("2", "cat.json", cat)]).is_err());
            let ids: Vec<String> =
                c.jobs_in(crate::domain::JobState::Queued).expect("jobs").into_iter().map(|j| j.id).collect();
            assert_eq!(ids, ["1", "2"], "the failed batch left nothing behind");
        });
    }

    #[test]
    fn nulls_do_not_change_the_fingerprint() {
        let plain = job(r#"{"model":"viduq1-text","prompt":"a fox","duration":5}"#);
        let sdk = job(
            r#"{"prompt":"a fox","quality":null,"model":"viduq1-text","duration":5,"off_peak":null,"user_id":null}"#,
        );
        assert_eq!(plain.fingerprint(), sdk.fingerprint());
        assert_ne!(
            plain.fingerprint(),
            job(r#"{"model":"viduq1-text","prompt":"a fox","duration":5,"off_peak":true}"#).fingerprint()
        );
    }
}
