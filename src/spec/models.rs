//! What each model accepts, from the platform's published request schemas
//! (`../shared/reference/bigmodel-video-api.md` §2). One table, used by spec validation and by the
//! simulator, so the two cannot drift apart on the facts; each side decides on its own what a
//! violation means (a rejected spec here, a platform error code there).
//!
//! Two kinds of field are accepted. A field in the model's published schema is checked against
//! the schema's values. A field the official SDK sends that the schema lacks for this model is
//! passed through after a type check, and [`may_be_ignored`] names it, because the platform may
//! ignore it. The SDK fields are those of `zai-sdk` 0.2.3, `zai.api_resource.videos.Videos.generations`
//! (`off_peak`, `watermark_enabled`, `sensitive_word_check`, and `quality`, `fps`, `with_audio` on
//! every model, as the SDK's own Vidu examples send them). A JSON `null` means "not set"
//! everywhere: that SDK sends every keyword argument left at its default as `null`.

use serde_json::{Map, Value};

/// How a model takes `image_url`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageRule {
    /// The model takes no image.
    None,
    /// Exactly one image, as a string.
    Single,
    /// An array of `min..=max` images.
    Array {
        /// Fewest images accepted.
        min: usize,
        /// Most images accepted.
        max: usize,
    },
    /// One image as a string, or exactly two (first and last frame) as an array (`cogvideox-3`).
    SingleOrPair,
}

/// The request fields one model accepts and the values each may take.
#[derive(Debug, Clone, Copy)]
pub struct ModelRules {
    /// Model code as sent in `model`.
    pub name: &'static str,
    /// `prompt` must be present and non-empty.
    pub prompt_required: bool,
    /// How `image_url` is taken.
    pub image: ImageRule,
    /// `image_url` must be present.
    pub image_required: bool,
    /// Accepted `duration` values in seconds; empty when the field is not in the schema.
    pub durations: &'static [i64],
    /// Accepted `size` values; empty when the field is not in the schema.
    pub sizes: &'static [&'static str],
    /// Accepted `aspect_ratio` values; empty when the field is not in the schema.
    pub aspect_ratios: &'static [&'static str],
    /// Accepted `style` values; empty when the field is not in the schema.
    pub styles: &'static [&'static str],
    /// Accepted `quality` values (CogVideoX); empty when the field is not in the schema.
    pub qualities: &'static [&'static str],
    /// Accepted `fps` values (CogVideoX); empty when the field is not in the schema.
    pub fps: &'static [i64],
    /// `movement_amplitude` is accepted.
    pub movement_amplitude: bool,
    /// `with_audio` is accepted.
    pub with_audio: bool,
    /// `with_audio: true` is refused: Vidu adds music only to 4 s videos and this model makes 5 s.
    pub with_audio_true_refused: bool,
    /// `watermark_enabled` is accepted (CogVideoX).
    pub watermark: bool,
    /// Image formats accepted in `image_url` (as in `data:image/<fmt>;base64,`).
    pub image_formats: &'static [&'static str],
    /// Largest decoded image the platform takes, in bytes.
    pub max_image_bytes: u64,
    /// List price of one call in fen (0.01 CNY), for the spend ledger.
    pub price_fen: u32,
}

/// Longest prompt the platform accepts, in characters (Unicode scalar values).
pub const MAX_PROMPT_CHARS: usize = 512;

const MOVEMENT: &[&str] = &["auto", "small", "medium", "large"];
const VIDU_FORMATS: &[&str] = &["png", "jpeg", "jpg", "webp"];
const COG_FORMATS: &[&str] = &["png", "jpeg", "jpg"];
const MB: u64 = 1024 * 1024;
const RATIOS: &[&str] = &["16:9", "9:16", "1:1"];
const COG3_SIZES: &[&str] = &["1280x720", "720x1280", "1024x1024", "1920x1080", "1080x1920", "2048x1080", "3840x2160"];
const COG2_SIZES: &[&str] =
    &["720x480", "1024x1024", "1280x960", "960x1280", "1920x1080", "1080x1920", "2048x1080", "3840x2160"];

const VIDU_BASE: ModelRules = ModelRules {
    name: "",
    prompt_required: false,
    image: ImageRule::None,
    image_required: false,
    durations: &[5],
    sizes: &["1920x1080"],
    aspect_ratios: &[],
    styles: &[],
    qualities: &[],
    fps: &[],
    movement_amplitude: true,
    with_audio: true,
    with_audio_true_refused: false,
    watermark: false,
    image_formats: VIDU_FORMATS,
    max_image_bytes: 50 * MB,
    price_fen: 250,
};

