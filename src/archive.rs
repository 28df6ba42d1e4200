//! Archiving: stream a result URL into the store, hashing SHA-256 on the way, and re-read stored
//! objects to verify them.
//!
//! Bytes flow `HTTP body → hasher → upload` ([`Store::start_upload`]): on the local store straight
//! into the staging file through two 1 MiB buffers; on S3 in parts of `storage.part_size`, at most
//! `storage.max_concurrent_parts` in flight per download and `storage.max_bytes_in_flight`
//! buffered across all downloads (with `sha256_metadata`, after a spool file: see
//! [`crate::store::Upload`]). So memory does not grow with the object or with the downloads
//! running. The upload is completed only when the body ended cleanly with the announced length:
//! on the local store it is then published from its staging key by a rename
//! ([`Store::publish`]); on S3 it went straight to its key, which S3 shows only once the upload
//! is completed. So no partial object ever appears under its final key. An interrupted upload is
//! aborted and its staging file deleted.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use object_store::ObjectStoreExt as _;
use object_store::path::Path as Key;
use sha2::{Digest as _, Sha256};

use crate::config::{ArchiveConfig, ProbeConfig};
use crate::probe::{Probe, Promise, Tolerance};
use crate::store::{Store, StoreError, Upload};

pub mod guard;
pub mod provenance;
mod resume;
pub mod scrub;

use resume::ResumingBody;

use crate::domain::hex;
pub use crate::domain::sha256_hex;

/// Why a download did not end in a stored object.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// The URL answered 403/404/410: the result link has expired or is gone.
    #[error("the result URL answered HTTP {0}: the link has expired or the file is gone")]
    Gone(u16),
    /// Another HTTP error status.
    #[error("the result URL answered HTTP {0}")]
    Status(u16),
    /// The connection failed or was cut.
    #[error("download failed: {0}")]
    Network(String),
    /// The body ended before the announced length.
    #[error("download cut short: got {got} of {expected} bytes")]
    Truncated {
        /// Announced length.
        expected: u64,
        /// Bytes received.
        got: u64,
    },
    /// The URL (or a redirect) is one vidkeep does not fetch: another scheme, credentials, a
    /// host outside `[archive] allowed_hosts`, a non-public address, too many redirects.
    #[error("the result URL is not fetched: {0}")]
    Refused(String),
    /// The file is larger than `[archive] max_bytes`.
    #[error("the result file is larger than [archive] max_bytes ({limit} bytes); it is not archived")]
    TooBig {
        /// The limit.
        limit: u64,
    },
    /// Fewer bytes than `[archive] min_bytes_per_second` allows arrived in one window.
    #[error(
        "the download is too slow: {got} bytes in {window:?}, less than [archive] min_bytes_per_second allows; cut, to retry later"
    )]
    TooSlow {
        /// Bytes received in the window.
        got: u64,
        /// The window (`[archive] stall_timeout`).
        window: Duration,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ArchiveError {
    /// A stable code for the catalogue.
    pub fn code(&self) -> &'static str {
        match self {
            ArchiveError::Gone(_) => "download-gone",
            ArchiveError::Status(_) => "download-status",
            ArchiveError::Network(_) => "download-network",
            ArchiveError::Truncated { .. } => "download-truncated",
            ArchiveError::Refused(_) => "download-refused",
            ArchiveError::TooBig { .. } => "download-too-big",
            ArchiveError::TooSlow { .. } => "download-slow",
            ArchiveError::Store(_) => "store-unavailable",
        }
    }

    /// Whether trying again can never help (the URL is refused or the file too big).
    pub fn is_permanent(&self) -> bool {
        matches!(self, ArchiveError::Refused(_) | ArchiveError::TooBig { .. })
    }

    /// A transport error, or the policy's refusal when that is what stopped it.
    pub(crate) fn from_reqwest(e: reqwest::Error) -> ArchiveError {
        if let Some(refused) = guard::refusal(&e) {
            return ArchiveError::Refused(refused.0);
        }
        if e.is_builder() {
            return ArchiveError::Refused(format!("the URL cannot be requested: {}", e.without_url()));
        }
        ArchiveError::Network(e.without_url().to_string())
    }
}

/// An object stored under its final key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// Lower-hex SHA-256 of the bytes.
    pub sha256: String,
    /// Length.
    pub bytes: u64,
    /// MIME type.
    pub content_type: String,
}

