//! The S3 backend: `object_store`'s `AmazonS3` for everything it offers, plus one request it does
//! not offer, signed with its [`Signer`]: `ListMultipartUploads` (crash cleanup).

use std::sync::Arc;
use std::time::Duration;

use object_store::aws::{AmazonS3, AmazonS3Builder, Checksum};
use object_store::multipart::MultipartStore as _;
use object_store::path::Path as Key;
use object_store::prefix::PrefixStore;
use object_store::signer::{SignedUrlOptions, Signer as _};
use object_store::{ClientOptions, ObjectStore};
use reqwest::header::HeaderMap;

use super::StoreError;
use crate::config::S3Settings;

/// How long a presigned request stays valid; it is sent at once.
const SIGNED_FOR: Duration = Duration::from_secs(300);

/// How long one S3 request may take, from connecting to the last byte of its answer.
/// object_store's default, 30 s, failed uploads that are slow but sound: a part of 16 MiB needs
/// 4.5 Mbit/s to go in 30 s, and moto took longer than that to complete a 4 GiB upload, so the
/// retried completion found the upload gone (issue 14). A stalled request is still cut here, and
/// retried by object_store's own policy.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(600);

/// The raw S3 client and what vidkeep needs to sign its own requests.
pub(super) struct S3 {
    /// The bucket-level client (keys here include the prefix).
    raw: AmazonS3,
    /// The settings it was built from.
    settings: S3Settings,
    /// Sends the presigned requests.
    http: reqwest::Client,
}

/// Shows where, never who: `AmazonS3`'s own `Debug` would print the access key id.
impl std::fmt::Debug for S3 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3").field("settings", &self.settings).finish_non_exhaustive()
    }
}

/// Builds the rooted store and the raw client. Credentials and other `AWS_*` settings come from
/// the environment (or an instance profile) through `object_store`'s usual chain; `[storage]`
/// settings take precedence.
pub(super) fn open(settings: &S3Settings) -> Result<(Arc<dyn ObjectStore>, S3), object_store::Error> {
    let mut builder = AmazonS3Builder::from_env()
        .with_bucket_name(&settings.bucket)
        .with_region(&settings.region)
        .with_allow_http(settings.allow_http)
        .with_virtual_hosted_style_request(settings.virtual_hosted_style)
        .with_client_options(ClientOptions::new().with_allow_http(settings.allow_http).with_timeout(REQUEST_TIMEOUT));
    if let Some(endpoint) = &settings.endpoint {
        builder = builder.with_endpoint(endpoint);
    }
    if settings.checksum_sha256 {
        builder = builder.with_checksum_algorithm(Checksum::SHA256);
    }
    let raw = builder.build()?;
    let http = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(15))
        .timeout(Duration::from_secs(600))
        .build()
        .map_err(|e| object_store::Error::Generic { store: "S3", source: Box::new(e) })?;
    let rooted: Arc<dyn ObjectStore> = if settings.prefix.is_empty() {
        Arc::new(raw.clone())
    } else {
        Arc::new(PrefixStore::new(raw.clone(), settings.prefix.as_str()))
    };
    Ok((rooted, S3 { raw, settings: settings.clone(), http }))
}

impl S3 {
    /// `key` (relative to the storage root) as a bucket key.
    fn full(&self, key: &Key) -> Key {
        if self.settings.prefix.is_empty() {
            key.clone()
        } else {
            Key::from(self.settings.prefix.as_str()).parts().chain(key.parts()).collect()
        }
    }

