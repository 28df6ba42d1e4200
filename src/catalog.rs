//! The SQLite catalogue: the durable job state machine, the asset records and the audit trail.
//!
//! Opened with WAL and `synchronous=FULL`: in WAL mode `NORMAL` may lose the last commits on
//! power loss, and a lost "submitting" could mean paying twice. Migrations are numbered SQL files
//! embedded in the binary and applied by `PRAGMA user_version`. rusqlite is blocking, so the
//! daemon reaches the catalogue through [`Db`], which runs each call on the blocking pool.

mod jobs;
mod records;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::Connection;

use crate::jobs::JobState;

pub use jobs::{JobFilter, JobRecord, NewJob, SpecPlace};
pub use records::{Asset, AssetKind, Event, Rejection};

/// Embedded migrations, applied in order; index + 1 is the schema version they lead to.
const MIGRATIONS: &[&str] = &[include_str!("../migrations/0001_init.sql")];

/// Errors from the catalogue.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// SQLite failed (disk full, corruption, locked past the busy timeout, ...).
    #[error("catalogue {about}: {source}")]
    Sqlite {
        /// What was being done.
        about: &'static str,
        /// The SQLite error.
        source: rusqlite::Error,
    },
    /// The file's schema is newer than this binary knows.
    #[error("the catalogue has schema version {found}, newer than this vidkeep ({known}); upgrade vidkeep")]
    TooNew {
        /// Version in the file.
        found: i64,
        /// Newest version this binary knows.
        known: i64,
    },
    /// A compare-and-set transition found the job in another state.
    #[error("job {job_id} is {found}, not {expected}")]
    Conflict {
        /// The job.
        job_id: String,
        /// The state the caller expected.
        expected: JobState,
        /// The state it is in.
        found: JobState,
    },
    /// The change is not allowed by the state machine.
    #[error("job {job_id} cannot go from {from} to {to}")]
    Forbidden {
        /// The job.
        job_id: String,
        /// Current state.
        from: JobState,
        /// Requested state.
        to: JobState,
    },
    /// No such job.
    #[error("no job {0}")]
    NoJob(String),
    /// A stored value could not be read back.
    #[error("catalogue holds a value this vidkeep cannot read: {0}")]
    Corrupt(String),
    /// The blocking task running the call panicked or was cancelled.
    #[error("catalogue call did not complete: {0}")]
    Join(String),
}

pub(crate) fn sql(about: &'static str) -> impl FnOnce(rusqlite::Error) -> CatalogError {
    move |source| CatalogError::Sqlite { about, source }
}

/// An open catalogue: one connection, used from one thread at a time.
#[derive(Debug)]
pub struct Catalog {
    conn: Connection,
    path: PathBuf,
}

impl Catalog {
    /// Opens (creating if needed) and migrates the catalogue at `path`.
    pub fn open(path: &Path) -> Result<Catalog, CatalogError> {
        if let Some(dir) = path.parent() {
            if !dir.as_os_str().is_empty() {
                let _ = std::fs::create_dir_all(dir);
            }
        }
        let conn = Connection::open(path).map_err(sql("open"))?;
        conn.busy_timeout(Duration::from_secs(10)).map_err(sql("set busy timeout"))?;
        conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;")
            .map_err(sql("set pragmas"))?;
        let mut catalog = Catalog { conn, path: path.to_owned() };
        catalog.migrate()?;
        Ok(catalog)
    }

    /// The file this catalogue lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The schema version of the open file.
    pub fn schema_version(&self) -> Result<i64, CatalogError> {
        self.conn.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(sql("read schema version"))
    }

    fn migrate(&mut self) -> Result<(), CatalogError> {
        let known = MIGRATIONS.len() as i64;
        let found = self.schema_version()?;
        if found > known {
            return Err(CatalogError::TooNew { found, known });
        }
        for (i, script) in MIGRATIONS.iter().enumerate().skip(usize::try_from(found).unwrap_or(0)) {
            let tx = self.conn.transaction().map_err(sql("begin migration"))?;
            tx.execute_batch(script).map_err(sql("apply migration"))?;
            tx.pragma_update(None, "user_version", i as i64 + 1).map_err(sql("record schema version"))?;
            tx.commit().map_err(sql("commit migration"))?;
            tracing::info!(version = i + 1, "catalogue migrated");
        }
        Ok(())
    }
}

/// A shareable handle that runs catalogue calls on the blocking pool, one at a time.
#[derive(Debug, Clone)]
pub struct Db {
    inner: Arc<Mutex<Catalog>>,
}

impl Db {
    /// Wraps an open catalogue.
    pub fn new(catalog: Catalog) -> Db {
        Db { inner: Arc::new(Mutex::new(catalog)) }
    }

    /// Runs `f` with the catalogue on the blocking pool.
    pub async fn call<R, F>(&self, f: F) -> Result<R, CatalogError>
    where
        R: Send + 'static,
        F: FnOnce(&mut Catalog) -> Result<R, CatalogError> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            let mut guard = inner.lock().unwrap_or_else(|e| e.into_inner());
            f(&mut guard)
        })
        .await
        .map_err(|e| CatalogError::Join(e.to_string()))?
    }

    /// Runs `f` with the catalogue on this thread (for synchronous callers such as the CLI).
    pub fn blocking<R>(&self, f: impl FnOnce(&mut Catalog) -> Result<R, CatalogError>) -> Result<R, CatalogError> {
        let mut guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut guard)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_migrates_and_reopens() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c.sqlite");
        let c = Catalog::open(&path).expect("open");
        assert_eq!(c.schema_version().expect("version"), MIGRATIONS.len() as i64);
        let mode: String = c.conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).expect("mode");
        assert_eq!(mode, "wal");
        let sync: i64 = c.conn.query_row("PRAGMA synchronous", [], |r| r.get(0)).expect("sync");
        assert_eq!(sync, 2, "synchronous=FULL");
        drop(c);
        Catalog::open(&path).expect("reopen is a no-op migration");
    }

    #[test]
    fn refuses_a_newer_schema() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c.sqlite");
        let c = Catalog::open(&path).expect("open");
        c.conn.pragma_update(None, "user_version", 99).expect("bump");
        drop(c);
        assert!(matches!(Catalog::open(&path), Err(CatalogError::TooNew { found: 99, .. })));
    }
}
