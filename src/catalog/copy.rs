//! Copying a whole catalogue into another, checked: `vidkeep catalog copy` moves a SQLite
//! catalogue into PostgreSQL with it (and SQLite into SQLite works the same way).
//!
//! Every table is read page by page (by its integer key, or by its job's rowid), so a catalogue
//! of a million jobs is never held in memory, and written in one destination transaction. Ids
//! are kept: jobs keep their rowids (PostgreSQL's `jobs.rowid` stands in for SQLite's, so
//! listings in arrival order agree), and submissions, events, checks, rejections and the outbox
//! keep theirs; each PostgreSQL identity sequence is then moved past the largest id, so the
//! destination's new rows get fresh ids. `job_tags` is not copied: each backend's triggers keep
//! it from `jobs.tags`, and it is checked like every other table.
//!
//! The check, before the commit: each table's row count and a SHA-256 over its rows, read back
//! in key order from both sides with every column rendered the same way, must agree. If one
//! table differs, the transaction rolls back and the error names it. The source is only read,
//! inside one read transaction, so every page comes from the same snapshot.

use sha2::{Digest as _, Sha256};

use super::conn::{Arg, Begin, Cell, Conn, Dialect, FromCell, Row, Sql, Value, args, pg};
use super::pg::PG_SCHEMA_VERSION;
use super::{Catalog, CatalogError, SCHEMA_VERSION, sql};

mod tables;

use tables::{NEXT_JOBS, Order, TABLES, Table};

/// Rows (or, for tables read by job, jobs) per page read.
const PAGE: usize = 500;

/// Placeholders in one `INSERT` at most (SQLite allows 32,766, PostgreSQL 65,535).
const MAX_PARAMS: usize = 4_000;

/// Bytes of row data gathered before they are written: a job's request body holds its images
/// inline, so a page of requests can be large.
const MAX_BATCH_BYTES: usize = 8 << 20;

/// Why a copy was refused or failed its check. Nothing is written in either case.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// The destination is not empty: copying keeps ids, so it writes only into a new catalogue.
    #[error(
        "the destination catalogue is not empty ({table} holds {rows} row(s)); \
         `catalog copy` writes only into a new, empty catalogue"
    )]
    NotEmpty {
        /// The first table found with rows.
        table: &'static str,
        /// How many.
        rows: u64,
    },
    /// A catalogue's schema is not this vidkeep's.
    #[error(
        "the {side} catalogue has schema version {found}, not this vidkeep's {current}: \
         run this vidkeep's daemon on it once to migrate it, then copy"
    )]
    Schema {
        /// `source` or `destination`.
        side: &'static str,
        /// The version found.
        found: i64,
        /// The version this vidkeep writes on that backend.
        current: i64,
    },
    /// A catalogue has rows that reading in key order does not reach (a row of a job that does
    /// not exist, which a foreign key should have refused).
    #[error(
        "the {side}'s {table} holds {rows} row(s), but only {reached} belong to a job; \
         that catalogue is inconsistent, nothing was written"
    )]
    Unreachable {
        /// `source` or `destination`.
        side: &'static str,
        /// The table.
        table: &'static str,
        /// Rows counted.
        rows: u64,
        /// Rows read in key order.
        reached: u64,
    },
    /// The destination's row count of a table differs from the source's.
    #[error(
        "the check failed: {table} has {source_rows} row(s) in the source and {dest_rows} in the destination; nothing was written"
    )]
    CountDiffers {
        /// The table.
        table: &'static str,
        /// Rows in the source.
        source_rows: u64,
        /// Rows in the destination.
        dest_rows: u64,
    },
    /// The destination's rows of a table read back differently from the source's.
    #[error(
        "the check failed: {table} has {rows} row(s) on both sides, but their contents differ (SHA-256 {source_sha256} \
         in the source, {dest_sha256} in the destination); nothing was written"
    )]
    ContentDiffers {
        /// The table.
        table: &'static str,
        /// Rows on each side.
        rows: u64,
        /// The source's checksum.
        source_sha256: String,
        /// The destination's checksum.
        dest_sha256: String,
    },
    /// Reading or writing one table failed.
    #[error("copying {table}: {source}")]
    Table {
        /// The table.
        table: &'static str,
        /// What failed.
        source: Box<CatalogError>,
    },
}

