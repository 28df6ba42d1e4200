//! Operations, end to end: the systemd notify protocol and SIGHUP reload against the real binary
//! (a fake notify socket, real signals), and `/metrics`, `/healthz`, `/readyz` and the bearer
//! token against the in-process daemon.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use tokio::net::UnixDatagram;
use vidkeep::catalog::{Catalog, JobFilter, JobRecord, SpecPlace};
use vidkeep::jobs::JobState;
use vidkeep::sim::{self, SimConfig, SimHandle};

use crate::support::{Env, WAIT, fast_sim};

const KEY_ENV: &str = "VIDKEEP_OPS_TEST_KEY";

/// The real binary, run as systemd would: a notify socket, a watchdog, signals.
struct Daemon {
    dir: tempfile::TempDir,
    child: Child,
    /// Every datagram, in order: a task drains the socket as systemd does, so the daemon never
    /// finds it full.
    notify: tokio::sync::Mutex<tokio::sync::mpsc::UnboundedReceiver<String>>,
    stderr: Arc<Mutex<String>>,
    reader: Option<std::thread::JoinHandle<()>>,
    _sim: SimHandle,
}

fn config_text(base_url: &str, inbox: &str, extra: &str) -> String {
    format!(
        "[api]\nbase_url = \"{base_url}\"\napi_key_env = \"{KEY_ENV}\"\npoll_interval = \"100ms\"\nrequest_timeout = \"5s\"\n\
         [watch]\ndir = \"{inbox}\"\nquiet_period = \"300ms\"\nrescan_interval = \"1s\"\n\
         [storage]\nurl = \"archive\"\n[catalog]\npath = \"catalog.sqlite\"\n\
         [jobs]\nretry_base = \"50ms\"\nretry_max = \"500ms\"\nshutdown_grace = \"10s\"\n\
         [http]\nlisten = \"127.0.0.1:0\"\n{extra}\n[archive]\nallowed_networks = [\"127.0.0.1\"]\n[defaults]\nmodel = \"viduq1-text\"\n"
    )
}

impl Daemon {
    async fn start(sim_config: SimConfig, log_format: &str) -> Daemon {
        Daemon::start_with(sim_config, log_format, true).await
    }

