//! The crate's shape, read from its source: the top-level modules form no cycle, the foundations
//! depend on nothing else in the crate, and `src/lib.rs` declares the modules in the pipeline
//! order its documentation gives.
//!
//! A dependency is any `crate::<module>` path outside comments (a `use`, a path in an expression
//! or type, a `crate::{a, b}` group), in a module's file and the files under its folder,
//! tests included: a test that needs another module is a dependency too.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Modules that depend on nothing else in the crate, in declaration order: each may use only
/// those before it.
const FOUNDATIONS: [&str; 4] = ["domain", "time", "secret", "telemetry"];

/// Every top-level module in the order `src/lib.rs` documents: foundations, settings, the
/// pipeline, what runs it, test support.
const PIPELINE_ORDER: [&str; 22] = [
    "domain",
    "time",
    "secret",
    "telemetry",
    "config",
    "watch",
    "spec",
    "money",
    "catalog",
    "jobs",
    "api",
    "archive",
    "store",
    "probe",
    "report",
    "ops",
    "alarms",
    "web",
    "daemon",
    "cli",
    "sim",
    "fuzzing",
];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The `pub mod` / `mod` declarations of `src/lib.rs`, in order.
fn declared_modules() -> Vec<String> {
    let lib = std::fs::read_to_string(src().join("lib.rs")).expect("read src/lib.rs");
    lib.lines()
        .map(str::trim)
        .filter_map(|l| l.strip_prefix("pub mod ").or_else(|| l.strip_prefix("mod ")))
        .map(|rest| rest.trim_end_matches(';').trim().to_owned())
        .collect()
}

/// Source text without `//` comments (doc comments included) and without string literals'
/// contents, so a path in prose or in a message is not a dependency.
fn code_only(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    let mut in_string = false;
    let mut prev = ' ';
    while let Some(c) = chars.next() {
        // A raw string, r"…" or r#"…"#: skipped whole, keeping its line breaks.
        if !in_string && c == 'r' && !(prev.is_alphanumeric() || prev == '_') {
            let ahead: String = chars.clone().take_while(|&c| c == '#' || c == '"').collect();
            let hashes = ahead.chars().take_while(|&c| c == '#').count();
            if ahead[hashes..].starts_with('"') {
                for _ in 0..=hashes {
                    chars.next();
                }
                let close = format!("\"{}", "#".repeat(hashes));
                let mut body = String::new();
                for c in chars.by_ref() {
                    body.push(c);
                    if c == '\n' {
                        out.push('\n');
                    }
                    if body.ends_with(&close) {
                        break;
                    }
                }
                out.push_str("\"\"");
                prev = '"';
                continue;
            }
        }
        prev = c;
        if in_string {
            match c {
                '\\' => {
                    chars.next();
                }
                '"' => {
                    in_string = false;
                    out.push('"');
                }
                '\n' => out.push('\n'),
                _ => {}
            }
            continue;
        }
        match c {
            '/' if chars.peek() == Some(&'/') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        out.push('\n');
                        break;
                    }
                }
            }
            '"' => {
                in_string = true;
                out.push('"');
            }
            // A char literal such as '"' must not open a string.
            '\'' => {
                let rest: String = chars.clone().take(3).collect();
                if rest.starts_with("\"'") || rest.starts_with("\\\"'") {
                    let skip = if rest.starts_with('\\') { 3 } else { 2 };
                    for _ in 0..skip {
                        chars.next();
                    }
                }
                out.push('\'');
            }
            _ => out.push(c),
        }
    }
    out
}

/// The first path segment of each item of a `{ … }` group starting right after its `{`.
fn group_heads(text: &str) -> Vec<String> {
    let mut heads = Vec::new();
    let mut depth = 1usize;
    let mut at_item_start = true;
    let mut word = String::new();
    for c in text.chars() {
        if depth == 1 && at_item_start {
            if c.is_alphanumeric() || c == '_' {
                word.push(c);
                continue;
            }
            if !word.is_empty() {
                heads.push(std::mem::take(&mut word));
                at_item_start = false;
            }
        }
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    break;
                }
            }
            ',' if depth == 1 => at_item_start = true,
            _ => {}
        }
    }
    if !word.is_empty() {
        heads.push(word);
    }
    heads
}

