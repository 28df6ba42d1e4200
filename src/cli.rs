//! The command line: one binary, one subcommand per task. Exit codes scripts can rely on:
//! 0 success, 1 the command ran and found a problem (invalid spec, failed verification),
//! 2 it could not run (bad config, unreadable catalogue, bad arguments).

mod check;
mod columns;
mod copy;
pub mod demo;
mod fetch;
mod list;
mod rebuild;
mod spend;
mod verify;

pub use crate::ops::signals::{handle_signals, stop_on_signal};
pub use list::table;

use crate::telemetry::Escaped;
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
    /// Path of the TOML config file (the Debian package's is /etc/vidkeep/config.toml).
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
    /// Run the daemon in the foreground until SIGINT/SIGTERM; SIGHUP reloads the config file.
    Run(ConfigArg),
    /// Serve the read-only catalogue UI on `[http] listen`, without running the daemon (for a
    /// machine that only browses the catalogue and the store).
    Serve(ConfigArg),
    /// Validate spec files offline and print the request each would send.
    #[command(after_help = "Exit status: 0 every spec is valid; 1 a spec is invalid; 2 could not run (bad config).")]
    Check {
        /// Config whose [defaults] apply (optional).
        #[arg(long, short, env = "VIDKEEP_CONFIG")]
        config: Option<PathBuf>,
        /// Spec files.
        #[arg(required = true)]
        specs: Vec<PathBuf>,
    },
    /// List jobs, oldest first.
    Jobs {
        /// The config.
        #[command(flatten)]
        config: ConfigArg,
        /// Which jobs.
        #[command(flatten)]
        filter: list::FilterArgs,
        /// Words that must all appear in the prompt, name, project or tags.
        #[arg(long, short)]
        query: Option<String>,
        /// JSON for scripts instead of a table.
        #[arg(long)]
        json: bool,
        /// Every column in full (id, creation time, video key), however wide.
        #[arg(long)]
        wide: bool,
        /// The specs refused at intake, with the reason, instead of jobs.
        #[arg(long, conflicts_with_all = ["query", "wide"])]
        rejected: bool,
    },
    /// Find jobs by words of their prompt, name, project or tags, newest first (exit 1: none).
    #[command(
        after_help = "Exit status: 0 a job matched; 1 nothing matched; 2 could not run (bad config, no catalogue)."
    )]
    Search {
        /// The config.
        #[command(flatten)]
        config: ConfigArg,
        /// The words; every one must appear (any case; any part of a word of 3+ characters).
        #[arg(required = true)]
        words: Vec<String>,
        /// Which jobs.
        #[command(flatten)]
        filter: list::FilterArgs,
        /// JSON for scripts instead of a table.
        #[arg(long)]
        json: bool,
        /// Every column in full, however wide.
        #[arg(long)]
        wide: bool,
    },
    /// Print every job with its assets.
    Export {
        /// The config.
        #[command(flatten)]
        config: ConfigArg,
        /// Output format.
        #[arg(long, value_enum, default_value = "json")]
        format: list::ExportFormat,
        /// Which jobs.
        #[command(flatten)]
        filter: list::FilterArgs,
        /// Words that must all appear in the prompt, name, project or tags.
        #[arg(long, short)]
        query: Option<String>,
    },
    /// Show one job: request, state history, assets, error.
    #[command(
        after_help = "Exit status: 0 shown; 1 no job or several jobs match; 2 could not run (bad config, no catalogue)."
    )]
    Show {
        /// The config.
        #[command(flatten)]
        config: ConfigArg,
        /// A job id (or a unique start or end of one, as `jobs` shows it), a spec file name or path, a task
        /// id, a request id, or the job page's address.
        job: String,
        /// JSON for scripts.
        #[arg(long)]
        json: bool,
    },
    /// What was charged and possibly charged, in totals or as the ledger rows (CSV).
    Spend {
        /// The config.
        #[command(flatten)]
        config: ConfigArg,
        /// From this day (YYYY-MM-DD in `[budget] timezone`, or RFC 3339).
        #[arg(long, value_name = "DATE")]
        since: Option<String>,
        /// Before this day (YYYY-MM-DD in `[budget] timezone`, or RFC 3339).
        #[arg(long, value_name = "DATE")]
        until: Option<String>,
        /// How to group the totals.
        #[arg(long, value_enum, default_value = "day")]
        by: spend::SpendBy,
        /// Output format (csv: one row per charged or possibly-charged submission).
        #[arg(long, value_enum, default_value = "table")]
        format: spend::SpendFormat,
    },
    /// Re-read stored assets, compare their SHA-256 with the catalogue, record each check.
    #[command(
        after_help = "Exit status: 0 every object matches; 1 an object is missing, changed or unreadable; 2 could not run."
    )]
    Verify {
        /// The config.
        #[command(flatten)]
        config: ConfigArg,
        /// Check only this percentage of the assets, least recently checked first.
        #[arg(long, value_name = "PERCENT", value_parser = parse_percent)]
        sample: Option<f64>,
        /// Check only assets stored since this date (YYYY-MM-DD or RFC 3339).
        #[arg(long, value_name = "DATE", value_parser = parse_since)]
        since: Option<i64>,
    },
    /// Copy the live catalogue consistently (SQLite online backup) to DEST.
    Backup {
        /// The config.
        #[command(flatten)]
        config: ConfigArg,
        /// Where the copy goes (replaced whole, never half-written).
        dest: PathBuf,
    },
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
        /// Show the daemon's log instead of the progress lines.
        #[arg(long, short)]
        verbose: bool,
    },
    /// Configuration tools.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Catalogue tools.
    #[command(subcommand)]
    Catalog(CatalogCommand),
    /// Print shell completions (bash, zsh, fish, ...) generated from this command line, or
    /// with --write DIR write them and the man page (the .deb ships these files).
    Completions {
        /// The shell to print completions for.
        #[arg(value_enum, required_unless_present = "write")]
        shell: Option<clap_complete::Shell>,
        /// Write `completions/vidkeep.bash`, `completions/_vidkeep`, `completions/vidkeep.fish`
        /// and `man/vidkeep.1` under this folder.
        #[arg(long, value_name = "DIR", conflicts_with = "shell")]
        write: Option<PathBuf>,
    },
    /// Print the man page (roff), generated from this command line.
    Man,
}

