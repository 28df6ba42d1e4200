//! The local store's leftovers. object_store's `LocalFileSystem` writes an upload to
//! `<final path>#<n>` and renames it into place when complete; a process killed mid-upload
//! leaves that staging file behind, and `list` hides it, so nothing else would ever remove it.

use std::path::Path;

/// Removes staging files under `root`; returns how many. Run at start, before any upload.
pub(super) fn clean_staging(root: &Path) -> std::io::Result<usize> {
    let mut removed = 0;
    let mut folders = vec![root.to_owned()];
    while let Some(dir) = folders.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let kind = entry.file_type()?;
            let path = entry.path();
            if kind.is_dir() {
                folders.push(path);
            } else if kind.is_file() && is_staging(&entry.file_name().to_string_lossy()) {
                std::fs::remove_file(&path)?;
                tracing::info!(file = %path.display(), "removed an upload left unfinished by a crash");
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
