//! The command line as scripts use it: exact field names, exit codes.

use std::path::Path;
use std::process::Command;

use serde_json::json;

use crate::support::Env;

fn vidkeep(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_vidkeep")).args(args).output().expect("run vidkeep")
}

#[test]
fn check_accepts_the_examples_and_shows_images_by_source() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/specs");
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("config.example.toml");
    let mut args = vec!["check".to_owned(), "--config".to_owned(), config.display().to_string()];
    for entry in std::fs::read_dir(&dir).expect("examples") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|e| e != "png") {
            args.push(path.display().to_string());
        }
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = vidkeep(&args);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("\"lantern-first.png\""), "image shown by its source: {stdout}");
    assert!(!stdout.contains("base64,"), "no base64 printed");
}

#[test]
fn check_prices_each_spec_and_says_what_todays_budget_lets_through() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("vk.toml");
    std::fs::write(&config, "[prices]\ncogvideox-3 = \"0.80\"\n[budget]\ndaily = 5\n").expect("config");
    let mut args = vec!["check".to_owned(), "--config".to_owned(), config.display().to_string()];
    for (n, model) in ["viduq1-text", "cogvideox-3", "viduq1-text", "viduq1-text"].iter().enumerate() {
        let spec = dir.path().join(format!("{n}.json"));
        std::fs::write(&spec, json!({"model": model, "prompt": format!("take {n}")}).to_string()).expect("spec");
        args.push(spec.display().to_string());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = vidkeep(&args);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("0.json: ok, 2.50 RMB (viduq1-text)"), "{stdout}");
    assert!(stdout.contains("1.json: ok, 0.80 RMB (cogvideox-3)"), "[prices] applies: {stdout}");
    assert!(stdout.contains("total: 8.30 RMB for 4 valid spec(s)"), "{stdout}");
    assert!(
        stdout.contains("budget: 2 of 4 would be submitted today (3.30 RMB)")
            && stdout.contains("2.json and later would wait: daily budget 5.00 RMB: 3.30 spent"),
        "{stdout}"
    );
}

#[test]
fn check_fails_on_an_invalid_spec_and_says_why() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, json!({"model":"viduq1-text","prompt":"x","duration":8}).to_string()).expect("write");
    let out = vidkeep(&["check", bad.to_str().expect("utf8")]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("INVALID") && stdout.contains("duration"), "{stdout}");
}

