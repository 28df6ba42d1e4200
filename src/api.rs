//! The BigModel video API client: submit a request, poll a task, and classify every failure by
//! what it means for the money and the job.
//!
//! The platform answers 429 for three different things (concurrency, balance, overload), so the
//! HTTP status alone decides nothing: [`ApiError::class`] branches on the business code.
//! Whether a failed submit may be retried depends on whether the platform could have acted:
//! a connection that never opened is safe, a timeout after the body was sent is not.

mod wire;

use std::time::Duration;

use serde_json::{Map, Value};

use crate::secret::Secret;

pub use wire::{ErrorBody, TaskStatus, same_model};

/// What a failure means for the job and the account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Transient: try again after a backoff (5xx, 1305 overload, network before sending).
    Retry,
    /// The account's concurrency limit (1302): lower the in-flight limit and retry later.
    RateLimited,
    /// Balance or quota exhausted (1113, 1304, 1308–1321): stop submitting for the account.
    AccountPaused,
    /// The key is wrong or the account is locked: stop submitting, keep polling and archiving.
    Auth,
    /// This job's request will never be accepted: fail the job with the reason.
    JobFatal,
    /// The task id is unknown to the platform (1233): its result is gone.
    TaskGone,
    /// The submission may have been accepted but its answer was lost.
    Uncertain,
}

/// A failed API call.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ApiError {
    /// The platform answered with an error body.
    #[error("the platform answered HTTP {http}, code {code}: {message}")]
    Refused {
        /// HTTP status.
        http: u16,
        /// Business code (digits as a string), or the HTTP status when the body had none.
        code: String,
        /// The platform's message.
        message: String,
        /// `Retry-After`, if sent.
        retry_after: Option<Duration>,
    },
    /// The request never left (connection refused, DNS, TLS): the platform did nothing.
    #[error("could not reach the platform: {0}")]
    NotSent(String),
    /// The request may have reached the platform, but no complete answer came back.
    #[error("no answer from the platform (the request may have been received): {0}")]
    NoAnswer(String),
    /// The answer was larger than any real answer ([`MAX_ANSWER_BYTES`]); it was not read on.
    #[error("the platform's answer (HTTP {http}) is larger than {limit} bytes; not read further")]
    TooBig {
        /// HTTP status.
        http: u16,
        /// The limit.
        limit: usize,
    },
    /// An answer came back that could not be understood.
    #[error("the platform's answer (HTTP {http}) could not be understood: {detail}")]
    BadAnswer {
        /// HTTP status.
        http: u16,
        /// What was wrong.
        detail: String,
    },
}

impl ApiError {
    /// What this failure means, for a submit (`submit = true`) or a poll.
    pub fn class(&self, submit: bool) -> ErrorClass {
        match self {
            ApiError::Refused { http, code, .. } => classify_code(*http, code),
            ApiError::NotSent(_) => ErrorClass::Retry,
            ApiError::NoAnswer(_) | ApiError::TooBig { .. } if submit => ErrorClass::Uncertain,
            ApiError::TooBig { .. } => ErrorClass::Retry,
            ApiError::BadAnswer { http, .. } if submit && (*http < 400 || *http >= 500) => ErrorClass::Uncertain,
            ApiError::BadAnswer { http, .. } if (400..500).contains(http) && *http != 429 => ErrorClass::JobFatal,
            ApiError::NoAnswer(_) | ApiError::BadAnswer { .. } => ErrorClass::Retry,
        }
    }

    /// The platform's business code, or a stable code for transport failures.
    pub fn code(&self) -> String {
        match self {
            ApiError::Refused { code, .. } => format!("platform-{code}"),
            ApiError::NotSent(_) => "api-unreachable".to_owned(),
            ApiError::NoAnswer(_) => "api-no-answer".to_owned(),
            ApiError::BadAnswer { .. } => "api-bad-answer".to_owned(),
            ApiError::TooBig { .. } => "api-answer-too-big".to_owned(),
        }
    }