const COG_BASE: ModelRules = ModelRules {
    name: "",
    prompt_required: false,
    image: ImageRule::Single,
    image_required: false,
    durations: &[],
    sizes: COG2_SIZES,
    aspect_ratios: &[],
    styles: &[],
    qualities: &["speed", "quality"],
    fps: &[30, 60],
    movement_amplitude: false,
    with_audio: true,
    with_audio_true_refused: false,
    watermark: true,
    image_formats: COG_FORMATS,
    max_image_bytes: 5 * MB,
    price_fen: 50,
};

/// Every model vidkeep knows, with its rules.
pub const MODELS: &[ModelRules] = &[
    ModelRules {
        name: "viduq1-text",
        prompt_required: true,
        aspect_ratios: RATIOS,
        styles: &["general", "anime"],
        with_audio: false,
        ..VIDU_BASE
    },
    ModelRules {
        name: "viduq1-image",
        image: ImageRule::Single,
        image_required: true,
        with_audio_true_refused: true,
        ..VIDU_BASE
    },
    ModelRules {
        name: "viduq1-start-end",
        image: ImageRule::Array { min: 2, max: 2 },
        image_required: true,
        ..VIDU_BASE
    },
    ModelRules {
        name: "vidu2-image",
        image: ImageRule::Single,
        image_required: true,
        durations: &[4],
        sizes: &["1280x720"],
        price_fen: 125,
        ..VIDU_BASE
    },
    ModelRules {
        name: "vidu2-start-end",
        image: ImageRule::Array { min: 1, max: 2 },
        image_required: true,
        durations: &[4],
        sizes: &["1280x720", "480x360"],
        price_fen: 125,
        ..VIDU_BASE
    },
    ModelRules {
        name: "vidu2-reference",
        image: ImageRule::Array { min: 1, max: 3 },
        image_required: true,
        durations: &[4],
        sizes: &["1280x720"],
        aspect_ratios: RATIOS,
        ..VIDU_BASE
    },
    ModelRules {
        name: "cogvideox-3",
        image: ImageRule::SingleOrPair,
        durations: &[5, 10],
        sizes: COG3_SIZES,
        price_fen: 100,
        ..COG_BASE
    },
    ModelRules { name: "cogvideox-2", ..COG_BASE },
    ModelRules { name: "cogvideox-flash", price_fen: 0, ..COG_BASE },
];

/// The rules for `model`, if vidkeep knows it.
pub fn rules(model: &str) -> Option<&'static ModelRules> {
    MODELS.iter().find(|m| m.name == model)
}

impl ModelRules {
    /// Whether `field` is sent to this model: in its schema, or passed through for the SDK.
    pub fn accepts_field(&self, field: &str) -> bool {
        self.documents_field(field) || self.pass_through(field).is_some()
    }

    /// Why the platform may ignore `field` for this model: `Some` for a field vidkeep passes
    /// through although the model's published schema lacks it, `None` for schema fields (and for
    /// fields not accepted at all).
    pub fn pass_through(&self, field: &str) -> Option<&'static str> {
        if self.documents_field(field) {
            return None;
        }
        Some(match field {
            "off_peak" => {
                "not in the platform's documents (the SDK sends it); on Vidu's own API off-peak tasks cost less \
                 and finish within 48 h, here its effect is unknown: vidkeep records the list price and polls \
                 for as long as the task takes"
            }
            "sensitive_word_check" => {
                "a legacy SDK field absent from the current documents; switching the check off needs the \
                 platform's permission, otherwise it is ignored"
            }
            "watermark_enabled" => "documented for CogVideoX models only",
            "quality" => "documented for CogVideoX models only",
            "fps" => "documented for CogVideoX models only (Vidu makes 24 fps)",
            "with_audio" => "not in this model's published schema",
            _ => return None,
        })
    }

    /// Whether the model's published request schema has `field`; `[defaults]` fill only these.
    pub fn documents_field(&self, field: &str) -> bool {
        match field {
            "model" | "prompt" | "request_id" | "user_id" => true,
            "image_url" => self.image != ImageRule::None,
            "duration" => !self.durations.is_empty(),
            "size" => !self.sizes.is_empty(),
            "aspect_ratio" => !self.aspect_ratios.is_empty(),
            "style" => !self.styles.is_empty(),
            "quality" => !self.qualities.is_empty(),
            "fps" => !self.fps.is_empty(),
            "movement_amplitude" => self.movement_amplitude,
            "with_audio" => self.with_audio,
            "watermark_enabled" => self.watermark,
            _ => false,
        }
    }
}

