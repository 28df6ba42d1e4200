//! `vidkeep check`: validate specs offline and print the request each would send, images shown
//! as their source, and the fields the platform may ignore for the spec's model (fields the
//! official SDK sends that the model's published schema lacks; see [`crate::spec::models`]).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde_json::{Map, Value};

use crate::config::Config;
use crate::spec::{self, SpecContext, images};

/// Checks each spec; exit 1 if any is invalid.
pub(super) fn run(config: Option<&Path>, specs: &[PathBuf]) -> anyhow::Result<ExitCode> {
    let defaults = match config {
        Some(path) => Config::load(path)?.defaults,
        None => Map::new(),
    };
    let mut bad = 0;
    for path in specs {
        match check_one(path, &defaults) {
            Ok((request, ignored)) => {
                println!("{}: ok", path.display());
                for (field, why) in &ignored {
                    println!("  note: the platform may ignore `{field}`: {why}");
                }
                println!("{}", serde_json::to_string_pretty(&request)?);
            }
            Err(reason) => {
                bad += 1;
                println!("{}: INVALID: {reason}", path.display());
            }
        }
    }
    Ok(if bad == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// The spec's request as shown, and the fields the platform may ignore with the reasons.
fn check_one(path: &Path, defaults: &Map<String, Value>) -> Result<(Value, Vec<(String, String)>), String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read: {e}"))?;
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let ctx = SpecContext { defaults, spec_dir: dir, inbox: dir };
    let spec = spec::parse(&name, &bytes, &ctx).map_err(|e| e.to_string())?;
    let mut shown = spec.request.clone();
    if let Some(v) = shown.get_mut("image_url") {
        *v = show_images(spec.display.get("image_url").unwrap_or(v));
    }
    let mut out = Map::new();
    out.insert("request".to_owned(), Value::Object(shown));
    out.insert("vidkeep".to_owned(), serde_json::to_value(&spec.meta).unwrap_or(Value::Null));
    let ignored = spec.rules().map(|rules| spec::may_be_ignored(rules, &spec.request)).unwrap_or_default();
    let listed: Map<String, Value> = ignored.iter().map(|(f, why)| (f.clone(), Value::String(why.clone()))).collect();
    out.insert("platform_may_ignore".to_owned(), Value::Object(listed));
    Ok((Value::Object(out), ignored))
}

fn show_images(v: &Value) -> Value {
    match v {
        Value::String(s) => Value::String(images::describe(s)),
        Value::Array(items) => Value::Array(items.iter().map(show_images).collect()),
        Value::Object(members) => Value::Object(
            members.iter().map(|(k, v)| (k.clone(), if k == "url" { show_images(v) } else { v.clone() })).collect(),
        ),
        other => other.clone(),
    }
}
