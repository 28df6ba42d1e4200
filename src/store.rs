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
//! A download is written ([`Store::start_upload`], [`Upload`]) so that no partial object ever
//! appears under its final key:
//!
//! - local and in-memory stores: streamed into a staging key, `.staging/<uuid>` under the
//!   storage root, and published once complete and hashed ([`Store::publish`]): an atomic
//!   rename, after an fsync of the file (the folders are fsynced after it). The local store
//!   writes the file as the bytes arrive, through two 1 MiB buffers: no multipart parts.
//! - S3: a multipart upload straight to the final key, which S3 makes visible only when it is
//!   completed, in one step. Parts are `part_size`, at most `max_concurrent_parts` in flight
//!   per download and `max_bytes_in_flight` buffered across all downloads ([`ByteBudget`]).
//!   With `sha256_metadata` (the default) the object also carries its SHA-256 as metadata
//!   `sha256`: S3 takes metadata only when an upload is created and the hash is known only
//!   after the last byte, so the download is first spooled into an unnamed temporary file in
//!   `spool_dir`, then sent with an upload created with `x-amz-meta-sha256` and the content
//!   type. (Earlier versions staged the upload and published it with a server-side
//!   `CopyObject` that replaced the metadata; that second pass over the data cost as much as the
//!   upload on a self-hosted server, see `BENCHMARKS.md`.) Every part is sent with
//!   `x-amz-checksum-sha256` unless `storage.checksum_sha256` is off, and the spool is hashed
//!   again as it is read back.

//! # Cleaning up after a crash
//!
//! [`Store::clean_staging`] runs once when the daemon starts: it deletes every object under its
//! own `.staging/<daemon id>/` and directly under `.staging/` (left by a CLI command or by a
//! vidkeep before per-daemon staging) and, on S3, aborts the unfinished multipart uploads there.
//! Other daemons' staging areas are theirs: several daemons (one per inbox) may share a storage
//! root. `object_store` has no API to list multipart uploads, so vidkeep sends a presigned
//! `ListMultipartUploads` itself. S3 uploads go straight to their final keys: the daemon aborts the
//! unfinished ones under the folders of its `downloading` jobs at start
//! ([`Store::abort_unfinished`]); give the bucket a lifecycle rule
//! `AbortIncompleteMultipartUpload` for the rest. A spool file has no name and vanishes with
//! the process.

mod s3;

use crate::telemetry::Escaped;
use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use futures::TryStreamExt as _;
use object_store::local::LocalFileSystem;
use object_store::path::Path as Key;
use object_store::{Attribute, Attributes, ObjectStore, ObjectStoreExt as _, PutOptions, PutPayload};

mod budget;
mod local;
mod upload;

use crate::config::StorageConfig;

