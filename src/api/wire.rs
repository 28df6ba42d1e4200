//! Wire shapes of the platform's answers, kept apart from the domain types and tolerant of what
//! the reference says varies: numeric or string error codes, flat or nested error objects, extra
//! fields, unknown task statuses, model names in another case.

use serde::Deserialize;
use serde_json::Value;

/// Answer to `POST /videos/generations`.
#[derive(Debug, Deserialize)]
pub(crate) struct SubmitAnswer {
    pub(crate) id: Option<String>,
}

/// Answer to `GET /async-result/{id}`.
#[derive(Debug, Deserialize)]
pub(crate) struct ResultAnswer {
    task_status: Option<String>,
    #[serde(default)]
    video_result: Vec<VideoResult>,
}

#[derive(Debug, Deserialize)]
struct VideoResult {
    url: Option<String>,
    cover_image_url: Option<String>,
}

/// A task's status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskStatus {
    /// Still running (`PROCESSING`, or any status this client does not know).
    Processing(String),
    /// Finished with a result.
    Success {
        /// The video URL.
        video_url: String,
        /// The cover image URL, if given.
        cover_url: Option<String>,
    },
    /// `SUCCESS` without a usable video URL: treated as a failed task.
    SuccessWithoutResult,
    /// The platform reports the task failed.
    Fail,
}

impl ResultAnswer {
    pub(crate) fn status(&self) -> TaskStatus {
        let status = self.task_status.as_deref().unwrap_or("").to_ascii_uppercase();
        match status.as_str() {
            "SUCCESS" => {
                let first = self.video_result.iter().find(|v| v.url.as_deref().is_some_and(|u| !u.is_empty()));
                match first {
                    Some(v) => TaskStatus::Success {
                        video_url: v.url.clone().unwrap_or_default(),
                        cover_url: v.cover_image_url.clone().filter(|u| !u.is_empty()),
                    },
                    None => TaskStatus::SuccessWithoutResult,
                }
            }
            "FAIL" | "FAILED" => TaskStatus::Fail,
            _ => TaskStatus::Processing(status),
        }
    }
}

/// The platform's error body, normalised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorBody {
    /// Business code as a string of digits.
    pub code: String,
    /// The message.
    pub message: String,
}

/// Reads `{"error":{"code":"1302","message":…}}`, also with a numeric code or a flat object.
pub(crate) fn parse_error(text: &str) -> Option<ErrorBody> {
    let v: Value = serde_json::from_str(text).ok()?;
    let e = v.get("error").filter(|e| e.is_object()).unwrap_or(&v);
    let code = match e.get("code")? {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    let message = e.get("message").and_then(Value::as_str).unwrap_or("").to_owned();
    Some(ErrorBody { code, message })
}

/// The start of an answer, for messages.
pub(crate) fn excerpt(text: &str) -> String {
    let mut s: String = text.chars().take(200).collect();
    if s.len() < text.len() {
        s.push('…');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_in_every_observed_shape() {
        let nested = r#"{"error":{"code":"1302","message":"并发数过高"}}"#;
        assert_eq!(parse_error(nested).map(|e| e.code), Some("1302".to_owned()));
        assert_eq!(parse_error(r#"{"error":{"code":1113,"message":"x"}}"#).map(|e| e.code), Some("1113".into()));
        assert_eq!(parse_error(r#"{"code":1214,"message":"x"}"#).map(|e| e.code), Some("1214".into()));
        assert_eq!(parse_error("<html>502</html>"), None);
    }

    #[test]
    fn statuses() {
        let a: ResultAnswer = serde_json::from_str(
            r#"{"task_status":"SUCCESS","model":"CogVideoX-Flash","video_result":[{"url":"https://x/a_0.mp4","cover_image_url":"https://x/a_cover_0.jpeg"}],"usage":{}}"#,
        )
        .expect("parse");
        assert_eq!(
            a.status(),
            TaskStatus::Success {
                video_url: "https://x/a_0.mp4".into(),
                cover_url: Some("https://x/a_cover_0.jpeg".into())
            }
        );
        let p: ResultAnswer = serde_json::from_str(r#"{"task_status":"SUBMITTED"}"#).expect("parse");
        assert_eq!(p.status(), TaskStatus::Processing("SUBMITTED".into()));
        let f: ResultAnswer = serde_json::from_str(r#"{"task_status":"FAIL"}"#).expect("parse");
        assert_eq!(f.status(), TaskStatus::Fail);
        let e: ResultAnswer = serde_json::from_str(r#"{"task_status":"SUCCESS","video_result":[]}"#).expect("parse");
        assert_eq!(e.status(), TaskStatus::SuccessWithoutResult);
    }
}
