//! End-to-end tests of the simulator over HTTP, with reqwest as the client.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{ACCEPT_RANGES, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, RANGE};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::media::CLIPS_Q1;
use super::*;

mod faults;
mod refusals;
mod sdk;

/// A config whose tasks finish within 300 ms: long enough to see them `PROCESSING` on a busy
/// machine, short enough for quick tests.
fn fast() -> SimConfig {
    SimConfig {
        latency_min: Duration::from_millis(200),
        latency_max: Duration::from_millis(300),
        ..SimConfig::default()
    }
}

fn text_request() -> Value {
    json!({"model": "viduq1-text", "prompt": "A red fox runs through snow", "style": "anime"})
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// The business code of an error body.
fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("<no code>")
}

/// A simulator on a loopback port and a client for it.
struct Fixture {
    sim: SimHandle,
    http: reqwest::Client,
}

impl Fixture {
    async fn new(config: SimConfig) -> Fixture {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let sim = start(config, listener).await.expect("simulator starts");
        Fixture { sim, http: reqwest::Client::new() }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.sim.base_url())
    }

    /// Submits `body` with the default key.
    async fn submit(&self, body: &Value) -> (StatusCode, Value) {
        let request = self.http.post(self.url("/videos/generations")).bearer_auth(SimConfig::default().api_key);
        answer(request.json(body)).await
    }

    async fn poll(&self, id: &str) -> (StatusCode, Value) {
        answer(self.http.get(self.url(&format!("/async-result/{id}"))).bearer_auth(SimConfig::default().api_key)).await
    }

    /// Submits `body`, which must be accepted; returns the task id.
    async fn submit_ok(&self, body: &Value) -> String {
        let (status, answer) = self.submit(body).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        answer["id"].as_str().expect("id").to_owned()
    }

    /// Polls until the task has ended; returns the last answer.
    async fn wait_done(&self, id: &str) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let (status, answer) = self.poll(id).await;
            assert_eq!(status, StatusCode::OK, "{answer}");
            if !matches!(answer["task_status"].as_str(), Some("PROCESSING" | "SUBMITTED")) {
                return answer;
            }
            assert!(tokio::time::Instant::now() < deadline, "task {id} never ended");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// A task run to success; returns (id, video URL, cover URL).
    async fn finished_task(&self) -> (String, String, String) {
        let id = self.submit_ok(&text_request()).await;
        let done = self.wait_done(&id).await;
        assert_eq!(done["task_status"], "SUCCESS", "{done}");
        let result = &done["video_result"][0];
        let url = |field: &str| result[field].as_str().expect("url").to_owned();
        (id, url("url"), url("cover_image_url"))
    }

    async fn get(&self, url: &str, range: Option<&str>) -> reqwest::Response {
        let mut request = self.http.get(url);
        if let Some(range) = range {
            request = request.header(RANGE, range);
        }
        request.send().await.expect("download answers")
    }

    async fn get_bytes(&self, url: &str, range: Option<&str>) -> (StatusCode, reqwest::header::HeaderMap, Vec<u8>) {
        let response = self.get(url, range).await;
        let (status, headers) = (response.status(), response.headers().clone());
        (status, headers, response.bytes().await.expect("whole body").to_vec())
    }
}

async fn answer(request: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let response = request.send().await.expect("simulator answers");
    let status = response.status();
    (status, response.json().await.expect("JSON body"))
}

