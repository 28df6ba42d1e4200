//! Restarts: jobs in flight finish without a second submission; a submission cut off mid-way is
//! never sent again without a person saying so.

use serde_json::json;
use vidkeep::catalog::{Catalog, NewJob};
use vidkeep::jobs::{Change, JobState};
use vidkeep::sim::SimConfig;
use vidkeep::spec::{self, SpecContext, SpecFormat};

use crate::support::{Env, assert_archived_as_served, fast_sim};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_with_tasks_in_flight_resumes_without_paying_twice() {
    let sim = SimConfig {
        latency_min: std::time::Duration::from_millis(1500),
        latency_max: std::time::Duration::from_millis(2000),
        ..fast_sim()
    };
    let mut env = Env::new(sim, "", "[defaults]\nmodel = \"viduq1-text\"\n").await;
    env.start();
    for i in 0..4 {
        env.drop_spec(&format!("p{i}.txt"), &format!("a prompt {i}"));
    }
    env.wait_until("all four submitted", |jobs| jobs.len() == 4 && jobs.iter().all(|j| j.state == JobState::Submitted))
        .await;
    env.crash().await;
    assert_eq!(env.sim.stats().accepted, 4);

    env.start();
    let jobs = env.wait_all_ended(4).await;
    assert_archived_as_served(&env, &jobs);
    let stats = env.sim.stats();
    assert_eq!(stats.accepted, 4, "no second submission: {stats:?}");
    assert!(stats.accepted_by_request_id.values().all(|n| *n == 1));
    let catalog = Catalog::open(&env.config.catalog.path).expect("catalogue");
    for job in &jobs {
        assert_eq!(job.attempts, 1);
        assert_eq!(catalog.accepted_submissions(&job.id).expect("ledger"), 1);
    }
    env.stop().await;
}

