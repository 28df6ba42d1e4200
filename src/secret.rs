//! Secrets that must never reach a log, a report, the catalogue or an error message, and the
//! one way secret files are read ([`read_private_file`]).

use std::fmt;
use std::io::Read as _;
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _};
use std::path::Path;

/// A secret string (an API key). `Debug` and `Display` print `[redacted]`; the only way to the
/// value is [`Secret::expose`], which makes every use easy to find.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The secret value, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Why a secret file cannot be used. No variant holds a byte of the file's content.
#[derive(Debug, thiserror::Error)]
pub enum PrivateFileError {
    /// Opening failed (missing, a symlink where none is followed, no permission).
    #[error("cannot be opened: {0}")]
    Open(std::io::Error),
    /// Reading failed.
    #[error("cannot be read: {0}")]
    Read(std::io::Error),
    /// Not a regular file.
    #[error("is not a regular file")]
    NotAFile,
    /// Its group or others may read or write it.
    #[error("is readable or writable by its group or others (mode {mode:04o}): run `chmod 600 {path}`")]
    Exposed {
        /// The permission bits.
        mode: u32,
        /// The file, for the fix.
        path: String,
    },
    /// Longer than the caller allows.
    #[error("is {0} bytes, too long for what it should hold")]
    TooBig(u64),
    /// Not UTF-8 (never quoted: it may be the secret in another encoding).
    #[error("is not UTF-8 text")]
    NotUtf8,
}

impl PrivateFileError {
    /// Whether the file does not exist.
    pub fn is_missing(&self) -> bool {
        matches!(self, PrivateFileError::Open(e) if e.kind() == std::io::ErrorKind::NotFound)
    }
}

/// Reads a file holding a secret: opened without following a symlink unless `follow_symlink`,
/// checked on the opened descriptor (a regular file, no permission bits for group or others, at
/// most `max_bytes`), returned whole as a [`Secret`].
pub fn read_private_file(path: &Path, max_bytes: u64, follow_symlink: bool) -> Result<Secret, PrivateFileError> {
    let nofollow = if follow_symlink { 0 } else { libc::O_NOFOLLOW };
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nofollow | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(PrivateFileError::Open)?;
    let meta = file.metadata().map_err(PrivateFileError::Read)?;
    if !meta.is_file() {
        return Err(PrivateFileError::NotAFile);
    }
    let mode = meta.mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(PrivateFileError::Exposed { mode, path: path.display().to_string() });
    }
    if meta.len() > max_bytes {
        return Err(PrivateFileError::TooBig(meta.len()));
    }
    let mut bytes = Vec::new();
    file.take(max_bytes + 1).read_to_end(&mut bytes).map_err(PrivateFileError::Read)?;
    if bytes.len() as u64 > max_bytes {
        return Err(PrivateFileError::TooBig(bytes.len() as u64));
    }
    String::from_utf8(bytes).map(Secret).map_err(|_| PrivateFileError::NotUtf8)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    #[test]
    fn never_prints_the_value() {
        let s = Secret::new("id.supersecret");
        assert!(!format!("{s:?} {s}").contains("supersecret"));
        assert_eq!(s.expose(), "id.supersecret");
    }

    #[test]
    fn a_private_file_is_read_and_an_exposed_one_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("f");
        std::fs::write(&path, "s3cr3t\n").expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        assert_eq!(read_private_file(&path, 64, false).expect("read").expose(), "s3cr3t\n");
        assert!(matches!(read_private_file(&path, 3, false), Err(PrivateFileError::TooBig(7))));
        std::os::unix::fs::symlink(&path, dir.path().join("link")).expect("symlink");
        assert!(read_private_file(&dir.path().join("link"), 64, false).is_err());
        assert!(read_private_file(&dir.path().join("link"), 64, true).is_ok());
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).expect("chmod");
        let e = read_private_file(&path, 64, false).expect_err("exposed").to_string();
        assert!(e.contains("mode 0640") && e.contains(&format!("chmod 600 {}", path.display())), "{e}");
        assert!(read_private_file(&dir.path().join("missing"), 64, true).expect_err("missing").is_missing());
    }
}
