//! Reports a person can read, beside the spec file they describe: `done/<file>.report.json` for
//! an archived job, `failed/<file>.report.json` for a failed job or a rejected spec. Writing the
//! report and moving the spec are idempotent, so a crash in between is repaired by doing both again.

use std::io;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::catalog::{Asset, JobRecord, Money, Rejection};
use crate::domain::{Inbox, JobError, JobState, SpecPlace};
use crate::money::Fen;
use crate::time::rfc3339;

/// The report of a job, as written beside its spec.
#[derive(Debug, Serialize)]
pub struct JobReport<'a> {
    /// Spec file name as dropped.
    pub spec: &'a str,
    /// Final state.
    pub state: JobState,
    /// Job id.
    pub job_id: &'a str,
    /// Model.
    pub model: &'a str,
    /// Platform task id, if the platform accepted it.
    pub task_id: Option<&'a str>,
    /// Stored assets (keys relative to the storage root) and hashes.
    pub assets: &'a [Asset],
    /// The error, if the job failed.
    pub error: Option<&'a JobError>,
    /// What a person can do next.
    pub next_step: String,
    /// Submissions started for this job (attempts; see `cost` for what was charged).
    pub submissions: i64,
    /// What the job cost or may have cost, and for a failure whether a retry is charged and helps.
    pub cost: Cost,
    /// When the spec was accepted.
    pub created_at: String,
    /// When it was archived.
    pub archived_at: Option<String>,
}

/// Money in a report: charged apart from possibly charged apart from attempts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Cost {
    /// RMB the platform charged (it accepted the submission), e.g. "2.50".
    pub charged_rmb: String,
    /// RMB that may have been charged (an answer was lost).
    pub possibly_charged_rmb: String,
    /// Submissions refused or never sent: not charged.
    pub not_charged_attempts: i64,
    /// RMB paid for a result that expired before it was archived: lost, nothing kept.
    pub lost_rmb: String,
    /// The same in words.
    pub summary: String,
    /// For a failed job: whether a retry would be charged again and whether it is likely to help.
    pub retry: Option<String>,
}

impl Cost {
    /// The cost of `job` from its ledger totals.
    pub fn of(job: &JobRecord, money: &Money) -> Cost {
        let (charged, possibly) = (Fen(money.charged_fen), Fen(money.possibly_charged_fen));
        let mut summary = format!("cost {charged} RMB charged");
        if money.possibly_charged_fen > 0 {
            summary.push_str(&format!(", {possibly} RMB possibly charged"));
        }
        summary.push_str(&format!(" ({} attempt(s), {} not charged)", money.attempts, money.not_charged));
        if money.lost_fen > 0 {
            summary.push_str(&format!(
                "; {} RMB lost: paid, but the result expired before it was kept",
                Fen(money.lost_fen)
            ));
        }
        let retry = job
            .error
            .as_ref()
            .filter(|_| job.state == JobState::Failed)
            .map(|e| crate::money::retry_advice(&e.code).to_owned());
        Cost {
            charged_rmb: charged.to_string(),
            possibly_charged_rmb: possibly.to_string(),
            not_charged_attempts: money.not_charged,
            lost_rmb: Fen(money.lost_fen).to_string(),
            summary,
            retry,
        }
    }
}

/// The report of a rejected spec.
#[derive(Debug, Serialize)]
struct RejectionReport<'a> {
    spec: &'a str,
    state: &'static str,
    submitted: bool,
    error: JobError,
    next_step: &'static str,
    at: String,
}

/// Moves `from` into `dir` as `name` (the file's text name), or `stem.<tag>.ext` if that is
/// taken; returns the name it got.
pub fn move_unique(from: &Path, name: &str, dir: &Path, tag: &str) -> io::Result<String> {
    let target = unique_name(dir, name, tag);
    std::fs::rename(from, dir.join(&target))?;
    Ok(target)
}

/// Mode of reports: the studio's group (the folder's, by setgid) may read them.
const REPORT_MODE: u32 = 0o640;

