//! A misbehaving platform: errors on submit and poll, failed tasks, cut downloads, unknown statuses.

use vidkeep::jobs::JobState;
use vidkeep::sim::{Faults, SimConfig};

use crate::support::{Env, assert_archived_as_served, fast_sim};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_errors_are_retried_and_nothing_is_submitted_twice() {
    let faults = Faults {
        submit_5xx: 0.25,
        submit_1305: 0.25,
        poll_5xx: 0.3,
        download_reset: 0.3,
        unknown_status: 0.3,
        ..Faults::default()
    };
    let sim = SimConfig { faults, seed: Some(42), ..fast_sim() };
    let mut env = Env::new(sim, "max_in_flight = 4\n", "[defaults]\nmodel = \"viduq1-text\"\n").await;
    env.start();
    for i in 0..8 {
        env.drop_spec(&format!("p{i}.txt"), &format!("a prompt {i}"));
    }
    let jobs = env.wait_all_ended(8).await;
    assert_archived_as_served(&env, &jobs);
    let stats = env.sim.stats();
    assert_eq!(stats.accepted, 8, "{stats:?}");
    assert!(stats.refused.values().sum::<u64>() > 0, "faults were injected: {stats:?}");
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_task_fails_the_job_with_a_report() {
    let sim = SimConfig { faults: Faults { fail: 1.0, ..Faults::default() }, ..fast_sim() };
    let mut env = Env::new(sim, "", "[defaults]\nmodel = \"viduq1-text\"\n").await;
    env.start();
    env.drop_spec("doomed.txt", "this task will fail");
    let jobs = env.wait_all_ended(1).await;
    assert_eq!(jobs[0].state, JobState::Failed);
    assert_eq!(jobs[0].error.as_ref().map(|e| e.code.as_str()), Some("task-failed"));
    let report = env.report("failed", "doomed.txt");
    assert_eq!(report["state"], "failed");
    assert!(report["error"]["message"].as_str().unwrap_or_default().contains("FAIL"));
    assert!(report["task_id"].is_string());
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_and_truncated_downloads_resume_with_range_requests() {
    let faults = Faults { download_reset: 0.4, download_truncate: 0.4, ..Faults::default() };
    let sim = SimConfig { faults, seed: Some(11), ..fast_sim() };
    let mut env = Env::new(sim, "", "[defaults]\nmodel = \"viduq1-text\"\n").await;
    env.start();
    for i in 0..4 {
        env.drop_spec(&format!("p{i}.txt"), &format!("a prompt {i}"));
    }
    let jobs = env.wait_all_ended(4).await;
    assert_archived_as_served(&env, &jobs);
    let stats = env.sim.stats();
    assert!(stats.ranged_downloads > 0, "broken bodies were resumed with Range requests: {stats:?}");
    assert_eq!(stats.accepted, 4);
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_links_are_refreshed_from_the_platform_then_archived() {
    let faults = Faults { download_gone: 0.6, ..Faults::default() };
    let sim = SimConfig { faults, fresh_links: true, seed: Some(5), ..fast_sim() };
    let mut env = Env::new(sim, "", "[defaults]\nmodel = \"viduq1-text\"\n").await;
    env.start();
    for i in 0..3 {
        env.drop_spec(&format!("p{i}.txt"), &format!("a prompt {i}"));
    }
    let jobs = env.wait_all_ended(3).await;
    assert_archived_as_served(&env, &jobs);
    let catalog = vidkeep::catalog::Catalog::open_read_only(&env.config.catalog.path).expect("catalogue");
    let refreshed = jobs
        .iter()
        .flat_map(|j| catalog.events(&j.id).expect("events"))
        .filter(|e| e.note.as_deref().is_some_and(|n| n.contains("fresh")))
        .count();
    assert!(refreshed > 0, "at least one gone link was replaced by a fresh one");
    for job in &jobs {
        let (ready, expires) = (job.result_at.expect("result time"), job.expires_at.expect("expiry"));
        assert_eq!(expires - ready, vidkeep::catalog::RESULT_URL_LIFETIME_MS, "fresh links keep the first expiry");
    }
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_result_gone_for_good_fails_as_result_expired_after_asking_again() {
    let sim = SimConfig { faults: Faults { download_gone: 1.0, ..Faults::default() }, ..fast_sim() };
    let mut env = Env::new(sim, "", "[defaults]\nmodel = \"viduq1-text\"\n").await;
    env.start();
    env.drop_spec("late.txt", "a video nobody fetched in time");
    let jobs = env.wait_all_ended(1).await;
    assert_eq!(jobs[0].state, JobState::Failed);
    assert_eq!(jobs[0].error.as_ref().map(|e| e.code.as_str()), Some("result-expired"));
    let report = env.report("failed", "late.txt");
    assert_eq!(report["error"]["code"], "result-expired");
    assert_eq!(report["cost"]["lost_rmb"], "2.50", "paid and nothing kept: {report}");
    assert!(report["error"]["message"].as_str().unwrap_or_default().contains("expired"));
    // Each "gone" was followed by asking async-result again before giving up.
    assert!(env.sim.stats().polls >= 2 + 3, "{:?}", env.sim.stats());
    assert_eq!(env.sim.stats().accepted, 1, "nothing was submitted again");
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_echoed_in_another_case_is_the_same_model() {
    let sim = SimConfig { faults: Faults { model_case: 1.0, ..Faults::default() }, ..fast_sim() };
    let mut env = Env::new(sim, "", "[defaults]\nmodel = \"cogvideox-flash\"\n").await;
    env.start();
    env.drop_spec("flash.txt", "a lantern at night");
    let jobs = env.wait_all_ended(1).await;
    assert_archived_as_served(&env, &jobs);
    let answer: serde_json::Value =
        serde_json::from_str(jobs[0].result_json.as_deref().expect("result")).expect("json");
    assert_eq!(answer["model"], "CogVideoX-Flash", "the platform's case is kept in the record");
    env.stop().await;
}
