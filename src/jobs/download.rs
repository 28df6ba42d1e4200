//! Archiving one job's results: video, cover, then the sidecar, then `archived`.
//! Assets already recorded are skipped, so a restarted download redoes only what is missing.
//!
//! Also the engine's download step ([`fetch`]): what a failure means. A link answering "gone"
//! makes it ask the platform for fresh links before counting it; the job fails as
//! `result-expired` only when the task is unknown, the same dead links come back three times,
//! or the result's expiry (`expires_at`, a day after the task succeeded unless the platform
//! said otherwise) has passed. Anything else is retried with backoff.

use crate::telemetry::Escaped;
use object_store::path::Path as Key;
use serde_json::{Value, json};

use tokio::time::Instant;

use super::engine::{Ctx, EngineError, Next};
use super::{Change, JobError, JobState, backoff};
use crate::api::{ErrorClass, TaskStatus};
use crate::archive::provenance::keep_inputs;
use crate::archive::{ArchiveError, Archiver};
use crate::catalog::{Asset, AssetKind, CatalogError, Db, Input, JobRecord};
use crate::domain::RESULT_URL_LIFETIME_MS;

/// The error code of a paid result that expired before it was archived: money lost.
pub(super) const RESULT_EXPIRED: &str = "result-expired";
use crate::probe::Promise;
use crate::store::job_key;
use crate::time::{now_ms, rfc3339};

/// A result URL answering 403/404 this many times in a row (the platform giving no fresh one)
/// is taken as expired.
const GONE_LIMIT: u32 = 3;

/// Why archiving a job stopped.
#[derive(Debug, thiserror::Error)]
pub(super) enum DownloadError {
    /// A download or the store failed: retry later.
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    /// The catalogue failed: stop.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
}

/// Stores every result file of `job` and marks it archived.
/// Returns the bytes of the job's stored files.
pub(super) async fn archive_job(db: &Db, archiver: &Archiver, job: &JobRecord) -> Result<u64, DownloadError> {
    let mut assets = db.assets(&job.id).await?;
    let mut wanted = Vec::new();
    if let Some(url) = &job.video_url {
        wanted.push((AssetKind::Video, url.clone(), "video.mp4".to_owned(), "video/mp4"));
    }
    if let Some(url) = &job.cover_url {
        wanted.push((AssetKind::Cover, url.clone(), format!("cover.{}", image_ext(url)), "image/jpeg"));
    }
    for (kind, url, file, default_type) in wanted {
        if assets.iter().any(|a| a.kind == kind) {
            continue;
        }
        let key = job_key(job.created_at, &job.id, &file);
        let stored = archiver.fetch(&url, &key, default_type).await?;
        tracing::info!(job_id = %job.id, kind = kind.as_str(), key = %key, bytes = stored.bytes, sha256 = %stored.sha256, "stored");
        let probe = match kind {
            AssetKind::Video => {
                let request = serde_json::from_str(&job.request_display).unwrap_or(Value::Null);
                archiver
                    .probe(&key, stored.bytes, &Promise::for_job(&job.model, &request))
                    .await
                    .map_err(ArchiveError::Store)?
            }
            AssetKind::Cover => None,
        };
        if let Some(p) = probe.as_ref().filter(|p| !p.ok()) {
            tracing::warn!(job_id = %job.id, key = %key, findings = ?p.findings, "the video is not what the model promises; kept, with warnings");
        }
        let asset = Asset {
            job_id: job.id.clone(),
            kind,
            sha256: stored.sha256,
            bytes: stored.bytes,
            key: key.to_string(),
            content_type: stored.content_type,
            source_url: url,
            probe,
        };
        db.record_asset(asset.clone()).await?;
        assets.push(asset);
    }
    let (body, spec_sha256) = db.provenance_of(&job.id).await?;
    let inputs = keep_inputs(archiver.store(), &body).await.map_err(ArchiveError::Store)?;
    db.record_inputs(&job.id, inputs.clone()).await?;
    let mut sidecar = sidecar(job, &assets);
    sidecar["provenance"] = provenance(job, &spec_sha256, &assets, &inputs);
    let key: Key = job_key(job.created_at, &job.id, "vidkeep.json");
    let bytes = serde_json::to_vec_pretty(&sidecar).unwrap_or_default();
    archiver.put_small(&key, bytes).await.map_err(ArchiveError::Store)?;
    let findings: Vec<String> =
        assets.iter().filter_map(|a| a.probe.as_ref()).filter(|p| !p.ok()).flat_map(|p| p.findings.clone()).collect();
    let change = if findings.is_empty() { Change::Archived } else { Change::ArchivedWithWarnings(findings.join("; ")) };
    db.transition(&job.id, JobState::Downloading, change).await?;
    tracing::info!(job_id = %job.id, "archived");
    Ok(assets.iter().map(|a| a.bytes).sum())
}

