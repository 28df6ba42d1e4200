//! One task on the platform: its submission ([`submit`]) and its polls ([`poll`]), each a step
//! the engine runs as a task, and what each answer does to the job. The download that follows a
//! task's success is [`super::download`].

use std::time::Duration;

use tokio::time::Instant;

use super::download::platform_expiry;
use super::engine::{Ctx, EngineError, Next};
use super::{Change, JobError, JobState, backoff};
use crate::api::{ApiError, ErrorClass, TaskStatus, same_model};
use crate::catalog::JobRecord;
use crate::telemetry::Escaped;
use crate::time::{after, now_ms};

/// Sends a job the engine recorded as `submitting` and records the answer: `submitted` with its
/// task id, or what [`refused`] makes of an error.
pub(super) async fn submit(
    ctx: &Ctx,
    job: &JobRecord,
    body: &serde_json::Map<String, serde_json::Value>,
    request_id: &str,
) -> Result<Next, EngineError> {
    let result = ctx.api.submit(body, request_id).await;
    count_api(ctx, result.as_ref().err());
    let (change, next) = match result {
        Ok(accepted) => {
            ctx.ops.metrics().submission("accepted");
            tracing::info!(job_id = %job.id, task_id = %Escaped(&accepted.task_id), "task accepted");
            let next = Next::PollAt(Instant::now() + ctx.settings.poll_interval);
            (Change::Submitted { task_id: accepted.task_id }, next)
        }
        Err(e) => refused(ctx, job, &e),
    };
    ctx.db.transition(&job.id, JobState::Submitting, change).await?;
    Ok(next)
}

/// What a failed submission does to the job and the engine.
fn refused(ctx: &Ctx, job: &JobRecord, e: &ApiError) -> (Change, Next) {
    let s = &ctx.settings;
    let error = JobError::new(e.code(), e.explain());
    // `Retry-After` may lengthen a delay up to `retry_max`, never beyond: an absurd value must
    // not park the job for days.
    let retry_at = |delay: Duration| after(now_ms(), delay.max(e.retry_after().unwrap_or_default().min(s.retry_max)));
    let attempt = u32::try_from(job.attempts + 1).unwrap_or(u32::MAX);
    if matches!(e, ApiError::NotSent(_)) {
        tracing::warn!(job_id = %job.id, code = %Escaped(&error.code), error = %Escaped(&e), "submission not sent: the platform could not be reached, nothing was charged");
    } else {
        tracing::warn!(job_id = %job.id, code = %Escaped(&error.code), error = %Escaped(&e), "submission refused");
    }
    let uncertain = matches!(e.class(true), ErrorClass::Uncertain);
    ctx.ops.metrics().submission(if uncertain { "uncertain" } else { "refused" });
    let requeue = |at| Change::Requeue { next_attempt_at: at, error: error.clone() };
    match e.class(true) {
        ErrorClass::Retry => (requeue(retry_at(backoff(s.retry_base, s.retry_max, attempt))), Next::Idle),
        ErrorClass::RateLimited => {
            (requeue(retry_at(backoff(s.retry_base, s.retry_max, attempt))), Next::RateLimited(job.model.clone()))
        }
        ErrorClass::AccountPaused | ErrorClass::Auth => {
            (requeue(retry_at(s.account_pause)), Next::Pause(e.code(), e.explain()))
        }
        ErrorClass::JobFatal | ErrorClass::TaskGone => (Change::Failed(error), Next::Idle),
        ErrorClass::Uncertain => (
            Change::Uncertain(JobError::new(
                "submit-answer-lost",
                format!(
                    "the answer to this submission was lost ({e}); the platform may have accepted and charged it. \
                     Check the platform console, then run `vidkeep resolve {} --resubmit` or `--abandon`",
                    job.id
                ),
            )),
            Next::Idle,
        ),
    }
}

