//! Taking a complete spec file: read and validate it, move it to `processing/`, then record the
//! job; or, for a bad spec, move it to `failed/` with a report. Never submits anything: the engine
//! does that from the catalogue.
//!
//! The rename into `processing/` is the claim. A job is recorded only for a file that has left
//! the inbox, so a file that cannot be moved can never become a job, let alone a second one; and
//! a crash between the move and the record leaves a file in `processing/` that no job names,
//! which the first scan after a start takes from there ([`Intake::scan`]). Files are read and
//! parsed outside the catalogue lock; the catalogue only records.
//!
//! Names are handled as bytes ([`SpecName`]): opened and renamed by their exact bytes, spoken of
//! by a text form that is safe in the catalogue, logs and reports.

use crate::telemetry::Escaped;
use std::collections::HashSet;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use serde_json::{Map, Value};
use tokio::sync::Notify;

use super::name::SpecName;
use super::{FileKind, Inbox, Stability, classify};
use crate::archive::sha256_hex;
use crate::catalog::{Db, NewJob, Recorded, Rejection, SpecPlace};
use crate::ops::Ops;
use crate::report;
use crate::spec::file::{self, ReadError};
use crate::spec::{self, JobSpec, MAX_SPEC_BYTES, SpecContext, SpecError};

/// Everything intake needs.
#[derive(Debug, Clone)]
pub struct Intake {
    db: Db,
    inbox: Inbox,
    defaults: Arc<Map<String, Value>>,
    wake: Arc<Notify>,
    ops: Ops,
}

/// A file in the inbox as one listing saw it.
#[derive(Debug, Clone)]
struct Entry {
    path: PathBuf,
    name: SpecName,
    size: u64,
    mtime: SystemTime,
}

/// A spec read and parsed, before anything is moved or recorded.
struct Read {
    entry: Entry,
    sha: String,
    id: Option<(u64, u64)>,
    parsed: Result<JobSpec, SpecError>,
}

impl Intake {
    /// Intake into `db` from `inbox`, filling gaps from `defaults`, waking `wake` on new jobs and
    /// reporting its health through `ops`.
    pub fn new(db: Db, inbox: Inbox, defaults: Map<String, Value>, wake: Arc<Notify>, ops: Ops) -> Intake {
        Intake { db, inbox, defaults: Arc::new(defaults), wake, ops }
    }

    /// The inbox.
    pub fn inbox(&self) -> &Inbox {
        &self.inbox
    }

    /// One pass over the inbox: takes every complete spec. The first pass after a start (and a
    /// pass after a failed record) also takes the files in `processing/` that no job names.
    pub async fn scan(&self, stability: &mut Stability) {
        self.ops.metrics().intake_scanned();
        let inbox = self.inbox.clone();
        let (folders, entries) = match run_blocking(move || (inbox.check_folders(), list(inbox.root()))).await {
            Some(found) => found,
            None => return,
        };
        if let Err(problem) = folders {
            if stability.pause(&problem) {
                tracing::error!(inbox = %Escaped(self.inbox.root().display()), problem = %Escaped(&problem), "intake paused: no spec is taken until this is repaired");
            }
            self.ops.set_intake_problem(Some(problem));
            return;
        }
        if stability.resume() {
            tracing::info!(inbox = %Escaped(self.inbox.root().display()), "intake resumed: the inbox folders are usable again");
        }
        self.ops.set_intake_problem(None);
        let entries = match entries {
            Ok(entries) => entries,
            Err(e) => {
                tracing::error!(inbox = %Escaped(self.inbox.root().display()), error = %Escaped(&e), "cannot list the inbox");
                return;
            }
        };
        let mut taken = 0;
        if stability.take_sweep() {
            taken += self.take_orphans(stability).await;
        }
        let now = SystemTime::now();
        let present: HashSet<PathBuf> = entries.iter().map(|e| e.path.clone()).collect();
        stability.retain_present(&present);
        for entry in entries {
            match classify(entry.name.text()) {
                FileKind::Spec(_) => {}
                FileKind::Unknown => {
                    if stability.first_notice(&entry.path) {
                        tracing::info!(file = %Escaped(entry.name.text()), "not a spec (.json, .toml or .txt); left alone");
                    }
                    continue;
                }
                FileKind::Ignored | FileKind::Image => continue,
            }
            if stability.is_stuck(&entry.path, entry.size, entry.mtime)
                || !stability.is_complete(&entry.path, entry.size, entry.mtime, now)
            {
                continue;
            }
            if self.take(entry, stability).await {
                taken += 1;
            }
        }
        if taken > 0 {
            self.wake.notify_one();
        }
    }