#[test]
fn check_accepts_an_sdk_body_with_nulls_and_names_the_fields_the_platform_may_ignore() {
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = dir.path().join("sdk.json");
    // What zai-sdk 0.2.3 `videos.generations` sends for viduq1-text with the SDK's example
    // arguments (`quality`, `with_audio` and `fps` are passed, the rest left unset as nulls).
    let body = r#"{"model":"viduq1-text","prompt":"a fox","image_url":null,"quality":"speed","with_audio":null,"size":"1920x1080","duration":5,"fps":30,"style":"anime","aspect_ratio":"16:9","off_peak":true,"movement_amplitude":"auto","request_id":null,"user_id":null}"#;
    std::fs::write(&spec, body).expect("write");
    let out = vidkeep(&["check", spec.to_str().expect("utf8")]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    for field in ["quality", "fps", "off_peak"] {
        assert!(stdout.contains(&format!("note: the platform may ignore `{field}`")), "{field}: {stdout}");
    }
    assert!(!stdout.contains("may ignore `style`"), "schema fields are not flagged: {stdout}");
    for unset in ["image_url", "with_audio", "request_id", "user_id"] {
        assert!(!stdout.contains(unset), "a null is not set, so not in the request: {stdout}");
    }
}

#[test]
fn a_config_with_an_unknown_key_is_refused_with_its_name_and_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("c.toml");
    std::fs::write(&path, "[api]\nmax_in_flight = 3\npoll_intervall = \"5s\"\n").expect("write");
    let out = vidkeep(&["config", "check", "--config", path.to_str().expect("utf8")]);
    assert_eq!(out.status.code(), Some(1), "a config with a problem is exit 1");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("poll_intervall") && stderr.contains("line 3"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_and_jobs_print_what_scripts_rely_on() {
    let mut env = Env::default().await;
    env.start();
    env.drop_spec(
        "fox.json",
        &json!({"model":"viduq1-text","prompt":"a fox, \"quoted\"","vidkeep":{"project":"p1","tags":["a"]}})
            .to_string(),
    );
    env.wait_all_ended(1).await;
    env.stop().await;

    let out = env.cli(&["export", "--format", "json"]);
    assert!(out.status.success());
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON array");
    let job = &list[0];
    for field in
        ["job_id", "spec", "state", "model", "prompt", "task_id", "submitted_at", "archived_at", "error", "assets"]
    {
        assert!(job.get(field).is_some(), "missing {field}: {job}");
    }
    assert_eq!(job["state"], "archived");
    assert_eq!(job["spec"], "fox.json");
    assert!(job["error"].is_null());
    assert_eq!(job["project"], "p1");
    let assets = job["assets"].as_array().expect("assets");
    assert_eq!(assets.len(), 2);
    for asset in assets {
        for field in ["kind", "sha256", "bytes", "key", "content_type"] {
            assert!(asset.get(field).is_some(), "missing asset {field}: {asset}");
        }
        let key = asset["key"].as_str().expect("key");
        assert!(!key.starts_with('/') && env.archive_dir().join(key).exists(), "key relative to the store: {key}");
    }
    assert_eq!(assets[0]["kind"], "video");
    assert_eq!(assets[0]["content_type"], "video/mp4");

    let csv = env.cli(&["export", "--format", "csv"]);
    let text = String::from_utf8_lossy(&csv.stdout);
    assert!(text.starts_with("job_id,spec,state,model,prompt"), "{text}");
    assert!(text.contains("\"a fox, \"\"quoted\"\"\""), "quoted prompt: {text}");
    let header = text.lines().next().unwrap_or_default();
    assert!(header.starts_with("job_id,spec,state,model,prompt,name,project,tags,task_id,created_at,"), "{header}");
    assert!(header.contains(",error,error_code,"), "{header}");
    let row = text.lines().nth(1).unwrap_or_default();
    assert!(row.contains(",p1,a,") && row.contains(job["created_at"].as_str().expect("time")), "{row}");
    let shown = env.cli(&["show", "fox.json", "--json"]);
    let shown: serde_json::Value = serde_json::from_slice(&shown.stdout).expect("show --json");
    let at = shown["events"][0]["at"].as_str().unwrap_or_default();
    assert!(at.len() >= 20 && at.ends_with('Z') && at.contains('T'), "RFC 3339 like every other time: {shown}");
    // The platform's 19-digit task ids would lose digits as spreadsheet numbers.
    let task_id = job["task_id"].as_str().expect("task id");
    assert!(
        task_id.len() > 15 && task_id.bytes().all(|b| b.is_ascii_digit()),
        "the simulator's ids are numeric: {task_id}"
    );
    assert!(row.contains(&format!("\"=\"\"{task_id}\"\"\"")), "task id kept as text: {row}");

    let jobs = env.cli(&["jobs", "--json", "--state", "archived"]);
    let parsed: serde_json::Value = serde_json::from_slice(&jobs.stdout).expect("json");
    assert_eq!(parsed.as_array().map(Vec::len), Some(1));
    let table = String::from_utf8_lossy(&env.cli(&["jobs"]).stdout).into_owned();
    assert!(table.contains("archived") && table.contains("fox.json"), "{table}");
    let none = env.cli(&["jobs", "--json", "--state", "failed"]);
    assert_eq!(serde_json::from_slice::<serde_json::Value>(&none.stdout).expect("json"), json!([]));
    let bad_state = env.cli(&["jobs", "--state", "done"]);
    assert_eq!(bad_state.status.code(), Some(2));
}

#[test]
fn a_relative_config_path_resolves_against_the_config_folder() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("vk.toml"), "[watch]\ndir = \"in box\"\n[storage]\nurl = \"my archive\"\n")
        .expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_vidkeep"))
        .args(["config", "check", "--config", "vk.toml"])
        .current_dir(dir.path())
        .output()
        .expect("run vidkeep");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let root = dir.path().canonicalize().expect("canonical");
    assert!(stdout.contains(&format!("{}", root.join("in box").display())), "{stdout}");
    assert!(stdout.contains("my%20archive"), "storage URL is a proper file URL: {stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_and_filters_find_the_right_jobs() {
    let mut env = Env::default().await;
    env.start();
    env.drop_spec(
        "fox.json",
        &json!({"model":"viduq1-text","prompt":"A red fox in deep snow","vidkeep":{"project":"wild","tags":["winter"]}})
            .to_string(),
    );
    env.drop_spec(
        "lantern.json",
        &json!({"model":"viduq1-text","prompt":"河面上漂浮的灯笼","vidkeep":{"project":"festival"}}).to_string(),
    );
    env.wait_all_ended(2).await;
    env.stop().await;

    let found = |args: &[&str]| -> (Option<i32>, Vec<String>) {
        let out = env.cli(args);
        let list: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap_or_default();
        (out.status.code(), list.iter().map(|j| j["spec"].as_str().unwrap_or_default().to_owned()).collect())
    };
    assert_eq!(found(&["search", "FOX", "--json"]), (Some(0), vec!["fox.json".to_owned()]));
    assert_eq!(found(&["search", "灯笼", "--json"]), (Some(0), vec!["lantern.json".to_owned()]));
    assert_eq!(found(&["search", "fox", "--project", "festival", "--json"]), (Some(1), vec![]));
    assert_eq!(found(&["jobs", "--tag", "winter", "--json"]), (Some(0), vec!["fox.json".to_owned()]));
    assert_eq!(found(&["export", "--project", "festival"]), (Some(0), vec!["lantern.json".to_owned()]));
    let (code, all) = found(&["jobs", "--since", "2000-01-01", "--json"]);
    assert_eq!((code, all.len()), (Some(0), 2));
    assert_eq!(found(&["jobs", "--until", "2000-01-01", "--json"]), (Some(0), vec![]));
    let table = env.cli(&["search", "snow"]);
    assert!(String::from_utf8_lossy(&table.stdout).contains("fox.json"));
    assert_eq!(env.cli(&["jobs", "--since", "yesterday"]).status.code(), Some(2), "a bad date is refused");
}

/// A typo'd `[catalog] path` must not become a new empty catalogue that every read (and a cron
/// `verify`) then reports as fine: reading commands refuse a missing catalogue with exit 2.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reading_commands_refuse_a_missing_catalogue() {
    let env = crate::support::Env::default().await;
    assert!(!env.config.catalog.path.exists(), "no daemon has run");
    for args in [&["jobs"][..], &["verify"], &["search", "fox"], &["show", "0190"], &["export"]] {
        let out = env.cli(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains("catalogue not found at"), "{args:?}: {stderr}");
    }
    assert!(!env.config.catalog.path.exists(), "nothing was created");
}

