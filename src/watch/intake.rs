//! Taking a complete spec file: parse and validate it, record the job, then move the file to
//! `processing/`; or, for a bad spec, move it to `failed/` with a report. Never submits anything:
//! the engine does that from the catalogue.
//!
//! The order is crash-safe: the job row is written before the file moves, and a job whose file
//! never left the inbox is found again by name and hash ([`Catalog::job_for_unmoved_spec`]), so a
//! crash in between finishes the move instead of creating a second job.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use serde_json::{Map, Value};
use tokio::sync::Notify;

use super::{FileKind, Inbox, Stability, classify};
use crate::archive::sha256_hex;
use crate::catalog::{Catalog, CatalogError, Db, NewJob, Rejection, SpecPlace};
use crate::report;
use crate::spec::{self, MAX_SPEC_BYTES, SpecContext, SpecError};

/// Everything intake needs.
#[derive(Debug, Clone)]
pub struct Intake {
    db: Db,
    inbox: Inbox,
    defaults: Arc<Map<String, Value>>,
    wake: Arc<Notify>,
}

impl Intake {
    /// Intake into `db` from `inbox`, filling gaps from `defaults`, waking `wake` on new jobs.
    pub fn new(db: Db, inbox: Inbox, defaults: Map<String, Value>, wake: Arc<Notify>) -> Intake {
        Intake { db, inbox, defaults: Arc::new(defaults), wake }
    }

    /// The inbox.
    pub fn inbox(&self) -> &Inbox {
        &self.inbox
    }

    /// One pass over the inbox: takes every complete spec.
    pub async fn scan(&self, stability: &mut Stability) {
        let entries = match list(self.inbox.root()) {
            Ok(entries) => entries,
            Err(e) => {
                tracing::error!(inbox = %self.inbox.root().display(), error = %e, "cannot list the inbox");
                return;
            }
        };
        let now = SystemTime::now();
        let present: HashSet<PathBuf> = entries.iter().map(|(p, _, _)| p.clone()).collect();
        stability.retain_present(&present);
        let mut taken = 0;
        for (path, size, mtime) in entries {
            let name = file_name(&path);
            match classify(&name) {
                FileKind::Spec(_) => {}
                FileKind::Unknown => {
                    if stability.first_notice(&path) {
                        tracing::info!(file = %name, "not a spec (.json, .toml or .txt); left alone");
                    }
                    continue;
                }
                FileKind::Ignored | FileKind::Image => continue,
            }
            if !stability.is_complete(&path, size, mtime, now) {
                continue;
            }
            stability.forget(&path);
            match self.take(path.clone(), size).await {
                Ok(true) => taken += 1,
                Ok(false) => {}
                Err(e) => tracing::error!(file = %name, error = %e, "cannot record spec; will retry"),
            }
        }
        if taken > 0 {
            self.wake.notify_one();
        }
    }

    /// Takes one spec file. `Ok(true)` when a job was created or resumed.
    async fn take(&self, path: PathBuf, size: u64) -> Result<bool, CatalogError> {
        let this = self.clone();
        self.db.call(move |catalog| this.take_blocking(catalog, &path, size)).await
    }

    fn take_blocking(&self, catalog: &mut Catalog, path: &Path, size: u64) -> Result<bool, CatalogError> {
        let name = file_name(path);
        let bytes = if size > MAX_SPEC_BYTES {
            Err(SpecError::TooLarge { bytes: size, max: MAX_SPEC_BYTES })
        } else {
            match std::fs::read(path) {
                Ok(b) => Ok(b),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
                Err(e) => {
                    tracing::warn!(file = %name, error = %e, "cannot read spec; will retry");
                    return Ok(false);
                }
            }
        };
        let sha = bytes.as_ref().map(|b| sha256_hex(b)).unwrap_or_default();
        if let Some(job_id) = catalog.job_for_unmoved_spec(&name, &sha)? {
            tracing::info!(job_id = %job_id, file = %name, "resuming the move of an accepted spec");
            self.move_to_processing(catalog, &job_id, &name)?;
            return Ok(true);
        }
        let parsed = bytes.and_then(|b| {
            let ctx = SpecContext { defaults: &self.defaults, spec_dir: self.inbox.root(), inbox: self.inbox.root() };
            spec::parse(&name, &b, &ctx)
        });
        match parsed {
            Ok(spec) => {
                let format = spec::SpecFormat::from_path(path).unwrap_or(spec::SpecFormat::Json);
                let job = NewJob {
                    id: uuid::Uuid::now_v7().to_string(),
                    spec_name: name.clone(),
                    spec_sha256: sha,
                    spec_format: format,
                    spec,
                };
                catalog.insert_job(&job)?;
                tracing::info!(job_id = %job.id, file = %name, model = %job.spec.model, "spec accepted");
                self.move_to_processing(catalog, &job.id, &name)?;
                Ok(true)
            }
            Err(e) => {
                self.reject(catalog, path, &name, &sha, &e)?;
                Ok(false)
            }
        }
    }

    fn move_to_processing(&self, catalog: &mut Catalog, job_id: &str, name: &str) -> Result<(), CatalogError> {
        let from = self.inbox.root().join(name);
        match report::move_unique(&from, &self.inbox.folder(SpecPlace::Processing), job_id) {
            Ok(file) => catalog.set_spec_place(job_id, SpecPlace::Processing, &file),
            Err(e) => {
                tracing::warn!(job_id, file = name, error = %e, "cannot move spec to processing/; the job runs anyway");
                Ok(())
            }
        }
    }

    fn reject(
        &self,
        catalog: &mut Catalog,
        path: &Path,
        name: &str,
        sha: &str,
        e: &SpecError,
    ) -> Result<(), CatalogError> {
        tracing::warn!(file = name, code = e.code(), reason = %e, "spec rejected; nothing was submitted");
        let rejection = Rejection {
            spec_name: name.to_owned(),
            spec_sha256: sha.to_owned(),
            error_code: e.code().to_owned(),
            error_message: e.to_string(),
            at: crate::time::now_ms(),
        };
        catalog.record_rejection(&rejection)?;
        if let Err(io) = report::reject(&self.inbox, path, &rejection) {
            tracing::error!(file = name, error = %io, "cannot move rejected spec to failed/");
        }
        Ok(())
    }
}

fn file_name(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

/// Regular files directly in `dir`, with size and mtime.
fn list(dir: &Path) -> std::io::Result<Vec<(PathBuf, u64, SystemTime)>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let Ok(entry) = entry else { continue };
        let Ok(meta) = entry.metadata() else { continue };
        if !meta.is_file() {
            continue;
        }
        let mtime = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
        out.push((entry.path(), meta.len(), mtime));
    }
    out.sort();
    Ok(out)
}
