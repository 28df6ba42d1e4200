//! Job specs: what a studio drops into the inbox, parsed and validated into the exact request
//! vidkeep will send.
//!
//! Three formats name the same thing:
//! - `.json`: the platform's request body exactly as the docs show it;
//! - `.toml`: the same keys as a TOML table;
//! - `.txt`: a bare prompt, sent with the `[defaults]` of the config.
//!
//! An optional `vidkeep` object (`name`, `project`, `tags`) carries our own fields and is stripped
//! before sending. `[defaults]` fill only the fields the spec's model accepts, so a default
//! `style = "anime"` does not break an image-to-video spec. Parsing is pure apart from reading
//! image files the spec names; it never talks to the network.

pub mod file;
pub mod images;
pub mod models;

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub use models::{ModelRules, Violation, may_be_ignored, validate_request};

/// Largest spec file vidkeep reads; images are read separately with their own limit.
pub const MAX_SPEC_BYTES: u64 = 1024 * 1024;

/// The file formats a spec can be written in, chosen by extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SpecFormat {
    /// The platform's JSON request body.
    Json,
    /// The same keys in TOML.
    Toml,
    /// A bare prompt.
    Text,
}

impl SpecFormat {
    /// The format of a file by its extension (case-insensitive), or `None` if it is not a spec.
    pub fn from_path(path: &Path) -> Option<SpecFormat> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "json" => Some(SpecFormat::Json),
            "toml" => Some(SpecFormat::Toml),
            "txt" => Some(SpecFormat::Text),
            _ => None,
        }
    }
}

/// vidkeep's own fields from the spec's optional `vidkeep` table; never sent to the platform.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SpecMeta {
    /// A human name for the job.
    pub name: Option<String>,
    /// The project the job belongs to.
    pub project: Option<String>,
    /// Free-form tags for filtering.
    pub tags: Vec<String>,
    /// How many results (takes) to make from this spec, one charge each (default 1).
    pub takes: Option<u32>,
    /// Submit even though the same request already made a job ("already paid for").
    pub force: bool,
}

/// Most takes one spec may ask for.
pub const MAX_TAKES: u32 = 20;

impl SpecMeta {
    /// The number of jobs this spec makes.
    pub fn take_count(&self) -> u32 {
        self.takes.unwrap_or(1)
    }
}

/// A parsed, validated spec, ready to be submitted.
#[derive(Debug, Clone, PartialEq)]
pub struct JobSpec {
    /// Model code.
    pub model: String,
    /// The prompt, if any.
    pub prompt: Option<String>,
    /// Our own fields.
    pub meta: SpecMeta,
    /// The request body exactly as it will be sent (local images inlined as data URIs).
    pub request: Map<String, Value>,
    /// The same body for people: each image shown as its source, not its base64.
    pub display: Map<String, Value>,
}

impl JobSpec {
    /// The model's rules; present because parsing validated the model.
    pub fn rules(&self) -> Option<&'static ModelRules> {
        models::rules(&self.model)
    }
}

/// Where a spec sits and what fills its gaps.
#[derive(Debug, Clone, Copy)]
pub struct SpecContext<'a> {
    /// Request fields applied to specs that do not set them (`[defaults]` in the config).
    pub defaults: &'a Map<String, Value>,
    /// The folder the spec file is in; relative image paths start here.
    pub spec_dir: &'a Path,
    /// The inbox; image paths must stay inside it.
    pub inbox: &'a Path,
}

