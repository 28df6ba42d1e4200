//! Wire shapes of the platform's answers, kept apart from the domain types and tolerant of what
//! the reference and the official SDK show may vary: numeric or string error codes, flat or
//! nested error objects, extra fields, unknown task statuses, model names in another case,
//! numeric task ids, and `null` for any field (`zai-sdk` 0.2.3 declares
//! `zai.types.video.VideoObject.id` optional and parses `"video_result": null`).

use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;
use serde_json::{Value, json};

/// Answer to `POST /videos/generations`: only the task id matters, and any answer that has one
/// is an accepted task (a paid one), whatever else it holds.
#[derive(Debug, Deserialize)]
pub(crate) struct SubmitAnswer {
    #[serde(default)]
    id: Option<Box<RawValue>>,
}

impl SubmitAnswer {
    /// The task id as text: a JSON string as it is, a JSON number by its exact digits (the old
    /// official example shows the 19-digit `8868902201637896192`, the old SDK's tests a 25-digit
    /// one, beyond what a float or `u64` holds). `None` for a missing, null, empty or other id.
    pub(crate) fn task_id(&self) -> Option<String> {
        let raw = self.id.as_deref()?.get().trim();
        if raw.starts_with('"') {
            let id: String = serde_json::from_str(raw).ok()?;
            return Some(id).filter(|id| !id.trim().is_empty());
        }
        (!raw.is_empty() && raw.bytes().all(|b| b.is_ascii_digit())).then(|| raw.to_owned())
    }
}

/// Answer to `GET /async-result/{id}`.
#[derive(Debug, Deserialize)]
pub(crate) struct ResultAnswer {
    #[serde(default, deserialize_with = "lenient_string")]
    task_status: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    model: Option<String>,
    #[serde(default, deserialize_with = "results")]
    video_result: Vec<VideoResult>,
}

#[derive(Debug, Deserialize)]
struct VideoResult {
    #[serde(default, deserialize_with = "lenient_string")]
    url: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    cover_image_url: Option<String>,
}

/// A string field that may also come as `null` or in another JSON type (then it is unset).
fn lenient_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::String(s) => Some(s),
        _ => None,
    })
}

