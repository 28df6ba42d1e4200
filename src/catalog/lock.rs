//! One daemon per SQLite catalogue.
//!
//! SQLite serialises writers but cannot share a job state machine between two daemons: each
//! would take the other's jobs for its own (reconcile, polls, downloads) and clean the other's
//! staging area. So `vidkeep run` takes an exclusive, non-blocking `flock` on `<catalogue>.lock`
//! before it opens anything, and holds it for the life of the process; a second daemon on the
//! same catalogue is refused at once with the first one's pid. The kernel drops the lock when
//! the process ends in any way (SIGKILL, a panic, a power cut), so a stale file never blocks a
//! start. The lock file is never deleted: deleting it would let a third process lock a new
//! file while the second still holds the old one.
//!
//! Commands that read the catalogue, and `resolve`, run beside the daemon and take no lock.

use std::io::{Read as _, Seek as _, Write as _};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use rustix::fs::FlockOperation;
use rustix::io::Errno;

use super::CatalogError;

/// The exclusive hold of one daemon on a catalogue; released when dropped.
#[derive(Debug)]
pub struct DaemonLock {
    _file: std::fs::File,
    path: PathBuf,
}

impl DaemonLock {
    /// The lock file of the catalogue at `catalog`: `<file name>.lock` beside it.
    pub fn path_for(catalog: &Path) -> PathBuf {
        let mut name = catalog.file_name().map(|n| n.to_os_string()).unwrap_or_else(|| "catalog".into());
        name.push(".lock");
        catalog.with_file_name(name)
    }

    /// Takes the catalogue at `catalog` for this process, or says which process has it.
    pub fn acquire(catalog: &Path) -> Result<DaemonLock, CatalogError> {
        let path = DaemonLock::path_for(catalog);
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| CatalogError::Io { about: "create its folder", source })?;
        }
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o640)
            .custom_flags(libc::O_CLOEXEC)
            .open(&path)
            .map_err(|source| CatalogError::Io { about: "open the daemon lock", source })?;
        match rustix::fs::flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(Errno::WOULDBLOCK) => {
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                let holder = text.trim().parse::<u32>().ok();
                return Err(CatalogError::InUse { catalog: catalog.to_owned(), holder });
            }
            Err(e) => return Err(CatalogError::Io { about: "lock the catalogue", source: e.into() }),
        }
        // Ours now: say who holds it, for the message the next one gets.
        let wrote =
            file.set_len(0).and_then(|()| file.rewind()).and_then(|()| writeln!(file, "{}", std::process::id()));
        wrote.map_err(|source| CatalogError::Io { about: "write the daemon lock", source })?;
        Ok(DaemonLock { _file: file, path })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_hold_is_refused_with_the_first_ones_pid_and_freed_on_drop() {
        let dir = tempfile::tempdir().expect("tempdir");
        let catalog = dir.path().join("catalog.sqlite");
        let first = DaemonLock::acquire(&catalog).expect("first");
        assert_eq!(first.path(), dir.path().join("catalog.sqlite.lock"));
        // flock locks belong to the open file, so a second open in this process conflicts too.
        match DaemonLock::acquire(&catalog) {
            Err(CatalogError::InUse { holder, .. }) => assert_eq!(holder, Some(std::process::id())),
            other => panic!("expected InUse, got {other:?}"),
        }
        drop(first);
        DaemonLock::acquire(&catalog).expect("free again once the first is dropped");
    }
}