/// `vidkeep jobs --json | head -c 10`: a closed pipe ends the command quietly (no panic, no 101).
/// 400 jobs print far more than a pipe holds, so the listing is still writing when it closes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_pipe_ends_a_listing_quietly() {
    use std::io::Read as _;
    let env = crate::support::Env::default().await;
    {
        let mut catalog = vidkeep::catalog::Catalog::open(&env.config.catalog.path).expect("catalogue");
        let defaults = serde_json::Map::new();
        let ctx = vidkeep::spec::SpecContext { defaults: &defaults, spec_dir: env.inbox(), inbox: env.inbox() };
        for i in 0..400 {
            let body =
                format!(r#"{{"model":"viduq1-text","prompt":"a fox number {i} crossing a long snowy field at dawn"}}"#);
            let job = vidkeep::catalog::NewJob {
                id: format!("job-{i:04}"),
                spec_name: format!("fox-{i}.json"),
                spec_sha256: String::new(),
                spec_format: vidkeep::spec::SpecFormat::Json,
                spec: vidkeep::spec::parse("fox.json", body.as_bytes(), &ctx).expect("valid"),
                take: None,
            };
            catalog.insert_job(&job).expect("insert");
        }
    }
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_vidkeep"))
        .args(["jobs", "--json", "--config"])
        .arg(&env.config_path)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut out = child.stdout.take().expect("stdout");
    let mut first = [0u8; 10];
    out.read_exact(&mut first).expect("read 10 bytes");
    drop(out);
    let status = child.wait().expect("wait");
    let mut stderr = String::new();
    child.stderr.take().expect("stderr").read_to_string(&mut stderr).expect("stderr");
    assert!(!stderr.contains("panicked") && status.code() != Some(101), "{status:?}: {stderr}");
}

