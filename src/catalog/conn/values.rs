//! The values a catalogue statement binds and reads, neutral between the engines: [`Value`] and
//! [`Arg`] going in (bound for SQLite by [`LiteArg`], for PostgreSQL by [`PgArg`], converted to
//! the type the server inferred), [`Cell`] and [`FromCell`] coming out of a [`Row`] of either.

use bytes::BufMut as _;
use postgres::types::{FromSql, IsNull, ToSql, Type};

use crate::catalog::CatalogError;

/// A value bound to a statement's placeholder.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Value<'a> {
    /// SQL NULL.
    Null,
    /// An integer.
    Int(i64),
    /// A floating-point number.
    Real(f64),
    /// Text.
    Text(&'a str),
}

/// Something that can be bound to a placeholder.
pub(crate) trait Arg {
    /// The value to bind.
    fn value(&self) -> Value<'_>;
}

macro_rules! int_arg {
    ($($t:ty),*) => {$(
        impl Arg for $t {
            fn value(&self) -> Value<'_> {
                Value::Int(i64::try_from(*self).unwrap_or(i64::MAX))
            }
        }
    )*};
}
int_arg!(i64, i32, u32, u64, usize);

impl Arg for f64 {
    fn value(&self) -> Value<'_> {
        Value::Real(*self)
    }
}

impl Arg for str {
    fn value(&self) -> Value<'_> {
        Value::Text(self)
    }
}

impl Arg for String {
    fn value(&self) -> Value<'_> {
        Value::Text(self)
    }
}

impl<T: Arg + ?Sized> Arg for &T {
    fn value(&self) -> Value<'_> {
        (**self).value()
    }
}

impl<T: Arg> Arg for Option<T> {
    fn value(&self) -> Value<'_> {
        self.as_ref().map_or(Value::Null, Arg::value)
    }
}

/// An owned value, for statements whose placeholders are collected as they are written.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Param {
    /// An integer.
    Int(i64),
    /// Text.
    Text(String),
}

impl Arg for Param {
    fn value(&self) -> Value<'_> {
        match self {
            Param::Int(i) => Value::Int(*i),
            Param::Text(s) => Value::Text(s),
        }
    }
}

/// A column's value as either engine answers it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Cell<'a> {
    /// SQL NULL.
    Null,
    /// An integer.
    Int(i64),
    /// A floating-point number.
    Real(f64),
    /// Text.
    Text(&'a str),
    /// A boolean (PostgreSQL; SQLite answers an integer).
    Bool(bool),
}

/// A Rust type a column can be read as.
pub(crate) trait FromCell: Sized {
    /// Reads `cell`, or says why it cannot.
    fn from_cell(cell: Cell<'_>) -> Result<Self, String>;
}

impl FromCell for i64 {
    fn from_cell(cell: Cell<'_>) -> Result<Self, String> {
        match cell {
            Cell::Int(i) => Ok(i),
            Cell::Bool(b) => Ok(i64::from(b)),
            other => Err(format!("expected an integer, found {other:?}")),
        }
    }
}

macro_rules! int_cell {
    ($($t:ty),*) => {$(
        impl FromCell for $t {
            fn from_cell(cell: Cell<'_>) -> Result<Self, String> {
                let i = i64::from_cell(cell)?;
                <$t>::try_from(i).map_err(|_| format!("{i} is out of range"))
            }
        }
    )*};
}
int_cell!(i32, u32, u64, usize);

impl FromCell for f64 {
    fn from_cell(cell: Cell<'_>) -> Result<Self, String> {
        match cell {
            Cell::Real(f) => Ok(f),
            #[allow(clippy::cast_precision_loss)]
            Cell::Int(i) => Ok(i as f64),
            other => Err(format!("expected a number, found {other:?}")),
        }
    }
}

impl FromCell for bool {
    fn from_cell(cell: Cell<'_>) -> Result<Self, String> {
        match cell {
            Cell::Bool(b) => Ok(b),
            Cell::Int(i) => Ok(i != 0),
            other => Err(format!("expected a boolean, found {other:?}")),
        }
    }
}

impl FromCell for String {
    fn from_cell(cell: Cell<'_>) -> Result<Self, String> {
        match cell {
            Cell::Text(s) => Ok(s.to_owned()),
            other => Err(format!("expected text, found {other:?}")),
        }
    }
}

impl<T: FromCell> FromCell for Option<T> {
    fn from_cell(cell: Cell<'_>) -> Result<Self, String> {
        match cell {
            Cell::Null => Ok(None),
            other => T::from_cell(other).map(Some),
        }
    }
}

/// A result row of either engine.
pub(crate) enum Row<'a> {
    /// A SQLite row.
    Lite(&'a rusqlite::Row<'a>),
    /// A PostgreSQL row.
    Pg(&'a postgres::Row),
}

impl Row<'_> {
    /// Column `i` (from 0) as a `T`.
    pub(crate) fn get<T: FromCell>(&self, i: usize) -> Result<T, CatalogError> {
        let bad = |e: String| CatalogError::Corrupt(format!("column {i}: {e}"));
        match self {
            Row::Lite(r) => {
                let v = r.get_ref(i).map_err(|e| bad(e.to_string()))?;
                let cell = match v {
                    rusqlite::types::ValueRef::Null => Cell::Null,
                    rusqlite::types::ValueRef::Integer(i) => Cell::Int(i),
                    rusqlite::types::ValueRef::Real(f) => Cell::Real(f),
                    rusqlite::types::ValueRef::Text(t) => {
                        Cell::Text(std::str::from_utf8(t).map_err(|e| bad(e.to_string()))?)
                    }
                    rusqlite::types::ValueRef::Blob(_) => return Err(bad("a blob".to_owned())),
                };
                T::from_cell(cell).map_err(bad)
            }
            Row::Pg(r) => {
                let raw: PgRaw<'_> = r.try_get(i).map_err(|e| bad(e.to_string()))?;
                T::from_cell(raw.cell().map_err(bad)?).map_err(bad)
            }
        }
    }
}

