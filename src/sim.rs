//! A faithful fake of the BigModel (Zhipu) asynchronous video API, for integration tests,
//! `vidkeep demo` and `vidkeep simulate`.
//!
//! # What is simulated
//!
//! Everything the daemon touches, on the real paths (`../shared/reference/bigmodel-video-api.md`
//! §1–§7):
//!
//! - `POST /api/paas/v4/videos/generations`: Bearer auth, the per-model request schemas of
//!   [`crate::spec::models`], duplicate `request_id` detection, per-model concurrency limits,
//!   an optional balance, and the platform's error bodies (`{"error":{"code":"1302",…}}`).
//! - `GET /api/paas/v4/async-result/{id}`: a task is `PROCESSING` for a latency drawn at submit,
//!   then `SUCCESS` (with `video_result` URLs) or `FAIL`. Status is a pure function of time, so
//!   no background work runs and a paused tokio clock drives it too.
//! - `GET /api/cogvideo/{uuid}_0.mp4` and `…_cover_0.jpeg`: playable files unique to each task
//!   (the bundled clip and cover, each carrying the task id), with single-range support, expiring
//!   [`SimConfig::url_ttl`] after the task's success.
//! - Faults ([`Faults`]): 5xx answers, platform overload, lost submit answers, failed tasks, cut
//!   downloads and unknown status values, each with a probability drawn from one seeded RNG.
//! - Admin routes for tests that run the simulator as another process: `GET /_sim/stats`,
//!   `GET /_sim/tasks`, `GET /_sim/tasks/{id}` (no auth).
//! - A request log ([`SimConfig::request_log`]): every API request as a JSON line with its
//!   headers and its body's exact text, so what a client sends can be recorded and compared
//!   (`tests/sdk/` records the official SDK's requests with it).
//!
//! # Defaults chosen for the reference's open questions (§12)
//!
//! 1. **Status vocabulary**: only `PROCESSING` → `SUCCESS` | `FAIL`; the `unknown_status` fault
//!    answers `SUBMITTED` to prove clients treat unknown values as non-terminal.
//! 2. **Task ids**: without `request_id`, `id == request_id` = `yyyyMMddHHmmss` (UTC) + 16 hex, as
//!    measured live; with one, it is echoed and a distinct 19-digit numeric `id` is minted, as in
//!    the old official example — so clients meet both id shapes.
//! 3. **FAIL payload**: `id`, `request_id`, `model`, `task_status`, `created`; no `video_result`
//!    and no `error`, as clients in the wild observe.
//! 4. **Extra result fields**: `created` always, `usage` (all zeros) on success; `model` is echoed
//!    exactly as sent, or in display case (`CogVideoX-Flash`) under the `model_case` fault.
//! 5. **Unknown ids**: HTTP 400 code `1233`. Tasks stay queryable for the simulator's lifetime,
//!    which covers the suggested "at least the URL validity".
//! 6. **Concurrency**: [`SimConfig::model_limit`] defaults to 5, the console figure for Vidu models
//!    on pay-as-you-go accounts. A task counts from submit until its latency has elapsed, polled
//!    or not; over the limit the submit is refused with HTTP 429 `1302`. Polls are never limited.
//!    `1305` comes only from the `submit_1305` fault.
//! 7. **Validation**: the shared table in [`crate::spec::models`], so the simulator and the spec
//!    parser cannot disagree. Unknown fields are accepted and ignored (the recommended default)
//!    unless [`SimConfig::reject_unknown_fields`] is set, then `1210`. A violation's message is the
//!    table's explanation, under the platform's code.
//! 8. **Images**: their form is checked (URL or base64 data URI, format, size); URLs are never
//!    fetched.
//! 9. **Duplicate `request_id`**: refused with `1231 您已有请求：<request_id>` while a task with it is
//!    `PROCESSING`; the earlier task's id is never returned. Once it has ended, the id may be
//!    reused.
//! 10. **Latency**: one uniform range for all models ([`SimConfig::latency_min`]..=
//!     [`SimConfig::latency_max`], default 2–5 s), because tests and demos want short, predictable
//!     runs; the real figures (§9) are minutes.
//! 11. **Result URLs**: the real path shape on the simulator's own host (or
//!     [`SimConfig::public_url`]); `404` once [`SimConfig::url_ttl`] (default 24 h) has passed since
//!     success; single `Range` requests are honoured, multi-range ones get the full body.
//! 12. **Auth**: the raw API key as a Bearer token (what current SDKs send by default), or an
//!     HS256 token signed with the key's secret as the SDKs make it, with or without `Bearer`
//!     (`jwt`). Missing → `1001`, an expired token → `1003`, anything else → `1002`, all HTTP 401.
//! 16. **Nulls**: a `null` field is not set, as the official SDK means it (it sends every unset
//!     argument as `null`). The SDK's fields outside a model's published schema (`off_peak`,
//!     `watermark_enabled`, `sensitive_word_check`, `quality`/`fps`/`with_audio` on Vidu) are
//!     type-checked and then ignored, as the real platform presumably ignores them.
//! 13. **Billing**: each accepted submit is charged the model's list price, lost answers and
//!     failed tasks included, with no refund — the cautious assumption for a client's ledger.
//! 14. **Language**: Chinese messages, as open.bigmodel.cn sends.
//! 15. **Retry-After**: never sent.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use std::{fmt, io};

