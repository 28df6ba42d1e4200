//! Entry points for the fuzz targets in `fuzz/` (cargo-fuzz, run by hand, see FUZZING.md) and
//! for the property tests CI runs over the same code (`tests/fuzzing.rs`). Each takes arbitrary
//! bytes, runs the input through the code that meets it in the daemon, and panics if a
//! property that must hold for every input does not: a panic is a finding.

use std::path::Path;

use serde_json::Map;

use crate::config::Config;
use crate::spec::{self, SpecContext};
use crate::web::range::{self, RangeRequest};

/// A spec file's bytes as intake reads them. The first byte picks the format (JSON, TOML,
/// text); image paths resolve in `examples/specs`, which is also the inbox (its two PNGs are
/// real images to inline).
pub fn spec(data: &[u8]) {
    let Some((&pick, bytes)) = data.split_first() else { return };
    let name = ["spec.json", "spec.toml", "spec.txt"][usize::from(pick % 3)];
    let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/specs"));
    let defaults = Map::new();
    let ctx = SpecContext { defaults: &defaults, spec_dir: dir, inbox: dir };
    match spec::parse(name, bytes, &ctx) {
        Ok(job) => {
            // What intake records is what validation accepted.
            assert!(job.rules().is_some(), "accepted an unknown model {:?}", job.model);
            assert!(!job.request.contains_key("request_id"), "a spec set request_id");
            assert!(spec::validate_request(&job.request).is_ok(), "accepted an invalid request");
        }
        Err(e) => {
            assert!(!e.code().is_empty());
            let _ = e.to_string();
        }
    }
}

/// The platform's answers as the API client decodes them.
pub fn answers(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        crate::api::decode_answers_for_fuzzing(text);
    }
}

/// A config file's text as `Config::load` reads it.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(config) = Config::from_toml(text, Path::new("/etc/vidkeep")) else { return };
    // A valid config stays valid, and what `config check` prints of it loads again.
    assert!(config.validate().is_ok(), "validation is not stable");
    if config.http.token.is_none() {
        let shown = config.to_toml();
        if let Err(e) = Config::from_toml(&shown, Path::new("/etc/vidkeep")) {
            panic!("`config check` prints a config that does not load: {e}\n{shown}");
        }
    }
    let _ = (config.price_table(), config.budget_limits());
}

/// A `Range` header (first 8 bytes: the body's length) as the asset routes read it.
pub fn range(data: &[u8]) {
    let (len, header) = match data.split_first_chunk::<8>() {
        Some((len, rest)) => (u64::from_le_bytes(*len) >> (len[0] % 64), rest),
        None => (0, data),
    };
    let header = std::str::from_utf8(header).ok();
    match range::parse(header, len) {
        RangeRequest::Partial { start, end } => {
            assert!(start <= end && end < len, "{header:?} of {len} bytes gave {start}..={end}")
        }
        RangeRequest::Unsatisfiable => assert!(header.is_some()),
        RangeRequest::Full => {}
    }
}
