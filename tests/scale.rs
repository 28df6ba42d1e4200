//! Past one daemon (issue 12): what several daemons may and may not share.

use std::time::{Duration, Instant};

use vidkeep::sim::SimConfig;

use crate::support::Env;

/// Two `vidkeep run` on one SQLite catalogue used to fight over its jobs ("database is locked",
/// then "job … is archived, not downloading") and the second one's start deleted the first
/// one's uploads in flight. Now the second is refused before it touches anything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_daemon_on_one_sqlite_catalogue_is_refused_before_it_touches_anything() {
    let mut env = Env::default().await;
    env.start();
    env.drop_spec("first.txt", "a harbour at dawn");
    env.wait_all_ended(1).await;
    // An upload of the running daemon, in flight: the second start must leave it alone.
    let staging = env.archive_dir().join(".staging");
    std::fs::create_dir_all(&staging).expect("staging");
    let in_flight = staging.join("an-upload-in-flight");
    std::fs::write(&in_flight, b"half a video").expect("upload in flight");

    let mut second = std::process::Command::new(env!("CARGO_BIN_EXE_vidkeep"))
        .args(["run", "--config"])
        .arg(&env.config_path)
        .env("VIDKEEP_TEST_KEY_UNUSED", SimConfig::default().api_key)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start a second daemon");
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = second.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = second.kill();
            let out = second.wait_with_output().expect("output");
            panic!(
                "the second daemon ran beside the first: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let out = second.wait_with_output().expect("output");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(status.code(), Some(2), "could not run: {stderr}");
    assert!(stderr.contains("another vidkeep daemon"), "{stderr}");
    assert!(stderr.contains(&format!("(pid {})", std::process::id())), "names the holder: {stderr}");
    assert!(stderr.contains("catalog.sqlite"), "names the catalogue: {stderr}");
    assert!(in_flight.exists(), "the running daemon's upload is untouched");
    env.assert_daemon_alive().await;

    // Once the first stops, the catalogue is free again.
    env.stop().await;
    env.start();
    env.drop_spec("second.txt", "a lighthouse at dusk");
    env.wait_all_ended(2).await;
    env.stop().await;
}

/// Daemons of several inboxes may share one storage root: each start cleans only its own
/// staging area (and loose leftovers of older versions), and stages its uploads there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_cleans_only_its_own_staging_area() {
    let mut env = Env::default().await;
    let staging = env.archive_dir().join(".staging");
    let own = vidkeep::domain::DaemonId::for_inbox(env.inbox());
    for (folder, file) in [(own.as_str(), "left-by-my-last-stop"), ("another-daemon-0a1b2c3d", "in-flight")] {
        std::fs::create_dir_all(staging.join(folder)).expect("mkdir");
        std::fs::write(staging.join(folder).join(file), b"part of a video").expect("write");
    }
    std::fs::write(staging.join("left-by-an-older-vidkeep"), b"x").expect("write");
    env.start();
    env.drop_spec("a.txt", "a harbour at dawn");
    env.wait_all_ended(1).await;
    assert!(!staging.join(own.as_str()).join("left-by-my-last-stop").exists(), "its own leftovers go");
    assert!(!staging.join("left-by-an-older-vidkeep").exists(), "loose leftovers go");
    assert!(staging.join("another-daemon-0a1b2c3d/in-flight").exists(), "another daemon's upload stays");
    env.stop().await;
}

