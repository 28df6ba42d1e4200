//! The command line: one binary, one subcommand per task. Exit codes scripts can rely on:
//! 0 success, 1 the command ran and found a problem (invalid spec, failed verification),
//! 2 it could not run (bad config, unreadable catalogue, bad arguments).

mod check;
mod fetch;
mod list;
mod verify;

pub use list::{job_json, table};

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::telemetry::LogFormat;

/// vidkeep: archive every paid AI-generated video before its link expires.
#[derive(Debug, Parser)]
#[command(name = "vidkeep", version, about)]
pub struct Cli {
    /// Log line format.
    #[arg(long, global = true, value_enum, default_value = "human")]
    pub log_format: LogFormat,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The config file option shared by most commands.
#[derive(Debug, Clone, Args)]
pub struct ConfigArg {
    /// Path of the TOML config file.
    #[arg(long, short, env = "VIDKEEP_CONFIG")]
    pub config: PathBuf,
}

impl ConfigArg {
    fn load(&self) -> anyhow::Result<Config> {
        Ok(Config::load(&self.config)?)
    }
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon in the foreground until SIGINT/SIGTERM.
    Run(ConfigArg),
    /// Validate spec files offline and print the request each would send.
    Check {
        /// Config whose [defaults] apply (optional).
        #[arg(long, short, env = "VIDKEEP_CONFIG")]
        config: Option<PathBuf>,
        /// Spec files.
        #[arg(required = true)]
        specs: Vec<PathBuf>,
    },
    /// List jobs.
    Jobs {
        /// The config.
        #[command(flatten)]
        config: ConfigArg,
        /// Only jobs in this state.
        #[arg(long)]
        state: Option<crate::jobs::JobState>,
        /// Only jobs of this model.
        #[arg(long)]
        model: Option<String>,
        /// JSON for scripts instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Print every job with its assets.
    Export {
        /// The config.
        #[command(flatten)]
        config: ConfigArg,
        /// Output format.
        #[arg(long, value_enum, default_value = "json")]
        format: list::ExportFormat,
        /// Only jobs in this state.
        #[arg(long)]
        state: Option<crate::jobs::JobState>,
        /// Only jobs of this model.
        #[arg(long)]
        model: Option<String>,
    },
    /// Show one job: request, state history, assets, error.
    Show {
        /// The config.
        #[command(flatten)]
        config: ConfigArg,
        /// Job id (or a unique prefix).
        job: String,
        /// JSON for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Re-read every stored asset and compare its SHA-256 with the catalogue.
    Verify(ConfigArg),
    /// Archive one URL into the configured storage with the daemon's archiver, and print what
    /// was stored and how fast (for benchmarks; records nothing in the catalogue).
    #[command(hide = true)]
    ArchiveUrl {
        /// The config whose [storage] is used.
        #[command(flatten)]
        config: ConfigArg,
        /// The URL to download.
        url: String,
        /// The key to store it under, relative to the storage root.
        key: String,
    },
    /// Decide what happens to an `uncertain` job.
    Resolve {
        /// The config.
        #[command(flatten)]
        config: ConfigArg,
        /// Job id (or a unique prefix).
        job: String,
        /// Submit again (the platform may charge a second time).
        #[arg(long, conflicts_with = "abandon", required_unless_present = "abandon")]
        resubmit: bool,
        /// Give the job up: it becomes `failed`.
        #[arg(long)]
        abandon: bool,
    },
    /// Run the platform simulator as a server.
    Simulate {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8790")]
        listen: SocketAddr,
        /// Simulator settings (TOML with the keys of `SimConfig`).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Run a self-contained demo: simulator + daemon in a fresh folder, the example specs, the catalogue.
    Demo {
        /// Folder to run in (default: a new temporary folder, kept and printed).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Keep running after the examples are archived, until Ctrl-C.
        #[arg(long)]
        serve: bool,
    },
    /// Configuration tools.
    #[command(subcommand)]
    Config(ConfigCommand),
}

/// `vidkeep config ...`
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate a config and print it resolved (paths absolute, defaults filled).
    Check(ConfigArg),
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> ExitCode {
    crate::telemetry::init(cli.log_format);
    match dispatch(cli.command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("vidkeep: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the async runtime")
}

fn dispatch(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Run(c) => {
            let config = c.load()?;
            let key = config.api_key()?;
            runtime()?.block_on(async {
                let cancel = CancellationToken::new();
                tokio::spawn(stop_on_signal(cancel.clone()));
                crate::daemon::run(config, key, cancel).await
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Check { config, specs } => check::run(config.as_deref(), &specs),
        Command::Jobs { config, state, model, json } => list::jobs(&config.load()?, state, model, json),
        Command::Export { config, format, state, model } => list::export(&config.load()?, format, state, model),
        Command::Show { config, job, json } => list::show(&config.load()?, &job, json),
        Command::Verify(c) => {
            let config = c.load()?;
            runtime()?.block_on(verify::run(&config))
        }
        Command::ArchiveUrl { config, url, key } => runtime()?.block_on(fetch::run(&config.load()?, &url, &key)),
        Command::Resolve { config, job, resubmit, abandon: _ } => list::resolve(&config.load()?, &job, resubmit),
        Command::Simulate { listen, config } => runtime()?.block_on(crate::demo::simulate(listen, config)),
        Command::Demo { dir, serve } => runtime()?.block_on(crate::demo::run(dir, serve)),
        Command::Config(ConfigCommand::Check(c)) => {
            let config = c.load()?;
            println!("# {} is valid", c.config.display());
            print!("{}", config.to_toml());
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Cancels `cancel` on SIGINT or SIGTERM: the one place signals become shutdown.
pub async fn stop_on_signal(cancel: CancellationToken) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut term) = signal(SignalKind::terminate()) else {
            let _ = tokio::signal::ctrl_c().await;
            cancel.cancel();
            return;
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: stopping"),
            _ = term.recv() => tracing::info!("SIGTERM: stopping"),
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
    cancel.cancel();
}