/// Why a request body is not one the platform accepts. Each variant maps to the business code the
/// platform answers with ([`Violation::platform_code`]); its `Display` is a sentence a person can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Violation {
    /// No `model` field.
    #[error("no `model` is set: add e.g. \"model\": \"viduq1-text\" to the spec or set `model` in [defaults]")]
    MissingModel,
    /// A model the platform does not have (or vidkeep does not know).
    #[error("unknown model `{0}`{hint}: known models are {known}", hint = did_you_mean(.0, MODELS.iter().map(|m| m.name)), known = known_models())]
    UnknownModel(String),
    /// A required field is absent.
    #[error("`{field}` is required for {model}: {why}")]
    Missing {
        /// The missing field.
        field: &'static str,
        /// The model whose schema requires it.
        model: String,
        /// What to add.
        why: &'static str,
    },
    /// A field has a value outside the model's schema.
    #[error("`{field}` is not valid for {model}: {why}")]
    Illegal {
        /// The offending field.
        field: String,
        /// The model.
        model: String,
        /// What is accepted instead.
        why: String,
    },
    /// The prompt is longer than the platform accepts.
    #[error("the prompt is {chars} characters long; the platform accepts at most {max}")]
    PromptTooLong {
        /// Characters in the prompt.
        chars: usize,
        /// The limit.
        max: usize,
    },
    /// A field the model's schema does not have (often a typo).
    #[error("`{field}` is not a field {model} accepts{hint} (accepted: {accepted})", hint = did_you_mean(.field, .accepted.split(", ")))]
    UnknownField {
        /// The unknown field.
        field: String,
        /// The model.
        model: String,
        /// The fields the model does accept.
        accepted: String,
    },
}

impl Violation {
    /// The business error code the platform answers this violation with.
    pub fn platform_code(&self) -> &'static str {
        match self {
            Violation::MissingModel | Violation::Missing { .. } => "1213",
            Violation::UnknownModel(_) => "1211",
            Violation::Illegal { .. } => "1214",
            Violation::PromptTooLong { .. } => "1261",
            Violation::UnknownField { .. } => "1210",
        }
    }
}

/// `; did you mean `x`?` when one of `names` is within a typo of `given` (case, `-` and `_`
/// aside: `vidu-q1-text` means `viduq1-text`), else nothing.
pub(crate) fn did_you_mean<'a>(given: &str, names: impl Iterator<Item = &'a str>) -> String {
    let plain =
        |s: &str| -> String { s.chars().filter(|c| !"-_ ".contains(*c)).flat_map(char::to_lowercase).collect() };
    let given = plain(given);
    let most = if given.chars().count() <= 4 { 1 } else { 2 };
    // Edits: insert, delete, replace, or swap two neighbours (optimal string alignment).
    names
        .map(|name| (strsim::osa_distance(&given, &plain(name)), name))
        .filter(|(d, _)| *d <= most)
        .min_by_key(|(d, _)| *d)
        .map_or_else(String::new, |(_, name)| format!("; did you mean `{name}`?"))
}

/// The models vidkeep knows, `, `-joined.
pub(crate) fn known_models() -> String {
    MODELS.iter().map(|m| m.name).collect::<Vec<_>>().join(", ")
}

const ALL_FIELDS: &[&str] = &[
    "model",
    "prompt",
    "image_url",
    "duration",
    "size",
    "aspect_ratio",
    "style",
    "quality",
    "fps",
    "movement_amplitude",
    "with_audio",
    "watermark_enabled",
    "off_peak",
    "sensitive_word_check",
    "request_id",
    "user_id",
];

/// `sensitive_word_check.type` values: "currently only supports ALL" (`zai-sdk` 0.2.3,
/// `zai.types.sensitive_word_check.SensitiveWordCheckRequest`).
const SENSITIVE_TYPES: &[&str] = &["ALL"];
/// `sensitive_word_check.status` values, from the same SDK type: `ENABLE` or `DISABLE`.
const SENSITIVE_STATUSES: &[&str] = &["ENABLE", "DISABLE"];

/// The value of `field` in `body`, `None` when it is absent or `null` (not set).
fn field<'a>(body: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    body.get(name).filter(|v| !v.is_null())
}

/// Removes every `null` member, in nested objects too (not inside arrays, where a `null` is an
/// entry, not an unset field): a `null` means "not set", so a body with them and one without are
/// the same request and get the same fingerprint.
pub fn drop_nulls(body: &mut Map<String, Value>) {
    body.retain(|_, v| !v.is_null());
    for value in body.values_mut() {
        if let Value::Object(inner) = value {
            drop_nulls(inner);
        }
    }
}

