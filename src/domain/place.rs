//! The inbox folder layout: where specs are dropped, and the `processing/`, `done/` and `failed/`
//! folders vidkeep moves them through. Intake, the engine, reports and the catalogue all name
//! these places.

use std::os::unix::fs::DirBuilderExt as _;
use std::path::{Path, PathBuf};

use super::DomainError;

/// Which inbox folder a job's spec file is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpecPlace {
    /// Still where it was dropped (the move to `processing/` has not happened yet).
    Inbox,
    /// In `processing/` while the job runs.
    Processing,
    /// In `done/` with its report.
    Done,
    /// In `failed/` with its report.
    Failed,
}

impl SpecPlace {
    /// Name stored in the catalogue; also the folder name for all but `Inbox`.
    pub fn as_str(self) -> &'static str {
        match self {
            SpecPlace::Inbox => "inbox",
            SpecPlace::Processing => "processing",
            SpecPlace::Done => "done",
            SpecPlace::Failed => "failed",
        }
    }

    /// Reads a name stored by [`SpecPlace::as_str`].
    pub fn parse(s: &str) -> Result<SpecPlace, DomainError> {
        match s {
            "inbox" => Ok(SpecPlace::Inbox),
            "processing" => Ok(SpecPlace::Processing),
            "done" => Ok(SpecPlace::Done),
            "failed" => Ok(SpecPlace::Failed),
            other => Err(DomainError::SpecPlace(other.to_owned())),
        }
    }
}

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

    /// Creates the inbox and its `processing/`, `done/` and `failed/` folders, and makes those
    /// three [`OWN_FOLDER_MODE`]: the studio's group drops files into the inbox root only.
    pub fn ensure(&self) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.root)?;
        for place in [SpecPlace::Processing, SpecPlace::Done, SpecPlace::Failed] {
            let dir = self.folder(place);
            match std::fs::DirBuilder::new().mode(OWN_FOLDER_MODE).create(&dir) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e),
            }
            restrict(&dir)?;
        }
        Ok(())
    }

    /// Whether `processing/`, `done/` and `failed/` can take files: each a real folder (not a
    /// file or a link a group member put in its place) that vidkeep can write. A missing one is
    /// created again. The error says which folder and what to do.
    pub fn check_folders(&self) -> Result<(), String> {
        for place in [SpecPlace::Processing, SpecPlace::Done, SpecPlace::Failed] {
            let dir = self.folder(place);
            let name = place.as_str();
            match std::fs::symlink_metadata(&dir) {
                Ok(meta) if meta.is_dir() => {}
                Ok(_) => return Err(format!("{name}/ is not a folder (a file or link took its place): remove it")),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    if let Err(e) = std::fs::DirBuilder::new().mode(OWN_FOLDER_MODE).create(&dir) {
                        return Err(format!("{name}/ is missing and cannot be created: {e}"));
                    }
                }
                Err(e) => return Err(format!("{name}/ cannot be read: {e}")),
            }
            if let Err(e) = rustix::fs::access(&dir, rustix::fs::Access::WRITE_OK | rustix::fs::Access::EXEC_OK) {
                return Err(format!("{name}/ is not writable by vidkeep: {e}"));
            }
        }
        Ok(())
    }
}

/// Mode of `processing/`, `done/` and `failed/`: setgid so reports keep the inbox's group, readable
/// by the group, writable only by vidkeep (no member can rename or replace another's files).
pub const OWN_FOLDER_MODE: u32 = 0o2750;

/// Takes group and world write access away from a folder vidkeep owns (older installs made them 2770).
fn restrict(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    let meta = std::fs::symlink_metadata(dir)?;
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o022 != 0 && meta.is_dir() {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode & !0o022))?;
    }
    Ok(())
}
