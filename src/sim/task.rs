//! One task: its facts, fixed at submit, and how they read at a given moment; and how task ids
//! and result-file names are made.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand::Rng;
use rand::rngs::StdRng;
use serde_json::Value;
use tokio::time::Instant;

use super::SimTask;
use super::media::{Media, MediaKind};

/// Suffix of a task's video file name, after its key.
const VIDEO_SUFFIX: &str = "_0.mp4";
/// Suffix of a task's cover file name, after its key.
const COVER_SUFFIX: &str = "_cover_0.jpeg";

/// Where a task is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Status {
    /// Still generating.
    Processing,
    /// Done; the files are served.
    Success,
    /// Done without a video.
    Fail,
}

impl Status {
    /// The wire value of `task_status`.
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Status::Processing => "PROCESSING",
            Status::Success => "SUCCESS",
            Status::Fail => "FAIL",
        }
    }
}

/// A task as created by an accepted submit. Nothing in it changes afterwards: its status is a
/// function of the time.
#[derive(Debug)]
pub(super) struct Task {
    /// The task id.
    pub(super) id: String,
    /// The client's `request_id`, or `id`.
    pub(super) request_id: String,
    /// Model code.
    pub(super) model: &'static str,
    /// The submit body as received.
    pub(super) request: Value,
    /// Unix seconds at submit, for `created`.
    pub(super) created: u64,
    /// When it was accepted.
    pub(super) submitted: Instant,
    /// How long it stays `PROCESSING`.
    pub(super) latency: Duration,
    /// It ends `FAIL` rather than `SUCCESS`.
    pub(super) fails: bool,
    /// The uuid in its result file names.
    pub(super) key: String,
    /// The video it serves.
    pub(super) video: Arc<Media>,
    /// The cover it serves.
    pub(super) cover: Arc<Media>,
}

impl Task {
    /// Its status at `now`.
    pub(super) fn status(&self, now: Instant) -> Status {
        match (now.saturating_duration_since(self.submitted) < self.latency, self.fails) {
            (true, _) => Status::Processing,
            (false, true) => Status::Fail,
            (false, false) => Status::Success,
        }
    }

    /// Whether its result files answer at `now`: it succeeded less than `ttl` ago.
    pub(super) fn serves_files(&self, now: Instant, ttl: Duration) -> bool {
        self.status(now) == Status::Success
            && now.saturating_duration_since(self.submitted) < self.latency.saturating_add(ttl)
    }

    /// The URL of its `kind` file under `origin`.
    pub(super) fn url(&self, origin: &str, kind: MediaKind) -> String {
        let suffix = match kind {
            MediaKind::Video => VIDEO_SUFFIX,
            MediaKind::Cover => COVER_SUFFIX,
        };
        format!("{origin}/api/cogvideo/{}{suffix}", self.key)
    }

    /// Its `kind` file.
    pub(super) fn media(&self, kind: MediaKind) -> Arc<Media> {
        match kind {
            MediaKind::Video => Arc::clone(&self.video),
            MediaKind::Cover => Arc::clone(&self.cover),
        }
    }

    /// A copy of what [`SimTask`] shows, as of `now`, still to be hashed.
    pub(super) fn snapshot(&self, origin: &str, now: Instant) -> Snapshot {
        Snapshot {
            id: self.id.clone(),
            request_id: self.request_id.clone(),
            model: self.model,
            status: self.status(now),
            request: self.request.clone(),
            video_url: self.url(origin, MediaKind::Video),
            cover_url: self.url(origin, MediaKind::Cover),
            video: Arc::clone(&self.video),
            cover: Arc::clone(&self.cover),
        }
    }
}

/// A task copied out of the books, so its files can be hashed without holding the lock.
#[derive(Debug)]
pub(super) struct Snapshot {
    id: String,
    request_id: String,
    model: &'static str,
    status: Status,
    request: Value,
    video_url: String,
    cover_url: String,
    video: Arc<Media>,
    cover: Arc<Media>,
}

impl Snapshot {
    /// The public view, hashing the files if that was not done before.
    pub(super) fn finish(self) -> SimTask {
        SimTask {
            id: self.id,
            request_id: self.request_id,
            model: self.model.to_owned(),
            status: self.status.as_str().to_owned(),
            request: self.request,
            video_url: self.video_url,
            cover_url: self.cover_url,
            video_sha256: self.video.sha256().to_owned(),
            video_bytes: self.video.len(),
            cover_sha256: self.cover.sha256().to_owned(),
            cover_bytes: self.cover.len(),
        }
    }
}

/// The key and kind of a result file named `{key}_0.mp4` or `{key}_cover_0.jpeg`.
pub(super) fn parse_file_name(name: &str) -> Option<(&str, MediaKind)> {
    match name.strip_suffix(COVER_SUFFIX) {
        Some(key) => Some((key, MediaKind::Cover)),
        None => Some((name.strip_suffix(VIDEO_SUFFIX)?, MediaKind::Video)),
    }
}

/// A task id: 19 digits when the client named the request (as in the old official example),
/// else `yyyyMMddHHmmss` (UTC) + 16 lowercase hex (as measured live).
pub(super) fn mint_id(rng: &mut StdRng, client_named: bool) -> String {
    if client_named {
        rng.random_range(1_000_000_000_000_000_000_u64..=9_999_999_999_999_999_999).to_string()
    } else {
        format!("{}{:016x}", utc_digits(SystemTime::now()), rng.random::<u64>())
    }
}

/// A result-file key: a hyphenated UUID v7 whose random bits come from `rng`.
pub(super) fn mint_key(rng: &mut StdRng) -> String {
    let millis = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
    let bytes: [u8; 10] = rng.random();
    uuid::Builder::from_unix_timestamp_millis(u64::try_from(millis).unwrap_or(u64::MAX), &bytes)
        .into_uuid()
        .hyphenated()
        .to_string()
}

/// Seconds since the Unix epoch (0 for earlier times).
pub(super) fn unix_seconds(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// `yyyyMMddHHmmss` of `t` in UTC.
fn utc_digits(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string().chars().filter(char::is_ascii_digit).collect()
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn ids_have_the_platforms_shapes() {
        let mut rng = StdRng::seed_from_u64(1);
        let numeric = mint_id(&mut rng, true);
        assert!(numeric.len() == 19 && numeric.bytes().all(|b| b.is_ascii_digit()), "{numeric}");
        let dated = mint_id(&mut rng, false);
        assert_eq!(dated.len(), 30, "{dated}");
        assert!(dated.starts_with("20"), "{dated}");
        let key = mint_key(&mut rng);
        assert_eq!(uuid::Uuid::parse_str(&key).map(|u| u.get_version_num()), Ok(7));
    }

    #[test]
    fn utc_digits_are_the_calendar_time() {
        let t = UNIX_EPOCH + Duration::from_secs(1_786_000_000);
        assert_eq!(utc_digits(t), "20260806070640");
    }

    #[test]
    fn file_names_parse_to_key_and_kind() {
        assert_eq!(parse_file_name("abc_0.mp4"), Some(("abc", MediaKind::Video)));
        assert_eq!(parse_file_name("abc_cover_0.jpeg"), Some(("abc", MediaKind::Cover)));
        assert_eq!(parse_file_name("abc_1.mp4"), None);
        assert_eq!(parse_file_name("abc.jpeg"), None);
    }
}
