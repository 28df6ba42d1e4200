//! Where assets live: an `object_store` backend chosen by URL, and the key layout.
//!
//! vidkeep programs against `Arc<dyn ObjectStore>` only, so the local file system (the embedded
//! default), an in-memory store (tests) and S3-compatible stores share one code path. Keys are
//! `YYYY/MM/DD/<job id>/<file>`, dated by the job's creation, so a bucket is browsable by hand.
//! Keys are always relative to the storage root: for `s3://bucket/prefix` the backend is wrapped
//! in a [`PrefixStore`], so the prefix never appears in a recorded key.
//!
//! # Staging, then publish
//!
//! A download is streamed into a staging key, `.staging/<daemon id>/<uuid>` under the storage
//! root (see [`crate::domain::DaemonId`]; a store not opened by a daemon stages directly under
//! `.staging/`), and
//! published under its final key only once it is complete and hashed ([`Store::publish`]):
//!
//! - local and in-memory stores: an atomic rename;
//! - S3: a server-side `CopyObject` with `x-amz-metadata-directive: REPLACE` that sets the
//!   object's metadata `sha256` (lower hex) and its content type, and asks the server for a
//!   full-object `x-amz-checksum-sha256` (`x-amz-checksum-algorithm: SHA256`). When the server
//!   answers with that checksum it is compared with the hash vidkeep computed while streaming;
//!   a mismatch deletes the copy and fails the upload. A server that does not support S3
//!   additional checksums simply does not answer one, and vidkeep relies on its own hash.
//!   Then the staging object is deleted.
//!
//! Why a copy: the whole-object SHA-256 is known only after the last byte, but S3 metadata can
//! only be set when an object (or a multipart upload) is created, and `object_store`'s own
//! `copy` keeps the source's metadata (it sends no metadata directive). So the copy request is
//! built with `object_store`'s [`Signer`]: a presigned `PUT` whose signature covers the copy and
//! metadata headers, sent by vidkeep's own HTTP client. The signed URL carries the access key id
//! and a signature, so it is never logged and errors drop it (`reqwest::Error::without_url`).
//!
//! `CopyObject` is limited to 5 GiB, so an object whose announced length is larger (or unknown)
//! is uploaded straight to its final key instead: S3 completes a multipart upload atomically, so
//! it still never appears half-written, but it carries no `sha256` metadata; its sidecar
//! (`vidkeep.json`) describes it. Every part is still sent with `x-amz-checksum-sha256` unless
//! `storage.checksum_sha256` is off.
//!
//! # Cleaning up after a crash
//!
//! [`Store::clean_staging`] runs once when the daemon starts: it deletes every object under its
//! own `.staging/<daemon id>/` and directly under `.staging/` (left by a CLI command or by a
//! vidkeep before per-daemon staging) and, on S3, aborts the unfinished multipart uploads there.
//! Other daemons' staging areas are theirs: several daemons (one per inbox) may share a storage
//! root. `object_store` has no API to list multipart uploads, so vidkeep sends a
//! presigned `ListMultipartUploads` itself. Uploads straight to a final key (objects over 5 GiB)
//! cannot be told apart from other writers' uploads and are not aborted: give the bucket a
//! lifecycle rule `AbortIncompleteMultipartUpload` for those.

mod s3;

use crate::telemetry::Escaped;
use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use futures::TryStreamExt as _;
use object_store::local::LocalFileSystem;
use object_store::path::Path as Key;
use object_store::{Attribute, Attributes, ObjectStore, ObjectStoreExt as _, PutOptions, PutPayload};

mod local;

use crate::config::StorageConfig;

pub use local::{Durability, Fsync};
pub use s3::S3Settings;

/// The folder, under the storage root, that uploads are streamed into before they are published.
pub const STAGING: &str = ".staging";

/// Errors from the store. None of them holds a credential or a presigned URL.
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
    /// An S3 request that vidkeep signs itself failed.
    #[error("store {about} `{key}`: {reason}")]
    Request {
        /// What was being done.
        about: &'static str,
        /// The object key.
        key: String,
        /// The status and the server's error code, or the connection error.
        reason: String,
    },
    /// The server's SHA-256 of the published object differs from what was streamed.
    #[error("store: the server's SHA-256 of `{key}` is {server}, vidkeep streamed {streamed}")]
    ChecksumMismatch {
        /// The object key.
        key: String,
        /// What the server computed (base64, as S3 sends it).
        server: String,
        /// What vidkeep computed (base64).
        streamed: String,
    },
    /// A local file or folder could not be flushed to the disk (`fsync`).
    #[error("store: could not make `{key}` durable (fsync): {source}")]
    Sync {
        /// The object key, or the folder, relative to the storage root.
        key: String,
        /// The operating system's error.
        source: std::io::Error,
    },
}

