//! `vidkeep demo` and `vidkeep simulate`: the whole product on one machine, no API key needed.
//!
//! The demo starts the platform simulator and the daemon in a fresh folder, drops the example
//! specs (embedded in the binary, so it runs from anywhere), waits until every job has ended,
//! and prints the catalogue. It writes a real config file into the folder, so every other
//! command can be tried on the result (`vidkeep jobs --config <dir>/vidkeep.toml`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, bail};
use tokio_util::sync::CancellationToken;

use crate::catalog::{Catalog, JobFilter};
use crate::config::Config;
use crate::secret::Secret;
use crate::sim::{self, SimConfig};

/// The example specs and the images they use, as shipped in `examples/specs/`.
pub const EXAMPLES: &[(&str, &[u8])] = &[
    ("lantern-first.png", include_bytes!("../../examples/specs/lantern-first.png")),
    ("lantern-last.png", include_bytes!("../../examples/specs/lantern-last.png")),
    ("fox-in-snow.json", include_bytes!("../../examples/specs/fox-in-snow.json")),
    ("lantern-festival.toml", include_bytes!("../../examples/specs/lantern-festival.toml")),
    ("harbour-at-dawn.txt", include_bytes!("../../examples/specs/harbour-at-dawn.txt")),
    ("lantern-bloom.json", include_bytes!("../../examples/specs/lantern-bloom.json")),
    ("lantern-transition.toml", include_bytes!("../../examples/specs/lantern-transition.toml")),
    ("city-timelapse.json", include_bytes!("../../examples/specs/city-timelapse.json")),
];

/// Longest the demo waits for the examples.
const DEMO_TIMEOUT: Duration = Duration::from_secs(180);