/// The fields of a valid `body` that the platform may ignore for its model, each with the reason.
pub fn may_be_ignored(rules: &ModelRules, body: &Map<String, Value>) -> Vec<(String, String)> {
    let mut notes: Vec<(String, String)> = body
        .iter()
        .filter(|(_, v)| !v.is_null())
        .filter_map(|(f, _)| rules.pass_through(f).map(|why| (f.clone(), why.to_owned())))
        .collect();
    if field(body, "image_url").is_some_and(Value::is_object) {
        notes.push((
            "image_url".to_owned(),
            "given as an object, which the SDK allows but the documents do not show (they show a string or an \
             array): the platform may not read it"
                .to_owned(),
        ));
    }
    notes
}

/// Checks a request body as it goes on the wire against its model's schema.
///
/// Images must already be `http(s)://` URLs or `data:image/...;base64,` URIs here; the spec parser
/// turns local paths into data URIs before calling this.
pub fn validate_request(body: &Map<String, Value>) -> Result<&'static ModelRules, Violation> {
    let model = match field(body, "model") {
        None => return Err(Violation::MissingModel),
        Some(Value::String(m)) => m.as_str(),
        Some(other) => return Err(Violation::UnknownModel(other.to_string())),
    };
    let rules = rules(model).ok_or_else(|| Violation::UnknownModel(model.to_owned()))?;
    let ill = |field: &str, why: String| Violation::Illegal { field: field.to_owned(), model: model.to_owned(), why };
    for (name, value) in body {
        if !value.is_null() && !rules.accepts_field(name) {
            // `request_id` is accepted on the wire but vidkeep sets it: a spec may not.
            let accepted: Vec<&str> =
                ALL_FIELDS.iter().copied().filter(|f| *f != "request_id" && rules.accepts_field(f)).collect();
            return Err(Violation::UnknownField {
                field: name.clone(),
                model: model.to_owned(),
                accepted: accepted.join(", "),
            });
        }
    }
    check_prompt(rules, field(body, "prompt"), &ill)?;
    check_images(rules, field(body, "image_url"), &ill)?;
    if rules.image == ImageRule::None || !rules.image_required {
        let has_prompt = matches!(field(body, "prompt"), Some(Value::String(p)) if !p.trim().is_empty());
        if !has_prompt && field(body, "image_url").is_none() {
            return Err(Violation::Missing {
                field: "prompt",
                model: model.to_owned(),
                why: "give a prompt, an image_url, or both",
            });
        }
    }
    check_int(body, "duration", rules.durations, &ill)?;
    check_str(body, "size", rules.sizes, &ill)?;
    check_str(body, "aspect_ratio", rules.aspect_ratios, &ill)?;
    check_str(body, "style", rules.styles, &ill)?;
    if rules.fps.is_empty() {
        // Passed through: the SDK types it as an int; the platform's Vidu schema has no fps.
        if let Some(v) = field(body, "fps") {
            if v.as_u64().is_none_or(|n| n == 0) {
                return Err(ill("fps", format!("must be a positive whole number of frames per second, not {v}")));
            }
        }
    } else {
        check_int(body, "fps", rules.fps, &ill)?;
    }
    if rules.qualities.is_empty() {
        // Passed through: any string, as the SDK types it (its Java twin sends "high" to Vidu).
        if let Some(v) = field(body, "quality") {
            if v.as_str().is_none_or(|q| q.trim().is_empty()) {
                return Err(ill("quality", format!("must be a non-empty string, not {v}")));
            }
        }
    } else {
        check_str(body, "quality", rules.qualities, &ill)?;
    }
    if rules.movement_amplitude {
        check_str(body, "movement_amplitude", MOVEMENT, &ill)?;
    }
    for flag in ["with_audio", "watermark_enabled", "off_peak"] {
        if let Some(v) = field(body, flag) {
            if !v.is_boolean() {
                return Err(ill(flag, format!("must be true or false, not {v}")));
            }
        }
    }
    if rules.with_audio_true_refused && field(body, "with_audio") == Some(&Value::Bool(true)) {
        return Err(ill(
            "with_audio",
            "Vidu adds background music only to 4-second videos and this model makes 5-second ones; remove it or set it to false".to_owned(),
        ));
    }
    check_sensitive_word_check(field(body, "sensitive_word_check"), &ill)?;
    check_user_id(field(body, "user_id"), &ill)?;
    if let Some(v) = field(body, "request_id") {
        if !v.is_string() {
            return Err(ill("request_id", "must be a string".to_owned()));
        }
    }
    Ok(rules)
}