/// Why a spec was rejected. Every message says what to change.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// The file is larger than [`MAX_SPEC_BYTES`].
    #[error("the spec file is {bytes} bytes; specs may be at most {max} bytes (put images in their own files)")]
    TooLarge {
        /// Size of the file.
        bytes: u64,
        /// The limit.
        max: u64,
    },
    /// The extension is not one of json, toml, txt.
    #[error("`{0}` is not a spec format: vidkeep reads .json, .toml and .txt specs; convert it and drop it again")]
    UnknownFormat(String),
    /// The file is not UTF-8 text.
    #[error("the file is not UTF-8 text; save it as UTF-8")]
    NotUtf8,
    /// JSON or TOML syntax error, with the parser's position.
    #[error("not valid {format}: {detail}")]
    Syntax {
        /// "JSON" or "TOML".
        format: &'static str,
        /// The parser's message, with line and column.
        detail: String,
    },
    /// The top level is not an object/table.
    #[error("the spec must be a JSON object (a {{...}} request body), not {0}")]
    NotAnObject(&'static str),
    /// A `.txt` spec with nothing in it.
    #[error("the text file is empty: write the prompt in it")]
    EmptyText,
    /// The `vidkeep` table is malformed.
    #[error("the `vidkeep` table is invalid: {0} (it takes name, project, tags, takes and force)")]
    Meta(String),
    /// A field vidkeep sets itself.
    #[error("`{0}` is set by vidkeep for each submission; remove it from the spec")]
    Reserved(&'static str),
    /// An image reference could not be used.
    #[error("image `{entry}`: {reason}")]
    Image {
        /// The entry as written in the spec.
        entry: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The request does not fit the model's schema.
    #[error("{0}")]
    Invalid(#[from] Violation),
    /// The file begins with the exact bytes of a spec of the same name taken moments ago: the
    /// same file still being written (and taken too early), not a new job.
    #[error(
        "this file begins with the exact content of the spec of the same name taken moments ago as job {job_id}: \
         it was still being written when vidkeep took it, so nothing was sent for this version. Write specs \
         elsewhere (or as .part) and rename them into the inbox when done; if you meant a new job, drop it again \
         under another name"
    )]
    ExtendsTaken {
        /// The job made from the earlier, shorter file.
        job_id: String,
    },
    /// A valid spec that could not be moved out of the inbox, so it was not taken.
    #[error("the spec could not be moved into processing/ ({0}); it was not taken and nothing was sent")]
    Unmovable(String),
}

impl SpecError {
    /// Every code [`SpecError::code`] gives, so metrics can show each at 0 from the start.
    pub const CODES: &'static [&'static str] = &[
        "spec-too-large",
        "spec-format",
        "spec-syntax",
        "spec-empty",
        "spec-meta",
        "spec-reserved-field",
        "spec-image",
        "spec-unknown-model",
        "spec-invalid",
        "spec-unmovable",
        "spec-rewritten",
        SpecError::IN_FOLDER,
    ];

    /// The code of a folder in the inbox: specs in it are not read.
    pub const IN_FOLDER: &'static str = "spec-in-folder";

    /// A stable kebab-case code for reports, the catalogue and filters.
    pub fn code(&self) -> &'static str {
        match self {
            SpecError::TooLarge { .. } => "spec-too-large",
            SpecError::UnknownFormat(_) => "spec-format",
            SpecError::NotUtf8 | SpecError::Syntax { .. } | SpecError::NotAnObject(_) => "spec-syntax",
            SpecError::EmptyText => "spec-empty",
            SpecError::Meta(_) => "spec-meta",
            SpecError::Reserved(_) => "spec-reserved-field",
            SpecError::Image { .. } => "spec-image",
            SpecError::Invalid(Violation::UnknownModel(_)) => "spec-unknown-model",
            SpecError::Invalid(_) => "spec-invalid",
            SpecError::Unmovable(_) => "spec-unmovable",
            SpecError::ExtendsTaken { .. } => "spec-rewritten",
        }
    }
}

/// Parses and validates one spec file's bytes.
pub fn parse(file_name: &str, bytes: &[u8], ctx: &SpecContext<'_>) -> Result<JobSpec, SpecError> {
    let format =
        SpecFormat::from_path(Path::new(file_name)).ok_or_else(|| SpecError::UnknownFormat(file_name.to_owned()))?;
    if bytes.len() as u64 > MAX_SPEC_BYTES {
        return Err(SpecError::TooLarge { bytes: bytes.len() as u64, max: MAX_SPEC_BYTES });
    }
    let text = std::str::from_utf8(bytes).map_err(|_| SpecError::NotUtf8)?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut body = match format {
        SpecFormat::Json => parse_json(text)?,
        SpecFormat::Toml => parse_toml(text)?,
        SpecFormat::Text => parse_text(text)?,
    };
    // A `null` is "not set" (the official SDK writes every unset field so): dropped before
    // anything looks at the body, so it never reaches the catalogue, the fingerprint or the wire.
    models::drop_nulls(&mut body);
    let meta = take_meta(&mut body)?;
    if body.contains_key("request_id") {
        return Err(SpecError::Reserved("request_id"));
    }
    apply_defaults(&mut body, ctx.defaults);
    let display = body.clone();
    images::inline(&mut body, ctx)?;
    let rules = validate_request(&body)?;
    let prompt = body.get("prompt").and_then(Value::as_str).map(str::to_owned);
    Ok(JobSpec { model: rules.name.to_owned(), prompt, meta, request: body, display })
}

