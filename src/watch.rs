//! The inbox: which files are specs, when a file is complete, and the worker that finds them.
//!
//! File-system events are hints; the directory scan is the truth. The worker scans on start,
//! scans again soon after any event, and rescans on a timer because events can be lost (a full
//! inotify queue, a network file system). A file is taken when it was renamed into the inbox
//! (writers that write `x.part` then rename are done at the rename) or when its size and mtime
//! have not changed for the quiet period.

pub mod intake;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use notify::{EventKind, RecursiveMode, Watcher as _};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::catalog::SpecPlace;
use crate::spec::SpecFormat;

pub use intake::Intake;

/// The inbox folder and its reserved subfolders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inbox {
    root: PathBuf,
}

impl Inbox {
    /// The inbox at `root`.
    pub fn new(root: PathBuf) -> Inbox {
        Inbox { root }
    }

    /// The inbox folder itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The folder for spec files in `place`.
    pub fn folder(&self, place: SpecPlace) -> PathBuf {
        match place {
            SpecPlace::Inbox => self.root.clone(),
            other => self.root.join(other.as_str()),
        }
    }

    /// Creates the inbox and its `processing/`, `done/` and `failed/` folders.
    pub fn ensure(&self) -> std::io::Result<()> {
        for place in [SpecPlace::Processing, SpecPlace::Done, SpecPlace::Failed] {
            std::fs::create_dir_all(self.folder(place))?;
        }
        Ok(())
    }
}

/// What a file in the inbox is, by its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// A spec to take.
    Spec(SpecFormat),
    /// Being written or not ours: dotfiles, `*.tmp`, `*.part`, `*~`, reports.
    Ignored,
    /// An image input that specs refer to; never a spec.
    Image,
    /// Anything else: left alone, logged once.
    Unknown,
}

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
        None => FileKind::Unknown,
    }
}

/// The completeness rule, with what it has seen so far.
#[derive(Debug)]
pub struct Stability {
    quiet: Duration,
    renamed_in: HashSet<PathBuf>,
    seen: HashMap<PathBuf, (u64, SystemTime)>,
    noted: HashSet<PathBuf>,
}

impl Stability {
    /// A rule with the given quiet period.
    pub fn new(quiet: Duration) -> Stability {
        Stability { quiet, renamed_in: HashSet::new(), seen: HashMap::new(), noted: HashSet::new() }
    }

    /// Notes that `path` was renamed into the inbox: complete as of now.
    pub fn renamed_in(&mut self, path: PathBuf) {
        self.renamed_in.insert(path);
    }

    /// Whether a file with `size` and `mtime` is complete at `now`; also remembers what it saw.
    /// A file that changed since the last look is never complete, whatever its mtime says.
    pub fn is_complete(&mut self, path: &Path, size: u64, mtime: SystemTime, now: SystemTime) -> bool {
        let changed = self.seen.insert(path.to_owned(), (size, mtime)).is_some_and(|prev| prev != (size, mtime));
        if changed {
            self.renamed_in.remove(path);
            return false;
        }
        if self.renamed_in.contains(path) {
            return true;
        }
        now.duration_since(mtime).is_ok_and(|age| age >= self.quiet)
    }

    /// Forgets a file that was taken or is gone.
    pub fn forget(&mut self, path: &Path) {
        self.seen.remove(path);
        self.renamed_in.remove(path);
    }

    /// Whether any file is waiting to become complete.
    pub fn has_pending(&self) -> bool {
        !self.seen.is_empty()
    }

    /// Keeps memory only of files still present after a scan.
    pub fn retain_present(&mut self, present: &HashSet<PathBuf>) {
        self.seen.retain(|p, _| present.contains(p));
        self.renamed_in.retain(|p| present.contains(p));
        self.noted.retain(|p| present.contains(p));
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

/// Starts a notify watcher on the inbox that forwards hints into a bounded channel, dropping
/// them when it is full (the next scan finds the files anyway).
pub fn watch(inbox: &Inbox) -> Result<(notify::RecommendedWatcher, mpsc::Receiver<Hint>), WatchError> {
    let (tx, rx) = mpsc::channel(1024);
    let path = inbox.root().to_owned();
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        let hint = match res {
            Ok(event) => Hint::from_event(event),
            Err(e) => {
                tracing::debug!(error = %e, "file-system event error; the next scan covers it");
                Hint::Rescan
            }
        };
        if tx.try_send(hint).is_err() {
            tracing::debug!("file-system event dropped; the next scan covers it");
        }
    })
    .map_err(|source| classify_notify(&path, source))?;
    watcher.watch(&path, RecursiveMode::NonRecursive).map_err(|source| classify_notify(&path, source))?;
    Ok((watcher, rx))
}

fn classify_notify(path: &Path, source: notify::Error) -> WatchError {
    let limit = match &source.kind {
        notify::ErrorKind::MaxFilesWatch => true,
        notify::ErrorKind::Io(e) => matches!(e.raw_os_error(), Some(24 | 28)),
        _ => false,
    };
    if limit {
        WatchError::InotifyLimit { path: path.to_owned(), source }
    } else {
        WatchError::Watcher { path: path.to_owned(), source }
    }
}

/// What a file-system event suggests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hint {
    /// Something changed: scan soon.
    Rescan,
    /// These paths were renamed into the folder: complete now.
    RenamedIn(Vec<PathBuf>),
}

impl Hint {
    fn from_event(event: notify::Event) -> Hint {
        use notify::event::{ModifyKind, RenameMode};
        match event.kind {
            EventKind::Modify(ModifyKind::Name(RenameMode::To)) => Hint::RenamedIn(event.paths),
            EventKind::Modify(ModifyKind::Name(RenameMode::Both)) => {
                Hint::RenamedIn(event.paths.into_iter().skip(1).collect())
            }
            _ => Hint::Rescan,
        }
    }
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
    let (_watcher, mut hints) = watch(&inbox)?;
    let mut stability = Stability::new(quiet);
    let short = (quiet / 4).clamp(Duration::from_millis(50), Duration::from_secs(1));
    loop {
        intake.scan(&mut stability).await;
        let wait = if stability.has_pending() { short } else { rescan };
        tokio::select! {
            () = cancel.cancelled() => return Ok(()),
            hint = hints.recv() => match hint {
                Some(Hint::RenamedIn(paths)) => paths.into_iter().for_each(|p| stability.renamed_in(p)),
                Some(Hint::Rescan) => {}
                None => return Ok(()),
            },
            () = tokio::time::sleep(wait) => {}
        }
        while let Ok(hint) = hints.try_recv() {
            if let Hint::RenamedIn(paths) = hint {
                paths.into_iter().for_each(|p| stability.renamed_in(p));
            }
        }
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
    }

    #[test]
    fn quiet_period_and_renames() {
        let mut s = Stability::new(Duration::from_secs(2));
        let p = Path::new("/in/a.json");
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        assert!(!s.is_complete(p, 10, t0, t0 + Duration::from_secs(1)), "too fresh");
        assert!(s.is_complete(p, 10, t0, t0 + Duration::from_secs(3)), "quiet long enough");
        assert!(!s.is_complete(p, 20, t0, t0 + Duration::from_secs(9)), "grew since last look");
        let q = Path::new("/in/b.json");
        s.renamed_in(q.to_owned());
        assert!(s.is_complete(q, 5, t0, t0), "renamed in: complete at once");
        s.forget(q);
        assert!(!s.is_complete(q, 5, t0, t0));
    }
}
