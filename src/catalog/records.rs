//! Asset records, the event trail and rejected specs.

use serde::{Deserialize, Serialize};

use super::conn::{Arg, Begin, Dialect, Row, Sql, args};
use super::{Catalog, CatalogError};
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
        self.select_assets("WHERE job_id = ?1 ORDER BY job_id, kind DESC", args![job_id])
    }

    /// The assets of each of `job_ids` (video first), in one read: for pages of an export.
    pub fn assets_of(&self, job_ids: &[&str]) -> Result<std::collections::HashMap<String, Vec<Asset>>, CatalogError> {
        let list = serde_json::to_string(job_ids).unwrap_or_default();
        let tail = match self.conn.dialect() {
            Dialect::Sqlite => "WHERE job_id IN (SELECT value FROM json_each(?1)) ORDER BY job_id, kind DESC",
            Dialect::Postgres => {
                "WHERE job_id IN (SELECT jsonb_array_elements_text(CAST(?1 AS TEXT)::jsonb)) ORDER BY job_id, kind DESC"
            }
        };
        let mut by_job = std::collections::HashMap::<String, Vec<Asset>>::new();
        for asset in self.select_assets(tail, args![list])? {
            by_job.entry(asset.job_id.clone()).or_default().push(asset);
        }
        Ok(by_job)
    }

    /// The asset whose bytes hash to `sha256` (lower hex), if any.
    pub fn asset_by_sha256(&self, sha256: &str) -> Result<Option<Asset>, CatalogError> {
        Ok(self.select_assets("WHERE sha256 = ?1 ORDER BY stored_at LIMIT 1", args![sha256])?.into_iter().next())
    }

    /// Every asset in the catalogue.
    pub fn all_assets(&self) -> Result<Vec<Asset>, CatalogError> {
        self.select_assets("ORDER BY job_id, kind DESC", args![])
    }

    /// The assets a verification run should read: those stored since the selection's time,
    /// least recently checked first (never-checked first of all); a sample keeps the head of
    /// that order, at least one asset. Repeated sampled runs so rotate through the archive.
    pub fn assets_to_check(&self, selection: &CheckSelection) -> Result<Vec<Asset>, CatalogError> {
        let since = selection.stored_since.unwrap_or(i64::MIN);
        let mut assets = self.select_assets(
            "WHERE stored_at >= ?1 ORDER BY checked_at IS NOT NULL, checked_at, stored_at, key",
            args![since],
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
        let tx = self.conn.begin("begin check record", Begin::Deferred)?;
        let at = now_ms();
        tx.execute(
            "record check",
            "INSERT INTO asset_checks (job_id, key, at, result, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
            args![asset.job_id, asset.key, at, result.as_str(), detail],
        )?;
        tx.execute(
            "record check",
            "UPDATE assets SET checked_at = ?2, check_result = ?3 WHERE key = ?1",
            args![asset.key, at, result.as_str()],
        )?;
        tx.commit("commit check record")
    }

    /// The recorded checks of the asset under `key`, oldest first: `(at, result)`.
    pub fn checks(&self, key: &str) -> Result<Vec<(i64, String)>, CatalogError> {
        self.conn.rows(
            "list checks",
            "SELECT at, result FROM asset_checks WHERE key = ?1 ORDER BY id",
            args![key],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
    }

    /// Assets by a `WHERE … ORDER BY …` tail and its parameters.
    fn select_assets(&self, tail: &str, args: &[&dyn Arg]) -> Result<Vec<Asset>, CatalogError> {
        let q = format!(
            "SELECT job_id, kind, key, sha256, bytes, content_type, source_url, \
             probe_duration_s, probe_fps, probe_width, probe_height, probe_codec, probe_findings FROM assets {tail}"
        );
        self.conn.rows("list assets", &q, args, |r| {
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
        })
    }

    /// Records the input images of `job_id` (replacing any earlier record).
    pub fn record_inputs(&mut self, job_id: &str, inputs: &[Input]) -> Result<(), CatalogError> {
        let tx = self.conn.begin("record inputs", Begin::Deferred)?;
        insert_inputs(&tx, job_id, inputs)?;
        tx.commit("record inputs")
    }

    /// The input images recorded for `job_id`, in request order.
    pub fn inputs(&self, job_id: &str) -> Result<Vec<Input>, CatalogError> {
        self.conn.rows(
            "list inputs",
            "SELECT idx, sha256, key, bytes, content_type, url FROM job_inputs WHERE job_id = ?1 ORDER BY idx",
            args![job_id],
            |r| {
                Ok(Input {
                    index: r.get(0)?,
                    sha256: r.get(1)?,
                    key: r.get(2)?,
                    bytes: u64::try_from(r.get::<i64>(3)?).unwrap_or(0),
                    content_type: r.get(4)?,
                    url: r.get(5)?,
                })
            },
        )
    }

    /// The SHA-256 of the spec file `job_id` was made from: the first link of its provenance.
    pub fn spec_sha256(&self, job_id: &str) -> Result<String, CatalogError> {
        self.conn.one("read spec hash", "SELECT spec_sha256 FROM jobs WHERE id = ?1", args![job_id], |r| r.get(0))
    }

    /// The state history of a job, oldest first.
    pub fn events(&self, job_id: &str) -> Result<Vec<Event>, CatalogError> {
        self.conn.rows(
            "list events",
            "SELECT at, from_state, to_state, note FROM job_events WHERE job_id = ?1 ORDER BY id",
            args![job_id],
            |r| Ok(Event { at: r.get(0)?, from: r.get(1)?, to: r.get(2)?, note: r.get(3)? }),
        )
    }

    /// Records a refused spec.
    pub fn record_rejection(&mut self, r: &Rejection) -> Result<(), CatalogError> {
        self.conn.execute(
            "record rejection",
            "INSERT INTO rejections (spec_name, spec_sha256, error_code, error_message, at) VALUES (?1, ?2, ?3, ?4, ?5)",
            args![r.spec_name, r.spec_sha256, r.error_code, r.error_message, r.at],
        )?;
        Ok(())
    }

    /// Every refused spec, oldest first.
    pub fn rejections(&self) -> Result<Vec<Rejection>, CatalogError> {
        self.conn.rows(
            "list rejections",
            "SELECT spec_name, spec_sha256, error_code, error_message, at FROM rejections ORDER BY id",
            args![],
            read_rejection,
        )
    }

    /// The refusals of specs named `name` (as received), newest first.
    pub fn rejections_named(&self, name: &str) -> Result<Vec<Rejection>, CatalogError> {
        self.conn.rows(
            "list rejections",
            "SELECT spec_name, spec_sha256, error_code, error_message, at FROM rejections WHERE spec_name = ?1 \
             ORDER BY id DESC LIMIT 10",
            args![name],
            read_rejection,
        )
    }

    /// Refused specs, newest first, whose name, code or reason contains `text` (any case), `limit`
    /// from `offset`; and how many match in all.
    pub fn rejections_page(
        &self,
        text: Option<&str>,
        limit: usize,
        offset: usize,
    ) -> Result<(Vec<Rejection>, u64), CatalogError> {
        let filter = match self.conn.dialect() {
            Dialect::Sqlite => {
                "WHERE ?1 IS NULL OR instr(lower(spec_name || ' ' || error_code || ' ' || error_message), lower(?1)) > 0"
            }
            Dialect::Postgres => {
                "WHERE CAST(?1 AS TEXT) IS NULL \
                 OR strpos(lower(spec_name || ' ' || error_code || ' ' || error_message), lower(?1)) > 0"
            }
        };
        let total: i64 = self.conn.one(
            "count rejections",
            &format!("SELECT COUNT(*) FROM rejections {filter}"),
            args![text],
            |r| r.get(0),
        )?;
        let list = self.conn.rows(
            "list rejections",
            &format!(
                "SELECT spec_name, spec_sha256, error_code, error_message, at FROM rejections {filter} \
                 ORDER BY id DESC LIMIT ?2 OFFSET ?3"
            ),
            args![text, limit, offset],
            read_rejection,
        )?;
        Ok((list, u64::try_from(total).unwrap_or(0)))
    }

    /// Submissions accepted per job (the ledger's view of what was paid for).
    pub fn accepted_submissions(&self, job_id: &str) -> Result<u64, CatalogError> {
        self.conn.one(
            "count submissions",
            "SELECT COUNT(*) FROM submissions WHERE job_id = ?1 AND outcome = 'accepted'",
            args![job_id],
            |r| r.get(0),
        )
    }
}

/// The probe columns of an asset row (7..=12): `None` when it was never probed.
fn read_probe(r: &Row<'_>) -> Result<Option<Probe>, CatalogError> {
    let Some(findings) = r.get::<Option<String>>(12)? else { return Ok(None) };
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
fn read_rejection(r: &Row<'_>) -> Result<Rejection, CatalogError> {
    Ok(Rejection {
        spec_name: r.get(0)?,
        spec_sha256: r.get(1)?,
        error_code: r.get(2)?,
        error_message: r.get(3)?,
        at: r.get(4)?,
    })
}

/// Records `asset` (stored at `stored_at`), replacing an earlier record of its job and kind.
pub(super) fn insert_asset(conn: &impl Sql, asset: &Asset, stored_at: i64) -> Result<(), CatalogError> {
    let figures = asset.probe.as_ref().and_then(|p| p.figures.as_ref());
    conn.execute(
        "record asset",
        "INSERT INTO assets (job_id, kind, key, sha256, bytes, content_type, source_url, stored_at, \
             probe_duration_s, probe_fps, probe_width, probe_height, probe_codec, probe_findings) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14) \
             ON CONFLICT (job_id, kind) DO UPDATE SET key = excluded.key, sha256 = excluded.sha256, \
             bytes = excluded.bytes, content_type = excluded.content_type, \
             source_url = excluded.source_url, stored_at = excluded.stored_at, \
             probe_duration_s = excluded.probe_duration_s, probe_fps = excluded.probe_fps, \
             probe_width = excluded.probe_width, probe_height = excluded.probe_height, \
             probe_codec = excluded.probe_codec, probe_findings = excluded.probe_findings",
        args![
            asset.job_id,
            asset.kind.as_str(),
            asset.key,
            asset.sha256,
            asset.bytes,
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
    )?;
    Ok(())
}

/// Records the input images of `job_id`, replacing any recorded before.
pub(super) fn insert_inputs(conn: &impl Sql, job_id: &str, inputs: &[Input]) -> Result<(), CatalogError> {
    conn.execute("record inputs", "DELETE FROM job_inputs WHERE job_id = ?1", args![job_id])?;
    for i in inputs {
        conn.execute(
            "record inputs",
            "INSERT INTO job_inputs (job_id, idx, sha256, key, bytes, content_type, url) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            args![job_id, i.index, i.sha256, i.key, i.bytes, i.content_type, i.url],
        )?;
    }
    Ok(())
}
