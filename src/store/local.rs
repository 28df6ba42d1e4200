//! The local store's durability and leftovers.
//!
//! `LocalFileSystem` never fsyncs: after its rename the catalogue could durably say `archived`
//! while the bytes are still only in the page cache. [`make_durable`] flushes the file, then
//! every folder from the file's own up to the storage root (a new folder's entry lives in its
//! parent), through a [`Durability`] that tests replace to see the order of the calls.
//!
//! Leftovers: object_store's `LocalFileSystem` writes an upload to `<final path>#<n>` and renames
//! it into place when complete; a process killed mid-upload leaves that staging file behind, and
//! `list` hides it, so nothing else would ever remove it.

use crate::telemetry::Escaped;
use std::path::Path;

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

/// Flushes `file` (a key, if given), then the folder of `folder_of` (a key, if given) and each
/// folder above it up to and including `root`.
pub(super) fn make_durable(
    root: &Path,
    durability: &dyn Durability,
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
    let mut folder = folder_of.and_then(|k| Path::new(k).parent());
    while let Some(rel) = folder {
        durability.sync_dir(&root.join(rel)).map_err(failed(&rel.to_string_lossy()))?;
        folder = rel.parent();
    }
    Ok(())
}

/// Cleans the staging folder `folder`: the files directly in it and the whole subfolder `own`
/// (this daemon's area), leaving other daemons' subfolders alone; returns how many files went.
pub(super) fn clean_folder(folder: &Path, own: Option<&str>) -> std::io::Result<usize> {
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
            if own.is_some_and(|own| entry.file_name() == own) {
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
        assert_eq!(clean_folder(&staging, Some("me")).expect("clean"), 3);
        assert!(!staging.join("me").exists() && !staging.join("legacy").exists());
        assert!(staging.join("other/c").exists(), "another daemon's upload in flight stays");
        assert_eq!(clean_folder(&dir.path().join("none"), Some("me")).expect("no folder"), 0);
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