/// Checks only how many images `image_url` names against the model's limit, before any of them
/// is read: the full check ([`validate_request`]) runs once local files are inlined.
pub fn check_image_count(body: &Map<String, Value>) -> Result<(), Violation> {
    let Some(rules) = body.get("model").and_then(Value::as_str).and_then(rules) else { return Ok(()) };
    let given = match body.get("image_url") {
        Some(Value::Array(items)) => items.len(),
        _ => return Ok(()),
    };
    let (min, max) = match rules.image {
        ImageRule::None => (0, 0),
        ImageRule::Single => (1, 1),
        ImageRule::SingleOrPair => (2, 2),
        ImageRule::Array { min, max } => (min, max),
    };
    if given > max {
        let want = if min == max { format!("exactly {max}") } else { format!("{min} to {max} (at most {max})") };
        return Err(Violation::Illegal {
            field: "image_url".to_owned(),
            model: rules.name.to_owned(),
            why: format!("takes {want} images, this spec gives {given}"),
        });
    }
    Ok(())
}

type Ill<'a> = dyn Fn(&str, String) -> Violation + 'a;

fn check_prompt(rules: &ModelRules, prompt: Option<&Value>, ill: &Ill<'_>) -> Result<(), Violation> {
    match prompt {
        None if rules.prompt_required => Err(Violation::Missing {
            field: "prompt",
            model: rules.name.to_owned(),
            why: "this model makes video from text alone; write what the video should show",
        }),
        None => Ok(()),
        Some(Value::String(p)) => {
            if rules.prompt_required && p.trim().is_empty() {
                return Err(Violation::Missing {
                    field: "prompt",
                    model: rules.name.to_owned(),
                    why: "the prompt is empty; write what the video should show",
                });
            }
            let chars = p.chars().count();
            if chars > MAX_PROMPT_CHARS {
                return Err(Violation::PromptTooLong { chars, max: MAX_PROMPT_CHARS });
            }
            Ok(())
        }
        Some(other) => Err(ill("prompt", format!("must be a string, not {other}"))),
    }
}

fn check_images(rules: &ModelRules, images: Option<&Value>, ill: &Ill<'_>) -> Result<(), Violation> {
    let Some(images) = images else {
        if rules.image_required {
            let why = match rules.image {
                ImageRule::Array { min: 2, max: 2 } => "give two images: the first frame and the last frame",
                ImageRule::Array { .. } => "give the reference images as an array",
                _ => "give the first frame as an image URL or a file next to the spec",
            };
            return Err(Violation::Missing { field: "image_url", model: rules.name.to_owned(), why });
        }
        return Ok(());
    };
    let list: Vec<&Value> = match (rules.image, images) {
        (ImageRule::Single | ImageRule::SingleOrPair, Value::String(_)) => vec![images],
        // The SDK's `image_url: str | List[str] | dict`: an object stands for one image, by its
        // `url` member (the platform's form for image objects elsewhere); other members go as they are.
        (ImageRule::Single | ImageRule::SingleOrPair, Value::Object(members)) => match members.get("url") {
            Some(url @ Value::String(_)) => vec![url],
            _ => {
                return Err(ill("image_url", "an image given as an object needs a `url` string".to_owned()));
            }
        },
        (ImageRule::Single, _) => {
            return Err(ill("image_url", "must be one image given as a string, not an array".to_owned()));
        }
        (ImageRule::SingleOrPair, Value::Array(items)) if items.len() == 2 => items.iter().collect(),
        (ImageRule::SingleOrPair, _) => {
            return Err(ill(
                "image_url",
                "must be one image (a string) or exactly two (first and last frame)".to_owned(),
            ));
        }
        (ImageRule::Array { min, max }, Value::Array(items)) => {
            if items.len() < min || items.len() > max {
                let want = if min == max { format!("exactly {min}") } else { format!("{min} to {max}") };
                return Err(ill("image_url", format!("takes {want} images, this spec gives {}", items.len())));
            }
            items.iter().collect()
        }
        (ImageRule::Array { .. }, _) => {
            return Err(ill("image_url", "must be an array of images".to_owned()));
        }
        (ImageRule::None, _) => {
            return Err(ill("image_url", "this model takes no image".to_owned()));
        }
    };
    for item in list {
        let Value::String(s) = item else {
            return Err(ill("image_url", format!("each image must be a string, not {item}")));
        };
        check_image_ref(rules, s).map_err(|why| ill("image_url", why))?;
    }
    Ok(())
}

