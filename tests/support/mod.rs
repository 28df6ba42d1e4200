//! The test fixture: a temp folder with an inbox, a local store and a SQLite catalogue, the
//! platform simulator on a loopback port, and the real daemon running in-process.

#![allow(dead_code)]

pub mod pg;
pub mod s3;

use std::path::{Path, PathBuf};
use std::time::Duration;

use tempfile::TempDir;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use vidkeep::catalog::{Asset, Catalog, JobFilter, JobRecord, Rejection, SpecPlace};
use vidkeep::config::Config;
use vidkeep::daemon::DaemonError;
use vidkeep::jobs::JobState;
use vidkeep::secret::Secret;
use vidkeep::sim::{self, SimConfig, SimHandle};

/// How long a test waits for the daemon to reach a state before failing.
pub const WAIT: Duration = Duration::from_secs(60);

/// A simulator config with short latencies for tests.
pub fn fast_sim() -> SimConfig {
    SimConfig {
        latency_min: Duration::from_millis(200),
        latency_max: Duration::from_millis(500),
        seed: Some(7),
        ..SimConfig::default()
    }
}

pub struct Env {
    pub dir: TempDir,
    pub sim: SimHandle,
    pub config: Config,
    pub config_path: PathBuf,
    daemon: Option<(CancellationToken, JoinHandle<Result<(), DaemonError>>)>,
    /// The PostgreSQL database of an environment made by [`Env::on_postgres`], dropped with it.
    pub pg: Option<pg::TestDb>,
}

impl Env {
    /// A fresh environment; `api_extra` is added to `[api]`, `extra` appended to the config
    /// (it must not repeat a section written here).
    pub async fn new(sim_config: SimConfig, api_extra: &str, extra: &str) -> Env {
        Env::with_quiet(sim_config, api_extra, extra, "300ms").await
    }

    /// As [`Env::new`], with the inbox's quiet period.
    pub async fn with_quiet(sim_config: SimConfig, api_extra: &str, extra: &str, quiet: &str) -> Env {
        Env::build(sim_config, api_extra, extra, quiet, "url = \"archive\"\n", None).await
    }

    /// As [`Env::new`], with `storage` as the body of the `[storage]` section (e.g. an S3 bucket).
    pub async fn with_storage(sim_config: SimConfig, extra: &str, storage: &str) -> Env {
        Env::build(sim_config, "", extra, "300ms", storage, None).await
    }

    /// As [`Env::new`], the catalogue a fresh PostgreSQL database (`[catalog] url`, leases of
    /// `lease`); `None` when this machine has no test server (never under `CI=true`).
    pub async fn on_postgres(sim_config: SimConfig, extra: &str, lease: &str) -> Option<Env> {
        Env::on_postgres_with(sim_config, "", extra, lease, "url = \"archive\"\n").await
    }

    /// As [`Env::on_postgres`], with `api_extra` added to `[api]` and `storage` as the body of
    /// `[storage]`.
    pub async fn on_postgres_with(
        sim_config: SimConfig,
        api_extra: &str,
        extra: &str,
        lease: &str,
        storage: &str,
    ) -> Option<Env> {
        let db = pg::off_runtime(pg::TestDb::new)?;
        let catalog = format!("url = \"{}\"\nlease = \"{lease}\"\n", db.url);
        let mut env = Env::build(sim_config, api_extra, extra, "300ms", storage, Some(&catalog)).await;
        env.pg = Some(db);
        Some(env)
    }

