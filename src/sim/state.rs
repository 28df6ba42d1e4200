//! The simulator's books: tasks, counters and the seeded RNG, behind one mutex. Every decision
//! (accept or refuse, which fault hits, what a poll sees) is made here, under the lock, so
//! concurrent clients see one consistent platform.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::Write as _;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Map, Value, json};
use tokio::time::Instant;

use super::media::{self, Media, MediaKind};
use super::task::{self, Snapshot, Status, Task};
use super::wire::{ApiError, PollAnswer, SubmitAnswer, display_case};
use super::{SimConfig, SimStats, SimTask};
use crate::spec::models::ModelRules;

/// The shared simulator state.
#[derive(Debug)]
pub(super) struct Sim {
    config: SimConfig,
    /// Scheme, host and port of result URLs, without a trailing slash.
    origin: String,
    books: Mutex<Books>,
    /// Where each API request is appended as a JSON line ([`SimConfig::request_log`]).
    request_log: Option<Mutex<File>>,
}

#[derive(Debug)]
struct Books {
    rng: StdRng,
    /// In submission order, hence in order of `submitted`.
    tasks: Vec<Task>,
    by_id: HashMap<String, usize>,
    /// File key (the uuid in the result URLs) to task index.
    by_key: HashMap<String, usize>,
    /// Counters; `in_flight` is computed when read.
    stats: SimStats,
    /// Tasks whose video was asked for at least once.
    video_asked: HashSet<usize>,
}

/// A task just created by a submit.
#[derive(Debug)]
pub(super) struct Accepted {
    /// What the submit answers.
    pub(super) answer: SubmitAnswer,
    /// The `submit_lost` fault hit: the answer must not reach the client.
    pub(super) lost: bool,
}

/// What one result-file request gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum DownloadFate {
    /// The asked bytes, whole.
    Whole,
    /// About half, then the connection is reset.
    Reset,
    /// About half, then a clean end short of the announced length.
    Truncated,
    /// 404, as if the link had expired.
    Gone,
}

/// A result file to serve.
#[derive(Debug)]
pub(super) struct Download {
    /// The file.
    pub(super) media: Arc<Media>,
    /// Video or cover.
    pub(super) kind: MediaKind,
    /// The task's index.
    task: usize,
    /// How long ago the task succeeded.
    ready_for: Duration,
}

impl Sim {
    /// A simulator with no tasks; result URLs start with `origin`; API requests are appended to
    /// `request_log` when given. Its randomness follows [`SimConfig::seed`], or the clock.
    pub(super) fn new(config: SimConfig, origin: String, request_log: Option<File>) -> Sim {
        let seed = config.seed.unwrap_or_else(seed_from_clock);
        tracing::info!(seed, "simulator randomness (set `seed` to replay it)");
        let books = Books {
            rng: StdRng::seed_from_u64(seed),
            tasks: Vec::new(),
            by_id: HashMap::new(),
            by_key: HashMap::new(),
            stats: SimStats { seed, ..SimStats::default() },
            video_asked: HashSet::new(),
        };
        Sim { config, origin, books: Mutex::new(books), request_log: request_log.map(Mutex::new) }
    }

    /// Appends one API request to the request log, if there is one: method, path, headers (the
    /// `Authorization` value described, never copied: its scheme, whether it is the key or a
    /// token, and a token's decoded header and payload) and the body's exact text.
    pub(super) fn log_request(&self, method: &str, path: &str, headers: &HeaderMap, body: Option<&axum::body::Bytes>) {
        let Some(log) = &self.request_log else { return };
        let mut shown = Map::new();
        for (name, value) in headers {
            let value = if name == AUTHORIZATION {
                describe_authorization(value.to_str().unwrap_or(""), &self.config.api_key)
            } else {
                Value::String(String::from_utf8_lossy(value.as_bytes()).into_owned())
            };
            shown.insert(name.as_str().to_owned(), value);
        }
        let body = body.map(|b| Value::String(String::from_utf8_lossy(b).into_owned())).unwrap_or(Value::Null);
        let mut line = json!({"method": method, "path": path, "headers": shown, "body": body}).to_string();
        line.push('\n');
        let mut file = log.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(e) = file.write_all(line.as_bytes()).and_then(|()| file.flush()) {
            tracing::warn!(error = %e, "cannot write the simulator's request log");
        }
    }

    /// The configuration.
    pub(super) fn config(&self) -> &SimConfig {
        &self.config
    }

    fn lock(&self) -> MutexGuard<'_, Books> {
        // The books stay consistent even if a holder panicked: every update is a few plain writes.
        self.books.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts a submit refused with business code `code`.
    pub(super) fn count_refused(&self, code: &str) {
        *self.lock().stats.refused.entry(code.to_owned()).or_default() += 1;
    }

