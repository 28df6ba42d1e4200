//! Expiry awareness and alarms that reach people: results archived soonest-expiry first, the
//! expiry warning in every channel, `result-expired` as money lost, and events delivered from
//! the catalogue's outbox to a webhook that fails at first and to a program's stdin.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use serde_json::Value;
use vidkeep::catalog::Catalog;
use vidkeep::config::UncertainPolicy;
use vidkeep::jobs::{Change, JobState};
use vidkeep::sim::{Faults, SimConfig};
use vidkeep::time::{Clock, now_ms};

use crate::support::{Env, fast_sim};

const HOUR: i64 = 3_600_000;

/// What the receiver does with the next requests before it accepts.
#[derive(Debug, Clone, Copy)]
enum Answer {
    /// HTTP 500.
    Fail,
    /// Answers only after the client's timeout has passed.
    Hang,
}

/// A local webhook receiver: follows its script, then accepts and records each body.
#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<Value>>>,
    attempts: Arc<AtomicUsize>,
    script: Arc<Mutex<VecDeque<Answer>>>,
    down: Arc<AtomicBool>,
}

async fn hook(State(r): State<Receiver>, body: String) -> StatusCode {
    r.attempts.fetch_add(1, Ordering::SeqCst);
    if r.down.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    let next = r.script.lock().expect("script").pop_front();
    match next {
        Some(Answer::Fail) => StatusCode::INTERNAL_SERVER_ERROR,
        Some(Answer::Hang) => {
            tokio::time::sleep(Duration::from_secs(3)).await;
            StatusCode::OK
        }
        None => {
            r.got.lock().expect("got").push(serde_json::from_str(&body).expect("the event is JSON"));
            StatusCode::OK
        }
    }
}

