//! File-system events as hints for the intake worker, gathered per path.
//!
//! notify calls back on its own thread for every event. A burst of thousands of files renamed
//! into the inbox at once raises thousands of events (and the claim of each, its move into
//! `processing/`, raises one more). A bounded queue of events dropped most of them, so most
//! files lost the "renamed in, complete now" hint and waited out the quiet period and a second
//! read instead. Events are therefore folded, as they arrive, into one map of the last thing
//! seen per path: memory grows with the number of distinct files (capped), not with events,
//! and nothing is dropped below the cap. Past the cap a file is still found by the scan and
//! taken by the quiet-period rule.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use notify::{EventKind, RecursiveMode, Watcher as _};
use tokio::sync::Notify;

use super::{Inbox, Stability, WatchError};

/// How long the worker lets events gather before it scans.
pub(super) const DEBOUNCE: Duration = Duration::from_millis(20);

/// Paths remembered between two scans at most.
const MAX_PATHS: usize = 65_536;

/// What a file-system event suggests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hint {
    /// Something changed: scan soon.
    Rescan,
    /// These paths were renamed into the folder: complete now.
    RenamedIn(Vec<PathBuf>),
    /// These paths were created or written to: incomplete until closed.
    Written(Vec<PathBuf>),
    /// A writer closed these paths.
    Closed(Vec<PathBuf>),
}

impl Hint {
    /// What an event suggests, or `None` for events that cannot mean a new complete file.
    /// notify's inotify backend always subscribes to `IN_OPEN`, so the daemon's own listing and
    /// reads of the inbox raise open/close-nowrite events: reacting to those made every scan
    /// trigger the next, a loop that kept a core busy. Only creation, writes, closes after
    /// writing, renames and attribute changes (a `touch`) count.
    fn from_event(event: notify::Event) -> Option<Hint> {
        use notify::event::{AccessKind, AccessMode, ModifyKind, RenameMode};
        match event.kind {
            EventKind::Modify(ModifyKind::Name(RenameMode::To)) => Some(Hint::RenamedIn(event.paths)),
            EventKind::Modify(ModifyKind::Name(RenameMode::Both)) => {
                Some(Hint::RenamedIn(event.paths.into_iter().skip(1).collect()))
            }
            EventKind::Create(_) | EventKind::Modify(ModifyKind::Data(_) | ModifyKind::Any) => {
                Some(Hint::Written(event.paths))
            }
            EventKind::Modify(_) => Some(Hint::Rescan),
            EventKind::Access(AccessKind::Close(AccessMode::Write)) => Some(Hint::Closed(event.paths)),
            EventKind::Any | EventKind::Other => Some(Hint::Rescan),
            EventKind::Access(_) | EventKind::Remove(_) => None,
        }
    }
}

/// The last thing seen of one path since the previous scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Last {
    RenamedIn,
    Written(SystemTime),
    Closed,
}

/// Hints gathered since the worker last looked.
#[derive(Debug, Default)]
struct Gathered {
    paths: HashMap<PathBuf, Last>,
    /// Paths not remembered because the map was full (they are found by the scan).
    overflowed: u64,
}

/// The hints the watcher gathers, and the wake-up that says there are some.
#[derive(Debug, Clone, Default)]
pub(super) struct Pending {
    gathered: Arc<Mutex<Gathered>>,
    wake: Arc<Notify>,
}

impl Pending {
    /// Folds one hint in; `now` is when a write was seen.
    fn add(&self, hint: Hint, now: SystemTime) {
        let (paths, last) = match hint {
            Hint::Rescan => (Vec::new(), None),
            Hint::RenamedIn(paths) => (paths, Some(Last::RenamedIn)),
            Hint::Written(paths) => (paths, Some(Last::Written(now))),
            Hint::Closed(paths) => (paths, Some(Last::Closed)),
        };
        if let Some(last) = last {
            let mut gathered = self.gathered.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            for path in paths {
                let full = gathered.paths.len() >= MAX_PATHS;
                match gathered.paths.get_mut(&path) {
                    Some(seen) => *seen = last,
                    None if full => gathered.overflowed += 1,
                    None => {
                        gathered.paths.insert(path, last);
                    }
                }
            }
        }
        self.wake.notify_one();
    }