    /// Decides a valid submission: faults, duplicate `request_id`, concurrency, balance; then
    /// creates the task. Refusals are returned, not counted (the caller counts every refusal).
    pub(super) fn submit(
        &self,
        rules: &'static ModelRules,
        request_id: Option<String>,
        request: Value,
    ) -> Result<Accepted, ApiError> {
        let faults = &self.config.faults;
        let mut books = self.lock();
        let now = Instant::now();
        if books.chance(faults.submit_5xx) {
            return Err(ApiError::internal());
        }
        if books.chance(faults.submit_1305) {
            return Err(ApiError::overloaded());
        }
        if books.chance(faults.submit_1302) {
            return Err(ApiError::concurrency());
        }
        if let Some(rid) = &request_id {
            if books.in_flight(now, self.config.latency_max).any(|t| &t.request_id == rid) {
                return Err(ApiError::duplicate_request(rid));
            }
        }
        let running = books.in_flight(now, self.config.latency_max).filter(|t| t.model == rules.name).count();
        if running >= self.config.limit_for(rules.name) {
            return Err(ApiError::concurrency());
        }
        let price = u64::from(rules.price_fen);
        if let Some(balance) = self.config.balance_fen {
            if books.stats.spent_fen.saturating_add(price) > balance {
                return Err(ApiError::balance());
            }
        }
        let task = books.create(&self.config, now, rules, request_id, request);
        let answer = SubmitAnswer::processing(task.model, &task.id, &task.request_id);
        books.insert(task);
        books.record_accepted(now, self.config.latency_max, rules.name, price, &answer.request_id);
        let lost = books.chance(faults.submit_lost);
        tracing::debug!(id = %answer.id, model = rules.name, lost, "simulator accepted a task");
        Ok(Accepted { answer, lost })
    }

    /// Answers a poll of task `id`.
    pub(super) fn poll(&self, id: &str) -> Result<PollAnswer, ApiError> {
        let faults = &self.config.faults;
        let mut books = self.lock();
        let now = Instant::now();
        books.stats.polls += 1;
        if books.chance(faults.poll_5xx) {
            return Err(ApiError::internal());
        }
        let index = *books.by_id.get(id).ok_or_else(|| ApiError::no_such_task(id))?;
        let shows_unknown_status = books.chance(faults.unknown_status);
        let shows_model_case = books.chance(faults.model_case);
        let task = books.tasks.get(index).ok_or_else(|| ApiError::no_such_task(id))?;
        let status = task.status(now);
        let mut answer = PollAnswer::new(&task.id, &task.request_id, task.model, status, task.created);
        if shows_model_case {
            answer.model = display_case(task.model);
        }
        match status {
            Status::Processing if shows_unknown_status => answer.task_status = "SUBMITTED",
            Status::Success => {
                let mut video = task.url(&self.origin, MediaKind::Video);
                let mut cover = task.url(&self.origin, MediaKind::Cover);
                if self.config.fresh_links {
                    let version = books.stats.polls;
                    video.push_str(&format!("?v={version}"));
                    cover.push_str(&format!("?v={version}"));
                }
                answer.succeeded(video, cover);
            }
            Status::Processing | Status::Fail => {}
        }
        Ok(answer)
    }

    /// Whether this poll's answer is the `endless_answer` fault's never-ending body.
    pub(super) fn endless_answer(&self) -> bool {
        let p = self.config.faults.endless_answer;
        self.lock().chance(p)
    }

    /// The file named `name` (`{key}_0.mp4` or `{key}_cover_0.jpeg`), if it is served now.
    pub(super) fn file(&self, name: &str) -> Option<Download> {
        let (key, kind) = task::parse_file_name(name)?;
        let books = self.lock();
        let index = *books.by_key.get(key)?;
        let task = books.tasks.get(index)?;
        let now = Instant::now();
        let ready_for = now.saturating_duration_since(task.submitted).saturating_sub(task.latency);
        task.serves_files(now, self.config.url_ttl).then(|| Download {
            media: task.media(kind),
            kind,
            task: index,
            ready_for,
        })
    }

    /// Decides what a download request gets: answered whole, cut by one of the download faults,
    /// or refused as gone. Counts the downloads answered 200/206, and the time from success to
    /// the first request of each task's video.
    pub(super) fn start_download(&self, download: &Download, ranged: bool) -> DownloadFate {
        let faults = &self.config.faults;
        let mut books = self.lock();
        if download.kind == MediaKind::Video && books.video_asked.insert(download.task) {
            let ms = u64::try_from(download.ready_for.as_millis()).unwrap_or(u64::MAX);
            books.stats.ready_to_download_ms.push(ms);
        }
        if books.chance(faults.download_gone) {
            return DownloadFate::Gone;
        }
        books.stats.downloads += 1;
        books.stats.ranged_downloads += u64::from(ranged);
        if books.chance(faults.download_reset) {
            DownloadFate::Reset
        } else if books.chance(faults.download_truncate) {
            DownloadFate::Truncated
        } else {
            DownloadFate::Whole
        }
    }

    /// The counters as of now.
    pub(super) fn stats(&self) -> SimStats {
        let books = self.lock();
        let mut stats = books.stats.clone();
        stats.in_flight = books.in_flight(Instant::now(), self.config.latency_max).count();
        stats
    }