/// The files `vidkeep completions --write DIR` writes, by path under DIR, with their text.
pub fn generated_files() -> Vec<(&'static str, Vec<u8>)> {
    use clap::CommandFactory as _;
    let complete = |shell: clap_complete::Shell| {
        let mut out = Vec::new();
        clap_complete::generate(shell, &mut Cli::command(), "vidkeep", &mut out);
        out
    };
    let mut man = Vec::new();
    // Rendering into a Vec cannot fail.
    let _ = clap_mangen::Man::new(Cli::command()).render(&mut man);
    vec![
        ("completions/vidkeep.bash", complete(clap_complete::Shell::Bash)),
        ("completions/_vidkeep", complete(clap_complete::Shell::Zsh)),
        ("completions/vidkeep.fish", complete(clap_complete::Shell::Fish)),
        ("man/vidkeep.1", man),
    ]
}

impl Command {
    /// Whether the command only prints (a listing, a report, a check), so a closed pipe should end
    /// it quietly; the daemon, the servers and the demo keep handling EPIPE themselves.
    pub fn prints_to_a_pipe(&self) -> bool {
        matches!(
            self,
            Command::Check { .. }
                | Command::Jobs { .. }
                | Command::Search { .. }
                | Command::Export { .. }
                | Command::Show { .. }
                | Command::Completions { .. }
                | Command::Man
                | Command::Spend { .. }
                | Command::Verify { .. }
                | Command::Config(_)
        )
    }
}

/// `vidkeep config ...`
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate a config and print it resolved (paths absolute, defaults filled).
    #[command(
        after_help = "Exit status: 0 valid; 1 the config or its api.key_file has a problem (the message names it); 2 could not read the file."
    )]
    Check(ConfigArg),
}

