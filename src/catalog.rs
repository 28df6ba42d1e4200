//! The SQLite catalogue: the durable job state machine, the asset records and the audit trail.
//!
//! Opened with WAL and `synchronous=FULL`: in WAL mode `NORMAL` may lose the last commits on
//! power loss, and a lost "submitting" could mean paying twice. Migrations are numbered SQL files
//! embedded in the binary and applied by `PRAGMA user_version`. rusqlite is blocking, so the
//! daemon reaches the catalogue through [`Db`], which runs each call on the blocking pool.

mod conn;
mod connect;
mod copy;
mod daemons;
mod export;
mod handle;
mod jobs;
mod ledger;
mod lock;
mod outbox;
mod pg;
mod place;
mod query;
mod rebuild;
mod records;
mod stats;
#[cfg(test)]
pub(crate) mod testing;

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior};

use conn::Conn;

use crate::domain::JobState;

pub use crate::domain::SpecPlace;
pub use connect::{ConnectError, PasswordSource, PgTarget, redact_url};
pub use copy::{CopyError, CopyReport, TableReport};
pub use daemons::{AccountSignal, Heartbeat};
pub use export::{ExportFormat, ExportWriter, csv, csv_cell, id_cell, job_json};
pub use handle::{Db, Settlement};
pub use jobs::{JobRecord, NewJob, Recorded, SpecJobs, short_id};
pub use ledger::{BudgetCheck, InFlight, LedgerRow, Money};
pub use lock::DaemonLock;
pub use outbox::{Expiring, NotifySetup, OutboxCounts, OutboxRow};
pub use query::{COUNT_CAP, Count, Cursor, EXPORT_PAGE, ExportRow, FacetCounts, Facets, JobFilter, Listing, Sort};
pub use rebuild::{Restorable, Restored, SIDECAR_VERSION};
pub use records::{Asset, AssetKind, CheckResult, CheckSelection, Event, Input, Rejection};
pub use stats::{OpsSnapshot, RESULT_URL_LIFETIME_MS};

