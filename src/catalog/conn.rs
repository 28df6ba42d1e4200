//! One way to run the catalogue's SQL on either backend: SQLite through rusqlite, PostgreSQL
//! through the blocking `postgres` client. Both are blocking and used from one thread at a time
//! (the [`super::Db`] handle runs them on the blocking pool), so one body of catalogue logic (the
//! state machine, the ledger, the budgets, the outbox) serves both, and only the statements that
//! cannot be written alike branch on [`Dialect`].
//!
//! Statements are written once, in the common subset, with `?N` (or bare `?`) placeholders;
//! for PostgreSQL they become `$N` and an `INDEXED BY` hint (SQLite's) is dropped. Values are
//! bound and read through two small neutral types, [`Value`] and [`Cell`], so a column read as
//! `i64` works whether the engine answers `INTEGER`, `int4` or `int8`.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashMap;

use postgres::types::ToSql;

use super::CatalogError;

mod values;

pub(crate) use values::{Arg, Cell, FromCell, Param, Row, Value};
use values::{LiteArg, PgArg};

/// Which SQL a connection speaks, for the few statements written twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    /// SQLite (the default backend).
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

/// The placeholders' values of a statement, in order: `args![a, b, c]`.
macro_rules! args {
    ($($a:expr),* $(,)?) => {
        &[$(&$a as &dyn $crate::catalog::conn::Arg),*][..]
    };
}
pub(crate) use args;

/// A statement in the PostgreSQL form: `?N` and bare `?` become `$N`, outside quotes, and an
/// `INDEXED BY name` hint (SQLite's) is dropped.
pub(crate) fn pg_sql(q: &str) -> Cow<'_, str> {
    if !q.contains('?') && !q.contains("INDEXED BY") {
        return Cow::Borrowed(q);
    }
    let mut out = String::with_capacity(q.len() + 8);
    let mut bare = 0;
    let mut quote: Option<char> = None;
    let mut chars = q.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        if let Some(open) = quote {
            out.push(c);
            if c == open {
                quote = None;
            }
            continue;
        }
        match c {
            '\'' | '"' => {
                quote = Some(c);
                out.push(c);
            }
            '?' => {
                out.push('$');
                let mut digits = false;
                while let Some(&(_, d)) = chars.peek().filter(|(_, d)| d.is_ascii_digit()) {
                    out.push(d);
                    digits = true;
                    chars.next();
                }
                if !digits {
                    bare += 1;
                    out.push_str(&bare.to_string());
                }
            }
            'I' if q[at..].starts_with("INDEXED BY ") => {
                // Skip the hint and the index name after it.
                let rest = &q[at + "INDEXED BY ".len()..];
                let name_len = rest.find(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '_')).unwrap_or(rest.len());
                let space = usize::from(rest[name_len..].starts_with(' '));
                let skip = "INDEXED BY ".len() + name_len + space;
                while chars.peek().is_some_and(|&(i, _)| i < at + skip) {
                    chars.next();
                }
            }
            _ => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Statements prepared on a PostgreSQL connection, by their text: a catalogue runs the same few
/// dozen statements over and over, and preparing each anew would cost a round trip.
#[derive(Debug, Default)]
pub(crate) struct Prepared(HashMap<String, postgres::Statement>);

/// More distinct statements than this (the listings' are built from filters) empties the cache.
const PREPARED_MAX: usize = 512;

impl Prepared {
    fn get(
        &mut self,
        client: &mut impl postgres::GenericClient,
        q: &str,
        about: &'static str,
    ) -> Result<postgres::Statement, CatalogError> {
        if let Some(st) = self.0.get(q) {
            return Ok(st.clone());
        }
        let st = client.prepare(&pg_sql(q)).map_err(pg(about))?;
        if self.0.len() >= PREPARED_MAX {
            self.0.clear();
        }
        self.0.insert(q.to_owned(), st.clone());
        Ok(st)
    }
}

/// Maps a PostgreSQL error to the catalogue's.
pub(crate) fn pg(about: &'static str) -> impl FnOnce(postgres::Error) -> CatalogError {
    move |source| CatalogError::Postgres { about, source }
}

fn lite(about: &'static str) -> impl FnOnce(rusqlite::Error) -> CatalogError {
    super::sql(about)
}

/// Runs statements: a connection (each statement its own transaction) or a transaction.
pub(crate) trait Sql {
    /// The SQL this runs.
    fn dialect(&self) -> Dialect;

