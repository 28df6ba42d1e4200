//! The catalogue UI's zip of a selection and of a search, and its list of rejected specs (issue
//! 13), over real HTTP against a catalogue and store filled by the real daemon and simulator.

use std::collections::HashMap;

use reqwest::StatusCode;
use serde_json::{Value, json};
use vidkeep::catalog::{AssetKind, Catalog};
use vidkeep::store::Store;
use vidkeep::web::ui::{UiState, routes};

use crate::support::Env;

/// Serves the UI read-only over `env`'s catalogue and store (the daemon stopped); the origin.
async fn serve(env: &Env) -> String {
    let catalog = Catalog::open_read_only(&env.config.catalog.path).expect("catalogue");
    let store = Store::open(&env.config.storage).expect("store");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let origin = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, routes(UiState::new(catalog, store))).await });
    origin
}

fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// The entries of `zip` (read through its central directory, each CRC checked): name → bytes.
pub(crate) async fn unzip(zip: &[u8]) -> Vec<(String, Vec<u8>)> {
    let reader = async_zip::base::read::mem::ZipFileReader::new(zip.to_vec()).await.expect("a readable zip");
    let mut out = Vec::new();
    for i in 0..reader.file().entries().len() {
        let entry = &reader.file().entries()[i];
        let name = entry.filename().as_str().expect("utf8 name").to_owned();
        assert_eq!(entry.compression(), async_zip::Compression::Stored, "{name}");
        let mut data = Vec::new();
        let mut r = reader.reader_with_entry(i).await.expect("entry");
        r.read_to_end_checked(&mut data).await.expect("read, CRC checked");
        out.push((name, data));
    }
    out
}