    /// `Retry-After` from the platform, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ApiError::Refused { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// The message with what a person can do about it.
    pub fn explain(&self) -> String {
        let hint = match self {
            ApiError::Refused { code, .. } => hint(code),
            _ => None,
        };
        match hint {
            Some(h) => format!("{self} ({h})"),
            None => self.to_string(),
        }
    }
}

/// Whether a job's stored error code (`platform-1113`, `platform-1002`, ...) is one that paused
/// the whole account (balance, quota, key): such a wait ends when a person fixes the account,
/// which a start or a reload may mean, not when a timer says so.
pub fn is_account_wait(error_code: &str) -> bool {
    error_code
        .strip_prefix("platform-")
        .is_some_and(|code| matches!(classify_code(0, code), ErrorClass::AccountPaused | ErrorClass::Auth))
}

fn classify_code(http: u16, code: &str) -> ErrorClass {
    let n: u32 = code.parse().unwrap_or(0);
    match n {
        1302 => ErrorClass::RateLimited,
        1113 | 1304 | 1308..=1321 => ErrorClass::AccountPaused,
        1000..=1005 | 1110..=1121 | 1220 => ErrorClass::Auth,
        1232 | 1233 => ErrorClass::TaskGone,
        1231 => ErrorClass::Uncertain,
        1200 | 1230 | 1234 | 1235 | 1303 | 1305 => ErrorClass::Retry,
        1210..=1215 | 1221 | 1222 | 1261 | 1300 | 1301 => ErrorClass::JobFatal,
        _ if http == 429 || http >= 500 || http == 408 => ErrorClass::Retry,
        _ if http == 401 || http == 403 => ErrorClass::Auth,
        _ => ErrorClass::JobFatal,
    }
}

fn hint(code: &str) -> Option<&'static str> {
    Some(match code {
        "1113" => "the account balance or resource pack is exhausted: top it up; vidkeep resumes by itself",
        "1304" => "the daily call quota is used up; vidkeep resumes later",
        "1000" | "1001" | "1002" | "1003" | "1004" | "1005" => {
            "the API key was not accepted: check the key in the environment and restart or reload"
        }
        "1302" => "too many tasks in flight for this account: vidkeep lowers its limit and retries",
        "1305" => "the platform is overloaded: vidkeep retries with backoff",
        "1301" => {
            "the platform judged the prompt or image unsafe: change the content; resubmitting it as is will fail again"
        }
        "1261" => "the prompt is too long: shorten it",
        "1211" => "the platform does not have this model: check `model`",
        "1210" | "1213" | "1214" | "1215" => "a request field was refused: fix the spec and drop it again",
        "1231" => {
            "the platform already has a request with this request_id: the earlier submission probably went through"
        }
        "1233" => "the platform no longer knows this task",
        _ => return None,
    })
}

/// The platform's answer to an accepted submission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// The task id to poll.
    pub task_id: String,
}

/// A task's state as the platform reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskReport {
    /// The status.
    pub status: TaskStatus,
    /// The model the answer names, as written (compare it with [`same_model`]).
    pub model: Option<String>,
    /// The answer for the sidecar and the catalogue: verbatim when small, else the fields the
    /// archive needs and a bounded excerpt ([`wire::bounded_record`]).
    pub raw: String,
}

/// Client for one platform account.
#[derive(Debug, Clone)]
pub struct ApiClient {
    http: reqwest::Client,
    base_url: String,
    key: Secret,
}