    /// Waits until a hint arrives (at once if one came since the last wait).
    pub(super) async fn changed(&self) {
        self.wake.notified().await;
    }

    /// Applies every gathered hint to `stability` and forgets them.
    pub(super) fn drain_into(&self, stability: &mut Stability) {
        let gathered = {
            let mut guard = self.gathered.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            std::mem::take(&mut *guard)
        };
        if gathered.overflowed > 0 {
            tracing::debug!(
                paths = gathered.overflowed,
                "more files changed at once than are remembered; the quiet period decides for them"
            );
        }
        for (path, last) in gathered.paths {
            match last {
                Last::RenamedIn => stability.renamed_in(path),
                Last::Written(at) => stability.written(path, at),
                Last::Closed => stability.closed(&path),
            }
        }
    }
}

/// Starts a notify watcher on the inbox that folds its events into [`Pending`].
pub(super) fn watch(inbox: &Inbox) -> Result<(notify::RecommendedWatcher, Pending), WatchError> {
    let pending = Pending::default();
    let sink = pending.clone();
    let path = inbox.root().to_owned();
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        let hint = match res {
            Ok(event) if event.need_rescan() => {
                tracing::info!(
                    "the kernel's file-system event queue overflowed (fs.inotify.max_queued_events): files renamed in \
                     meanwhile are taken after the quiet period instead of at once"
                );
                Hint::Rescan
            }
            Ok(event) => match Hint::from_event(event) {
                Some(hint) => hint,
                None => return,
            },
            Err(e) => {
                tracing::debug!(error = %crate::telemetry::Escaped(&e), "file-system event error; the next scan covers it");
                Hint::Rescan
            }
        };
        sink.add(hint, SystemTime::now());
    })
    .map_err(|source| classify_notify(&path, source))?;
    watcher.watch(&path, RecursiveMode::NonRecursive).map_err(|source| classify_notify(&path, source))?;
    Ok((watcher, pending))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_of_renames_is_remembered_whole_and_the_last_event_of_a_path_wins() {
        let pending = Pending::default();
        let now = SystemTime::now();
        // Far more events than the old 1,024-event queue held.
        for i in 0..20_000 {
            pending.add(Hint::RenamedIn(vec![PathBuf::from(format!("/inbox/s{i}.json"))]), now);
            pending.add(Hint::Rescan, now);
        }
        pending.add(Hint::Written(vec![PathBuf::from("/inbox/s7.json")]), now);
        let mut stability = Stability::new(Duration::from_secs(3));
        pending.drain_into(&mut stability);
        let (size, mtime) = (10, now - Duration::from_secs(3600));
        for i in [0, 9_999, 19_999] {
            let path = PathBuf::from(format!("/inbox/s{i}.json"));
            assert!(stability.is_complete(&path, size, mtime, now), "s{i} renamed in: complete at once");
        }
        let written = PathBuf::from("/inbox/s7.json");
        assert!(!stability.is_complete(&written, size, mtime, now), "written after its rename: still open");
        assert!(pending.gathered.lock().expect("lock").paths.is_empty(), "drained");
    }

    #[test]
    fn past_the_cap_paths_are_left_to_the_scan() {
        let pending = Pending::default();
        let now = SystemTime::now();
        for i in 0..MAX_PATHS + 10 {
            pending.add(Hint::RenamedIn(vec![PathBuf::from(format!("/inbox/s{i}.json"))]), now);
        }
        let gathered = pending.gathered.lock().expect("lock");
        assert_eq!(gathered.paths.len(), MAX_PATHS);
        assert_eq!(gathered.overflowed, 10);
    }
}