fn unique_name(dir: &Path, name: &str, tag: &str) -> String {
    if !dir.join(name).exists() {
        return name.to_owned();
    }
    let short: String = tag.chars().rev().take(8).collect::<Vec<_>>().into_iter().rev().collect();
    match name.rsplit_once('.') {
        Some((stem, ext)) => format!("{stem}.{short}.{ext}"),
        None => format!("{name}.{short}"),
    }
}

/// Writes `value` as pretty JSON to `path` atomically (temporary file, then rename).
fn write_json(path: &Path, value: &impl Serialize) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new().prefix(".report").suffix(".tmp").tempfile_in(dir)?;
    serde_json::to_writer_pretty(&mut tmp, value)?;
    io::Write::write_all(&mut tmp, b"\n")?;
    tmp.as_file().set_permissions(std::os::unix::fs::PermissionsExt::from_mode(REPORT_MODE))?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// Moves a rejected spec to `failed/` and writes its report.
pub fn reject(inbox: &Inbox, path: &Path, rejection: &Rejection) -> io::Result<PathBuf> {
    let failed = inbox.folder(SpecPlace::Failed);
    let name = unique_name(&failed, &rejection.spec_name, &rejection.spec_sha256);
    let report = RejectionReport {
        spec: &rejection.spec_name,
        state: "rejected",
        submitted: false,
        error: JobError::new(rejection.error_code.clone(), rejection.error_message.clone()),
        next_step: "nothing was sent to the platform and nothing was charged; fix the spec and drop it into the inbox again",
        at: rfc3339(rejection.at),
    };
    let report_path = failed.join(format!("{name}.report.json"));
    write_json(&report_path, &report)?;
    if let Err(e) = std::fs::rename(path, failed.join(&name)) {
        // A report beside no spec would say the spec is in failed/ when it is not.
        let _ = std::fs::remove_file(&report_path);
        return Err(e);
    }
    Ok(failed.join(name))
}

/// Why a folder in the inbox is not read, as its report and the catalogue's rejections say it.
pub fn folder_message(folder: &str) -> String {
    format!(
        "`{folder}/` is a folder: vidkeep reads only .json, .toml and .txt specs placed directly in the inbox, \
         never in folders below it"
    )
}

/// Writes `failed/<folder>.report.json` saying the inbox folder `folder` is not read, unless it
/// is there already; true when it was written now.
pub fn folder_not_read(inbox: &Inbox, folder: &str) -> io::Result<bool> {
    let path = inbox.folder(SpecPlace::Failed).join(format!("{folder}.report.json"));
    if path.exists() {
        return Ok(false);
    }
    let report = RejectionReport {
        spec: folder,
        state: "rejected",
        submitted: false,
        error: JobError::new(crate::spec::SpecError::IN_FOLDER, folder_message(folder)),
        next_step: "nothing in the folder was sent or charged; move its specs up into the inbox itself",
        at: rfc3339(crate::time::now_ms()),
    };
    write_json(&path, &report)?;
    Ok(true)
}

/// The report of a spec whose request already made a job.
#[derive(Debug, Serialize)]
struct AlreadyPaidReport<'a> {
    spec: &'a str,
    state: &'static str,
    submitted: bool,
    existing_job: &'a str,
    existing_state: JobState,
    existing_spec: &'a str,
    existing_task_id: Option<&'a str>,
    assets: &'a [Asset],
    next_step: String,
    at: String,
}

/// Moves a spec whose request already made `existing` (archived, running or waiting) from
/// `from` to `done/`, with a report naming that job and its assets; nothing was submitted.
pub fn already_paid(
    inbox: &Inbox,
    from: &Path,
    name: &str,
    existing: &JobRecord,
    assets: &[Asset],
) -> io::Result<PathBuf> {
    let done = inbox.folder(SpecPlace::Done);
    let target = unique_name(&done, name, &existing.id);
    let when = match existing.archived_at {
        Some(at) => format!("archived {}", rfc3339(at)),
        None => format!("{} since {}", existing.state, rfc3339(existing.created_at)),
    };
    let report = AlreadyPaidReport {
        spec: name,
        state: "already-paid",
        submitted: false,
        existing_job: &existing.id,
        existing_state: existing.state,
        existing_spec: &existing.spec_name,
        existing_task_id: existing.task_id.as_deref(),
        assets,
        next_step: format!(
            "already paid for: job {}, {when}; nothing was sent for this file. To make another take, set \
             vidkeep.takes or vidkeep.force = true in the spec and drop it again",
            existing.id
        ),
        at: rfc3339(crate::time::now_ms()),
    };
    write_json(&done.join(format!("{target}.report.json")), &report)?;
    std::fs::rename(from, done.join(&target))?;
    Ok(done.join(target))
}

