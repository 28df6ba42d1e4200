//! Hostile network input (issue 10, items 7–9 and part of 12): half-sent HTTP requests, bloated
//! and endless platform answers, result URLs that point where they should not, are endless,
//! crawl or redirect for ever, and a platform that asks to be left alone for years.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use vidkeep::jobs::JobState;
use vidkeep::sim::{self, SimConfig};

use crate::support::{Env, WAIT, fast_sim};

// ---------------------------------------------------------------------------------------------
// A scripted platform: every task succeeds at once, with a video URL picked per task.

/// What the scripted platform does.
#[derive(Default)]
struct Script {
    origin: OnceLock<String>,
    /// Video URL per task id (`{origin}` is replaced by the platform's origin).
    urls: Mutex<Vec<String>>,
    submits: AtomicU64,
    /// Answer the first submit with 429 `1305` and an absurd `Retry-After`.
    busy_first: AtomicBool,
    /// `Authorization` headers seen by the result host, per path.
    result_auth: Mutex<BTreeMap<String, Option<String>>>,
}

impl Script {
    fn url(&self, id: usize) -> String {
        let origin = self.origin.get().cloned().unwrap_or_default();
        let urls = self.urls.lock().expect("urls");
        urls.get(id).cloned().unwrap_or_default().replace("{origin}", &origin)
    }
}

async fn scripted(script: Arc<Script>) -> String {
    async fn submit(State(s): State<Arc<Script>>) -> Response {
        if s.busy_first.swap(false, Ordering::SeqCst) {
            let body = r#"{"error":{"code":"1305","message":"busy"}}"#;
            return (StatusCode::TOO_MANY_REQUESTS, [(header::RETRY_AFTER, "9999999999")], body).into_response();
        }
        let n = s.submits.fetch_add(1, Ordering::SeqCst);
        axum::Json(json!({"id": n.to_string(), "task_status": "PROCESSING"})).into_response()
    }
    async fn poll(State(s): State<Arc<Script>>, UrlPath(id): UrlPath<usize>) -> Response {
        let url = s.url(id);
        axum::Json(json!({"task_status": "SUCCESS", "model": "viduq1-text",
                          "video_result": [{"url": url, "cover_image_url": null}]}))
        .into_response()
    }
    async fn video(State(s): State<Arc<Script>>, UrlPath(name): UrlPath<String>, headers: HeaderMap) -> Response {
        let auth = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).map(str::to_owned);
        s.result_auth.lock().expect("auth").insert(name, auth);
        let clip = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/sim/clip.mp4")).expect("clip");
        ([(header::CONTENT_TYPE, "video/mp4")], clip).into_response()
    }
    /// `/hop/{n}/{name}`: redirects `n` more times, then to `/video/{name}`.
    async fn hop(UrlPath((n, name)): UrlPath<(u32, String)>) -> Response {
        let to = if n == 0 { format!("/video/{name}") } else { format!("/hop/{}/{name}", n - 1) };
        (StatusCode::FOUND, [(header::LOCATION, to)]).into_response()
    }
    async fn to(UrlPath(target): UrlPath<String>) -> Response {
        let to = match target.as_str() {
            "file" => "file:///etc/passwd",
            "metadata" => "http://169.254.169.254/latest/meta-data/",
            _ => "/nowhere",
        };
        (StatusCode::FOUND, [(header::LOCATION, to)]).into_response()
    }
    async fn endless() -> Response {
        let chunk = bytes::Bytes::from(vec![0u8; 64 * 1024]);
        let body = futures::stream::repeat_with(move || Ok::<_, std::io::Error>(chunk.clone()));
        ([(header::CONTENT_TYPE, "video/mp4")], Body::from_stream(body)).into_response()
    }
    async fn trickle() -> Response {
        // One byte, then nothing (and no end), as a link trickling a byte now and then.
        let first = futures::stream::once(async { Ok::<_, std::io::Error>(bytes::Bytes::from_static(b"\0")) });
        let body = first.chain(futures::stream::pending());
        ([(header::CONTENT_TYPE, "video/mp4")], Body::from_stream(body)).into_response()
    }
    use futures::StreamExt as _;
    let app = axum::Router::new()
        .route("/api/paas/v4/videos/generations", post(submit))
        .route("/api/paas/v4/async-result/{id}", get(poll))
        .route("/video/{name}", get(video))
        .route("/hop/{n}/{name}", get(hop))
        .route("/to/{target}", get(to))
        .route("/endless", get(endless))
        .route("/trickle", get(trickle))
        .with_state(Arc::clone(&script));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let origin = format!("http://{}", listener.local_addr().expect("addr"));
    script.origin.set(origin.clone()).expect("origin set once");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("{origin}/api/paas/v4")
}

