//! The catalogue's conformance harness: each catalogue test runs on every backend this machine
//! has. SQLite always; PostgreSQL when `VIDKEEP_TEST_PG` names a server (`.ci/run` starts one,
//! and with `CI=true` a missing server fails the test rather than skipping half of it). Each run
//! gets a fresh catalogue: a temp file, or a new database dropped afterwards.

use super::Catalog;

/// The PostgreSQL server the tests may create databases on, if any.
pub(crate) fn pg_server() -> Option<String> {
    match std::env::var("VIDKEEP_TEST_PG") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "VIDKEEP_TEST_PG is not set: CI must run the catalogue tests on PostgreSQL too (see .ci/run)"
            );
            None
        }
    }
}

/// A blocking client for `url`, through the product's own connection rules (the password from
/// `PGPASSFILE`, TLS as the URL asks).
pub(crate) fn pg_connect(url: &str) -> postgres::Client {
    let target = super::PgTarget::parse(url, None).expect("a PostgreSQL URL");
    target.connect().expect("connect to the test PostgreSQL server")
}

/// A database made for one test, dropped with it.
pub(crate) struct PgScratch {
    server: String,
    name: String,
}

impl PgScratch {
    /// A new, empty database on the test server.
    pub(crate) fn new(server: &str) -> PgScratch {
        let name = format!("vk_unit_{}", uuid::Uuid::now_v7().simple());
        pg_connect(server).batch_execute(&format!("CREATE DATABASE {name}")).expect("create a test database");
        PgScratch { server: server.to_owned(), name }
    }

    /// Its URL: the server's, with this database.
    pub(crate) fn url(&self) -> String {
        with_database(&self.server, &self.name)
    }

    /// A catalogue on it.
    pub(crate) fn catalog(&self) -> Catalog {
        Catalog::from_postgres(pg_connect(&self.url()), format!("test database {}", self.name)).expect("migrate")
    }
}

impl Drop for PgScratch {
    fn drop(&mut self) {
        let drop = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        if let Err(e) = pg_connect(&self.server).batch_execute(&drop) {
            eprintln!("could not drop test database {}: {e}", self.name);
        }
    }
}

/// `url` (`postgres://user@host:port/db?options`) with the database `name` instead.
pub(crate) fn with_database(url: &str, name: &str) -> String {
    let authority = url.find("://").map_or(0, |i| i + 3);
    let path = url[authority..].find('/').map_or(url.len(), |i| authority + i);
    let query = url[path..].find('?').map_or(url.len(), |i| path + i);
    format!("{}/{name}{}", &url[..path], &url[query..])
}

/// Runs `test` on a fresh catalogue of each backend, naming the backend (for messages).
pub(crate) fn each_backend(test: impl Fn(&mut Catalog, &str)) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut c = Catalog::open(&dir.path().join("c.sqlite")).expect("open SQLite");
    test(&mut c, "sqlite");
    drop(c);
    if let Some(server) = pg_server() {
        let scratch = PgScratch::new(&server);
        let mut c = scratch.catalog();
        test(&mut c, "postgres");
        drop(c);
    } else {
        eprintln!("VIDKEEP_TEST_PG is not set: this catalogue test ran on SQLite only");
    }
}
