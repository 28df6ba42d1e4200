//! `vidkeep catalog rebuild`: a new catalogue from the sidecars in storage.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;

use crate::catalog::{Catalog, Db};
use crate::config::Config;
use crate::jobs::rebuild::rebuild;
use crate::store::Store;
use crate::telemetry::Escaped;

/// Rebuilds into `to` (or the configured catalogue path), which must not exist: built in a
/// temporary file beside it, checked, then moved into place.
pub(super) async fn run(config: &Config, to: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    if to.is_none() && config.catalog.url.is_some() {
        anyhow::bail!(
            "rebuild writes a new SQLite catalogue, and this config names a PostgreSQL one: pass --to FILE, then \
             move it in with `vidkeep catalog copy --from sqlite:FILE --to <[catalog] url>` (into an empty database)"
        );
    }
    let dest = to.unwrap_or_else(|| config.catalog.path.clone());
    if dest.exists() {
        anyhow::bail!(
            "a catalogue already exists at {}; rebuild writes a new one: move it away, or pass --to NEW_PATH",
            dest.display()
        );
    }
    let folder = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&folder).with_context(|| format!("cannot create {}", folder.display()))?;
    let work = tempfile::Builder::new()
        .prefix(".vidkeep-rebuild-")
        .tempdir_in(&folder)
        .with_context(|| format!("cannot write in {}", folder.display()))?;
    let scratch = work.path().join("catalog.sqlite");
    let catalog = tokio::task::spawn_blocking(move || Catalog::open(&scratch)).await??;
    let db = Db::new(catalog);
    let store = Store::open(&config.storage)?;
    let report = rebuild(&store, &db).await?;
    let target = dest.clone();
    db.backup_to(target).await.with_context(|| format!("cannot write {}", dest.display()))?;
    for (key, why) in &report.skipped {
        println!("SKIPPED  {}: {}", Escaped(key), Escaped(why));
    }
    println!(
        "rebuilt {} job(s) into {} from {} sidecar(s) in {}; {} skipped",
        report.restored,
        Escaped(dest.display()),
        report.sidecars,
        Escaped(store.url()),
        report.skipped.len()
    );
    println!(
        "not in sidecars, so not restored: each job's state history (one 'rebuilt' event instead), submissions \
         before the accepted one, the exact request body with images inlined (the request as shown is kept; the \
         images are in storage under inputs/), where the spec file is now (recorded as done/)"
    );
    Ok(if report.skipped.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
