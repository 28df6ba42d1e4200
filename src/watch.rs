//! The inbox: which files are specs, when a file is complete, and the worker that finds them.
//!
//! File-system events are hints; the directory scan is the truth. The worker scans on start,
//! scans again soon after any event, and rescans on a timer because events can be lost (a full
//! inotify queue, a network file system). A file is taken when it was renamed into the inbox
//! (writers that write `x.part` then rename are done at the rename) or when its size and mtime
//! have not changed for the quiet period.

mod hints;
pub mod intake;
pub mod name;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use tokio_util::sync::CancellationToken;

pub use crate::domain::{Inbox, OWN_FOLDER_MODE};
use crate::spec::SpecFormat;

pub use hints::Hint;
use hints::{DEBOUNCE, watch};
pub use intake::Intake;

/// What a file in the inbox is, by its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// A spec to take.
    Spec(SpecFormat),
    /// Being written or not ours: dotfiles, `*.tmp`, `*.part`, `*~`, reports.
    Ignored,
    /// An image input that specs refer to; never a spec.
    Image,
    /// A data format people write specs in that vidkeep does not read (`.yaml`, `.json5`, ...):
    /// refused into `failed/` with a report naming the formats it reads, so nobody waits for it.
    Foreign,
    /// Anything else (notes, documents): left alone, logged once.
    Unknown,
}

/// Extensions of data formats a spec is likely to have been written in by mistake.
const FOREIGN: &[&str] = &[".yaml", ".yml", ".json5", ".jsonc", ".jsonl", ".ndjson", ".xml", ".ini", ".csv"];

/// Classifies a file name.
pub fn classify(name: &str) -> FileKind {
    let lower = name.to_ascii_lowercase();
    if name.starts_with('.')
        || name.ends_with('~')
        || lower.ends_with(".tmp")
        || lower.ends_with(".part")
        || lower.ends_with(".report.json")
    {
        return FileKind::Ignored;
    }
    if [".png", ".jpg", ".jpeg", ".webp"].iter().any(|e| lower.ends_with(e)) {
        return FileKind::Image;
    }
    match SpecFormat::from_path(Path::new(name)) {
        Some(format) => FileKind::Spec(format),
        None if FOREIGN.iter().any(|e| lower.ends_with(e)) => FileKind::Foreign,
        None => FileKind::Unknown,
    }
}

/// What the completeness rule saw of one file.
#[derive(Debug, Clone)]
struct Seen {
    size: u64,
    mtime: SystemTime,
    /// When vidkeep first saw the file with this size and mtime.
    since: SystemTime,
    /// SHA-256 of the content at the last read that found the file otherwise complete.
    sha: Option<String>,
}

/// A spec taken recently, to recognise a file that is still being rewritten.
#[derive(Debug, Clone)]
struct Taken {
    name: String,
    len: usize,
    sha: String,
    job_id: String,
    at: SystemTime,
}

/// The completeness rule, with what it has seen so far.
///
/// A file renamed into the inbox is complete at the rename. A file written in place is complete
/// when vidkeep itself has seen its size and mtime unchanged for the quiet period (an mtime
/// alone proves nothing: `tar`, `cp -p` and `rsync` set old ones), its mtime is at least that
/// old, no write was seen since its last close-after-writing (inotify `IN_CLOSE_WRITE` after the
/// last `IN_MODIFY`), and two reads a scan apart found the same content hash.
#[derive(Debug)]
pub struct Stability {
    quiet: Duration,
    renamed_in: HashSet<PathBuf>,
    seen: HashMap<PathBuf, Seen>,
    writing: HashMap<PathBuf, SystemTime>,
    taken: std::collections::VecDeque<Taken>,
    noted: HashSet<PathBuf>,
    stuck: HashMap<PathBuf, (u64, SystemTime)>,
    paused: Option<String>,
    sweep: bool,
}

/// Most recently taken specs remembered for the rewrite check.
const TAKEN_MEMORY: usize = 256;