    /// The task with this id. Hashes its files outside the lock the first time.
    pub(super) fn task(&self, id: &str) -> Option<SimTask> {
        let snapshot = {
            let books = self.lock();
            books.tasks.get(*books.by_id.get(id)?)?.snapshot(&self.origin, Instant::now())
        };
        Some(snapshot.finish())
    }

    /// All tasks in submission order. Hashes files outside the lock the first time.
    pub(super) fn tasks(&self) -> Vec<SimTask> {
        let snapshots: Vec<Snapshot> = {
            let books = self.lock();
            let now = Instant::now();
            books.tasks.iter().map(|t| t.snapshot(&self.origin, now)).collect()
        };
        snapshots.into_iter().map(Snapshot::finish).collect()
    }
}

/// A seed that differs between simulator instances: the clock's nanoseconds, mixed with the
/// process id so two simulators started in the same instant differ too.
fn seed_from_clock() -> u64 {
    let nanos = SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let mixed = (nanos as u64) ^ ((nanos >> 64) as u64) ^ u64::from(std::process::id()).rotate_left(32);
    // One SplitMix64 step spreads nearby clock readings over the whole range.
    let mut z = mixed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// What an `Authorization` value is, without the secret: `{"scheme", "form"}` where form is
/// `api-key` (the configured key), `token` (a JWT, with its decoded `jwt_header` and
/// `jwt_payload`) or `other`.
fn describe_authorization(value: &str, api_key: &str) -> Value {
    let value = value.trim();
    let (scheme, token) = match value.split_once(' ') {
        Some((scheme, token)) => (scheme, token.trim()),
        None => ("", value),
    };
    if token == api_key {
        return json!({"scheme": scheme, "form": "api-key"});
    }
    match super::jwt::decode(token) {
        Some((header, payload)) => {
            json!({"scheme": scheme, "form": "token", "jwt_header": header, "jwt_payload": payload})
        }
        None => json!({"scheme": scheme, "form": "other"}),
    }
}

impl Books {
    /// Draws a fault with probability `p`; a zero probability draws nothing, so faults that are
    /// off leave the random sequence of the others unchanged.
    fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && self.rng.random::<f64>() < p
    }

    /// Tasks `PROCESSING` at `now`. Tasks are in submission order and none runs longer than
    /// `latency_max`, so only the recent tail is scanned.
    fn in_flight(&self, now: Instant, latency_max: Duration) -> impl Iterator<Item = &Task> {
        self.tasks
            .iter()
            .rev()
            .take_while(move |t| now.saturating_duration_since(t.submitted) < latency_max)
            .filter(move |t| t.status(now) == Status::Processing)
    }

    /// A new task (not yet in the books), drawing its id, latency, fate and file key.
    fn create(
        &mut self,
        config: &SimConfig,
        now: Instant,
        rules: &'static ModelRules,
        request_id: Option<String>,
        request: Value,
    ) -> Task {
        let id = self.unused(|rng| task::mint_id(rng, request_id.is_some()), |b, id| b.by_id.contains_key(id));
        let key = self.unused(task::mint_key, |b, key| b.by_key.contains_key(key));
        Task {
            video: Arc::new(Media::video(
                &id,
                config.video_bytes,
                media::clip(rules.name, config.clip_file.as_deref(), &id),
            )),
            cover: Arc::new(Media::cover(&id, request.get("prompt").and_then(Value::as_str))),
            request_id: request_id.unwrap_or_else(|| id.clone()),
            id,
            model: rules.name,
            request,
            created: task::unix_seconds(SystemTime::now()),
            submitted: now,
            latency: self.draw_latency(config.latency_min, config.latency_max),
            fails: self.chance(config.faults.fail),
            key,
        }
    }

    /// The first value `mint` makes that `taken` does not report as in use.
    fn unused(&mut self, mut mint: impl FnMut(&mut StdRng) -> String, taken: impl Fn(&Books, &str) -> bool) -> String {
        loop {
            let value = mint(&mut self.rng);
            if !taken(self, &value) {
                return value;
            }
        }
    }

    fn insert(&mut self, task: Task) {
        let index = self.tasks.len();
        self.by_id.insert(task.id.clone(), index);
        self.by_key.insert(task.key.clone(), index);
        self.tasks.push(task);
    }

    fn record_accepted(&mut self, now: Instant, latency_max: Duration, model: &str, price: u64, request_id: &str) {
        let total = self.in_flight(now, latency_max).count();
        let for_model = self.in_flight(now, latency_max).filter(|t| t.model == model).count();
        let stats = &mut self.stats;
        stats.accepted += 1;
        *stats.accepted_by_request_id.entry(request_id.to_owned()).or_default() += 1;
        stats.spent_fen = stats.spent_fen.saturating_add(price);
        stats.max_in_flight = stats.max_in_flight.max(total);
        let max = stats.max_in_flight_by_model.entry(model.to_owned()).or_default();
        *max = (*max).max(for_model);
    }

    fn draw_latency(&mut self, min: Duration, max: Duration) -> Duration {
        if min >= max { min } else { self.rng.random_range(min..=max) }
    }
}
