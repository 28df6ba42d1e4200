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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_found_mid_submission_becomes_uncertain_until_a_person_resolves_it() {
    let mut env = Env::default().await;
    // The catalogue as a crash left it: the job was marked `submitting`, the POST's fate unknown.
    let body = json!({"model":"viduq1-text","prompt":"a fox"}).to_string();
    let defaults = serde_json::Map::new();
    let ctx = SpecContext { defaults: &defaults, spec_dir: env.inbox(), inbox: env.inbox() };
    let parsed = spec::parse("fox.json", body.as_bytes(), &ctx).expect("valid");
    let job = NewJob {
        id: "0190aaaa-0000-7000-8000-000000000001".to_owned(),
        spec_name: "fox.json".to_owned(),
        spec_sha256: vidkeep::archive::sha256_hex(body.as_bytes()),
        spec_format: SpecFormat::Json,
        spec: parsed,
    };
    {
        let mut catalog = Catalog::open(&env.config.catalog.path).expect("catalogue");
        catalog.insert_job(&job).expect("insert");
        catalog
            .transition(&job.id, JobState::Queued, &Change::Submitting { request_id: "vk-lost-1".into() })
            .expect("submitting");
    }
    env.start();
    let jobs = env.wait_until("uncertain", |jobs| jobs.iter().all(|j| j.state == JobState::Uncertain)).await;
    let message = &jobs[0].error.as_ref().expect("reason").message;
    assert!(message.contains("vidkeep resolve"), "{message}");
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    assert_eq!(env.sim.stats().accepted, 0, "never resubmitted by itself");
    let listed = env.cli(&["jobs", "--state", "uncertain"]);
    assert!(String::from_utf8_lossy(&listed.stdout).contains(&job.id));

    let resolved = env.cli(&["resolve", &job.id[..13], "--resubmit"]);
    assert!(resolved.status.success(), "{}", String::from_utf8_lossy(&resolved.stderr));
    let jobs = env.wait_all_ended(1).await;
    assert_archived_as_served(&env, &jobs);
    assert_eq!(jobs[0].attempts, 2, "the ledger shows both submissions");
    assert_eq!(env.sim.stats().accepted, 1);
    env.stop().await;
}