fn image_ext(url: &str) -> &'static str {
    let path = url.split(['?', '#']).next().unwrap_or(url).to_ascii_lowercase();
    if path.ends_with(".png") {
        "png"
    } else if path.ends_with(".webp") {
        "webp"
    } else {
        "jpg"
    }
}

/// Everything needed to rebuild this job's catalogue row from storage alone. Holds no secret:
/// the request is the one shown to people, and the API key is never part of any request body.
fn sidecar(job: &JobRecord, assets: &[Asset]) -> Value {
    let parse = |s: Option<&str>| s.and_then(|s| serde_json::from_str::<Value>(s).ok()).unwrap_or(Value::Null);
    json!({
        "vidkeep_sidecar": 1,
        "job_id": job.id,
        "spec": job.spec_name,
        "model": job.model,
        "prompt": job.prompt,
        "name": job.name,
        "project": job.project,
        "tags": job.tags,
        "request": parse(Some(&job.request_display)),
        "fingerprint": job.fingerprint,
        "request_id": job.request_id,
        "task_id": job.task_id,
        "submissions": job.attempts,
        "price_fen": job.price_fen,
        "created_at": rfc3339(job.created_at),
        "submitted_at": job.submitted_at.map(rfc3339),
        "result_at": job.result_at.map(rfc3339),
        "expires_at": job.expires_at.map(rfc3339),
        "take": job.take_group.as_ref().map(|group| json!({ "group": group, "no": job.take_no })),
        "archived_at": rfc3339(now_ms()),
        "platform_result": parse(job.result_json.as_deref()),
        "assets": assets,
    })
}

/// The chain from the spec file to the stored files: spec SHA-256 → request fingerprint →
/// `request_id` → task id → asset SHA-256, with the input images kept in storage.
fn provenance(job: &JobRecord, spec_sha256: &str, assets: &[Asset], inputs: &[Input]) -> Value {
    let video = assets.iter().find(|a| a.kind == AssetKind::Video).map(|a| a.sha256.as_str());
    json!({
        "spec_sha256": spec_sha256,
        "fingerprint": job.fingerprint,
        "request_id": job.request_id,
        "task_id": job.task_id,
        "video_sha256": video,
        "inputs": inputs,
    })
}

/// The engine's download step for `job`: archive it, or decide what its failure means (retry,
/// refresh expired links, or fail it as `expired`).
pub(super) async fn fetch(ctx: &Ctx, job: &JobRecord, attempts: u32, gone: u32) -> Result<Next, EngineError> {
    let s = &ctx.settings;
    let started = std::time::Instant::now();
    let e = match archive_job(&ctx.db, &ctx.archiver, job).await {
        Ok(bytes) => {
            ctx.ops.metrics().download("archived");
            ctx.ops.metrics().archived(bytes, started.elapsed().as_secs_f64());
            return Ok(Next::Idle);
        }
        Err(DownloadError::Catalog(e)) => return Err(e.into()),
        Err(DownloadError::Archive(e)) => e,
    };
    if e.is_permanent() {
        return give_up(ctx, job, &e).await;
    }
    let id = job.id.clone();
    let mut gone_now = 0;
    let now = ctx.ops.clock().now_ms();
    let expiry = job.expires_at.or_else(|| job.result_at.map(|at| at.saturating_add(RESULT_URL_LIFETIME_MS)));
    let past_expiry = expiry.is_some_and(|at| now > at);
    // Past its expiry a failing link is dead; a store that is down is not the link's fault.
    if past_expiry && !matches!(e, ArchiveError::Store(_)) {
        let at = expiry.map(rfc3339).unwrap_or_default();
        return expire(ctx, job, &format!("{e}, after the result's links expired at {at}")).await;
    }
    if matches!(e, ArchiveError::Gone(_)) {
        match refresh_links(ctx, job).await? {
            Refresh::Fresh => {
                // New links: try them at once, the gone count starts over.
                ctx.ops.metrics().download("refreshed");
                return Ok(Next::DownloadAt(Instant::now(), false));
            }
            Refresh::TaskGone(why) => return expire(ctx, job, &format!("{e}; {why}")).await,
            Refresh::Same => gone_now = gone + 1,
        }
        if gone_now >= GONE_LIMIT {
            return expire(ctx, job, &e.to_string()).await;
        }
    }
    tracing::warn!(job_id = %job.id, error = %Escaped(&e), "download failed; will retry");
    ctx.ops.metrics().download("retry");
    let error = JobError::new(e.code(), e.to_string());
    ctx.db.note_error(&id, error).await?;
    let delay = backoff(s.retry_base, s.retry_max, attempts + 1);
    Ok(Next::DownloadAt(Instant::now() + delay, gone_now > 0))
}