impl Stability {
    /// A rule with the given quiet period.
    pub fn new(quiet: Duration) -> Stability {
        Stability {
            quiet,
            renamed_in: HashSet::new(),
            seen: HashMap::new(),
            writing: HashMap::new(),
            taken: std::collections::VecDeque::new(),
            noted: HashSet::new(),
            stuck: HashMap::new(),
            paused: None,
            sweep: true,
        }
    }

    /// A file held open without writes counts as still being written for this long at most
    /// (events can be lost; a writer that went away must not hold a spec forever).
    fn writing_limit(&self) -> Duration {
        (self.quiet * 10).max(Duration::from_secs(60))
    }

    /// Notes that `path` was renamed into the inbox: complete as of now.
    pub fn renamed_in(&mut self, path: PathBuf) {
        self.writing.remove(&path);
        self.renamed_in.insert(path);
    }

    /// Notes a write to `path` (or its creation) at `at`: it is being written until it is closed.
    pub fn written(&mut self, path: PathBuf, at: SystemTime) {
        self.writing.insert(path, at);
    }

    /// Notes that a writer closed `path`.
    pub fn closed(&mut self, path: &Path) {
        self.writing.remove(path);
    }

    /// Whether a file with `size` and `mtime` may be complete at `now` (its content is then
    /// checked by [`Stability::confirm`]); also remembers what it saw. A file that changed since
    /// the last look is never complete, whatever its mtime says.
    pub fn is_complete(&mut self, path: &Path, size: u64, mtime: SystemTime, now: SystemTime) -> bool {
        let fresh = Seen { size, mtime, since: now, sha: None };
        let changed = match self.seen.get(path) {
            Some(prev) => (prev.size, prev.mtime) != (size, mtime),
            None => {
                self.seen.insert(path.to_owned(), fresh.clone());
                false
            }
        };
        if changed {
            self.seen.insert(path.to_owned(), fresh);
            self.renamed_in.remove(path);
            return false;
        }
        if self.renamed_in.contains(path) {
            return true;
        }
        if let Some(at) = self.writing.get(path) {
            if now.duration_since(*at).is_ok_and(|d| d < self.writing_limit()) {
                return false;
            }
        }
        let since = self.seen.get(path).map_or(now, |s| s.since);
        let quiet = |t: SystemTime| now.duration_since(t).is_ok_and(|age| age >= self.quiet);
        quiet(since) && quiet(mtime)
    }

    /// Whether the content read now (`sha`) is the content read at the previous complete look:
    /// true for a file renamed in, or the second read in a row that finds the same hash.
    pub fn confirm(&mut self, path: &Path, sha: &str) -> bool {
        if self.renamed_in.contains(path) {
            return true;
        }
        match self.seen.get_mut(path) {
            Some(seen) if seen.sha.as_deref() == Some(sha) => true,
            Some(seen) => {
                seen.sha = Some(sha.to_owned());
                false
            }
            None => false,
        }
    }

    /// Remembers a spec just taken as job `job_id`.
    /// `len` and `sha` are the taken file's length and SHA-256.
    pub fn remember_taken(&mut self, name: &str, len: usize, sha: &str, job_id: &str, now: SystemTime) {
        if self.taken.len() == TAKEN_MEMORY {
            self.taken.pop_front();
        }
        let (name, sha, job_id) = (name.to_owned(), sha.to_owned(), job_id.to_owned());
        self.taken.push_back(Taken { name, len, sha, job_id, at: now });
    }

    /// The job of a spec taken within the last minute (or ten quiet periods) under the same
    /// name whose bytes `bytes` begin with: the same file, still being rewritten.
    pub fn extends_taken(&self, name: &str, bytes: &[u8], now: SystemTime) -> Option<String> {
        let window = self.writing_limit();
        self.taken
            .iter()
            .rev()
            .filter(|t| t.name == name && t.len < bytes.len())
            .filter(|t| now.duration_since(t.at).is_ok_and(|d| d <= window))
            .find(|t| crate::domain::sha256_hex(&bytes[..t.len]) == t.sha)
            .map(|t| t.job_id.clone())
    }