/// What to do about a job waiting for budget.
const WAITING_NEXT_STEP: &str = "nothing, unless it should go sooner: it is submitted by itself when the budget period rolls over, or when a reload (SIGHUP) raises [budget] in the config";

/// The report of a job waiting for budget, beside its spec in `processing/`.
#[derive(Debug, Serialize)]
struct WaitingReport<'a> {
    spec: &'a str,
    state: JobState,
    job_id: &'a str,
    model: &'a str,
    submitted: bool,
    /// Why it waits, exactly as `jobs`, `show` and the web UI say it.
    reason: &'a str,
    price_rmb: String,
    next_step: &'static str,
    at: String,
}

/// The report file of `job` in `dir`: takes of one spec share its file, so each has its own.
fn report_name(job: &JobRecord, spec_file: &str) -> String {
    match &job.take_group {
        Some(_) => format!("{spec_file}.take-{}.report.json", job.take_no),
        None => format!("{spec_file}.report.json"),
    }
}

/// The waiting report of `job`, beside its spec (in `processing/`).
pub fn waiting_report_path(inbox: &Inbox, job: &JobRecord) -> PathBuf {
    inbox.folder(job.spec_place).join(report_name(job, &job.spec_file))
}

/// Writes (or replaces) the report of a job waiting for budget for `reason`, beside its spec.
pub fn waiting(inbox: &Inbox, job: &JobRecord, reason: &str, price_fen: i64) -> io::Result<PathBuf> {
    let report = WaitingReport {
        spec: &job.spec_name,
        state: JobState::WaitingBudget,
        job_id: &job.id,
        model: &job.model,
        submitted: false,
        reason,
        price_rmb: Fen(price_fen).to_string(),
        next_step: WAITING_NEXT_STEP,
        at: rfc3339(crate::time::now_ms()),
    };
    let path = waiting_report_path(inbox, job);
    write_json(&path, &report)?;
    Ok(path)
}

