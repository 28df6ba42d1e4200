//! Where assets live: an `object_store` backend chosen by URL, and the key layout.
//!
//! vidkeep programs against `Arc<dyn ObjectStore>` only, so the local file system (the embedded
//! default), an in-memory store (tests) and S3-compatible stores share one code path. Keys are
//! `YYYY/MM/DD/<job id>/<file>`, dated by the job's creation, so a bucket is browsable by hand.

use std::sync::Arc;

use object_store::ObjectStore;
use object_store::local::LocalFileSystem;
use object_store::path::Path as Key;

mod local;

/// Errors from the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The storage URL cannot be used.
    #[error("storage url `{url}`: {reason}")]
    Url {
        /// The URL as configured.
        url: String,
        /// Why it cannot be used.
        reason: String,
    },
    /// The store failed.
    #[error("store {about} `{key}`: {source}")]
    Backend {
        /// What was being done.
        about: &'static str,
        /// The object key.
        key: String,
        /// The backend's error.
        source: object_store::Error,
    },
}

impl StoreError {
    /// Whether the object does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, StoreError::Backend { source: object_store::Error::NotFound { .. }, .. })
    }
}

/// A configured store.
#[derive(Debug, Clone)]
pub struct Store {
    inner: Arc<dyn ObjectStore>,
    /// The URL it was opened from, for messages (holds no credentials).
    url: String,
}

impl Store {
    /// Opens the store at `url` (`file:///abs/path`), creating the folder if needed.
    pub fn open(url: &str) -> Result<Store, StoreError> {
        let bad = |reason: String| StoreError::Url { url: url.to_owned(), reason };
        let parsed = url::Url::parse(url).map_err(|e| bad(e.to_string()))?;
        match parsed.scheme() {
            "file" => {
                let dir = parsed.to_file_path().map_err(|()| bad("not an absolute file path".to_owned()))?;
                std::fs::create_dir_all(&dir).map_err(|e| bad(format!("cannot create {}: {e}", dir.display())))?;
                let fs = LocalFileSystem::new_with_prefix(&dir)
                    .map_err(|e| bad(e.to_string()))?
                    .with_automatic_cleanup(true);
                Ok(Store::from_backend(Arc::new(fs), url))
            }
            other => Err(bad(format!("the `{other}` scheme is not supported yet; use file:///path"))),
        }
    }

    /// Removes what uploads interrupted by a crash left behind; returns how many objects. For a
    /// local store, the staging files object_store writes beside each final path. Blocking.
    pub fn clean_staging(&self) -> Result<usize, StoreError> {
        let Ok(dir) =
            url::Url::parse(&self.url).and_then(|u| u.to_file_path().map_err(|()| url::ParseError::EmptyHost))
        else {
            return Ok(0);
        };
        local::clean_staging(&dir)
            .map_err(|e| StoreError::Url { url: self.url.clone(), reason: format!("cannot clean staging files: {e}") })
    }

    /// Wraps any backend (tests use `InMemory`).
    pub fn from_backend(inner: Arc<dyn ObjectStore>, url: &str) -> Store {
        Store { inner, url: url.to_owned() }
    }

    /// The backend.
    pub fn backend(&self) -> &Arc<dyn ObjectStore> {
        &self.inner
    }

    /// The URL the store was opened from.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Wraps a backend error with what was being done.
    pub fn err(about: &'static str, key: &Key) -> impl FnOnce(object_store::Error) -> StoreError {
        let key = key.to_string();
        move |source| StoreError::Backend { about, key, source }
    }
}

/// The key of `file` for the job `job_id` created at `created_at_ms`.
pub fn job_key(created_at_ms: i64, job_id: &str, file: &str) -> Key {
    Key::from(format!("{}/{job_id}/{file}", crate::time::date_path(created_at_ms)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_dated_and_relative() {
        let k = job_key(1_764_000_000_000, "0190-abc", "video.mp4");
        assert_eq!(k.as_ref(), "2025/11/24/0190-abc/video.mp4");
    }

    #[test]
    fn unsupported_schemes_are_named() {
        let err = Store::open("gs://bucket").expect_err("unsupported");
        assert!(err.to_string().contains("gs"), "{err}");
    }
}
