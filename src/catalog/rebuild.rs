//! Restoring archived jobs from their sidecars (`vidkeep catalog rebuild`): the disaster
//! recovery the sidecars exist for.
//!
//! A sidecar (`<date>/<job id>/vidkeep.json`, written after the job's files are stored) holds
//! everything but the job's history. What a rebuilt catalogue cannot know, and how it fills it:
//!
//! - the state history (`job_events`): one event, "rebuilt from <sidecar key>";
//! - submissions before the accepted one (refused, or uncertain and possibly charged): only
//!   the accepted submission is restored, so `charged` counts it and `possibly_charged` is 0;
//! - the exact request body sent (images inlined): the request as shown to people is kept as
//!   the body; the input images themselves are in storage (`inputs/`) and listed;
//! - where the spec file is: `done/`, under its name as dropped;
//! - `archived_at` is the time the sidecar was written, a few milliseconds before the job's
//!   archive commit; the result's links (`video_url`, `cover_url`) come from the platform's
//!   answer as it was kept in the sidecar;
//! - takes and the result's expiry, for sidecars written before they were recorded there: one
//!   take, and the expiry a day after the result.
//!
//! Rebuilt jobs are final (archived), so nothing is ever submitted or downloaded because of
//! them.

use super::conn::{Begin, Sql as _, Tx, args};
use serde::Deserialize;
use serde_json::Value;

use super::records::{insert_asset, insert_inputs};
use super::{Asset, AssetKind, Catalog, CatalogError, Input};
use crate::domain::RESULT_URL_LIFETIME_MS;

/// The sidecar format this vidkeep reads.
pub const SIDECAR_VERSION: u32 = 1;

/// A sidecar as read back from storage.
#[derive(Debug, Clone, Deserialize)]
pub(super) struct Sidecar {
    vidkeep_sidecar: u32,
    job_id: String,
    spec: String,
    model: String,
    #[serde(default)]
    prompt: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    project: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    request: Value,
    fingerprint: String,
    #[serde(default)]
    request_id: Option<String>,
    task_id: String,
    #[serde(default)]
    submissions: u32,
    #[serde(default)]
    price_fen: i64,
    created_at: String,
    #[serde(default)]
    submitted_at: Option<String>,
    #[serde(default)]
    result_at: Option<String>,
    archived_at: String,
    #[serde(default)]
    expires_at: Option<String>,
    #[serde(default)]
    platform_result: Value,
    assets: Vec<Asset>,
    #[serde(default)]
    provenance: Provenance,
    #[serde(default)]
    take: Option<Take>,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct Provenance {
    #[serde(default)]
    spec_sha256: Option<String>,
    #[serde(default)]
    inputs: Vec<Input>,
}

#[derive(Debug, Clone, Deserialize)]
struct Take {
    group: String,
    no: u32,
}

/// Times in a sidecar are RFC 3339; a job row keeps Unix milliseconds.
fn ms(field: &'static str, text: &str) -> Result<i64, String> {
    let at: jiff::Timestamp = text.parse().map_err(|e| format!("{field} {text:?} is not a time: {e}"))?;
    Ok(at.as_millisecond())
}

/// A sidecar checked and turned into the values of its rows.
#[derive(Debug, Clone)]
pub struct Restorable {
    side: Sidecar,
    created_at: i64,
    submitted_at: Option<i64>,
    result_at: Option<i64>,
    archived_at: i64,
    expires_at: Option<i64>,
    video_url: String,
    cover_url: Option<String>,
}

impl Restorable {
    /// Reads the sidecar `bytes` found at `key`; says in words what makes it unusable.
    pub fn parse(key: &str, bytes: &[u8]) -> Result<Restorable, String> {
        let side: Sidecar = serde_json::from_slice(bytes).map_err(|e| format!("not a vidkeep sidecar: {e}"))?;
        if side.vidkeep_sidecar != SIDECAR_VERSION {
            return Err(format!(
                "sidecar version {} is not the one this vidkeep reads ({SIDECAR_VERSION})",
                side.vidkeep_sidecar
            ));
        }
        if !key.contains(&side.job_id) {
            return Err(format!("it names job {}, which is not the job of its key", side.job_id));
        }
        if !side.assets.iter().any(|a| a.kind == AssetKind::Video) {
            return Err("it records no video".to_owned());
        }
        let opt = |field, text: &Option<String>| text.as_deref().map(|t| ms(field, t)).transpose();
        let result_at = opt("result_at", &side.result_at)?;
        let first = side.platform_result.get("video_result").and_then(|v| v.get(0));
        let url = |field: &str| first.and_then(|r| r.get(field)).and_then(Value::as_str).map(str::to_owned);
        Ok(Restorable {
            created_at: ms("created_at", &side.created_at)?,
            submitted_at: opt("submitted_at", &side.submitted_at)?,
            archived_at: ms("archived_at", &side.archived_at)?,
            expires_at: opt("expires_at", &side.expires_at)?
                .or_else(|| result_at.map(|at| at.saturating_add(RESULT_URL_LIFETIME_MS))),
            result_at,
            video_url: url("url").unwrap_or_default(),
            cover_url: url("cover_image_url"),
            side,
        })
    }