async fn scripted_env(script: &Arc<Script>) -> Env {
    let base_url = scripted(Arc::clone(script)).await;
    let mut env = Env::new(fast_sim(), "", "[defaults]\nmodel = \"viduq1-text\"\n").await;
    env.config.api.base_url = base_url;
    env.config.probe.enabled = false;
    env
}

// ---------------------------------------------------------------------------------------------
// Item 9: result URLs.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn result_urls_are_checked_capped_and_refused_for_good() {
    let script = Arc::new(Script::default());
    let origin_port = |s: &Script| s.origin.get().and_then(|o| o.rsplit(':').next().map(str::to_owned));
    let cases: Vec<(&str, &str, &str)> = vec![
        ("ok", "{origin}/hop/2/ok", "archived"),
        ("endless", "{origin}/endless", "download-too-big"),
        ("file", "file:///etc/passwd", "download-refused"),
        ("ftp", "ftp://127.0.0.1/v.mp4", "download-refused"),
        ("to-file", "{origin}/to/file", "download-refused"),
        ("to-metadata", "{origin}/to/metadata", "download-refused"),
        ("loop", "{origin}/hop/11/loop", "download-refused"),
        ("credentials", "http://user:secret@{host}/video/credentials", "download-refused"),
        ("by-name", "http://localhost:{port}/video/by-name", "download-refused"),
        ("private", "http://10.1.2.3/v.mp4", "download-refused"),
        ("trickle", "{origin}/trickle", "download-slow"),
    ];
    let mut env = scripted_env(&script).await;
    let (host, port) = {
        let origin = script.origin.get().expect("origin");
        (origin.trim_start_matches("http://").to_owned(), origin_port(&script).expect("port"))
    };
    *script.urls.lock().expect("urls") =
        cases.iter().map(|(_, url, _)| url.replace("{host}", &host).replace("{port}", &port)).collect();
    // Names limited to these two; only loopback (the scripted host) opened among the private
    // networks, so the metadata address is refused for what it is, not for its name.
    env.config.archive.allowed_hosts = vec!["127.0.0.1".into(), "169.254.169.254".into(), "10.1.2.3".into()];
    env.config.archive.max_bytes = 1024 * 1024;
    env.config.archive.min_bytes_per_second = 1000;
    env.config.archive.stall_timeout = Duration::from_secs(1);
    env.config.api.max_in_flight = 1;
    env.start();
    // One at a time, so task ids follow the drop order.
    for (i, (name, _, _)) in cases.iter().enumerate() {
        env.drop_spec(&format!("{i:02}-{name}.txt"), &format!("case {name}"));
        env.wait_until(name, |jobs| jobs.len() > i && jobs.iter().all(|j| j.task_id.is_some())).await;
    }
    let jobs = env
        .wait_until("every case decided", |jobs| {
            jobs.len() == cases.len()
                && jobs.iter().all(|j| {
                    j.state.is_archived()
                        || j.state == JobState::Failed
                        || j.error.as_ref().is_some_and(|e| e.code == "download-slow")
                })
        })
        .await;
    for (i, (name, _, want)) in cases.iter().enumerate() {
        let job = jobs.iter().find(|j| j.task_id.as_deref() == Some(&i.to_string())).expect("job per case");
        let code = job.error.as_ref().map(|e| e.code.as_str());
        if *want == "archived" {
            assert!(job.state.is_archived(), "{name}: {:?} {:?}", job.state, job.error);
        } else if *want == "download-slow" {
            assert_eq!(job.state, JobState::Downloading, "{name}: a slow link is retried later, not failed");
            assert_eq!(code, Some(*want), "{name}");
        } else {
            assert_eq!((job.state, code), (JobState::Failed, Some(*want)), "{name}: {:?}", job.error);
            let message = &job.error.as_ref().expect("error").message;
            assert!(!message.contains("builder error") && !message.contains("secret"), "{name}: {message}");
        }
    }
    let says = |name: &str, what: &str| {
        let i = cases.iter().position(|(n, _, _)| *n == name).expect("case");
        let job = jobs.iter().find(|j| j.task_id.as_deref() == Some(&i.to_string())).expect("job");
        let message = job.error.as_ref().map(|e| e.message.clone()).unwrap_or_default();
        assert!(message.contains(what), "{name}: {message}");
    };
    says("to-metadata", "link-local");
    says("private", "private");
    says("to-file", "file:");
    says("by-name", "allowed_hosts");
    says("loop", "redirects");
    let auth = script.result_auth.lock().expect("auth").clone();
    assert_eq!(auth.get("ok"), Some(&None), "the result host never sees an Authorization header: {auth:?}");
    assert!(!auth.contains_key("credentials") && !auth.contains_key("by-name"), "refused links are not fetched");
    let stored: u64 = walk(&env.archive_dir()).iter().map(|p| p.metadata().map(|m| m.len()).unwrap_or(0)).sum();
    assert!(stored < 4 * 1024 * 1024, "the endless body was not archived: {stored} bytes stored");
    env.stop().await;
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() { out.extend(walk(&path)) } else { out.push(path) }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Item 12: Retry-After and tasks that never finish.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_absurd_retry_after_does_not_park_a_job() {
    let script = Arc::new(Script::default());
    script.busy_first.store(true, Ordering::SeqCst);
    let mut env = scripted_env(&script).await;
    *script.urls.lock().expect("urls") = vec!["{origin}/video/a".to_owned()];
    env.start();
    env.drop_spec("a.txt", "a fox");
    let jobs = env.wait_all_ended(1).await;
    assert!(jobs[0].state.is_archived(), "{:?} {:?}", jobs[0].state, jobs[0].error);
    assert_eq!(script.submits.load(Ordering::SeqCst), 1);
    env.stop().await;
}

