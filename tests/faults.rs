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
    let sim = SimConfig { faults, seed: 42, ..fast_sim() };
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
