//! `[storage]`: where archived files go, and the S3 settings read from its URL.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::ConfigError;

/// `[storage]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// Where assets go: `file:///abs/path` (or a plain path, relative to the config file), or
    /// `s3://bucket/optional/prefix`.
    pub url: String,
    /// S3 only: the endpoint of a non-AWS server (MinIO, Garage, Ceph, R2), e.g. `http://127.0.0.1:9000`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// S3 only: the region.
    pub region: String,
    /// S3 only: allow a plain `http://` endpoint.
    pub allow_http: bool,
    /// S3 only: `bucket.host` requests instead of `host/bucket`.
    pub virtual_hosted_style: bool,
    /// Multipart part size in bytes (at least 5 MiB, at most 5 GiB).
    pub part_size: usize,
    /// Parts uploading at once per download; buffered memory is about
    /// `part_size * (max_concurrent_parts + 1)` per download.
    pub max_concurrent_parts: usize,
    /// The bytes that all multipart uploads (S3) together may buffer at once, shared by every
    /// download of the daemon (a part larger than this takes all of it). The local store does not
    /// use parts: each download there holds two buffers of 1 MiB.
    pub max_bytes_in_flight: usize,
    /// S3 with `sha256_metadata`: the folder downloads are spooled in before they are uploaded
    /// (unnamed temporary files; each download needs room for its file). Default: `$TMPDIR`,
    /// else `/var/tmp`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spool_dir: Option<PathBuf>,
    /// S3 only: send `x-amz-checksum-sha256` with every part and object, which the server
    /// checks. Turn off for servers that reject S3 additional checksums.
    pub checksum_sha256: bool,
    /// S3 only: give each object its SHA-256 as metadata (`x-amz-meta-sha256`). The download is
    /// spooled into an unnamed temporary file in `spool_dir` first, then sent
    /// straight to its final key by an upload created with the metadata. Off: the download
    /// streams straight into the upload (no spool, no metadata); the sidecar and the catalogue
    /// record the hash either way.
    pub sha256_metadata: bool,
}

/// The smallest multipart part S3 accepts (except the last).
pub const MIN_PART_SIZE: usize = 5 * 1024 * 1024;
/// The default `[storage] max_bytes_in_flight`: four default parts.
pub const DEFAULT_MAX_BYTES_IN_FLIGHT: usize = 64 * 1024 * 1024;
/// The largest multipart part S3 accepts.
pub const MAX_PART_SIZE: usize = 5 * 1024 * 1024 * 1024;

impl Default for StorageConfig {
    fn default() -> StorageConfig {
        StorageConfig {
            url: "file:///var/lib/vidkeep/archive".to_owned(),
            endpoint: None,
            region: "us-east-1".to_owned(),
            allow_http: false,
            virtual_hosted_style: false,
            part_size: 16 * 1024 * 1024,
            max_concurrent_parts: 2,
            max_bytes_in_flight: DEFAULT_MAX_BYTES_IN_FLIGHT,
            spool_dir: None,
            checksum_sha256: true,
            sha256_metadata: true,
        }
    }
}

impl StorageConfig {
    /// The spool folder: `spool_dir`, else `$TMPDIR`, else `/var/tmp` (on disk, where `/tmp`
    /// may be memory).
    pub fn spool_dir(&self) -> PathBuf {
        self.spool_dir
            .clone()
            .or_else(|| std::env::var_os("TMPDIR").filter(|v| !v.is_empty()).map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from("/var/tmp"))
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key: &str, message: String| ConfigError::Invalid { key: format!("storage.{key}"), message };
        if !(MIN_PART_SIZE..=MAX_PART_SIZE).contains(&self.part_size) {
            return Err(bad(
                "part_size",
                format!("must be between {MIN_PART_SIZE} (5 MiB) and {MAX_PART_SIZE} (5 GiB)"),
            ));
        }
        if !(1..=64).contains(&self.max_concurrent_parts) {
            return Err(bad("max_concurrent_parts", "must be between 1 and 64".to_owned()));
        }
        if self.max_bytes_in_flight < MIN_PART_SIZE {
            return Err(bad("max_bytes_in_flight", format!("must be at least {MIN_PART_SIZE} (5 MiB)")));
        }
        if self.url.starts_with("file:///") {
            return Ok(());
        }
        if !self.url.starts_with("s3://") {
            return Err(bad(
                "url",
                format!("`{}` is not supported: use file:///absolute/path or s3://bucket/prefix", self.url),
            ));
        }
        S3Settings::from_config(self).map_err(|e| bad("url", e))?;
        if let Some(endpoint) = &self.endpoint {
            let url = url::Url::parse(endpoint).map_err(|e| bad("endpoint", format!("is not a URL: {e}")))?;
            if !url.username().is_empty() || url.password().is_some() {
                return Err(bad(
                    "endpoint",
                    "must not hold credentials: use AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY".to_owned(),
                ));
            }
            match url.scheme() {
                "https" => {}
                "http" if self.allow_http => {}
                "http" => {
                    return Err(bad("endpoint", "is plain http: set storage.allow_http = true to allow it".to_owned()));
                }
                _ => return Err(bad("endpoint", "must be an http(s) URL".to_owned())),
            }
        }
        if self.region.trim().is_empty() {
            return Err(bad("region", "must not be empty".to_owned()));
        }
        Ok(())
    }
}

/// S3 connection settings, taken from `[storage]`; credentials come from the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Settings {
    /// The bucket.
    pub bucket: String,
    /// The key prefix inside the bucket ("" for none), without leading or trailing `/`.
    pub prefix: String,
    /// The endpoint for non-AWS servers.
    pub endpoint: Option<String>,
    /// The region.
    pub region: String,
    /// Whether plain `http://` endpoints are allowed.
    pub allow_http: bool,
    /// Virtual-hosted-style (`bucket.host`) rather than path-style (`host/bucket`) requests.
    pub virtual_hosted_style: bool,
    /// Whether parts and objects are sent with `x-amz-checksum-sha256`.
    pub checksum_sha256: bool,
}

impl S3Settings {
    /// Reads the settings from `[storage]` (whose `url` is `s3://bucket/prefix`). The error says
    /// what is wrong with the URL and never repeats it (it may hold credentials).
    pub fn from_config(config: &StorageConfig) -> Result<S3Settings, String> {
        let url = url::Url::parse(&config.url).map_err(|e| e.to_string())?;
        if url.scheme() != "s3" {
            return Err("not an s3:// URL".to_owned());
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(
                "credentials do not belong in the URL: use AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY".to_owned()
            );
        }
        let bucket = url.host_str().unwrap_or_default().to_owned();
        let bucket_ok = (3..=63).contains(&bucket.len())
            && bucket.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
        if !bucket_ok {
            return Err("needs a bucket: s3://bucket/optional/prefix (3-63 of a-z, 0-9, '-', '.')".to_owned());
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err("takes no query or fragment".to_owned());
        }
        let prefix = url.path().trim_matches('/').to_owned();
        let prefix_ok = prefix.split('/').all(|segment| {
            !segment.is_empty()
                && segment != "."
                && segment != ".."
                && segment.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        });
        if !prefix.is_empty() && !prefix_ok {
            return Err("the prefix may hold only a-z, A-Z, 0-9, '-', '_', '.' and '/' between names".to_owned());
        }
        Ok(S3Settings {
            bucket,
            prefix,
            endpoint: config.endpoint.clone(),
            region: config.region.clone(),
            allow_http: config.allow_http,
            virtual_hosted_style: config.virtual_hosted_style,
            checksum_sha256: config.checksum_sha256,
        })
    }
}
