//! Reading files that a whole Unix group can write: the inbox's specs and the images they name.
//!
//! A listing that says "regular file" proves nothing about the file opened a moment later: a
//! group member can swap it for a symbolic link (to read a file outside the inbox) or a FIFO (to
//! block `open()` forever). So every read opens with `O_NOFOLLOW | O_NONBLOCK`, checks the opened
//! descriptor with `fstat` (regular file, size within the limit), and reads at most limit + 1
//! bytes from that same descriptor, so a file that grows meanwhile cannot exceed the limit either.

use std::io::Read as _;
use std::path::Path;

use rustix::fs::{FileType, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

/// Why a file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// Gone between the listing and the open.
    #[error("the file is gone")]
    Gone,
    /// A symbolic link, FIFO, device, socket or folder.
    #[error("not a regular file ({0})")]
    NotRegular(&'static str),
    /// Larger than the limit (seen by `fstat`, or by reading past it).
    #[error("the file is {bytes} bytes or more; the limit is {max} bytes")]
    TooLarge {
        /// Bytes seen.
        bytes: u64,
        /// The limit.
        max: u64,
    },
    /// The path leads outside the folder it must stay in.
    #[error("the path leads outside the inbox")]
    Outside,
    /// Any other I/O error.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// A file's bytes and identity, as read from one descriptor.
#[derive(Debug)]
pub struct Opened {
    /// The bytes (at most the limit).
    pub bytes: Vec<u8>,
    /// Device and inode of what was read, to compare with what is later renamed.
    pub id: (u64, u64),
}

const FLAGS: OFlags =
    OFlags::RDONLY.union(OFlags::NOFOLLOW).union(OFlags::NONBLOCK).union(OFlags::CLOEXEC).union(OFlags::NOCTTY);

/// Reads the regular file at `path` (never through a symlink) if it has at most `max` bytes.
pub fn read_regular(path: &Path, max: u64) -> Result<Opened, ReadError> {
    let fd = rustix::fs::open(path, FLAGS, Mode::empty()).map_err(open_error)?;
    read_fd(fd, max)
}

/// Reads `rel`, a path below the folder `root`, refusing any path (`..`, an absolute symlink, a
/// symlink swapped in after a check) that resolves outside `root`. Uses `openat2` with
/// `RESOLVE_BENEATH` where the kernel has it (Linux 5.6+).
pub fn read_beneath(root: &Path, rel: &Path, max: u64) -> Result<Opened, ReadError> {
    let dir = rustix::fs::open(root, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
        .map_err(open_error)?;
    let resolve = ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS;
    match rustix::fs::openat2(&dir, rel, FLAGS, Mode::empty(), resolve) {
        Ok(fd) => read_fd(fd, max),
        Err(Errno::XDEV) => Err(ReadError::Outside),
        Err(Errno::NOSYS) => {
            let fd = rustix::fs::openat(&dir, rel, FLAGS, Mode::empty()).map_err(open_error)?;
            read_fd(fd, max)
        }
        Err(e) => Err(open_error(e)),
    }
}

fn open_error(e: Errno) -> ReadError {
    match e {
        Errno::NOENT => ReadError::Gone,
        Errno::LOOP => ReadError::NotRegular("a symbolic link"),
        Errno::NXIO => ReadError::NotRegular("a socket or device"),
        other => ReadError::Io(other.into()),
    }
}

fn read_fd(fd: rustix::fd::OwnedFd, max: u64) -> Result<Opened, ReadError> {
    let stat = rustix::fs::fstat(&fd).map_err(|e| ReadError::Io(e.into()))?;
    let kind = match FileType::from_raw_mode(stat.st_mode) {
        FileType::RegularFile => None,
        FileType::Symlink => Some("a symbolic link"),
        FileType::Fifo => Some("a FIFO"),
        FileType::Directory => Some("a folder"),
        FileType::Socket => Some("a socket"),
        _ => Some("a device"),
    };
    if let Some(kind) = kind {
        return Err(ReadError::NotRegular(kind));
    }
    let size = u64::try_from(stat.st_size).unwrap_or(0);
    if size > max {
        return Err(ReadError::TooLarge { bytes: size, max });
    }
    let mut file = std::fs::File::from(fd);
    // Regular files never block; clear O_NONBLOCK anyway so a network file system reads normally.
    let _ = rustix::fs::fcntl_setfl(&file, OFlags::empty());
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    (&mut file).take(max + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(ReadError::TooLarge { bytes: bytes.len() as u64, max });
    }
    Ok(Opened { bytes, id: (stat.st_dev, stat.st_ino) })
}

/// Size of the regular file at `rel` below `root`, checked as [`read_beneath`] would, without reading it.
pub fn size_beneath(root: &Path, rel: &Path) -> Result<u64, ReadError> {
    read_beneath(root, rel, 0).map(|o| o.bytes.len() as u64).or_else(|e| match e {
        ReadError::TooLarge { bytes, .. } => Ok(bytes),
        other => Err(other),
    })
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;
    use std::time::{Duration, Instant};

    use super::*;

    #[test]
    fn a_fifo_is_refused_at_once_not_waited_on() {
        let dir = tempfile::tempdir().expect("tempdir");
        let fifo = dir.path().join("spec.json");
        rustix::fs::mknodat(rustix::fs::CWD, &fifo, FileType::Fifo, Mode::from_raw_mode(0o600), 0).expect("mkfifo");
        let start = Instant::now();
        assert!(matches!(read_regular(&fifo, 1024), Err(ReadError::NotRegular("a FIFO"))));
        assert!(matches!(read_beneath(dir.path(), Path::new("spec.json"), 1024), Err(ReadError::NotRegular(_))));
        assert!(start.elapsed() < Duration::from_secs(5), "returned without waiting for a writer");
    }

    #[test]
    fn symlinks_are_never_followed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let outside = tempfile::tempdir().expect("tempdir");
        std::fs::write(outside.path().join("secret.txt"), "do not send me").expect("write");
        std::os::unix::fs::symlink(outside.path().join("secret.txt"), dir.path().join("a.txt")).expect("symlink");
        assert!(matches!(read_regular(&dir.path().join("a.txt"), 1024), Err(ReadError::NotRegular(_))));
        // A folder link that points out is refused below the root, and so is `..`.
        std::os::unix::fs::symlink(outside.path(), dir.path().join("sub")).expect("symlink");
        assert!(matches!(
            read_beneath(dir.path(), Path::new("sub/secret.txt"), 1024),
            Err(ReadError::Outside | ReadError::NotRegular(_))
        ));
        let escape = Path::new("..").join(outside.path().file_name().expect("name")).join("secret.txt");
        assert!(read_beneath(dir.path(), &escape, 1024).is_err());
    }

    #[test]
    fn at_most_the_limit_is_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("a.json");
        let mut f = std::fs::File::create(&path).expect("create");
        f.write_all(&[b'x'; 100]).expect("write");
        assert_eq!(read_regular(&path, 100).expect("read").bytes.len(), 100);
        assert!(matches!(read_regular(&path, 99), Err(ReadError::TooLarge { bytes: 100, max: 99 })));
        assert!(matches!(read_regular(&dir.path().join("gone.json"), 99), Err(ReadError::Gone)));
        assert_eq!(size_beneath(dir.path(), Path::new("a.json")).expect("size"), 100);
    }
}
