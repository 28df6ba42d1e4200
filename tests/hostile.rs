//! Hostile input in the inbox: names that are not text, files swapped or grown under the daemon,
//! folders a group member broke. Nothing may cost a second charge, a loop or the daemon's memory.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::fs::PermissionsExt as _;
use std::time::Duration;

use serde_json::json;
use vidkeep::jobs::JobState;

use crate::support::{Env, metrics};

/// A Latin-1 client writes `café.txt` as the bytes `caf\xe9.txt`: one job, one charge, and the
/// file ends in `done/` under a name that is text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spec_whose_name_is_not_utf8_is_paid_for_once() {
    let mut env = Env::default().await;
    let raw = env.inbox().join(OsStr::from_bytes(b"caf\xe9.txt"));
    std::fs::write(&raw, "a quiet cafe at dawn").expect("write");
    env.start();
    let jobs = env.wait_all_ended(1).await;
    assert_eq!(jobs[0].state, JobState::Archived, "{:?}", jobs[0].error);
    assert_eq!(jobs[0].spec_name, "caf%E9.txt", "the catalogue names the file in text, escaped");
    // Several rescans later (every 1 s here) it is still one job and one charge.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    assert_eq!(env.jobs().len(), 1, "one file, one job");
    assert_eq!(env.sim.stats().accepted, 1, "one file, one charge");
    assert!(!raw.exists(), "the file left the inbox");
    assert!(env.inbox().join("done").join("caf%E9.txt").exists(), "moved to done/ under a text name");
    assert_eq!(env.report("done", "caf%E9.txt")["state"], "archived");
    env.stop().await;
}

/// A name that cannot be moved at all (its folder is broken) is tried once, reported once, and
/// never becomes a job.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spec_that_cannot_be_moved_is_not_retried_or_paid() {
    let mut env = Env::default().await;
    let url = env.start_serving(None).await;
    // A group member replaces processing/ and failed/ with plain files, once the daemon made them.
    for _ in 0..200 {
        if env.inbox().join("failed").is_dir() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    for folder in ["processing", "failed"] {
        let path = env.inbox().join(folder);
        std::fs::remove_dir(&path).expect("rmdir");
        std::fs::write(&path, "not a folder").expect("write");
    }
    env.drop_spec("good.txt", "a lighthouse in a storm");
    env.drop_spec("bad.json", "{\"model\": ");
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(env.jobs().is_empty(), "no job without a place for its spec: {:?}", env.jobs());
    assert_eq!(env.sim.stats().accepted, 0);
    assert!(env.rejections().len() <= 1, "a rejection is recorded at most once: {}", env.rejections().len());
    let m = metrics(&url).await;
    assert_eq!(m.get("vidkeep_intake_paused").copied(), Some(1.0), "paused intake shows in /metrics: {m:?}");
    let ready = reqwest::get(format!("{url}/readyz")).await.expect("readyz");
    let status = ready.status().as_u16();
    let body = ready.text().await.expect("body");
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("processing"), "readyz names the broken folder: {body}");
    // Repaired: intake resumes by itself, and the good spec is paid for once.
    for folder in ["processing", "failed"] {
        let path = env.inbox().join(folder);
        std::fs::remove_file(&path).expect("rm");
        std::fs::create_dir(&path).expect("mkdir");
    }
    let jobs = env.wait_all_ended(1).await;
    assert_eq!(jobs[0].state, JobState::Archived);
    env.wait_rejections(1).await;
    assert_eq!(env.sim.stats().accepted, 1);
    assert_eq!(metrics(&url).await.get("vidkeep_intake_paused").copied(), Some(0.0));
    env.stop().await;
}

/// The daemon's own reads of the inbox must not wake the watcher: an idle daemon scans on its
/// timer (every 1 s here), not in a loop.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_daemon_scans_only_on_its_timer() {
    let mut env = Env::default().await;
    let url = env.start_serving(None).await;
    env.drop_spec("one.txt", "a fox in the snow");
    env.wait_all_ended(1).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = metrics(&url).await["vidkeep_intake_scans_total"];
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = metrics(&url).await["vidkeep_intake_scans_total"];
    assert!(after - before <= 6.0, "{} scans in 3 s of idling", after - before);
    env.stop().await;
}