    async fn build(
        sim_config: SimConfig,
        api_extra: &str,
        extra: &str,
        quiet: &str,
        storage: &str,
        catalog: Option<&str>,
    ) -> Env {
        let catalog = catalog.unwrap_or("path = \"catalog.sqlite\"\n");
        init_logs();
        let dir = tempfile::tempdir().expect("tempdir");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let sim = sim::start(sim_config, listener).await.expect("simulator");
        let config_path = dir.path().join("vidkeep.toml");
        let text = format!(
            "[api]\nbase_url = \"{}\"\napi_key_env = \"VIDKEEP_TEST_KEY_UNUSED\"\npoll_interval = \"100ms\"\nrequest_timeout = \"5s\"\n{api_extra}\n\
             [watch]\ndir = \"inbox\"\nquiet_period = \"{quiet}\"\nrescan_interval = \"1s\"\n\
             [storage]\n{storage}\n[archive]\nallowed_networks = [\"127.0.0.1\"]\n[catalog]\n{catalog}\
             [jobs]\nretry_base = \"50ms\"\nretry_max = \"500ms\"\naccount_pause = \"2s\"\nshutdown_grace = \"5s\"\n\
             [http]\nlisten = \"127.0.0.1:0\"\n{extra}\n",
            sim.base_url()
        );
        std::fs::write(&config_path, text).expect("write config");
        let config = Config::load(&config_path).expect("test config loads");
        std::fs::create_dir_all(&config.watch.dir).expect("inbox");
        Env { dir, sim, config, config_path, daemon: None, pg: None }
    }

    /// The default environment.
    pub async fn default() -> Env {
        Env::new(fast_sim(), "", "[defaults]\nmodel = \"viduq1-text\"\n").await
    }

    pub fn inbox(&self) -> &Path {
        &self.config.watch.dir
    }

    pub fn archive_dir(&self) -> PathBuf {
        self.dir.path().join("archive")
    }

    /// Starts the daemon in-process.
    pub fn start(&mut self) {
        self.start_with_key(&SimConfig::default().api_key);
    }

    /// Starts the daemon in-process with `key` as its API key.
    pub fn start_with_key(&mut self, key: &str) {
        assert!(self.daemon.is_none(), "daemon already running");
        let cancel = CancellationToken::new();
        let key = Secret::new(key.to_owned());
        let handle = tokio::spawn(vidkeep::daemon::run(self.config.clone(), key, cancel.clone()));
        self.daemon = Some((cancel, handle));
    }

    /// Starts the daemon in-process with the local store flushing through `durability`.
    pub fn start_with_durability(&mut self, durability: std::sync::Arc<dyn vidkeep::store::Durability>) {
        assert!(self.daemon.is_none(), "daemon already running");
        let cancel = CancellationToken::new();
        let key = Secret::new(SimConfig::default().api_key);
        let options = vidkeep::daemon::Options { durability: Some(durability), ..vidkeep::daemon::Options::default() };
        let handle = tokio::spawn(vidkeep::daemon::run_with(self.config.clone(), key, cancel.clone(), options));
        self.daemon = Some((cancel, handle));
    }

    /// Starts the daemon in-process with its HTTP server on a free loopback port, and returns
    /// the server's base URL; `reload` receives reload requests when given.
    pub async fn start_serving(&mut self, reload: Option<tokio::sync::mpsc::UnboundedReceiver<()>>) -> String {
        self.start_serving_with(reload, None).await
    }

    /// As [`Env::start_serving`], judging result expiry by `clock` when given.
    pub async fn start_serving_with(
        &mut self,
        reload: Option<tokio::sync::mpsc::UnboundedReceiver<()>>,
        clock: Option<vidkeep::time::Clock>,
    ) -> String {
        assert!(self.daemon.is_none(), "daemon already running");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind http");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let cancel = CancellationToken::new();
        let key = Secret::new(SimConfig::default().api_key);
        let options = vidkeep::daemon::Options {
            config_path: Some(self.config_path.clone()),
            reload,
            http_listener: Some(listener),
            clock,
            ..vidkeep::daemon::Options::default()
        };
        let handle = tokio::spawn(vidkeep::daemon::run_with(self.config.clone(), key, cancel.clone(), options));
        self.daemon = Some((cancel, handle));
        url
    }

