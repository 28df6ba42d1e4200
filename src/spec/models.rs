//! What each model accepts, from the platform's published request schemas
//! (`../shared/reference/bigmodel-video-api.md` §2). One table, used by spec validation and by the
//! simulator, so the two cannot drift apart on the facts; each side decides on its own what a
//! violation means (a rejected spec here, a platform error code there).

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
    /// Whether the model's request schema has `field` at all.
    pub fn accepts_field(&self, field: &str) -> bool {
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
    #[error("unknown model `{0}`: known models are {known}", known = known_models())]
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
    #[error("`{field}` is not a field {model} accepts (accepted: {accepted})")]
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

fn known_models() -> String {
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
    "request_id",
    "user_id",
];

/// Checks a request body as it goes on the wire against its model's schema.
///
/// Images must already be `http(s)://` URLs or `data:image/...;base64,` URIs here; the spec parser
/// turns local paths into data URIs before calling this.
pub fn validate_request(body: &Map<String, Value>) -> Result<&'static ModelRules, Violation> {
    let model = match body.get("model") {
        None | Some(Value::Null) => return Err(Violation::MissingModel),
        Some(Value::String(m)) => m.as_str(),
        Some(other) => return Err(Violation::UnknownModel(other.to_string())),
    };
    let rules = rules(model).ok_or_else(|| Violation::UnknownModel(model.to_owned()))?;
    let ill = |field: &str, why: String| Violation::Illegal { field: field.to_owned(), model: model.to_owned(), why };
    for field in body.keys() {
        if !rules.accepts_field(field) {
            let accepted: Vec<&str> = ALL_FIELDS.iter().copied().filter(|f| rules.accepts_field(f)).collect();
            return Err(Violation::UnknownField {
                field: field.clone(),
                model: model.to_owned(),
                accepted: accepted.join(", "),
            });
        }
    }
    check_prompt(rules, body.get("prompt"), &ill)?;
    check_images(rules, body.get("image_url"), &ill)?;
    if rules.image == ImageRule::None || !rules.image_required {
        let has_prompt = matches!(body.get("prompt"), Some(Value::String(p)) if !p.trim().is_empty());
        if !has_prompt && !body.contains_key("image_url") {
            return Err(Violation::Missing {
                field: "prompt",
                model: model.to_owned(),
                why: "give a prompt, an image_url, or both",
            });
        }
    }
    check_int(body, "duration", rules.durations, &ill)?;
    check_int(body, "fps", rules.fps, &ill)?;
    check_str(body, "size", rules.sizes, &ill)?;
    check_str(body, "aspect_ratio", rules.aspect_ratios, &ill)?;
    check_str(body, "style", rules.styles, &ill)?;
    check_str(body, "quality", rules.qualities, &ill)?;
    if rules.movement_amplitude {
        check_str(body, "movement_amplitude", MOVEMENT, &ill)?;
    }
    for flag in ["with_audio", "watermark_enabled"] {
        if let Some(v) = body.get(flag) {
            if !v.is_boolean() {
                return Err(ill(flag, format!("must be true or false, not {v}")));
            }
        }
    }
    if rules.with_audio_true_refused && body.get("with_audio") == Some(&Value::Bool(true)) {
        return Err(ill(
            "with_audio",
            "Vidu adds background music only to 4-second videos and this model makes 5-second ones; remove it or set it to false".to_owned(),
        ));
    }
    check_user_id(body.get("user_id"), &ill)?;
    if let Some(v) = body.get("request_id") {
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
        None | Some(Value::Null) if rules.prompt_required => Err(Violation::Missing {
            field: "prompt",
            model: rules.name.to_owned(),
            why: "this model makes video from text alone; write what the video should show",
        }),
        None | Some(Value::Null) => Ok(()),
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

fn check_int(body: &Map<String, Value>, field: &str, allowed: &[i64], ill: &Ill<'_>) -> Result<(), Violation> {
    match body.get(field) {
        None => Ok(()),
        Some(v) if v.as_i64().is_some_and(|n| allowed.contains(&n)) => Ok(()),
        Some(v) => Err(ill(field, format!("{v} is not one of {allowed:?}"))),
    }
}

fn check_str(body: &Map<String, Value>, field: &str, allowed: &[&str], ill: &Ill<'_>) -> Result<(), Violation> {
    match body.get(field) {
        None => Ok(()),
        Some(Value::String(s)) if allowed.contains(&s.as_str()) => Ok(()),
        Some(v) => Err(ill(field, format!("{v} is not one of {allowed:?}"))),
    }
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
