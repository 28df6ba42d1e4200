//! The PostgreSQL catalogue: opening it and its migrations. Everything else is the same code as
//! SQLite's, through [`super::conn`].
//!
//! Several daemons may open one database at once: each migration step runs under a
//! transaction-scoped advisory lock, so the first applies it and the others find it applied.

use std::path::PathBuf;

use super::conn::{Conn, PgConn, Sql as _, args, pg};
use super::{Catalog, CatalogError, NotifySetup};

/// PostgreSQL's migrations, applied in order; index + 1 is the version they lead to. Version 1
/// is what SQLite's 9 migrations built; from there on, each PostgreSQL version has a SQLite twin.
const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/pg/0001_init.sql"),
    include_str!("../../migrations/pg/0002_daemons.sql"),
    include_str!("../../migrations/pg/0003_tag_order.sql"),
];

/// The schema version this vidkeep writes on PostgreSQL.
pub(crate) const PG_SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// The advisory lock migrations take ("vkmigrat" in ASCII).
const MIGRATE_LOCK: i64 = 0x766b_6d69_6772_6174;

/// The applied version, 0 for an empty database.
pub(super) fn schema_version(conn: &Conn) -> Result<i64, CatalogError> {
    let present: bool =
        conn.one("read schema version", "SELECT to_regclass('vidkeep_schema') IS NOT NULL", args![], |r| r.get(0))?;
    if !present {
        return Ok(0);
    }
    conn.one("read schema version", "SELECT COALESCE(MAX(version), 0) FROM vidkeep_schema", args![], |r| r.get(0))
}

/// Applies the migrations the database lacks, one transaction each.
fn migrate(client: &mut postgres::Client) -> Result<(), CatalogError> {
    let known = PG_SCHEMA_VERSION;
    loop {
        let mut tx = client.transaction().map_err(pg("begin migration"))?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATE_LOCK]).map_err(pg("lock for migration"))?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS vidkeep_schema (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)",
        )
        .map_err(pg("create the schema table"))?;
        let found: i64 = tx
            .query_one("SELECT COALESCE(MAX(version), 0) FROM vidkeep_schema", &[])
            .and_then(|r| r.try_get(0))
            .map_err(pg("read schema version"))?;
        if found > known {
            return Err(CatalogError::TooNew { found, known });
        }
        let Some(script) = MIGRATIONS.get(usize::try_from(found).unwrap_or(0)) else {
            tx.commit().map_err(pg("commit migration"))?;
            return Ok(());
        };
        tx.batch_execute(script).map_err(pg("apply migration"))?;
        tx.execute(
            "INSERT INTO vidkeep_schema (version, applied_at) VALUES ($1, $2)",
            &[&(found + 1), &crate::time::now_ms()],
        )
        .map_err(pg("record schema version"))?;
        tx.commit().map_err(pg("commit migration"))?;
        tracing::info!(version = found + 1, "PostgreSQL catalogue migrated");
    }
}

impl Catalog {
    /// The PostgreSQL catalogue on `client` (named `place` in messages, without a password),
    /// migrated to this vidkeep's schema.
    pub fn from_postgres(mut client: postgres::Client, place: String) -> Result<Catalog, CatalogError> {
        migrate(&mut client)?;
        Ok(Catalog {
            conn: PgConn::conn(client),
            path: PathBuf::from(place),
            notify: NotifySetup::default(),
            daemon: None,
        })
    }

    /// The PostgreSQL catalogue on `client` for reading only: every transaction is read-only,
    /// and the schema must be current (the daemon migrates it).
    pub fn from_postgres_read_only(mut client: postgres::Client, place: String) -> Result<Catalog, CatalogError> {
        client.batch_execute("SET default_transaction_read_only = on").map_err(pg("make read-only"))?;
        let catalog = Catalog {
            conn: PgConn::conn(client),
            path: PathBuf::from(place),
            notify: NotifySetup::default(),
            daemon: None,
        };
        super::current_for_reading(catalog.schema_version()?, PG_SCHEMA_VERSION)?;
        Ok(catalog)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::testing::{PgScratch, pg_connect, pg_server};

    /// Version 3 gives the tag rows of existing jobs their job's creation time, and keeps it for
    /// jobs added or retagged after.
    #[test]
    fn version_3_dates_the_tag_rows_of_existing_jobs() {
        let Some(server) = pg_server() else {
            eprintln!("VIDKEEP_TEST_PG is not set: PostgreSQL migration test not run");
            return;
        };
        let scratch = PgScratch::new(&server);
        let mut client = pg_connect(&scratch.url());
        client
            .batch_execute("CREATE TABLE vidkeep_schema (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)")
            .expect("schema table");
        for (at, script) in MIGRATIONS[..2].iter().enumerate() {
            client.batch_execute(script).expect("old migration");
            client.execute("INSERT INTO vidkeep_schema VALUES ($1, 0)", &[&(at as i64 + 1)]).expect("version");
        }
        client
            .batch_execute(
                "INSERT INTO jobs (id, spec_name, spec_file, spec_place, spec_sha256, spec_format, fingerprint, model, \
                 prompt, tags, request_display, price_fen, state, created_at, updated_at) VALUES \
                 ('j1', 'a.json', 'a.json', 'done', '00', 'json', 'f', 'viduq1-text', 'x', '[\"sea\", \"night\"]', \
                  '{}', 250, 'queued', 7, 7)",
            )
            .expect("a job at version 2");
        let c = Catalog::from_postgres(client, "test".into()).expect("migrate");
        let dated = |c: &Catalog| -> Vec<(String, i64)> {
            c.conn
                .rows("test", "SELECT tag, created_at FROM job_tags ORDER BY tag", args![], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .expect("tag rows")
        };
        assert_eq!(dated(&c), [("night".to_owned(), 7), ("sea".to_owned(), 7)]);
        c.conn
            .execute("test", "UPDATE jobs SET tags = '[\"dawn\"]', created_at = 9 WHERE id = 'j1'", args![])
            .expect("retag");
        assert_eq!(dated(&c), [("dawn".to_owned(), 9)]);
        c.conn.execute("test", "UPDATE jobs SET created_at = 11 WHERE id = 'j1'", args![]).expect("redate");
        assert_eq!(dated(&c), [("dawn".to_owned(), 11)]);
    }
}
