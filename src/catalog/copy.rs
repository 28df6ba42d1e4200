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

/// How a table is read in key order.
#[derive(Debug, Clone, Copy)]
enum Order {
    /// By its first column, an integer key (`rowid`, `id`).
    Key,
    /// By its job's rowid, then by this column, if the job has several rows.
    ByJob(Option<&'static str>),
    /// A small table (a row per daemon or per account signal), read whole in this order.
    Whole(&'static str),
}

/// A table the copy moves: its columns (every column of the schema both backends share), how
/// pages are read, and what PostgreSQL needs around explicit ids.
#[derive(Debug)]
struct Table {
    name: &'static str,
    columns: &'static [&'static str],
    order: Order,
    /// Columns of floating-point numbers (rendered as such even if SQLite answers an integer).
    real: &'static [&'static str],
    /// The column whose identity sequence (PostgreSQL) must move past the copied ids.
    identity: Option<&'static str>,
    /// Whether that column is `GENERATED ALWAYS` (an explicit value needs `OVERRIDING SYSTEM VALUE`).
    always: bool,
    /// Kept by triggers on `jobs`: checked, not copied.
    by_trigger: bool,
}

/// The catalogue's tables in an order that satisfies their foreign keys, with the columns of
/// SQLite's schema version 10 and PostgreSQL's version 2 (a test keeps them complete).
const TABLES: &[Table] = &[
    Table {
        name: "jobs",
        columns: &[
            "rowid",
            "id",
            "spec_name",
            "spec_file",
            "spec_place",
            "spec_sha256",
            "spec_format",
            "fingerprint",
            "model",
            "prompt",
            "name",
            "project",
            "tags",
            "request_display",
            "price_fen",
            "state",
            "attempts",
            "next_attempt_at",
            "request_id",
            "task_id",
            "video_url",
            "cover_url",
            "result_json",
            "error_code",
            "error_message",
            "created_at",
            "submitted_at",
            "result_at",
            "archived_at",
            "finished_at",
            "updated_at",
            "take_group",
            "take_no",
            "expires_at",
            "owner",
            "origin",
        ],
        order: Order::Key,
        real: &[],
        identity: Some("rowid"),
        always: true,
        by_trigger: false,
    },
    Table {
        name: "job_requests",
        columns: &["job_id", "body"],
        order: Order::ByJob(None),
        real: &[],
        identity: None,
        always: false,
        by_trigger: false,
    },
    Table {
        name: "submissions",
        columns: &[
            "id",
            "job_id",
            "request_id",
            "started_at",
            "outcome",
            "task_id",
            "error_code",
            "finished_at",
            "price_fen",
        ],
        order: Order::Key,
        real: &[],
        identity: Some("id"),
        always: false,
        by_trigger: false,
    },
    Table {
        name: "assets",
        columns: &[
            "job_id",
            "kind",
            "key",
            "sha256",
            "bytes",
            "content_type",
            "source_url",
            "stored_at",
            "checked_at",
            "check_result",
            "probe_duration_s",
            "probe_fps",
            "probe_width",
            "probe_height",
            "probe_codec",
            "probe_findings",
        ],
        order: Order::ByJob(Some("kind")),
        real: &["probe_duration_s", "probe_fps"],
        identity: None,
        always: false,
        by_trigger: false,
    },
    Table {
        name: "job_events",
        columns: &["id", "job_id", "at", "from_state", "to_state", "note"],
        order: Order::Key,
        real: &[],
        identity: Some("id"),
        always: false,
        by_trigger: false,
    },
    Table {
        name: "rejections",
        columns: &["id", "spec_name", "spec_sha256", "error_code", "error_message", "at"],
        order: Order::Key,
        real: &[],
        identity: Some("id"),
        always: false,
        by_trigger: false,
    },
    Table {
        name: "asset_checks",
        columns: &["id", "job_id", "key", "at", "result", "detail"],
        order: Order::Key,
        real: &[],
        identity: Some("id"),
        always: false,
        by_trigger: false,
    },
    Table {
        name: "job_tags",
        columns: &["job_id", "tag"],
        order: Order::ByJob(Some("tag")),
        real: &[],
        identity: None,
        always: false,
        by_trigger: true,
    },
    Table {
        name: "job_inputs",
        columns: &["job_id", "idx", "sha256", "key", "bytes", "content_type", "url"],
        order: Order::ByJob(Some("idx")),
        real: &[],
        identity: None,
        always: false,
        by_trigger: false,
    },
    Table {
        name: "outbox",
        columns: &[
            "id",
            "sink",
            "event",
            "job_id",
            "body",
            "dedupe",
            "created_at",
            "status",
            "attempts",
            "next_attempt_at",
            "last_error",
            "delivered_at",
        ],
        order: Order::Key,
        real: &[],
        identity: Some("id"),
        always: false,
        by_trigger: false,
    },
    Table {
        name: "daemons",
        columns: &["id", "host", "pid", "started_at", "heartbeat_at", "lease_until"],
        order: Order::Whole("id"),
        real: &[],
        identity: None,
        always: false,
        by_trigger: false,
    },
    Table {
        name: "account_signals",
        columns: &["kind", "model", "value", "code", "reason", "until"],
        order: Order::Whole("kind, model"),
        real: &[],
        identity: None,
        always: false,
        by_trigger: false,
    },
];