fn parse_json(text: &str) -> Result<Map<String, Value>, SpecError> {
    let value: Value =
        serde_json::from_str(text).map_err(|e| SpecError::Syntax { format: "JSON", detail: e.to_string() })?;
    match value {
        Value::Object(map) => Ok(map),
        Value::Array(_) => Err(SpecError::NotAnObject("an array")),
        Value::String(_) => Err(SpecError::NotAnObject("a string")),
        _ => Err(SpecError::NotAnObject("a bare value")),
    }
}

fn parse_toml(text: &str) -> Result<Map<String, Value>, SpecError> {
    let table: toml::Table = toml::from_str(text)
        .map_err(|e| SpecError::Syntax { format: "TOML", detail: e.to_string().trim().to_owned() })?;
    match serde_json::to_value(table) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(SpecError::NotAnObject("a bare value")),
        Err(e) => Err(SpecError::Syntax { format: "TOML", detail: e.to_string() }),
    }
}

fn parse_text(text: &str) -> Result<Map<String, Value>, SpecError> {
    let prompt = text.trim();
    if prompt.is_empty() {
        return Err(SpecError::EmptyText);
    }
    let mut map = Map::new();
    map.insert("prompt".to_owned(), Value::String(prompt.to_owned()));
    Ok(map)
}

fn take_meta(body: &mut Map<String, Value>) -> Result<SpecMeta, SpecError> {
    match body.remove("vidkeep") {
        None => Ok(SpecMeta::default()),
        Some(v) => {
            let meta: SpecMeta = serde_json::from_value(v).map_err(|e| SpecError::Meta(e.to_string()))?;
            if meta.takes.is_some_and(|n| n == 0 || n > MAX_TAKES) {
                return Err(SpecError::Meta(format!("`takes` must be 1 to {MAX_TAKES}")));
            }
            Ok(meta)
        }
    }
}

