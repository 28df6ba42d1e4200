//! Asset records, the event trail and rejected specs.

use rusqlite::params;
use serde::{Deserialize, Serialize};

use super::{Catalog, CatalogError, sql};
use crate::probe::{Figures, Probe};
use crate::time::now_ms;

/// Which result file an asset is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AssetKind {
    /// The MP4.
    Video,
    /// The cover image.
    Cover,
}

impl AssetKind {
    /// Name stored in the catalogue.
    pub fn as_str(self) -> &'static str {
        match self {
            AssetKind::Video => "video",
            AssetKind::Cover => "cover",
        }
    }
}

/// An archived object. Read back from a sidecar (`catalog rebuild`), it has no job id or source
/// URL: the sidecar holds those once for the job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Asset {
    /// The job it belongs to.
    #[serde(skip)]
    pub job_id: String,
    /// Video or cover.
    pub kind: AssetKind,
    /// Lower-hex SHA-256 of the stored bytes.
    pub sha256: String,
    /// Size in bytes.
    pub bytes: u64,
    /// Object path relative to the storage root.
    pub key: String,
    /// MIME type.
    pub content_type: String,
    /// The URL it was fetched from.
    #[serde(skip)]
    pub source_url: String,
    /// What the media probe found (videos; `None` before the probe existed or when it is off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe: Option<Probe>,
}

/// One input image of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Input {
    /// Position in the request's `image_url` (0 for a single image).
    pub index: u32,
    /// SHA-256 of the image's bytes (lower hex); `None` for a remote URL vidkeep never read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Its key in storage; `None` for a remote URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Size in bytes (0 for a remote URL).
    pub bytes: u64,
    /// MIME type, or empty for a remote URL.
    pub content_type: String,
    /// The remote URL as sent; `None` for an image sent inline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// What re-reading a stored asset found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckResult {
    /// Hash and length match the record.
    Ok,
    /// No object under the key.
    Missing,
    /// The bytes differ from what was archived.
    Mismatch,
    /// The store could not be read.
    Unreadable,
}

impl CheckResult {
    /// Name stored in the catalogue.
    pub fn as_str(self) -> &'static str {
        match self {
            CheckResult::Ok => "ok",
            CheckResult::Missing => "missing",
            CheckResult::Mismatch => "mismatch",
            CheckResult::Unreadable => "unreadable",
        }
    }
}

/// Which assets a verification run reads.
#[derive(Debug, Clone, Default)]
pub struct CheckSelection {
    /// Only assets stored at or after this time (unix ms).
    pub stored_since: Option<i64>,
    /// Read only this share of them (0 < p ≤ 100), least recently checked first.
    pub sample_percent: Option<f64>,
}

/// One entry of a job's state history.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    /// When (unix ms; RFC 3339 in JSON).
    #[serde(serialize_with = "crate::time::serialize_rfc3339")]
    pub at: i64,
    /// From state (none for creation).
    pub from: Option<String>,
    /// To state.
    pub to: String,
    /// What happened.
    pub note: Option<String>,
}

/// A spec refused before it became a job.
#[derive(Debug, Clone, Serialize)]
pub struct Rejection {
    /// File name.
    pub spec_name: String,
    /// SHA-256 of its bytes.
    pub spec_sha256: String,
    /// Stable code.
    pub error_code: String,
    /// Why, in words.
    pub error_message: String,
    /// When (unix ms; RFC 3339 in JSON).
    #[serde(serialize_with = "crate::time::serialize_rfc3339")]
    pub at: i64,
}

impl Catalog {
    /// Records an asset; called only after the object is stored under its final key.
    pub fn record_asset(&mut self, asset: &Asset) -> Result<(), CatalogError> {
        insert_asset(&self.conn, asset, now_ms())
    }

    /// The assets of one job, video first.
    pub fn assets(&self, job_id: &str) -> Result<Vec<Asset>, CatalogError> {
        self.query_assets("WHERE job_id = ?1", Some(job_id))
    }

    /// The assets of each of `job_ids` (video first), in one read: for pages of an export.
    pub fn assets_of(&self, job_ids: &[&str]) -> Result<std::collections::HashMap<String, Vec<Asset>>, CatalogError> {
        let list = serde_json::to_string(job_ids).unwrap_or_default();
        let mut by_job = std::collections::HashMap::<String, Vec<Asset>>::new();
        for asset in self.query_assets("WHERE job_id IN (SELECT value FROM json_each(?1))", Some(&list))? {
            by_job.entry(asset.job_id.clone()).or_default().push(asset);
        }
        Ok(by_job)
    }

