//! The HTTP surface: the platform's two API routes, the result-file host and the admin routes.
//! Handlers only translate between HTTP and [`Sim`]; every decision is made there.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::header::{ACCEPT_RANGES, AUTHORIZATION, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, RANGE};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::{Stream, StreamExt as _};
use serde_json::{Map, Value};

use super::state::{Download, DownloadFate, Sim};
use super::wire::ApiError;
use crate::spec::models::{ModelRules, rules, validate_request};
use crate::web::range::{self, RangeRequest};

/// Largest submit body read. Three 50 MB images as base64 data URIs (`vidu2-reference`) fit.
const MAX_SUBMIT_BODY: usize = 256 * 1024 * 1024;
/// How long a broken answer stays open after what it sent, before the connection is cut.
const BREAK_OFF_DELAY: Duration = Duration::from_millis(20);

/// All routes, over `sim`.
pub(super) fn router(sim: Arc<Sim>) -> Router {
    Router::new()
        .route("/api/paas/v4/videos/generations", post(submit).layer(DefaultBodyLimit::max(MAX_SUBMIT_BODY)))
        .route("/api/paas/v4/async-result/{id}", get(poll))
        .route("/api/cogvideo/{file}", get(download))
        .route("/_sim/stats", get(admin_stats))
        .route("/_sim/tasks", get(admin_tasks))
        .route("/_sim/tasks/{id}", get(admin_task))
        .with_state(sim)
}

async fn submit(State(sim): State<Arc<Sim>>, headers: HeaderMap, body: Result<Bytes, BytesRejection>) -> Response {
    sim.log_request("POST", "/api/paas/v4/videos/generations", &headers, body.as_ref().ok());
    match try_submit(&sim, &headers, body) {
        Ok(response) => response,
        Err(error) => {
            tracing::debug!(code = error.code(), "simulator refused a submit");
            sim.count_refused(error.code());
            error.into_response()
        }
    }
}

fn try_submit(sim: &Sim, headers: &HeaderMap, body: Result<Bytes, BytesRejection>) -> Result<Response, ApiError> {
    authorize(sim, headers)?;
    let body = body.map_err(|e| ApiError::bad_body(&e.body_text()))?;
    let request: Value = serde_json::from_slice(&body).map_err(|e| ApiError::bad_body(&e.to_string()))?;
    let Value::Object(fields) = &request else {
        return Err(ApiError::bad_body("the body must be a JSON object"));
    };
    let rules = validate(fields, sim.config().reject_unknown_fields)?;
    let request_id = fields.get("request_id").and_then(Value::as_str).map(str::to_owned);
    let accepted = sim.submit(rules, request_id, request)?;
    Ok(if accepted.lost { lost_answer() } else { Json(accepted.answer).into_response() })
}

/// Checks `fields` against the model's schema; fields the schema lacks are ignored unless
/// `reject_unknown` is set.
fn validate(fields: &Map<String, Value>, reject_unknown: bool) -> Result<&'static ModelRules, ApiError> {
    let model = fields.get("model").and_then(Value::as_str).and_then(rules);
    let result = match model {
        Some(model) if !reject_unknown && !fields.keys().all(|f| model.accepts_field(f)) => {
            let known = fields.iter().filter(|(f, _)| model.accepts_field(f));
            validate_request(&known.map(|(f, v)| (f.clone(), v.clone())).collect())
        }
        _ => validate_request(fields),
    };
    result.map_err(|v| ApiError::violation(&v))
}

/// Status 200 and headers, then a body that breaks off: the client cannot learn the task id.
fn lost_answer() -> Response {
    let body = break_off(io::ErrorKind::ConnectionAborted, "simulated lost answer");
    ([(CONTENT_TYPE, "application/json")], Body::from_stream(body)).into_response()
}

/// A body stream's end by error, which makes the server cut the connection. It waits a moment
/// first, so what came before (headers, part of a body) has reached the client, as when a
/// connection dies mid-answer; an error at once would discard even the headers.
fn break_off(kind: io::ErrorKind, what: &'static str) -> impl Stream<Item = io::Result<Bytes>> + Send + 'static {
    futures::stream::once(async move {
        tokio::time::sleep(BREAK_OFF_DELAY).await;
        Err(io::Error::new(kind, what))
    })
}

/// A clean end of a body that comes a moment late, so what came before has reached the client
/// (hyper drops an answer whose body ends short of its length before it was flushed).
fn end_after_delay() -> impl Stream<Item = io::Result<Bytes>> + Send + 'static {
    futures::stream::once(tokio::time::sleep(BREAK_OFF_DELAY)).filter_map(|()| futures::future::ready(None))
}

async fn poll(State(sim): State<Arc<Sim>>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    sim.log_request("GET", &format!("/api/paas/v4/async-result/{id}"), &headers, None);
    let answer = authorize(&sim, &headers).and_then(|()| sim.poll(&id));
    match answer {
        Ok(_) if sim.endless_answer() => endless_answer(),
        Ok(answer) => match sim.config().answer_padding {
            Some(bytes) => padded(&answer, bytes),
            None => Json(answer).into_response(),
        },
        Err(error) => error.into_response(),
    }
}

/// `answer` with a `"pad"` field of `bytes` bytes.
fn padded(answer: &impl serde::Serialize, bytes: u64) -> Response {
    let mut value = serde_json::to_value(answer).unwrap_or(Value::Null);
    if let Value::Object(fields) = &mut value {
        fields.insert("pad".to_owned(), Value::String("x".repeat(usize::try_from(bytes).unwrap_or(0))));
    }
    Json(value).into_response()
}

