//! The account's in-flight limits hold, as counted by the platform itself.

use serde_json::json;
use vidkeep::sim::SimConfig;

use crate::support::{Env, assert_archived_as_served, fast_sim, metrics};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_in_flight_is_never_exceeded_globally_or_per_model() {
    let sim = SimConfig { model_limit: 20, ..fast_sim() };
    let mut env = Env::new(sim, "max_in_flight = 3\n[api.max_in_flight_per_model]\nviduq1-text = 1\n", "").await;
    env.start();
    for i in 0..5 {
        env.drop_spec(
            &format!("text-{i}.json"),
            &json!({"model":"viduq1-text","prompt":format!("fox {i}")}).to_string(),
        );
        env.drop_spec(
            &format!("cog-{i}.json"),
            &json!({"model":"cogvideox-3","prompt":format!("city {i}")}).to_string(),
        );
    }
    let jobs = env.wait_all_ended(10).await;
    assert_archived_as_served(&env, &jobs);
    let stats = env.sim.stats();
    assert_eq!(stats.accepted, 10);
    assert!(stats.max_in_flight <= 3, "global limit: {stats:?}");
    assert!(stats.max_in_flight >= 2, "the limit was actually used: {stats:?}");
    assert_eq!(stats.max_in_flight_by_model.get("viduq1-text"), Some(&1), "per-model limit: {stats:?}");
    assert!(stats.refused.is_empty(), "never ran into the platform's own limit: {:?}", stats.refused);
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_platforms_1302_lowers_the_limit_and_every_job_still_finishes_once() {
    // The account really allows 2 per model; vidkeep is configured for 6 and learns from 1302.
    let sim = SimConfig { model_limit: 2, ..fast_sim() };
    let mut env = Env::new(sim, "max_in_flight = 6\n", "[defaults]\nmodel = \"viduq1-text\"\n").await;
    let url = env.start_serving(None).await;
    for i in 0..6 {
        env.drop_spec(&format!("p{i}.txt"), &format!("prompt number {i}"));
    }
    let jobs = env.wait_all_ended(6).await;
    assert_archived_as_served(&env, &jobs);
    let stats = env.sim.stats();
    assert_eq!(stats.accepted, 6, "each job accepted once: {stats:?}");
    assert!(stats.refused.get("1302").copied().unwrap_or(0) >= 1, "the limit was hit: {stats:?}");
    assert!(stats.accepted_by_request_id.values().all(|n| *n == 1));
    // What it learnt is shown: the model's limit now, beside the tasks it has in flight.
    let metrics = reqwest::get(format!("{url}/metrics")).await.expect("metrics").text().await.expect("body");
    assert!(metrics.lines().any(|l| l == "vidkeep_model_limit{model=\"viduq1-text\"} 2"), "{metrics}");
    assert!(metrics.lines().any(|l| l == "vidkeep_in_flight{model=\"viduq1-text\"} 0"), "{metrics}");
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exhausted_balance_stops_submission_and_says_why() {
    // 2.5 RMB per Vidu Q1 call: a balance of 5 RMB pays for two.
    let sim = SimConfig { balance_fen: Some(500), ..fast_sim() };
    let mut env = Env::new(sim, "max_in_flight = 1\n", "[defaults]\nmodel = \"viduq1-text\"\n").await;
    let ui = env.start_serving(None).await;
    for i in 0..3 {
        env.drop_spec(&format!("p{i}.txt"), &format!("prompt number {i}"));
    }
    let jobs = env
        .wait_until("two archived and one refused for balance", |jobs| {
            jobs.len() == 3
                && jobs.iter().filter(|j| j.state == vidkeep::jobs::JobState::Archived).count() == 2
                && jobs.iter().any(|j| j.error.as_ref().is_some_and(|e| e.code == "platform-1113"))
        })
        .await;
    let waiting = jobs.iter().find(|j| j.state == vidkeep::jobs::JobState::Queued).expect("one waits");
    let message = &waiting.error.as_ref().expect("error").message;
    assert!(message.contains("top it up"), "{message}");
    assert_eq!(env.sim.stats().accepted, 2);
    // Its page says why it waits and what to do, as `show` does, not a bare "queued".
    let page = reqwest::get(format!("{ui}/jobs/{}", waiting.id)).await.expect("page").text().await.expect("body");
    assert!(page.contains("platform-1113") && page.contains("top it up"), "the refusal: {page}");
    let next = page.split("What to do next: ").nth(1).unwrap_or_default();
    assert!(next.contains("by itself") && !next.contains("fix the spec"), "what to do next: {page}");
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fixing_the_key_and_restarting_resumes_at_once() {
    let mut env = Env::new(fast_sim(), "", "[defaults]\nmodel = \"viduq1-text\"\n").await;
    env.config.jobs.account_pause = std::time::Duration::from_secs(3600);
    env.start_with_key("wrong-id.wrong-secret");
    env.drop_spec("fox.txt", "a fox");
    env.wait_until("refused for its key", |jobs| {
        jobs.len() == 1 && jobs[0].error.as_ref().is_some_and(|e| e.code.starts_with("platform-100"))
    })
    .await;
    env.stop().await;
    // The key is fixed and the daemon restarted: the job does not wait out the hour's pause.
    env.start();
    let jobs = env.wait_all_ended(1).await;
    assert!(jobs[0].state.is_archived(), "{:?} {:?}", jobs[0].state, jobs[0].error);
    assert_eq!(env.sim.stats().accepted, 1);
    env.stop().await;
}

/// The engine reads its running jobs from the catalogue when a step of its own may have changed
/// them or a poll it scheduled comes due, not on every turn of its loop (a turn follows every
/// finished step, so reading each time made the CPU per job grow with the jobs in flight).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engine_reads_its_running_jobs_when_they_can_have_changed_not_after_every_poll() {
    let second = std::time::Duration::from_secs(1);
    let sim = SimConfig { latency_min: second, latency_max: second, model_limit: 50, ..fast_sim() };
    let mut env = Env::new(sim, "max_in_flight = 24\n", "").await;
    let url = env.start_serving(None).await;
    for i in 0..24 {
        env.drop_spec(
            &format!("fox-{i}.json"),
            &json!({"model":"viduq1-text","prompt":format!("fox {i}")}).to_string(),
        );
    }
    let jobs = env.wait_all_ended(24).await;
    assert_archived_as_served(&env, &jobs);
    let polls = env.sim.stats().polls as f64;
    let reads = metrics(&url).await.get("vidkeep_engine_reads_total{list=\"submitted\"}").copied().unwrap_or(0.0);
    assert!(polls >= 24.0 * 5.0, "each task was polled about ten times (every 100 ms for 1 s): {polls}");
    assert!(reads >= 1.0, "the submitted jobs were read");
    assert!(reads * 3.0 <= polls, "{reads} reads of the submitted jobs for {polls} polls");
    env.stop().await;
}
