//! The platform's JSON shapes: error bodies with their business codes and Chinese messages
//! (reference §5), the submit answer (§3) and the async-result answer (§4).

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::json;

use super::task::Status;
use crate::spec::models::Violation;

/// A refusal as the platform words it: HTTP status, business code and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError { status, code, message: message.into() }
    }

    /// The business code, as counted in [`super::SimStats::refused`].
    pub(super) fn code(&self) -> &'static str {
        self.code
    }

    /// No `Authorization` header (`1001`).
    pub(super) fn no_authorization() -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "1001", "Header中未收到Authorization参数，无法进行身份验证。")
    }

    /// A signed token whose `exp` has passed (`1003`, "token expired" in the code table).
    pub(super) fn expired_token() -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "1003", "Authorization Token已过期，请重新生成Token。")
    }

    /// A token that is not the configured key nor a valid token signed with it (`1002`).
    pub(super) fn bad_token() -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "1002", "Authorization Token非法，请确认Authorization Token正确传递。")
    }

    /// A body that is not a JSON object, or cannot be read (`1210`); `detail` says why.
    pub(super) fn bad_body(detail: &str) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "1210", format!("API 调用参数有误，请检查文档。{detail}"))
    }

    /// A body outside the model's schema, under the code the platform uses for it.
    pub(super) fn violation(v: &Violation) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, v.platform_code(), v.to_string())
    }

    /// A `request_id` already used by a task in flight (`1231`).
    pub(super) fn duplicate_request(request_id: &str) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "1231", format!("您已有请求：{request_id}"))
    }

    /// The per-model concurrency limit is reached (`1302`).
    pub(super) fn concurrency() -> ApiError {
        ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "1302",
            "您当前使用该API的并发数过高，请降低并发，或联系客服增加限额。",
        )
    }

    /// The balance cannot pay for the call (`1113`).
    pub(super) fn balance() -> ApiError {
        ApiError::new(StatusCode::TOO_MANY_REQUESTS, "1113", "余额不足或无可用资源包，请充值后重试。")
    }

    /// The platform is overloaded (`1305`).
    pub(super) fn overloaded() -> ApiError {
        ApiError::new(StatusCode::TOO_MANY_REQUESTS, "1305", "当前API请求过多，请稍后重试。")
    }

    /// No task has this id (`1233`).
    pub(super) fn no_such_task(id: &str) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "1233", format!("任务：{id}不存在"))
    }

    /// An internal error (HTTP 500; counted as code `500`).
    pub(super) fn internal() -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "500", "Internal Error")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({ "error": { "code": self.code, "message": self.message } });
        (self.status, Json(body)).into_response()
    }
}

/// A model code in the case the platform has been seen to echo it (`cogvideox-flash` as
/// `CogVideoX-Flash`, reference §4): each part capitalised, CogVideoX and the Vidu versions as the
/// product pages write them.
pub(super) fn display_case(model: &str) -> String {
    model
        .split('-')
        .map(|part| match part {
            "cogvideox" => "CogVideoX".to_owned(),
            "viduq1" => "ViduQ1".to_owned(),
            other => {
                let mut chars = other.chars();
                chars.next().map(|c| c.to_ascii_uppercase().to_string() + chars.as_str()).unwrap_or_default()
            }
        })
        .collect::<Vec<_>>()
        .join("-")
}

/// The answer to an accepted submit.
#[derive(Debug, Clone, Serialize)]
pub(super) struct SubmitAnswer {
    /// Model code as sent.
    pub(super) model: &'static str,
    /// The new task's id.
    pub(super) id: String,
    /// The client's `request_id`, or the minted one.
    pub(super) request_id: String,
    /// Always `PROCESSING`.
    pub(super) task_status: &'static str,
}

impl SubmitAnswer {
    /// The answer for a task just created.
    pub(super) fn processing(model: &'static str, id: &str, request_id: &str) -> SubmitAnswer {
        SubmitAnswer {
            model,
            id: id.to_owned(),
            request_id: request_id.to_owned(),
            task_status: Status::Processing.as_str(),
        }
    }
}

/// The answer to a poll of an existing task.
#[derive(Debug, Clone, Serialize)]
pub(super) struct PollAnswer {
    id: String,
    request_id: String,
    /// Model code as sent, or in display case under the `model_case` fault.
    pub(super) model: String,
    /// `PROCESSING`, `SUCCESS`, `FAIL` — or an unknown value under the `unknown_status` fault.
    pub(super) task_status: &'static str,
    created: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<Usage>,
    #[serde(skip_serializing_if = "Option::is_none")]
    video_result: Option<[VideoResult; 1]>,
}

#[derive(Debug, Clone, Serialize)]
struct Usage {
    prompt_tokens: u64,
    completion_tokens: u64,
    total_tokens: u64,
}

#[derive(Debug, Clone, Serialize)]
struct VideoResult {
    url: String,
    cover_image_url: String,
}

impl PollAnswer {
    /// The answer for a task in `status`, without results.
    pub(super) fn new(id: &str, request_id: &str, model: &'static str, status: Status, created: u64) -> PollAnswer {
        PollAnswer {
            id: id.to_owned(),
            request_id: request_id.to_owned(),
            model: model.to_owned(),
            task_status: status.as_str(),
            created,
            usage: None,
            video_result: None,
        }
    }

    /// Adds what a successful task carries: zero usage and the result URLs.
    pub(super) fn succeeded(&mut self, url: String, cover_image_url: String) {
        self.usage = Some(Usage { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 });
        self.video_result = Some([VideoResult { url, cover_image_url }]);
    }
}