#[test]
fn a_key_file_others_can_read_is_refused_with_the_chmod_fix_and_never_printed() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().expect("tempdir");
    let key = dir.path().join("api-key");
    std::fs::write(&key, "id42.keyfile-s3cret\n").expect("write key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let config = dir.path().join("vk.toml");
    std::fs::write(&config, "[api]\nkey_file = \"api-key\"\n[watch]\ndir = \"in\"\n[storage]\nurl = \"a\"\n")
        .expect("write");
    for args in [["run", "--config"], ["config", "check"]] {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_vidkeep"));
        cmd.args(args).env_remove("ZHIPUAI_API_KEY").env_remove("CREDENTIALS_DIRECTORY");
        if args[0] == "config" {
            cmd.arg("--config");
        }
        let out = cmd.arg(&config).output().expect("run vidkeep");
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        // `run` cannot run (2); `config check` ran and found a problem (1).
        assert_eq!(out.status.code(), Some(if args[0] == "run" { 2 } else { 1 }), "{args:?}: {text}");
        assert!(text.contains(&format!("chmod 600 {}", key.display())), "{args:?}: {text}");
        assert!(!text.contains("s3cret"), "{args:?}: {text}");
    }
    // With the variable set as well, the key is set twice.
    let out = Command::new(env!("CARGO_BIN_EXE_vidkeep"))
        .args(["config", "check", "--config"])
        .arg(&config)
        .env("ZHIPUAI_API_KEY", "id43.env-s3cret")
        .output()
        .expect("run vidkeep");
    let text = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("set twice") && !text.contains("s3cret"), "{text}");
}

#[test]
fn check_prints_hostile_file_names_and_reasons_escaped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let name = "bad\x1b[31m\nFORGED: ok.json";
    let path = dir.path().join(name);
    std::fs::write(&path, serde_json::json!({ "prompt": "x", "f\x1b[32m\nFORGED": 1 }).to_string()).expect("write");
    let out = vidkeep(&["check", path.to_str().expect("utf-8 path")]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(!stdout.contains('\x1b'), "{stdout:?}");
    assert!(!stdout.lines().any(|l| l.starts_with("FORGED")), "{stdout}");
    assert!(stdout.contains("bad%1B[31m%0AFORGED: ok.json: INVALID"), "{stdout}");
}