    /// Asks the daemon to stop and waits for it; it must exit cleanly.
    pub async fn stop(&mut self) {
        let (cancel, handle) = self.daemon.take().expect("daemon running");
        cancel.cancel();
        handle.await.expect("daemon task").expect("daemon exits cleanly");
    }

    /// Kills the daemon's task without letting it finish anything (the catalogue keeps only
    /// committed transactions, as after SIGKILL).
    pub async fn crash(&mut self) {
        let (_cancel, handle) = self.daemon.take().expect("daemon running");
        handle.abort();
        let _ = handle.await;
    }

    /// Fails the test at once, with the daemon's error, if the daemon stopped by itself.
    pub async fn assert_daemon_alive(&mut self) {
        if self.daemon.as_ref().is_some_and(|(_, handle)| handle.is_finished()) {
            let (_, handle) = self.daemon.take().expect("daemon");
            panic!("the daemon stopped by itself: {:?}", handle.await);
        }
    }

    /// Drops a spec the careful way: write `name.part`, then rename into place.
    pub fn drop_spec(&self, name: &str, contents: &str) {
        let part = self.inbox().join(format!("{name}.part"));
        std::fs::write(&part, contents).expect("write spec");
        std::fs::rename(&part, self.inbox().join(name)).expect("rename spec");
    }

    /// Copies a file from examples/specs into the inbox.
    pub fn copy_example(&self, name: &str) {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/specs").join(name);
        std::fs::copy(src, self.inbox().join(name)).expect("copy example");
    }

    /// Reads the catalogue as a script beside the daemon would: a read-only connection, on a
    /// thread that may block. The daemon and the simulator run on this test's async workers, so
    /// a SQLite wait on a worker would stall them too (tokio's LIFO slot cannot be stolen).
    fn read<R>(&self, f: impl FnOnce(&Catalog) -> R) -> R {
        let place = &self.config.catalog;
        tokio::task::block_in_place(|| {
            let reader = Catalog::open_config_read_only(place).or_else(|_| {
                // Not created or not migrated yet: the writer's open waits for the daemon's
                // migration (or does it), then a reader can start.
                drop(Catalog::open_config(place).expect("create catalogue"));
                Catalog::open_config_read_only(place)
            });
            f(&reader.expect("open catalogue read-only"))
        })
    }

    pub fn jobs(&self) -> Vec<JobRecord> {
        self.read(|c| c.jobs(&JobFilter::default()).expect("jobs"))
    }

    pub fn rejections(&self) -> Vec<Rejection> {
        self.read(|c| c.rejections().expect("rejections"))
    }

    pub fn assets(&self, job_id: &str) -> Vec<Asset> {
        self.read(|c| c.assets(job_id).expect("assets"))
    }

    pub fn job_by_spec(&self, spec: &str) -> JobRecord {
        self.jobs().into_iter().find(|j| j.spec_name == spec).unwrap_or_else(|| panic!("no job for {spec}"))
    }