/// A platform whose tasks never finish (and answer an unknown status), with a 1 s task deadline.
async fn never_finishing() -> Env {
    let mut sim_config = fast_sim();
    sim_config.latency_min = Duration::from_secs(3600);
    sim_config.latency_max = Duration::from_secs(3600);
    sim_config.faults.unknown_status = 1.0;
    let mut env = Env::new(sim_config, "", "[defaults]\nmodel = \"viduq1-text\"\n").await;
    env.config.jobs.task_deadline = Duration::from_secs(1);
    env
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_that_never_finishes_becomes_uncertain_at_its_deadline() {
    let mut env = never_finishing().await;
    env.start();
    env.drop_spec("stuck.txt", "a fox that never renders");
    let jobs = env.wait_until("uncertain", |jobs| jobs.iter().any(|j| j.state == JobState::Uncertain)).await;
    let error = jobs[0].error.clone().expect("a reason");
    assert_eq!(error.code, "task-deadline");
    assert!(error.message.contains("SUBMITTED") && error.message.contains("vidkeep resolve"), "{}", error.message);
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_resubmit_policy_never_pays_again_for_a_task_the_platform_accepted() {
    // The policy resubmits a job whose submission's answer was lost; a task that reached its
    // deadline was accepted (and charged): sending it again would pay twice.
    let mut env = never_finishing().await;
    env.config.jobs.uncertain = vidkeep::config::UncertainPolicy::Resubmit;
    env.start();
    env.drop_spec("stuck.txt", "a fox that never renders");
    env.wait_until("uncertain", |jobs| jobs.iter().any(|j| j.state == JobState::Uncertain)).await;
    // Several engine turns with the policy in force.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let jobs = env.jobs();
    assert_eq!(jobs[0].state, JobState::Uncertain, "left for a person: {:?}", jobs[0].error);
    assert_eq!(env.sim.stats().accepted, 1, "not paid twice");
    env.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Item 8: platform answers.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bloated_answer_is_stored_bounded() {
    let mut sim_config = fast_sim();
    sim_config.answer_padding = Some(3 * 1024 * 1024);
    let mut env = Env::new(sim_config, "", "[defaults]\nmodel = \"viduq1-text\"\n").await;
    env.start();
    env.drop_spec("big.txt", "a fox");
    let jobs = env.wait_all_ended(1).await;
    assert!(jobs[0].state.is_archived(), "{:?} {:?}", jobs[0].state, jobs[0].error);
    let raw = jobs[0].result_json.clone().expect("result kept");
    assert!(raw.len() < 4096, "the catalogue keeps {} bytes of the answer", raw.len());
    assert!(raw.contains("vidkeep_excerpt") && raw.contains("video_result"), "{raw}");
    let sidecar = walk(&env.archive_dir()).into_iter().find(|p| p.ends_with("vidkeep.json")).expect("sidecar");
    let len = sidecar.metadata().expect("sidecar").len();
    assert!(len < 64 * 1024, "sidecar is {len} bytes");
    env.stop().await;
    let catalog = std::fs::metadata(&env.config.catalog.path).expect("catalogue").len();
    assert!(catalog < 2 * 1024 * 1024, "catalogue is {catalog} bytes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_answer_is_cut_and_the_job_ends_uncertain() {
    let mut sim_config = fast_sim();
    sim_config.faults.endless_answer = 1.0;
    let mut env = Env::new(sim_config, "", "[defaults]\nmodel = \"viduq1-text\"\n").await;
    env.config.jobs.task_deadline = Duration::from_secs(2);
    let url = env.start_serving(None).await;
    env.drop_spec("endless.txt", "a fox");
    let jobs = env.wait_until("uncertain", |jobs| jobs.iter().any(|j| j.state == JobState::Uncertain)).await;
    assert_eq!(jobs[0].error.as_ref().map(|e| e.code.as_str()), Some("task-deadline"));
    let metrics = reqwest::get(format!("{url}/metrics")).await.expect("metrics").text().await.expect("text");
    assert!(metrics.contains("api-answer-too-big"), "the answer was cut at the cap: {metrics}");
    env.stop().await;
    let catalog = std::fs::metadata(&env.config.catalog.path).expect("catalogue").len();
    assert!(catalog < 2 * 1024 * 1024, "catalogue is {catalog} bytes");
}

// ---------------------------------------------------------------------------------------------
// Item 7: the HTTP server, against the built binary (its descriptors and its stop are its own).

const KEY_ENV: &str = "VIDKEEP_NETWORK_TEST_KEY";

struct Binary {
    dir: tempfile::TempDir,
    child: Child,
    http: String,
    _sim: sim::SimHandle,
}

impl Binary {
    async fn start(http_extra: &str, grace: &str) -> Binary {
        let dir = tempfile::tempdir().expect("tempdir");
        let sim = sim::start(fast_sim(), tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind"))
            .await
            .expect("sim");
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("free port").local_addr().expect("addr").port();
        let http = format!("127.0.0.1:{port}");
        let text = format!(
            "[api]\nbase_url = \"{}\"\napi_key_env = \"{KEY_ENV}\"\npoll_interval = \"100ms\"\nrequest_timeout = \"5s\"\n\
             [watch]\ndir = \"inbox\"\nquiet_period = \"300ms\"\nrescan_interval = \"1s\"\n\
             [storage]\nurl = \"archive\"\n[catalog]\npath = \"catalog.sqlite\"\n\
             [archive]\nallowed_networks = [\"127.0.0.1\"]\n\
             [jobs]\nretry_base = \"50ms\"\nretry_max = \"500ms\"\nshutdown_grace = \"{grace}\"\n\
             [http]\nlisten = \"{http}\"\n{http_extra}\n[defaults]\nmodel = \"viduq1-text\"\n",
            sim.base_url()
        );
        std::fs::write(dir.path().join("vidkeep.toml"), text).expect("config");
        let child = Command::new(env!("CARGO_BIN_EXE_vidkeep"))
            .args(["run", "--config"])
            .arg(dir.path().join("vidkeep.toml"))
            .env(KEY_ENV, SimConfig::default().api_key)
            .env_remove("NOTIFY_SOCKET")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start vidkeep run");
        let mut b = Binary { dir, child, http, _sim: sim };
        let deadline = tokio::time::Instant::now() + WAIT;
        while b.get("/healthz").await != Some(200) {
            assert!(b.child.try_wait().expect("wait").is_none(), "vidkeep run exited");
            assert!(tokio::time::Instant::now() < deadline, "the HTTP server never answered");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        b
    }

    async fn get(&self, path: &str) -> Option<u16> {
        let client = reqwest::Client::builder().timeout(Duration::from_secs(20)).build().ok()?;
        client.get(format!("http://{}{path}", self.http)).send().await.ok().map(|r| r.status().as_u16())
    }

    fn fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.child.id())).map(|d| d.count()).unwrap_or(0)
    }

    /// A connection that sends half a request and then nothing.
    async fn half_sent(&self) -> TcpStream {
        let mut s = TcpStream::connect(&self.http).await.expect("connect");
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ").await.expect("write");
        s
    }

    fn terminate(&self) {
        let pid = rustix::process::Pid::from_raw(i32::try_from(self.child.id()).expect("pid")).expect("pid");
        rustix::process::kill_process(pid, rustix::process::Signal::TERM).expect("SIGTERM");
    }

    /// Waits up to `within` for the child to exit.
    async fn exited_within(&mut self, within: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        while tokio::time::Instant::now() < deadline {
            if self.child.try_wait().expect("wait").is_some() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_sent_connections_are_capped_and_cut_while_intake_goes_on() {
    let b = Binary::start("max_connections = 8\nheader_timeout = \"1s\"\nidle_timeout = \"2s\"", "2s").await;
    let before = b.fds();
    let mut held = Vec::new();
    for _ in 0..40 {
        held.push(b.half_sent().await);
    }
    // Give the server every chance to accept them all (it must not).
    let mut most = 0;
    for _ in 0..10 {
        most = most.max(b.fds());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(most <= before + 8 + 4, "{most} descriptors open, {before} before 40 half-sent connections (cap 8)");
    // Other requests still get through: the half-sent ones are cut after the header timeout.
    assert_eq!(b.get("/healthz").await, Some(200));
    // A half-sent connection is closed by the server.
    let mut first = held.remove(0);
    let mut buf = [0u8; 256];
    let read = tokio::time::timeout(Duration::from_secs(10), first.read(&mut buf)).await;
    assert!(matches!(read, Ok(Ok(_)) | Ok(Err(_))), "a half-sent request is not cut: {read:?}");
    // Intake works meanwhile.
    std::fs::write(b.dir.path().join("inbox/fox.txt"), "a fox in snow").expect("drop spec");
    let done = b.dir.path().join("inbox/done");
    let deadline = tokio::time::Instant::now() + WAIT;
    while !std::fs::read_dir(&done).is_ok_and(|mut d| d.next().is_some()) {
        assert!(tokio::time::Instant::now() < deadline, "the spec was not taken and archived");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_half_sent_request_does_not_hold_the_stop() {
    let mut b = Binary::start("header_timeout = \"5m\"\nidle_timeout = \"5m\"", "1s").await;
    let _held = b.half_sent().await;
    let _held2 = b.half_sent().await;
    // Let the server take them.
    tokio::time::sleep(Duration::from_millis(200)).await;
    b.terminate();
    assert!(b.exited_within(Duration::from_secs(10)).await, "vidkeep run did not stop within its grace period");
}