/// Records a job for `{"model":"viduq1-text","prompt":"a fox"}` as a crash would have left it:
/// `submitting` (its POST's fate unknown), or `submitted` with `task_id`.
fn seed_job(env: &Env, id: &str, task_id: Option<&str>) -> NewJob {
    let body = json!({"model":"viduq1-text","prompt":"a fox"}).to_string();
    let defaults = serde_json::Map::new();
    let ctx = SpecContext { defaults: &defaults, spec_dir: env.inbox(), inbox: env.inbox() };
    let job = NewJob {
        id: id.to_owned(),
        spec_name: "fox.json".to_owned(),
        spec_sha256: vidkeep::archive::sha256_hex(body.as_bytes()),
        spec_format: SpecFormat::Json,
        spec: spec::parse("fox.json", body.as_bytes(), &ctx).expect("valid"),
        take: None,
    };
    let mut catalog = Catalog::open(&env.config.catalog.path).expect("catalogue");
    catalog.insert_job(&job).expect("insert");
    let request_id = format!("vk-{id}-1");
    catalog.transition(&job.id, JobState::Queued, &Change::Submitting { request_id }).expect("submitting");
    if let Some(task_id) = task_id {
        let accepted = Change::Submitted { task_id: task_id.to_owned() };
        catalog.transition(&job.id, JobState::Submitting, &accepted).expect("submitted");
    }
    job
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_found_mid_submission_becomes_uncertain_until_a_person_resolves_it() {
    let mut env = Env::default().await;
    let job = seed_job(&env, "0190aaaa-0000-7000-8000-000000000001", None);
    env.start();
    let jobs = env.wait_until("uncertain", |jobs| jobs.iter().all(|j| j.state == JobState::Uncertain)).await;
    let message = &jobs[0].error.as_ref().expect("reason").message;
    assert!(message.contains("vidkeep resolve"), "{message}");
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    assert_eq!(env.sim.stats().accepted, 0, "never resubmitted by itself");
    let listed = env.cli(&["jobs", "--state", "uncertain"]);
    // The table shows the part of the id that tells jobs apart: its last 8 characters.
    assert!(String::from_utf8_lossy(&listed.stdout).contains(&job.id[job.id.len() - 8..]));

    let resolved = env.cli(&["resolve", &job.id[..13], "--resubmit"]);
    assert!(resolved.status.success(), "{}", String::from_utf8_lossy(&resolved.stderr));
    let jobs = env.wait_all_ended(1).await;
    assert_archived_as_served(&env, &jobs);
    assert_eq!(jobs[0].attempts, 2, "the ledger shows both submissions");
    assert_eq!(env.sim.stats().accepted, 1);
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unavailable_store_holds_the_job_until_it_is_back() {
    let mut env = Env::default().await;
    env.start();
    // The store goes away: its folder is replaced by a plain file, so every write fails.
    let archive = env.archive_dir();
    let away = env.dir.path().join("archive-away");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    std::fs::rename(&archive, &away).expect("take the store away");
    std::fs::write(&archive, b"not a folder").expect("block the store");
    env.drop_spec("fox.txt", "a fox while the disk is gone");
    let jobs = env
        .wait_until("a store error on the job", |jobs| {
            jobs.len() == 1
                && jobs[0].state == JobState::Downloading
                && jobs[0].error.as_ref().is_some_and(|e| e.code == "store-unavailable")
        })
        .await;
    assert!(env.assets(&jobs[0].id).is_empty(), "nothing recorded that is not stored");
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    assert_eq!(env.jobs()[0].state, JobState::Downloading, "it waits; it does not fail");

    // The store comes back: archiving resumes by itself, with the bytes the platform served.
    std::fs::remove_file(&archive).expect("unblock");
    std::fs::rename(&away, &archive).expect("bring the store back");
    let jobs = env.wait_all_ended(1).await;
    assert_archived_as_served(&env, &jobs);
    assert_eq!(env.sim.stats().accepted, 1);
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_the_platform_no_longer_knows_fails_the_job_with_its_reason() {
    let mut env = Env::default().await;
    seed_job(&env, "0190aaaa-0000-7000-8000-000000000002", Some("20990101000000deadbeefdeadbeef"));
    env.start();
    let jobs = env.wait_all_ended(1).await;
    assert_eq!(jobs[0].state, JobState::Failed);
    let error = jobs[0].error.as_ref().expect("error");
    assert_eq!(error.code, "task-gone");
    assert!(error.message.contains("1233"), "{}", error.message);
    assert_eq!(env.sim.stats().accepted, 0, "a lost task is not submitted again by itself");
    env.stop().await;
}

/// A simulator whose videos take about two seconds to download.
fn slow_downloads() -> SimConfig {
    SimConfig { video_bytes: Some(2_000_000), download_rate: Some(1_000_000), ..fast_sim() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_lets_a_running_download_finish_within_the_grace() {
    let mut env = Env::new(slow_downloads(), "", "[defaults]\nmodel = \"viduq1-text\"\n").await;
    env.start();
    env.drop_spec("fox.txt", "a long video");
    env.wait_until("downloading", |jobs| jobs.len() == 1 && jobs[0].state == JobState::Downloading).await;
    env.stop().await; // grace 5 s in the fixture
    let jobs = env.jobs();
    assert_eq!(jobs[0].state, JobState::Archived, "the download finished before the daemon exited");
    assert_archived_as_served(&env, &jobs);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_cut_by_the_grace_leaves_nothing_and_resumes_on_the_next_start() {
    let mut env = Env::new(slow_downloads(), "", "[defaults]\nmodel = \"viduq1-text\"\n").await;
    env.config.jobs.shutdown_grace = std::time::Duration::from_millis(200);
    env.start();
    env.drop_spec("fox.txt", "a long video");
    let jobs = env.wait_until("downloading", |jobs| jobs.len() == 1 && jobs[0].state == JobState::Downloading).await;
    env.stop().await;
    assert_eq!(env.jobs()[0].state, JobState::Downloading, "interrupted, not failed");
    let video = env.assets(&jobs[0].id).into_iter().find(|a| a.kind == vidkeep::catalog::AssetKind::Video);
    assert!(video.is_none(), "a cut download is never recorded");
    let stored: Vec<_> = walk(&env.archive_dir()).into_iter().filter(|p| p.ends_with("video.mp4")).collect();
    assert!(stored.is_empty(), "no partial object under a final key: {stored:?}");

    env.start();
    let jobs = env.wait_all_ended(1).await;
    assert_archived_as_served(&env, &jobs);
    assert_eq!(env.sim.stats().accepted, 1, "resumed, not resubmitted");
    env.stop().await;
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() { out.extend(walk(&path)) } else { out.push(path) }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_resubmit_policy_submits_an_uncertain_job_once_more_by_itself() {
    let mut env = Env::default().await;
    env.config.jobs.uncertain = vidkeep::config::UncertainPolicy::Resubmit;
    seed_job(&env, "0190aaaa-0000-7000-8000-000000000003", None);
    env.start();
    let jobs = env.wait_all_ended(1).await;
    assert_archived_as_served(&env, &jobs);
    assert_eq!(jobs[0].attempts, 2, "the ledger shows the interrupted and the new submission");
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_resubmit_policy_never_pays_more_than_twice_for_lost_answers() {
    let sim = SimConfig { faults: vidkeep::sim::Faults { submit_lost: 1.0, ..Default::default() }, ..fast_sim() };
    let mut env = Env::new(sim, "", "[defaults]\nmodel = \"viduq1-text\"\n").await;
    env.config.jobs.uncertain = vidkeep::config::UncertainPolicy::Resubmit;
    env.start();
    env.drop_spec("fox.txt", "every answer is lost");
    env.wait_until("uncertain after two tries", |jobs| {
        jobs.len() == 1 && jobs[0].state == JobState::Uncertain && jobs[0].attempts == 2
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    assert_eq!(env.jobs()[0].state, JobState::Uncertain, "the second lost answer waits for a person");
    assert_eq!(env.sim.stats().accepted, 2);
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_abandon_policy_fails_an_uncertain_job() {
    let mut env = Env::default().await;
    env.config.jobs.uncertain = vidkeep::config::UncertainPolicy::Abandon;
    seed_job(&env, "0190aaaa-0000-7000-8000-000000000004", None);
    env.start();
    let jobs = env.wait_all_ended(1).await;
    assert_eq!(jobs[0].error.as_ref().map(|e| e.code.as_str()), Some("abandoned"));
    assert_eq!(env.sim.stats().accepted, 0);
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_recorded_before_its_spec_moved_is_moved_at_start_and_paid_once() {
    // What an older vidkeep (record, then move) left after a stop between the two.
    let mut env = Env::default().await;
    let body = json!({"model":"viduq1-text","prompt":"a fox"}).to_string();
    std::fs::write(env.inbox().join("fox.json"), &body).expect("spec in the inbox");
    let defaults = serde_json::Map::new();
    let ctx = SpecContext { defaults: &defaults, spec_dir: env.inbox(), inbox: env.inbox() };
    let job = NewJob {
        id: "0190aaaa-0000-7000-8000-000000000009".to_owned(),
        spec_name: "fox.json".to_owned(),
        spec_sha256: vidkeep::archive::sha256_hex(body.as_bytes()),
        spec_format: SpecFormat::Json,
        spec: spec::parse("fox.json", body.as_bytes(), &ctx).expect("valid"),
        take: None,
    };
    Catalog::open(&env.config.catalog.path).expect("catalogue").insert_job(&job).expect("insert");
    env.start();
    let jobs = env.wait_all_ended(1).await;
    assert_eq!(jobs.len(), 1, "the file in the inbox is that job's, not a new one");
    assert_eq!(jobs[0].id, job.id);
    assert_eq!(env.sim.stats().accepted, 1);
    assert!(env.inbox().join("done").join("fox.json").exists());
    env.stop().await;
}