/// The schema version this vidkeep writes: one per embedded migration.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Embedded migrations, applied in order; index + 1 is the schema version they lead to.
const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/0001_init.sql"),
    include_str!("../migrations/0002_asset_checks.sql"),
    include_str!("../migrations/0003_search.sql"),
    include_str!("../migrations/0004_ledger.sql"),
    include_str!("../migrations/0005_probe.sql"),
    include_str!("../migrations/0006_intake.sql"),
    include_str!("../migrations/0007_alarms.sql"),
    include_str!("../migrations/0008_lookup.sql"),
    include_str!("../migrations/0009_listing_indexes.sql"),
    include_str!("../migrations/0010_daemons.sql"),
    include_str!("../migrations/0011_tag_order.sql"),
];

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
    /// A reading command found no catalogue file (only `vidkeep run` creates one).
    #[error("catalogue not found at {}: check [catalog] path (only `vidkeep run` creates a catalogue)", .0.display())]
    NotFound(PathBuf),
    /// Another daemon holds this SQLite catalogue (see [`DaemonLock`]).
    #[error(
        "another vidkeep daemon{} is running on the catalogue at {}: one SQLite catalogue serves one daemon; \
         stop the other one, or give this one its own [catalog] path",
        .holder.map(|pid| format!(" (pid {pid})")).unwrap_or_default(),
        .catalog.display()
    )]
    InUse {
        /// The catalogue file.
        catalog: PathBuf,
        /// The process holding it, as its lock file says.
        holder: Option<u32>,
    },
    /// PostgreSQL failed (connection lost, constraint, serialization, ...).
    #[error("catalogue {about}: {source}")]
    Postgres {
        /// What was being done.
        about: &'static str,
        /// The PostgreSQL error.
        source: postgres::Error,
    },
    /// The PostgreSQL catalogue could not be reached (see [`PgTarget`]).
    #[error(transparent)]
    Connect(ConnectError),
    /// A statement that must find a row found none.
    #[error("catalogue {0}: no such row")]
    NoRow(&'static str),
    /// What was asked exists only on the other backend.
    #[error("{0}")]
    Unsupported(&'static str),
    /// A stored value could not be read back.
    #[error("catalogue holds a value this vidkeep cannot read: {0}")]
    Corrupt(String),
    /// A file operation around the catalogue failed.
    #[error("catalogue {about}: {source}")]
    Io {
        /// What was being done.
        about: &'static str,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Copying a catalogue into another was refused or failed its check.
    #[error(transparent)]
    Copy(#[from] CopyError),
    /// The blocking task running the call panicked or was cancelled.
    #[error("catalogue call did not complete: {0}")]
    Join(String),
}

/// How long a catalogue call waits for another connection's lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

impl CatalogError {
    /// Whether SQLite refused because another connection held a lock.
    pub fn is_busy(&self) -> bool {
        matches!(
            self,
            CatalogError::Sqlite { source: rusqlite::Error::SqliteFailure(e, _), .. }
                if matches!(e.code, rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
        )
    }
}

pub(crate) fn sql(about: &'static str) -> impl FnOnce(rusqlite::Error) -> CatalogError {
    move |source| CatalogError::Sqlite { about, source }
}

/// An open catalogue: one connection, used from one thread at a time.
#[derive(Debug)]
pub struct Catalog {
    conn: Conn,
    path: PathBuf,
    /// Where the events of transitions go (none unless the daemon sets sinks).
    notify: NotifySetup,
    /// The daemon working through this connection ([`Catalog::set_daemon`]): the jobs it records
    /// are its own, and the engine's reads see only its own. `None` (the CLI, the web UI): all.
    daemon: Option<String>,
}

impl Catalog {
    /// Opens and migrates the catalogue at `path`, which must exist: for the commands that read
    /// or repair a catalogue, where a typo'd path must not become a new, empty one.
    pub fn open_existing(path: &Path) -> Result<Catalog, CatalogError> {
        if !path.exists() {
            return Err(CatalogError::NotFound(path.to_owned()));
        }
        Catalog::open(path)
    }

    /// Opens (creating if needed) and migrates the catalogue at `path`.
    pub fn open(path: &Path) -> Result<Catalog, CatalogError> {
        if let Some(dir) = path.parent() {
            if !dir.as_os_str().is_empty() {
                let _ = std::fs::create_dir_all(dir);
            }
        }
        let deadline = std::time::Instant::now() + BUSY_TIMEOUT;
        loop {
            match Catalog::open_once(path) {
                Err(e) if e.is_busy() && std::time::Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                other => return other,
            }
        }
    }

    /// Opens an existing, current catalogue for reading only: no pragma, no migration, no
    /// lock that could hold up the daemon's writes. For readers that run beside the daemon.
    pub fn open_read_only(path: &Path) -> Result<Catalog, CatalogError> {
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags).map_err(sql("open read-only"))?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(sql("set busy timeout"))?;
        let catalog =
            Catalog { conn: Conn::Lite(conn), path: path.to_owned(), notify: NotifySetup::default(), daemon: None };
        current_for_reading(catalog.schema_version()?, MIGRATIONS.len() as i64)?;
        Ok(catalog)
    }

    /// Writes a consistent copy of this catalogue to `dest` with SQLite's online backup, while
    /// the daemon may go on writing. The copy is made beside `dest` and renamed into place, so
    /// `dest` is either the old file or a whole new one; it is checked before the rename.
    pub fn backup_to(&self, dest: &Path) -> Result<(), CatalogError> {
        let Some(lite) = self.conn.as_lite() else {
            return Err(CatalogError::Unsupported(
                "a PostgreSQL catalogue is backed up with PostgreSQL's own tools (pg_dump, base backups), not `vidkeep backup`",
            ));
        };
        let dir = dest.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let name = dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "catalog".into());
        let partial = dir.join(format!(".{name}.partial-{}", std::process::id()));
        let result = (|| {
            let mut copy = Connection::open(&partial).map_err(sql("create backup file"))?;
            {
                let backup = rusqlite::backup::Backup::new(lite, &mut copy).map_err(sql("start backup"))?;
                backup.run_to_completion(256, Duration::from_millis(5), None).map_err(sql("copy pages"))?;
            }
            let check: String =
                copy.query_row("PRAGMA integrity_check", [], |r| r.get(0)).map_err(sql("check backup"))?;
            if check != "ok" {
                return Err(CatalogError::Corrupt(format!("the backup copy failed its integrity check: {check}")));
            }
            copy.execute_batch("PRAGMA journal_mode = DELETE;").map_err(sql("make backup self-contained"))?;
            drop(copy);
            std::fs::rename(&partial, dest).map_err(|e| CatalogError::Io { about: "move backup into place", source: e })
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&partial);
        }
        result
    }

    /// One try at opening. Switching a new file to WAL takes an exclusive lock that SQLite does
    /// not always wait for, so two processes creating the catalogue at once may see `BUSY` here;
    /// [`Catalog::open`] tries again.
    fn open_once(path: &Path) -> Result<Catalog, CatalogError> {
        let mut conn = Connection::open(path).map_err(sql("open"))?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(sql("set busy timeout"))?;
        // The pragma does not fail when it cannot switch (another connection holds the file): it
        // answers the mode still in force. Running on in rollback mode would let readers block
        // the daemon's writes, so anything but `wal` is a busy file to try again.
        let mode: String =
            conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0)).map_err(sql("set journal mode"))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(CatalogError::Sqlite {
                about: "set journal mode",
                source: rusqlite::Error::SqliteFailure(
                    rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
                    Some(format!("journal mode is still `{mode}`")),
                ),
            });
        }
        conn.execute_batch("PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;").map_err(sql("set pragmas"))?;
        conn.set_prepared_statement_cache_capacity(PREPARED_STATEMENTS);
        migrate(&mut conn)?;
        Ok(Catalog { conn: Conn::Lite(conn), path: path.to_owned(), notify: NotifySetup::default(), daemon: None })
    }

    /// Where this catalogue lives: its file, or (PostgreSQL) its `postgres://user@host/db`.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The schema version of the open catalogue (each backend numbers its own migrations).
    pub fn schema_version(&self) -> Result<i64, CatalogError> {
        match &self.conn {
            Conn::Lite(c) => lite_version(c),
            Conn::Pg(_) => pg::schema_version(&self.conn),
        }
    }

    /// Whether this is a PostgreSQL catalogue (which several daemons may share).
    pub fn is_postgres(&self) -> bool {
        matches!(self.conn, Conn::Pg(_))
    }

    /// The SQLite connection, in tests that reach below the catalogue's operations.
    #[cfg(test)]
    pub(crate) fn lite(&self) -> &Connection {
        self.conn.as_lite().expect("a SQLite catalogue")
    }

    /// As [`Catalog::lite`], for a transaction.
    #[cfg(test)]
    pub(crate) fn lite_mut(&mut self) -> &mut Connection {
        match &mut self.conn {
            Conn::Lite(c) => c,
            Conn::Pg(_) => panic!("a SQLite catalogue"),
        }
    }
}