    /// Takes one spec file from the inbox once two reads found the same content; true when a
    /// job was recorded.
    async fn take(&self, entry: Entry, stability: &mut Stability) -> bool {
        let Some(raw) = run_blocking(move || read_bytes(entry)).await.flatten() else { return false };
        if !stability.confirm(&raw.entry.path, &raw.sha) {
            return false;
        }
        stability.forget(&raw.entry.path);
        let now = SystemTime::now();
        if let Ok(bytes) = &raw.bytes {
            if let Some(job_id) = stability.extends_taken(raw.entry.name.text(), bytes, now) {
                let e = SpecError::ExtendsTaken { job_id };
                self.reject(&raw.entry, &raw.sha, &e, stability).await;
                return false;
            }
        }
        let (inbox, defaults) = (self.inbox.clone(), Arc::clone(&self.defaults));
        // The read already hashed the bytes: remember their length and hash, not a copy.
        let len = raw.bytes.as_ref().ok().map(Vec::len);
        let Some(read) = run_blocking(move || parse(raw, &inbox, &defaults)).await else { return false };
        let (name, sha) = (read.entry.name.text().to_owned(), read.sha.clone());
        let taken = self.claim_and_record(read, stability).await;
        if let (Some(job_id), Some(len)) = (&taken, len) {
            stability.remember_taken(&name, len, &sha, job_id, now);
        }
        taken.is_some()
    }

    /// Moves a parsed spec into `processing/` and records its job (or rejects a bad one); the
    /// job id when a job was recorded.
    async fn claim_and_record(&self, read: Read, stability: &mut Stability) -> Option<String> {
        match read.parsed {
            Ok(spec) => {
                let job_id = uuid::Uuid::now_v7().to_string();
                let inbox = self.inbox.clone();
                let (entry, id, tag) = (read.entry.clone(), read.id, job_id.clone());
                let moved = run_blocking(move || claim(&inbox, &entry, id, &tag)).await;
                match moved {
                    Some(Ok(file)) => {
                        let recorded = self.record(job_id.clone(), &read.entry.name, read.sha, spec, file, stability);
                        recorded.await.then_some(job_id)
                    }
                    Some(Err(e)) => {
                        self.unmovable(&read.entry, &read.sha, &e, stability).await;
                        None
                    }
                    None => None,
                }
            }
            Err(e) => {
                self.reject(&read.entry, &read.sha, &e, stability).await;
                None
            }
        }
    }