use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::{CancellationToken, DropGuard};

pub use jwt::sign as sign_token;

mod cover;
mod jwt;
mod media;

mod routes;
mod state;
mod task;
mod wire;

#[cfg(test)]
mod tests;

/// How long [`SimHandle::shutdown`] waits for answers under way.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// How the simulated platform behaves. Every field has a default, so a TOML file for
/// `vidkeep simulate` names only what it changes.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SimConfig {
    /// The API key accepted as `Authorization: Bearer <api_key>`.
    pub api_key: String,
    /// Origin for result URLs (e.g. `http://sim.example:8080`); default `http://{bound address}`,
    /// with an unspecified bind address (`0.0.0.0`, `::`) replaced by loopback.
    pub public_url: Option<String>,
    /// Shortest time a task stays `PROCESSING`.
    #[serde(with = "humantime_serde")]
    pub latency_min: Duration,
    /// Longest time a task stays `PROCESSING`.
    #[serde(with = "humantime_serde")]
    pub latency_max: Duration,
    /// How long result URLs answer, counted from the task's success.
    #[serde(with = "humantime_serde")]
    pub url_ttl: Duration,
    /// Tasks in flight allowed per model; a submit over it is refused with HTTP 429 `1302`.
    pub model_limit: usize,
    /// Per-model overrides of [`SimConfig::model_limit`].
    pub model_limits: BTreeMap<String, usize>,
    /// Refuse fields outside the model's schema with `1210` instead of ignoring them.
    pub reject_unknown_fields: bool,
    /// Account balance in fen; `None` is unlimited. Each accepted submit is charged its model's
    /// price; a submit the balance cannot pay is refused with HTTP 429 `1113`.
    pub balance_fen: Option<u64>,
    /// Pad each video to at least this many bytes (inside a top-level MP4 `free` box). Files are
    /// generated as they are sent, so even gigabytes cost no memory.
    pub video_bytes: Option<u64>,
    /// Serve this MP4 file as every task's video instead of the bundled clip of its model
    /// (tests use it to feed a wrong or a truncated clip). Read when a task is made.
    pub clip_file: Option<std::path::PathBuf>,
    /// Serve result files at most this fast (bytes per second per download); unlimited when
    /// unset. Makes downloads last long enough to test what happens during one.
    pub download_rate: Option<u64>,
    /// Give each answer that carries result links a fresh query string (`?v=<n>`), as hosts with
    /// signed URLs do, so a client that asks again after a link failed gets a new one. Off by
    /// default: the platform's observed links are plain paths.
    pub fresh_links: bool,
    /// Seed for all randomness: latencies, faults, task ids and file keys. Unset, it is drawn
    /// from the clock, so two simulators never mint the same ids; the seed in use is logged and
    /// shown in [`SimStats::seed`], to replay a run.
    pub seed: Option<u64>,
    /// Append every API request (method, path, headers with the key described rather than
    /// copied, the body's exact text) to this file as one JSON line.
    pub request_log: Option<std::path::PathBuf>,
    /// Pad every poll answer with a `"pad"` field of this many bytes, as a platform answer
    /// bloated by a proxy or a bug would be; the answer stays valid JSON.
    pub answer_padding: Option<u64>,
    /// Fault injection.
    pub faults: Faults,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            api_key: "sim-key.sim-secret".to_owned(),
            public_url: None,
            latency_min: Duration::from_secs(2),
            latency_max: Duration::from_secs(5),
            url_ttl: Duration::from_secs(24 * 60 * 60),
            model_limit: 5,
            model_limits: BTreeMap::new(),
            reject_unknown_fields: false,
            balance_fen: None,
            video_bytes: None,
            clip_file: None,
            fresh_links: false,
            download_rate: None,
            seed: None,
            request_log: None,
            answer_padding: None,
            faults: Faults::default(),
        }
    }
}