    /// Waits until `done` holds for the catalogue's jobs; panics with the jobs after [`WAIT`].
    pub async fn wait_until(&mut self, what: &str, done: impl Fn(&[JobRecord]) -> bool) -> Vec<JobRecord> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let jobs = self.jobs();
            if done(&jobs) {
                return jobs;
            }
            self.assert_daemon_alive().await;
            if tokio::time::Instant::now() > deadline {
                let states: Vec<String> =
                    jobs.iter().map(|j| format!("{} {} {:?}", j.spec_name, j.state, j.error)).collect();
                panic!("timed out waiting for {what}; jobs: {states:#?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until `n` jobs exist, all terminal, with their spec files settled in `done/` or
    /// `failed/` next to their reports.
    pub async fn wait_all_ended(&mut self, n: usize) -> Vec<JobRecord> {
        self.wait_until(&format!("{n} jobs to end"), |jobs| {
            jobs.len() == n
                && jobs
                    .iter()
                    .all(|j| j.state.is_terminal() && matches!(j.spec_place, SpecPlace::Done | SpecPlace::Failed))
        })
        .await
    }

    /// Waits until the catalogue holds `n` rejections.
    pub async fn wait_rejections(&mut self, n: usize) -> Vec<Rejection> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let r = self.rejections();
            if r.len() >= n {
                return r;
            }
            self.assert_daemon_alive().await;
            assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {n} rejections: {r:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Reads a JSON report from `done/` or `failed/`.
    pub fn report(&self, folder: &str, spec: &str) -> serde_json::Value {
        let path = self.inbox().join(folder).join(format!("{spec}.report.json"));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        serde_json::from_str(&text).expect("report is JSON")
    }

    /// Runs the built binary with this environment's config.
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        std::process::Command::new(env!("CARGO_BIN_EXE_vidkeep"))
            .args(args)
            .arg("--config")
            .arg(&self.config_path)
            .output()
            .expect("run vidkeep")
    }
}

/// Sends the daemon's logs to the test's captured output (shown for failing tests);
/// `RUST_LOG` picks the level, `info` by default.
pub fn init_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().try_init();
}

/// Lower-hex SHA-256 of a file.
pub fn sha256_file(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    vidkeep::archive::sha256_hex(&bytes)
}

/// The archived job's video and cover, each checked against what the simulator served for its
/// task (SHA-256 and length as the catalogue recorded them); returned with the served SHA-256.
pub fn assets_as_served(env: &Env, job: &JobRecord) -> Vec<(Asset, String)> {
    let task = env.sim.task(job.task_id.as_deref().expect("task id")).expect("simulator task");
    let assets = env.assets(&job.id);
    assert_eq!(assets.len(), 2, "video and cover for {}", job.spec_name);
    assets
        .into_iter()
        .map(|asset| {
            let (sha, len) = match asset.kind {
                vidkeep::catalog::AssetKind::Video => (&task.video_sha256, task.video_bytes),
                vidkeep::catalog::AssetKind::Cover => (&task.cover_sha256, task.cover_bytes),
            };
            assert_eq!((&asset.sha256, asset.bytes), (sha, len), "{} {:?}", job.spec_name, asset.kind);
            (asset, sha.clone())
        })
        .collect()
}

/// Asserts that every job ended archived, each asset's stored bytes hash to what the simulator
/// served for that task.
pub fn assert_archived_as_served(env: &Env, jobs: &[JobRecord]) {
    for job in jobs {
        assert_eq!(job.state, JobState::Archived, "{} {:?}", job.spec_name, job.error);
        let task_id = job.task_id.as_deref().expect("task id");
        let task = env.sim.task(task_id).expect("simulator knows the task");
        let assets = env.assets(&job.id);
        assert_eq!(assets.len(), 2, "video and cover for {}", job.spec_name);
        for asset in assets {
            let (want_sha, want_len) = match asset.kind {
                vidkeep::catalog::AssetKind::Video => (&task.video_sha256, task.video_bytes),
                vidkeep::catalog::AssetKind::Cover => (&task.cover_sha256, task.cover_bytes),
            };
            assert_eq!(&asset.sha256, want_sha, "{} {:?}", job.spec_name, asset.kind);
            assert_eq!(asset.bytes, want_len);
            let stored = env.archive_dir().join(&asset.key);
            assert_eq!(&sha256_file(&stored), want_sha, "stored bytes of {}", asset.key);
        }
    }
}

/// The daemon's `/metrics` at `url`, as sample name (with labels) to value.
pub async fn metrics(url: &str) -> std::collections::BTreeMap<String, f64> {
    let text = reqwest::get(format!("{url}/metrics")).await.expect("GET /metrics").text().await.expect("body");
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' ').and_then(|(k, v)| Some((k.to_owned(), v.parse().ok()?))))
        .collect()
}