#[tokio::test]
async fn text_task_runs_from_processing_to_success() {
    let f = Fixture::new(fast()).await;
    let (status, submitted) = f.submit(&text_request()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(submitted["model"], "viduq1-text");
    assert_eq!(submitted["task_status"], "PROCESSING");
    let id = submitted["id"].as_str().expect("id");
    assert_eq!(submitted["request_id"], id, "without a request_id, id == request_id");
    assert_eq!(id.len(), 30);
    assert!(id[..14].bytes().all(|b| b.is_ascii_digit()), "{id}");
    assert!(id[14..].bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)), "{id}");

    let (_, polled) = f.poll(id).await;
    assert_eq!(polled["task_status"], "PROCESSING", "{polled}");
    assert!(polled["created"].as_u64().is_some_and(|c| c > 1_700_000_000), "{polled}");
    assert!(polled.get("video_result").is_none());

    let done = f.wait_done(id).await;
    assert_eq!(done["task_status"], "SUCCESS");
    assert_eq!(done["id"], id);
    assert_eq!(done["usage"], json!({"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}));
    let task = f.sim.task(id).expect("task");
    assert_eq!(task.status, "SUCCESS");
    assert_eq!(task.request, text_request());
    assert_eq!(done["video_result"], json!([{"url": task.video_url, "cover_image_url": task.cover_url}]));
    let origin = format!("http://{}/api/cogvideo/", f.sim.addr());
    assert!(task.video_url.starts_with(&origin) && task.video_url.ends_with("_0.mp4"), "{}", task.video_url);
    assert!(task.cover_url.ends_with("_cover_0.jpeg"), "{}", task.cover_url);

    let stats = f.sim.stats();
    assert_eq!((stats.accepted, stats.in_flight, stats.max_in_flight), (1, 0, 1));
    assert_eq!(stats.accepted_by_request_id.get(id), Some(&1));
    assert_eq!(stats.spent_fen, 250);
    assert!(stats.polls >= 2);
}

#[tokio::test]
async fn downloads_serve_exactly_the_hashed_bytes_unique_per_task() {
    let f = Fixture::new(fast()).await;
    let (id, video_url, cover_url) = f.finished_task().await;
    let task = f.sim.task(&id).expect("task");

    let (status, headers, video) = f.get_bytes(&video_url, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[CONTENT_TYPE], "video/mp4");
    assert_eq!(headers[ACCEPT_RANGES], "bytes");
    assert_eq!(headers[CONTENT_LENGTH], task.video_bytes.to_string().as_str());
    assert_eq!(video.len() as u64, task.video_bytes);
    assert_eq!(sha256_hex(&video), task.video_sha256);
    assert!(CLIPS_Q1.iter().any(|c| video.starts_with(c)), "the video is a bundled clip plus a trailing box");

    let (status, headers, cover) = f.get_bytes(&cover_url, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[CONTENT_TYPE], "image/jpeg");
    assert_eq!((cover.len() as u64, sha256_hex(&cover)), (task.cover_bytes, task.cover_sha256.clone()));
    assert!(cover.starts_with(&[0xFF, 0xD8]));

    let (other, other_url, _) = f.finished_task().await;
    let (_, _, other_video) = f.get_bytes(&other_url, None).await;
    assert_ne!(sha256_hex(&other_video), task.video_sha256, "each task's video is unique");
    assert_eq!(sha256_hex(&other_video), f.sim.task(&other).expect("task").video_sha256);
    assert_eq!(f.sim.stats().downloads, 3);
}

#[tokio::test]
async fn the_time_from_success_to_the_first_video_request_is_counted_once_per_task() {
    let f = Fixture::new(fast()).await;
    let (id, video_url, cover_url) = f.finished_task().await;
    let waited = Duration::from_millis(150);
    tokio::time::sleep(waited).await;
    // A cover first: it does not count; then the video twice: only the first counts.
    assert_eq!(f.get_bytes(&cover_url, None).await.0, StatusCode::OK);
    assert!(f.sim.stats().ready_to_download_ms.is_empty(), "a cover is not the video");
    assert_eq!(f.get_bytes(&video_url, None).await.0, StatusCode::OK);
    assert_eq!(f.get_bytes(&video_url, Some("bytes=0-9")).await.0, StatusCode::PARTIAL_CONTENT);
    let delays = f.sim.stats().ready_to_download_ms;
    assert_eq!(delays.len(), 1, "one task, one first request: {delays:?}");
    // The task succeeded at submit + latency; `wait_done` saw it at most one 20 ms poll later.
    assert_eq!(f.sim.task(&id).expect("task").status, "SUCCESS");
    assert!(delays[0] >= 150, "at least the wait after success: {delays:?}");
    assert!(delays[0] < 5_000, "measured from success, not from submission: {delays:?}");
}

#[tokio::test]
async fn single_ranges_get_206_and_bad_ones_416() {
    let f = Fixture::new(fast()).await;
    let (_, video_url, _) = f.finished_task().await;
    let (_, _, full) = f.get_bytes(&video_url, None).await;
    let len = full.len();

    let (status, headers, part) = f.get_bytes(&video_url, Some("bytes=100-199")).await;
    assert_eq!(status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(headers[CONTENT_RANGE], format!("bytes 100-199/{len}").as_str());
    assert_eq!(headers[CONTENT_LENGTH], "100");
    assert_eq!(part, &full[100..200]);

    let (status, headers, tail) = f.get_bytes(&video_url, Some("bytes=-10")).await;
    assert_eq!(status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(headers[CONTENT_RANGE], format!("bytes {}-{}/{len}", len - 10, len - 1).as_str());
    assert_eq!(tail, &full[len - 10..]);

    // The clip is chosen by task id and the smallest is 16 KiB, so the open range starts
    // halfway through whichever clip this task got.
    let mid = len / 2;
    let (status, _, rest) = f.get_bytes(&video_url, Some(&format!("bytes={mid}-"))).await;
    assert_eq!(status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(rest, &full[mid..]);

    let (status, headers, _) = f.get_bytes(&video_url, Some(&format!("bytes={len}-"))).await;
    assert_eq!(status, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(headers[CONTENT_RANGE], format!("bytes */{len}").as_str());

    let (status, _, whole) = f.get_bytes(&video_url, Some("bytes=0-1,5-9")).await;
    assert_eq!((status, whole.len()), (StatusCode::OK, len), "multi-range gets the full body");
}

#[tokio::test]
async fn padded_videos_stream_at_the_asked_size() {
    let mib = 1024 * 1024;
    let f = Fixture::new(SimConfig { video_bytes: Some(mib), ..fast() }).await;
    let (id, video_url, _) = f.finished_task().await;
    let task = f.sim.task(&id).expect("task");
    assert_eq!(task.video_bytes, mib);
    let (status, headers, video) = f.get_bytes(&video_url, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[CONTENT_LENGTH], mib.to_string().as_str());
    assert_eq!(video.len() as u64, mib);
    assert_eq!(sha256_hex(&video), task.video_sha256);
    let (_, _, part) = f.get_bytes(&video_url, Some("bytes=500000-700000")).await;
    assert_eq!(part, &video[500_000..=700_000]);
}

#[tokio::test]
async fn result_urls_expire_after_the_ttl() {
    let f = Fixture::new(SimConfig { url_ttl: Duration::from_secs(1), ..fast() }).await;
    let (id, video_url, cover_url) = f.finished_task().await;
    assert_eq!(f.get(&video_url, None).await.status(), StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(f.get(&video_url, None).await.status(), StatusCode::NOT_FOUND);
    assert_eq!(f.get(&cover_url, None).await.status(), StatusCode::NOT_FOUND);
    let (_, polled) = f.poll(&id).await;
    assert_eq!(polled["task_status"], "SUCCESS", "the task itself stays queryable");
    let unknown = video_url.replace("_0.mp4", "_1.mp4");
    assert_eq!(f.get(&unknown, None).await.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn files_are_not_served_before_success() {
    let f = Fixture::new(SimConfig {
        latency_min: Duration::from_secs(30),
        latency_max: Duration::from_secs(30),
        ..fast()
    })
    .await;
    let id = f.submit_ok(&text_request()).await;
    let task = f.sim.task(&id).expect("task");
    assert_eq!(task.status, "PROCESSING");
    assert_eq!(f.get(&task.video_url, None).await.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn admin_routes_serve_stats_and_tasks() {
    let f = Fixture::new(fast()).await;
    let (id, _, _) = f.finished_task().await;
    let admin = |path: &str| format!("http://{}/_sim/{path}", f.sim.addr());
    let stats: SimStats = f.http.get(admin("stats")).send().await.expect("stats").json().await.expect("json");
    assert_eq!(stats.accepted, 1);
    let tasks: Vec<SimTask> = f.http.get(admin("tasks")).send().await.expect("tasks").json().await.expect("json");
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0].id, id);
    let task: SimTask =
        f.http.get(admin(&format!("tasks/{id}"))).send().await.expect("task").json().await.expect("json");
    assert_eq!(task.video_sha256, f.sim.task(&id).expect("task").video_sha256);
    let missing = f.http.get(admin("tasks/nope")).send().await.expect("answer");
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn config_reads_from_toml_with_defaults() {
    let config: SimConfig = toml::from_str(
        "latency_min = \"50ms\"\nlatency_max = \"1s\"\nseed = 9\n[model_limits]\ncogvideox-3 = 1\n[faults]\nfail = 0.5\n",
    )
    .expect("parses");
    assert_eq!(config.latency_min, Duration::from_millis(50));
    assert_eq!(config.url_ttl, Duration::from_secs(86_400));
    assert_eq!(config.limit_for("cogvideox-3"), 1);
    assert_eq!(config.limit_for("viduq1-text"), 5);
    assert!((config.faults.fail - 0.5).abs() < f64::EPSILON);
    assert!(toml::from_str::<SimConfig>("latency = \"1s\"\n").is_err(), "unknown keys are refused");
}

#[tokio::test]
async fn impossible_configs_are_refused() {
    for config in [
        SimConfig { latency_min: Duration::from_secs(2), latency_max: Duration::from_secs(1), ..fast() },
        SimConfig { faults: Faults { fail: 1.5, ..Faults::default() }, ..fast() },
        SimConfig { faults: Faults { poll_5xx: f64::NAN, ..Faults::default() }, ..fast() },
    ] {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let err = start(config, listener).await.expect_err("refused");
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    }
}

#[tokio::test]
async fn shutdown_stops_the_server() {
    let f = Fixture::new(fast()).await;
    let url = f.url("/async-result/x");
    f.sim.shutdown().await;
    assert!(f.http.get(url).send().await.is_err(), "nothing listens any more");
}

#[test]
fn unspecified_addresses_become_loopback_in_urls() {
    let any: SocketAddr = "0.0.0.0:8080".parse().expect("addr");
    assert_eq!(reachable(any).to_string(), "127.0.0.1:8080");
    let any6: SocketAddr = "[::]:8080".parse().expect("addr");
    assert_eq!(reachable(any6).to_string(), "[::1]:8080");
    let one: SocketAddr = "10.1.2.3:80".parse().expect("addr");
    assert_eq!(reachable(one), one);
}

#[test]
fn the_example_sim_toml_loads_and_documents_every_setting() {
    let text = include_str!("../../examples/sim.toml");
    let parsed: SimConfig = toml::from_str(text).expect("examples/sim.toml is a valid simulator config");
    // It states the defaults: loading it changes nothing.
    let defaults = SimConfig::default();
    assert_eq!(toml::to_string(&parsed).ok(), toml::to_string(&defaults).ok());
    // Every setting and every fault is named in it (set or commented out).
    let all = serde_json::to_value(&defaults).expect("json");
    let mut keys: Vec<String> = all.as_object().expect("object").keys().cloned().collect();
    keys.extend(all["faults"].as_object().expect("faults").keys().cloned());
    for key in keys {
        assert!(
            text.lines()
                .any(|l| l.trim_start_matches(['#', ' ']).starts_with(&format!("{key} "))
                    || l.contains(&format!("[{key}]"))),
            "examples/sim.toml does not document `{key}`"
        );
    }
}