impl StoreError {
    /// Whether the object does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, StoreError::Backend { source: object_store::Error::NotFound { .. }, .. })
    }
}

/// How uploads are cut into parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploadSettings {
    /// Multipart part size in bytes: also the unit of memory per part in flight.
    pub part_size: usize,
    /// Parts uploading at once; peak buffered memory is about `part_size * (max_concurrent_parts + 1)`.
    pub max_concurrent_parts: usize,
    /// S3: stage, then publish by a copy that sets the `sha256` metadata (else straight to the key).
    pub sha256_metadata: bool,
}

impl Default for UploadSettings {
    fn default() -> UploadSettings {
        let storage = StorageConfig::default();
        UploadSettings {
            part_size: storage.part_size,
            max_concurrent_parts: storage.max_concurrent_parts,
            sha256_metadata: storage.sha256_metadata,
        }
    }
}

/// What the backend is, for the few things that differ.
#[derive(Debug, Clone)]
enum Kind {
    /// A local folder (its absolute path), and how written bytes are made durable.
    Local(std::path::PathBuf, Arc<dyn Durability>),
    /// S3-compatible storage.
    S3(Arc<s3::S3>),
    /// Anything else (`InMemory` in tests).
    Other,
}

/// A configured store.
#[derive(Clone)]
pub struct Store {
    /// The backend, rooted at the storage root: keys are relative to it.
    inner: Arc<dyn ObjectStore>,
    /// The URL it was opened from, for messages (holds no credentials).
    url: String,
    /// Backend-specific behaviour.
    kind: Kind,
    /// Part size and concurrency for uploads.
    upload: UploadSettings,
    /// The daemon whose staging area this store's uploads go through, if any.
    staging_owner: Option<crate::domain::DaemonId>,
}

/// Shows the URL and kind only: the backend's own `Debug` may print an access key id.
impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("url", &self.url).field("kind", &self.kind).field("upload", &self.upload).finish()
    }
}

impl Store {
    /// Opens the configured store: `file:///abs/path` (the folder is created if needed) or
    /// `s3://bucket/optional/prefix`.
    pub fn open(config: &StorageConfig) -> Result<Store, StoreError> {
        let url = config.url.as_str();
        let bad = |reason: String| StoreError::Url { url: url.to_owned(), reason };
        let parsed = url::Url::parse(url).map_err(|e| bad(e.to_string()))?;
        let upload = UploadSettings {
            part_size: config.part_size,
            max_concurrent_parts: config.max_concurrent_parts,
            sha256_metadata: config.sha256_metadata,
        };
        match parsed.scheme() {
            "file" => {
                let dir = parsed.to_file_path().map_err(|()| bad("not an absolute file path".to_owned()))?;
                std::fs::create_dir_all(&dir).map_err(|e| bad(format!("cannot create {}: {e}", dir.display())))?;
                let fs = LocalFileSystem::new_with_prefix(&dir)
                    .map_err(|e| bad(e.to_string()))?
                    .with_automatic_cleanup(true);
                Ok(Store {
                    inner: Arc::new(fs),
                    url: url.to_owned(),
                    kind: Kind::Local(dir, Arc::new(Fsync)),
                    upload,
                    staging_owner: None,
                })
            }
            "s3" => {
                let settings = S3Settings::from_config(config).map_err(bad)?;
                let (inner, s3) = s3::open(&settings).map_err(|e| bad(e.to_string()))?;
                Ok(Store { inner, url: url.to_owned(), kind: Kind::S3(Arc::new(s3)), upload, staging_owner: None })
            }
            other => Err(bad(format!("the `{other}` scheme is not supported; use file:///path or s3://bucket/prefix"))),
        }
    }

    /// Wraps any backend (tests use `InMemory`).
    pub fn from_backend(inner: Arc<dyn ObjectStore>, url: &str) -> Store {
        Store { inner, url: url.to_owned(), kind: Kind::Other, upload: UploadSettings::default(), staging_owner: None }
    }