/// The largest rowid of the next page of jobs after `?1`, `?2` jobs long (`NULL`: none left).
const NEXT_JOBS: &str =
    "SELECT MAX(r) FROM (SELECT rowid AS r FROM jobs WHERE rowid > ?1 ORDER BY rowid LIMIT ?2) AS page";

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
mod tests {
    use super::*;
    use crate::catalog::testing::{PgScratch, pg_server};
    use crate::catalog::{Asset, AssetKind, CheckResult, Input, JobFilter, NewJob, NotifySetup, Rejection, SpecJobs};
    use crate::domain::{Change, JobError, JobState, SpecPlace};
    use crate::probe::{Figures, Probe};

    fn asset(job_id: &str, kind: AssetKind, probe: Option<Probe>) -> Asset {
        Asset {
            job_id: job_id.to_owned(),
            kind,
            sha256: crate::domain::sha256_hex(format!("{job_id}/{}", kind.as_str()).as_bytes()),
            bytes: 1_234_567,
            key: format!("{job_id}/{}", kind.as_str()),
            content_type: if kind == AssetKind::Video { "video/mp4" } else { "image/jpeg" }.to_owned(),
            source_url: format!("https://cdn.example/{job_id}/{}", kind.as_str()),
            probe,
        }
    }

    /// A catalogue as a few days of use leave it: archived jobs with assets, probes and checks,
    /// takes, failed and uncertain jobs, refused submissions, a rejected spec, input images,
    /// Chinese prompts, tags and the outbox. Returns the job ids.
    fn fill(c: &mut Catalog) -> Vec<String> {
        c.set_notify(NotifySetup { sinks: vec!["webhook", "command"], ui_base: Some("https://vk.example".into()) });
        let bodies = [
            r#"{"model":"viduq1-text","prompt":"a lighthouse at dusk","vidkeep":{"project":"coast","tags":["sea","night"]}}"#,
            r#"{"model":"viduq1-text","prompt":"海边的灯塔，黄昏","vidkeep":{"name":"灯塔","tags":["海"]}}"#,
            r#"{"model":"cogvideox-3","prompt":"a fox in the snow","vidkeep":{"project":"Forest","tags":["sea"]}}"#,
            r#"{"model":"viduq1-text","prompt":"an owl, 'quoted' and \"double\""}"#,
            r#"{"model":"viduq1-text","prompt":"a hare"}"#,
        ];
        let mut specs: Vec<SpecJobs> = bodies
            .iter()
            .enumerate()
            .map(|(n, body)| SpecJobs::for_test(&uuid::Uuid::now_v7().to_string(), &format!("spec-{n}.json"), body))
            .collect();
        // One spec with two takes.
        let group = uuid::Uuid::now_v7().to_string();
        let takes = [1, 2]
            .iter()
            .map(|&n| {
                let id = if n == 1 { group.clone() } else { uuid::Uuid::now_v7().to_string() };
                let mut job =
                    NewJob::for_test(&id, "takes.json", r#"{"model":"viduq1-text","prompt":"a kite, twice"}"#);
                job.take = Some((group.clone(), n));
                job
            })
            .collect();
        specs.push(SpecJobs::new(takes, SpecPlace::Processing, "takes.json".into(), false));
        c.record_specs(&specs).expect("record");
        let ids: Vec<String> = c.jobs(&JobFilter::default()).expect("jobs").into_iter().map(|j| j.id).collect();
        assert_eq!(ids.len(), 7);

        // Archived, with a probed video, a cover, checks and input images.
        let archive = |c: &mut Catalog, id: &str, n: usize| {
            c.transition(id, JobState::Queued, &Change::Submitting { request_id: format!("vk-{id}-1") })
                .expect("submitting");
            c.transition(id, JobState::Submitting, &Change::Submitted { task_id: format!("task-{n}") })
                .expect("submitted");
            let ready = Change::ResultReady {
                video_url: format!("https://cdn.example/{id}.mp4"),
                cover_url: Some(format!("https://cdn.example/{id}.jpg")),
                result_json: r#"{"task_status":"SUCCESS"}"#.into(),
                expires_at: None,
            };
            c.transition(id, JobState::Submitted, &ready).expect("ready");
            let figures =
                Figures { duration_s: 5.041_666, fps: 23.976, width: 1920, height: 1080, codec: "avc1".into() };
            let probe = Probe { figures: Some(figures), findings: Vec::new() };
            c.record_asset(&asset(id, AssetKind::Video, Some(probe))).expect("video");
            c.record_asset(&asset(id, AssetKind::Cover, None)).expect("cover");
            c.transition(id, JobState::Downloading, &Change::Archived).expect("archived");
        };
        archive(c, &ids[0], 0);
        archive(c, &ids[1], 1);
        archive(c, &ids[5], 5);
        let video = c.assets(&ids[0]).expect("assets").remove(0);
        c.record_check(&video, CheckResult::Ok, None).expect("check");
        c.record_check(&video, CheckResult::Mismatch, Some("sha256 0000 instead")).expect("check");
        let inputs = [
            Input {
                index: 0,
                sha256: Some("ab".repeat(32)),
                key: Some(format!("inputs/{}.png", "ab".repeat(32))),
                bytes: 2048,
                content_type: "image/png".into(),
                url: None,
            },
            Input {
                index: 1,
                sha256: None,
                key: None,
                bytes: 0,
                content_type: String::new(),
                url: Some("https://img.example/a.png".into()),
            },
        ];
        c.record_inputs(&ids[1], &inputs).expect("inputs");

        // Refused once, then accepted and failed; answer lost then abandoned; one still queued.
        let id = &ids[2];
        c.transition(id, JobState::Queued, &Change::Submitting { request_id: format!("vk-{id}-1") }).expect("s");
        let busy = JobError::new("platform-1302", "too many tasks");
        c.transition(id, JobState::Submitting, &Change::Requeue { next_attempt_at: 5, error: busy }).expect("requeue");
        c.transition(id, JobState::Queued, &Change::Submitting { request_id: format!("vk-{id}-2") }).expect("s");
        c.transition(id, JobState::Submitting, &Change::Submitted { task_id: "task-2".into() }).expect("submitted");
        let failed = Change::Failed(JobError::new("task-failed", "the platform said FAIL"));
        c.transition(id, JobState::Submitted, &failed).expect("failed");
        let id = &ids[3];
        c.transition(id, JobState::Queued, &Change::Submitting { request_id: format!("vk-{id}-1") }).expect("s");
        c.transition(id, JobState::Submitting, &Change::Uncertain(JobError::new("submit-answer-lost", "lost")))
            .expect("uncertain");
        c.transition(id, JobState::Uncertain, &Change::Failed(JobError::new("abandoned", "given up"))).expect("fail");
        c.record_rejection(&Rejection {
            spec_name: "bad.json".into(),
            spec_sha256: "cd".repeat(32),
            error_code: "invalid-spec".into(),
            error_message: "duration: 8 is not one of 4, 5".into(),
            at: 1_700_000_000_000,
        })
        .expect("rejection");
        let outbox = c.outbox_of(&ids[0]).expect("outbox");
        c.outbox_delivered(outbox[0].0.id, 7).expect("delivered");
        c.outbox_failed(outbox[1].0.id, "HTTP 500", Some(99)).expect("failed");
        ids
    }

    /// Everything the catalogue's own queries answer about `c`, as text to compare.
    fn view(c: &Catalog) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        let all = c.jobs(&JobFilter::default()).expect("jobs");
        let newest = c.jobs(&JobFilter { newest_first: true, ..JobFilter::default() }).expect("jobs");
        writeln!(out, "{all:?}\n{:?}", newest.iter().map(|j| &j.id).collect::<Vec<_>>()).ok();
        for job in &all {
            let assets = c.assets(&job.id).expect("assets");
            for a in &assets {
                writeln!(out, "{:?}", c.checks(&a.key).expect("checks")).ok();
            }
            writeln!(
                out,
                "{assets:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}",
                c.events(&job.id).expect("events"),
                c.job_money(&job.id).expect("money"),
                c.outbox_of(&job.id).expect("outbox"),
                c.inputs(&job.id).expect("inputs"),
                c.request_body(&job.id).expect("request"),
            )
            .ok();
        }
        let ids = |filter: JobFilter| -> Vec<String> {
            c.jobs(&filter).expect("filtered").into_iter().map(|j| j.id).collect()
        };
        for word in ["lighthouse", "灯塔", "fox", "FOX", "kite twice"] {
            writeln!(out, "{word}: {:?}", ids(JobFilter { text: Some(word.into()), ..JobFilter::default() })).ok();
        }
        for tag in ["sea", "海", "none"] {
            writeln!(out, "#{tag}: {:?}", ids(JobFilter { tag: Some(tag.into()), ..JobFilter::default() })).ok();
        }
        writeln!(out, "{:?}", ids(JobFilter { project: Some("forest".into()), ..JobFilter::default() })).ok();
        writeln!(
            out,
            "{:?}\n{:?}\n{:?}\n{:?}",
            c.ledger(0, i64::MAX).expect("ledger"),
            c.rejections().expect("rejections"),
            c.facets().expect("facets"),
            c.outbox_counts().expect("outbox counts"),
        )
        .ok();
        out
    }