fn text(out: &std::process::Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn show_finds_a_job_by_spec_name_task_id_request_id_or_the_short_id_jobs_prints() {
    let mut env = Env::default().await;
    env.start();
    env.drop_spec("fox.json", &json!({"prompt": "a red fox", "vidkeep": {"project": "Wild"}}).to_string());
    env.drop_spec("owl.json", &json!({"prompt": "an owl at night"}).to_string());
    env.drop_spec("bad.json", &json!({"prompt": "x", "colour": 1}).to_string());
    let jobs = env.wait_all_ended(2).await;
    env.wait_rejections(1).await;
    env.stop().await;
    let fox = jobs.iter().find(|j| j.spec_name == "fox.json").expect("fox job");
    let short = &fox.id[fox.id.len() - 8..];
    let by = [
        "fox.json",
        fox.task_id.as_deref().expect("task id"),
        fox.request_id.as_deref().expect("request id"),
        short,
        // A prefix long enough to reach the random part: UUIDv7s made in one millisecond (one
        // intake batch) share their first 23 characters.
        &fox.id[..30],
    ];
    for what in by {
        let out = env.cli(&["show", what]);
        assert!(out.status.success(), "show {what}: {}", text(&out));
        assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("job       {}", fox.id)), "{what}");
    }
    let none = env.cli(&["show", "nosuch.json"]);
    assert_eq!(none.status.code(), Some(1), "nothing matched is exit 1: {}", text(&none));
    assert!(text(&none).contains("spec file name"), "{}", text(&none));
    // The table shows the short id that `show` takes.
    let table = String::from_utf8_lossy(&env.cli(&["jobs"]).stdout).into_owned();
    assert!(table.lines().any(|l| l.starts_with(short)), "{table}");
    // `--rejected` lists what intake refused, with the reason.
    let rejected = env.cli(&["jobs", "--rejected"]);
    assert!(rejected.status.success(), "{}", text(&rejected));
    assert!(text(&rejected).contains("bad.json") && text(&rejected).contains("spec-invalid"), "{}", text(&rejected));
    let rejected: serde_json::Value =
        serde_json::from_slice(&env.cli(&["jobs", "--rejected", "--json"]).stdout).expect("json");
    assert_eq!(rejected[0]["spec"], "bad.json");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_filters_mean_what_the_ui_means_and_say_when_the_list_is_cut() {
    let mut env = Env::default().await;
    env.start();
    let long = "a very long prompt about a harbour at dawn with mist and boats and gulls ".repeat(6);
    env.drop_spec("fox.json", &json!({"prompt": long, "vidkeep": {"project": "Wild"}}).to_string());
    env.drop_spec("owl.json", &json!({"prompt": "an owl"}).to_string());
    env.wait_all_ended(2).await;
    env.stop().await;
    let count = |args: &[&str]| -> usize {
        let out = env.cli(args);
        assert!(out.status.success(), "{args:?}: {}", text(&out));
        serde_json::from_slice::<serde_json::Value>(&out.stdout).expect("json").as_array().map_or(0, Vec::len)
    };
    let today = vidkeep::time::rfc3339(vidkeep::time::now_ms())[..10].to_owned();
    assert_eq!(count(&["jobs", "--json", "--until", &today]), 2, "--until DATE includes that day");
    assert_eq!(count(&["jobs", "--json", "--since", &today, "--until", &today]), 2);
    assert_eq!(count(&["jobs", "--json", "--project", "wild"]), 1, "--project in any case, as search");
    let bad_model = env.cli(&["jobs", "--model", "nosuch"]);
    assert_eq!(bad_model.status.code(), Some(2), "{}", text(&bad_model));
    assert!(text(&bad_model).contains("viduq1-text"), "names the known models: {}", text(&bad_model));
    let cut = env.cli(&["jobs", "--limit", "1"]);
    assert!(String::from_utf8_lossy(&cut.stderr).contains("showing 1 of 2 jobs"), "{}", text(&cut));
    for columns in ["80", "120"] {
        let out = Command::new(env!("CARGO_BIN_EXE_vidkeep"))
            .args(["jobs", "--config"])
            .arg(&env.config_path)
            .env("COLUMNS", columns)
            .output()
            .expect("run vidkeep");
        let table = String::from_utf8_lossy(&out.stdout);
        let max: usize = columns.parse().expect("number");
        assert!(table.lines().all(|l| l.chars().count() <= max), "wider than {columns}:\n{table}");
        assert!(table.contains("a very long prompt") && table.contains('…'), "{table}");
    }
    let wide = String::from_utf8_lossy(&env.cli(&["jobs", "--wide"]).stdout).into_owned();
    assert!(wide.contains(&long.split_whitespace().collect::<Vec<_>>().join(" ")), "--wide shows it all: {wide}");
}

#[test]
fn exit_codes_are_documented_in_each_commands_help() {
    for command in [&["show"][..], &["search"], &["verify"], &["config", "check"], &["check"]] {
        let mut args = command.to_vec();
        args.push("--help");
        let out = vidkeep(&args);
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success() && help.contains("Exit status: 0"), "{command:?}:\n{help}");
        assert!(help.contains(" 1 ") && help.contains(" 2 "), "{command:?}:\n{help}");
    }
}

#[test]
fn errors_say_each_cause_once_and_name_the_path_the_user_gave() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("nope.toml");
    let out = vidkeep(&["jobs", "--config", missing.to_str().expect("utf-8")]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.matches("os error 2").count(), 1, "{stderr}");
    assert!(stderr.contains("nope.toml"), "{stderr}");
    // `check` of a .txt spec without a config says how to get its model from [defaults].
    let txt = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/specs/harbour-at-dawn.txt");
    let out = Command::new(env!("CARGO_BIN_EXE_vidkeep"))
        .arg("check")
        .arg(&txt)
        .env_remove("VIDKEEP_CONFIG")
        .output()
        .expect("run vidkeep");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("pass --config"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_to_a_missing_folder_names_that_folder() {
    let mut env = Env::default().await;
    env.start();
    env.stop().await;
    let dest = env.dir.path().join("no-such-folder/catalog.sqlite");
    let out = env.cli(&["backup", dest.to_str().expect("utf-8")]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("the folder {} does not exist", dest.parent().expect("parent").display())),
        "{stderr}"
    );
    assert!(!stderr.contains(".partial"), "{stderr}");
}

