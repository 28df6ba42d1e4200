//! `config.example.toml` is documentation; these tests keep it true.

use std::collections::BTreeSet;
use std::path::Path;

use vidkeep::config::Config;

fn example() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("config.example.toml")
}

/// Dotted paths of every key under `value` (tables recurse; a map-valued table counts by its name).
fn keys(prefix: &str, value: &toml::Value, out: &mut BTreeSet<String>) {
    if let toml::Value::Table(table) = value {
        for (k, v) in table {
            let path = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
            out.insert(path.clone());
            if !matches!(k.as_str(), "defaults" | "max_in_flight_per_model") {
                keys(&path, v, out);
            }
        }
    }
}

#[test]
fn the_example_config_loads() {
    let config = Config::load(&example()).expect("config.example.toml loads");
    assert_eq!(config.api.base_url, "https://open.bigmodel.cn/api/paas/v4");
}

#[test]
fn the_example_documents_every_key_with_its_default() {
    let text = std::fs::read_to_string(example()).expect("read");
    let documented: toml::Value = toml::from_str(&text).expect("toml");
    let mut in_example = BTreeSet::new();
    keys("", &documented, &mut in_example);
    let defaults = toml::Value::try_from(Config::default()).expect("serialise defaults");
    let mut in_code = BTreeSet::new();
    keys("", &defaults, &mut in_code);
    let missing: Vec<&String> = in_code.difference(&in_example).collect();
    assert!(missing.is_empty(), "keys not in config.example.toml: {missing:?}");
    // Every value the example sets (outside [defaults]) is the default in code.
    let parsed: Config = toml::from_str(&text).expect("parse");
    let (a, b) =
        (toml::Value::try_from(&parsed.api).expect("api"), toml::Value::try_from(Config::default().api).expect("api"));
    assert_eq!(a, b, "[api] in the example shows the defaults");
    let (a, b) = (
        toml::Value::try_from(&parsed.jobs).expect("jobs"),
        toml::Value::try_from(Config::default().jobs).expect("jobs"),
    );
    assert_eq!(a, b, "[jobs] in the example shows the defaults");
    let (a, b) = (
        toml::Value::try_from(&parsed.watch).expect("watch"),
        toml::Value::try_from(Config::default().watch).expect("watch"),
    );
    assert_eq!(a, b, "[watch] in the example shows the defaults");
    let (a, b) = (
        toml::Value::try_from(&parsed.http).expect("http"),
        toml::Value::try_from(Config::default().http).expect("http"),
    );
    assert_eq!(a, b, "[http] in the example shows the defaults");
    let (a, b) =
        (toml::Value::try_from(&parsed.log).expect("log"), toml::Value::try_from(Config::default().log).expect("log"));
    assert_eq!(a, b, "[log] in the example shows the defaults");
    let (a, b) = (
        toml::Value::try_from(&parsed.storage).expect("storage"),
        toml::Value::try_from(Config::default().storage).expect("storage"),
    );
    assert_eq!(a, b, "[storage] in the example shows the defaults");
    assert!(text.contains("# endpoint = "), "the optional endpoint is documented");
}

#[test]
fn the_commented_postgres_catalogue_loads() {
    // Uncommenting the example's PostgreSQL lines (and removing `path`) gives a valid config.
    let text = std::fs::read_to_string(example()).expect("read");
    let mut in_catalog = false;
    let mut uncommented = 0;
    let edited: Vec<String> = text
        .lines()
        .filter_map(|line| {
            if line.starts_with('[') {
                in_catalog = line == "[catalog]";
            }
            if in_catalog && line.starts_with("path = ") {
                return None;
            }
            for key in ["# url = ", "# password_file = "] {
                if in_catalog && line.starts_with(key) {
                    uncommented += 1;
                    return Some(line.trim_start_matches("# ").to_owned());
                }
            }
            Some(line.to_owned())
        })
        .collect();
    assert_eq!(uncommented, 2, "[catalog] documents url and password_file");
    let config = Config::from_toml(&edited.join("\n"), Path::new("/etc/vidkeep")).expect("loads");
    let target = config.catalog.postgres().expect("postgres").expect("parses");
    assert_eq!(target.display(), "postgres://vidkeep@db.example.net:5432/vidkeep");
    assert_eq!(config.catalog.password_file.as_deref(), Some(Path::new("/etc/vidkeep/pg-password")));
}