    /// The job this sidecar describes.
    pub fn job_id(&self) -> &str {
        &self.side.job_id
    }
}

/// What [`Catalog::restore`] did with one sidecar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restored {
    /// The job is in the catalogue now.
    New,
    /// The catalogue already had a job of this id; it is left as it was.
    Known,
}

impl Catalog {
    /// Restores the archived jobs of `sidecars` (with their submission, assets and inputs) in
    /// one transaction; one answer per sidecar, in order.
    pub fn restore(&mut self, sidecars: &[Restorable]) -> Result<Vec<Restored>, CatalogError> {
        let tx = self.conn.begin("begin restore", Begin::Immediate)?;
        let mut answers = Vec::with_capacity(sidecars.len());
        for r in sidecars {
            let known: Option<i64> =
                tx.first("find job", "SELECT 1 FROM jobs WHERE id = ?1", args![r.job_id()], |row| row.get(0))?;
            if known.is_some() {
                answers.push(Restored::Known);
                continue;
            }
            restore_one(&tx, r)?;
            answers.push(Restored::New);
        }
        tx.commit("commit restore")?;
        Ok(answers)
    }
}

fn restore_one(tx: &Tx<'_>, r: &Restorable) -> Result<(), CatalogError> {
    let s = &r.side;
    let findings: Vec<&str> =
        s.assets.iter().filter_map(|a| a.probe.as_ref()).flat_map(|p| p.findings.iter().map(String::as_str)).collect();
    let (state, code, message) = if findings.is_empty() {
        ("archived", None, None)
    } else {
        ("archived_with_warnings", Some("probe-mismatch"), Some(findings.join("; ")))
    };
    // Intake reads a spec's format from its extension, so the name says it.
    let format = match s.spec.rsplit_once('.').map(|(_, ext)| ext.to_ascii_lowercase()).as_deref() {
        Some("json") => "json",
        Some("toml") => "toml",
        _ => "text",
    };
    let (group, take_no) = s.take.as_ref().map_or((None, 1), |t| (Some(t.group.as_str()), t.no));
    let request = s.request.to_string();
    let result = (!s.platform_result.is_null()).then(|| s.platform_result.to_string());
    tx.execute(
        "restore job",
        "INSERT INTO jobs (id, spec_name, spec_file, spec_place, spec_sha256, spec_format, fingerprint, model, \
         prompt, name, project, tags, request_display, price_fen, state, attempts, request_id, task_id, \
         video_url, cover_url, result_json, error_code, error_message, created_at, submitted_at, result_at, \
         archived_at, finished_at, updated_at, take_group, take_no, expires_at) \
         VALUES (?1, ?2, ?2, 'done', ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, \
         ?20, ?21, ?22, ?23, ?24, ?25, ?25, ?25, ?26, ?27, ?28)",
        args![
            s.job_id,
            s.spec,
            s.provenance.spec_sha256.as_deref().unwrap_or_default(),
            format,
            s.fingerprint,
            s.model,
            s.prompt,
            s.name,
            s.project,
            serde_json::to_string(&s.tags).unwrap_or_else(|_| "[]".to_owned()),
            request,
            s.price_fen,
            state,
            s.submissions.max(1),
            s.request_id,
            s.task_id,
            r.video_url,
            r.cover_url,
            result,
            code,
            message,
            r.created_at,
            r.submitted_at,
            r.result_at,
            r.archived_at,
            group,
            take_no,
            r.expires_at,
        ],
    )?;
    tx.execute("restore request", "INSERT INTO job_requests (job_id, body) VALUES (?1, ?2)", args![s.job_id, request])?;
    if let Some(request_id) = &s.request_id {
        let at = r.submitted_at.unwrap_or(r.created_at);
        tx.execute(
            "restore submission",
            "INSERT INTO submissions (job_id, request_id, started_at, outcome, task_id, finished_at, price_fen) \
             VALUES (?1, ?2, ?3, 'accepted', ?4, ?3, ?5)",
            args![s.job_id, request_id, at, s.task_id, s.price_fen],
        )?;
    }
    for asset in &s.assets {
        let source = match asset.kind {
            AssetKind::Video => r.video_url.clone(),
            AssetKind::Cover => r.cover_url.clone().unwrap_or_default(),
        };
        let asset = Asset { job_id: s.job_id.clone(), source_url: source, ..asset.clone() };
        insert_asset(tx, &asset, r.archived_at)?;
    }
    insert_inputs(tx, &s.job_id, &s.provenance.inputs)?;
    tx.execute(
        "restore event",
        "INSERT INTO job_events (job_id, at, from_state, to_state, note) VALUES (?1, ?2, NULL, ?3, ?4)",
        args![s.job_id, r.archived_at, state, "rebuilt from its sidecar in storage; earlier history is not kept there"],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sidecar(version: u32, job: &str, assets: &str) -> Vec<u8> {
        format!(
            r#"{{"vidkeep_sidecar": {version}, "job_id": "{job}", "spec": "a.txt", "model": "viduq1-text",
            "fingerprint": "f", "task_id": "t", "created_at": "2026-12-01T10:00:00.000Z",
            "archived_at": "2026-12-01T10:05:00.250Z", "result_at": "2026-12-01T10:04:00Z", "assets": {assets}}}"#
        )
        .into_bytes()
    }

    const VIDEO: &str = r#"[{"kind": "video", "sha256": "00", "bytes": 1, "key": "k", "content_type": "video/mp4"}]"#;

    #[test]
    fn a_sidecar_is_read_with_its_times_or_refused_in_words() {
        let good = Restorable::parse("2026/12/01/j1/vidkeep.json", &sidecar(1, "j1", VIDEO)).expect("good");
        assert_eq!(good.archived_at, 1_796_119_500_250);
        assert_eq!(good.expires_at, Some(1_796_119_440_000 + RESULT_URL_LIFETIME_MS), "a day after the result");
        let refused = |key: &str, bytes: Vec<u8>| Restorable::parse(key, &bytes).expect_err("refused");
        assert!(refused("x/j1/vidkeep.json", sidecar(2, "j1", VIDEO)).contains("version 2"));
        assert!(refused("x/j2/vidkeep.json", sidecar(1, "j1", VIDEO)).contains("not the job of its key"));
        assert!(refused("x/j1/vidkeep.json", sidecar(1, "j1", "[]")).contains("no video"));
        assert!(refused("x/j1/vidkeep.json", b"[1, 2]".to_vec()).contains("not a vidkeep sidecar"));
    }
}
