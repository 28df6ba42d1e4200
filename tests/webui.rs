//! The catalogue UI and the inbox's reports for takes, budgets and the probe (issues 9 and 13),
//! over real HTTP against catalogues filled by the real daemon and the simulator.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use vidkeep::catalog::{AssetKind, Catalog};
use vidkeep::jobs::JobState;
use vidkeep::store::Store;
use vidkeep::web::ui::{UiState, routes};

use crate::support::{Env, WAIT, fast_sim};

/// Serves the UI read-only over `env`'s catalogue and store (the daemon stopped); the origin.
async fn serve(env: &Env) -> String {
    let catalog = Catalog::open_read_only(&env.config.catalog.path).expect("catalogue");
    let store = Store::open(&env.config.storage).expect("store");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let origin = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, routes(UiState::new(catalog, store))).await });
    origin
}

async fn text(url: &str) -> (StatusCode, String) {
    let r = reqwest::get(url).await.expect("request");
    (r.status(), r.text().await.expect("body"))
}

fn cards(html: &str) -> usize {
    html.matches("class=\"card\"").count()
}

/// Polls `url` until its body contains `needle` (the page is read, nothing sleeps for time
/// to pass: each try is one request).
async fn until_page_contains(url: &str, needle: &str) -> String {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (_, body) = text(url).await;
        if body.contains(needle) {
            return body;
        }
        assert!(tokio::time::Instant::now() < deadline, "{url} never showed {needle:?}:\n{body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn takes_share_one_card_and_play_side_by_side_on_the_job_page() {
    let mut env = Env::default().await;
    env.start();
    env.drop_spec(
        "harbour.json",
        &json!({"model":"viduq1-text","prompt":"a harbour at dawn","vidkeep":{"takes":3}}).to_string(),
    );
    env.drop_spec("fox.json", &json!({"model":"viduq1-text","prompt":"a fox alone"}).to_string());
    let jobs = env.wait_all_ended(4).await;
    env.stop().await;
    let ui = serve(&env).await;
    let mut takes: Vec<_> = jobs.iter().filter(|j| j.spec_name == "harbour.json").collect();
    takes.sort_by_key(|j| j.take_no);
    assert_eq!(takes.len(), 3);

    // The grid collapses a spec's takes into one card saying how many there are.
    let (status, grid) = text(&format!("{ui}/")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(cards(&grid), 2, "one card for the three takes, one for the fox: {grid}");
    assert!(grid.contains("3 takes"), "{grid}");
    assert!(grid.contains(&format!("data-job=\"{}\"", takes[0].id)), "the first take stands for its group");
    assert!(grid.contains("2 job(s) or take group(s)") && grid.contains("takes=all"), "{grid}");
    // ... and expands them on request.
    let (_, all) = text(&format!("{ui}/?takes=all")).await;
    assert_eq!(cards(&all), 4, "{all}");
    assert!(!all.contains("3 takes") && all.contains("4 job(s)"), "{all}");
    let api: Value = reqwest::get(format!("{ui}/api/jobs")).await.expect("api").json().await.expect("json");
    assert_eq!(api["total"], 2, "the API lists what the grid lists");
    let (_, csv) = text(&format!("{ui}/export.csv")).await;
    assert_eq!(csv.lines().count(), 5, "exports keep one row per job: {csv}");
    let (_, searched) = text(&format!("{ui}/?q=harbour")).await;
    assert_eq!(cards(&searched), 1);

    // The job page shows every take with its own player, this one marked.
    let (_, page) = text(&format!("{ui}/jobs/{}", takes[1].id)).await;
    assert!(page.contains("Takes of harbour.json") && page.contains("take 2 (this one)"), "{page}");
    for take in &takes {
        let video = env.assets(&take.id).into_iter().find(|a| a.kind == AssetKind::Video).expect("video");
        assert!(
            page.contains(&format!("<video controls preload=\"metadata\" src=\"/assets/{}\"", video.sha256)),
            "take {} has a player: {page}",
            take.take_no
        );
    }
    assert!(page.contains(&format!("href=\"/jobs/{}?\"", takes[0].id)), "links to the other takes: {page}");
    let (_, fox) = text(&format!("{ui}/jobs/{}", env.job_by_spec("fox.json").id)).await;
    assert!(!fox.contains("Takes of"), "a job without takes shows no takes section");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_waiting_for_budget_has_a_report_in_processing_until_it_is_submitted() {
    let extra = "[defaults]\nmodel = \"viduq1-text\"\n[budget]\ndaily = 2.5\n";
    let mut env = Env::new(fast_sim(), "", extra).await;
    let (reload, requests) = tokio::sync::mpsc::unbounded_channel();
    env.start_serving(Some(requests)).await;
    env.drop_spec("first.txt", "a lighthouse that the budget pays for");
    env.wait_until("the first archived", |j| j.len() == 1 && j[0].state == JobState::Archived).await;
    env.drop_spec("second.txt", "a lighthouse over the budget");
    let jobs = env.wait_until("the second waits", |j| j.iter().any(|j| j.state == JobState::WaitingBudget)).await;
    let waiting = jobs.iter().find(|j| j.state == JobState::WaitingBudget).expect("waiting");
    let reason = waiting.error.as_ref().expect("a reason").message.clone();
    assert!(reason.starts_with("daily budget 2.50 RMB: 2.50 spent"), "{reason}");

    let path = env.inbox().join("processing/second.txt.report.json");
    let deadline = tokio::time::Instant::now() + WAIT;
    while !path.exists() {
        assert!(tokio::time::Instant::now() < deadline, "no waiting report at {}", path.display());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("JSON");
    assert_eq!(report["state"], "waiting_budget", "{report}");
    assert_eq!(report["reason"], reason.as_str(), "the exact reason the catalogue gives");
    assert_eq!((report["job_id"].as_str(), report["submitted"].as_bool()), (Some(waiting.id.as_str()), Some(false)));
    assert_eq!(report["price_rmb"], "2.50");
    assert!(report["next_step"].as_str().is_some_and(|s| s.contains("SIGHUP")), "{report}");
    use std::os::unix::fs::PermissionsExt as _;
    assert_eq!(std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777, 0o640);

    // A raise by reload sends it; the waiting report goes and the final one is in done/.
    let config = std::fs::read_to_string(&env.config_path).expect("config");
    std::fs::write(&env.config_path, config.replace("daily = 2.5", "daily = 5")).expect("write");
    reload.send(()).expect("reload");
    env.wait_all_ended(2).await;
    env.stop().await;
    assert!(!path.exists(), "the waiting report is gone once the job was submitted");
    assert_eq!(env.report("done", "second.txt")["state"], "archived");
    let leftovers: Vec<_> = std::fs::read_dir(env.inbox().join("processing")).expect("dir").flatten().collect();
    assert!(leftovers.is_empty(), "nothing is left in processing/: {leftovers:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_spend_page_shows_the_budget_a_reload_set() {
    let extra = "[defaults]\nmodel = \"viduq1-text\"\n[budget]\ndaily = 5\n";
    let mut env = Env::new(fast_sim(), "", extra).await;
    let (reload, requests) = tokio::sync::mpsc::unbounded_channel();
    let origin = env.start_serving(Some(requests)).await;
    let (status, page) = text(&format!("{origin}/spend")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("0.00 of 5.00 RMB used, 5.00 left"), "{page}");
    assert!(page.contains("monthly budget</td><td>none set"), "{page}");

    let config = std::fs::read_to_string(&env.config_path).expect("config");
    std::fs::write(&env.config_path, config.replace("daily = 5", "daily = 7.5\nmonthly = 100")).expect("write");
    reload.send(()).expect("reload");
    let page = until_page_contains(&format!("{origin}/spend"), "0.00 of 7.50 RMB used, 7.50 left").await;
    assert!(page.contains("0.00 of 100.00 RMB used"), "{page}");
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_probe_findings_are_in_the_csv_and_json_exports() {
    let clips = tempfile::tempdir().expect("tempdir");
    let clip = clips.path().join("clip.mp4");
    std::fs::copy(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/sim/clip-vidu2.mp4"), &clip).expect("clip");
    let sim = vidkeep::sim::SimConfig { clip_file: Some(clip), ..fast_sim() };
    let mut env = Env::new(sim, "", "").await;
    env.start();
    env.drop_spec("wrong.json", &json!({"model":"viduq1-text","prompt":"a fox and the wrong clip"}).to_string());
    let jobs = env.wait_all_ended(1).await;
    env.stop().await;
    assert_eq!(jobs[0].state, JobState::ArchivedWithWarnings);

    let out = env.cli(&["export", "--format", "csv"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let csv = String::from_utf8(out.stdout).expect("utf8");
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().expect("header").split(',').collect();
    let row = lines.next().expect("row");
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap_or_else(|| panic!("no {name}: {header:?}"));
    // The findings hold a comma, so the row is split by a CSV reader's rules: read the cells
    // before the quoted last one plainly.
    let (plain, last) = row.rsplit_once(",\"").expect("the findings cell is quoted");
    let cells: Vec<&str> = plain.split(',').collect();
    assert_eq!(cells[col("video_duration_s")], "4.000", "{row}");
    assert_eq!(cells[col("video_fps")], "24.000");
    assert_eq!((cells[col("video_width")], cells[col("video_height")]), ("1280", "720"));
    assert_eq!(cells[col("video_codec")], "avc1");
    assert_eq!(col("probe_findings"), header.len() - 1);
    assert_eq!(
        last.trim_end_matches('"'),
        "duration is 4.000 s, the model promises 5 s; resolution is 1280x720, the model promises 1920x1080"
    );

    let ui = serve(&env).await;
    let (_, web_csv) = text(&format!("{ui}/export.csv")).await;
    assert_eq!(web_csv, csv, "the web export is the CLI's");
    let json: Value = reqwest::get(format!("{ui}/export.json")).await.expect("json").json().await.expect("json");
    let video = json[0]["assets"].as_array().expect("assets").iter().find(|a| a["kind"] == "video").expect("video");
    assert_eq!(video["probe"]["figures"]["width"], 1280, "{video}");
    assert_eq!(video["probe"]["findings"][1], "resolution is 1280x720, the model promises 1920x1080");
    let (_, page) = text(&format!("{ui}/jobs/{}", jobs[0].id)).await;
    assert!(page.contains("resolution is 1280x720, the model promises 1920x1080"), "the job page shows it too");
}

/// Three archived jobs in two projects and two models (created a little apart), then the UI.
async fn library() -> (Env, String) {
    let mut env = Env::default().await;
    env.start();
    for (name, model, project, prompt) in [
        ("alpha.json", "viduq1-text", "wild", "an alpha fox"),
        ("beta.json", "cogvideox-3", "city", "a beta street"),
        ("gamma.json", "viduq1-text", "wild", "a gamma owl"),
    ] {
        let spec = json!({"model": model, "prompt": prompt, "vidkeep": {"project": project}});
        env.drop_spec(name, &spec.to_string());
        let n = env.jobs().len() + 1;
        env.wait_until("the spec is taken", |j| j.len() == n).await;
    }
    env.wait_all_ended(3).await;
    env.stop().await;
    let ui = serve(&env).await;
    (env, ui)
}

fn order(env: &Env, html: &str) -> Vec<String> {
    let mut found: Vec<(usize, String)> = env
        .jobs()
        .iter()
        .filter_map(|j| html.find(&format!("data-job=\"{}\"", j.id)).map(|at| (at, j.spec_name.clone())))
        .collect();
    found.sort();
    found.into_iter().map(|(_, name)| name).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_grid_sorts_counts_and_explains_and_the_job_page_leads_back_and_on() {
    let (env, ui) = library().await;
    let (_, newest) = text(&format!("{ui}/")).await;
    assert_eq!(order(&env, &newest), ["gamma.json", "beta.json", "alpha.json"]);
    let (_, oldest) = text(&format!("{ui}/?sort=oldest")).await;
    assert_eq!(order(&env, &oldest), ["alpha.json", "beta.json", "gamma.json"]);
    let (_, by_model) = text(&format!("{ui}/?sort=model")).await;
    assert_eq!(order(&env, &by_model), ["beta.json", "gamma.json", "alpha.json"]);
    let (_, by_project) = text(&format!("{ui}/?sort=project")).await;
    assert_eq!(order(&env, &by_project), ["beta.json", "gamma.json", "alpha.json"]);
    assert!(by_project.contains("<option value=\"project\" selected>"), "the control shows the order");
    let (status, _) = text(&format!("{ui}/?sort=size")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Counts beside each filter value, for the other filters in force.
    assert!(newest.contains(">wild (2)</option>") && newest.contains(">city (1)</option>"), "{newest}");
    assert!(newest.contains(">viduq1-text (2)</option>") && newest.contains(">archived (3)</option>"));
    let (_, wild) = text(&format!("{ui}/?project=wild")).await;
    assert!(wild.contains(">cogvideox-3 (0)") || !wild.contains(">cogvideox-3"), "{wild}");
    assert!(wild.contains(">viduq1-text (2)</option>") && wild.contains(">city (1)</option>"), "{wild}");

    // Past the end, an empty search, and local times with a UTC fallback.
    let (_, far) = text(&format!("{ui}/?page=99")).await;
    assert!(far.contains("Page 99 is past the end: this search has 1 page(s)") && cards(&far) == 0, "{far}");
    let (_, nothing) = text(&format!("{ui}/?q=zebra")).await;
    assert!(nothing.contains("Nothing matches “zebra”") && nothing.contains("clear the search"), "{nothing}");
    assert!(newest.contains("<time datetime=\"") && newest.contains(" UTC</time>"));
    assert!(newest.contains("alt=\"an alpha fox\""), "a cover's alt text is its prompt");

    // The job page: back to the same results, previous and next within them, sizes for people,
    // downloads beside the player.
    let beta = env.job_by_spec("beta.json");
    let (_, page) = text(&format!("{ui}/jobs/{}?project=wild&sort=oldest", env.job_by_spec("alpha.json").id)).await;
    assert!(page.contains("href=\"/?project=wild&amp;sort=oldest\" rel=\"up\">← back to results"), "{page}");
    let gamma = env.job_by_spec("gamma.json");
    assert!(page.contains(&format!("href=\"/jobs/{}?project=wild&amp;sort=oldest\" rel=\"next\"", gamma.id)), "{page}");
    assert!(!page.contains("rel=\"prev\""), "the first of the results has no previous");
    let (_, middle) = text(&format!("{ui}/jobs/{}", beta.id)).await;
    assert!(middle.contains(&format!("href=\"/jobs/{}?\" rel=\"prev\"", gamma.id)), "newest first: {middle}");
    let video = env.assets(&beta.id).into_iter().find(|a| a.kind == AssetKind::Video).expect("video");
    let size = format!("{:.0} KB", video.bytes as f64 / 1000.0);
    let player = middle.find("<video id=\"player\"").expect("player");
    let download = middle.find("download video (").expect("download link");
    assert!(download > player && download - player < 600, "the download link is beside the player");
    assert!(middle.contains(&size) || middle.contains(&format!("{:.1} KB", video.bytes as f64 / 1000.0)), "{middle}");

    // /api/* answers JSON errors.
    for (url, status) in [
        (format!("{ui}/api/jobs?state=bogus"), 400),
        (format!("{ui}/api/jobs?page=abc"), 400),
        (format!("{ui}/api/jobs/nope"), 404),
        (format!("{ui}/api/nothing-here"), 404),
    ] {
        let r = reqwest::get(&url).await.expect("api");
        assert_eq!(r.status().as_u16(), status, "{url}");
        assert!(r.headers()["content-type"].to_str().unwrap_or_default().starts_with("application/json"), "{url}");
        let body: Value = r.json().await.expect("a JSON error");
        assert!(body["error"].as_str().is_some_and(|e| !e.is_empty()), "{url}: {body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_jobs_page_says_what_to_do_next() {
    let mut sim = fast_sim();
    sim.faults.fail = 1.0;
    let mut env = Env::new(sim, "", "[defaults]\nmodel = \"viduq1-text\"\n").await;
    env.start();
    env.drop_spec("doomed.txt", "a fox the platform cannot make");
    let jobs = env.wait_all_ended(1).await;
    env.stop().await;
    assert_eq!(jobs[0].state, JobState::Failed);
    let ui = serve(&env).await;
    let (_, page) = text(&format!("{ui}/jobs/{}", jobs[0].id)).await;
    let report = env.report("failed", "doomed.txt");
    let next = report["next_step"].as_str().expect("next step");
    assert!(page.contains("What to do next: </strong>") && page.contains(next), "as the report says: {next}\n{page}");

    // In a browser: it fits 390 px, and its screenshots are the README's.
    let Some((dir, chromium)) = crate::web::browser() else { return };
    let out = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser-failed");
    std::fs::create_dir_all(&out).expect("output folder");
    let page = format!("{ui}/jobs/{}", jobs[0].id);
    let seen =
        crate::web::run_script(&dir, &chromium, "shots.mjs", &[&page, out.to_str().expect("utf8"), "failed"]).await;
    assert_eq!((seen["status1400"].as_u64(), seen["status390"].as_u64()), (Some(200), Some(200)), "{seen}");
    assert_eq!((seen["overflow1400"].as_i64(), seen["overflow390"].as_i64()), (Some(0), Some(0)), "{seen}");
    assert_eq!(seen["errors"], json!([]), "{seen}");
    crate::web::keep_screenshots(&out, &["failed-1400.png", "failed-390.png"]);
}