    /// Records the jobs (one per take) of a spec now in `processing/` as `file`; or, when the
    /// same request already made a job that did not fail, moves the spec to `done/` with a
    /// report naming that job. True when jobs were recorded.
    async fn record(
        &self,
        job_id: String,
        name: &SpecName,
        sha: String,
        spec: JobSpec,
        file: String,
        stability: &mut Stability,
    ) -> bool {
        let format = spec::SpecFormat::from_path(Path::new(name.text())).unwrap_or(spec::SpecFormat::Json);
        let (takes, force) = (i64::from(spec.meta.take_count()), spec.meta.force);
        let jobs: Vec<NewJob> = (1..=takes)
            .map(|n| NewJob {
                id: if n == 1 { job_id.clone() } else { uuid::Uuid::now_v7().to_string() },
                spec_name: name.text().to_owned(),
                spec_sha256: sha.clone(),
                spec_format: format,
                spec: spec.clone(),
                take: (takes > 1).then(|| (job_id.clone(), n)),
            })
            .collect();
        let model = spec.model.clone();
        let place_file = file.clone();
        let recorded = self
            .db
            .call(move |c| {
                let recorded = c.record_spec(&jobs, SpecPlace::Processing, &place_file, force)?;
                let assets = match &recorded {
                    Recorded::AlreadyPaid(existing) => c.assets(&existing.id)?,
                    Recorded::New => Vec::new(),
                };
                Ok((recorded, assets))
            })
            .await;
        match recorded {
            Ok((Recorded::New, _)) => {
                tracing::info!(job_id = %job_id, takes, file = %Escaped(name.text()), model = %model, "spec accepted");
                true
            }
            Ok((Recorded::AlreadyPaid(existing), assets)) => {
                tracing::info!(
                    file = %Escaped(name.text()), existing_job = %existing.id, state = %existing.state,
                    "already paid for: the same request made this job; not submitted (set vidkeep.takes or vidkeep.force for another take)"
                );
                let (inbox, name) = (self.inbox.clone(), name.text().to_owned());
                let from = self.inbox.folder(SpecPlace::Processing).join(&file);
                if let Some(Err(e)) =
                    run_blocking(move || report::already_paid(&inbox, &from, &name, &existing, &assets)).await
                {
                    tracing::error!(file = %Escaped(file), error = %Escaped(&e), "cannot move the duplicate spec to done/; it stays in processing/");
                }
                false
            }
            Err(e) => {
                // The file waits in processing/ with no job; the next scan takes it from there.
                tracing::error!(file = %Escaped(name.text()), error = %Escaped(&e), "cannot record the spec; it waits in processing/ and is retried");
                stability.sweep_next();
                false
            }
        }
    }

    /// Takes the files in `processing/` that no job names (a crash between move and record).
    async fn take_orphans(&self, stability: &mut Stability) -> usize {
        let dir = self.inbox.folder(SpecPlace::Processing);
        let named = match self.db.call(|c| c.spec_files_in_processing()).await {
            Ok(named) => named,
            Err(e) => {
                tracing::error!(error = %Escaped(&e), "cannot read which specs are in processing/; will retry");
                stability.sweep_next();
                return 0;
            }
        };
        let Some(Ok(entries)) = run_blocking(move || list(&dir)).await else { return 0 };
        let mut taken = 0;
        for entry in entries {
            let text = entry.name.text().to_owned();
            if named.contains(&text) || !matches!(classify(&text), FileKind::Spec(_)) || !entry.name.is_exact() {
                continue;
            }
            let (inbox, defaults) = (self.inbox.clone(), Arc::clone(&self.defaults));
            let read = run_blocking(move || read_bytes(entry).map(|raw| parse(raw, &inbox, &defaults)));
            let Some(read) = read.await.flatten() else { continue };
            tracing::warn!(file = %Escaped(&text), "a spec in processing/ has no job (a stop between its move and its record): taking it now");
            match read.parsed {
                Ok(spec) => {
                    let job_id = uuid::Uuid::now_v7().to_string();
                    if self.record(job_id, &read.entry.name, read.sha, spec, text, stability).await {
                        taken += 1;
                    }
                }
                Err(e) => self.reject(&read.entry, &read.sha, &e, stability).await,
            }
        }
        taken
    }

    /// A valid spec that cannot be moved into `processing/`: nothing is recorded or paid. It goes
    /// to `failed/` with a report if it can, and is otherwise left alone until it changes.
    async fn unmovable(&self, entry: &Entry, sha: &str, e: &std::io::Error, stability: &mut Stability) {
        let error = SpecError::Unmovable(e.to_string());
        self.reject(entry, sha, &error, stability).await;
    }

