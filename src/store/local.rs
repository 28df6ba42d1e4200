//! The local store's durability and leftovers.
//!
//! `LocalFileSystem` never fsyncs: after its rename the catalogue could durably say `archived`
//! while the bytes are still only in the page cache. [`make_durable`] flushes the file, then
//! its folder, then each folder above it up to the storage root, until it reaches a folder whose
//! own entry is already known to be on the disk ([`DurableFolders`]): a new folder's entry lives
//! in its parent, an old one's is there already. Calls go through a [`Durability`] that tests
//! replace to see their order.
//!
//! Leftovers: object_store's `LocalFileSystem` writes an upload to `<final path>#<n>` and renames
//! it into place when complete; a process killed mid-upload leaves that staging file behind, and
//! `list` hides it, so nothing else would ever remove it.

use crate::telemetry::Escaped;
use std::collections::HashMap;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::StoreError;

/// Flushes written bytes to the disk. [`Fsync`] is the real one; tests wrap it to record calls.
pub trait Durability: Send + Sync {
    /// Flushes the file at `path` (data and metadata).
    fn sync_file(&self, path: &Path) -> std::io::Result<()>;
    /// Flushes the folder at `path`: the entries (names) it holds.
    fn sync_dir(&self, path: &Path) -> std::io::Result<()>;
}

/// `fsync(2)` through `File::sync_all`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Fsync;

impl Durability for Fsync {
    fn sync_file(&self, path: &Path) -> std::io::Result<()> {
        std::fs::File::open(path)?.sync_all()
    }

    fn sync_dir(&self, path: &Path) -> std::io::Result<()> {
        std::fs::File::open(path)?.sync_all()
    }
}

impl std::fmt::Debug for dyn Durability {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Durability")
    }
}

/// Folders whose own entry, in their parent, this process has flushed since they were made: a
/// file published into one needs that folder flushed, not the ones above it. Each is known by its
/// device and inode as well as its path, so a folder removed and made again (a new inode) is
/// flushed in its parent again. Bounded: forgetting costs only an extra fsync.
#[derive(Debug, Default)]
pub(crate) struct DurableFolders {
    known: Mutex<HashMap<PathBuf, (u64, u64)>>,
}

impl DurableFolders {
    /// Folders remembered at most; past that the memory starts again (jobs make one folder
    /// each, so this is a window of recent ones, plus the day folders they share).
    const MAX: usize = 4096;

    /// The folder's device and inode.
    fn identity(path: &Path) -> std::io::Result<(u64, u64)> {
        let meta = std::fs::metadata(path)?;
        Ok((meta.dev(), meta.ino()))
    }

    /// Whether `path` is a folder whose entry was flushed and that is still the same folder.
    fn holds(&self, path: &Path) -> bool {
        let remembered = self.known.lock().unwrap_or_else(|e| e.into_inner()).get(path).copied();
        remembered.is_some_and(|id| Self::identity(path).is_ok_and(|now| now == id))
    }

    /// Remembers `path` as the folder `id` names, flushed in its parent.
    fn remember(&self, path: PathBuf, id: (u64, u64)) {
        let mut known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        if known.len() >= Self::MAX {
            known.clear();
        }
        known.insert(path, id);
    }
}

/// Flushes `file` (a key, if given), then the folder of `folder_of` (a key, if given), then each
/// folder above it up to and including `root`, stopping below the first parent whose child's
/// entry `known` already holds. A folder's identity is read before its parent is flushed, so a
/// folder replaced meanwhile is not taken for the flushed one.
pub(super) fn make_durable(
    root: &Path,
    durability: &dyn Durability,
    known: &DurableFolders,
    file: Option<&str>,
    folder_of: Option<&str>,
) -> Result<(), StoreError> {
    let failed = |key: &str| {
        let key = key.to_owned();
        move |source| StoreError::Sync { key, source }
    };
    if let Some(file) = file {
        durability.sync_file(&root.join(file)).map_err(failed(file))?;
    }
    let Some(mut folder) = folder_of.and_then(|k| Path::new(k).parent()) else { return Ok(()) };
    durability.sync_dir(&root.join(folder)).map_err(failed(&folder.to_string_lossy()))?;
    while let Some(parent) = folder.parent() {
        let path = root.join(folder);
        if known.holds(&path) {
            break;
        }
        let id = DurableFolders::identity(&path).map_err(failed(&folder.to_string_lossy()))?;
        durability.sync_dir(&root.join(parent)).map_err(failed(&parent.to_string_lossy()))?;
        known.remember(path, id);
        folder = parent;
    }
    Ok(())
}