pub use crate::config::S3Settings;
pub use budget::{ByteBudget, Grant};
pub use local::{Durability, Fsync};
pub use upload::{FILE_BUFFER, Upload};

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
    /// A local file could not be created or written.
    #[error("store: could not write `{key}`: {source}")]
    Write {
        /// The object key.
        key: String,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// A spooled download read back differs from what was streamed (the spool file changed).
    #[error("store: the spooled download of `{key}` changed before it was uploaded; nothing was stored")]
    SpoolChanged {
        /// The object key.
        key: String,
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
    /// A local folder (its absolute path), how written bytes are made durable, and the folders
    /// already known to be on the disk.
    Local(std::path::PathBuf, Arc<dyn Durability>, Arc<local::DurableFolders>),
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
    /// The bytes all multipart uploads through this store (and its clones) may buffer at once.
    budget: ByteBudget,
    /// Where S3 uploads with `sha256_metadata` are spooled.
    spool_dir: std::path::PathBuf,
}

/// Shows the URL and kind only: the backend's own `Debug` may print an access key id.
impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("url", &self.url)
            .field("kind", &self.kind)
            .field("upload", &self.upload)
            .field("budget", &self.budget.total())
            .finish()
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
        let budget = ByteBudget::new(config.max_bytes_in_flight);
        let spool_dir = config.spool_dir();
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
                    kind: Kind::Local(dir, Arc::new(Fsync), Arc::default()),
                    upload,
                    staging_owner: None,
                    budget,
                    spool_dir,
                })
            }
            "s3" => {
                let settings = S3Settings::from_config(config).map_err(bad)?;
                let (inner, s3) = s3::open(&settings).map_err(|e| bad(e.to_string()))?;
                Ok(Store {
                    inner,
                    url: url.to_owned(),
                    kind: Kind::S3(Arc::new(s3)),
                    upload,
                    staging_owner: None,
                    budget,
                    spool_dir,
                })
            }
            other => Err(bad(format!("the `{other}` scheme is not supported; use file:///path or s3://bucket/prefix"))),
        }
    }

    /// Wraps any backend (tests use `InMemory`).
    pub fn from_backend(inner: Arc<dyn ObjectStore>, url: &str) -> Store {
        let defaults = StorageConfig::default();
        let (budget, spool_dir) = (ByteBudget::new(defaults.max_bytes_in_flight), defaults.spool_dir());
        Store {
            inner,
            url: url.to_owned(),
            kind: Kind::Other,
            upload: UploadSettings::default(),
            staging_owner: None,
            budget,
            spool_dir,
        }
    }

    /// The same store with a budget of `bytes` for the parts its uploads buffer at once (shared
    /// by its clones from here on).
    pub fn with_budget(mut self, bytes: usize) -> Store {
        self.budget = ByteBudget::new(bytes);
        self
    }

    /// The budget shared by this store's multipart uploads.
    pub fn budget(&self) -> &ByteBudget {
        &self.budget
    }

    /// Starts writing an object at `key`: on the local store straight into its file (which must
    /// not exist yet); on S3 with `sha256_metadata` into a spool file that
    /// [`Upload::finish`] sends to `key` with its SHA-256 as metadata; elsewhere as a multipart
    /// upload within the shared budget (see [`Upload`]). It is under `key` only after
    /// [`Upload::finish`].
    pub async fn start_upload(&self, key: &Key, content_type: &str) -> Result<Upload, StoreError> {
        let cannot = |source: std::io::Error| StoreError::Write { key: key.to_string(), source };
        match &self.kind {
            Kind::Local(root, ..) => {
                let writer = upload::FileWriter::create(root.join(key.as_ref())).await.map_err(cannot)?;
                Ok(Upload::file(key, writer))
            }
            Kind::S3(_) if self.upload.sha256_metadata => {
                let spool = upload::FileWriter::spool(self.spool_dir.clone()).await.map_err(cannot)?;
                let then = upload::Spooled { store: self.clone(), content_type: content_type.to_owned() };
                Ok(Upload::spooled(key, spool, then))
            }
            Kind::S3(_) | Kind::Other => Ok(Upload::parts(key, self.part_writer(key, content_type, None).await?)),
        }
    }

    /// A multipart upload to `key` within the shared budget; on S3 created with the content type
    /// and, if given, the object's SHA-256 as metadata `sha256`.
    async fn part_writer(
        &self,
        key: &Key,
        content_type: &str,
        sha256: Option<&[u8; 32]>,
    ) -> Result<upload::PartWriter, StoreError> {
        let mut attributes = Attributes::new();
        if self.is_s3() {
            attributes.insert(Attribute::ContentType, content_type.to_owned().into());
            if let Some(sha256) = sha256 {
                attributes.insert(Attribute::Metadata("sha256".into()), crate::domain::hex(sha256).into());
            }
        }
        let opts = object_store::PutMultipartOptions { attributes, ..object_store::PutMultipartOptions::default() };
        let multipart = self.inner.put_multipart_opts(key, opts).await.map_err(Store::err("start upload", key))?;
        Ok(upload::PartWriter::new(
            multipart,
            self.upload.part_size,
            self.upload.max_concurrent_parts,
            self.budget.clone(),
        ))
    }

    /// Whether `key` holds an object of `size` bytes with `sha256` as its metadata (S3 with
    /// `sha256_metadata`); any error reading it is a no.
    pub(crate) async fn holds(&self, key: &Key, size: u64, sha256: &[u8; 32]) -> bool {
        let head = object_store::GetOptions { head: true, ..object_store::GetOptions::default() };
        let Ok(found) = self.inner.get_opts(key, head).await else { return false };
        let recorded = found.attributes.get(&Attribute::Metadata("sha256".into()));
        found.meta.size == size && recorded.is_some_and(|v| v.as_ref() == crate::domain::hex(sha256))
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
        if let Kind::Local(dir, _, known) = self.kind {
            self.kind = Kind::Local(dir, durability, known);
        }
        self
    }

    /// On the local store: fsyncs the file at `key` (if `file`), then the key's folder, then each
    /// folder above whose entry for the one below is not yet known to be on the disk (see
    /// [`local::make_durable`]), so the file's bytes and every directory entry leading to it are
    /// on the disk. S3 needs nothing: a completed upload is durable.
    async fn make_durable(&self, file: Option<&Key>, folder_of: Option<&Key>) -> Result<(), StoreError> {
        let Kind::Local(root, durability, known) = &self.kind else { return Ok(()) };
        let (root, durability, known) = (root.clone(), Arc::clone(durability), Arc::clone(known));
        let file = file.map(|k| k.to_string());
        let folder_of = folder_of.map(|k| k.to_string());
        tokio::task::spawn_blocking(move || {
            local::make_durable(&root, durability.as_ref(), &known, file.as_deref(), folder_of.as_deref())
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

    /// Whether downloads are staged and then published ([`Store::publish`]). S3 uploads go
    /// straight to their final key instead: S3 completes a multipart upload in one step, so the
    /// key never holds a partial object, and with `sha256_metadata` the upload is created with
    /// the SHA-256 already (see [`Upload`]), so no copy is needed.
    pub fn stages(&self) -> bool {
        !matches!(self.kind, Kind::S3(_))
    }

    /// Moves the complete object at `staging` to `key` (on stores that stage, see
    /// [`Store::stages`]). After an error nothing is under `key` and the staging object is
    /// deleted. On the local store the staged file is fsynced before the rename and the folders
    /// of `key` after it, so when this returns the object survives a power cut (see
    /// [`Durability`]).
    pub async fn publish(&self, staging: &Key, key: &Key) -> Result<(), StoreError> {
        let result = match &self.kind {
            Kind::Local(..) => match self.make_durable(Some(staging), None).await {
                Ok(()) => match self.inner.rename(staging, key).await.map_err(Store::err("publish", key)) {
                    Ok(()) => self.make_durable(None, Some(key)).await,
                    Err(e) => Err(e),
                },
                Err(e) => Err(e),
            },
            Kind::S3(_) | Kind::Other => self.inner.rename(staging, key).await.map_err(Store::err("publish", key)),
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
            attributes.insert(Attribute::Metadata("sha256".into()), crate::domain::sha256_hex(&bytes).into());
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

    /// Aborts the unfinished multipart uploads under `folder` and returns how many: on S3 an
    /// object is uploaded straight to its final key, so a stop mid-upload leaves one under its
    /// job's folder, which costs storage until aborted. The daemon runs this at start for the
    /// folders of its `downloading` jobs, which nothing else writes. Other stores leave nothing
    /// unfinished outside the staging area.
    pub async fn abort_unfinished(&self, folder: &Key) -> Result<usize, StoreError> {
        match &self.kind {
            Kind::S3(s3) => s3.abort_uploads(folder, &|_| true).await,
            Kind::Local(..) | Kind::Other => Ok(0),
        }
    }

    /// Deletes what a crash left in this store's own staging area and directly under
    /// [`STAGING`] (see the module docs) and, on S3, aborts the unfinished multipart uploads
    /// there; other daemons' areas, `.staging/<other id>/`, are left alone, but for those of
    /// the `lapsed` daemons (whose lease on a shared catalogue ran out long ago: nothing of theirs
    /// is in flight). Run once at daemon start, before any upload; returns how many leftovers
    /// were removed.
    pub async fn clean_staging(&self, lapsed: &[crate::domain::DaemonId]) -> Result<usize, StoreError> {
        let staging = Key::from(STAGING);
        let mut areas: Vec<String> = lapsed.iter().map(|d| d.as_str().to_owned()).collect();
        areas.extend(self.staging_owner.as_ref().map(|o| o.as_str().to_owned()));
        // Relative to `.staging/`: a leftover directly under it, or one in an area to clean.
        let owners = areas.clone();
        let ours = move |rest: &str| match rest.split_once('/') {
            None => true,
            Some((owner, _)) => owners.iter().any(|o| o == owner),
        };
        if let Kind::Local(dir, ..) = &self.kind {
            // Local multipart parts (`name#N`) are invisible to `list`: remove files and folders.
            // Removing a crash's part files can take a while: off the async workers.
            let dir = dir.clone();
            let removed = tokio::task::spawn_blocking(move || -> std::io::Result<usize> {
                let folder = dir.join(STAGING);
                let areas: Vec<&str> = areas.iter().map(String::as_str).collect();
                let mut removed = local::clean_folder(&folder, &areas)?;
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