    /// Runs a statement; how many rows it changed.
    fn execute(&self, about: &'static str, q: &str, args: &[&dyn Arg]) -> Result<usize, CatalogError>;

    /// Runs a query, handing each row to `f` until it answers `false`.
    fn each(
        &self,
        about: &'static str,
        q: &str,
        args: &[&dyn Arg],
        f: &mut dyn FnMut(&Row<'_>) -> Result<bool, CatalogError>,
    ) -> Result<(), CatalogError>;

    /// Every row of a query, each read by `f`.
    fn rows<T>(
        &self,
        about: &'static str,
        q: &str,
        args: &[&dyn Arg],
        mut f: impl FnMut(&Row<'_>) -> Result<T, CatalogError>,
    ) -> Result<Vec<T>, CatalogError> {
        let mut out = Vec::new();
        self.each(about, q, args, &mut |r| {
            out.push(f(r)?);
            Ok(true)
        })?;
        Ok(out)
    }

    /// The first row of a query, if any, read by `f`.
    fn first<T>(
        &self,
        about: &'static str,
        q: &str,
        args: &[&dyn Arg],
        f: impl FnOnce(&Row<'_>) -> Result<T, CatalogError>,
    ) -> Result<Option<T>, CatalogError> {
        let mut f = Some(f);
        let mut out = None;
        self.each(about, q, args, &mut |r| {
            if let Some(f) = f.take() {
                out = Some(f(r)?);
            }
            Ok(false)
        })?;
        Ok(out)
    }

    /// The first row of a query, which must have one.
    fn one<T>(
        &self,
        about: &'static str,
        q: &str,
        args: &[&dyn Arg],
        f: impl FnOnce(&Row<'_>) -> Result<T, CatalogError>,
    ) -> Result<T, CatalogError> {
        self.first(about, q, args, f)?.ok_or(CatalogError::NoRow(about))
    }
}

fn lite_each(
    conn: &rusqlite::Connection,
    about: &'static str,
    q: &str,
    args: &[&dyn Arg],
    f: &mut dyn FnMut(&Row<'_>) -> Result<bool, CatalogError>,
) -> Result<(), CatalogError> {
    let mut st = conn.prepare_cached(q).map_err(lite(about))?;
    let mut rows = st.query(rusqlite::params_from_iter(args.iter().map(|a| LiteArg(*a)))).map_err(lite(about))?;
    while let Some(r) = rows.next().map_err(lite(about))? {
        if !f(&Row::Lite(r))? {
            break;
        }
    }
    Ok(())
}

fn lite_execute(
    conn: &rusqlite::Connection,
    about: &'static str,
    q: &str,
    args: &[&dyn Arg],
) -> Result<usize, CatalogError> {
    let mut st = conn.prepare_cached(q).map_err(lite(about))?;
    st.execute(rusqlite::params_from_iter(args.iter().map(|a| LiteArg(*a)))).map_err(lite(about))
}

fn pg_each(
    client: &mut impl postgres::GenericClient,
    prepared: &mut Prepared,
    about: &'static str,
    q: &str,
    args: &[&dyn Arg],
    f: &mut dyn FnMut(&Row<'_>) -> Result<bool, CatalogError>,
) -> Result<(), CatalogError> {
    let st = prepared.get(client, q, about)?;
    let bound: Vec<PgArg<'_>> = args.iter().map(|a| PgArg(a.value())).collect();
    let refs: Vec<&(dyn ToSql + Sync)> = bound.iter().map(|a| a as &(dyn ToSql + Sync)).collect();
    for r in client.query(&st, &refs).map_err(pg(about))? {
        if !f(&Row::Pg(&r))? {
            break;
        }
    }
    Ok(())
}

fn pg_execute(
    client: &mut impl postgres::GenericClient,
    prepared: &mut Prepared,
    about: &'static str,
    q: &str,
    args: &[&dyn Arg],
) -> Result<usize, CatalogError> {
    let st = prepared.get(client, q, about)?;
    let bound: Vec<PgArg<'_>> = args.iter().map(|a| PgArg(a.value())).collect();
    let refs: Vec<&(dyn ToSql + Sync)> = bound.iter().map(|a| a as &(dyn ToSql + Sync)).collect();
    let n = client.execute(&st, &refs).map_err(pg(about))?;
    Ok(usize::try_from(n).unwrap_or(usize::MAX))
}

/// An open connection to either engine.
pub(crate) enum Conn {
    /// SQLite.
    Lite(rusqlite::Connection),
    /// PostgreSQL.
    Pg(Box<PgConn>),
}

/// A PostgreSQL connection with its prepared statements.
pub(crate) struct PgConn {
    /// The client (`RefCell`: reads take `&self`, the client wants `&mut`).
    pub(crate) client: RefCell<Closing>,
    /// Statements prepared on it.
    pub(crate) prepared: RefCell<Prepared>,
}

impl PgConn {
    /// Wraps `client`.
    pub(crate) fn conn(client: postgres::Client) -> Conn {
        Conn::Pg(Box::new(PgConn { client: Closing(Some(client)).into(), prepared: Prepared::default().into() }))
    }
}

/// A blocking client that may be dropped anywhere. Closing it blocks on its own runtime, which
/// tokio forbids on an async worker (where the last handle on a catalogue may well be dropped:
/// a finished request of the UI, a stopping daemon), so there it is closed on a thread of its own.
pub(crate) struct Closing(Option<postgres::Client>);

impl std::ops::Deref for Closing {
    type Target = postgres::Client;

    fn deref(&self) -> &postgres::Client {
        self.0.as_ref().unwrap_or_else(|| unreachable!("a client is only taken when dropped"))
    }
}

impl std::ops::DerefMut for Closing {
    fn deref_mut(&mut self) -> &mut postgres::Client {
        self.0.as_mut().unwrap_or_else(|| unreachable!("a client is only taken when dropped"))
    }
}

impl Drop for Closing {
    fn drop(&mut self) {
        let Some(client) = self.0.take() else { return };
        if tokio::runtime::Handle::try_current().is_ok() {
            let _ = std::thread::Builder::new().name("vidkeep-pg-close".into()).spawn(move || drop(client));
        } else {
            drop(client);
        }
    }
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Conn::Lite(c) => f.debug_tuple("Lite").field(c).finish(),
            Conn::Pg(_) => f.write_str("Pg"),
        }
    }
}

/// How a transaction begins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Begin {
    /// Takes the write lock at its first write.
    Deferred,
    /// Holds the catalogue's one write lock from the start, so what it reads stays true until it
    /// commits: SQLite's `IMMEDIATE`; on PostgreSQL, a transaction-scoped advisory lock that
    /// every daemon on the database takes for the same decisions (fingerprints, budgets).
    Immediate,
}

/// The key of the advisory lock [`Begin::Immediate`] takes on PostgreSQL ("vidkeep" in ASCII).
pub(crate) const WRITE_LOCK: i64 = 0x0076_6964_6b65_6570;

impl Conn {
    /// Begins a transaction.
    pub(crate) fn begin(&mut self, about: &'static str, how: Begin) -> Result<Tx<'_>, CatalogError> {
        match self {
            Conn::Lite(c) => {
                let behaviour = match how {
                    Begin::Deferred => rusqlite::TransactionBehavior::Deferred,
                    Begin::Immediate => rusqlite::TransactionBehavior::Immediate,
                };
                Ok(Tx::Lite(c.transaction_with_behavior(behaviour).map_err(lite(about))?))
            }
            Conn::Pg(pg_conn) => {
                let PgConn { client, prepared } = &mut **pg_conn;
                let mut tx = client.get_mut().transaction().map_err(pg(about))?;
                if how == Begin::Immediate {
                    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&WRITE_LOCK]).map_err(pg(about))?;
                }
                Ok(Tx::Pg { tx: RefCell::new(tx), prepared })
            }
        }
    }

    /// The SQLite connection, for what only SQLite has (backup, pragmas).
    pub(crate) fn as_lite(&self) -> Option<&rusqlite::Connection> {
        match self {
            Conn::Lite(c) => Some(c),
            Conn::Pg(_) => None,
        }
    }
}

impl Sql for Conn {
    fn dialect(&self) -> Dialect {
        match self {
            Conn::Lite(_) => Dialect::Sqlite,
            Conn::Pg(_) => Dialect::Postgres,
        }
    }

    fn execute(&self, about: &'static str, q: &str, args: &[&dyn Arg]) -> Result<usize, CatalogError> {
        match self {
            Conn::Lite(c) => lite_execute(c, about, q, args),
            Conn::Pg(c) => pg_execute(&mut **c.client.borrow_mut(), &mut c.prepared.borrow_mut(), about, q, args),
        }
    }

    fn each(
        &self,
        about: &'static str,
        q: &str,
        args: &[&dyn Arg],
        f: &mut dyn FnMut(&Row<'_>) -> Result<bool, CatalogError>,
    ) -> Result<(), CatalogError> {
        match self {
            Conn::Lite(c) => lite_each(c, about, q, args, f),
            Conn::Pg(c) => pg_each(&mut **c.client.borrow_mut(), &mut c.prepared.borrow_mut(), about, q, args, f),
        }
    }
}

/// An open transaction on either engine; dropped without [`Tx::commit`], it rolls back.
pub(crate) enum Tx<'c> {
    /// SQLite.
    Lite(rusqlite::Transaction<'c>),
    /// PostgreSQL.
    Pg {
        /// The transaction.
        tx: RefCell<postgres::Transaction<'c>>,
        /// The connection's prepared statements.
        prepared: &'c RefCell<Prepared>,
    },
}

impl Tx<'_> {
    /// Commits.
    pub(crate) fn commit(self, about: &'static str) -> Result<(), CatalogError> {
        match self {
            Tx::Lite(tx) => tx.commit().map_err(lite(about)),
            Tx::Pg { tx, .. } => tx.into_inner().commit().map_err(pg(about)),
        }
    }
}

impl Sql for Tx<'_> {
    fn dialect(&self) -> Dialect {
        match self {
            Tx::Lite(_) => Dialect::Sqlite,
            Tx::Pg { .. } => Dialect::Postgres,
        }
    }

    fn execute(&self, about: &'static str, q: &str, args: &[&dyn Arg]) -> Result<usize, CatalogError> {
        match self {
            Tx::Lite(tx) => lite_execute(tx, about, q, args),
            Tx::Pg { tx, prepared } => pg_execute(&mut *tx.borrow_mut(), &mut prepared.borrow_mut(), about, q, args),
        }
    }

    fn each(
        &self,
        about: &'static str,
        q: &str,
        args: &[&dyn Arg],
        f: &mut dyn FnMut(&Row<'_>) -> Result<bool, CatalogError>,
    ) -> Result<(), CatalogError> {
        match self {
            Tx::Lite(tx) => lite_each(tx, about, q, args, f),
            Tx::Pg { tx, prepared } => pg_each(&mut *tx.borrow_mut(), &mut prepared.borrow_mut(), about, q, args, f),
        }
    }
}

/// `FOR UPDATE` where the engine has it: a read that a compare-and-set decides on locks its row
/// on PostgreSQL (another daemon's transaction waits); SQLite's write lock already serialises.
pub(crate) fn for_update(d: Dialect) -> &'static str {
    match d {
        Dialect::Sqlite => "",
        Dialect::Postgres => " FOR UPDATE",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_and_hints_become_postgres_outside_quotes() {
        assert_eq!(pg_sql("SELECT 1"), "SELECT 1");
        assert_eq!(pg_sql("SELECT a FROM t WHERE a = ?1 AND b = ?12"), "SELECT a FROM t WHERE a = $1 AND b = $12");
        assert_eq!(pg_sql("a = ? AND b = ? LIMIT ?"), "a = $1 AND b = $2 LIMIT $3");
        assert_eq!(pg_sql("x = '?' AND y = ?2 AND z = \"q?\""), "x = '?' AND y = $2 AND z = \"q?\"");
        assert_eq!(pg_sql("x = 'it''s ?' AND y = ?1"), "x = 'it''s ?' AND y = $1");
        assert_eq!(
            pg_sql("SELECT id FROM jobs INDEXED BY jobs_by_state WHERE state = ?1"),
            "SELECT id FROM jobs WHERE state = $1"
        );
    }

    #[test]
    fn cells_read_as_what_either_engine_answers() {
        assert_eq!(i64::from_cell(Cell::Int(7)), Ok(7));
        assert_eq!(i64::from_cell(Cell::Bool(true)), Ok(1));
        assert_eq!(bool::from_cell(Cell::Int(0)), Ok(false));
        assert_eq!(Option::<String>::from_cell(Cell::Null), Ok(None));
        assert_eq!(u32::from_cell(Cell::Int(1920)), Ok(1920));
        assert!(u32::from_cell(Cell::Int(-1)).is_err());
        assert!(String::from_cell(Cell::Int(1)).is_err());
        assert_eq!(f64::from_cell(Cell::Int(5)), Ok(5.0));
    }
}