/// One table of a copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableReport {
    /// The table.
    pub table: &'static str,
    /// Its rows, the same on both sides.
    pub rows: u64,
    /// Kept by the destination's triggers rather than copied (`job_tags`); checked all the same.
    pub by_trigger: bool,
    /// SHA-256 (lower hex) of its rows in key order, the same on both sides.
    pub sha256: String,
}

/// What [`Catalog::copy_into`] copied and checked, table by table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyReport {
    /// Every table, in copy order.
    pub tables: Vec<TableReport>,
}

impl CopyReport {
    /// The rows of `table`, if it is one of the catalogue's.
    pub fn rows(&self, table: &str) -> Option<u64> {
        self.tables.iter().find(|t| t.table == table).map(|t| t.rows)
    }
}

/// A column's value, owned: read from one catalogue, bound into the other.
#[derive(Debug, Clone, PartialEq)]
enum Owned {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
}

impl FromCell for Owned {
    fn from_cell(cell: Cell<'_>) -> Result<Self, String> {
        Ok(match cell {
            Cell::Null => Owned::Null,
            Cell::Int(i) => Owned::Int(i),
            Cell::Real(f) => Owned::Real(f),
            Cell::Text(s) => Owned::Text(s.to_owned()),
            Cell::Bool(b) => Owned::Int(i64::from(b)),
        })
    }
}

impl Arg for Owned {
    fn value(&self) -> Value<'_> {
        match self {
            Owned::Null => Value::Null,
            Owned::Int(i) => Value::Int(*i),
            Owned::Real(f) => Value::Real(*f),
            Owned::Text(s) => Value::Text(s),
        }
    }
}

impl Owned {
    fn size(&self) -> usize {
        match self {
            Owned::Text(s) => s.len() + 16,
            _ => 16,
        }
    }
}

impl Table {
    /// The `SELECT` of one page in key order. On PostgreSQL `jobs.id` compares bytes
    /// (`COLLATE "C"`) and the other tables' `job_id` do not; the join compares in theirs, so
    /// their indexes on `job_id` serve it.
    fn page_sql(&self, dialect: Dialect) -> String {
        match self.order {
            Order::Key => {
                let key = self.columns[0];
                format!(
                    "SELECT {} FROM {} WHERE {key} > ?1 ORDER BY {key} LIMIT ?2",
                    self.columns.join(", "),
                    self.name
                )
            }
            Order::Whole(by) => format!("SELECT {} FROM {} ORDER BY {by}", self.columns.join(", "), self.name),
            Order::ByJob(then) => {
                let columns: Vec<String> = self.columns.iter().map(|c| format!("t.{c}")).collect();
                let then = then.map(|c| format!(", t.{c}")).unwrap_or_default();
                format!(
                    "SELECT {} FROM {} AS t JOIN jobs AS j ON t.job_id = j.id{} \
                     WHERE j.rowid > ?1 AND j.rowid <= ?2 ORDER BY j.rowid{then}",
                    columns.join(", "),
                    self.name,
                    match dialect {
                        Dialect::Sqlite => "",
                        Dialect::Postgres => " COLLATE \"default\"",
                    }
                )
            }
        }
    }

    /// The `INSERT` of `rows` rows.
    fn insert_sql(&self, rows: usize, dialect: Dialect) -> String {
        let n = self.columns.len();
        let overriding = if self.always && dialect == Dialect::Postgres { " OVERRIDING SYSTEM VALUE" } else { "" };
        let values: Vec<String> = (0..rows)
            .map(|r| {
                let marks: Vec<String> = (1..=n).map(|c| format!("?{}", r * n + c)).collect();
                format!("({})", marks.join(", "))
            })
            .collect();
        format!("INSERT INTO {} ({}){overriding} VALUES {}", self.name, self.columns.join(", "), values.join(", "))
    }