impl Receiver {
    async fn start(script: &[Answer]) -> (Receiver, String) {
        let r = Receiver::default();
        r.script.lock().expect("script").extend(script.iter().copied());
        let app = axum::Router::new().route("/hook", axum::routing::post(hook)).with_state(r.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind receiver");
        let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        (r, url)
    }

    fn got(&self) -> Vec<Value> {
        self.got.lock().expect("got").clone()
    }

    async fn wait_for(&self, what: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + crate::support::WAIT;
        loop {
            let got = self.got();
            if done(&got) {
                return got;
            }
            assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}; received {got:#?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn notify_config(webhook: &str, extra: &str) -> String {
    format!(
        "public_url = \"http://vk.example:8780\"\n[defaults]\nmodel = \"viduq1-text\"\n\
         [notify]\nwebhook = \"{webhook}\"\ntimeout = \"300ms\"\nretry_base = \"50ms\"\nretry_max = \"200ms\"\n{extra}\n\
         [alerts]\ncheck_interval = \"1s\"\n"
    )
}

/// The events received, by job, in arrival order.
fn by_job(got: &[Value]) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for e in got {
        let job = e["job_id"].as_str().expect("job id").to_owned();
        out.entry(job).or_default().push(e["event"].as_str().expect("event").to_owned());
    }
    out
}

async fn get(url: &str) -> String {
    reqwest::get(url).await.expect("GET").text().await.expect("body")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_results_are_archived_soonest_expiry_first() {
    let sim =
        SimConfig { latency_min: Duration::from_millis(1500), latency_max: Duration::from_millis(2000), ..fast_sim() };
    let mut env = Env::new(sim, "", "[defaults]\nmodel = \"viduq1-text\"\n").await;
    env.start();
    for i in 0..3 {
        env.drop_spec(&format!("p{i}.txt"), &format!("a prompt {i}"));
    }
    env.wait_until("all three submitted", |jobs| {
        jobs.len() == 3 && jobs.iter().all(|j| j.state == JobState::Submitted)
    })
    .await;
    env.crash().await;
    // The tasks finish while the daemon is down; their results became ready at different times.
    let jobs = env.jobs();
    for _ in 0..100 {
        if jobs.iter().all(|j| env.sim.task(j.task_id.as_deref().expect("task")).is_some_and(|t| t.status == "SUCCESS"))
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let now = now_ms();
    let expiry: BTreeMap<&str, i64> =
        [("p0.txt", now + 20 * HOUR), ("p1.txt", now + 5 * HOUR), ("p2.txt", now + 12 * HOUR)].into_iter().collect();
    {
        let mut catalog = Catalog::open(&env.config.catalog.path).expect("catalogue");
        for job in &jobs {
            let task = env.sim.task(job.task_id.as_deref().expect("task")).expect("sim task");
            let ready = Change::ResultReady {
                video_url: task.video_url.clone(),
                cover_url: Some(task.cover_url.clone()),
                result_json: "{}".to_owned(),
                expires_at: Some(expiry[job.spec_name.as_str()]),
            };
            catalog.transition(&job.id, JobState::Submitted, &ready).expect("result ready");
        }
    }
    env.config.jobs.download_concurrency = 1;
    env.start();
    let mut ended = env.wait_all_ended(3).await;
    assert!(ended.iter().all(|j| j.state == JobState::Archived), "{ended:?}");
    for job in &ended {
        assert_eq!(job.expires_at, Some(expiry[job.spec_name.as_str()]), "a restart keeps each result's expiry");
    }
    ended.sort_by_key(|j| j.archived_at);
    let order: Vec<&str> = ended.iter().map(|j| j.spec_name.as_str()).collect();
    assert_eq!(order, ["p1.txt", "p2.txt", "p0.txt"], "one slot: the result expiring first goes first");
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_reach_a_failing_webhook_once_each_in_order_and_without_the_key() {
    let (receiver, hook) = Receiver::start(&[Answer::Fail, Answer::Hang, Answer::Fail]).await;
    // Every answer is lost: each job becomes uncertain (possibly charged), then the abandon
    // policy fails it: two events per job, in that order.
    let sim = SimConfig { faults: Faults { submit_lost: 1.0, ..Faults::default() }, ..fast_sim() };
    let mut env = Env::new(sim, "", &notify_config(&hook, "")).await;
    env.config.jobs.uncertain = UncertainPolicy::Abandon;
    env.start();
    env.drop_spec("a.txt", "a lighthouse");
    env.drop_spec("b.txt", "a harbour");
    let jobs = env.wait_all_ended(2).await;
    let got = receiver.wait_for("four events", |got| got.len() >= 4).await;
    // Retries are over (the receiver accepts now): nothing more may come.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let got_later = receiver.got();
    assert_eq!(got_later.len(), 4, "exactly one delivery per transition: {got_later:#?}");
    assert!(receiver.attempts.load(Ordering::SeqCst) >= 7, "the failed and timed-out attempts were retried");
    let per_job = by_job(&got);
    assert_eq!(per_job.len(), 2);
    for events in per_job.values() {
        assert_eq!(events, &["uncertain", "failed"], "in order per job");
    }
    let key = SimConfig::default().api_key;
    for (e, job) in got.iter().zip(std::iter::repeat(&jobs)) {
        let text = e.to_string();
        assert!(!text.contains(&key), "the API key never leaves: {text}");
        let id = e["job_id"].as_str().expect("id");
        let job = job.iter().find(|j| j.id == id).expect("a known job");
        assert_eq!(e["spec"], job.spec_name.as_str());
        assert_eq!(e["model"], "viduq1-text");
        assert_eq!(e["cost_fen"], 250, "{e}");
        assert_eq!(e["cost"], "2.50 RMB");
        assert_eq!(e["url"], format!("http://vk.example:8780/jobs/{id}"));
        assert!(e["event_id"].as_str().is_some_and(|s| !s.is_empty()));
        if e["event"] == "failed" {
            assert_eq!(e["state"], "failed");
            assert_eq!(e["error_code"], "abandoned");
        }
    }
    let catalog = Catalog::open_read_only(&env.config.catalog.path).expect("catalogue");
    for job in &jobs {
        let rows = catalog.outbox_of(&job.id).expect("outbox");
        assert!(rows.iter().all(|(_, status)| status == "delivered"), "{rows:?}");
    }
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_mid_outbox_delivers_the_rest() {
    let (receiver, hook) = Receiver::start(&[]).await;
    receiver.down.store(true, Ordering::SeqCst);
    let mut env = Env::new(fast_sim(), "", &notify_config(&hook, "max_attempts = 1000")).await;
    env.start();
    env.drop_spec("a.txt", "a lighthouse");
    env.drop_spec("b.txt", "a harbour");
    let jobs = env.wait_all_ended(2).await;
    let tried = || {
        let catalog = Catalog::open_read_only(&env.config.catalog.path).expect("catalogue");
        jobs.iter().all(|j| catalog.outbox_of(&j.id).expect("outbox").iter().any(|(row, _)| row.attempts > 0))
    };
    for _ in 0..100 {
        if tried() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(tried(), "both events were tried while the receiver was down");
    env.stop().await;
    assert!(receiver.got().is_empty());

    receiver.down.store(false, Ordering::SeqCst);
    env.start();
    let got = receiver.wait_for("both events after the restart", |got| got.len() >= 2).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(receiver.got().len(), 2, "delivered once each: {got:#?}");
    for events in by_job(&got).values() {
        assert_eq!(events, &["archived"]);
    }
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_sink_gets_each_event_on_stdin() {
    let out = tempfile::tempdir().expect("tempdir");
    let file = out.path().join("events.jsonl");
    let extra = format!(
        "[defaults]\nmodel = \"viduq1-text\"\n[notify]\ncommand = [\"tee\", \"-a\", \"{}\"]\ntimeout = \"5s\"\n\
         retry_base = \"50ms\"\nretry_max = \"200ms\"\n",
        file.display()
    );
    let mut env = Env::new(fast_sim(), "", &extra).await;
    env.start();
    env.drop_spec("a.txt", "a lighthouse");
    let jobs = env.wait_all_ended(1).await;
    let mut lines = Vec::new();
    for _ in 0..100 {
        lines = std::fs::read_to_string(&file).unwrap_or_default().lines().map(str::to_owned).collect::<Vec<_>>();
        if !lines.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(lines.len(), 1, "{lines:?}");
    let event: Value = serde_json::from_str(&lines[0]).expect("JSON on stdin");
    assert_eq!(event["event"], "archived");
    assert_eq!(event["job_id"], jobs[0].id.as_str());
    assert_eq!(event["state"], "archived");
    assert!(event["url"].is_null(), "no [http] public_url, no link");
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_result_about_to_expire_raises_the_alarm_everywhere() {
    let (receiver, hook) = Receiver::start(&[]).await;
    let mut env = Env::new(fast_sim(), "", &notify_config(&hook, "")).await;
    let clock = Clock::manual(now_ms());
    let url = env.start_serving_with(None, Some(clock.clone())).await;
    // The store goes away, so the result waits in downloading.
    let archive = env.archive_dir();
    let away = env.dir.path().join("archive-away");
    tokio::time::sleep(Duration::from_millis(300)).await;
    std::fs::rename(&archive, &away).expect("take the store away");
    std::fs::write(&archive, b"not a folder").expect("block the store");
    env.drop_spec("late.txt", "a video <b>nobody</b> fetched");
    let jobs = env
        .wait_until("a result waiting on the store", |jobs| {
            jobs.len() == 1 && jobs[0].error.as_ref().is_some_and(|e| e.code == "store-unavailable")
        })
        .await;
    let id = jobs[0].id.clone();
    assert!(get(&format!("{url}/metrics")).await.contains("vidkeep_results_expiring 0"));
    assert!(!get(&format!("{url}/")).await.contains("about to expire"));

    clock.advance(Duration::from_secs(19 * 3600));
    let got = receiver.wait_for("the expiry warning", |got| got.iter().any(|e| e["event"] == "expiry_warning")).await;
    let warning = got.iter().find(|e| e["event"] == "expiry_warning").expect("warning");
    assert_eq!(warning["job_id"], id.as_str());
    assert_eq!(warning["spec"], "late.txt");
    assert!(warning["expires_at"].as_str().is_some());
    let metrics = get(&format!("{url}/metrics")).await;
    assert!(metrics.contains("vidkeep_results_expiring 1"), "{metrics}");
    for page in ["/", "/spend", &format!("/jobs/{id}")] {
        let html = get(&format!("{url}{page}")).await;
        assert!(html.contains("about to expire") && html.contains("late.txt"), "banner on {page}: {html}");
        assert!(html.contains("expires in 5 h"), "{html}");
    }
    // Each check logs again, but the warning event goes out once per job.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(receiver.got().iter().filter(|e| e["event"] == "expiry_warning").count(), 1);

    // The store comes back in time: the result is kept, and the alarm ends.
    std::fs::remove_file(&archive).expect("unblock");
    std::fs::rename(&away, &archive).expect("bring the store back");
    env.wait_all_ended(1).await;
    let got = receiver.wait_for("the archived event", |got| got.iter().any(|e| e["event"] == "archived")).await;
    assert_eq!(by_job(&got)[&id], ["expiry_warning", "archived"]);
    assert!(get(&format!("{url}/metrics")).await.contains("vidkeep_results_expiring 0"));
    assert!(!get(&format!("{url}/")).await.contains("about to expire"));
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paid_result_past_its_expiry_fails_as_result_expired_and_counts_as_lost() {
    let (receiver, hook) = Receiver::start(&[]).await;
    let sim = SimConfig { faults: Faults { download_gone: 1.0, ..Faults::default() }, ..fast_sim() };
    let mut env = Env::new(sim, "", &notify_config(&hook, "")).await;
    // A day and an hour later by the daemon's clock: the link's day is over when it fails.
    let clock = Clock::manual(now_ms() + 25 * HOUR);
    env.start_serving_with(None, Some(clock)).await;
    env.drop_spec("late.txt", "a video nobody fetched in time");
    let jobs = env.wait_all_ended(1).await;
    assert_eq!(jobs[0].state, JobState::Failed);
    assert_eq!(jobs[0].error.as_ref().map(|e| e.code.as_str()), Some("result-expired"));
    let got = receiver.wait_for("the failed event", |got| got.iter().any(|e| e["event"] == "failed")).await;
    let failed = got.iter().find(|e| e["event"] == "failed").expect("failed");
    assert_eq!(failed["error_code"], "result-expired");
    assert_eq!(failed["cost"], "2.50 RMB");
    env.stop().await;
    let out = env.cli(&["spend", "--format", "json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let spend: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(spend["total"]["lost"], "2.50", "{spend}");
    assert_eq!(spend["total"]["charged"], "2.50");
    let report = env.report("failed", "late.txt");
    assert_eq!(report["cost"]["lost_rmb"], "2.50");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_abandoning_an_uncertain_job_from_the_cli_is_told_to_the_sinks() {
    let out = tempfile::tempdir().expect("tempdir");
    let file = out.path().join("events.jsonl");
    let extra = format!(
        "[notify]\ncommand = [\"tee\", \"-a\", \"{}\"]\ntimeout = \"5s\"\nretry_base = \"50ms\"\nretry_max = \"200ms\"\n",
        file.display()
    );
    let mut env = Env::new(fast_sim(), "", &extra).await;
    // A job a stop left mid-submission: the start makes it uncertain.
    let body = serde_json::json!({"model":"viduq1-text","prompt":"a fox"}).to_string();
    let defaults = serde_json::Map::new();
    let ctx = vidkeep::spec::SpecContext { defaults: &defaults, spec_dir: env.inbox(), inbox: env.inbox() };
    let job = vidkeep::catalog::NewJob {
        id: "0190aaaa-0000-7000-8000-00000000000a".to_owned(),
        spec_name: "fox.json".to_owned(),
        spec_sha256: vidkeep::archive::sha256_hex(body.as_bytes()),
        spec_format: vidkeep::spec::SpecFormat::Json,
        spec: vidkeep::spec::parse("fox.json", body.as_bytes(), &ctx).expect("valid"),
        take: None,
    };
    let mut catalog = Catalog::open(&env.config.catalog.path).expect("catalogue");
    catalog.insert_job(&job).expect("insert");
    let submitting = Change::Submitting { request_id: format!("vk-{}-1", job.id) };
    catalog.transition(&job.id, JobState::Queued, &submitting).expect("submitting");
    drop(catalog);
    env.start();
    let events = |n: usize| {
        let file = file.clone();
        async move {
            for _ in 0..100 {
                let lines: Vec<Value> = std::fs::read_to_string(&file)
                    .unwrap_or_default()
                    .lines()
                    .filter_map(|l| serde_json::from_str(l).ok())
                    .collect();
                if lines.len() >= n {
                    return lines;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            panic!("fewer than {n} events reached the command");
        }
    };
    assert_eq!(events(1).await[0]["event"], "uncertain");
    let resolved = env.cli(&["resolve", &job.id, "--abandon"]);
    assert!(resolved.status.success(), "{}", String::from_utf8_lossy(&resolved.stderr));
    let seen = events(2).await;
    assert_eq!(seen[1]["event"], "failed", "{seen:?}");
    assert_eq!(seen[1]["job_id"], job.id.as_str());
    env.stop().await;
}