/// `vidkeep simulate`: serves the simulator until Ctrl-C.
pub async fn simulate(listen: SocketAddr, config: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let sim_config = match config {
        Some(path) => {
            let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
            toml::from_str(&text).with_context(|| format!("simulator config {}", path.display()))?
        }
        None => SimConfig::default(),
    };
    let listener = tokio::net::TcpListener::bind(listen).await.with_context(|| format!("cannot listen on {listen}"))?;
    let handle = sim::start(sim_config, listener).await?;
    println!("simulator listening: base_url = \"{}\"", handle.base_url());
    println!("stats: http://{}/_sim/stats", handle.addr());
    let cancel = CancellationToken::new();
    crate::ops::signals::stop_on_signal(cancel.clone()).await;
    handle.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

/// The config the demo runs with, rooted at `dir`.
pub fn demo_config(dir: &Path, base_url: &str) -> String {
    format!(
        "{DEMO_MARK}: the simulator stands in for the platform.\n\
         [api]\nbase_url = \"{base_url}\"\napi_key_env = \"VIDKEEP_DEMO_KEY\"\nmax_in_flight = 4\npoll_interval = \"500ms\"\n\n\
         [watch]\ndir = \"{inbox}\"\nquiet_period = \"500ms\"\n\n\
         [storage]\nurl = \"file://{archive}\"\n\n\
         # The simulator serves the results on loopback, which result URLs may not name by default.\n\
         [archive]\nallowed_networks = [\"127.0.0.0/8\", \"::1\"]\n\n\
         [catalog]\npath = \"{catalog}\"\n\n\
         # Any free loopback port, so a demo never collides with a running vidkeep.\n\
         [http]\nlisten = \"127.0.0.1:0\"\n\n\
         [defaults]\nmodel = \"viduq1-text\"\nmovement_amplitude = \"auto\"\n",
        inbox = dir.join("inbox").display(),
        archive = dir.join("archive").display(),
        catalog = dir.join("catalog.sqlite").display(),
    )
}

/// The first line of the config a demo writes: how a folder is known as a previous demo's.
const DEMO_MARK: &str = "# Written by `vidkeep demo`";

/// The folder to run in: a new one, an empty one, or a previous demo's. Any other folder with
/// files in it is refused: the demo writes its config and catalogue there.
fn demo_dir(dir: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    let Some(d) = dir else { return Ok(tempfile::Builder::new().prefix("vidkeep-demo-").tempdir()?.keep()) };
    std::fs::create_dir_all(&d).with_context(|| format!("cannot create {}", d.display()))?;
    let empty = std::fs::read_dir(&d).with_context(|| format!("cannot read {}", d.display()))?.next().is_none();
    let previous = std::fs::read_to_string(d.join("vidkeep.toml")).is_ok_and(|t| t.starts_with(DEMO_MARK));
    if !empty && !previous {
        bail!(
            "{} is not empty and is not a previous demo's folder; the demo writes its config, inbox and \
             catalogue there: give a new or empty folder (or leave out --dir)",
            d.display()
        );
    }
    Ok(d.canonicalize()?)
}

/// How to run this binary again, for the closing hints: `cargo run --` from a checkout,
/// else the binary's real path.
fn this_binary() -> String {
    match std::env::current_exe() {
        Ok(path) if std::env::var_os("CARGO").is_some() && path.components().any(|c| c.as_os_str() == "target") => {
            "cargo run --release --".to_owned()
        }
        Ok(path) => path.display().to_string(),
        Err(_) => "vidkeep".to_owned(),
    }
}

/// `vidkeep demo`. Without `verbose`, a line per job as it moves through the states instead of
/// the daemon's log.
pub async fn run(dir: Option<PathBuf>, serve: bool, verbose: bool) -> anyhow::Result<ExitCode> {
    let dir = demo_dir(dir)?;
    if !verbose {
        // The environment's VIDKEEP_LOG / RUST_LOG still wins.
        let _ = crate::telemetry::set_filter("warn");
    }
    println!("demo folder: {}", dir.display());
    let sim_config =
        SimConfig { latency_min: Duration::from_secs(1), latency_max: Duration::from_secs(3), ..SimConfig::default() };
    let key = Secret::new(sim_config.api_key.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let simulator = sim::start(sim_config, listener).await?;
    let config_path = dir.join("vidkeep.toml");
    std::fs::write(&config_path, demo_config(&dir, &simulator.base_url()))?;
    let config = Config::load(&config_path)?;
    let cancel = CancellationToken::new();
    let http = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let ui = format!("http://{}/", http.local_addr()?);
    let options = crate::daemon::Options { http_listener: Some(http), ..crate::daemon::Options::default() };
    let started = crate::time::now_ms();
    let daemon = tokio::spawn(crate::daemon::run_with(config.clone(), key, cancel.clone(), options));
    drop_examples(&config.watch.dir)?;
    let finished = wait_until_done(&config, started, &cancel, !verbose).await;
    let (table, made) = summary(&config, started)?;
    println!("\n{table}");
    if made == 0 && finished.is_ok() {
        // A rerun in its own folder: every example matches a job an earlier run archived.
        println!(
            "nothing new was submitted: the examples are already paid for by an earlier demo run in this \
             folder (each has an already-paid report in {}); `jobs --config {}` lists every job",
            config.inbox().folder(crate::domain::SpecPlace::Done).display(),
            config_path.display()
        );
    }
    let me = this_binary();
    if serve && finished.is_ok() {
        println!(
            "catalogue UI: {ui}\nsimulator: {}   config: {}\ndrop more specs into {}; Ctrl-C to stop.",
            simulator.base_url(),
            config_path.display(),
            config.watch.dir.display()
        );
        crate::ops::signals::stop_on_signal(cancel.clone()).await;
    }
    cancel.cancel();
    daemon.await.context("daemon task")??;
    simulator.shutdown().await;
    finished?;
    println!(
        "try: {me} jobs --config {0}   |   {me} verify --config {0}   |   {me} serve --config {0}",
        config_path.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Drops each example the way careful tools do: write `name.part`, then rename into place.
fn drop_examples(inbox: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(inbox)?;
    for (name, bytes) in EXAMPLES {
        let part = inbox.join(format!("{name}.part"));
        std::fs::write(&part, bytes)?;
        std::fs::rename(&part, inbox.join(name))?;
    }
    Ok(())
}

/// Waits until every example this run dropped has been handled (no spec left in the inbox or
/// in `processing/`, every job made since `started` ended); with `progress`, prints a line each
/// time one of this run's jobs changes state.
async fn wait_until_done(
    config: &Config,
    started: i64,
    cancel: &CancellationToken,
    progress: bool,
) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + DEMO_TIMEOUT;
    let inbox = config.inbox();
    let specs: Vec<&str> = EXAMPLES.iter().map(|(n, _)| *n).filter(|n| !n.ends_with(".png")).collect();
    let mut seen: std::collections::BTreeMap<String, String> = std::collections::BTreeMap::new();
    loop {
        let path = config.catalog.path.clone();
        let jobs = tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<crate::catalog::JobRecord>> {
            Ok(Catalog::open(&path)?.jobs(&JobFilter { created_from: Some(started), ..JobFilter::default() })?)
        })
        .await??;
        for job in &jobs {
            let state = job.state.to_string();
            if progress && seen.get(&job.id) != Some(&state) {
                let note = job.error.as_ref().map(|e| format!("  ({})", e.code)).unwrap_or_default();
                println!("  {:<28} {:<10} {state}{note}", crate::telemetry::Escaped(&job.spec_name), job.model);
                seen.insert(job.id.clone(), state);
            }
        }
        let waiting_in_inbox = specs.iter().any(|n| inbox.root().join(n).exists());
        let processing = std::fs::read_dir(inbox.folder(crate::domain::SpecPlace::Processing))
            .map(|d| d.filter_map(Result::ok).any(|e| !e.file_name().to_string_lossy().starts_with('.')))
            .unwrap_or(false);
        if !waiting_in_inbox && !processing && jobs.iter().all(|j| j.state.is_terminal()) {
            return Ok(());
        }
        if cancel.is_cancelled() {
            bail!("stopped before the examples finished");
        }
        if tokio::time::Instant::now() > deadline {
            let ended = jobs.iter().filter(|j| j.state.is_terminal()).count();
            bail!("the examples did not finish within {DEMO_TIMEOUT:?} ({ended} of {} jobs ended)", jobs.len());
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// This run's jobs, as `vidkeep jobs` shows them, and how many there are.
fn summary(config: &Config, started: i64) -> anyhow::Result<(String, usize)> {
    let catalog = Catalog::open(&config.catalog.path)?;
    let rows = catalog
        .jobs(&JobFilter { created_from: Some(started), ..JobFilter::default() })?
        .into_iter()
        .map(|j| {
            let assets = catalog.assets(&j.id)?;
            Ok((j, assets))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok((super::list::table(&rows), rows.len()))
}