    /// Hands each row to `f`, in key order, a page at a time; how many rows were read.
    fn each_row(
        &self,
        conn: &impl Sql,
        f: &mut dyn FnMut(Vec<Owned>) -> Result<(), CatalogError>,
    ) -> Result<u64, CatalogError> {
        let q = self.page_sql(conn.dialect());
        let n = self.columns.len();
        let read_row = |r: &Row<'_>| (0..n).map(|i| r.get::<Owned>(i)).collect::<Result<Vec<_>, _>>();
        let mut read = 0_u64;
        let mut after = i64::MIN;
        loop {
            let from = after;
            match self.order {
                Order::Key => {
                    let mut got = 0_usize;
                    conn.each("read a page", &q, args![from, PAGE], &mut |r| {
                        let row = read_row(r)?;
                        let Some(Owned::Int(key)) = row.first() else {
                            return Err(CatalogError::Corrupt(format!("{}: a key that is not an integer", self.name)));
                        };
                        after = *key;
                        got += 1;
                        f(row)?;
                        Ok(true)
                    })?;
                    read += got as u64;
                    if got < PAGE {
                        return Ok(read);
                    }
                }
                Order::Whole(_) => {
                    conn.each("read a table", &q, args![], &mut |r| {
                        read += 1;
                        f(read_row(r)?)?;
                        Ok(true)
                    })?;
                    return Ok(read);
                }
                Order::ByJob(_) => {
                    let next: Option<i64> = conn.one("page jobs", NEXT_JOBS, args![from, PAGE], |r| r.get(0))?;
                    let Some(until) = next else { return Ok(read) };
                    conn.each("read a page", &q, args![from, until], &mut |r| {
                        read += 1;
                        f(read_row(r)?)?;
                        Ok(true)
                    })?;
                    after = until;
                }
            }
        }
    }

    /// The row count and the SHA-256 of the rows in key order, each column rendered alike on
    /// both backends. Fails if the rows in key order are not all the rows.
    fn sum(&self, conn: &impl Sql, side: &'static str) -> Result<(u64, String), CatalogError> {
        let rows: u64 =
            conn.one("count rows", &format!("SELECT COUNT(*) FROM {}", self.name), args![], |r| r.get(0))?;
        let mut hash = Sha256::new();
        let reached = self.each_row(conn, &mut |row| {
            for (value, column) in row.iter().zip(self.columns) {
                render(&mut hash, value, self.real.contains(column));
            }
            hash.update(b"\n");
            Ok(())
        })?;
        if reached != rows {
            return Err(CopyError::Unreachable { side, table: self.name, rows, reached }.into());
        }
        Ok((rows, hex(&hash.finalize())))
    }
}