impl ApiClient {
    /// A client for `base_url` (e.g. `https://open.bigmodel.cn/api/paas/v4`) with `key`.
    pub fn new(base_url: &str, key: Secret, timeout: Duration) -> Result<ApiClient, ApiError> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(15)))
            .user_agent(concat!("vidkeep/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ApiError::NotSent(format!("cannot build HTTP client: {e}")))?;
        Ok(ApiClient { http, base_url: base_url.trim_end_matches('/').to_owned(), key })
    }

    /// Sends one submission. `body` is the recorded request; `request_id` is added to it.
    pub async fn submit(&self, body: &Map<String, Value>, request_id: &str) -> Result<Accepted, ApiError> {
        let mut body = body.clone();
        body.insert("request_id".to_owned(), Value::String(request_id.to_owned()));
        let response = self
            .http
            .post(format!("{}/videos/generations", self.base_url))
            .bearer_auth(self.key.expose())
            .json(&body)
            .send()
            .await
            .map_err(transport)?;
        let (status, text) = read(response).await?;
        let answer: wire::SubmitAnswer = serde_json::from_str(&text)
            .map_err(|e| ApiError::BadAnswer { http: status, detail: format!("{e}: {}", wire::excerpt(&text)) })?;
        match answer.task_id() {
            Some(task_id) => Ok(Accepted { task_id }),
            None => {
                Err(ApiError::BadAnswer { http: status, detail: format!("no task id in {}", wire::excerpt(&text)) })
            }
        }
    }

    /// Asks for a task's state.
    pub async fn poll(&self, task_id: &str) -> Result<TaskReport, ApiError> {
        let response = self
            .http
            .get(format!("{}/async-result/{}", self.base_url, urlencode(task_id)))
            .bearer_auth(self.key.expose())
            .send()
            .await
            .map_err(transport)?;
        let (status, text) = read(response).await?;
        let answer: wire::ResultAnswer = serde_json::from_str(&text)
            .map_err(|e| ApiError::BadAnswer { http: status, detail: format!("{e}: {}", wire::excerpt(&text)) })?;
        let raw = wire::bounded_record(&answer, &text);
        Ok(TaskReport { status: answer.status(), model: answer.model().map(str::to_owned), raw })
    }
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The largest API answer read. Real answers are a few hundred bytes; an endless or huge body
/// is cut here instead of growing memory.
pub const MAX_ANSWER_BYTES: usize = 4 * 1024 * 1024;

/// The longest `Retry-After` taken from the platform; the engine caps it further at
/// `jobs.retry_max`. An absurd value must never park a job for days.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// Reads a whole (small) API answer, at most [`MAX_ANSWER_BYTES`]; a non-2xx answer becomes
/// [`ApiError::Refused`] if it has an error body, else [`ApiError::BadAnswer`].
async fn read(mut response: reqwest::Response) -> Result<(u16, String), ApiError> {
    let status = response.status().as_u16();
    let retry_after =
        response.headers().get(reqwest::header::RETRY_AFTER).and_then(|v| v.to_str().ok()).and_then(parse_retry_after);
    let too_big = ApiError::TooBig { http: status, limit: MAX_ANSWER_BYTES };
    if response.content_length().is_some_and(|n| n > MAX_ANSWER_BYTES as u64) {
        return Err(too_big);
    }
    let mut body = Vec::new();
    while let Some(chunk) =
        response.chunk().await.map_err(|e| ApiError::NoAnswer(format!("answer cut off: {}", e.without_url())))?
    {
        if body.len() + chunk.len() > MAX_ANSWER_BYTES {
            return Err(too_big);
        }
        body.extend_from_slice(&chunk);
    }
    let text = String::from_utf8_lossy(&body).into_owned();
    if (200..300).contains(&status) {
        return Ok((status, text));
    }
    match wire::parse_error(&text) {
        Some(e) => Err(ApiError::Refused { http: status, code: e.code, message: e.message, retry_after }),
        None => Err(ApiError::BadAnswer { http: status, detail: wire::excerpt(&text) }),
    }
}

/// `Retry-After` in seconds (the platform sends no dates), capped at [`MAX_RETRY_AFTER`].
fn parse_retry_after(value: &str) -> Option<Duration> {
    let digits = value.trim();
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // Too many digits for a u64 is still "very long": the cap.
    Some(digits.parse::<u64>().map_or(MAX_RETRY_AFTER, Duration::from_secs).min(MAX_RETRY_AFTER))
}

fn transport(e: reqwest::Error) -> ApiError {
    let e = e.without_url();
    let text = with_causes(&e);
    if e.is_connect() { ApiError::NotSent(text) } else { ApiError::NoAnswer(text) }
}

/// `e` and each of its causes once: reqwest's own text ("error sending request") names none of
/// them, and the cause (DNS, refused, TLS) is what a person needs to fix it.
pub(crate) fn with_causes(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cause = c.source();
    }
    out
}