/// Removes the waiting report of `job`, if there is one (it was submitted, or it ended).
pub fn clear_waiting(inbox: &Inbox, job: &JobRecord) -> io::Result<()> {
    match std::fs::remove_file(waiting_report_path(inbox, job)) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Writes a terminal job's report and moves its spec to `done/` or `failed/`; returns the place
/// and the spec's file name there.
pub fn settle(inbox: &Inbox, job: &JobRecord, assets: &[Asset], money: &Money) -> io::Result<(SpecPlace, String)> {
    let place = if job.state.is_archived() { SpecPlace::Done } else { SpecPlace::Failed };
    let dir = inbox.folder(place);
    let source = inbox.folder(job.spec_place).join(&job.spec_file);
    let name = if source.exists() { unique_name(&dir, &job.spec_file, &job.id) } else { job.spec_file.clone() };
    let report = JobReport {
        spec: &job.spec_name,
        state: job.state,
        job_id: &job.id,
        model: &job.model,
        task_id: job.task_id.as_deref(),
        assets,
        error: job.error.as_ref().filter(|_| matches!(job.state, JobState::Failed | JobState::ArchivedWithWarnings)),
        next_step: next_step(job),
        submissions: job.attempts,
        cost: Cost::of(job, money),
        created_at: rfc3339(job.created_at),
        archived_at: job.archived_at.map(rfc3339),
    };
    // Takes of one spec share its file: each writes its own report beside it.
    write_json(&dir.join(report_name(job, &name)), &report)?;
    // A job that waited for budget and then ended leaves no waiting report behind.
    if place != job.spec_place {
        clear_waiting(inbox, job)?;
    }
    if source.exists() {
        std::fs::rename(&source, dir.join(&name))?;
    }
    Ok((place, name))
}

/// What a person can do next about `job`, as its report and its page say.
pub fn next_step(job: &JobRecord) -> String {
    match (job.state, job.error.as_ref().map(|e| e.code.as_str())) {
        (JobState::WaitingBudget, _) => WAITING_NEXT_STEP.to_owned(),
        (JobState::Uncertain, _) => "the platform may have accepted this job (it may be charged) but vidkeep lost the answer; look it up in the platform's console, then `vidkeep resolve` it (resubmit or abandon)".to_owned(),
        (JobState::Archived, _) => "nothing: the video and its cover are archived; `vidkeep verify` re-checks them".to_owned(),
        (JobState::ArchivedWithWarnings, _) => "the video and its cover are archived, but the video is not what the model promises (see the error); check it before using it, and ask the platform about the charge if it is unusable".to_owned(),
        // The platform does not say whether a failed task is billed; the ledger counts it, so
        // the page and the report say the same as the cost line beside them.
        (_, Some("task-failed")) => "the platform accepted this task and then could not make the video; the ledger counts it as charged at list price, as the platform does not say whether a failed task is billed (check the bill); drop the spec again to retry, perhaps with a changed prompt".to_owned(),
        (_, Some("abandoned")) => "a person abandoned this job".to_owned(),
        // Queued with an error: a refused submission that is tried again (an account pause, an
        // overload, a network error before sending), not a fault of the spec.
        (JobState::Queued, Some(_)) => "nothing, unless the error names the account: the submission was refused or \
             not sent, nothing was charged, and vidkeep sends it again by itself at the next attempt; after a \
             balance, quota or API-key error, top up or fix the key, then restart vidkeep to try at once"
            .to_owned(),
        (_, Some(code)) if code.starts_with("platform-") => {
            "the platform refused the request; fix the spec as the error says and drop it again".to_owned()
        }
        _ => "see the error; drop the spec again to retry".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_say_whether_a_retry_is_charged_and_helps() {
        let mut job = crate::catalog::JobRecord::for_test("j1");
        job.state = JobState::Failed;
        job.error = Some(JobError::new("platform-1301", "unsafe"));
        let refused = Money { attempts: 1, charged_fen: 0, possibly_charged_fen: 0, not_charged: 1, lost_fen: 0 };
        let cost = Cost::of(&job, &refused);
        assert_eq!(cost.summary, "cost 0.00 RMB charged (1 attempt(s), 1 not charged)");
        assert!(cost.retry.as_deref().is_some_and(|r| r.contains("not likely to help")), "{cost:?}");
        job.error = Some(JobError::new("platform-1305", "busy"));
        assert!(
            Cost::of(&job, &refused).retry.is_some_and(|r| r.contains("likely to help") && !r.contains("not likely"))
        );
        job.error = Some(JobError::new("task-failed", "FAIL"));
        let charged = Money { attempts: 1, charged_fen: 250, possibly_charged_fen: 0, not_charged: 0, lost_fen: 0 };
        let cost = Cost::of(&job, &charged);
        assert_eq!(cost.charged_rmb, "2.50");
        assert!(cost.retry.is_some_and(|r| r.contains("charged again") && r.contains("may help")));
        let step = next_step(&job);
        assert!(step.contains("counts it as charged") && !step.contains("may have been"), "as the cost line: {step}");
        // A refusal that is retried (an account pause, an overload) is not the spec's fault.
        job.state = JobState::Queued;
        job.error = Some(JobError::new("platform-1113", "the balance is exhausted"));
        let step = next_step(&job);
        assert!(step.contains("by itself") && step.contains("top up") && !step.contains("fix the spec"), "{step}");
        job.state = JobState::Archived;
        job.error = None;
        assert_eq!(Cost::of(&job, &charged).retry, None);
    }

    #[test]
    fn clashing_names_get_a_tag() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(unique_name(dir.path(), "fox.json", "0190abcd-1234"), "fox.json");
        std::fs::write(dir.path().join("fox.json"), "{}").expect("write");
        assert_eq!(unique_name(dir.path(), "fox.json", "0190abcd-12345678"), "fox.12345678.json");
    }
}
