//! The fuzz targets of `fuzz/` (see FUZZING.md) as property tests, which CI runs on every
//! submission: cargo-fuzz needs a nightly toolchain, which a clean CI machine does not have and
//! cannot fetch. Inputs are the targets' seeds with random edits (where the bugs hide: almost
//! valid input) and random text; `VIDKEEP_FUZZ_CASES` sets the cases per target (default 3000).
//! Every input a fuzz run found crashing is replayed first, as a regression test.

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

fn seeds(target: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds").join(target);
    let mut paths: Vec<PathBuf> =
        std::fs::read_dir(&dir).expect("fuzz/seeds").map(|e| e.expect("entry").path()).collect();
    paths.sort();
    let seeds: Vec<Vec<u8>> = paths.iter().map(|p| std::fs::read(p).expect("seed")).collect();
    assert!(!seeds.is_empty(), "no seeds in {}", dir.display());
    seeds
}

/// One edit of a seed: where (a fraction of its length), what, and which byte.
#[derive(Debug, Clone)]
enum Edit {
    Replace(f64, u8),
    Insert(f64, u8),
    Delete(f64, usize),
    Duplicate(f64, usize),
}

fn interesting_byte() -> impl Strategy<Value = u8> {
    prop_oneof![any::<u8>(), prop::sample::select(b"\"'{}[]=,:-\\\n\r\t 0123456789.eE+#\x00\xff\xe9".to_vec()),]
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (0.0..1.0f64, interesting_byte()).prop_map(|(at, b)| Edit::Replace(at, b)),
        (0.0..1.0f64, interesting_byte()).prop_map(|(at, b)| Edit::Insert(at, b)),
        (0.0..1.0f64, 1..64usize).prop_map(|(at, n)| Edit::Delete(at, n)),
        (0.0..1.0f64, 1..64usize).prop_map(|(at, n)| Edit::Duplicate(at, n)),
    ]
}

fn apply(mut input: Vec<u8>, edits: &[Edit]) -> Vec<u8> {
    for e in edits {
        let pos = |at: f64, len: usize| ((at * len as f64) as usize).min(len);
        match *e {
            Edit::Replace(at, b) if !input.is_empty() => {
                let i = pos(at, input.len() - 1);
                input[i] = b;
            }
            Edit::Insert(at, b) => input.insert(pos(at, input.len()), b),
            Edit::Delete(at, n) => {
                let i = pos(at, input.len());
                input.drain(i..(i + n).min(input.len()));
            }
            Edit::Duplicate(at, n) => {
                let i = pos(at, input.len());
                let piece = input[i..(i + n).min(input.len())].to_vec();
                input.splice(i..i, piece);
            }
            Edit::Replace(..) => {}
        }
    }
    input
}

/// Seeds with up to 8 edits, or random bytes.
fn inputs(target: &str) -> impl Strategy<Value = Vec<u8>> {
    let seeds = seeds(target);
    prop_oneof![
        3 => (prop::sample::select(seeds), prop::collection::vec(edit(), 1..8)).prop_map(|(s, e)| apply(s, &e)),
        1 => prop::collection::vec(any::<u8>(), 0..256),
    ]
}

fn run(target: &str, check: fn(&[u8])) {
    let cases = std::env::var("VIDKEEP_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(3000);
    let mut runner = TestRunner::new(Config { cases, failure_persistence: None, ..Config::default() });
    runner
        .run(&inputs(target), |input| {
            check(&input);
            Ok(())
        })
        .unwrap_or_else(|e| panic!("fuzzing {target}: {e}"));
}

#[test]
fn fuzz_spec_parsing_and_validation() {
    run("spec", vidkeep::fuzzing::spec);
}

#[test]
fn fuzz_platform_answers() {
    run("answers", vidkeep::fuzzing::answers);
}

#[test]
fn fuzz_config_loader() {
    run("config", vidkeep::fuzzing::config);
}

#[test]
fn fuzz_range_header() {
    run("range", vidkeep::fuzzing::range);
}

#[test]
fn every_seed_passes_every_target() {
    for (target, check) in [
        ("spec", vidkeep::fuzzing::spec as fn(&[u8])),
        ("answers", vidkeep::fuzzing::answers),
        ("config", vidkeep::fuzzing::config),
        ("range", vidkeep::fuzzing::range),
    ] {
        for seed in seeds(target) {
            check(&seed);
        }
    }
}
