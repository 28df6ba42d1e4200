//! Catalogue safety and the scrubber: old catalogues migrate, backups are consistent copies of
//! a live catalogue, and verification is recorded, sampled and scheduled.

use std::path::Path;
use std::time::Duration;

use serde_json::json;
use vidkeep::catalog::{AssetKind, Catalog, CheckSelection, JobFilter};
use vidkeep::jobs::JobState;

use crate::support::{Env, fast_sim};

#[test]
fn a_schema_1_catalogue_opens_and_migrates_keeping_its_jobs() {
    // Made by `vidkeep demo` with schema version 1, before migration 2 existed.
    let original = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/catalog-v1.sqlite");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("catalog.sqlite");
    std::fs::copy(&original, &path).expect("copy old catalogue");
    assert!(Catalog::open_read_only(&path).is_err(), "a reader refuses the old schema");

    let mut catalog = Catalog::open(&path).expect("old catalogue opens and migrates");
    assert_eq!(catalog.schema_version().expect("version"), 4, "0001-0003 and 0005_probe (0004 is the ledger branch's)");
    let jobs = catalog.jobs(&JobFilter::default()).expect("jobs");
    assert_eq!(jobs.len(), 6);
    assert!(jobs.iter().all(|j| j.state == JobState::Archived), "{jobs:?}");
    let assets = catalog.all_assets().expect("assets");
    assert_eq!(assets.len(), 12);
    let never_checked = catalog.assets_to_check(&CheckSelection::default()).expect("to check");
    assert_eq!(never_checked.len(), 12, "old assets have never been checked");
    catalog.record_check(&assets[0], vidkeep::catalog::CheckResult::Ok, None).expect("new table works");
    let search = JobFilter { text: Some("harbour".to_owned()), ..JobFilter::default() };
    let found = catalog.jobs(&search).expect("search");
    assert_eq!(found.len(), 1, "jobs from before the search index exist are indexed");
    assert_eq!(found[0].spec_name, "harbour-at-dawn.txt");
    drop(catalog);
    assert!(Catalog::open_read_only(&path).is_ok(), "migrated: readers can open it");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_copies_the_live_catalogue_consistently() {
    let mut env = Env::default().await;
    env.start();
    for i in 0..3 {
        env.drop_spec(&format!("p{i}.txt"), &format!("a prompt {i}"));
    }
    let ended = env.wait_all_ended(3).await;
    // More work under way while the copy is made.
    env.drop_spec("late.json", &json!({"model":"viduq1-text","prompt":"while backing up"}).to_string());
    let dest = env.dir.path().join("backups/catalog-copy.sqlite");
    std::fs::create_dir_all(dest.parent().expect("parent")).expect("mkdir");
    let out = env.cli(&["backup", dest.to_str().expect("utf8")]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let copy = Catalog::open_read_only(&dest).expect("the copy is a current catalogue");
    let copied = copy.jobs(&JobFilter::default()).expect("jobs");
    assert!(copied.len() >= 3, "{copied:?}");
    for job in &ended {
        let c = copied.iter().find(|c| c.id == job.id).expect("archived job in the copy");
        assert_eq!(c.state, JobState::Archived);
        assert_eq!(copy.assets(&job.id).expect("assets").len(), 2);
    }
    assert!(!dest.with_extension("sqlite-wal").exists(), "the copy is self-contained");
    let leftovers: Vec<_> = std::fs::read_dir(dest.parent().expect("dir")).expect("ls").collect();
    assert_eq!(leftovers.len(), 1, "no partial file left beside the copy");
    env.wait_all_ended(4).await;
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_samples_by_age_and_records_every_check() {
    let mut env = Env::default().await;
    env.start();
    for i in 0..4 {
        env.drop_spec(&format!("p{i}.txt"), &format!("a prompt {i}"));
    }
    let jobs = env.wait_all_ended(4).await;
    env.stop().await;
    let catalog = Catalog::open_read_only(&env.config.catalog.path).expect("catalogue");
    let keys: Vec<String> = catalog.all_assets().expect("assets").into_iter().map(|a| a.key).collect();
    assert_eq!(keys.len(), 8);

    // A quarter, least recently checked first: two runs of 25 % read four different objects.
    for run in 1..=2 {
        let out = env.cli(&["verify", "--sample", "25"]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{stdout}");
        assert!(stdout.contains("verified 2 object(s)"), "run {run}: {stdout}");
    }
    let checked: Vec<&String> = keys.iter().filter(|k| !catalog.checks(k).expect("checks").is_empty()).collect();
    assert_eq!(checked.len(), 4, "the second sample took the next unchecked objects");

    // Nothing was stored after tomorrow; everything since yesterday.
    let tomorrow = vidkeep::time::rfc3339(vidkeep::time::now_ms() + 86_400_000);
    let out = env.cli(&["verify", "--since", &tomorrow]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("verified 0 object(s)"));
    let yesterday = vidkeep::time::rfc3339(vidkeep::time::now_ms() - 86_400_000);
    let out = env.cli(&["verify", "--since", &yesterday[..10]]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("verified 8 object(s)"));
    assert!(keys.iter().all(|k| !catalog.checks(k).expect("checks").is_empty()), "all checked now");

    // A bad argument is refused before anything runs.
    assert_eq!(env.cli(&["verify", "--sample", "0"]).status.code(), Some(2));

    // A flipped byte is recorded as a mismatch, with its time.
    let video = env.assets(&jobs[0].id).into_iter().find(|a| a.kind == AssetKind::Video).expect("video");
    let path = env.archive_dir().join(&video.key);
    let mut bytes = std::fs::read(&path).expect("read");
    bytes[500] ^= 0x20;
    std::fs::write(&path, &bytes).expect("write");
    assert_eq!(env.cli(&["verify"]).status.code(), Some(1));
    let history = catalog.checks(&video.key).expect("checks");
    assert_eq!(history.last().map(|(_, r)| r.as_str()), Some("mismatch"), "{history:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_scrubs_on_schedule_and_records_corruption() {
    let mut env = Env::new(fast_sim(), "", "[verify]\nevery = \"1s\"\n[defaults]\nmodel = \"viduq1-text\"\n").await;
    env.start();
    env.drop_spec("fox.txt", "a fox");
    let jobs = env.wait_all_ended(1).await;
    let cover = env.assets(&jobs[0].id).into_iter().find(|a| a.kind == AssetKind::Cover).expect("cover");
    std::fs::remove_file(env.archive_dir().join(&cover.key)).expect("lose the cover");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let catalog = Catalog::open_read_only(&env.config.catalog.path).expect("catalogue");
        let history = catalog.checks(&cover.key).expect("checks");
        if history.last().is_some_and(|(_, r)| r == "missing") {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no scheduled check found the loss: {history:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    env.stop().await;
}