/// Checks one wire image reference: an `http(s)://` URL or a base64 data URI of an accepted format
/// within the size limit.
pub fn check_image_ref(rules: &ModelRules, s: &str) -> Result<(), String> {
    if s.starts_with("https://") || s.starts_with("http://") {
        return Ok(());
    }
    let Some(rest) = s.strip_prefix("data:image/") else {
        return Err(format!("`{}` is neither an http(s) URL nor a data:image/...;base64 URI", shorten(s)));
    };
    let Some((fmt, b64)) = rest.split_once(";base64,") else {
        return Err("a data URI must be base64: data:image/png;base64,...".to_owned());
    };
    if !rules.image_formats.contains(&fmt) {
        return Err(format!("image format `{fmt}` is not accepted (accepted: {})", rules.image_formats.join(", ")));
    }
    let decoded = (b64.len() as u64 / 4) * 3;
    if decoded > rules.max_image_bytes {
        return Err(format!(
            "the image is about {} bytes; {} accepts at most {} bytes",
            decoded, rules.name, rules.max_image_bytes
        ));
    }
    Ok(())
}

fn shorten(s: &str) -> String {
    let mut out: String = s.chars().take(60).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out
}

fn check_int(body: &Map<String, Value>, name: &str, allowed: &[i64], ill: &Ill<'_>) -> Result<(), Violation> {
    match field(body, name) {
        None => Ok(()),
        Some(v) if v.as_i64().is_some_and(|n| allowed.contains(&n)) => Ok(()),
        Some(v) => Err(ill(name, format!("{v} is not one of {allowed:?}"))),
    }
}

fn check_str(body: &Map<String, Value>, name: &str, allowed: &[&str], ill: &Ill<'_>) -> Result<(), Violation> {
    match field(body, name) {
        None => Ok(()),
        Some(Value::String(s)) if allowed.contains(&s.as_str()) => Ok(()),
        Some(v) => Err(ill(name, format!("{v} is not one of {allowed:?}"))),
    }
}

/// `{type, status}`, each optional, with the values the SDK documents.
fn check_sensitive_word_check(v: Option<&Value>, ill: &Ill<'_>) -> Result<(), Violation> {
    let Some(v) = v else { return Ok(()) };
    let Value::Object(members) = v else {
        return Err(ill(
            "sensitive_word_check",
            format!("must be an object like {{\"type\":\"ALL\",\"status\":\"DISABLE\"}}, not {v}"),
        ));
    };
    for (name, value) in members {
        let allowed = match name.as_str() {
            "type" => SENSITIVE_TYPES,
            "status" => SENSITIVE_STATUSES,
            other => {
                return Err(ill("sensitive_word_check", format!("has no member `{other}` (it takes type and status)")));
            }
        };
        match value {
            Value::Null => {}
            Value::String(s) if allowed.contains(&s.as_str()) => {}
            _ => return Err(ill("sensitive_word_check", format!("`{name}` is {value}, not one of {allowed:?}"))),
        }
    }
    Ok(())
}