#[test]
fn demo_refuses_a_folder_that_is_not_its_own_and_reruns_in_its_own() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("notes.txt"), "mine").expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_vidkeep"))
        .args(["demo", "--dir"])
        .arg(dir.path())
        .env_remove("CARGO")
        .output()
        .expect("run demo");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("is not empty and is not a previous demo"), "{}", text(&out));
    assert!(!dir.path().join("vidkeep.toml").exists(), "nothing written");

    let demo = dir.path().join("demo");
    for run in 0..2 {
        let out = Command::new(env!("CARGO_BIN_EXE_vidkeep"))
            .args(["demo", "--dir"])
            .arg(&demo)
            .env_remove("CARGO")
            .env_remove("VIDKEEP_LOG")
            .env_remove("RUST_LOG")
            .output()
            .expect("run demo");
        let all = text(&out);
        assert!(out.status.success(), "run {run}: {all}");
        assert!(!all.contains(" INFO "), "run {run}: no log lines without -v: {all}");
        if run == 0 {
            assert!(all.contains("fox-in-snow.json") && all.contains("archived"), "progress lines: {all}");
        }
        assert!(all.contains(&format!("try: {} jobs --config", env!("CARGO_BIN_EXE_vidkeep"))), "run {run}: {all}");
        // The summary counts this run's jobs only (a rerun's examples are already paid for).
        let summary = all.lines().rfind(|l| l.ends_with("job(s)")).expect("summary line").to_owned();
        assert_eq!(summary, if run == 0 { "6 job(s)" } else { "0 job(s)" }, "run {run}: {all}");
        // ... and a rerun says why nothing new was made, instead of an empty table alone.
        assert_eq!(all.contains("already paid for"), run == 1, "run {run}: {all}");
    }
}

#[test]
fn the_shipped_completions_and_man_page_match_the_command_line() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets");
    for (rel, bytes) in vidkeep::cli::generated_files() {
        let shipped = std::fs::read(root.join(rel)).unwrap_or_default();
        assert!(
            shipped == bytes,
            "assets/{rel} is out of date with the CLI: run `cargo run -- completions --write assets` and commit it"
        );
    }
    let bash = vidkeep(&["completions", "bash"]);
    assert!(bash.status.success() && String::from_utf8_lossy(&bash.stdout).contains("vidkeep"));
    let man = vidkeep(&["man"]);
    assert!(String::from_utf8_lossy(&man.stdout).contains(".TH vidkeep"), "a roff man page");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn show_takes_a_job_as_people_paste_it_and_explains_a_rejected_spec() {
    let mut env = Env::default().await;
    env.start();
    env.drop_spec("fox.json", &json!({"prompt": "a red fox"}).to_string());
    env.drop_spec("bad.json", &json!({"prompt": "x", "colour": 1}).to_string());
    env.drop_spec("broken.toml", "model = \"viduq1-text\"\nprompt = \"a kite\n");
    let jobs = env.wait_all_ended(1).await;
    env.wait_rejections(2).await;
    env.stop().await;
    let fox = &jobs[0];
    let done = env.inbox().join("done").join("fox.json");
    let pasted = [
        // The job page's address, copied from the browser (it carries the search it came from).
        format!("http://127.0.0.1:8780/jobs/{}?q=fox&sort=newest", fox.id),
        format!("/jobs/{}", fox.id),
        // An id copied from a tool that writes UUIDs in capitals.
        fox.id.to_uppercase(),
        // The spec's path, as the shell completes it.
        done.display().to_string(),
        "done/fox.json".to_owned(),
    ];
    for what in &pasted {
        let out = env.cli(&["show", what]);
        assert!(out.status.success(), "show {what}: {}", text(&out));
        assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("job       {}", fox.id)), "{what}");
    }
    // A spec intake refused never became a job: say so, with the reason, not "no job matches".
    for what in ["bad.json", "failed/bad.json"] {
        let out = env.cli(&["show", what]);
        assert_eq!(out.status.code(), Some(1), "still no job: {}", text(&out));
        let said = text(&out);
        assert!(said.contains("rejected") && said.contains("spec-invalid") && said.contains("colour"), "{said}");
        assert!(said.contains("failed/"), "names where its report is: {said}");
        assert!(!said.contains("no job matches"), "{said}");
    }
    // A parser's message spans lines (the spec's line with a caret): one row per spec, saying
    // where and what, without the quoted line's escaped newlines.
    let rejected = text(&env.cli(&["jobs", "--rejected"]));
    let row = rejected.lines().find(|l| l.contains("broken.toml")).expect("broken.toml listed");
    assert!(row.contains("line 2") && row.contains("spec-syntax") && !row.contains("%0A"), "{rejected}");
}