/// A PostgreSQL column as sent, decoded by [`PgRaw::cell`].
struct PgRaw<'a> {
    ty: Type,
    raw: Option<&'a [u8]>,
}

impl<'a> FromSql<'a> for PgRaw<'a> {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(PgRaw { ty: ty.clone(), raw: Some(raw) })
    }

    fn from_sql_null(ty: &Type) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(PgRaw { ty: ty.clone(), raw: None })
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

impl<'a> PgRaw<'a> {
    fn cell(&self) -> Result<Cell<'a>, String> {
        let Some(raw) = self.raw else { return Ok(Cell::Null) };
        let ty = &self.ty;
        let e = |e: Box<dyn std::error::Error + Sync + Send>| e.to_string();
        Ok(match *ty {
            Type::INT8 => Cell::Int(i64::from_sql(ty, raw).map_err(e)?),
            Type::INT4 => Cell::Int(i64::from(i32::from_sql(ty, raw).map_err(e)?)),
            Type::INT2 => Cell::Int(i64::from(i16::from_sql(ty, raw).map_err(e)?)),
            Type::FLOAT8 => Cell::Real(f64::from_sql(ty, raw).map_err(e)?),
            Type::FLOAT4 => Cell::Real(f64::from(f32::from_sql(ty, raw).map_err(e)?)),
            Type::BOOL => Cell::Bool(bool::from_sql(ty, raw).map_err(e)?),
            Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => {
                Cell::Text(<&str>::from_sql(ty, raw).map_err(e)?)
            }
            _ => return Err(format!("a {ty} column (cast it in the statement)")),
        })
    }
}

/// A value bound for PostgreSQL: converted to the type the server inferred for its placeholder.
pub(super) struct PgArg<'a>(pub(super) Value<'a>);

impl std::fmt::Debug for PgArg<'_> {
    // Values are job data; nothing to show in an error.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PgArg")
    }
}

impl ToSql for PgArg<'_> {
    fn to_sql(&self, ty: &Type, out: &mut bytes::BytesMut) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match (self.0, ty) {
            (Value::Null, _) => Ok(IsNull::Yes),
            (Value::Int(i), &Type::INT8) => i.to_sql(ty, out),
            (Value::Int(i), &Type::INT4) => i32::try_from(i)?.to_sql(ty, out),
            (Value::Int(i), &Type::INT2) => i16::try_from(i)?.to_sql(ty, out),
            #[allow(clippy::cast_precision_loss)]
            (Value::Int(i), &Type::FLOAT8) => (i as f64).to_sql(ty, out),
            (Value::Int(i), &Type::BOOL) => (i != 0).to_sql(ty, out),
            (Value::Real(f), &Type::FLOAT8) => f.to_sql(ty, out),
            #[allow(clippy::cast_possible_truncation)]
            (Value::Real(f), &Type::FLOAT4) => (f as f32).to_sql(ty, out),
            (Value::Text(s), &Type::TEXT | &Type::VARCHAR | &Type::BPCHAR | &Type::NAME | &Type::UNKNOWN) => {
                out.put_slice(s.as_bytes());
                Ok(IsNull::No)
            }
            (Value::Text(s), &Type::JSONB) => {
                out.put_u8(1);
                out.put_slice(s.as_bytes());
                Ok(IsNull::No)
            }
            (Value::Text(s), &Type::JSON) => {
                out.put_slice(s.as_bytes());
                Ok(IsNull::No)
            }
            (v, ty) => Err(format!("cannot bind {} to a {ty} parameter", kind(v)).into()),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    postgres::types::to_sql_checked!();
}

fn kind(v: Value<'_>) -> &'static str {
    match v {
        Value::Null => "NULL",
        Value::Int(_) => "an integer",
        Value::Real(_) => "a number",
        Value::Text(_) => "text",
    }
}

/// A value bound for SQLite.
pub(super) struct LiteArg<'a>(pub(super) &'a dyn Arg);

impl rusqlite::ToSql for LiteArg<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(match self.0.value() {
            Value::Null => ToSqlOutput::Borrowed(ValueRef::Null),
            Value::Int(i) => ToSqlOutput::Borrowed(ValueRef::Integer(i)),
            Value::Real(f) => ToSqlOutput::Borrowed(ValueRef::Real(f)),
            Value::Text(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
        })
    }
}
