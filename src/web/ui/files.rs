//! Files the pages show: archived assets streamed from the store with HTTP Range support (the
//! player seeks, downloads resume), and a job's inline input images.
//!
//! Assets are found by their SHA-256 in the catalogue, and only catalogue keys are ever read from
//! the store, so no URL can reach a file outside it.

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::header::{
    ACCEPT_RANGES, CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, ETAG, RANGE,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use object_store::path::Path as Key;
use object_store::{GetOptions, GetRange};
use serde::Deserialize;

use super::{UiError, UiState};
use crate::catalog::AssetKind;
use crate::web::range::{self, RangeRequest};

/// `?download=1` asks for an attachment with a sensible file name.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct DownloadParam {
    download: Option<String>,
}

/// `GET /assets/{sha256}`
pub(super) async fn asset(
    State(state): State<UiState>,
    Path(sha256): Path<String>,
    Query(param): Query<DownloadParam>,
    headers: HeaderMap,
) -> Result<Response, UiError> {
    if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(UiError::NotFound("no asset has that hash".to_owned()));
    }
    let wanted = sha256.to_ascii_lowercase();
    let found = state.read(move |c| c.asset_by_sha256(&wanted)).await?;
    let asset = found.ok_or_else(|| UiError::NotFound("no asset has that hash".to_owned()))?;
    let len = asset.bytes;
    let requested = headers.get(RANGE).and_then(|v| v.to_str().ok());
    let (status, start, end) = match range::parse(requested, len) {
        RangeRequest::Full => (StatusCode::OK, 0, len),
        RangeRequest::Partial { start, end } => (StatusCode::PARTIAL_CONTENT, start, end + 1),
        RangeRequest::Unsatisfiable => {
            let value =
                HeaderValue::from_str(&format!("bytes */{len}")).unwrap_or(HeaderValue::from_static("bytes */0"));
            return Ok((StatusCode::RANGE_NOT_SATISFIABLE, [(CONTENT_RANGE, value)]).into_response());
        }
    };
    let key = Key::from(asset.key.as_str());
    let options = GetOptions { range: (end > start).then_some(GetRange::Bounded(start..end)), ..GetOptions::default() };
    let got = match state.store.backend().get_opts(&key, options).await {
        Ok(got) => got,
        Err(object_store::Error::NotFound { .. }) => {
            return Err(UiError::NotFound(format!("{} is recorded but missing from the store", asset.key)));
        }
        Err(e) => return Err(UiError::Store(e.to_string())),
    };
    let mut response = Response::new(if end > start { Body::from_stream(got.into_stream()) } else { Body::empty() });
    *response.status_mut() = status;
    let h = response.headers_mut();
    let header = |v: String| HeaderValue::from_str(&v).unwrap_or(HeaderValue::from_static(""));
    let (content_type, inline) = servable_type(&asset.content_type);
    h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    if !inline {
        // Anything not on the list (an `image/svg+xml` cover, HTML) would run in the UI's origin.
        h.insert(CONTENT_DISPOSITION, HeaderValue::from_static("attachment"));
    }
    h.insert(CONTENT_LENGTH, HeaderValue::from(end - start));
    h.insert(ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    // Content-addressed: the bytes under this URL never change.
    h.insert(ETAG, header(format!("\"{}\"", asset.sha256)));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("private, max-age=31536000, immutable"));
    if status == StatusCode::PARTIAL_CONTENT {
        h.insert(CONTENT_RANGE, header(format!("bytes {start}-{}/{len}", end - 1)));
    }
    if param.download.is_some() {
        // Only a download needs the job (for its file name); the player's range requests don't.
        let job_id = asset.job_id.clone();
        let job = state.read(move |c| c.job(&job_id)).await?;
        let name = download_name(&job.spec_name, &job.id, asset.kind, &asset.key);
        h.insert(CONTENT_DISPOSITION, header(format!("attachment; filename=\"{name}\"")));
    }
    Ok(response)
}

/// The content type an asset is served with, and whether it may be shown inline: a fixed list
/// of media types a browser cannot run as script; anything else goes as an opaque download.
pub(super) fn servable_type(stored: &str) -> (&'static str, bool) {
    let essence = stored.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    match essence.as_str() {
        "video/mp4" => ("video/mp4", true),
        "image/jpeg" => ("image/jpeg", true),
        "image/png" => ("image/png", true),
        "image/webp" => ("image/webp", true),
        _ => ("application/octet-stream", false),
    }
}

