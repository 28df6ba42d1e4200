//! `vidkeep check`: validate specs offline and print the request each would send, images shown
//! as their source, and the fields the platform may ignore for the spec's model (fields the
//! official SDK sends that the model's published schema lacks; see [`crate::spec::models`]).

use crate::telemetry::Escaped;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde_json::{Map, Value};

use std::collections::BTreeMap;

use crate::catalog::Catalog;
use crate::config::Config;
use crate::money::{Fen, Spent};
use crate::spec::{self, SpecContext, images};
use crate::time::now_ms;

/// Checks each spec, prints its price and the total, and with a config what the budgets would
/// let through today; exit 1 if any is invalid.
pub(super) fn run(config: Option<&Path>, specs: &[PathBuf]) -> anyhow::Result<ExitCode> {
    let config = config.map(Config::load).transpose()?;
    let defaults = config.as_ref().map(|c| c.defaults.clone()).unwrap_or_default();
    let prices = config.as_ref().map(Config::price_table).unwrap_or_default();
    let mut bad = 0;
    let mut priced: Vec<(String, Option<String>, i64)> = Vec::new();
    for path in specs {
        match check_one(path, &defaults, config.is_none()) {
            Ok((request, ignored, model, project)) => {
                let price = prices.fen(&model);
                println!("{}: ok, {} RMB ({model})", Escaped(path.display()), Fen(price));
                for (field, why) in &ignored {
                    println!("  note: the platform may ignore `{field}`: {why}");
                }
                println!("{}", serde_json::to_string_pretty(&request)?);
                priced.push((path.display().to_string(), project, price));
            }
            Err(reason) => {
                bad += 1;
                println!("{}: INVALID: {}", Escaped(path.display()), Escaped(&reason));
            }
        }
    }
    let total: i64 = priced.iter().map(|p| p.2).sum();
    println!("total: {} RMB for {} valid spec(s)", Fen(total), priced.len());
    if let Some(config) = &config {
        println!("{}", budget_today(config, &priced)?);
    }
    Ok(if bad == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// What the budgets would let through today, given what the catalogue says is spent.
fn budget_today(config: &Config, priced: &[(String, Option<String>, i64)]) -> anyhow::Result<String> {
    let budget = config.budget_limits();
    if !budget.is_limited() {
        return Ok("budget: none set; every valid spec would be submitted".to_owned());
    }
    let now = now_ms();
    let catalog = if Catalog::config_exists(&config.catalog) {
        Some(Catalog::open_config_read_only(&config.catalog)?)
    } else {
        None
    };
    let mut spent_by_project: BTreeMap<Option<String>, Spent> = BTreeMap::new();
    let mut extra = Spent::default();
    let (mut through, mut cost, mut first_block) = (0, 0, None);
    for (name, project, price) in priced {
        let base = match spent_by_project.get(project) {
            Some(s) => *s,
            None => {
                let s = match &catalog {
                    Some(c) => c.spent(&budget, project.as_deref(), now)?,
                    None => Spent::default(),
                };
                spent_by_project.insert(project.clone(), s);
                s
            }
        };
        let project_extra: i64 = priced[..through.min(priced.len())]
            .iter()
            .filter(|p| p.1 == *project && project.is_some())
            .map(|p| p.2)
            .sum();
        let spent = Spent {
            day: base.day + extra.day,
            month: base.month + extra.month,
            project_month: base.project_month + project_extra,
        };
        match budget.check(spent, *price, project.as_deref()) {
            Ok(()) => {
                through += 1;
                cost += price;
                extra.day += price;
                extra.month += price;
            }
            Err(blocked) => {
                first_block.get_or_insert(format!("{name} and later would wait: {}", blocked.reason));
                break;
            }
        }
    }
    let mut out = format!("budget: {through} of {} would be submitted today ({} RMB)", priced.len(), Fen(cost));
    if let Some(block) = first_block {
        out.push_str("; ");
        out.push_str(&block);
    }
    Ok(out)
}

/// The spec's request as shown, the fields the platform may ignore with the reasons, its model
/// and project.
type Checked = (Value, Vec<(String, String)>, String, Option<String>);

fn check_one(path: &Path, defaults: &Map<String, Value>, no_config: bool) -> Result<Checked, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read: {e}"))?;
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let ctx = SpecContext { defaults, spec_dir: dir, inbox: dir };
    let spec = spec::parse(&name, &bytes, &ctx).map_err(|e| match e {
        // A `.txt` spec is only a prompt: its model comes from the config's [defaults].
        spec::SpecError::Invalid(spec::Violation::MissingModel) if no_config => {
            format!("{e}; pass --config FILE (or set VIDKEEP_CONFIG) so that its [defaults] apply")
        }
        e => e.to_string(),
    })?;
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
    Ok((Value::Object(out), ignored, spec.model.clone(), spec.meta.project.clone()))
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
