//! `vidkeep catalog copy`: a SQLite catalogue into a new PostgreSQL (or SQLite) catalogue,
//! checked. Synchronous: the blocking PostgreSQL client must not run on an async worker thread.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context as _;

use crate::catalog::{Catalog, CatalogError, CopyError, DaemonLock};
use crate::telemetry::Escaped;

/// A catalogue as `--from` and `--to` name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    /// A SQLite file: `sqlite:PATH`.
    Sqlite(PathBuf),
    /// A PostgreSQL database: `postgres://…` (or `postgresql://…`).
    Postgres(String),
}

impl Place {
    /// Parses `sqlite:PATH` or a `postgres://` URL. Shown (by `Display`) without a password and
    /// unescaped: printed text goes through [`Escaped`].
    pub fn parse(s: &str) -> Result<Place, String> {
        if let Some(path) = s.strip_prefix("sqlite:") {
            if path.is_empty() {
                return Err("`sqlite:` needs the catalogue's path, as in sqlite:/var/lib/vidkeep/catalog.sqlite".into());
            }
            return Ok(Place::Sqlite(PathBuf::from(path)));
        }
        if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            return Ok(Place::Postgres(s.to_owned()));
        }
        Err(format!("`{}` is neither sqlite:PATH nor a postgres:// URL", Escaped(s)))
    }
}

impl std::fmt::Display for Place {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Place::Sqlite(path) => write!(f, "sqlite:{}", path.display()),
            Place::Postgres(url) => f.write_str(&shown(url)),
        }
    }
}

/// A PostgreSQL URL as messages may show it: scheme, user, host, port and database, never a
/// password (in the URL or among its parameters).
fn shown(url: &str) -> String {
    crate::catalog::PgTarget::parse(url, None).map_or_else(|_| crate::catalog::redact_url(url), |t| t.display())
}

/// A blocking client for the PostgreSQL database at `url`, through the catalogue's connection
/// rules (no password in the URL; `PGPASSWORD` or the pgpass file; TLS as `sslmode` says).
fn connect_pg(url: &str) -> anyhow::Result<postgres::Client> {
    let target = crate::catalog::PgTarget::parse(url, None)?;
    Ok(target.connect()?)
}

/// Takes the daemon lock of the SQLite catalogue at `path` for the copy, so no daemon writes it
/// meanwhile; refuses if one runs. A lock that cannot be taken for another reason (a read-only
/// folder) is said and not needed.
fn hold(path: &Path, role: &str) -> anyhow::Result<Option<DaemonLock>> {
    match DaemonLock::acquire(path) {
        Ok(lock) => Ok(Some(lock)),
        Err(CatalogError::InUse { holder, .. }) => anyhow::bail!(
            "a vidkeep daemon{} is running on the {role} catalogue {}: stop it before copying \
             (what it wrote after the copy would not be in the destination)",
            holder.map(|pid| format!(" (pid {pid})")).unwrap_or_default(),
            path.display()
        ),
        Err(e) => {
            eprintln!(
                "vidkeep: note: cannot take the daemon lock of {} ({}); make sure no daemon runs on it",
                Escaped(path.display()),
                Escaped(&e)
            );
            Ok(None)
        }
    }
}

/// The files a new SQLite catalogue at `path` is made of.
fn sqlite_files(path: &Path) -> Vec<PathBuf> {
    ["", "-wal", "-shm"]
        .iter()
        .map(|suffix| {
            let mut name = path.as_os_str().to_owned();
            name.push(suffix);
            PathBuf::from(name)
        })
        .collect()
}