    /// The asset whose bytes hash to `sha256` (lower hex), if any.
    pub fn asset_by_sha256(&self, sha256: &str) -> Result<Option<Asset>, CatalogError> {
        Ok(self.select_assets("WHERE sha256 = ?1 ORDER BY stored_at LIMIT 1", &[&sha256])?.into_iter().next())
    }

    /// Every asset in the catalogue.
    pub fn all_assets(&self) -> Result<Vec<Asset>, CatalogError> {
        self.query_assets("", None)
    }

    /// The assets a verification run should read: those stored since the selection's time,
    /// least recently checked first (never-checked first of all); a sample keeps the head of
    /// that order, at least one asset. Repeated sampled runs so rotate through the archive.
    pub fn assets_to_check(&self, selection: &CheckSelection) -> Result<Vec<Asset>, CatalogError> {
        let since = selection.stored_since.unwrap_or(i64::MIN);
        let mut assets = self.select_assets(
            "WHERE stored_at >= ?1 ORDER BY checked_at IS NOT NULL, checked_at, stored_at, key",
            &[&since],
        )?;
        if let Some(p) = selection.sample_percent {
            let want = ((assets.len() as f64) * p / 100.0).ceil() as usize;
            assets.truncate(want.clamp(usize::from(!assets.is_empty()), assets.len()));
        }
        Ok(assets)
    }

    /// Records one check of an asset: in the history and as the asset's latest.
    pub fn record_check(
        &mut self,
        asset: &Asset,
        result: CheckResult,
        detail: Option<&str>,
    ) -> Result<(), CatalogError> {
        let tx = self.conn.transaction().map_err(sql("begin check record"))?;
        let at = now_ms();
        tx.execute(
            "INSERT INTO asset_checks (job_id, key, at, result, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![asset.job_id, asset.key, at, result.as_str(), detail],
        )
        .map_err(sql("record check"))?;
        tx.execute(
            "UPDATE assets SET checked_at = ?2, check_result = ?3 WHERE key = ?1",
            params![asset.key, at, result.as_str()],
        )
        .map_err(sql("record check"))?;
        tx.commit().map_err(sql("commit check record"))
    }

    /// The recorded checks of the asset under `key`, oldest first: `(at, result)`.
    pub fn checks(&self, key: &str) -> Result<Vec<(i64, String)>, CatalogError> {
        let mut stmt = self
            .conn
            .prepare("SELECT at, result FROM asset_checks WHERE key = ?1 ORDER BY id")
            .map_err(sql("list checks"))?;
        let rows = stmt.query_map([key], |r| Ok((r.get(0)?, r.get(1)?))).map_err(sql("list checks"))?;
        rows.collect::<Result<_, _>>().map_err(sql("list checks"))
    }

    fn query_assets(&self, filter: &str, job_id: Option<&str>) -> Result<Vec<Asset>, CatalogError> {
        let tail = format!("{filter} ORDER BY job_id, kind DESC");
        match job_id {
            Some(id) => self.select_assets(&tail, &[&id]),
            None => self.select_assets(&tail, &[]),
        }
    }