/// `vidkeep catalog ...`
#[derive(Debug, Subcommand)]
pub enum CatalogCommand {
    /// Make a new catalogue from the sidecars in storage alone (after the catalogue is lost):
    /// every archived job with its assets, hashes, request, task id and accepted submission.
    #[command(
        after_help = "Writes [catalog] path (or --to), which must not exist yet; the file appears whole or not at all.\n\
                      Exit status: 0 rebuilt from every sidecar; 1 rebuilt, but some sidecars could not be read (listed); 2 could not run."
    )]
    Rebuild {
        /// The config: its [storage] is read, its [catalog] path written.
        #[command(flatten)]
        config: ConfigArg,
        /// Write the new catalogue here instead of [catalog] path.
        #[arg(long, value_name = "PATH")]
        to: Option<PathBuf>,
    },
    /// Copy a SQLite catalogue into a new, empty PostgreSQL (or SQLite) catalogue, checked:
    /// every table in one transaction, ids kept; row counts and checksums of both sides must
    /// agree before it commits.
    #[command(after_help = "Stop the daemon first (a running one is refused), and point [catalog] at the destination \
                      before it starts again. The source is only read. The destination must hold no jobs.\n\
                      Exit status: 0 copied and checked; 1 the check found a difference (nothing was written); \
                      2 could not run (refused, or nothing was written).")]
    Copy {
        /// The catalogue to copy: sqlite:PATH.
        #[arg(long, value_name = "sqlite:PATH", value_parser = copy::Place::parse)]
        from: copy::Place,
        /// Where to: a postgres:// URL, or sqlite:PATH (created if missing).
        #[arg(long, value_name = "URL", value_parser = copy::Place::parse)]
        to: copy::Place,
    },
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> ExitCode {
    crate::telemetry::init(cli.log_format);
    match dispatch(cli.command) {
        Ok(code) => code,
        Err(e) => {
            // Line by line: a message may quote a file name or a spec's text (an ANSI escape
            // must not reach the terminal), and a parse error spans several lines.
            eprintln!("vidkeep: {}", escaped_lines(&each_cause_once(&e)));
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
            if let Err(e) = crate::telemetry::set_filter(&config.log.level) {
                tracing::warn!(error = %Escaped(&e), "cannot apply [log] level");
            }
            let config_path = std::path::absolute(&c.config).unwrap_or_else(|_| c.config.clone());
            runtime()?.block_on(async {
                let cancel = CancellationToken::new();
                let (reload_tx, reload) = tokio::sync::mpsc::unbounded_channel();
                tokio::spawn(handle_signals(cancel.clone(), Some(reload_tx)));
                let options = crate::daemon::Options {
                    config_path: Some(config_path),
                    reload: Some(reload),
                    ..crate::daemon::Options::default()
                };
                crate::daemon::run_with(config, key, cancel, options).await
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Check { config, specs } => check::run(config.as_deref(), &specs),
        Command::Jobs { config, rejected: true, json, .. } => list::rejected(&config.load()?, json),
        Command::Jobs { config, filter, query, json, wide, rejected: false } => {
            list::jobs(&config.load()?, &filter.filter(query, false), json, false, layout(wide))
        }
        Command::Search { config, words, filter, json, wide } => {
            list::jobs(&config.load()?, &filter.filter(Some(words.join(" ")), true), json, true, layout(wide))
        }
        Command::Export { config, format, filter, query } => {
            list::export(&config.load()?, format, &filter.filter(query, false))
        }
        Command::Show { config, job, json } => list::show(&config.load()?, &job, json),
        Command::Spend { config, since, until, by, format } => {
            spend::run(&config.load()?, since.as_deref(), until.as_deref(), by, format)
        }
        Command::Verify { config, sample, since } => {
            let config = config.load()?;
            let selection = crate::catalog::CheckSelection { stored_since: since, sample_percent: sample };
            runtime()?.block_on(verify::run(&config, selection))
        }
        Command::Backup { config, dest } => {
            let config = config.load()?;
            if config.catalog.url.is_some() {
                anyhow::bail!(
                    "this config names a PostgreSQL catalogue: back it up with PostgreSQL's own tools (pg_dump, or \
                     base backups with WAL archiving); `vidkeep backup` copies a SQLite file"
                );
            }
            let path = &config.catalog.path;
            let folder = match dest.parent() {
                Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
                _ => PathBuf::from("."),
            };
            if !folder.is_dir() {
                anyhow::bail!("cannot back up to {}: the folder {} does not exist", dest.display(), folder.display());
            }
            if dest.is_dir() {
                anyhow::bail!("cannot back up to {}: it is a folder; name the file to write", dest.display());
            }
            let catalog = crate::catalog::Catalog::open_read_only(path)
                .with_context(|| format!("cannot open the catalogue {}", path.display()))?;
            catalog.backup_to(&dest).with_context(|| format!("cannot back up to {}", dest.display()))?;
            println!("backed up {} to {}", path.display(), dest.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::ArchiveUrl { config, url, key } => runtime()?.block_on(fetch::run(&config.load()?, &url, &key)),
        Command::Resolve { config, job, resubmit, abandon: _ } => list::resolve(&config.load()?, &job, resubmit),
        Command::Serve(c) => {
            let config = c.load()?;
            runtime()?.block_on(serve(&config))
        }
        Command::Simulate { listen, config } => runtime()?.block_on(demo::simulate(listen, config)),
        Command::Completions { shell: Some(shell), .. } => {
            use clap::CommandFactory as _;
            clap_complete::generate(shell, &mut Cli::command(), "vidkeep", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
        Command::Completions { shell: None, write } => {
            let dir = write.context("give a shell or --write DIR")?;
            for (rel, bytes) in generated_files() {
                let path = dir.join(rel);
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
                }
                std::fs::write(&path, bytes).with_context(|| format!("cannot write {}", path.display()))?;
                println!("wrote {}", path.display());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Man => {
            use std::io::Write as _;
            let man = generated_files().pop().map(|(_, bytes)| bytes).unwrap_or_default();
            std::io::stdout().write_all(&man)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Demo { dir, serve, verbose } => runtime()?.block_on(demo::run(dir, serve, verbose)),
        Command::Catalog(CatalogCommand::Rebuild { config, to }) => {
            let config = config.load()?;
            runtime()?.block_on(rebuild::run(&config, to))
        }
        // Synchronous, on this thread: the blocking PostgreSQL client must not run on a runtime's worker.
        Command::Catalog(CatalogCommand::Copy { from, to }) => copy::run(&from, &to),
        Command::Config(ConfigCommand::Check(c)) => {
            // Exit 1: the config (or its key file) has a problem; 2: it cannot be read at all.
            let config = match Config::load(&c.config) {
                Ok(config) => config,
                Err(e @ crate::config::ConfigError::Read { .. }) => return Err(e.into()),
                Err(e) => return Ok(problem(&e)),
            };
            if config.api.key_file.is_some() {
                // The unit's ExecStartPre runs this: a bad key file stops the start with its fix.
                if let Err(e) = config.api_key() {
                    return Ok(problem(&e));
                }
            }
            println!("# {} is valid", c.config.display());
            print!("{}", config.to_toml());
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The error and its causes, `: `-joined, leaving out a cause the text already says (a
/// message that quotes its source would otherwise print it twice).
fn each_cause_once(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let said = cause.to_string();
        if text.contains(said.trim()) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&said);
    }
    text
}

fn layout(wide: bool) -> list::Layout {
    if wide { list::Layout::Wide } else { list::Layout::Fit }
}

/// Says what is wrong (escaped, line by line) and gives exit code 1: the command ran and
/// found a problem.
fn problem(e: &dyn std::fmt::Display) -> ExitCode {
    eprintln!("vidkeep: {}", escaped_lines(&e.to_string()));
    ExitCode::from(1)
}

/// `text` with control characters escaped in each line, the lines kept.
fn escaped_lines(text: &str) -> String {
    text.lines().map(|l| Escaped(l).to_string()).collect::<Vec<_>>().join("\n")
}

fn parse_percent(s: &str) -> Result<f64, String> {
    match s.trim_end_matches('%').parse::<f64>() {
        Ok(p) if p > 0.0 && p <= 100.0 => Ok(p),
        _ => Err(format!("`{s}` is not a percentage above 0 and at most 100")),
    }
}

pub(crate) fn parse_since(s: &str) -> Result<i64, String> {
    crate::time::parse_date(s).ok_or_else(|| format!("`{s}` is not a date: use YYYY-MM-DD or RFC 3339"))
}

/// `vidkeep serve`: the UI over a read-only catalogue connection and the store, until a signal.
async fn serve(config: &Config) -> anyhow::Result<ExitCode> {
    let addr = config.http.listen_addr().context("`[http] listen` is empty or not an address: nothing to serve on")?;
    let place = config.catalog.clone();
    let first = {
        let place = place.clone();
        tokio::task::spawn_blocking(move || crate::catalog::Catalog::open_config_read_only(&place))
            .await?
            .with_context(|| {
                format!("cannot read the catalogue {}", crate::catalog::Catalog::config_place(&config.catalog))
            })?
    };
    let store = crate::store::Store::open(&config.storage)?;
    let more = move || crate::catalog::Catalog::open_config_read_only(&place);
    let ui = crate::web::ui::UiState::new(first, store).with_readers(crate::web::ui::UI_READERS, more);
    let routes = crate::web::ui::routes(ui.with_budget(config.budget_limits()));
    let listener = crate::web::bind(addr).await?;
    let local = listener.local_addr()?;
    if !local.ip().is_loopback() && config.http.token().is_none() {
        tracing::warn!(%local, "serving beyond loopback without [http] token");
    }
    println!("catalogue UI: http://{local}/");
    let cancel = CancellationToken::new();
    tokio::spawn(stop_on_signal(cancel.clone()));
    let mut settings = crate::web::ServeSettings::new(&config.http, config.jobs.shutdown_grace);
    settings.max_connections =
        crate::web::connection_cap(settings.max_connections, crate::web::raise_open_file_limit());
    crate::web::serve(listener, crate::web::app(routes, &config.http), cancel, settings).await?;
    Ok(ExitCode::SUCCESS)
}
