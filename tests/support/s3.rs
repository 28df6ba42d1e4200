//! A real S3-compatible server for tests: moto's server, owned by the test that starts it (so a
//! test can pause it), on a free loopback port, killed on drop.
//!
//! The binary is `$VIDKEEP_MOTO_SERVER` (`.ci/run` installs moto into a venv and sets it), else
//! `moto_server` on `PATH`. If neither exists, [`Moto::start`] panics under `CI=true` (S3 tests
//! are never skipped in CI) and otherwise prints a loud skip line and returns `None`.

use std::process::{Child, Command, Stdio};
use std::sync::Once;
use std::time::Duration;

/// The credentials the tests use; moto accepts any.
pub const ACCESS_KEY: &str = "vidkeep-test-access";
/// See [`ACCESS_KEY`].
pub const SECRET_KEY: &str = "vidkeep-test-secret-do-not-log";

pub struct Moto {
    child: Child,
    /// `http://127.0.0.1:PORT`
    pub endpoint: String,
}

fn binary() -> Option<String> {
    if let Ok(path) = std::env::var("VIDKEEP_MOTO_SERVER") {
        assert!(std::path::Path::new(&path).is_file(), "VIDKEEP_MOTO_SERVER={path} does not exist");
        return Some(path);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("moto_server"))
        .find(|p| p.is_file())
        .map(|p| p.display().to_string())
}

/// Sets the test credentials once, before any S3 client reads them. Rust's `env::var` and
/// `set_var` share a lock; nothing in these tests reads these variables from C.
fn set_credentials() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: see above; the variables are set once and never changed again.
        unsafe {
            std::env::set_var("AWS_ACCESS_KEY_ID", ACCESS_KEY);
            std::env::set_var("AWS_SECRET_ACCESS_KEY", SECRET_KEY);
            std::env::remove_var("AWS_SESSION_TOKEN");
        }
    });
}

impl Moto {
    /// Starts a server, or returns `None` (outside CI) when moto is not installed.
    pub async fn start() -> Option<Moto> {
        let Some(binary) = binary() else {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("CI=true but no S3 test server: set VIDKEEP_MOTO_SERVER (see .ci/run)");
            }
            eprintln!("!!! SKIPPED: no moto_server (set VIDKEEP_MOTO_SERVER or install moto[server]); S3 test not run");
            return None;
        };
        set_credentials();
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
            listener.local_addr().expect("addr").port()
        };
        let child = Command::new(&binary)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {binary}: {e}"));
        let moto = Moto { child, endpoint: format!("http://127.0.0.1:{port}") };
        let client = reqwest::Client::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            if client.get(format!("{}/moto-api/", moto.endpoint)).send().await.is_ok() {
                return Some(moto);
            }
            assert!(tokio::time::Instant::now() < deadline, "moto did not start on port {port}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Creates a bucket (moto needs no signature).
    pub async fn create_bucket(&self, bucket: &str) {
        let response =
            reqwest::Client::new().put(format!("{}/{bucket}", self.endpoint)).send().await.expect("create bucket");
        assert!(response.status().is_success(), "create bucket {bucket}: {}", response.status());
    }

    /// The `[storage]` section body for `s3://bucket/prefix` on this server.
    pub fn storage_toml(&self, url: &str) -> String {
        format!("url = \"{url}\"\nendpoint = \"{}\"\nallow_http = true\n", self.endpoint)
    }

    /// Freezes the server (SIGSTOP): it keeps its data and its port, and answers nothing.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Lets a paused server go on (SIGCONT).
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill").args([signal, &self.child.id().to_string()]).status().expect("kill");
        assert!(status.success(), "kill {signal}");
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-CONT", &self.child.id().to_string()]).status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
