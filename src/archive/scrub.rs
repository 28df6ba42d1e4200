//! Scrubbing: re-read stored assets, re-hash them, and record each check in the catalogue, so
//! silent corruption or a lost object is found and dated without a person remembering to look.
//! `vidkeep verify` runs it once; the daemon runs it on `[verify] every`.

use crate::telemetry::Escaped;
use object_store::path::Path as Key;

use super::{Check, verify_object};
use crate::catalog::{Asset, CatalogError, CheckResult, CheckSelection, Db};
use crate::store::Store;

/// One asset that did not read back as archived.
#[derive(Debug, Clone)]
pub struct Finding {
    /// The asset as recorded.
    pub asset: Asset,
    /// What the check found.
    pub result: CheckResult,
    /// What was found instead, in words.
    pub detail: String,
}

/// What a scrub found.
#[derive(Debug, Clone, Default)]
pub struct ScrubReport {
    /// Assets read.
    pub checked: usize,
    /// Those that did not match.
    pub problems: Vec<Finding>,
}

/// Checks the assets `selection` picks and records every result.
pub async fn scrub(db: &Db, store: &Store, selection: CheckSelection) -> Result<ScrubReport, CatalogError> {
    let assets = db.assets_to_check(selection).await?;
    let mut report = ScrubReport::default();
    for asset in assets {
        let key = Key::from(asset.key.as_str());
        let (result, detail) = match verify_object(store, &key, &asset.sha256, asset.bytes).await {
            Ok(Check::Ok) => (CheckResult::Ok, String::new()),
            Ok(Check::Missing) => (CheckResult::Missing, "no object under this key".to_owned()),
            Ok(Check::Mismatch { sha256, bytes }) => (
                CheckResult::Mismatch,
                format!(
                    "recorded sha256 {} ({} bytes), stored sha256 {sha256} ({bytes} bytes)",
                    asset.sha256, asset.bytes
                ),
            ),
            Err(e) => (CheckResult::Unreadable, e.to_string()),
        };
        report.checked += 1;
        let (record, note) = (asset.clone(), (!detail.is_empty()).then(|| detail.clone()));
        db.record_check(record, result, note).await?;
        if result != CheckResult::Ok {
            tracing::error!(job_id = %asset.job_id, key = %asset.key, result = result.as_str(), detail = %Escaped(&detail), "stored asset does not match its record");
            report.problems.push(Finding { asset, result, detail });
        }
    }
    Ok(report)
}