/// The disaster recovery the sidecars exist for: archive a mixed set (text, JSON, TOML, an
/// image-to-video with its input kept, three takes of one spec), lose the catalogue, rebuild it
/// from storage alone; `verify` passes and `export` matches the original but for the fields
/// the sidecar does not hold.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_catalogue_is_rebuilt_from_the_sidecars_in_storage() {
    let mut env = Env::default().await;
    env.start();
    for example in ["harbour-at-dawn.txt", "city-timelapse.json", "lantern-festival.toml", "lantern-first.png"] {
        env.copy_example(example);
    }
    env.copy_example("lantern-bloom.json");
    env.drop_spec("hare.json", r#"{"model":"viduq1-text","prompt":"a hare at dusk","vidkeep":{"takes":3}}"#);
    let jobs = env.wait_all_ended(7).await;
    assert!(jobs.iter().all(|j| j.state.is_archived()), "{jobs:?}");
    env.stop().await;
    let export = |env: &Env| {
        let out = env.cli(&["export"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let mut rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).expect("a JSON array of jobs");
        rows.sort_by_key(|r| r["job_id"].as_str().unwrap_or_default().to_owned());
        rows
    };
    let before = export(&env);
    assert_eq!(before.len(), 7);

    let catalog = env.config.catalog.path.clone();
    for suffix in ["", "-wal", "-shm"] {
        let mut name = catalog.clone().into_os_string();
        name.push(suffix);
        let _ = std::fs::remove_file(name);
    }
    let out = env.cli(&["catalog", "rebuild"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("rebuilt 7 job(s)"), "{stdout}");
    assert!(stdout.contains("not in sidecars"), "names what it could not restore: {stdout}");
    let again = env.cli(&["catalog", "rebuild"]);
    assert_eq!(again.status.code(), Some(2), "never over an existing catalogue");
    // A sidecar that is not one is listed and skipped; the rest still comes back (exit 1).
    let bogus = env.archive_dir().join("2026/01/01/not-a-job");
    std::fs::create_dir_all(&bogus).expect("mkdir");
    std::fs::write(bogus.join("vidkeep.json"), b"{\"vidkeep_sidecar\": 1}").expect("write");
    let other = env.dir.path().join("other.sqlite");
    let partial = env.cli(&["catalog", "rebuild", "--to", other.to_str().expect("utf-8 path")]);
    let said = String::from_utf8_lossy(&partial.stdout);
    assert_eq!(partial.status.code(), Some(1), "{said}");
    assert!(said.contains("SKIPPED  2026/01/01/not-a-job/vidkeep.json: not a vidkeep sidecar"), "{said}");
    assert!(said.contains("rebuilt 7 job(s)") && said.contains("1 skipped"), "{said}");
    std::fs::remove_dir_all(&bogus).expect("rm");

    let verify = env.cli(&["verify"]);
    let said = String::from_utf8_lossy(&verify.stdout);
    assert!(verify.status.success(), "{said}");
    let objects: usize = before.iter().map(|r| r["assets"].as_array().map_or(0, Vec::len)).sum();
    assert!(objects >= 7, "a video each, and covers");
    assert!(said.contains(&format!("verified {objects} object(s): {objects} ok")), "{said}");

    let after = export(&env);
    // Not in the sidecar: the archive time is the sidecar's (written just before the commit).
    let strip = |rows: &[serde_json::Value]| -> Vec<serde_json::Value> {
        rows.iter()
            .map(|r| {
                let mut r = r.clone();
                r.as_object_mut().expect("object").remove("archived_at");
                r
            })
            .collect()
    };
    assert_eq!(strip(&after), strip(&before));
    for (a, b) in after.iter().zip(&before) {
        let at = |r: &serde_json::Value| vidkeep::time::parse_date(r["archived_at"].as_str().expect("time"));
        let (a, b) = (at(a).expect("rfc 3339"), at(b).expect("rfc 3339"));
        assert!((0..5_000).contains(&(b - a)), "the sidecar's time is just before the commit: {a} {b}");
    }
    // The rebuilt catalogue still knows what was paid for: the same spec is not paid again.
    env.start();
    env.drop_spec("again.txt", &std::fs::read_to_string("examples/specs/harbour-at-dawn.txt").expect("example"));
    let report = env.inbox().join("done/again.txt.report.json");
    let deadline = Instant::now() + crate::support::WAIT;
    while !report.exists() {
        assert!(Instant::now() < deadline, "no report for the spec dropped again");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let report = env.report("done", "again.txt");
    let harbour = before.iter().find(|r| r["spec"] == "harbour-at-dawn.txt").expect("harbour");
    assert_eq!(report["existing_job"], harbour["job_id"], "already paid for: answered by the rebuilt job, {report}");
    assert_eq!(env.jobs().len(), 7, "no new job");
    env.stop().await;
}
