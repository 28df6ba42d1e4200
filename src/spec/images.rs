//! Image references in `image_url`: `http(s)://` URLs and `data:` URIs go as they are; anything
//! else is a path relative to the spec's folder, read and sent as a `data:image/...;base64,` URI.
//! A path may not leave the inbox (no `..` escapes, no symlinks pointing out).

use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde_json::{Map, Value};

use super::file::{self, ReadError};
use super::{SpecContext, SpecError};

/// Largest image file vidkeep reads from the inbox; per-model limits are checked afterwards.
const MAX_IMAGE_FILE_BYTES: u64 = 50 * 1024 * 1024;

/// Most bytes of local images one spec may inline, all images together: each is held in memory
/// twice (raw and base64) until the request is recorded.
pub const MAX_INPUT_BYTES: u64 = 100 * 1024 * 1024;

/// Replaces every local image path in `body["image_url"]` with a data URI.
///
/// Counts first (the model's image count) and sizes second (each file and all of them together,
/// by `fstat`), and reads only when both fit: a small spec naming one large image many times
/// costs a rejection, not the daemon's memory.
pub(crate) fn inline(body: &mut Map<String, Value>, ctx: &SpecContext<'_>) -> Result<(), SpecError> {
    super::models::check_image_count(body)?;
    let entries: Vec<&mut String> = match body.get_mut("image_url") {
        Some(Value::String(s)) => vec![s],
        // `image_url` as an object (zai-sdk 0.2.3 types it `str | dict`): its `url` member.
        Some(Value::Object(members)) => match members.get_mut("url") {
            Some(Value::String(s)) => vec![s],
            _ => return Ok(()),
        },
        Some(Value::Array(items)) => items
            .iter_mut()
            .filter_map(|item| match item {
                Value::String(s) => Some(s),
                _ => None,
            })
            .collect(),
        _ => return Ok(()),
    };
    let mut local = Vec::new();
    let mut total = 0u64;
    for entry in entries {
        if is_remote(entry) {
            continue;
        }
        let err = |reason: String| SpecError::Image { entry: entry.clone(), reason };
        let (inbox, rel) = confine(Path::new(entry.as_str()), ctx).map_err(&err)?;
        let mime = mime_for(&rel)
            .ok_or_else(|| err("only .png, .jpg, .jpeg and .webp files can be sent as images".to_owned()))?;
        let size = file::size_beneath(&inbox, &rel).map_err(|e| err(read_reason(e)))?;
        if size > MAX_IMAGE_FILE_BYTES {
            return Err(err(format!(
                "the file is {size} bytes; the platform takes at most {MAX_IMAGE_FILE_BYTES} bytes"
            )));
        }
        total += size;
        if total > MAX_INPUT_BYTES {
            return Err(err(format!(
                "the spec's local images add up to more than {MAX_INPUT_BYTES} bytes; give large images as https:// URLs"
            )));
        }
        local.push((entry, inbox, rel, mime));
    }
    for (entry, inbox, rel, mime) in local {
        let err = |reason: String| SpecError::Image { entry: entry.clone(), reason };
        let bytes = file::read_beneath(&inbox, &rel, MAX_IMAGE_FILE_BYTES).map_err(|e| err(read_reason(e)))?.bytes;
        if !magic_matches(mime, &bytes) {
            return Err(err(format!("the file does not look like a {mime} image")));
        }
        let b64 = base64::engine::general_purpose::STANDARD.encode(&bytes);
        *entry = format!("data:image/{mime};base64,{b64}");
    }
    Ok(())
}

fn read_reason(e: ReadError) -> String {
    match e {
        ReadError::Gone => "no such file next to the spec".to_owned(),
        ReadError::Outside => "the path leads outside the inbox; put the image in the inbox".to_owned(),
        other => format!("cannot read it: {other}"),
    }
}

/// Whether an `image_url` entry is sent as written (a URL or a data URI) rather than read from disk.
pub fn is_remote(entry: &str) -> bool {
    let lower = entry.get(..8).unwrap_or(entry).to_ascii_lowercase();
    lower.starts_with("https://") || lower.starts_with("http://") || lower.starts_with("data:")
}

