//! Several daemons on one account (issue 12): three built binaries share one PostgreSQL
//! catalogue, one S3 bucket (moto) and one simulated platform with a per-model limit. Specs are
//! dropped into their three inboxes while daemons are SIGKILLed and restarted at seeded random
//! moments; one stays down past its lease, and the others must take over its paid jobs.
//!
//! Nothing may be paid twice, the account's in-flight limit and daily budget hold across the
//! daemons, every successful task is archived by some daemon with the bytes served, and nothing
//! is left in staging. Replay with `VIDKEEP_CHAOS_SEED=<seed> cargo test --test it scale_out`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures::TryStreamExt as _;
use object_store::ObjectStoreExt as _;
use object_store::path::Path as Key;
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use vidkeep::catalog::{JobRecord, SpecPlace};
use vidkeep::domain::DaemonId;
use vidkeep::jobs::JobState;
use vidkeep::sim::SimConfig;
use vidkeep::store::{STAGING, Store};

use crate::support::s3::Moto;
use crate::support::{Env, assets_as_served, pg};

const DAEMONS: usize = 3;
/// The account's limit, configured on every daemon: counted across all of them (each daemon
/// alone would send three, nine in all).
const MAX_IN_FLIGHT: usize = 3;
/// The platform refuses (1302) a third viduq1-text task in flight; cogvideox-3 has room.
const SIM_TEXT_LIMIT: usize = 2;
const SPECS_PER_DAEMON: usize = 9;
/// A daily budget of 40 RMB, less than the 27 specs cost (14 viduq1-text at 2.50, 13 cogvideox-3).
const BUDGET_FEN: u64 = 4_000;
const LEASE: &str = "2s";
const SETTLE: Duration = Duration::from_secs(240);

/// One daemon: its config (its own inbox) and, while it runs, its process.
struct Daemon {
    config: PathBuf,
    inbox: PathBuf,
    log_dir: PathBuf,
    child: Option<Child>,
    runs: usize,
}

impl Daemon {
    fn start(&mut self) {
        assert!(self.child.is_none(), "already running");
        let log = self.log_dir.join(format!("daemon-{}.log", self.runs));
        self.runs += 1;
        let file = std::fs::File::create(&log).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_vidkeep"))
            .args(["run", "--config"])
            .arg(&self.config)
            .env("VIDKEEP_TEST_KEY_UNUSED", SimConfig::default().api_key)
            .env("VIDKEEP_LOG", "info")
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("start vidkeep run");
        self.child = Some(child);
    }

    /// SIGKILL: only what PostgreSQL had committed survives.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("SIGKILL");
            child.wait().expect("reap");
        }
    }

    /// SIGTERM, and the exit code must be 0.
    fn stop(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        let pid = child.id().to_string();
        assert!(Command::new("kill").args(["-TERM", &pid]).status().expect("kill").success());
        let status = child.wait().expect("wait");
        assert!(status.success(), "SIGTERM must drain and exit 0, got {status}:\n{}", self.tail());
    }

    fn id(&self) -> DaemonId {
        DaemonId::for_inbox(&self.inbox)
    }

    fn tail(&self) -> String {
        let log = self.log_dir.join(format!("daemon-{}.log", self.runs.saturating_sub(1)));
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill();
    }
}

fn seed() -> u64 {
    match std::env::var("VIDKEEP_CHAOS_SEED") {
        Ok(s) => s.parse().expect("VIDKEEP_CHAOS_SEED is a number"),
        Err(_) => rand::random(),
    }
}