    /// Forgets a file that was taken or is gone.
    pub fn forget(&mut self, path: &Path) {
        self.seen.remove(path);
        self.renamed_in.remove(path);
        self.writing.remove(path);
    }

    /// Whether any file is waiting to become complete.
    pub fn has_pending(&self) -> bool {
        !self.seen.is_empty()
    }

    /// Keeps memory only of files still present after a scan.
    pub fn retain_present(&mut self, present: &HashSet<PathBuf>) {
        self.seen.retain(|p, _| present.contains(p));
        self.writing.retain(|p, _| present.contains(p));
        self.renamed_in.retain(|p| present.contains(p));
        self.noted.retain(|p| present.contains(p));
        self.stuck.retain(|p, _| present.contains(p));
    }

    /// Notes that `path` could not be moved anywhere: it is not tried again until its size or
    /// mtime changes (or it goes away).
    pub fn stuck(&mut self, path: &Path, size: u64, mtime: SystemTime) {
        self.stuck.insert(path.to_owned(), (size, mtime));
    }

    /// Whether `path` is stuck as it is now.
    pub fn is_stuck(&mut self, path: &Path, size: u64, mtime: SystemTime) -> bool {
        match self.stuck.get(path) {
            Some(seen) if *seen == (size, mtime) => true,
            Some(_) => {
                self.stuck.remove(path);
                false
            }
            None => false,
        }
    }

    /// Intake pauses for `problem`; true when this is news (so it is logged once).
    pub fn pause(&mut self, problem: &str) -> bool {
        let news = self.paused.as_deref() != Some(problem);
        self.paused = Some(problem.to_owned());
        news
    }

    /// Intake may run; true when it was paused.
    pub fn resume(&mut self) -> bool {
        self.paused.take().is_some()
    }

    /// Whether this scan should also take the files in `processing/` that no job names (true on
    /// the first scan and after [`Stability::sweep_next`]); clears the request.
    pub fn take_sweep(&mut self) -> bool {
        std::mem::take(&mut self.sweep)
    }

    /// Asks the next scan to look in `processing/` for files no job names.
    pub fn sweep_next(&mut self) {
        self.sweep = true;
    }

    /// True the first time a file that is not a spec is seen, so it is logged once.
    pub fn first_notice(&mut self, path: &Path) -> bool {
        self.noted.insert(path.to_owned())
    }
}

/// Why the watcher could not start.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// The inbox folders could not be created.
    #[error("cannot create the inbox folders under {path}: {source}")]
    Inbox {
        /// The inbox.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The kernel's inotify limits are exhausted.
    #[error(
        "cannot watch {path}: the system's inotify limit is reached; raise fs.inotify.max_user_watches / max_user_instances ({source})"
    )]
    InotifyLimit {
        /// The inbox.
        path: PathBuf,
        /// notify's error.
        source: notify::Error,
    },
    /// Any other watcher failure.
    #[error("cannot watch {path}: {source}")]
    Watcher {
        /// The inbox.
        path: PathBuf,
        /// notify's error.
        source: notify::Error,
    },
}