impl SimConfig {
    /// The concurrency limit for `model`.
    fn limit_for(&self, model: &str) -> usize {
        self.model_limits.get(model).copied().unwrap_or(self.model_limit)
    }

    /// Refuses settings that cannot be simulated.
    fn check(&self) -> io::Result<()> {
        let invalid = |msg: String| Err(io::Error::new(io::ErrorKind::InvalidInput, msg));
        if self.latency_min > self.latency_max {
            return invalid(format!(
                "latency_min ({:?}) is greater than latency_max ({:?})",
                self.latency_min, self.latency_max
            ));
        }
        for (name, p) in self.faults.probabilities() {
            if !(0.0..=1.0).contains(&p) {
                return invalid(format!("faults.{name} is {p}; a probability must be between 0 and 1"));
            }
        }
        Ok(())
    }
}

/// Fault injection: each field is the probability (0.0..=1.0, default 0) that the fault hits one
/// request (or, for `fail`, one task).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// A submit answers HTTP 500 and creates no task.
    pub submit_5xx: f64,
    /// A submit answers HTTP 429 `1305` (platform overloaded) and creates no task.
    pub submit_1305: f64,
    /// The task is created and counted, but the answer is lost: status 200 and headers, then the
    /// body breaks off before any byte, so the client never learns the task id.
    pub submit_lost: f64,
    /// A poll answers HTTP 500.
    pub poll_5xx: f64,
    /// A task ends `FAIL` instead of `SUCCESS` (decided at submit).
    pub fail: f64,
    /// A result download sends about half of the body, then the connection is cut.
    pub download_reset: f64,
    /// A poll of a `PROCESSING` task answers `task_status: "SUBMITTED"` instead.
    pub unknown_status: f64,
    /// A submit answers HTTP 429 `1302` although the model is under its limit, as when the
    /// account's real limit is lower than the client believes. No task is created.
    pub submit_1302: f64,
    /// A result download announces the full `Content-Length`, sends about half of the body and
    /// ends it cleanly: a truncated body that only the length check can catch.
    pub download_truncate: f64,
    /// A result download answers 404 as if the link had expired; the next request may work.
    pub download_gone: f64,
    /// A poll answer echoes `model` in another case (`CogVideoX-Flash` for `cogvideox-flash`),
    /// as the platform has been seen to (reference §4).
    pub model_case: f64,
    /// A poll answers 200 with a JSON body that never ends.
    pub endless_answer: f64,
}

impl Faults {
    fn probabilities(&self) -> [(&'static str, f64); 12] {
        [
            ("submit_5xx", self.submit_5xx),
            ("submit_1305", self.submit_1305),
            ("submit_lost", self.submit_lost),
            ("poll_5xx", self.poll_5xx),
            ("fail", self.fail),
            ("download_reset", self.download_reset),
            ("unknown_status", self.unknown_status),
            ("submit_1302", self.submit_1302),
            ("download_truncate", self.download_truncate),
            ("download_gone", self.download_gone),
            ("model_case", self.model_case),
            ("endless_answer", self.endless_answer),
        ]
    }
}

/// Counters of what the simulator has seen, as of the moment they are read.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SimStats {
    /// Submissions that created a task, lost answers included.
    pub accepted: u64,
    /// Tasks created per `request_id` (the client's or the minted one).
    pub accepted_by_request_id: BTreeMap<String, u64>,
    /// Refused submissions per business code (`"1302"`, `"1214"`, `"500"`, …).
    pub refused: BTreeMap<String, u64>,
    /// Authenticated `async-result` requests.
    pub polls: u64,
    /// Tasks `PROCESSING` now.
    pub in_flight: usize,
    /// Most tasks ever in flight at once, across models.
    pub max_in_flight: usize,
    /// Most tasks ever in flight at once, per model.
    pub max_in_flight_by_model: BTreeMap<String, usize>,
    /// Result-file requests answered 200 or 206 (`HEAD` excluded).
    pub downloads: u64,
    /// Of those, the ones answered 206 to a `Range` request.
    pub ranged_downloads: u64,
    /// For each task whose video was asked for, the milliseconds from the task's success to the
    /// first request of its video (how long a client took to notice and fetch it), in the
    /// order the first requests came.
    #[serde(default)]
    pub ready_to_download_ms: Vec<u64>,
    /// Fen charged for accepted submissions.
    pub spent_fen: u64,
    /// The seed the simulator's randomness started from.
    pub seed: u64,
}

