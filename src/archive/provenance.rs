//! Provenance: the chain from the spec file to the stored video, and the input images kept once
//! by their SHA-256 (`inputs/<sha256>.<ext>`), so the archive alone shows what was asked for.
//!
//! Chain: spec file SHA-256 → normalised request fingerprint → `request_id` → task id → asset
//! SHA-256. Every link but the inputs is already in the catalogue's `jobs` and `assets` rows; the
//! inputs are recorded in `job_inputs`, and the whole chain is written into the sidecar.

use base64::Engine as _;
use object_store::ObjectStoreExt as _;
use object_store::path::Path as Key;
use serde_json::{Map, Value};

use crate::catalog::Input;
use crate::domain::sha256_hex;
use crate::store::{Store, StoreError};

/// The folder, under the storage root, that input images are kept in.
pub const INPUTS: &str = "inputs";

/// A decoded inline image: its MIME type and bytes.
fn decode(entry: &str) -> Option<(String, Vec<u8>)> {
    let rest = entry.strip_prefix("data:")?;
    let (mime, data) = rest.split_once(";base64,")?;
    let bytes = base64::engine::general_purpose::STANDARD.decode(data.trim()).ok()?;
    Some((mime.to_ascii_lowercase(), bytes))
}

fn ext(mime: &str) -> &'static str {
    match mime {
        "image/png" => "png",
        "image/webp" => "webp",
        "image/jpeg" | "image/jpg" => "jpg",
        _ => "bin",
    }
}

/// The image entries of a request body's `image_url` (a string or an array of them).
fn entries(body: &Map<String, Value>) -> Vec<&str> {
    match body.get("image_url") {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

/// Stores each inline image of `body` once under `inputs/<sha256>.<ext>` (skipped when already
/// there: the same image used by many jobs is kept once) and describes every image entry.
pub async fn keep_inputs(store: &Store, body: &Map<String, Value>) -> Result<Vec<Input>, StoreError> {
    let mut inputs = Vec::new();
    for (index, entry) in entries(body).into_iter().enumerate() {
        let index = u32::try_from(index).unwrap_or(u32::MAX);
        let Some((mime, bytes)) = decode(entry) else {
            let url = entry.starts_with("http").then(|| entry.to_owned());
            inputs.push(Input { index, sha256: None, key: None, bytes: 0, content_type: String::new(), url });
            continue;
        };
        let sha256 = sha256_hex(&bytes);
        let key = Key::from(format!("{INPUTS}/{sha256}.{}", ext(&mime)));
        let len = bytes.len() as u64;
        match store.backend().head(&key).await {
            Ok(meta) if meta.size == len => {}
            Ok(_) | Err(object_store::Error::NotFound { .. }) => store.put_small(&key, bytes, &mime).await?,
            Err(e) => return Err(Store::err("read", &key)(e)),
        }
        inputs.push(Input {
            index,
            sha256: Some(sha256),
            key: Some(key.to_string()),
            bytes: len,
            content_type: mime,
            url: None,
        });
    }
    Ok(inputs)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::json;

    use super::*;

    #[tokio::test]
    async fn inline_images_are_kept_once_by_hash_and_urls_are_named() {
        let store = Store::from_backend(Arc::new(object_store::memory::InMemory::new()), "memory://");
        let png = b"\x89PNG fake image bytes";
        let uri = format!("data:image/png;base64,{}", base64::engine::general_purpose::STANDARD.encode(png));
        let body = json!({"image_url": [uri, "https://example.com/last.jpg"]});
        let body = body.as_object().expect("object");
        let inputs = keep_inputs(&store, body).await.expect("keep");
        let sha = sha256_hex(png);
        assert_eq!(inputs[0].key.as_deref(), Some(format!("inputs/{sha}.png").as_str()));
        assert_eq!(inputs[0].sha256.as_deref(), Some(sha.as_str()));
        assert_eq!(inputs[1].url.as_deref(), Some("https://example.com/last.jpg"));
        let stored = store.backend().get(&Key::from(format!("inputs/{sha}.png"))).await.expect("stored");
        assert_eq!(stored.bytes().await.expect("bytes").as_ref(), png);
        // Again: the same single object.
        keep_inputs(&store, body).await.expect("keep again");
        let listed = futures::TryStreamExt::try_collect::<Vec<_>>(store.backend().list(Some(&Key::from(INPUTS))))
            .await
            .expect("list");
        assert_eq!(listed.len(), 1);
    }
}