/// Asks the platform about a submitted job's task and records an end (a result to download, a
/// failure, an overdue task); a task still running is polled again a poll interval later.
pub(super) async fn poll(ctx: &Ctx, job: &JobRecord) -> Result<Next, EngineError> {
    let Some(task_id) = job.task_id.clone() else { return Ok(Next::Idle) };
    let later = Next::PollAt(Instant::now() + ctx.settings.poll_interval);
    let polled = ctx.api.poll(&task_id).await;
    count_api(ctx, polled.as_ref().err());
    let change = match polled {
        Ok(report) => match report.status {
            TaskStatus::Processing(status) => match overdue(ctx, job, &format!("task status `{status}`")) {
                Some(change) => change,
                None => return Ok(later),
            },
            TaskStatus::Success { video_url, cover_url } => {
                tracing::info!(job_id = %job.id, task_id = %Escaped(&task_id), "task succeeded");
                if let Some(answered) = report.model.as_deref().filter(|m| !same_model(&job.model, m)) {
                    tracing::warn!(job_id = %job.id, task_id = %Escaped(&task_id), sent = %job.model, answered = %Escaped(&answered), "the platform names another model for this task");
                }
                let expires_at = platform_expiry(&video_url);
                Change::ResultReady { video_url, cover_url, result_json: report.raw, expires_at }
            }
            TaskStatus::SuccessWithoutResult => Change::Failed(JobError::new(
                "task-no-result",
                "the platform reported SUCCESS but gave no video URL; drop the spec again to retry",
            )),
            TaskStatus::Fail => Change::Failed(JobError::new(
                "task-failed",
                "the platform reported the task as FAIL and gives no reason",
            )),
        },
        Err(e) => match e.class(false) {
            ErrorClass::TaskGone => Change::Failed(JobError::new("task-gone", e.explain())),
            ErrorClass::Auth => {
                tracing::error!(job_id = %job.id, task_id = %Escaped(&task_id), error = %Escaped(&e), "poll refused: API key not accepted");
                return Ok(later);
            }
            _ => {
                tracing::warn!(job_id = %job.id, task_id = %Escaped(&task_id), error = %Escaped(&e), "poll failed; will poll again");
                match overdue(ctx, job, &format!("no usable answer ({})", e.code())) {
                    Some(change) => change,
                    None => return Ok(later),
                }
            }
        },
    };
    ctx.db.transition(&job.id, JobState::Submitted, change).await?;
    Ok(Next::Idle)
}

/// `uncertain`, when the task has been unfinished for longer than `jobs.task_deadline` since it
/// was accepted: a status vidkeep does not know (or `PROCESSING` for ever) would otherwise keep
/// its in-flight slot for good.
fn overdue(ctx: &Ctx, job: &JobRecord, seen: &str) -> Option<Change> {
    let deadline = ctx.settings.task_deadline;
    let since = job.submitted_at?;
    if now_ms() < after(since, deadline) {
        return None;
    }
    let shown: String = seen.chars().filter(|c| !c.is_control()).take(80).collect();
    tracing::error!(job_id = %job.id, task_id = job.task_id.as_deref().unwrap_or(""), status = %shown,
        "task unfinished past jobs.task_deadline; job is uncertain");
    Some(Change::Uncertain(JobError::new(
        "task-deadline",
        format!(
            "the platform still gives {shown} {} after it accepted the task \
             (jobs.task_deadline); the task was paid for and its outcome is unknown. Check the platform console, \
             then run `vidkeep resolve {} --resubmit` or `--abandon`",
            humantime::format_duration(deadline),
            job.id
        ),
    )))
}

/// Counts one API call's outcome: whether the platform answered at all, and its error code.
fn count_api(ctx: &Ctx, error: Option<&ApiError>) {
    if !matches!(error, Some(ApiError::NotSent(_) | ApiError::NoAnswer(_))) {
        ctx.ops.platform_answered();
    }
    if let Some(e) = error {
        ctx.ops.metrics().platform_error(&e.code());
    }
}