/// Downloads result files into the store.
#[derive(Debug, Clone)]
pub struct Archiver {
    http: reqwest::Client,
    store: Store,
    probe: ProbeConfig,
    limits: ArchiveConfig,
    policy: guard::UrlPolicy,
}

impl Archiver {
    /// An archiver writing into `store` with the default `[archive]` limits.
    pub fn new(store: Store, read_timeout: Duration) -> Result<Archiver, ArchiveError> {
        Archiver::with_config(store, read_timeout, &ArchiveConfig::default())
    }

    /// An archiver writing into `store`, fetching only what `limits` allows. Downloads have no
    /// total timeout (files can be large) but fail if no byte arrives for `read_timeout` or
    /// fewer than `limits.min_bytes_per_second` arrive over `limits.stall_timeout`.
    pub fn with_config(store: Store, read_timeout: Duration, limits: &ArchiveConfig) -> Result<Archiver, ArchiveError> {
        let policy = guard::UrlPolicy::new(&limits.allowed_hosts, &limits.networks());
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(15))
            .read_timeout(read_timeout)
            .redirect(guard::redirect_policy(policy.clone()))
            .dns_resolver(Arc::new(guard::GuardedResolver::new(policy.clone())))
            .user_agent(concat!("vidkeep/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ArchiveError::Network(format!("cannot build HTTP client: {e}")))?;
        Ok(Archiver { http, store, probe: ProbeConfig::default(), limits: limits.clone(), policy })
    }

    /// The same archiver probing videos as `probe` says.
    pub fn with_probe(mut self, probe: ProbeConfig) -> Archiver {
        self.probe = probe;
        self
    }

    /// Probes the stored video at `key` (`bytes` long) against `promise`, reading it back from
    /// the store; `None` when the probe is off.
    pub async fn probe(&self, key: &Key, bytes: u64, promise: &Promise) -> Result<Option<Probe>, StoreError> {
        if !self.probe.enabled {
            return Ok(None);
        }
        let tolerance = Tolerance { duration_s: self.probe.duration_tolerance, fps: self.probe.fps_tolerance };
        crate::probe::probe(&self.store, key, bytes, promise, tolerance).await.map(Some)
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Streams `url` into `key`, hashing on the way; the object exists under `key` only if this
    /// returns `Ok`.
    pub async fn fetch(&self, url: &str, key: &Key, default_type: &str) -> Result<Stored, ArchiveError> {
        let parsed = url::Url::parse(url).map_err(|e| ArchiveError::Refused(format!("not a URL: {e}")))?;
        self.policy.check_url(&parsed).map_err(|r| ArchiveError::Refused(r.0))?;
        let response = self.http.get(parsed).send().await.map_err(ArchiveError::from_reqwest)?;
        let status = response.status().as_u16();
        if response.status().is_redirection() {
            // reqwest hands back a redirect it would not follow (to `file:`, say) as it is.
            let to = response.headers().get(reqwest::header::LOCATION).and_then(|v| v.to_str().ok());
            let to: String = to.unwrap_or("nowhere").chars().take(100).collect();
            return Err(ArchiveError::Refused(format!("HTTP {status} redirects to `{to}`, which is not followed")));
        }
        match status {
            200 => {}
            403 | 404 | 410 => return Err(ArchiveError::Gone(status)),
            _ => return Err(ArchiveError::Status(status)),
        }
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or(v).trim().to_owned())
            .filter(|v| v.starts_with("video/") || v.starts_with("image/"))
            .unwrap_or_else(|| default_type.to_owned());
        let expected = response.content_length();
        if expected.is_some_and(|n| n > self.limits.max_bytes) {
            return Err(ArchiveError::TooBig { limit: self.limits.max_bytes });
        }
        // Stage, then publish (a rename); S3 uploads go straight to their key instead: S3
        // completes a multipart upload atomically, so it is still never half-written.
        let staged = self.store.stages();
        let target = if staged { self.store.staging_key() } else { key.clone() };
        let started = std::time::Instant::now();
        let body = ResumingBody::new(self.http.clone(), url, response);
        let (digest, bytes) = self.upload(body, &target, &content_type).await?;
        let uploaded = started.elapsed();
        if staged {
            self.store.publish(&target, key).await?;
        }
        tracing::debug!(key = %key, bytes, upload_ms = uploaded.as_millis() as u64,
            publish_ms = (started.elapsed() - uploaded).as_millis() as u64, "upload timings");
        Ok(Stored { sha256: hex(&digest), bytes, content_type })
    }

    /// Streams the body into an upload at `target` ([`Store::start_upload`]), completed only if
    /// the body ended cleanly with the announced length (resuming breaks with Range requests);
    /// aborted otherwise.
    async fn upload(
        &self,
        mut body: ResumingBody,
        target: &Key,
        content_type: &str,
    ) -> Result<([u8; 32], u64), ArchiveError> {
        let expected = body.expected();
        let mut upload = self.store.start_upload(target, content_type).await?;
        match copy_hashing(&mut body, &mut upload, &self.limits).await {
            Ok((digest, bytes)) => {
                if body.resumes() > 0 {
                    tracing::info!(key = %target, resumes = body.resumes(), "download completed after resuming");
                }
                if let Some(expected) = expected.filter(|e| *e != bytes) {
                    upload.abort().await;
                    return Err(ArchiveError::Truncated { expected, got: bytes });
                }
                // `finish` aborts the upload itself when completing fails.
                upload.finish(&digest).await?;
                Ok((digest, bytes))
            }
            Err(e) => {
                upload.abort().await;
                Err(e)
            }
        }
    }

    /// Writes a small object (the sidecar) atomically.
    pub async fn put_small(&self, key: &Key, bytes: Vec<u8>) -> Result<(), StoreError> {
        self.store.put_small(key, bytes, "application/json").await
    }
}

/// Copies the body into the upload, hashing it; stops at `limits.max_bytes` and when fewer than
/// `min_bytes_per_second * stall_timeout` bytes arrive in one `stall_timeout` window (so a link
/// trickling a byte now and then cannot hold a download slot forever).
async fn copy_hashing(
    body: &mut ResumingBody,
    upload: &mut Upload,
    limits: &ArchiveConfig,
) -> Result<([u8; 32], u64), ArchiveError> {
    let mut hasher = Sha256::new();
    let mut bytes = 0u64;
    let window = limits.stall_timeout;
    let need = limits.min_bytes_per_second.saturating_mul(window.as_secs().max(1));
    let mut window_end = tokio::time::Instant::now() + window;
    let mut in_window = 0u64;
    loop {
        let next = if need == 0 {
            body.next().await?
        } else {
            match tokio::time::timeout_at(window_end, body.next()).await {
                Ok(next) => next?,
                Err(_) if in_window < need => return Err(ArchiveError::TooSlow { got: in_window, window }),
                Err(_) => {
                    (window_end, in_window) = (window_end + window, 0);
                    continue;
                }
            }
        };
        let Some(chunk) = next else { break };
        hasher.update(&chunk);
        bytes += chunk.len() as u64;
        in_window += chunk.len() as u64;
        if bytes > limits.max_bytes {
            return Err(ArchiveError::TooBig { limit: limits.max_bytes });
        }
        if need > 0 && tokio::time::Instant::now() >= window_end {
            if in_window < need {
                return Err(ArchiveError::TooSlow { got: in_window, window });
            }
            (window_end, in_window) = (tokio::time::Instant::now() + window, 0);
        }
        upload.write(&chunk).await?;
    }
    Ok((hasher.finalize().into(), bytes))
}

/// What re-reading one stored object found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// Hash and length match.
    Ok,
    /// The object is not in the store.
    Missing,
    /// The bytes differ from what was archived.
    Mismatch {
        /// SHA-256 of what is stored now.
        sha256: String,
        /// Length of what is stored now.
        bytes: u64,
    },
}

/// Streams the object at `key` back and compares it with the recorded hash and length.
pub async fn verify_object(store: &Store, key: &Key, sha256: &str, bytes: u64) -> Result<Check, StoreError> {
    let got = match store.backend().get(key).await {
        Ok(got) => got,
        Err(object_store::Error::NotFound { .. }) => return Ok(Check::Missing),
        Err(e) => return Err(Store::err("read", key)(e)),
    };
    let mut hasher = Sha256::new();
    let mut len = 0u64;
    let mut stream = got.into_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(Store::err("read", key))?;
        hasher.update(&chunk);
        len += chunk.len() as u64;
    }
    let found = hex(&hasher.finalize());
    if found == sha256 && len == bytes { Ok(Check::Ok) } else { Ok(Check::Mismatch { sha256: found, bytes: len }) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_of_known_input() {
        assert_eq!(sha256_hex(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