/// Fails a job whose result URL can never be fetched (refused, too big), with the error's code.
async fn give_up(ctx: &Ctx, job: &JobRecord, e: &ArchiveError) -> Result<Next, EngineError> {
    let error = JobError::new(
        e.code(),
        format!("{e}. The task was paid for; its result is not archived (see [archive] in the config)"),
    );
    tracing::error!(job_id = %job.id, code = e.code(), error = %e, "result not fetched; job failed");
    ctx.db.transition(&job.id, JobState::Downloading, Change::Failed(error)).await?;
    ctx.ops.metrics().download("refused");
    Ok(Next::Idle)
}

/// What asking the platform again about a task whose links answered "gone" found.
enum Refresh {
    /// The platform gave other links; they were recorded.
    Fresh,
    /// The same links (or no answer): count the failure.
    Same,
    /// The platform no longer knows the task: nothing can be fetched any more.
    TaskGone(String),
}

/// Result links expire (a day on the real platform); before counting a link as gone, ask
/// `async-result` again, which may hand out fresh ones.
async fn refresh_links(ctx: &Ctx, job: &JobRecord) -> Result<Refresh, EngineError> {
    let Some(task_id) = job.task_id.as_deref() else { return Ok(Refresh::Same) };
    let report = match ctx.api.poll(task_id).await {
        Ok(report) => report,
        Err(e) if e.class(false) == ErrorClass::TaskGone => return Ok(Refresh::TaskGone(e.explain())),
        Err(e) => {
            tracing::warn!(job_id = %job.id, task_id, error = %Escaped(&e), "could not ask for fresh result links");
            return Ok(Refresh::Same);
        }
    };
    let TaskStatus::Success { video_url, cover_url } = report.status else { return Ok(Refresh::Same) };
    if Some(&video_url) == job.video_url.as_ref() && cover_url == job.cover_url {
        return Ok(Refresh::Same);
    }
    tracing::info!(job_id = %job.id, task_id, "the result links had expired; the platform gave fresh ones");
    // Fresh links keep the result's expiry unless the platform names a new one.
    let expires_at = platform_expiry(&video_url);
    ctx.db.refresh_result(&job.id, video_url, cover_url, report.raw, expires_at).await?;
    Ok(Refresh::Fresh)
}

/// When a result link says it expires, if it does: a signed URL's `Expires=<unix seconds>`
/// (the platform's other hosts sign links that way). `None` means the platform did not say.
pub(super) fn platform_expiry(url: &str) -> Option<i64> {
    let url = url::Url::parse(url).ok()?;
    let (_, value) = url.query_pairs().find(|(k, _)| k.eq_ignore_ascii_case("expires"))?;
    let seconds: i64 = value.parse().ok()?;
    (seconds > 0).then(|| seconds.saturating_mul(1000))
}

/// Fails a job whose paid result can no longer be fetched, with the code `result-expired`.
async fn expire(ctx: &Ctx, job: &JobRecord, detail: &str) -> Result<Next, EngineError> {
    let error = JobError::new(
        RESULT_EXPIRED,
        format!(
            "the result could not be downloaded before its link expired ({detail}). The task was paid for \
             and nothing was kept: the money is lost; drop the spec again to make the video anew"
        ),
    );
    tracing::error!(job_id = %job.id, task_id = job.task_id.as_deref().unwrap_or(""), spec = %job.spec_name, "paid result expired before it was archived; job failed as result-expired");
    ctx.db.transition(&job.id, JobState::Downloading, Change::Failed(error)).await?;
    ctx.ops.metrics().download("expired");
    Ok(Next::Idle)
}

#[cfg(test)]
mod tests {
    use super::platform_expiry;

    #[test]
    fn a_signed_link_tells_its_expiry_and_a_plain_one_does_not() {
        assert_eq!(
            platform_expiry("https://x.ufileos.com/a.png?UCloudPublicKey=k&Signature=s&Expires=1764000000"),
            Some(1_764_000_000_000)
        );
        assert_eq!(platform_expiry("https://aigc-files.bigmodel.cn/api/cogvideo/a_0.mp4"), None);
        assert_eq!(platform_expiry("https://h/a.mp4?Expires=soon"), None);
    }
}