/// A 200 answer whose JSON body never ends.
fn endless_answer() -> Response {
    let start = futures::stream::once(async {
        Ok::<_, io::Error>(Bytes::from_static(br#"{"task_status":"PROCESSING","pad":""#))
    });
    let chunk = Bytes::from(vec![b'x'; 64 * 1024]);
    let rest = futures::stream::repeat_with(move || Ok(chunk.clone()));
    ([(CONTENT_TYPE, "application/json")], Body::from_stream(start.chain(rest))).into_response()
}

/// Accepts the API key as `Authorization: Bearer <id.secret>` (scheme case-insensitive), and a
/// token signed with it (see [`super::jwt`]) with or without `Bearer`: what `zai-sdk` 0.2.3
/// sends (`zai._client.ZhipuAiClient.auth_headers`: the raw key by default, the token with
/// `disable_token_cache=False`) and what older SDKs sent (the token bare).
fn authorize(sim: &Sim, headers: &HeaderMap) -> Result<(), ApiError> {
    let value = headers.get(AUTHORIZATION).ok_or_else(ApiError::no_authorization)?;
    let value = value.to_str().map_err(|_| ApiError::bad_token())?.trim();
    let (bearer, token) = match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => (true, token.trim()),
        Some(_) => return Err(ApiError::bad_token()),
        None => (false, value),
    };
    let key = &sim.config().api_key;
    if bearer && token == key {
        return Ok(());
    }
    match super::jwt::verify(token, key, crate::time::now_ms().try_into().unwrap_or(0)) {
        Ok(()) => Ok(()),
        Err(super::jwt::Refusal::Expired) => Err(ApiError::expired_token()),
        Err(super::jwt::Refusal::Invalid) => Err(ApiError::bad_token()),
    }
}

async fn download(
    State(sim): State<Arc<Sim>>,
    method: Method,
    headers: HeaderMap,
    Path(file): Path<String>,
) -> Response {
    let Some(download) = sim.file(&file) else {
        return (StatusCode::NOT_FOUND, "Not Found").into_response();
    };
    let len = download.media.len();
    let range_header = headers.get(RANGE).and_then(|v| v.to_str().ok());
    let (status, start, end) = match range::parse(range_header, len) {
        RangeRequest::Full => (StatusCode::OK, 0, len),
        RangeRequest::Partial { start, end } => (StatusCode::PARTIAL_CONTENT, start, end + 1),
        RangeRequest::Unsatisfiable => return unsatisfiable(len),
    };
    let ranged = status == StatusCode::PARTIAL_CONTENT;
    let fate = if method == Method::HEAD { DownloadFate::Whole } else { sim.start_download(&download, ranged) };
    let Download { media, kind, .. } = download;
    if fate == DownloadFate::Gone {
        return (StatusCode::NOT_FOUND, "Not Found").into_response();
    }
    let mut response = Response::new(Body::empty());
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(kind.content_type()));
    headers.insert(ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    headers.insert(CONTENT_LENGTH, HeaderValue::from(end - start));
    if status == StatusCode::PARTIAL_CONTENT {
        headers.insert(CONTENT_RANGE, content_range(&format!("bytes {start}-{}/{len}", end - 1)));
    }
    if method != Method::HEAD {
        let body = Paced { body: media.body(), rate: sim.config().download_rate };
        let half = start + (end - start) / 2;
        *response.body_mut() = match fate {
            DownloadFate::Reset => {
                let cut = break_off(io::ErrorKind::ConnectionReset, "simulated connection reset");
                Body::from_stream(body.stream(start..half).chain(cut))
            }
            DownloadFate::Truncated => Body::from_stream(body.stream(start..half).chain(end_after_delay())),
            DownloadFate::Whole | DownloadFate::Gone => Body::from_stream(body.stream(start..end)),
        };
    }
    response
}

/// A file body sent no faster than `rate` bytes per second, when set.
struct Paced<'a> {
    body: &'a super::media::Synthetic,
    rate: Option<u64>,
}

impl Paced<'_> {
    fn stream(&self, range: std::ops::Range<u64>) -> impl Stream<Item = io::Result<Bytes>> + Send + 'static {
        let rate = self.rate.filter(|r| *r > 0);
        self.body.stream(range).then(move |chunk| async move {
            if let (Some(rate), Ok(bytes)) = (rate, &chunk) {
                tokio::time::sleep(Duration::from_secs_f64(bytes.len() as f64 / rate as f64)).await;
            }
            chunk
        })
    }
}

fn unsatisfiable(len: u64) -> Response {
    (StatusCode::RANGE_NOT_SATISFIABLE, [(CONTENT_RANGE, content_range(&format!("bytes */{len}")))]).into_response()
}

/// A `Content-Range` value; ours are plain ASCII, so the fallback never shows.
fn content_range(value: &str) -> HeaderValue {
    HeaderValue::from_str(value).unwrap_or_else(|_| HeaderValue::from_static("bytes */0"))
}

async fn admin_stats(State(sim): State<Arc<Sim>>) -> Response {
    Json(sim.stats()).into_response()
}

async fn admin_tasks(State(sim): State<Arc<Sim>>) -> Response {
    // Hashing a large video the first time takes a while: keep it off the async workers.
    match tokio::task::spawn_blocking(move || sim.tasks()).await {
        Ok(tasks) => Json(tasks).into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

async fn admin_task(State(sim): State<Arc<Sim>>, Path(id): Path<String>) -> Response {
    match tokio::task::spawn_blocking(move || sim.task(&id)).await {
        Ok(Some(task)) => Json(task).into_response(),
        Ok(None) => (StatusCode::NOT_FOUND, "no such task").into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}