/// Resolves `rel` against the spec's folder and checks it stays inside the inbox; returns the
/// inbox's real path and the image's path below it, which [`file::read_beneath`] opens without
/// following anything that leads out (a check here and a swap later cannot escape).
fn confine(rel: &Path, ctx: &SpecContext<'_>) -> Result<(PathBuf, PathBuf), String> {
    if rel.is_absolute() {
        return Err("use a path relative to the spec's folder, not an absolute path".to_owned());
    }
    let joined = ctx.spec_dir.join(rel);
    let real = joined.canonicalize().map_err(|e| format!("no such file next to the spec ({e})"))?;
    let inbox = ctx.inbox.canonicalize().map_err(|e| format!("cannot resolve the inbox ({e})"))?;
    let below = real
        .strip_prefix(&inbox)
        .map_err(|_| "the path leads outside the inbox; put the image in the inbox".to_owned())?
        .to_owned();
    if below.as_os_str().is_empty() {
        return Err("not a regular file".to_owned());
    }
    Ok((inbox, below))
}

fn mime_for(path: &Path) -> Option<&'static str> {
    let ext = path.extension()?.to_str()?.to_ascii_lowercase();
    match ext.as_str() {
        "png" => Some("png"),
        "jpg" | "jpeg" => Some("jpeg"),
        "webp" => Some("webp"),
        _ => None,
    }
}

fn magic_matches(mime: &str, bytes: &[u8]) -> bool {
    match mime {
        "png" => bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
        "jpeg" => bytes.starts_with(&[0xFF, 0xD8, 0xFF]),
        "webp" => bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP",
        _ => false,
    }
}

/// An image reference for people: data URIs shown by type and size instead of their base64.
pub fn describe(entry: &str) -> String {
    match entry.split_once(";base64,") {
        Some((head, b64)) if entry.starts_with("data:") => {
            format!("{head};base64 ({} bytes)", (b64.len() / 4) * 3)
        }
        _ => entry.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{SpecContext, parse};
    use serde_json::json;

    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";

    fn ctx<'a>(dir: &'a Path, defaults: &'a Map<String, Value>) -> SpecContext<'a> {
        SpecContext { defaults, spec_dir: dir, inbox: dir }
    }

    #[test]
    fn local_image_becomes_a_data_uri_and_display_keeps_the_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("first.png"), PNG).expect("write");
        let defaults = Map::new();
        let spec = parse("a.json", br#"{"model":"viduq1-image","image_url":"first.png"}"#, &ctx(dir.path(), &defaults))
            .expect("valid");
        let sent = spec.request["image_url"].as_str().expect("string");
        let b64 = sent.strip_prefix("data:image/png;base64,").expect("data uri");
        let decoded = base64::engine::general_purpose::STANDARD.decode(b64).expect("b64");
        assert_eq!(decoded, PNG);
        assert_eq!(spec.display["image_url"], json!("first.png"));
    }

    #[test]
    fn paths_outside_the_inbox_are_refused() {
        let outer = tempfile::tempdir().expect("tempdir");
        let inbox = outer.path().join("inbox");
        std::fs::create_dir(&inbox).expect("mkdir");
        std::fs::write(outer.path().join("secret.png"), PNG).expect("write");
        let defaults = Map::new();
        let c = ctx(&inbox, &defaults);
        for entry in ["../secret.png", "/etc/passwd.png"] {
            let body = json!({"model":"viduq1-image","image_url":entry}).to_string();
            let err = parse("a.json", body.as_bytes(), &c).expect_err(entry);
            assert_eq!(err.code(), "spec-image", "{entry}: {err}");
        }
    }

    #[test]
    fn wrong_content_and_missing_files_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("fake.png"), b"GIF89a").expect("write");
        let defaults = Map::new();
        for entry in ["fake.png", "missing.png", "notes.gif"] {
            let body = json!({"model":"viduq1-image","image_url":entry}).to_string();
            let err = parse("a.json", body.as_bytes(), &ctx(dir.path(), &defaults)).expect_err(entry);
            assert_eq!(err.code(), "spec-image", "{entry}: {err}");
        }
    }

    #[test]
    fn describe_hides_base64() {
        assert_eq!(describe("data:image/png;base64,AAAABBBB"), "data:image/png;base64 (6 bytes)");
        assert_eq!(describe("https://a/b.png"), "https://a/b.png");
    }
}