/// `video_result`: an array of results; `null` (seen while `PROCESSING`) is none, a lone object
/// is one, and entries that are not objects are skipped.
fn results<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<VideoResult>, D::Error> {
    let items = match Value::deserialize(d)? {
        Value::Array(items) => items,
        one @ Value::Object(_) => vec![one],
        _ => Vec::new(),
    };
    Ok(items.into_iter().filter_map(|item| serde_json::from_value(item).ok()).collect())
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

/// Longest result URL taken (real ones are a few hundred bytes); longer ones are not used.
pub(crate) const MAX_URL_BYTES: usize = 8 * 1024;

/// Answers up to this size are stored verbatim; larger ones as [`bounded_record`].
pub(crate) const MAX_RECORD_BYTES: usize = 16 * 1024;

/// What the catalogue and the sidecar keep of a poll answer: the answer itself when it is at
/// most [`MAX_RECORD_BYTES`], else the fields the archive needs (status, model, result links)
/// and the answer's length and first 200 characters.
pub(crate) fn bounded_record(answer: &ResultAnswer, text: &str) -> String {
    if text.len() <= MAX_RECORD_BYTES {
        return text.to_owned();
    }
    let results: Vec<Value> = answer
        .usable()
        .take(4)
        .map(|v| {
            let cover = v.cover_image_url.as_deref().filter(|u| u.len() <= MAX_URL_BYTES);
            json!({"url": v.url, "cover_image_url": cover})
        })
        .collect();
    json!({
        "task_status": answer.task_status.as_deref().map(excerpt),
        "model": answer.model.as_deref().map(excerpt),
        "video_result": results,
        "vidkeep_excerpt": {"bytes": text.len(), "start": excerpt(text)},
    })
    .to_string()
}

impl ResultAnswer {
    /// Results with a video URL of sensible length.
    fn usable(&self) -> impl Iterator<Item = &VideoResult> {
        self.video_result.iter().filter(|v| v.url.as_deref().is_some_and(|u| !u.is_empty() && u.len() <= MAX_URL_BYTES))
    }

    /// The model the answer names, in whatever case the platform wrote it.
    pub(crate) fn model(&self) -> Option<&str> {
        self.model.as_deref()
    }

    pub(crate) fn status(&self) -> TaskStatus {
        let status = self.task_status.as_deref().unwrap_or("").to_ascii_uppercase();
        match status.as_str() {
            "SUCCESS" => {
                let first = self.usable().next();
                match first {
                    Some(v) => TaskStatus::Success {
                        video_url: v.url.clone().unwrap_or_default(),
                        cover_url: v.cover_image_url.clone().filter(|u| !u.is_empty() && u.len() <= MAX_URL_BYTES),
                    },
                    None => TaskStatus::SuccessWithoutResult,
                }
            }
            "FAIL" | "FAILED" => TaskStatus::Fail,
            _ => TaskStatus::Processing(status),
        }
    }
}

/// Whether the model an answer names is the model the request named: the platform has been seen
/// to echo `cogvideox-flash` as `CogVideoX-Flash` (reference §4), so case does not count.
pub fn same_model(sent: &str, answered: &str) -> bool {
    sent.trim().eq_ignore_ascii_case(answered.trim())
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

    #[test]
    fn nulls_and_odd_types_in_results_are_unset() {
        let shapes = [
            r#"{"task_status":"PROCESSING","video_result":null,"model":"CogVideoX-Flash","id":8868902201637896192}"#,
            r#"{"task_status":"PROCESSING","video_result":null,"usage":null,"request_id":null}"#,
            r#"{"task_status":"PROCESSING","video_result":[null],"model":null}"#,
            r#"{"task_status":null}"#,
        ];
        for text in shapes {
            let a: ResultAnswer = serde_json::from_str(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert!(matches!(a.status(), TaskStatus::Processing(_)), "{text}");
        }
        let one: ResultAnswer = serde_json::from_str(
            r#"{"task_status":"SUCCESS","video_result":{"url":"https://x/a.mp4","cover_image_url":null}}"#,
        )
        .expect("parse");
        assert_eq!(one.status(), TaskStatus::Success { video_url: "https://x/a.mp4".into(), cover_url: None });
    }

    #[test]
    fn task_ids_as_strings_or_exact_digits() {
        let id = |text: &str| serde_json::from_str::<SubmitAnswer>(text).expect("parse").task_id();
        assert_eq!(id(r#"{"id":"2026081810250142"}"#).as_deref(), Some("2026081810250142"));
        assert_eq!(
            id(r#"{"id":8868902201637896192,"task_status":"PROCESSING"}"#).as_deref(),
            Some("8868902201637896192")
        );
        assert_eq!(id(r#"{"id":1014908869548405238276203}"#).as_deref(), Some("1014908869548405238276203"));
        assert_eq!(id(r#"{"id":"x","task_status":42,"model":null,"video_result":"odd"}"#).as_deref(), Some("x"));
        for none in [r#"{"id":null}"#, r#"{"id":""}"#, r#"{"id":1.5}"#, r#"{"id":-3}"#, r#"{"id":{}}"#, r#"{}"#] {
            assert_eq!(id(none), None, "{none}");
        }
    }

    #[test]
    fn large_answers_are_recorded_bounded() {
        let pad = "x".repeat(3 * 1024 * 1024);
        let text = format!(
            r#"{{"task_status":"SUCCESS","model":"viduq1","pad":"{pad}","video_result":[{{"url":"https://x/a.mp4","cover_image_url":"https://x/c.jpg"}}]}}"#
        );
        let a: ResultAnswer = serde_json::from_str(&text).expect("parse");
        let record = bounded_record(&a, &text);
        assert!(record.len() < 2048, "{} bytes", record.len());
        let v: Value = serde_json::from_str(&record).expect("json");
        assert_eq!(v["video_result"][0]["url"], "https://x/a.mp4");
        assert_eq!(v["vidkeep_excerpt"]["bytes"], text.len());
        let small = r#"{"task_status":"PROCESSING"}"#;
        let p: ResultAnswer = serde_json::from_str(small).expect("parse");
        assert_eq!(bounded_record(&p, small), small);
    }

    #[test]
    fn models_compare_without_case() {
        assert!(same_model("cogvideox-flash", "CogVideoX-Flash"));
        assert!(!same_model("cogvideox-flash", "cogvideox-3"));
    }
}