/// Cleans the staging folder `folder`: the files directly in it and the whole subfolders named in
/// `areas` (this daemon's, and those of daemons long gone), leaving other daemons' subfolders
/// alone; returns how many files went.
pub(super) fn clean_folder(folder: &Path, areas: &[&str]) -> std::io::Result<usize> {
    let entries = match std::fs::read_dir(folder) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut removed = 0;
    for entry in entries {
        let entry = entry?;
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            if areas.iter().any(|area| entry.file_name() == *area) {
                removed += std::fs::read_dir(&path).map(Iterator::count).unwrap_or(0);
                match std::fs::remove_dir_all(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
            }
        } else {
            match std::fs::remove_file(&path) {
                Ok(()) => removed += 1,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(removed)
}

/// Removes the part files (`name#N`) of unfinished writes under `root`, outside the staging
/// area; returns how many. Run at start, before any upload.
pub(super) fn clean_staging(root: &Path) -> std::io::Result<usize> {
    let mut removed = 0;
    let mut folders = vec![root.to_owned()];
    while let Some(dir) = folders.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let kind = entry.file_type()?;
            let path = entry.path();
            if kind.is_dir() {
                // The staging area is cleaned per daemon (`clean_folder`): another daemon's
                // part files there are its uploads in flight.
                if dir != root || entry.file_name() != super::STAGING {
                    folders.push(path);
                }
            } else if kind.is_file() && is_staging(&entry.file_name().to_string_lossy()) {
                std::fs::remove_file(&path)?;
                tracing::info!(file = %Escaped(path.display()), "removed an upload left unfinished by a crash");
                removed += 1;
            }
        }
    }
    Ok(removed)
}

/// `name#<digits>`: vidkeep's keys never contain `#`, so such a file is a staging file.
fn is_staging(name: &str) -> bool {
    name.rsplit_once('#')
        .is_some_and(|(base, n)| !base.is_empty() && !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_staging_clean_takes_its_own_area_and_loose_files_never_another_daemons() {
        let dir = tempfile::tempdir().expect("tempdir");
        let staging = dir.path().join(".staging");
        for (folder, file) in [("me", "a"), ("me", "b#1"), ("other", "c")] {
            std::fs::create_dir_all(staging.join(folder)).expect("mkdir");
            std::fs::write(staging.join(folder).join(file), b"x").expect("write");
        }
        std::fs::write(staging.join("legacy"), b"x").expect("write");
        assert_eq!(clean_folder(&staging, &["me"]).expect("clean"), 3);
        assert!(!staging.join("me").exists() && !staging.join("legacy").exists());
        assert!(staging.join("other/c").exists(), "another daemon's upload in flight stays");
        assert_eq!(clean_folder(&dir.path().join("none"), &["me"]).expect("no folder"), 0);
    }

    /// Records the folders and files flushed, relative to the root.
    #[derive(Default)]
    struct Recorder {
        root: PathBuf,
        calls: Mutex<Vec<String>>,
    }

    impl Durability for Recorder {
        fn sync_file(&self, path: &Path) -> std::io::Result<()> {
            self.record("file", path)
        }
        fn sync_dir(&self, path: &Path) -> std::io::Result<()> {
            self.record("dir", path)
        }
    }

    impl Recorder {
        fn record(&self, what: &str, path: &Path) -> std::io::Result<()> {
            std::fs::metadata(path)?;
            let rel = path.strip_prefix(&self.root).map_err(std::io::Error::other)?;
            self.calls.lock().expect("lock").push(format!("{what} {}", rel.display()));
            Ok(())
        }
        fn take(&self) -> Vec<String> {
            std::mem::take(&mut *self.calls.lock().expect("lock"))
        }
    }

    /// Writes `key` under the recorder's root and makes it durable.
    fn publish(recorder: &Recorder, known: &DurableFolders, key: &str) {
        let path = recorder.root.join(key);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, b"x").expect("write");
        make_durable(&recorder.root, recorder, known, Some(key), Some(key)).expect("durable");
    }

    #[test]
    fn a_new_folder_is_flushed_in_its_parent_once_and_an_old_one_is_not_flushed_again() {
        let dir = tempfile::tempdir().expect("tempdir");
        let recorder = Recorder { root: dir.path().to_owned(), calls: Mutex::default() };
        let known = DurableFolders::default();
        // The first file: every folder up to the root, as nothing is known yet.
        publish(&recorder, &known, "2026/12/06/job-a/video.mp4");
        let first = ["file 2026/12/06/job-a/video.mp4", "dir 2026/12/06/job-a", "dir 2026/12/06", "dir 2026/12"];
        let mut want: Vec<String> = first.iter().map(|s| (*s).to_owned()).collect();
        want.extend(["dir 2026".to_owned(), "dir ".to_owned()]);
        assert_eq!(recorder.take(), want);
        // A second file in that folder: its folder only (its entry changed; the folder's did not).
        publish(&recorder, &known, "2026/12/06/job-a/cover.jpg");
        assert_eq!(recorder.take(), ["file 2026/12/06/job-a/cover.jpg", "dir 2026/12/06/job-a"]);
        // A new job folder in a known day: the new folder, then the day that holds its entry.
        publish(&recorder, &known, "2026/12/06/job-b/video.mp4");
        assert_eq!(recorder.take(), ["file 2026/12/06/job-b/video.mp4", "dir 2026/12/06/job-b", "dir 2026/12/06"]);
    }

    #[test]
    fn a_folder_removed_and_made_again_is_flushed_in_its_parent_again() {
        let dir = tempfile::tempdir().expect("tempdir");
        let recorder = Recorder { root: dir.path().to_owned(), calls: Mutex::default() };
        let known = DurableFolders::default();
        publish(&recorder, &known, "2026/12/06/job-a/video.mp4");
        recorder.take();
        // Someone removes the day and it is made again: a new inode, a new entry in 2026/12.
        // (A placeholder file keeps the old inode from being reused at once.)
        std::fs::write(dir.path().join("2026/12/keep"), b"x").expect("placeholder");
        std::fs::rename(dir.path().join("2026/12/06"), dir.path().join("2026/12/old")).expect("move away");
        publish(&recorder, &known, "2026/12/06/job-a/video.mp4");
        assert_eq!(
            recorder.take(),
            ["file 2026/12/06/job-a/video.mp4", "dir 2026/12/06/job-a", "dir 2026/12/06", "dir 2026/12"],
            "the new day folder's and job folder's entries are flushed; 2026/12 itself is still known"
        );
    }

    #[test]
    fn removes_only_staging_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let job = dir.path().join("2026/11/25/job");
        std::fs::create_dir_all(&job).expect("mkdir");
        for name in ["video.mp4#1", "cover.jpg#12", "video.mp4", "notes#draft", "#7"] {
            std::fs::write(job.join(name), b"x").expect("write");
        }
        assert_eq!(clean_staging(dir.path()).expect("clean"), 2);
        let mut left: Vec<String> = std::fs::read_dir(&job)
            .expect("ls")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["#7", "notes#draft", "video.mp4"]);
    }
}
