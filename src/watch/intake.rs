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
use crate::catalog::{Db, NewJob, Recorded, Rejection, SpecJobs};
use crate::domain::SpecPlace;
use crate::domain::sha256_hex;
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
    /// The file's length, if it was read whole.
    len: Option<usize>,
    parsed: Result<JobSpec, SpecError>,
}

/// A valid spec moved into `processing/`, ready to be recorded.
struct Claimed {
    jobs: SpecJobs,
    head: Head,
}

/// What intake says of a claimed spec once it is recorded.
struct Head {
    job_id: String,
    name: SpecName,
    sha: String,
    len: Option<usize>,
    file: String,
    takes: i64,
    model: String,
}

/// What became of one confirmed spec in [`parse_and_claim`].
enum Outcome {
    Claimed(Claimed),
    Unmovable(Entry, String, std::io::Error),
    Invalid(Entry, String, SpecError),
}

/// Specs read in one batch at most, and their listed bytes at most (at least one spec).
const BATCH_SPECS: usize = 256;
const BATCH_BYTES: u64 = 16 << 20;

/// Request bytes (inline images, as sent) that one batch's parsed specs hold at most (at least
/// one spec).
const REQUEST_BUDGET: usize = 64 << 20;

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
        let (entries, subfolders) = match entries {
            Ok(listed) => listed,
            Err(e) => {
                tracing::error!(inbox = %Escaped(self.inbox.root().display()), error = %Escaped(&e), "cannot list the inbox");
                return;
            }
        };
        self.report_subfolders(subfolders, stability).await;
        let mut taken = 0;
        if stability.take_sweep() {
            taken += self.take_orphans(stability).await;
        }
        let now = SystemTime::now();
        let present: HashSet<PathBuf> = entries.iter().map(|e| e.path.clone()).collect();
        stability.retain_present(&present);
        let mut ready = Vec::new();
        for entry in entries {
            match classify(entry.name.text()) {
                FileKind::Spec(_) => {}
                FileKind::Unknown => {
                    if stability.first_notice(&entry.path) {
                        tracing::info!(file = %Escaped(entry.name.text()), "not a spec (.json, .toml or .txt); left alone");
                    }
                    continue;
                }
                FileKind::Foreign => {
                    if stability.is_complete(&entry.path, entry.size, entry.mtime, now)
                        && !stability.is_stuck(&entry.path, entry.size, entry.mtime)
                    {
                        let e = SpecError::UnknownFormat(entry.name.text().to_owned());
                        self.reject(&entry, "", &e, stability).await;
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
            ready.push(entry);
        }
        if taken > 0 {
            self.wake.notify_one();
        }
        for batch in batches(ready) {
            if self.take_batch(batch, stability).await > 0 {
                self.wake.notify_one();
            }
        }
    }

    /// Takes a batch of spec files from the inbox, each once two reads found the same content:
    /// reads them, parses, moves each valid one into `processing/` and records their jobs in one
    /// catalogue transaction (group commit). The number of specs that made jobs.
    async fn take_batch(&self, entries: Vec<Entry>, stability: &mut Stability) -> usize {
        let Some(raws) = run_blocking(move || entries.into_iter().filter_map(read_bytes).collect::<Vec<_>>()).await
        else {
            return 0;
        };
        let now = SystemTime::now();
        let mut confirmed = Vec::with_capacity(raws.len());
        for raw in raws {
            if !stability.confirm(&raw.entry.path, &raw.sha) {
                continue;
            }
            stability.forget(&raw.entry.path);
            if let Ok(bytes) = &raw.bytes {
                if let Some(job_id) = stability.extends_taken(raw.entry.name.text(), bytes, now) {
                    let e = SpecError::ExtendsTaken { job_id };
                    self.reject(&raw.entry, &raw.sha, &e, stability).await;
                    continue;
                }
            }
            confirmed.push(raw);
        }
        let mut taken = 0;
        // Parsing reads the images a spec names: a batch holds at most REQUEST_BUDGET of them.
        while !confirmed.is_empty() {
            let (inbox, defaults) = (self.inbox.clone(), Arc::clone(&self.defaults));
            let Some((outcomes, rest)) = run_blocking(move || parse_and_claim(confirmed, &inbox, &defaults)).await
            else {
                return taken;
            };
            confirmed = rest;
            let mut claimed = Vec::with_capacity(outcomes.len());
            for outcome in outcomes {
                match outcome {
                    Outcome::Claimed(c) => claimed.push(c),
                    Outcome::Unmovable(entry, sha, e) => self.unmovable(&entry, &sha, &e, stability).await,
                    Outcome::Invalid(entry, sha, e) => self.reject(&entry, &sha, &e, stability).await,
                }
            }
            taken += self.record(claimed, stability, now).await;
        }
        taken
    }

    /// Records the jobs of specs now in `processing/`, all in one transaction; a spec whose
    /// request already made a job that did not fail goes to `done/` with a report naming that
    /// job instead. The number of specs that made jobs.
    async fn record(&self, claimed: Vec<Claimed>, stability: &mut Stability, now: SystemTime) -> usize {
        if claimed.is_empty() {
            return 0;
        }
        let (specs, heads): (Vec<SpecJobs>, Vec<Head>) = claimed.into_iter().map(|c| (c.jobs, c.head)).unzip();
        let recorded = self.db.take_specs(specs).await;
        let recorded = match recorded {
            Ok(recorded) => recorded,
            Err(e) => {
                // The files wait in processing/ with no job; the next scan takes them from there.
                for head in &heads {
                    tracing::error!(file = %Escaped(head.name.text()), error = %Escaped(&e), "cannot record the spec; it waits in processing/ and is retried");
                }
                stability.sweep_next();
                return 0;
            }
        };
        let mut taken = 0;
        for (head, (recorded, assets)) in heads.into_iter().zip(recorded) {
            match recorded {
                Recorded::New => {
                    tracing::info!(job_id = %head.job_id, takes = head.takes, file = %Escaped(head.name.text()), model = %Escaped(&head.model), "spec accepted");
                    if let Some(len) = head.len {
                        stability.remember_taken(head.name.text(), len, &head.sha, &head.job_id, now);
                    }
                    taken += 1;
                }
                Recorded::AlreadyPaid(existing) => {
                    tracing::info!(
                        file = %Escaped(head.name.text()), existing_job = %existing.id, state = %existing.state,
                        "already paid for: the same request made this job; not submitted (set vidkeep.takes or vidkeep.force for another take)"
                    );
                    let (inbox, name) = (self.inbox.clone(), head.name.text().to_owned());
                    let from = self.inbox.folder(SpecPlace::Processing).join(&head.file);
                    if let Some(Err(e)) =
                        run_blocking(move || report::already_paid(&inbox, &from, &name, &existing, &assets)).await
                    {
                        tracing::error!(file = %Escaped(&head.file), error = %Escaped(&e), "cannot move the duplicate spec to done/; it stays in processing/");
                    }
                }
            }
        }
        taken
    }

    /// A folder in the inbox is never read (specs are taken only from the inbox itself): says so
    /// once per folder, with a report in `failed/` the studio sees, so nobody waits for it.
    async fn report_subfolders(&self, folders: Vec<SpecName>, stability: &mut Stability) {
        for name in folders {
            if !stability.first_notice(&self.inbox.root().join(name.text())) {
                continue;
            }
            let (inbox, text) = (self.inbox.clone(), name.text().to_owned());
            match run_blocking(move || report::folder_not_read(&inbox, &text)).await {
                Some(Ok(true)) => {
                    tracing::warn!(folder = %Escaped(name.text()), "a folder in the inbox: its files are not read; report in failed/");
                    self.ops.metrics().rejected_spec(SpecError::IN_FOLDER);
                    // Listed with the other refusals (`jobs --rejected`, the UI), once, as its
                    // report is written once. A folder has no bytes to hash.
                    let rejection = Rejection {
                        spec_name: name.text().to_owned(),
                        spec_sha256: String::new(),
                        error_code: SpecError::IN_FOLDER.to_owned(),
                        error_message: report::folder_message(name.text()),
                        at: crate::time::now_ms(),
                    };
                    if let Err(e) = self.db.record_rejection(rejection).await {
                        tracing::error!(folder = %Escaped(name.text()), error = %Escaped(&e), "cannot record the folder's rejection");
                    }
                }
                Some(Ok(false)) | None => {}
                Some(Err(e)) => {
                    tracing::error!(folder = %Escaped(name.text()), error = %Escaped(&e), "cannot write the report about a folder in the inbox");
                }
            }
        }
    }

    /// Takes the files in `processing/` that no job names (a crash between move and record).
    async fn take_orphans(&self, stability: &mut Stability) -> usize {
        let dir = self.inbox.folder(SpecPlace::Processing);
        let named = match self.db.spec_files_in_processing().await {
            Ok(named) => named,
            Err(e) => {
                tracing::error!(error = %Escaped(&e), "cannot read which specs are in processing/; will retry");
                stability.sweep_next();
                return 0;
            }
        };
        let Some(Ok((entries, _))) = run_blocking(move || list(&dir)).await else { return 0 };
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
            let Read { entry, sha, parsed, len, .. } = read;
            match parsed {
                Ok(spec) => {
                    let job_id = uuid::Uuid::now_v7().to_string();
                    let name = entry.name.clone();
                    let Some(claimed) = run_blocking(move || claimed(job_id, name, sha, len, spec, text)).await else {
                        continue;
                    };
                    taken += self.record(vec![claimed], stability, SystemTime::now()).await;
                }
                Err(e) => self.reject(&entry, &sha, &e, stability).await,
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
                if let Err(err) = self.db.record_rejection(rejection).await {
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
    let len = raw.bytes.as_ref().ok().map(Vec::len);
    let parsed = raw.bytes.and_then(|b| {
        let ctx = SpecContext { defaults, spec_dir: inbox.root(), inbox: inbox.root() };
        spec::parse(raw.entry.name.text(), &b, &ctx)
    });
    Read { entry: raw.entry, sha: raw.sha, id: raw.id, len, parsed }
}

/// Parses confirmed specs in order and moves each valid one into `processing/` (its claim),
/// until their requests hold [`REQUEST_BUDGET`] bytes; the specs not yet parsed come back.
fn parse_and_claim(raws: Vec<RawSpec>, inbox: &Inbox, defaults: &Map<String, Value>) -> (Vec<Outcome>, Vec<RawSpec>) {
    let mut outcomes = Vec::new();
    let mut held = 0usize;
    let mut raws = raws.into_iter();
    for raw in raws.by_ref() {
        let Read { entry, sha, id, len, parsed } = parse(raw, inbox, defaults);
        match parsed {
            Err(e) => outcomes.push(Outcome::Invalid(entry, sha, e)),
            Ok(spec) => {
                let job_id = uuid::Uuid::now_v7().to_string();
                match claim(inbox, &entry, id, &job_id) {
                    Err(e) => outcomes.push(Outcome::Unmovable(entry, sha, e)),
                    Ok(file) => {
                        let c = claimed(job_id, entry.name, sha, len, spec, file);
                        held = held.saturating_add(c.jobs.request_bytes());
                        outcomes.push(Outcome::Claimed(c));
                    }
                }
            }
        }
        if held >= REQUEST_BUDGET {
            break;
        }
    }
    (outcomes, raws.collect())
}

/// The jobs (one per take) of a spec now in `processing/` as `file`, the first with `job_id`.
fn claimed(job_id: String, name: SpecName, sha: String, len: Option<usize>, spec: JobSpec, file: String) -> Claimed {
    let format = spec::SpecFormat::from_path(Path::new(name.text())).unwrap_or(spec::SpecFormat::Json);
    let (takes, force) = (i64::from(spec.meta.take_count()), spec.meta.force);
    let model = spec.model.clone();
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
    let jobs = SpecJobs::new(jobs, SpecPlace::Processing, file.clone(), force);
    Claimed { jobs, head: Head { job_id, name, sha, len, file, takes, model } }
}

/// Splits the complete entries of one listing into batches of at most [`BATCH_SPECS`] files
/// and [`BATCH_BYTES`] listed bytes.
fn batches(entries: Vec<Entry>) -> Vec<Vec<Entry>> {
    let mut out: Vec<Vec<Entry>> = Vec::new();
    let mut bytes = 0u64;
    for entry in entries {
        let full = out.last().is_none_or(|b| b.len() >= BATCH_SPECS || bytes.saturating_add(entry.size) > BATCH_BYTES);
        if full {
            out.push(Vec::new());
            bytes = 0;
        }
        bytes = bytes.saturating_add(entry.size);
        if let Some(batch) = out.last_mut() {
            batch.push(entry);
        }
    }
    out
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

/// Regular files directly in `dir`, with size and mtime, and the folders in it that are not
/// vidkeep's own or hidden; one `read_dir` and one `lstat` each.
fn list(dir: &Path) -> std::io::Result<(Vec<Entry>, Vec<SpecName>)> {
    let mut out = Vec::new();
    let mut folders = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let Ok(entry) = entry else { continue };
        // DirEntry::metadata does not follow symlinks: a link is never a spec.
        let Ok(meta) = entry.metadata() else { continue };
        let raw: OsString = entry.file_name();
        if meta.is_dir() {
            let name = SpecName::new(&raw);
            let reserved = ["processing", "done", "failed"].contains(&name.text()) || name.text().starts_with('.');
            if !reserved {
                folders.push(name);
            }
            continue;
        }
        if !meta.is_file() {
            continue;
        }
        out.push(Entry {
            path: entry.path(),
            name: SpecName::new(&raw),
            size: meta.len(),
            mtime: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
        });
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok((out, folders))
}