/// Checks `zip` against the catalogue: it holds exactly the files of `jobs` with the bytes the
/// catalogue has the SHA-256 of, under safe unique names, and a manifest saying so. Another
/// reader (Python's `zipfile`) must find it sound too. Returns the manifest's rows.
pub(crate) async fn check_zip(env: &Env, zip: &[u8], jobs: &[&str]) -> Vec<HashMap<String, String>> {
    let entries = unzip(zip).await;
    let (manifest, files) = entries.split_last().expect("entries");
    assert_eq!(manifest.0, "manifest.csv", "the manifest comes last");
    let mut wanted: Vec<(String, vidkeep::catalog::Asset)> =
        jobs.iter().flat_map(|id| env.assets(id).into_iter().map(|a| (id.to_string(), a))).collect();
    assert_eq!(
        files.len(),
        wanted.len(),
        "one entry per archived file: {:?}",
        entries.iter().map(|e| &e.0).collect::<Vec<_>>()
    );
    for (name, bytes) in files {
        assert!(
            name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)) && !name.starts_with('.'),
            "a safe name: {name}"
        );
        let hash = sha256(bytes);
        let at = wanted.iter().position(|(_, a)| a.sha256 == hash).unwrap_or_else(|| panic!("{name} is no asset"));
        let (_, asset) = wanted.remove(at);
        assert_eq!(bytes.len() as u64, asset.bytes);
        assert!(name.ends_with(if asset.kind == AssetKind::Cover { "-cover.jpg" } else { ".mp4" }), "{name}");
    }
    let names: std::collections::HashSet<&String> = files.iter().map(|(n, _)| n).collect();
    assert_eq!(names.len(), files.len(), "names are unique");

    let text = String::from_utf8(manifest.1.clone()).expect("utf8");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("header").split(',').collect();
    assert_eq!(header, ["job_id", "spec", "name", "project", "state", "kind", "file", "bytes", "sha256", "status"]);
    let rows: Vec<HashMap<String, String>> =
        lines.map(|l| header.iter().map(|h| h.to_string()).zip(l.split(',').map(str::to_owned)).collect()).collect();
    assert_eq!(rows.len(), files.len(), "{text}");
    for (row, (name, bytes)) in rows.iter().zip(files) {
        assert_eq!((&row["file"], &row["sha256"], &row["status"]), (name, &sha256(bytes), &"ok".to_owned()), "{text}");
        assert_eq!(row["bytes"], bytes.len().to_string());
        assert!(jobs.contains(&row["job_id"].as_str()), "{text}");
    }

    let path = env.dir.path().join("check.zip");
    std::fs::write(&path, zip).expect("write");
    let python = std::process::Command::new("python3").args(["-m", "zipfile", "-t"]).arg(&path).output();
    let python = python.expect("python3 (the CI machine has it for its venv)");
    assert!(python.status.success(), "Python's zipfile: {}", String::from_utf8_lossy(&python.stderr));
    rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_selection_and_a_search_download_as_one_zip_with_a_manifest() {
    let mut env = Env::default().await;
    env.start();
    env.drop_spec(
        "harbour.json",
        &json!({"model":"viduq1-text","prompt":"a harbour at dawn","vidkeep":{"takes":2}}).to_string(),
    );
    env.drop_spec("fox.json", &json!({"model":"viduq1-text","prompt":"a fox alone"}).to_string());
    env.drop_spec("owl.json", &json!({"model":"viduq1-text","prompt":"an owl at night"}).to_string());
    env.wait_all_ended(4).await;
    env.stop().await;
    let ui = serve(&env).await;
    let mut takes: Vec<_> = env.jobs().into_iter().filter(|j| j.spec_name == "harbour.json").collect();
    takes.sort_by_key(|j| j.take_no);
    let fox = env.job_by_spec("fox.json");
    let http = reqwest::Client::new();

    // The grid's form: a card standing for both takes, and one job.
    let form = format!("takes_of={}&job={}&job={}", takes[0].id, fox.id, fox.id);
    let r = http
        .post(format!("{ui}/download.zip"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "application/zip");
    assert_eq!(r.headers()["content-disposition"], "attachment; filename=\"vidkeep-3-jobs.zip\"");
    assert!(r.headers().get("content-length").is_none(), "streamed, not buffered to learn its length");
    let zip = r.bytes().await.expect("body");
    let rows = check_zip(&env, &zip, &[&takes[0].id, &takes[1].id, &fox.id]).await;
    assert_eq!(rows.len(), 6, "three jobs, a video and a cover each");
    assert_eq!(rows[0]["job_id"], takes[0].id, "in the order asked, takes in order");
    assert_eq!(rows[2]["job_id"], takes[1].id);

    // The same as a link, and every match of a search.
    let (status, zip) = get(&format!("{ui}/download.zip?job={}", fox.id)).await;
    assert_eq!(status, StatusCode::OK);
    check_zip(&env, &zip, &[&fox.id]).await;
    let (status, zip) = get(&format!("{ui}/export.zip?q=owl")).await;
    assert_eq!(status, StatusCode::OK);
    check_zip(&env, &zip, &[&env.job_by_spec("owl.json").id]).await;

    // Refusals say why, in HTML for a person and in JSON for a script.
    let many: Vec<String> = (0..501).map(|_| format!("job={}", fox.id)).collect();
    let too_many = http.post(format!("{ui}/download.zip")).body(many.join("&")).send().await.expect("post");
    assert_eq!(too_many.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let page = too_many.text().await.expect("body");
    assert!(page.contains("a zip holds at most 500 jobs") && page.contains("<html"), "{page}");
    let as_json = http
        .post(format!("{ui}/download.zip"))
        .header("accept", "application/json")
        .body(many.join("&"))
        .send()
        .await
        .expect("post");
    assert_eq!(as_json.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let body: Value = as_json.json().await.expect("a JSON error");
    assert_eq!(body["status"], 413);
    assert!(body["error"].as_str().is_some_and(|e| e.contains("at most 500")), "{body}");
    let (status, _) = get(&format!("{ui}/download.zip")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "nothing selected");
    let (status, _) = get(&format!("{ui}/download.zip?job=no-such-job")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = get(&format!("{ui}/export.zip?q=zebra")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "an empty search has nothing to zip");

    // The grid offers it: a checkbox per card (a group's names its takes) in the zip's form.
    let (_, grid) = text(&format!("{ui}/")).await;
    assert!(grid.contains("<form class=\"selection\" id=\"zip\" method=\"post\" action=\"/download.zip\""), "{grid}");
    assert!(
        grid.contains(&format!("form=\"zip\" id=\"pick-{}\" name=\"takes_of\" value=\"{}\"", takes[0].id, takes[0].id))
    );
    assert!(grid.contains(&format!("form=\"zip\" id=\"pick-{}\" name=\"job\" value=\"{}\"", fox.id, fox.id)));
    assert!(grid.contains("href=\"/export.zip?\""), "{grid}");
}

async fn get(url: &str) -> (StatusCode, Vec<u8>) {
    let r = reqwest::get(url).await.expect("request");
    (r.status(), r.bytes().await.expect("body").to_vec())
}

async fn text(url: &str) -> (StatusCode, String) {
    let r = reqwest::get(url).await.expect("request");
    (r.status(), r.text().await.expect("body"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_specs_are_a_filter_of_the_grid_with_their_reason() {
    let mut env = Env::new(crate::support::fast_sim(), "", "[defaults]\nmodel = \"viduq1-text\"\n").await;
    env.start();
    env.drop_spec("fox.txt", "a fox that is fine");
    env.drop_spec("broken.json", "{\"model\": \"viduq1-text\", \"prompt\": ");
    env.drop_spec("nomodel.json", &json!({"model":"no-such-model","prompt":"a cat"}).to_string());
    env.wait_all_ended(1).await;
    let rejections = env.wait_rejections(2).await;
    env.stop().await;
    let ui = serve(&env).await;

    let (_, grid) = text(&format!("{ui}/")).await;
    assert!(grid.contains("<option value=\"rejected\">rejected (2)</option>"), "{grid}");
    let (status, page) = text(&format!("{ui}/?state=rejected")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("2 spec(s) refused at intake"), "{page}");
    for r in &rejections {
        assert!(page.contains(&r.spec_name) && page.contains(&r.error_code), "{page}");
        let reason =
            r.error_message.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;");
        assert!(page.contains(&reason), "the reason in words: {reason}\n{page}");
    }
    let (older, newer) = (&rejections[0], &rejections[1]);
    let at = |name: &str| page.find(&format!("<td>{name}</td>")).expect("listed");
    assert!(at(&newer.spec_name) < at(&older.spec_name), "newest first");
    let (_, searched) = text(&format!("{ui}/?state=rejected&q=NOMODEL")).await;
    assert!(
        searched.contains("1 spec(s) refused at intake matching") && !searched.contains("broken.json"),
        "{searched}"
    );

    let api: Value = reqwest::get(format!("{ui}/api/rejections")).await.expect("api").json().await.expect("json");
    assert_eq!(api["total"], 2);
    assert_eq!(api["rejections"][0]["spec"], newer.spec_name.as_str());
    assert_eq!(api["rejections"][0]["error_code"], newer.error_code.as_str());
    let wrong = reqwest::get(format!("{ui}/api/jobs?state=rejected")).await.expect("api");
    assert_eq!(wrong.status(), StatusCode::BAD_REQUEST);
    let body: Value = wrong.json().await.expect("json");
    assert!(body["error"].as_str().is_some_and(|e| e.contains("/api/rejections")), "{body}");

    // On a phone the list stays readable: no column squeezed to a few letters a line.
    let Some((dir, chromium)) = crate::web::browser() else { return };
    let out = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser-rejected");
    std::fs::create_dir_all(&out).expect("output folder");
    let page = format!("{ui}/?state=rejected");
    let seen =
        crate::web::run_script(&dir, &chromium, "shots.mjs", &[&page, out.to_str().expect("utf8"), "rejected"]).await;
    assert_eq!((seen["overflow1400"].as_i64(), seen["overflow390"].as_i64()), (Some(0), Some(0)), "{seen}");
    for width in [1400, 390] {
        let narrowest = seen[format!("narrowestCell{width}")].as_i64().unwrap_or(0);
        assert!(narrowest >= 100, "a cell {narrowest} px wide at {width} px: {seen}");
    }
}
