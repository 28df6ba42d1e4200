//! A PostgreSQL server for tests: the one named by `VIDKEEP_TEST_PG`
//! (`postgres://vidkeep@127.0.0.1:PORT/postgres`, a superuser), whose password the tests find
//! the product's own way (`PGPASSFILE`). `.ci/run` and `scripts/pg-test-cluster.sh` start a
//! throwaway cluster and set both. Without it, [`server`] panics under `CI=true` (PostgreSQL
//! tests are never skipped in CI) and otherwise prints a loud skip line and returns `None`.
//!
//! The `postgres` client is blocking and starts its own runtime, which panics on a tokio worker
//! thread; [`TestDb`] therefore does its work on a plain thread, so it works from `#[test]` and
//! from `#[tokio::test]` alike. Tests connecting themselves from async code use `spawn_blocking`.

use vidkeep::catalog::PgTarget;

/// The server's URL, or `None` (outside CI, after saying so) when none is configured.
pub fn server() -> Option<String> {
    match std::env::var("VIDKEEP_TEST_PG") {
        Ok(url) if !url.trim().is_empty() => Some(url.trim().to_owned()),
        _ => {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!(
                    "PostgreSQL missing in CI: VIDKEEP_TEST_PG is not set (.ci/run starts a cluster with \
                     scripts/pg-test-cluster.sh)"
                );
            }
            eprintln!(
                "!!! SKIPPED: no PostgreSQL (eval \"$(scripts/pg-test-cluster.sh start)\" sets VIDKEEP_TEST_PG); \
                 PostgreSQL test not run"
            );
            None
        }
    }
}

/// Runs `work` on a fresh plain thread and waits for it: the blocking client may not run on a
/// tokio worker thread. A panic in `work` is the caller's panic.
pub fn off_runtime<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::spawn(work).join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// Connects to `url` through [`PgTarget`], as the product does.
pub fn connect(url: &str) -> postgres::Client {
    let target = PgTarget::parse(url, None).unwrap_or_else(|e| panic!("{url}: {e}"));
    target.connect().unwrap_or_else(|e| panic!("{e}"))
}

/// A fresh database `vk_test_<random>` on the test server, with `pg_trgm`; dropped (with any
/// session still in it) when the value is.
pub struct TestDb {
    /// The database's URL: the server's, with the database name replaced.
    pub url: String,
    /// The database's name.
    pub name: String,
    /// The server's URL, for dropping.
    server: String,
}

impl TestDb {
    /// Creates the database, or returns `None` (outside CI) when there is no server.
    pub fn new() -> Option<TestDb> {
        let server = server()?;
        let name = format!("vk_test_{:016x}", rand::random::<u64>());
        let mut url = url::Url::parse(&server).unwrap_or_else(|e| panic!("VIDKEEP_TEST_PG {server}: {e}"));
        url.set_path(&format!("/{name}"));
        let url = url.to_string();
        let (server_url, db_url, db_name) = (server.clone(), url.clone(), name.clone());
        off_runtime(move || {
            connect(&server_url)
                .batch_execute(&format!("CREATE DATABASE {db_name}"))
                .unwrap_or_else(|e| panic!("CREATE DATABASE {db_name}: {e}"));
            connect(&db_url)
                .batch_execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
                .unwrap_or_else(|e| panic!("CREATE EXTENSION pg_trgm in {db_name}: {e}"));
        });
        Some(TestDb { url, name, server })
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let (server, name) = (self.server.clone(), self.name.clone());
        let dropped = std::thread::spawn(move || {
            let target = PgTarget::parse(&server, None).map_err(|e| e.to_string())?;
            let mut client = target.connect().map_err(|e| e.to_string())?;
            client.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).map_err(|e| e.to_string())
        })
        .join();
        match dropped {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("test database {} not dropped: {e}", self.name),
            Err(_) => eprintln!("test database {} not dropped: the dropping thread panicked", self.name),
        }
    }
}