    /// Moves a bad spec to `failed/` with its report, then records the rejection once. A spec
    /// that cannot be moved is remembered and not tried again until it changes: one log line.
    async fn reject(&self, entry: &Entry, sha: &str, e: &SpecError, stability: &mut Stability) {
        let rejection = Rejection {
            spec_name: entry.name.text().to_owned(),
            spec_sha256: sha.to_owned(),
            error_code: e.code().to_owned(),
            error_message: e.to_string(),
            at: crate::time::now_ms(),
        };
        let (inbox, path, r) = (self.inbox.clone(), entry.path.clone(), rejection.clone());
        match run_blocking(move || report::reject(&inbox, &path, &r)).await {
            Some(Ok(_)) => {
                self.ops.metrics().rejected_spec(e.code());
                tracing::warn!(file = %Escaped(entry.name.text()), code = e.code(), reason = %Escaped(&e), "spec rejected; nothing was submitted");
                if let Err(err) = self.db.call(move |c| c.record_rejection(&rejection)).await {
                    tracing::error!(file = %Escaped(entry.name.text()), error = %Escaped(&err), "cannot record the rejection (its report is in failed/)");
                }
            }
            Some(Err(io)) => {
                stability.stuck(&entry.path, entry.size, entry.mtime);
                tracing::error!(
                    file = %Escaped(entry.name.text()), code = e.code(), reason = %Escaped(&e), error = %Escaped(&io),
                    "spec rejected but cannot be moved to failed/; left in the inbox and not tried again until it changes"
                );
            }
            None => {}
        }
    }
}

/// Runs blocking file work off the async workers; `None` (logged) if the task died.
async fn run_blocking<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> Option<R> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => Some(r),
        Err(e) => {
            tracing::error!(error = %Escaped(&e), "intake: a file task did not complete");
            None
        }
    }
}

/// A spec file's bytes, as read from one descriptor.
struct RawSpec {
    entry: Entry,
    bytes: Result<Vec<u8>, SpecError>,
    sha: String,
    id: Option<(u64, u64)>,
}

/// Reads one spec (at most [`MAX_SPEC_BYTES`]); `None` when the file is gone or not a regular
/// file any more (the next listing decides about it).
fn read_bytes(entry: Entry) -> Option<RawSpec> {
    let (bytes, id) = match file::read_regular(&entry.path, MAX_SPEC_BYTES) {
        Ok(opened) => (Ok(opened.bytes), Some(opened.id)),
        Err(ReadError::TooLarge { bytes, max }) => (Err(SpecError::TooLarge { bytes, max }), None),
        Err(ReadError::Gone) => return None,
        Err(e @ ReadError::NotRegular(_)) => {
            tracing::info!(file = %Escaped(entry.name.text()), reason = %Escaped(&e), "not taken: no longer a regular file");
            return None;
        }
        Err(e) => {
            tracing::warn!(file = %Escaped(entry.name.text()), error = %Escaped(&e), "cannot read spec; will retry");
            return None;
        }
    };
    let sha = bytes.as_ref().map(|b| sha256_hex(b)).unwrap_or_default();
    Some(RawSpec { entry, bytes, sha, id })
}

/// Parses and validates a spec's bytes (reading the images it names).
fn parse(raw: RawSpec, inbox: &Inbox, defaults: &Map<String, Value>) -> Read {
    let parsed = raw.bytes.and_then(|b| {
        let ctx = SpecContext { defaults, spec_dir: inbox.root(), inbox: inbox.root() };
        spec::parse(raw.entry.name.text(), &b, &ctx)
    });
    Read { entry: raw.entry, sha: raw.sha, id: raw.id, parsed }
}

/// Moves the spec into `processing/` under its text name (tagged with the job id if taken), if
/// the file there is still the one that was read.
fn claim(inbox: &Inbox, entry: &Entry, id: Option<(u64, u64)>, job_id: &str) -> std::io::Result<String> {
    use std::os::unix::fs::MetadataExt as _;
    let meta = std::fs::symlink_metadata(&entry.path)?;
    if id.is_some_and(|id| id != (meta.dev(), meta.ino())) || !meta.file_type().is_file() {
        return Err(std::io::Error::other("the file was replaced while it was being read"));
    }
    report::move_unique(&entry.path, entry.name.text(), &inbox.folder(SpecPlace::Processing), job_id)
}

/// Regular files directly in `dir`, with size and mtime; one `read_dir` and one `lstat` each.
fn list(dir: &Path) -> std::io::Result<Vec<Entry>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let Ok(entry) = entry else { continue };
        // DirEntry::metadata does not follow symlinks: a link is never a spec.
        let Ok(meta) = entry.metadata() else { continue };
        if !meta.is_file() {
            continue;
        }
        let raw: OsString = entry.file_name();
        out.push(Entry {
            path: entry.path(),
            name: SpecName::new(&raw),
            size: meta.len(),
            mtime: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
        });
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}