fn check_user_id(v: Option<&Value>, ill: &Ill<'_>) -> Result<(), Violation> {
    match v {
        None => Ok(()),
        Some(Value::String(s)) if (6..=128).contains(&s.chars().count()) => Ok(()),
        Some(_) => Err(ill("user_id", "must be a string of 6 to 128 characters".to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(v: Value) -> Result<&'static ModelRules, Violation> {
        let Value::Object(map) = v else { panic!("test body must be an object") };
        validate_request(&map)
    }

    #[test]
    fn a_typo_gets_the_name_it_meant_and_no_field_vidkeep_reserves() {
        let typo = check(json!({"model":"viduq1-text","prompt":"a kite","aspect_ratoi":"16:9"})).expect_err("typo");
        let said = typo.to_string();
        assert!(said.contains("did you mean `aspect_ratio`?"), "{said}");
        assert!(!said.contains("request_id"), "a spec may not set request_id, so it is not offered: {said}");
        let model = check(json!({"model":"vidu-q1-text","prompt":"a kite"})).expect_err("model");
        assert!(model.to_string().contains("did you mean `viduq1-text`?"), "{model}");
        let far = check(json!({"model":"viduq1-text","prompt":"a kite","colour":1})).expect_err("far");
        assert!(!far.to_string().contains("did you mean"), "no guess when nothing is close: {far}");
        let far = check(json!({"model":"sora","prompt":"a kite"})).expect_err("far");
        assert!(!far.to_string().contains("did you mean"), "{far}");
    }

    #[test]
    fn documented_examples_are_valid() {
        check(json!({"model":"viduq1-text","prompt":"A red fox runs through snow","style":"general",
            "duration":5,"aspect_ratio":"16:9","size":"1920x1080","movement_amplitude":"auto",
            "request_id":"job-7f3c2a","user_id":"tenant-000123"}))
        .expect("text example");
        check(json!({"model":"viduq1-start-end","prompt":"smooth transition",
            "image_url":["https://example.com/first.png","data:image/png;base64,iVBORw0"],
            "duration":5,"size":"1920x1080","movement_amplitude":"small"}))
        .expect("start-end example");
        check(json!({"model":"viduq1-image","image_url":"https://example.com/a.jpg"})).expect("image");
        check(json!({"model":"cogvideox-3","prompt":"x","image_url":["https://a/1.png","https://a/2.png"],"quality":"speed","fps":60,"duration":10})).expect("cog3 pair");
        check(json!({"model":"vidu2-reference","prompt":"x","image_url":["https://a/1.png"],"aspect_ratio":"1:1"}))
            .expect("reference");
    }

    #[test]
    fn violations_carry_the_platform_code() {
        let cases = [
            (json!({"prompt":"x"}), "1213"),
            (json!({"model":"viduq9","prompt":"x"}), "1211"),
            (json!({"model":"viduq1-text"}), "1213"),
            (json!({"model":"viduq1-text","prompt":"   "}), "1213"),
            (json!({"model":"viduq1-text","prompt":"x","duration":4}), "1214"),
            (json!({"model":"viduq1-text","prompt":"x","size":"1280x720"}), "1214"),
            (json!({"model":"viduq1-text","prompt":"x","style":"noir"}), "1214"),
            (json!({"model":"viduq1-text","prompt":"x","aspect_ratio":"4:3"}), "1214"),
            (json!({"model":"viduq1-text","prompt":"x","movement_amplitude":"huge"}), "1214"),
            (json!({"model":"viduq1-text","prompt":"x".repeat(513)}), "1261"),
            (json!({"model":"viduq1-text","prompt":"x","image_url":"https://a/b.png"}), "1210"),
            (json!({"model":"viduq1-text","prompt":"x","aspect_ration":"16:9"}), "1210"),
            (json!({"model":"viduq1-image","prompt":"x"}), "1213"),
            (json!({"model":"viduq1-image","image_url":["https://a/b.png"]}), "1214"),
            (json!({"model":"viduq1-image","image_url":"https://a/b.png","with_audio":true}), "1214"),
            (json!({"model":"viduq1-start-end","image_url":["https://a/b.png"]}), "1214"),
            (
                json!({"model":"viduq1-start-end","image_url":["https://a/1.png","https://a/2.png","https://a/3.png"]}),
                "1214",
            ),
            (json!({"model":"viduq1-image","image_url":"ftp://a/b.png"}), "1214"),
            (json!({"model":"viduq1-image","image_url":"data:image/gif;base64,AAAA"}), "1214"),
            (json!({"model":"cogvideox-2","image_url":"data:image/webp;base64,AAAA"}), "1214"),
            (json!({"model":"cogvideox-3","prompt":"x","image_url":["https://a/1.png"]}), "1214"),
            (json!({"model":"vidu2-image","image_url":"https://a/b.png","duration":5}), "1214"),
            (json!({"model":"viduq1-text","prompt":"x","user_id":"abc"}), "1214"),
        ];
        for (body, code) in cases {
            let err = check(body.clone()).expect_err(&body.to_string());
            assert_eq!(err.platform_code(), code, "{body}: {err}");
        }
    }

    /// Bodies as `zai-sdk` 0.2.3 `Videos.generations` writes them: every unset argument `null`.
    #[test]
    fn nulls_are_not_set() {
        check(json!({"model":"viduq1-text","prompt":"a fox","image_url":null,"quality":null,"with_audio":null,
            "size":"1920x1080","duration":5,"fps":null,"style":"anime","aspect_ratio":"16:9","off_peak":null,
            "movement_amplitude":"auto","request_id":null,"user_id":null}))
        .expect("viduq1-text with the SDK's nulls");
        check(json!({"model":"viduq1-image","prompt":null,"image_url":"https://a/b.png","duration":null,"size":null}))
            .expect("nulls in schema fields");
        let err = check(json!({"model":"viduq1-image","image_url":null})).expect_err("null image is no image");
        assert_eq!(err.platform_code(), "1213", "{err}");
        assert_eq!(check(json!({"model":null,"prompt":"x"})).map(|r| r.name), Err(Violation::MissingModel));
    }

    #[test]
    fn sdk_fields_pass_through_and_are_named_as_ignorable() {
        let body = json!({"model":"viduq1-text","prompt":"x","quality":"high","fps":30,"with_audio":false,
            "watermark_enabled":false,"off_peak":true,"sensitive_word_check":{"type":"ALL","status":"DISABLE"}});
        let Value::Object(map) = body else { unreachable!() };
        let rules = validate_request(&map).expect("the SDK's fields are accepted");
        let mut ignored: Vec<String> = may_be_ignored(rules, &map).into_iter().map(|(f, _)| f).collect();
        ignored.sort();
        assert_eq!(
            ignored,
            ["fps", "off_peak", "quality", "sensitive_word_check", "watermark_enabled", "with_audio"],
            "every field outside viduq1-text's schema is named"
        );
        let cog = json!({"model":"cogvideox-3","prompt":"x","quality":"speed","fps":60,"with_audio":true,"watermark_enabled":false});
        let Value::Object(cog) = cog else { unreachable!() };
        let rules = validate_request(&cog).expect("cogvideox-3");
        assert!(may_be_ignored(rules, &cog).is_empty(), "schema fields are not flagged");
        let object = json!({"model":"viduq1-image","image_url":{"url":"https://a/b.png"}});
        let Value::Object(object) = object else { unreachable!() };
        let rules = validate_request(&object).expect("image_url as an object");
        assert_eq!(may_be_ignored(rules, &object).first().map(|(f, _)| f.as_str()), Some("image_url"));
    }

    #[test]
    fn documented_invalid_values_are_still_refused() {
        let cases = [
            json!({"model":"cogvideox-3","prompt":"x","quality":"high"}),
            json!({"model":"cogvideox-3","prompt":"x","fps":24}),
            json!({"model":"viduq1-image","image_url":"https://a/b.png","with_audio":true}),
            json!({"model":"viduq1-text","prompt":"x","fps":0}),
            json!({"model":"viduq1-text","prompt":"x","fps":"30"}),
            json!({"model":"viduq1-text","prompt":"x","quality":""}),
            json!({"model":"viduq1-text","prompt":"x","off_peak":"yes"}),
            json!({"model":"viduq1-text","prompt":"x","watermark_enabled":1}),
            json!({"model":"viduq1-text","prompt":"x","sensitive_word_check":"DISABLE"}),
            json!({"model":"viduq1-text","prompt":"x","sensitive_word_check":{"type":"SOME","status":"DISABLE"}}),
            json!({"model":"viduq1-text","prompt":"x","sensitive_word_check":{"status":"OFF"}}),
            json!({"model":"viduq1-text","prompt":"x","sensitive_word_check":{"level":1}}),
            json!({"model":"viduq1-image","image_url":{"uri":"https://a/b.png"}}),
            json!({"model":"viduq1-image","image_url":{"url":"ftp://a/b.png"}}),
            json!({"model":"viduq1-start-end","image_url":{"url":"https://a/b.png"}}),
        ];
        for body in cases {
            let err = check(body.clone()).expect_err(&body.to_string());
            assert_eq!(err.platform_code(), "1214", "{body}: {err}");
        }
        check(json!({"model":"viduq1-text","prompt":"x","sensitive_word_check":{"type":null,"status":"ENABLE"}}))
            .expect("a null member is not set");
    }

    #[test]
    fn drop_nulls_reaches_into_objects_but_not_arrays() {
        let Value::Object(mut body) = json!({"a":null,"b":{"c":null,"d":1},"e":[null]}) else { unreachable!() };
        drop_nulls(&mut body);
        assert_eq!(Value::Object(body), json!({"b":{"d":1},"e":[null]}));
    }

    #[test]
    fn prompt_length_counts_characters_not_bytes() {
        check(json!({"model":"viduq1-text","prompt":"灯".repeat(512)})).expect("512 chars of 3 bytes each");
    }

    #[test]
    fn oversized_data_uri_is_refused() {
        let big = "A".repeat(7 * 1024 * 1024 + 8);
        let err = check(json!({"model":"cogvideox-2","image_url":format!("data:image/png;base64,{big}")}))
            .expect_err("5 MB limit");
        assert!(err.to_string().contains("at most"), "{err}");
    }

    #[test]
    fn every_model_has_a_price_and_a_way_to_ask() {
        for m in MODELS {
            assert!(m.accepts_field("model") && m.accepts_field("prompt"), "{}", m.name);
            assert!(rules(m.name).is_some());
        }
        assert_eq!(rules("viduq1-text").map(|r| r.price_fen), Some(250));
    }
}