/// A 245-byte name: its report name would pass NAME_MAX. The spec is archived and its report
/// written under a shortened name; nothing stays in processing/.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_spec_name_is_archived_with_a_report() {
    let mut env = Env::default().await;
    let name = format!("{}.txt", "n".repeat(241));
    assert_eq!(name.len(), 245);
    env.drop_spec(&name, "a very long name");
    env.drop_spec(&format!("{}.json", "b".repeat(240)), "{\"model\": ");
    env.start();
    let jobs = env.wait_all_ended(1).await;
    assert_eq!(jobs[0].state, JobState::Archived);
    env.wait_rejections(1).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(env.rejections().len(), 1, "rejected once");
    let listing = |folder: &str| -> Vec<String> {
        std::fs::read_dir(env.inbox().join(folder))
            .expect("read_dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect()
    };
    assert!(listing("processing").is_empty(), "nothing left in processing/: {:?}", listing("processing"));
    let done = listing("done");
    assert_eq!(done.len(), 2, "spec and report in done/: {done:?}");
    assert!(done.iter().all(|n| n.len() <= 255));
    assert!(done.iter().any(|n| n.ends_with(".report.json")), "{done:?}");
    let failed = listing("failed");
    assert_eq!(failed.len(), 2, "spec and report in failed/: {failed:?}");
    env.stop().await;
}

/// A 2 KB spec naming one 10 MB image 200 times is refused by counting, before any image is read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spec_naming_an_image_many_times_is_refused_before_reading() {
    let mut env = Env::default().await;
    // The image does not even exist: a count check that comes first never looks for it.
    let urls: Vec<String> = (0..200).map(|_| "big.png".to_owned()).collect();
    env.drop_spec("many.json", &json!({"model":"vidu2-reference","prompt":"x","image_url":urls}).to_string());
    env.start();
    let rejections = env.wait_rejections(1).await;
    assert_eq!(rejections[0].error_code, "spec-invalid", "{rejections:?}");
    assert!(rejections[0].error_message.contains("at most 3"), "{}", rejections[0].error_message);
    env.stop().await;
}

/// The folders only vidkeep writes are not writable by the group; reports are group-readable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbox_folders_and_reports_have_safe_modes() {
    let mut env = Env::default().await;
    env.drop_spec("fox.txt", "a fox");
    env.drop_spec("bad.json", "{");
    env.start();
    env.wait_all_ended(1).await;
    env.wait_rejections(1).await;
    for folder in ["processing", "done", "failed"] {
        let mode = std::fs::metadata(env.inbox().join(folder)).expect("stat").permissions().mode() & 0o7777;
        assert_eq!(mode & 0o022, 0, "{folder}/ is not group- or world-writable: {mode:o}");
        assert_eq!(mode & 0o050, 0o050, "{folder}/ is group-readable: {mode:o}");
    }
    for report in ["done/fox.txt.report.json", "failed/bad.json.report.json"] {
        let mode = std::fs::metadata(env.inbox().join(report)).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode, 0o640, "{report}: {mode:o}");
    }
    env.stop().await;
}

const CHUNKS: [&str; 3] = ["a lighthouse ", "in a storm ", "at midnight"];

/// A writer that keeps the file open and appends three chunks 1 s apart, with a quiet period of
/// 300 ms: the file is not complete until its writer closes it, so one job with the whole prompt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spec_held_open_by_a_slow_writer_is_taken_once_whole() {
    use std::io::Write as _;
    let mut env = Env::default().await;
    env.start();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut file = std::fs::File::create(env.inbox().join("slow.txt")).expect("create");
    for chunk in CHUNKS {
        file.write_all(chunk.as_bytes()).expect("write");
        file.flush().expect("flush");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    drop(file);
    let jobs = env.wait_all_ended(1).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(env.jobs().len(), 1);
    assert_eq!(jobs[0].prompt.as_deref(), Some(CHUNKS.concat().as_str()), "the whole prompt, not its first chunk");
    assert_eq!(env.sim.stats().accepted, 1);
    env.stop().await;
}

/// A writer that rewrites the whole file three times, 1 s apart, each time longer: the first
/// version may be taken (it was quiet for longer than the quiet period), but each longer version
/// is a loud rejection naming that job, never a second charge.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spec_rewritten_longer_after_it_was_taken_is_not_paid_again() {
    let mut env = Env::default().await;
    env.start();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut text = String::new();
    for chunk in CHUNKS {
        text.push_str(chunk);
        std::fs::write(env.inbox().join("slow.txt"), &text).expect("write");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let jobs = env.wait_all_ended(1).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(env.jobs().len(), 1, "{jobs:?}");
    assert_eq!(env.sim.stats().accepted, 1, "one charge");
    let rejections = env.rejections();
    assert!(rejections.iter().all(|r| r.error_code == "spec-rewritten"), "{rejections:?}");
    if let Some(r) = rejections.first() {
        assert!(r.error_message.contains(&jobs[0].id), "names the job already made: {}", r.error_message);
    }
    env.stop().await;
}