    /// The copied catalogue answers like the source, refuses a second copy, and gives new rows
    /// fresh ids.
    fn copies_checked(dest: &mut Catalog) {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut source = Catalog::open(&dir.path().join("source.sqlite")).expect("open");
        let ids = fill(&mut source);
        let report = source.copy_into(dest).expect("copy");
        assert_eq!(report.rows("jobs"), Some(7));
        assert_eq!(report.rows("job_tags"), Some(4), "sea twice, night and 海");
        assert_eq!(report.rows("assets"), Some(6));
        assert_eq!(report.rows("job_inputs"), Some(2));
        assert_eq!(report.rows("asset_checks"), Some(2));
        assert_eq!(report.rows("rejections"), Some(1));
        assert_eq!(report.rows("submissions"), Some(6));
        assert!(report.rows("outbox").is_some_and(|n| n >= 10), "{report:?}");
        assert_eq!(report.tables.len(), TABLES.len());
        assert_eq!(view(&source), view(dest));
        let count = |filter: JobFilter| dest.jobs(&filter).expect("jobs").len();
        assert_eq!(
            count(JobFilter { text: Some("灯塔".into()), ..JobFilter::default() }),
            1,
            "search works on the copy"
        );
        assert_eq!(count(JobFilter { tag: Some("sea".into()), ..JobFilter::default() }), 2, "tags work on the copy");

        let again = source.copy_into(dest);
        assert!(matches!(again, Err(CatalogError::Copy(CopyError::NotEmpty { table: "jobs", rows: 7 }))), "{again:?}");
        assert_eq!(view(&source), view(dest), "a refused copy writes nothing");

        // New rows in the destination get ids past the copied ones.
        let new = uuid::Uuid::now_v7().to_string();
        let body = r#"{"model":"viduq1-text","prompt":"a new job after the move"}"#;
        dest.record_specs(&[SpecJobs::for_test(&new, "new.json", body)]).expect("a new job");
        dest.set_notify(NotifySetup { sinks: vec!["webhook"], ui_base: None });
        dest.transition(&new, JobState::Queued, &Change::Submitting { request_id: "vk-new-1".into() })
            .expect("a new submission");
        dest.transition(&new, JobState::Submitting, &Change::Failed(JobError::new("x", "y"))).expect("a new event");
        dest.record_rejection(&Rejection {
            spec_name: "worse.json".into(),
            spec_sha256: String::new(),
            error_code: "invalid-spec".into(),
            error_message: "no".into(),
            at: 1,
        })
        .expect("a new rejection");
        let video = dest.assets(&ids[1]).expect("assets").remove(0);
        dest.record_check(&video, CheckResult::Ok, None).expect("a new check");
        let listed: Vec<String> = dest.jobs(&JobFilter::default()).expect("jobs").into_iter().map(|j| j.id).collect();
        assert_eq!(listed.last(), Some(&new), "the new job comes after the copied ones");
        let max = |c: &Catalog, q: &str| -> i64 { c.conn.one("test", q, args![], |r| r.get(0)).expect("max") };
        for (table, key) in [
            ("jobs", "rowid"),
            ("submissions", "id"),
            ("job_events", "id"),
            ("rejections", "id"),
            ("asset_checks", "id"),
            ("outbox", "id"),
        ] {
            let q = format!("SELECT MAX({key}) FROM {table}");
            assert!(max(dest, &q) > max(&source, &q), "{table}: a new row gets a fresh id");
        }
        assert_eq!(dest.outbox_of(&new).expect("outbox").len(), 1);
    }