    /// Assets by a `WHERE … ORDER BY …` tail and its parameters.
    fn select_assets(&self, tail: &str, params: &[&dyn rusqlite::ToSql]) -> Result<Vec<Asset>, CatalogError> {
        let mut stmt = self
            .conn
            .prepare(&format!(
                "SELECT job_id, kind, key, sha256, bytes, content_type, source_url, \
                 probe_duration_s, probe_fps, probe_width, probe_height, probe_codec, probe_findings FROM assets {tail}"
            ))
            .map_err(sql("list assets"))?;
        let read = |r: &rusqlite::Row<'_>| {
            let kind: String = r.get(1)?;
            let bytes: i64 = r.get(4)?;
            Ok(Asset {
                job_id: r.get(0)?,
                kind: if kind == "cover" { AssetKind::Cover } else { AssetKind::Video },
                key: r.get(2)?,
                sha256: r.get(3)?,
                bytes: u64::try_from(bytes).unwrap_or(0),
                content_type: r.get(5)?,
                source_url: r.get(6)?,
                probe: read_probe(r)?,
            })
        };
        let rows = stmt.query_map(params, read).map_err(sql("list assets"))?;
        rows.map(|r| r.map_err(sql("read asset"))).collect()
    }

    /// Records the input images of `job_id` (replacing any earlier record).
    pub fn record_inputs(&mut self, job_id: &str, inputs: &[Input]) -> Result<(), CatalogError> {
        let tx = self.conn.transaction().map_err(sql("record inputs"))?;
        insert_inputs(&tx, job_id, inputs)?;
        tx.commit().map_err(sql("record inputs"))
    }

    /// The input images recorded for `job_id`, in request order.
    pub fn inputs(&self, job_id: &str) -> Result<Vec<Input>, CatalogError> {
        let mut stmt = self
            .conn
            .prepare("SELECT idx, sha256, key, bytes, content_type, url FROM job_inputs WHERE job_id = ?1 ORDER BY idx")
            .map_err(sql("list inputs"))?;
        let rows = stmt
            .query_map([job_id], |r| {
                Ok(Input {
                    index: r.get(0)?,
                    sha256: r.get(1)?,
                    key: r.get(2)?,
                    bytes: u64::try_from(r.get::<_, i64>(3)?).unwrap_or(0),
                    content_type: r.get(4)?,
                    url: r.get(5)?,
                })
            })
            .map_err(sql("list inputs"))?;
        rows.map(|r| r.map_err(sql("read input"))).collect()
    }

    /// The SHA-256 of the spec file `job_id` was made from: the first link of its provenance.
    pub fn spec_sha256(&self, job_id: &str) -> Result<String, CatalogError> {
        self.conn
            .query_row("SELECT spec_sha256 FROM jobs WHERE id = ?1", [job_id], |r| r.get(0))
            .map_err(sql("read spec hash"))
    }

    /// The state history of a job, oldest first.
    pub fn events(&self, job_id: &str) -> Result<Vec<Event>, CatalogError> {
        let mut stmt = self
            .conn
            .prepare("SELECT at, from_state, to_state, note FROM job_events WHERE job_id = ?1 ORDER BY id")
            .map_err(sql("list events"))?;
        let rows = stmt
            .query_map([job_id], |r| Ok(Event { at: r.get(0)?, from: r.get(1)?, to: r.get(2)?, note: r.get(3)? }))
            .map_err(sql("list events"))?;
        rows.map(|r| r.map_err(sql("read event"))).collect()
    }

    /// Records a refused spec.
    pub fn record_rejection(&mut self, r: &Rejection) -> Result<(), CatalogError> {
        self.conn
            .execute(
                "INSERT INTO rejections (spec_name, spec_sha256, error_code, error_message, at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![r.spec_name, r.spec_sha256, r.error_code, r.error_message, r.at],
            )
            .map_err(sql("record rejection"))?;
        Ok(())
    }

    /// Every refused spec, oldest first.
    pub fn rejections(&self) -> Result<Vec<Rejection>, CatalogError> {
        let mut stmt = self
            .conn
            .prepare("SELECT spec_name, spec_sha256, error_code, error_message, at FROM rejections ORDER BY id")
            .map_err(sql("list rejections"))?;
        let rows = stmt.query_map([], read_rejection).map_err(sql("list rejections"))?;
        rows.map(|r| r.map_err(sql("read rejection"))).collect()
    }

    /// The refusals of specs named `name` (as received), newest first.
    pub fn rejections_named(&self, name: &str) -> Result<Vec<Rejection>, CatalogError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT spec_name, spec_sha256, error_code, error_message, at FROM rejections WHERE spec_name = ?1 \
                 ORDER BY id DESC LIMIT 10",
            )
            .map_err(sql("list rejections"))?;
        let rows = stmt.query_map([name], read_rejection).map_err(sql("list rejections"))?;
        rows.map(|r| r.map_err(sql("read rejection"))).collect()
    }

    /// Refused specs, newest first, whose name, code or reason contains `text` (any case), `limit`
    /// from `offset`; and how many match in all.
    pub fn rejections_page(
        &self,
        text: Option<&str>,
        limit: usize,
        offset: usize,
    ) -> Result<(Vec<Rejection>, u64), CatalogError> {
        const WHERE: &str =
            "WHERE ?1 IS NULL OR instr(lower(spec_name || ' ' || error_code || ' ' || error_message), lower(?1)) > 0";
        let total: i64 = self
            .conn
            .query_row(&format!("SELECT COUNT(*) FROM rejections {WHERE}"), params![text], |r| r.get(0))
            .map_err(sql("count rejections"))?;
        let mut stmt = self
            .conn
            .prepare(&format!(
                "SELECT spec_name, spec_sha256, error_code, error_message, at FROM rejections {WHERE} \
                 ORDER BY id DESC LIMIT ?2 OFFSET ?3"
            ))
            .map_err(sql("list rejections"))?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let offset = i64::try_from(offset).unwrap_or(i64::MAX);
        let rows = stmt.query_map(params![text, limit, offset], read_rejection).map_err(sql("list rejections"))?;
        let list = rows.map(|r| r.map_err(sql("read rejection"))).collect::<Result<Vec<_>, _>>()?;
        Ok((list, u64::try_from(total).unwrap_or(0)))
    }

    /// Submissions accepted per job (the ledger's view of what was paid for).
    pub fn accepted_submissions(&self, job_id: &str) -> Result<u64, CatalogError> {
        self.conn
            .query_row("SELECT COUNT(*) FROM submissions WHERE job_id = ?1 AND outcome = 'accepted'", [job_id], |r| {
                r.get::<_, i64>(0)
            })
            .map(|n| u64::try_from(n).unwrap_or(0))
            .map_err(sql("count submissions"))
    }
}

