//! `vidkeep catalog rebuild`: a catalogue made from the sidecars in storage alone, for when the
//! catalogue is lost. Every `<date>/<job id>/vidkeep.json` under the storage root is read and
//! its job restored archived, with its assets, hashes, request, task id and the accepted
//! submission of the ledger (see [`crate::catalog::Restorable`] for what a sidecar cannot hold).

use futures::TryStreamExt as _;
use object_store::ObjectStoreExt as _;

use crate::catalog::{CatalogError, Db, Restorable, Restored};
use crate::store::{STAGING, Store, StoreError};

/// The file name of a job's sidecar.
pub const SIDECAR: &str = "vidkeep.json";

/// A sidecar larger than this is not one vidkeep wrote.
const MAX_SIDECAR_BYTES: u64 = 4 << 20;

/// Sidecars restored per catalogue transaction.
const BATCH: usize = 256;

/// Errors that stop a rebuild (a bad sidecar does not: it is reported and skipped).
#[derive(Debug, thiserror::Error)]
pub enum RebuildError {
    /// The store could not be listed or read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The new catalogue could not be written.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
}

impl RebuildError {
    /// A stable code for messages and scripts.
    pub fn code(&self) -> &'static str {
        match self {
            RebuildError::Store(_) => "rebuild-store",
            RebuildError::Catalog(_) => "rebuild-catalog",
        }
    }
}

/// What a rebuild found and did.
#[derive(Debug, Default)]
pub struct RebuildReport {
    /// Sidecars found.
    pub sidecars: usize,
    /// Jobs restored.
    pub restored: usize,
    /// Sidecars whose job the catalogue already had.
    pub known: usize,
    /// Sidecars that could not be used: their key and why.
    pub skipped: Vec<(String, String)>,
}

/// Restores into `db` every job whose sidecar is in `store`.
pub async fn rebuild(store: &Store, db: &Db) -> Result<RebuildReport, RebuildError> {
    let staging = format!("{STAGING}/");
    let found: Vec<(object_store::path::Path, u64)> = store
        .backend()
        .list(None)
        .try_filter(|meta| {
            let key = meta.location.as_ref();
            futures::future::ready(key.ends_with(&format!("/{SIDECAR}")) && !key.starts_with(&staging))
        })
        .map_ok(|meta| (meta.location, meta.size))
        .try_collect()
        .await
        .map_err(Store::err("list", &object_store::path::Path::from("")))?;
    let mut report = RebuildReport { sidecars: found.len(), ..RebuildReport::default() };
    let mut batch = Vec::with_capacity(BATCH);
    for (key, size) in found {
        if size > MAX_SIDECAR_BYTES {
            report.skipped.push((key.to_string(), format!("{size} bytes is too large for a sidecar")));
            continue;
        }
        let bytes = match store.backend().get(&key).await {
            Ok(got) => got.bytes().await.map_err(Store::err("read", &key))?,
            Err(object_store::Error::NotFound { .. }) => continue,
            Err(e) => return Err(Store::err("read", &key)(e).into()),
        };
        match Restorable::parse(key.as_ref(), &bytes) {
            Ok(r) => batch.push(r),
            Err(why) => report.skipped.push((key.to_string(), why)),
        }
        if batch.len() >= BATCH {
            restore(db, std::mem::take(&mut batch), &mut report).await?;
        }
    }
    restore(db, batch, &mut report).await?;
    Ok(report)
}

async fn restore(db: &Db, batch: Vec<Restorable>, report: &mut RebuildReport) -> Result<(), RebuildError> {
    if batch.is_empty() {
        return Ok(());
    }
    let answers = db.restore(batch).await?;
    for answer in answers {
        match answer {
            Restored::New => report.restored += 1,
            Restored::Known => report.known += 1,
        }
    }
    Ok(())
}