/// Fills fields the spec leaves out (or sets to `null`) from `defaults`: `model` first, then only
/// the fields that model's published schema has.
fn apply_defaults(body: &mut Map<String, Value>, defaults: &Map<String, Value>) {
    if !body.contains_key("model") {
        if let Some(model) = defaults.get("model") {
            body.insert("model".to_owned(), model.clone());
        }
    }
    let Some(rules) = body.get("model").and_then(Value::as_str).and_then(models::rules) else {
        return;
    };
    for (key, value) in defaults {
        if key != "request_id" && !value.is_null() && rules.documents_field(key) && !body.contains_key(key) {
            body.insert(key.clone(), value.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse_with(name: &str, text: &str, defaults: Value) -> Result<JobSpec, SpecError> {
        let dir = tempfile::tempdir().expect("tempdir");
        let Value::Object(defaults) = defaults else { panic!("defaults must be an object") };
        let ctx = SpecContext { defaults: &defaults, spec_dir: dir.path(), inbox: dir.path() };
        parse(name, text.as_bytes(), &ctx)
    }

    #[test]
    fn every_code_is_listed() {
        let samples = [
            SpecError::TooLarge { bytes: 1, max: 0 },
            SpecError::UnknownFormat(String::new()),
            SpecError::NotUtf8,
            SpecError::EmptyText,
            SpecError::Reserved("request_id"),
            SpecError::Invalid(Violation::MissingModel),
            SpecError::Invalid(Violation::UnknownModel(String::new())),
            SpecError::Unmovable(String::new()),
        ];
        for e in &samples {
            assert!(SpecError::CODES.contains(&e.code()), "{}", e.code());
        }
    }

    #[test]
    fn json_body_as_documented_is_a_spec() {
        let spec = parse_with(
            "fox.json",
            r#"{"model":"viduq1-text","style":"anime","prompt":"a fox","duration":5,"aspect_ratio":"16:9","size":"1920x1080","movement_amplitude":"auto"}"#,
            json!({}),
        )
        .expect("valid");
        assert_eq!(spec.model, "viduq1-text");
        assert_eq!(spec.prompt.as_deref(), Some("a fox"));
        assert_eq!(spec.request.get("style"), Some(&json!("anime")));
    }

    #[test]
    fn toml_with_meta_table_strips_meta() {
        let spec = parse_with(
            "fox.toml",
            "model = \"viduq1-text\"\nprompt = \"a fox\"\n[vidkeep]\nname = \"Fox\"\nproject = \"winter\"\ntags = [\"snow\"]\n",
            json!({}),
        )
        .expect("valid");
        assert_eq!(spec.meta.project.as_deref(), Some("winter"));
        assert!(!spec.request.contains_key("vidkeep"));
    }

    #[test]
    fn text_uses_defaults_that_the_model_accepts() {
        let spec = parse_with(
            "a.txt",
            "  a lantern festival at night\n",
            json!({"model":"viduq1-text","style":"anime","quality":"speed"}),
        )
        .expect("valid");
        assert_eq!(spec.request.get("style"), Some(&json!("anime")));
        assert!(!spec.request.contains_key("quality"), "cogvideox-only default not applied");
        assert_eq!(spec.prompt.as_deref(), Some("a lantern festival at night"));
    }

    #[test]
    fn rejections_name_the_problem() {
        let cases = [
            ("a.json", "{\"model\": ", "spec-syntax"),
            ("a.json", "[1,2]", "spec-syntax"),
            ("a.json", r#"{"model":"viduq9-text","prompt":"x"}"#, "spec-unknown-model"),
            ("a.json", r#"{"model":"viduq1-text"}"#, "spec-invalid"),
            ("a.txt", "   \n", "spec-empty"),
            ("a.json", r#"{"model":"viduq1-text","prompt":"x","request_id":"r"}"#, "spec-reserved-field"),
            ("a.json", r#"{"model":"viduq1-text","prompt":"x","vidkeep":{"nmae":"typo"}}"#, "spec-meta"),
            ("a.toml", "model = viduq1", "spec-syntax"),
        ];
        for (name, text, code) in cases {
            let err = parse_with(name, text, json!({})).expect_err(text);
            assert_eq!(err.code(), code, "{text}: {err}");
        }
    }

    #[test]
    fn nulls_are_dropped_before_anything_reads_the_body() {
        let spec = parse_with(
            "sdk.json",
            r#"{"model":"viduq1-text","prompt":"a fox","style":null,"image_url":null,"request_id":null,"vidkeep":null}"#,
            json!({"style":"anime"}),
        )
        .expect("nulls are not set");
        assert_eq!(spec.request.get("style"), Some(&json!("anime")), "a null field takes the default");
        assert!(spec.request.values().all(|v| !v.is_null()), "{:?}", spec.request);
        assert!(!spec.request.contains_key("request_id") && !spec.display.contains_key("image_url"));
    }

    #[test]
    fn quality_default_is_not_applied_to_vidu_although_vidu_passes_it_through() {
        let spec =
            parse_with("a.txt", "a fox", json!({"model":"viduq1-text","quality":"speed","fps":30})).expect("valid");
        assert!(!spec.request.contains_key("quality") && !spec.request.contains_key("fps"), "{:?}", spec.request);
    }

    #[test]
    fn syntax_errors_give_a_line() {
        let err = parse_with("a.json", "{\n\"model\": \"viduq1-text\",\n}", json!({})).expect_err("trailing comma");
        assert!(err.to_string().contains("line 3"), "{err}");
    }

    #[test]
    fn text_without_model_default_says_how_to_fix() {
        let err = parse_with("a.txt", "a prompt", json!({})).expect_err("no model");
        assert!(err.to_string().contains("[defaults]"), "{err}");
    }
}