/// One value into the checksum: self-delimiting, and the same whichever backend answered.
fn render(hash: &mut Sha256, value: &Owned, real: bool) {
    match value {
        Owned::Null => hash.update(b"N"),
        #[allow(clippy::cast_precision_loss)]
        Owned::Int(i) if real => hash.update(format!("R{:016x}", (*i as f64).to_bits())),
        Owned::Int(i) => hash.update(format!("I{i};")),
        Owned::Real(f) => hash.update(format!("R{:016x}", f.to_bits())),
        Owned::Text(s) => {
            hash.update(format!("T{}:", s.len()));
            hash.update(s.as_bytes());
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Rows gathered for one multi-row `INSERT`.
struct Batch<'t, T: Sql> {
    tx: &'t T,
    table: &'static Table,
    rows: Vec<Vec<Owned>>,
    bytes: usize,
    per_statement: usize,
}

impl<T: Sql> Batch<'_, T> {
    fn push(&mut self, row: Vec<Owned>) -> Result<(), CatalogError> {
        self.bytes += row.iter().map(Owned::size).sum::<usize>();
        self.rows.push(row);
        if self.rows.len() >= self.per_statement || self.bytes >= MAX_BATCH_BYTES {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), CatalogError> {
        if self.rows.is_empty() {
            return Ok(());
        }
        let q = self.table.insert_sql(self.rows.len(), self.tx.dialect());
        let values: Vec<&dyn Arg> = self.rows.iter().flatten().map(|v| v as &dyn Arg).collect();
        self.tx.execute("copy rows", &q, &values)?;
        self.rows.clear();
        self.bytes = 0;
        Ok(())
    }
}

/// Makes every read of a PostgreSQL copy walk an index. A page is a few hundred rows of tables
/// that may hold millions, and the destination's tables have no statistics yet (their rows were
/// written in this very transaction), so the planner would otherwise guess a hash join over a
/// whole table for each page: measured, a copy of 200,000 jobs spent most of its time so.
/// `SET LOCAL` lasts until the transaction ends.
const INDEX_ONLY_PLANS: [&str; 3] =
    ["SET LOCAL enable_seqscan = off", "SET LOCAL enable_hashjoin = off", "SET LOCAL enable_mergejoin = off"];

fn plan_by_index(conn: &impl Sql) -> Result<(), CatalogError> {
    if conn.dialect() == Dialect::Postgres {
        for q in INDEX_ONLY_PLANS {
            conn.execute("steer the planner", q, args![])?;
        }
    }
    Ok(())
}

/// A read transaction on the source: every page of the copy and of the check sees one snapshot.
/// Ended (it wrote nothing) when dropped.
struct Snapshot<'c>(&'c Conn);

impl<'c> Snapshot<'c> {
    fn begin(conn: &'c Conn) -> Result<Snapshot<'c>, CatalogError> {
        match conn {
            Conn::Lite(c) => c.execute_batch("BEGIN DEFERRED").map_err(sql("begin reading the source"))?,
            Conn::Pg(c) => c
                .client
                .borrow_mut()
                .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                .map_err(pg("begin reading the source"))?,
        }
        Ok(Snapshot(conn))
    }
}

impl Drop for Snapshot<'_> {
    fn drop(&mut self) {
        // It only read: ending it cannot lose anything, so there is nothing to do if it fails.
        match self.0 {
            Conn::Lite(c) => drop(c.execute_batch("ROLLBACK")),
            Conn::Pg(c) => drop(c.client.borrow_mut().batch_execute("ROLLBACK")),
        }
    }
}

/// The schema version this vidkeep writes on `dialect`.
fn current_version(dialect: Dialect) -> i64 {
    match dialect {
        Dialect::Sqlite => SCHEMA_VERSION,
        Dialect::Postgres => PG_SCHEMA_VERSION,
    }
}

/// The least value the outbox's ids must stay above: SQLite's `AUTOINCREMENT` never reuses an
/// id, even of a row since deleted, so the source's counter is carried over.
fn outbox_floor(conn: &impl Sql) -> Result<i64, CatalogError> {
    match conn.dialect() {
        Dialect::Sqlite => Ok(conn
            .first("read the outbox counter", "SELECT seq FROM sqlite_sequence WHERE name = 'outbox'", args![], |r| {
                r.get::<i64>(0)
            })?
            .unwrap_or(0)),
        Dialect::Postgres => Ok(0),
    }
}

/// Moves `table`'s id counter past its largest id (and past `floor`), so new rows get fresh ids.
fn move_counter(tx: &impl Sql, table: &Table, column: &str, floor: i64) -> Result<(), CatalogError> {
    let max: Option<i64> =
        tx.one("read the largest id", &format!("SELECT MAX({column}) FROM {}", table.name), args![], |r| r.get(0))?;
    let last = max.unwrap_or(0).max(floor);
    match tx.dialect() {
        Dialect::Postgres if last > 0 => {
            tx.one(
                "move the id sequence",
                &format!("SELECT setval(pg_get_serial_sequence('{}', '{column}'), ?1)", table.name),
                args![last],
                |r| r.get::<i64>(0),
            )?;
        }
        // SQLite gives a new row the largest rowid + 1; only AUTOINCREMENT keeps a counter.
        Dialect::Sqlite if table.name == "outbox" && last > 0 => {
            let moved = tx.execute(
                "move the outbox counter",
                "UPDATE sqlite_sequence SET seq = MAX(seq, ?1) WHERE name = 'outbox'",
                args![last],
            )?;
            if moved == 0 {
                tx.execute(
                    "move the outbox counter",
                    "INSERT INTO sqlite_sequence (name, seq) VALUES ('outbox', ?1)",
                    args![last],
                )?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// `result`, with a failure of a table's statements named by the table.
fn in_table<T>(table: &'static str, result: Result<T, CatalogError>) -> Result<T, CatalogError> {
    result.map_err(|e| match e {
        e @ CatalogError::Copy(_) => e,
        e => CopyError::Table { table, source: Box::new(e) }.into(),
    })
}

impl Catalog {
    /// Copies every row of this catalogue into `dest`, which must be a new, empty catalogue
    /// (of either backend) at this vidkeep's schema, as must this one. One transaction on
    /// `dest`, taken as the catalogue's writer ([`Begin::Immediate`]); ids and the order of jobs
    /// are kept, and `dest`'s id counters are moved past them. Before the commit, every table's
    /// row count and checksum are compared on both sides; if any differs nothing is written and
    /// the error names the table. This catalogue is only read.
    pub fn copy_into(&self, dest: &mut Catalog) -> Result<CopyReport, CatalogError> {
        for (side, catalog) in [("source", self), ("destination", &*dest)] {
            let (found, current) = (catalog.schema_version()?, current_version(catalog.conn.dialect()));
            if found != current {
                return Err(CopyError::Schema { side, found, current }.into());
            }
        }
        let source = Snapshot::begin(&self.conn)?;
        plan_by_index(&self.conn)?;
        let tx = dest.conn.begin("begin the copy", Begin::Immediate)?;
        plan_by_index(&tx)?;
        for table in TABLES {
            let q = format!("SELECT COUNT(*) FROM {}", table.name);
            let rows: u64 = in_table(table.name, tx.one("count rows", &q, args![], |r| r.get(0)))?;
            if rows > 0 {
                return Err(CopyError::NotEmpty { table: table.name, rows }.into());
            }
        }
        for table in TABLES.iter().filter(|t| !t.by_trigger) {
            let started = std::time::Instant::now();
            let per_statement = (MAX_PARAMS / table.columns.len()).clamp(1, PAGE);
            let mut batch = Batch { tx: &tx, table, rows: Vec::new(), bytes: 0, per_statement };
            let rows = in_table(table.name, table.each_row(&self.conn, &mut |row| batch.push(row)))?;
            in_table(table.name, batch.flush())?;
            if let Some(column) = table.identity {
                let floor = if table.name == "outbox" { in_table(table.name, outbox_floor(&self.conn))? } else { 0 };
                in_table(table.name, move_counter(&tx, table, column, floor))?;
            }
            tracing::info!(table = table.name, rows, ms = started.elapsed().as_millis(), "copied");
        }
        let mut report = CopyReport { tables: Vec::with_capacity(TABLES.len()) };
        for table in TABLES {
            let started = std::time::Instant::now();
            let (source_rows, source_sha256) = in_table(table.name, table.sum(&self.conn, "source"))?;
            let (dest_rows, dest_sha256) = in_table(table.name, table.sum(&tx, "destination"))?;
            if source_rows != dest_rows {
                return Err(CopyError::CountDiffers { table: table.name, source_rows, dest_rows }.into());
            }
            if source_sha256 != dest_sha256 {
                return Err(CopyError::ContentDiffers {
                    table: table.name,
                    rows: source_rows,
                    source_sha256,
                    dest_sha256,
                }
                .into());
            }
            tracing::info!(table = table.name, rows = source_rows, ms = started.elapsed().as_millis(), "checked");
            report.tables.push(TableReport {
                table: table.name,
                rows: source_rows,
                by_trigger: table.by_trigger,
                sha256: source_sha256,
            });
        }
        tx.commit("commit the copy")?;
        drop(source);
        Ok(report)
    }
}

#[cfg(test)]
mod tests;