/// The top-level modules `code` names through `crate::`.
fn crate_paths(code: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for (at, _) in code.match_indices("crate::") {
        let before = code[..at].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$') {
            continue; // `foocrate::` or `$crate::`
        }
        let rest = &code[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            found.extend(group_heads(group));
        } else {
            let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            found.insert(name);
        }
    }
    found
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// For each top-level module, the other top-level modules it names, with one file naming each.
fn dependency_graph(modules: &[String]) -> BTreeMap<String, BTreeMap<String, PathBuf>> {
    let known: BTreeSet<&str> = modules.iter().map(String::as_str).collect();
    let mut graph = BTreeMap::new();
    for module in modules {
        let mut files = Vec::new();
        let file = src().join(format!("{module}.rs"));
        if file.exists() {
            files.push(file);
        }
        rust_files(&src().join(module), &mut files);
        assert!(!files.is_empty(), "module {module} has no source file");
        let mut deps = BTreeMap::new();
        for file in files {
            let text = std::fs::read_to_string(&file).expect("read a source file");
            for dep in crate_paths(&code_only(&text)) {
                if dep != *module && known.contains(dep.as_str()) {
                    deps.entry(dep).or_insert_with(|| file.clone());
                }
            }
        }
        graph.insert(module.clone(), deps);
    }
    graph
}

/// A cycle through the graph, as module names, if there is one.
fn find_cycle(graph: &BTreeMap<String, BTreeMap<String, PathBuf>>) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Open,
        Done,
    }
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeMap<String, PathBuf>>,
        marks: &mut BTreeMap<String, Mark>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        marks.insert(node.to_owned(), Mark::Open);
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flat_map(BTreeMap::keys) {
            match marks.get(next) {
                Some(Mark::Open) => {
                    let start = path.iter().position(|m| m == next).unwrap_or(0);
                    let mut cycle = path[start..].to_vec();
                    cycle.push(next.clone());
                    return Some(cycle);
                }
                Some(Mark::Done) => {}
                None => {
                    if let Some(cycle) = visit(next, graph, marks, path) {
                        return Some(cycle);
                    }
                }
            }
        }
        path.pop();
        marks.insert(node.to_owned(), Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    for node in graph.keys() {
        if !marks.contains_key(node) {
            if let Some(cycle) = visit(node, graph, &mut marks, &mut Vec::new()) {
                return Some(cycle);
            }
        }
    }
    None
}

fn describe(cycle: &[String], graph: &BTreeMap<String, BTreeMap<String, PathBuf>>) -> String {
    cycle
        .windows(2)
        .map(|pair| {
            let file = &graph[&pair[0]][&pair[1]];
            let shown = file.strip_prefix(src()).unwrap_or(file);
            format!("{} -> {} (in src/{})", pair[0], pair[1], shown.display())
        })
        .collect::<Vec<_>>()
        .join("\n  ")
}

#[test]
fn the_top_level_modules_form_no_cycle() {
    let modules = declared_modules();
    let graph = dependency_graph(&modules);
    if let Some(cycle) = find_cycle(&graph) {
        panic!("module cycle:\n  {}", describe(&cycle, &graph));
    }
}

#[test]
fn the_foundations_depend_only_on_earlier_foundations() {
    let modules = declared_modules();
    let graph = dependency_graph(&modules);
    for (i, foundation) in FOUNDATIONS.iter().enumerate() {
        let allowed: BTreeSet<&str> = FOUNDATIONS[..i].iter().copied().collect();
        for (dep, file) in &graph[*foundation] {
            assert!(
                allowed.contains(dep.as_str()),
                "{foundation} is a foundation but uses {dep} (in {}): move the shared part into domain",
                file.display()
            );
        }
    }
}

#[test]
fn lib_rs_declares_the_modules_in_pipeline_order() {
    assert_eq!(declared_modules(), PIPELINE_ORDER.map(str::to_owned).to_vec());
}

#[test]
fn the_reader_finds_paths_in_code_and_groups_but_not_in_comments_or_strings() {
    let code = code_only(
        "use crate::alpha::X;\nuse crate::{beta::{Y, Z}, gamma};\n/// see [`crate::delta`]\n\
         let s = \"crate::epsilon\"; let q = '\"'; crate::zeta::f(); $crate::eta::g();\n\
         let r = r#\"a \"crate::theta\" b\"#; let t = br\"crate::iota\"; crate::kappa::h();\n",
    );
    let found: Vec<String> = crate_paths(&code).into_iter().collect();
    assert_eq!(found, ["alpha", "beta", "gamma", "kappa", "zeta"]);
    let graph = BTreeMap::from([
        ("a".to_owned(), BTreeMap::from([("b".to_owned(), PathBuf::from("a.rs"))])),
        ("b".to_owned(), BTreeMap::from([("a".to_owned(), PathBuf::from("b.rs"))])),
    ]);
    assert_eq!(find_cycle(&graph), Some(vec!["a".to_owned(), "b".to_owned(), "a".to_owned()]));
}
