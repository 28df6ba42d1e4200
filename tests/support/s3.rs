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

/// A TCP proxy in front of an S3 server that passes every request and answer through, but for
/// the first completion of a multipart upload (`POST /key?uploadId=...`): that request reaches
/// the server, which completes the upload, and its answer is dropped with both connections, as
/// a timeout or a reset on the way would lose it. A repeated completion is then answered
/// `404 NoSuchUpload` by the proxy itself, as a server whose completion is not idempotent
/// answers it (moto does when the repeat comes while it is still assembling a large object).
pub struct LoseFirstCompletion {
    /// `http://127.0.0.1:PORT`, to use as the S3 endpoint.
    pub endpoint: String,
    lost: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    refused: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    accepting: tokio::task::JoinHandle<()>,
}

/// What the proxy counts: answers lost, repeated completions refused.
#[derive(Clone)]
struct Counts {
    armed: std::sync::Arc<std::sync::atomic::AtomicBool>,
    lost: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    refused: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl LoseFirstCompletion {
    pub async fn start(upstream: &str) -> LoseFirstCompletion {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicBool, AtomicUsize};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the proxy");
        let endpoint = format!("http://{}", listener.local_addr().expect("addr"));
        let upstream = upstream.trim_start_matches("http://").to_owned();
        let counts = Counts {
            armed: Arc::new(AtomicBool::new(true)),
            lost: Arc::new(AtomicUsize::new(0)),
            refused: Arc::new(AtomicUsize::new(0)),
        };
        let (lost, refused) = (Arc::clone(&counts.lost), Arc::clone(&counts.refused));
        let accepting = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(relay(client, upstream.clone(), counts.clone()));
            }
        });
        LoseFirstCompletion { endpoint, lost, refused, accepting }
    }

    /// How many answers were dropped (one at most).
    pub fn lost(&self) -> usize {
        self.lost.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// How many repeated completions were answered `NoSuchUpload`.
    pub fn refused(&self) -> usize {
        self.refused.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Drop for LoseFirstCompletion {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

/// Reads the rest of a request whose first bytes are `head` (headers, then `Content-Length`
/// bytes of body).
async fn read_request(from: &mut tokio::net::tcp::OwnedReadHalf, head: &[u8]) {
    use tokio::io::AsyncReadExt as _;
    let mut got = head.to_vec();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            let headers = String::from_utf8_lossy(&got[..end]).to_ascii_lowercase();
            let length: usize = headers
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if got.len() >= end + 4 + length {
                return;
            }
        }
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
}

/// One client connection relayed to `upstream` (see [`LoseFirstCompletion`]).
async fn relay(client: tokio::net::TcpStream, upstream: String, counts: Counts) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let Ok(server) = tokio::net::TcpStream::connect(&upstream).await else { return };
    let (mut from_client, to_client) = client.into_split();
    let to_client = Arc::new(tokio::sync::Mutex::new(to_client));
    let (mut from_server, mut to_server) = server.into_split();
    let losing = Arc::new(AtomicBool::new(false));
    let (marked, answer_to, seen) = (Arc::clone(&losing), Arc::clone(&to_client), counts.clone());
    let requests = tokio::spawn(async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match from_client.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let chunk = &buf[..n];
            let line = chunk.split(|b| *b == b'\n').next().unwrap_or_default();
            let completes = chunk.starts_with(b"POST ") && line.windows(9).any(|w| w == b"uploadId=");
            if completes && seen.armed.swap(false, Ordering::SeqCst) {
                marked.store(true, Ordering::SeqCst);
            } else if completes && seen.lost.load(Ordering::SeqCst) > 0 {
                read_request(&mut from_client, chunk).await;
                let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>NoSuchUpload</Code>\
                            <Message>The specified upload does not exist.</Message></Error>";
                let answer = format!(
                    "HTTP/1.1 404 Not Found\r\nContent-Type: application/xml\r\nContent-Length: {}\r\n\
                     Connection: close\r\n\r\n{body}",
                    body.len()
                );
                seen.refused.fetch_add(1, Ordering::SeqCst);
                let mut to_client = answer_to.lock().await;
                let _ = to_client.write_all(answer.as_bytes()).await;
                let _ = to_client.shutdown().await;
                break;
            }
            if to_server.write_all(chunk).await.is_err() {
                break;
            }
        }
        let _ = to_server.shutdown().await;
    });
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from_server.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if losing.load(Ordering::SeqCst) {
            counts.lost.fetch_add(1, Ordering::SeqCst);
            requests.abort();
            return;
        }
        if to_client.lock().await.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = requests.await;
}