    #[test]
    fn sqlite_copies_into_sqlite_checked() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut dest = Catalog::open(&dir.path().join("dest.sqlite")).expect("open");
        copies_checked(&mut dest);
    }

    #[test]
    fn sqlite_copies_into_postgres_checked() {
        let Some(server) = pg_server() else {
            eprintln!("VIDKEEP_TEST_PG is not set: the copy into PostgreSQL was not tested");
            return;
        };
        let scratch = PgScratch::new(&server);
        let mut dest = scratch.catalog();
        copies_checked(&mut dest);
    }

    #[test]
    fn an_old_source_schema_is_refused_and_nothing_is_written() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut source = Catalog::open(&dir.path().join("source.sqlite")).expect("open");
        fill(&mut source);
        source.lite().pragma_update(None, "user_version", SCHEMA_VERSION - 1).expect("pretend an old schema");
        let mut dest = Catalog::open(&dir.path().join("dest.sqlite")).expect("open");
        let refused = source.copy_into(&mut dest);
        assert!(matches!(refused, Err(CatalogError::Copy(CopyError::Schema { side: "source", .. }))), "{refused:?}");
        assert!(dest.jobs(&JobFilter::default()).expect("jobs").is_empty());
    }

    #[test]
    fn a_destination_that_reads_back_differently_rolls_back_and_names_the_table() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut source = Catalog::open(&dir.path().join("source.sqlite")).expect("open");
        fill(&mut source);
        let mut dest = Catalog::open(&dir.path().join("dest.sqlite")).expect("open");
        // A destination that changes what it is given: one value, then one row too few.
        dest.lite()
            .execute_batch(
                "CREATE TEMP TRIGGER bend AFTER INSERT ON main.assets BEGIN \
                 UPDATE assets SET probe_fps = 25.0 WHERE job_id = new.job_id AND kind = 'video'; END;",
            )
            .expect("trigger");
        let differs = source.copy_into(&mut dest);
        assert!(
            matches!(&differs, Err(CatalogError::Copy(CopyError::ContentDiffers { table: "assets", rows: 6, .. }))),
            "{differs:?}"
        );
        assert!(dest.jobs(&JobFilter::default()).expect("jobs").is_empty(), "rolled back");
        dest.lite()
            .execute_batch(
                "DROP TRIGGER temp.bend; CREATE TEMP TRIGGER lose AFTER INSERT ON main.job_inputs BEGIN \
                 DELETE FROM job_inputs WHERE job_id = new.job_id AND idx = 1; END;",
            )
            .expect("trigger");
        let differs = source.copy_into(&mut dest);
        assert!(
            matches!(
                &differs,
                Err(CatalogError::Copy(CopyError::CountDiffers { table: "job_inputs", source_rows: 2, dest_rows: 1 }))
            ),
            "{differs:?}"
        );
        let said = differs.map(|_| ()).expect_err("refused").to_string();
        assert!(said.contains("job_inputs") && said.contains("nothing was written"), "{said}");
        assert!(dest.jobs(&JobFilter::default()).expect("jobs").is_empty(), "rolled back");
    }

    #[test]
    fn the_checksum_sees_a_changed_value() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut source = Catalog::open(&dir.path().join("source.sqlite")).expect("open");
        let ids = fill(&mut source);
        let mut dest = Catalog::open(&dir.path().join("dest.sqlite")).expect("open");
        source.copy_into(&mut dest).expect("copy");
        let [jobs, assets] = ["jobs", "assets"].map(|name| TABLES.iter().find(|t| t.name == name).expect("table"));
        assert_eq!(jobs.sum(&source.conn, "source").expect("sum"), jobs.sum(&dest.conn, "destination").expect("sum"));
        dest.lite().execute("UPDATE jobs SET prompt = prompt || ' ' WHERE id = ?1", [&ids[3]]).expect("change");
        dest.lite().execute("UPDATE assets SET probe_fps = 23.976000001 WHERE job_id = ?1", [&ids[0]]).expect("change");
        for table in [jobs, assets] {
            let (source_rows, source_sum) = table.sum(&source.conn, "source").expect("sum");
            let (dest_rows, dest_sum) = table.sum(&dest.conn, "destination").expect("sum");
            assert_eq!(source_rows, dest_rows);
            assert_ne!(source_sum, dest_sum, "{}: one changed value changes the checksum", table.name);
        }
    }

    #[test]
    fn the_copied_columns_are_every_column_of_both_schemas() {
        crate::catalog::testing::each_backend(|c, backend| {
            for table in TABLES {
                let q = match c.conn.dialect() {
                    Dialect::Sqlite => "SELECT name FROM pragma_table_info(?1) ORDER BY name",
                    Dialect::Postgres => {
                        "SELECT CAST(column_name AS TEXT) FROM information_schema.columns \
                         WHERE table_schema = current_schema() AND table_name = ?1 ORDER BY 1"
                    }
                };
                let mut found: Vec<String> =
                    c.conn.rows("columns", q, args![table.name], |r| r.get(0)).expect("columns");
                let mut listed: Vec<String> = table.columns.iter().map(|c| (*c).to_owned()).collect();
                if c.conn.dialect() == Dialect::Sqlite && table.name == "jobs" {
                    found.push("rowid".into());
                }
                found.sort();
                listed.sort();
                assert_eq!(found, listed, "{backend}: the columns of {}", table.name);
            }
        });
    }
}