/// Copies the catalogue `from` (SQLite) into `to`, which must be new or empty, and prints what
/// was copied and checked.
pub(super) fn run(from: &Place, to: &Place) -> anyhow::Result<ExitCode> {
    let Place::Sqlite(source_path) = from else {
        anyhow::bail!("--from takes a SQLite catalogue (sqlite:PATH); a PostgreSQL catalogue is copied with pg_dump");
    };
    if !source_path.exists() {
        return Err(CatalogError::NotFound(source_path.clone()).into());
    }
    if let Place::Sqlite(dest_path) = to {
        let same = match (source_path.canonicalize(), dest_path.canonicalize()) {
            (Ok(a), Ok(b)) => a == b,
            _ => source_path == dest_path,
        };
        if same {
            anyhow::bail!("--from and --to name the same catalogue {}", source_path.display());
        }
    }
    let _source_lock = hold(source_path, "source")?;
    let source = Catalog::open_read_only(source_path)
        .with_context(|| format!("cannot read the catalogue {}", source_path.display()))?;

    // A SQLite destination made by this copy is removed again if the copy does not happen.
    let mut made: Vec<PathBuf> = Vec::new();
    let result = (|| {
        let (mut dest, _dest_lock) = match to {
            Place::Sqlite(path) => {
                let lock_path = DaemonLock::path_for(path);
                if !path.exists() {
                    made.extend(sqlite_files(path));
                    if !lock_path.exists() {
                        made.push(lock_path);
                    }
                }
                let lock = hold(path, "destination")?;
                let dest = Catalog::open(path).with_context(|| format!("cannot open {to}"))?;
                (dest, lock)
            }
            Place::Postgres(url) => {
                let client = connect_pg(url)?;
                let dest = Catalog::from_postgres(client, shown(url)).with_context(|| format!("cannot open {to}"))?;
                (dest, None)
            }
        };
        let started = Instant::now();
        let report = source.copy_into(&mut dest)?;
        Ok::<_, anyhow::Error>((report, started.elapsed()))
    })();
    let (report, elapsed) = match result {
        Ok(done) => done,
        Err(e) => {
            for file in &made {
                let _ = std::fs::remove_file(file);
            }
            let found_a_difference = matches!(
                e.downcast_ref::<CatalogError>(),
                Some(CatalogError::Copy(
                    CopyError::CountDiffers { .. } | CopyError::ContentDiffers { .. } | CopyError::Unreachable { .. }
                ))
            );
            if found_a_difference {
                return Ok(super::problem(&e));
            }
            return Err(e.context(format!("cannot copy {from} into {to}")));
        }
    };
    println!("copied {} into {} in {:.1} s", Escaped(from), Escaped(to), elapsed.as_secs_f64());
    let width = report.tables.iter().map(|t| t.table.len()).max().unwrap_or(0);
    for table in &report.tables {
        let how = if table.by_trigger { "  (kept by the destination's triggers, not copied)" } else { "" };
        println!("  {:<width$}  {:>9}{how}", table.table, table.rows);
    }
    println!("checked: counts and checksums match");
    println!("the source was only read; point [catalog] at the destination before the daemon starts again");
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_parse_and_never_show_a_password() {
        assert_eq!(Place::parse("sqlite:/var/lib/vk/c.sqlite"), Ok(Place::Sqlite("/var/lib/vk/c.sqlite".into())));
        assert_eq!(Place::parse("sqlite:c.sqlite"), Ok(Place::Sqlite("c.sqlite".into())));
        assert!(Place::parse("sqlite:").is_err());
        assert!(Place::parse("/var/lib/vk/c.sqlite").is_err(), "a bare path says which backend it is");
        assert!(Place::parse("mysql://h/db").is_err());
        let pg = Place::parse("postgres://vk:s3cret@db.example:5433/vidkeep?password=s3cret&sslmode=disable")
            .expect("a URL");
        let shown = pg.to_string();
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.starts_with("postgres://vk") && shown.contains("db.example:5433/vidkeep"), "{shown}");
        let plain = Place::parse("postgresql://db/vk").expect("a URL").to_string();
        assert!(plain.contains("@db:5432/vk"), "as the connection names it, user and port filled in: {plain}");
    }
}