    /// The same store staging its uploads in `owner`'s own area, `.staging/<owner>/`.
    pub fn with_staging_owner(mut self, owner: crate::domain::DaemonId) -> Store {
        self.staging_owner = Some(owner);
        self
    }

    /// The folder this store's uploads are staged in.
    pub fn staging_dir(&self) -> Key {
        match &self.staging_owner {
            Some(owner) => Key::from(STAGING).join(owner.as_str()),
            None => Key::from(STAGING),
        }
    }

    /// The same store with other upload settings.
    pub fn with_upload(mut self, upload: UploadSettings) -> Store {
        self.upload = upload;
        self
    }

    /// The same store making local writes durable through `durability` (tests record the calls);
    /// other backends ignore it.
    pub fn with_durability(mut self, durability: Arc<dyn Durability>) -> Store {
        if let Kind::Local(dir, _) = self.kind {
            self.kind = Kind::Local(dir, durability);
        }
        self
    }

    /// On the local store: fsyncs the file at `key` (if `file`) and then the folders from the
    /// key's own up to the storage root, so the file's bytes and every directory entry leading
    /// to it are on the disk. S3 needs nothing: a completed upload is durable.
    async fn make_durable(&self, file: Option<&Key>, folder_of: Option<&Key>) -> Result<(), StoreError> {
        let Kind::Local(root, durability) = &self.kind else { return Ok(()) };
        let (root, durability) = (root.clone(), Arc::clone(durability));
        let file = file.map(|k| k.to_string());
        let folder_of = folder_of.map(|k| k.to_string());
        tokio::task::spawn_blocking(move || {
            local::make_durable(&root, durability.as_ref(), file.as_deref(), folder_of.as_deref())
        })
        .await
        .map_err(|e| StoreError::Sync { key: "(worker)".to_owned(), source: std::io::Error::other(e.to_string()) })?
    }

    /// The backend, rooted at the storage root.
    pub fn backend(&self) -> &Arc<dyn ObjectStore> {
        &self.inner
    }

    /// The URL the store was opened from.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Part size and concurrency for uploads.
    pub fn upload(&self) -> UploadSettings {
        self.upload
    }

    /// Whether this is S3-compatible storage.
    pub fn is_s3(&self) -> bool {
        matches!(self.kind, Kind::S3(_))
    }

    /// Wraps a backend error with what was being done.
    pub fn err(about: &'static str, key: &Key) -> impl FnOnce(object_store::Error) -> StoreError {
        let key = key.to_string();
        move |source| StoreError::Backend { about, key, source }
    }

    /// A fresh staging key in [`Store::staging_dir`].
    pub fn staging_key(&self) -> Key {
        self.staging_dir().join(uuid::Uuid::now_v7().to_string())
    }

    /// Whether an object of `len` bytes (if announced) is staged and published; if not it is
    /// uploaded straight to its final key: on S3 when `sha256_metadata` is off, or the object
    /// is too large for `CopyObject` (5 GiB). Both are atomic: S3 completes a multipart upload
    /// in one step.
    pub fn can_stage(&self, len: Option<u64>) -> bool {
        match self.kind {
            Kind::S3(_) => self.upload.sha256_metadata && len.is_some_and(|n| n <= s3::MAX_COPY_BYTES),
            Kind::Local(..) | Kind::Other => true,
        }
    }