/// Runs the intake worker until `cancel`: scan, take complete specs, wait for a hint or a timer.
pub async fn run(
    intake: Intake,
    quiet: Duration,
    rescan: Duration,
    cancel: CancellationToken,
) -> Result<(), WatchError> {
    let inbox = intake.inbox().clone();
    inbox.ensure().map_err(|source| WatchError::Inbox { path: inbox.root().to_owned(), source })?;
    let (_watcher, pending) = watch(&inbox)?;
    let mut stability = Stability::new(quiet);
    let short = (quiet / 4).clamp(Duration::from_millis(50), Duration::from_secs(1));
    loop {
        intake.scan(&mut stability).await;
        let wait = if stability.has_pending() { short } else { rescan };
        tokio::select! {
            () = cancel.cancelled() => return Ok(()),
            () = pending.changed() => {}
            () = tokio::time::sleep(wait) => {}
        }
        // Debounce: a burst of events (many files dropped at once) makes one scan, not one each.
        tokio::time::sleep(DEBOUNCE).await;
        pending.drain_into(&mut stability);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(classify("fox.json"), FileKind::Spec(SpecFormat::Json));
        assert_eq!(classify("fox.TOML"), FileKind::Spec(SpecFormat::Toml));
        assert_eq!(classify("fox.txt"), FileKind::Spec(SpecFormat::Text));
        for ignored in [".fox.json", "fox.json.tmp", "fox.json.part", "fox.json~", "fox.json.report.json"] {
            assert_eq!(classify(ignored), FileKind::Ignored, "{ignored}");
        }
        assert_eq!(classify("first.PNG"), FileKind::Image);
        assert_eq!(classify("notes.md"), FileKind::Unknown);
        assert_eq!(classify("harbour.yaml"), FileKind::Foreign);
        assert_eq!(classify("harbour.YML"), FileKind::Foreign);
    }

    #[test]
    fn quiet_period_and_renames() {
        let mut s = Stability::new(Duration::from_secs(2));
        let p = Path::new("/in/a.json");
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        let at = |s: u64| t0 + Duration::from_secs(s);
        assert!(!s.is_complete(p, 10, t0, at(1)), "too fresh");
        assert!(!s.is_complete(p, 10, t0, at(2)), "seen for 1 s only, though its mtime is old enough");
        assert!(s.is_complete(p, 10, t0, at(3)), "seen unchanged for the quiet period");
        assert!(!s.confirm(p, "aa"), "the first read only records the content");
        assert!(!s.confirm(p, "bb"), "a different content starts over");
        assert!(s.confirm(p, "bb"), "the same content twice: complete");
        assert!(!s.is_complete(p, 20, t0, at(9)), "grew since last look");
        // A file written to and not closed since is not complete, until its writer closes it.
        let w = Path::new("/in/w.txt");
        assert!(!s.is_complete(w, 5, t0, at(3)));
        s.written(w.to_owned(), at(3));
        assert!(!s.is_complete(w, 5, t0, at(10)), "still open for writing");
        s.closed(w);
        assert!(s.is_complete(w, 5, t0, at(10)), "closed and quiet");
        // A writer that never closes holds the file for a bounded time only.
        s.written(w.to_owned(), at(10));
        assert!(s.is_complete(w, 5, t0, at(71)), "a lost close event cannot hold a spec forever");
        let q = Path::new("/in/b.json");
        s.renamed_in(q.to_owned());
        assert!(s.is_complete(q, 5, t0, t0), "renamed in: complete at once");
        s.forget(q);
        assert!(!s.is_complete(q, 5, t0, t0));
    }

    #[test]
    fn a_rewrite_of_a_just_taken_spec_is_recognised() {
        let mut s = Stability::new(Duration::from_secs(1));
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        let first = b"a lighthouse";
        s.remember_taken("slow.txt", first.len(), &crate::domain::sha256_hex(first), "job-1", t0);
        let later = t0 + Duration::from_secs(2);
        assert_eq!(s.extends_taken("slow.txt", b"a lighthouse in a storm", later).as_deref(), Some("job-1"));
        assert_eq!(s.extends_taken("other.txt", b"a lighthouse in a storm", later), None, "another name");
        assert_eq!(s.extends_taken("slow.txt", b"a lighthouse", later), None, "the same bytes are not an extension");
        assert_eq!(s.extends_taken("slow.txt", b"a lightship at sea", later), None, "not a prefix");
        let much_later = t0 + Duration::from_secs(3600);
        assert_eq!(s.extends_taken("slow.txt", b"a lighthouse in a storm", much_later), None, "not just taken");
    }
}