/// A reader (which never migrates) needs the schema this vidkeep knows: `found` must be `known`.
fn current_for_reading(found: i64, known: i64) -> Result<(), CatalogError> {
    if found > known {
        return Err(CatalogError::TooNew { found, known });
    }
    if found < known {
        return Err(CatalogError::Corrupt(format!(
            "schema version {found} is older than this vidkeep's {known}; start the daemon once to migrate it"
        )));
    }
    Ok(())
}

/// Statements a SQLite connection keeps prepared: the catalogue's fixed statements all fit, so
/// the hot ones (intake's inserts, the engine's reads) are parsed once.
const PREPARED_STATEMENTS: usize = 128;

fn lite_version(c: &Connection) -> Result<i64, CatalogError> {
    c.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(sql("read schema version"))
}

/// Applies the migrations the file lacks. Each step reads the version inside an `IMMEDIATE`
/// transaction, so two processes opening a new catalogue at once (the daemon and a CLI
/// reader) serialise on SQLite's write lock and the second sees the first's work.
fn migrate(conn: &mut Connection) -> Result<(), CatalogError> {
    let known = MIGRATIONS.len() as i64;
    // Most opens (every CLI command, every reader) find the schema current: they take no
    // write lock at all.
    let current = lite_version(conn)?;
    if current > known {
        return Err(CatalogError::TooNew { found: current, known });
    }
    if current == known {
        return Ok(());
    }
    // A migration that rebuilds a table (0004) needs foreign keys off; it cannot be switched
    // inside a transaction, so it is off for all steps and each is checked before it commits.
    conn.execute_batch("PRAGMA foreign_keys = OFF;").map_err(sql("pause foreign keys"))?;
    let result = migrate_steps(conn, known);
    conn.execute_batch("PRAGMA foreign_keys = ON;").map_err(sql("restore foreign keys"))?;
    result
}

