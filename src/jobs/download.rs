//! Archiving one job's results: video, cover, then the sidecar, then `archived`.
//! Assets already recorded are skipped, so a restarted download redoes only what is missing.

use object_store::path::Path as Key;
use serde_json::{Value, json};

use super::{Change, JobState};
use crate::archive::{ArchiveError, Archiver};
use crate::catalog::{Asset, AssetKind, CatalogError, Db, JobRecord};
use crate::store::job_key;
use crate::time::{now_ms, rfc3339};

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
pub(super) async fn archive_job(db: &Db, archiver: &Archiver, job: &JobRecord) -> Result<(), DownloadError> {
    let id = job.id.clone();
    let mut assets = db.call(move |c| c.assets(&id)).await?;
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
        let asset = Asset {
            job_id: job.id.clone(),
            kind,
            sha256: stored.sha256,
            bytes: stored.bytes,
            key: key.to_string(),
            content_type: stored.content_type,
            source_url: url,
        };
        let record = asset.clone();
        db.call(move |c| c.record_asset(&record)).await?;
        assets.push(asset);
    }
    let sidecar = sidecar(job, &assets);
    let key: Key = job_key(job.created_at, &job.id, "vidkeep.json");
    let bytes = serde_json::to_vec_pretty(&sidecar).unwrap_or_default();
    archiver.put_small(&key, bytes).await.map_err(ArchiveError::Store)?;
    let id = job.id.clone();
    db.call(move |c| c.transition(&id, JobState::Downloading, &Change::Archived)).await?;
    tracing::info!(job_id = %job.id, "archived");
    Ok(())
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
        "archived_at": rfc3339(now_ms()),
        "platform_result": parse(job.result_json.as_deref()),
        "assets": assets,
    })
}