/// Runs `q` on the test database, off the async workers.
fn count(url: &str, q: &str, owner: &str) -> i64 {
    let (url, q, owner) = (url.to_owned(), q.to_owned(), owner.to_owned());
    pg::off_runtime(move || pg::connect(&url).query_one(q.as_str(), &[&owner]).expect("query").get(0))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_daemons_on_one_account_share_limits_budget_and_paid_jobs_through_kills() {
    let seed = seed();
    println!("scale-out seed: {seed} (replay with VIDKEEP_CHAOS_SEED={seed})");
    let mut rng = StdRng::seed_from_u64(seed);
    let Some(moto) = Moto::start().await else { return };
    moto.create_bucket("shared").await;
    let sim = SimConfig {
        seed: Some(seed),
        latency_min: Duration::from_millis(800),
        latency_max: Duration::from_millis(2500),
        model_limit: 10,
        model_limits: BTreeMap::from([("viduq1-text".to_owned(), SIM_TEXT_LIMIT)]),
        ..SimConfig::default()
    };
    let limits = format!("max_in_flight = {MAX_IN_FLIGHT}\n");
    let extra = format!("[defaults]\nmodel = \"viduq1-text\"\n[budget]\ndaily = \"{}\"\n", BUDGET_FEN as f64 / 100.0);
    let storage = moto.storage_toml("s3://shared/archive");
    let Some(env) = Env::on_postgres_with(sim, &limits, &extra, LEASE, &storage).await else { return };
    let url = env.pg.as_ref().map(|db| db.url.clone()).expect("a database");
    let base = std::fs::read_to_string(&env.config_path).expect("config");
    let mut daemons: Vec<Daemon> = (0..DAEMONS)
        .map(|k| {
            let inbox = env.dir.path().join(format!("inbox-{k}"));
            std::fs::create_dir_all(&inbox).expect("inbox");
            let config = env.dir.path().join(format!("vidkeep-{k}.toml"));
            let text = base.replacen("dir = \"inbox\"", &format!("dir = \"inbox-{k}\""), 1);
            assert_ne!(text, base, "the test config names its inbox");
            std::fs::write(&config, text).expect("config");
            Daemon { config, inbox, log_dir: env.dir.path().to_owned(), child: None, runs: 0 }
        })
        .collect();
    for d in &mut daemons {
        d.start();
    }
    let drop_specs = |daemon: &Daemon, k: usize, from: usize, to: usize| {
        for i in from..to {
            let model = if (k + i) % 2 == 0 { "viduq1-text" } else { "cogvideox-3" };
            let body = serde_json::json!({"model": model, "prompt": format!("a lighthouse, daemon {k}, take {i}")});
            let name = format!("d{k}-{i:02}.json");
            let tmp = daemon.inbox.join(format!(".{name}.tmp"));
            std::fs::write(&tmp, body.to_string()).expect("spec");
            std::fs::rename(&tmp, daemon.inbox.join(&name)).expect("spec");
        }
    };
    let half = SPECS_PER_DAEMON / 2;
    for (k, d) in daemons.iter().enumerate() {
        drop_specs(d, k, 0, half);
    }

    // Random kills and restarts while the first half runs.
    for round in 0..4 {
        tokio::time::sleep(Duration::from_millis(rng.random_range(300..1500))).await;
        let k = rng.random_range(0..DAEMONS);
        daemons[k].kill();
        tokio::time::sleep(Duration::from_millis(rng.random_range(100..800))).await;
        daemons[k].start();
        println!("round {round}: killed and restarted daemon {k}");
    }

    // One daemon goes down with paid tasks in flight and stays down past its lease.
    let victim = rng.random_range(0..DAEMONS);
    let victim_id = daemons[victim].id().to_string();
    let in_flight_of = |owner: &str| {
        count(&url, "SELECT COUNT(*) FROM jobs WHERE owner = $1 AND state IN ('submitted', 'downloading')", owner)
    };
    // Its second half first, so it has work whenever the account's slots let it submit.
    drop_specs(&daemons[victim], victim, half, SPECS_PER_DAEMON);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    while in_flight_of(&victim_id) == 0 {
        assert!(tokio::time::Instant::now() < deadline, "seed {seed}: daemon {victim} never had a task in flight");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    daemons[victim].kill();
    let left = in_flight_of(&victim_id);
    println!("daemon {victim} killed with {left} paid task(s) in flight; it stays down past its lease");
    for (k, d) in daemons.iter().enumerate().filter(|(k, _)| *k != victim) {
        drop_specs(d, k, half, SPECS_PER_DAEMON);
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while in_flight_of(&victim_id) > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "seed {seed}: no daemon took over the paid jobs of daemon {victim} after its lease ran out"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let taken = count(
        &url,
        "SELECT COUNT(*) FROM job_events WHERE note LIKE 'taken over by daemon %' || $1 || '%'",
        &victim_id,
    );
    assert!(taken >= 1, "seed {seed}: the take-over is on record");
    daemons[victim].start();

    // Settle: every job archived, failed by the platform, uncertain, or waiting for budget; and
    // every spec file of a finished job put away by the daemon whose inbox it came from.
    let total = DAEMONS * SPECS_PER_DAEMON;
    let deadline = tokio::time::Instant::now() + SETTLE;
    let jobs = loop {
        let jobs = env.jobs();
        let settled = |j: &JobRecord| match j.state {
            JobState::Archived | JobState::ArchivedWithWarnings | JobState::Failed => {
                matches!(j.spec_place, SpecPlace::Done | SpecPlace::Failed)
            }
            JobState::Uncertain | JobState::WaitingBudget => true,
            _ => false,
        };
        if jobs.len() == total && jobs.iter().all(settled) {
            break jobs;
        }
        for d in &mut daemons {
            if let Some(child) = d.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!("seed {seed}: a daemon exited ({status}):\n{}", d.tail());
                }
            }
        }
        if tokio::time::Instant::now() > deadline {
            let states: Vec<String> =
                jobs.iter().map(|j| format!("{} {} {:?}", j.spec_name, j.state, j.error)).collect();
            panic!("seed {seed}: not settled after {SETTLE:?}: {states:#?}");
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    for d in &mut daemons {
        d.stop();
    }

    let stats = env.sim.stats();
    let mut by_state: BTreeMap<String, usize> = BTreeMap::new();
    for job in &jobs {
        *by_state.entry(job.state.to_string()).or_default() += 1;
    }
    println!(
        "seed {seed}: {by_state:?}; platform accepted {}, refused {:?}, most in flight {}, spent {} fen",
        stats.accepted, stats.refused, stats.max_in_flight, stats.spent_fen
    );

    // Nothing paid twice: one task per job at most, one per request id.
    let mut tasks_per_job: BTreeMap<String, usize> = BTreeMap::new();
    for task in env.sim.tasks() {
        let job = task.request_id.strip_prefix("vk-").and_then(|r| r.rsplit_once('-')).map(|(job, _)| job.to_owned());
        *tasks_per_job.entry(job.expect("every request id is vidkeep's")).or_default() += 1;
    }
    assert!(tasks_per_job.values().all(|n| *n == 1), "seed {seed}: a job was paid twice: {tasks_per_job:?}");
    assert!(stats.accepted_by_request_id.values().all(|n| *n == 1));

    // The account's limit held across the three daemons (the platform saw more only by tasks whose
    // answer no daemon had), and so did the daily budget (it counts possibly-charged submissions).
    let uncertain = jobs.iter().filter(|j| j.state == JobState::Uncertain).count();
    assert!(
        stats.max_in_flight <= MAX_IN_FLIGHT + uncertain,
        "seed {seed}: the platform saw {} in flight, the account allows {MAX_IN_FLIGHT}",
        stats.max_in_flight
    );
    assert!(stats.spent_fen <= BUDGET_FEN, "seed {seed}: {} fen spent, budget {BUDGET_FEN}", stats.spent_fen);
    let waiting = jobs.iter().filter(|j| j.state == JobState::WaitingBudget).count();
    assert!(waiting >= 1, "seed {seed}: the budget stopped what it could not pay for: {by_state:?}");

    // Every successful task archived by some daemon, with the bytes served, and the jobs of
    // every uncertain or failed one accounted for.
    let store = Store::open(&env.config.storage).expect("the bucket");
    for job in &jobs {
        match job.state {
            JobState::Archived => assert_stored_as_served(&env, &store, job).await,
            JobState::Failed => assert_eq!(job.error.as_ref().map(|e| e.code.as_str()), Some("task-failed")),
            JobState::Uncertain => {
                let code = job.error.as_ref().map(|e| e.code.as_str());
                assert!(
                    matches!(code, Some("submit-interrupted" | "daemon-lost" | "submit-answer-lost")),
                    "seed {seed}: {} uncertain for {code:?}",
                    job.spec_name
                );
            }
            _ => {}
        }
    }
    for task in env.sim.tasks().iter().filter(|t| t.status == "SUCCESS") {
        let job = jobs.iter().find(|j| j.task_id.as_deref() == Some(task.id.as_str()));
        let job = job.unwrap_or_else(|| panic!("seed {seed}: task {} succeeded and no job knows it", task.id));
        assert!(
            job.state == JobState::Archived || job.state == JobState::Uncertain,
            "seed {seed}: {} ended {} though its task succeeded",
            job.spec_name,
            job.state
        );
    }
    let staging: Vec<_> = store.backend().list(Some(&Key::from(STAGING))).try_collect().await.expect("list");
    assert!(staging.is_empty(), "seed {seed}: staging left in the bucket: {staging:?}");

    let verify = env.cli(&["verify"]);
    assert!(verify.status.success(), "seed {seed}: verify: {}", String::from_utf8_lossy(&verify.stdout));
    drop(moto);
}

/// The archived job's objects hash to what the simulator served for its task.
async fn assert_stored_as_served(env: &Env, store: &Store, job: &JobRecord) {
    for (asset, sha) in assets_as_served(env, job) {
        let bytes =
            store.backend().get(&Key::from(asset.key.as_str())).await.expect("get").bytes().await.expect("body");
        assert_eq!(vidkeep::archive::sha256_hex(&bytes), sha, "bytes in the bucket at {}", asset.key);
    }
}
