//! `vidkeep verify`: re-read every stored asset, re-hash it, list what is missing or changed.

use std::process::ExitCode;

use anyhow::Context as _;
use object_store::path::Path as Key;

use crate::archive::{Check, verify_object};
use crate::catalog::Catalog;
use crate::config::Config;
use crate::store::Store;

/// Verifies every asset; exit 1 listing each problem, 0 when all match.
pub(super) async fn run(config: &Config) -> anyhow::Result<ExitCode> {
    let path = config.catalog.path.clone();
    let assets = tokio::task::spawn_blocking(move || Catalog::open(&path).and_then(|c| c.all_assets()))
        .await?
        .with_context(|| format!("cannot read the catalogue {}", config.catalog.path.display()))?;
    let store = Store::open(&config.storage)?;
    let (mut ok, mut problems) = (0usize, 0usize);
    for asset in &assets {
        let key = Key::from(asset.key.as_str());
        match verify_object(&store, &key, &asset.sha256, asset.bytes).await {
            Ok(Check::Ok) => ok += 1,
            Ok(Check::Missing) => {
                problems += 1;
                println!("MISSING   {}  (job {}, {})", asset.key, asset.job_id, asset.kind.as_str());
            }
            Ok(Check::Mismatch { sha256, bytes }) => {
                problems += 1;
                println!(
                    "MISMATCH  {}  (job {}): recorded sha256 {} ({} bytes), stored sha256 {} ({} bytes)",
                    asset.key, asset.job_id, asset.sha256, asset.bytes, sha256, bytes
                );
            }
            Err(e) => {
                problems += 1;
                println!("UNREADABLE {}  (job {}): {e}", asset.key, asset.job_id);
            }
        }
    }
    println!("verified {} object(s): {ok} ok, {problems} problem(s)", assets.len());
    Ok(if problems == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