    /// Moves the complete object at `staging` to `key`, describing it with its SHA-256 where the
    /// backend keeps metadata (see the module docs). After an error nothing is under `key` and
    /// the staging object is deleted. On the local store the staged file is fsynced before the
    /// rename and the folders of `key` after it, so when this returns the object survives a
    /// power cut (see [`Durability`]).
    pub async fn publish(
        &self,
        staging: &Key,
        key: &Key,
        sha256: &[u8; 32],
        content_type: &str,
    ) -> Result<(), StoreError> {
        let result = match &self.kind {
            Kind::S3(s3) => s3.publish(staging, key, sha256, content_type).await,
            Kind::Local(..) => match self.make_durable(Some(staging), None).await {
                Ok(()) => match self.inner.rename(staging, key).await.map_err(Store::err("publish", key)) {
                    Ok(()) => self.make_durable(None, Some(key)).await,
                    Err(e) => Err(e),
                },
                Err(e) => Err(e),
            },
            Kind::Other => self.inner.rename(staging, key).await.map_err(Store::err("publish", key)),
        };
        // The rename moved it; the copy left it. Either way nothing must stay behind.
        match self.inner.delete(staging).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => {
                tracing::warn!(key = %staging, error = %Escaped(&e), "could not delete a staging object; the next start will")
            }
        }
        result
    }

    /// Writes a small object (the sidecar) in one atomic `PUT`, with its SHA-256 as metadata on
    /// S3 and sent as `x-amz-checksum-sha256` when checksums are on. On the local store the file
    /// and its folders are fsynced before this returns.
    pub async fn put_small(&self, key: &Key, bytes: Vec<u8>, content_type: &str) -> Result<(), StoreError> {
        let mut attributes = Attributes::new();
        if self.is_s3() {
            attributes.insert(Attribute::ContentType, content_type.to_owned().into());
            attributes.insert(Attribute::Metadata("sha256".into()), crate::archive::sha256_hex(&bytes).into());
        }
        let opts = PutOptions { attributes, ..PutOptions::default() };
        self.inner.put_opts(key, PutPayload::from(bytes), opts).await.map_err(Store::err("write", key))?;
        self.make_durable(Some(key), Some(key)).await
    }

    /// Reads `range` of the object at `key` (an HTTP Range request on S3), for players and
    /// resumable downloads.
    pub async fn read_range(&self, key: &Key, range: Range<u64>) -> Result<Bytes, StoreError> {
        self.inner.get_range(key, range).await.map_err(Store::err("read", key))
    }

    /// Deletes what a crash left in this store's own staging area and directly under
    /// [`STAGING`] (see the module docs) and, on S3, aborts the unfinished multipart uploads
    /// there; other daemons' areas, `.staging/<other id>/`, are left alone. Run once at daemon
    /// start, before any upload; returns how many leftovers were removed.
    pub async fn clean_staging(&self) -> Result<usize, StoreError> {
        let staging = Key::from(STAGING);
        let own = self.staging_owner.as_ref().map(|o| o.as_str().to_owned());
        // Relative to `.staging/`: a leftover directly under it, or one in our own area.
        let ours = move |rest: &str| match rest.split_once('/') {
            None => true,
            Some((owner, _)) => own.as_deref() == Some(owner),
        };
        if let Kind::Local(dir, _) = &self.kind {
            // Local multipart parts (`name#N`) are invisible to `list`: remove files and folders.
            // Removing a crash's part files can take a while: off the async workers.
            let (dir, own_dir) = (dir.clone(), self.staging_owner.clone());
            let removed = tokio::task::spawn_blocking(move || -> std::io::Result<usize> {
                let folder = dir.join(STAGING);
                let mut removed = local::clean_folder(&folder, own_dir.as_ref().map(|o| o.as_str()))?;
                // Uploads written straight to a final key (unknown length) stage beside it.
                removed += local::clean_staging(&dir)?;
                Ok(removed)
            })
            .await;
            let failed =
                |reason: String| StoreError::Request { about: "clean staging", key: staging.to_string(), reason };
            return removed.map_err(|e| failed(e.to_string()))?.map_err(|e| failed(e.to_string()));
        }
        let mut removed = 0;
        if let Kind::S3(s3) = &self.kind {
            removed += s3.abort_uploads(&staging, &ours).await?;
        }
        let leftovers: Vec<Key> = self
            .inner
            .list(Some(&staging))
            .map_ok(|meta| meta.location)
            .try_collect()
            .await
            .map_err(Store::err("list", &staging))?;
        let prefix = format!("{STAGING}/");
        for key in leftovers {
            if !key.as_ref().strip_prefix(&prefix).is_some_and(&ours) {
                continue;
            }
            match self.inner.delete(&key).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => removed += 1,
                Err(e) => return Err(Store::err("delete", &key)(e)),
            }
        }
        Ok(removed)
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
        let config = StorageConfig { url: "gs://bucket".to_owned(), ..StorageConfig::default() };
        let err = Store::open(&config).expect_err("unsupported");
        assert!(err.to_string().contains("gs"), "{err}");
    }

    #[test]
    fn staging_keys_are_unique_and_under_staging() {
        let store = Store::from_backend(Arc::new(object_store::memory::InMemory::new()), "memory://");
        let (a, b) = (store.staging_key(), store.staging_key());
        assert_ne!(a, b);
        assert!(a.as_ref().starts_with(".staging/"), "{a}");
    }
}