/// One task as the simulator sees it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SimTask {
    /// The task id returned by submit.
    pub id: String,
    /// The client's `request_id`, or the minted one (then equal to `id`).
    pub request_id: String,
    /// Model code as sent.
    pub model: String,
    /// `"PROCESSING"`, `"SUCCESS"` or `"FAIL"`, as of now.
    pub status: String,
    /// The submit body exactly as received, unknown fields included.
    pub request: serde_json::Value,
    /// Where the video is (or will be) served.
    pub video_url: String,
    /// Where the cover is (or will be) served.
    pub cover_url: String,
    /// Lower-hex SHA-256 of exactly the bytes a full video download serves.
    pub video_sha256: String,
    /// Length of the video in bytes.
    pub video_bytes: u64,
    /// Lower-hex SHA-256 of exactly the bytes a full cover download serves.
    pub cover_sha256: String,
    /// Length of the cover in bytes.
    pub cover_bytes: u64,
}

/// Starts the simulator on `listener` and returns at once; it serves until
/// [`SimHandle::shutdown`] (or until the handle is dropped).
///
/// Fails if the listener has no local address or the config cannot be simulated (a latency
/// range upside down, a probability outside 0..=1).
pub async fn start(config: SimConfig, listener: TcpListener) -> io::Result<SimHandle> {
    config.check()?;
    let addr = listener.local_addr()?;
    let origin = match &config.public_url {
        Some(url) => url.trim_end_matches('/').to_owned(),
        None => format!("http://{}", reachable(addr)),
    };
    let request_log = match &config.request_log {
        Some(path) => Some(std::fs::OpenOptions::new().create(true).append(true).open(path)?),
        None => None,
    };
    let sim = Arc::new(state::Sim::new(config, origin, request_log));
    let cancel = CancellationToken::new();
    let serve = axum::serve(listener, routes::router(Arc::clone(&sim)))
        .with_graceful_shutdown(cancel.clone().cancelled_owned());
    let server = tokio::spawn(async move { serve.await });
    tracing::info!(%addr, "platform simulator listening");
    Ok(SimHandle { addr, sim, server, stop: cancel.drop_guard() })
}

/// The address clients should use for a listener bound to `addr`: loopback instead of the
/// unspecified address.
fn reachable(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => SocketAddr::from((Ipv4Addr::LOCALHOST, addr.port())),
        IpAddr::V6(ip) if ip.is_unspecified() => SocketAddr::from((Ipv6Addr::LOCALHOST, addr.port())),
        _ => addr,
    }
}

/// A running simulator. Dropping it stops the server in the background; [`SimHandle::shutdown`]
/// stops it and waits.
pub struct SimHandle {
    addr: SocketAddr,
    sim: Arc<state::Sim>,
    server: JoinHandle<io::Result<()>>,
    stop: DropGuard,
}

impl fmt::Debug for SimHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimHandle").field("addr", &self.addr).finish_non_exhaustive()
    }
}

impl SimHandle {
    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The API base URL to configure clients with: `http://{addr}/api/paas/v4`.
    pub fn base_url(&self) -> String {
        format!("http://{}/api/paas/v4", reachable(self.addr))
    }

    /// The counters as of now.
    pub fn stats(&self) -> SimStats {
        self.sim.stats()
    }

    /// The task with this id, if one was created.
    ///
    /// The first call for a task hashes its video, which takes a while for a large
    /// [`SimConfig::video_bytes`]; later calls use the cached hash.
    pub fn task(&self, id: &str) -> Option<SimTask> {
        self.sim.task(id)
    }

    /// All tasks, in submission order (hashing videos as [`SimHandle::task`] does).
    pub fn tasks(&self) -> Vec<SimTask> {
        self.sim.tasks()
    }

    /// Stops accepting connections and waits (up to 5 s) for the answers under way to finish;
    /// idle connections are closed at once. Answers still running after that (a slow client
    /// reading a large video) are left to end on their own.
    pub async fn shutdown(self) {
        let SimHandle { addr, mut server, stop, .. } = self;
        stop.disarm().cancel();
        match tokio::time::timeout(SHUTDOWN_GRACE, &mut server).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => tracing::warn!(%addr, error = %e, "simulator server failed"),
            Ok(Err(e)) => tracing::warn!(%addr, error = %e, "simulator server task failed"),
            Err(_) => {
                tracing::debug!(%addr, "simulator answers still running after the grace period; not waiting");
                server.abort();
            }
        }
        tracing::info!(%addr, "platform simulator stopped");
    }
}