    /// Aborts every unfinished multipart upload whose key is under `under` (relative to the
    /// storage root) and whose rest of the key passes `only`; returns how many.
    pub(super) async fn abort_uploads(
        &self,
        under: &Key,
        only: &(dyn Fn(&str) -> bool + Sync),
    ) -> Result<usize, StoreError> {
        let prefix = format!("{}/", self.full(under));
        let mut aborted = 0;
        let (mut key_marker, mut id_marker) = (String::new(), String::new());
        // Each round lists at most 1000 uploads and pages on with the markers S3 answers; the
        // bound only guards against a server whose markers never move.
        for _ in 0..1000 {
            let mut query = vec![("uploads", ""), ("prefix", prefix.as_str())];
            if !key_marker.is_empty() {
                query.push(("key-marker", key_marker.as_str()));
                query.push(("upload-id-marker", id_marker.as_str()));
            }
            let body = self
                .send(reqwest::Method::GET, &Key::from(""), HeaderMap::new(), &query, "list uploads", under)
                .await?;
            let uploads: Vec<(String, String)> = body
                .split("<Upload>")
                .skip(1)
                .filter_map(|upload| {
                    Some((xml_text(upload, "Key")?.to_owned(), xml_text(upload, "UploadId")?.to_owned()))
                })
                .filter(|(key, _)| key.strip_prefix(&prefix).is_some_and(only) && !key.contains('&'))
                .collect();
            for (key, id) in &uploads {
                match self.raw.abort_multipart(&Key::from(key.as_str()), id).await {
                    Ok(()) => {
                        tracing::info!(key = %key, "aborted an unfinished multipart upload left by a crash");
                        aborted += 1;
                    }
                    // Completed or aborted since it was listed: it is no longer pending.
                    Err(object_store::Error::NotFound { .. }) => {}
                    Err(source) => return Err(StoreError::Backend { about: "abort upload", key: key.clone(), source }),
                }
            }
            let next = (xml_text(&body, "NextKeyMarker"), xml_text(&body, "NextUploadIdMarker"));
            match (xml_text(&body, "IsTruncated"), next) {
                (Some("true"), (Some(k), Some(i))) if (k, i) != (key_marker.as_str(), id_marker.as_str()) => {
                    (key_marker, id_marker) = (k.to_owned(), i.to_owned());
                }
                _ => break,
            }
        }
        Ok(aborted)
    }

    /// Sends a request presigned by `object_store` for `path` (a bucket key); returns the body
    /// of a 2xx answer. Neither the URL nor the credentials ever reach an error.
    async fn send(
        &self,
        method: reqwest::Method,
        path: &Key,
        headers: HeaderMap,
        query: &[(&str, &str)],
        about: &'static str,
        key: &Key,
    ) -> Result<String, StoreError> {
        let fail = |reason: String| StoreError::Request { about, key: key.to_string(), reason };
        let mut options = SignedUrlOptions::new().with_query(query.iter().copied());
        options.signed_headers = headers.clone();
        let url = self
            .raw
            .signed_url_opts(method.clone(), path, SIGNED_FOR, &options)
            .await
            .map_err(|source| StoreError::Backend { about, key: key.to_string(), source })?;
        let response = self
            .http
            .request(method, url.as_str())
            .headers(headers)
            .send()
            .await
            .map_err(|e| fail(e.without_url().to_string()))?;
        let status = response.status();
        let body = response.text().await.map_err(|e| fail(e.without_url().to_string()))?;
        if !status.is_success() {
            return Err(fail(format!("HTTP {}: {}", status.as_u16(), error_code(&body))));
        }
        Ok(body)
    }
}

/// The text of the first `<tag>` element in `xml` (S3's answers are flat enough for this).
fn xml_text<'a>(xml: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&format!("</{tag}>"))? + start;
    Some(xml[start..end].trim())
}

/// The S3 error code of an error body (never the whole body, which may echo request details).
fn error_code(body: &str) -> String {
    xml_text(body, "Code").map_or_else(|| "no error code in the answer".to_owned(), str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::StorageConfig;

    fn settings(url: &str) -> Result<S3Settings, String> {
        S3Settings::from_config(&StorageConfig { url: url.to_owned(), ..StorageConfig::default() })
    }

    #[test]
    fn bucket_and_prefix_come_from_the_url() {
        let s = settings("s3://media-bucket/studio/videos/").expect("valid");
        assert_eq!((s.bucket.as_str(), s.prefix.as_str()), ("media-bucket", "studio/videos"));
        assert_eq!(settings("s3://media-bucket").expect("valid").prefix, "");
    }

    #[test]
    fn bad_urls_say_why_and_never_echo_credentials() {
        for (url, why) in [
            ("s3:///prefix", "needs a bucket"),
            ("s3://Bad_Bucket/x", "needs a bucket"),
            ("s3://bucket/a//b", "prefix"),
            ("s3://bucket/a b", "prefix"),
            ("s3://bucket/x?y=1", "query"),
        ] {
            let err = settings(url).expect_err(url);
            assert!(err.contains(why), "{url}: {err}");
        }
        let err = settings("s3://AKIAEXAMPLE:hunter2@bucket/x").expect_err("userinfo");
        assert!(err.contains("credentials") && !err.contains("hunter2"), "{err}");
    }

    #[test]
    fn xml_fields_are_read() {
        let body = "<CopyObjectResult><ETag>\"x\"</ETag><ChecksumSHA256>abc=</ChecksumSHA256></CopyObjectResult>";
        assert_eq!(xml_text(body, "ChecksumSHA256"), Some("abc="));
        assert_eq!(xml_text(body, "Missing"), None);
        assert_eq!(error_code("<Error><Code>NoSuchKey</Code><Message>m</Message></Error>"), "NoSuchKey");
    }
}