    /// `drain = false` leaves the notify socket unread, as a stuck service manager would.
    async fn start_with(sim_config: SimConfig, log_format: &str, drain: bool) -> Daemon {
        let dir = tempfile::tempdir().expect("tempdir");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let sim = sim::start(sim_config, listener).await.expect("simulator");
        std::fs::write(dir.path().join("vidkeep.toml"), config_text(&sim.base_url(), "inbox", "")).expect("config");
        let socket_path = dir.path().join("notify.sock");
        let socket = UnixDatagram::bind(&socket_path).expect("bind notify socket");
        let (tx, notify) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            if !drain {
                // Hold the socket open, unread, for the life of the test.
                std::future::pending::<()>().await;
            }
            let mut buf = vec![0u8; 4096];
            while let Ok(n) = socket.recv(&mut buf).await {
                if tx.send(String::from_utf8_lossy(&buf[..n]).into_owned()).is_err() {
                    break;
                }
            }
        });
        let notify = tokio::sync::Mutex::new(notify);
        let mut child = Command::new(env!("CARGO_BIN_EXE_vidkeep"))
            .args(["--log-format", log_format, "run"])
            .arg("--config")
            .arg(dir.path().join("vidkeep.toml"))
            .env("NOTIFY_SOCKET", &socket_path)
            .env("WATCHDOG_USEC", "200000")
            .env_remove("WATCHDOG_PID")
            .env_remove("VIDKEEP_LOG")
            .env_remove("RUST_LOG")
            // As under systemd: stderr goes to the journal, which stamps each line itself.
            .env("JOURNAL_STREAM", "8:4242")
            .env(KEY_ENV, SimConfig::default().api_key)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start vidkeep run");
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut pipe = child.stderr.take().expect("stderr");
        let sink = Arc::clone(&stderr);
        let reader = std::thread::spawn(move || {
            use std::io::Read as _;
            let mut buf = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().expect("stderr lock").push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Daemon { dir, child, notify, stderr, reader: Some(reader), _sim: sim }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn logs(&self) -> String {
        self.stderr.lock().expect("stderr lock").clone()
    }

    /// Waits until the captured stderr holds every one of `needles` (the reader thread may lag
    /// behind the notify socket), then returns it.
    async fn wait_logs(&self, needles: &[&str]) -> String {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let logs = self.logs();
            if needles.iter().all(|n| logs.contains(n)) {
                return logs;
            }
            assert!(tokio::time::Instant::now() < deadline, "logs lack one of {needles:?}:\n{logs}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The next datagram, as its lines.
    async fn next_message(&self) -> Vec<String> {
        let mut notify = self.notify.lock().await;
        let message = match tokio::time::timeout(Duration::from_secs(30), notify.recv()).await {
            Ok(received) => received.expect("the notify socket reader stopped"),
            Err(_) => panic!("no notify message within 30 s; logs:\n{}", self.logs()),
        };
        message.lines().map(str::to_owned).collect()
    }

    /// Reads messages until one holds `line`; returns every line read on the way.
    async fn until(&self, line: &str) -> Vec<String> {
        let mut seen = Vec::new();
        loop {
            let msg = self.next_message().await;
            let found = msg.iter().any(|l| l == line);
            seen.extend(msg);
            if found {
                return seen;
            }
        }
    }

    fn signal(&self, signal: libc::c_int) {
        let pid = libc::pid_t::try_from(self.child.id()).expect("pid");
        // SAFETY: sending a signal to our own child process.
        let rc = unsafe { libc::kill(pid, signal) };
        assert_eq!(rc, 0, "kill({pid}, {signal})");
    }

    /// SIGTERM, then the exit status (within the drain grace).
    async fn stop(mut self) -> (std::process::ExitStatus, Vec<String>, String) {
        self.signal(libc::SIGTERM);
        let seen = self.until("STOPPING=1").await;
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                break status;
            }
            assert!(std::time::Instant::now() < deadline, "vidkeep did not exit after SIGTERM");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        // The reader thread ends at the end of the pipe: then the logs are complete.
        if let Some(reader) = self.reader.take() {
            reader.join().expect("stderr reader");
        }
        (status, seen, self.logs())
    }

    fn jobs(&self) -> Vec<JobRecord> {
        Catalog::open(&self.path("catalog.sqlite")).expect("catalogue").jobs(&JobFilter::default()).expect("jobs")
    }

    async fn wait_job(&self, spec: &str, done: impl Fn(&JobRecord) -> bool) -> JobRecord {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if let Some(job) = self.jobs().into_iter().find(|j| j.spec_name == spec && done(j)) {
                return job;
            }
            assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {spec}; logs:\n{}", self.logs());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn drop_spec(inbox: &Path, name: &str, prompt: &str) {
    let part = inbox.join(format!("{name}.part"));
    std::fs::write(&part, json!({ "prompt": prompt }).to_string()).expect("write spec");
    std::fs::rename(&part, inbox.join(name)).expect("rename spec");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn systemd_hears_ready_watchdog_status_and_stopping() {
    let daemon = Daemon::start(fast_sim(), "human").await;
    let before = daemon.until("READY=1").await;
    assert!(!before.iter().any(|l| l.starts_with("WATCHDOG")), "nothing before READY: {before:?}");
    // READY means the catalogue is open and migrated: it is there and readable now.
    assert!(Catalog::open(&daemon.path("catalog.sqlite")).is_ok(), "catalogue ready at READY=1");
    let mut watchdogs = 0;
    let mut status = None;
    let started = std::time::Instant::now();
    while watchdogs < 4 {
        for line in daemon.next_message().await {
            if line == "WATCHDOG=1" {
                watchdogs += 1;
            } else if let Some(s) = line.strip_prefix("STATUS=") {
                status = Some(s.to_owned());
            }
        }
    }
    // WatchdogSec = 200 ms: pings every 100 ms, so four come well within two seconds.
    assert!(started.elapsed() < Duration::from_secs(2), "watchdog too slow: {:?}", started.elapsed());
    let status = status.expect("a STATUS= line");
    assert!(status.contains("in flight") && status.contains("queued"), "{status}");
    let (exit, seen, logs) = daemon.stop().await;
    assert!(seen.contains(&"STOPPING=1".to_owned()));
    assert!(exit.success(), "exit status {exit:?}; logs:\n{logs}");
    assert!(!logs.contains('\u{1b}'), "no colours when stderr is not a terminal:\n{logs}");
    assert!(logs.lines().count() >= 3, "{logs}");
    for line in logs.lines() {
        assert!(!line.starts_with(|c: char| c.is_ascii_digit()), "no timestamp under journald: {line}");
    }
    assert!(!logs.contains(&SimConfig::default().api_key), "the API key never reaches a log");
    // A first start makes the catalogue, and says so where an admin with a mistyped
    // [catalog] path (an empty catalogue: every spec paid for again) would see it.
    let made = logs.lines().find(|l| l.contains("created a new, empty catalogue")).unwrap_or_default();
    assert!(made.contains("catalog.sqlite") && made.contains("[catalog] path"), "{logs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_applies_a_changed_config_and_refuses_a_broken_one() {
    // Tasks take 2-3 s, so the first job is in flight while the config changes under it.
    let sim_config =
        SimConfig { latency_min: Duration::from_secs(2), latency_max: Duration::from_secs(3), ..fast_sim() };
    let daemon = Daemon::start(sim_config, "json").await;
    daemon.until("READY=1").await;
    let base_url = {
        let text = std::fs::read_to_string(daemon.path("vidkeep.toml")).expect("config");
        text.lines().find_map(|l| l.strip_prefix("base_url = ")).expect("base_url").trim_matches('"').to_owned()
    };

    // A broken config is refused, with the reason, and the daemon keeps running as it was.
    std::fs::write(
        daemon.path("vidkeep.toml"),
        config_text(&base_url, "inbox", "").replace("poll_interval = \"100ms\"", "poll_interval = \"1ms\""),
    )
    .expect("write broken config");
    daemon.signal(libc::SIGHUP);
    daemon.until("RELOADING=1").await;
    daemon.until("READY=1").await;
    daemon.wait_logs(&["config reload refused", "api.poll_interval"]).await;
    assert!(daemon.child.id() > 0);

    // A job in flight in the old inbox...
    drop_spec(&daemon.path("inbox"), "before.json", "a fox before the reload");
    let before = daemon.wait_job("before.json", |j| j.state == JobState::Submitted).await;

    // ...then a valid change: a new inbox and log level.
    std::fs::write(daemon.path("vidkeep.toml"), config_text(&base_url, "inbox2", "[log]\nlevel = \"debug\"\n"))
        .expect("write new config");
    daemon.signal(libc::SIGHUP);
    daemon.until("RELOADING=1").await;
    daemon.until("READY=1").await;
    daemon.wait_logs(&["config reloaded", "watch.dir", "log.level"]).await;

    // The new inbox is watched; the job in flight finishes and settles where it came from.
    drop_spec(&daemon.path("inbox2"), "after.json", "a fox after the reload");
    let after = daemon.wait_job("after.json", |j| j.spec_place == SpecPlace::Done).await;
    let before_done = daemon.wait_job("before.json", |j| j.spec_place == SpecPlace::Done).await;
    assert_eq!(before_done.id, before.id);
    assert_eq!((before_done.state, after.state), (JobState::Archived, JobState::Archived));
    assert!(daemon.path("inbox/done/before.json").exists(), "the old job settles in the old inbox");
    assert!(daemon.path("inbox2/done/after.json").exists(), "the new job settles in the new inbox");
    daemon.wait_logs(&["\"level\":\"DEBUG\""]).await;

    let (exit, _, logs) = daemon.stop().await;
    assert!(exit.success(), "exit status {exit:?}; logs:\n{logs}");
    // --log-format json: one object per line, and every line about a job names it.
    let mut about_jobs = 0;
    for line in logs.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        let message = v["fields"]["message"].as_str().unwrap_or("");
        let has = |key: &str| !v["fields"][key].is_null() || !v["span"][key].is_null();
        if has("task_id") || ["task accepted", "task succeeded", "stored", "archived"].contains(&message) {
            about_jobs += 1;
            assert!(has("job_id"), "a line about a job without job_id: {line}");
        }
        if message == "stored" {
            assert!(has("task_id"), "an archive line without task_id: {line}");
        }
    }
    assert!(about_jobs >= 8, "two jobs' lines were seen: {about_jobs}");
    assert!(!logs.contains(&SimConfig::default().api_key), "the API key never reaches a log");
}

/// Parses Prometheus/OpenMetrics text strictly enough to catch a malformed line: every sample
/// line is `name{labels} value`, every comment is HELP, TYPE, UNIT or the final EOF.
fn parse_metrics(text: &str) -> BTreeMap<String, f64> {
    let mut samples = BTreeMap::new();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.last(), Some(&"# EOF"), "ends with # EOF");
    for line in &lines[..lines.len() - 1] {
        if let Some(comment) = line.strip_prefix("# ") {
            let kind = comment.split(' ').next().unwrap_or("");
            assert!(["HELP", "TYPE", "UNIT"].contains(&kind), "unexpected comment: {line}");
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("no value: {line}"));
        let name_end = series.find('{').unwrap_or(series.len());
        let name = &series[..name_end];
        assert!(
            !name.is_empty()
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
                && !name.starts_with(|c: char| c.is_ascii_digit()),
            "bad metric name: {line}"
        );
        if name_end < series.len() {
            let labels = series[name_end..].strip_prefix('{').and_then(|l| l.strip_suffix('}'));
            let labels = labels.unwrap_or_else(|| panic!("bad labels: {line}"));
            for pair in labels.split(',') {
                let (k, v) = pair.split_once('=').unwrap_or_else(|| panic!("bad label: {line}"));
                assert!(!k.is_empty() && v.starts_with('"') && v.ends_with('"') && v.len() >= 2, "bad label: {line}");
            }
        }
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse().unwrap_or_else(|_| panic!("bad value: {line}")),
        };
        assert!(samples.insert(series.to_owned(), value).is_none(), "duplicate series: {line}");
    }
    samples
}

async fn get(url: &str) -> (u16, String) {
    let response = reqwest::get(url).await.expect("GET");
    (response.status().as_u16(), response.text().await.expect("body"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_parse_and_move_as_jobs_run() {
    let mut env = Env::default().await;
    let url = env.start_serving(None).await;
    assert_eq!(get(&format!("{url}/healthz")).await, (200, "ok\n".to_owned()));
    let (status, text) = get(&format!("{url}/metrics")).await;
    assert_eq!(status, 200);
    let m = parse_metrics(&text);
    assert_eq!(m.get("vidkeep_submissions_total{outcome=\"accepted\"}"), Some(&0.0), "{text}");
    assert_eq!(m.get("vidkeep_downloads_total{result=\"archived\"}"), Some(&0.0));
    assert_eq!(m.get("vidkeep_jobs{state=\"archived\"}"), Some(&0.0));
    assert_eq!(m.get("vidkeep_spend_today_fen"), Some(&0.0));

    env.drop_spec("one.json", &json!({"prompt": "a fox in snow"}).to_string());
    env.drop_spec("two.json", &json!({"prompt": "a harbour at dawn"}).to_string());
    let jobs = env.wait_all_ended(2).await;
    assert!(jobs.iter().all(|j| j.state == JobState::Archived));
    let (_, text) = get(&format!("{url}/metrics")).await;
    let m = parse_metrics(&text);
    let bytes: u64 = jobs.iter().flat_map(|j| env.assets(&j.id)).map(|a| a.bytes).sum();
    let price: i64 = jobs.iter().map(|j| j.price_fen).sum();
    assert_eq!(m.get("vidkeep_submissions_total{outcome=\"accepted\"}"), Some(&2.0), "{text}");
    assert_eq!(m.get("vidkeep_downloads_total{result=\"archived\"}"), Some(&2.0));
    assert_eq!(m.get("vidkeep_archived_bytes_total"), Some(&(bytes as f64)));
    assert_eq!(m.get("vidkeep_archive_duration_seconds_count"), Some(&2.0));
    assert_eq!(m.get("vidkeep_jobs{state=\"archived\"}"), Some(&2.0));
    assert_eq!(m.get("vidkeep_spend_today_fen"), Some(&(price as f64)));
    assert!(!m.contains_key("vidkeep_result_url_expiry_seconds"), "nothing waits to be archived");
    assert_eq!(get(&format!("{url}/readyz")).await, (200, "ready\n".to_owned()));
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_needs_the_platform_and_the_token_guards_every_route() {
    // A platform that does not answer (nothing listens on its port): the daemon runs, not ready.
    let dir = tempfile::tempdir().expect("tempdir");
    let dead = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr");
    let text = config_text(&format!("http://{dead}"), "inbox", "");
    let config = vidkeep::config::Config::from_toml(&text, dir.path()).expect("config");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind http");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let options = vidkeep::daemon::Options { http_listener: Some(listener), ..Default::default() };
    let cancel = tokio_util::sync::CancellationToken::new();
    let key = vidkeep::secret::Secret::new("unused");
    let daemon = tokio::spawn(vidkeep::daemon::run_with(config, key, cancel.clone(), options));
    let deadline = tokio::time::Instant::now() + WAIT;
    let (status, body) = loop {
        // Wait for the server, and for the first probe to have failed.
        if let Ok(response) = reqwest::get(format!("{url}/readyz")).await {
            let answer = (response.status().as_u16(), response.text().await.expect("body"));
            if answer.1.contains("inbox watcher") || !answer.1.contains("last try") {
                // Still starting: the watcher is not up yet, or the first probe has not failed.
            } else {
                break answer;
            }
        }
        assert!(tokio::time::Instant::now() < deadline, "no /readyz answer");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("platform: has not answered yet"), "{body}");
    // ... and why, as the probe found it: the admin's next step differs for DNS, refused, TLS.
    assert!(body.contains("Connection refused"), "the probe's cause: {body}");
    assert_eq!(get(&format!("{url}/healthz")).await.0, 200, "alive, though not ready");
    cancel.cancel();
    daemon.await.expect("daemon task").expect("daemon stops cleanly");

    let http = vidkeep::config::HttpConfig {
        token: Some("0123456789abcdef-token".to_owned()),
        ..vidkeep::config::HttpConfig::default()
    };
    let app = vidkeep::web::app(vidkeep::ops::health::routes(vidkeep::ops::Ops::default()), &http);
    let listener = vidkeep::web::bind("127.0.0.1:0".parse().expect("addr")).await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let cancel = tokio_util::sync::CancellationToken::new();
    let settings = vidkeep::web::ServeSettings::new(&http, Duration::from_secs(5));
    let server = tokio::spawn(vidkeep::web::serve(listener, app, cancel.clone(), settings));
    let client = reqwest::Client::new();
    // Liveness probes cannot send a token: /healthz answers without one; the others need it.
    let bare = client.get(format!("{url}/healthz")).send().await.expect("GET");
    assert_eq!(bare.status().as_u16(), 200, "/healthz without a token");
    for path in ["/readyz", "/metrics"] {
        let bare = client.get(format!("{url}{path}")).send().await.expect("GET");
        assert_eq!(bare.status().as_u16(), 401, "{path} without a token");
        let wrong = client.get(format!("{url}{path}")).bearer_auth("0123456789abcdef-guess").send().await.expect("GET");
        assert_eq!(wrong.status().as_u16(), 401, "{path} with a wrong token");
    }
    let ok = client.get(format!("{url}/healthz")).bearer_auth("0123456789abcdef-token").send().await.expect("GET");
    assert_eq!(ok.status().as_u16(), 200);
    let cookie =
        client.get(format!("{url}/healthz")).header("Cookie", "vidkeep_token=0123456789abcdef-token").send().await;
    assert_eq!(cookie.expect("GET").status().as_u16(), 200);
    cancel.cancel();
    server.await.expect("server task").expect("server stops cleanly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unread_notify_socket_never_stalls_the_daemon() {
    // The kernel queues only a few datagrams (net.unix.max_dgram_qlen, often 10); a daemon that
    // sent from its runtime would block once they are queued, with watchdog pings every 100 ms.
    let daemon = Daemon::start_with(fast_sim(), "human", false).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    drop_spec(&daemon.path("inbox"), "fox.json", "a fox while systemd sleeps");
    let job = daemon.wait_job("fox.json", |j| j.spec_place == SpecPlace::Done).await;
    assert_eq!(job.state, JobState::Archived);
    let mut daemon = daemon;
    daemon.signal(libc::SIGTERM);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = daemon.child.try_wait().expect("wait") {
            break status;
        }
        assert!(std::time::Instant::now() < deadline, "vidkeep did not exit after SIGTERM:\n{}", daemon.logs());
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_raises_the_in_flight_limit_while_jobs_run() {
    let sim = SimConfig {
        latency_min: Duration::from_millis(1500),
        latency_max: Duration::from_millis(2000),
        model_limit: 20,
        ..fast_sim()
    };
    let mut env = Env::new(sim, "max_in_flight = 1\n", "[defaults]\nmodel = \"viduq1-text\"\n").await;
    let (reload, requests) = tokio::sync::mpsc::unbounded_channel();
    env.start_serving(Some(requests)).await;
    for i in 0..2 {
        env.drop_spec(&format!("early-{i}.txt"), &format!("early fox {i}"));
    }
    env.wait_until("one job in flight", |jobs| jobs.iter().any(|j| j.state == JobState::Submitted)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(env.sim.stats().max_in_flight, 1, "the configured limit holds before the reload");

    let text = std::fs::read_to_string(&env.config_path).expect("read config");
    std::fs::write(&env.config_path, text.replace("max_in_flight = 1\n", "max_in_flight = 4\n")).expect("write");
    reload.send(()).expect("reload request");
    for i in 0..3 {
        env.drop_spec(&format!("late-{i}.txt"), &format!("late fox {i}"));
    }
    let jobs = env.wait_all_ended(5).await;
    assert!(jobs.iter().all(|j| j.state == JobState::Archived), "no job dropped by the reload");
    let stats = env.sim.stats();
    assert!((2..=4).contains(&stats.max_in_flight), "the new limit was used and held: {stats:?}");
    assert_eq!(stats.accepted, 5, "each job submitted once: {stats:?}");
    env.stop().await;
}

#[test]
fn config_check_prints_the_resolved_config_without_the_token() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("vidkeep.toml");
    std::fs::write(&path, "[http]\nlisten = \"127.0.0.1:0\"\ntoken = \"s3cret-token-0123456789\"\n").expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_vidkeep"))
        .args(["config", "check", "--config"])
        .arg(&path)
        .output()
        .expect("run vidkeep config check");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("token = \"[redacted]\"") && stdout.contains("listen = \"127.0.0.1:0\""), "{stdout}");
    assert!(!stdout.contains("s3cret") && !String::from_utf8_lossy(&out.stderr).contains("s3cret"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn budgets_hold_back_what_they_cannot_pay_and_a_raise_by_sighup_lets_it_go() {
    let daemon = Daemon::start(fast_sim(), "human").await;
    daemon.until("READY=1").await;
    let base_url = {
        let text = std::fs::read_to_string(daemon.path("vidkeep.toml")).expect("config");
        text.lines().find_map(|l| l.strip_prefix("base_url = ")).expect("base_url").trim_matches('"').to_owned()
    };
    let with_budget = |daily: &str| config_text(&base_url, "inbox", &format!("[budget]\ndaily = {daily}\n"));
    std::fs::write(daemon.path("vidkeep.toml"), with_budget("5")).expect("write config");
    daemon.signal(libc::SIGHUP);
    daemon.wait_logs(&["config reloaded", "budget"]).await;

    // Five 2.50 RMB jobs against a 5.00 RMB day: exactly two are sent, three wait.
    for n in 0..5 {
        drop_spec(&daemon.path("inbox"), &format!("b{n}.json"), &format!("a lighthouse, take {n}"));
    }
    let deadline = tokio::time::Instant::now() + WAIT;
    let jobs = loop {
        let jobs = daemon.jobs();
        let archived = jobs.iter().filter(|j| j.state == JobState::Archived).count();
        let waiting = jobs.iter().filter(|j| j.state == JobState::WaitingBudget).count();
        if jobs.len() == 5 && archived == 2 && waiting == 3 {
            break jobs;
        }
        assert!(tokio::time::Instant::now() < deadline, "{jobs:#?}\n{}", daemon.logs());
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let stats = daemon._sim.stats();
    assert_eq!((stats.accepted, stats.spent_fen), (2, 500), "the simulator was asked for exactly what the budget pays");
    let waiting = jobs.iter().find(|j| j.state == JobState::WaitingBudget).expect("a waiting job");
    let reason = waiting.error.as_ref().map(|e| e.message.as_str());
    assert_eq!(reason, Some("daily budget 5.00 RMB: 5.00 spent, next day starts 00:00 Asia/Shanghai"));
    let show = Command::new(env!("CARGO_BIN_EXE_vidkeep"))
        .args(["show", "--config"])
        .arg(daemon.path("vidkeep.toml"))
        .arg(&waiting.id)
        .output()
        .expect("show");
    let show = String::from_utf8_lossy(&show.stdout);
    assert!(show.contains("waiting_budget") && show.contains("daily budget 5.00 RMB"), "{show}");

    // A raise by SIGHUP lets the rest go, without anything dropped again.
    std::fs::write(daemon.path("vidkeep.toml"), with_budget("12.5")).expect("write config");
    daemon.signal(libc::SIGHUP);
    let deadline = tokio::time::Instant::now() + WAIT;
    while daemon.jobs().iter().filter(|j| j.state == JobState::Archived).count() < 5 {
        assert!(tokio::time::Instant::now() < deadline, "{:#?}\n{}", daemon.jobs(), daemon.logs());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let stats = daemon._sim.stats();
    assert_eq!((stats.accepted, stats.spent_fen), (5, 1250));
    let done = daemon.wait_job("b4.json", |j| j.spec_place == SpecPlace::Done).await;
    assert_eq!(done.charged_fen, 250);

    // The ledger as a studio holds it against the bill: one CSV row per charged submission.
    let csv = Command::new(env!("CARGO_BIN_EXE_vidkeep"))
        .args(["spend", "--format", "csv", "--config"])
        .arg(daemon.path("vidkeep.toml"))
        .output()
        .expect("spend");
    let csv = String::from_utf8_lossy(&csv.stdout).into_owned();
    let rows: Vec<&str> = csv.lines().skip(1).collect();
    assert_eq!(rows.len(), 5, "{csv}");
    assert!(rows.iter().all(|r| r.ends_with(",2.50,charged") && r.contains(",viduq1-text,")), "{csv}");
    let report: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(daemon.path(&format!("inbox/done/{}.report.json", done.spec_file))).expect("report"),
    )
    .expect("report JSON");
    assert_eq!(report["cost"]["charged_rmb"], "2.50", "{report}");
    let (exit, _, logs) = daemon.stop().await;
    assert!(exit.success(), "{logs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_show_spend_by_model_and_what_is_left_of_the_budget() {
    let mut env = Env::new(fast_sim(), "", "[budget]\ndaily = 5\nmonthly = \"100\"\n").await;
    let url = env.start_serving(None).await;
    env.drop_spec("a.json", &json!({"model": "viduq1-text", "prompt": "a lighthouse"}).to_string());
    env.wait_all_ended(1).await;
    let (_, text) = get(&format!("{url}/metrics")).await;
    assert!(text.contains("vidkeep_spend_month_fen{model=\"viduq1-text\"} 250"), "{text}");
    assert!(text.contains("vidkeep_budget_remaining_fen{period=\"daily\"} 250"), "{text}");
    assert!(text.contains("vidkeep_budget_remaining_fen{period=\"monthly\"} 9750"), "{text}");
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newline_or_ansi_escape_in_a_name_never_forges_a_log_line() {
    let daemon = Daemon::start(fast_sim(), "human").await;
    daemon.until("READY=1").await;
    let inbox = daemon.path("inbox");
    // A file name, an image path in a spec and a field name, each with a newline that would
    // start a forged line and an ANSI escape that would colour a terminal.
    let forged = "\n2026-12-01T00:00:00Z  INFO FORGED: all specs archived\x1b[31m";
    drop_spec(&inbox, &format!("name{forged}.json"), "a lighthouse at dawn");
    let image = json!({ "model": "viduq1-image", "prompt": "x", "image_url": [format!("a{forged}.png")] });
    std::fs::write(inbox.join("image.json"), image.to_string()).expect("write spec");
    std::fs::write(inbox.join("field.json"), json!({ "prompt": "x", format!("f{forged}"): 1 }).to_string())
        .expect("write spec");
    daemon.wait_job("name%0A2026-12-01T00:00:00Z  INFO FORGED: all specs archived%1B[31m.json", |_| true).await;
    daemon.wait_logs(&["image.json", "field.json"]).await;
    let (status, _, logs) = daemon.stop().await;
    assert!(status.success(), "{logs}");
    assert!(!logs.contains('\x1b'), "an escape reached the log:\n{logs}");
    for line in logs.lines() {
        assert!(!line.starts_with("2026-12-01T00:00:00Z"), "a forged line:\n{logs}");
    }
    // Each hostile text is there, escaped, on the line that speaks of it.
    let escaped = "%0A2026-12-01T00:00:00Z  INFO FORGED: all specs archived%1B[31m";
    for (file, what) in [("name", "spec accepted"), ("image.json", "spec rejected"), ("field.json", "spec rejected")] {
        assert!(
            logs.lines().any(|l| l.contains(file) && l.contains(what) && l.contains(escaped)),
            "no escaped line for {file}:\n{logs}"
        );
    }
}