fn migrate_steps(conn: &mut Connection, known: i64) -> Result<(), CatalogError> {
    loop {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(sql("begin migration"))?;
        let found: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(sql("read schema version"))?;
        if found > known {
            return Err(CatalogError::TooNew { found, known });
        }
        let Some(script) = MIGRATIONS.get(usize::try_from(found).unwrap_or(0)) else { return Ok(()) };
        tx.execute_batch(script).map_err(sql("apply migration"))?;
        let broken: Option<String> =
            tx.query_row("PRAGMA foreign_key_check", [], |r| r.get(0)).optional().map_err(sql("check foreign keys"))?;
        if let Some(table) = broken {
            return Err(CatalogError::Corrupt(format!("migration {} left broken references in {table}", found + 1)));
        }
        tx.pragma_update(None, "user_version", found + 1).map_err(sql("record schema version"))?;
        tx.commit().map_err(sql("commit migration"))?;
        tracing::info!(version = found + 1, "catalogue migrated");
    }
}

#[cfg(test)]
mod tests {
    use super::conn::Sql as _;
    use super::*;

    #[test]
    fn opens_migrates_and_reopens() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c.sqlite");
        let c = Catalog::open(&path).expect("open");
        assert_eq!(c.schema_version().expect("version"), MIGRATIONS.len() as i64);
        let mode: String = c.lite().query_row("PRAGMA journal_mode", [], |r| r.get(0)).expect("mode");
        assert_eq!(mode, "wal");
        let sync: i64 = c.lite().query_row("PRAGMA synchronous", [], |r| r.get(0)).expect("sync");
        assert_eq!(sync, 2, "synchronous=FULL");
        drop(c);
        Catalog::open(&path).expect("reopen is a no-op migration");
    }

    #[test]
    fn the_ledger_migration_keeps_jobs_tags_search_and_prices() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c.sqlite");
        {
            let mut c = Catalog::open(&path).expect("open");
            let tx = c.lite_mut().transaction().expect("tx");
            // Back to version 3, then a job and a submission as vidkeep 0.3 wrote them.
            tx.execute_batch(
                "DROP TABLE daemons; DROP TABLE account_signals; DROP VIEW ledger; DROP TABLE outbox; DROP TABLE job_inputs; DROP TABLE jobs_fts; DROP TABLE job_tags; DROP TABLE asset_checks; \
                 DROP TABLE assets; DROP TABLE job_events; DROP TABLE rejections; DROP TABLE job_requests; \
                 DROP TABLE submissions; DROP TABLE jobs;",
            )
            .expect("drop");
            for script in &MIGRATIONS[..3] {
                tx.execute_batch(script).expect("old migration");
            }
            tx.pragma_update(None, "user_version", 3).expect("version");
            tx.execute_batch(
                "INSERT INTO jobs (id, spec_name, spec_file, spec_place, spec_sha256, spec_format, fingerprint, model, \
                 prompt, tags, request_display, price_fen, state, task_id, created_at, updated_at) VALUES \
                 ('j1', 'a.json', 'a.json', 'processing', '00', 'json', 'f', 'viduq1-text', 'a lighthouse at dusk', \
                 '[\"sea\"]', '{}', 250, 'submitted', 't1', 1, 1); \
                 INSERT INTO submissions (job_id, request_id, started_at, outcome, task_id) \
                 VALUES ('j1', 'r1', 1, 'accepted', 't1');",
            )
            .expect("old rows");
            tx.commit().expect("commit");
        }
        let c = Catalog::open(&path).expect("migrate to 4");
        assert_eq!(c.schema_version().expect("version"), MIGRATIONS.len() as i64);
        let job = c.job("j1").expect("job survives");
        assert_eq!((job.state, job.charged_fen), (JobState::Submitted, 250));
        let tagged = c.jobs(&JobFilter { tag: Some("sea".into()), ..JobFilter::default() }).expect("tags");
        assert_eq!(tagged.len(), 1);
        let tag_row: (String, i64) = c
            .lite()
            .query_row("SELECT job_id, created_at FROM job_tags WHERE tag = 'sea'", [], |r| Ok((r.get(0)?, r.get(1)?)))
            .expect("tag row");
        assert_eq!(tag_row, ("j1".to_owned(), 1), "version 11 gives each tag row its job's creation time");
        let found = c.jobs(&JobFilter { text: Some("lighthouse".into()), ..JobFilter::default() }).expect("search");
        assert_eq!(found.len(), 1, "the search index still points at the rebuilt rows");
        let fk: i64 = c.lite().query_row("PRAGMA foreign_keys", [], |r| r.get(0)).expect("pragma");
        assert_eq!(fk, 1, "foreign keys are back on after the migration");
    }

    fn new_job(c: &mut Catalog) -> String {
        let defaults = serde_json::Map::new();
        let dir = std::env::temp_dir();
        let ctx = crate::spec::SpecContext { defaults: &defaults, spec_dir: &dir, inbox: &dir };
        let spec = crate::spec::parse("a.json", br#"{"model":"viduq1-text","prompt":"x"}"#, &ctx).expect("valid");
        let job = NewJob {
            id: uuid::Uuid::now_v7().to_string(),
            spec_name: "a.json".into(),
            spec_sha256: "00".into(),
            spec_format: crate::spec::SpecFormat::Json,
            spec,
            take: None,
        };
        c.insert_job(&job).expect("insert");
        job.id
    }

    #[test]
    fn transitions_are_compare_and_set_and_keep_the_ledger() {
        use crate::domain::{Change, JobError};
        testing::each_backend(|c, _| {
            let id = new_job(c);
            let submitting = Change::Submitting { request_id: "r1".into() };
            c.transition(&id, JobState::Queued, &submitting).expect("queued -> submitting");
            assert!(matches!(
                c.transition(&id, JobState::Queued, &submitting),
                Err(CatalogError::Conflict { found: JobState::Submitting, .. })
            ));
            assert!(matches!(
                c.transition(&id, JobState::Submitting, &Change::Archived),
                Err(CatalogError::Forbidden { .. })
            ));
            c.transition(&id, JobState::Submitting, &Change::Submitted { task_id: "t1".into() }).expect("accepted");
            assert_eq!(c.accepted_submissions(&id).expect("ledger"), 1);
            assert_eq!(c.in_flight_by_model().expect("count").get("viduq1-text"), Some(&1));
            let job = c.job(&id).expect("job");
            assert_eq!((job.state, job.attempts, job.task_id.as_deref()), (JobState::Submitted, 1, Some("t1")));
            c.transition(&id, JobState::Submitted, &Change::Failed(JobError::new("task-failed", "FAIL")))
                .expect("fail");
            let events = c.events(&id).expect("events");
            let path: Vec<&str> = events.iter().map(|e| e.to.as_str()).collect();
            assert_eq!(path, ["queued", "submitting", "submitted", "failed"]);
            assert!(c.job(&id).expect("job").finished_at.is_some());
        });
    }

    #[test]
    fn version_7_renames_expired_and_keeps_each_results_first_expiry() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c.sqlite");
        {
            let c = Catalog::open(&path).expect("open");
            // Back to version 6 (undoing migrations 11, 10, 9, 8 and 7), with a job failed as vidkeep 0.6 wrote it and one downloading.
            c.lite()
                .execute_batch(
                    "DROP INDEX job_tags_newest; DROP TRIGGER job_tags_insert; DROP TRIGGER job_tags_update; \
                     ALTER TABLE job_tags DROP COLUMN created_at; \
                     CREATE TRIGGER job_tags_insert AFTER INSERT ON jobs BEGIN \
                     INSERT OR IGNORE INTO job_tags (tag, job_id) SELECT value, new.id FROM json_each(new.tags); END; \
                     CREATE TRIGGER job_tags_update AFTER UPDATE OF tags ON jobs BEGIN \
                     DELETE FROM job_tags WHERE job_id = old.id; \
                     INSERT OR IGNORE INTO job_tags (tag, job_id) SELECT value, new.id FROM json_each(new.tags); END; \
                     DROP TABLE daemons; DROP TABLE account_signals; DROP INDEX jobs_unfinished_by_owner; \
                     ALTER TABLE jobs DROP COLUMN owner; ALTER TABLE jobs DROP COLUMN origin; \
                     DROP INDEX jobs_by_model_newest; DROP INDEX jobs_by_project_sorted; DROP INDEX jobs_by_project_nocase; \
                     CREATE INDEX jobs_by_project ON jobs (project, created_at); \
                     CREATE INDEX jobs_by_model ON jobs (model, created_at); \
                     DROP INDEX jobs_by_task_id; DROP INDEX jobs_by_request_id; DROP INDEX jobs_by_spec_name; \
                     DROP INDEX jobs_downloading_by_expiry; DROP TABLE outbox; ALTER TABLE jobs DROP COLUMN expires_at; \
                     PRAGMA user_version = 6; \
                     INSERT INTO jobs (id, spec_name, spec_file, spec_place, spec_sha256, spec_format, fingerprint, model, \
                     request_display, price_fen, state, task_id, video_url, result_at, error_code, error_message, \
                     created_at, updated_at) VALUES \
                     ('old', 'a.json', 'a.json', 'failed', '00', 'json', 'f', 'viduq1-text', '{}', 250, 'failed', 't1', \
                      'u', 1000, 'expired', 'gone', 1, 1), \
                     ('dl', 'b.json', 'b.json', 'processing', '00', 'json', 'g', 'viduq1-text', '{}', 250, 'downloading', \
                      't2', 'u', 5000, NULL, NULL, 2, 2); \
                     INSERT INTO submissions (job_id, request_id, started_at, outcome, task_id, price_fen) \
                     VALUES ('old', 'r1', 1, 'accepted', 't1', 250);",
                )
                .expect("old rows");
        }
        let c = Catalog::open(&path).expect("migrate to 7");
        let old = c.job("old").expect("old job");
        assert_eq!(old.error.as_ref().map(|e| e.code.as_str()), Some("result-expired"));
        assert_eq!(c.job_money("old").expect("money").lost_fen, 250, "paid, nothing kept: lost");
        assert_eq!(c.job("dl").expect("job").expires_at, Some(5000 + RESULT_URL_LIFETIME_MS));
        let lost: Vec<bool> = c.ledger(0, i64::MAX).expect("ledger").iter().map(|r| r.lost).collect();
        assert_eq!(lost, [true]);
    }

    #[test]
    fn events_are_written_with_their_transition_or_not_at_all() {
        use crate::domain::{Change, JobError};
        testing::each_backend(|c, _| {
            let quiet = new_job(c);
            c.transition(&quiet, JobState::Queued, &Change::Failed(JobError::new("x", "y"))).expect("fail");
            assert!(c.outbox_of(&quiet).expect("outbox").is_empty(), "no sink, no event");

            c.set_notify(NotifySetup {
                sinks: vec!["webhook", "command"],
                ui_base: Some("https://vk.example/".into()),
            });
            let id = new_job(c);
            c.transition(&id, JobState::Queued, &Change::Submitting { request_id: "r".into() }).expect("submitting");
            assert!(c.outbox_of(&id).expect("outbox").is_empty(), "submitting is no event");
            let refused = c.transition(&id, JobState::Queued, &Change::Failed(JobError::new("x", "y")));
            assert!(matches!(refused, Err(CatalogError::Conflict { .. })));
            assert!(c.outbox_of(&id).expect("outbox").is_empty(), "a refused change writes no event");
            c.transition(&id, JobState::Submitting, &Change::Uncertain(JobError::new("submit-answer-lost", "lost")))
                .expect("uncertain");
            c.transition(&id, JobState::Uncertain, &Change::Failed(JobError::new("abandoned", "given up")))
                .expect("failed");
            let rows = c.outbox_of(&id).expect("outbox");
            let kinds: Vec<(&str, &str)> = rows.iter().map(|(r, _)| (r.sink.as_str(), r.event.as_str())).collect();
            assert_eq!(
                kinds,
                [("webhook", "uncertain"), ("command", "uncertain"), ("webhook", "failed"), ("command", "failed")]
            );
            let body: serde_json::Value = serde_json::from_str(&rows[2].0.body).expect("json");
            assert_eq!(body["error_code"], "abandoned");
            assert_eq!(body["possibly_charged_fen"], 250);
            assert_eq!(body["url"], format!("https://vk.example/jobs/{id}"));
            // Only the oldest pending event of a job and sink is due: order per job.
            let due: Vec<i64> = c.outbox_due(i64::MAX, 10).expect("due").iter().map(|r| r.id).collect();
            assert_eq!(due, [rows[0].0.id, rows[1].0.id]);
            c.outbox_failed(rows[0].0.id, "HTTP 500", Some(i64::MAX)).expect("retry later");
            let due: Vec<i64> = c.outbox_due(1, 10).expect("due").iter().map(|r| r.id).collect();
            assert_eq!(due, [rows[1].0.id], "a failed event holds back the next of its job");
            c.outbox_delivered(rows[1].0.id, 1).expect("delivered");
            c.outbox_failed(rows[0].0.id, "HTTP 500", None).expect("dead");
            let due: Vec<i64> = c.outbox_due(1, 10).expect("due").iter().map(|r| r.id).collect();
            assert_eq!(due, [rows[2].0.id, rows[3].0.id], "a dead event no longer holds the queue");
            assert_eq!(c.outbox_counts().expect("counts"), OutboxCounts { pending: 2, dead: 1 });
        });
    }

    #[test]
    fn the_schema_refuses_impossible_rows() {
        testing::each_backend(|c, _| {
            let id = new_job(c);
            let err = c.conn.execute("test", "UPDATE jobs SET state = 'archived' WHERE id = ?1", conn::args![id]);
            assert!(err.is_err(), "an archived job needs a task id, a video URL and a time");
        });
    }

    #[test]
    fn concurrent_first_opens_migrate_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c.sqlite");
        let openers: Vec<_> = (0..8)
            .map(|_| {
                let path = path.clone();
                std::thread::spawn(move || Catalog::open(&path).map(|c| c.schema_version()))
            })
            .collect();
        for opener in openers {
            let version = opener.join().expect("thread").expect("open").expect("version");
            assert_eq!(version, MIGRATIONS.len() as i64);
        }
    }

    #[test]
    fn read_only_opens_cannot_write_and_need_a_current_schema() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c.sqlite");
        assert!(Catalog::open_read_only(&path).is_err(), "no file, nothing to read");
        drop(Catalog::open(&path).expect("create"));
        let reader = Catalog::open_read_only(&path).expect("read-only");
        assert!(reader.lite().execute("DELETE FROM jobs", []).is_err(), "a reader cannot write");
        let writer = Catalog::open(&path).expect("writer");
        writer.lite().pragma_update(None, "user_version", 0).expect("pretend an old schema");
        assert!(Catalog::open_read_only(&path).is_err(), "an old schema needs the daemon to migrate it");
    }

    #[test]
    fn refuses_a_newer_schema() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c.sqlite");
        let c = Catalog::open(&path).expect("open");
        c.lite().pragma_update(None, "user_version", 99).expect("bump");
        drop(c);
        assert!(matches!(Catalog::open(&path), Err(CatalogError::TooNew { found: 99, .. })));
    }
}