/// The probe columns of an asset row (7..=12): `None` when it was never probed.
fn read_probe(r: &rusqlite::Row<'_>) -> rusqlite::Result<Option<Probe>> {
    let Some(findings) = r.get::<_, Option<String>>(12)? else { return Ok(None) };
    let findings = serde_json::from_str(&findings).unwrap_or_else(|_| vec![findings]);
    let (duration_s, fps): (Option<f64>, Option<f64>) = (r.get(7)?, r.get(8)?);
    let (width, height): (Option<u32>, Option<u32>) = (r.get(9)?, r.get(10)?);
    let codec: Option<String> = r.get(11)?;
    let figures = match (duration_s, fps, width, height, codec) {
        (Some(duration_s), Some(fps), Some(width), Some(height), Some(codec)) => {
            Some(Figures { duration_s, fps, width, height, codec })
        }
        _ => None,
    };
    Ok(Some(Probe { figures, findings }))
}

/// A `rejections` row as selected by `spec_name, spec_sha256, error_code, error_message, at`.
fn read_rejection(r: &rusqlite::Row<'_>) -> rusqlite::Result<Rejection> {
    Ok(Rejection {
        spec_name: r.get(0)?,
        spec_sha256: r.get(1)?,
        error_code: r.get(2)?,
        error_message: r.get(3)?,
        at: r.get(4)?,
    })
}

/// Records `asset` (stored at `stored_at`), replacing an earlier record of its job and kind.
pub(super) fn insert_asset(conn: &rusqlite::Connection, asset: &Asset, stored_at: i64) -> Result<(), CatalogError> {
    let figures = asset.probe.as_ref().and_then(|p| p.figures.as_ref());
    conn.execute(
        "INSERT INTO assets (job_id, kind, key, sha256, bytes, content_type, source_url, stored_at, \
             probe_duration_s, probe_fps, probe_width, probe_height, probe_codec, probe_findings) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14) \
             ON CONFLICT (job_id, kind) DO UPDATE SET key = excluded.key, sha256 = excluded.sha256, \
             bytes = excluded.bytes, content_type = excluded.content_type, \
             source_url = excluded.source_url, stored_at = excluded.stored_at, \
             probe_duration_s = ?9, probe_fps = ?10, probe_width = ?11, probe_height = ?12, \
             probe_codec = ?13, probe_findings = ?14",
        params![
            asset.job_id,
            asset.kind.as_str(),
            asset.key,
            asset.sha256,
            i64::try_from(asset.bytes).unwrap_or(i64::MAX),
            asset.content_type,
            asset.source_url,
            stored_at,
            figures.map(|f| f.duration_s),
            figures.map(|f| f.fps),
            figures.map(|f| f.width),
            figures.map(|f| f.height),
            figures.map(|f| f.codec.as_str()),
            asset.probe.as_ref().map(|p| serde_json::to_string(&p.findings).unwrap_or_default()),
        ],
    )
    .map_err(sql("record asset"))?;
    Ok(())
}

/// Records the input images of `job_id`, replacing any recorded before.
pub(super) fn insert_inputs(conn: &rusqlite::Connection, job_id: &str, inputs: &[Input]) -> Result<(), CatalogError> {
    conn.execute("DELETE FROM job_inputs WHERE job_id = ?1", [job_id]).map_err(sql("record inputs"))?;
    for i in inputs {
        conn.execute(
            "INSERT INTO job_inputs (job_id, idx, sha256, key, bytes, content_type, url) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                job_id,
                i.index,
                i.sha256,
                i.key,
                i64::try_from(i.bytes).unwrap_or(i64::MAX),
                i.content_type,
                i.url
            ],
        )
        .map_err(sql("record inputs"))?;
    }
    Ok(())
}