/// `<spec name without extension>-<last 8 of the job id>.<ext>`, in safe ASCII (the first 8
/// of a UUIDv7 are its creation time, the same for two takes of one spec): never a path, so it
/// is also the name of the file in a zip of several jobs.
pub(super) fn download_name(spec: &str, job_id: &str, kind: AssetKind, key: &str) -> String {
    let stem = spec.rsplit_once('.').map_or(spec, |(s, _)| s);
    let safe: String = stem
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' })
        .take(60)
        .collect();
    // The extension of the key's last segment, letters and digits only (a key is the store's,
    // but `a.b/video` must not give `b/video`).
    let file = key.rsplit('/').next().unwrap_or_default();
    let ext = file
        .rsplit_once('.')
        .map(|(_, e)| e)
        .filter(|e| !e.is_empty() && e.len() <= 8 && e.bytes().all(|b| b.is_ascii_alphanumeric()))
        .unwrap_or("bin");
    let short: String = crate::catalog::short_id(job_id).chars().filter(char::is_ascii_alphanumeric).collect();
    let kind = if kind == AssetKind::Cover { "-cover" } else { "" };
    format!("{}-{short}{kind}.{ext}", if safe.is_empty() { "video" } else { &safe })
}

/// `GET /jobs/{id}/inputs/{n}`: the `n`th input image of a job, when it was sent inline.
pub(super) async fn input_image(
    State(state): State<UiState>,
    Path((id, n)): Path<(String, usize)>,
) -> Result<Response, UiError> {
    let body = state.read(move |c| c.request_body(&id)).await?;
    let uri = match body.get("image_url") {
        Some(serde_json::Value::String(s)) if n == 0 => Some(s.clone()),
        Some(serde_json::Value::Array(items)) => items.get(n).and_then(|v| v.as_str()).map(str::to_owned),
        _ => None,
    };
    let Some((mime, data)) = uri.as_deref().and_then(decode_data_uri) else {
        return Err(UiError::NotFound("no inline image with that number".to_owned()));
    };
    let mime = HeaderValue::from_str(&mime).unwrap_or(HeaderValue::from_static("application/octet-stream"));
    Ok(([(CONTENT_TYPE, mime), (CACHE_CONTROL, HeaderValue::from_static("private, max-age=3600"))], data)
        .into_response())
}

/// `data:image/png;base64,...` → (`image/png`, bytes). Only images.
fn decode_data_uri(uri: &str) -> Option<(String, Vec<u8>)> {
    let rest = uri.strip_prefix("data:")?;
    let (meta, data) = rest.split_once(',')?;
    let mime = meta.strip_suffix(";base64")?;
    if !mime.starts_with("image/") {
        return None;
    }
    let bytes = base64::engine::general_purpose::STANDARD.decode(data).ok()?;
    Some((mime.to_owned(), bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_media_types_are_served_inline() {
        assert_eq!(servable_type("video/mp4"), ("video/mp4", true));
        assert_eq!(servable_type("IMAGE/JPEG; charset=x"), ("image/jpeg", true));
        for hostile in ["image/svg+xml", "text/html", "application/javascript", ""] {
            assert_eq!(servable_type(hostile), ("application/octet-stream", false), "{hostile}");
        }
    }

    #[test]
    fn download_names_are_safe_and_recognisable() {
        let id = "01a2125a-e8e6-751d-a110-8b36979f7ec5";
        assert_eq!(
            download_name("fox in snow.json", id, AssetKind::Video, "a/b/video.mp4"),
            "fox_in_snow-979f7ec5.mp4"
        );
        assert_eq!(download_name("\"evil\".txt", id, AssetKind::Cover, "a/cover.jpg"), "_evil_-979f7ec5-cover.jpg");
        assert_eq!(download_name(".json", id, AssetKind::Video, "video.mp4"), "video-979f7ec5.mp4");
        // Never a path, whatever the key or the id hold.
        assert_eq!(download_name("fox.txt", id, AssetKind::Video, "a.b/video"), "fox-979f7ec5.bin");
        assert_eq!(download_name("../../etc.txt", "x/../../y", AssetKind::Video, "k/../x.m/p4"), "______etc-y.bin");
        assert_eq!(download_name("fox.txt", id, AssetKind::Cover, "a/cover.JPG"), "fox-979f7ec5-cover.JPG");
        // Two takes of one spec, made in the same millisecond, download under different names.
        let take2 = "01a2125a-e8e6-751d-b3c0-5d1e22a40b19";
        assert_ne!(
            download_name("fox.json", id, AssetKind::Video, "video.mp4"),
            download_name("fox.json", take2, AssetKind::Video, "video.mp4")
        );
    }

    #[test]
    fn only_image_data_uris_decode() {
        assert_eq!(decode_data_uri("data:image/png;base64,aGk="), Some(("image/png".to_owned(), b"hi".to_vec())));
        assert_eq!(decode_data_uri("data:text/html;base64,aGk="), None);
        assert_eq!(decode_data_uri("https://example.com/a.png"), None);
    }
}