/// The platform's answers decoded as [`ApiClient`] decodes them, for the fuzz targets
/// (`fuzz/`, and the proptest run in CI): a submission answer, a result answer and an error body
/// from the same text. Checks what must hold for any text and panics otherwise.
#[doc(hidden)]
pub fn decode_answers_for_fuzzing(text: &str) {
    if let Ok(answer) = serde_json::from_str::<wire::SubmitAnswer>(text) {
        if let Some(id) = answer.task_id() {
            assert!(!id.trim().is_empty(), "an empty task id was accepted");
        }
    }
    if let Ok(answer) = serde_json::from_str::<wire::ResultAnswer>(text) {
        if let TaskStatus::Success { video_url, cover_url } = answer.status() {
            assert!(!video_url.is_empty() && cover_url.is_none_or(|c| !c.is_empty()));
        }
        let _ = answer.model().map(|m| same_model(m, "viduq1-text"));
    }
    let _ = wire::parse_error(text);
    assert!(wire::excerpt(text).chars().count() <= 201);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(http: u16, code: &str) -> ApiError {
        ApiError::Refused { http, code: code.to_owned(), message: String::new(), retry_after: None }
    }

    #[test]
    fn business_codes_decide_not_http() {
        assert_eq!(refused(429, "1302").class(true), ErrorClass::RateLimited);
        assert_eq!(refused(429, "1113").class(true), ErrorClass::AccountPaused);
        assert_eq!(refused(429, "1305").class(true), ErrorClass::Retry);
        assert_eq!(refused(401, "1002").class(true), ErrorClass::Auth);
        assert_eq!(refused(400, "1214").class(true), ErrorClass::JobFatal);
        assert_eq!(refused(400, "1301").class(true), ErrorClass::JobFatal);
        assert_eq!(refused(400, "1233").class(false), ErrorClass::TaskGone);
        assert_eq!(refused(400, "1231").class(true), ErrorClass::Uncertain);
        assert_eq!(refused(500, "500").class(true), ErrorClass::Retry);
        assert_eq!(refused(429, "9999").class(true), ErrorClass::Retry);
    }

    #[test]
    fn lost_answers_are_uncertain_only_for_submits() {
        let lost = ApiError::NoAnswer("timeout".into());
        assert_eq!(lost.class(true), ErrorClass::Uncertain);
        assert_eq!(lost.class(false), ErrorClass::Retry);
        assert_eq!(ApiError::NotSent("refused".into()).class(true), ErrorClass::Retry);
        let gateway = ApiError::BadAnswer { http: 502, detail: "<html>".into() };
        assert_eq!(gateway.class(true), ErrorClass::Uncertain, "a bare 502 may hide an accepted task");
        assert_eq!(gateway.class(false), ErrorClass::Retry);
    }

    #[test]
    fn retry_after_is_capped() {
        assert_eq!(parse_retry_after("30"), Some(Duration::from_secs(30)));
        assert_eq!(parse_retry_after("9999999999"), Some(MAX_RETRY_AFTER));
        assert_eq!(parse_retry_after("99999999999999999999999999"), Some(MAX_RETRY_AFTER));
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn explanations_say_what_to_do() {
        assert!(refused(429, "1113").explain().contains("top it up"));
    }

    #[tokio::test]
    async fn an_unreachable_platform_is_named_with_its_cause() {
        // A port nothing listens on: the connection is refused before anything is sent.
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("port").port();
        let client = ApiClient::new(
            &format!("http://127.0.0.1:{port}/api/paas/v4"),
            Secret::new("k.s".to_owned()),
            Duration::from_secs(5),
        )
        .expect("client");
        let e = client.submit(&Map::new(), "vk-1").await.expect_err("nothing listens");
        assert!(matches!(e, ApiError::NotSent(_)), "{e:?}");
        let text = e.to_string();
        assert!(text.to_lowercase().contains("connection refused"), "the cause is named: {text}");
        assert_eq!(
            text.matches("connection refused").count() + text.matches("Connection refused").count(),
            1,
            "once: {text}"
        );
    }
}
